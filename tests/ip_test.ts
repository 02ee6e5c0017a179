/**
 * src/proxmox/ip.ts stands in for node:net's isIPv4 and isIPv6 (which load
 * Node's sockets at start): the same answer on every input.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { ipSpec } from "../src/proxmox/api/create.ts";
import { isIPv4, isIPv6 } from "../src/proxmox/ip.ts";
import { prng } from "./helpers.ts";

/**
 * Every IPv6 shape: 1 to 9 groups without `::`, every split of up to 8 groups
 * around `::`, each with and without an IPv4 tail, in groups of one digit,
 * four, mixed case, five (too long) and a non-hex letter, each bare and with
 * zones (well-formed, one character, every character a zone may hold, empty,
 * and with a character it may not).
 */
function ipv6Shapes(): string[] {
  const shapes: string[] = [];
  const groups = (n: number, h: string) =>
    Array.from({ length: n }, (_, i) => i % 2 ? h : "0");
  for (const h of ["1", "ffff", "FfFf", "12345", "g"]) {
    for (let n = 1; n <= 9; n++) {
      shapes.push(groups(n, h).join(":"));
      shapes.push([...groups(n, h), "1.2.3.4"].join(":"));
    }
    for (let left = 0; left <= 8; left++) {
      for (let right = 0; right <= 8 - left; right++) {
        const l = groups(left, h).join(":");
        shapes.push(`${l}::${groups(right, h).join(":")}`);
        shapes.push(`${l}::${[...groups(right, h), "1.2.3.4"].join(":")}`);
      }
    }
  }
  const zones = ["", "%eth0", "%a", "%A-b.c:9", "%", "%e/0", "%e f"];
  return shapes.flatMap((s) => zones.map((z) => s + z));
}

/** Every octet 0-299 (and with a leading zero) in each place of an IPv4 address. */
function ipv4Octets(): string[] {
  const octets: string[] = [];
  for (let n = 0; n < 300; n++) {
    for (const o of [String(n), `0${n}`]) {
      octets.push(`${o}.1.1.1`, `1.${o}.1.1`, `1.1.${o}.1`, `1.1.1.${o}`);
    }
  }
  return octets;
}

// The shapes and octets tables settle every mutant of ip.ts's expressions we
// tried (a bound, a range, a `::` ending, case, the zone's characters or
// length changed); the seeded random strings look where no table does.
Deno.test("isIPv4 and isIPv6 answer as node:net's on edge cases, every IPv6 shape and IPv4 octet, and 15 000 random strings and near-addresses", () => {
  const cases = [
    "1.2.3.4",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4/24",
    " 1.2.3.4",
    "1.2.3.4\n",
    "",
    "::",
    "::1",
    "::/0",
    "1::2::3",
    "gggg::1",
    "fe80::1%eth0",
    "fe80::%",
    "2001:db8::8a2e:370:7334",
    "::ffff:192.0.2.128",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "a:b:c:d:e:f:1.2.3.4",
    ...ipv6Shapes(),
    ...ipv4Octets(),
  ];
  const random = prng(13);
  const alphabet = "0123456789abcdefABCDEF:.%/-z ";
  const int = (n: number) => Math.floor(random() * n);
  const hex = () => int(0x20000).toString(16).slice(0, 1 + int(5));
  for (let i = 0; i < 5_000; i++) {
    let s = "";
    const n = int(24);
    for (let k = 0; k < n; k++) s += alphabet[int(alphabet.length)];
    cases.push(s);
    // Near-addresses: four numbers up to 299, groups of 1-5 hex digits.
    cases.push(Array.from({ length: 3 + int(2) }, () => int(300)).join("."));
    const groups = Array.from({ length: 1 + int(9) }, hex);
    if (random() < 0.5) groups.splice(int(groups.length), 0, "");
    if (random() < 0.2) groups.push("1.2.3.4");
    cases.push(groups.join(":") + (random() < 0.1 ? "%eth0" : ""));
  }
  let v4 = 0, v6 = 0;
  for (const s of cases) {
    const ours = [isIPv4(s), isIPv6(s)];
    const node = [net.isIPv4(s), net.isIPv6(s)];
    if (ours[0] !== node[0] || ours[1] !== node[1]) {
      assert.deepEqual(ours, node, JSON.stringify(s));
    }
    if (ours[0]) v4++;
    if (ours[1]) v6++;
  }
  // The cases reach both answers.
  assert.ok(v4 >= 1000 && v6 >= 1000, `${v4} IPv4, ${v6} IPv6`);
});

Deno.test("a new guest's ip and gateway are checked as PVE's CIDRv4 and ipv4 formats check them (no leading zeros, prefix 8-32) before anything is sent", () => {
  const taken: [string, string?][] = [
    ["192.168.1.50/24"],
    ["10.0.0.5/8"],
    ["10.0.0.5/32"],
    ["10.0.0.0/08"],
    ["0.0.0.0/8"],
    ["192.168.1.50/24", "192.168.1.1"],
  ];
  for (const [ip, gw] of taken) {
    const spec = ipSpec(ip, gw);
    assert.equal(spec, gw ? `ip=${ip},gw=${gw}` : `ip=${ip}`);
  }
  const refused: [string, string?][] = [
    ["010.0.0.5/24"],
    ["10.0.0.05/24"],
    ["10.0.0.5/7"],
    ["10.0.0.5/0"],
    ["10.0.0.5/33"],
    ["10.0.0.5"],
    ["10.0.0.5/24/1"],
    ["10.0.0.5/24,gw=10.0.0.1"],
    ["::1/64"],
    ["192.168.1.50/24", "192.168.001.1"],
    ["192.168.1.50/24", ""],
  ];
  for (const [ip, gw] of refused) {
    assert.throws(
      () => ipSpec(ip, gw),
      /ip must be 'dhcp' or an IPv4 CIDR|gateway must be an IPv4 address/,
      JSON.stringify([ip, gw]),
    );
  }
});

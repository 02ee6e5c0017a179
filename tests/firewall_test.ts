/** e2e: the guest firewall tools over stdio against the simulator. */
import assert from "node:assert/strict";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";

Deno.test("add_firewall_rule on a VM stores the rule enabled at the asked position, warns while the firewall is off, and can switch it on", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const fw = () => sim.cluster.guests.get(100)!.firewall;

  const ssh = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "accept",
    proto: "tcp",
    dport: "22",
    source: "10.0.0.0/24",
    comment: "ssh from mgmt",
  });
  assert.equal(ssh.added, true);
  assert.deepEqual(ssh.rule, {
    pos: 0,
    type: "in",
    action: "ACCEPT",
    enable: 1,
    proto: "tcp",
    dport: "22",
    source: "10.0.0.0/24",
    comment: "ssh from mgmt",
  });
  assert.equal(ssh.firewall_enabled, false);
  assert.match(
    ssh.warning,
    /^The firewall of guest 100 is off, so this rule has no effect yet: repeat this call with enable_firewall: true/,
  );
  assert.equal(fw().rules[0].enable, 1, "stored enabled (PVE's default is 0)");
  const post = sim.requests.find((q) =>
    q.method === "POST" && q.path.endsWith("/firewall/rules")
  )!;
  assert.equal(post.params.enable, "1");

  // PVE prepends; the tool moves the rule where it was asked to go.
  const telnet = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "DROP",
    proto: "tcp",
    dport: "23",
    position: 1,
  });
  assert.equal(telnet.rule.pos, 1);
  assert.equal(telnet.rule.dport, "23");
  const web = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    macro: "web",
    position: 1,
  });
  assert.equal(web.rule.pos, 1);
  assert.equal(web.rule.macro, "Web", "PVE's preferred macro name");
  const last = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 100,
    type: "out",
    action: "REJECT",
    dest: "+blocklist",
    log: "info",
    position: 99,
  });
  assert.equal(last.rule.pos, 3);
  assert.deepEqual(fw().rules.map((r) => r.dport ?? r.macro ?? r.dest), [
    "22",
    "Web",
    "23",
    "+blocklist",
  ]);
  assert.ok(
    sim.requests.some((q) =>
      q.method === "PUT" && q.path.endsWith("/firewall/rules/{pos}") &&
      q.params.moveto !== undefined
    ),
    "moved with moveto",
  );

  const list = await callOk(s.client, "proxmox_list_firewall_rules", {
    vmid: 100,
  });
  assert.equal(list.firewall_enabled, false);
  assert.equal(list.policy_in, "DROP");
  assert.deepEqual(list.rules.map((r: { pos: number }) => r.pos), [0, 1, 2, 3]);
  assert.equal(list.rules[3].log, "info");

  // The same rule again with enable_firewall: not added twice, firewall on.
  const again = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
    source: "10.0.0.0/24",
    comment: "ssh from mgmt",
    enable_firewall: true,
  });
  assert.equal(again.added, false);
  assert.equal(again.rules, 4);
  assert.equal(again.rule.pos, 0);
  assert.equal(again.firewall_enabled, true);
  assert.match(again.warning, /^Switched the guest firewall on/);
  assert.equal(fw().options.enable, 1);
  assert.equal(
    (await callOk(s.client, "proxmox_list_firewall_rules", { vmid: 100 }))
      .firewall_enabled,
    true,
  );
});

Deno.test("add_firewall_rule and list_firewall_rules work the same on a container", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const dns = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 200,
    type: "out",
    action: "ACCEPT",
    proto: "udp",
    dport: "53,853",
    dest: "mgmt-net",
    iface: "net0",
  });
  assert.equal(dns.rule.dest, "mgmt-net");
  assert.equal(dns.rule.iface, "net0");
  const off = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 200,
    type: "group",
    action: "webserver",
    enable: false,
    comment: "later",
  });
  assert.equal(off.rule.enable, 0);
  assert.equal(off.rule.type, "group");
  const ct = sim.cluster.guests.get(200)!;
  assert.deepEqual(ct.firewall.rules.map((r) => [r.type, r.action, r.enable]), [
    ["group", "webserver", 0],
    ["out", "ACCEPT", 1],
  ]);
  assert.ok(
    sim.requests.some((q) =>
      q.path === "/nodes/{node}/lxc/{vmid}/firewall/rules"
    ),
  );
  const range = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 200,
    type: "in",
    action: "DROP",
    source: "192.168.5.10-192.168.5.20",
  });
  assert.equal(range.rule.source, "192.168.5.10-192.168.5.20");
  assert.doesNotMatch(range.warning, /firewall=1/);
  const list = await callOk(s.client, "proxmox_list_firewall_rules", {
    vmid: 200,
  });
  assert.equal(list.rules.length, 3);
  assert.equal(list.rules[2].dport, "53,853");
  assert.equal(list.firewall_enabled, false);

  // Rules only filter NICs with firewall=1: say so.
  const nic = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 200,
    type: "in",
    action: "ACCEPT",
    iface: "net1",
  });
  assert.match(nic.warning, /Guest 200 has no net1 \(it has net0\)/);
  const proxy = sim.cluster.guests.get(202)!;
  proxy.config.net0 = String(proxy.config.net0).replace("firewall=1,", "");
  const bare = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 202,
    type: "in",
    action: "ACCEPT",
    macro: "HTTP",
  });
  assert.match(
    bare.warning,
    /No network device of guest 202 has firewall=1, so the firewall filters nothing/,
  );
});

Deno.test("invalid rule fields are refused before any Proxmox request; PVE's own refusals keep its words", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const base = { vmid: 100, type: "in", action: "ACCEPT" };
  const bad: [Record<string, unknown>, RegExp][] = [
    [
      { action: "ALLOW" },
      /unknown action 'ALLOW' for type in: use ACCEPT, DROP or REJECT/,
    ],
    [{ type: "forward" }, /type/],
    [{ proto: "tcp", dport: "99999" }, /invalid port '99999'/],
    [{ proto: "tcp", dport: "90:80" }, /backwards range '90:80'/],
    [{ proto: "tcp", dport: "22,,80" }, /invalid port ''/],
    [{ dport: "22" }, /dport needs proto/],
    [{ proto: "icmp", sport: "22" }, /protocol 'icmp' does not support ports/],
    [{ proto: "999" }, /0 to 255/],
    [{ iface: "eth0" }, /Use netN/],
    [{ source: "10.0.0.1/24" }, /host bits set/],
    [{ source: "10.0.0.1,::1" }, /IPv4 and IPv6 mixed/],
    [
      { source: "10.0.0.1", dest: "fe80::1" },
      /IPv4 and IPv6 mixed in one rule/,
    ],
    [{ source: "10.0.0.300" }, /invalid address/],
    [{ dest: "+bad name" }, /invalid IP set/],
    [{ comment: "two\nlines" }, /One line/],
    [
      { type: "group", action: "webserver", proto: "tcp" },
      /group rule takes only/,
    ],
    [{ log: "loud" }, /log/],
    [{ position: -1 }, /position/],
  ];
  // The scope and protection gate reads the guest first (GETs only, and the
  // login they need): nothing else may reach the simulator.
  const sent = () =>
    sim.requests.filter((r) =>
      r.path !== "/access/ticket" &&
      !(r.method === "GET" &&
        (r.path === "/cluster/resources" || r.path.endsWith("/config")))
    ).length;
  const before = sent();
  for (const [args, re] of bad) {
    const r = await call(s.client, "proxmox_add_firewall_rule", {
      ...base,
      ...args,
    });
    assert.ok(r.isError, JSON.stringify(args));
    assert.match(r.text, re, JSON.stringify(args));
  }
  assert.equal(sent(), before, "no request reached the simulator");
  assert.equal(sim.cluster.guests.get(100)!.firewall.rules.length, 0);

  // Well-formed but unknown to PVE: refused by PVE, in PVE's words.
  const alias = await call(s.client, "proxmox_add_firewall_rule", {
    ...base,
    source: "nosuch-alias",
  });
  assert.ok(alias.isError);
  assert.match(
    alias.text,
    /Proxmox answered 400 .*source: no such alias 'nosuch-alias'/,
  );
  const macro = await call(s.client, "proxmox_add_firewall_rule", {
    ...base,
    macro: "SSH",
    proto: "tcp",
    dport: "2222",
  });
  assert.ok(macro.isError);
  assert.match(
    macro.text,
    /dport: parameter 'dport' already define in macro \(value = '22'\)/,
  );
  assert.equal(sim.cluster.guests.get(100)!.firewall.rules.length, 0);
});

/** Strings that once turned into other endpoints, or that a path must refuse. */
const HOSTILE = ["..", ".", "a/..", "%2e%2e", "/", "?x=", "#", "\0", "\n"];

Deno.test("hostile strings in every string argument of the firewall tools reach only the guest's firewall endpoints", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const FW = "/nodes/{node}/qemu/{vmid}";
  const allowed = [
    "POST /access/ticket",
    "GET /cluster/resources",
    "GET /version",
    `GET ${FW}/firewall/rules`,
    `POST ${FW}/firewall/rules`,
    `PUT ${FW}/firewall/rules/{pos}`,
    `GET ${FW}/firewall/options`,
    `PUT ${FW}/firewall/options`,
    `GET ${FW}/config`,
  ];
  const base = { vmid: 100, type: "in", action: "ACCEPT" };
  const args = [
    "type",
    "action",
    "proto",
    "dport",
    "sport",
    "source",
    "dest",
    "iface",
    "macro",
    "comment",
    "log",
  ];
  for (const arg of args) {
    for (const value of HOSTILE) {
      const before = sim.requests.length;
      const extra = arg === "dport" || arg === "sport" ? { proto: "tcp" } : {};
      await call(s.client, "proxmox_add_firewall_rule", {
        ...base,
        ...extra,
        [arg]: value,
      });
      for (const q of sim.requests.slice(before)) {
        const what = `${arg}=${
          JSON.stringify(value)
        }: ${q.method} ${q.rawPath}`;
        assert.ok(allowed.includes(`${q.method} ${q.path}`), what);
        assert.doesNotMatch(q.rawPath, /\/\.\.?(\/|$)|%2e|\/\/|%2f/i, what);
      }
    }
  }
  assert.equal(sim.cluster.guests.get(100)!.status, "running");
});

Deno.test("add_firewall_rule says which writes were applied when a later one fails", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const rule = { vmid: 100, type: "in", action: "ACCEPT", proto: "tcp" };
  await callOk(s.client, "proxmox_add_firewall_rule", { ...rule, dport: "80" });
  // The move after the create fails: the rule is there, at position 0.
  sim.faults.inject({
    method: "PUT",
    path: "/nodes/pve1/qemu/100/firewall/rules/0",
    fault: { kind: "status", status: 500, message: "cfs-lock timeout" },
  });
  const moved = await call(s.client, "proxmox_add_firewall_rule", {
    ...rule,
    dport: "443",
    position: 1,
  });
  assert.ok(moved.isError);
  assert.match(
    moved.text,
    /^Firewall of guest 100: added the rule at position 0 \(where PVE puts new rules\); moving it to position 1 failed: Proxmox answered 500 to PUT \/nodes\/pve1\/qemu\/100\/firewall\/rules\/0: cfs-lock timeout\. Check with proxmox_list_firewall_rules/,
  );
  assert.match(moved.text, /"applied":\["added the rule at position 0/);
  const fw = sim.cluster.guests.get(100)!.firewall;
  assert.deepEqual(fw.rules.map((r) => r.dport), ["443", "80"]);

  // Switching the firewall on fails after the rule went in and moved.
  sim.faults.inject({
    method: "PUT",
    path: "/nodes/pve1/qemu/100/firewall/options",
    fault: { kind: "status", status: 500, message: "cfs-lock timeout" },
  });
  const on = await call(s.client, "proxmox_add_firewall_rule", {
    ...rule,
    dport: "8080",
    position: 2,
    enable_firewall: true,
  });
  assert.ok(on.isError);
  assert.match(
    on.text,
    /^Firewall of guest 100: added the rule at position 0 \(where PVE puts new rules\); moved it to position 2; switching the guest firewall on failed: .*cfs-lock timeout/,
  );
  assert.deepEqual(fw.rules.map((r) => r.dport), ["443", "80", "8080"]);
  assert.equal(fw.options.enable ?? 0, 0);

  // A failure before any write is PVE's error as it is.
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve1/qemu/100/firewall/rules",
    fault: { kind: "status", status: 500, message: "cfs-lock timeout" },
  });
  const none = await call(s.client, "proxmox_add_firewall_rule", {
    ...rule,
    dport: "9090",
  });
  assert.ok(none.isError);
  assert.match(none.text, /^Proxmox answered 500 to POST .*cfs-lock timeout/);
});

Deno.test("a firewall write whose answer never came is sent once and reported as maybe applied, pointing at the rules", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve1/qemu/100/firewall/rules",
    fault: { kind: "reset" },
  });
  const r = await call(s.client, "proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
  });
  assert.ok(r.isError);
  assert.match(
    r.text,
    /^Firewall of guest 100: adding the rule may or may not have been applied: The connection to Proxmox dropped before it answered .*; the request may have been applied\. Check with proxmox_list_firewall_rules/,
  );
  assert.doesNotMatch(r.text, /recent tasks/);
  assert.equal(
    sim.requests.filter((q) =>
      q.method === "POST" && q.path.endsWith("/firewall/rules")
    ).length,
    1,
    "sent exactly once",
  );
});

/**
 * PVE releases: /version is read once per client, lazily, and the guest and
 * firewall tools send each release only what its schema takes (startSim
 * asserts 0 schema violations when it closes).
 */
import assert from "node:assert/strict";
import { quirksFor, RELEASES } from "../src/proxmox/quirks.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";

const enc = new TextEncoder();

const fileReads = (sim: { requests: { path: string }[] }) =>
  sim.requests.filter((q) => q.path.endsWith("/agent/file-read")) as {
    path: string;
    params: Record<string, unknown>;
  }[];

Deno.test("quirks come from one table keyed by release; unknown text gets what works everywhere", () => {
  assert.equal(quirksFor("9.1").fileReadWindow, true);
  assert.equal(quirksFor("9.0").fileReadWindow, true);
  assert.equal(quirksFor("10.2").fileReadWindow, true);
  assert.equal(quirksFor("8.4").fileReadWindow, false);
  assert.equal(quirksFor("8.4.1").release, "8.4");
  assert.equal(quirksFor("8.4").agentExecPrivilege, "VM.Monitor");
  assert.equal(
    quirksFor("9.1").agentExecPrivilege,
    "VM.GuestAgent.Unrestricted",
  );
  // Older than 8.0 and unreadable: the oldest row, which every release takes.
  assert.equal(quirksFor("7.4").fileReadWindow, false);
  assert.deepEqual(
    { ...quirksFor("garbage"), release: "" },
    { ...RELEASES.at(-1)!.quirks, release: "" },
  );
});

Deno.test("on PVE 8.4 read_file_vm sends no count or decode, reads PVE's decoded content and cuts at max_bytes itself", async () => {
  await using sim = await startSim({ pveVersion: "8.4" });
  await using s = await connect({ env: simEnv(sim) });
  const os = sim.cluster.guests.get(101)!.guestOs!;
  // Text that is also valid base64 must not be decoded a second time.
  os.files.set("/root/abcd.txt", enc.encode("abcd"));
  const text = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/root/abcd.txt",
  });
  assert.deepEqual(text, {
    vmid: 101,
    path: "/root/abcd.txt",
    encoding: "utf-8",
    content: "abcd",
    size: 4,
    truncated: false,
    untrusted: ["content"],
  });
  const bin = new Uint8Array([0, 1, 2, 0x80, 0xfe, 0xff, 0x0a]);
  os.files.set("/tmp/blob.bin", bin);
  const b = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/tmp/blob.bin",
  });
  assert.equal(b.encoding, "base64");
  assert.equal(b.content, btoa(String.fromCharCode(...bin)));
  const part = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/etc/os-release",
    max_bytes: 10,
  });
  assert.equal(part.content, "PRETTY_NAM");
  assert.equal(part.size, 10);
  assert.equal(part.truncated, true);
  for (const q of fileReads(sim)) {
    assert.deepEqual(Object.keys(q.params).sort(), ["file", "node", "vmid"]);
  }
  // The release was read once, by the first call that needed it.
  assert.equal(sim.requests.filter((q) => q.path === "/version").length, 1);
});

Deno.test("on PVE 9.1 read_file_vm asks PVE for max_bytes only, base64-encoded", async () => {
  await using sim = await startSim({ pveVersion: "9.1" });
  await using s = await connect({ env: simEnv(sim) });
  await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/etc/os-release",
    max_bytes: 10,
  });
  const q = fileReads(sim).at(-1)!;
  assert.equal(q.params.count, "10");
  assert.equal(q.params.decode, "0");
});

Deno.test("every guest and firewall tool works on PVE 8.4 with 0 schema violations", async () => {
  await using sim = await startSim({ pveVersion: "8.4" });
  await using s = await connect({ env: simEnv(sim) });
  const r = await callOk(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: "echo hi",
  });
  assert.equal(r.stdout, "hi\n");
  await callOk(s.client, "proxmox_write_file_vm", {
    vmid: 100,
    path: "/root/x.txt",
    content: "x\n",
  });
  assert.equal(
    (await callOk(s.client, "proxmox_read_file_vm", {
      vmid: 100,
      path: "/root/x.txt",
    })).content,
    "x\n",
  );
  const inst = await callOk(s.client, "proxmox_install_software", {
    vmid: 100,
    software: "nginx",
  });
  assert.equal(inst.status, "ok");
  assert.equal(inst.distro, "Debian GNU/Linux 12 (bookworm)");
  const rule = await callOk(s.client, "proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
    position: 0,
    enable_firewall: true,
  });
  assert.equal(rule.firewall_enabled, true);
  const list = await callOk(s.client, "proxmox_list_firewall_rules", {
    vmid: 100,
  });
  assert.equal(list.rules.length, 1);
  sim.assertNoViolations();
  assert.equal(sim.requests.filter((q) => q.path === "/version").length, 1);
});

Deno.test("a 403 from the agent names the privilege of the running release (VM.Monitor on 8.4, VM.GuestAgent.Unrestricted on 9.1)", async () => {
  for (
    const [version, privilege] of [
      ["8.4", "VM.Monitor"],
      ["9.1", "VM.GuestAgent.Unrestricted"],
    ] as const
  ) {
    await using sim = await startSim({ pveVersion: version });
    await using s = await connect({ env: simEnv(sim) });
    sim.faults.inject({
      method: "POST",
      path: "/nodes/pve1/qemu/100/agent/exec",
      fault: {
        kind: "status",
        status: 403,
        message: `Permission check failed (/vms/100, ${privilege})`,
      },
    });
    const r = await call(s.client, "proxmox_execute_command", {
      vmid: 100,
      command: ["true"],
    });
    assert.ok(r.isError);
    assert.ok(
      r.text.includes(
        `the guest agent needs ${privilege} (Proxmox VE ${version}) on /vms/100`,
      ),
      r.text,
    );
  }
});

Deno.test("an unreadable /version is not cached: the call goes on with what works on every release, the next call reads it again", async () => {
  await using sim = await startSim({ pveVersion: "9.1" });
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "GET",
    path: "/version",
    fault: { kind: "status", status: 500, message: "Internal Server Error" },
  });
  const first = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/etc/os-release",
    max_bytes: 10,
  });
  assert.equal(first.content, "PRETTY_NAM");
  assert.equal(first.truncated, true);
  assert.equal(fileReads(sim).at(-1)!.params.count, undefined);
  await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/etc/os-release",
    max_bytes: 10,
  });
  assert.equal(fileReads(sim).at(-1)!.params.count, "10");
  assert.equal(sim.requests.filter((q) => q.path === "/version").length, 2);
  assert.match(s.stderr(), /Cannot read the Proxmox VE version/);
});

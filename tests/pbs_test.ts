/**
 * Proxmox Backup Server storages through the tools, end to end against the simulator's `pbs`
 * storage (shared, content backup; volids `pbs:backup/vm/105/2026-11-20T03:00:00Z`): backups
 * are made, listed and restored like local ones through PVE's storage API.
 */
import assert from "node:assert/strict";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";

const PBS_VOLID =
  /^pbs:backup\/(vm|ct)\/(\d+)\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

interface Listed {
  volid: string;
  vmid?: number;
  type?: string;
  size_mib: number;
  time?: string;
  notes?: string;
  storage: string;
  node?: string;
}

Deno.test("create_backup to pbs: vzdump gets storage pbs, the snapshot's volid comes back and list_backups shows it once, with its guest, time and notes, on no node", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const b = await callOk(s.client, "proxmox_create_backup", {
    vmid: 101,
    storage: "pbs",
    notes: "before the upgrade",
  });
  assert.equal(b.status, "ok");
  assert.equal(b.storage, "pbs");
  assert.match(b.volid, PBS_VOLID);
  assert.match(b.volid, /^pbs:backup\/vm\/101\//);
  const vzdump = sim.requests.find((r) =>
    r.method === "POST" && r.path === "/nodes/{node}/vzdump"
  )!;
  assert.equal(vzdump.params.storage, "pbs");
  assert.equal(String(vzdump.params.vmid), "101");
  assert.ok(
    !sim.requests.some((r) =>
      r.path === "/nodes/{node}/storage/{storage}/content"
    ),
    "the volid came from the task log's 'creating Proxmox Backup Server archive' line",
  );

  const all = await callOk(s.client, "proxmox_list_backups", {});
  const mine = all.backups.filter((x: Listed) => x.volid === b.volid);
  assert.equal(mine.length, 1, "a shared storage is listed once");
  assert.deepEqual(
    [mine[0].vmid, mine[0].type, mine[0].storage, mine[0].node],
    [101, "qemu", "pbs", undefined],
  );
  assert.equal(mine[0].notes, "before the upgrade");
  assert.ok(mine[0].size_mib > 0);
  // The snapshot's time is in its volid; the listing says the same instant.
  const stamp = b.volid.split("/").pop();
  assert.equal(
    new Date(mine[0].time).toISOString(),
    new Date(stamp).toISOString(),
  );
  assert.equal(all.backups[0].volid, b.volid, "newest first");
});

Deno.test("create_backup to pbs names the snapshot from the storage when the task log cannot be read", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "GET",
    path: /\/tasks\/[^/]+\/log$/,
    times: Infinity,
    fault: { kind: "status", status: 500, message: "log read broke" },
  });
  const b = await callOk(s.client, "proxmox_create_backup", {
    vmid: 105,
    storage: "pbs",
  });
  // VM 105 has a seeded snapshot on pbs too: the new one is the newest.
  assert.match(b.volid, /^pbs:backup\/vm\/105\//);
  assert.notEqual(b.volid, "pbs:backup/vm/105/2026-11-20T03:00:00Z");
  assert.ok(sim.cluster.volumes.some((v) => v.volid === b.volid));
});

Deno.test("list_backups on pbs: filtered by storage and by vmid, PBS volids parsed into guest and type", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const onPbs = await callOk(s.client, "proxmox_list_backups", {
    storage: "pbs",
  });
  assert.deepEqual(
    onPbs.backups.map((b: Listed) => [b.volid, b.vmid, b.type, b.node]).sort(),
    [
      ["pbs:backup/ct/200/2026-11-20T03:00:00Z", 200, "lxc", undefined],
      ["pbs:backup/vm/105/2026-11-20T03:00:00Z", 105, "qemu", undefined],
    ],
  );
  const of200 = await callOk(s.client, "proxmox_list_backups", {
    vmid: 200,
  });
  assert.ok(of200.backups.length >= 1);
  assert.ok(of200.backups.every((b: Listed) => b.vmid === 200));
  assert.ok(
    of200.backups.some((b: Listed) =>
      b.volid === "pbs:backup/ct/200/2026-11-20T03:00:00Z"
    ),
  );
});

Deno.test("restore_backup from pbs: a VM snapshot as a new VM (archive=<volid>) with the backed-up config, a CT snapshot onto a given storage (ostemplate + restore)", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const vm = await callOk(s.client, "proxmox_restore_backup", {
    volid: "pbs:backup/vm/105/2026-11-20T03:00:00Z",
    vmid: 905,
  });
  assert.deepEqual([vm.status, vm.type, vm.vmid], ["ok", "qemu", 905]);
  const post = sim.requests.find((r) =>
    r.method === "POST" && r.path === "/nodes/{node}/qemu"
  )!;
  assert.equal(post.params.archive, "pbs:backup/vm/105/2026-11-20T03:00:00Z");
  const restored = sim.cluster.guests.get(905)!;
  assert.equal(restored.type, "qemu");
  assert.equal(restored.config.name, sim.cluster.guests.get(105)!.config.name);

  const ct = await callOk(s.client, "proxmox_restore_backup", {
    volid: "pbs:backup/ct/200/2026-11-20T03:00:00Z",
    vmid: 920,
    storage: "local-lvm",
  });
  assert.deepEqual([ct.status, ct.type, ct.vmid], ["ok", "lxc", 920]);
  const lxc = sim.requests.find((r) =>
    r.method === "POST" && r.path === "/nodes/{node}/lxc"
  )!;
  assert.equal(lxc.params.ostemplate, "pbs:backup/ct/200/2026-11-20T03:00:00Z");
  assert.equal(String(lxc.params.restore), "1");
  assert.equal(lxc.params.storage, "local-lvm");
  assert.equal(sim.cluster.guests.get(920)!.type, "lxc");
});

Deno.test("restore_backup of a PBS snapshot that does not exist returns isError with PVE's refusal and makes no guest", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const r = await call(s.client, "proxmox_restore_backup", {
    volid: "pbs:backup/vm/105/2030-01-01T00:00:00Z",
    vmid: 906,
  });
  assert.ok(r.isError, r.text);
  assert.match(r.text, /2030-01-01T00:00:00Z/);
  assert.ok(!sim.cluster.guests.has(906));
});

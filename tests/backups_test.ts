/** e2e: backup, backup listing and restore tools over stdio. */
import assert from "node:assert/strict";
import type { ConfigValue } from "../src/sim/state.ts";
import type { TestSim } from "./helpers.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";

/** The config minus disks (renamed on restore) and the snapshot parent. */
function comparable(
  config: Record<string, ConfigValue>,
): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = {};
  for (const [k, v] of Object.entries(config)) {
    if (/^(scsi|virtio|sata|ide)\d+$|^rootfs$|^parent$/.test(k)) continue;
    out[k] = v;
  }
  return out;
}

/** A raw API call to the simulator with the API token. */
async function api(
  sim: TestSim,
  method: string,
  path: string,
  body?: Record<string, string>,
): Promise<{ status: number; json: { data: unknown; message?: string } }> {
  const res = await fetch(`${sim.url}/api2/json${path}`, {
    method,
    headers: {
      Authorization:
        `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: body ? new URLSearchParams(body).toString() : undefined,
  });
  return { status: res.status, json: await res.json() };
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(check(), what);
}

Deno.test("VM backup → list → restore to a new vmid: PVE archive name, notes, usage grows, restored VM has the original's config", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const usedOf = async () =>
    (await callOk(s.client, "proxmox_list_storage", { node: "pve1" }))
      .storages.find((x: { storage: string }) => x.storage === "local")
      .used_gib;
  const usedBefore = await usedOf();

  const progress: string[] = [];
  const r = await call(s.client, "proxmox_create_backup", {
    vmid: 100,
    notes: "before upgrade\nby {{node}}",
  }, { onprogress: (p) => progress.push(p.message ?? "") });
  assert.ok(!r.isError, r.text);
  const b = r.data;
  assert.equal(b.status, "ok");
  assert.equal(b.storage, "local", "first storage with content backup on pve1");
  assert.match(b.upid, /^UPID:pve1:.*:vzdump:100:/);
  const [store, path] = b.volid.split(":");
  assert.equal(store, "local");
  assert.match(
    path,
    /^backup\/vzdump-qemu-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.vma\.zst$/,
  );
  assert.ok(progress.length > 0, "progress while vzdump runs");

  const vol = sim.cluster.volumes.find((v) => v.volid === b.volid)!;
  assert.equal(vol.notes, "before upgrade\nby pve1", "notes-template rendered");
  assert.equal(vol.format, "vma.zst");
  assert.match(
    vol.log!,
    /creating vzdump archive '\/var\/lib\/vz\/dump\/vzdump-qemu-100-/,
  );
  const req = sim.requests.find((x) => x.path === "/nodes/{node}/vzdump")!;
  assert.equal(req.params.vmid, "100", "vmid sent as a pve-vmid-list string");
  assert.equal(req.params.compress, "zstd");
  assert.equal(req.params.mode, "snapshot");
  assert.equal(sim.cluster.guests.get(100)!.lock, undefined);
  assert.ok(await usedOf() > usedBefore, "storage usage grows by the archive");

  const mine = await callOk(s.client, "proxmox_list_backups", { vmid: 100 });
  assert.equal(mine.count, 1);
  assert.deepEqual(
    {
      volid: mine.backups[0].volid,
      vmid: mine.backups[0].vmid,
      type: mine.backups[0].type,
      notes: mine.backups[0].notes,
      protected: mine.backups[0].protected,
      node: mine.backups[0].node,
    },
    {
      volid: b.volid,
      vmid: 100,
      type: "qemu",
      notes: "before upgrade\nby pve1",
      protected: false,
      node: "pve1",
    },
  );
  const all = await callOk(s.client, "proxmox_list_backups", {});
  assert.deepEqual(
    all.backups.map((x: { vmid: number }) => x.vmid),
    [100, 101],
    "newest first",
  );
  assert.ok(all.backups[0].size_mib > 0);

  const restored = await callOk(s.client, "proxmox_restore_backup", {
    volid: b.volid,
  });
  assert.equal(restored.status, "ok");
  assert.equal(restored.vmid, 107, "the next free vmid");
  assert.equal(restored.node, "pve1");
  assert.equal(restored.type, "qemu");
  assert.match(restored.upid, /:qmrestore:107:/);
  const orig = sim.cluster.guests.get(100)!;
  const copy = sim.cluster.guests.get(107)!;
  assert.equal(copy.type, "qemu");
  assert.equal(copy.status, "stopped");
  assert.equal(copy.lock, undefined);
  assert.deepEqual(comparable(copy.config), comparable(orig.config));
  assert.equal(
    copy.config.scsi0,
    "local-lvm:vm-107-disk-0,iothread=1,size=32G",
    "disk renamed for the new vmid",
  );
  assert.ok(
    sim.cluster.volumes.some((v) => v.volid === "local-lvm:vm-107-disk-0"),
  );
  const vms = await callOk(s.client, "proxmox_list_vms", {
    name_contains: "web-01",
  });
  assert.deepEqual(vms.rows.map((row: unknown[]) => row[0]), [100, 107]);
});

Deno.test("CT backup in stop mode → list → restore with start: the CT is back running, its copy runs with the original's config", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const b = await callOk(s.client, "proxmox_create_backup", {
    vmid: 200,
    storage: "nas-backup",
    mode: "stop",
    compress: "gzip",
  });
  assert.match(b.volid, /^nas-backup:backup\/vzdump-lxc-200-[\d_-]+\.tar\.gz$/);
  const ct = sim.cluster.guests.get(200)!;
  assert.equal(ct.status, "running", "stop mode restarts the CT afterwards");
  const task = sim.cluster.tasks.get(b.upid)!;
  assert.ok(task.log.includes("INFO: stopping virtual guest"));
  assert.ok(task.log.some((l) => l.includes("'/mnt/pve/nas-backup/dump/")));

  // A shared storage is listed once, without a node.
  const list = await callOk(s.client, "proxmox_list_backups", {
    storage: "nas-backup",
  });
  assert.equal(list.count, 1);
  assert.equal(list.backups[0].type, "lxc");
  assert.equal(list.backups[0].node, undefined);

  const r = await callOk(s.client, "proxmox_restore_backup", {
    volid: b.volid,
    vmid: 250,
    start: true,
  });
  assert.equal(r.type, "lxc");
  assert.match(r.upid, /:vzrestore:250:/);
  const copy = sim.cluster.guests.get(250)!;
  assert.equal(copy.type, "lxc");
  assert.equal(copy.node, "pve1");
  assert.equal(copy.status, "running");
  assert.deepEqual(comparable(copy.config), comparable(ct.config));
  assert.equal(copy.config.rootfs, "local-lvm:vm-250-disk-0,size=8G");
  const req = sim.requests.find((x) =>
    x.method === "POST" && x.path === "/nodes/{node}/lxc"
  )!;
  assert.equal(req.params.restore, "1");
  assert.equal(req.params.ostemplate, b.volid);
  assert.equal(
    req.params.storage,
    "local-lvm",
    "a storage that holds containers",
  );
});

Deno.test("restore refuses to overwrite without force, and a running guest even with force", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const seeded = "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst";

  const noForce = await call(s.client, "proxmox_restore_backup", {
    volid: seeded,
    vmid: 101,
  });
  assert.equal(noForce.isError, true);
  assert.match(
    noForce.text,
    /unable to restore VM 101 - VM 101 already exists on node 'pve1': pass force: true/,
  );
  const running = await call(s.client, "proxmox_restore_backup", {
    volid: seeded,
    vmid: 101,
    force: true,
  });
  assert.equal(running.isError, true);
  assert.match(
    running.text,
    /unable to restore VM 101 - vm is running: stop VM 101 first/,
  );
  assert.equal(sim.cluster.guests.get(101)!.status, "running", "untouched");
  assert.equal(sim.cluster.guests.get(101)!.lock, undefined);

  const missing = await call(s.client, "proxmox_restore_backup", {
    volid: "local:backup/vzdump-qemu-555-2026_01_01-00_00_00.vma.zst",
  });
  assert.equal(missing.isError, true);
  assert.match(
    missing.text,
    /is on no online node: take volids from proxmox_list_backups/,
  );
  const iso = await call(s.client, "proxmox_restore_backup", {
    volid: "local:iso/debian-12.7.0-amd64-netinst.iso",
  });
  assert.equal(iso.isError, true);
  assert.match(iso.text, /is not a vzdump backup archive/);

  const ctBackup = await callOk(s.client, "proxmox_create_backup", {
    vmid: 202,
    storage: "nas-backup",
  });
  const ctNoForce = await call(s.client, "proxmox_restore_backup", {
    volid: ctBackup.volid,
    vmid: 201,
  });
  assert.equal(ctNoForce.isError, true);
  assert.match(
    ctNoForce.text,
    /CT 201 already exists on node 'pve2': pass force/,
  );
  const ctRunning = await call(s.client, "proxmox_restore_backup", {
    volid: ctBackup.volid,
    vmid: 202,
    force: true,
  });
  assert.equal(ctRunning.isError, true);
  assert.match(
    ctRunning.text,
    /can't overwrite running container: stop CT 202 first/,
  );
});

Deno.test("restore with force overwrites a stopped guest with the backed-up config", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const vm = sim.cluster.guests.get(102)!;
  const before = structuredClone(vm.config);
  const b = await callOk(s.client, "proxmox_create_backup", {
    vmid: 102,
    storage: "nas-backup",
    compress: "none",
  });
  assert.match(b.volid, /vzdump-qemu-102-[\d_-]+\.vma$/);
  vm.config.cores = 16;
  vm.config.name = "changed";
  const r = await callOk(s.client, "proxmox_restore_backup", {
    volid: b.volid,
    vmid: 102,
    force: true,
  });
  assert.equal(r.node, "pve2");
  const now = sim.cluster.guests.get(102)!;
  assert.deepEqual(comparable(now.config), comparable(before));
  assert.equal(now.config.scsi0, before.scsi0);
});

Deno.test("a guest being backed up is locked: snapshots and a second backup are refused with PVE's message", async () => {
  await using sim = await startSim({ taskMs: 100 });
  await using s = await connect({ env: simEnv(sim) });
  const first = await callOk(s.client, "proxmox_create_backup", {
    vmid: 101,
    wait: false,
  });
  assert.equal(first.status, "running");
  const vm = sim.cluster.guests.get(101)!;
  await until("the backup locks VM 101", () => vm.lock === "backup");

  const snap = await call(s.client, "proxmox_create_snapshot", {
    vmid: 101,
    name: "during",
  });
  assert.equal(snap.isError, true);
  assert.match(snap.text, /VM is locked \(backup\)/);
  const second = await call(s.client, "proxmox_create_backup", { vmid: 101 });
  assert.equal(second.isError, true);
  assert.match(second.text, /job errors/);
  assert.match(
    second.text,
    /ERROR: Backup of VM 101 failed - VM is locked \(backup\)/,
  );

  await until("the lock is released", () => vm.lock === undefined);
  await until(
    "the first backup ends OK",
    () => sim.cluster.tasks.get(first.upid)!.exitstatus === "OK",
  );
  assert.equal(vm.snapshots.size, 0);
});

Deno.test("vzdump answers OK when no listed guest is on the node, and PVE's restore errors hold without the tool", async () => {
  await using sim = await startSim();
  const ok = await api(sim, "POST", "/nodes/pve1/vzdump", {
    vmid: "102",
    storage: "local",
  });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.data, "OK");
  assert.equal(sim.cluster.tasks.size, 0);

  const conflict = await api(sim, "POST", "/nodes/pve1/vzdump", {
    vmid: "100",
    all: "1",
  });
  assert.equal(conflict.status, 400);

  const exists = await api(sim, "POST", "/nodes/pve1/qemu", {
    vmid: "100",
    archive: "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst",
  });
  assert.equal(exists.status, 500);
  assert.equal(
    exists.json.message,
    "unable to restore VM 100 - VM 100 already exists on node 'pve1'\n",
  );
  const disk = await api(sim, "POST", "/nodes/pve1/qemu", {
    vmid: "120",
    archive: "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst",
    scsi0: "local-lvm:8",
  });
  assert.equal(disk.status, 400);
  assert.equal(sim.cluster.guests.has(120), false);
});

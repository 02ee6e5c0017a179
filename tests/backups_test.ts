/** e2e: backup, backup listing and restore tools over stdio. */
import { setTimeout as delay } from "node:timers/promises";
import assert from "node:assert/strict";
import { z } from "zod";
import type { ConfigValue } from "../sim/state.ts";
import { createBackup, restoreBackup } from "../src/tools/backups.ts";
import type { TestSim } from "./helpers.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { HOSTILE_SEGMENTS } from "./path_strings.ts";
import { cluster, holdNextTask, sideBySide } from "./tool_helpers.ts";

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
    await delay(10);
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
  assert.equal(mine.total, 1);
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
  assert.equal(list.total, 1);
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
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  // The first backup's work stops after it locks the VM, until released.
  using backup = holdNextTask(sim, "vzdump");
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
  assert.match(
    snap.text,
    /VM is locked \(backup\).*: VM 101 is busy with another task; try again when it ends/,
  );
  const second = await call(s.client, "proxmox_create_backup", { vmid: 101 });
  assert.equal(second.isError, true);
  assert.match(second.text, /job errors/);
  assert.match(
    second.text,
    /ERROR: Backup of VM 101 failed - VM is locked \(backup\)/,
  );

  backup.release();
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

Deno.test("a backup whose task log cannot be read finds its archive by listing; when that fails too, it says the backup is made and which step failed", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const log = {
    method: "GET",
    path: /\/tasks\/[^/]+\/log$/,
    times: Infinity,
    fault: { kind: "status", status: 500, message: "log read broke" },
  } as const;
  sim.faults.inject(log);
  const listed = await callOk(s.client, "proxmox_create_backup", { vmid: 100 });
  assert.equal(listed.status, "ok");
  assert.match(
    listed.volid,
    /^local:backup\/vzdump-qemu-100-[\d_-]+\.vma\.zst$/,
  );
  assert.ok(sim.cluster.volumes.some((v) => v.volid === listed.volid));

  sim.faults.inject({
    method: "GET",
    path: "/nodes/pve1/storage/local/content",
    times: Infinity,
    fault: { kind: "status", status: 500, message: "listing broke" },
  });
  const r = await call(s.client, "proxmox_create_backup", { vmid: 200 });
  assert.ok(!r.isError, r.text);
  assert.equal(r.data.status, "ok");
  assert.equal(r.data.volid, undefined);
  assert.match(
    r.data.note,
    /^Backed up CT 200 to 'local'; finding the archive's volid failed: .*listing broke.*\. See proxmox_list_backups$/,
  );
  assert.ok(
    sim.cluster.volumes.some((v) => /vzdump-lxc-200-/.test(v.volid)),
    "the archive exists",
  );
});

Deno.test("backups on Proxmox Backup Server: volids with ':' and '/' in the snapshot time are made, listed and restored as they are", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const b = await callOk(s.client, "proxmox_create_backup", {
    vmid: 100,
    storage: "pbs",
  });
  assert.match(
    b.volid,
    /^pbs:backup\/vm\/100\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
  );
  const list = await callOk(s.client, "proxmox_list_backups", {
    storage: "pbs",
  });
  const mine = list.backups.find((x: { volid: string }) => x.volid === b.volid);
  assert.deepEqual(
    [mine.vmid, mine.type, mine.node, mine.storage],
    [100, "qemu", undefined, "pbs"],
  );
  assert.ok(
    list.backups.some((x: { volid: string; type: string; vmid: number }) =>
      x.volid === "pbs:backup/ct/200/2026-11-20T03:00:00Z" &&
      x.type === "lxc" && x.vmid === 200
    ),
  );
  const vm = await callOk(s.client, "proxmox_restore_backup", {
    volid: b.volid,
  });
  assert.equal(vm.type, "qemu");
  assert.equal(vm.status, "ok");
  const ct = await callOk(s.client, "proxmox_restore_backup", {
    volid: "pbs:backup/ct/200/2026-11-20T03:00:00Z",
    vmid: 260,
  });
  assert.equal(ct.type, "lxc");
  assert.equal(sim.cluster.guests.get(260)!.type, "lxc");
  const req = sim.requests.find((x) =>
    x.method === "POST" && x.path === "/nodes/{node}/lxc"
  )!;
  assert.equal(req.params.ostemplate, "pbs:backup/ct/200/2026-11-20T03:00:00Z");
});

Deno.test("backup tools refuse storage ids, node names and volids that could change a path before any request", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const guests = [...sim.cluster.guests.keys()];
  sim.requests.length = 0;
  const volid = "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst";
  for (const bad of HOSTILE_SEGMENTS) {
    for (
      const [tool, args] of [
        ["proxmox_create_backup", { vmid: 100, storage: bad }],
        ["proxmox_create_backup", { vmid: 100, node: bad }],
        ["proxmox_list_backups", { storage: bad }],
        ["proxmox_list_backups", { node: bad }],
        ["proxmox_restore_backup", { volid: bad }],
        ["proxmox_restore_backup", { volid: `local:${bad}` }],
        ["proxmox_restore_backup", { volid: `${bad}:backup/x` }],
        ["proxmox_restore_backup", { volid, storage: bad }],
        ["proxmox_restore_backup", { volid, node: bad }],
      ] as const
    ) {
      const r = await call(s.client, tool, args);
      assert.equal(r.isError, true, `${tool} ${JSON.stringify(args)}`);
      // A volume part without a parent reference ('local:/') is a volid,
      // only not an archive.
      assert.match(
        r.text,
        /Input validation error|is not a vzdump backup archive/,
      );
    }
  }
  assert.deepEqual(sim.requests.map((r) => `${r.method} ${r.path}`), []);
  assert.deepEqual([...sim.cluster.guests.keys()], guests);
});

sideBySide(
  "backups that wait (timeout_s, PROXMOX_TIMEOUT, a cancel), side by side",
  [
    {
      name:
        "a cancelled backup stops following its task at once; the vzdump task goes on in Proxmox",
      setup: () => cluster(),
      async run({ sim, s }) {
        sim.faults.task({ type: "vzdump", vmid: 100, endless: true });
        const polls = () =>
          sim.requests.filter((q) =>
            q.path === "/nodes/{node}/tasks/{upid}/status"
          )
            .length;
        const abort = new AbortController();
        const pending = s.client.callTool(
          { name: "proxmox_create_backup", arguments: { vmid: 100 } },
          { signal: abort.signal, timeout: 60_000 },
        );
        await until("polling the task", () => polls() >= 2);
        abort.abort();
        await assert.rejects(pending);
        await new Promise((res) => setTimeout(res, 300));
        const after = polls();
        await new Promise((res) => setTimeout(res, 1000));
        assert.equal(polls(), after, "no poll after the cancel");
        const task = [...sim.cluster.tasks.values()].find((t) =>
          t.type === "vzdump"
        )!;
        assert.equal(task.status, "running", "the task itself is not stopped");
      },
    },
    {
      name:
        "backup and restore wait at most 45 s by default, then answer running with the UPID and the storage; progress goes on while waiting",
      setup: () => cluster(),
      async run({ sim, s }) {
        assert.equal(
          z.object(createBackup.input).parse({ vmid: 100 }).timeout_s,
          45,
        );
        assert.equal(
          z.object(restoreBackup.input).parse({ volid: "local:backup/x" })
            .timeout_s,
          45,
        );
        sim.faults.task({ type: "vzdump", vmid: 101, endless: true });
        const progress: string[] = [];
        const r = await call(s.client, "proxmox_create_backup", {
          vmid: 101,
          timeout_s: 2,
        }, { onprogress: (p) => progress.push(p.message ?? "") });
        assert.ok(!r.isError, r.text);
        assert.equal(r.data.status, "running");
        assert.equal(r.data.storage, "local");
        assert.equal(r.data.volid, undefined);
        assert.match(r.data.upid, /:vzdump:101:/);
        assert.match(
          r.data.note,
          /follow it with proxmox_get_task; once it ends, the archive shows in proxmox_list_backups$/,
        );
        assert.ok(
          progress.length >= 2,
          `progress while waiting: ${progress.length}`,
        );
        assert.match(progress.at(-1)!, /back up VM 101: running/);
      },
    },
    {
      name:
        "a backup or restore request whose answer never comes is sent once and reported as possibly applied, with where to look",
      setup: () => cluster({}, { PROXMOX_TIMEOUT: "1" }),
      async run({ sim, s }) {
        sim.faults.inject({
          method: "POST",
          path: "/nodes/pve1/vzdump",
          fault: { kind: "hang", apply: true },
        });
        const b = await call(s.client, "proxmox_create_backup", { vmid: 100 });
        assert.equal(b.isError, true);
        assert.match(b.text, /the request may have been applied/);
        assert.match(
          b.text,
          /Whether it was applied: a new archive of VM 100 in proxmox_list_backups/,
        );
        sim.faults.inject({
          method: "POST",
          path: "/nodes/pve1/qemu",
          fault: { kind: "hang", apply: true },
        });
        const r = await call(s.client, "proxmox_restore_backup", {
          volid: "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst",
          vmid: 150,
        });
        assert.equal(r.isError, true);
        assert.match(
          r.text,
          /Whether it was applied: VM 150 in proxmox_list_vms/,
        );
        const posts = sim.requests.filter((x) =>
          x.method === "POST" && x.path !== "/access/ticket"
        ).map((x) => x.path);
        assert.deepEqual(posts, ["/nodes/{node}/vzdump", "/nodes/{node}/qemu"]);
        await until("the restore goes on", () => sim.cluster.guests.has(150));
      },
    },
  ],
);

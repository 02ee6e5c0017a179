/** e2e: snapshot tools over stdio against the simulator. */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  createSnapshot,
  deleteSnapshot,
  rollbackSnapshot,
} from "../src/tools/snapshots.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { HOSTILE_SEGMENTS } from "./path_strings.ts";
import { cluster, holdNextTask, sideBySide } from "./tool_helpers.ts";

/** Strings that change a path when put into one unchecked. */

Deno.test("snapshot create → list → rollback → delete on a running VM: tree order, RAM snapshot restarts it", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const vm = sim.cluster.guests.get(100)!;

  const progress: string[] = [];
  const r = await call(s.client, "proxmox_create_snapshot", {
    vmid: 100,
    name: "before-upgrade",
    description: "Before the kernel upgrade",
    vmstate: true,
  }, { onprogress: (p) => progress.push(p.message ?? "") });
  assert.ok(!r.isError, r.text);
  assert.equal(r.data.status, "ok");
  assert.match(
    r.data.upid,
    /^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:qmsnapshot:100:/,
  );
  assert.ok(progress.length > 0, "progress notifications while the task runs");
  const snap = vm.snapshots.get("before-upgrade")!;
  assert.equal(snap.vmstate, 1);
  assert.equal(snap.description, "Before the kernel upgrade");
  assert.equal(vm.config.parent, "before-upgrade");
  assert.equal(vm.lock, undefined, "lock released after the task");

  // The guest changes, then a second snapshot without RAM.
  vm.config.memory = "8192";
  await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 100,
    name: "after",
  });
  assert.equal(vm.snapshots.get("after")!.vmstate, 0);
  assert.equal(vm.snapshots.get("after")!.parent, "before-upgrade");

  const list = await callOk(s.client, "proxmox_list_snapshots", { vmid: 100 });
  assert.equal(list.total, 2);
  assert.deepEqual(
    list.snapshots.map((
      x: { name: string; depth: number },
    ) => [x.name, x.depth]),
    [["before-upgrade", 0], ["after", 1], ["current", 2]],
  );
  const [first, , current] = list.snapshots;
  assert.equal(first.vmstate, true);
  assert.equal(first.description, "Before the kernel upgrade");
  assert.match(first.time, /^\d{4}-\d\d-\d\dT/);
  assert.equal(current.current, true);
  assert.equal(current.parent, "after");
  assert.equal(current.running, true);

  // Rollback to the RAM snapshot: stopped first, then resumed from the state.
  const rb = await callOk(s.client, "proxmox_rollback_snapshot", {
    vmid: 100,
    name: "before-upgrade",
  });
  assert.equal(rb.status, "ok");
  assert.equal(rb.guest_status, "running");
  assert.equal(rb.started, true);
  assert.equal(vm.config.memory, "4096", "config from the snapshot");
  assert.equal(vm.config.parent, "before-upgrade");
  assert.equal(vm.status, "running");
  const rbTask = [...sim.cluster.tasks.values()].find((t) =>
    t.type === "qmrollback"
  )!;
  assert.ok(rbTask.log.some((l) => l.startsWith("stopping VM 100")));

  // Rollback to a snapshot without RAM leaves the VM stopped, and says so.
  const rb2 = await callOk(s.client, "proxmox_rollback_snapshot", {
    vmid: 100,
    name: "after",
  });
  assert.equal(rb2.guest_status, "stopped");
  assert.equal(rb2.started, false);
  assert.match(rb2.note, /was running and is now stopped/);
  assert.equal(vm.status, "stopped");
  assert.equal(vm.config.memory, "8192");

  // Deleting a snapshot re-parents its children and the current state.
  await callOk(s.client, "proxmox_delete_snapshot", {
    vmid: 100,
    name: "before-upgrade",
  });
  assert.equal(vm.snapshots.has("before-upgrade"), false);
  assert.equal(vm.snapshots.get("after")!.parent, undefined);
  await callOk(s.client, "proxmox_delete_snapshot", {
    vmid: 100,
    name: "after",
  });
  assert.equal(vm.config.parent, undefined);
  const empty = await callOk(s.client, "proxmox_list_snapshots", { vmid: 100 });
  assert.equal(empty.total, 0);
  assert.deepEqual(
    empty.snapshots.map((x: { name: string }) => x.name),
    ["current"],
  );
  assert.deepEqual(
    [...sim.cluster.tasks.values()].map((t) => t.type).filter((t) =>
      t.startsWith("qm")
    ),
    [
      "qmsnapshot",
      "qmsnapshot",
      "qmrollback",
      "qmrollback",
      "qmdelsnapshot",
      "qmdelsnapshot",
    ],
  );
});

Deno.test("snapshot create → list → rollback → delete on a container: no vmstate, start: true starts it again", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const ct = sim.cluster.guests.get(200)!;

  const noRam = await call(s.client, "proxmox_create_snapshot", {
    vmid: 200,
    name: "base",
    vmstate: true,
  });
  assert.equal(noRam.isError, true);
  assert.match(noRam.text, /Containers have no RAM snapshots/);

  await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 200,
    name: "base",
    description: "clean install",
  });
  assert.equal(ct.snapshots.get("base")!.vmstate, 0);
  const list = await callOk(s.client, "proxmox_list_snapshots", { vmid: 200 });
  assert.equal(list.type, "lxc");
  assert.equal(list.snapshots[0].name, "base");
  assert.equal(list.snapshots[0].vmstate, undefined, "LXC lists no vmstate");
  assert.equal(list.snapshots[1].name, "current");

  ct.config.memory = 1024;
  const rb = await callOk(s.client, "proxmox_rollback_snapshot", {
    vmid: 200,
    name: "base",
    start: true,
  });
  assert.equal(rb.started, true);
  assert.equal(rb.guest_status, "running");
  assert.equal(ct.config.memory, 512);
  assert.equal(ct.status, "running");
  const task = [...sim.cluster.tasks.values()].find((t) =>
    t.type === "vzrollback"
  )!;
  assert.ok(
    task.log.includes("stopping CT 200"),
    "a running CT is stopped first",
  );

  await callOk(s.client, "proxmox_delete_snapshot", {
    vmid: 200,
    name: "base",
  });
  assert.equal(ct.snapshots.size, 0);
  assert.ok(
    [...sim.cluster.tasks.values()].some((t) => t.type === "vzdelsnapshot"),
  );
});

Deno.test("snapshot names are checked as PVE does before any request; 'current' is refused clearly", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const refused = async (
    tool: string,
    args: Record<string, unknown>,
    re: RegExp,
  ) => {
    const r = await call(s.client, tool, args);
    assert.equal(r.isError, true, `${tool} ${JSON.stringify(args)}`);
    assert.match(r.text, re);
  };
  await refused(
    "proxmox_create_snapshot",
    { vmid: 100, name: "current" },
    /reserved for VMs/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 100, name: "Pending" },
    /reserved/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 200, name: "vzdump" },
    /reserved for containers/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 100, name: "a" },
    /name: Not a valid snapname/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 100, name: "1st" },
    /starting with a letter/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 100, name: "x".repeat(41) },
    /name: Too big: expected string to have <=40 characters/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 100, name: "with space" },
    /Invalid/,
  );
  assert.equal(
    sim.requests.filter((r) => r.path.endsWith("/snapshot")).length,
    0,
    "nothing reached Proxmox",
  );
  // PVE reserves 'pending' for QEMU only, and 'vzdump' for LXC only.
  await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 200,
    name: "pending",
  });
  await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 100,
    name: "vzdump",
  });

  await refused(
    "proxmox_delete_snapshot",
    { vmid: 100, name: "current" },
    /'current' is not a snapshot but the present state of VM 100, so it cannot be deleted/,
  );
  await refused(
    "proxmox_rollback_snapshot",
    { vmid: 200, name: "current" },
    /present state of CT 200/,
  );
  assert.equal(sim.requests.filter((r) => r.method === "DELETE").length, 0);

  // Errors PVE finds in the task come back with its words.
  await refused(
    "proxmox_rollback_snapshot",
    { vmid: 100, name: "nope" },
    /snapshot 'nope' does not exist: name one of VM 100's snapshots from proxmox_list_snapshots/,
  );
  await refused(
    "proxmox_delete_snapshot",
    { vmid: 200, name: "nope" },
    /snapshot 'nope' does not exist: name one of CT 200's snapshots/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 100, name: "vzdump" },
    /snapshot name 'vzdump' already used/,
  );
  await refused(
    "proxmox_create_snapshot",
    { vmid: 9000, name: "t1" },
    /you can't take a snapshot if it's a template/,
  );
});

Deno.test("the simulator refuses reserved names itself, and snapshots on storage without the feature", async () => {
  await using sim = await startSim();
  // Straight to the API: the tools never send a reserved name.
  const res = await fetch(`${sim.url}/api2/json/nodes/pve1/lxc/200/snapshot`, {
    method: "POST",
    headers: {
      Authorization:
        `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: "snapname=vzdump",
  });
  assert.equal(res.status, 500);
  assert.equal(
    (await res.json()).message,
    "unable to use snapshot name 'vzdump' (reserved name)\n",
  );

  await using s = await connect({ env: simEnv(sim) });
  // A raw volume on directory storage cannot be snapshotted.
  sim.cluster.guests.get(201)!.config.rootfs =
    "local:201/vm-201-disk-0.raw,size=8G";
  const r = await call(s.client, "proxmox_create_snapshot", {
    vmid: 201,
    name: "s1",
  });
  assert.equal(r.isError, true);
  assert.match(r.text, /Task failed: .*snapshot feature is not available/);
  assert.equal(sim.cluster.guests.get(201)!.snapshots.size, 0);
  assert.equal(sim.cluster.guests.get(201)!.lock, undefined);
});

Deno.test("wait: false returns the running task's UPID at once", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  // The snapshot's work waits until the test is done.
  using _held = holdNextTask(sim, "qmsnapshot");
  const r = await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 101,
    name: "quick",
    wait: false,
  });
  assert.equal(r.status, "running");
  assert.match(r.upid, /:qmsnapshot:101:/);
  assert.equal(sim.cluster.tasks.get(r.upid)!.status, "running");
});

Deno.test("delete and rollback with '..' or any path-changing name reach no snapshot endpoint, and every guest survives", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 100,
    name: "keep",
  });
  const guests = [...sim.cluster.guests.keys()];
  sim.requests.length = 0;
  for (
    const tool of [
      "proxmox_delete_snapshot",
      "proxmox_rollback_snapshot",
      "proxmox_create_snapshot",
    ]
  ) {
    for (const vmid of [100, 200]) {
      for (const name of HOSTILE_SEGMENTS) {
        const r = await call(s.client, tool, { vmid, name });
        assert.equal(r.isError, true, `${tool} ${JSON.stringify(name)}`);
        assert.match(r.text, /name: Not a valid snapname/);
      }
      for (const node of HOSTILE_SEGMENTS) {
        const r = await call(s.client, tool, { vmid, name: "keep", node });
        assert.equal(r.isError, true, `${tool} node ${JSON.stringify(node)}`);
      }
    }
  }
  for (const node of HOSTILE_SEGMENTS) {
    const r = await call(s.client, "proxmox_list_snapshots", {
      vmid: 100,
      node,
    });
    assert.equal(r.isError, true);
  }
  assert.deepEqual(
    sim.requests.map((r) => `${r.method} ${r.path}`),
    [],
    "refused before any request",
  );
  assert.deepEqual([...sim.cluster.guests.keys()], guests, "no guest is gone");
  assert.ok(sim.cluster.guests.get(100)!.snapshots.has("keep"));
});

Deno.test("rollback that succeeded but whose status read fails says the rollback is done and which step failed", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 100,
    name: "base",
  });
  sim.faults.inject({
    method: "GET",
    path: /\/qemu\/100\/status\/current$/,
    times: Infinity,
    fault: { kind: "status", status: 500, message: "status read broke" },
  });
  const r = await call(s.client, "proxmox_rollback_snapshot", {
    vmid: 100,
    name: "base",
  });
  assert.ok(!r.isError, r.text);
  assert.equal(r.data.status, "ok");
  assert.equal(r.data.guest_status, undefined);
  assert.match(
    r.data.note,
    /^Rolled back VM 100 to 'base'; reading its status afterwards failed: .*status read broke/,
  );
  assert.ok(
    [...sim.cluster.tasks.values()].some((t) =>
      t.type === "qmrollback" && t.exitstatus === "OK"
    ),
  );
});

sideBySide(
  "snapshot calls that wait (timeout_s, PROXMOX_TIMEOUT), side by side",
  [
    {
      name:
        "snapshot task tools wait at most 45 s by default, then answer running with the UPID and how to follow it; progress goes on while waiting",
      setup: () => cluster(),
      async run({ sim, s }) {
        for (const tool of [createSnapshot, rollbackSnapshot, deleteSnapshot]) {
          const args = z.object(tool.input).parse({ vmid: 100, name: "s1" });
          assert.equal(args.timeout_s, 45, tool.name);
        }
        sim.faults.task({ type: "qmsnapshot", vmid: 101, endless: true });
        const progress: string[] = [];
        const started = Date.now();
        const r = await call(s.client, "proxmox_create_snapshot", {
          vmid: 101,
          name: "slow",
          timeout_s: 2,
        }, { onprogress: (p) => progress.push(p.message ?? "") });
        assert.ok(!r.isError, r.text);
        assert.equal(r.data.status, "running");
        assert.match(r.data.upid, /:qmsnapshot:101:/);
        assert.match(
          r.data.note,
          /Still running after \d+(\.\d)? s; follow it with proxmox_get_task/,
        );
        assert.ok(
          Date.now() - started < 10_000,
          "answered soon after timeout_s",
        );
        assert.ok(
          progress.length >= 2,
          `progress while waiting: ${progress.length}`,
        );
        assert.match(progress.at(-1)!, /snapshot VM 101 as 'slow': running/);
        assert.equal(sim.cluster.tasks.get(r.data.upid)!.status, "running");
      },
    },
    {
      name:
        "a snapshot request whose answer never comes is sent once, reported as possibly applied, with where to look",
      setup: () => cluster({}, { PROXMOX_TIMEOUT: "1" }),
      async run({ sim, s }) {
        sim.faults.inject({
          method: "POST",
          path: "/nodes/pve1/qemu/100/snapshot",
          fault: { kind: "hang", apply: true },
        });
        const r = await call(s.client, "proxmox_create_snapshot", {
          vmid: 100,
          name: "maybe",
        });
        assert.equal(r.isError, true);
        assert.match(r.text, /the request may have been applied/);
        assert.match(r.text, /Whether it was applied: proxmox_list_snapshots/);
        assert.equal(
          sim.requests.filter((x) =>
            x.method === "POST" && x.path.endsWith("/snapshot")
          ).length,
          1,
          "never sent again",
        );
        const list = await callOk(s.client, "proxmox_list_snapshots", {
          vmid: 100,
        });
        assert.ok(
          list.snapshots.some((x: { name: string }) => x.name === "maybe"),
          "it was applied",
        );
      },
    },
  ],
);

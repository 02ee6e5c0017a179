/** e2e: start, stop, update, migrate, delete and get_task over stdio. */
import assert from "node:assert/strict";
import { PveClient } from "../src/proxmox/client.ts";
import { PveError } from "../src/proxmox/errors.ts";
import { waitForTask } from "../src/proxmox/tasks.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { cluster, holdNextTask, sideBySide } from "./tool_helpers.ts";

/** The UPID inside an isError result's JSON detail. */
function upidIn(text: string): string {
  const m = /"upid":"(UPID:[^"]+)"/.exec(text);
  assert.ok(m, `no UPID in: ${text}`);
  return m[1];
}

Deno.test("start_vm starts a stopped VM and container; an already running guest is a plain answer", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const vm = await callOk(s.client, "proxmox_start_vm", { vmid: 102 });
  assert.equal(vm.node, "pve2");
  assert.equal(vm.type, "qemu");
  assert.equal(vm.state, "running");
  assert.equal(vm.task.status, "ok");
  assert.match(
    vm.task.upid,
    /^UPID:pve2:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmstart:102:root@pam:$/,
  );
  assert.equal(sim.cluster.guests.get(102)!.status, "running");

  const ct = await callOk(s.client, "proxmox_start_vm", { vmid: 201 });
  assert.equal(ct.type, "lxc");
  assert.match(ct.task.upid, /:vzstart:201:/);
  assert.equal(sim.cluster.guests.get(201)!.status, "running");

  const starts = () =>
    sim.requests.filter((r) => r.path.endsWith("/status/start")).length;
  const before = starts();
  const again = await callOk(s.client, "proxmox_start_vm", { vmid: 100 });
  assert.equal(again.note, "Already running");
  assert.equal(again.task, undefined);
  const ctAgain = await callOk(s.client, "proxmox_start_vm", { vmid: 200 });
  assert.equal(ctAgain.note, "Already running");
  assert.equal(starts(), before, "no start request for a running guest");

  // A paused VM is resumed; a clean shutdown of it needs force.
  sim.cluster.guests.get(101)!.qmpstatus = "paused";
  const paused = await call(s.client, "proxmox_stop_vm", { vmid: 101 });
  assert.equal(paused.isError, true);
  assert.match(paused.text, /VM 101 \(db-01\) is paused.*force: true/);
  const resumed = await callOk(s.client, "proxmox_start_vm", { vmid: 101 });
  assert.match(resumed.task.upid, /:qmresume:101:/);
  assert.equal(sim.cluster.guests.get(101)!.qmpstatus, "running");

  const tpl = await call(s.client, "proxmox_start_vm", { vmid: 9000 });
  assert.equal(tpl.isError, true);
  assert.match(tpl.text, /VM 9000 \(debian-12-cloud\) is a template/);
});

Deno.test("stop_vm shuts down cleanly, answers plainly for a stopped guest, and force hard-stops a guest that ignores ACPI", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const r = await callOk(s.client, "proxmox_stop_vm", { vmid: 100 });
  assert.equal(r.state, "stopped");
  assert.match(r.task.upid, /:qmshutdown:100:/);
  assert.equal(sim.cluster.guests.get(100)!.status, "stopped");
  const req = sim.requests.findLast((x) => x.path.endsWith("/status/shutdown"));
  assert.equal(req?.params.timeout, "36", "PVE's timeout leaves room");
  assert.equal(req?.params.forceStop, undefined);

  const ct = await callOk(s.client, "proxmox_stop_vm", { vmid: 202 });
  assert.match(ct.task.upid, /:vzshutdown:202:/);
  assert.equal(sim.cluster.guests.get(202)!.status, "stopped");
  for (const vmid of [102, 201]) {
    const again = await callOk(s.client, "proxmox_stop_vm", { vmid });
    assert.equal(again.note, "Already stopped");
  }

  sim.cluster.guests.get(105)!.ignoresShutdown = true;
  const stuck = await call(s.client, "proxmox_stop_vm", {
    vmid: 105,
    timeout_s: 3,
  });
  assert.equal(stuck.isError, true);
  assert.match(stuck.text, /VM quit\/powerdown failed - got timeout/);
  assert.match(stuck.text, /retry with force: true/);
  assert.match(stuck.text, /TASK ERROR: VM quit\/powerdown failed/, "log tail");
  assert.equal(sim.cluster.guests.get(105)!.status, "running");

  const forced = await callOk(s.client, "proxmox_stop_vm", {
    vmid: 105,
    force: true,
    timeout_s: 3,
  });
  assert.equal(forced.task.status, "warnings");
  assert.equal(forced.task.exitstatus, "WARNINGS: 1");
  assert.equal(sim.cluster.guests.get(105)!.status, "stopped");
});

Deno.test("a locked guest: start returns isError with PVE's lock message and how to clear it", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  sim.cluster.guests.get(106)!.lock = "backup";
  const r = await call(s.client, "proxmox_start_vm", { vmid: 106 });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /Task failed: start VM 106 \(rocky-ci\): VM is locked \(backup\)/,
  );
  assert.match(r.text, /qm unlock 106' on pve2/);
  assert.match(r.text, /"exitstatus":"VM is locked \(backup\)"/);
  assert.equal(sim.cluster.guests.get(106)!.status, "stopped");

  // get_task reads the failed task: exit status and log tail.
  const t = await callOk(s.client, "proxmox_get_task", {
    upid: upidIn(r.text),
  });
  assert.equal(t.status, "stopped");
  assert.equal(t.ok, false);
  assert.equal(t.exitstatus, "VM is locked (backup)");
  assert.equal(t.type, "qmstart");
  assert.equal(t.node, "pve2");
  assert.deepEqual(t.log, ["TASK ERROR: VM is locked (backup)"]);

  // LXC checks a config lock synchronously on update.
  sim.cluster.guests.get(201)!.lock = "backup";
  const u = await call(s.client, "proxmox_update_vm", { vmid: 201, cores: 2 });
  assert.equal(u.isError, true);
  assert.match(u.text, /CT is locked \(backup\)/);
  assert.match(u.text, /pct unlock 201/);
  assert.equal(sim.cluster.guests.get(201)!.config.cores, 2, "unchanged");

  const bad = await call(s.client, "proxmox_get_task", { upid: "nope" });
  assert.equal(bad.isError, true);
  assert.match(bad.text, /use the UPID exactly as a tool returned it/);
});

Deno.test("delete_vm refuses a running guest and destroys a stopped one with its disks", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const running = await call(s.client, "proxmox_delete_vm", { vmid: 100 });
  assert.equal(running.isError, true);
  assert.match(
    running.text,
    /VM 100 \(web-01\) is running: stop it first with proxmox_stop_vm/,
  );
  assert.ok(sim.cluster.guests.has(100));
  const ctRunning = await call(s.client, "proxmox_delete_vm", { vmid: 200 });
  assert.equal(ctRunning.isError, true);
  assert.match(ctRunning.text, /CT 200 \(dns-01\) is running/);
  assert.equal(sim.cluster.guests.get(200)!.status, "running");

  assert.ok(sim.cluster.volumes.some((v) => v.vmid === 106));
  const vm = await callOk(s.client, "proxmox_delete_vm", { vmid: 106 });
  assert.equal(vm.state, "deleted");
  assert.equal(vm.name, "rocky-ci");
  assert.match(vm.task.upid, /:qmdestroy:106:/);
  assert.ok(!sim.cluster.guests.has(106));
  assert.ok(!sim.cluster.volumes.some((v) => v.vmid === 106), "disks gone");
  const req = sim.requests.findLast((r) => r.method === "DELETE");
  assert.equal(req?.params.purge, "1");
  assert.equal(req?.params["destroy-unreferenced-disks"], "1");

  await callOk(s.client, "proxmox_delete_vm", { vmid: 201 });
  assert.ok(!sim.cluster.guests.has(201));
  const gone = await call(s.client, "proxmox_delete_vm", { vmid: 201 });
  assert.equal(gone.isError, true);
  assert.match(gone.text, /Guest 201 does not exist/);
});

Deno.test("update_vm applies to a stopped guest at once; a running VM's cores and memory stay pending until the reboot it triggers", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const stopped = await callOk(s.client, "proxmox_update_vm", {
    vmid: 102,
    cores: 8,
    memory_mib: 16384,
  });
  assert.deepEqual(stopped.applied, ["cores", "memory"]);
  assert.deepEqual(stopped.pending, []);
  assert.equal(stopped.restarted, false);
  const g102 = sim.cluster.guests.get(102)!;
  assert.equal(g102.config.cores, 8);
  assert.equal(g102.config.memory, "16384");

  const noRestart = await callOk(s.client, "proxmox_update_vm", {
    vmid: 100,
    cores: 4,
    name: "web-01b",
    restart: false,
  });
  assert.deepEqual(noRestart.applied, ["name"]);
  assert.deepEqual(noRestart.pending, ["cores"]);
  assert.match(noRestart.note, /cores take effect at the next restart/);
  const g100 = sim.cluster.guests.get(100)!;
  assert.equal(g100.config.name, "web-01b");
  assert.equal(g100.config.cores, 2);
  assert.equal(g100.pending.cores, 4);

  const rebooted = await callOk(s.client, "proxmox_update_vm", {
    vmid: 100,
    memory_mib: 8192,
    tags: "prod;web;big",
  });
  assert.equal(rebooted.restarted, true);
  assert.match(rebooted.task.upid, /:qmreboot:100:/);
  assert.deepEqual(rebooted.applied, ["memory", "tags"]);
  assert.deepEqual(rebooted.pending, []);
  assert.equal(g100.config.cores, 4, "the earlier pending change too");
  assert.equal(g100.config.memory, "8192");
  assert.deepEqual(g100.pending, {});
  assert.equal(g100.status, "running");

  // A running container takes cores and memory live (no reboot).
  const ct = await callOk(s.client, "proxmox_update_vm", {
    vmid: 200,
    cores: 2,
    memory_mib: 1024,
    name: "dns-01b",
  });
  assert.deepEqual(ct.applied, ["cores", "memory", "hostname"]);
  assert.deepEqual(ct.pending, []);
  assert.equal(ct.restarted, false);
  const g200 = sim.cluster.guests.get(200)!;
  assert.equal(g200.config.memory, 1024);
  assert.equal(g200.config.hostname, "dns-01b");

  const nothing = await call(s.client, "proxmox_update_vm", { vmid: 100 });
  assert.equal(nothing.isError, true);
  assert.match(nothing.text, /Nothing to change/);
});

Deno.test("migrate_vm moves running VMs live, running containers in restart mode, stopped guests offline; refuses an offline target", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const vm = await callOk(s.client, "proxmox_migrate_vm", {
    vmid: 103,
    target: "pve1",
  });
  assert.equal(vm.mode, "online");
  assert.equal(vm.from, "pve2");
  assert.equal(vm.node, "pve1");
  assert.match(vm.task.upid, /^UPID:pve2:.*:qmigrate:103:/);
  const g103 = sim.cluster.guests.get(103)!;
  assert.equal(g103.node, "pve1");
  assert.equal(g103.status, "running");
  assert.ok(
    sim.cluster.volumes.filter((v) => v.vmid === 103).every((v) =>
      v.node === "pve1"
    ),
    "local disks moved",
  );
  const req = sim.requests.findLast((r) => r.path.endsWith("/migrate"));
  assert.equal(req?.params.online, "1");
  assert.equal(req?.params["with-local-disks"], "1");

  const ct = await callOk(s.client, "proxmox_migrate_vm", {
    vmid: 200,
    target: "pve2",
  });
  assert.equal(ct.mode, "restart");
  assert.equal(sim.cluster.guests.get(200)!.node, "pve2");
  assert.equal(sim.cluster.guests.get(200)!.status, "running");

  const off = await callOk(s.client, "proxmox_migrate_vm", {
    vmid: 102,
    target: "pve1",
  });
  assert.equal(off.mode, "offline");
  assert.equal(sim.cluster.guests.get(102)!.node, "pve1");
  assert.equal(sim.cluster.guests.get(102)!.status, "stopped");

  const offline = await call(s.client, "proxmox_migrate_vm", {
    vmid: 100,
    target: "pve3",
  });
  assert.equal(offline.isError, true);
  assert.match(
    offline.text,
    /Node 'pve3' is offline: cannot migrate there. Online nodes: pve1, pve2/,
  );
  const unknown = await call(s.client, "proxmox_migrate_vm", {
    vmid: 100,
    target: "pve9",
  });
  assert.match(unknown.text, /Node 'pve9' is not in this cluster/);
  assert.equal(sim.cluster.guests.get(100)!.node, "pve1");
  const here = await callOk(s.client, "proxmox_migrate_vm", {
    vmid: 100,
    target: "pve1",
  });
  assert.equal(here.note, "Already on pve1");
});

Deno.test("simulator: QEMU and LXC power and delete differ like PVE (sync vs in-task errors)", async () => {
  await using sim = await startSim();
  const pve = new PveClient({
    baseUrl: sim.url,
    auth: {
      kind: "token",
      tokenId: sim.credentials.tokenId,
      secret: sim.credentials.tokenSecret,
    },
  });
  const task = async (upid: unknown) =>
    await waitForTask(pve, String(upid), { timeoutMs: 5000, pollMs: 10 });
  const sync = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof PveError);
      return e;
    }
    assert.fail("expected a sync error");
  };
  // QEMU start of a running VM: a UPID, then a task error.
  const st = await task(await pve.post("/nodes/pve1/qemu/100/status/start"));
  assert.equal(st.status, "error");
  assert.equal(st.exitstatus, "VM 100 already running");
  // LXC: sync 500.
  const e1 = await sync(pve.post("/nodes/pve1/lxc/200/status/start"));
  assert.equal(e1.status, 500);
  assert.equal(e1.pveMessage, "CT 200 already running");
  // QEMU stop of a stopped VM: task OK; LXC: sync error.
  const stop = await task(await pve.post("/nodes/pve2/qemu/102/status/stop"));
  assert.equal(stop.status, "ok");
  const e2 = await sync(pve.post("/nodes/pve2/lxc/201/status/stop"));
  assert.equal(e2.pveMessage, "CT 201 not running");
  const e3 = await sync(pve.post("/nodes/pve2/lxc/201/status/reboot"));
  assert.equal(e3.pveMessage, "VM 201 not running", "pve-container's wording");
  // Delete of running guests: sync for both, LXC unless force.
  const e4 = await sync(pve.delete("/nodes/pve1/qemu/100"));
  assert.equal(e4.pveMessage, "VM 100 is running - destroy failed");
  const e5 = await sync(pve.delete("/nodes/pve1/lxc/202"));
  assert.equal(
    e5.pveMessage,
    "unable to destroy CT 202 - container is running",
  );
  await task(await pve.delete("/nodes/pve1/lxc/202", { force: true }));
  assert.ok(!sim.cluster.guests.has(202));
  // Migration: running VM without online, a running CT, an offline target.
  const e6 = await sync(
    pve.post("/nodes/pve1/qemu/100/migrate", { target: "pve2" }),
  );
  assert.equal(e6.pveMessage, "can't migrate running VM without --online");
  const e7 = await sync(
    pve.post("/nodes/pve1/lxc/200/migrate", { target: "pve2" }),
  );
  assert.match(e7.pveMessage, /without --online or --restart/);
  const e8 = await sync(
    pve.post("/nodes/pve1/qemu/100/migrate", { target: "pve1" }),
  );
  assert.deepEqual(e8.errors, { target: "target is local node." });
  const lxcOnline = await task(
    await pve.post("/nodes/pve1/lxc/200/migrate", {
      target: "pve2",
      online: true,
    }),
  );
  assert.equal(lxcOnline.exitstatus, "migration aborted");
  const toOffline = await waitForTask(
    pve,
    String(await pve.post("/nodes/pve2/qemu/102/migrate", { target: "pve3" })),
    { timeoutMs: 5000, pollMs: 10, logLines: 5 },
  );
  assert.equal(toOffline.exitstatus, "migration aborted");
  assert.match(
    toOffline.log!.join("\n"),
    /Can't connect to destination address using public key/,
  );
  assert.equal(sim.cluster.guests.get(102)!.node, "pve2");
  // Config of a running VM: cores pending, name at once; current=1 shows both.
  await pve.put("/nodes/pve1/qemu/101/config", { cores: 8, name: "db-02" });
  const cfg = await pve.get<Record<string, unknown>>(
    "/nodes/pve1/qemu/101/config",
  );
  const cur = await pve.get<Record<string, unknown>>(
    "/nodes/pve1/qemu/101/config",
    { current: true },
  );
  assert.equal(cfg.cores, 8);
  assert.equal(cur.cores, 4);
  assert.equal(cur.name, "db-02");
  // nextid is a string.
  assert.equal(await pve.get("/cluster/nextid"), "107");
  // Shrinking a disk fails inside the resize task.
  const shrink = await task(
    await pve.put("/nodes/pve2/qemu/102/resize", {
      disk: "scsi0",
      size: "10G",
    }),
  );
  assert.equal(shrink.exitstatus, "shrinking disks is not supported");
});

Deno.test("update_vm: configuration applied, then reading pending changes fails: the error says the change was made", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "GET",
    path: "/nodes/pve1/qemu/100/pending",
    fault: { kind: "status", status: 503, message: "Service Unavailable" },
  });
  const r = await call(s.client, "proxmox_update_vm", { vmid: 100, cores: 4 });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /^Configuration applied \(cores\); reading pending changes of VM 100 \(web-01\) failed: Proxmox answered 503/,
  );
  assert.match(r.text, /"written":\["cores"\]/);
  const g = sim.cluster.guests.get(100)!;
  assert.equal(g.pending.cores, 4, "the change was written");
  assert.ok(
    !sim.requests.some((q) => q.path.endsWith("/status/reboot")),
    "no reboot on an unknown pending state",
  );
});

Deno.test("update_vm: the reboot done, the second pending read failing names both applied steps", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "GET",
    path: "/nodes/pve1/qemu/100/pending",
    fault: { kind: "delay", ms: 0 },
  });
  sim.faults.inject({
    method: "GET",
    path: "/nodes/pve1/qemu/100/pending",
    fault: { kind: "status", status: 500, message: "got timeout" },
  });
  const r = await call(s.client, "proxmox_update_vm", { vmid: 100, cores: 4 });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /^Configuration applied \(cores\) and VM 100 \(web-01\) rebooted \(task UPID:pve1:[^)]*:qmreboot:100:root@pam:\); reading pending changes .* failed: .*got timeout/,
  );
  assert.equal(sim.cluster.guests.get(100)!.config.cores, 4);
});

Deno.test("every task tool of the vms toolset waits at most 45 s by default; longer waits are opt-in", async () => {
  const { ALL_TOOLS } = await import("../src/tools/mod.ts");
  const mine = ALL_TOOLS.filter((t) =>
    t.toolset === "vms" && t.input.timeout_s
  );
  assert.deepEqual(mine.map((t) => t.name).sort(), [
    "proxmox_create_lxc",
    "proxmox_create_vm_from_template",
    "proxmox_delete_vm",
    "proxmox_migrate_vm",
    "proxmox_start_vm",
    "proxmox_stop_vm",
    "proxmox_update_vm",
  ]);
  for (const t of mine) {
    const d = t.input.timeout_s.parse(undefined);
    assert.ok(d <= 45, `${t.name}: default timeout_s ${d}`);
    assert.equal(t.input.timeout_s.parse(3600), 3600, `${t.name}: opt-in`);
  }
});

Deno.test("a guest started or stopped by someone else meanwhile: PVE's 'already' answers (in a task or a refused call) are plain answers", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  // QEMU reports it in the start task.
  sim.faults.task({
    type: "qmstart",
    vmid: 102,
    fail: "VM 102 already running",
  });
  const vm = await callOk(s.client, "proxmox_start_vm", { vmid: 102 });
  assert.equal(vm.note, "Already running");
  // LXC refuses the call itself.
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve2/lxc/201/status/start",
    fault: { kind: "status", status: 500, message: "CT 201 already running" },
  });
  const ct = await callOk(s.client, "proxmox_start_vm", { vmid: 201 });
  assert.equal(ct.note, "Already running");
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve1/lxc/200/status/shutdown",
    fault: { kind: "status", status: 500, message: "CT 200 not running" },
  });
  const stopped = await callOk(s.client, "proxmox_stop_vm", { vmid: 200 });
  assert.equal(stopped.note, "Already stopped");
  // Any other failure stays an error.
  sim.faults.task({
    type: "qmstart",
    vmid: 106,
    fail: "start failed: QEMU exited with code 1",
  });
  const failed = await call(s.client, "proxmox_start_vm", { vmid: 106 });
  assert.equal(failed.isError, true);
  assert.match(
    failed.text,
    /Task failed: start VM 106 \(rocky-ci\): start failed/,
  );
});

sideBySide("tasks that outlive timeout_s, side by side", [
  {
    name:
      "a task that outlives timeout_s returns its UPID as running; get_task follows it to the end",
    setup: () => cluster(),
    async run({ sim, s }) {
      // The start does nothing until the test has seen it running.
      using start = holdNextTask(sim, "qmstart", "work");
      const r = await callOk(s.client, "proxmox_start_vm", {
        vmid: 106,
        timeout_s: 1,
      });
      assert.equal(r.task.status, "running");
      assert.equal(r.state, undefined, "state unknown while the task runs");
      assert.match(r.task.note, /Still running after .* proxmox_get_task/);
      const upid = r.task.upid;
      const running = await callOk(s.client, "proxmox_get_task", { upid });
      assert.equal(running.status, "running");
      assert.equal(running.ok, undefined);
      assert.equal(running.id, "106");
      start.release();
      let t = running;
      for (let i = 0; i < 50 && t.status === "running"; i++) {
        await new Promise((res) => setTimeout(res, 100));
        t = await callOk(s.client, "proxmox_get_task", { upid });
      }
      assert.equal(t.status, "stopped");
      assert.equal(t.ok, true);
      assert.equal(t.exitstatus, "OK");
      assert.equal(t.log.at(-1), "TASK OK");
      assert.equal(sim.cluster.guests.get(106)!.status, "running");

      // wait=false returns the UPID at once.
      const nowait = await callOk(s.client, "proxmox_stop_vm", {
        vmid: 106,
        wait: false,
      });
      assert.equal(nowait.task.status, "running");
      assert.match(nowait.task.note, /proxmox_get_task/);
    },
  },
  {
    name:
      "start_vm whose task outlives timeout_s returns 'running' with the UPID and how to follow it; progress continues while waiting",
    setup: () => cluster(),
    async run({ sim, s }) {
      sim.faults.task({ type: "qmstart", vmid: 106, endless: true });
      const progress: { message?: string }[] = [];
      const r = await call(
        s.client,
        "proxmox_start_vm",
        { vmid: 106, timeout_s: 2 },
        { onprogress: (p) => progress.push(p) },
      );
      assert.ok(!r.isError, r.text);
      assert.equal(r.data.task.status, "running");
      assert.match(r.data.task.upid, /:qmstart:106:/);
      assert.match(r.data.task.note, /follow it with proxmox_get_task/);
      assert.ok(
        progress.filter((p) =>
          /start VM 106 \(rocky-ci\): running/.test(
            p.message ?? "",
          )
        ).length >= 2,
        "progress while waiting",
      );
    },
  },
]);

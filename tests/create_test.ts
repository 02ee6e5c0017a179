/** e2e: VMs from a cloud-init template and new LXC containers, over stdio. */
import assert from "node:assert/strict";
import {
  bootDisk,
  generatePassword,
  sizeBytes,
} from "../src/proxmox/api/create.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { cluster, holdNextTask, sideBySide } from "./tool_helpers.ts";

const KEYS = [
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh4+/k9= ops@laptop",
  "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7+x/y== second key",
].join("\n");

Deno.test("create_vm_from_template clones, configures cloud-init, grows the boot disk, starts and returns the guest's IPs, with progress", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), LOG_LEVEL: "DEBUG" },
  });
  const progress: { progress: number; total?: number; message?: string }[] = [];
  const r = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    name: "app-01",
    ciuser: "ops",
    sshkeys: KEYS + "\n\n",
    ip: "10.0.0.50/24",
    gateway: "10.0.0.1",
    nameserver: "1.1.1.1 9.9.9.9",
    searchdomain: "example.com",
    cores: 4,
    memory_mib: 4096,
    start: true,
  }, { onprogress: (p) => progress.push(p) });
  assert.ok(!r.isError, r.text);
  const out = r.data;
  assert.equal(out.vmid, 107, "nextid (a string in PVE) as a number");
  assert.equal(out.node, "pve1");
  assert.equal(out.name, "app-01");
  assert.equal(out.state, "running");
  assert.equal(out.user, "ops");
  assert.equal(out.disk, "scsi0 64G");
  assert.deepEqual(out.ips, ["10.0.0.50"]);
  assert.match(out.password, /^[A-Za-z0-9]{24}$/);
  assert.deepEqual(out.tasks.map((t: { step: string }) => t.step), [
    "clone",
    "resize",
    "start",
  ]);
  assert.ok(out.tasks.every((t: { status: string }) => t.status === "ok"));

  // The simulator's VM, not only the result.
  const g = sim.cluster.guests.get(107)!;
  assert.equal(g.type, "qemu");
  assert.equal(g.status, "running");
  assert.equal(g.lock, undefined);
  assert.equal(g.config.template, undefined);
  assert.equal(g.config.ciuser, "ops");
  assert.match(String(g.config.cipassword), /^\$5\$/, "stored hashed");
  assert.equal(g.config.sshkeys, encodeURIComponent(KEYS), "URL-encoded");
  assert.equal(g.config.ipconfig0, "ip=10.0.0.50/24,gw=10.0.0.1");
  assert.equal(g.config.nameserver, "1.1.1.1 9.9.9.9");
  assert.equal(g.config.searchdomain, "example.com");
  assert.equal(g.config.cores, 4);
  assert.equal(g.config.memory, "4096");
  assert.match(String(g.config.scsi0), /^local-lvm:vm-107-disk-0,.*size=64G/);
  assert.match(
    String(g.config.ide2),
    /^local-lvm:vm-107-cloudinit,media=cdrom/,
  );
  assert.notEqual(g.config.net0, sim.cluster.guests.get(9000)!.config.net0);
  assert.equal(sim.cluster.guests.get(9000)!.config.template, 1);
  const disk = sim.cluster.volumes.find((v) =>
    v.volid === "local-lvm:vm-107-disk-0"
  );
  assert.equal(disk?.size, 64 * 1024 ** 3);
  // sshkeys went out URL-encoded inside the form encoding (SEMANTICS §4.4).
  const put = sim.requests.find((q) =>
    q.method === "PUT" && q.path.endsWith("/config")
  );
  assert.equal(put?.params.sshkeys, encodeURIComponent(KEYS));
  assert.equal(
    sim.requests.find((q) => q.path.endsWith("/clone"))?.params.full,
    "1",
    "full clone by default",
  );

  // Progress across the steps: increasing, total = 5, each step announced.
  assert.ok(progress.length >= 5, `${progress.length} notifications`);
  for (let i = 1; i < progress.length; i++) {
    assert.ok(progress[i].progress > progress[i - 1].progress, "increasing");
  }
  assert.ok(progress.every((p) => p.total === 5));
  const messages = progress.map((p) => p.message ?? "");
  for (
    const step of [
      "step 1/5: clone",
      "step 2/5: configure",
      "step 3/5: resize",
      "step 4/5: start",
      "step 5/5: addresses",
    ]
  ) assert.ok(messages.includes(step), `${step} in ${messages.join(" | ")}`);
  assert.ok(
    messages.some((m) => /^clone: clone VM 9000 .*: running/.test(m)),
    "the clone task's own progress",
  );

  // The generated password is returned once and never logged.
  assert.ok(!s.stderr().includes(out.password), "password not in the log");
  assert.ok(s.stderr().includes("proxmox_create_vm_from_template ok"));
});

Deno.test("linked clones share the template's base disk, which then cannot be deleted (task error with log tail)", async () => {
  await using sim = await startSim({ taskMs: 1 });
  await using s = await connect({ env: simEnv(sim) });
  const out = await callOk(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    linked: true,
    disk_size: "2G",
    password: "my-own-password",
  });
  assert.equal(out.password, undefined, "a given password is not echoed");
  assert.ok(!s.stderr().includes("my-own-password"), "nor logged");
  assert.equal(out.name, "Copy-of-VM-debian-12-cloud", "PVE's default name");
  assert.equal(out.disk, "scsi0 3G");
  assert.match(out.note, /scsi0 is already 3G: not shrunk/);
  assert.ok(!sim.requests.some((q) => q.path.endsWith("/resize")));
  const g = sim.cluster.guests.get(107)!;
  assert.match(
    String(g.config.scsi0),
    /^local-lvm:base-9000-disk-0\/vm-107-disk-0,/,
  );
  assert.equal(
    sim.requests.find((q) => q.path.endsWith("/clone"))?.params.full,
    "0",
  );

  const del = await call(s.client, "proxmox_delete_vm", { vmid: 9000 });
  assert.equal(del.isError, true);
  assert.match(
    del.text,
    /base volume 'local-lvm:base-9000-disk-0' is still in use by linked cloned/,
  );
  assert.match(del.text, /"log":\[.*"TASK ERROR: base volume/);
  assert.ok(sim.cluster.guests.has(9000));
});

Deno.test("a step failing after the clone names the VM that exists and its state", async () => {
  await using sim = await startSim({ taskMs: 1 });
  await using s = await connect({ env: simEnv(sim) });
  const r = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    name: "bad-keys",
    sshkeys: "not-a-key",
    start: true,
  });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /^VM 107 \(bad-keys\) was created on pve1 \(done: clone\) and is stopped, but the configure step failed: .*SSH public key validation error/,
  );
  assert.match(r.text, /proxmox_delete_vm/);
  assert.match(r.text, /"failed_step":"configure"/);
  const g = sim.cluster.guests.get(107)!;
  assert.equal(g.status, "stopped");
  assert.equal(g.config.name, "bad-keys");
  assert.ok(!sim.requests.some((q) => q.path.endsWith("/status/start")));

  // A clone to another node from local storage: PVE refuses, nothing made.
  const far = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    node: "pve2",
  });
  assert.equal(far.isError, true);
  assert.match(
    far.text,
    /can't clone VM to node 'pve2' \(VM uses local storage\)/,
  );
  assert.match(far.text, /proxmox_migrate_vm/);
  assert.ok(!sim.cluster.guests.has(108));

  const taken = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    newid: 100,
  });
  assert.match(taken.text, /VMID 100 is already in use/);
  const ip = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    ip: "10.0.0.5",
  });
  assert.match(ip.text, /ip must be 'dhcp' or an IPv4 CIDR/);
  const notTpl = await call(s.client, "proxmox_create_vm_from_template", {
    template: 100,
  });
  assert.match(notTpl.text, /VM 100 \(web-01\) is not a QEMU template/);
});

Deno.test("create_lxc makes an unprivileged container on a rootdir storage, starts it and returns its IP", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), LOG_LEVEL: "DEBUG" },
  });
  const progress: { progress: number; message?: string }[] = [];
  const r = await call(s.client, "proxmox_create_lxc", {
    ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    node: "pve2",
    hostname: "ct-web",
    sshkeys: KEYS,
    cores: 2,
    memory_mib: 1024,
    ip: "10.0.0.60/24",
    gateway: "10.0.0.1",
    start: true,
  }, { onprogress: (p) => progress.push(p) });
  assert.ok(!r.isError, r.text);
  const out = r.data;
  assert.equal(out.vmid, 107);
  assert.equal(out.state, "running");
  assert.equal(out.user, "root");
  assert.deepEqual(out.ips, ["10.0.0.60"]);
  assert.equal(out.disk, "rootfs 8G");
  assert.ok(out.password.length >= 20);
  assert.ok(!s.stderr().includes(out.password), "password not in the log");

  const g = sim.cluster.guests.get(107)!;
  assert.equal(g.type, "lxc");
  assert.equal(g.node, "pve2");
  assert.equal(g.status, "running");
  assert.equal(g.lock, undefined);
  assert.equal(g.config.hostname, "ct-web");
  assert.equal(g.config.unprivileged, 1);
  assert.equal(g.config.features, "nesting=1");
  assert.equal(g.config.cores, 2);
  assert.equal(g.config.memory, 1024);
  assert.match(String(g.config.rootfs), /^local-lvm:vm-107-disk-0,size=8G$/);
  assert.match(
    String(g.config.net0),
    /^name=eth0,bridge=vmbr0,hwaddr=BC:24:11:[0-9A-F:]+,ip=10\.0\.0\.60\/24,gw=10\.0\.0\.1/,
  );
  const post = sim.requests.find((q) =>
    q.method === "POST" && q.path === "/nodes/{node}/lxc"
  );
  assert.equal(post?.params["ssh-public-keys"], KEYS, "plain text for LXC");
  assert.equal(post?.params.rootfs, "local-lvm:8");
  assert.ok(progress.some((p) => p.message === "step 1/3: create"));
  assert.ok(progress.some((p) => p.message === "step 3/3: addresses"));

  // DHCP: the address the container got.
  const dhcp = await callOk(s.client, "proxmox_create_lxc", {
    ostemplate: "local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz",
    node: "pve1",
    privileged: true,
    nesting: false,
    start: true,
  });
  assert.equal(dhcp.vmid, 108);
  assert.deepEqual(dhcp.ips, ["192.168.2.108"]);
  const g2 = sim.cluster.guests.get(108)!;
  assert.equal(g2.config.unprivileged, 0);
  assert.equal(g2.config.features, undefined);
  assert.equal(g2.config.ostype, "alpine");
});

Deno.test("create_lxc: a missing template fails in the task with tar's log tail and leaves nothing; storage 'local' is refused with a hint", async () => {
  await using sim = await startSim({ taskMs: 1 });
  await using s = await connect({ env: simEnv(sim) });
  const r = await call(s.client, "proxmox_create_lxc", {
    ostemplate: "local:vztmpl/nope-1.0_amd64.tar.zst",
    node: "pve1",
  });
  assert.equal(r.isError, true);
  assert.match(r.text, /Task failed: create CT 107 .*unable to create CT 107/);
  assert.match(r.text, /Cannot open: No such file or directory/, "log tail");
  assert.match(r.text, /"upid":"UPID:pve1:[^"]*:vzcreate:107:/);
  assert.ok(!sim.cluster.guests.has(107), "PVE removed the failed CT");
  assert.ok(!sim.cluster.volumes.some((v) => v.vmid === 107));

  const local = await call(s.client, "proxmox_create_lxc", {
    ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    node: "pve1",
    storage: "local",
  });
  assert.equal(local.isError, true);
  assert.match(
    local.text,
    /storage 'local' does not support container directories/,
  );
  assert.match(local.text, /content 'rootdir'/);
  const bad = await call(s.client, "proxmox_create_lxc", {
    ostemplate: "debian-12",
    node: "pve1",
  });
  assert.match(bad.text, /ostemplate must be a template volid/);
});

Deno.test("helpers: CSPRNG passwords, sizes, and the boot disk read from the config", () => {
  const a = generatePassword();
  assert.equal(a.length, 24);
  assert.match(a, /[A-Z]/);
  assert.match(a, /[a-z]/);
  assert.match(a, /\d/);
  assert.notEqual(a, generatePassword());
  assert.equal(sizeBytes("64G"), 64 * 1024 ** 3);
  assert.equal(sizeBytes("1.5T"), 1.5 * 1024 ** 4);
  assert.equal(sizeBytes("100"), 100 * 1024 ** 3);
  assert.equal(sizeBytes("big"), undefined);
  // PVE prints sizes that are no whole KiB as plain bytes.
  assert.equal(sizeBytes("2361393153", ""), 2361393153);
  assert.equal(
    bootDisk({
      boot: "order=scsi0",
      scsi0: "local-lvm:base-9000-disk-0,size=2361393153",
    })?.size,
    2361393153,
  );
  assert.deepEqual(
    bootDisk({
      boot: "order=ide2;virtio1;net0",
      ide2: "local:iso/x.iso,media=cdrom",
      scsi0: "local-lvm:vm-1-disk-0,size=8G",
      virtio1: "local-lvm:vm-1-disk-1,size=20G",
    }),
    { key: "virtio1", size: 20 * 1024 ** 3 },
  );
  assert.deepEqual(
    bootDisk({
      sata0: "local-lvm:vm-1-disk-1,size=2G",
      scsi1: "local-lvm:vm-1-disk-0,size=4G",
      ide0: "local-lvm:vm-1-cloudinit,media=cdrom",
    }),
    { key: "scsi1", size: 4 * 1024 ** 3 },
  );
});

Deno.test("create_vm_from_template: a resize failing after clone and configure says which steps were applied", async () => {
  await using sim = await startSim({ taskMs: 1 });
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "PUT",
    path: /\/resize$/,
    fault: { kind: "status", status: 500, message: "storage is full" },
  });
  const r = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    name: "grow-fails",
    start: true,
  });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /^VM 107 \(grow-fails\) was created on pve1 \(done: clone, configure\) and is stopped, but the resize step failed: .*storage is full/,
  );
  assert.match(r.text, /"done_steps":\["clone","configure"\]/);
  assert.match(r.text, /"failed_step":"resize"/);
  assert.match(r.text, /"password":"[A-Za-z0-9]{24}"/, "set, so shown once");
  assert.equal(sim.cluster.guests.get(107)!.config.name, "grow-fails");
  assert.ok(!sim.requests.some((q) => q.path.endsWith("/status/start")));
});

Deno.test("create_vm_from_template: a start task failing names the steps done before it and keeps the task's UPID", async () => {
  await using sim = await startSim({ taskMs: 1 });
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.task({ type: "qmstart", fail: "start failed: out of memory" });
  const r = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    start: true,
  });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /was created on pve1 \(done: clone, configure, resize\) and is stopped, but the start step failed: Task failed: start VM 107: start failed: out of memory/,
  );
  assert.match(r.text, /"upid":"UPID:pve1:[^"]*:qmstart:107:/);
  assert.equal(sim.cluster.guests.get(107)!.status, "stopped");
});

sideBySide(
  "creates that wait (for a lock, timeout_s, a guest's addresses), side by side",
  [
    {
      name:
        "a cloning VM is locked (clone): other tools get PVE's lock error until the clone ends",
      setup: () => cluster(),
      async run({ sim, s }) {
        // The clone does its work only once released: it holds the lock meanwhile.
        using clone = holdNextTask(sim, "qmclone");
        const creating = call(s.client, "proxmox_create_vm_from_template", {
          template: 9000,
          newid: 150,
          name: "slow-clone",
        });
        for (let i = 0; i < 100 && !sim.cluster.guests.get(150); i++) {
          await new Promise((res) => setTimeout(res, 20));
        }
        assert.equal(sim.cluster.guests.get(150)?.lock, "clone");
        const start = await call(s.client, "proxmox_start_vm", { vmid: 150 });
        assert.equal(start.isError, true);
        assert.match(start.text, /VM is locked \(clone\)/);
        assert.match(start.text, /wait for it to end/);
        const del = await call(s.client, "proxmox_delete_vm", { vmid: 150 });
        assert.equal(del.isError, true);
        assert.match(del.text, /VM is locked \(clone\)/);
        clone.release();
        const r = await creating;
        assert.ok(!r.isError, r.text);
        assert.equal(r.data.vmid, 150);
        assert.equal(r.data.state, "stopped");
        assert.equal(sim.cluster.guests.get(150)!.lock, undefined);
        assert.equal(sim.cluster.guests.get(150)!.status, "stopped");
      },
    },
    {
      name:
        "a clone that outlives timeout_s returns its UPID as running and says what was not done",
      setup: () => cluster(),
      async run({ sim, s }) {
        // The clone does its work only when the test ends.
        using _clone = holdNextTask(sim, "qmclone");
        const out = await callOk(s.client, "proxmox_create_vm_from_template", {
          template: 9000,
          start: true,
          timeout_s: 1,
        });
        assert.equal(out.vmid, 107);
        assert.equal(out.state, "locked (clone)");
        assert.equal(out.password, undefined, "no password: none was set");
        assert.equal(out.tasks.length, 1);
        assert.equal(out.tasks[0].status, "running");
        assert.match(out.tasks[0].upid, /:qmclone:9000:/);
        assert.match(out.note, /proxmox_get_task.*NOT applied to VM 107/);
        assert.equal(sim.cluster.guests.get(107)!.lock, "clone");
        const t = await callOk(s.client, "proxmox_get_task", {
          upid: out.tasks[0].upid,
        });
        assert.equal(t.status, "running");
      },
    },
    {
      name:
        "waiting for a new guest's addresses stops at the first permanent error (403, 501, agent not configured) and says why",
      setup: () => cluster(),
      async run({ sim, s }) {
        const cases = [
          {
            fault: {
              kind: "status" as const,
              status: 403,
              message: "Permission check failed (/vms/107, VM.Monitor)",
            },
            why:
              /the Proxmox user or token may not read them \(403\): Permission check failed/,
          },
          {
            fault: {
              kind: "status" as const,
              status: 501,
              message:
                "Method 'GET /nodes/pve1/qemu/108/agent/network-get-interfaces' not implemented",
            },
            why: /this Proxmox does not offer that endpoint \(501\)/,
          },
          {
            fault: {
              kind: "status" as const,
              status: 500,
              message: "No QEMU guest agent configured",
            },
            why: /the guest agent is not enabled in its config/,
          },
        ];
        for (const c of cases) {
          sim.faults.clear();
          sim.faults.inject({
            method: "GET",
            path: /\/agent\/network-get-interfaces$/,
            times: Infinity,
            fault: c.fault,
          });
          const t0 = performance.now();
          const out = await callOk(
            s.client,
            "proxmox_create_vm_from_template",
            {
              template: 9000,
              start: true,
              timeout_s: 40,
            },
          );
          const seconds = (performance.now() - t0) / 1000;
          assert.ok(seconds < 10, `returned after ${seconds} s, not timeout_s`);
          assert.equal(out.state, "running");
          assert.equal(out.ips, undefined);
          assert.match(out.note, /^No IPs yet: /);
          assert.match(out.note, c.why);
          const polls = sim.requests.filter((q) =>
            q.path.endsWith("/network-get-interfaces") &&
            q.params.vmid === String(out.vmid)
          );
          assert.equal(polls.length, 1, "no retry after a permanent error");
        }
        sim.faults.clear();

        // LXC: a 403 on interfaces stops the wait as well.
        sim.faults.inject({
          method: "GET",
          path: /\/lxc\/\d+\/interfaces$/,
          times: Infinity,
          fault: {
            kind: "status",
            status: 403,
            message: "Permission check failed",
          },
        });
        const ct = await callOk(s.client, "proxmox_create_lxc", {
          ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
          node: "pve1",
          start: true,
          timeout_s: 40,
        });
        assert.match(ct.note, /may not read them \(403\)/);
      },
    },
    {
      name: "addresses that take a few polls: progress continues while waiting",
      setup: () => cluster(),
      async run({ sim, s }) {
        sim.faults.inject({
          method: "GET",
          path: /\/agent\/network-get-interfaces$/,
          times: 2,
          fault: {
            kind: "status",
            status: 500,
            message: "QEMU guest agent is not running",
          },
        });
        const progress: { progress: number; message?: string }[] = [];
        const r = await call(s.client, "proxmox_create_vm_from_template", {
          template: 9000,
          start: true,
        }, { onprogress: (p) => progress.push(p) });
        assert.ok(!r.isError, r.text);
        assert.ok(r.data.ips.length > 0);
        const waits = progress.filter((p) =>
          /^addresses: waiting for an address/.test(p.message ?? "")
        );
        assert.ok(
          waits.length >= 2,
          progress.map((p) => p.message).join(" | "),
        );
        for (let i = 1; i < progress.length; i++) {
          assert.ok(
            progress[i].progress > progress[i - 1].progress,
            "increasing",
          );
        }
      },
    },
    {
      name:
        "a cancelled create stops polling for addresses at once (the guest stays as created)",
      setup: () => cluster(),
      async run({ sim, s }) {
        sim.faults.inject({
          method: "GET",
          path: /\/agent\/network-get-interfaces$/,
          times: Infinity,
          fault: {
            kind: "status",
            status: 500,
            message: "QEMU guest agent is not running",
          },
        });
        const polls = () =>
          sim.requests.filter((q) => q.path.endsWith("/network-get-interfaces"))
            .length;
        const abort = new AbortController();
        const pending = s.client.callTool(
          {
            name: "proxmox_create_vm_from_template",
            arguments: { template: 9000, start: true, timeout_s: 40 },
          },
          { signal: abort.signal, timeout: 60_000 },
        );
        for (let i = 0; i < 100 && polls() < 2; i++) {
          await new Promise((res) => setTimeout(res, 50));
        }
        assert.ok(polls() >= 2, "polling before the cancel");
        abort.abort();
        await assert.rejects(pending);
        await new Promise((res) => setTimeout(res, 300));
        const after = polls();
        await new Promise((res) => setTimeout(res, 1500));
        assert.equal(polls(), after, "no poll after the cancel");
        assert.equal(sim.cluster.guests.get(107)?.status, "running");
      },
    },
  ],
);

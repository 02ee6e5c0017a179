/** The opt-in Proxmox Backup Server storage: listed, backed up to and restored from as PVE does. */
import { setTimeout as delay } from "node:timers/promises";
import assert from "node:assert/strict";
import { startSim, type TestSim } from "./sim_helpers.ts";

const VM_BACKUP = "pbs:backup/vm/105/2026-11-20T03:00:00Z";
const CT_BACKUP = "pbs:backup/ct/200/2026-11-20T03:00:00Z";

function tokenApi(sim: TestSim) {
  const headers = {
    Authorization:
      `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
  };
  return async (path: string, body?: Record<string, string>) => {
    const r = await fetch(`${sim.url}/api2/json${path}`, {
      method: body ? "POST" : "GET",
      headers,
      body: body ? new URLSearchParams(body) : undefined,
    });
    return { status: r.status, ...(await r.json()) };
  };
}

async function finished(
  api: ReturnType<typeof tokenApi>,
  upid: string,
): Promise<{ exitstatus: string; log: string[] }> {
  const path = `/nodes/${upid.split(":")[1]}/tasks/${encodeURIComponent(upid)}`;
  for (;;) {
    const { data } = await api(`${path}/status`);
    if (data.status === "stopped") {
      const log = await api(`${path}/log?limit=0`);
      return {
        exitstatus: data.exitstatus,
        log: log.data.map((l: { t: string }) => l.t),
      };
    }
    await delay(10);
  }
}

Deno.test("sim pbs: off by default, so listings keep their seed", async () => {
  await using sim = await startSim();
  const { data } = await tokenApi(sim)("/nodes/pve1/storage");
  assert.ok(!data.some((s: { type: string }) => s.type === "pbs"));
});

Deno.test("sim pbs: a shared pbs storage lists PBS-style backups with format, subtype, vmid and ctime", async () => {
  await using sim = await startSim({ pbs: true });
  const api = tokenApi(sim);
  for (const node of ["pve1", "pve2"]) {
    const { data } = await api(`/nodes/${node}/storage?content=backup`);
    const pbs = data.find((s: { storage: string }) => s.storage === "pbs");
    assert.equal(pbs.type, "pbs");
    assert.equal(pbs.shared, 1);
    assert.equal(pbs.content, "backup");
    assert.equal(pbs.active, 1);
  }
  const { data } = await api("/nodes/pve2/storage/pbs/content");
  assert.deepEqual(
    data.map((v: { volid: string }) => v.volid),
    [CT_BACKUP, VM_BACKUP],
  );
  const vm = data.find((v: { volid: string }) => v.volid === VM_BACKUP);
  assert.equal(vm.content, "backup");
  assert.equal(vm.format, "pbs-vm");
  assert.equal(vm.subtype, "qemu");
  assert.equal(vm.vmid, 105);
  assert.equal(vm.ctime, Date.UTC(2026, 10, 20, 3) / 1000);
  assert.equal(
    data.find((v: { volid: string }) => v.volid === CT_BACKUP).format,
    "pbs-ct",
  );
  const only = await api("/nodes/pve1/storage/pbs/content?vmid=200");
  assert.deepEqual(only.data.map((v: { vmid: number }) => v.vmid), [200]);
});

Deno.test("sim pbs: vzdump to pbs makes a vm/<id>/<UTC time> snapshot, listed on every node", async () => {
  await using sim = await startSim({ pbs: true });
  const api = tokenApi(sim);
  const { data: upid } = await api("/nodes/pve1/vzdump", {
    vmid: "100",
    storage: "pbs",
    mode: "snapshot",
    "notes-template": "{{guestname}}",
  });
  const task = await finished(api, upid);
  assert.equal(task.exitstatus, "OK");
  assert.ok(
    task.log.some((l) =>
      /^INFO: creating Proxmox Backup Server archive 'vm\/100\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'$/
        .test(l)
    ),
    task.log.join("\n"),
  );
  const { data } = await api("/nodes/pve2/storage/pbs/content?vmid=100");
  assert.equal(data.length, 1);
  assert.match(
    data[0].volid,
    /^pbs:backup\/vm\/100\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
  );
  assert.equal(data[0].format, "pbs-vm");
  assert.equal(data[0].notes, "web-01");
});

Deno.test("sim pbs: a VM and a CT restore from PBS volids like local archives", async () => {
  await using sim = await startSim({ pbs: true });
  const api = tokenApi(sim);
  const vm = await api("/nodes/pve2/qemu", {
    vmid: "150",
    archive: VM_BACKUP,
    storage: "local-lvm",
  });
  assert.equal(vm.status, 200, JSON.stringify(vm));
  const vmTask = await finished(api, vm.data);
  assert.equal(vmTask.exitstatus, "OK", vmTask.log.join("\n"));
  assert.ok(vmTask.log.some((l) => l.includes("pbs-restore")));
  const restored = sim.cluster.guests.get(150)!;
  assert.equal(restored.node, "pve2");
  assert.equal(restored.config.name, sim.cluster.guests.get(105)!.config.name);

  const ct = await api("/nodes/pve1/lxc", {
    vmid: "250",
    ostemplate: CT_BACKUP,
    restore: "1",
    storage: "local-lvm",
  });
  assert.equal(ct.status, 200, JSON.stringify(ct));
  const ctTask = await finished(api, ct.data);
  assert.equal(ctTask.exitstatus, "OK", ctTask.log.join("\n"));
  assert.equal(sim.cluster.guests.get(250)!.type, "lxc");
});

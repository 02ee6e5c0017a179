/** Simulator tasks as PVE runs them: stopping, logs with `total`, reason-less 401s. */
import { setTimeout as delay } from "node:timers/promises";
import assert from "node:assert/strict";
import { startSim } from "./sim_helpers.ts";

Deno.test("sim: a stopped task stays stopped with PVE's interrupt, and the task log carries total", async () => {
  await using sim = await startSim({ taskMs: 40 });
  const auth = {
    Authorization:
      `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
  };
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${sim.url}/api2/json${path}`, {
      ...init,
      headers: { ...auth, ...init.headers },
    }).then((r) => r.json());
  const { data: upid } = await api("/nodes/pve2/qemu/106/clone", {
    method: "POST",
    body: new URLSearchParams({ newid: "150" }),
  });
  await delay(50);
  const task = `/nodes/pve2/tasks/${encodeURIComponent(upid)}`;
  assert.equal((await api(task, { method: "DELETE" })).data, null);
  await delay(600);
  const { data: status } = await api(`${task}/status`);
  assert.equal(status.status, "stopped");
  assert.equal(status.exitstatus, "interrupted by signal");
  const log = await api(`${task}/log?limit=0`);
  assert.equal(log.total, log.data.length);
  assert.equal(log.data.at(-1).t, "TASK ERROR: interrupted by signal");
  assert.ok(
    !sim.cluster.guests.has(150) ||
      sim.cluster.guests.get(150)!.lock === "clone",
    "no finished clone",
  );
  const list = await api("/nodes/pve2/tasks?limit=1");
  assert.equal(list.data.length, 1);
  assert.ok(list.total >= 1);
});

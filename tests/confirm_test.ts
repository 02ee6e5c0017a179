/**
 * The human confirms destructive calls (MCP elicitation), bound to what was
 * shown. Driven by the SDK client's own `elicitation/create` handler.
 */
import assert from "node:assert/strict";
import {
  call,
  connect,
  type ElicitAnswer,
  type ElicitParams,
  simEnv,
  startSim,
} from "./helpers.ts";

const writes = (sim: { requests: { method: string; path: string }[] }) =>
  sim.requests.filter((r) => r.method !== "GET" && r.path !== "/access/ticket");

/** A client whose human answers with `answer`, recording each question. */
function human(answer: ElicitAnswer | ((p: ElicitParams) => ElicitAnswer)) {
  const asked: ElicitParams[] = [];
  return {
    asked,
    elicit: (p: ElicitParams) => {
      asked.push(p);
      return typeof answer === "function" ? answer(p) : answer;
    },
  };
}

for (const era of ["2025-11-25", "2026-07-28"] as const) {
  Deno.test(`${era}: delete_vm asks first, names the guest and its disks, snapshots and backups, and acts on accept`, async () => {
    await using sim = await startSim();
    const h = human({ action: "accept", content: { confirm: true } });
    await using s = await connect({ env: simEnv(sim), elicit: h.elicit, era });
    sim.cluster.guests.get(106)!.snapshots.set("before", {
      name: "before",
      snaptime: 1,
      description: "",
      vmstate: 0,
      config: {},
    } as never);
    const r = await call(s.client, "proxmox_delete_vm", { vmid: 106 });
    assert.ok(!r.isError, r.text);
    assert.equal(h.asked.length, 1, "asked exactly once");
    const q = h.asked[0].message;
    assert.match(q, /VM 106 \(rocky-ci\) on node pve2, stopped/);
    assert.match(q, /Disks: scsi0 /);
    assert.match(q, /Snapshots: before/);
    assert.match(q, /Backups on record: \d+/);
    assert.ok(!sim.cluster.guests.has(106), "deleted after the human accepted");
  });

  Deno.test(`${era}: decline and cancel send nothing to Proxmox and say so`, async () => {
    for (const action of ["decline", "cancel"] as const) {
      await using sim = await startSim();
      const h = human({ action });
      await using s = await connect({
        env: simEnv(sim),
        elicit: h.elicit,
        era,
      });
      sim.requests.length = 0;
      const r = await call(s.client, "proxmox_stop_vm", { vmid: 100 });
      assert.equal(r.isError, true);
      assert.match(
        r.text,
        action === "decline" ? /human declined/ : /human cancelled/,
      );
      assert.match(r.text, /Nothing was sent to Proxmox/);
      assert.deepEqual(writes(sim), [], "no write reached Proxmox");
      assert.equal(sim.cluster.guests.get(100)!.status, "running");
    }
  });
}

Deno.test("accepting without ticking confirm is a decline", async () => {
  await using sim = await startSim();
  const h = human({ action: "accept", content: { confirm: false } });
  await using s = await connect({ env: simEnv(sim), elicit: h.elicit });
  const r = await call(s.client, "proxmox_delete_snapshot", {
    vmid: 100,
    name: "nope",
  });
  assert.equal(r.isError, true);
  assert.match(r.text, /declined/);
  assert.deepEqual(writes(sim), []);
});

Deno.test("a guest changed between question and answer is refused (digest bound)", async () => {
  await using sim = await startSim();
  const h = human(() => {
    // While the human reads, someone else changes the guest.
    sim.cluster.guests.get(102)!.config.memory = "16384";
    sim.cluster.guests.get(102)!.config.digest = crypto.randomUUID()
      .replaceAll("-", "");
    return { action: "accept", content: { confirm: true } };
  });
  await using s = await connect({ env: simEnv(sim), elicit: h.elicit });
  sim.requests.length = 0;
  const r = await call(s.client, "proxmox_delete_vm", { vmid: 102 });
  assert.equal(r.isError, true, r.text);
  assert.match(r.text, /changed after the human confirmed/);
  assert.deepEqual(writes(sim), []);
  assert.ok(sim.cluster.guests.has(102));
});

Deno.test("non-destructive tools never ask", async () => {
  await using sim = await startSim();
  const h = human({ action: "decline" });
  await using s = await connect({ env: simEnv(sim), elicit: h.elicit });
  const r = await call(s.client, "proxmox_start_vm", { vmid: 102 });
  assert.ok(!r.isError, r.text);
  const l = await call(s.client, "proxmox_list_vms");
  assert.ok(!l.isError);
  assert.equal(h.asked.length, 0);
});

Deno.test("MCP_CONFIRM: a client without elicitation is refused under always, trusted under auto and never", async () => {
  for (const mode of ["auto", "always", "never"] as const) {
    await using sim = await startSim();
    await using s = await connect({
      env: { ...simEnv(sim), MCP_CONFIRM: mode },
    });
    sim.requests.length = 0;
    const r = await call(s.client, "proxmox_stop_vm", { vmid: 100 });
    if (mode === "always") {
      assert.equal(r.isError, true);
      assert.match(r.text, /MCP_CONFIRM=always/);
      assert.deepEqual(writes(sim), []);
    } else {
      assert.ok(!r.isError, `${mode}: ${r.text}`);
      assert.equal(sim.cluster.guests.get(100)!.status, "stopped");
    }
  }
});

Deno.test("MCP_CONFIRM=never does not ask even a client that can", async () => {
  await using sim = await startSim();
  const h = human({ action: "decline" });
  await using s = await connect({
    env: { ...simEnv(sim), MCP_CONFIRM: "never" },
    elicit: h.elicit,
  });
  const r = await call(s.client, "proxmox_stop_vm", { vmid: 100 });
  assert.ok(!r.isError, r.text);
  assert.equal(h.asked.length, 0);
});

Deno.test("the question masks secrets among the arguments", async () => {
  await using sim = await startSim();
  const h = human({ action: "decline" });
  await using s = await connect({ env: simEnv(sim), elicit: h.elicit });
  await call(s.client, "proxmox_write_file_vm", {
    vmid: 100,
    path: "/root/.env",
    content: "PASSWORD=hunter2-hunter2",
  });
  assert.equal(h.asked.length, 1);
  assert.doesNotMatch(h.asked[0].message, /hunter2/);
  assert.match(h.asked[0].message, /path="\/root\/\.env"/);
});

Deno.test("through the real entry point over stdio: the question reaches the client and a decline sends nothing", async () => {
  await using sim = await startSim();
  const h = human({ action: "decline" });
  await using s = await connect({
    env: simEnv(sim),
    elicit: h.elicit,
    process: true,
  });
  sim.requests.length = 0;
  const r = await call(s.client, "proxmox_delete_vm", { vmid: 106 });
  assert.equal(r.isError, true);
  assert.match(r.text, /human declined/);
  assert.equal(h.asked.length, 1);
  assert.match(h.asked[0].message, /VM 106 \(rocky-ci\)/);
  assert.deepEqual(writes(sim), []);
  assert.ok(sim.cluster.guests.has(106));
});

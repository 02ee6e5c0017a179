/**
 * The human confirms destructive calls (MCP elicitation), bound to what was
 * shown. Driven by the SDK client's own `elicitation/create` handler.
 */
import assert from "node:assert/strict";
import { boot } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { setLogWriter } from "../src/log.ts";
import { createHttpApp } from "../src/transports/http/router.ts";
import {
  appTransport,
  call,
  connect,
  execPosts,
  simEnv,
  startSim,
  testClient,
} from "./helpers.ts";
import { human, writes } from "./safety_helpers.ts";

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

/**
 * A 2026-07-28 client of an in-process HTTP app whose human accepts: the
 * answer round's request is kept (`answer`), and `copies` of it are posted
 * at once (1: as a client does).
 */
async function answeringApp(
  sim: Awaited<ReturnType<typeof startSim>>,
  copies = 1,
  env: Record<string, string> = {},
  content: Record<string, boolean> = { confirm: true },
) {
  setLogWriter(() => {});
  const parsed = loadConfig([], {
    ...simEnv(sim),
    MCP_STATE_SECRET: "confirm-replay-secret-0123456789abcdef",
    ...env,
  });
  if (parsed.kind !== "run") throw new TypeError("not a server run");
  const app = createHttpApp(await boot(parsed.config));
  const port = parsed.config.port;
  const kept: { answer?: { url: string; init: RequestInit }; texts: string[] } =
    { texts: [] };
  const client = testClient({
    era: "2026-07-28",
    elicit: () => ({ action: "accept", content }),
  }, "replay-test");
  await client.connect(
    appTransport(port, async (url, init) => {
      const req = () => new Request(url, init);
      if (
        typeof init.body === "string" && init.body.includes("inputResponses")
      ) {
        kept.answer = { url: String(url), init };
        const all = await Promise.all(
          Array.from({ length: copies }, () => app.fetch(req())),
        );
        // The client reads the first; the others are read here.
        for (const r of all.slice(1)) kept.texts.push(await r.text());
        return all[0];
      }
      return app.fetch(req());
    }),
  );
  return {
    client,
    kept,
    /** Posts the kept answer round again: the response's text. */
    async replay(): Promise<string> {
      const a = kept.answer!;
      return await (await app.fetch(new Request(a.url, a.init))).text();
    },
    async [Symbol.asyncDispose]() {
      await client.close();
      await app.shutdown();
      setLogWriter();
    },
  };
}

Deno.test("2026-07-28: the answer round posted again is refused as already used, nothing sent: execute_command, write_file_vm, add_firewall_rule, restore_backup without vmid", async () => {
  const cases: [string, Record<string, unknown>][] = [
    ["proxmox_execute_command", { vmid: 101, command: "echo once" }],
    ["proxmox_write_file_vm", { vmid: 101, path: "/tmp/once", content: "x" }],
    ["proxmox_add_firewall_rule", {
      vmid: 100,
      type: "in",
      action: "ACCEPT",
      proto: "tcp",
      dport: "2222",
    }],
  ];
  for (const [tool, args] of cases) {
    await using sim = await startSim();
    await using a = await answeringApp(sim);
    const first = await call(a.client, tool, args);
    assert.ok(!first.isError, `${tool}: ${first.text}`);
    const done = writes(sim).length;
    assert.ok(done >= 1, tool);
    const again = await a.replay();
    assert.match(again, /Not done: this confirmation was already used/, tool);
    assert.match(again, /Nothing was sent to Proxmox/, tool);
    assert.equal(writes(sim).length, done, `${tool}: no write on the replay`);
  }
  {
    // restore_backup without vmid: no guest digest binds the answer.
    await using sim = await startSim();
    await using a = await answeringApp(sim);
    const backups = await call(a.client, "proxmox_list_backups", {});
    const volid = (backups.data as { backups: { volid: string }[] })
      .backups[0].volid;
    const first = await call(a.client, "proxmox_restore_backup", {
      volid,
      wait: false,
    });
    assert.ok(!first.isError, first.text);
    const restores = () =>
      writes(sim).filter((w) => w.method === "POST").length;
    const done = restores();
    const again = await a.replay();
    assert.match(again, /Not done: this confirmation was already used/);
    assert.equal(restores(), done, "restored once");
  }
});

Deno.test("2026-07-28: two copies of one answer round racing: one runs, the other is refused as already used", async () => {
  await using sim = await startSim();
  await using a = await answeringApp(sim, 2);
  const res = await call(a.client, "proxmox_execute_command", {
    vmid: 101,
    command: "echo race",
  });
  assert.equal(a.kept.texts.length, 1);
  const refused = [res.text, a.kept.texts[0]].filter((t) =>
    /Not done: this confirmation was already used/.test(t)
  );
  assert.equal(refused.length, 1, `${res.text}\n${a.kept.texts[0]}`);
  assert.match(res.isError ? a.kept.texts[0] : res.text, /race/);
  assert.equal(execPosts(sim), 1);
});

Deno.test("2026-07-28 under MCP_LOCKDOWN: a release answer taken again shows the held output again and runs nothing", async () => {
  await using sim = await startSim();
  await using a = await answeringApp(
    sim,
    1,
    { MCP_LOCKDOWN: "true", MCP_CONFIRM: "never" },
    { release: true },
  );
  const res = await call(a.client, "proxmox_execute_command", {
    vmid: 101,
    command: "echo held-once",
  });
  assert.ok(!res.isError, res.text);
  assert.match(res.text, /held-once/);
  const again = await a.replay();
  assert.match(again, /held-once/);
  assert.equal(execPosts(sim), 1);
});

Deno.test("the question says the backup count is unknown, naming the storage, when a backup storage cannot be read; never a bare 0", async () => {
  await using sim = await startSim();
  const h = human({ action: "decline" });
  await using s = await connect({ env: simEnv(sim), elicit: h.elicit });
  sim.faults.inject({
    path: /\/storage\/nas-backup\/content$/,
    times: Infinity,
    fault: {
      kind: "status",
      status: 500,
      message: "storage 'nas-backup' is not online",
    },
  });
  await call(s.client, "proxmox_delete_vm", { vmid: 106 });
  assert.match(
    h.asked[0].message,
    /Backups on record: \d+ on the storages that could be read; unknown on nas-backup \(could not be read\)/,
  );
  // Every backup storage down: unknown, not 0.
  sim.faults.inject({
    path: /\/storage\/[^/]+\/content$/,
    times: Infinity,
    fault: { kind: "status", status: 500, message: "storage is not online" },
  });
  await call(s.client, "proxmox_delete_vm", { vmid: 106 });
  assert.match(
    h.asked[1].message,
    /Backups on record: unknown \(No backup storage could be read: .*nas-backup/,
  );
  assert.doesNotMatch(h.asked[1].message, /Backups on record: 0/);
  assert.deepEqual(writes(sim), []);
});

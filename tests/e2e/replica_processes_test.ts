/**
 * Replicas as two real server processes over HTTP behind one client that
 * sends each tools/call round to the other process than the last (a load
 * balancer with `lb_policy random` at its worst): without MCP_STATE_SECRET (a
 * random key per process) each warns at start and the other one refuses;
 * with the same secret, each answer is taken by the process that did not
 * ask, and nothing runs twice. The same refusals between two apps in process:
 * tests/replica_state_test.ts.
 */
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import {
  call,
  type ElicitAnswer,
  execPosts,
  simEnv,
  startSim,
  testClient,
  writes,
} from "../helpers.ts";
import { spawnHttp } from "../http_server.ts";

const SECRET = "replica-state-secret-0123456789abcdef";

/**
 * A 2026-07-28 client of two server processes whose human accepts every
 * question: each tools/call round goes to the other process than the last,
 * so every answer is taken by the process that did not ask.
 */
async function crossing(baseA: string, baseB: string) {
  const served: string[] = [];
  let asked = 0;
  const client = testClient({
    era: "2026-07-28",
    elicit: ({ message }): ElicitAnswer => {
      asked++;
      const release = /Show the output/.test(message);
      return {
        action: "accept",
        content: release ? { release: true } : { confirm: true },
      };
    },
  }, "replica-test");
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${baseA}/mcp`), {
      fetch: (url: string | URL, init?: RequestInit) => {
        let to = baseA;
        if (
          typeof init?.body === "string" && init.body.includes('"tools/call"')
        ) {
          to = served.length % 2 ? baseB : baseA;
          served.push(to === baseA ? "A" : "B");
        }
        return fetch(String(url).replace(baseA, to), init);
      },
    }),
  );
  return {
    client,
    served,
    asked: () => asked,
    [Symbol.asyncDispose]: () => client.close(),
  };
}

Deno.test("two server processes sharing MCP_STATE_SECRET: each answer taken by the process that did not ask; deleted once, the command ran once", async () => {
  await using sim = await startSim();
  const env = {
    ...simEnv(sim),
    MCP_STATE_SECRET: SECRET,
    MCP_LOCKDOWN: "true",
    LOG_LEVEL: "DEBUG",
  };
  await using a = await spawnHttp(env);
  await using b = await spawnHttp(env);
  const x = await crossing(a.base, b.base);
  const { client, served } = x;
  try {
    const del = await call(client, "proxmox_delete_vm", { vmid: 106 });
    assert.ok(!del.isError, del.text);
    const exec = await call(client, "proxmox_execute_command", {
      vmid: 101,
      command: "echo held-in-process-A",
    });
    assert.ok(!exec.isError, exec.text);
    assert.match(exec.data.stdout, /held-in-process-A/);
  } finally {
    await client.close();
  }
  // delete: asked on A, done on B; execute: confirmation asked on A, run on
  // B (which holds the output), released on A.
  assert.deepEqual(served, ["A", "B", "A", "B", "A"]);
  assert.equal(x.asked(), 3, "asked once per question");
  assert.deepEqual(
    writes(sim).map((w) => `${w.method} ${w.path}`),
    [
      "DELETE /nodes/{node}/qemu/{vmid}",
      "POST /nodes/{node}/qemu/{vmid}/agent/exec",
    ],
    "one delete, one exec: nothing twice",
  );
  assert.ok(!sim.cluster.guests.has(106));
  assert.equal(execPosts(sim), 1, "the command ran once, in B");
  assert.match(b.stderr(), /proxmox_delete_vm ok/);
  assert.match(b.stderr(), /proxmox_execute_command asks the human to release/);
  assert.doesNotMatch(a.stderr(), /proxmox_execute_command ok/);
  for (const log of [a.stderr(), b.stderr()]) {
    assert.ok(!log.includes(SECRET), "MCP_STATE_SECRET never logged");
    assert.doesNotMatch(log, /MCP_STATE_SECRET is not set/);
  }
});

Deno.test("two server processes without MCP_STATE_SECRET: each warns at start, and B refuses A's confirmation (another key); nothing is sent", async () => {
  await using sim = await startSim();
  await using a = await spawnHttp(simEnv(sim));
  await using b = await spawnHttp(simEnv(sim));
  for (const srv of [a, b]) {
    assert.match(
      srv.stderr(),
      /WARNING .*MCP_STATE_SECRET is not set: .*taken only by this process/,
    );
  }
  await using x = await crossing(a.base, b.base);
  const res = await call(x.client, "proxmox_delete_vm", { vmid: 106 });
  assert.ok(res.isError);
  assert.match(res.text, /^Not done: .*another key.*MCP_STATE_SECRET/);
  assert.deepEqual(x.served, ["A", "B"]);
  assert.equal(writes(sim).length, 0);
  assert.ok(sim.cluster.guests.has(106));
});

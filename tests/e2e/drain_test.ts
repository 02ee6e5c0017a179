/**
 * SIGTERM over HTTP: /healthz answers 503 for MCP_DRAIN_S while calls are
 * still served (a load balancer's health check takes the replica out before
 * it stops taking requests), then the server stops as before and exits 0.
 * The real entry point in a child process: the signal and the exit are the
 * point.
 */
import {
  Client,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { callOk, simEnv, startSim } from "../helpers.ts";
import { spawnHttp } from "../http_server.ts";

async function health(base: string): Promise<number | "refused"> {
  return await fetch(`${base}/healthz`).then(async (r) => {
    await r.body?.cancel();
    return r.status;
  }, () => "refused" as const);
}

Deno.test("SIGTERM with MCP_DRAIN_S: /healthz turns 503 while a new tool call still succeeds, then the process exits 0", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp({
    ...simEnv(sim),
    LOG_LEVEL: "INFO",
    MCP_DRAIN_S: "4",
  });
  assert.equal(await health(srv.base), 200);
  srv.process.kill("SIGTERM");
  const t0 = Date.now();
  let status = await health(srv.base);
  while (status === 200 && Date.now() - t0 < 3_000) {
    await delay(25);
    status = await health(srv.base);
  }
  assert.equal(status, 503, "/healthz says draining");
  // A client that comes now (the balancer has not noticed yet) is served.
  const client = new Client({ name: "drain-test", version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${srv.base}/mcp`)),
  );
  const started = await callOk(client, "proxmox_start_vm", { vmid: 102 });
  assert.equal(started.state, "running");
  assert.ok(Date.now() - t0 < 4_000, "served within the drain");
  await client.close();
  const exit = await srv.status;
  assert.equal(exit.code, 0);
  assert.match(
    srv.stderr(),
    /SIGTERM: \/healthz answers 503 for 4 s \(MCP_DRAIN_S\) while calls are still served[\s\S]*SIGTERM: shutting down[\s\S]*Stopped/,
  );
});

Deno.test("SIGINT (Ctrl-C) stops at once, without the MCP_DRAIN_S wait", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp({
    ...simEnv(sim),
    LOG_LEVEL: "INFO",
    MCP_DRAIN_S: "30",
  });
  assert.equal(await health(srv.base), 200);
  const t0 = Date.now();
  srv.process.kill("SIGINT");
  const exit = await srv.status;
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - t0 < 10_000, `stopped after ${Date.now() - t0} ms`);
  assert.doesNotMatch(srv.stderr(), /answers 503/);
  assert.match(srv.stderr(), /SIGINT: shutting down[\s\S]*Stopped/);
});

Deno.test("a POST whose body is still arriving when shutdown starts is counted in flight: shutdown waits and it is answered", async () => {
  const { boot } = await import("../../src/app.ts");
  const { loadConfig } = await import("../../src/config.ts");
  const { setLogWriter } = await import("../../src/log.ts");
  const { createHttpApp } = await import("../../src/transports/http/router.ts");
  setLogWriter(() => {});
  await using sim = await startSim();
  const parsed = loadConfig([], simEnv(sim));
  if (parsed.kind !== "run") throw new TypeError("not a server run");
  const app = createHttpApp(await boot(parsed.config), { drainMs: 20_000 });
  const body = new TextEncoder().encode(JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name: "proxmox_list_nodes", arguments: {} },
  }));
  const half = Math.floor(body.length / 2);
  const { promise: reading, resolve: isReading } = Promise.withResolvers<
    void
  >();
  const { promise: rest, resolve: sendRest } = Promise.withResolvers<void>();
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(body.slice(0, half));
    },
    async pull(c) {
      // The server has taken the first half and waits for more.
      isReading();
      await rest;
      c.enqueue(body.slice(half));
      c.close();
    },
  });
  const port = parsed.config.port;
  const answered = app.fetch(
    new Request(`http://127.0.0.1:${port}/mcp`, {
      method: "POST",
      headers: {
        host: `127.0.0.1:${port}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
      },
      body: stream,
    }),
  );
  await reading;
  assert.equal(app.busy(), 1, "counted while its body arrives");
  const order: string[] = [];
  const stopped = app.shutdown().then(() => order.push("stopped"));
  const response = answered.then(async (r) => {
    order.push("answered");
    return { status: r.status, text: await r.text() };
  });
  sendRest();
  const r = await response;
  await stopped;
  setLogWriter();
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /pve1/);
  assert.deepEqual(order, ["answered", "stopped"]);
});

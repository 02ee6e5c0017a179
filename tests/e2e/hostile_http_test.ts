/**
 * Reliability: ≥ 10 000 hostile JSON-RPC messages, seeded and reproducible
 * (HOSTILE_SEED=n), POSTed to the real entry point over HTTP (the same flood
 * over stdio: hostile_test.ts): bad JSON, wrong shapes, odd ids, deep
 * nesting, multi-MB strings, and every tool with arguments at and beyond
 * every bound. The process never exits, no POST is answered 5xx, and a normal
 * client works afterwards. Bounded: the flood has a fixed size.
 */
import { setTimeout as delay } from "node:timers/promises";
import {
  Client,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { assertNoSecrets, simEnv } from "../helpers.ts";
import {
  COUNT,
  FloodServer,
  hostileMessages,
  SEED,
  withSim,
} from "./hostile_flood.ts";
import { serverArgs } from "../server_args.ts";

const TOKEN = "hostile-token-0123456789abcdef";

Deno.test(`HTTP: ${COUNT} hostile messages, no exit, every POST answered below 500`, () =>
  withSim(async (sim) => {
    const env = {
      ...Deno.env.toObject(),
      ...simEnv(sim),
      MCP_AUTH_TOKEN: TOKEN,
      LOG_LEVEL: "INFO",
      MCP_DRAIN_S: "0", // no /healthz drain before the stop
    };
    const srv = new FloodServer(
      serverArgs(["--transport", "http", "--port", "0"]),
      env,
      "null",
    );
    const { child, status, errDone } = srv;
    const outDone = child.stdout.pipeTo(new WritableStream());
    let base = "";
    for (let i = 0; i < 400 && !base && !srv.exited; i++) {
      const m = /Listening on (http:\/\/[\d.]+:\d+)/.exec(srv.err);
      if (m) base = m[1];
      else await delay(25);
    }
    assert.ok(base, `the server did not start:\n${srv.err}`);
    const flood = hostileMessages(SEED + 1, COUNT);
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < flood.length && !srv.exited) {
        const m = flood[next++];
        const res = await fetch(`${base}/mcp`, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${TOKEN}`,
            "Content-Type": "application/json",
            Accept: "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
          },
          body: m.line,
        });
        await res.body?.cancel();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.ok(!srv.exited, `the server exited:\n${srv.err.slice(-2000)}`);
    const fivexx = [...statuses].filter(([s]) => s >= 500);
    assert.deepEqual(
      fivexx,
      [],
      `5xx answers: ${JSON.stringify([...statuses])}`,
    );
    // A normal client still works.
    const client = new Client({ name: "after-the-flood", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
      }),
    );
    const r = await client.callTool({
      name: "proxmox_list_nodes",
      arguments: {},
    });
    assert.ok(!r.isError);
    await client.close();
    child.kill("SIGTERM");
    await status;
    await Promise.all([outDone, errDone]);
    assert.doesNotMatch(
      srv.err,
      /\n {4}at |Uncaught|panicked/,
      "no stack trace",
    );
    assertNoSecrets(srv.err, env);
  }));

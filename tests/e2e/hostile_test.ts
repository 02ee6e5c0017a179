/**
 * Reliability: ≥ 10 000 hostile JSON-RPC messages, seeded and reproducible
 * (HOSTILE_SEED=n), at the real entry point over stdio (the same flood over
 * HTTP: hostile_http_test.ts; the flood itself: hostile_flood.ts): bad JSON,
 * wrong shapes, odd ids, deep nesting, multi-MB strings, and every tool with
 * arguments at and beyond every bound. The process never exits, every
 * request with a usable id is answered exactly once, and a normal call works
 * afterwards. Bounded: the flood has a fixed size and each run a deadline.
 */
import { setTimeout as delay } from "node:timers/promises";
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("the flood is reproducible from its seed", () => {
  const a = hostileMessages(7, 200).map((m) => m.line);
  const b = hostileMessages(7, 200).map((m) => m.line);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, hostileMessages(8, 200).map((m) => m.line));
});

Deno.test(`stdio: ${COUNT} hostile messages, no exit, every request answered once`, () =>
  withSim(async (sim) => {
    const env = {
      ...Deno.env.toObject(),
      ...simEnv(sim),
      LOG_LEVEL: "INFO",
    };
    const srv = new FloodServer(serverArgs(), env, "piped");
    const { child, status, errDone } = srv;
    const answers = new Map<number, number>();
    let buffered = "";
    let badLines = 0;
    const outDone = (async () => {
      for await (const c of child.stdout) {
        buffered += decoder.decode(c, { stream: true });
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          try {
            const m = JSON.parse(line);
            if (m.jsonrpc !== "2.0") badLines++;
            if (typeof m.id === "number") {
              answers.set(m.id, (answers.get(m.id) ?? 0) + 1);
            }
          } catch {
            badLines++;
          }
        }
      }
    })();
    const writer = child.stdin.getWriter();
    const send = (line: string) => writer.write(encoder.encode(line + "\n"));
    // Hostile lines before the opening, then the opening, then the flood.
    await send("null");
    await send("[]");
    await send(JSON.stringify({
      jsonrpc: "2.0",
      id: 900_001,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "hostile", version: "1" },
      },
    }));
    await send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    const flood = hostileMessages(SEED, COUNT);
    const started = Date.now();
    for (const m of flood) await send(m.line);
    await send(JSON.stringify({
      jsonrpc: "2.0",
      id: 900_002,
      method: "tools/call",
      params: { name: "proxmox_list_nodes", arguments: {} },
    }));
    const cancelled = new Set(flood.map((m) => m.cancels));
    const owed = [
      900_001,
      900_002,
      ...flood.flatMap((m) =>
        m.id === undefined || cancelled.has(m.id) ? [] : [m.id]
      ),
    ];
    const deadline = Date.now() + 90_000;
    while (
      !srv.exited && Date.now() < deadline &&
      owed.some((id) => !answers.has(id))
    ) {
      await delay(50);
    }
    assert.ok(!srv.exited, `the server exited:\n${srv.err.slice(-2000)}`);
    const missing = owed.filter((id) => !answers.has(id));
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `${missing.length} of ${owed.length} unanswered after ${
        Math.round((Date.now() - started) / 1000)
      } s: ${
        missing.slice(0, 12).map((id) =>
          flood.find((m) => m.id === id)?.line.slice(0, 120)
        ).join("\n")
      }`,
    );
    const mine = new Set(owed);
    const twice = [...answers].filter(([id, n]) => mine.has(id) && n > 1).map((
      [id],
    ) => id);
    assert.deepEqual(twice.slice(0, 10), [], "answered more than once");
    assert.equal(badLines, 0, "every stdout line is a JSON-RPC message");
    await writer.close();
    const s = await status;
    await Promise.all([outDone, errDone]);
    assert.equal(s.code, 0, srv.err.slice(-2000));
    assert.doesNotMatch(
      srv.err,
      /\n {4}at |Uncaught|panicked/,
      "no stack trace",
    );
    assertNoSecrets(srv.err, env);
  }));

/**
 * Reliability: ≥ 10 000 hostile JSON-RPC messages, seeded and reproducible
 * (HOSTILE_SEED=n), at the real entry point over stdio and over HTTP: bad
 * JSON, wrong shapes, odd ids, deep nesting, multi-MB strings, and every tool
 * with arguments at and beyond every bound. The process never exits, every
 * request with a usable id is answered exactly once, and a normal call works
 * afterwards. Bounded: the flood has a fixed size and each run a deadline.
 */
import { setTimeout as delay } from "node:timers/promises";
import {
  Client,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import catalog from "../src/tools/catalog.json" with { type: "json" };
import {
  assertNoSecrets,
  prng,
  simEnv,
  startSim,
  type TestSim,
} from "./helpers.ts";
import { serverArgs } from "./server_args.ts";

const SEED = Number(Deno.env.get("HOSTILE_SEED") ?? 20261129);
const COUNT = Number(Deno.env.get("HOSTILE_COUNT") ?? 10_000);
const TOKEN = "hostile-token-0123456789abcdef";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const TRAVERSAL = ["..", ".", "a/..", "%2e%2e", "/", "?x=", "#", "\0", "\n"];
const ODD_IDS = [
  "1.5",
  "-0",
  "1e400",
  "9007199254740993",
  "123456789012345678901234567890",
  "{}",
  "[]",
  "true",
  '""',
  JSON.stringify("x".repeat(10_000)),
];

interface Hostile {
  /** One line of text (no newline inside). */
  line: string;
  /** The id a well-formed request carries: an answer is owed. */
  id?: number;
  /** A notifications/cancelled for this id: no answer is owed for it. */
  cancels?: number;
}

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  enum?: unknown[];
  items?: JsonSchema;
};

/** A value for a schema property: valid, at a bound, or beyond it. */
function valueFor(p: JsonSchema, r: () => number): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  if (r() < 0.25) {
    return pick([
      null,
      -1,
      0,
      1.5,
      2 ** 53,
      1e308,
      "",
      "x".repeat(5000),
      [],
      {},
      true,
      ...TRAVERSAL,
    ]);
  }
  if (p.enum) return pick(p.enum);
  switch (p.type) {
    case "integer":
    case "number":
      return pick([100, 101, 102, 200, 999_999_999, 1_000_000_000, 99, 9000]);
    case "boolean":
      return r() < 0.5;
    case "array":
      return Array.from(
        { length: Math.floor(r() * 4) },
        () => pick(["uname", "-a", "ls", ...TRAVERSAL]),
      );
    default:
      return pick(["web-01", "pve1", "local", "x".repeat(300), ...TRAVERSAL]);
  }
}

/** The flood: lines with their ids, reproducible from the seed. */
function hostileMessages(seed: number, count: number): Hostile[] {
  const r = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const tools = (catalog.tools as unknown) as {
    name: string;
    inputSchema: JsonSchema;
  }[];
  const out: Hostile[] = [];
  let next = 1_000;
  const request = (method: string, params?: unknown): Hostile => {
    const id = next++;
    return {
      line: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
      id,
    };
  };
  while (out.length < count) {
    const k = r();
    if (k < 0.15) {
      // Not JSON, or not a JSON-RPC object.
      out.push({
        line: pick([
          "{",
          "[",
          "nul",
          '"',
          "{]",
          '{"jsonrpc":"2.0","id":1,"method":',
          "\u00ff\u00fe",
          "null",
          "1",
          "-1.5",
          "true",
          '"text"',
          "[]",
          "[1,2]",
          '[{"jsonrpc":"2.0","id":1,"method":"ping"}]',
          "{}",
          '{"jsonrpc":"1.0","id":1,"method":"ping"}',
          '{"jsonrpc":"2.0","id":1}',
          '{"jsonrpc":"2.0","method":7,"id":2}',
          '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":5}',
          '{"jsonrpc":"2.0","id":4,"result":{}}',
          '{"jsonrpc":"2.0","id":5,"error":{"code":1}}',
        ]),
      });
    } else if (k < 0.25) {
      // Odd ids on an otherwise good request.
      out.push({
        line: `{"jsonrpc":"2.0","id":${pick(ODD_IDS)},"method":"ping"}`,
      });
    } else if (k < 0.27) {
      // Deep nesting.
      const depth = 2_000 + Math.floor(r() * 8_000);
      out.push({
        line:
          `{"jsonrpc":"2.0","id":${next},"method":"tools/call","params":{"name":"proxmox_list_nodes","arguments":{"x":${
            "[".repeat(depth)
          }${"]".repeat(depth)}}}}`,
        id: next++,
      });
    } else if (k < 0.2705) {
      // Multi-MB strings.
      out.push(request("tools/call", {
        name: pick(tools).name,
        arguments: { vmid: 100, name: "x".repeat(2_000_000) },
      }));
    } else if (k < 0.45) {
      // Every tool, arguments at and beyond every bound.
      const tool = pick(tools);
      const args: Record<string, unknown> = {};
      for (
        const [name, p] of Object.entries(tool.inputSchema.properties ?? {})
      ) {
        if (r() < 0.8) args[name] = valueFor(p, r);
      }
      if (r() < 0.1) args.unexpected = "x";
      // Keep task tools short: a hostile flood must not wait on long tasks.
      args.timeout_s = pick([1, 2, 0, -1, 3601, "5"]);
      out.push(request("tools/call", { name: tool.name, arguments: args }));
    } else if (k < 0.6) {
      out.push(
        request(pick(["ping", "tools/list", "resources/list", "prompts/list"])),
      );
    } else if (k < 0.75) {
      out.push(
        request(
          pick(["nope", "$/x", "tools/call", "initialize", ""]),
          pick([
            undefined,
            {},
            { name: 5 },
            { name: "proxmox_nope" },
            [],
            { _meta: { progressToken: {} } },
          ]),
        ),
      );
    } else {
      // Notifications: never answered. A cancellation of the previous
      // request lifts the duty to answer it (the spec lets it go unanswered).
      const method = pick([
        "notifications/cancelled",
        "notifications/initialized",
        "notifications/progress",
        "notifications/nope",
      ]);
      const params = pick([
        undefined,
        { requestId: next - 1 },
        { requestId: {} },
        5,
      ]);
      out.push({
        line: JSON.stringify({ jsonrpc: "2.0", method, params }),
        cancels: method === "notifications/cancelled" &&
            typeof params === "object" && params.requestId === next - 1
          ? next - 1
          : undefined,
      });
    }
  }
  return out;
}

Deno.test("the flood is reproducible from its seed", () => {
  const a = hostileMessages(7, 200).map((m) => m.line);
  const b = hostileMessages(7, 200).map((m) => m.line);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, hostileMessages(8, 200).map((m) => m.line));
});

/** Runs `fn` with a simulator; the body's error wins over the schema check's. */
async function withSim(fn: (sim: TestSim) => Promise<void>): Promise<void> {
  const sim = await startSim();
  try {
    await fn(sim);
  } catch (e) {
    await sim.close().catch(() => {});
    throw e;
  }
  await sim.close();
}

Deno.test(`stdio: ${COUNT} hostile messages, no exit, every request answered once`, () =>
  withSim(async (sim) => {
    const env = {
      ...Deno.env.toObject(),
      ...simEnv(sim),
      LOG_LEVEL: "INFO",
    };
    const child = new Deno.Command(Deno.execPath(), {
      args: serverArgs(),
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    let err = "";
    const errDone = (async () => {
      for await (const c of child.stderr) err += decoder.decode(c);
    })();
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
      !exited && Date.now() < deadline && owed.some((id) => !answers.has(id))
    ) {
      await delay(50);
    }
    assert.ok(!exited, `the server exited:\n${err.slice(-2000)}`);
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
    assert.equal(s.code, 0, err.slice(-2000));
    assert.doesNotMatch(err, /\n {4}at |Uncaught|panicked/, "no stack trace");
    assertNoSecrets(err, env);
  }));

Deno.test(`HTTP: ${COUNT} hostile messages, no exit, every POST answered below 500`, () =>
  withSim(async (sim) => {
    const env = {
      ...Deno.env.toObject(),
      ...simEnv(sim),
      MCP_AUTH_TOKEN: TOKEN,
      LOG_LEVEL: "INFO",
      MCP_DRAIN_S: "0", // no /healthz drain before the stop
    };
    const child = new Deno.Command(Deno.execPath(), {
      args: serverArgs(["--transport", "http", "--port", "0"]),
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    let err = "";
    const errDone = (async () => {
      for await (const c of child.stderr) err += decoder.decode(c);
    })();
    const outDone = child.stdout.pipeTo(new WritableStream());
    let base = "";
    for (let i = 0; i < 400 && !base && !exited; i++) {
      const m = /Listening on (http:\/\/[\d.]+:\d+)/.exec(err);
      if (m) base = m[1];
      else await delay(25);
    }
    assert.ok(base, `the server did not start:\n${err}`);
    const flood = hostileMessages(SEED + 1, COUNT);
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < flood.length && !exited) {
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
    assert.ok(!exited, `the server exited:\n${err.slice(-2000)}`);
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
    assert.doesNotMatch(err, /\n {4}at |Uncaught|panicked/, "no stack trace");
    assertNoSecrets(err, env);
  }));

/**
 * The hostile flood (issue 8): seeded, reproducible JSON-RPC lines (bad
 * JSON, wrong shapes, odd ids, deep nesting, multi-MB strings, and every tool
 * with arguments at and beyond every bound), sent to the real entry point
 * over stdio by hostile_test.ts and over HTTP by hostile_http_test.ts (two
 * files, so `deno test --parallel` runs the two floods side by side).
 */
import catalog from "../../src/tools/catalog.json" with { type: "json" };
import { prng, startSim, type TestSim } from "../helpers.ts";

/** The flood's seed: `HOSTILE_SEED` replays another flood. */
export const SEED: number = Number(Deno.env.get("HOSTILE_SEED") ?? 20261129);
/** Messages per flood. */
export const COUNT: number = Number(Deno.env.get("HOSTILE_COUNT") ?? 10_000);

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

export interface Hostile {
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
export function hostileMessages(seed: number, count: number): Hostile[] {
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

/** Runs `fn` with a simulator; the body's error wins over the schema check's. */
export async function withSim(
  fn: (sim: TestSim) => Promise<void>,
): Promise<void> {
  const sim = await startSim();
  try {
    await fn(sim);
  } catch (e) {
    await sim.close().catch(() => {});
    throw e;
  }
  await sim.close();
}

/**
 * The real entry point, started for a flood (`args`, `env`; stdout and stderr
 * piped): whether it has exited, and its stderr so far.
 */
export class FloodServer {
  readonly child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;
  /** Resolves once stderr has ended. */
  readonly errDone: Promise<void>;
  exited = false;
  err = "";

  constructor(
    args: string[],
    env: Record<string, string>,
    stdin: "piped" | "null",
  ) {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      env,
      stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    this.status = child.status.then((s) => {
      this.exited = true;
      return s;
    });
    this.errDone = (async () => {
      const text = child.stderr.pipeThrough(new TextDecoderStream());
      for await (const t of text) this.err += t;
    })();
  }
}

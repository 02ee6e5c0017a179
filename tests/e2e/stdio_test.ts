/**
 * The stdio transport's fast opening: answers from src/tools/catalog.json that
 * must be exactly what the SDK answers, then a handoff to the SDK (that the
 * catalog is the SDK's answer: tests/entry_test.ts).
 */
import { setTimeout as delay } from "node:timers/promises";
import assert from "node:assert/strict";
import { buildCatalog } from "../../src/catalog.ts";
import {
  MAX_LINE_BYTES,
  SHUTDOWN_GRACE_MS,
} from "../../src/transports/stdio.ts";
import { assertNoSecrets, simEnv, startSim } from "../helpers.ts";
import { serverArgs } from "../server_args.ts";

/** A 2025-era client's `initialize` request. */
function initialize(id: string | number, protocolVersion: string) {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: {
      protocolVersion,
      capabilities: {},
      clientInfo: { name: "t", version: "1" },
    },
  };
}

class Raw {
  constructor(readonly text: string) {}
}
const RAW = (text: string) => new Raw(text);

/** Sends lines to a fresh server and collects replies until `until` says stop. */
async function converse(
  env: Record<string, string>,
  lines: unknown[],
  until: (replies: Record<string, unknown>[]) => boolean,
  extraArgs: string[] = [],
): Promise<{ replies: Record<string, unknown>[]; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: serverArgs(extraArgs),
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(
    new TextEncoder().encode(
      lines.map((l) => (l instanceof Raw ? l.text : JSON.stringify(l)) + "\n")
        .join(""),
    ),
  );
  const replies: Record<string, unknown>[] = [];
  let buf = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = setTimeout(() => w.close().catch(() => {}), 20_000);
  while (!until(replies)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      replies.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  }
  clearTimeout(deadline);
  await w.close().catch(() => {});
  // After stdin closes the server exits by itself; one that does not fails
  // here (killed, non-zero exit) instead of hanging the suite.
  const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const rest = await reader.read().then(
    async function drain(r): Promise<string> {
      return r.done ? "" : (r.value ?? "") + await reader.read().then(drain);
    },
  );
  const status = await child.status;
  clearTimeout(killer);
  const stderr = new TextDecoder().decode(
    await new Response(child.stderr).arrayBuffer(),
  );
  assert.equal(status.code, 0, `server exit code, stderr: ${stderr}`);
  if (rest.trim()) {
    replies.push(...rest.trim().split("\n").map((l) => JSON.parse(l)));
  }
  return { replies, stderr };
}

Deno.test("a 2025-era opening is answered like the SDK, then a tool call goes through the SDK", async () => {
  await using sim = await startSim();
  const expected = await buildCatalog();
  const { replies } = await converse(simEnv(sim), [
    initialize("init", "2025-06-18"),
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
    { jsonrpc: "2.0", id: 3, method: "ping" },
    {
      jsonrpc: "2.0",
      id: 4,
      method: "tools/call",
      params: { name: "proxmox_list_nodes", arguments: {} },
    },
    { jsonrpc: "2.0", id: 5, method: "tools/list" },
  ], (r) => r.some((m) => m.id === 5) && r.some((m) => m.id === 4));
  // The opening is answered in order; the tool call and the last list run concurrently.
  assert.deepEqual(replies.slice(0, 3).map((r) => r.id), ["init", 2, 3]);
  assert.deepEqual(
    replies.map((r) => r.id).sort(),
    [2, 3, 4, 5, "init"],
    "each request answered once",
  );
  const byId = (id: unknown) => replies.find((r) => r.id === id)!.result;
  assert.deepEqual(byId("init"), {
    protocolVersion: "2025-06-18",
    ...expected.initialize,
  });
  assert.deepEqual(byId(2), { tools: expected.tools });
  assert.deepEqual(byId(3), {});
  const call = byId(4) as { structuredContent: { nodes: unknown[] } };
  assert.equal(call.structuredContent.nodes.length, 3);
  // After the handoff the SDK itself answers tools/list: the same list.
  assert.deepEqual(byId(5), { tools: expected.tools });
});

Deno.test("an unknown protocol version gets the SDK's latest, and a 2026-era request goes to the SDK", async () => {
  await using sim = await startSim();
  const expected = await buildCatalog();
  const { replies } = await converse(simEnv(sim), [
    initialize(1, "1999-01-01"),
  ], (r) => r.length >= 1);
  assert.equal(
    (replies[0].result as { protocolVersion: string }).protocolVersion,
    expected.latestProtocolVersion,
  );

  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
    "io.modelcontextprotocol/clientCapabilities": {},
  };
  const modern = await converse(simEnv(sim), [
    { jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: meta } },
    {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { _meta: meta, name: "proxmox_list_vms", arguments: {} },
    },
  ], (r) => r.some((m) => m.id === 2));
  const list = modern.replies.find((r) => r.id === 1)!.result as {
    tools: { name: string }[];
  };
  assert.deepEqual(
    list.tools.map((t) => t.name),
    expected.tools.map((t) => t.name),
  );
  const vms = modern.replies.find((r) => r.id === 2)!.result as {
    structuredContent: { total: number };
  };
  assert.equal(vms.structuredContent.total, sim.cluster.guests.size);
});

Deno.test("a line that is not JSON gets a parse error and the session goes on", async () => {
  await using sim = await startSim();
  const { replies } = await converse(simEnv(sim), [
    RAW("this is not json"),
    initialize(1, "2025-11-25"),
  ], (r) => r.some((m) => m.id === 1));
  assert.deepEqual(replies[0], {
    jsonrpc: "2.0",
    id: null,
    error: { code: -32700, message: "Parse error" },
  });
  assert.equal(replies[1].id, 1);
});

Deno.test("the demo exits when the client closes stdin (its simulator does not keep it alive)", async () => {
  const { replies } = await converse(
    {},
    [
      initialize(1, "2025-11-25"),
      { jsonrpc: "2.0", method: "notifications/initialized" },
      {
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: { name: "proxmox_list_nodes", arguments: {} },
      },
    ],
    (r) => r.some((m) => m.id === 2),
    ["--demo"],
  );
  const nodes = replies.find((r) => r.id === 2)!.result as {
    structuredContent: { nodes: unknown[] };
  };
  assert.equal(nodes.structuredContent.nodes.length, 3);
});

// ---------------------------------------------------------------------------
// Field hardening (issue 9 items 4 and 6): every line answered or ignored as
// JSON-RPC says, nothing lost at shutdown, linear line reading, cancellation.
// These drive the real entry point in a subprocess: the process is the point.

/** One reply line: its text as written and its parsed value. */
interface Reply {
  raw: string;
  msg: Record<string, unknown>;
}

/** The real server on pipes, with its replies collected as they come. */
class Server {
  readonly replies: Reply[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<void>;
  #stderr = "";
  #stdinOpen = true;

  constructor(env: Record<string, string>) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: serverArgs(),
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    const collect = async () => {
      let buf = "";
      for await (
        const text of this.#child.stdout.pipeThrough(new TextDecoderStream())
      ) {
        buf += text;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const raw = buf.slice(0, i);
          buf = buf.slice(i + 1);
          this.replies.push({ raw, msg: JSON.parse(raw) });
        }
      }
      assert.equal(buf, "", "a reply line without its newline");
    };
    const drainErr = async () => {
      for await (
        const text of this.#child.stderr.pipeThrough(new TextDecoderStream())
      ) this.#stderr += text;
    };
    this.#done = Promise.all([collect(), drainErr()]).then(() => {});
  }

  /** Writes messages (objects, or raw text with RAW) as lines. */
  async send(...lines: unknown[]): Promise<void> {
    await this.write(
      lines.map((l) => (l instanceof Raw ? l.text : JSON.stringify(l)) + "\n")
        .join(""),
    );
  }

  async write(data: string | Uint8Array): Promise<void> {
    await this.#writer.write(
      typeof data === "string" ? new TextEncoder().encode(data) : data,
    );
  }

  /** The reply to `id`, or undefined. */
  reply(id: unknown): Record<string, unknown> | undefined {
    return this.replies.find((r) => r.msg.id === id)?.msg;
  }

  /** Waits until `ready()` holds; fails after `ms`. */
  async until(ready: () => boolean, what: string, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (!ready()) {
      if (Date.now() > end) {
        throw new Error(
          `Timed out waiting for ${what}; replies: ${
            this.replies.map((r) => r.raw.slice(0, 300)).join("\n")
          }; stderr: ${this.#stderr}`,
        );
      }
      await delay(20);
    }
  }

  async closeStdin(): Promise<void> {
    if (!this.#stdinOpen) return;
    this.#stdinOpen = false;
    await this.#writer.close().catch(() => {});
  }

  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Kills the server if it is still running (a failed test). */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await this.#child.status;
    await this.closeStdin();
    await this.#done.catch(() => {});
  }

  /** Waits for the exit (SIGKILL after `ms`); all output read. */
  async exit(ms = 15_000): Promise<Deno.CommandStatus & { stderr: string }> {
    const killer = setTimeout(() => this.#child.kill("SIGKILL"), ms);
    const status = await this.#child.status;
    clearTimeout(killer);
    await this.closeStdin();
    await this.#done;
    return { ...status, stderr: this.#stderr };
  }
}

const INITIALIZED = { jsonrpc: "2.0", method: "notifications/initialized" };
const callTool = (id: unknown, name: string) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: {} },
});

/**
 * A loopback front for the simulator that holds back chosen Proxmox requests:
 * `hang` ones until the server drops them (recorded in `aborted`), `slow`
 * ones for `slowMs` before passing them on. What the server's signals do to
 * its Proxmox requests shows here.
 */
function front(
  sim: { url: string },
  opts: { hang?: RegExp; slow?: RegExp; slowMs?: number },
) {
  const held: string[] = [];
  const aborted: string[] = [];
  const closing = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      const path = url.pathname;
      if (opts.hang?.test(path)) {
        held.push(path);
        const gone = new Promise<void>((r) =>
          req.signal.addEventListener("abort", () => r())
        );
        await Promise.race([gone, closing.promise]);
        if (req.signal.aborted) aborted.push(path);
        return new Response(null, { status: 503 });
      }
      if (opts.slow?.test(path)) {
        held.push(path);
        await delay(opts.slowMs ?? 1000);
      }
      const headers = new Headers(req.headers);
      headers.delete("host");
      return await fetch(new URL(path + url.search, sim.url), {
        method: req.method,
        headers,
        body: req.body ? await req.arrayBuffer() : undefined,
      });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    held,
    aborted,
    async [Symbol.asyncDispose]() {
      closing.resolve();
      await server.shutdown();
    },
  };
}

/**
 * Hostile lines and what each must get: a JSON-RPC error whose line starts
 * with `expect` (the id exactly as sent, the code), or nothing.
 */
function hostile(p: string): { line: string; expect?: string }[] {
  const err = (id: string, code: number) =>
    `{"jsonrpc":"2.0","id":${id},"error":{"code":${code},`;
  const nul = (code: number) => err("null", code);
  const q = (s: string) => JSON.stringify(`${p}-${s}`);
  return [
    { line: "null", expect: nul(-32600) },
    { line: "42", expect: nul(-32600) },
    { line: '"ping"', expect: nul(-32600) },
    { line: "true", expect: nul(-32600) },
    { line: "[]", expect: nul(-32600) },
    {
      line: `[{"jsonrpc":"2.0","id":${q("batch")},"method":"ping"}]`,
      expect: nul(-32600),
    },
    { line: "{}", expect: nul(-32600) },
    {
      line: `{"jsonrpc":"2.0","id":${q("nomethod")}}`,
      expect: err(q("nomethod"), -32600),
    },
    { line: "{not json", expect: nul(-32700) },
    {
      line: `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`,
      expect: err("1.5", -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}`,
      expect: err("9007199254740993", -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":1e400,"method":"ping"}`,
      expect: err("1e400", -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":-1e21,"method":"ping"}`,
      expect: err("-1e21", -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`,
      expect: nul(-32600),
    },
    { line: `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, expect: nul(-32600) },
    {
      line: `{"jsonrpc":"2.0","id":true,"method":"ping"}`,
      expect: nul(-32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":null,"method":"ping"}`,
      expect: nul(-32600),
    },
    {
      line: `{"jsonrpc":"1.0","id":${q("v1")},"method":"ping"}`,
      expect: err(q("v1"), -32600),
    },
    {
      line: `{"id":${q("nov")},"method":"ping"}`,
      expect: err(q("nov"), -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":${q("m")},"method":7}`,
      expect: err(q("m"), -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":${q("arr")},"method":"ping","params":[1]}`,
      expect: err(q("arr"), -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":${
        q("pnull")
      },"method":"ping","params":null}`,
      expect: err(q("pnull"), -32600),
    },
    {
      line: `{"jsonrpc":"2.0","id":${q("deep")},"method":"ping","params":{"x":${
        "[".repeat(50_000)
      }${"]".repeat(50_000)}}}`,
      expect: undefined, // a well-formed ping: answered (checked apart)
    },
    // Notifications and responses are never answered, whatever their shape.
    { line: `{"jsonrpc":"2.0","method":5}` },
    { line: `{"jsonrpc":"2.0","method":"notifications/x","params":[]}` },
    {
      line:
        `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{"x":1}}}`,
    },
    { line: `{"jsonrpc":"2.0","id":${q("resp")},"result":{}}` },
    { line: `{"jsonrpc":"2.0","id":1.5,"error":{"code":1,"message":"x"}}` },
    { line: `{"jsonrpc":"2.0","result":{}}` },
    { line: "   " },
  ];
}

Deno.test("hostile lines each get a JSON-RPC error or are ignored, before and after the SDK takes over, and the process never exits", async () => {
  await using sim = await startSim();
  await using server = new Server(simEnv(sim));
  const phases = ["before-init", "fast-path", "after-handoff"];
  const expected: string[] = [];
  const send = async (phase: string) => {
    const lines = hostile(phase);
    for (const l of lines) if (l.expect) expected.push(l.expect);
    await server.send(...lines.map((l) => RAW(l.line)));
    await server.send({ jsonrpc: "2.0", id: `${phase}-alive`, method: "ping" });
  };
  await send(phases[0]);
  await server.send(initialize("init", "2025-11-25"), INITIALIZED);
  await send(phases[1]);
  await server.send(callTool("call-1", "proxmox_list_nodes"));
  await server.until(() => !!server.reply("call-1"), "the first tool call");
  await send(phases[2]);
  await server.send(callTool("call-2", "proxmox_list_vms"));
  await server.until(
    () => !!server.reply("call-2") && !!server.reply("after-handoff-alive"),
    "the last replies",
  );
  await server.closeStdin();
  const { code, stderr } = await server.exit();
  assert.equal(code, 0, `exit code; stderr: ${stderr}`);
  assertNoSecrets(stderr, simEnv(sim));

  // Each bad line got exactly its error, nothing else was answered.
  const left = server.replies.map((r) => r.raw);
  for (const prefix of expected) {
    const i = left.findIndex((raw) => raw.startsWith(prefix));
    assert.ok(i >= 0, `no reply starting with ${prefix}`);
    left.splice(i, 1);
  }
  const ids = left.map((raw) => JSON.parse(raw).id).sort();
  assert.deepEqual(
    ids,
    [
      "after-handoff-alive",
      "after-handoff-deep",
      "before-init-alive",
      "before-init-deep",
      "call-1",
      "call-2",
      "fast-path-alive",
      "fast-path-deep",
      "init",
    ].sort(),
    `unexpected replies: ${left.join("\n")}`,
  );
  const nodes = server.reply("call-1")!.result as {
    structuredContent: { nodes: unknown[] };
  };
  assert.equal(nodes.structuredContent.nodes.length, 3);
  for (const p of phases) {
    assert.deepEqual(server.reply(`${p}-deep`)!.result, {}, `${p} deep ping`);
  }
});

Deno.test("a 64 MiB line is refused with an error in seconds (linear reading), a line under the 4 MiB limit is read, an over-long request is answered with its id (first or last), an over-long response is not, and the session goes on", async () => {
  await using sim = await startSim();
  await using server = new Server(simEnv(sim));
  await server.send(initialize("init", "2025-11-25"), INITIALIZED);
  await server.until(() => !!server.reply("init"), "initialize");
  // Just under the limit: read and answered.
  const head = `{"jsonrpc":"2.0","id":"under","method":"ping","params":{"x":"`;
  const tail = `"}}`;
  const under = head + "a".repeat(MAX_LINE_BYTES - head.length - tail.length) +
    tail;
  assert.equal(under.length, MAX_LINE_BYTES);
  const started = performance.now();
  await server.write(under + "\n");
  // 64 MiB, in pieces as a client writes them, then the next request.
  const big = new TextEncoder().encode(
    `{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"name":"proxmox_list_nodes","arguments":{"x":"${
      "b".repeat(64 * 1024 * 1024)
    }"}}}\n`,
  );
  const writing = (async () => {
    for (let off = 0; off < big.length; off += 1 << 20) {
      await server.write(big.subarray(off, off + (1 << 20)));
    }
    // As the SDK's client writes a request (id last), then a huge response:
    // the first is answered with its id, the second (a response) is not.
    const pad = "c".repeat(6 * 1024 * 1024);
    await server.send(
      RAW(
        `{"method":"tools/call","params":{"name":"proxmox_list_nodes","arguments":{"x":"${pad}"}},"jsonrpc":"2.0","id":9007199254740993}`,
      ),
      {
        result: { content: [{ type: "text", text: pad }] },
        jsonrpc: "2.0",
        id: 7,
      },
      callTool("after", "proxmox_list_nodes"),
    );
  })();
  writing.catch(() => {}); // a server that fails is killed while we write
  await server.until(() => !!server.reply("after"), "the call after", 20_000);
  await writing;
  const seconds = (performance.now() - started) / 1000;
  assert.deepEqual(server.reply("under")!.result, {});
  assert.deepEqual(server.reply("big"), {
    jsonrpc: "2.0",
    id: "big",
    error: {
      code: -32600,
      message:
        `Invalid Request: message longer than ${MAX_LINE_BYTES} bytes (the limit for one line)`,
    },
  });
  assert.ok(
    server.replies.some((r) =>
      r.raw.startsWith(
        `{"jsonrpc":"2.0","id":9007199254740993,"error":{"code":-32600,`,
      )
    ),
    "the over-long request with its id last is answered with that id",
  );
  assert.equal(server.replies.length, 5, "init, under, big, id-last, after");
  const after = server.reply("after")!.result as {
    structuredContent: { nodes: unknown[] };
  };
  assert.equal(after.structuredContent.nodes.length, 3);
  assert.ok(seconds < 15, `68 MiB took ${seconds.toFixed(1)} s`);
  await server.closeStdin();
  assert.equal((await server.exit()).code, 0);
});

Deno.test("requests sent just before stdin closes (the last without a newline) are all answered before the process exits", async () => {
  await using sim = await startSim();
  for (let round = 0; round < 3; round++) {
    await using server = new Server(simEnv(sim));
    await server.send(
      initialize("init", "2025-11-25"),
      INITIALIZED,
      callTool("nodes", "proxmox_list_nodes"),
      callTool("vms", "proxmox_list_vms"),
      // A Windows line end is a line end.
      RAW(
        JSON.stringify({ jsonrpc: "2.0", id: "crlf", method: "ping" }) + "\r",
      ),
    );
    // The last line needs no newline: stdin's end ends it.
    await server.write(
      JSON.stringify({ jsonrpc: "2.0", id: "ping", method: "ping" }),
    );
    await server.closeStdin();
    const { code, stderr } = await server.exit();
    assert.equal(code, 0, stderr);
    const nodes = server.reply("nodes")?.result as {
      structuredContent: { nodes: unknown[] };
    };
    assert.equal(nodes?.structuredContent.nodes.length, 3, `round ${round}`);
    const vms = server.reply("vms")?.result as {
      structuredContent: { total: number };
    };
    assert.equal(vms?.structuredContent.total, sim.cluster.guests.size);
    assert.deepEqual(server.reply("ping")?.result, {});
    assert.deepEqual(server.reply("crlf")?.result, {});
  }
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal}: reading stops, a call in flight finishes within the grace period, and the process exits 0`, async () => {
    await using sim = await startSim();
    await using pve = front(sim, { slow: /\/nodes$/, slowMs: 1500 });
    await using server = new Server({ ...simEnv(sim), PROXMOX_URL: pve.url });
    await server.send(
      initialize("init", "2025-11-25"),
      INITIALIZED,
      callTool("slow", "proxmox_list_nodes"),
    );
    await server.until(() => pve.held.length > 0, "the call to reach Proxmox");
    server.kill(signal);
    await delay(300);
    // Read no more: a request after the signal is not taken on.
    await server.send({ jsonrpc: "2.0", id: "late", method: "ping" })
      .catch(() => {});
    const { code, stderr } = await server.exit();
    assert.equal(code, 0, stderr);
    const slow = server.reply("slow")?.result as {
      structuredContent: { nodes: unknown[] };
    };
    assert.equal(slow?.structuredContent.nodes.length, 3, stderr);
    assert.equal(server.reply("late"), undefined);
  });
}

Deno.test(`a call still running ${SHUTDOWN_GRACE_MS} ms after SIGTERM is cancelled (its Proxmox request aborted), answered with an error, and the process exits 0`, async () => {
  await using sim = await startSim();
  await using pve = front(sim, { hang: /\/nodes$/ });
  await using server = new Server({ ...simEnv(sim), PROXMOX_URL: pve.url });
  await server.send(
    initialize("init", "2025-11-25"),
    INITIALIZED,
    callTool("stuck", "proxmox_list_nodes"),
  );
  await server.until(() => pve.held.length > 0, "the call to reach Proxmox");
  const t0 = performance.now();
  server.kill("SIGTERM");
  const { code, stderr } = await server.exit(SHUTDOWN_GRACE_MS + 10_000);
  const waited = performance.now() - t0;
  assert.equal(code, 0, stderr);
  assert.ok(
    waited >= SHUTDOWN_GRACE_MS - 100 && waited < SHUTDOWN_GRACE_MS + 5000,
    `exited ${waited.toFixed(0)} ms after SIGTERM`,
  );
  assert.deepEqual(server.reply("stuck"), {
    jsonrpc: "2.0",
    id: "stuck",
    error: {
      code: -32000,
      message: `Server shutting down: the call was cancelled after ${
        SHUTDOWN_GRACE_MS / 1000
      } s. A Proxmox task it started goes on; see the node's task log`,
    },
  });
  await server.until(
    () => pve.aborted.length > 0,
    "the Proxmox request to be dropped",
    3000,
  );
  assert.deepEqual(pve.aborted, ["/api2/json/nodes"]);
});

Deno.test("stdin closed then SIGTERM: the grace period ends at once, the running call is cancelled and answered, and the process exits 0", async () => {
  await using sim = await startSim();
  await using pve = front(sim, { hang: /\/nodes$/ });
  await using server = new Server({ ...simEnv(sim), PROXMOX_URL: pve.url });
  await server.send(
    initialize("init", "2025-11-25"),
    INITIALIZED,
    callTool("stuck", "proxmox_list_nodes"),
    { jsonrpc: "2.0", id: "ping", method: "ping" },
  );
  await server.until(() => pve.held.length > 0, "the call to reach Proxmox");
  // As the SDK's client closes: stdin first, SIGTERM 2 s later (here 0.5 s).
  await server.closeStdin();
  await delay(500);
  const t0 = performance.now();
  server.kill("SIGTERM");
  const { code, stderr } = await server.exit();
  const waited = performance.now() - t0;
  assert.equal(code, 0, stderr);
  assert.ok(waited < 5000, `exited ${waited.toFixed(0)} ms after SIGTERM`);
  assert.deepEqual(server.reply("ping")?.result, {});
  const stuck = server.reply("stuck")?.error as {
    code: number;
    message: string;
  };
  assert.equal(stuck?.code, -32000, JSON.stringify(server.replies));
  assert.match(stuck.message, /^Server shutting down: the call was cancelled/);
  await server.until(
    () => pve.aborted.length > 0,
    "the Proxmox request to be dropped",
    3000,
  );
});

Deno.test("notifications/cancelled aborts the running call's Proxmox request, the call gets no answer, and the next call works", async () => {
  await using sim = await startSim();
  await using pve = front(sim, { hang: /\/nodes$/ });
  await using server = new Server({ ...simEnv(sim), PROXMOX_URL: pve.url });
  await server.send(
    initialize("init", "2025-11-25"),
    INITIALIZED,
    callTool("stuck", "proxmox_list_nodes"),
  );
  await server.until(() => pve.held.length > 0, "the call to reach Proxmox");
  await server.send({
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: "stuck", reason: "user pressed stop" },
  });
  await server.until(
    () => pve.aborted.length > 0,
    "the Proxmox request to be dropped",
    5000,
  );
  await server.send(callTool("next", "proxmox_list_vms"));
  await server.until(() => !!server.reply("next"), "the next call");
  // Nothing is left in flight: closing stdin exits at once, no grace wait.
  const t0 = performance.now();
  await server.closeStdin();
  const { code } = await server.exit();
  assert.equal(code, 0);
  assert.ok(performance.now() - t0 < 5000, "waited for a cancelled call");
  assert.equal(
    server.reply("stuck"),
    undefined,
    "a cancelled call is not answered",
  );
});

/**
 * Test harness: a simulator validated against the official PVE schema, and
 * the server driven by the SDK Client: in process (createServer over the
 * in-memory transport) for tool behaviour, or the real entry point
 * (src/main.ts) over stdio where the process is the point.
 */
import {
  Client,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import assert from "node:assert/strict";
import type { Simulator } from "../sim/mod.ts";
import { liveSims } from "./sim_helpers.ts";
import { InMemoryTransport } from "@modelcontextprotocol/server";
import { boot } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { setLogWriter } from "../src/log.ts";
import { createServer } from "../src/server.ts";
import { createHttpApp } from "../src/transports/http/router.ts";
import { serverArgs } from "./server_args.ts";

export { MAIN } from "./server_args.ts";

export {
  defaultPveVersion,
  execPosts,
  officialSchema,
  startSim,
  type TestSim,
  writes,
} from "./sim_helpers.ts";

/** An MCP client's initialize parameters (protocol 2025-06-18), as client `name`. */
export function initializeParams(name = "t") {
  return {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name, version: "1" },
  };
}

/** A JSON-RPC initialize request with `id`, as client `name`. */
export function initializeRequest(id: number | string = 1, name = "t") {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: initializeParams(name),
  };
}

/** A client's opening: initialize (id 1), initialized, tools/list (id 2). */
export function openingRequests(name = "t"): Record<string, unknown>[] {
  return [
    initializeRequest(1, name),
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", id: 2, method: "tools/list" },
  ];
}

/** Date.now stands still at this instant until disposed (`using _clock = frozenClock()`). */
export function frozenClock(): Disposable {
  const now = Date.now;
  const frozen = now();
  Date.now = () => frozen;
  return {
    [Symbol.dispose]: () => {
      Date.now = now;
    },
  };
}

/**
 * What a child `deno` needs of this process's environment when it starts
 * with clearEnv: PATH, HOME and DENO_DIR (where set).
 */
export function childBaseEnv(): Record<string, string> {
  const dir = Deno.env.get("DENO_DIR");
  return {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    ...(dir ? { DENO_DIR: dir } : {}),
  };
}

/** Calls `onLine` with each whole line `stream` writes, in order, until it ends. */
export async function eachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void | Promise<void>,
): Promise<void> {
  let buffer = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffer += text;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      await onLine(line);
    }
  }
}

/**
 * Asserts that a server's log holds none of the secrets in play: its own
 * environment's and every live simulator's (passwords, token secrets, tickets,
 * CSRF tokens). Servers run at DEBUG in tests unless told otherwise, so this
 * checks the most talkative log of every e2e run.
 */
export function assertNoSecrets(
  log: string,
  env: Record<string, string> = {},
): void {
  const secrets = [
    env.PROXMOX_PASSWORD,
    env.PROXMOX_TOKEN_SECRET,
    env.MCP_AUTH_TOKEN,
    ...[...liveSims].flatMap((s) => s.secrets()),
  ].filter((s): s is string => !!s && s.length >= 6);
  for (const s of secrets) {
    assert.ok(
      !log.includes(s),
      `a secret (${s.slice(0, 4)}…) appears in the server's log`,
    );
  }
}
export interface ServerOptions {
  env?: Record<string, string>;
  args?: string[];
  /** Extra deno permission flags (e.g. --allow-read=<ca file>); implies a process. */
  permissions?: string[];
  /**
   * Run the real entry point (src/main.ts) in a child process over stdio.
   * By default the server runs in this process: createServer() over the
   * SDK's in-memory transport, configured from the same flags and
   * environment by the same loadConfig() and boot() as main.ts.
   */
  process?: boolean;
  /**
   * The client can answer form questions (elicitation) with this handler;
   * without it, the client declares no elicitation capability.
   */
  elicit?: (params: ElicitParams) => ElicitAnswer | Promise<ElicitAnswer>;
  /**
   * The protocol era: 2025-11-25 (initialize handshake, a session) or
   * 2026-07-28 (stateless, over the product's HTTP app in process).
   * Default: the SDK client's negotiation over the in-memory transport.
   */
  era?: "2025-11-25" | "2026-07-28";
  /** Over the product's HTTP app (in process, no socket) instead of memory. */
  http?: boolean;
}

export interface ElicitParams {
  message: string;
  requestedSchema?: unknown;
}
export interface ElicitAnswer {
  action: "accept" | "decline" | "cancel";
  content?: Record<string, string | number | boolean | string[]>;
}

/** An SDK client named `name`, with an elicitation handler when asked for (`era` and `elicit` of `options` count). */
export function testClient(
  options: ServerOptions,
  name = "proxmox-mcp-tests",
): Client {
  const client = new Client(
    { name, version: "1.0.0" },
    {
      capabilities: options.elicit ? { elicitation: { form: {} } } : {},
      ...(options.era
        ? {
          versionNegotiation: {
            mode: options.era === "2025-11-25"
              ? "legacy" as const
              : { pin: options.era },
          },
        }
        : {}),
    },
  );
  const elicit = options.elicit;
  if (elicit) {
    client.setRequestHandler(
      "elicitation/create",
      async (req: { params: unknown }) => ({
        ...await elicit(req.params as unknown as ElicitParams),
      }),
    );
  }
  return client;
}

/**
 * A client transport to an HTTP app in this process that serves `port`:
 * `send` gets each request, its init with the Host header a socket would
 * add (a Request made here has none).
 */
export function appTransport(
  port: number,
  send: (url: string | URL, init: RequestInit) => Promise<Response>,
): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(
    new URL(`http://127.0.0.1:${port}/mcp`),
    {
      fetch: (url: string | URL, init?: RequestInit) => {
        const headers = new Headers(init?.headers);
        headers.set("host", `127.0.0.1:${port}`);
        return send(url, { ...init, headers });
      },
    },
  );
}

export interface Connected extends AsyncDisposable {
  client: Client;
  /** Everything the server logged so far. */
  stderr(): string;
  close(): Promise<void>;
}

/** Environment for a server that logs in to `sim` (ticket by default). */
export function simEnv(
  sim: Simulator,
  auth: "ticket" | "token" = "ticket",
): Record<string, string> {
  return auth === "ticket"
    ? {
      PROXMOX_URL: sim.url,
      PROXMOX_USER: sim.credentials.user,
      PROXMOX_PASSWORD: sim.credentials.password,
    }
    : {
      PROXMOX_URL: sim.url,
      PROXMOX_TOKEN_ID: sim.credentials.tokenId,
      PROXMOX_TOKEN_SECRET: sim.credentials.tokenSecret,
    };
}

/**
 * A server connected to the SDK Client: in process by default (fast: no
 * process start, no module loading per test), or as the real entry point in
 * a child process when `process` or `permissions` is given.
 */
export function connect(options: ServerOptions = {}): Promise<Connected> {
  return options.process || options.permissions
    ? connectProcess(options)
    : connectInProcess(options);
}

async function connectInProcess(options: ServerOptions): Promise<Connected> {
  const env = { LOG_LEVEL: "DEBUG", ...options.env };
  const parsed = loadConfig(options.args ?? [], env);
  if (parsed.kind !== "run") throw new TypeError("connect: not a server run");
  const config = parsed.config;
  let log = "";
  setLogWriter((line) => {
    log += line + "\n";
  });
  const caCert = config.caFile
    ? await Deno.readTextFile(config.caFile)
    : undefined;
  const deps = await boot(config, caCert);
  const client = testClient(options);
  let closeServer: () => Promise<unknown>;
  if (options.http || options.era === "2026-07-28") {
    const app = createHttpApp(deps);
    await client.connect(
      appTransport(
        config.port,
        (url, init) => app.fetch(new Request(url, init)),
      ),
    );
    closeServer = () => app.shutdown();
  } else {
    const server = createServer(deps);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    closeServer = () => server.close();
  }
  const close = async () => {
    await client.close();
    await closeServer();
    setLogWriter();
    assertNoSecrets(log, options.env);
  };
  return { client, stderr: () => log, close, [Symbol.asyncDispose]: close };
}

/** Spawns src/main.ts with minimal permissions and connects the SDK Client. */
async function connectProcess(options: ServerOptions): Promise<Connected> {
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: serverArgs(options.args, options.permissions),
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      LOG_LEVEL: "DEBUG",
      ...options.env,
    },
    stderr: "pipe",
  });
  let err = "";
  transport.stderr?.on("data", (c: Uint8Array) => {
    err += new TextDecoder().decode(c);
  });
  const client = testClient(options);
  await client.connect(transport);
  const close = async () => {
    await client.close();
    assertNoSecrets(err, options.env);
  };
  return { client, stderr: () => err, close, [Symbol.asyncDispose]: close };
}

export interface ToolResult {
  isError?: boolean;
  text: string;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/** Calls a tool and returns its text and structured content. */
export async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
  options: {
    onprogress?: (p: { progress: number; message?: string }) => void;
  } = {},
): Promise<ToolResult> {
  const r = await client.callTool(
    { name, arguments: args },
    options.onprogress
      ? { onprogress: options.onprogress, timeout: 60_000 }
      : { timeout: 60_000 },
  );
  const content = r.content as { type: string; text: string }[];
  return {
    isError: r.isError as boolean | undefined,
    text: content.map((c) => c.text).join("\n"),
    data: r.structuredContent,
  };
}

/** Calls a tool and asserts success. */
export async function callOk(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const r = await call(client, name, args);
  assert.ok(!r.isError, `${name} failed: ${r.text}`);
  return r.data;
}

/** mulberry32: a small seeded PRNG, so a randomized test can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

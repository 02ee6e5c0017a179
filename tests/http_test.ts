/**
 * e2e: the HTTP transports. The real entry point (src/main.ts --transport
 * http) is spawned and driven by the SDK Client over Streamable HTTP (2026
 * stateless and 2025 sessions) and over legacy SSE; auth, Host/Origin checks,
 * the loopback rule and graceful shutdown are checked on the wire. Session
 * expiry and the session cap run in-process with short limits.
 */
import {
  Client,
  SSEClientTransport,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";
import { PveClient } from "../src/proxmox/client.ts";
import { createHttpApp } from "../src/transports/http.ts";
import { callOk, simEnv, startSim, type TestSim } from "./helpers.ts";
import { serverArgs } from "./server_args.ts";

const TOKEN = "test-token-0123456789abcdef";
const decoder = new TextDecoder();

interface HttpServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  base: string;
  process: Deno.ChildProcess;
  stderr(): string;
  /** Exit status, once the process ended. */
  status: Promise<Deno.CommandStatus>;
}

/** Spawns src/main.ts over HTTP on an ephemeral port; reads the port from its log. */
async function spawnHttp(
  env: Record<string, string>,
  args: string[] = [],
): Promise<HttpServer> {
  const process = new Deno.Command(Deno.execPath(), {
    args: serverArgs(["--transport", "http", "--port", "0", ...args]),
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>, to: "err" | "out") => {
    for await (const c of s) {
      if (to === "err") err += decoder.decode(c);
      else out += decoder.decode(c);
    }
  };
  const pumps = Promise.all([
    pump(process.stderr, "err"),
    pump(process.stdout, "out"),
  ]);
  const status = process.status.then(async (s) => {
    await pumps;
    return s;
  });
  const deadline = Date.now() + 20_000;
  let host: string | undefined;
  let port: string | undefined;
  let exited = false;
  status.then(() => exited = true);
  while (!port) {
    [, host, port] = /Listening on http:\/\/([\d.]+):(\d+)/.exec(err) ?? [];
    if (port) break;
    if (exited || Date.now() > deadline) {
      throw new Error(`The server did not start:\n${err}${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const close = async () => {
    if (!exited) {
      try {
        process.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await status;
    assert.equal(out, "", "nothing on stdout over HTTP");
  };
  return {
    base: `http://${host}:${port}`,
    process,
    stderr: () => err,
    status,
    [Symbol.asyncDispose]: close,
  };
}

function serverEnv(sim: TestSim, extra: Record<string, string> = {}) {
  return {
    ...simEnv(sim),
    MCP_AUTH_TOKEN: TOKEN,
    LOG_LEVEL: "DEBUG",
    ...extra,
  };
}

const auth = (token = TOKEN) => ({ token: () => Promise.resolve(token) });

async function modernClient(base: string): Promise<Client> {
  const client = new Client({ name: "http-test", version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
      authProvider: auth(),
    }),
  );
  return client;
}

function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

/**
 * The status of a POST sent over a bare TCP connection: fetch() does not let a
 * test choose the Host header.
 */
async function rawStatus(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<number> {
  const url = new URL(base);
  const text = JSON.stringify(body);
  const all: Record<string, string> = {
    Host: url.host,
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "Content-Length": String(new TextEncoder().encode(text).length),
    Connection: "close",
    ...headers,
  };
  const conn = await Deno.connect({
    hostname: url.hostname,
    port: Number(url.port),
  });
  const head = Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await conn.write(
    new TextEncoder().encode(`POST ${path} HTTP/1.1\r\n${head}\r\n${text}`),
  );
  const buf = new Uint8Array(64);
  const n = await conn.read(buf);
  conn.close();
  return Number(
    /^HTTP\/1\.1 (\d{3})/.exec(decoder.decode(buf.subarray(0, n ?? 0)))?.[1],
  );
}

const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "raw", version: "1" },
  },
};

function assertNoSecrets(log: string, sim: TestSim): void {
  for (const s of [TOKEN, ...sim.secrets()]) {
    assert.ok(!log.includes(s), "no secret in the server log");
  }
}

Deno.test("Streamable HTTP: a 2026-07-28 client lists and calls tools statelessly", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(serverEnv(sim));
  const client = await modernClient(srv.base);
  try {
    assert.equal(client.getNegotiatedProtocolVersion?.(), "2026-07-28");
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === "proxmox_list_vms"));
    const nodes = await callOk(client, "proxmox_list_nodes");
    assert.deepEqual(nodes.nodes.map((n: { node: string }) => n.node), [
      "pve1",
      "pve2",
      "pve3",
    ]);
    const stats = await callOk(client, "proxmox_get_vm_stats", { vmid: 100 });
    assert.equal(stats.name, "web-01");
  } finally {
    await client.close();
  }
  // Stateless: a request carries everything, no session is handed out.
  const r = await post(`${srv.base}/mcp`, {
    jsonrpc: "2.0",
    id: 7,
    method: "tools/list",
    params: {
      _meta: {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
        "io.modelcontextprotocol/clientCapabilities": {},
      },
    },
  }, {
    Authorization: `Bearer ${TOKEN}`,
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/list",
  });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get("mcp-session-id"), null);
  const body = await r.json();
  assert.ok(body.result.tools.length > 3);
  assertNoSecrets(srv.stderr(), sim);
});

Deno.test("Streamable HTTP: a 2025-era client gets a session, calls tools, and DELETE ends it", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(serverEnv(sim));
  const transport = new StreamableHTTPClientTransport(
    new URL(`${srv.base}/mcp`),
    { authProvider: auth() },
  );
  const client = new Client({ name: "http-test-2025", version: "1.0.0" });
  await client.connect(transport);
  const sid = transport.sessionId;
  assert.match(sid ?? "", /^[0-9a-f-]{36}$/, "a session id");
  assert.notEqual(client.getNegotiatedProtocolVersion?.(), "2026-07-28");
  const vms = await callOk(client, "proxmox_list_vms", { type: "lxc" });
  assert.ok(vms.rows.length >= 3);
  await transport.terminateSession();
  await client.close();
  const r = await post(`${srv.base}/mcp`, {
    jsonrpc: "2.0",
    id: 2,
    method: "tools/list",
  }, { Authorization: `Bearer ${TOKEN}`, "Mcp-Session-Id": sid! });
  assert.equal(r.status, 404, "the deleted session is gone");
  await r.body?.cancel();
  assertNoSecrets(srv.stderr(), sim);
});

Deno.test("legacy HTTP+SSE: the SDK's SSEClientTransport lists and calls tools", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(serverEnv(sim), ["--transport", "sse"]);
  const client = new Client({ name: "sse-test", version: "1.0.0" });
  await client.connect(
    new SSEClientTransport(new URL(`${srv.base}/sse`), {
      authProvider: auth(),
    }),
  );
  try {
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === "proxmox_list_nodes"));
    const progress: string[] = [];
    const r = await client.callTool(
      { name: "proxmox_start_vm", arguments: { vmid: 102 } },
      { onprogress: (p) => progress.push(p.message ?? ""), timeout: 30_000 },
    );
    assert.ok(!r.isError, JSON.stringify(r.content));
    assert.equal(sim.cluster.guests.get(102)?.status, "running");
    assert.ok(progress.length > 0, "progress notifications over the stream");
  } finally {
    await client.close();
  }
  // The POST endpoint needs a live session and the same token.
  const stale = await post(`${srv.base}/messages?sessionId=nope`, INIT, {
    Authorization: `Bearer ${TOKEN}`,
  });
  assert.equal(stale.status, 404);
  await stale.body?.cancel();
  const anon = await post(`${srv.base}/messages?sessionId=nope`, INIT);
  assert.equal(anon.status, 401);
  await anon.body?.cancel();
});

Deno.test("401 with WWW-Authenticate for a missing or wrong token on every MCP path; /healthz is open and secret-free", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(serverEnv(sim));
  const cases: Record<string, string>[] = [
    {},
    { Authorization: "Bearer wrong-token-123456789" },
  ];
  for (const headers of cases) {
    const r = await post(`${srv.base}/mcp`, INIT, headers);
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer realm=/);
    await r.body?.cancel();
    const s = await fetch(`${srv.base}/sse`, { headers });
    assert.equal(s.status, 401);
    await s.body?.cancel();
  }
  const wrong = await post(`${srv.base}/mcp`, INIT, {
    Authorization: "Bearer wrong-token-123456789",
  });
  assert.match(wrong.headers.get("www-authenticate")!, /invalid_token/);
  await wrong.body?.cancel();
  const ok = await post(`${srv.base}/mcp`, INIT, {
    Authorization: `Bearer ${TOKEN}`,
  });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();

  const health = await fetch(`${srv.base}/healthz`);
  assert.equal(health.status, 200);
  const text = await health.text();
  assert.deepEqual(JSON.parse(text), { status: "ok" });
  assert.equal(sim.requests.length, 0, "no Proxmox request for any of this");

  // A client with the wrong token fails to connect.
  const client = new Client({ name: "bad", version: "1" });
  await assert.rejects(
    client.connect(
      new StreamableHTTPClientTransport(new URL(`${srv.base}/mcp`), {
        authProvider: auth("wrong-token-123456789"),
      }),
    ),
  );
});

Deno.test("DNS-rebinding protection: 403 for a foreign Origin or Host; loopback and MCP_ALLOWED_HOSTS pass", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(
    serverEnv(sim, { MCP_ALLOWED_HOSTS: "mcp.example.com" }),
  );
  const H = { Authorization: `Bearer ${TOKEN}` };
  const cases: [Record<string, string>, number][] = [
    [{ Origin: "http://evil.example.net" }, 403],
    [{ Origin: "null" }, 403],
    [{ Host: "evil.example.net" }, 403],
    [{ Host: "evil.example.net", Origin: "http://evil.example.net" }, 403],
    [{ Origin: "http://localhost:6274" }, 200],
    [{ Origin: "https://mcp.example.com" }, 200],
    [{ Host: "mcp.example.com:8443" }, 200],
  ];
  for (const [headers, status] of cases) {
    const got = await rawStatus(srv.base, "/mcp", INIT, { ...H, ...headers });
    assert.equal(got, status, JSON.stringify(headers));
  }
  // A bad Origin is refused before the token is even looked at.
  const r = await fetch(`${srv.base}/sse`, {
    headers: { Origin: "http://evil.example.net" },
  });
  assert.equal(r.status, 403);
  await r.body?.cancel();
});

Deno.test("the bind address is an allowed Host without MCP_ALLOWED_HOSTS", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(serverEnv(sim), ["--host", "127.0.0.2"]);
  assert.equal(new URL(srv.base).hostname, "127.0.0.2");
  const r = await post(`${srv.base}/mcp`, INIT, {
    Authorization: `Bearer ${TOKEN}`,
  });
  assert.equal(r.status, 200);
  await r.body?.cancel();
  assert.equal(
    await rawStatus(srv.base, "/mcp", INIT, {
      Authorization: `Bearer ${TOKEN}`,
      Host: "127.0.0.3",
    }),
    403,
  );
});

Deno.test("the server refuses a non-loopback bind without MCP_AUTH_TOKEN (exit code 2)", async () => {
  await using sim = await startSim();
  const out = await new Deno.Command(Deno.execPath(), {
    args: serverArgs([
      "--transport",
      "http",
      "--host",
      "0.0.0.0",
      "--port",
      "0",
    ]),
    clearEnv: true,
    env: { ...simEnv(sim), PATH: Deno.env.get("PATH") ?? "" },
    stdin: "null",
  }).output();
  assert.equal(out.code, 2);
  const err = decoder.decode(out.stderr);
  assert.match(err, /^proxmox-mcp: MCP_HOST is 0\.0\.0\.0.*MCP_AUTH_TOKEN/);
  assert.equal(err.trim().split("\n").length, 1, "one line");
});

Deno.test("SIGTERM: new work is refused while the in-flight call finishes, then the process exits 0", async () => {
  await using sim = await startSim({ taskMs: 300 });
  await using srv = await spawnHttp(serverEnv(sim, { LOG_LEVEL: "INFO" }));
  const client = await modernClient(srv.base);
  const call = callOk(client, "proxmox_start_vm", { vmid: 102 });
  const t0 = Date.now();
  while (!sim.requests.some((r) => r.path.endsWith("/status/start"))) {
    assert.ok(Date.now() - t0 < 10_000, "the call reached Proxmox");
    await new Promise((r) => setTimeout(r, 10));
  }
  srv.process.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 100));
  // Not accepted any more: refused, or answered 503 on a kept-alive connection.
  const late = await fetch(`${srv.base}/healthz`).then(
    async (r) => {
      await r.body?.cancel();
      return r.status;
    },
    () => "refused",
  );
  assert.ok(late === "refused" || late === 503, `late request: ${late}`);
  const result = await call;
  assert.equal(result.state, "running");
  assert.equal(sim.cluster.guests.get(102)?.status, "running");
  await client.close();
  const status = await srv.status;
  assert.equal(status.code, 0);
  assert.match(
    srv.stderr(),
    /SIGTERM: shutting down, finishing 1 in-flight request\(s\)[\s\S]*Stopped/,
  );
  // At INFO the transport logs its address and the shutdown, not every request.
  const httpLines = srv.stderr().split("\n").filter((l) =>
    / INFO http: /.test(l)
  );
  assert.equal(httpLines.length, 3, httpLines.join("\n"));
});

Deno.test("SIGTERM ends the process although the demo's simulator would keep it alive", async () => {
  await using srv = await spawnHttp({ LOG_LEVEL: "INFO" }, ["--demo"]);
  const r = await fetch(`${srv.base}/healthz`);
  assert.equal(r.status, 200);
  await r.body?.cancel();
  srv.process.kill("SIGTERM");
  const timer = setTimeout(() => srv.process.kill("SIGKILL"), 10_000);
  const status = await srv.status;
  clearTimeout(timer);
  assert.equal(status.code, 0, srv.stderr());
  assert.match(srv.stderr(), /Stopped/);
});

Deno.test("sessions expire when idle, busy ones do not, and the cap refuses one more", async () => {
  await using sim = await startSim({ taskMs: 400 });
  const parsed = loadConfig([], { ...simEnv(sim), MCP_AUTH_TOKEN: TOKEN });
  assert.equal(parsed.kind, "run");
  const config = parsed.config;
  const auth0 = config.auth as { user: string; password: string };
  const pve = new PveClient({
    baseUrl: config.proxmoxUrl,
    auth: { kind: "password", user: auth0.user, password: auth0.password },
    verifySsl: true,
    timeoutMs: 5_000,
  });
  const app = createHttpApp({ config, pve }, {
    sessionIdleMs: 300,
    maxSessions: 2,
    drainMs: 2_000,
  });
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  // Disposed first: ends the sessions, so the listener can close.
  await using _sessions = { [Symbol.asyncDispose]: () => app.shutdown() };
  const base = `http://127.0.0.1:${server.addr.port}`;
  const H = { Authorization: `Bearer ${TOKEN}` };

  const t1 = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    authProvider: auth(),
  });
  const c1 = new Client({ name: "one", version: "1" });
  await c1.connect(t1);
  const sse = new Client({ name: "two", version: "1" });
  await sse.connect(
    new SSEClientTransport(new URL(`${base}/sse`), { authProvider: auth() }),
  );
  assert.deepEqual(app.sessions(), { streamable: 1, sse: 1 });

  // Full: a third session of either kind is refused with 503.
  const third = await post(`${base}/mcp`, INIT, H);
  assert.equal(third.status, 503);
  assert.ok(third.headers.get("retry-after"));
  await third.body?.cancel();
  const thirdSse = await fetch(`${base}/sse`, { headers: H });
  assert.equal(thirdSse.status, 503);
  await thirdSse.body?.cancel();
  // Stateless 2026 requests need no session and still work.
  const modern = await modernClient(base);
  await callOk(modern, "proxmox_list_nodes");
  await modern.close();

  // A session busy with a call longer than the idle time is kept.
  const t0 = Date.now();
  const started = await callOk(c1, "proxmox_start_vm", { vmid: 102 });
  assert.equal(started.state, "running");
  assert.ok(Date.now() - t0 > 450, "the call outlasted the idle time");
  assert.deepEqual(app.sessions(), { streamable: 1, sse: 1 });

  // Idle: the Streamable HTTP session expires; the open SSE stream does not.
  await new Promise((r) => setTimeout(r, 700));
  assert.deepEqual(app.sessions(), { streamable: 0, sse: 1 });
  const gone = await post(
    `${base}/mcp`,
    { jsonrpc: "2.0", id: 3, method: "tools/list" },
    {
      ...H,
      "Mcp-Session-Id": t1.sessionId!,
      "MCP-Protocol-Version": "2025-06-18",
    },
  );
  assert.equal(gone.status, 404);
  assert.match((await gone.json()).error.message, /initialize again/);
  await callOk(sse, "proxmox_list_nodes");

  // Room again: a new session opens.
  const again = await post(`${base}/mcp`, INIT, H);
  assert.equal(again.status, 200);
  assert.ok(again.headers.get("mcp-session-id"));
  await again.body?.cancel();

  await c1.close().catch(() => {});
  await sse.close();
  await app.shutdown();
  assert.deepEqual(app.sessions(), { streamable: 0, sse: 0 });
});

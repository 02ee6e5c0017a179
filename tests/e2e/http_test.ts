/**
 * e2e: the HTTP transports. The real entry point (src/main.ts --transport
 * http) is spawned and driven by the SDK Client over Streamable HTTP (2026
 * stateless and 2025 sessions) and over legacy SSE; auth, Host/Origin checks,
 * the loopback rule and graceful shutdown are checked on the wire (scenarios
 * that need a process but not one each share one). Session expiry and the
 * session cap run in-process with short limits.
 */
import {
  Client,
  SSEClientTransport,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { loadConfig } from "../../src/config.ts";
import { PveClient } from "../../src/proxmox/client.ts";
import { TRANSPORTS } from "../../src/transports/mod.ts";
import {
  createHttpApp,
  type HttpOptions,
  listen,
  type ListenOptions,
} from "../../src/transports/http/mod.ts";
import {
  callOk,
  initializeRequest,
  simEnv,
  startSim,
  type TestSim,
} from "../helpers.ts";
import { spawnHttp } from "../http_server.ts";
import { serverArgs } from "../server_args.ts";

const TOKEN = "test-token-0123456789abcdef";
const decoder = new TextDecoder();

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

const INIT = initializeRequest(1, "raw");

function assertNoSecrets(log: string, sim: TestSim): void {
  for (const s of [TOKEN, ...sim.secrets()]) {
    assert.ok(!log.includes(s), "no secret in the server log");
  }
}

/**
 * Scenarios that need a server process but not one each (the process's own
 * start, signals and limits are tested apart): one server with the product's
 * grants and MCP_AUTH_TOKEN, against one simulator that none of them changes.
 * Each step counts the Proxmox requests it causes from its own start.
 */
Deno.test("one HTTP server process with MCP_AUTH_TOKEN:", async (t) => {
  await using sim = await startSim();
  await using srv = await spawnHttp(serverEnv(sim));
  await t.step(
    "Streamable HTTP: a 2026-07-28 client lists and calls tools statelessly",
    async () => {
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
        const stats = await callOk(client, "proxmox_get_vm_stats", {
          vmid: 100,
        });
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
    },
  );
  await t.step(
    "Streamable HTTP: a 2025-era client gets a session, calls tools, and DELETE ends it",
    async () => {
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
    },
  );
  await t.step(
    "401 with WWW-Authenticate for a missing or wrong token on every MCP path; /healthz is open and secret-free",
    async () => {
      const before = sim.requests.length;
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
      assert.equal(
        sim.requests.length,
        before,
        "no Proxmox request for any of this",
      );

      // A client with the wrong token fails to connect.
      const client = new Client({ name: "bad", version: "1" });
      await assert.rejects(
        client.connect(
          new StreamableHTTPClientTransport(new URL(`${srv.base}/mcp`), {
            authProvider: auth("wrong-token-123456789"),
          }),
        ),
      );
    },
  );
  await t.step(
    "without MCP_ALLOWED_ORIGINS every foreign Origin is refused (localhost included); a malformed entry stops the start",
    async () => {
      const H = { Authorization: `Bearer ${TOKEN}` };
      for (const origin of ["http://localhost:6274", "http://127.0.0.1:8000"]) {
        assert.equal(
          await rawStatus(srv.base, "/mcp", INIT, { ...H, Origin: origin }),
          403,
          origin,
        );
      }
      const out = await new Deno.Command(Deno.execPath(), {
        args: serverArgs(["--transport", "http", "--port", "0"]),
        clearEnv: true,
        env: {
          ...serverEnv(sim),
          PATH: Deno.env.get("PATH") ?? "",
          MCP_ALLOWED_ORIGINS: "localhost:6274",
        },
        stdin: "null",
      }).output();
      assert.equal(out.code, 2);
      assert.match(
        decoder.decode(out.stderr),
        /^proxmox-mcp: Cannot parse MCP_ALLOWED_ORIGINS: localhost:6274 is not an origin/,
      );
    },
  );
  await t.step(
    "/.well-known/* answers 404 before auth (no OAuth is offered), and initialize declares no tools.listChanged",
    async () => {
      for (
        const path of [
          "/.well-known/oauth-protected-resource",
          "/.well-known/oauth-protected-resource/mcp",
          "/.well-known/oauth-authorization-server",
          "/.well-known/openid-configuration",
        ]
      ) {
        const r = await fetch(`${srv.base}${path}`);
        assert.equal(r.status, 404, path);
        assert.equal(r.headers.get("www-authenticate"), null);
        await r.body?.cancel();
      }
      const r = await post(`${srv.base}/mcp`, INIT, {
        Authorization: `Bearer ${TOKEN}`,
      });
      const text = await r.text();
      const init = JSON.parse(/^data: (.*)$/m.exec(text)?.[1] ?? text);
      assert.ok(init.result.capabilities.tools, "tools are offered");
      assert.notEqual(init.result.capabilities.tools.listChanged, true);
    },
  );
  await t.step(
    "auth bypass attempts over HTTP: 0 of them reach a tool",
    async () => {
      const since = sim.requests.length;
      const host = new URL(srv.base).host;
      const call = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "proxmox_list_nodes",
          arguments: {},
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
            "io.modelcontextprotocol/clientCapabilities": {},
          },
        },
      });
      const request = (path: string, lines: string[]) =>
        `POST ${path} HTTP/1.1\r\n` +
        [
          ...lines,
          "Content-Type: application/json",
          "Accept: application/json, text/event-stream",
          "MCP-Protocol-Version: 2026-07-28",
          "Mcp-Method: tools/call",
          "Mcp-Name: proxmox_list_nodes",
          `Content-Length: ${call.length}`,
          "Connection: close",
        ].map((l) => `${l}\r\n`).join("") + `\r\n${call}`;
      const H = `Host: ${host}`;
      const attempts: [string, string[], number[]][] = [
        ["/mcp", [H], [401]],
        ["/mcp", [H, "Authorization: Bearer "], [401]],
        ["/mcp", [H, "Authorization: Bearer  "], [401]],
        ["/mcp", [H, "Authorization: Bearer"], [401]],
        ["/mcp", [H, "Authorization: "], [401]],
        ["/mcp", [H, "Authorization: bearer wrong-token-123456789"], [401]],
        ["/mcp", [H, `Authorization: Basic ${btoa(`x:${TOKEN}`)}`], [401]],
        ["/mcp", [H, `Authorization: ${TOKEN}`], [401]],
        ["/mcp", [H, `Authorization: Bearer ${TOKEN.slice(0, -1)}`], [401]],
        ["/mcp", [H, `Authorization: Bearer ${TOKEN}x`], [401]],
        ["/mcp", [H, `Authorization: Bearer x${TOKEN}`], [401]],
        ["/mcp", [H, `Authorization: Bearer ${TOKEN} ${TOKEN}`], [401]],
        ["/mcp", [H, `Authorization: Bearer ${TOKEN},`], [401]],
        ["/mcp", [H, `Authorization: Bearer ${TOKEN}`.toUpperCase()], [401]],
        ["/mcp", [H, `Authorization: Bearer ${"a".repeat(8_000)}`], [401]],
        ["/mcp", [H, `Authorization: Bearer ${"a".repeat(40_000)}`], [
          401,
          431,
        ]],
        [
          "/mcp",
          [H, `Authorization: Bearer ${TOKEN}`, "Authorization: Bearer wrong"],
          [401],
        ],
        [
          "/mcp",
          [H, "Authorization: Bearer wrong", `Authorization: Bearer ${TOKEN}`],
          [401],
        ],
        [`/mcp?access_token=${TOKEN}`, [H], [401]],
        [`/mcp?token=${TOKEN}&auth=Bearer+${TOKEN}`, [H], [401]],
        ["/mcp/", [H], [401]],
        ["//mcp", [H], [401]],
        ["/mcp?x", [H], [401]],
        ["/%6dcp", [H], [401]],
        ["/MCP", [H], [401]],
        ["/mcp%2f", [H], [401]],
        ["/./mcp", [H], [401]],
        ["/healthz/../mcp", [H], [401]],
        ["/.well-known/../mcp", [H], [401]],
        ["/healthz%2f..%2fmcp", [H], [401]],
        ["http://evil/mcp", [H], [400, 401]],
        ["/messages?sessionId=x", [H], [401]],
        // Spoofed Host and Origin, with the right token: 403.
        ["/mcp", ["Host: evil.example.net", `Authorization: Bearer ${TOKEN}`], [
          403,
        ]],
        [
          "/mcp",
          ["Host: localhost.evil.net", `Authorization: Bearer ${TOKEN}`],
          [
            403,
          ],
        ],
        ["/mcp", ["Host: 127.0.0.1.nip.io", `Authorization: Bearer ${TOKEN}`], [
          403,
        ]],
        ["/mcp", [`Authorization: Bearer ${TOKEN}`], [403]],
        ["/mcp", [
          H,
          H.replace("Host", "host"),
          `Authorization: Bearer ${TOKEN}`,
        ], [
          400,
          403,
        ]],
        [
          "/mcp",
          [H, `Authorization: Bearer ${TOKEN}`, `Origin: http://localhost:1`],
          [403],
        ],
        [
          "/mcp",
          [H, `Authorization: Bearer ${TOKEN}`, `Origin: ${srv.base}0`],
          [403],
        ],
        // With the right token, path tricks still reach nothing but /mcp itself.
        ["/mcp/", [H, `Authorization: Bearer ${TOKEN}`], [404]],
        ["//mcp", [H, `Authorization: Bearer ${TOKEN}`], [404]],
        ["/%6dcp", [H, `Authorization: Bearer ${TOKEN}`], [404]],
      ];
      let bypasses = 0;
      for (const [path, lines, expected] of attempts) {
        const status = await rawSend(srv.base, request(path, lines));
        if (!expected.includes(status)) {
          bypasses++;
          assert.fail(
            `${path} ${
              lines.join(" | ").slice(0, 120)
            }: ${status}, expected ${expected}`,
          );
        }
      }
      assert.equal(bypasses, 0);
      assert.equal(
        sim.requests.slice(since).filter((r) => r.path.includes("/nodes"))
          .length,
        0,
        "nothing unauthenticated reached a tool",
      );
      // The control: the same request with the token reaches the tool.
      const ok = await rawSend(
        srv.base,
        request("/mcp", [H, `Authorization: Bearer ${TOKEN}`]),
      );
      assert.equal(ok, 200);
      assert.ok(
        sim.requests.slice(since).some((r) => r.path.includes("/nodes")),
      );
      assertNoSecrets(srv.stderr(), sim);
    },
  );
  await t.step(
    "request bodies are counted while they stream: 413 for a chunked body past 4 MiB long before it is all sent, and for a declared Content-Length at once",
    async () => {
      const url = new URL(srv.base);
      const conn = await Deno.connect({
        hostname: url.hostname,
        port: Number(url.port),
      });
      await conn.write(
        new TextEncoder().encode(
          `POST /mcp HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n" +
            "Transfer-Encoding: chunked\r\n\r\n",
        ),
      );
      const chunk = new TextEncoder().encode(
        `10000\r\n${"x".repeat(0x10000)}\r\n`,
      );
      let sent = 0;
      let answered = "";
      const reading = (async () => {
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf).catch(() => null);
        answered = n ? decoder.decode(buf.subarray(0, n)) : "closed";
      })();
      const limit = 256 * 1024 * 1024;
      while (!answered && sent < limit) {
        try {
          // write() may take part of a chunk: send it whole.
          for (let off = 0; off < chunk.length;) {
            off += await conn.write(chunk.subarray(off));
          }
        } catch {
          break; // the server closed the connection after answering
        }
        sent += 0x10000;
      }
      await reading;
      conn.close();
      assert.match(answered, /^HTTP\/1\.1 413 /);
      assert.ok(
        sent < 32 * 1024 * 1024,
        `answered after ${sent} bytes: the body was not read whole first`,
      );
      const declared = await rawSend(
        srv.base,
        `POST /mcp HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
          "Content-Type: application/json\r\nContent-Length: 400000000\r\n\r\n{",
      );
      assert.equal(declared, 413);
      assert.equal(await healthz(srv.base), 200);
    },
  );
  assertNoSecrets(srv.stderr(), sim);
});

Deno.test("legacy HTTP+SSE: the SDK's SSEClientTransport lists and calls tools; --transport sse serves /mcp as well", async () => {
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
  // MCP_TRANSPORT=sse is http: the same port serves Streamable HTTP too.
  assert.equal(TRANSPORTS.sse, TRANSPORTS.http);
  const modern = await modernClient(srv.base);
  await callOk(modern, "proxmox_list_nodes");
  await modern.close();
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

Deno.test("DNS-rebinding protection: 403 for a foreign Host, and for any Origin but the server's own and those in MCP_ALLOWED_ORIGINS (localhost on another port included)", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(
    serverEnv(sim, {
      MCP_ALLOWED_HOSTS: "mcp.example.com",
      MCP_ALLOWED_ORIGINS: "https://mcp.example.com, http://localhost:6274",
    }),
  );
  const H = { Authorization: `Bearer ${TOKEN}` };
  const cases: [Record<string, string>, number][] = [
    [{ Origin: "http://evil.example.net" }, 403],
    [{ Origin: "null" }, 403],
    [{ Host: "evil.example.net" }, 403],
    [{ Host: "evil.example.net", Origin: "http://evil.example.net" }, 403],
    [{ Origin: "http://localhost:6275" }, 403],
    [{ Origin: "http://localhost" }, 403],
    [{ Origin: srv.base }, 200], // the server's own origin
    [{ Origin: srv.base.replace("127.0.0.1", "localhost") }, 403],
    [{ Origin: `${srv.base}1` }, 403],
    [{ Origin: "https://mcp.example.com.evil.net" }, 403],
    [{ Origin: "http://mcp.example.com" }, 403],
    [{ Origin: "http://localhost:6274" }, 200],
    [{ Origin: "https://mcp.example.com" }, 200],
    [{ Host: "mcp.example.com:8443" }, 200],
    [{}, 200],
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
  assert.match((await r.json()).error.message, /MCP_ALLOWED_ORIGINS/);
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
    await delay(10);
  }
  srv.process.kill("SIGTERM");
  await delay(100);
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

/** The app on the guarded listener, in process, closed with `await using`. */
function serveApp(
  sim: TestSim,
  options: HttpOptions = {},
  listenOptions: Partial<ListenOptions> = {},
) {
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
  const app = createHttpApp({ config, pve }, options);
  const server = listen(
    { hostname: "127.0.0.1", port: 0, ...listenOptions },
    app.fetch,
  );
  return {
    app,
    server,
    base: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      await app.shutdown();
      server.close();
    },
  };
}

Deno.test("sessions expire when idle, busy ones do not, and the cap refuses one more when nothing can be evicted", async () => {
  await using sim = await startSim({ taskMs: 400 });
  await using srv = await serveApp(sim, {
    sessionIdleMs: 300,
    maxSessions: 2,
    drainMs: 2_000,
  });
  const { app, base } = srv;
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

  // A session busy with a call longer than the idle time is kept, and while
  // it is busy (and the SSE stream open) a third session of either kind is
  // refused with 503: there is nothing to evict.
  const t0 = Date.now();
  const call = callOk(c1, "proxmox_start_vm", { vmid: 102 });
  await delay(100);
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
  const started = await call;
  assert.equal(started.state, "running");
  assert.ok(Date.now() - t0 > 450, "the call outlasted the idle time");
  assert.deepEqual(app.sessions(), { streamable: 1, sse: 1 });

  // Idle: the Streamable HTTP session expires; the open SSE stream does not.
  await delay(700);
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

Deno.test("at the session cap the least recently used idle session is evicted: 101 SDK clients that call and close without DELETE all get in", async () => {
  await using sim = await startSim();
  await using srv = await serveApp(sim); // the defaults: 100 sessions
  const ids: string[] = [];
  for (let i = 0; i < 101; i++) {
    const transport = new StreamableHTTPClientTransport(
      new URL(`${srv.base}/mcp`),
      { authProvider: auth() },
    );
    const client = new Client({ name: `c${i}`, version: "1" });
    await client.connect(transport);
    ids.push(transport.sessionId!);
    await callOk(client, "proxmox_list_nodes");
    await client.close(); // no DELETE
  }
  assert.deepEqual(srv.app.sessions(), { streamable: 100, sse: 0 });
  // The first (least recently used) was evicted; the second still works.
  const H = {
    Authorization: `Bearer ${TOKEN}`,
    "MCP-Protocol-Version": "2025-06-18",
  };
  const list = { jsonrpc: "2.0", id: 9, method: "tools/list" };
  const first = await post(`${srv.base}/mcp`, list, {
    ...H,
    "Mcp-Session-Id": ids[0],
  });
  assert.equal(first.status, 404);
  await first.body?.cancel();
  const second = await post(`${srv.base}/mcp`, list, {
    ...H,
    "Mcp-Session-Id": ids[1],
  });
  assert.equal(second.status, 200);
  await second.body?.cancel();
});

/** Sends raw bytes over TCP and returns the status of the first response (0: none). */
async function rawSend(base: string, bytes: string): Promise<number> {
  const url = new URL(base);
  const conn = await Deno.connect({
    hostname: url.hostname,
    port: Number(url.port),
  });
  try {
    await conn.write(new TextEncoder().encode(bytes));
    let text = "";
    const buf = new Uint8Array(4096);
    while (!/^HTTP\/1\.1 \d{3}/.test(text)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n));
    }
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  } finally {
    conn.close();
  }
}

/** Opens `n` TCP connections that send nothing. */
async function idleConnections(base: string, n: number): Promise<Deno.Conn[]> {
  const url = new URL(base);
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) {
    conns.push(
      await Deno.connect({ hostname: url.hostname, port: Number(url.port) }),
    );
  }
  return conns;
}

async function healthz(base: string): Promise<number | string> {
  try {
    const r = await fetch(`${base}/healthz`, {
      signal: AbortSignal.timeout(15_000),
    });
    await r.body?.cancel();
    return r.status;
  } catch (e) {
    return (e as Error).message;
  }
}

Deno.test("under ulimit -n 256, 400 idle unauthenticated connections do not kill the server: the failed accepts are logged and it serves again", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(serverEnv(sim), [], { openFiles: 256 });
  const conns = await idleConnections(srv.base, 400);
  await delay(1_000);
  let exited = false;
  void srv.status.then(() => exited = true);
  await delay(100);
  assert.equal(exited, false, `the server exited:\n${srv.stderr()}`);
  assert.match(srv.stderr(), /Cannot accept a connection: .*still serving/);
  for (const c of conns) c.close();
  assert.equal(await healthz(srv.base), 200);
  const r = await post(`${srv.base}/mcp`, INIT, {
    Authorization: `Bearer ${TOKEN}`,
  });
  assert.equal(r.status, 200);
  await r.body?.cancel();
});

Deno.test("MCP_MAX_CONNECTIONS: with 3x the cap held by silent connections a request is answered 503 with Retry-After, and served again once they close", async () => {
  await using sim = await startSim();
  await using srv = await spawnHttp(
    serverEnv(sim, { MCP_MAX_CONNECTIONS: "100" }),
    [],
    { openFiles: 256 },
  );
  // Three times the cap, silent: the extra ones are refused too, and a real
  // request behind them still gets its 503 (not a reset).
  const conns = await idleConnections(srv.base, 300);
  await delay(300);
  const r = await fetch(`${srv.base}/healthz`);
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("retry-after"), "1");
  assert.match((await r.json()).error.message, /Too many open connections/);
  for (const c of conns) c.close();
  await delay(300);
  assert.equal(await healthz(srv.base), 200);
  assert.match(srv.stderr(), /Connection cap reached \(100\)/);
});

Deno.test("the listener closes a connection without a complete head in time (slowloris included) and an idle keep-alive connection", async () => {
  await using sim = await startSim();
  await using srv = await serveApp(sim, {}, {
    headersTimeoutMs: 300,
    idleTimeoutMs: 300,
  });
  const url = new URL(srv.base);
  const open = () =>
    Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  /** True when the server closes `conn` within `ms`. */
  const closedWithin = async (conn: Deno.Conn, ms: number) => {
    const buf = new Uint8Array(4096);
    const timer = setTimeout(() => conn.close(), ms);
    let closedByServer = false;
    try {
      for (;;) {
        if ((await conn.read(buf)) === null) {
          closedByServer = true;
          break;
        }
      }
    } catch {
      // closed by the timer
    }
    clearTimeout(timer);
    if (closedByServer) conn.close();
    return closedByServer;
  };
  // Silent.
  assert.ok(await closedWithin(await open(), 1_500), "a silent connection");
  // A head trickling in, one byte every 50 ms: the deadline is not extended.
  const slow = await open();
  const trickle = (async () => {
    for (const ch of "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ") {
      await delay(50);
      await slow.write(new TextEncoder().encode(ch)).catch(() => {});
    }
  })();
  assert.ok(await closedWithin(slow, 1_500), "a slowloris connection");
  await trickle;
  // Kept alive after a response, then idle.
  const kept = await open();
  await kept.write(
    new TextEncoder().encode(
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ),
  );
  assert.ok(await closedWithin(kept, 1_500), "an idle keep-alive connection");
  assert.equal(srv.server.connections(), 0);
});

Deno.test("a stateless tools/call's server holds only the tool called, yet answers as a full one: unknown tool, bad arguments, a real call; tools/list lists every tool", async () => {
  await using sim = await startSim();
  await using srv = await serveApp(sim);
  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
    "io.modelcontextprotocol/clientCapabilities": {},
  };
  const call = async (method: string, params: Record<string, unknown>) => {
    const r = await post(`${srv.base}/mcp`, {
      jsonrpc: "2.0",
      id: 1,
      method,
      params: { ...params, _meta: meta },
    }, {
      Authorization: `Bearer ${TOKEN}`,
      "MCP-Protocol-Version": "2026-07-28",
      "Mcp-Method": method,
      ...(typeof params.name === "string" ? { "Mcp-Name": params.name } : {}),
    });
    return await r.json();
  };
  // Not -32601 (no tools/call handler on a server without tools).
  assert.deepEqual(
    (await call("tools/call", { name: "proxmox_nope", arguments: {} })).error,
    { code: -32602, message: "Tool proxmox_nope not found" },
  );
  const bad = await call("tools/call", {
    name: "proxmox_list_nodes",
    arguments: { bogus: 1 },
  });
  assert.equal(bad.result.isError, true);
  assert.match(bad.result.content[0].text, /Unrecognized key: "bogus"/);
  const ok = await call("tools/call", {
    name: "proxmox_list_nodes",
    arguments: {},
  });
  assert.deepEqual(
    ok.result.structuredContent.nodes.map((n: { node: string }) => n.node),
    ["pve1", "pve2", "pve3"],
  );
  const listed = await call("tools/list", {});
  const catalog = JSON.parse(
    await Deno.readTextFile(
      new URL("../../src/tools/catalog.json", import.meta.url),
    ),
  );
  assert.deepEqual(
    listed.result.tools.map((t: { name: string }) => t.name),
    catalog.tools.map((t: { name: string }) => t.name),
  );
});

/**
 * The entry point in the developer loop (`deno task test`): the catalog the
 * stdio transport answers from is the SDK's, and a few real processes keep
 * src/main.ts, its permissions, stdio and HTTP honest — three spawns in all.
 * The full subprocess coverage (every stdio and HTTP behaviour, signals,
 * floods, TLS environments, bundles) is in tests/e2e/ (`deno task test:e2e`).
 */
import {
  Client,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { startPermissions } from "../scripts/permissions.ts";
import { buildCatalog } from "../src/catalog.ts";
import { selectTools } from "../src/tools/mod.ts";
import { catalogTools } from "../src/transports/stdio.ts";
import {
  assertNoSecrets,
  callOk,
  initializeRequest,
  MAIN,
  simEnv,
  startSim,
} from "./helpers.ts";
import { spawnHttp } from "./http_server.ts";
import { serverArgs } from "./server_args.ts";
import { call, INIT, INITIALIZED, Session } from "./stdio_session.ts";

const CATALOG = new URL("../src/tools/catalog.json", import.meta.url);

Deno.test("catalog.json is what the SDK answers (UPDATE_SNAPSHOTS=1 rewrites it)", async () => {
  const built = await buildCatalog();
  const text = JSON.stringify(built, null, 1) + "\n";
  if (Deno.env.get("UPDATE_SNAPSHOTS") === "1") {
    await Deno.writeTextFile(CATALOG, text);
  }
  assert.equal(
    await Deno.readTextFile(CATALOG),
    text,
    "stale catalog: run with UPDATE_SNAPSHOTS=1",
  );
});

Deno.test("the catalog's filters select the same tools as the server's", async () => {
  for (
    const filter of [
      { readOnly: false },
      { readOnly: true },
      { readOnly: false, toolsets: ["nodes", "vms"] },
      { readOnly: true, toolsets: ["vms"] },
    ]
  ) {
    const fast = catalogTools(filter);
    assert.deepEqual(
      fast.map((t) => t.name),
      selectTools(filter).map((t) => t.name),
    );
    assert.deepEqual(
      fast,
      (await buildCatalog(filter)).tools,
      JSON.stringify(filter),
    );
  }
  assert.throws(
    () => catalogTools({ readOnly: false, toolsets: ["bogus"] }),
    /Unknown toolset 'bogus'/,
  );
});

/**
 * What an MCP client started from a user's shell passes on besides the
 * server's own settings: none of it is granted to the server (its
 * --allow-env names only its own variables), none of it may stop it.
 */
function inheritedEnv(): Record<string, string> {
  const dir = Deno.env.get("DENO_DIR");
  return {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    ...(dir ? { DENO_DIR: dir } : {}),
    LANG: "en_US.UTF-8",
    TERM: "xterm-256color",
    USER: "alice",
    SHELL: "/bin/bash",
    NO_COLOR: "1",
    // A proxy for the outside world that is not there, the local network exempt.
    HTTPS_PROXY: "http://127.0.0.1:9",
    NO_PROXY: "127.0.0.1,localhost",
  };
}

Deno.test("stdio with deno task start's permissions: the opening, tools/list, a read tool and a ping are answered, and the process exits 0 when stdin ends", async () => {
  await using sim = await startSim();
  const env = { ...inheritedEnv(), ...simEnv(sim) };
  const session = new Session(env, [
    "run",
    ...await startPermissions(),
    MAIN,
  ]);
  await session.send(
    INIT,
    INITIALIZED,
    { jsonrpc: "2.0", id: "list", method: "tools/list" },
    call("nodes", { name: "proxmox_list_nodes", arguments: {} }),
    { jsonrpc: "2.0", id: "ping", method: "ping" },
  );
  await session.until(["init", "list", "nodes", "ping"]);
  // stdin ends: the server exits by itself, with every answer written.
  assert.equal(await session.close(), 0, session.stderr);
  const reply = (id: string) => JSON.parse(session.reply(id)!);
  const catalog = JSON.parse(await Deno.readTextFile(CATALOG));
  assert.equal(reply("init").result.serverInfo.name, "proxmox-mcp");
  assert.deepEqual(reply("list").result.tools, catalog.tools);
  const nodes = reply("nodes").result;
  assert.ok(!nodes.isError, JSON.stringify(nodes));
  assert.deepEqual(
    nodes.structuredContent.nodes.map((n: { node: string }) => n.node),
    ["pve1", "pve2", "pve3"],
  );
  assert.deepEqual(reply("ping").result, {});
  assert.equal(session.lines.length, 4, "one line per request, nothing else");
  assert.ok(
    sim.requests.some((r) => r.path === "/nodes"),
    "the call reached the simulator",
  );
  assertNoSecrets(session.stderr, env);
});

Deno.test("with --allow-net narrowed to another host, a tool call names the missing permission and the flag, and the session goes on", async () => {
  await using sim = await startSim();
  const env = { ...inheritedEnv(), ...simEnv(sim) };
  const args = serverArgs().map((a) =>
    a === "--allow-net" ? "--allow-net=pve.example.com:8006" : a
  );
  assert.ok(args.includes("--allow-net=pve.example.com:8006"));
  const session = new Session(env, args);
  await session.send(
    INIT,
    INITIALIZED,
    call("denied", { name: "proxmox_list_nodes", arguments: {} }),
    { jsonrpc: "2.0", id: "ping", method: "ping" },
  );
  await session.until(["denied", "ping"]);
  assert.equal(await session.close(), 0, session.stderr);
  const denied = JSON.parse(session.reply("denied")!).result;
  assert.equal(denied.isError, true);
  const port = new URL(sim.url).port;
  assert.match(
    denied.content[0].text,
    new RegExp(
      `Missing permission to reach http://127\\.0\\.0\\.1:${port}: Requires net access to "127\\.0\\.0\\.1:${port}", run again with the --allow-net flag`,
    ),
  );
  assert.deepEqual(JSON.parse(session.reply("ping")!).result, {});
  assert.equal(sim.requests.length, 0, "nothing reached Proxmox");
  assertNoSecrets(session.stderr, env);
});

const TOKEN = "entry-test-token-0123456789abcdef";

Deno.test("HTTP with MCP_AUTH_TOKEN: 401 without the token, 403 for a foreign Origin, a tool call with it; SIGTERM exits 0", async () => {
  await using sim = await startSim();
  const env = {
    ...inheritedEnv(),
    ...simEnv(sim),
    MCP_AUTH_TOKEN: TOKEN,
    LOG_LEVEL: "DEBUG",
  };
  await using srv = await spawnHttp(env);
  const post = (headers: Record<string, string>) =>
    fetch(`${srv.base}/mcp`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
        ...headers,
      },
      body: JSON.stringify(initializeRequest(1, "entry")),
    });
  const anonymous = await post({});
  assert.equal(anonymous.status, 401);
  assert.match(
    anonymous.headers.get("www-authenticate") ?? "",
    /^Bearer realm=/,
  );
  await anonymous.body?.cancel();
  const foreign = await post({
    Authorization: `Bearer ${TOKEN}`,
    Origin: "http://evil.example.net",
  });
  assert.equal(foreign.status, 403);
  await foreign.body?.cancel();
  assert.equal(sim.requests.length, 0, "no Proxmox request for either");

  const client = new Client({ name: "entry-test", version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${srv.base}/mcp`), {
      authProvider: { token: () => Promise.resolve(TOKEN) },
    }),
  );
  try {
    const nodes = await callOk(client, "proxmox_list_nodes");
    assert.deepEqual(nodes.nodes.map((n: { node: string }) => n.node), [
      "pve1",
      "pve2",
      "pve3",
    ]);
  } finally {
    await client.close();
  }
  srv.process.kill("SIGTERM");
  const status = await srv.status;
  assert.equal(status.code, 0, srv.stderr());
  assert.match(srv.stderr(), /Stopped/);
  assertNoSecrets(srv.stderr(), env);
});

/**
 * The stdio transport's fast opening: answers from src/tools/catalog.json that
 * must be exactly what the SDK answers, then a handoff to the SDK.
 */
import assert from "node:assert/strict";
import { buildCatalog } from "../src/catalog.ts";
import { selectTools } from "../src/tools/mod.ts";
import { catalogTools } from "../src/transports/stdio.ts";
import { simEnv, startSim } from "./helpers.ts";
import { serverArgs } from "./server_args.ts";

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
    structuredContent: { count: number };
  };
  assert.equal(vms.structuredContent.count, sim.cluster.guests.size);
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

/**
 * The stdio transport answers a session's first read-only tool calls before
 * the SDK is loaded (src/transports/call_fast.ts). Those answers must be
 * exactly, byte for byte, what the SDK answers to the same call: one session
 * makes each call twice, first before the SDK serves it, then after, and
 * compares the lines.
 */
import assert from "node:assert/strict";
import * as sdk from "@modelcontextprotocol/server";
import type { Config } from "../../src/config.ts";
import * as local from "../../src/sdk.ts";
import type { ServerDeps } from "../../src/server.ts";
import { FastCalls } from "../../src/transports/call_fast.ts";
import { frozenClock, simEnv, startSim } from "../helpers.ts";
import {
  answeredFast,
  call,
  INIT,
  INITIALIZED,
  Session,
} from "../stdio_session.ts";

/** Read-only calls: results, tool errors, argument errors. */
const CALLS: { name: string; arguments?: unknown; _meta?: unknown }[] = [
  { name: "proxmox_list_nodes", arguments: {} },
  { name: "proxmox_list_nodes" },
  { name: "proxmox_list_nodes", arguments: {}, _meta: { progressToken: 7 } },
  { name: "proxmox_whoami", arguments: {} },
  { name: "proxmox_list_vms", arguments: {} },
  { name: "proxmox_list_vms", arguments: { status: "running", node: "pve1" } },
  { name: "proxmox_list_vms", arguments: { status: 5 } },
  { name: "proxmox_list_vms", arguments: { bogus: 1, node: ["x"] } },
  { name: "proxmox_get_vm_stats", arguments: { vmid: 100 } },
  { name: "proxmox_get_vm_stats", arguments: { vmid: 99999 } },
  { name: "proxmox_get_vm_stats", arguments: {} },
  { name: "proxmox_get_vm_stats", arguments: { vmid: "100; rm" } },
  { name: "proxmox_get_task", arguments: { upid: "UPID:nope" } },
  { name: "proxmox_list_snapshots", arguments: { vmid: 100 } },
  { name: "proxmox_list_storage", arguments: {} },
  { name: "proxmox_list_content", arguments: { storage: "../etc" } },
  { name: "proxmox_list_firewall_rules", arguments: { vmid: 100 } },
];

Deno.test("a first tool call answered without the SDK is byte for byte the SDK's answer (results, tool errors, argument errors)", async () => {
  await using sim = await startSim();
  // The simulator (in this process) reports uptimes: one instant for both.
  using _clock = frozenClock();
  const session = new Session(simEnv(sim));
  const fast = CALLS.map((_, i) => `fast${i}`);
  const viaSdk = CALLS.map((_, i) => `sdk${i}`);
  // Written at once, as a fresh session does: all before the SDK is loaded.
  await session.send(
    INIT,
    INITIALIZED,
    { jsonrpc: "2.0", id: "list", method: "tools/list" },
    ...CALLS.map((p, i) => call(fast[i], p)),
  );
  await session.until(fast);
  // A changing tool needs the SDK: once it answers, the SDK serves the rest.
  await session.send(
    call("handoff", {
      name: "proxmox_start_vm",
      arguments: { vmid: 100, dry_run: true },
    }),
  );
  await session.until(["handoff"]);
  await session.send(...CALLS.map((p, i) => call(viaSdk[i], p)));
  await session.until(viaSdk);
  assert.equal(await session.close(), 0, session.stderr);

  const byFast = answeredFast(session.stderr);
  assert.deepEqual([...byFast].sort(), [...fast].sort(), "answered fast");
  for (let i = 0; i < CALLS.length; i++) {
    const a = session.reply(fast[i])!;
    const b = session.reply(viaSdk[i])!;
    assert.equal(
      a.replace(`"id":"${fast[i]}"`, `"id":"${viaSdk[i]}"`),
      b,
      JSON.stringify(CALLS[i]),
    );
  }
  // The cases cover results, tool errors and argument errors.
  const results = CALLS.map((_, i) =>
    JSON.parse(session.reply(fast[i])!).result as { isError?: boolean }
  );
  assert.ok(results.filter((r) => r.isError).length >= 5);
  assert.ok(results.filter((r) => !r.isError).length >= 5);
  assert.match(session.reply(fast[6])!, /Input validation error/);
});

Deno.test("a call answered without the SDK is cancelled by notifications/cancelled (no answer), and a changing tool waits for the SDK", async () => {
  await using sim = await startSim();
  const session = new Session(simEnv(sim));
  await session.send(
    INIT,
    INITIALIZED,
    call("gone", { name: "proxmox_list_nodes", arguments: {} }),
    {
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: "gone" },
    },
    call("change", {
      name: "proxmox_start_vm",
      arguments: { vmid: 100, dry_run: true },
    }),
    call("after", { name: "proxmox_list_nodes", arguments: {} }),
  );
  await session.until(["change", "after"]);
  assert.equal(await session.close(), 0, session.stderr);
  assert.equal(session.reply("gone"), undefined, "a cancelled call answered");
  const fast = answeredFast(session.stderr);
  assert.ok(!fast.has("change"), "a changing tool went without the SDK");
  assert.match(session.reply("change")!, /"dry_run":true/);
});

Deno.test("the SDK values src/sdk.ts copies are the SDK's", () => {
  assert.equal(local.CLIENT_INFO_META_KEY, sdk.CLIENT_INFO_META_KEY);
  for (
    const v of [
      { resultType: "input_required" },
      { resultType: "complete" },
      [],
      null,
      "input_required",
      {},
    ]
  ) {
    assert.equal(
      local.isInputRequiredResult(v),
      sdk.isInputRequiredResult(v),
      JSON.stringify(v),
    );
  }
  assert.equal(local.McpServer, sdk.McpServer, "bound once loaded");
});

Deno.test("a call cancelled (or cancelled at shutdown) while the server loads gets no answer when the load then fails; one still wanted is refused to the caller", async () => {
  const loading = () => Promise.withResolvers<ServerDeps>();
  const written: unknown[] = [];
  const fastCalls = (load: PromiseWithResolvers<ServerDeps>) =>
    new FastCalls({
      config: {} as Config,
      readOnlyTools: new Set(["proxmox_list_nodes"]),
      deps: () => load.promise,
      client: () => undefined,
      write: (msg) => {
        written.push(msg);
        return Promise.resolve();
      },
    });
  const nodes = call("gone", { name: "proxmox_list_nodes", arguments: {} });
  // Cancelled by the client.
  let load = loading();
  let calls = fastCalls(load);
  let answered = calls.call(nodes as never);
  assert.ok(calls.cancel("gone"));
  load.reject(new Error("Cannot read the CA"));
  await answered;
  // Cancelled at shutdown (stdio.ts has answered it already).
  load = loading();
  calls = fastCalls(load);
  answered = calls.call(nodes as never);
  calls.abortAll();
  load.reject(new Error("Cannot read the CA"));
  await answered;
  assert.deepEqual(written, [], "a cancelled call answered");
  assert.equal(calls.size, 0);
  // Still wanted: the caller hears of it (and answers the request).
  load = loading();
  calls = fastCalls(load);
  answered = calls.call(nodes as never);
  load.reject(new Error("Cannot read the CA"));
  await assert.rejects(answered, /Cannot read the CA/);
  assert.deepEqual(written, []);
});

Deno.test("the fast path answers only what the SDK would serve: a toolset left out is not found, MCP_HIDE_UNPERMITTED, MCP_LOCKDOWN and a 2026-07-28 envelope wait for the SDK", async () => {
  await using sim = await startSim();
  const nodes = { name: "proxmox_list_nodes", arguments: {} };
  const vms = { name: "proxmox_list_vms", arguments: {} };
  const envelope = {
    ...nodes,
    _meta: {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientInfo": { name: "t", version: "1" },
    },
  };
  const cases: { env: Record<string, string>; fast: string[] }[] = [
    { env: { MCP_TOOLSETS: "vms" }, fast: ["vms"] },
    { env: { MCP_HIDE_UNPERMITTED: "true" }, fast: [] },
    { env: { MCP_LOCKDOWN: "true" }, fast: [] },
    { env: {}, fast: ["vms"] },
  ];
  for (const { env, fast } of cases) {
    const session = new Session({ ...simEnv(sim), ...env });
    await session.send(
      INIT,
      INITIALIZED,
      // First (a call that needs the SDK hands every later one to it).
      call("vms", vms),
      call("nodes", env.MCP_TOOLSETS ? nodes : envelope),
    );
    await session.until(["nodes", "vms"]);
    assert.equal(await session.close(), 0, session.stderr);
    const label = JSON.stringify(env);
    assert.deepEqual([...answeredFast(session.stderr)], fast, label);
    if (env.MCP_TOOLSETS) {
      assert.deepEqual(JSON.parse(session.reply("nodes")!).error, {
        code: -32602,
        message: "Tool proxmox_list_nodes not found",
      });
    } else {
      assert.match(session.reply("nodes")!, /"node":"pve1"/, label);
    }
    assert.match(session.reply("vms")!, /"web-01"/, label);
  }
});

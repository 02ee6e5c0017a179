/**
 * The safety features and resources through the real entry point
 * (src/main.ts in a child process), where the process is the point: the
 * human's question and MCP_LOCKDOWN's release over stdio (the handoff from
 * the catalog's opening to the SDK), MCP_HIDE_UNPERMITTED's list change on a
 * stdio opening answered from the catalog, resources on that opening and
 * before the SDK is loaded, a real process's stderr free of secrets, and the
 * audit file a real process writes and the grants it needs. The same
 * behaviour in process is in tests/confirm_test.ts, untrusted_test.ts,
 * privileges_test.ts, resources_test.ts, secrets_test.ts and audit_test.ts.
 */
import assert from "node:assert/strict";
import { GUEST_OUTPUT } from "../../src/safety/untrusted.ts";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { call, callOk, connect, MAIN, simEnv, startSim } from "../helpers.ts";
import { CONFIG, readError, readJson, SUMMARY } from "../resource_helpers.ts";
import {
  assertNowhere,
  auditLines,
  commandSecrets,
  human,
  linesOf,
  listInScopeEachEra,
  operatorOf105,
  type Run,
  run,
  SCOPE_ENV,
  scopeLine,
  scopeScenario,
  secret,
  stderrAudit,
  tokenEnv,
  withAuditFile,
  writes,
} from "../safety_helpers.ts";
import { serverArgs } from "../server_args.ts";
import { spawnHttp } from "../http_server.ts";

Deno.test("through the real entry point over stdio: the question reaches the client and a decline sends nothing", async () => {
  await using sim = await startSim();
  const h = human({ action: "decline" });
  await using s = await connect({
    env: simEnv(sim),
    elicit: h.elicit,
    process: true,
  });
  sim.requests.length = 0;
  const r = await call(s.client, "proxmox_delete_vm", { vmid: 106 });
  assert.equal(r.isError, true);
  assert.match(r.text, /human declined/);
  assert.equal(h.asked.length, 1);
  assert.match(h.asked[0].message, /VM 106 \(rocky-ci\)/);
  assert.deepEqual(writes(sim), []);
  assert.ok(sim.cluster.guests.has(106));
});

Deno.test("real entry point: MCP_LOCKDOWN over stdio asks with the SDK client's elicitation handler and releases on accept", async () => {
  await using sim = await startSim();
  let asked = 0;
  await using s = await connect({
    env: { ...simEnv(sim), MCP_LOCKDOWN: "true" },
    process: true,
    elicit: () => {
      asked++;
      return { action: "accept", content: { release: true } };
    },
  });
  const file = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/etc/hostname",
  });
  assert.equal(asked, 1);
  assert.notEqual(file.content, "[withheld: MCP_LOCKDOWN]");
  assert.deepEqual(file.untrusted, ["content"]);
  const r = await call(s.client, "proxmox_list_vms", {});
  assert.ok(!r.isError);
  assert.equal(GUEST_OUTPUT.proxmox_list_vms, undefined);
});

Deno.test("through the real entry point (stdio): a restricted token, MCP_HIDE_UNPERMITTED, whoami and a 403 naming the missing privilege", async () => {
  await using sim = await startSim();
  const t = operatorOf105(sim);
  sim.faults.inject({
    method: "GET",
    path: "/access/permissions",
    fault: { kind: "delay", ms: 500 },
  });
  await using s = await connect({
    process: true,
    env: tokenEnv(sim, t, { MCP_HIDE_UNPERMITTED: "true" }),
  });
  assert.equal(s.client.getServerCapabilities()?.tools?.listChanged, true);
  const notified = new Promise<void>((resolve) =>
    s.client.setNotificationHandler(
      "notifications/tools/list_changed",
      () => resolve(),
    )
  );
  await notified;
  const names = (await s.client.listTools()).tools.map((x) => x.name);
  assert.ok(!names.includes("proxmox_delete_vm"));
  assert.ok(names.includes("proxmox_start_vm"));
  const w = await callOk(s.client, "proxmox_whoami");
  assert.equal(w.as, "ops@pve!mcp");
  const r = await call(s.client, "proxmox_stop_vm", { vmid: 100 });
  assert.ok(r.isError);
  assert.match(r.text, /missing VM\.PowerMgmt on \/vms\/100/);
  assert.match(
    s.stderr(),
    /Hiding \d+ tools the Proxmox credential cannot use/,
  );
});

for (const era of ["2025-11-25", "2026-07-28"] as const) {
  Deno.test(`resources over stdio (${era}): resources/list as the first request, a read and a completion`, async () => {
    await using sim = await startSim();
    await using s = await connect({ env: simEnv(sim), process: true, era });
    assert.deepEqual(s.client.getServerCapabilities()!.resources, {
      listChanged: false,
    });
    const { resources } = await s.client.listResources();
    assert.deepEqual(resources.map((r) => r.uri), [SUMMARY]);
    const g = await readJson(s.client, "proxmox://default/guests/100/config");
    assert.equal(g.config.name, "web-01");
    const c = await s.client.complete({
      ref: { type: "ref/resource", uri: CONFIG },
      argument: { name: "vmid", value: "10" },
    });
    assert.ok(c.completion.values.includes("100"));
    const e = await readError(
      s.client,
      "proxmox://default/guests/..%2f/config",
    );
    assert.equal(e.code, -32602);
  });
}

Deno.test("resources over stdio: resource requests sent with the opening, before the SDK is loaded, are answered by it", async () => {
  await using sim = await startSim();
  const child = new Deno.Command(Deno.execPath(), {
    args: serverArgs(),
    env: simEnv(sim),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = [
    {
      id: "init",
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "raw", version: "1" },
      },
    },
    { method: "notifications/initialized" },
    { id: "list", method: "resources/list" },
    { id: "templates", method: "resources/templates/list" },
    {
      id: "complete",
      method: "completion/complete",
      params: {
        ref: { type: "ref/resource", uri: CONFIG },
        argument: { name: "vmid", value: "10" },
      },
    },
    {
      id: "read",
      method: "resources/read",
      params: { uri: "proxmox://default/guests/100/config" },
    },
    {
      id: "bad",
      method: "resources/read",
      params: { uri: "proxmox://default/guests/..%2f/config" },
    },
  ].map((m) => JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n").join("");
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(lines));
  await writer.close(); // the server answers what it has read, then exits
  const out = await child.output();
  assert.equal(out.code, 0);
  // deno-lint-ignore no-explicit-any
  const replies = new Map<string, any>(
    new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => {
      const m = JSON.parse(l);
      return [m.id, m];
    }),
  );
  // The fast path's initialize answer (the catalog) declares them.
  assert.deepEqual(replies.get("init").result.capabilities.resources, {
    listChanged: false,
  });
  assert.deepEqual(replies.get("init").result.capabilities.completions, {});
  assert.deepEqual(
    replies.get("list").result.resources.map((r: { uri: string }) => r.uri),
    [SUMMARY],
  );
  assert.equal(replies.get("templates").result.resourceTemplates.length, 3);
  assert.ok(replies.get("complete").result.completion.values.includes("100"));
  const config = JSON.parse(replies.get("read").result.contents[0].text);
  assert.equal(config.config.name, "web-01");
  assert.equal(replies.get("bad").error.code, -32602);
  assert.match(replies.get("bad").error.message, /Invalid vmid/);
});

Deno.test("the real entry point with an API token at DEBUG: no token secret, MCP_AUTH_TOKEN or guest command password on stderr or in results", async () => {
  await using sim = await startSim();
  const authToken = secret("Mcp");
  const commands = commandSecrets();
  const env = {
    ...simEnv(sim, "token"),
    MCP_AUTH_TOKEN: authToken,
    LOG_LEVEL: "DEBUG",
  };
  await using s = await connect({ env, process: true });
  const runs: Run = { results: [], called: new Set() };
  await run(s, "proxmox_list_vms", {}, runs);
  await run(s, "proxmox_start_vm", { vmid: 106 }, runs);
  for (const { command } of commands) {
    await run(s, "proxmox_execute_command", { vmid: 101, command }, runs);
    await run(s, "proxmox_execute_command", { vmid: 104, command }, runs);
  }
  // Let stderr drain before reading it.
  await new Promise((ok) => setTimeout(ok, 200));
  assertNowhere(
    [
      sim.credentials.tokenSecret,
      `${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
      authToken,
      ...commands.map((c) => c.pw),
      ...sim.secrets(),
    ],
    s.stderr(),
    runs,
  );
  assert.match(s.stderr(), /execute_command|agent\/exec/, "the log has calls");
});

Deno.test("real entry point: two server runs append to one audit file (0600), never truncating it", async () => {
  await withAuditFile(async (file, sim) => {
    for (const vmid of [102, 106]) {
      await using s = await connect({
        env: { ...simEnv(sim), MCP_AUDIT_FILE: file, LOG_LEVEL: "INFO" },
        permissions: [`--allow-write=${file}`],
      });
      await callOk(s.client, "proxmox_start_vm", { vmid });
      assert.equal(stderrAudit(s.stderr()).length, 1, s.stderr());
    }
    const lines = linesOf(await Deno.readTextFile(file));
    assert.deepEqual(lines.map((l) => l.args.vmid), [102, 106]);
    assert.ok(lines.every((l) => l.upids.length === 1 && l.result === "ok"));
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  });
});

Deno.test("real entry point: an audit file the process may not write stops it at start, naming the grant", async () => {
  await withAuditFile(async (file, sim) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-env",
        "--allow-net",
        MAIN,
      ],
      env: { ...simEnv(sim), MCP_AUDIT_FILE: file },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    const err = new TextDecoder().decode(out.stderr);
    assert.match(err, /Cannot open MCP_AUDIT_FILE .*grant --allow-write=/);
    assert.equal(out.stdout.length, 0);
  });
});

Deno.test("real entry point: an audit file that exists with a loose mode is appended to, kept, and the log says to chmod 600 it", async () => {
  await withAuditFile(async (file, sim) => {
    await Deno.writeTextFile(file, '{"earlier":true}\n', { mode: 0o644 });
    await Deno.chmod(file, 0o644);
    {
      await using s = await connect({
        env: { ...simEnv(sim), MCP_AUDIT_FILE: file },
        permissions: [`--allow-read=${file}`, `--allow-write=${file}`],
      });
      await callOk(s.client, "proxmox_start_vm", { vmid: 102 });
      assert.match(s.stderr(), /readable by others \(mode 644\): chmod 600/);
    }
    const lines = await auditLines(file);
    assert.deepEqual(lines[0], { earlier: true });
    assert.equal(lines[1].tool, "proxmox_start_vm");
  });
});

Deno.test("the real entry point over stdio: scope filters and refuses with 0 writes, the INFO line appears once", async () => {
  await using sim = await startSim();
  // The first calls are answered before the SDK loads (call_fast.ts).
  await using s = await connect({
    process: true,
    env: { ...simEnv(sim), ...SCOPE_ENV },
  });
  await scopeScenario(s, sim);
});

Deno.test("the real entry point over HTTP: one INFO line for the process, however many clients and calls", async () => {
  await using sim = await startSim();
  const token = "scope-test-token-0123456789";
  await using server = await spawnHttp({
    ...simEnv(sim),
    MCP_AUTH_TOKEN: token,
    LOG_LEVEL: "INFO",
    MCP_ALLOWED_VMIDS: "100-105",
  });
  await listInScopeEachEra(() =>
    new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), {
      authProvider: { token: () => Promise.resolve(token) },
    })
  );
  assert.match(scopeLine(server.stderr()), /INFO main: Scope: VMIDs 100-105\./);
});

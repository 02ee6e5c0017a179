/**
 * Secrets at DEBUG (issue 9, item 9): across a run of every tool, no secret
 * in play appears in the server's log (at DEBUG, its most talkative) nor in
 * any tool result: PROXMOX_PASSWORD, the token secret, MCP_AUTH_TOKEN, every
 * ticket and CSRF token (a renewal mid-run makes a second pair), passwords
 * given to the create tools, and passwords on guest command lines in the four
 * common forms (`sshpass -p`, `echo … | sudo -S`, `MYSQL_PWD=`,
 * `htpasswd -b`), on success and on error paths.
 */
import {
  Client,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { boot } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { setLogWriter } from "../src/log.ts";
import { createHttpApp } from "../src/transports/http/router.ts";
import {
  call,
  connect,
  type Connected,
  simEnv,
  startSim,
  type TestSim,
  type ToolResult,
} from "./helpers.ts";
import {
  assertNowhere,
  commandSecrets,
  type Run,
  run,
  secret,
} from "./safety_helpers.ts";

/** Calls every tool once or more; returns what came back. */
async function everyTool(
  sim: TestSim,
  s: Connected,
  secrets: { create: string[]; commands: ReturnType<typeof commandSecrets> },
): Promise<Run> {
  const out: Run = { results: [], called: new Set() };
  const go = (tool: string, args: Record<string, unknown> = {}) =>
    run(s, tool, args, out);

  await go("proxmox_list_nodes");
  await go("proxmox_whoami");
  await go("proxmox_list_vms");
  await go("proxmox_get_vm_stats", { vmid: 100 });
  await go("proxmox_list_storage");
  const content = await go("proxmox_list_content", {
    storage: "local",
    node: "pve1",
  });
  const start = await go("proxmox_start_vm", { vmid: 106 });
  const upid = /UPID:[^"\s]+:/.exec(start.text)?.[0];
  if (upid) await go("proxmox_get_task", { upid });
  // A ticket renewal mid-run: a second ticket and CSRF token in play.
  sim.faults.inject({ fault: { kind: "unauthorized" } });
  await go("proxmox_stop_vm", { vmid: 106, force: true });
  await go("proxmox_update_vm", { vmid: 102, cores: 3, name: "win-build-2" });
  await go("proxmox_migrate_vm", { vmid: 102, target: "pve1" });

  // Passwords given to the create tools.
  const vm = await go("proxmox_create_vm_from_template", {
    template: 9000,
    name: "secret-vm",
    ciuser: "debian",
    password: secrets.create[0],
    start: false,
  });
  const ostemplate =
    /local:vztmpl\/debian-12-standard[^"\s,\]]*/.exec(content.text)?.[0] ??
      "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";
  await go("proxmox_create_lxc", {
    ostemplate,
    node: "pve1",
    hostname: "secret-ct",
    password: secrets.create[1],
  });
  // A create refused by Proxmox: its error path must not echo the password.
  sim.faults.inject({
    method: "POST",
    path: /^\/nodes\/[^/]+\/lxc$/,
    fault: { kind: "status", status: 500, message: "unable to create CT" },
  });
  await go("proxmox_create_lxc", {
    ostemplate,
    node: "pve1",
    hostname: "secret-ct2",
    password: secrets.create[2],
  });
  sim.faults.clear();

  await go("proxmox_create_snapshot", { vmid: 100, name: "sec1" });
  await go("proxmox_list_snapshots", { vmid: 100 });
  await go("proxmox_rollback_snapshot", { vmid: 100, name: "sec1" });
  await go("proxmox_delete_snapshot", { vmid: 100, name: "sec1" });
  await go("proxmox_create_backup", { vmid: 200, storage: "local" });
  const backups = await go("proxmox_list_backups", {});
  const volid = /local:backup\/vzdump-qemu-101[^"\s,\]]*/.exec(
    backups.text,
  )?.[0] ?? "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst";
  await go("proxmox_restore_backup", { volid, vmid: 777 });

  // Guest commands with passwords: on a guest with an agent (success path),
  // on one whose agent does not run and on a stopped one (error paths).
  for (const { command } of secrets.commands) {
    await go("proxmox_execute_command", { vmid: 101, command });
    await go("proxmox_execute_command", { vmid: 104, command });
    await go("proxmox_execute_command", { vmid: 102, command });
  }
  // A command given on stdin.
  await go("proxmox_execute_command", {
    vmid: 101,
    command: secrets.commands[0].command,
    stdin: "not a secret",
  });
  await go("proxmox_write_file_vm", {
    vmid: 101,
    path: "/tmp/secrets-test",
    content: "hello",
  });
  await go("proxmox_read_file_vm", { vmid: 101, path: "/etc/hostname" });
  await go("proxmox_install_software", { vmid: 103, software: "nginx" });
  await go("proxmox_list_firewall_rules", { vmid: 100 });
  await go("proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
    comment: "ssh",
  });
  const newid = (vm.data as { vmid?: number } | undefined)?.vmid;
  await go("proxmox_delete_vm", { vmid: newid ?? 777 });
  return out;
}

/** Every tool the server lists was called. */
async function assertEveryToolCalled(s: Connected, runs: Run): Promise<void> {
  const { tools } = await s.client.listTools();
  const missing = tools.map((t) => t.name).filter((n) => !runs.called.has(n));
  assert.deepEqual(missing, [], "tools this run did not call");
}

Deno.test("every tool, ticket login, LOG_LEVEL=DEBUG: no password, ticket, CSRF token, MCP_AUTH_TOKEN, create password or guest command password in the log or any result", async () => {
  await using sim = await startSim();
  const authToken = secret("Mcp");
  const create = [secret("Ci"), secret("Ct"), secret("Ct")];
  const commands = commandSecrets();
  const env = {
    ...simEnv(sim),
    MCP_AUTH_TOKEN: authToken,
    LOG_LEVEL: "DEBUG",
  };
  await using s = await connect({ env });
  const runs = await everyTool(sim, s, { create, commands });
  await assertEveryToolCalled(s, runs);
  // The run did reach the places secrets go: two logins, guest commands.
  assert.ok(
    sim.requests.filter((q) => q.path === "/access/ticket").length >= 2,
    "a ticket renewal happened",
  );
  assert.ok(
    sim.requests.some((q) => q.path.endsWith("/agent/exec")),
    "guest commands reached an agent",
  );
  const guestRuns = runs.results.filter((x) =>
    x.tool === "proxmox_execute_command"
  );
  assert.ok(
    guestRuns.some((x) => !x.r.isError) && guestRuns.some((x) => x.r.isError),
    "guest commands ran, and some failed",
  );
  assertNowhere(
    [
      sim.credentials.password,
      authToken,
      ...create,
      ...commands.map((c) => c.pw),
      ...sim.secrets(),
    ],
    s.stderr(),
    runs,
  );
});

/**
 * Runs each command on VM 101 (agent up), for real and as a dry run (whose
 * plan shows the command line); returns the server's log and, per command,
 * both results.
 */
async function logOfCommands(
  commands: (string | string[])[],
): Promise<{ log: string; results: ToolResult[][] }> {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), LOG_LEVEL: "DEBUG" },
  });
  const results: ToolResult[][] = [];
  for (const command of commands) {
    results.push([
      await call(s.client, "proxmox_execute_command", { vmid: 101, command }),
      await call(s.client, "proxmox_execute_command", {
        vmid: 101,
        command,
        dry_run: true,
      }),
    ]);
  }
  return { log: s.stderr(), results };
}

function assertMasked(
  cases: { name: string; pw: string; command: string | string[] }[],
  log: string,
  results: ToolResult[][],
): void {
  const inLog = cases.filter((c) => log.includes(c.pw)).map((c) => c.name);
  const inResult = cases.filter((c, i) =>
    results[i].some((r) => r.text.includes(c.pw))
  ).map((c) => c.name);
  assert.deepEqual(
    { inLog, inResult },
    { inLog: [], inResult: [] },
    "forms whose password shows at DEBUG or in a result (a dry run's plan)",
  );
}

Deno.test("guest command passwords in the other spellings of the four common forms are masked at DEBUG (sudo --stdin, a here-document, htpasswd with a bcrypt cost)", async () => {
  const pw = () => secret("Pw");
  const cases = [
    { name: "sudo --stdin", pw: pw() },
    { name: "sudo -S here-document", pw: pw() },
    { name: "htpasswd -bBC 10", pw: pw() },
    { name: "htpasswd -b -C 12 -B", pw: pw() },
    { name: 'sshpass -p"pw"', pw: pw() },
    { name: "MYSQL_PWD in env argv", pw: pw() },
  ].map((c, i) => ({
    ...c,
    command: [
      `echo '${c.pw}' | sudo --stdin systemctl restart nginx`,
      `sudo -S systemctl restart nginx <<EOF\n${c.pw}\nEOF`,
      `htpasswd -bBC 10 /etc/nginx/.htpasswd admin ${c.pw}`,
      `htpasswd -b -C 12 -B /etc/nginx/.htpasswd admin ${c.pw}`,
      `sshpass -p"${c.pw}" ssh root@10.0.0.5 uptime`,
      ["env", `MYSQL_PWD=${c.pw}`, "mysql", "-u", "root"],
    ][i],
  }));
  const { log, results } = await logOfCommands(cases.map((c) => c.command));
  assertMasked(cases, log, results);
});

Deno.test("other passwords on guest command lines are masked at DEBUG too (curl -u user:pw, net user name pw): secrets at DEBUG, 0 hits", async () => {
  const pw = () => secret("Pw");
  const cases = [
    { name: "curl -u user:pw", pw: pw() },
    { name: "cmd /c net user admin pw", pw: pw() },
    { name: "wget --http-password", pw: pw() },
  ].map((c, i) => ({
    ...c,
    command: [
      `curl -fsS -u admin:${c.pw} https://10.0.0.5/api`,
      ["cmd", "/c", `net user admin ${c.pw}`],
      `wget --http-user=admin --http-password=${c.pw} https://10.0.0.5/`,
    ][i],
  }));
  const { log, results } = await logOfCommands(cases.map((c) => c.command));
  assertMasked(cases, log, results);
});

Deno.test("HTTP with MCP_AUTH_TOKEN at DEBUG: the token, wrong tokens close to it and guest command passwords appear in no log line and no answer", async () => {
  await using sim = await startSim();
  const token = secret("Mcp");
  const commands = commandSecrets();
  const parsed = loadConfig([], {
    ...simEnv(sim),
    MCP_TRANSPORT: "http",
    MCP_AUTH_TOKEN: token,
    LOG_LEVEL: "DEBUG",
  });
  if (parsed.kind !== "run") throw new TypeError("not a server run");
  const config = parsed.config;
  let log = "";
  setLogWriter((line) => {
    log += line + "\n";
  });
  const app = createHttpApp(await boot(config));
  const host = `127.0.0.1:${config.port}`;
  const send = (
    init: RequestInit,
    bearer?: string,
    url: string | URL = `http://${host}/mcp`,
  ) => {
    const headers = new Headers(init.headers);
    headers.set("host", host);
    if (bearer !== undefined) headers.set("authorization", `Bearer ${bearer}`);
    return app.fetch(new Request(url, { ...init, headers }));
  };
  const answers: string[] = [];
  try {
    // Wrong tokens that differ from the real one by a character or a suffix.
    const wrong = [
      token + "x",
      token.slice(0, -1) + (token.endsWith("a") ? "b" : "a"),
      token.slice(0, 8),
      `${token} ${token}`,
    ];
    for (const w of wrong) {
      const r = await send({
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/list",
        }),
      }, w);
      answers.push(
        `${r.status} ${[...r.headers].join(";")} ${await r.text()}`,
      );
      assert.equal(r.status, 401, "a wrong token is refused");
    }
    // The real token: a session that runs guest commands with passwords.
    const client = new Client({ name: "secrets-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`http://${host}/mcp`), {
        fetch: (url: string | URL, init?: RequestInit) =>
          send(init ?? {}, token, url),
      }),
    );
    const runs: Run = { results: [], called: new Set() };
    const go = async (tool: string, args: Record<string, unknown>) => {
      const r = await client.callTool({ name: tool, arguments: args });
      const text = (r.content as { text: string }[]).map((c) => c.text)
        .join("\n");
      runs.results.push({
        tool,
        r: { isError: r.isError as boolean, text, data: r.structuredContent },
      });
    };
    await go("proxmox_list_vms", {});
    for (const { command } of commands) {
      await go("proxmox_execute_command", { vmid: 101, command });
    }
    await client.close();
    runs.results.push({
      tool: "(refused requests)",
      r: { text: answers.join("\n"), data: null },
    });
    assertNowhere(
      [
        token,
        ...wrong,
        sim.credentials.password,
        ...commands.map((c) => c.pw),
        ...sim.secrets(),
      ],
      log,
      runs,
    );
    assert.ok(runs.results.some((x) => !x.r.isError), "calls went through");
  } finally {
    await app.shutdown();
    setLogWriter();
  }
});

Deno.test("dry runs of the create tools and of guest commands: the plan shows no password", async () => {
  await using sim = await startSim();
  const create = [secret("Ci"), secret("Ct")];
  const commands = commandSecrets();
  await using s = await connect({
    env: { ...simEnv(sim), LOG_LEVEL: "DEBUG" },
  });
  const runs: Run = { results: [], called: new Set() };
  const vm = await run(s, "proxmox_create_vm_from_template", {
    template: 9000,
    name: "dry-vm",
    ciuser: "debian",
    password: create[0],
    dry_run: true,
  }, runs);
  const ct = await run(s, "proxmox_create_lxc", {
    ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    node: "pve1",
    hostname: "dry-ct",
    password: create[1],
    dry_run: true,
  }, runs);
  for (const { command } of commands) {
    await run(s, "proxmox_execute_command", {
      vmid: 101,
      command,
      dry_run: true,
    }, runs);
  }
  for (const r of [vm, ct, ...runs.results.slice(2).map((x) => x.r)]) {
    assert.ok(!r.isError, r.text);
    assert.match(r.text, /dry_run/, "a plan came back");
  }
  assert.equal(
    sim.requests.filter((q) =>
      q.method !== "GET" && q.path !== "/access/ticket"
    )
      .length,
    0,
    "a dry run writes nothing",
  );
  assertNowhere(
    [...create, ...commands.map((c) => c.pw), ...sim.secrets()],
    s.stderr(),
    runs,
  );
});

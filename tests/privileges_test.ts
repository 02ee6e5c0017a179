/**
 * Least privilege: every tool declares the PVE privileges it needs; a 403
 * names what is missing and how to grant it; proxmox_whoami reports the
 * credential, its privileges and each tool's standing; MCP_HIDE_UNPERMITTED
 * hides what the credential cannot use (with tools/list_changed); README's
 * table is generated from the declarations.
 */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { PveError } from "../src/proxmox/errors.ts";
import { quirksFor } from "../src/proxmox/quirks.ts";
import {
  AGENT,
  type Hideable,
  hideUnpermitted,
  privilegeTable,
  reach,
  standing,
  waitingServers,
} from "../src/safety/privileges.ts";
import { PveClient } from "../src/proxmox/client.ts";
import { ALL_TOOLS } from "../src/tools/mod.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { operatorOf105, tokenEnv } from "./safety_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("every tool declares its privileges, each one a privilege PVE knows; the agent's follow quirks.ts per release", async () => {
  const schema = await Deno.readTextFile(
    `${ROOT}../shared/pve-api/pve-api-schema.json`,
  );
  const schema8 = await Deno.readTextFile(
    `${ROOT}../shared/pve-api/pve-api-schema-pve8.json`,
  );
  for (const t of ALL_TOOLS) {
    assert.ok(Array.isArray(t.privileges), `${t.name} declares privileges`);
    for (const p of t.privileges!) {
      for (const priv of p.privs) {
        assert.ok(schema.includes(`"${priv}"`), `${t.name}: ${priv}`);
      }
      for (const priv of p.pve8 ?? []) {
        assert.ok(schema8.includes(`"${priv}"`), `${t.name}: ${priv} (8.x)`);
      }
    }
  }
  assert.equal(AGENT.exec.privs[0], quirksFor("9.1").agentExecPrivilege);
  assert.equal(AGENT.exec.pve8![0], quirksFor("8.4").agentExecPrivilege);
  assert.equal(AGENT.read.pve8![0], quirksFor("8.4").agentFilePrivilege);
});

Deno.test("reach: / and top paths with propagation cover every object, a single object only itself", () => {
  const perms = {
    "/vms": { "VM.Audit": 1 },
    "/vms/105": { "VM.PowerMgmt": 0 },
    "/storage": { "Datastore.Audit": 0 },
  };
  assert.equal(reach(perms, "VM.Audit", "/vms/{vmid}"), "all");
  assert.equal(reach(perms, "VM.PowerMgmt", "/vms/{vmid}"), "some");
  assert.equal(reach(perms, "Datastore.Audit", "/storage/{storage}"), "none");
  const s = standing(
    ALL_TOOLS.find((t) => t.name === "proxmox_start_vm")!.privileges!,
    perms,
    "9.1",
  );
  assert.deepEqual(s, { can: "some", missing: [], limited: [] });
});

Deno.test("README's privilege table is generated from the tools' declarations (UPDATE_SNAPSHOTS=1 rewrites it)", async () => {
  const path = `${ROOT}README.md`;
  const readme = await Deno.readTextFile(path);
  const re =
    /(<!-- privileges:start[^>]*-->\n)[\s\S]*?(<!-- privileges:end -->)/;
  assert.match(readme, re);
  const fresh = readme.replace(
    re,
    (_, a, b) => `${a}\n${privilegeTable(ALL_TOOLS)}\n\n${b}`,
  );
  if (Deno.env.get("UPDATE_SNAPSHOTS") === "1") {
    await Deno.writeTextFile(path, fresh);
    return;
  }
  assert.equal(
    readme,
    fresh,
    "README's privilege table is stale: run with UPDATE_SNAPSHOTS=1",
  );
});

Deno.test("start_vm with a token lacking VM.PowerMgmt: isError 'missing VM.PowerMgmt on /vms/100' with the grant, nothing started", async () => {
  await using sim = await startSim();
  const t = operatorOf105(sim);
  await using s = await connect({ env: tokenEnv(sim, t) });
  const r = await call(s.client, "proxmox_start_vm", { vmid: 102 });
  assert.ok(r.isError);
  assert.match(
    r.text,
    /Permission denied: missing VM\.PowerMgmt on \/vms\/102/,
  );
  assert.match(
    r.text,
    /pveum acl modify \/vms\/102 --roles <role> --tokens 'ops@pve!mcp'/,
  );
  assert.equal(sim.cluster.guests.get(102)!.status, "stopped");
  // The guest the token may operate starts.
  await callOk(s.client, "proxmox_start_vm", { vmid: 105 });
});

Deno.test("a 403 without a path names what the tool needs", async () => {
  await using sim = await startSim();
  const t = operatorOf105(sim);
  sim.access.grant("/storage", "ops@pve", "PVEDatastoreUser");
  await using s = await connect({ env: tokenEnv(sim, t) });
  const r = await call(s.client, "proxmox_create_lxc", {
    ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    node: "pve1",
    hostname: "ct-x",
    password: "secret-pw-1",
  });
  assert.ok(r.isError, r.text);
  assert.match(
    r.text,
    /proxmox_create_lxc needs VM\.Allocate on \/vms\/\{newid\}/,
  );
});

Deno.test("whoami as root@pam: every privilege everywhere, every tool can run", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const w = await callOk(s.client, "proxmox_whoami");
  assert.equal(w.as, "root@pam");
  assert.equal(w.kind, "user");
  assert.equal(w.release, "9.1");
  assert.ok(w.privileges["/"].includes("VM.PowerMgmt*"));
  // /vms, /nodes, ... hold what / passes down: not repeated.
  assert.deepEqual(Object.keys(w.privileges), ["/"]);
  assert.equal(w.tools.length, ALL_TOOLS.length);
  for (const t of w.tools) assert.equal(t.can, "yes", t.name);
});

Deno.test("whoami as a restricted user (ticket): privileges per path, tools it can run on some guests, and what is missing", async () => {
  await using sim = await startSim();
  sim.access.addUser("ops@pve", "ops-secret-pw");
  sim.access.grant("/", "ops@pve", "PVEAuditor");
  sim.access.grant("/vms/105", "ops@pve", "PVEVMUser");
  await using s = await connect({
    env: {
      PROXMOX_URL: sim.url,
      PROXMOX_USER: "ops@pve",
      PROXMOX_PASSWORD: "ops-secret-pw",
    },
  });
  const w = await callOk(s.client, "proxmox_whoami");
  assert.equal(w.as, "ops@pve");
  assert.equal(w.privilege_separation, undefined);
  assert.ok(w.privileges["/vms/105"].includes("VM.PowerMgmt*"));
  assert.ok(!w.privileges["/"].includes("VM.PowerMgmt*"));
  const of = (n: string) => w.tools.find((t: { name: string }) => t.name === n);
  assert.equal(of("proxmox_list_vms").can, "yes");
  assert.equal(of("proxmox_start_vm").can, "some");
  assert.equal(of("proxmox_delete_vm").can, "no");
  assert.deepEqual(of("proxmox_delete_vm").missing, [
    "VM.Allocate on /vms/{vmid}",
  ]);
  assert.deepEqual(of("proxmox_execute_command").missing, [
    "VM.GuestAgent.Unrestricted on /vms/{vmid}",
  ]);
});

Deno.test("whoami with a privilege-separated token: separation reported, only the overlap of its and its user's ACLs held", async () => {
  await using sim = await startSim();
  sim.access.addUser("ops@pve");
  sim.access.grant("/", "ops@pve", "Administrator");
  const t = sim.access.addToken("ops@pve", "sep");
  sim.access.grant("/vms", t.tokenId, "PVEAuditor");
  // Reading its own settings takes User.Modify: granted on /access/groups.
  sim.access.addRole("TokenReader", ["User.Modify"]);
  sim.access.grant("/access/groups", t.tokenId, "TokenReader");
  await using s = await connect({ env: tokenEnv(sim, t) });
  const w = await callOk(s.client, "proxmox_whoami");
  assert.equal(w.as, "ops@pve!sep");
  assert.equal(w.kind, "token");
  assert.equal(w.privilege_separation, true);
  assert.ok(w.privileges["/vms"].includes("VM.Audit*"));
  assert.ok(
    w.privileges["/vms"].every((p: string) => p.includes(".Audit")),
    "the token's own role (PVEAuditor), not its user's Administrator",
  );
  const of = (n: string) => w.tools.find((t: { name: string }) => t.name === n);
  assert.equal(of("proxmox_list_vms").can, "yes");
  assert.equal(of("proxmox_start_vm").can, "no");

  // Without User.Modify PVE does not tell a token its own settings.
  const u = sim.access.addToken("ops@pve", "plain");
  sim.access.grant("/vms", u.tokenId, "PVEAuditor");
  await using s2 = await connect({ env: tokenEnv(sim, u) });
  const w2 = await callOk(s2.client, "proxmox_whoami");
  assert.equal(w2.privilege_separation, null);
  assert.match(w2.note, /User\.Modify/);
});

Deno.test("MCP_HIDE_UNPERMITTED: tools the credential cannot use are hidden after the first login, with tools/list_changed; off by default", async () => {
  await using sim = await startSim();
  const t = operatorOf105(sim);
  // The permissions arrive after the client is connected and listening.
  sim.faults.inject({
    method: "GET",
    path: "/access/permissions",
    fault: { kind: "delay", ms: 300 },
  });
  await using s = await connect({
    env: tokenEnv(sim, t, { MCP_HIDE_UNPERMITTED: "true" }),
  });
  assert.equal(s.client.getServerCapabilities()?.tools?.listChanged, true);
  let changed = 0;
  const notified = new Promise<void>((resolve) =>
    s.client.setNotificationHandler(
      "notifications/tools/list_changed",
      () => {
        changed++;
        resolve();
      },
    )
  );
  const before = (await s.client.listTools()).tools.map((x) => x.name);
  assert.ok(before.includes("proxmox_delete_vm"), "listed until known");
  await notified;
  const after = (await s.client.listTools()).tools.map((x) => x.name);
  assert.equal(changed, 1);
  for (
    const n of [
      "proxmox_delete_vm",
      "proxmox_execute_command",
      "proxmox_create_lxc",
    ]
  ) {
    assert.ok(!after.includes(n), `${n} hidden`);
  }
  for (const n of ["proxmox_list_vms", "proxmox_start_vm", "proxmox_whoami"]) {
    assert.ok(after.includes(n), `${n} kept`);
  }
  const r = await s.client.callTool({
    name: "proxmox_delete_vm",
    arguments: { vmid: 105 },
  }).catch((e: Error) => ({ isError: true, content: [{ text: e.message }] }));
  assert.ok(r.isError);
  assert.ok(sim.cluster.guests.has(105));

  // Off by default: nothing hidden, and listChanged stays false.
  await using d = await connect({ env: tokenEnv(sim, t) });
  assert.equal(d.client.getServerCapabilities()?.tools?.listChanged, false);
  assert.equal((await d.client.listTools()).tools.length, ALL_TOOLS.length);
});

Deno.test("MCP_HIDE_UNPERMITTED over stateless HTTP (2026-07-28): once the permissions are read, every later tools/list leaves the tools out", async () => {
  await using sim = await startSim();
  const t = operatorOf105(sim);
  await using s = await connect({
    era: "2026-07-28",
    env: tokenEnv(sim, t, { MCP_HIDE_UNPERMITTED: "true" }),
  });
  // The first request logs in and reads the permissions.
  await callOk(s.client, "proxmox_whoami");
  const names = (await s.client.listTools()).tools.map((x) => x.name);
  assert.ok(!names.includes("proxmox_delete_vm"), names.join(","));
  assert.ok(names.includes("proxmox_start_vm"));
  const r = await call(s.client, "proxmox_delete_vm", { vmid: 105 }).catch((
    e: Error,
  ) => ({ isError: true, text: e.message }));
  assert.ok(r.isError);
  assert.ok(sim.cluster.guests.has(105));
});

Deno.test("MCP_HIDE_UNPERMITTED over stateless HTTP with Proxmox down: one permissions read per retry step and one WARNING, not one per request; hidden once Proxmox is back", async () => {
  await using sim = await startSim();
  const t = operatorOf105(sim);
  // Down: every request answered 503 (as a proxy in front of a stopped PVE).
  sim.faults.inject({
    times: Infinity,
    fault: { kind: "status", status: 503, message: "Service Unavailable" },
  });
  await using s = await connect({
    era: "2026-07-28",
    env: tokenEnv(sim, t, { MCP_HIDE_UNPERMITTED: "true", LOG_LEVEL: "INFO" }),
  });
  const reads = () =>
    sim.requests.filter((r) => r.path === "/access/permissions").length;
  for (let i = 0; i < 20; i++) {
    const names = (await s.client.listTools()).tools.map((x) => x.name);
    assert.ok(names.includes("proxmox_delete_vm"), "unknown: all listed");
  }
  const warnings = () =>
    s.stderr().split("\n").filter((l) =>
      / WARNING .*Cannot read the Proxmox permissions/.test(l)
    ).length;
  // The first read fails: once.
  for (let i = 0; i < 100 && warnings() === 0; i++) await delay(50);
  const before = reads();
  assert.equal(warnings(), 1, "one WARNING for the outage");
  for (let i = 0; i < 20; i++) {
    const names = (await s.client.listTools()).tools.map((x) => x.name);
    assert.ok(names.includes("proxmox_delete_vm"), "unknown: all listed");
  }
  assert.ok(
    reads() - before <= 1,
    `${reads() - before} permission reads for 20 requests while down`,
  );
  assert.equal(warnings(), 1, "still one WARNING");
  // Back up: the loop's next try reads them; later requests hide the tools.
  sim.faults.clear();
  const until = Date.now() + 15_000;
  let names: string[] = [];
  while (Date.now() < until) {
    names = (await s.client.listTools()).tools.map((x) => x.name);
    if (!names.includes("proxmox_delete_vm")) break;
    await delay(200);
  }
  assert.ok(!names.includes("proxmox_delete_vm"), "hidden once read");
  assert.ok(names.includes("proxmox_start_vm"));
  assert.equal(warnings(), 1);
  assert.match(
    s.stderr(),
    /Read the Proxmox permissions after \d+ failed tries/,
  );
  assert.ok(reads() <= 6, `${reads()} permission reads in all`);
});

/** Arguments that make each tool do its whole job on the demo cluster. */
const RUNS: [string, Record<string, unknown>][] = [
  ["proxmox_list_nodes", {}],
  ["proxmox_whoami", {}],
  ["proxmox_list_vms", {}],
  ["proxmox_get_vm_stats", { vmid: 100 }],
  ["proxmox_list_storage", {}],
  ["proxmox_list_content", { storage: "local", node: "pve1" }],
  ["proxmox_start_vm", { vmid: 106 }],
  ["proxmox_stop_vm", { vmid: 106, force: true }],
  ["proxmox_update_vm", { vmid: 102, cores: 3, restart: false }],
  ["proxmox_migrate_vm", { vmid: 102, target: "pve1" }],
  ["proxmox_create_vm_from_template", {
    template: 9000,
    name: "least-vm",
    start: false,
  }],
  ["proxmox_create_lxc", {
    ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    node: "pve1",
    hostname: "least-ct",
    password: "least-pw-1",
  }],
  ["proxmox_create_snapshot", { vmid: 100, name: "least1" }],
  ["proxmox_list_snapshots", { vmid: 100 }],
  ["proxmox_rollback_snapshot", { vmid: 100, name: "least1" }],
  ["proxmox_delete_snapshot", { vmid: 100, name: "least1" }],
  ["proxmox_create_backup", { vmid: 200, storage: "local" }],
  ["proxmox_list_backups", {}],
  ["proxmox_execute_command", { vmid: 101, command: "uname -a" }],
  ["proxmox_write_file_vm", { vmid: 101, path: "/tmp/x", content: "hi" }],
  ["proxmox_read_file_vm", { vmid: 101, path: "/etc/hostname" }],
  ["proxmox_install_software", { vmid: 103, software: "nginx" }],
  ["proxmox_list_firewall_rules", { vmid: 100 }],
  ["proxmox_add_firewall_rule", {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
  }],
  ["proxmox_delete_vm", { vmid: 106 }],
];

Deno.test("a token holding exactly what a tool declares (on /) runs it against the simulator's schema-derived checks", async () => {
  await using sim = await startSim();
  const tools = new Map(ALL_TOOLS.map((t) => [t.name, t]));
  const untested = new Set(tools.keys());
  const backup = sim.cluster.volumes.find((v) =>
    v.content === "backup" && v.vmid === 101
  )!;
  const runs = [
    ...RUNS,
    ["proxmox_restore_backup", { volid: backup.volid, vmid: 777 }] as const,
  ];
  for (const [name, args] of runs) {
    const tool = tools.get(name)!;
    const privs = [
      ...new Set((tool.privileges ?? []).map((p) => p.privs[0])),
    ];
    const user = `least-${name.slice(8).replaceAll("_", "-")}@pve`;
    sim.access.addRole(`R-${name}`, privs);
    sim.access.grant("/", user, `R-${name}`);
    const t = sim.access.addToken(user, "mcp", { privsep: false });
    await using s = await connect({ env: tokenEnv(sim, t) });
    const r = await call(s.client, name, args);
    assert.ok(!r.isError, `${name} with ${privs.join(",")}: ${r.text}`);
    untested.delete(name);
  }
  // Its own tasks need nothing; other users' need Sys.Audit (declared as such).
  untested.delete("proxmox_get_task");
  assert.deepEqual([...untested], []);
});

Deno.test("each privilege a tool declares as needed is needed: without it the tool fails and says what is missing", async () => {
  await using sim = await startSim();
  const tools = new Map(ALL_TOOLS.map((t) => [t.name, t]));
  const ranAnyway: string[] = [];
  let n = 0;
  for (const [name, given] of RUNS) {
    // Listings run without it and show only what the credential may see.
    if (name.startsWith("proxmox_list_")) continue;
    // A guest that runs, so that stopping it has something to do.
    const args = name === "proxmox_stop_vm" ? { vmid: 100 } : given;
    const needed = (tools.get(name)!.privileges ?? []).filter((p) => !p.only);
    const all = [
      ...new Set((tools.get(name)!.privileges ?? []).map((p) => p.privs[0])),
    ];
    for (const drop of needed) {
      const privs = all.filter((p) => !drop.privs.includes(p));
      const user = `lack-${n++}@pve`;
      sim.access.addRole(`L-${n}`, privs);
      sim.access.grant("/", user, `L-${n}`);
      const t = sim.access.addToken(user, "mcp", { privsep: false });
      await using s = await connect({ env: tokenEnv(sim, t) });
      const r = await call(s.client, name, args);
      if (!r.isError) ranAnyway.push(`${name} without ${drop.privs[0]}`);
    }
  }
  assert.deepEqual(ranAnyway, []);
});

Deno.test("whoami reads the agent's privileges per release: VM.Monitor runs commands on 8.4, not on 9.1", async () => {
  for (const [version, can] of [["8.4", "yes"], ["9.1", "no"]] as const) {
    await using sim = await startSim({ pveVersion: version });
    const t = sim.access.addToken("ops@pve", "mcp", { privsep: false });
    sim.access.addRole(
      "Monitor",
      version === "8.4" ? ["VM.Audit", "VM.Monitor"] : ["VM.Audit"],
    );
    sim.access.grant("/", "ops@pve", "Monitor");
    await using s = await connect({ env: tokenEnv(sim, t) });
    const w = await callOk(s.client, "proxmox_whoami");
    assert.equal(w.release, version);
    const exec = w.tools.find((x: { name: string }) =>
      x.name === "proxmox_execute_command"
    );
    assert.equal(exec.can, can, version);
    if (version === "9.1") {
      assert.deepEqual(exec.missing, [
        "VM.GuestAgent.Unrestricted on /vms/{vmid}",
      ]);
    }
  }
});

Deno.test("PveError reads PVE's 403: one privilege, any of several, or none named", () => {
  const err = (message: string) =>
    new PveError({
      status: 403,
      method: "POST",
      path: "/nodes/pve1/qemu/100/snapshot/s1/rollback",
      pveMessage: message,
    });
  const one = err("Permission check failed (/vms/100, VM.PowerMgmt)");
  assert.equal(one.kind, "permission");
  assert.deepEqual(one.denied, { path: "/vms/100", privs: ["VM.PowerMgmt"] });
  assert.match(
    one.message,
    /^Permission denied: missing VM\.PowerMgmt on \/vms\/100 \(/,
  );
  const any = err(
    "Permission check failed (/vms/100, VM.Snapshot|VM.Snapshot.Rollback)",
  );
  assert.match(
    any.message,
    /missing one of VM\.Snapshot, VM\.Snapshot\.Rollback on \/vms\/100/,
  );
  const bare = err("Permission check failed");
  assert.equal(bare.denied, undefined);
  assert.match(
    bare.message,
    /^Proxmox answered 403 to POST .*: Permission check failed$/,
  );
});

/** What hideUnpermitted takes as the registered tools: every tool, enabled. */
function registeredAll() {
  return ALL_TOOLS.map((t) =>
    [t, { enabled: true }] as [
      typeof t,
      { enabled: boolean },
    ]
  );
}

Deno.test("MCP_HIDE_UNPERMITTED with Proxmox down: servers closed while the permissions read waits are let go as the next one comes, not kept until the next failure", async () => {
  await using sim = await startSim();
  sim.faults.inject({
    path: "/access/permissions",
    times: Infinity,
    fault: { kind: "status", status: 503, message: "Service Unavailable" },
  });
  const t = operatorOf105(sim);
  const pve = new PveClient({
    baseUrl: sim.url,
    auth: { kind: "token", tokenId: t.tokenId, secret: t.secret },
  });
  let open = true;
  const session: Hideable = {
    isConnected: () => open,
    sendToolListChanged() {},
  };
  hideUnpermitted(session, pve, registeredAll());
  // A stateless request's server each: answered and closed at once.
  const closed: Hideable[] = [];
  for (let i = 0; i < 500; i++) {
    const s: Hideable = { isConnected: () => false, sendToolListChanged() {} };
    closed.push(s);
    hideUnpermitted(s, pve, registeredAll());
  }
  assert.ok(
    waitingServers(pve) <= 2,
    `${waitingServers(pve)} servers waiting after 500 closed ones`,
  );
  // The same server twice waits once.
  hideUnpermitted(session, pve, registeredAll());
  hideUnpermitted(session, pve, registeredAll());
  assert.ok(waitingServers(pve) <= 2, `${waitingServers(pve)} waiting`);
  open = false;
});

Deno.test("MCP_HIDE_UNPERMITTED: a server that throws when told about the permissions does not keep the others from being told", async () => {
  await using sim = await startSim();
  const t = operatorOf105(sim);
  const pve = new PveClient({
    baseUrl: sim.url,
    auth: { kind: "token", tokenId: t.tokenId, secret: t.secret },
  });
  const failing: Hideable = {
    isConnected: () => true,
    sendToolListChanged() {
      throw new Error("Not connected");
    },
  };
  const { promise: told, resolve } = Promise.withResolvers<void>();
  const other: Hideable = {
    isConnected: () => true,
    sendToolListChanged: () => resolve(),
  };
  const first = registeredAll();
  const second = registeredAll();
  hideUnpermitted(failing, pve, first);
  hideUnpermitted(other, pve, second);
  await told;
  const hidden = (r: ReturnType<typeof registeredAll>) =>
    r.filter(([, rt]) => !rt.enabled).map(([tool]) => tool.name);
  assert.ok(hidden(second).includes("proxmox_delete_vm"));
  assert.deepEqual(hidden(first), hidden(second));
});

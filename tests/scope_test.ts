/**
 * Scope (MCP_ALLOWED_VMIDS, MCP_ALLOWED_NODES) and protection (PVE's
 * protection flag, MCP_PROTECTED_TAG): what is outside is absent from every
 * listing and refused by every tool before any write; a protected guest is
 * read-only to the server. Driven by the SDK client against the simulator.
 */
import assert from "node:assert/strict";
import { boot } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { setLogWriter } from "../src/log.ts";
import { createHttpApp } from "../src/transports/http/router.ts";
import { ALL_TOOLS } from "../src/tools/mod.ts";
import {
  appTransport,
  assertNoSecrets,
  call,
  callOk,
  connect,
  type ElicitParams,
  simEnv,
  startSim,
  writes,
} from "./helpers.ts";
import {
  listedVmids,
  listInScopeEachEra,
  SCOPE_ENV,
  scopeLine,
  scopeScenario,
} from "./safety_helpers.ts";

type Sim = Awaited<ReturnType<typeof startSim>>;

const SEEDED_BACKUP =
  "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst";
const CT_TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";

/**
 * Arguments for every tool that changes something, acting on guest `vmid`.
 * `creates`: the tool makes a new guest (vmid is the new one's).
 */
const CHANGING: Record<
  string,
  { args: (vmid: number) => Record<string, unknown>; creates?: boolean }
> = {
  proxmox_start_vm: { args: (vmid) => ({ vmid }) },
  proxmox_stop_vm: { args: (vmid) => ({ vmid }) },
  proxmox_create_vm_from_template: {
    args: (vmid) => ({ template: vmid }),
    creates: true,
  },
  proxmox_create_lxc: {
    args: (vmid) => ({ ostemplate: CT_TEMPLATE, node: "pve1", vmid }),
    creates: true,
  },
  proxmox_update_vm: { args: (vmid) => ({ vmid, cores: 2 }) },
  proxmox_migrate_vm: { args: (vmid) => ({ vmid, target: "pve1" }) },
  proxmox_delete_vm: { args: (vmid) => ({ vmid }) },
  proxmox_create_snapshot: { args: (vmid) => ({ vmid, name: "s1" }) },
  proxmox_rollback_snapshot: { args: (vmid) => ({ vmid, name: "s1" }) },
  proxmox_delete_snapshot: { args: (vmid) => ({ vmid, name: "s1" }) },
  proxmox_create_backup: { args: (vmid) => ({ vmid }) },
  proxmox_restore_backup: {
    args: (vmid) => ({ volid: SEEDED_BACKUP, vmid, force: true }),
  },
  proxmox_execute_command: { args: (vmid) => ({ vmid, command: "id" }) },
  proxmox_write_file_vm: {
    args: (vmid) => ({ vmid, path: "/tmp/x", content: "x" }),
  },
  proxmox_install_software: {
    args: (vmid) => ({ vmid, software: "nginx" }),
  },
  proxmox_add_firewall_rule: {
    args: (vmid) => ({
      vmid,
      type: "in",
      action: "ACCEPT",
      proto: "tcp",
      dport: "22",
    }),
  },
};

const changingTools = ALL_TOOLS.filter((t) => !t.annotations.readOnlyHint);

/** A human who accepts every question, and the questions asked. */
function acceptingHuman() {
  const asked: ElicitParams[] = [];
  return {
    asked,
    elicit: (p: ElicitParams) => {
      asked.push(p);
      return { action: "accept" as const, content: { confirm: true } };
    },
  };
}

Deno.test("every tool that changes something has a case in this file's table", () => {
  for (const t of changingTools) {
    assert.ok(
      CHANGING[t.name],
      `${t.name} changes something: add it to CHANGING in tests/scope_test.ts`,
    );
  }
});

Deno.test("MCP_ALLOWED_VMIDS and MCP_ALLOWED_NODES parse to sorted, merged ranges and names; bad values name the variable", () => {
  const base = { PROXMOX_URL: "https://pve:8006", PROXMOX_USER: "root@pam" };
  const env = { ...base, PROXMOX_PASSWORD: "secret-pw" };
  const run = (extra: Record<string, string>) => {
    const r = loadConfig([], { ...env, ...extra });
    assert.equal(r.kind, "run");
    return (r as { config: import("../src/config.ts").Config }).config;
  };
  const c = run({
    MCP_ALLOWED_VMIDS: "250, 100-149,150-199 ,120",
    MCP_ALLOWED_NODES: "pve1, pve2",
  });
  assert.deepEqual(c.allowedVmids, [[100, 199], [250, 250]]);
  assert.deepEqual(c.allowedNodes, ["pve1", "pve2"]);
  assert.equal(c.protectedTag, "mcp-protected");
  assert.equal(run({}).allowedVmids, undefined, "no scope: the whole cluster");
  for (
    const [name, value, re] of [
      ["MCP_ALLOWED_VMIDS", "100-x", /Cannot parse MCP_ALLOWED_VMIDS: '100-x'/],
      ["MCP_ALLOWED_VMIDS", "199-100", /'199-100' is not a range of VMIDs/],
      ["MCP_ALLOWED_VMIDS", "50", /'50' is not a range of VMIDs/],
      ["MCP_ALLOWED_VMIDS", ",", /missing VMIDs/],
      ["MCP_ALLOWED_NODES", "pve 1", /Cannot parse MCP_ALLOWED_NODES: 'pve 1'/],
      [
        "MCP_PROTECTED_TAG",
        "no way",
        /MCP_PROTECTED_TAG must be a Proxmox tag/,
      ],
    ] as const
  ) {
    assert.throws(() => loadConfig([], { ...env, [name]: value }), re);
  }
});

Deno.test("listings leave out guests, nodes, volumes and backups outside the scope", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: {
      ...simEnv(sim),
      MCP_ALLOWED_VMIDS: "100,102-199,200",
      MCP_ALLOWED_NODES: "pve1,pve2",
    },
  });
  assert.deepEqual(
    await listedVmids(s.client),
    [100, 102, 103, 104, 105, 106, 200],
    "101 and 201, 202, 300, 9000 are outside",
  );
  const nodes = await callOk(s.client, "proxmox_list_nodes");
  assert.deepEqual(
    JSON.stringify(nodes).match(/pve\d/g)?.filter((n, i, a) =>
      a.indexOf(n) === i
    ),
    ["pve1", "pve2"],
  );
  const disks = await callOk(s.client, "proxmox_list_content", {
    storage: "local-lvm",
    content: "images",
  });
  const vmids = disks.items.map((i: { vmid: number }) => i.vmid);
  assert.ok(vmids.includes(100) && vmids.includes(106), JSON.stringify(vmids));
  assert.ok(
    !vmids.includes(101) && !vmids.includes(9000),
    "disks of guests outside are absent",
  );
  const backups = await callOk(s.client, "proxmox_list_backups");
  assert.ok(
    !JSON.stringify(backups).includes("vzdump-qemu-101-"),
    "the backup of 101 is absent",
  );
  const stats = await call(s.client, "proxmox_get_vm_stats", { vmid: 101 });
  assert.equal(stats.isError, true);
  assert.match(
    stats.text,
    /VMID 101 is outside this server's scope \(MCP_ALLOWED_VMIDS=100,102-200\)/,
  );
  const storage = await call(s.client, "proxmox_list_storage", {
    node: "pve3",
  });
  assert.match(
    storage.text,
    /Node 'pve3' is outside this server's scope \(MCP_ALLOWED_NODES=pve1,pve2\)/,
  );
  const restore = await call(s.client, "proxmox_restore_backup", {
    volid: SEEDED_BACKUP,
  });
  assert.equal(restore.isError, true);
  assert.match(
    restore.text,
    /backup of guest 101, outside this server's scope/,
  );
  assert.deepEqual(writes(sim), []);
});

Deno.test("get_task refuses the task of a guest outside the scope without asking Proxmox, and follows one inside", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_VMIDS: "100-105" },
  });
  sim.requests.length = 0;
  const out = await call(s.client, "proxmox_get_task", {
    upid: "UPID:pve2:0000A1B2:0012C3D4:66A1B2C3:qmstart:106:root@pam:",
  });
  assert.equal(out.isError, true);
  assert.match(out.text, /VMID 106 is outside this server's scope/);
  assert.ok(
    !sim.requests.some((r) => r.path.includes("/tasks/")),
    "no task was read",
  );
  const started = await callOk(s.client, "proxmox_start_vm", {
    vmid: 102,
    wait: false,
  });
  const task = await callOk(s.client, "proxmox_get_task", {
    upid: started.task.upid,
  });
  assert.equal(task.id, "102");
});

Deno.test("every changing tool refuses a guest outside the scope before any write and before asking the human", async () => {
  await using sim = await startSim();
  const h = acceptingHuman();
  await using s = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_VMIDS: "100-105" },
    elicit: h.elicit,
  });
  for (const t of changingTools) {
    // 106 exists (outside); a new guest's 400 does not.
    const vmid = t.name === "proxmox_create_vm_from_template"
      ? 9000
      : CHANGING[t.name].creates
      ? 400
      : 106;
    sim.requests.length = 0;
    const r = await call(s.client, t.name, CHANGING[t.name].args(vmid));
    assert.equal(r.isError, true, `${t.name}: ${r.text}`);
    assert.match(
      r.text,
      new RegExp(`VMID ${vmid} is outside this server's scope`),
      t.name,
    );
    assert.deepEqual(writes(sim), [], `${t.name} wrote nothing`);
  }
  assert.equal(h.asked.length, 0, "the human was never asked");
  assert.equal(sim.cluster.guests.get(106)!.status, "stopped");
});

Deno.test("a dry run outside the scope or on a protected guest is refused too", async () => {
  await using sim = await startSim();
  sim.cluster.guests.get(102)!.config.protection = 1;
  await using s = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_VMIDS: "100-105" },
  });
  const outside = await call(s.client, "proxmox_stop_vm", {
    vmid: 106,
    dry_run: true,
  });
  assert.match(outside.text, /VMID 106 is outside this server's scope/);
  const prot = await call(s.client, "proxmox_delete_vm", {
    vmid: 102,
    dry_run: true,
  });
  assert.match(prot.text, /is protected/);
  const inside = await callOk(s.client, "proxmox_stop_vm", {
    vmid: 105,
    dry_run: true,
  });
  assert.equal(inside.dry_run, true);
});

Deno.test("a node outside MCP_ALLOWED_NODES: guests on it are refused, and no tool migrates, creates or restores there", async () => {
  await using sim = await startSim({ offlineNodes: [] });
  await using s = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_NODES: "pve1,pve2" },
  });
  sim.requests.length = 0;
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "proxmox_stop_vm",
      { vmid: 300 },
      /Guest 300 is outside this server's scope: it is on a node not in MCP_ALLOWED_NODES=pve1,pve2/,
    ],
    [
      "proxmox_migrate_vm",
      { vmid: 100, target: "pve3" },
      /Node 'pve3' is outside/,
    ],
    [
      "proxmox_create_lxc",
      { ostemplate: CT_TEMPLATE, node: "pve3" },
      /Node 'pve3' is outside/,
    ],
    [
      "proxmox_restore_backup",
      { volid: SEEDED_BACKUP, node: "pve3" },
      /Node 'pve3' is outside/,
    ],
    [
      "proxmox_create_vm_from_template",
      { template: 9000, node: "pve3" },
      /Node 'pve3' is outside/,
    ],
  ];
  for (const [tool, args, re] of cases) {
    const r = await call(s.client, tool, args);
    assert.equal(r.isError, true, `${tool}: ${r.text}`);
    assert.match(r.text, re, tool);
  }
  const stats = await call(s.client, "proxmox_get_vm_stats", { vmid: 300 });
  assert.match(stats.text, /Guest 300 is outside this server's scope/);
  assert.deepEqual(writes(sim), []);
});

Deno.test("a new guest takes the first free VMID in MCP_ALLOWED_VMIDS; one outside, or a full range, is refused", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_VMIDS: "104-110,9000" },
  });
  // 104, 105, 106 are taken: PVE's own next id would be 107 too, so take
  // 107 now and let the clone find 108.
  const ct = await callOk(s.client, "proxmox_create_lxc", {
    ostemplate: CT_TEMPLATE,
    node: "pve1",
  });
  assert.equal(ct.vmid, 107);
  const vm = await callOk(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
  });
  assert.equal(vm.vmid, 108);
  assert.ok(sim.cluster.guests.has(108));
  sim.requests.length = 0;
  const outside = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    newid: 150,
  });
  assert.match(
    outside.text,
    /VMID 150 is outside this server's scope \(MCP_ALLOWED_VMIDS=104-110,9000\): pick a VMID in that range, or omit it/,
  );
  assert.deepEqual(writes(sim), []);

  await using sim2 = await startSim();
  await using s2 = await connect({
    env: { ...simEnv(sim2), MCP_ALLOWED_VMIDS: "120-125,9000" },
  });
  const first = await callOk(s2.client, "proxmox_create_vm_from_template", {
    template: 9000,
  });
  assert.equal(first.vmid, 120, "PVE's next id (107) is outside: 120");
  for (let id = 121; id <= 125; id++) {
    sim2.cluster.guests.set(id, { ...sim2.cluster.guests.get(120)!, vmid: id });
  }
  const full = await call(s2.client, "proxmox_create_lxc", {
    ostemplate: CT_TEMPLATE,
    node: "pve1",
  });
  assert.match(
    full.text,
    /No free VMID in this server's scope \(MCP_ALLOWED_VMIDS=120-125,9000\)/,
  );
});

for (
  const [how, mark, env, re] of [
    [
      "PVE's protection flag",
      (sim: Sim) => sim.cluster.guests.get(102)!.config.protection = 1,
      {},
      /VM 102 \(win-build\) is protected \(Proxmox's protection flag is set\): this server only reads it\. To allow changes, turn protection off in Proxmox \(Options → Protection, or 'qm set 102 --protection 0' on pve2\)/,
    ],
    [
      "the mcp-protected tag",
      (sim: Sim) =>
        sim.cluster.guests.get(102)!.config.tags = "ci;mcp-protected",
      {},
      /VM 102 \(win-build\) carries the tag 'mcp-protected' \(MCP_PROTECTED_TAG\): this server only reads it\. To allow changes, remove that tag/,
    ],
    [
      "a tag set by MCP_PROTECTED_TAG",
      (sim: Sim) => sim.cluster.guests.get(102)!.config.tags = "Keep",
      { MCP_PROTECTED_TAG: "keep" },
      /carries the tag 'keep' \(MCP_PROTECTED_TAG\)/,
    ],
  ] as const
) {
  Deno.test(`${how} makes a guest read-only: every changing tool refuses it before any write or question, reads work`, async () => {
    await using sim = await startSim();
    mark(sim);
    const h = acceptingHuman();
    await using s = await connect({
      env: { ...simEnv(sim), ...env },
      elicit: h.elicit,
    });
    for (const t of changingTools) {
      if (CHANGING[t.name].creates) continue;
      sim.requests.length = 0;
      const r = await call(s.client, t.name, CHANGING[t.name].args(102));
      assert.equal(r.isError, true, `${t.name}: ${r.text}`);
      assert.match(r.text, re, t.name);
      assert.deepEqual(writes(sim), [], `${t.name} wrote nothing`);
    }
    assert.equal(h.asked.length, 0, "the human was never asked");
    for (
      const [tool, args] of [
        ["proxmox_get_vm_stats", { vmid: 102 }],
        ["proxmox_list_snapshots", { vmid: 102 }],
        ["proxmox_list_firewall_rules", { vmid: 102 }],
        ["proxmox_list_backups", { vmid: 102 }],
      ] as const
    ) await callOk(s.client, tool, args);
    // Another guest is not affected.
    await callOk(s.client, "proxmox_create_snapshot", {
      vmid: 106,
      name: "ok",
    });
  });
}

Deno.test("the mcp-protected tag no longer protects when MCP_PROTECTED_TAG names another", async () => {
  await using sim = await startSim();
  sim.cluster.guests.get(102)!.config.tags = "mcp-protected";
  await using s = await connect({
    env: { ...simEnv(sim), MCP_PROTECTED_TAG: "keep" },
  });
  await callOk(s.client, "proxmox_create_snapshot", { vmid: 102, name: "s1" });
});

Deno.test("a protected template can still be cloned (it is only read)", async () => {
  await using sim = await startSim();
  sim.cluster.guests.get(9000)!.config.protection = 1;
  sim.cluster.guests.get(9000)!.config.tags = "mcp-protected";
  await using s = await connect({ env: simEnv(sim) });
  const vm = await callOk(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
  });
  assert.ok(sim.cluster.guests.has(vm.vmid));
});

Deno.test("read-only, scope and confirmation compose: read-only offers no changing tool, scope still filters, confirmation asks only inside the scope", async () => {
  await using sim = await startSim();
  {
    await using s = await connect({
      env: {
        ...simEnv(sim),
        MCP_READ_ONLY: "true",
        MCP_ALLOWED_VMIDS: "100-105",
      },
    });
    const { tools } = await s.client.listTools();
    assert.ok(tools.length > 0);
    assert.ok(tools.every((t) => t.annotations?.readOnlyHint === true));
    assert.deepEqual(await listedVmids(s.client), [
      100,
      101,
      102,
      103,
      104,
      105,
    ]);
  }
  const h = acceptingHuman();
  await using s = await connect({
    env: {
      ...simEnv(sim),
      MCP_ALLOWED_VMIDS: "100-105",
      MCP_CONFIRM: "always",
    },
    elicit: h.elicit,
  });
  const outside = await call(s.client, "proxmox_delete_vm", { vmid: 106 });
  assert.match(outside.text, /outside this server's scope/);
  assert.equal(h.asked.length, 0, "outside the scope: refused, not asked");
  const inside = await call(s.client, "proxmox_stop_vm", { vmid: 105 });
  assert.ok(!inside.isError, inside.text);
  assert.equal(h.asked.length, 1, "inside the scope: the human is asked");
  assert.match(h.asked[0].message, /VM 105/);
});

Deno.test("one INFO line at start states scope, protection, read-only, toolsets and confirmation", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: {
      ...simEnv(sim),
      LOG_LEVEL: "INFO",
      MCP_ALLOWED_VMIDS: "100-199,250",
      MCP_ALLOWED_NODES: "pve1",
      MCP_TOOLSETS: "vms,snapshots",
      MCP_CONFIRM: "never",
    },
  });
  await callOk(s.client, "proxmox_list_vms");
  assert.match(
    scopeLine(s.stderr()),
    / INFO main: Scope: VMIDs 100-199,250; nodes pve1\. Protected \(read-only to this server\): guests with Proxmox's protection flag or the tag 'mcp-protected'\. Read-only: no\. Toolsets: vms,snapshots\. Confirmation: never$/,
  );
});

Deno.test("at INFO, scope filters and refuses with 0 writes, a protected guest is still read, and the INFO line appears once", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: { ...simEnv(sim), ...SCOPE_ENV } });
  await scopeScenario(s, sim);
});

Deno.test("over HTTP: one INFO line for the server, however many clients (both eras) and calls", async () => {
  await using sim = await startSim();
  const token = "scope-test-token-0123456789";
  const env = {
    ...simEnv(sim),
    MCP_AUTH_TOKEN: token,
    LOG_LEVEL: "INFO",
    MCP_ALLOWED_VMIDS: "100-105",
  };
  // As main.ts does: one configuration, one boot, one HTTP app for them all.
  const parsed = loadConfig(["--transport", "http"], env);
  if (parsed.kind !== "run") throw new TypeError("not a server run");
  let err = "";
  setLogWriter((line) => {
    err += line + "\n";
  });
  try {
    const app = createHttpApp(await boot(parsed.config));
    try {
      await listInScopeEachEra(() =>
        appTransport(parsed.config.port, (url, init) => {
          const headers = new Headers(init.headers);
          headers.set("authorization", `Bearer ${token}`);
          return app.fetch(new Request(url, { ...init, headers }));
        })
      );
    } finally {
      await app.shutdown();
    }
    assert.match(scopeLine(err), /INFO main: Scope: VMIDs 100-105\./);
    assertNoSecrets(err, env);
  } finally {
    setLogWriter();
  }
});

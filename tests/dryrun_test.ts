/**
 * Dry run: every tool that changes anything takes dry_run (hidden from its
 * schema, explained once in the instructions), checks and resolves as usual,
 * sends no write and returns the requests a real call then sends.
 */
import assert from "node:assert/strict";
import { ALL_TOOLS } from "../src/tools/mod.ts";
import { INSTRUCTIONS } from "../src/server.ts";
import {
  call,
  callOk,
  connect,
  type ElicitParams,
  simEnv,
  startSim,
  writes,
} from "./helpers.ts";

type Req = { method: string; path: string; rawPath: string; params: unknown };
/** Valid arguments for every changing tool against the seeded simulator. */
const VALID: Record<string, Record<string, unknown>> = {
  proxmox_start_vm: { vmid: 102 },
  proxmox_stop_vm: { vmid: 100 },
  proxmox_create_vm_from_template: {
    template: 9000,
    name: "app-02",
    ciuser: "ops",
    password: "Dry-run-pass-1",
    disk_size: "80G",
    start: true,
  },
  proxmox_create_lxc: {
    ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    node: "pve1",
    hostname: "ct-new",
    password: "Str0ng-pass-word",
    start: true,
  },
  proxmox_update_vm: { vmid: 102, cores: 3, description: "d" },
  proxmox_migrate_vm: { vmid: 102, target: "pve1" },
  proxmox_delete_vm: { vmid: 106 },
  proxmox_create_snapshot: { vmid: 100, name: "snap2", description: "d" },
  proxmox_rollback_snapshot: { vmid: 100, name: "snap1" },
  proxmox_delete_snapshot: { vmid: 100, name: "snap1" },
  proxmox_create_backup: { vmid: 100, storage: "local", notes: "n" },
  proxmox_restore_backup: {
    volid: "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst",
    storage: "local-lvm",
    node: "pve1",
  },
  proxmox_execute_command: { vmid: 100, command: "uname -a" },
  proxmox_write_file_vm: { vmid: 100, path: "/tmp/x", content: "secret" },
  proxmox_install_software: { vmid: 100, software: "docker" },
  proxmox_add_firewall_rule: {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
  },
};

const CHANGING = ALL_TOOLS.filter((t) => !t.annotations.readOnlyHint);

Deno.test("every changing tool has dry-run arguments in this table", () => {
  assert.deepEqual(
    CHANGING.map((t) => t.name).sort(),
    Object.keys(VALID).sort(),
  );
});

Deno.test("the instructions explain dry_run once; no tool advertises it", async () => {
  assert.match(INSTRUCTIONS, /dry_run/);
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const { tools } = await s.client.listTools();
  for (const t of tools) {
    assert.ok(
      !JSON.stringify(t.inputSchema).includes("dry_run"),
      `${t.name} advertises dry_run`,
    );
  }
});

for (const tool of CHANGING) {
  Deno.test(`${tool.name} dry_run: zero writes, the planned requests returned`, async () => {
    await using sim = await startSim();
    await using s = await connect({ env: simEnv(sim) });
    const r = await call(s.client, tool.name, {
      ...VALID[tool.name],
      dry_run: true,
    });
    assert.ok(!r.isError, r.text);
    assert.deepEqual(writes(sim), [], "nothing but the login was written");
    assert.equal(r.data.dry_run, true);
    assert.ok(r.data.requests.length >= 1, JSON.stringify(r.data));
    for (const q of r.data.requests) {
      assert.match(q.method, /^(POST|PUT|DELETE)$/);
      assert.match(q.path, /^\/(nodes|cluster)\//);
    }
    assert.match(r.data.note, /nothing was sent/);
    assert.deepEqual(sim.violations, []);
  });
}

/** The plan, then the real call: the same writes, in the same order. */
async function planThenRun(
  name: string,
  args: Record<string, unknown>,
): Promise<
  {
    plan: { method: string; path: string; params?: Record<string, unknown> }[];
    sent: Req[];
  }
> {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const dry = await callOk(s.client, name, { ...args, dry_run: true });
  assert.deepEqual(writes(sim), []);
  await callOk(s.client, name, args);
  const sent = writes(sim);
  assert.deepEqual(
    sent.map((r) => `${r.method} ${r.rawPath.replace(/^\/api2\/json/, "")}`),
    dry.requests.map((q: { method: string; path: string }) =>
      `${q.method} ${q.path}`
    ),
  );
  return { plan: dry.requests, sent };
}

/** Every planned parameter that is not masked was sent as planned. */
function assertSameParams(
  plan: { params?: Record<string, unknown> }[],
  sent: Req[],
): void {
  plan.forEach((q, i) => {
    const got = sent[i].params as Record<string, unknown>;
    for (const [k, v] of Object.entries(q.params ?? {})) {
      if (v === "[redacted]") {
        assert.ok(got[k] !== undefined, `${k} was sent`);
        continue;
      }
      const norm = (x: unknown) =>
        typeof x === "boolean" ? String(Number(x)) : String(x);
      assert.equal(norm(got[k]), norm(v), `${sent[i].path}: ${k}`);
    }
  });
}

Deno.test("start_vm: the dry-run plan is the request the real call sends", async () => {
  const { plan, sent } = await planThenRun("proxmox_start_vm", { vmid: 102 });
  assert.equal(plan.length, 1);
  assertSameParams(plan, sent);
});

Deno.test("create_vm_from_template: the whole chain is planned (clone with the auto-VMID, config, resize, start) and matches the real call", async () => {
  const { plan, sent } = await planThenRun(
    "proxmox_create_vm_from_template",
    VALID.proxmox_create_vm_from_template,
  );
  assert.deepEqual(
    plan.map((q) => q.path.replace(/\/nodes\/[^/]+\/qemu\/\d+/, "")),
    ["/clone", "/config", "/resize", "/status/start"],
  );
  const newid = (plan[0].params as { newid: number }).newid;
  assert.ok(plan[1].path.endsWith(`/qemu/${newid}/config`));
  assert.equal(
    (plan[1].params as Record<string, unknown>).cipassword,
    "[redacted]",
  );
  assertSameParams(plan, sent);
});

Deno.test("create_lxc: the plan (create with the resolved storage, start) matches the real call; the password is masked", async () => {
  const { plan, sent } = await planThenRun(
    "proxmox_create_lxc",
    VALID.proxmox_create_lxc,
  );
  assert.equal(plan.length, 2);
  assert.equal(plan[0].params?.password, "[redacted]");
  assert.match(String(plan[0].params?.rootfs), /^[\w-]+:8$/);
  assertSameParams(plan, sent);
});

Deno.test("update_vm and add_firewall_rule: the plan matches the real call", async () => {
  for (const name of ["proxmox_update_vm", "proxmox_add_firewall_rule"]) {
    const { plan, sent } = await planThenRun(name, VALID[name]);
    assertSameParams(plan, sent);
  }
});

Deno.test("execute_command dry_run: the exec is planned with the command, nothing runs", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const d = await callOk(s.client, "proxmox_execute_command", {
    vmid: 101,
    command: "echo hi; MYSQL_PWD=hunter22 mysql",
    dry_run: true,
  });
  assert.deepEqual(writes(sim), []);
  assert.equal(d.requests.length, 1);
  assert.match(d.requests[0].path, /\/agent\/exec$/);
  assert.match(String(d.requests[0].params.command), /echo hi/);
  assert.doesNotMatch(JSON.stringify(d), /hunter22/);
});

Deno.test("a dry run still checks: a bad argument or an absent guest is an error, and nothing is written", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const bad = await call(s.client, "proxmox_create_vm_from_template", {
    template: 9000,
    disk_size: "lots",
    dry_run: true,
  });
  assert.ok(bad.isError);
  assert.match(bad.text, /disk_size/);
  const absent = await call(s.client, "proxmox_start_vm", {
    vmid: 4242,
    dry_run: true,
  });
  assert.ok(absent.isError);
  assert.deepEqual(writes(sim), []);
});

Deno.test("a dry run of a destructive tool asks no question (nothing would happen)", async () => {
  await using sim = await startSim();
  const asked: ElicitParams[] = [];
  await using s = await connect({
    env: simEnv(sim),
    elicit: (p) => {
      asked.push(p);
      return { action: "accept", content: { confirm: true } };
    },
  });
  const d = await callOk(s.client, "proxmox_delete_vm", {
    vmid: 106,
    dry_run: true,
  });
  assert.equal(d.dry_run, true);
  assert.equal(asked.length, 0);
  assert.deepEqual(writes(sim), []);
  assert.ok(sim.cluster.guests.has(106));
});

Deno.test("read-only tools do not take dry_run", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const r = await call(s.client, "proxmox_list_vms", { dry_run: true });
  assert.ok(r.isError);
});

Deno.test("a dry run of delete_vm plans exactly the DELETE with purge and sends nothing", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const d = await callOk(s.client, "proxmox_delete_vm", {
    vmid: 106,
    dry_run: true,
  });
  assert.deepEqual(d.requests, [{
    method: "DELETE",
    path: "/nodes/pve2/qemu/106",
    params: { purge: true, "destroy-unreferenced-disks": true },
  }]);
  assert.deepEqual(writes(sim), []);
});

for (const era of ["2025-11-25", "2026-07-28"] as const) {
  Deno.test(`${era}: the SDK client accepts both a plan and a real result under the tool's output schema`, async () => {
    await using sim = await startSim();
    await using s = await connect({ env: simEnv(sim), era });
    const { tools } = await s.client.listTools();
    const start = tools.find((t) => t.name === "proxmox_start_vm")!;
    assert.equal(start.outputSchema?.type, "object");
    const plan = await callOk(s.client, "proxmox_start_vm", {
      vmid: 102,
      dry_run: true,
    });
    assert.equal(plan.dry_run, true);
    const real = await callOk(s.client, "proxmox_start_vm", { vmid: 102 });
    assert.equal(real.vmid, 102);
    assert.deepEqual(writes(sim).length, 1);
  });
}

Deno.test("a dry run whose planning fails after a planned write says so, lists the requests planned so far, and sends nothing", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  // update_vm reads the pending changes after its (planned) PUT.
  sim.faults.inject({
    method: "GET",
    path: "/nodes/pve1/qemu/100/pending",
    fault: { kind: "status", status: 500, message: "boom" },
  });
  const r = await call(s.client, "proxmox_update_vm", {
    vmid: 100,
    cores: 4,
    dry_run: true,
  });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /^Dry run: planning stopped after 1 request\(s\): .*boom/,
  );
  const planned = JSON.parse(r.text.split("\n").at(-1)!);
  assert.deepEqual(planned.map((q: { method: string }) => q.method), ["PUT"]);
  assert.deepEqual(writes(sim), []);
});

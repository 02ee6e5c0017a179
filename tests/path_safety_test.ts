/**
 * Path safety, generated over the registry: every string argument of every
 * tool (advertised or not) gets strings that could change a Proxmox path
 * (`..`, `.`, `a/..`, `%2e%2e`, `/`, `?x=`, `#`, NUL, newline). Whatever the
 * tool answers, the simulator's request log must show no dotted or collapsed
 * path and no write the tool does not make with valid arguments, and no guest
 * may disappear.
 *
 * Once, `proxmox_delete_snapshot` with the name `..` sent
 * `DELETE /nodes/<node>/qemu/<vmid>/` and destroyed the VM.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { ALL_TOOLS } from "../src/tools/mod.ts";
import { call, connect, simEnv, startSim } from "./helpers.ts";
import { HOSTILE_SEGMENTS } from "./path_strings.ts";

/** Valid arguments for each tool against the seeded simulator. */
const VALID: Record<string, Record<string, unknown>> = {
  proxmox_list_nodes: {},
  proxmox_whoami: {},
  proxmox_list_vms: { node: "pve1", name_contains: "web" },
  proxmox_get_vm_stats: { vmid: 100, node: "pve1" },
  proxmox_start_vm: { vmid: 102, node: "pve2" },
  proxmox_stop_vm: { vmid: 100, node: "pve1" },
  proxmox_create_vm_from_template: {
    template: 9000,
    name: "app-02",
    node: "pve1",
    storage: "local-lvm",
    ciuser: "ops",
    ip: "dhcp",
  },
  proxmox_create_lxc: {
    ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    node: "pve1",
    hostname: "ct-new",
    storage: "local-lvm",
    password: "Str0ng-pass-word",
  },
  proxmox_update_vm: { vmid: 102, name: "win-build2", description: "d" },
  proxmox_migrate_vm: { vmid: 102, target: "pve1" },
  proxmox_delete_vm: { vmid: 106, node: "pve2" },
  proxmox_get_task: { upid: "" }, // filled from a real task below
  proxmox_create_snapshot: { vmid: 100, name: "snap2", description: "d" },
  proxmox_list_snapshots: { vmid: 100, node: "pve1" },
  proxmox_rollback_snapshot: { vmid: 100, name: "snap1" },
  proxmox_delete_snapshot: { vmid: 100, name: "snap1", node: "pve1" },
  proxmox_create_backup: { vmid: 100, storage: "local", notes: "n" },
  proxmox_list_backups: { storage: "local", node: "pve1" },
  proxmox_restore_backup: {
    volid: "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst",
    storage: "local-lvm",
    node: "pve1",
  },
  proxmox_list_storage: { node: "pve1" },
  proxmox_list_content: { storage: "local", node: "pve1" },
  proxmox_execute_command: { vmid: 100, command: ["uname", "-a"], stdin: "" },
  proxmox_read_file_vm: { vmid: 100, path: "/etc/hostname" },
  proxmox_write_file_vm: { vmid: 100, path: "/tmp/x", content: "x" },
  proxmox_install_software: { vmid: 100, software: "docker" },
  proxmox_list_firewall_rules: { vmid: 100 },
  proxmox_add_firewall_rule: {
    vmid: 100,
    type: "in",
    action: "ACCEPT",
    proto: "tcp",
    dport: "22",
    comment: "c",
  },
};

/** The names of a tool's string arguments (through optional and default). */
function stringArgs(shape: Record<string, z.ZodType>): string[] {
  const out: string[] = [];
  for (const [name, schema] of Object.entries(shape)) {
    let s = schema as z.ZodType;
    for (let i = 0; i < 5; i++) {
      const def = (s as unknown as { _zod: { def: Record<string, unknown> } })
        ._zod.def;
      if (def.type === "optional" || def.type === "default") {
        s = def.innerType as z.ZodType;
      } else break;
    }
    const type = (s as unknown as { _zod: { def: { type: string } } })._zod.def
      .type;
    if (type === "string") out.push(name);
  }
  return out;
}

const endpoint = (r: { method: string; path: string }) =>
  `${r.method} ${r.path}`;

Deno.test("every tool table covers the registry", () => {
  assert.deepEqual(
    Object.keys(VALID).sort(),
    ALL_TOOLS.map((t) => t.name).sort(),
  );
});

/** Reads any tool may make besides its own (lookups, task follow-up). */
const COMMON = [
  "GET /cluster/resources",
  "GET /nodes",
  "GET /version",
  "GET /nodes/{node}/tasks",
  "GET /nodes/{node}/tasks/{upid}/status",
  "GET /nodes/{node}/tasks/{upid}/log",
  "POST /access/ticket",
];

/**
 * The endpoints a call made, as `METHOD /template`; every path arrived as
 * one clean path (no empty, `.` or `..` part left by a collapsed segment).
 */
async function endpointsOf(
  run: () => Promise<unknown>,
  sim: { requests: { method: string; path: string; rawPath: string }[] },
): Promise<Set<string>> {
  sim.requests.length = 0;
  await run();
  for (const r of sim.requests) {
    assert.doesNotMatch(
      r.rawPath,
      /\/$|\/\/|\/\.\.?(\/|$)|%2e%2e/i,
      `a collapsed or dotted path reached Proxmox: ${r.method} ${r.rawPath}`,
    );
  }
  return new Set(sim.requests.map(endpoint));
}

/** What a tool's valid call needs to exist first. */
async function prepare(
  client: Parameters<typeof call>[0],
  valid: Record<string, unknown>,
): Promise<void> {
  if (valid.upid !== undefined || valid.name === "snap1") {
    const r = await call(client, "proxmox_create_snapshot", {
      vmid: valid.upid !== undefined ? 200 : 100,
      name: valid.upid !== undefined ? "t1" : "snap1",
    });
    assert.ok(!r.isError, r.text);
    if (valid.upid !== undefined) valid.upid = r.data.upid;
  }
}

/** What one call did on a cluster of its own. */
interface Outcome {
  text: string;
  isError?: boolean;
  used: Set<string>;
  /** Guests of the seeded cluster that no longer exist after the call. */
  gone: number[];
}

/**
 * Runs each list of calls (arguments that replace some of the tool's valid
 * ones) in turn on a fresh cluster of its own, prepared for the valid call (a simulator
 * and an in-process server; tasks take 1 ms a step: nothing here depends on
 * their length), the lists side by side. Every cluster is done with its calls
 * before any closes (the servers share this process's log writer); a call's
 * failure is reported before the simulators' schema checks (which run at
 * their close).
 */
async function onFreshClusters(
  tool: string,
  runs: Record<string, unknown>[][],
): Promise<Outcome[][]> {
  const valid = VALID[tool];
  const clusters = await Promise.all(runs.map(async () => {
    const sim = await startSim({ taskMs: 1 });
    return { sim, s: await connect({ env: simEnv(sim) }) };
  }));
  const outcomes = await Promise.allSettled(
    clusters.map(async ({ sim, s }, i): Promise<Outcome[]> => {
      const out: Outcome[] = [];
      const base = { ...valid };
      await prepare(s.client, base);
      for (const args of runs[i]) {
        const a = { ...base, ...args };
        const before = [...sim.cluster.guests.keys()];
        let r = { text: "" } as { text: string; isError?: boolean };
        const used = await endpointsOf(async () => {
          r = await call(s.client, tool, a);
        }, sim);
        const gone = before.filter((vmid) => !sim.cluster.guests.has(vmid));
        out.push({ text: r.text, isError: r.isError, used, gone });
      }
      return out;
    }),
  );
  let failure: unknown = outcomes.find((o) => o.status === "rejected")
    ?.reason;
  await Promise.all(
    clusters.map(({ s }) => s.close().catch((e) => failure ??= e)),
  );
  const closed = Promise.all(clusters.map(({ sim }) => sim.close()));
  if (failure) {
    await closed.catch(() => {});
    throw failure;
  }
  await closed;
  return outcomes.map((o) => (o as PromiseFulfilledResult<Outcome[]>).value);
}

for (const tool of ALL_TOOLS) {
  // Passwords never reach a path, and one the simulator accepts becomes a
  // secret that the log check would then find in other arguments' errors.
  const names = stringArgs(tool.input).filter((n) => n !== "password");
  if (names.length === 0) continue;
  Deno.test(`${tool.name}: hostile ${names.join(", ")} reach no other endpoint and destroy nothing`, async () => {
    // The valid call on a cluster of its own; the hostile strings of each
    // argument, one after another, on a cluster of the argument's own.
    const [[ok], ...hostile] = await onFreshClusters(tool.name, [
      [{}],
      ...names.map((name) => HOSTILE_SEGMENTS.map((bad) => ({ [name]: bad }))),
    ]);
    assert.ok(!ok.isError, `${tool.name} with valid arguments: ${ok.text}`);
    // The endpoints the tool uses with valid arguments.
    const allowed = new Set([...COMMON, ...ok.used]);
    const cases = names.flatMap((name, n) =>
      HOSTILE_SEGMENTS.map((bad, b) => ({ name, bad, ...hostile[n][b] }))
    );
    for (const { name, bad, text, used, gone } of cases) {
      const what = `${tool.name} with ${name}=${JSON.stringify(bad)}`;
      assert.ok(text.length > 0, `every call is answered (${what})`);
      for (const e of used) {
        // Reads may differ on error paths (a failed step reads the guest's
        // state to report it); every write must be one the tool makes with
        // valid arguments.
        if (e.startsWith("GET ")) continue;
        assert.ok(allowed.has(e), `${what} called ${e}`);
      }
      assert.deepEqual(gone, [], `${what}: every guest still exists`);
    }
  });
}

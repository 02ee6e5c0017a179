/**
 * Path safety for the vms, nodes and tasks toolsets (issue 9 item 1): every
 * string argument that reaches a Proxmox path (or a value PVE parses, such
 * as the bridge inside net0) gets hostile values; the simulator's request
 * log shows that only the reads the tool is meant to make happened, and the
 * cluster is unchanged.
 */
import assert from "node:assert/strict";
import { call, connect, simEnv, startSim } from "./helpers.ts";

const HOSTILE = ["..", ".", "a/..", "%2e%2e", "/", "?x=", "#", "\0", "\n"];
const UPID = "UPID:pve1:0000A1B2:0012C3D4:66A1B2C3:qmstart:100:root@pam:";
const OSTEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";

/** A value around a hostile part: alone, and inside a valid one. */
const around =
  (valid: string) => (h: string) => [h, `${valid}${h}`, `${h}${valid}`];

interface Case {
  tool: string;
  args: Record<string, unknown>;
  arg: string;
  values: (h: string) => string[];
  /** GET endpoints (templates) the tool may read before it refuses. */
  reads?: string[];
}

const CASES: Case[] = [
  { tool: "proxmox_list_vms", args: {}, arg: "node", values: around("pve1") },
  ...[
    "proxmox_get_vm_stats",
    "proxmox_start_vm",
    "proxmox_stop_vm",
    "proxmox_delete_vm",
  ].map((tool) => ({
    tool,
    args: { vmid: 102 },
    arg: "node",
    values: around("pve2"),
  })),
  {
    tool: "proxmox_update_vm",
    args: { vmid: 102, cores: 2 },
    arg: "node",
    values: around("pve2"),
  },
  {
    tool: "proxmox_migrate_vm",
    args: { vmid: 102 },
    arg: "target",
    values: around("pve1"),
  },
  {
    tool: "proxmox_migrate_vm",
    args: { vmid: 102, target: "pve1" },
    arg: "node",
    values: around("pve2"),
  },
  {
    tool: "proxmox_create_vm_from_template",
    args: { template: 9000 },
    arg: "node",
    values: around("pve1"),
  },
  {
    tool: "proxmox_create_vm_from_template",
    args: { template: 9000 },
    arg: "storage",
    values: around("local-lvm"),
  },
  {
    tool: "proxmox_create_lxc",
    args: { ostemplate: OSTEMPLATE },
    arg: "node",
    values: around("pve1"),
  },
  {
    tool: "proxmox_create_lxc",
    args: { node: "pve1" },
    arg: "ostemplate",
    values: (h) => [h, `local:vztmpl/${h}`, `local:${h}`, `${OSTEMPLATE}${h}`],
  },
  {
    tool: "proxmox_create_lxc",
    args: { node: "pve1", ostemplate: OSTEMPLATE },
    arg: "storage",
    values: around("local-lvm"),
  },
  {
    tool: "proxmox_create_lxc",
    args: { node: "pve1", ostemplate: OSTEMPLATE },
    arg: "bridge",
    // Not a path: a value inside net0, where '.' is fine (PVE's
    // pve-bridge-id), but ',' '=' and the rest would add keys.
    values: (h) =>
      /^\.+$/.test(h) ? [`vmbr0,firewall=1`] : [h, `vmbr0${h}`, `vmbr0,${h}`],
    reads: ["/cluster/resources", "/cluster/nextid"],
  },
  {
    tool: "proxmox_get_task",
    args: {},
    arg: "upid",
    values: (h) => [h, UPID.replace("pve1", h), UPID + h, h + UPID],
  },
];

Deno.test("hostile strings at every path-bound argument of the vms, nodes and tasks tools: refused, only allowed reads, nothing changed", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const state = () =>
    JSON.stringify(
      [...sim.cluster.guests.values()].map((g) => [
        g.vmid,
        g.node,
        g.status,
        g.lock,
        g.config,
        g.pending,
      ]),
    );
  const before = state();
  let calls = 0;
  for (const c of CASES) {
    for (const h of HOSTILE) {
      for (const value of c.values(h)) {
        const from = sim.requests.length;
        const r = await call(s.client, c.tool, { ...c.args, [c.arg]: value });
        calls++;
        const what = `${c.tool} ${c.arg}=${JSON.stringify(value)}`;
        assert.equal(r.isError, true, `${what} refused: ${r.text}`);
        for (const q of sim.requests.slice(from)) {
          const login = q.method === "POST" && q.path === "/access/ticket";
          assert.ok(
            login || (q.method === "GET" && (c.reads ?? []).includes(q.path)),
            `${what} sent ${q.method} ${q.rawPath}`,
          );
        }
      }
    }
  }
  assert.ok(calls > 300, `${calls} calls`);
  assert.equal(state(), before, "no guest changed");
  assert.ok(
    !sim.requests.some((q) => /\.\.|%2e|\/\/|[?#\0\n]/i.test(q.rawPath)),
    "no request path holds a traversal or a query smuggled in",
  );
});

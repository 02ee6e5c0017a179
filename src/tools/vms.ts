/** Guests (QEMU VMs and LXC containers): inventory and statistics. */
import { z } from "zod";
import { defineTool, GuestNode, NodeName, Vmid } from "./define.ts";

const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
const round = (n: number, d = 1): number => {
  const f = 10 ** d;
  return Math.round(n * f) / f;
};
const num = (v: unknown): number =>
  typeof v === "number" ? v : Number(v ?? 0) || 0;

export const LIST_COLUMNS = [
  "vmid",
  "name",
  "node",
  "type",
  "status",
  "template",
  "cpu_pct",
  "mem_mib",
  "maxmem_mib",
  "maxdisk_gib",
] as const;

export const listVms = defineTool({
  name: "proxmox_list_vms",
  toolset: "vms",
  title: "List VMs and containers",
  description: "All VMs and containers, one row each.",
  input: {
    node: NodeName.optional(),
    // /cluster/resources knows running, stopped, unknown (a paused VM is running).
    status: z.enum(["running", "stopped"]).optional(),
    type: z.enum(["qemu", "lxc"]).optional(),
    name_contains: z.string().max(64).optional(),
  },
  output: z.object({
    count: z.number(),
    columns: z.array(z.string()),
    rows: z.array(z.array(z.union([z.string(), z.number()]))),
  }),
  annotations: {
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ node, status, type, name_contains }, { pve }) {
    const all = await pve.guests();
    const needle = name_contains?.toLowerCase();
    const rows: (string | number)[][] = [];
    for (const r of all) {
      if (node && r.node !== node) continue;
      if (status && r.status !== status) continue;
      if (type && r.type !== type) continue;
      const nm = String(r.name ?? "");
      if (needle && !nm.toLowerCase().includes(needle)) continue;
      rows.push([
        num(r.vmid),
        nm,
        String(r.node),
        String(r.type),
        String(r.status ?? "unknown"),
        num(r.template),
        round(num(r.cpu) * 100),
        Math.round(num(r.mem) / MIB),
        Math.round(num(r.maxmem) / MIB),
        round(num(r.maxdisk) / GIB),
      ]);
    }
    rows.sort((a, b) => (a[0] as number) - (b[0] as number));
    return { count: rows.length, columns: [...LIST_COLUMNS], rows };
  },
});

interface RrdPoint {
  cpu?: number;
  mem?: number;
  netin?: number;
  netout?: number;
  diskread?: number;
  diskwrite?: number;
}

function average(points: RrdPoint[], key: keyof RrdPoint): number | undefined {
  const vals = points.map((p) => p[key]).filter((v): v is number =>
    typeof v === "number"
  );
  return vals.length
    ? vals.reduce((a, b) => a + b, 0) / vals.length
    : undefined;
}

export const getVmStats = defineTool({
  name: "proxmox_get_vm_stats",
  toolset: "vms",
  title: "Guest statistics",
  description: "A guest's CPU, memory, disk, net, uptime; 1 h averages.",
  input: { vmid: Vmid, node: GuestNode },
  output: z.object({
    vmid: z.number(),
    name: z.string().optional(),
    node: z.string(),
    type: z.enum(["qemu", "lxc"]),
    status: z.string(),
    qmpstatus: z.string().optional(),
    lock: z.string().optional(),
    uptime_s: z.number(),
    cpu_pct: z.number(),
    cores: z.number(),
    mem_mib: z.number(),
    maxmem_mib: z.number(),
    disk_gib: z.number(),
    maxdisk_gib: z.number(),
    netin_mib: z.number(),
    netout_mib: z.number(),
    diskread_mib: z.number(),
    diskwrite_mib: z.number(),
    hour_avg: z.object({
      cpu_pct: z.number().optional(),
      mem_mib: z.number().optional(),
      netin_kibps: z.number().optional(),
      netout_kibps: z.number().optional(),
      diskread_kibps: z.number().optional(),
      diskwrite_kibps: z.number().optional(),
    }).optional(),
  }),
  annotations: {
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ vmid, node }, { pve }) {
    const g = await pve.locate(vmid, node);
    const [cur, rrd] = await Promise.all([
      pve.get<Record<string, unknown>>(`${g.path}/status/current`),
      // RRD data is missing for a guest younger than a minute: not an error.
      pve.get<RrdPoint[]>(`${g.path}/rrddata`, {
        timeframe: "hour",
        cf: "AVERAGE",
      }).catch(() => [] as RrdPoint[]),
    ]);
    const avg = (k: keyof RrdPoint, scale: number, d = 1) => {
      const a = average(rrd, k);
      return a === undefined ? undefined : round(a / scale, d);
    };
    const cpuAvg = average(rrd, "cpu");
    return {
      vmid,
      name: cur.name as string | undefined,
      node: g.node,
      type: g.type,
      status: String(cur.status),
      qmpstatus: cur.qmpstatus as string | undefined,
      lock: cur.lock as string | undefined,
      uptime_s: num(cur.uptime),
      cpu_pct: round(num(cur.cpu) * 100),
      cores: num(cur.cpus),
      mem_mib: Math.round(num(cur.mem) / MIB),
      maxmem_mib: Math.round(num(cur.maxmem) / MIB),
      disk_gib: round(num(cur.disk) / GIB),
      maxdisk_gib: round(num(cur.maxdisk) / GIB),
      netin_mib: round(num(cur.netin) / MIB),
      netout_mib: round(num(cur.netout) / MIB),
      diskread_mib: round(num(cur.diskread) / MIB),
      diskwrite_mib: round(num(cur.diskwrite) / MIB),
      hour_avg: rrd.length
        ? {
          cpu_pct: cpuAvg === undefined ? undefined : round(cpuAvg * 100),
          mem_mib: avg("mem", MIB, 0),
          netin_kibps: avg("netin", 1024),
          netout_kibps: avg("netout", 1024),
          diskread_kibps: avg("diskread", 1024),
          diskwrite_kibps: avg("diskwrite", 1024),
        }
        : undefined,
    };
  },
});

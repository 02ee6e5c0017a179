/**
 * Summaries for the resources (src/resources.ts). The cluster at a glance:
 * nodes with their load, guest counts, storage use, the PVE release and
 * quorum, from one `/cluster/resources` call and one `/cluster/status` call
 * (the release is read once per client, see quirks.ts). Counts, not rows: the
 * summary stays small however many guests the cluster holds. One node's
 * status. Only what this server's scope shows is counted or read.
 */
import type { PveClient } from "../client.ts";
import { PveError, ToolError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";
import { quirksOf } from "../quirks.ts";
import { scopeOf } from "../../safety/scope.ts";
import { listNodes } from "./nodes.ts";

/** A node, as the summary shows it (stats absent while it is offline). */
export interface NodeSummary {
  node: string;
  status: string;
  cpu_pct?: number;
  cores?: number;
  mem_pct?: number;
  maxmem_gib?: number;
  /** Guests on the node, and how many of them run. */
  guests: number;
  running: number;
}

/** A storage id, its use summed over the nodes that hold it (shared: once). */
export interface StorageSummary {
  storage: string;
  type?: string;
  shared: boolean;
  /** Nodes where it is available. */
  nodes: number;
  used_gib: number;
  total_gib: number;
  used_pct?: number;
}

export interface ClusterSummary {
  /** PVE's own cluster name (absent on a node that is in no cluster). */
  pve_cluster?: string;
  /** `9.1`; `unknown` when /version could not be read. */
  pve_release: string;
  /** Absent when it cannot be read (no cluster, or no Sys.Audit on /). */
  quorate?: boolean;
  nodes: NodeSummary[];
  guests: {
    total: number;
    templates: number;
    by_status: Record<string, number>;
    by_type: Record<string, number>;
  };
  storage: StorageSummary[];
}

const GIB = 1024 ** 3;
const gib = (b: number): number => Math.round((b / GIB) * 10) / 10;
const pct = (part: number, whole: number): number | undefined =>
  whole > 0 ? Math.round((part / whole) * 1000) / 10 : undefined;
const num = (v: unknown): number => typeof v === "number" ? v : 0;

type Entry = Record<string, unknown>;

/** The summary of the cluster behind `pve`, within this server's scope. */
export async function clusterSummary(pve: PveClient): Promise<ClusterSummary> {
  const scope = scopeOf(pve);
  // Settled together: no request outlives the answer.
  const [read, statusRead, quirks] = await Promise.allSettled([
    pve.get<Entry[]>(pvePath`/cluster/resources`),
    pve.get<Entry[]>(pvePath`/cluster/status`),
    quirksOf(pve),
  ]);
  if (read.status === "rejected") throw read.reason;
  const resources = read.value;
  let status: Entry[] = [];
  if (statusRead.status === "fulfilled") status = statusRead.value;
  else if (
    // Quorum is a nicety: a token without Sys.Audit on / still gets the rest.
    !(statusRead.reason instanceof PveError &&
      statusRead.reason.kind === "permission")
  ) throw statusRead.reason;
  const release = quirks.status === "fulfilled"
    ? quirks.value.release
    : "unknown";
  const nodes = new Map<string, NodeSummary>();
  const guests = {
    total: 0,
    templates: 0,
    by_status: {} as Record<string, number>,
    by_type: {} as Record<string, number>,
  };
  const storage = new Map<
    string,
    StorageSummary & { used: number; total: number }
  >();
  const bump = (m: Record<string, number>, k: string) => m[k] = (m[k] ?? 0) + 1;
  for (const e of resources) {
    if (e.type !== "node") continue;
    const node = String(e.node);
    if (!scope.hasNode(node)) continue;
    const online = e.status === "online";
    nodes.set(node, {
      node,
      status: String(e.status ?? "unknown"),
      ...(online
        ? {
          cpu_pct: typeof e.cpu === "number"
            ? Math.round(e.cpu * 1000) / 10
            : undefined,
          cores: typeof e.maxcpu === "number" ? e.maxcpu : undefined,
          mem_pct: pct(num(e.mem), num(e.maxmem)),
          maxmem_gib: typeof e.maxmem === "number" ? gib(e.maxmem) : undefined,
        }
        : {}),
      guests: 0,
      running: 0,
    });
  }
  for (const e of resources) {
    if (e.type === "qemu" || e.type === "lxc") {
      if (!scope.hasGuest({ vmid: e.vmid, node: e.node })) continue;
      const st = String(e.status ?? "unknown");
      guests.total++;
      if (Number(e.template ?? 0) === 1) guests.templates++;
      bump(guests.by_status, st);
      bump(guests.by_type, e.type);
      const n = nodes.get(String(e.node));
      if (n) {
        n.guests++;
        if (st === "running") n.running++;
      }
    } else if (e.type === "storage") {
      const node = String(e.node);
      if (e.status !== "available" || !scope.hasNode(node)) continue;
      const id = String(e.storage);
      const shared = Number(e.shared) === 1;
      let s = storage.get(id);
      if (!s) {
        s = {
          storage: id,
          type: typeof e.plugintype === "string" ? e.plugintype : undefined,
          shared,
          nodes: 0,
          used_gib: 0,
          total_gib: 0,
          used: 0,
          total: 0,
        };
        storage.set(id, s);
      }
      s.nodes++;
      // A shared storage is the same space seen from every node: once.
      if (!shared || s.nodes === 1) {
        s.used += num(e.disk);
        s.total += num(e.maxdisk);
      }
    }
  }
  const cluster = status.find((e) => e.type === "cluster");
  return {
    pve_cluster: typeof cluster?.name === "string" ? cluster.name : undefined,
    pve_release: release,
    quorate: cluster && "quorate" in cluster
      ? Number(cluster.quorate) === 1
      : undefined,
    nodes: [...nodes.values()].sort((a, b) => a.node.localeCompare(b.node)),
    guests,
    storage: [...storage.values()]
      .sort((a, b) => a.storage.localeCompare(b.storage))
      .map(({ used, total, ...s }) => ({
        ...s,
        used_gib: gib(used),
        total_gib: gib(total),
        used_pct: pct(used, total),
      })),
  };
}

/** One node's status, as the node resource shows it. */
export interface NodeStatus {
  node: string;
  status: string;
  uptime_s?: number;
  cpu_pct?: number;
  cpus?: number;
  cpu_model?: string;
  /** 1, 5 and 15 minute load averages. */
  loadavg?: number[];
  mem_pct?: number;
  mem_gib?: number;
  maxmem_gib?: number;
  swap_gib?: number;
  maxswap_gib?: number;
  rootfs_gib?: number;
  maxrootfs_gib?: number;
  /** `pve-manager/9.1.1/…` */
  pve_version?: string;
  kernel?: string;
}

interface PveNodeStatus {
  uptime?: number;
  cpu?: number;
  cpuinfo?: { cpus?: number; model?: string };
  loadavg?: string[];
  memory?: { total?: number; used?: number };
  swap?: { total?: number; used?: number };
  rootfs?: { total?: number; used?: number };
  pveversion?: string;
  kversion?: string;
}

/**
 * A node's status (`/nodes/{node}/status`). A node outside this server's
 * scope, or not in the cluster, is refused; an offline node is reported as
 * such without asking it.
 */
export async function nodeStatus(
  pve: PveClient,
  node: string,
): Promise<NodeStatus> {
  scopeOf(pve).checkNode(node);
  const nodes = await listNodes(pve);
  const entry = nodes.find((n) => n.node === node);
  if (!entry) {
    throw new ToolError(
      `Node '${node}' is not in this cluster: use one of ${
        nodes.map((n) => n.node).join(", ")
      }`,
    );
  }
  if (entry.status !== "online") return { node, status: entry.status };
  const st = await pve.get<PveNodeStatus>(
    pvePath`/nodes/${seg.node(node)}/status`,
  );
  const used = (x?: { used?: number }) =>
    typeof x?.used === "number" ? gib(x.used) : undefined;
  const total = (x?: { total?: number }) =>
    typeof x?.total === "number" ? gib(x.total) : undefined;
  return {
    node,
    status: "online",
    uptime_s: st.uptime,
    cpu_pct: typeof st.cpu === "number"
      ? Math.round(st.cpu * 1000) / 10
      : undefined,
    cpus: st.cpuinfo?.cpus,
    cpu_model: st.cpuinfo?.model,
    loadavg: st.loadavg?.map(Number),
    mem_pct: pct(num(st.memory?.used), num(st.memory?.total)),
    mem_gib: used(st.memory),
    maxmem_gib: total(st.memory),
    swap_gib: used(st.swap),
    maxswap_gib: total(st.swap),
    rootfs_gib: used(st.rootfs),
    maxrootfs_gib: total(st.rootfs),
    pve_version: st.pveversion,
    kernel: st.kversion,
  };
}

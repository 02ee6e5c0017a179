/** Cluster nodes: `/nodes`. */
import type { PveClient } from "../client.ts";

/** A node as `GET /nodes` lists it; stats are absent while it is offline. */
export interface NodeEntry {
  node: string;
  status: "online" | "offline" | "unknown" | string;
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  disk?: number;
  maxdisk?: number;
  uptime?: number;
}

/** Every node of the cluster, sorted by name. */
export async function listNodes(pve: PveClient): Promise<NodeEntry[]> {
  const list = await pve.get<NodeEntry[]>("/nodes");
  return list.map((n) => ({ ...n, status: String(n.status ?? "unknown") }))
    .sort((a, b) => a.node.localeCompare(b.node));
}

/** Cluster nodes: `/nodes`. */
import type { PveClient } from "../client.ts";
import { scopeOf } from "../../safety/scope.ts";

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

/** Every node of the cluster in this server's scope, sorted by name. */
export async function listNodes(pve: PveClient): Promise<NodeEntry[]> {
  const scope = scopeOf(pve);
  const list = await pve.get<NodeEntry[]>("/nodes");
  return list.filter((n) => scope.hasNode(n.node))
    .map((n) => ({ ...n, status: String(n.status ?? "unknown") }))
    .sort((a, b) => a.node.localeCompare(b.node));
}

/**
 * Clusters: one Proxmox client per configured cluster. With the PROXMOX_*
 * variables there is one, named `default`; PROXMOX_CONFIG can name several.
 * With two or more, tools take `cluster` and listings cover every cluster.
 */
import type { Config } from "./config.ts";
import type { PveClient } from "./proxmox/client.ts";

/** The name of the one cluster the PROXMOX_* variables describe. */
export const DEFAULT_CLUSTER = "default";

/** A configured cluster and the client that speaks to it. */
export interface Cluster {
  name: string;
  pve: PveClient;
  /**
   * The configuration as this cluster sees it (its address, login, TLS and
   * scope in the top-level fields); the server's own when absent.
   */
  config?: Config;
}

/** A cluster a listing could not read, with Proxmox's (or the network's) words. */
export interface Unreachable {
  cluster: string;
  error: string;
}

/** Every cluster of a server, in configuration order (the first is the default). */
export function clustersOf(
  deps: { pve: PveClient; clusters?: readonly Cluster[] },
): readonly Cluster[] {
  return deps.clusters?.length
    ? deps.clusters
    : [{ name: DEFAULT_CLUSTER, pve: deps.pve }];
}

/**
 * Storage: where storages can be read (one `/cluster/resources` call), the
 * storages of a node with usage, and the volumes a storage holds.
 */
import type { PveClient } from "../client.ts";
import { ToolError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";
import { scopeOf } from "../../safety/scope.ts";
import { listNodes } from "./nodes.ts";

/** PVE's content types (`GET /nodes/{node}/storage?content=`). */
export const CONTENT_TYPES = [
  "iso",
  "vztmpl",
  "backup",
  "images",
  "rootdir",
  "snippets",
  "import",
] as const;
export type ContentType = typeof CONTENT_TYPES[number];

/** Names of the online nodes, sorted. */
export async function onlineNodes(pve: PveClient): Promise<string[]> {
  return (await listNodes(pve)).filter((n) => n.status === "online")
    .map((n) => n.node);
}

/** A storage as one node sees it: where its content can be listed. */
export interface StorageAt {
  node: string;
  storage: string;
  shared: boolean;
  content: string[];
}

/**
 * A storage that `/cluster/resources` does not report `available` on a node
 * that is up: not active (its backend, a PBS or an NFS server, is offline,
 * or the storage is disabled). PVE's status daemon reports only active
 * storages; the others show as `unknown`.
 */
export interface StorageDown {
  storage: string;
  /** The node it is down on; absent for shared storage (down on every node). */
  node?: string;
  /** What `/cluster/resources` says instead of `available`. */
  status: string;
}

/** Why a StorageDown cannot be read, for `unreachable[].error`. */
export function downReason(d: StorageDown): string {
  return `Proxmox reports its status as '${d.status}', not available (not active: its backend is offline, or the storage is disabled)`;
}

/**
 * Where storages can be read, from one `/cluster/resources` call (see
 * storageLocations), and the storages matching the filter that cannot be:
 * down on a node that is up (a node whose every storage is unavailable is
 * down itself, not its storages), a shared one only when no node has it.
 */
export async function storagePlaces(
  pve: PveClient,
  filter: { node?: string; storage?: string; content?: string },
  options: { absentOk?: boolean } = {},
): Promise<{ places: StorageAt[]; down: StorageDown[] }> {
  const scope = scopeOf(pve);
  if (filter.node && !options.absentOk) scope.checkNode(filter.node);
  const all = await pve.get<Record<string, unknown>[]>(
    pvePath`/cluster/resources`,
    { type: "storage" },
  );
  const up = new Set(
    all.filter((e) => e.status === "available").map((e) => String(e.node)),
  );
  const seen = new Set<string>();
  const places: StorageAt[] = [];
  const unavailable: StorageDown[] = [];
  for (const e of all) {
    const at: StorageAt = {
      node: String(e.node),
      storage: String(e.storage),
      shared: Number(e.shared) === 1,
      content: String(e.content ?? "").split(",").filter(Boolean),
    };
    if (!scope.hasNode(at.node)) continue;
    if (filter.node && at.node !== filter.node) continue;
    if (filter.storage && at.storage !== filter.storage) continue;
    if (filter.content && !at.content.includes(filter.content)) continue;
    if (e.status !== "available") {
      if (up.has(at.node)) {
        unavailable.push({
          storage: at.storage,
          node: at.shared ? undefined : at.node,
          status: String(e.status ?? "unknown"),
        });
      }
      continue;
    }
    if (at.shared && seen.has(at.storage)) continue;
    seen.add(at.storage);
    places.push(at);
  }
  // A shared storage is down once, and only when no node can read it.
  const named = new Set<string>();
  const down = unavailable.filter((d) => {
    if (d.node !== undefined) return true;
    if (seen.has(d.storage) || named.has(d.storage)) return false;
    named.add(d.storage);
    return true;
  });
  if (filter.storage && places.length === 0) {
    // Present but down is a failure even where absence is not.
    if (down.length || !options.absentOk) {
      throw storageMissing(filter, { down: down[0] });
    }
  }
  return { places, down };
}

/**
 * The error for a storage a filter names that cannot be read: down (with
 * what Proxmox reports), or in no cluster a listing covers.
 */
export function storageMissing(
  filter: { node?: string; storage?: string; content?: string },
  o: { down?: StorageDown; everyCluster?: boolean } = {},
): ToolError {
  return new ToolError(
    `Storage '${filter.storage}' is not available${
      filter.node ? ` on node '${filter.node}'` : " on any online node"
    }${o.everyCluster ? " of any cluster" : ""}${
      filter.content ? ` for ${filter.content}` : ""
    }${o.down ? `: ${downReason(o.down)}` : ""}: see proxmox_list_storage`,
  );
}

/**
 * Where storages can be read, from one `/cluster/resources` call: available
 * storages (optionally of one node, one id, holding a content type), with a
 * shared storage listed once. Naming a storage that is nowhere available is
 * an error. Nodes outside this server's scope are left out (naming one is
 * refused).
 *
 * `absentOk`: a listing over several clusters asks each one; a cluster that
 * has no such storage or node simply has nothing to list (no error).
 */
export async function storageLocations(
  pve: PveClient,
  filter: { node?: string; storage?: string; content?: string },
  options: { absentOk?: boolean } = {},
): Promise<StorageAt[]> {
  return (await storagePlaces(pve, filter, options)).places;
}

/** A volume as `GET .../storage/{storage}/content` returns it. */
export interface PveVolume {
  volid: string;
  content?: string;
  format?: string;
  size?: number;
  ctime?: number;
  vmid?: number;
  notes?: string;
  protected?: number;
  subtype?: string;
}

/**
 * The volumes of one storage on one node (PVE filters by one type); the
 * volumes of guests outside this server's scope are left out.
 */
export async function storageContent(
  pve: PveClient,
  at: Pick<StorageAt, "node" | "storage">,
  params: { content?: string; vmid?: number } = {},
): Promise<PveVolume[]> {
  const scope = scopeOf(pve);
  scope.checkNode(at.node);
  const list = await pve.get<PveVolume[]>(
    pvePath`/nodes/${seg.node(at.node)}/storage/${
      seg.storage(at.storage)
    }/content`,
    params,
  );
  if (!scope.limited) return list;
  const visible = await guestVisibility(pve);
  return list.filter((v) => v.vmid === undefined || visible(Number(v.vmid)));
}

/**
 * Whether the volumes (disks, backups) of a VMID may be shown: the VMID is
 * in scope and, when the guest exists, so is its node (a VMID with no guest
 * left, e.g. a backup's, counts by its number alone).
 */
export async function guestVisibility(
  pve: PveClient,
): Promise<(vmid: number) => boolean> {
  const scope = scopeOf(pve);
  if (!scope.limited) return () => true;
  const nodes = new Map<number, string>();
  if (scope.nodes) {
    for (const g of await pve.guests()) {
      nodes.set(Number(g.vmid), String(g.node));
    }
  }
  return (vmid) => {
    if (!scope.hasVmid(vmid)) return false;
    const node = nodes.get(vmid);
    return node === undefined || scope.hasNode(node);
  };
}

/** A storage as `GET /nodes/{node}/storage` returns it (sizes in bytes). */
export interface PveStorage {
  storage: string;
  type: string;
  content: string;
  active?: number;
  enabled?: number;
  shared?: number;
  total?: number;
  used?: number;
  avail?: number;
}

/** The storages of one node with usage (optionally holding one type). */
export function nodeStorages(
  pve: PveClient,
  node: string,
  filter: { content?: ContentType } = {},
): Promise<PveStorage[]> {
  scopeOf(pve).checkNode(node);
  return pve.get<PveStorage[]>(pvePath`/nodes/${seg.node(node)}/storage`, {
    content: filter.content,
  });
}

/** A PVE time in seconds as an ISO string. */
export function isoTime(sec?: number): string | undefined {
  return sec === undefined ? undefined : new Date(sec * 1000).toISOString();
}

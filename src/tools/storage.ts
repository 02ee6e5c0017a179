/** Storage: the storages of nodes with usage, and what they hold. */
import { z } from "zod";
import type { PveClient } from "../proxmox/client.ts";
import { ToolError } from "../proxmox/errors.ts";
import { defineTool, NodeName } from "./define.ts";

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
const round1 = (n: number) => Math.round(n * 10) / 10;

export const CONTENT_TYPES = [
  "iso",
  "vztmpl",
  "backup",
  "images",
  "rootdir",
  "snippets",
  "import",
] as const;

const READ_ONLY = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: true,
} as const;

/** Names of the online nodes. */
export async function onlineNodes(pve: PveClient): Promise<string[]> {
  const nodes = await pve.get<{ node: string; status: string }[]>("/nodes");
  return nodes.filter((n) => n.status === "online").map((n) => n.node).sort();
}

export interface StorageAt {
  node: string;
  storage: string;
  shared: boolean;
  content: string[];
}

/**
 * Where storages can be read, from one `/cluster/resources` call: available
 * storages (optionally of one node, one id, holding a content type), with a
 * shared storage listed once.
 */
export async function storageLocations(
  pve: PveClient,
  filter: { node?: string; storage?: string; content?: string },
): Promise<StorageAt[]> {
  const all = await pve.get<Record<string, unknown>[]>("/cluster/resources", {
    type: "storage",
  });
  const seen = new Set<string>();
  const out: StorageAt[] = [];
  for (const e of all) {
    const at: StorageAt = {
      node: String(e.node),
      storage: String(e.storage),
      shared: Number(e.shared) === 1,
      content: String(e.content ?? "").split(",").filter(Boolean),
    };
    if (e.status !== "available") continue;
    if (filter.node && at.node !== filter.node) continue;
    if (filter.storage && at.storage !== filter.storage) continue;
    if (filter.content && !at.content.includes(filter.content)) continue;
    if (at.shared && seen.has(at.storage)) continue;
    seen.add(at.storage);
    out.push(at);
  }
  if (filter.storage && out.length === 0) {
    throw new ToolError(
      `Storage '${filter.storage}' is not available${
        filter.node ? ` on node '${filter.node}'` : " on any online node"
      }${
        filter.content ? ` for ${filter.content}` : ""
      }: see proxmox_list_storage`,
    );
  }
  return out;
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

/** The volumes of one storage on one node. */
export function storageContent(
  pve: PveClient,
  at: StorageAt,
  params: { content?: string; vmid?: number },
): Promise<PveVolume[]> {
  return pve.get<PveVolume[]>(
    `/nodes/${at.node}/storage/${encodeURIComponent(at.storage)}/content`,
    params,
  );
}

export const isoTime = (sec?: number): string | undefined =>
  sec === undefined ? undefined : new Date(sec * 1000).toISOString();

interface PveStorage {
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

export const listStorage = defineTool({
  name: "proxmox_list_storage",
  toolset: "storage",
  title: "List storage",
  description: "Storages per node: content types, size, usage.",
  input: {
    node: NodeName.optional(),
    content: z.enum(CONTENT_TYPES).optional(),
  },
  output: z.object({
    storages: z.array(z.object({
      node: z.string(),
      storage: z.string(),
      type: z.string(),
      content: z.array(z.string()),
      total_gib: z.number().optional(),
      used_gib: z.number().optional(),
      avail_gib: z.number().optional(),
      used_pct: z.number().optional(),
      active: z.boolean(),
      enabled: z.boolean(),
      shared: z.boolean(),
    })),
  }),
  annotations: READ_ONLY,
  async run({ node, content }, { pve }) {
    const nodes = node ? [node] : await onlineNodes(pve);
    const lists = await Promise.all(
      nodes.map((n) =>
        pve.get<PveStorage[]>(`/nodes/${n}/storage`, { content })
      ),
    );
    const gib = (b?: number) => (b === undefined ? undefined : round1(b / GIB));
    return {
      storages: lists.flatMap((list, i) =>
        list.map((s) => ({
          node: nodes[i],
          storage: s.storage,
          type: s.type,
          content: s.content.split(",").filter(Boolean).sort(),
          total_gib: gib(s.total),
          used_gib: gib(s.used),
          avail_gib: gib(s.avail),
          used_pct: s.total
            ? round1((100 * (s.used ?? 0)) / s.total)
            : undefined,
          active: s.active === 1,
          enabled: s.enabled === 1,
          shared: s.shared === 1,
        }))
      ),
    };
  },
});

export const listContent = defineTool({
  name: "proxmox_list_content",
  toolset: "storage",
  title: "List storage content",
  description: "ISOs and CT templates (or other content) on a storage.",
  input: {
    storage: z.string(),
    node: NodeName.optional(),
    content: z.enum(CONTENT_TYPES).optional(),
  },
  output: z.object({
    count: z.number(),
    items: z.array(z.object({
      volid: z.string(),
      content: z.string(),
      format: z.string(),
      size_mib: z.number(),
      node: z.string().optional(),
      vmid: z.number().optional(),
      time: z.string().optional(),
      notes: z.string().optional(),
    })),
  }),
  annotations: READ_ONLY,
  async run({ storage, node, content }, { pve }) {
    const want: string[] = content ? [content] : ["iso", "vztmpl"];
    const places = await storageLocations(pve, { node, storage });
    const lists = await Promise.all(
      places.map((at) => storageContent(pve, at, { content })),
    );
    const items = lists.flatMap((list, i) =>
      list.filter((v) => want.includes(v.content ?? "")).map((v) => ({
        volid: v.volid,
        content: v.content ?? "",
        format: v.format ?? "",
        size_mib: round1((v.size ?? 0) / MIB),
        // The node matters for local storage: the volume exists only there.
        node: places[i].shared ? undefined : places[i].node,
        vmid: v.vmid,
        time: isoTime(v.ctime),
        notes: v.notes,
      }))
    );
    return { count: items.length, items };
  },
});

/** Storage: the storages of nodes with usage, and what they hold. */
import { z } from "zod";
import {
  CONTENT_TYPES,
  isoTime,
  nodeStorages,
  onlineNodes,
  storageContent,
  storageLocations,
  storageMissing,
} from "../proxmox/api/storage.ts";
import { listNodes } from "../proxmox/api/nodes.ts";
import { ToolError } from "../proxmox/errors.ts";
import {
  across,
  defineTool,
  gib,
  mib,
  NodeName,
  page,
  pagedOutput,
  Paging,
  READ_ONLY,
  round,
  storage,
  StorageId,
  UnreachableClusters,
} from "./define.ts";

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
  privileges: [storage(["Datastore.Audit", "Datastore.AllocateSpace"])],
  listing: true,
  async run({ node, content }, ctx) {
    let found = false;
    const { rows: storages, unreachable } = await across(ctx, async (pve) => {
      // Over several clusters a node filter picks the clusters that have it
      // (online or not: an offline one fails as with one cluster).
      const nodes = !node
        ? await onlineNodes(pve)
        : !ctx.clusters || (await listNodes(pve)).some((n) => n.node === node)
        ? [node]
        : [];
      if (nodes.length) found = true;
      const lists = await Promise.all(
        nodes.map((n) => nodeStorages(pve, n, { content })),
      );
      return lists.flatMap((list, i) =>
        list.map((s) => ({
          node: nodes[i],
          storage: s.storage,
          type: s.type,
          content: s.content.split(",").filter(Boolean).sort(),
          total_gib: gib(s.total),
          used_gib: gib(s.used),
          avail_gib: gib(s.avail),
          used_pct: s.total
            ? round((100 * (s.used ?? 0)) / s.total)
            : undefined,
          active: s.active === 1,
          enabled: s.enabled === 1,
          shared: s.shared === 1,
        }))
      );
    });
    // A node no cluster has (every one answered): an error, as with one.
    if (node && ctx.clusters && !found && !unreachable) {
      throw new ToolError(
        `Node '${node}' is in no cluster (${
          ctx.clusters.map((c) => c.name).join(", ")
        }), or outside this server's scope: see proxmox_list_nodes`,
      );
    }
    return unreachable ? { storages, unreachable } : { storages };
  },
});

export const listContent = defineTool({
  name: "proxmox_list_content",
  toolset: "storage",
  title: "List storage content",
  description: "ISOs and CT templates (or other content) on a storage.",
  input: {
    storage: StorageId,
    node: NodeName.optional(),
    content: z.enum(CONTENT_TYPES).optional(),
    ...Paging,
  },
  output: pagedOutput(
    "items",
    z.object({
      cluster: z.string().optional(),
      volid: z.string(),
      content: z.string(),
      format: z.string(),
      size_mib: z.number(),
      node: z.string().optional(),
      vmid: z.number().optional(),
      time: z.string().optional(),
      notes: z.string().optional(),
    }),
    { tail: { unreachable: UnreachableClusters } },
  ),
  annotations: READ_ONLY,
  privileges: [storage(["Datastore.Audit", "Datastore.AllocateSpace"])],
  listing: true,
  async run({ cursor, limit, ...filter }, ctx) {
    const { storage, node, content } = filter;
    const want: string[] = content ? [content] : ["iso", "vztmpl"];
    let found = false;
    const { rows, unreachable } = await across(ctx, async (pve) => {
      // Over several clusters, one without that storage or node has none.
      const places = await storageLocations(pve, { node, storage }, {
        absentOk: ctx.clusters !== undefined,
      });
      if (places.length) found = true;
      const lists = await Promise.all(
        places.map((at) => storageContent(pve, at, { content })),
      );
      return lists.flatMap((list, i) =>
        list.filter((v) => want.includes(v.content ?? "")).map((v) => ({
          volid: v.volid,
          content: v.content ?? "",
          format: v.format ?? "",
          size_mib: mib(v.size ?? 0),
          // The node matters for local storage: the volume exists only there.
          node: places[i].shared ? undefined : places[i].node,
          vmid: v.vmid,
          time: isoTime(v.ctime),
          notes: v.notes,
        }))
      );
    });
    // A storage no cluster has (every one answered): as with one cluster.
    if (!found && !unreachable) {
      throw storageMissing({ node, storage }, { everyCluster: true });
    }
    // By volid; the same volid on local storage of two nodes is two volumes.
    const p = page(rows, {
      tool: "proxmox_list_content",
      order: [{ type: "string" }, { type: "string" }, { type: "string" }],
      key: (v) => [v.cluster ?? "", v.volid, v.node ?? ""],
      filter,
      at: ctx,
      cursor,
      limit,
      envelope: unreachable ? { unreachable } : {},
    });
    return {
      total: p.total,
      items: p.rows,
      next_cursor: p.next_cursor,
      ...(unreachable ? { unreachable } : {}),
    };
  },
});

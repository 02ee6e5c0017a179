/** Backups (vzdump) of VMs and containers: create, list, restore. */
import { z } from "zod";
import * as backups from "../proxmox/api/backups.ts";
import { label, locate } from "../proxmox/api/guests.ts";
import { failureKind } from "../proxmox/api/tasks.ts";
import { storageMissing } from "../proxmox/api/storage.ts";
import {
  across,
  CREATES,
  defineTool,
  DESTRUCTIVE,
  GuestNode,
  messageOf,
  mib,
  newVm,
  NodeName,
  page,
  pagedOutput,
  Paging,
  READ_ONLY,
  startTask,
  storage,
  StorageId,
  TaskOutcome,
  TaskWait,
  ToolError,
  vm,
  Vmid,
  Volid,
} from "./define.ts";

export const createBackup = defineTool({
  name: "proxmox_create_backup",
  toolset: "backups",
  title: "Back up a guest",
  description: "Back up a guest (vzdump); returns the archive volid.",
  input: {
    vmid: Vmid,
    storage: StorageId.optional(),
    mode: z.enum(["snapshot", "suspend", "stop"]).optional(),
    compress: z.enum(["zstd", "gzip", "lzo", "none"]).optional(),
    notes: z.string().optional(),
    node: GuestNode,
    ...TaskWait,
  },
  output: TaskOutcome.extend({
    volid: z.string().optional(),
    storage: z.string(),
  }),
  annotations: CREATES,
  privileges: [
    vm("VM.Backup"),
    vm("VM.Audit"),
    storage("Datastore.AllocateSpace"),
  ],
  async run(a, ctx) {
    const g = await locate(ctx.pve, a.vmid, a.node);
    const storage = a.storage ??
      await backups.defaultBackupStorage(ctx.pve, g.node);
    const upid = await backups.startBackup(ctx.pve, g, {
      storage,
      mode: a.mode,
      compress: a.compress,
      notes: a.notes,
    }).catch((e: unknown): never => {
      if (failureKind(e) === "uncertain") {
        throw new ToolError(
          `${messageOf(e)}. Whether it was applied: a new archive of ${
            label(g)
          } in proxmox_list_backups once its vzdump task ends`,
          undefined,
          { cause: e },
        );
      }
      throw e;
    });
    const outcome = await ctx.task(upid, {
      wait: a.wait,
      timeoutS: a.timeout_s,
      what: `back up ${label(g)}`,
    });
    if (outcome.status === "running") {
      return {
        ...outcome,
        storage,
        note:
          `${outcome.note}; once it ends, the archive shows in proxmox_list_backups`,
      };
    }
    // Step 2 only reads: the backup is made whether or not it succeeds.
    try {
      const volid = await backups.backupArchive(ctx.pve, g, upid, storage);
      return {
        ...outcome,
        volid,
        storage,
        note: volid
          ? outcome.note
          : `Backed up ${
            label(g)
          } to '${storage}'; its archive is named neither in the task log nor on the storage: see proxmox_list_backups`,
      };
    } catch (e) {
      return {
        ...outcome,
        storage,
        note: `Backed up ${
          label(g)
        } to '${storage}'; finding the archive's volid failed: ${
          messageOf(e)
        }. See proxmox_list_backups`,
      };
    }
  },
});

export const listBackups = defineTool({
  name: "proxmox_list_backups",
  toolset: "backups",
  title: "List backups",
  description: "Backup archives, newest first.",
  input: {
    vmid: Vmid.optional(),
    storage: StorageId.optional(),
    node: NodeName.optional(),
    ...Paging,
  },
  output: pagedOutput(
    "backups",
    z.object({
      volid: z.string(),
      vmid: z.number().optional(),
      type: z.enum(["qemu", "lxc"]).optional(),
      size_mib: z.number(),
      time: z.string().optional(),
      notes: z.string().optional(),
      protected: z.boolean(),
      storage: z.string(),
      node: z.string().optional(),
      cluster: z.string().optional(),
    }),
    {
      tail: {
        /** Clusters or storages that could not be read: the rest is listed. */
        unreachable: z.array(z.object({
          cluster: z.string().optional(),
          storage: z.string().optional(),
          node: z.string().optional(),
          error: z.string(),
        })).optional(),
      },
    },
  ),
  annotations: READ_ONLY,
  privileges: [storage(["Datastore.Audit", "Datastore.AllocateSpace"])],
  listing: true,
  async run({ cursor, limit, ...filter }, ctx) {
    const storages: (backups.StorageUnreachable & { cluster?: string })[] = [];
    let found = false;
    const read = await across(ctx, async (pve) => {
      // Over several clusters, one without that storage or node has none.
      const r = await backups.readBackups(pve, filter, {
        absentOk: ctx.clusters !== undefined,
      });
      if (r.found) found = true;
      const cluster = ctx.clusters?.find((c) => c.pve === pve)?.name;
      for (const u of r.unreachable) {
        storages.push(cluster ? { cluster, ...u } : u);
      }
      return r.backups;
    });
    // A storage no cluster has (every one answered): as with one cluster.
    if (filter.storage && !found && !read.unreachable) {
      throw storageMissing({ ...filter, content: "backup" }, {
        everyCluster: true,
      });
    }
    const unreachable = [...read.unreachable ?? [], ...storages];
    const rows = read.rows.map(({ size, ...b }) => ({
      cluster: b.cluster,
      volid: b.volid,
      vmid: b.vmid,
      type: b.type,
      size_mib: mib(size),
      time: b.time,
      notes: b.notes,
      protected: b.protected,
      storage: b.storage,
      node: b.node,
    }));
    // Newest first; a volid is unique on its storage's node, in its cluster.
    const p = page(rows, {
      tool: "proxmox_list_backups",
      order: [
        { type: "string", desc: true },
        { type: "string" },
        { type: "string" },
        { type: "string" },
      ],
      key: (b) => [b.time ?? "", b.cluster ?? "", b.volid, b.node ?? ""],
      filter,
      at: ctx,
      cursor,
      limit,
      envelope: unreachable.length ? { unreachable } : {},
    });
    return {
      total: p.total,
      backups: p.rows,
      next_cursor: p.next_cursor,
      ...(unreachable.length ? { unreachable } : {}),
    };
  },
});

export const restoreBackup = defineTool({
  name: "proxmox_restore_backup",
  toolset: "backups",
  title: "Restore a backup",
  description:
    "Restore a backup as a new guest, or over a stopped one with force.",
  input: {
    volid: Volid,
    vmid: Vmid.optional(),
    storage: StorageId.optional(),
    force: z.boolean().optional(),
    start: z.boolean().optional(),
    node: NodeName.optional(),
    ...TaskWait,
  },
  output: TaskOutcome.extend({
    vmid: z.number(),
    node: z.string(),
    type: z.enum(["qemu", "lxc"]),
  }),
  annotations: DESTRUCTIVE,
  privileges: [newVm("VM.Allocate"), storage("Datastore.AllocateSpace")],
  async run(a, ctx) {
    const { pve } = ctx;
    const plan = await backups.planRestore(pve, a.volid, {
      vmid: a.vmid,
      storage: a.storage,
      node: a.node,
    });
    const target = label(plan);
    // PVE's refusals, with what to do about them.
    const advise = (e: unknown): never => {
      const kind = failureKind(e);
      if (kind === "exists") {
        throw new ToolError(
          `${
            messageOf(e)
          }: pass force: true to overwrite it (it must be stopped), or omit vmid to restore to a new one`,
          e instanceof ToolError ? e.detail : undefined,
        );
      }
      if (kind === "guestRunning") {
        throw new ToolError(
          `${
            messageOf(e)
          }: stop ${target} first, then restore with force: true`,
          e instanceof ToolError ? e.detail : undefined,
        );
      }
      if (kind === "uncertain") {
        throw new ToolError(
          `${
            messageOf(e)
          }. Whether it was applied: ${target} in proxmox_list_vms`,
          undefined,
          { cause: e },
        );
      }
      throw e;
    };
    const outcome = await startTask(
      ctx,
      () => backups.startRestore(pve, plan, { force: a.force, start: a.start }),
      {
        wait: a.wait,
        timeoutS: a.timeout_s,
        what: `restore ${a.volid} to ${target}`,
        advise,
      },
    );
    return { ...outcome, vmid: plan.vmid, node: plan.node, type: plan.type };
  },
});

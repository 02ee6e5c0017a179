/** Snapshots of VMs and containers: create, list as a tree, roll back, delete. */
import { z } from "zod";
import {
  currentStatus,
  type GuestRef,
  label,
  locate,
} from "../proxmox/api/guests.ts";
import * as snapshots from "../proxmox/api/snapshots.ts";
import { failureKind } from "../proxmox/api/tasks.ts";
import {
  CREATES,
  defineTool,
  DESTRUCTIVE,
  GuestNode,
  messageOf,
  page,
  pagedOutput,
  Paging,
  READ_ONLY,
  SnapName,
  startTask,
  TaskOutcome,
  TaskWait,
  type ToolContext,
  ToolError,
  vm,
  Vmid,
} from "./define.ts";

/**
 * PVE's refusals and failed tasks, with what to do: a write whose answer
 * never came may have been applied (say how to find out before the model
 * repeats it); a locked guest is busy with another task; a missing snapshot
 * is looked up in the list.
 */
function advise(g: GuestRef, e: unknown, namesSnapshot = false): never {
  const kind = failureKind(e);
  const text = messageOf(e);
  const detail = e instanceof ToolError ? e.detail : undefined;
  if (kind === "uncertain") {
    throw new ToolError(
      `${text}. Whether it was applied: proxmox_list_snapshots`,
      undefined,
      { cause: e },
    );
  }
  if (kind === "locked") {
    throw new ToolError(
      `${text}: ${label(g)} is busy with another task; try again when it ends`,
      detail,
    );
  }
  if (kind === "notFound" && namesSnapshot) {
    throw new ToolError(
      `${text}: name one of ${
        label(g)
      }'s snapshots from proxmox_list_snapshots`,
      detail,
    );
  }
  throw e;
}

/** What a snapshot tool takes: `own` between the snapshot's name and node. */
function snapshotInput<I extends z.ZodRawShape>(own: I) {
  return {
    vmid: Vmid,
    name: SnapName,
    ...own,
    node: GuestNode,
    ...TaskWait,
  };
}

/** A snapshot task: what it is called in messages, and how it starts. */
interface SnapshotTask {
  what: string;
  start: () => Promise<string>;
  /** The call names an existing snapshot, which may be missing. */
  namesSnapshot?: boolean;
}

/**
 * Starts a snapshot task on `g` and follows it as the call asks (wait,
 * timeout_s); refusals and failures get advice.
 */
function snapshotTask(
  ctx: ToolContext,
  g: GuestRef,
  a: { wait: boolean; timeout_s: number },
  task: SnapshotTask,
): Promise<TaskOutcome> {
  return startTask(ctx, task.start, {
    wait: a.wait,
    timeoutS: a.timeout_s,
    what: task.what,
    advise: (e) => advise(g, e, task.namesSnapshot),
  });
}

/**
 * The run of a tool that starts one snapshot task on a guest and returns
 * its outcome: `task` says which, for the guest and the call.
 */
function runOneTask<
  A extends { vmid: number; node?: string; wait: boolean; timeout_s: number },
>(
  task: (g: GuestRef, a: A, pve: ToolContext["pve"]) => SnapshotTask,
): (a: A, ctx: ToolContext) => Promise<TaskOutcome> {
  return async (a, ctx) => {
    const g = await locate(ctx.pve, a.vmid, a.node);
    return await snapshotTask(ctx, g, a, task(g, a, ctx.pve));
  };
}

export const createSnapshot = defineTool({
  name: "proxmox_create_snapshot",
  toolset: "snapshots",
  title: "Create a snapshot",
  description: "Snapshot a guest; vmstate also saves VM RAM.",
  input: snapshotInput({
    description: z.string().optional(),
    vmstate: z.boolean().optional(),
  }),
  output: TaskOutcome,
  annotations: CREATES,
  privileges: [vm("VM.Snapshot"), vm("VM.Audit")],
  run: runOneTask((g, a, pve) => ({
    what: `snapshot ${label(g)} as '${a.name}'`,
    start: () =>
      snapshots.createSnapshot(pve, g, {
        name: a.name,
        description: a.description,
        vmstate: a.vmstate,
      }),
  })),
});

export const listSnapshots = defineTool({
  name: "proxmox_list_snapshots",
  toolset: "snapshots",
  title: "List snapshots",
  description: "A guest's snapshots as a tree; marks current.",
  input: { vmid: Vmid, node: GuestNode, ...Paging },
  // `total` does not count the `current` entry.
  output: pagedOutput(
    "snapshots",
    z.object({
      name: z.string(),
      parent: z.string().optional(),
      depth: z.number(),
      time: z.string().optional(),
      description: z.string().optional(),
      vmstate: z.boolean().optional(),
      current: z.boolean().optional(),
      running: z.boolean().optional(),
    }),
    {
      head: {
        vmid: z.number(),
        node: z.string(),
        type: z.enum(["qemu", "lxc"]),
      },
    },
  ),
  annotations: READ_ONLY,
  privileges: [vm("VM.Audit")],
  async run({ vmid, node, cursor, limit }, ctx) {
    const { pve } = ctx;
    const g = await locate(pve, vmid, node);
    const list = await snapshots.listSnapshots(pve, g);
    const head = { vmid, node: g.node, type: g.type };
    // Pages follow the tree order, a position: a page made from another
    // tree (a snapshot added, deleted or rolled back to) is refused.
    const p = page(list.map((s, i) => ({ i, s })), {
      tool: "proxmox_list_snapshots",
      order: [{ type: "number" }],
      key: ({ i }) => [i],
      filter: { vmid },
      at: ctx,
      cursor,
      limit,
      envelope: head,
      version: list.map((s) => [s.name, s.parent ?? ""]),
    });
    return {
      ...head,
      total: list.filter((s) => !s.current).length,
      snapshots: p.rows.map(({ s }) => s),
      next_cursor: p.next_cursor,
    };
  },
});

export const rollbackSnapshot = defineTool({
  name: "proxmox_rollback_snapshot",
  toolset: "snapshots",
  title: "Roll back to a snapshot",
  description: "Roll a guest back to a snapshot.",
  input: snapshotInput({ start: z.boolean().optional() }),
  output: TaskOutcome.extend({
    guest_status: z.string().optional(),
    started: z.boolean().optional(),
  }),
  annotations: DESTRUCTIVE,
  privileges: [vm(["VM.Snapshot", "VM.Snapshot.Rollback"]), vm("VM.Audit")],
  async run(a, ctx) {
    const g = await locate(ctx.pve, a.vmid, a.node);
    const outcome = await snapshotTask(ctx, g, a, {
      what: `roll back ${label(g)} to '${a.name}'`,
      start: () =>
        snapshots.rollbackSnapshot(ctx.pve, g, a.name, { start: a.start }),
      namesSnapshot: true,
    });
    if (outcome.status === "running") return outcome;
    // Step 2 reads the result; the rollback itself is done either way.
    let status: string;
    try {
      status = (await currentStatus<{ status: string }>(ctx.pve, g)).status;
    } catch (e) {
      return {
        ...outcome,
        note: `Rolled back ${
          label(g)
        } to '${a.name}'; reading its status afterwards failed: ${
          messageOf(e)
        }`,
      };
    }
    const started = status === "running";
    return {
      ...outcome,
      guest_status: status,
      started,
      note: !started && g.status === "running"
        ? `${
          label(g)
        } was running and is now stopped (the snapshot has no RAM state); start: true starts it after a rollback`
        : outcome.note,
    };
  },
});

export const deleteSnapshot = defineTool({
  name: "proxmox_delete_snapshot",
  toolset: "snapshots",
  title: "Delete a snapshot",
  description: "Delete a guest's snapshot.",
  input: snapshotInput({}),
  output: TaskOutcome,
  annotations: DESTRUCTIVE,
  privileges: [vm("VM.Snapshot"), vm("VM.Audit")],
  run: runOneTask((g, a, pve) => ({
    what: `delete snapshot '${a.name}' of ${label(g)}`,
    start: () => snapshots.deleteSnapshot(pve, g, a.name),
    namesSnapshot: true,
  })),
});

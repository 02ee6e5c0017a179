/** Snapshots of VMs and containers: create, list as a tree, roll back, delete. */
import { z } from "zod";
import type { GuestRef } from "../proxmox/client.ts";
import { ToolError } from "../proxmox/errors.ts";
import {
  defineTool,
  GuestNode,
  TaskOutcome,
  TimeoutS,
  Vmid,
  Wait,
} from "./define.ts";

/** pve-configid: a letter, then letters, digits, `_` or `-`; 2-40 long. */
const CONFIG_ID = /^[a-z][a-z0-9_-]+$/i;

const kind = (g: GuestRef) => (g.type === "qemu" ? "VM" : "CT");

/** Checks a new snapshot name as PVE does (format, reserved names). */
export function checkSnapname(name: string, g: GuestRef): void {
  if (name.length > 40 || !CONFIG_ID.test(name)) {
    throw new ToolError(
      `Invalid snapshot name '${name}': use 2-40 letters, digits, '_' or '-', starting with a letter`,
    );
  }
  const reserved = g.type === "qemu"
    ? ["current", "pending"]
    : ["current", "vzdump"];
  if (reserved.includes(name.toLowerCase())) {
    throw new ToolError(
      `Snapshot name '${name}' is reserved for ${
        g.type === "qemu" ? "VMs" : "containers"
      } (${reserved.join(", ")}): choose another name`,
    );
  }
}

/** Refuses the `current` pseudo-snapshot for rollback and delete. */
function refuseCurrent(name: string, g: GuestRef, action: string): void {
  if (name.toLowerCase() === "current") {
    throw new ToolError(
      `'current' is not a snapshot but the present state of ${
        kind(g)
      } ${g.vmid}, so it cannot be ${action}: name a snapshot from proxmox_list_snapshots`,
    );
  }
}

const snapPath = (g: GuestRef, name: string) =>
  `${g.path}/snapshot/${encodeURIComponent(name)}`;

const MUTATING = {
  readOnlyHint: false,
  idempotentHint: false,
  openWorldHint: true,
} as const;

export const createSnapshot = defineTool({
  name: "proxmox_create_snapshot",
  toolset: "snapshots",
  title: "Create a snapshot",
  description: "Snapshot a guest; vmstate also saves VM RAM.",
  input: {
    vmid: Vmid,
    name: z.string(),
    description: z.string().optional(),
    vmstate: z.boolean().optional(),
    node: GuestNode,
    wait: Wait,
    timeout_s: TimeoutS(600),
  },
  output: TaskOutcome,
  annotations: { ...MUTATING, destructiveHint: false },
  async run(a, ctx) {
    const g = await ctx.pve.locate(a.vmid, a.node);
    checkSnapname(a.name, g);
    if (a.vmstate && g.type === "lxc") {
      throw new ToolError(
        "Containers have no RAM snapshots: omit vmstate for an LXC container",
      );
    }
    const upid = await ctx.pve.post<string>(`${g.path}/snapshot`, {
      snapname: a.name,
      description: a.description,
      vmstate: a.vmstate,
    });
    return ctx.task(upid, {
      wait: a.wait,
      timeoutS: a.timeout_s,
      what: `snapshot ${kind(g)} ${g.vmid} as '${a.name}'`,
    });
  },
});

interface PveSnapshot {
  name: string;
  description?: string;
  snaptime?: number;
  vmstate?: number;
  parent?: string;
  running?: number;
}

const SnapshotEntry = z.object({
  name: z.string(),
  parent: z.string().optional(),
  depth: z.number(),
  time: z.string().optional(),
  description: z.string().optional(),
  vmstate: z.boolean().optional(),
  current: z.boolean().optional(),
  running: z.boolean().optional(),
});
type SnapshotEntry = z.infer<typeof SnapshotEntry>;

/**
 * Orders snapshots as a tree (parents first, siblings by time) with the
 * `current` pseudo-entry as the last child of the snapshot it is based on.
 */
export function snapshotTree(list: PveSnapshot[]): SnapshotEntry[] {
  const real = list.filter((s) => s.name !== "current");
  const cur = list.find((s) => s.name === "current");
  const names = new Set(real.map((s) => s.name));
  const children = new Map<string, PveSnapshot[]>();
  const rootKey = "\0root";
  for (const s of real) {
    const key = s.parent && names.has(s.parent) ? s.parent : rootKey;
    children.set(key, [...(children.get(key) ?? []), s]);
  }
  for (const kids of children.values()) {
    kids.sort((a, b) =>
      (a.snaptime ?? 0) - (b.snaptime ?? 0) || a.name.localeCompare(b.name)
    );
  }
  const out: SnapshotEntry[] = [];
  const walk = (key: string, depth: number) => {
    for (const s of children.get(key) ?? []) {
      out.push({
        name: s.name,
        parent: s.parent,
        depth,
        time: s.snaptime === undefined
          ? undefined
          : new Date(s.snaptime * 1000).toISOString(),
        description: s.description?.trim() || undefined,
        vmstate: s.vmstate === undefined ? undefined : s.vmstate === 1,
      });
      walk(s.name, depth + 1);
    }
    const curParent = cur?.parent && names.has(cur.parent)
      ? cur.parent
      : rootKey;
    if (cur && curParent === key) {
      out.push({
        name: "current",
        parent: cur.parent,
        depth,
        description: "You are here!",
        current: true,
        running: cur.running === 1,
      });
    }
  };
  walk(rootKey, 0);
  return out;
}

export const listSnapshots = defineTool({
  name: "proxmox_list_snapshots",
  toolset: "snapshots",
  title: "List snapshots",
  description: "A guest's snapshots as a tree; marks current.",
  input: { vmid: Vmid, node: GuestNode },
  output: z.object({
    vmid: z.number(),
    node: z.string(),
    type: z.enum(["qemu", "lxc"]),
    count: z.number(),
    snapshots: z.array(SnapshotEntry),
  }),
  annotations: {
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ vmid, node }, { pve }) {
    const g = await pve.locate(vmid, node);
    const list = await pve.get<PveSnapshot[]>(`${g.path}/snapshot`);
    const snapshots = snapshotTree(list);
    return {
      vmid,
      node: g.node,
      type: g.type,
      count: snapshots.filter((s) => !s.current).length,
      snapshots,
    };
  },
});

export const rollbackSnapshot = defineTool({
  name: "proxmox_rollback_snapshot",
  toolset: "snapshots",
  title: "Roll back to a snapshot",
  description: "Roll a guest back to a snapshot.",
  input: {
    vmid: Vmid,
    name: z.string(),
    start: z.boolean().optional(),
    node: GuestNode,
    wait: Wait,
    timeout_s: TimeoutS(600),
  },
  output: TaskOutcome.extend({
    guest_status: z.string().optional(),
    started: z.boolean().optional(),
  }),
  annotations: { ...MUTATING, destructiveHint: true },
  async run(a, ctx) {
    const g = await ctx.pve.locate(a.vmid, a.node);
    refuseCurrent(a.name, g, "rolled back to");
    const upid = await ctx.pve.post<string>(
      `${snapPath(g, a.name)}/rollback`,
      { start: a.start },
    );
    const outcome = await ctx.task(upid, {
      wait: a.wait,
      timeoutS: a.timeout_s,
      what: `roll back ${kind(g)} ${g.vmid} to '${a.name}'`,
    });
    if (outcome.status === "running") return outcome;
    const st = await ctx.pve.get<{ status: string }>(
      `${g.path}/status/current`,
    );
    const started = st.status === "running";
    return {
      ...outcome,
      guest_status: st.status,
      started,
      note: !started && g.status === "running"
        ? `${
          kind(g)
        } ${g.vmid} was running and is now stopped (the snapshot has no RAM state); start: true starts it after a rollback`
        : outcome.note,
    };
  },
});

export const deleteSnapshot = defineTool({
  name: "proxmox_delete_snapshot",
  toolset: "snapshots",
  title: "Delete a snapshot",
  description: "Delete a guest's snapshot.",
  input: {
    vmid: Vmid,
    name: z.string(),
    node: GuestNode,
    wait: Wait,
    timeout_s: TimeoutS(600),
  },
  output: TaskOutcome,
  annotations: { ...MUTATING, destructiveHint: true },
  async run(a, ctx) {
    const g = await ctx.pve.locate(a.vmid, a.node);
    refuseCurrent(a.name, g, "deleted");
    const upid = await ctx.pve.delete<string>(snapPath(g, a.name));
    return ctx.task(upid, {
      wait: a.wait,
      timeoutS: a.timeout_s,
      what: `delete snapshot '${a.name}' of ${kind(g)} ${g.vmid}`,
    });
  },
});

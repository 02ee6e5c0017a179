/**
 * Snapshots of VMs and containers: create, list (as a tree), roll back,
 * delete. PVE's rules for names (pve-configid, reserved names per guest type)
 * and the `current` pseudo-snapshot live here.
 */
import type { PveClient } from "../client.ts";
import { ToolError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";
import { type GuestRef, label } from "./guests.ts";

/** A snapshot as `GET .../snapshot` returns it (`current` included). */
export interface PveSnapshot {
  name: string;
  description?: string;
  snaptime?: number;
  vmstate?: number;
  parent?: string;
  running?: number;
}

/** One entry of the snapshot tree, in tree order. */
export interface SnapshotEntry {
  name: string;
  parent?: string;
  /** 0 for roots, 1 for their children, ... */
  depth: number;
  /** ISO time the snapshot was taken. */
  time?: string;
  description?: string;
  /** Whether it holds the VM's RAM (VMs only). */
  vmstate?: boolean;
  /** The `current` pseudo-entry: the guest's present state. */
  current?: boolean;
  running?: boolean;
}

/** Names PVE refuses for new snapshots, per guest type (case-insensitive). */
const RESERVED = {
  qemu: ["current", "pending"],
  lxc: ["current", "vzdump"],
} as const;

/** Checks a new snapshot's name as PVE does (format, reserved names). */
function checkNewSnapname(g: GuestRef, name: string): void {
  seg.snapname(name);
  const reserved: readonly string[] = RESERVED[g.type];
  if (reserved.includes(name.toLowerCase())) {
    throw new ToolError(
      `Snapshot name '${name}' is reserved for ${
        g.type === "qemu" ? "VMs" : "containers"
      } (${reserved.join(", ")}): choose another name`,
    );
  }
}

/** `current` is the guest's present state, not a snapshot one can act on. */
function refuseCurrent(g: GuestRef, name: string, action: string): void {
  if (name.toLowerCase() === "current") {
    throw new ToolError(
      `'current' is not a snapshot but the present state of ${
        label(g)
      }, so it cannot be ${action}: name a snapshot from proxmox_list_snapshots`,
    );
  }
}

/** Starts a snapshot of a guest; returns the task's UPID. */
export function createSnapshot(
  pve: PveClient,
  g: GuestRef,
  options: { name: string; description?: string; vmstate?: boolean },
): Promise<string> {
  checkNewSnapname(g, options.name);
  if (options.vmstate && g.type === "lxc") {
    throw new ToolError(
      "Containers have no RAM snapshots: omit vmstate for an LXC container",
    );
  }
  return pve.post<string>(pvePath`/${seg.guest(g)}/snapshot`, {
    snapname: options.name,
    description: options.description,
    vmstate: options.vmstate,
  });
}

/** A guest's snapshots, `current` included, as PVE lists them. */
export function getSnapshots(
  pve: PveClient,
  g: GuestRef,
): Promise<PveSnapshot[]> {
  return pve.get<PveSnapshot[]>(pvePath`/${seg.guest(g)}/snapshot`);
}

/** A guest's snapshots as a tree (see snapshotTree). */
export async function listSnapshots(
  pve: PveClient,
  g: GuestRef,
): Promise<SnapshotEntry[]> {
  return snapshotTree(await getSnapshots(pve, g));
}

/** Starts a rollback to a snapshot; returns the task's UPID. */
export function rollbackSnapshot(
  pve: PveClient,
  g: GuestRef,
  name: string,
  options: { start?: boolean } = {},
): Promise<string> {
  refuseCurrent(g, name, "rolled back to");
  return pve.post<string>(
    pvePath`/${seg.guest(g)}/snapshot/${seg.snapname(name)}/rollback`,
    // `start` exists for both types since PVE 8.0.
    { start: options.start },
  );
}

/** Starts deleting a snapshot; returns the task's UPID. */
export function deleteSnapshot(
  pve: PveClient,
  g: GuestRef,
  name: string,
): Promise<string> {
  refuseCurrent(g, name, "deleted");
  return pve.delete<string>(
    pvePath`/${seg.guest(g)}/snapshot/${seg.snapname(name)}`,
  );
}

/**
 * Orders snapshots as a tree (parents first, siblings by time) with the
 * `current` pseudo-entry as the last child of the snapshot it is based on.
 */
function snapshotTree(list: PveSnapshot[]): SnapshotEntry[] {
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

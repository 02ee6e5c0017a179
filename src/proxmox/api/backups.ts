/**
 * Backups (vzdump) and restores. PVE's quirks live here: vzdump answers "OK"
 * instead of a UPID when the guest is not on the node, prunes old archives
 * unless told not to, takes notes as a one-line template, and writes the new
 * archive's name only into its task log; a QEMU restore takes `archive`, an
 * LXC restore `ostemplate` + `restore`, and a container's volumes default to
 * `local`, which rarely holds containers.
 */
import type { PveClient } from "../client.ts";
import { PveError, reasonOf, ToolError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";
import { scopeOf } from "../../safety/scope.ts";
import { taskLogTail } from "../tasks.ts";
import { freeVmid } from "./create.ts";
import { type GuestRef, label, listGuests } from "./guests.ts";
import {
  downReason,
  guestVisibility,
  isoTime,
  type PveVolume,
  storageContent,
  storageLocations,
  storagePlaces,
} from "./storage.ts";

/**
 * What a backup archive holds, from its volid: `vzdump-qemu-100-...`,
 * `vzdump-lxc-101-...` (`openvz` is an old container backup), or a PBS
 * snapshot `pbs:backup/vm/100/...` / `pbs:backup/ct/101/...`.
 */
export function archiveInfo(
  volid: string,
): { type: "qemu" | "lxc"; vmid: number } | undefined {
  const m = /vzdump-(qemu|lxc|openvz)-(\d+)-/.exec(volid) ??
    /:backup\/(vm|ct)\/(\d+)\//.exec(volid);
  if (!m) return undefined;
  return {
    type: m[1] === "qemu" || m[1] === "vm" ? "qemu" : "lxc",
    vmid: Number(m[2]),
  };
}

/** The volid of the archive a vzdump task made, from its log. */
function archiveFromLog(
  lines: string[],
  storage: string,
): string | undefined {
  for (const line of lines) {
    const file = /creating vzdump archive '([^']+)'/.exec(line)?.[1];
    if (file) return `${storage}:backup/${file.split("/").pop()}`;
    const pbs = /creating Proxmox Backup Server archive '([^']+)'/.exec(line)
      ?.[1];
    if (pbs) return `${storage}:backup/${pbs}`;
  }
  return undefined;
}

/** vzdump's notes-template is one line: `\n` for newlines, `\\` for `\`. */
function notesTemplate(notes: string): string {
  return notes.replaceAll("\\", "\\\\").replace(/\r?\n/g, "\\n");
}

/** The first available storage for backups on a node. */
export async function defaultBackupStorage(
  pve: PveClient,
  node: string,
): Promise<string> {
  const storage = (await storageLocations(pve, { node, content: "backup" }))[0]
    ?.storage;
  if (!storage) {
    throw new ToolError(
      `Node '${node}' has no available storage for backups: add the content type 'backup' to a storage, or pass storage`,
    );
  }
  return storage;
}

export interface BackupOptions {
  storage: string;
  mode?: "snapshot" | "suspend" | "stop";
  compress?: "zstd" | "gzip" | "lzo" | "none";
  notes?: string;
}

/** Starts a one-off backup of a guest; returns the task's UPID. */
export async function startBackup(
  pve: PveClient,
  g: GuestRef,
  options: BackupOptions,
): Promise<string> {
  const upid = await pve.post<string>(
    pvePath`/nodes/${seg.node(g.node)}/vzdump`,
    {
      // pve-vmid-list: a string.
      vmid: String(g.vmid),
      storage: options.storage,
      mode: options.mode ?? "snapshot",
      compress: options.compress === "none" ? "0" : options.compress ?? "zstd",
      // A one-off backup must not prune older archives (vzdump's default).
      remove: false,
      "notes-template": options.notes === undefined
        ? undefined
        : notesTemplate(options.notes),
    },
  );
  if (!upid.startsWith("UPID:")) {
    // vzdump answers "OK" when none of the guests is on the node.
    throw new ToolError(
      `Proxmox backed up nothing: ${
        label(g)
      } is no longer on node '${g.node}'; try again`,
    );
  }
  return upid;
}

/**
 * The volid of the archive a finished backup task made: from its log, else
 * (log unreadable, or no archive line) the guest's newest archive on the
 * storage.
 */
export async function backupArchive(
  pve: PveClient,
  g: GuestRef,
  upid: string,
  storage: string,
): Promise<string | undefined> {
  const fromLog = await taskLogTail(pve, upid, 1000).then(
    (lines) => archiveFromLog(lines, storage),
    () => undefined,
  );
  if (fromLog) return fromLog;
  const list = await storageContent(pve, { node: g.node, storage }, {
    content: "backup",
    vmid: g.vmid,
  });
  return list.sort((x, y) => (y.ctime ?? 0) - (x.ctime ?? 0))[0]?.volid;
}

/** A backup archive as list_backups shows it. */
export interface Backup {
  volid: string;
  vmid?: number;
  type?: "qemu" | "lxc";
  /** Bytes. */
  size: number;
  time?: string;
  notes?: string;
  protected: boolean;
  storage: string;
  /** The node that holds it; absent on shared storage. */
  node?: string;
}

function backupOf(v: PveVolume, storage: string, node?: string): Backup {
  const info = archiveInfo(v.volid);
  return {
    volid: v.volid,
    vmid: v.vmid ?? info?.vmid,
    type: info?.type ??
      (v.subtype === "qemu" || v.subtype === "lxc" ? v.subtype : undefined),
    size: v.size ?? 0,
    time: isoTime(v.ctime),
    notes: v.notes,
    protected: Number(v.protected ?? 0) === 1,
    storage,
    node,
  };
}

/** A storage whose content could not be read, with Proxmox's words. */
export interface StorageUnreachable {
  storage: string;
  /** The node it was read on; absent for shared storage. */
  node?: string;
  error: string;
}

/**
 * Backup archives on available storages, newest first. A storage that fails
 * (a PBS that is not online, a timeout) or that Proxmox reports down (not
 * active) is named in `unreachable` and the others are listed; only when every storage fails does this fail (with the
 * storage's own error when there was one). `absentOk`: see storageLocations.
 */
export async function readBackups(
  pve: PveClient,
  filter: { vmid?: number; storage?: string; node?: string },
  options: { absentOk?: boolean } = {},
): Promise<
  {
    backups: Backup[];
    unreachable: StorageUnreachable[];
    /** Whether any storage matched the filter (see `absentOk`). */
    found: boolean;
  }
> {
  const { places, down } = await storagePlaces(pve, {
    node: filter.node,
    storage: filter.storage,
    content: "backup",
  }, options);
  const settled = await Promise.allSettled(
    places.map((at) =>
      storageContent(pve, at, { content: "backup", vmid: filter.vmid })
    ),
  );
  const unreachable: StorageUnreachable[] = [];
  settled.forEach((s, i) => {
    if (s.status === "rejected") {
      unreachable.push({
        storage: places[i].storage,
        node: places[i].shared ? undefined : places[i].node,
        error: reasonOf(s.reason),
      });
    }
  });
  const failed = unreachable.length === places.length;
  // Storages Proxmox reports down (an offline PBS): named, not skipped.
  for (const d of down) {
    unreachable.push({
      storage: d.storage,
      node: d.node,
      error: downReason(d),
    });
  }
  if (places.length && failed) {
    const reasons = settled.map((s) => (s as PromiseRejectedResult).reason);
    const first = reasons[0];
    // One storage, or a refusal of them all: the error as Proxmox gave it
    // (a permission error then says which privilege to grant).
    if (
      (places.length === 1 && !down.length) ||
      reasons.every((r) => r instanceof PveError && r.kind === "permission")
    ) throw first;
    throw new ToolError(
      `No backup storage could be read: ${
        unreachable.map((u) =>
          `${u.storage}${u.node ? ` on ${u.node}` : ""}: ${u.error}`
        ).join("; ")
      }`,
      undefined,
      { cause: first },
    );
  }
  const visible = await guestVisibility(pve);
  const backups = settled.flatMap((s, i) =>
    s.status === "rejected" ? [] : s.value.map((v) =>
      // Local storage: the archive exists on this node only.
      backupOf(
        v,
        places[i].storage,
        places[i].shared ? undefined : places[i].node,
      )
    )
  ).filter((b) => b.vmid === undefined || visible(b.vmid));
  backups.sort((x, y) => (y.time ?? "").localeCompare(x.time ?? ""));
  return { backups, unreachable, found: places.length > 0 };
}

/** Backup archives on the storages that can be read, newest first. */
export async function listBackups(
  pve: PveClient,
  filter: { vmid?: number; storage?: string; node?: string },
): Promise<Backup[]> {
  return (await readBackups(pve, filter)).backups;
}

/**
 * A node that holds an archive: any node for shared storage (`prefer`
 * first), else the node whose storage lists it.
 */
async function archiveNode(
  pve: PveClient,
  volid: string,
  prefer?: string,
): Promise<string> {
  const places = (await storageLocations(pve, {
    storage: volid.split(":")[0],
    content: "backup",
  })).sort((x, y) => Number(y.node === prefer) - Number(x.node === prefer));
  if (places[0].shared) return places[0].node;
  for (const at of places) {
    const list = await storageContent(pve, at, { content: "backup" });
    if (list.some((v) => v.volid === volid)) return at.node;
  }
  throw new ToolError(
    `Backup '${volid}' is on no online node: take volids from proxmox_list_backups`,
  );
}

export interface RestoreTarget {
  /** Target vmid; the next free one when absent. */
  vmid?: number;
  /** Where the disks go. */
  storage?: string;
  /** Where to restore; the overwritten guest's or the archive's node by default. */
  node?: string;
}

/** What a restore makes or overwrites, settled before anything is sent. */
export interface RestorePlan {
  volid: string;
  vmid: number;
  node: string;
  type: "qemu" | "lxc";
  storage?: string;
}

/**
 * Settles where a restore goes: the archive's guest type, the node (given,
 * the overwritten guest's, else one that holds the archive), the vmid (given
 * or the next free one) and, for a container, a storage that holds
 * containers. Reads only.
 */
export async function planRestore(
  pve: PveClient,
  volid: string,
  target: RestoreTarget,
): Promise<RestorePlan> {
  const info = archiveInfo(volid);
  if (!info) {
    throw new ToolError(
      `'${volid}' is not a vzdump backup archive: take volids from proxmox_list_backups`,
    );
  }
  // The archive of a guest outside this server's scope is not ours to use.
  const scope = scopeOf(pve);
  if (!(await guestVisibility(pve))(info.vmid)) {
    throw new ToolError(
      `'${volid}' is a backup of guest ${info.vmid}, outside this server's scope (${
        scope.hasVmid(info.vmid) ? "MCP_ALLOWED_NODES" : "MCP_ALLOWED_VMIDS"
      }): take volids from proxmox_list_backups`,
    );
  }
  if (target.vmid !== undefined) {
    // Restoring over a guest on a node outside the scope is refused too.
    scope.checkVmid(target.vmid, { creating: true });
    scope.checkGuest(
      target.vmid,
      (await pve.guests()).find((g) => Number(g.vmid) === target.vmid) as
        | { node: unknown }
        | undefined,
    );
  }
  if (target.node !== undefined) scope.checkNode(target.node);
  const guests = await listGuests(pve);
  const existing = target.vmid === undefined
    ? undefined
    : guests.find((r) => Number(r.vmid) === target.vmid);
  const source = guests.find((r) => Number(r.vmid) === info.vmid);
  const node = target.node ?? existing?.node ??
    await archiveNode(pve, volid, source?.node);
  // A given vmid is not checked: PVE refuses a taken one unless forced.
  const vmid = target.vmid ?? await freeVmid(pve);
  // PVE puts a container's volumes on `storage`, which defaults to `local`
  // (rarely able to hold containers): default to a rootdir storage instead.
  const storage = target.storage ??
    (info.type === "lxc"
      ? (await storageLocations(pve, { node, content: "rootdir" }))[0]?.storage
      : undefined);
  return { volid, vmid, node, type: info.type, storage };
}

/** Starts a planned restore; returns the task's UPID. */
export async function startRestore(
  pve: PveClient,
  plan: RestorePlan,
  options: { force?: boolean; start?: boolean } = {},
): Promise<string> {
  scopeOf(pve).checkVmid(plan.vmid, { creating: true });
  scopeOf(pve).checkNode(plan.node);
  const params = plan.type === "qemu"
    ? { vmid: plan.vmid, archive: plan.volid }
    : { vmid: plan.vmid, ostemplate: plan.volid, restore: true };
  const upid = await pve.post<string>(
    pvePath`/nodes/${seg.node(plan.node)}/${seg.guestType(plan.type)}`,
    {
      ...params,
      storage: plan.storage,
      force: options.force,
      start: options.start,
    },
  );
  // The guest list changes: the next lookup must see the new guest.
  pve.invalidate();
  return upid;
}

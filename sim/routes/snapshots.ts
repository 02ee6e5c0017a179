/**
 * Snapshots of QEMU VMs and LXC containers (SEMANTICS §4.10, §5): a tree by
 * `parent`, the `current` pseudo-entry last, vmstate for QEMU, rollback that
 * stops a running guest and restarts it from a RAM snapshot, PVE's errors.
 */
import { bool, int, type Route, type SimRequest, str } from "../router.ts";
import {
  type Cluster,
  type ConfigValue,
  DISK_KEY,
  type Guest,
  type GuestType,
  SimError,
  type Snapshot,
} from "../state.ts";
import { digestOf } from "../views.ts";

/** Keys of the config file that are not part of a snapshot's config. */
const NOT_SNAPSHOTTED = new Set(["parent", "lock", "digest"]);

function guestOf(req: SimRequest, type: GuestType): Guest {
  return req.cluster.guest(str(req, "node")!, type, int(req, "vmid")!);
}

/** The disk volumes of a config (cdroms and cloud-init drives excluded). */
export function diskVolumes(
  config: Record<string, ConfigValue>,
): { key: string; volid: string }[] {
  const out: { key: string; volid: string }[] = [];
  for (const [key, v] of Object.entries(config)) {
    if (!DISK_KEY.test(key) || typeof v !== "string") continue;
    if (v.includes("media=cdrom") || v.includes("cloudinit")) continue;
    const volid = v.split(",")[0];
    if (volid.includes(":")) out.push({ key, volid });
  }
  return out;
}

/** Whether every disk can be snapshotted (storage type, or qcow2 on dir). */
function canSnapshot(c: Cluster, g: Guest): boolean {
  return diskVolumes(g.config).every(({ volid }) => {
    const s = c.storages.find((x) => x.storage === volid.split(":")[0]);
    return s !== undefined && (s.snapshots || volid.endsWith(".qcow2"));
  });
}

/** The guest's config without the keys a snapshot does not carry. */
export function snapshotConfig(
  config: Record<string, ConfigValue>,
): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!NOT_SNAPSHOTTED.has(k)) out[k] = v;
  }
  return out;
}

const what = (g: Guest) => (g.type === "qemu" ? "VM" : "CT");

/** Runs `work` under a lock, checking (and then releasing) it like PVE. */
async function locked(
  c: Cluster,
  g: Guest,
  lock: string,
  work: () => Promise<void> | void,
): Promise<void> {
  c.checkLock(g);
  g.lock = lock;
  try {
    await work();
  } finally {
    if (g.lock === lock) delete g.lock;
  }
}

function list(req: SimRequest, type: GuestType) {
  const g = guestOf(req, type);
  const out: Record<string, unknown>[] = [...g.snapshots.values()].map((s) => {
    const e: Record<string, unknown> = {
      name: s.name,
      description: s.description,
      snaptime: s.snaptime,
    };
    if (type === "qemu") e.vmstate = s.vmstate;
    if (s.parent) e.parent = s.parent;
    return e;
  });
  const current: Record<string, unknown> = {
    name: "current",
    description: "You are here!",
    digest: digestOf(g.config),
    running: g.status === "running" ? 1 : 0,
  };
  if (g.config.parent) current.parent = g.config.parent;
  out.push(current);
  return out;
}

function create(req: SimRequest, type: GuestType) {
  const c = req.cluster;
  const g = guestOf(req, type);
  const snapname = str(req, "snapname")!;
  const reserved = type === "qemu" ? ["current", "pending"] : [
    "current",
    "vzdump",
  ];
  if (reserved.includes(snapname.toLowerCase())) {
    throw new SimError(
      500,
      `unable to use snapshot name '${snapname}' (reserved name)`,
    );
  }
  const description = str(req, "description") ?? "";
  const wantVmstate = type === "qemu" && (bool(req, "vmstate") ?? false);
  return c.startTask({
    node: g.node,
    type: type === "qemu" ? "qmsnapshot" : "vzsnapshot",
    id: g.vmid,
    user: req.user,
  }, async (t) => {
    if (g.config.template === 1) {
      throw new Error("you can't take a snapshot if it's a template");
    }
    if (g.snapshots.has(snapname)) {
      throw new Error(`snapshot name '${snapname}' already used`);
    }
    await locked(c, g, "snapshot", async () => {
      if (!canSnapshot(c, g)) {
        throw new Error("snapshot feature is not available");
      }
      const vmstate = wantVmstate && g.status === "running";
      if (vmstate) {
        t.log(`saving VM state and RAM using storage 'local-lvm'`);
        await t.step();
        t.log("completed saving the VM state in 1s, saved 612.00 MiB");
      }
      for (const { key, volid } of diskVolumes(g.config)) {
        t.log(
          `snapshotting '${type === "qemu" ? "drive-" : ""}${key}' (${volid})`,
        );
      }
      await t.step();
      const snap: Snapshot = {
        name: snapname,
        description,
        snaptime: Math.floor(Date.now() / 1000),
        vmstate: vmstate ? 1 : 0,
        config: snapshotConfig(g.config),
        running: g.status === "running",
      };
      if (typeof g.config.parent === "string") snap.parent = g.config.parent;
      g.snapshots.set(snapname, snap);
      g.config.parent = snapname;
    });
  });
}

function rollback(req: SimRequest, type: GuestType) {
  const c = req.cluster;
  const g = guestOf(req, type);
  const snapname = str(req, "snapname")!;
  const start = bool(req, "start") ?? false;
  return c.startTask({
    node: g.node,
    type: type === "qemu" ? "qmrollback" : "vzrollback",
    id: g.vmid,
    user: req.user,
  }, async (t) => {
    if (g.config.template === 1) {
      throw new Error("you can't rollback if vm is a template");
    }
    const snap = g.snapshots.get(snapname);
    if (!snap) throw new Error(`snapshot '${snapname}' does not exist`);
    await locked(c, g, "rollback", async () => {
      if (g.status === "running") {
        t.log(`stopping ${what(g)} ${g.vmid}`);
        await t.step();
        g.status = "stopped";
        if (g.type === "qemu") g.qmpstatus = "stopped";
        delete g.startedAt;
      }
      for (const { volid } of diskVolumes(snap.config)) {
        t.log(`rolling back '${volid}' to snapshot '${snapname}'`);
      }
      await t.step();
      g.config = { ...structuredClone(snap.config), parent: snapname };
      g.pending = {};
      g.pendingDelete = [];
    });
    // A RAM snapshot resumes where it was taken; `start` starts anyway.
    if ((snap.vmstate === 1 && type === "qemu") || start) {
      t.log(
        snap.vmstate === 1
          ? `resuming VM ${g.vmid} from the saved state`
          : `starting ${what(g)} ${g.vmid}`,
      );
      await t.step();
      g.status = "running";
      if (g.type === "qemu") g.qmpstatus = "running";
      g.startedAt = Date.now();
    }
  });
}

function remove(req: SimRequest, type: GuestType) {
  const c = req.cluster;
  const g = guestOf(req, type);
  const snapname = str(req, "snapname")!;
  // `force` only matters when removing a disk snapshot fails: never here.
  return c.startTask({
    node: g.node,
    type: type === "qemu" ? "qmdelsnapshot" : "vzdelsnapshot",
    id: g.vmid,
    user: req.user,
  }, async (t) => {
    if (g.config.template === 1) {
      throw new Error("you can't delete a snapshot if vm is a template");
    }
    const snap = g.snapshots.get(snapname);
    if (!snap) throw new Error(`snapshot '${snapname}' does not exist`);
    await locked(c, g, "snapshot-delete", async () => {
      for (const { volid } of diskVolumes(snap.config)) {
        t.log(`removing snapshot '${snapname}' of '${volid}'`);
      }
      await t.step();
      // Children move up to the deleted snapshot's parent.
      for (const s of g.snapshots.values()) {
        if (s.parent === snapname) s.parent = snap.parent;
      }
      if (g.config.parent === snapname) {
        if (snap.parent) g.config.parent = snap.parent;
        else delete g.config.parent;
      }
      g.snapshots.delete(snapname);
    });
  });
}

function forType(type: GuestType): Route[] {
  const base = `/nodes/{node}/${type}/{vmid}/snapshot`;
  return [
    { method: "GET", path: base, handler: (req) => list(req, type) },
    { method: "POST", path: base, handler: (req) => create(req, type) },
    {
      method: "POST",
      path: `${base}/{snapname}/rollback`,
      handler: (req) => rollback(req, type),
    },
    {
      method: "DELETE",
      path: `${base}/{snapname}`,
      handler: (req) => remove(req, type),
    },
  ];
}

export const SNAPSHOT_ROUTES: Route[] = [...forType("qemu"), ...forType("lxc")];

/**
 * Backup and restore (SEMANTICS §7): `vzdump` writing archives with PVE's
 * names, notes and `.log` into a backup storage (whose usage grows), lock
 * `backup` while it runs, `"OK"` when no listed guest is on the node; the
 * restore branches of `POST /nodes/{node}/qemu` (archive) and
 * `POST /nodes/{node}/lxc` (restore=1) with PVE's errors.
 */
import { bool, int, type Route, type SimRequest, str } from "../router.ts";
import { newGuest, pbsTime } from "../seed.ts";
import {
  type Cluster,
  type ConfigValue,
  DISK_KEY,
  type Guest,
  type GuestType,
  parsePropString,
  parseSize,
  SimError,
  type StorageDef,
  type TaskHandle,
  type Volume,
} from "../state.ts";
import { guestName } from "../views.ts";
import { diskVolumes, snapshotConfig } from "./snapshots.ts";

const GIB = 1024 ** 3;

/** Where a storage keeps its files (the task log names these paths). */
function storagePath(s: StorageDef): string {
  return s.type === "dir" && s.storage === "local"
    ? "/var/lib/vz"
    : `/mnt/pve/${s.storage}`;
}

/** `2026_11_25-12_00_00` (UTC stands in for the node's local time). */
function stamp(sec: number): string {
  const d = new Date(sec * 1000).toISOString();
  return `${d.slice(0, 10).replaceAll("-", "_")}-${
    d.slice(11, 19).replaceAll(":", "_")
  }`;
}

const COMPRESS: Record<string, { ext: string; ratio: number }> = {
  "0": { ext: "", ratio: 1 },
  "1": { ext: ".lzo", ratio: 0.6 },
  lzo: { ext: ".lzo", ratio: 0.6 },
  gzip: { ext: ".gz", ratio: 0.5 },
  zstd: { ext: ".zst", ratio: 0.45 },
};

/** Bytes of a guest's disks. */
function diskBytes(config: Record<string, ConfigValue>): number {
  let n = 0;
  for (const { key } of diskVolumes(config)) {
    n += parseSize(parsePropString(String(config[key])).size ?? "0");
  }
  return n;
}

/** `{{guestname}}` etc. substituted, `\n` and `\\` unescaped, as vzdump. */
function renderNotes(template: string, g: Guest, c: Cluster): string {
  return template
    .replace(
      /\{\{(cluster|guestname|node|vmid)\}\}/g,
      (_, k: string) =>
        k === "cluster"
          ? c.clusterName
          : k === "guestname"
          ? guestName(g)
          : k === "node"
          ? g.node
          : String(g.vmid),
    )
    .replace(/\\(\\|n)/g, (_, ch: string) => (ch === "n" ? "\n" : "\\"));
}

interface DumpOptions {
  storage: string;
  mode: string;
  compress: string;
  notes?: string;
  protected: boolean;
}

/** Backs up one guest inside the vzdump task; throws on failure. */
async function dumpGuest(
  c: Cluster,
  t: TaskHandle,
  g: Guest,
  o: DumpOptions,
  s: StorageDef,
): Promise<void> {
  const start = t.task.log.length;
  const kind = g.type === "qemu" ? "qemu" : "lxc";
  t.log(`INFO: Starting Backup of VM ${g.vmid} (${kind})`);
  t.log(
    `INFO: Backup started at ${
      new Date().toISOString().slice(0, 19).replace("T", " ")
    }`,
  );
  t.log(`INFO: status = ${g.status}`);
  c.checkLock(g);
  g.lock = "backup";
  let stopped = false;
  try {
    t.log(`INFO: ${g.type === "qemu" ? "VM" : "CT"} Name: ${guestName(g)}`);
    let mode = o.mode;
    if (
      g.type === "lxc" && mode === "snapshot" &&
      !diskVolumes(g.config).every(({ volid }) =>
        c.storages.find((x) => x.storage === volid.split(":")[0])?.snapshots
      )
    ) {
      t.log("INFO: mode failure - some volumes do not support snapshots");
      t.log("INFO: trying 'suspend' mode instead");
      mode = "suspend";
    }
    t.log(`INFO: backup mode: ${mode}`);
    t.log("INFO: ionice priority: 7");
    if (mode === "stop" && g.status === "running") {
      t.log("INFO: stopping virtual guest");
      await t.step();
      g.status = "stopped";
      if (g.type === "qemu") g.qmpstatus = "stopped";
      stopped = true;
    }
    // A unique archive name: a second backup within the same second moves on.
    let sec = Math.floor(Date.now() / 1000);
    const pbs = s.type === "pbs";
    // PBS names a snapshot `vm/105/2026-11-20T03:00:00Z` and chunks it itself.
    const ext = pbs
      ? (g.type === "qemu" ? "pbs-vm" : "pbs-ct")
      : (g.type === "qemu" ? "vma" : "tar") + COMPRESS[o.compress].ext;
    const nameAt = (x: number) =>
      pbs
        ? `${g.type === "qemu" ? "vm" : "ct"}/${g.vmid}/${pbsTime(x)}`
        : `vzdump-${kind}-${g.vmid}-${stamp(x)}.${ext}`;
    while (
      c.volumes.some((v) => v.volid === `${s.storage}:backup/${nameAt(sec)}`)
    ) sec++;
    const file = nameAt(sec);
    t.log(
      pbs
        ? `INFO: creating Proxmox Backup Server archive '${file}'`
        : `INFO: creating vzdump archive '${storagePath(s)}/dump/${file}'`,
    );
    // Bigger guests take longer: one task step per 16 GiB of disk, at least 2.
    const steps = Math.max(2, Math.ceil(diskBytes(g.config) / (16 * GIB)));
    for (let i = 0; i < steps; i++) await t.step();
    const size = Math.max(
      64 * 1024 ** 2,
      Math.round(diskBytes(g.config) * 0.35 * COMPRESS[o.compress].ratio),
    );
    t.log(`INFO: archive file size: ${(size / GIB).toFixed(2)}GB`);
    const volume: Volume = {
      storage: s.storage,
      node: g.node,
      volid: `${s.storage}:backup/${file}`,
      content: "backup",
      format: ext,
      size,
      ctime: sec,
      vmid: g.vmid,
      subtype: g.type,
      backup: {
        type: g.type,
        config: structuredClone(snapshotConfig(g.config)),
      },
    };
    if (o.notes !== undefined) {
      t.log("INFO: adding notes to backup");
      volume.notes = renderNotes(o.notes, g, c);
    }
    if (o.protected) {
      t.log("INFO: marking backup as protected");
      volume.protected = true;
    }
    t.log(`INFO: Finished Backup of VM ${g.vmid} (00:00:02)`);
    volume.log = t.task.log.slice(start).join("\n") + "\n";
    c.volumes.push(volume);
  } finally {
    if (g.lock === "backup") delete g.lock;
    if (stopped) {
      t.log("INFO: restarting vm");
      g.status = "running";
      if (g.type === "qemu") g.qmpstatus = "running";
      g.startedAt = Date.now();
    }
  }
}

function vzdump(req: SimRequest): string {
  const c = req.cluster;
  const node = str(req, "node")!;
  const vmidList = str(req, "vmid");
  const all = bool(req, "all") ?? false;
  const pool = str(req, "pool");
  for (
    const [p, set] of [["all", all], ["pool", pool !== undefined]] as const
  ) {
    if (set && vmidList !== undefined) {
      throw SimError.param({ [p]: "option conflicts with option 'vmid'" });
    }
  }
  if (vmidList === undefined && !all && pool === undefined) {
    throw SimError.param({ vmid: "property is missing" });
  }
  if (pool !== undefined) {
    throw new SimError(500, `pool '${pool}' does not exist`);
  }
  const exclude = new Set(
    (str(req, "exclude") ?? "").split(/[,;\s]+/).filter(Boolean).map(Number),
  );
  // Guests of this node, plus ids that exist nowhere (they fail visibly).
  const local = all
    ? [...c.guests.values()].filter((g) =>
      g.node === node && !exclude.has(g.vmid)
    ).map((g) => g.vmid).sort((a, b) => a - b)
    : vmidList!.split(/[,;\s]+/).filter(Boolean).map(Number).filter((id) => {
      const g = c.guests.get(id);
      return !g || g.node === node;
    });
  if (local.length === 0) return "OK";
  const o: DumpOptions = {
    storage: str(req, "storage") ?? "local",
    mode: str(req, "mode") ?? "snapshot",
    compress: str(req, "compress") ?? "0",
    notes: str(req, "notes-template"),
    protected: bool(req, "protected") ?? false,
  };
  return c.startTask({
    node,
    type: "vzdump",
    id: local.length === 1 ? local[0] : "",
    user: req.user,
  }, async (t) => {
    const s = c.storages.find((x) =>
      x.storage === o.storage && (!x.nodes || x.nodes.includes(node))
    );
    if (!s) throw new Error(`storage '${o.storage}' does not exist`);
    if (!s.content.includes("backup")) {
      throw new Error(
        `can't use storage '${o.storage}' for backups - wrong content type`,
      );
    }
    t.log(
      `INFO: starting new backup job: vzdump ${
        local.join(" ")
      } --mode ${o.mode} --compress ${o.compress} --storage ${o.storage} --node ${node}`,
    );
    let failed = 0;
    for (const vmid of local) {
      const g = c.guests.get(vmid);
      try {
        if (!g) {
          throw new Error(
            `unable to find configuration file for VM ${vmid} on node '${node}'`,
          );
        }
        await dumpGuest(c, t, g, o, s);
      } catch (e) {
        failed++;
        t.log(
          `ERROR: Backup of VM ${vmid} failed - ${(e as Error).message}`,
        );
      }
    }
    if (failed) throw new Error("job errors");
    t.log("INFO: Backup job finished successfully");
  });
}

/** A backup volume visible on the node, or PVE's error. */
function archiveOn(c: Cluster, node: string, volid: string): Volume {
  const id = volid.split(":")[0];
  const s = c.storage(id, node);
  const v = c.volumesOn(s, node).find((x) => x.volid === volid);
  if (!v || v.content !== "backup" || !v.backup) {
    throw new SimError(500, `volume '${volid}' does not exist`);
  }
  return v;
}

/** The restored config: disks renamed to the new vmid on their storage. */
function restoredConfig(
  c: Cluster,
  node: string,
  vmid: number,
  archive: Volume,
  target: string | undefined,
  t: TaskHandle,
): Record<string, ConfigValue> {
  const src = archive.backup!;
  const config = structuredClone(src.config);
  delete config.parent;
  delete config.lock;
  const base = config.template === 1 ? "base" : "vm";
  let n = 0;
  for (const { key, volid } of diskVolumes(config)) {
    const storage = target ?? volid.split(":")[0];
    const s = c.storage(storage, node);
    const wanted = src.type === "qemu" ? "images" : "rootdir";
    if (!s.content.includes(wanted)) {
      throw new Error(
        `storage '${storage}' does not support ${
          src.type === "qemu" ? "vm images" : "container directories"
        }`,
      );
    }
    const rest = String(config[key]).split(",").slice(1);
    const name = `${base}-${vmid}-disk-${n++}`;
    // Directory storages keep files per vmid (§2.3).
    const newVolid = s.type === "dir" || s.type === "nfs"
      ? `${storage}:${vmid}/${name}.raw`
      : `${storage}:${name}`;
    const size = parseSize(
      rest.find((p) => p.startsWith("size="))?.slice(5) ?? "0",
    );
    t.log(`new volume ID is '${newVolid}'`);
    c.volumes.push({
      storage,
      node,
      volid: newVolid,
      content: src.type === "qemu" ? "images" : "rootdir",
      format: "raw",
      size,
      ctime: Math.floor(Date.now() / 1000),
      vmid,
    });
    config[key] = [newVolid, ...rest].join(",");
  }
  // A cloud-init drive is generated anew for the restored vmid.
  for (const [k, v] of Object.entries(config)) {
    if (typeof v === "string" && /^[^:,]+:vm-\d+-cloudinit/.test(v)) {
      config[k] = v.replace(/vm-\d+-cloudinit/, `vm-${vmid}-cloudinit`);
    }
  }
  return config;
}

/** Removes a guest's disk volumes (overwrite by a restore). */
function dropDisks(c: Cluster, g: Guest): void {
  const vols = new Set(diskVolumes(g.config).map((d) => d.volid));
  c.volumes = c.volumes.filter((v) => !vols.has(v.volid));
}

/** Request keys that are not config overrides on a restore. */
const RESTORE_CONTROL = new Set([
  "node",
  "vmid",
  "archive",
  "ostemplate",
  "restore",
  "storage",
  "force",
  "unique",
  "pool",
  "bwlimit",
  "start",
  "live-restore",
  "ignore-unpack-errors",
  // Not modelled: mount points always follow the backup (on `storage`).
  "rootfs",
]);

function overrides(
  req: SimRequest,
  type: GuestType,
): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = {};
  for (const [k, v] of Object.entries(req.params)) {
    if (RESTORE_CONTROL.has(k)) continue;
    out[k] = Array.isArray(v)
      ? v.join(",")
      : typeof v === "boolean"
      ? (v ? 1 : 0)
      : /^\d+$/.test(String(v)) && !(type === "qemu" && k === "memory")
      ? Number(v)
      : String(v);
  }
  return out;
}

/** Puts the restored guest in place and optionally starts it. */
async function finishRestore(
  c: Cluster,
  t: TaskHandle,
  init: {
    vmid: number;
    type: GuestType;
    node: string;
    config: Record<string, ConfigValue>;
    start: boolean;
  },
): Promise<void> {
  await t.step();
  const restored = newGuest({
    vmid: init.vmid,
    type: init.type,
    node: init.node,
    config: init.config,
  });
  c.guests.set(init.vmid, restored);
  if (init.start) {
    t.log(`starting ${init.type === "qemu" ? "VM" : "CT"} ${init.vmid}`);
    await t.step();
    restored.status = "running";
    if (init.type === "qemu") restored.qmpstatus = "running";
    restored.startedAt = Date.now();
  }
}

/**
 * `POST /nodes/{node}/qemu` with `archive`: a qmrestore task. Sync errors:
 * disk keys beside archive, an existing vmid without force; in the task:
 * a running VM with force.
 */
export function restoreQemu(req: SimRequest): string {
  const c = req.cluster;
  const node = str(req, "node")!;
  const vmid = int(req, "vmid")!;
  const archiveId = str(req, "archive")!;
  const force = bool(req, "force") ?? false;
  const disks = Object.keys(req.params).filter((k) => DISK_KEY.test(k));
  if (disks.length) {
    throw SimError.param(
      Object.fromEntries(
        disks.map((k) => [k, "option conflicts with option 'archive'"]),
      ),
    );
  }
  const emsg = `unable to restore VM ${vmid} -`;
  const existing = c.guests.get(vmid);
  if (
    existing &&
    (!force || existing.node !== node || existing.type !== "qemu")
  ) {
    throw new SimError(
      500,
      `${emsg} ${
        existing.type === "qemu" ? "VM" : "CT"
      } ${vmid} already exists on node '${existing.node}'`,
    );
  }
  const archive = archiveOn(c, node, archiveId);
  const target = str(req, "storage");
  const start = bool(req, "start") ?? false;
  const over = overrides(req, "qemu");
  // The placeholder guest holds lock `create` while the task runs.
  const holder = existing ?? newGuest({ vmid, type: "qemu", node, config: {} });
  if (!existing) {
    c.guests.set(vmid, holder);
    holder.lock = "create";
  }
  return c.startTask(
    { node, type: "qmrestore", id: vmid, user: req.user },
    async (t) => {
      if (existing) {
        if (existing.status === "running") {
          throw new Error(
            `${emsg} vm is running`,
          );
        }
        if (existing.lock) {
          throw new Error(
            `${emsg} VM is locked (${existing.lock})`,
          );
        }
        existing.lock = "create";
      }
      await restoring(
        c,
        { guest: holder, placeholder: !existing },
        async () => {
          if (archive.backup!.type !== "qemu") {
            throw new Error(
              `${emsg} archive '${archiveId}' is not a QEMU backup`,
            );
          }
          // Overwriting: the old VM's disks go first (PVE destroys it).
          if (existing) dropDisks(c, existing);
          const file = archiveId.slice(archiveId.indexOf(":backup/") + 8);
          t.log(
            c.storage(archive.storage).type === "pbs"
              ? `restore proxmox backup image: /usr/bin/pbs-restore --repository root@pam@pbs:store ${file} drive-scsi0.img.fidx --verbose --format raw --skip-zero`
              : `restore vma archive: zstd -q -d -c ${
                storagePath(c.storage(archive.storage))
              }/dump/${file} | vma extract -v -r /var/tmp/vzdumptmp${vmid}.fifo - /var/tmp/vzdumptmp${vmid}`,
          );
          const config = {
            ...restoredConfig(c, node, vmid, archive, target, t),
            ...over,
          };
          if (bool(req, "unique")) {
            for (
              const k of Object.keys(config).filter((k) => /^net\d+$/.test(k))
            ) {
              config[k] = String(config[k]).replace(
                /([a-z0-9]+)=([0-9A-F:]{17})/i,
                (_, model: string) => `${model}=${newMacLike(vmid, k)}`,
              );
            }
          }
          t.log("rescan volumes...");
          await finishRestore(
            c,
            t,
            { vmid, type: "qemu", node, config, start },
          );
        },
      );
    },
  );
}

/**
 * `POST /nodes/{node}/lxc` with `restore=1`: a vzrestore task. Sync errors:
 * an existing vmid without force (no `unable to ...` prefix, as PVE), a
 * running container with force, a target storage without rootdir.
 */
export function restoreLxc(req: SimRequest): string {
  const c = req.cluster;
  const node = str(req, "node")!;
  const vmid = int(req, "vmid")!;
  const archiveId = str(req, "ostemplate")!;
  const force = bool(req, "force") ?? false;
  const existing = c.guests.get(vmid);
  const same = existing?.node === node && existing.type === "lxc";
  if (existing && !(same && force)) {
    throw new SimError(
      500,
      `${
        existing.type === "qemu" ? "VM" : "CT"
      } ${vmid} already exists on node '${existing.node}'`,
    );
  }
  if (existing && existing.status === "running") {
    throw new SimError(500, "can't overwrite running container");
  }
  if (existing) c.checkLock(existing);
  const archive = archiveOn(c, node, archiveId);
  // PVE puts every mount point on `storage`, which defaults to `local`.
  const target = str(req, "storage") ?? "local";
  const ts = c.storage(target, node);
  if (!ts.content.includes("rootdir")) {
    throw SimError.param({
      storage: `storage '${target}' does not support container directories`,
    });
  }
  const start = bool(req, "start") ?? false;
  const over = overrides(req, "lxc");
  const holder = existing ?? newGuest({ vmid, type: "lxc", node, config: {} });
  if (!existing) c.guests.set(vmid, holder);
  holder.lock = "create";
  return c.startTask(
    { node, type: "vzrestore", id: vmid, user: req.user },
    async (t) => {
      await restoring(
        c,
        { guest: holder, placeholder: !existing },
        async () => {
          if (archive.backup!.type !== "lxc") {
            throw new Error(
              `unable to restore CT ${vmid} - archive '${archiveId}' is not a container backup`,
            );
          }
          t.log(`recovering backed-up configuration from '${archiveId}'`);
          if (existing) dropDisks(c, existing);
          const config = {
            ...restoredConfig(c, node, vmid, archive, target, t),
            ...over,
          };
          t.log(`restoring '${archiveId}' now..`);
          t.log("Detected container architecture: amd64");
          t.log("merging backed-up and given configuration..");
          await finishRestore(
            c,
            t,
            { vmid, type: "lxc", node, config, start },
          );
        },
      );
    },
  );
}

/**
 * A restore task's work on `holder.guest` (the guest restored over, or a
 * placeholder): a placeholder still in place when the work fails is removed,
 * and the `create` lock goes either way.
 */
async function restoring(
  c: Cluster,
  holder: { guest: Guest; placeholder: boolean },
  work: () => Promise<void>,
): Promise<void> {
  const { guest } = holder;
  try {
    await work();
  } catch (e) {
    if (holder.placeholder && c.guests.get(guest.vmid) === guest) {
      c.guests.delete(guest.vmid);
    }
    throw e;
  } finally {
    delete guest.lock;
  }
}

/** A MAC with PVE's prefix, derived from vmid and interface (for unique=1). */
function newMacLike(vmid: number, key: string): string {
  const n = (vmid * 32 + Number(key.slice(3))) & 0xffffff;
  const b = [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff].map((x) =>
    x.toString(16).toUpperCase().padStart(2, "0")
  );
  return `BC:24:11:${b.join(":")}`;
}

export const BACKUP_ROUTES: Route[] = [
  { method: "POST", path: "/nodes/{node}/vzdump", handler: vzdump },
];

/**
 * `POST /nodes/{node}/qemu` while QEMU VM creation has no handler: restores
 * only (plain creation answers 501). `POST /nodes/{node}/lxc` lives in
 * create.ts, which hands `restore=1` to restoreLxc. When a QEMU create route
 * exists, it should call restoreQemu for `archive` and this one goes away.
 */
export const RESTORE_ROUTES: Route[] = [
  {
    method: "POST",
    path: "/nodes/{node}/qemu",
    handler: (req) => {
      if (str(req, "archive") !== undefined) return restoreQemu(req);
      throw new SimError(501, "Creating VMs is not simulated (restore only)");
    },
  },
];

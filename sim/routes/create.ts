/**
 * Creating guests: QEMU clone (SEMANTICS §4.6: linked-clone rules, `lock:
 * clone` on the new VM while the task runs, new MACs) and LXC create from an
 * `ostemplate` (§5: the `local` rootdir gotcha, `lock: create`, a missing
 * template failing inside the task like tar does).
 *
 * POST /nodes/{node}/lxc also restores backups (`restore=1`, issue 4): this
 * file only creates; `createLxc` is exported so that a restore route can hand
 * plain creates over to it.
 */
import {
  bool,
  type Handler,
  int,
  type Route,
  type SimRequest,
  str,
} from "../router.ts";
import { type Distro, makeGuestOs, newGuest, newMac } from "../seed.ts";
import {
  type Cluster,
  type ConfigValue,
  formatSize,
  type Guest,
  parsePropString,
  parseSize,
  SimError,
  type StorageDef,
  type TaskHandle,
} from "../state.ts";
import { guestName } from "../views.ts";
import { guestVolids, kindOf, powerOn, validSshKeys } from "./lifecycle.ts";

const GIB = 1024 ** 3;

/** `VM 100 already exists on node 'pve1'` when the vmid is taken anywhere. */
function vmidTaken(c: Cluster, vmid: number): string | undefined {
  const g = c.guests.get(vmid);
  return g && `${kindOf(g.type)} ${vmid} already exists on node '${g.node}'`;
}

/** The next free `vm-<vmid>-disk-<n>` on a storage. */
function diskName(c: Cluster, s: StorageDef, vmid: number): string {
  let n = 0;
  const taken = (i: number) =>
    c.volumes.some((v) =>
      v.storage === s.storage &&
      new RegExp(`[:/]vm-${vmid}-disk-${i}(\\.\\w+)?$`).test(v.volid)
    );
  while (taken(n)) n++;
  return `vm-${vmid}-disk-${n}`;
}

/** A new volume on a storage (qcow2 files on directory storage). */
function newVolid(
  c: Cluster,
  s: StorageDef,
  vmid: number,
  format?: string,
): string {
  const name = diskName(c, s, vmid);
  return s.type === "dir" || s.type === "nfs"
    ? `${s.storage}:${vmid}/${name}.${format ?? "qcow2"}`
    : `${s.storage}:${name}`;
}

function addVolume(
  c: Cluster,
  g: Guest,
  volid: string,
  size: number,
  content = "images",
): void {
  const storage = c.storage(volid.split(":")[0]);
  c.volumes.push({
    storage: storage.storage,
    node: g.node,
    volid,
    content,
    format: /\.qcow2$/.test(volid) ? "qcow2" : "raw",
    size,
    ctime: Math.floor(Date.now() / 1000),
    vmid: g.vmid,
  });
}

const human = (b: number) =>
  b >= GIB
    ? `${(b / GIB).toFixed(1)} GiB`
    : `${(b / 1024 ** 2).toFixed(1)} MiB`;

// ---------------------------------------------------------------- clone

function cloneRoute(): Route {
  return {
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/clone",
    handler: (req) => {
      const c = req.cluster;
      const node = str(req, "node")!;
      const src = c.guest(node, "qemu", int(req, "vmid")!);
      const newid = int(req, "newid")!;
      let target = str(req, "target");
      if (target === node) target = undefined;
      if (target !== undefined && !c.nodes.has(target)) {
        throw new SimError(500, `no such cluster node '${target}'`);
      }
      c.checkLock(src);
      const snapname = str(req, "snapname");
      if (snapname !== undefined && !src.snapshots.has(snapname)) {
        throw new SimError(500, `snapshot '${snapname}' does not exist`);
      }
      const isTemplate = src.config.template === 1;
      const full = bool(req, "full") ?? !isTemplate;
      const storageId = str(req, "storage");
      const format = str(req, "format");
      if (storageId !== undefined && !full) {
        throw new SimError(
          500,
          "parameter 'storage' not allowed for linked clones",
        );
      }
      if (format !== undefined && !full) {
        throw new SimError(
          500,
          "parameter 'format' not allowed for linked clones",
        );
      }
      const dest = target ?? node;
      const storage = storageId !== undefined
        ? c.storage(storageId, dest)
        : undefined;
      if (storage && !storage.content.includes("images")) {
        throw new SimError(
          500,
          `storage '${storage.storage}' does not support vm images`,
        );
      }
      const oldconf = snapname
        ? src.snapshots.get(snapname)!.config
        : src.config;
      const disks = guestVolids(oldconf);
      const shared = disks.every(({ volid }) =>
        c.storages.find((s) => s.storage === volid.split(":")[0])?.shared
      );
      if (target && !shared) {
        throw new SimError(
          500,
          `can't clone VM to node '${target}' (VM uses local storage)`,
        );
      }
      if (target && storage && !storage.shared) {
        throw new SimError(
          500,
          `can't clone to non-shared storage '${storage.storage}'`,
        );
      }
      const existing = c.guests.get(newid);
      if (existing && existing.node === node && existing.type === "qemu") {
        throw new SimError(
          500,
          `unable to create VM ${newid}: config file already exists`,
        );
      }
      if (!full && !isTemplate) {
        const d = disks.find((x) => !/cloudinit/.test(x.volid));
        throw new SimError(
          500,
          `Linked clone feature is not supported for '${d?.volid}' (${d?.key})`,
        );
      }
      let clone: Guest | undefined;
      if (!existing) clone = newClone(req, src, oldconf, newid);
      return c.startTask(
        { node, type: "qmclone", id: src.vmid, user: req.user },
        async (t) => {
          // A vmid taken on another node fails inside the task.
          if (!clone) throw new Error(vmidTaken(c, newid)!);
          try {
            await copyDisks(c, t, clone, oldconf, { full, storage, format });
            if (target) {
              t.log(`moving config to node '${target}'`);
              clone.node = target;
            }
          } catch (e) {
            // PVE removes a half-made clone.
            c.guests.delete(newid);
            c.volumes = c.volumes.filter((v) => v.vmid !== newid);
            throw e;
          }
          delete clone.lock;
        },
      );
    },
  };
}

/** The new VM as PVE writes it at once: copied config, `lock: clone`. */
function newClone(
  req: SimRequest,
  src: Guest,
  oldconf: Record<string, ConfigValue>,
  newid: number,
): Guest {
  const config: Record<string, ConfigValue> = {};
  for (const [k, v] of Object.entries(oldconf)) {
    if (/^(template|parent|snaptime|vmstate|snapstate|lock)$/.test(k)) continue;
    if (/^unused\d+$/.test(k)) continue;
    if (guestVolids({ [k]: v }).length) continue; // disks come with the task
    config[k] = v;
  }
  let mac = "";
  for (const k of Object.keys(config)) {
    if (!/^net\d+$/.test(k)) continue;
    const m = newMac();
    if (k === "net0") mac = m;
    config[k] = String(config[k]).replace(
      /^(\w+)=[0-9A-Fa-f:]{17}/,
      `$1=${m}`,
    );
  }
  if (config.smbios1) {
    config.smbios1 = String(config.smbios1).replace(
      /uuid=[^,]*/,
      `uuid=${crypto.randomUUID()}`,
    );
  }
  if (config.vmgenid) config.vmgenid = crypto.randomUUID();
  config.name = str(req, "name") ?? `Copy-of-VM-${guestName(src)}`;
  const description = str(req, "description");
  if (description !== undefined) {
    config.description = description.endsWith("\n")
      ? description
      : description + "\n";
  }
  // A clone of a cloud image with the agent boots an OS that answers it.
  const distro = /ubuntu|alpine|rocky|arch/.exec(guestName(src))?.[0] ??
    "debian";
  const guestOs = src.guestOs
    ? structuredClone(src.guestOs)
    : config.agent !== undefined
    ? makeGuestOs(
      distro as Distro,
      `192.168.1.${newid % 250}`,
      mac || newMac(),
    )
    : undefined;
  const g = newGuest({
    vmid: newid,
    type: "qemu",
    node: src.node,
    status: "stopped",
    config,
    guestOs,
  });
  g.firewall = structuredClone(src.firewall);
  g.lock = "clone";
  req.cluster.guests.set(newid, g);
  return g;
}

async function copyDisks(
  c: Cluster,
  t: TaskHandle,
  clone: Guest,
  oldconf: Record<string, ConfigValue>,
  opts: { full: boolean; storage?: StorageDef; format?: string },
): Promise<void> {
  const newid = clone.vmid;
  for (const { key, volid } of guestVolids(oldconf)) {
    const drive = String(oldconf[key]);
    const rest = drive.slice(volid.length);
    const size = parseSize(parsePropString(rest).size ?? "0");
    const storage = opts.storage ?? c.storage(volid.split(":")[0]);
    if (/cloudinit/.test(volid)) {
      const ci = `${storage.storage}:vm-${newid}-cloudinit`;
      t.log(`create full clone of drive ${key} (${volid})`);
      addVolume(c, clone, ci, 4 * 1024 ** 2);
      clone.config[key] = ci + rest;
      continue;
    }
    if (!opts.full) {
      t.log(`create linked clone of drive ${key} (${volid})`);
      const newVol = `${volid}/${diskName(c, storage, newid)}`;
      t.log(`  Logical volume "${newVol.split("/").at(-1)}" created.`);
      addVolume(c, clone, newVol, size);
      clone.config[key] = newVol + rest;
      await t.step();
      continue;
    }
    t.log(`create full clone of drive ${key} (${volid})`);
    const newVol = newVolid(c, storage, newid, opts.format);
    t.log(`  Logical volume "${newVol.split(/[:/]/).at(-1)}" created.`);
    const steps = 4;
    for (let i = 0; i <= steps; i++) {
      if (i) await t.step();
      const done = (size * i) / steps;
      t.log(
        `transferred ${human(done)} of ${human(size)} (${
          ((100 * i) / steps).toFixed(2)
        }%)`,
      );
    }
    addVolume(c, clone, newVol, size);
    clone.config[key] = newVol + rest;
  }
}

// ---------------------------------------------------------------- LXC

/** `POST /nodes/{node}/lxc` without `restore`: a new container. */
export function createLxc(req: SimRequest): string {
  const c = req.cluster;
  const node = str(req, "node")!;
  const vmid = int(req, "vmid")!;
  const taken = vmidTaken(c, vmid);
  // LXC has no "unable to create CT" prefix here (§5).
  if (taken) throw new SimError(500, taken);
  const ostemplate = str(req, "ostemplate")!;
  const storageId = str(req, "storage") ?? "local";
  const rootfsSpec = str(req, "rootfs") ?? `${storageId}:4`;
  const rootfs = parsePropString(rootfsSpec, "volume");
  const [rsId, rsSize] = rootfs.volume.includes(":")
    ? rootfs.volume.split(":")
    : [storageId, rootfs.volume];
  const rs = c.storage(rsId, node);
  if (!rs.content.includes("rootdir")) {
    throw SimError.param({
      storage: `storage '${rs.storage}' does not support container directories`,
    });
  }
  const keys = str(req, "ssh-public-keys");
  if (keys !== undefined && !validSshKeys(keys)) {
    throw new SimError(500, "SSH public key validation error");
  }
  const hostname = str(req, "hostname") ?? `CT${vmid}`;
  const config: Record<string, ConfigValue> = {
    arch: str(req, "arch") ?? "amd64",
    cores: int(req, "cores") ?? 1,
    hostname,
    memory: int(req, "memory") ?? 512,
    swap: int(req, "swap") ?? 512,
    ostype: str(req, "ostype") ??
      (/ubuntu|alpine|centos|fedora|archlinux|rocky/.exec(ostemplate)?.[0] ??
        "debian"),
  };
  // The handler defaults to unprivileged even though the schema says 0.
  config.unprivileged = (bool(req, "unprivileged") ?? true) ? 1 : 0;
  for (
    const k of [
      "features",
      "nameserver",
      "searchdomain",
      "tags",
      "timezone",
    ]
  ) {
    const v = str(req, k);
    if (v !== undefined) config[k] = v;
  }
  for (const k of ["onboot", "protection"]) {
    const v = bool(req, k);
    if (v !== undefined) config[k] = v ? 1 : 0;
  }
  const description = str(req, "description");
  if (description !== undefined) {
    config.description = description.endsWith("\n")
      ? description
      : description + "\n";
  }
  for (const k of Object.keys(req.params)) {
    if (!/^net\d+$/.test(k)) continue;
    const net = str(req, k)!;
    config[k] = /hwaddr=/.test(net)
      ? net
      : net.replace(/(bridge=[^,]*)/, `$1,hwaddr=${newMac()}`) +
        (/type=/.test(net) ? "" : ",type=veth");
  }
  const g = newGuest({ vmid, type: "lxc", node, status: "stopped", config });
  g.lock = "create";
  c.guests.set(vmid, g);
  const start = bool(req, "start") ?? false;
  const sizeGib = Number(rsSize || 4);
  return c.startTask(
    { node, type: "vzcreate", id: vmid, user: req.user },
    async (t) => {
      try {
        const volid = newVolid(c, rs, vmid, "raw");
        const name = volid.split(/[:/]/).at(-1);
        t.log(`  Logical volume "${name}" created.`);
        const blocks = sizeGib * 262144;
        t.log(
          `Creating filesystem with ${blocks} 4k blocks and ${
            blocks / 4
          } inodes`,
        );
        const file = `/var/lib/vz/template/cache/${
          ostemplate.split("/").at(-1)
        }`;
        t.log(`extracting archive '${file}'`);
        await t.step();
        const tpl = c.volumes.find((v) =>
          v.volid === ostemplate && v.content === "vztmpl" &&
          (v.node === node || c.storage(v.storage).shared)
        );
        if (!tpl) {
          t.log(`tar: ${file}: Cannot open: No such file or directory`);
          t.log("tar: Error is not recoverable: exiting now");
          throw new Error(
            `unable to create CT ${vmid} - command 'lxc-usernsexec -m u:0:100000:65536 -m g:0:100000:65536 -- tar xpf - --totals --one-file-system -p --sparse --numeric-owner --acls --xattrs -C /var/lib/lxc/${vmid}/rootfs --skip-old-files --anchored --exclude './dev/*'' failed: exit code 2`,
          );
        }
        t.log(
          `Total bytes read: ${tpl.size * 4} (${
            Math.round(tpl.size * 4 / 1024 ** 2)
          }MiB, 180MiB/s)`,
        );
        t.log(`Detected container architecture: ${config.arch}`);
        t.log(
          "Creating SSH host key 'ssh_host_ed25519_key' - this may take some time ...",
        );
        await t.step();
        t.log(`done: SHA256:${crypto.randomUUID()} root@${hostname}`);
        g.config.rootfs = `${volid},size=${formatSize(sizeGib * GIB)}`;
        addVolume(c, g, volid, sizeGib * GIB, "rootdir");
        delete g.lock;
        if (start) {
          await t.step();
          powerOn(g);
        }
      } catch (e) {
        if (g.lock === "create") {
          c.guests.delete(vmid);
          c.volumes = c.volumes.filter((v) => v.vmid !== vmid);
        }
        throw e;
      }
    },
  );
}

/**
 * `POST /nodes/{node}/lxc`: creates here, and hands `restore=1` to the
 * backup area's restore handler when one is given.
 */
export function lxcCreateRoute(restore?: Handler): Route {
  return {
    method: "POST",
    path: "/nodes/{node}/lxc",
    handler: (req) =>
      restore && bool(req, "restore") ? restore(req) : createLxc(req),
  };
}

export const CLONE_ROUTES: Route[] = [cloneRoute()];

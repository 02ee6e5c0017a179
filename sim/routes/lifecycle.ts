/**
 * Guest lifecycle (SEMANTICS §4.3, §4.5, §4.8, §4.9, §5, §10): power (start,
 * stop, shutdown, reboot, resume), config changes with pending semantics,
 * disk resize, migration between nodes and delete, for QEMU and LXC with
 * their differences (which errors are sync and which end the task).
 */
import { createHash } from "node:crypto";
import { bool, int, type Route, type SimRequest, str } from "../router.ts";
import {
  type Cluster,
  type ConfigValue,
  formatSize,
  type Guest,
  type GuestType,
  parsePropString,
  parseSize,
  SimError,
  type TaskHandle,
} from "../state.ts";
import { digestOf } from "../views.ts";

/** `VM` for QEMU, `CT` for LXC, as PVE's messages say. */
export const kindOf = (t: GuestType): string => (t === "qemu" ? "VM" : "CT");

function nodeOf(req: SimRequest): string {
  return str(req, "node")!;
}

function guestOf(req: SimRequest, type: GuestType): Guest {
  return req.cluster.guest(nodeOf(req), type, int(req, "vmid")!);
}

/** `skiplock` and other root-only options: never for tokens (§1.3). */
function rootOnly(req: SimRequest, name: string): boolean {
  const v = bool(req, name) ?? false;
  if (v && (req.isToken || req.user !== "root@pam")) {
    throw SimError.param({ [name]: "Only root may use this option." });
  }
  return v;
}

/** Moves pending changes into the config (at start and reboot). */
export function applyPending(g: Guest): void {
  Object.assign(g.config, g.pending);
  for (const k of g.pendingDelete) delete g.config[k];
  g.pending = {};
  g.pendingDelete = [];
}

/** Boots a guest: pending changes applied, cloud-init network configured. */
export function powerOn(g: Guest): void {
  applyPending(g);
  g.status = "running";
  if (g.type === "qemu") g.qmpstatus = "running";
  g.startedAt = Date.now();
  g.io = { netin: 0, netout: 0, diskread: 0, diskwrite: 0 };
  const ip = parsePropString(String(g.config.ipconfig0 ?? "")).ip;
  const eth0 = g.guestOs?.interfaces.find((i) => i.name === "eth0");
  const m = /^([\d.]+)\/(\d+)$/.exec(ip ?? "");
  if (eth0 && m && hasCloudInit(g)) {
    eth0["ip-addresses"] = [
      { "ip-address": m[1], "ip-address-type": "ipv4", prefix: Number(m[2]) },
    ];
  }
}

export function powerOff(g: Guest): void {
  g.status = "stopped";
  if (g.type === "qemu") g.qmpstatus = "stopped";
  g.startedAt = undefined;
}

export function hasCloudInit(g: Guest): boolean {
  return Object.values(g.config).some((v) =>
    typeof v === "string" && /cloudinit/.test(v.split(",")[0])
  );
}

/** The lock check inside a task: a suspended lock is not in the way. */
function taskLockCheck(c: Cluster, g: Guest, skiplock: boolean): void {
  if (!skiplock && g.lock !== "suspended") c.checkLock(g);
}

// ---------------------------------------------------------------- power

/** A clean shutdown taking `timeout` s (compressed: one task step per s). */
async function shutdown(
  c: Cluster,
  t: TaskHandle,
  g: Guest,
  timeout: number,
  forceStop: boolean,
): Promise<void> {
  if (!g.ignoresShutdown) {
    await t.step();
    powerOff(g);
    return;
  }
  await t.step(timeout * c.taskMs);
  if (!forceStop) {
    // LXC's wording is inferred from vm_stop; QEMU's is from qemu-server.
    throw new Error(
      g.type === "qemu"
        ? "VM quit/powerdown failed - got timeout"
        : "container did not stop",
    );
  }
  if (g.type === "qemu") {
    t.warn("VM quit/powerdown failed - terminating now with SIGTERM");
  }
  powerOff(g);
}

/**
 * What a power call reads first: skiplock and then the `rootOnly` flags
 * (only root@pam may set them), the node and the vmid.
 */
function powerArgs(req: SimRequest, rootOnlyFlags: readonly string[] = []) {
  const skiplock = rootOnly(req, "skiplock");
  for (const flag of rootOnlyFlags) rootOnly(req, flag);
  return {
    skiplock,
    c: req.cluster,
    node: nodeOf(req),
    vmid: int(req, "vmid")!,
  };
}

function qemuPower(): Route[] {
  const base = "/nodes/{node}/qemu/{vmid}/status";
  return [
    {
      method: "POST",
      path: `${base}/start`,
      handler: (req) => {
        const { skiplock, c, node, vmid } = powerArgs(req);
        // Every precondition is checked inside the task (§4.5).
        return c.startTask(
          { node, type: "qmstart", id: vmid, user: req.user },
          (t) => {
            const g = c.guest(node, "qemu", vmid);
            if (g.status === "running") {
              throw new Error(`VM ${vmid} already running`);
            }
            if (g.config.template === 1) {
              throw new Error("you can't start a vm if it's a template");
            }
            taskLockCheck(c, g, skiplock);
            if (g.lock === "suspended") {
              t.log("resuming suspended VM");
              delete g.lock;
            }
            if (hasCloudInit(g)) t.log("generating cloud-init ISO");
            powerOn(g);
          },
        );
      },
    },
    {
      method: "POST",
      path: `${base}/stop`,
      handler: (req) => {
        const { skiplock, c, node, vmid } = powerArgs(req, ["keepActive"]);
        return c.startTask(
          { node, type: "qmstop", id: vmid, user: req.user },
          () => {
            const g = c.guest(node, "qemu", vmid);
            taskLockCheck(c, g, skiplock);
            // Stopping a stopped VM is a no-op: task OK.
            if (g.status === "running") powerOff(g);
          },
        );
      },
    },
    {
      method: "POST",
      path: `${base}/shutdown`,
      handler: (req) => {
        const { skiplock, c, node, vmid } = powerArgs(req, ["keepActive"]);
        const g = c.guests.get(vmid);
        if (!g || g.node !== node || g.type !== "qemu") {
          throw new SimError(
            500,
            `unable to find configuration file for VM ${vmid} on node '${node}'`,
          );
        }
        const forceStop = bool(req, "forceStop") ?? false;
        const timeout = int(req, "timeout") ?? 60;
        if (g.qmpstatus === "paused" && !forceStop) {
          throw new SimError(500, "VM is paused - cannot shutdown");
        }
        return c.startTask(
          { node, type: "qmshutdown", id: vmid, user: req.user },
          async (t) => {
            taskLockCheck(c, g, skiplock);
            if (g.status !== "running") return; // not running: OK
            if (g.qmpstatus === "paused") {
              powerOff(g);
              return;
            }
            await shutdown(c, t, g, timeout, forceStop);
          },
        );
      },
    },
    {
      method: "POST",
      path: `${base}/reboot`,
      handler: (req) => {
        const c = req.cluster;
        const g = guestOf(req, "qemu");
        if (g.status !== "running") {
          throw new SimError(500, `VM ${g.vmid} not running`);
        }
        if (g.qmpstatus === "paused") {
          throw new SimError(500, "VM is paused - cannot shutdown");
        }
        const timeout = int(req, "timeout") ?? 60;
        return c.startTask(
          { node: g.node, type: "qmreboot", id: g.vmid, user: req.user },
          async (t) => {
            c.checkLock(g);
            await shutdown(c, t, g, timeout, false);
            await t.step();
            powerOn(g); // applies pending changes
          },
        );
      },
    },
    {
      method: "POST",
      path: `${base}/resume`,
      handler: (req) => {
        const skiplock = rootOnly(req, "skiplock");
        const c = req.cluster;
        const g = guestOf(req, "qemu");
        if (g.status !== "running") {
          throw new SimError(500, `VM ${g.vmid} not running`);
        }
        return c.startTask(
          { node: g.node, type: "qmresume", id: g.vmid, user: req.user },
          () => {
            taskLockCheck(c, g, skiplock);
            g.qmpstatus = "running";
          },
        );
      },
    },
  ];
}

function lxcPower(): Route[] {
  const base = "/nodes/{node}/lxc/{vmid}/status";
  /** check_running needs no config: a missing CT is "not running". */
  const running = (req: SimRequest) => {
    const g = req.cluster.guests.get(int(req, "vmid")!);
    return g?.node === nodeOf(req) && g.type === "lxc" &&
      g.status === "running";
  };
  return [
    {
      method: "POST",
      path: `${base}/start`,
      handler: (req) => {
        const { skiplock, c, node, vmid } = powerArgs(req);
        if (running(req)) throw new SimError(500, `CT ${vmid} already running`);
        return c.startTask(
          { node, type: "vzstart", id: vmid, user: req.user },
          () => {
            const g = c.guest(node, "lxc", vmid);
            if (g.config.template === 1) {
              throw new Error("you can't start a CT if it's a template");
            }
            taskLockCheck(c, g, skiplock);
            powerOn(g);
          },
        );
      },
    },
    {
      method: "POST",
      path: `${base}/stop`,
      handler: (req) => {
        const { skiplock, c, node, vmid } = powerArgs(req);
        if (!running(req)) throw new SimError(500, `CT ${vmid} not running`);
        return c.startTask(
          { node, type: "vzstop", id: vmid, user: req.user },
          () => {
            const g = c.guest(node, "lxc", vmid);
            if (g.lock !== "mounted") taskLockCheck(c, g, skiplock);
            powerOff(g);
          },
        );
      },
    },
    {
      method: "POST",
      path: `${base}/shutdown`,
      handler: (req) => {
        const c = req.cluster;
        const node = nodeOf(req);
        const vmid = int(req, "vmid")!;
        if (!running(req)) throw new SimError(500, `CT ${vmid} not running`);
        const timeout = int(req, "timeout") ?? 60;
        const forceStop = bool(req, "forceStop") ?? false;
        return c.startTask(
          { node, type: "vzshutdown", id: vmid, user: req.user },
          async (t) => {
            const g = c.guest(node, "lxc", vmid);
            c.checkLock(g);
            await shutdown(c, t, g, timeout, forceStop);
          },
        );
      },
    },
    {
      method: "POST",
      path: `${base}/reboot`,
      handler: (req) => {
        const c = req.cluster;
        const vmid = int(req, "vmid")!;
        // pve-container really says "VM" here.
        if (!running(req)) throw new SimError(500, `VM ${vmid} not running`);
        const g = guestOf(req, "lxc");
        const timeout = int(req, "timeout") ?? 60;
        return c.startTask(
          { node: g.node, type: "vzreboot", id: vmid, user: req.user },
          async (t) => {
            await shutdown(c, t, g, timeout, true);
            await t.step();
            powerOn(g);
          },
        );
      },
    },
  ];
}

// ---------------------------------------------------------------- config

const CONTROL = new Set([
  "node",
  "vmid",
  "delete",
  "revert",
  "force",
  "digest",
  "skiplock",
  "background_delay",
]);
const QEMU_NUMERIC =
  /^(acpi|autostart|balloon|cores|cpuunits|freeze|keephugepages|kvm|localtime|numa|onboot|protection|reboot|shares|sockets|tablet|template|vcpus|ciupgrade)$/;
const LXC_NUMERIC =
  /^(cores|memory|swap|cpuunits|onboot|protection|unprivileged|template|console|tty)$/;
/** Applied at once on a running VM (qemu-server's fast-plug options). */
const QEMU_FASTPLUG =
  /^(name|description|onboot|tags|protection|startup|hookscript|shares|vmstatestorage|migrate_\w+|ciuser|cipassword|citype|ciupgrade|cicustom|nameserver|searchdomain|sshkeys|ipconfig\d+)$/;
/** Applied at once on a running CT (fast-plug plus cgroup/NIC/mp hotplug). */
const LXC_HOTPLUG =
  /^(description|onboot|startup|protection|hostname|hookscript|cores|tags|memory|swap|cpulimit|cpuunits|net\d+|mp\d+)$/;

function qemuHotplug(g: Guest, key: string): boolean {
  if (QEMU_FASTPLUG.test(key)) return true;
  const hp = String(g.config.hotplug ?? "network,disk,usb");
  const on = (f: string) => hp === "1" || hp.split(",").includes(f);
  if (/^net\d+$/.test(key)) return on("network");
  if (/^(scsi|virtio|sata)\d+$/.test(key)) return on("disk");
  if (/^(balloon|cpulimit|cpuunits)$/.test(key)) return true;
  if (key === "vcpus") return on("cpu");
  if (key === "memory") return on("memory") && Number(g.config.numa) === 1;
  return false;
}

const SSH_KEY =
  /^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+[A-Za-z0-9+/]+={0,3}(\s.*)?$/;

/** Checks each key like `ssh-keygen -l` would (syntax only). */
export function validSshKeys(text: string): boolean {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).every((l) =>
    SSH_KEY.test(l)
  );
}

/** A SHA-256 crypt-looking hash (`$5$salt$hash`) of a cloud-init password. */
function cryptSha256(pw: string): string {
  const salt = Array.from(
    crypto.getRandomValues(new Uint8Array(12)),
    (b) =>
      "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[
        b % 64
      ],
  ).join("");
  const hash = createHash("sha256").update(salt + pw).digest("base64")
    .replace(/=+$/, "").replaceAll("+", ".");
  return `$5$${salt}$${hash}`;
}

/** The config changes of a PUT/POST config request, typed like PVE stores them. */
function changesOf(
  req: SimRequest,
  g: Guest,
): { set: Record<string, ConfigValue>; del: string[] } {
  const set: Record<string, ConfigValue> = {};
  const numeric = g.type === "qemu" ? QEMU_NUMERIC : LXC_NUMERIC;
  for (const k of Object.keys(req.params)) {
    if (CONTROL.has(k)) continue;
    const v = str(req, k)!;
    set[k] = numeric.test(k) ? Number(v) : v;
  }
  const del = (str(req, "delete") ?? "").split(/[,;\s]+/).filter(Boolean)
    .map((k) => (k === "cdrom" ? "ide2" : k));
  for (const k of del) {
    if (k in set) {
      throw SimError.param({
        delete: `you can't use '-${k}' and -delete ${k}' at the same time`,
      });
    }
  }
  if (!Object.keys(set).length && !del.length && !str(req, "revert")) {
    throw new SimError(500, "no options specified");
  }
  if (typeof set.description === "string" && !set.description.endsWith("\n")) {
    set.description += "\n";
  }
  if (g.type === "qemu") {
    if (set.sshkeys !== undefined) {
      let text: string;
      try {
        text = decodeURIComponent(String(set.sshkeys));
      } catch {
        text = "";
      }
      if (!validSshKeys(text)) {
        throw new SimError(500, "SSH public key validation error");
      }
    }
    if (
      set.cipassword !== undefined && !/^\$\d\$/.test(String(set.cipassword)) &&
      !/^win/.test(String(g.config.ostype ?? ""))
    ) {
      set.cipassword = cryptSha256(String(set.cipassword));
    }
  }
  return { set, del };
}

/** Writes changes like PVE: to pending, then applied where possible. */
function updateConfig(
  g: Guest,
  set: Record<string, ConfigValue>,
  del: string[],
): void {
  const live = g.status === "running";
  const hot = (k: string) =>
    g.type === "qemu" ? qemuHotplug(g, k) : LXC_HOTPLUG.test(k);
  for (const [k, v] of Object.entries(set)) {
    g.pendingDelete = g.pendingDelete.filter((d) => d !== k);
    if (!live || hot(k)) {
      g.config[k] = v;
      delete g.pending[k];
    } else g.pending[k] = v;
  }
  for (const k of del) {
    delete g.pending[k];
    if (!live || hot(k)) delete g.config[k];
    else if (k in g.config && !g.pendingDelete.includes(k)) {
      g.pendingDelete.push(k);
    }
  }
  // A stopped guest takes every pending change at once.
  if (!live) applyPending(g);
}

function configRoutes(type: GuestType): Route[] {
  const path = `/nodes/{node}/${type}/{vmid}/config`;
  const prepare = (req: SimRequest) => {
    const skiplock = type === "qemu" ? rootOnly(req, "skiplock") : false;
    const g = guestOf(req, type);
    const changes = changesOf(req, g);
    if (!skiplock) req.cluster.checkLock(g);
    const digest = str(req, "digest");
    if (digest !== undefined && digest !== digestOf(g.config)) {
      throw new SimError(
        500,
        type === "qemu"
          ? "checksum mismatch (file change by other user?)"
          : "detected modified configuration - file changed by other user? Try again.",
      );
    }
    return { g, ...changes };
  };
  const routes: Route[] = [
    {
      method: "PUT",
      path,
      handler: (req) => {
        const { g, set, del } = prepare(req);
        updateConfig(g, set, del);
        return null;
      },
    },
  ];
  if (type === "qemu") {
    routes.push({
      method: "POST",
      path,
      handler: (req) => {
        const { g, set, del } = prepare(req);
        return req.cluster.startTask(
          { node: g.node, type: "qmconfig", id: g.vmid, user: req.user },
          () => updateConfig(g, set, del),
        );
      },
    });
  }
  return routes;
}

// ---------------------------------------------------------------- resize

function resizeRoute(): Route {
  return {
    method: "PUT",
    path: "/nodes/{node}/qemu/{vmid}/resize",
    handler: (req) => {
      const skiplock = rootOnly(req, "skiplock");
      const c = req.cluster;
      const g = guestOf(req, "qemu");
      const disk = str(req, "disk")!;
      const size = str(req, "size")!;
      const digest = str(req, "digest");
      // QEMU checks everything inside the task (§4.3).
      return c.startTask(
        { node: g.node, type: "resize", id: g.vmid, user: req.user },
        (t) => {
          if (!skiplock) c.checkLock(g);
          if (digest !== undefined && digest !== digestOf(g.config)) {
            throw new Error("checksum mismatch (file change by other user?)");
          }
          const drive = g.config[disk];
          if (typeof drive !== "string") {
            throw new Error(`disk '${disk}' does not exist`);
          }
          if (drive.includes("media=cdrom")) {
            throw new Error("you can't resize a cdrom");
          }
          const opts = parsePropString(drive);
          const cur = parseSize(opts.size ?? "0");
          const m = /^(\+?)(\d+(?:\.\d+)?[KMGT]?)$/.exec(size)!;
          const next = m[1] ? cur + parseSize(m[2]) : parseSize(m[2]);
          if (next < cur) throw new Error("shrinking disks is not supported");
          if (next === cur) return;
          const volid = drive.split(",")[0];
          const name = volid.split(":")[1].split("/").at(-1);
          const gib = (b: number) => (b / 1024 ** 3).toFixed(2);
          t.log(
            `  Size of logical volume pve/${name} changed from ${
              gib(cur)
            } GiB (${cur / 4194304} extents) to ${gib(next)} GiB (${
              next / 4194304
            } extents).`,
          );
          t.log(`  Logical volume pve/${name} successfully resized.`);
          g.config[disk] = drive.replace(/(^|,)size=[^,]*/, "") +
            `,size=${formatSize(next)}`;
          const vol = findVolume(c, g, volid);
          if (vol) vol.size = next;
        },
      );
    },
  };
}

// ---------------------------------------------------------------- volumes

/** A guest's volumes: disks, mount points and cloud-init drives. */
export function guestVolids(
  config: Record<string, ConfigValue>,
): { key: string; volid: string }[] {
  const out: { key: string; volid: string }[] = [];
  for (const [key, v] of Object.entries(config)) {
    if (
      !/^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$|^rootfs$|^mp\d+$/.test(
        key,
      ) || typeof v !== "string"
    ) continue;
    const volid = v.split(",")[0];
    if (!volid.includes(":")) continue;
    if (v.includes("media=cdrom") && !volid.includes("cloudinit")) continue;
    out.push({ key, volid });
  }
  return out;
}

export function findVolume(c: Cluster, g: Guest, volid: string) {
  return c.volumes.find((v) =>
    v.volid === volid && (v.node === undefined || v.node === g.node ||
      c.storages.find((s) => s.storage === v.storage)?.shared)
  );
}

function isShared(c: Cluster, volid: string): boolean {
  return c.storages.find((s) => s.storage === volid.split(":")[0])?.shared ??
    false;
}

// ---------------------------------------------------------------- migrate

function migrateRoute(type: GuestType): Route {
  return {
    method: "POST",
    path: `/nodes/{node}/${type}/{vmid}/migrate`,
    handler: (req) => {
      const c = req.cluster;
      const g = guestOf(req, type);
      const target = str(req, "target")!;
      if (target === g.node) {
        throw SimError.param({ target: "target is local node." });
      }
      const tnode = c.nodes.get(target);
      if (!tnode) throw new SimError(500, `no such cluster node '${target}'`);
      c.checkLock(g);
      const online = bool(req, "online") ?? false;
      const restart = bool(req, "restart") ?? false;
      const localDisks = bool(req, "with-local-disks") ?? false;
      const running = g.status === "running";
      if (running && type === "qemu" && !online) {
        throw new SimError(500, "can't migrate running VM without --online");
      }
      if (running && type === "lxc" && !online && !restart) {
        throw new SimError(
          500,
          "can't migrate running container without --online or --restart",
        );
      }
      const source = g.node;
      return c.startTask(
        {
          node: source,
          type: type === "qemu" ? "qmigrate" : "vzmigrate",
          id: g.vmid,
          user: req.user,
        },
        async (t) => {
          const started = Date.now();
          const duration = () => {
            const s = Math.max(1, Math.round((Date.now() - started) / 1000));
            return `00:${String(Math.floor(s / 60)).padStart(2, "0")}:${
              String(s % 60).padStart(2, "0")
            }`;
          };
          const abort = (why: string) => {
            t.log(`ERROR: migration aborted (duration ${duration()}): ${why}`);
            return new Error("migration aborted");
          };
          if (type === "qemu" && online && !running) {
            t.log("VM isn't running. Doing offline migration instead.");
          }
          t.log(
            `starting migration of ${
              kindOf(type)
            } ${g.vmid} to node '${target}' (${tnode.ip})`,
          );
          if (!tnode.online) {
            throw abort(
              "Can't connect to destination address using public key",
            );
          }
          if (type === "lxc" && running && online) {
            throw abort("lxc live migration is currently not implemented");
          }
          const local = guestVolids(g.config).filter((v) =>
            !isShared(c, v.volid)
          );
          if (type === "qemu" && running && local.length && !localDisks) {
            // Inferred wording (QemuMigrate prepare).
            throw abort(
              "can't live migrate attached local disks without with-local-disks option",
            );
          }
          g.lock = "migrate";
          try {
            if (type === "lxc" && running) {
              t.log(`shutdown CT ${g.vmid}`);
              await t.step();
              powerOff(g);
            }
            for (const v of local) {
              t.log(`found local volume '${v.volid}' (in current VM config)`);
              await t.step();
              t.log(`volume '${v.volid}' is '${v.volid}' on the target`);
            }
            if (type === "qemu" && running) {
              t.log(`starting VM ${g.vmid} on remote node '${target}'`);
              await t.step();
              t.log("migration status: completed");
            }
            for (const v of local) {
              const vol = findVolume(c, g, v.volid);
              if (vol) vol.node = target;
            }
            g.node = target;
            if (type === "lxc" && running) {
              t.log("start container on target node");
              await t.step();
              powerOn(g);
            }
            t.log(`migration finished successfully (duration ${duration()})`);
          } finally {
            if (g.lock === "migrate") delete g.lock;
          }
        },
      );
    },
  };
}

// ---------------------------------------------------------------- delete

function deleteRoute(type: GuestType): Route {
  return {
    method: "DELETE",
    path: `/nodes/{node}/${type}/{vmid}`,
    handler: (req) => {
      const c = req.cluster;
      const skiplock = type === "qemu" ? rootOnly(req, "skiplock") : false;
      const g = guestOf(req, type);
      const purge = bool(req, "purge") ?? false;
      const unreferenced = bool(req, "destroy-unreferenced-disks") ?? false;
      const force = type === "lxc" ? bool(req, "force") ?? false : false;
      const kind = kindOf(type);
      if (type === "lxc") c.checkLock(g); // LXC checks the lock sync
      if (Number(g.config.protection) === 1) {
        throw new SimError(
          500,
          `can't remove ${kind} ${g.vmid} - protection mode enabled`,
        );
      }
      if (g.status === "running") {
        if (type === "qemu") {
          throw new SimError(500, `VM ${g.vmid} is running - destroy failed`);
        }
        if (!force) {
          throw new SimError(
            500,
            `unable to destroy CT ${g.vmid} - container is running`,
          );
        }
      }
      return c.startTask(
        {
          node: g.node,
          type: type === "qemu" ? "qmdestroy" : "vzdestroy",
          id: g.vmid,
          user: req.user,
        },
        async (t) => {
          if (type === "qemu") taskLockCheck(c, g, skiplock);
          if (g.status === "running") {
            powerOff(g); // LXC with force
            await t.step();
          }
          const vols = guestVolids(g.config);
          if (g.config.template === 1) {
            for (const { volid } of vols) {
              if (c.volumes.some((v) => v.volid.startsWith(`${volid}/`))) {
                throw new Error(
                  `base volume '${volid}' is still in use by linked cloned`,
                );
              }
            }
          }
          const doomed = new Set(vols.map((v) => v.volid));
          if (unreferenced) {
            for (const v of c.volumes) {
              if (
                v.vmid === g.vmid && /^(images|rootdir)$/.test(v.content) &&
                (v.node === g.node || isShared(c, v.volid))
              ) doomed.add(v.volid);
            }
          }
          for (const volid of doomed) {
            const vol = findVolume(c, g, volid);
            if (!vol) continue;
            c.volumes.splice(c.volumes.indexOf(vol), 1);
            const name = volid.split(":")[1].split("/").at(-1);
            t.log(`  Logical volume "${name}" successfully removed.`);
          }
          await t.step();
          if (purge) {
            t.log(`purging ${kind} ${g.vmid} from related configurations..`);
          }
          c.guests.delete(g.vmid);
        },
      );
    },
  };
}

export const LIFECYCLE_ROUTES: Route[] = [
  ...qemuPower(),
  ...lxcPower(),
  ...configRoutes("qemu"),
  ...configRoutes("lxc"),
  resizeRoute(),
  migrateRoute("qemu"),
  migrateRoute("lxc"),
  deleteRoute("qemu"),
  deleteRoute("lxc"),
];

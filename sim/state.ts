/**
 * The simulated cluster's world: nodes, guests, storages, volumes and tasks,
 * with the helpers route handlers share (lookups with PVE's error messages,
 * locks, tasks with UPIDs and logs).
 */

import type { Access } from "./access.ts";
import { Faults } from "./faults.ts";
import type { PveVersion } from "./versions.ts";

export type GuestType = "qemu" | "lxc";
export type ConfigValue = string | number;

export interface Snapshot {
  name: string;
  description: string;
  snaptime: number;
  vmstate: number;
  parent?: string;
  /** The guest's config at snapshot time. */
  config: Record<string, ConfigValue>;
  /** Whether the guest was running when taken (for vmstate rollback). */
  running: boolean;
}

export interface FirewallRule {
  type: string;
  action: string;
  enable: number;
  [key: string]: string | number;
}

/** A scripted guest OS behind the QEMU guest agent. */
export interface GuestOs {
  /** Whether qemu-guest-agent runs inside (answers ping). */
  agentRunning: boolean;
  /** `/etc/os-release` content. */
  osRelease: string;
  /** The guest's files (path → bytes). */
  files: Map<string, Uint8Array>;
  /** Network interfaces as network-get-interfaces returns them. */
  interfaces: {
    name: string;
    "hardware-address": string;
    "ip-addresses": {
      "ip-address": string;
      "ip-address-type": "ipv4" | "ipv6";
      prefix: number;
    }[];
  }[];
  /** Running and finished agent exec processes by pid. */
  processes: Map<number, AgentProcess>;
  nextPid: number;
}

export interface AgentProcess {
  pid: number;
  /** Time (ms) when it exits. */
  endsAt: number;
  exitcode: number;
  out: string;
  err: string;
  signal?: number;
}

export interface Guest {
  vmid: number;
  type: GuestType;
  node: string;
  status: "running" | "stopped";
  /** QEMU: running | paused | stopped. */
  qmpstatus?: string;
  config: Record<string, ConfigValue>;
  /** Changes waiting for a restart (QEMU running guests). */
  pending: Record<string, ConfigValue>;
  pendingDelete: string[];
  lock?: string;
  snapshots: Map<string, Snapshot>;
  firewall: {
    rules: FirewallRule[];
    options: Record<string, ConfigValue>;
  };
  guestOs?: GuestOs;
  /** A guest OS that ignores ACPI shutdown (clean shutdowns time out). */
  ignoresShutdown?: boolean;
  /** ms timestamp of the last start. */
  startedAt?: number;
  /** Usage while running (fractions and bytes). */
  load: { cpu: number; memFraction: number; diskFraction: number };
  /** Counters since start (bytes). */
  io: { netin: number; netout: number; diskread: number; diskwrite: number };
}

export interface StorageDef {
  storage: string;
  type: string;
  content: string[];
  shared: boolean;
  enabled: boolean;
  /**
   * Its backend cannot be reached (a PBS or NFS server that is down): PVE
   * cannot activate it, so pvestatd reports it `unknown` in
   * /cluster/resources, /nodes/{node}/storage shows it inactive, and its
   * content answers `storage '<id>' is not online`.
   */
  offline?: boolean;
  /** Size in bytes (per node for local storage). */
  total: number;
  /** Bytes used by things that are not volumes we model. */
  baseUsed: number;
  /** Nodes it exists on; all nodes when absent. */
  nodes?: string[];
  /** Whether it can take snapshots (lvmthin, zfs, rbd, qcow2 on dir). */
  snapshots: boolean;
}

export interface Volume {
  storage: string;
  /** The node holding it; undefined on shared storage. */
  node?: string;
  volid: string;
  content: string;
  format: string;
  size: number;
  ctime: number;
  vmid?: number;
  notes?: string;
  protected?: boolean;
  subtype?: GuestType;
  /** For backups: what was backed up. */
  backup?: { type: GuestType; config: Record<string, ConfigValue> };
  /** For backups: the `.log` file vzdump writes beside the archive. */
  log?: string;
}

export interface SimNode {
  node: string;
  online: boolean;
  maxcpu: number;
  maxmem: number;
  maxdisk: number;
  ip: string;
  bootedAt: number;
}

export interface Task {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  tokenid?: string;
  status: "running" | "stopped";
  exitstatus?: string;
  endtime?: number;
  log: string[];
}

/** A PVE error answer: status, message (first line is the reason phrase). */
export class SimError extends Error {
  readonly status: number;
  readonly errors?: Record<string, string>;
  constructor(
    status: number,
    message: string,
    errors?: Record<string, string>,
  ) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
  /** 400 Parameter verification failed. with per-parameter errors. */
  static param(errors: Record<string, string>): SimError {
    return new SimError(400, "Parameter verification failed.", errors);
  }
}

/** A task's handle inside its worker function. */
export interface TaskHandle {
  task: Task;
  log(line: string): void;
  warn(line: string): void;
  /** Waits one task step (the simulator's task duration, or `ms`). */
  step(ms?: number): Promise<void>;
}

export interface TaskOptions {
  node: string;
  type: string;
  id: string | number;
  user: string;
  /** Steps the task takes (each the simulator's task duration). */
  steps?: number;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");

export class Cluster {
  nodes: Map<string, SimNode> = new Map();
  guests: Map<number, Guest> = new Map();
  storages: StorageDef[] = [];
  volumes: Volume[] = [];
  tasks: Map<string, Task> = new Map();
  clusterName = "sim";
  /** Fault rules for requests and tasks (tests inject them). */
  readonly faults: Faults = new Faults();
  /** The PVE release it plays (answers and parameters follow it). */
  pveVersion: PveVersion = "9.1";
  /** Users, tokens, roles, pools and ACLs (set by startSimulator). */
  access!: Access;
  /** Duration of one task step in ms. */
  taskMs: number;
  #waiters = new Set<() => void>();
  #nextPid = 0x1000;
  #closed = false;

  constructor(taskMs: number) {
    this.taskMs = taskMs;
  }

  /** The node or PVE's error; offline nodes answer 595 like a proxied call. */
  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) {
      throw new SimError(
        500,
        `hostname lookup '${name}' failed - failed to get address info for: ${name}: Name or service not known`,
      );
    }
    if (!n.online) throw new SimError(595, "No route to host");
    return n;
  }

  /** A guest of a type on a node, or PVE's missing-config error. */
  guest(node: string, type: GuestType, vmid: number): Guest {
    const g = this.guests.get(vmid);
    if (!g || g.node !== node || g.type !== type) {
      throw new SimError(500, configMissing(node, type, vmid));
    }
    return g;
  }

  /** Throws `VM is locked (x)` / `CT is locked (x)` when locked. */
  checkLock(g: Guest): void {
    if (g.lock) {
      throw new SimError(
        500,
        `${g.type === "qemu" ? "VM" : "CT"} is locked (${g.lock})`,
      );
    }
  }

  /** Storage definition, or PVE's error. */
  storage(id: string, node?: string): StorageDef {
    const s = this.storages.find((x) => x.storage === id);
    if (!s || (node && s.nodes && !s.nodes.includes(node))) {
      throw new SimError(500, `storage '${id}' does not exist`);
    }
    return s;
  }

  /** Volumes visible on a node's storage. */
  volumesOn(storage: StorageDef, node: string): Volume[] {
    return this.volumes.filter((v) =>
      v.storage === storage.storage && (storage.shared || v.node === node)
    );
  }

  storageUsed(storage: StorageDef, node: string): number {
    return this.volumesOn(storage, node).reduce(
      (n, v) => n + v.size,
      storage.baseUsed,
    );
  }

  /** Lowest free vmid from 100. */
  nextId(): number {
    let id = 100;
    while (this.guests.has(id)) id++;
    return id;
  }

  /**
   * Starts a task: returns its UPID at once and runs `work` in the
   * background; a throw from work ends the task with that error.
   */
  startTask(
    opts: TaskOptions,
    work: (t: TaskHandle) => Promise<void> | void,
  ): string {
    const now = Math.floor(Date.now() / 1000);
    const pid = this.#nextPid++;
    const [user, tokenid] = opts.user.split("!");
    const upid = `UPID:${opts.node}:${hex8(pid)}:${hex8(pid * 7)}:${
      hex8(now)
    }:${opts.type}:${opts.id}:${opts.user}:`;
    const task: Task = {
      upid,
      node: opts.node,
      pid,
      pstart: pid * 7,
      starttime: now,
      type: opts.type,
      id: String(opts.id),
      user,
      tokenid,
      status: "running",
      log: [],
    };
    this.tasks.set(upid, task);
    let warnings = 0;
    const handle: TaskHandle = {
      task,
      log: (line) => task.log.push(line),
      warn: (line) => {
        warnings++;
        task.log.push(`WARN: ${line}`);
      },
      // A task stopped through the API ends at its next step, doing no more.
      step: async (ms) => {
        await this.sleep(ms ?? this.taskMs);
        if (task.status === "stopped") throw new Error(INTERRUPTED);
      },
    };
    const fault = this.faults.takeTask(opts.type, String(opts.id));
    const run = async () => {
      try {
        await handle.step();
        if (fault && "endless" in fault) {
          // Runs until stopped through the API (or the simulator closes).
          for (;;) await handle.step();
        }
        if (fault) {
          // Fails before doing any of its work; the guest's lock goes, as
          // PVE's worker releases it when it dies.
          delete this.guests.get(Number(opts.id))?.lock;
          throw new Error(fault.fail);
        }
        await work(handle);
        if (task.status === "stopped") return; // stopped while finishing
        task.exitstatus = warnings ? `WARNINGS: ${warnings}` : "OK";
        task.log.push(warnings ? `TASK WARNINGS: ${warnings}` : "TASK OK");
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (msg === CLOSED || msg === INTERRUPTED) return;
        task.exitstatus = msg.split("\n")[0];
        task.log.push(`TASK ERROR: ${msg}`);
      }
      task.status = "stopped";
      task.endtime = Math.floor(Date.now() / 1000);
    };
    run();
    return upid;
  }

  /** Resolves after ms, unless the simulator closes first. */
  sleep(ms: number): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(CLOSED));
    return new Promise((resolve, reject) => {
      const done = () => {
        this.#waiters.delete(cancel);
        resolve();
      };
      const cancel = () => {
        clearTimeout(id);
        this.#waiters.delete(cancel);
        reject(new Error(CLOSED));
      };
      const id = setTimeout(done, ms);
      this.#waiters.add(cancel);
    });
  }

  /** Cancels every pending task timer. */
  close(): void {
    this.#closed = true;
    for (const cancel of [...this.#waiters]) cancel();
  }
}

const CLOSED = "simulator closed";
const INTERRUPTED = "task interrupted";

export function configMissing(
  node: string,
  type: GuestType,
  vmid: number,
): string {
  return `Configuration file 'nodes/${node}/${
    type === "qemu" ? "qemu-server" : "lxc"
  }/${vmid}.conf' does not exist`;
}

/** `size=32G` etc. → bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(s);
  if (!m) return 0;
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[
    m[2] as "" | "K" | "M" | "G" | "T"
  ];
  return Math.round(parseFloat(m[1]) * mult);
}

/** bytes → `32G` style as PVE prints sizes. */
export function formatSize(bytes: number): string {
  for (
    const [u, m] of [["T", 1024 ** 4], ["G", 1024 ** 3], ["M", 1024 ** 2], [
      "K",
      1024,
    ]] as const
  ) {
    if (bytes >= m && bytes % m === 0) return `${bytes / m}${u}`;
  }
  return String(bytes);
}

/** Parses a property string `a=1,b=2` (with an optional bare default key). */
export function parsePropString(
  s: string,
  defaultKey?: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(",")) {
    if (!part) continue;
    const i = part.indexOf("=");
    if (i < 0) {
      if (defaultKey) out[defaultKey] = part;
      else out[part] = "";
    } else out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

export const DISK_KEY =
  /^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$|^rootfs$|^mp\d+$/;

/** Sum of a guest's disk sizes (cdroms excluded), bytes. */
export function guestMaxDisk(g: Guest): number {
  const key = g.type === "lxc" ? "rootfs" : bootDisk(g.config);
  const v = key ? g.config[key] : undefined;
  return typeof v === "string" ? parseSize(parsePropString(v).size ?? "0") : 0;
}

/** The QEMU boot disk key, from `boot: order=...` or the first disk. */
export function bootDisk(
  config: Record<string, ConfigValue>,
): string | undefined {
  const isDisk = (k: string) =>
    /^(scsi|virtio|sata|ide)\d+$/.test(k) &&
    typeof config[k] === "string" &&
    !String(config[k]).includes("media=cdrom");
  const order = parsePropString(String(config.boot ?? ""), "order").order;
  for (const k of (order ?? "").split(";")) if (isDisk(k)) return k;
  return Object.keys(config).filter(isDisk).sort()[0];
}

export function guestMaxMem(g: Guest): number {
  const m = g.config.memory;
  const mib = typeof m === "number"
    ? m
    : parseInt(parsePropString(String(m ?? "512"), "current").current ?? "512");
  return mib * 1024 * 1024;
}

export function guestCores(g: Guest): number {
  return Number(g.config.cores ?? 1) * Number(g.config.sockets ?? 1);
}

/** How the simulator's state looks in PVE's answers (shared by routes). */
import { createHash } from "node:crypto";
import { isPve9 } from "./versions.ts";
import {
  type Cluster,
  type ConfigValue,
  type Guest,
  guestCores,
  guestMaxDisk,
  guestMaxMem,
  type SimNode,
} from "./state.ts";

/** Seconds since the guest started (0 when stopped). */
export function uptime(g: Guest): number {
  return g.status === "running" && g.startedAt
    ? Math.floor((Date.now() - g.startedAt) / 1000)
    : 0;
}

/** Stats fields shared by lists, status/current and cluster/resources. */
export function guestStats(g: Guest): Record<string, number> {
  const running = g.status === "running" && g.qmpstatus !== "paused";
  const up = uptime(g);
  const maxmem = guestMaxMem(g);
  const maxdisk = guestMaxDisk(g);
  return {
    cpu: running ? g.load.cpu : 0,
    maxcpu: guestCores(g),
    mem: g.status === "running" ? Math.round(maxmem * g.load.memFraction) : 0,
    maxmem,
    disk: g.type === "lxc" && g.status === "running"
      ? Math.round(maxdisk * g.load.diskFraction)
      : 0,
    maxdisk,
    uptime: up,
    netin: g.io.netin + up * 1200,
    netout: g.io.netout + up * 800,
    diskread: g.io.diskread + up * 4000,
    diskwrite: g.io.diskwrite + up * 2500,
  };
}

export function guestName(g: Guest): string {
  if (g.type === "qemu") return String(g.config.name ?? `VM ${g.vmid}`);
  return String(g.config.hostname ?? `CT${g.vmid}`);
}

/** An entry of `/cluster/resources`. */
export function resourceEntry(c: Cluster, g: Guest): Record<string, unknown> {
  const node = c.nodes.get(g.node);
  const e: Record<string, unknown> = {
    id: `${g.type}/${g.vmid}`,
    type: g.type,
    vmid: g.vmid,
    node: g.node,
    name: guestName(g),
  };
  if (!node?.online) {
    e.status = "unknown";
    return e;
  }
  const s = guestStats(g);
  e.status = g.status;
  e.template = g.config.template === 1 ? 1 : 0;
  Object.assign(e, s);
  // Host memory of a VM: reported since PVE 9.0.
  if (g.type === "qemu" && isPve9(c.pveVersion)) e.memhost = s.mem;
  if (g.lock) e.lock = g.lock;
  if (g.config.tags) e.tags = g.config.tags;
  return e;
}

/** An entry of `/nodes/{node}/qemu` or `/nodes/{node}/lxc`. */
export function listEntry(g: Guest): Record<string, unknown> {
  const s = guestStats(g);
  const e: Record<string, unknown> = {
    vmid: g.vmid,
    name: guestName(g),
    status: g.status,
    cpus: s.maxcpu,
    ...s,
  };
  delete e.maxcpu;
  if (g.type === "lxc") {
    e.type = "lxc";
    e.maxswap = Number(g.config.swap ?? 512) * 1024 * 1024;
    e.swap = 0;
  }
  if (g.lock) e.lock = g.lock;
  if (g.config.tags) e.tags = g.config.tags;
  if (g.config.template === 1) e.template = 1;
  return e;
}

/** `GET .../status/current`. */
export function statusCurrent(g: Guest): Record<string, unknown> {
  const e = listEntry(g);
  e.ha = { managed: 0 };
  if (g.type === "qemu") {
    e.qmpstatus = g.qmpstatus ?? g.status;
    if (
      g.config.agent !== undefined &&
      !/^(enabled=)?0/.test(String(g.config.agent))
    ) {
      e.agent = 1;
    }
    if (g.status === "running") {
      e["running-machine"] = "pc-q35-9.2+pve1";
      e["running-qemu"] = "9.2.0";
    }
  }
  return e;
}

/** SHA1 over the config as PVE writes it. */
export function digestOf(config: Record<string, ConfigValue>): string {
  const text = Object.keys(config).sort().map((k) => `${k}: ${config[k]}`)
    .join("\n");
  return createHash("sha1").update(text).digest("hex");
}

/** `GET .../config`: pending values applied unless current. */
export function configView(
  g: Guest,
  current: boolean,
): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = { ...g.config };
  if (!current) {
    Object.assign(out, g.pending);
    for (const k of g.pendingDelete) delete out[k];
  }
  if (out.cipassword !== undefined) out.cipassword = "**********";
  if (g.lock) out.lock = g.lock;
  out.digest = digestOf(g.config);
  return out;
}

/** An entry of `/nodes` or the node part of `/cluster/resources`. */
export function nodeEntry(c: Cluster, n: SimNode): Record<string, unknown> {
  const base = {
    id: `node/${n.node}`,
    type: "node",
    node: n.node,
    status: n.online ? "online" : "offline",
    level: "",
  };
  if (!n.online) return base;
  let mem = 2 * 1024 ** 3;
  let cpu = 0.01;
  for (const g of c.guests.values()) {
    if (g.node !== n.node || g.status !== "running") continue;
    const s = guestStats(g);
    mem += s.mem;
    cpu += (s.cpu * s.maxcpu) / n.maxcpu;
  }
  return {
    ...base,
    cpu: Math.min(1, Math.round(cpu * 1000) / 1000),
    maxcpu: n.maxcpu,
    mem: Math.min(mem, n.maxmem),
    maxmem: n.maxmem,
    disk: Math.round(n.maxdisk * 0.23),
    maxdisk: n.maxdisk,
    uptime: Math.floor((Date.now() - n.bootedAt) / 1000),
    ssl_fingerprint:
      "5C:1B:3F:0A:9E:77:21:4D:AA:10:33:6E:8B:C2:D4:19:0F:7E:55:31:AB:90:CD:EF:12:34:56:78:9A:BC:DE:F0",
  };
}

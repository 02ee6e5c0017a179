/**
 * Guests: where a guest lives (one cached `/cluster/resources` call), its
 * status, statistics, configuration (with the digest that guards changes),
 * pending changes and the addresses it reports.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Params, PveClient } from "../client.ts";
import { PveError, type PveErrorKind, ToolError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";
import { scopeOf } from "../../safety/scope.ts";
import { failureKind, failureText } from "./tasks.ts";

/** Where a guest lives: from one `/cluster/resources` call. */
export interface GuestRef {
  vmid: number;
  node: string;
  type: "qemu" | "lxc";
  name?: string;
  status: string;
  template: boolean;
  lock?: string;
}

/** "VM 100" or "CT 101". */
export function label(g: Pick<GuestRef, "type" | "vmid">): string {
  return `${g.type === "qemu" ? "VM" : "CT"} ${g.vmid}`;
}

/** "VM 100 (web-01)", or "VM 100" for a guest without a name. */
export function named(g: Pick<GuestRef, "type" | "vmid" | "name">): string {
  return g.name ? `${label(g)} (${g.name})` : label(g);
}

/** A guest as `/cluster/resources?type=vm` lists it (PVE's field names). */
export interface ClusterGuest {
  vmid: number;
  node: string;
  type: string;
  name?: string;
  status?: string;
  template?: number;
  lock?: string;
  cpu?: number;
  mem?: number;
  maxmem?: number;
  maxdisk?: number;
  [key: string]: unknown;
}

/**
 * Every guest of the cluster in this server's scope (MCP_ALLOWED_VMIDS,
 * MCP_ALLOWED_NODES) with one `/cluster/resources?type=vm` call, shared by
 * callers within a short window.
 */
export async function listGuests(pve: PveClient): Promise<ClusterGuest[]> {
  const all = await pve.guests() as ClusterGuest[];
  const scope = scopeOf(pve);
  return scope.limited ? all.filter((g) => scope.hasGuest(g)) : all;
}

/**
 * Finds a guest by vmid (and checks the node when given) with one
 * `/cluster/resources?type=vm` call, cached for a moment by the client.
 * A guest outside this server's scope is refused, whatever the tool.
 */
export async function locate(
  pve: PveClient,
  vmid: number,
  node?: string,
): Promise<GuestRef> {
  const scope = scopeOf(pve);
  scope.checkVmid(vmid);
  const list = await pve.guests() as ClusterGuest[];
  const e = list.find((r) => Number(r.vmid) === vmid);
  scope.checkGuest(vmid, e);
  if (!e) {
    throw new ToolError(
      `Guest ${vmid} does not exist in this cluster: check the vmid with proxmox_list_vms`,
    );
  }
  if (node && e.node !== node) {
    throw new ToolError(
      `Guest ${vmid} is on node '${e.node}', not '${node}': omit node or use '${e.node}'`,
    );
  }
  return {
    vmid,
    node: String(e.node),
    type: e.type === "lxc" ? "lxc" : "qemu",
    name: e.name as string | undefined,
    status: String(e.status ?? "unknown"),
    template: Number(e.template ?? 0) === 1,
    lock: e.lock as string | undefined,
  };
}

/** A guest that a tool has just created (not yet in /cluster/resources). */
export function newGuest(
  init: { vmid: number; node: string; type: "qemu" | "lxc"; name?: string },
): GuestRef {
  return { ...init, status: "stopped", template: false };
}

/** `status/current`: live, where /cluster/resources may lag a few seconds. */
export interface GuestStatus {
  status: string;
  /** QEMU only: a paused VM has status running and qmpstatus paused. */
  qmpstatus?: string;
  lock?: string;
  name?: string;
  uptime?: number;
  cpu?: number;
  cpus?: number;
  mem?: number;
  maxmem?: number;
  disk?: number;
  maxdisk?: number;
  netin?: number;
  netout?: number;
  diskread?: number;
  diskwrite?: number;
  [key: string]: unknown;
}

/** `/nodes/{node}/{type}/{vmid}/status/current` */
export function currentStatus<T = GuestStatus>(
  pve: PveClient,
  g: GuestRef,
): Promise<T> {
  return pve.get<T>(pvePath`/${seg.guest(g)}/status/current`);
}

/** One point of a guest's RRD statistics. */
export interface RrdPoint {
  cpu?: number;
  mem?: number;
  netin?: number;
  netout?: number;
  diskread?: number;
  diskwrite?: number;
}

/**
 * The last hour of a guest's statistics (averages). A guest younger than a
 * minute has none: that is an empty list, not an error.
 */
export async function hourStats(
  pve: PveClient,
  g: GuestRef,
): Promise<RrdPoint[]> {
  try {
    return await pve.get<RrdPoint[]>(pvePath`/${seg.guest(g)}/rrddata`, {
      timeframe: "hour",
      cf: "AVERAGE",
    });
  } catch (e) {
    if (e instanceof PveError && e.kind === "cancelled") throw e;
    return [];
  }
}

/** A guest's configuration, with PVE's `digest` of it. */
export function getConfig(
  pve: PveClient,
  g: GuestRef,
): Promise<Record<string, unknown> & { digest?: string }> {
  return pve.get(pvePath`/${seg.guest(g)}/config`);
}

/**
 * Changes a guest's configuration synchronously (`PUT .../config`). On a
 * running VM, most hardware changes stay pending until the next restart.
 */
export async function updateConfig(
  pve: PveClient,
  g: GuestRef,
  params: Params,
): Promise<void> {
  await pve.put(pvePath`/${seg.guest(g)}/config`, params);
}

/** Which of `keys` still have a pending value (`GET .../pending`). */
export async function pendingKeys(
  pve: PveClient,
  g: GuestRef,
  keys: readonly string[],
): Promise<string[]> {
  const list = await pve.get<{ key: string; pending?: unknown }[]>(
    pvePath`/${seg.guest(g)}/pending`,
  );
  return keys.filter((k) =>
    list.some((p) => p.key === k && p.pending !== undefined)
  );
}

/**
 * The lock a failure names (`VM is locked (backup)`), from a refused call or
 * a task that ended in error; undefined when it is not a lock.
 */
export function lockOf(e: unknown): string | undefined {
  if (failureKind(e) !== "locked") return undefined;
  return /is locked \(([\w-]+)\)/.exec(failureText(e))?.[1] ?? "unknown";
}

/** What to do about a lock held on a guest. */
export function lockAdvice(g: GuestRef, lock: string): string {
  return `${
    named(g)
  } is locked (${lock}) by another operation: wait for it to end and retry; a stale lock is cleared with '${
    g.type === "qemu" ? "qm" : "pct"
  } unlock ${g.vmid}' on ${g.node}`;
}

/** Usable addresses: no loopback, no link-local; IPv4 first. */
function usable(ips: string[]): string[] {
  return ips.filter((ip) => !/^(127\.|169\.254\.|::1$|fe80:)/i.test(ip))
    .sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")));
}

interface AgentIface {
  name: string;
  "ip-addresses"?: { "ip-address": string }[];
}

/**
 * The addresses a running guest reports now: the QEMU guest agent's
 * `network-get-interfaces`, or LXC's `interfaces`.
 */
async function readAddresses(
  pve: PveClient,
  g: GuestRef,
): Promise<string[]> {
  if (g.type === "qemu") {
    const r = await pve.get<{ result: AgentIface[] }>(
      pvePath`/${seg.guest(g)}/agent/network-get-interfaces`,
    );
    return usable(
      r.result.flatMap((i) =>
        (i["ip-addresses"] ?? []).map((a) => a["ip-address"])
      ),
    );
  }
  const r = await pve.get<{ inet?: string; inet6?: string }[]>(
    pvePath`/${seg.guest(g)}/interfaces`,
  );
  return usable(
    r.flatMap((i) => [i.inet, i.inet6]).filter((x): x is string => !!x)
      .map((cidr) => cidr.split("/")[0]),
  );
}

/**
 * Errors that asking again will not change: say why and stop waiting.
 * Everything else (agent still booting, a 500, a slow answer) is retried.
 */
const PERMANENT: Partial<Record<PveErrorKind, string>> = {
  permission: "the Proxmox user or token may not read them (403)",
  notImplemented: "this Proxmox does not offer that endpoint (501)",
  agentNotConfigured: "the guest agent is not enabled in its config",
  notRunning: "the guest is not running",
  notFound: "the guest no longer exists",
  auth: "Proxmox refused the login",
  badRequest: "Proxmox refused the request",
};

/**
 * Polls for a guest's addresses until it has one, a permanent error says it
 * never will (403, 501, agent not configured...), or the deadline passes.
 * `onPoll` runs after every empty answer (progress while waiting).
 */
export async function waitForAddresses(
  pve: PveClient,
  g: GuestRef,
  options: {
    deadline: number;
    signal: AbortSignal;
    onPoll?: (polls: number) => Promise<void>;
  },
): Promise<{ ips?: string[]; why?: string }> {
  let wait = 250;
  for (let polls = 1;; polls++) {
    try {
      const ips = await readAddresses(pve, g);
      if (ips.length) return { ips };
    } catch (e) {
      if (!(e instanceof PveError) || e.kind === "cancelled") throw e;
      const why = PERMANENT[e.kind];
      if (why) return { why: `${why}: ${e.pveMessage}` };
    }
    if (Date.now() + wait > options.deadline) {
      return {
        why: g.type === "qemu"
          ? "the guest agent did not report an address within timeout_s"
          : "no address within timeout_s",
      };
    }
    await options.onPoll?.(polls);
    await delay(wait, undefined, { signal: options.signal });
    wait = Math.min(wait * 1.5, 3000);
  }
}

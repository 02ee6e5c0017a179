/**
 * Power, migration and removal of a guest. Each call starts a PVE task and
 * returns its UPID; where QEMU and LXC answer the same situation differently
 * (a task error vs a refused call), the predicates below tell them apart.
 */
import type { PveClient } from "../client.ts";
import { pvePath, seg } from "../path.ts";
import { scopeOf } from "../../safety/scope.ts";
import type { GuestRef } from "./guests.ts";
import { failureKind, failureText } from "./tasks.ts";

/** `POST .../status/start` → UPID. */
export async function start(pve: PveClient, g: GuestRef): Promise<string> {
  return String(await pve.post(pvePath`/${seg.guest(g)}/status/start`));
}

/** `POST .../status/resume` (a paused VM) → UPID. */
export async function resume(pve: PveClient, g: GuestRef): Promise<string> {
  return String(await pve.post(pvePath`/${seg.guest(g)}/status/resume`));
}

/**
 * `POST .../status/shutdown` → UPID: a clean shutdown within `timeoutS`,
 * then a hard stop when `force`.
 */
export async function shutdown(
  pve: PveClient,
  g: GuestRef,
  options: { timeoutS: number; force: boolean },
): Promise<string> {
  return String(
    await pve.post(pvePath`/${seg.guest(g)}/status/shutdown`, {
      timeout: options.timeoutS,
      forceStop: options.force || undefined,
    }),
  );
}

/** `POST .../status/reboot` → UPID. */
export async function reboot(pve: PveClient, g: GuestRef): Promise<string> {
  return String(await pve.post(pvePath`/${seg.guest(g)}/status/reboot`));
}

/**
 * How a guest moves: a running VM live (with its local disks), a running
 * container by restarting it on the target, a stopped guest offline.
 */
export type MigrationMode = "online" | "restart" | "offline";

export function migrationMode(g: GuestRef, running: boolean): MigrationMode {
  return !running ? "offline" : g.type === "qemu" ? "online" : "restart";
}

/** `POST .../migrate` → UPID; a target outside the scope is refused. */
export async function migrate(
  pve: PveClient,
  g: GuestRef,
  target: string,
  mode: MigrationMode,
): Promise<string> {
  scopeOf(pve).checkNode(target);
  const params = mode === "online"
    ? { target, online: true, "with-local-disks": true }
    : mode === "restart"
    ? { target, restart: true }
    : { target };
  return String(await pve.post(pvePath`/${seg.guest(g)}/migrate`, params));
}

/**
 * `DELETE /nodes/{node}/{type}/{vmid}` → UPID: the guest, its disks (also
 * unreferenced ones) and every reference to it (backup jobs, HA, ACLs).
 */
export async function destroy(pve: PveClient, g: GuestRef): Promise<string> {
  return String(
    await pve.delete(pvePath`/${seg.guest(g)}`, {
      purge: true,
      "destroy-unreferenced-disks": true,
    }),
  );
}

/**
 * The guest was already running: QEMU says so in the start task, LXC in a
 * refused call.
 */
export function wasRunning(e: unknown): boolean {
  return failureKind(e) === "alreadyRunning";
}

/**
 * The guest was already stopped: LXC refuses to stop a stopped CT, and a
 * guest that is not running has nothing to stop.
 */
export function wasStopped(e: unknown): boolean {
  const kind = failureKind(e);
  return kind === "alreadyStopped" || kind === "notRunning";
}

/** A clean shutdown that did not finish within PVE's timeout. */
export function shutdownTimedOut(e: unknown): boolean {
  return /powerdown failed|did not stop/.test(failureText(e));
}

/** PVE refused to destroy a running guest (QEMU and LXC word it apart). */
export function refusedAsRunning(e: unknown): boolean {
  return /is running - destroy failed|container is running/.test(
    failureText(e),
  );
}

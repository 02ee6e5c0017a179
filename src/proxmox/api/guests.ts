/**
 * Guests: where a guest lives (one cached `/cluster/resources` call), its
 * status and its configuration with the digest that guards changes.
 */
import type { PveClient } from "../client.ts";
import { ToolError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";

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

/**
 * Finds a guest by vmid (and checks the node when given) with one
 * `/cluster/resources?type=vm` call, cached for a moment by the client.
 */
export async function locate(
  pve: PveClient,
  vmid: number,
  node?: string,
): Promise<GuestRef> {
  const list = await pve.guests();
  const e = list.find((r) => Number(r.vmid) === vmid);
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

/** `/nodes/{node}/{type}/{vmid}/status/current` */
export function currentStatus<T = Record<string, unknown>>(
  pve: PveClient,
  g: GuestRef,
): Promise<T> {
  return pve.get<T>(pvePath`/${seg.guest(g)}/status/current`);
}

/** A guest's configuration, with PVE's `digest` of it. */
export function getConfig(
  pve: PveClient,
  g: GuestRef,
): Promise<Record<string, unknown> & { digest?: string }> {
  return pve.get(pvePath`/${seg.guest(g)}/config`);
}

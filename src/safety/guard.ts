/**
 * The scope and protection gate, the first guard a changing call meets
 * (before the human is asked, before a dry run, before anything is sent):
 * every guest and node its arguments name must be in this server's scope,
 * and the guest it changes must not be protected, by PVE's `protection` flag
 * or by MCP_PROTECTED_TAG. Reads are not gated here: the API layer keeps
 * them in scope (src/safety/scope.ts), and a protected guest stays readable.
 *
 * Tools name what they act on with the registry's shared arguments, which
 * this gate reads: `vmid` (the guest changed, or made), `template` (a guest
 * read as a source), `newid` (a new guest), `node` and `target` (nodes),
 * `volid` (a backup archive).
 */
import { archiveInfo } from "../proxmox/api/backups.ts";
import {
  type ClusterGuest,
  getConfig,
  type GuestRef,
  locate,
  named,
} from "../proxmox/api/guests.ts";
import { guestVisibility } from "../proxmox/api/storage.ts";
import type { PveClient } from "../proxmox/client.ts";
import { ToolError } from "../proxmox/errors.ts";
import { scopeOf } from "./scope.ts";

/**
 * Refuses (with a ToolError saying why and how to lift it) a changing call
 * whose arguments reach outside the scope or change a protected guest. Only
 * GETs are made.
 */
export async function guardChange(
  pve: PveClient,
  args: Record<string, unknown>,
): Promise<void> {
  const scope = scopeOf(pve);
  for (const key of ["node", "target"]) {
    const node = args[key];
    if (typeof node === "string") scope.checkNode(node);
  }
  if (typeof args.newid === "number") {
    scope.checkVmid(args.newid, { creating: true });
  }
  if (typeof args.template === "number") await locate(pve, args.template);
  if (typeof args.volid === "string") {
    const info = archiveInfo(args.volid);
    if (info && !(await guestVisibility(pve))(info.vmid)) {
      throw new ToolError(
        `'${args.volid}' is a backup of guest ${info.vmid}, outside this server's scope: take volids from proxmox_list_backups`,
      );
    }
  }
  if (typeof args.vmid === "number") {
    const vmid = args.vmid;
    scope.checkVmid(vmid);
    const entry = (await pve.guests() as ClusterGuest[]).find((g) =>
      Number(g.vmid) === vmid
    );
    // A VMID no guest has: a new guest (in scope), or the tool says so.
    if (!entry) return;
    scope.checkGuest(vmid, entry);
    await checkUnprotected(pve, await locate(pve, vmid), entry);
  }
}

/**
 * Refuses a guest that is read-only to this server: PVE's `protection` flag
 * or the MCP_PROTECTED_TAG tag, from its current configuration.
 */
async function checkUnprotected(
  pve: PveClient,
  g: GuestRef,
  entry?: Record<string, unknown>,
): Promise<void> {
  const scope = scopeOf(pve);
  const config = await getConfig(pve, g);
  const cli = `${g.type === "qemu" ? "qm" : "pct"} set ${g.vmid}`;
  if (Number(config.protection ?? 0) === 1) {
    throw new ToolError(
      `${
        named(g)
      } is protected (Proxmox's protection flag is set): this server only reads it. To allow changes, turn protection off in Proxmox (Options → Protection, or '${cli} --protection 0' on ${g.node})`,
    );
  }
  if (scope.tagged(config.tags ?? entry?.tags)) {
    throw new ToolError(
      `${named(g)} carries the tag '${scope.protectedTag}' (${
        scope.cluster === undefined
          ? "MCP_PROTECTED_TAG"
          : `protectedTag of cluster '${scope.cluster}', else MCP_PROTECTED_TAG`
      }): this server only reads it. To allow changes, remove that tag in Proxmox (the guest's Tags, or '${cli} --tags' with the others)`,
    );
  }
}

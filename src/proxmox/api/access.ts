/** Who the server acts as: `/access/permissions` and the token's settings. */
import type { PveClient } from "../client.ts";
import { PveError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";
import { quirksOf } from "../quirks.ts";

/** GET /access/permissions: ACL path → {privilege: 1|0 (propagate)}. */
export type Permissions = Record<string, Record<string, number>>;

/** The effective permissions of the credential the server uses. */
export async function effectivePermissions(
  pve: PveClient,
): Promise<Permissions> {
  const p = await pve.get<Permissions>("/access/permissions");
  return p && typeof p === "object" ? p : {};
}

/**
 * Whether an API token (`user@realm!name`) has privilege separation, or
 * undefined when Proxmox does not say: a token may read its own settings
 * only with User.Modify.
 */
export async function tokenPrivsep(
  pve: PveClient,
  tokenId: string,
): Promise<boolean | undefined> {
  const bang = tokenId.lastIndexOf("!");
  const path = pvePath`/access/users/${
    seg.userid(tokenId.slice(0, bang))
  }/token/${seg.tokenName(tokenId.slice(bang + 1))}`;
  try {
    const t = await pve.get<{ privsep?: number | boolean }>(path);
    return Boolean(Number(t?.privsep ?? 0));
  } catch (e) {
    if (e instanceof PveError && e.kind === "permission") return undefined;
    throw e;
  }
}

/** The Proxmox VE release ("9.1"; "unknown" when /version cannot be read). */
export async function release(pve: PveClient): Promise<string> {
  return (await quirksOf(pve)).release;
}

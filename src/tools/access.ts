/** proxmox_whoami: who the server acts as in Proxmox, and what it may do. */
import { z } from "zod";
import {
  effectivePermissions,
  release,
  tokenPrivsep,
} from "../proxmox/api/access.ts";
import { defineTool, READ_ONLY, standing, Toolset } from "./define.ts";

export const whoami = defineTool({
  name: "proxmox_whoami",
  toolset: Toolset.nodes,
  title: "Who am I in Proxmox",
  description:
    "The Proxmox user or token used, its privileges, and which tools it can run.",
  input: {},
  output: z.object({
    as: z.string(),
    kind: z.enum(["user", "token"]),
    privilege_separation: z.boolean().nullable().optional(),
    release: z.string(),
    /** ACL path → privileges held there; `*` marks one that propagates. */
    privileges: z.record(z.string(), z.array(z.string())),
    tools: z.array(z.object({
      name: z.string(),
      can: z.enum(["yes", "some", "no"]),
      missing: z.array(z.string()).optional(),
      limited: z.array(z.string()).optional(),
    })),
    note: z.string().optional(),
  }),
  annotations: READ_ONLY,
  privileges: [],
  async run(_args, { pve, config, tools }) {
    const token = config.auth.kind === "token";
    const as = config.auth.kind === "token"
      ? config.auth.tokenId
      : config.auth.user;
    const [perms, rel, privsep] = await Promise.all([
      effectivePermissions(pve),
      release(pve),
      token ? tokenPrivsep(pve, as) : Promise.resolve(undefined),
    ]);
    const privileges = Object.fromEntries(
      Object.entries(perms).sort(([a], [b]) => a.localeCompare(b))
        .filter(([path, privs]) => !inherited(perms, path, privs))
        .map(([path, privs]) => [
          path,
          Object.entries(privs).map(([p, prop]) => prop ? `${p}*` : p).sort(),
        ]),
    );
    return {
      as,
      kind: token ? "token" as const : "user" as const,
      ...(token ? { privilege_separation: privsep ?? null } : {}),
      release: rel,
      privileges,
      tools: (tools ?? []).map((t) => {
        const s = standing(t.privileges ?? [], perms, rel);
        return {
          name: t.name,
          can: s.can,
          ...(s.missing.length ? { missing: s.missing } : {}),
          ...(s.limited.length ? { limited: s.limited } : {}),
        };
      }),
      ...(token && privsep === undefined
        ? {
          note:
            "Privilege separation unknown: a token may read its own settings only with User.Modify",
        }
        : {}),
    };
  },
});

/**
 * Whether a path holds exactly what its nearest listed parent passes down
 * (root's /vms, /nodes, ... repeat /): such paths are left out.
 */
function inherited(
  perms: Record<string, Record<string, number>>,
  path: string,
  privs: Record<string, number>,
): boolean {
  const parts = path.split("/").filter(Boolean);
  for (let i = parts.length - 1; i >= 0; i--) {
    const up = "/" + parts.slice(0, i).join("/");
    const parent = perms[up];
    if (!parent) continue;
    const mine = Object.entries(privs);
    return mine.length === Object.keys(parent).length &&
      mine.every(([p, v]) => parent[p] === 1 && v === 1);
  }
  return false;
}

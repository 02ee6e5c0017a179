/**
 * Least privilege: the PVE privileges each tool needs, as data beside its
 * definition (`privileges: [vm("VM.PowerMgmt"), vm("VM.Audit")]`), and the
 * checks that read a credential's effective permissions (GET
 * /access/permissions: path → {privilege: propagate}) against them.
 *
 * Every privilege is taken from the `permissions` of the endpoints a tool
 * calls in the official schema (../shared/pve-api/endpoint-table.md), or
 * from the handler's documented checks where the schema says `user: all`.
 */

/** An ACL path template, as the schema writes it. */
export type AclPath =
  | "/"
  | "/vms/{vmid}"
  | "/vms/{newid}"
  | "/storage/{storage}"
  | "/nodes/{node}";

/** One privilege a tool needs. */
export interface Privilege {
  /** The privilege; with several, any one of them is enough. */
  privs: readonly string[];
  /** Where PVE checks it. */
  on: AclPath;
  /** What PVE 8.x checks instead (the guest agent's privileges were split in 9.0). */
  pve8?: readonly string[];
  /** Needed only for some arguments or outcomes: why (`start: true`). */
  only?: string;
}

type Extra = Pick<Privilege, "pve8" | "only">;

/** A privilege on the guest (`/vms/{vmid}`); an array means any one of them. */
export function vm(priv: string | string[], extra: Extra = {}): Privilege {
  return { privs: [priv].flat(), on: "/vms/{vmid}", ...extra };
}
/** A privilege on a guest the tool creates (`/vms/{newid}`). */
export function newVm(priv: string | string[], extra: Extra = {}): Privilege {
  return { privs: [priv].flat(), on: "/vms/{newid}", ...extra };
}
/** A privilege on a storage (`/storage/{storage}`). */
export function storage(
  priv: string | string[],
  extra: Extra = {},
): Privilege {
  return { privs: [priv].flat(), on: "/storage/{storage}", ...extra };
}
/** A privilege on a node (`/nodes/{node}`). */
export function node(priv: string | string[], extra: Extra = {}): Privilege {
  return { privs: [priv].flat(), on: "/nodes/{node}", ...extra };
}

/**
 * The guest agent's privileges on `/vms/{vmid}` per release (quirks.ts's
 * agentExecPrivilege and agentFilePrivilege; 8.x checks VM.Monitor).
 */
export const AGENT: {
  readonly exec: Privilege;
  readonly read: Privilege;
  readonly write: Privilege;
} = {
  exec: vm("VM.GuestAgent.Unrestricted", { pve8: ["VM.Monitor"] }),
  read: vm(["VM.GuestAgent.FileRead", "VM.GuestAgent.Unrestricted"], {
    pve8: ["VM.Monitor"],
  }),
  write: vm(["VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted"], {
    pve8: ["VM.Monitor"],
  }),
};

/** What GET /access/permissions answers: path → {privilege: 1|0 (propagate)}. */
export type Permissions = Record<string, Record<string, number>>;

/** The privileges that apply on a release ("8.4", "9.1", "unknown"). */
export function privsOn(p: Privilege, release: string): readonly string[] {
  return p.pve8 && /^[1-8]\./.test(release) ? p.pve8 : p.privs;
}

/** The top of an ACL template: "/vms/{vmid}" → "/vms". */
function topOf(on: AclPath): string {
  return on === "/" ? "/" : "/" + on.split("/")[1];
}

/**
 * Where a privilege is held for objects under a template: `all` when it is
 * held on every object (on `/` or the top path with propagation), `some`
 * when only on some objects, `none` otherwise. Pool members are listed by
 * PVE as their own paths (/vms/105), so pools need no special case.
 */
export function reach(
  perms: Permissions,
  priv: string,
  on: AclPath,
): "all" | "some" | "none" {
  const top = topOf(on);
  let some = false;
  for (const [path, privs] of Object.entries(perms)) {
    const p = privs[priv];
    if (p === undefined) continue;
    if (path === "/") {
      if (p || top === "/") return "all";
    } else if (path === top) {
      if (p) return "all";
    } else if (path.startsWith(top + "/")) some = true;
  }
  return some ? "some" : "none";
}

/** A tool's standing under a credential's permissions. */
export interface Standing {
  /** yes: everywhere; some: only on some guests, storages or nodes; no: nowhere. */
  can: "yes" | "some" | "no";
  /** Privileges held nowhere: `VM.PowerMgmt on /vms/{vmid}`. */
  missing: string[];
  /** Optional privileges held nowhere, with what they are for. */
  limited: string[];
}

/** Text for one privilege: `VM.PowerMgmt on /vms/{vmid}`, `A|B on ...`. */
export function describe(p: Privilege, release = "9"): string {
  return `${privsOn(p, release).join("|")} on ${p.on}`;
}

/** How far a tool with these privileges can run under `perms`. */
export function standing(
  privileges: readonly Privilege[],
  perms: Permissions,
  release: string,
): Standing {
  const missing: string[] = [];
  const limited: string[] = [];
  let can: Standing["can"] = "yes";
  for (const p of privileges) {
    const reaches = privsOn(p, release).map((priv) => reach(perms, priv, p.on));
    const r = reaches.includes("all")
      ? "all"
      : reaches.includes("some")
      ? "some"
      : "none";
    if (r === "none") {
      if (p.only) limited.push(`${describe(p, release)} (${p.only})`);
      else missing.push(describe(p, release));
    } else if (r === "some" && !p.only) can = can === "no" ? "no" : "some";
  }
  if (missing.length) can = "no";
  return { can, missing, limited };
}

/** A 403's privilege and path, from PVE's "Permission check failed (/vms/105, VM.PowerMgmt)". */
export function parseDenied(
  message: string,
): { path: string; privs: string[] } | undefined {
  const m = /Permission check failed \(([^,()]+), ([^()]+)\)/.exec(message);
  if (!m) return undefined;
  return { path: m[1].trim(), privs: m[2].trim().split("|") };
}

/** The markdown table of tools and privileges for README.md. */
export function privilegeTable(
  tools: readonly { name: string; privileges?: readonly Privilege[] }[],
): string {
  const rows = tools.map((t) => {
    const need = (t.privileges ?? []).filter((p) => !p.only);
    const opt = (t.privileges ?? []).filter((p) => p.only);
    const cell = (p: Privilege) =>
      `${p.privs.join(" or ")}${
        p.pve8 ? ` (8.x: ${p.pve8.join(" or ")})` : ""
      } on \`${p.on}\`${p.only ? ` (${p.only})` : ""}`;
    return `| \`${t.name}\` | ${need.map(cell).join("; ") || "none"} | ${
      opt.map(cell).join("; ") || ""
    } |`;
  });
  return [
    "| Tool | Needs | Also, for some arguments |",
    "|---|---|---|",
    ...rows,
  ].join("\n");
}

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
import type { PveClient } from "../proxmox/client.ts";
import { logger } from "../log.ts";
import {
  effectivePermissions,
  type Permissions,
  release,
} from "../proxmox/api/access.ts";

export type { Permissions };

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

/** The privileges that apply on a release ("8.4", "9.1", "unknown"). */
function privsOn(p: Privilege, release: string): readonly string[] {
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

/** The markdown table of tools and privileges for README.md. */
export function privilegeTable(
  tools: readonly { name: string; privileges?: readonly Privilege[] }[],
): string {
  const rows: string[][] = tools.map((t) => {
    const need = (t.privileges ?? []).filter((p) => !p.only);
    const opt = (t.privileges ?? []).filter((p) => p.only);
    const cell = (p: Privilege) =>
      `${p.privs.join(" or ")}${
        p.pve8 ? ` (8.x: ${p.pve8.join(" or ")})` : ""
      } on \`${p.on}\`${p.only ? ` (${p.only})` : ""}`;
    return [
      `\`${t.name}\``,
      need.map(cell).join("; ") || "none",
      opt.map(cell).join("; "),
    ];
  });
  // Aligned as deno fmt writes markdown tables.
  const all = [["Tool", "Needs", "Also, for some arguments"], ...rows];
  const widths = [0, 1, 2].map((c) =>
    Math.max(3, ...all.map((r) => [...r[c]].length))
  );
  const line = (r: string[]) =>
    `| ${
      r.map((x, c) => x + " ".repeat(widths[c] - [...x].length)).join(" | ")
    } |`;
  return [
    line(all[0]),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ].join("\n");
}

/** The credential the server acts as, for advice: `ops@pve!mcp` (token) or `ops@pve`. */
export interface Credential {
  id: string;
  token: boolean;
}

/**
 * What to grant after a 403: the privilege PVE named, or, when PVE named
 * none, what the tool needs.
 */
export function grantAdvice(
  denied: { path: string; privs: string[] } | undefined,
  tool: { name: string; privileges?: readonly Privilege[] },
  who: Credential,
): string {
  const flag = who.token ? "--tokens" : "--users";
  if (denied) {
    return `Grant ${who.id} a role with ${
      denied.privs.join(" or ")
    } on ${denied.path} (pveum acl modify ${denied.path} --roles <role> ${flag} '${who.id}'${
      who.token
        ? "; a token with privilege separation needs it in its user's ACLs too"
        : ""
    }); proxmox_whoami shows what it holds`;
  }
  const need = (tool.privileges ?? []).filter((p) => !p.only).map((p) =>
    describe(p)
  );
  return `${tool.name} needs ${
    need.join(", ") || "no special privilege"
  }; proxmox_whoami shows what ${who.id} holds`;
}

/** Who the configured credential is. */
export function credentialOf(
  config: {
    auth: { kind: string; user?: string; tokenId?: string };
  },
): Credential {
  return config.auth.kind === "token"
    ? { id: config.auth.tokenId ?? "", token: true }
    : { id: config.auth.user ?? "", token: false };
}

/** A credential's permissions and the release they were read on. */
export interface Known {
  perms: Permissions;
  release: string;
}

const known = new WeakMap<object, Promise<Known>>();
const settled = new WeakMap<object, Known>();

/**
 * The permissions of the credential behind `pve`, read once (GET
 * /access/permissions, the first call logs in) and kept; a failed read is
 * not kept, so the next caller tries again.
 */
function knownPermissions(pve: PveClient): Promise<Known> {
  let p = known.get(pve);
  if (!p) {
    p = Promise.all([effectivePermissions(pve), release(pve)]).then(
      ([perms, rel]) => {
        const k = { perms, release: rel };
        settled.set(pve, k);
        return k;
      },
    );
    known.set(pve, p);
    p.catch(() => {
      if (known.get(pve) === p) known.delete(pve);
    });
  }
  return p;
}

/** The permissions if already read, without waiting. */
function peekPermissions(pve: PveClient): Known | undefined {
  return settled.get(pve);
}

/** Whether a tool can run anywhere under what is known (true when unknown). */
function permitted(
  tool: { privileges?: readonly Privilege[] },
  k: Known | undefined,
): boolean {
  return !k || standing(tool.privileges ?? [], k.perms, k.release).can !== "no";
}

/** What hideUnpermitted needs of the SDK's McpServer and its registered tools. */
export interface Hideable {
  isConnected(): boolean;
  sendToolListChanged(): void;
}

const log = logger("privileges");

/** Waits between reads of the permissions while they fail (the last repeats). */
const RETRY_MS: readonly number[] = [
  1_000,
  2_000,
  5_000,
  10_000,
  30_000,
];

/** One credential's read of its permissions, until it succeeds. */
interface Watch {
  /** Servers to tell once they are read (held weakly: a closed one goes). */
  waiting: Set<WeakRef<Hideable>>;
  /** Failed reads in a row (this outage). */
  failures: number;
  /** No read before this time (ms since epoch). */
  retryAt: number;
  /** A read, or the timer for the next one, is pending. */
  busy: boolean;
}

const watches = new WeakMap<object, Watch>();
/** What each waiting server does once a credential's permissions are read. */
const onKnown = new WeakMap<Hideable, Map<PveClient, (k: Known) => void>>();

/**
 * Reads the permissions of the credential behind `pve` in one loop per
 * credential, however many servers wait for them (stateless HTTP builds one
 * per request): while Proxmox is down, at most one read per RETRY_MS step,
 * not one per request, and one WARNING per outage. Each waiting server hears
 * once, when they are read. The loop goes on while a waiting server is
 * connected (a session, stdio), else it rests until the next server comes,
 * keeping its place in the back-off.
 */
function whenKnown(
  pve: PveClient,
  server: Hideable,
  then: (k: Known) => void,
): void {
  let mine = onKnown.get(server);
  if (!mine) onKnown.set(server, mine = new Map());
  mine.set(pve, then);
  let w = watches.get(pve);
  if (!w) {
    w = { waiting: new Set(), failures: 0, retryAt: 0, busy: false };
    watches.set(pve, w);
  }
  // Servers closed meanwhile go now, not at the next failed read: while a
  // retry waits, each stateless request adds one.
  for (const ref of w.waiting) {
    const s = ref.deref();
    if (!s || s === server || !s.isConnected()) w.waiting.delete(ref);
  }
  w.waiting.add(new WeakRef(server));
  if (w.busy) return;
  w.busy = true;
  const watch = w;
  const later = (at: number) => {
    const t = setTimeout(attempt, Math.max(0, at - Date.now()));
    Deno.unrefTimer(t);
  };
  const attempt = () =>
    knownPermissions(pve).then((k) => {
      watches.delete(pve);
      if (watch.failures) {
        log.info(
          `Read the Proxmox permissions after ${watch.failures} failed tries`,
        );
      }
      for (const ref of watch.waiting) {
        const s = ref.deref();
        if (!s) continue;
        try {
          onKnown.get(s)?.get(pve)?.(k);
        } catch (e) {
          // One server's failure (a transport closing as it is told) is
          // no reason to leave the others untold, or to reject unhandled.
          log.error("Could not apply the Proxmox permissions to a server", {
            error: (e as Error)?.message ?? String(e),
          });
        }
      }
    }, (e) => {
      watch.failures++;
      watch.retryAt = Date.now() +
        RETRY_MS[Math.min(watch.failures, RETRY_MS.length) - 1];
      const why = (e as Error)?.message ?? String(e);
      if (watch.failures === 1) {
        log.warning(
          `Cannot read the Proxmox permissions (${why}); every tool stays listed, trying again (every ${
            RETRY_MS.at(-1)! / 1000
          } s at most) until it succeeds`,
        );
      } else {
        log.debug(`Still cannot read the Proxmox permissions (${why})`, {
          tries: watch.failures,
        });
      }
      for (const ref of watch.waiting) {
        const s = ref.deref();
        if (!s || !s.isConnected()) watch.waiting.delete(ref);
      }
      if (watch.waiting.size) later(watch.retryAt);
      else watch.busy = false;
    });
  if (w.retryAt > Date.now()) later(w.retryAt);
  else attempt();
}

/** How many servers wait for the permissions behind `pve` (for tests). */
export function waitingServers(pve: PveClient): number {
  return watches.get(pve)?.waiting.size ?? 0;
}

/**
 * MCP_HIDE_UNPERMITTED: disables the tools the credential cannot use
 * anywhere; with several clusters (a credential each), the tools no
 * cluster's credential can use. Known permissions apply at once (nothing was
 * listed yet); otherwise they are read after the first login (one loop per
 * credential, see whenKnown), nothing is hidden until every credential's are
 * known, and one notifications/tools/list_changed tells a connected client.
 */
export function hideUnpermitted(
  server: Hideable,
  pve: PveClient | readonly PveClient[],
  registered: readonly [
    { name: string; privileges?: readonly Privilege[] },
    { enabled: boolean },
  ][],
): void {
  const pves = Array.isArray(pve) ? pve : [pve as PveClient];
  const known = pves.map(peekPermissions);
  const apply = (): string[] => {
    const hidden: string[] = [];
    for (const [tool, rt] of registered) {
      if (rt.enabled && !known.some((k) => permitted(tool, k))) {
        rt.enabled = false;
        hidden.push(tool.name);
      }
    }
    return hidden;
  };
  const ready = () => known.every((k) => k !== undefined);
  if (ready()) {
    apply();
    return;
  }
  pves.forEach((p, i) => {
    if (known[i]) return;
    whenKnown(p, server, (k) => {
      known[i] = k;
      if (!ready()) return;
      const hidden = apply();
      // A closed server (a stateless request's, long answered) tells no one.
      if (!hidden.length || !server.isConnected()) return;
      log.info(
        `Hiding ${hidden.length} tools ${
          pves.length > 1
            ? "no cluster's Proxmox credential can use"
            : "the Proxmox credential cannot use"
        }: ${hidden.join(", ")}`,
      );
      server.sendToolListChanged();
    });
  });
}

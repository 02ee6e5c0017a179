/**
 * Users, API tokens, roles, pools and ACLs, and PVE's permission checks
 * (PVE::RPCEnvironment::permissions and exec_api2_perm_check): a deeper ACL
 * path replaces what was inherited, a user's own entry beats its groups',
 * pool ACLs reach their members without propagating, and a token with
 * privilege separation holds the intersection of its own and its user's
 * privileges. root@pam holds everything. Refusals carry PVE's wording:
 * `Permission check failed (/vms/105, VM.PowerMgmt)`.
 */
import { type Cluster, SimError } from "./state.ts";

/** A permission check as the schema writes it (`["perm", path, privs, "any", 1]`). */
export type Check = readonly unknown[];

/** Every privilege of PVE 9.x (Administrator). */
const PRIVS_9 = [
  "Datastore.Allocate",
  "Datastore.AllocateSpace",
  "Datastore.AllocateTemplate",
  "Datastore.Audit",
  "Group.Allocate",
  "Mapping.Audit",
  "Mapping.Modify",
  "Mapping.Use",
  "Permissions.Modify",
  "Pool.Allocate",
  "Pool.Audit",
  "Realm.Allocate",
  "Realm.AllocateUser",
  "SDN.Allocate",
  "SDN.Audit",
  "SDN.Use",
  "Sys.AccessNetwork",
  "Sys.Audit",
  "Sys.Console",
  "Sys.Incoming",
  "Sys.Modify",
  "Sys.PowerMgmt",
  "Sys.Syslog",
  "User.Modify",
  "VM.Allocate",
  "VM.Audit",
  "VM.Backup",
  "VM.Clone",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Cloudinit",
  "VM.Config.Disk",
  "VM.Config.HWType",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Options",
  "VM.Console",
  "VM.GuestAgent.Audit",
  "VM.GuestAgent.FileRead",
  "VM.GuestAgent.FileSystemMgmt",
  "VM.GuestAgent.FileWrite",
  "VM.GuestAgent.Unrestricted",
  "VM.Migrate",
  "VM.PowerMgmt",
  "VM.Snapshot",
  "VM.Snapshot.Rollback",
];
/** 8.x has VM.Monitor where 9.x has the VM.GuestAgent.* privileges. */
const PRIVS_8 = [
  ...PRIVS_9.filter((p) => !p.startsWith("VM.GuestAgent.")),
  "VM.Monitor",
].sort();

/** The built-in roles the tests and the README use (PVE's names). */
function builtinRoles(pve8: boolean): Map<string, Set<string>> {
  const all = pve8 ? PRIVS_8 : PRIVS_9;
  const agent = pve8
    ? ["VM.Monitor"]
    : all.filter((p) => p.startsWith("VM.GuestAgent."));
  const vmUser = [
    "VM.Audit",
    "VM.Backup",
    "VM.Config.CDROM",
    "VM.Config.Cloudinit",
    "VM.Console",
    "VM.PowerMgmt",
    "Pool.Audit",
    "Datastore.AllocateSpace",
    "Datastore.Audit",
  ];
  return new Map(
    Object.entries({
      Administrator: all,
      NoAccess: [],
      PVEAuditor: all.filter((p) =>
        /\.Audit$/.test(p) && !p.startsWith("VM.GuestAgent.")
      ),
      PVEVMUser: vmUser,
      PVEVMAdmin: [
        ...all.filter((p) => p.startsWith("VM.") && p !== "VM.Monitor"),
        ...agent,
        "Pool.Audit",
        "Datastore.AllocateSpace",
        "Datastore.Audit",
        "SDN.Use",
      ],
      PVEDatastoreUser: ["Datastore.AllocateSpace", "Datastore.Audit"],
      PVEDatastoreAdmin: [
        "Datastore.Allocate",
        "Datastore.AllocateSpace",
        "Datastore.AllocateTemplate",
        "Datastore.Audit",
      ],
    }).map(([k, v]) => [k, new Set(v)]),
  );
}

interface AclEntry {
  path: string;
  /** A user id, a full token id (`user@realm!name`) or `@group`. */
  ugid: string;
  role: string;
  propagate: boolean;
}

/** The access configuration of the simulated cluster. */
export class Access {
  /** userid → password (for tickets). */
  readonly users: Map<string, { password?: string }> = new Map();
  /** full token id → secret and privilege separation. */
  readonly tokens: Map<string, { secret: string; privsep: boolean }> =
    new Map();
  readonly groups: Map<string, Set<string>> = new Map();
  readonly roles: Map<string, Set<string>>;
  readonly pools: Map<string, { vms: Set<number>; storage: Set<string> }> =
    new Map();
  readonly acl: AclEntry[] = [];
  readonly #pve8: boolean;

  constructor(pve8: boolean) {
    this.#pve8 = pve8;
    this.roles = builtinRoles(pve8);
  }

  /** A user (`ops@pve`) that can log in with `password`. */
  addUser(userid: string, password?: string): void {
    this.users.set(userid, { password });
  }

  /** An API token of a user; privilege separation is on by default, as in PVE. */
  addToken(
    userid: string,
    name: string,
    options: { secret?: string; privsep?: boolean } = {},
  ): { tokenId: string; secret: string } {
    if (!this.users.has(userid)) this.addUser(userid);
    const tokenId = `${userid}!${name}`;
    const secret = options.secret ?? crypto.randomUUID();
    this.tokens.set(tokenId, { secret, privsep: options.privsep ?? true });
    return { tokenId, secret };
  }

  addRole(roleid: string, privs: string[]): void {
    this.roles.set(roleid, new Set(privs));
  }

  addPool(pool: string, members: { vms?: number[]; storage?: string[] }) {
    this.pools.set(pool, {
      vms: new Set(members.vms ?? []),
      storage: new Set(members.storage ?? []),
    });
  }

  /** `pveum acl modify <path> --roles <role> --users|--tokens|--groups <ugid>`. */
  grant(
    path: string,
    ugid: string,
    role: string,
    options: { propagate?: boolean } = {},
  ): void {
    if (!this.roles.has(role)) throw new RangeError(`Unknown role '${role}'`);
    this.acl.push({
      path: normalize(path),
      ugid,
      role,
      propagate: options.propagate ?? true,
    });
  }

  /** Roles of a user or token on a path (PVE::AccessControl::roles), pools aside. */
  #roles(ugid: string, path: string): Map<string, boolean> {
    let roles = new Map<string, boolean>();
    const paths = [...new Set(this.acl.map((e) => e.path))].sort();
    for (const p of paths) {
      const final = p === path;
      if (!(p === "/" || final || path.startsWith(p + "/"))) continue;
      const here = this.acl.filter((e) => e.path === p);
      const take = (entries: AclEntry[]) => {
        const next = new Map<string, boolean>();
        for (const e of entries) {
          if (final || e.propagate) next.set(e.role, e.propagate);
        }
        return next.size ? next : undefined;
      };
      const own = take(here.filter((e) => e.ugid === ugid));
      if (own) {
        roles = own;
        continue;
      }
      const grp = take(
        here.filter((e) =>
          e.ugid.startsWith("@") &&
          this.groups.get(e.ugid.slice(1))?.has(ugid)
        ),
      );
      if (grp) roles = grp;
    }
    if (roles.has("NoAccess")) {
      return new Map([["NoAccess", roles.get("NoAccess")!]]);
    }
    return roles;
  }

  /** Privileges held on a path: privilege → propagate (1|0). */
  permissions(who: string, path: string): Map<string, number> {
    path = normalize(path);
    const all = this.#pve8 ? PRIVS_8 : PRIVS_9;
    if (who === "root@pam") return new Map(all.map((p) => [p, 1]));
    const bang = who.indexOf("!");
    if (bang >= 0) {
      const token = this.tokens.get(who);
      if (!token) return new Map();
      const user = this.permissions(who.slice(0, bang), path);
      if (!token.privsep) return user;
      const own = this.#compile(who, path);
      return new Map(
        [...own].filter(([p]) => user.has(p)).map((
          [p, v],
        ) => [p, v && user.get(p)! ? 1 : 0]),
      );
    }
    if (!this.users.has(who)) return new Map();
    return this.#compile(who, path);
  }

  #compile(ugid: string, path: string): Map<string, number> {
    const roles = this.#roles(ugid, path);
    // Pool ACLs reach the pool's members, never propagated, and never
    // over a NoAccess set on the path itself.
    const m = /^\/(vms|storage)\/([^/]+)$/.exec(path);
    if (m && !roles.has("NoAccess")) {
      for (const [pool, members] of this.pools) {
        const member = m[1] === "vms"
          ? members.vms.has(Number(m[2]))
          : members.storage.has(m[2]);
        if (!member) continue;
        const poolRoles = this.#roles(ugid, `/pool/${pool}`);
        if (poolRoles.has("NoAccess")) {
          roles.clear();
          roles.set("NoAccess", false);
          break;
        }
        for (const r of poolRoles.keys()) {
          if (!roles.has(r)) roles.set(r, false);
        }
      }
    }
    const privs = new Map<string, number>();
    for (const [role, propagate] of roles) {
      for (const p of this.roles.get(role) ?? []) {
        privs.set(p, (privs.get(p) ?? 0) || (propagate ? 1 : 0));
      }
    }
    return privs;
  }

  /** Whether `who` holds `privs` (all, or any with `any`) on `path`. */
  holds(who: string, path: string, privs: string[], any = false): boolean {
    const held = this.permissions(who, path);
    return any
      ? privs.some((p) => held.has(p))
      : privs.every((p) => held.has(p));
  }

  /** Throws PVE's 403 unless `who` holds `privs` on `path`. */
  check(who: string, path: string, privs: string[], any = false): void {
    path = normalize(path);
    const held = this.permissions(who, path);
    if (any) {
      if (!privs.some((p) => held.has(p))) throw denied(path, privs.join("|"));
      return;
    }
    for (const p of privs) if (!held.has(p)) throw denied(path, p);
  }

  /** exec_api2_perm_check: throws PVE's 403 when the check fails. */
  run(who: string, check: Check, params: Record<string, unknown>): boolean {
    return this.#exec(who, check, params, false);
  }

  #exec(
    who: string,
    check: Check,
    params: Record<string, unknown>,
    noerr: boolean,
  ): boolean {
    const [test, ...rest] = check;
    if (test === "and") {
      for (const sub of rest) this.#exec(who, sub as Check, params, false);
      return true;
    }
    if (test === "or") {
      for (const sub of rest) {
        if (this.#exec(who, sub as Check, params, true)) return true;
      }
      if (noerr) return false;
      throw denied();
    }
    if (test === "perm") {
      const [tmpl, privs, ...opts] = rest as [string, string[], ...unknown[]];
      const o: Record<string, unknown> = {};
      for (let i = 0; i + 1 < opts.length; i += 2) {
        o[String(opts[i])] = opts[i + 1];
      }
      if (o.require_param && params[String(o.require_param)] === undefined) {
        if (noerr) return false;
        throw denied();
      }
      const path = tmpl.replace(
        /\{(\w+)\}/g,
        (_, k) => String(params[k] ?? ""),
      );
      if (noerr) return this.holds(who, normalize(path), privs, !!o.any);
      this.check(who, path, privs, !!o.any);
      return true;
    }
    if (test === "userid-param" || test === "userid-group") {
      // Simplified: oneself, or User.Modify on /access/groups.
      if (params.userid === who) return true;
      if (this.holds(who, "/access/groups", ["User.Modify"])) return true;
      if (noerr) return false;
      throw denied();
    }
    return true;
  }

  /** GET /access/permissions as PVE answers it (get_effective_permissions). */
  effective(
    who: string,
    path?: string,
  ): Record<string, Record<string, number>> {
    const paths = new Set(
      path !== undefined ? [normalize(path)] : [
        "/",
        "/access",
        "/access/groups",
        "/nodes",
        "/pool",
        "/sdn",
        "/storage",
        "/vms",
        ...this.acl.map((e) => e.path),
        ...[...this.pools.values()].flatMap((p) => [
          ...[...p.vms].map((v) => `/vms/${v}`),
          ...[...p.storage].map((s) => `/storage/${s}`),
        ]),
      ],
    );
    const out: Record<string, Record<string, number>> = {};
    for (const p of paths) {
      const privs = this.permissions(who, p);
      if (privs.size) out[p] = Object.fromEntries(privs);
    }
    return out;
  }
}

function normalize(path: string): string {
  const p = "/" + path.split("/").filter(Boolean).join("/");
  return p;
}

/** PVE's raise_perm_exc: `Permission check failed (path, priv)`. */
export function denied(path?: string, what?: string): SimError {
  return new SimError(
    403,
    path === undefined
      ? "Permission check failed"
      : `Permission check failed (${path}, ${what})`,
  );
}

/** The schema's permission checks of the routes the simulator serves (generated from pve-api-schema.json). */
export const CHECKS: Record<string, Check> = {
  "GET /access/users/{userid}/token/{tokenid}": [
    "or",
    ["userid-param", "self"],
    ["userid-group", ["User.Modify"]],
  ],
  "GET /nodes/{node}/status": ["perm", "/nodes/{node}", ["Sys.Audit"]],
  "GET /cluster/status": ["perm", "/", ["Sys.Audit"]],
  "GET /nodes/{node}/qemu/{vmid}/status/current": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/config": ["perm", "/vms/{vmid}", ["VM.Audit"]],
  "GET /nodes/{node}/qemu/{vmid}/pending": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/rrddata": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "GET /nodes/{node}/lxc/{vmid}/status/current": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "GET /nodes/{node}/lxc/{vmid}/config": ["perm", "/vms/{vmid}", ["VM.Audit"]],
  "GET /nodes/{node}/lxc/{vmid}/pending": ["perm", "/vms/{vmid}", ["VM.Audit"]],
  "GET /nodes/{node}/lxc/{vmid}/rrddata": ["perm", "/vms/{vmid}", ["VM.Audit"]],
  "GET /nodes/{node}/qemu/{vmid}/snapshot": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/snapshot": ["perm", "/vms/{vmid}", [
    "VM.Snapshot",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback": [
    "perm",
    "/vms/{vmid}",
    ["VM.Snapshot", "VM.Snapshot.Rollback"],
    "any",
    1,
  ],
  "DELETE /nodes/{node}/qemu/{vmid}/snapshot/{snapname}": [
    "perm",
    "/vms/{vmid}",
    ["VM.Snapshot"],
  ],
  "GET /nodes/{node}/lxc/{vmid}/snapshot": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/snapshot": ["perm", "/vms/{vmid}", [
    "VM.Snapshot",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback": [
    "perm",
    "/vms/{vmid}",
    ["VM.Snapshot", "VM.Snapshot.Rollback"],
    "any",
    1,
  ],
  "DELETE /nodes/{node}/lxc/{vmid}/snapshot/{snapname}": [
    "perm",
    "/vms/{vmid}",
    ["VM.Snapshot"],
  ],
  "POST /nodes/{node}/qemu/{vmid}/status/start": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/status/stop": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/status/shutdown": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/status/reboot": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/status/resume": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/status/start": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/status/stop": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/status/shutdown": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/status/reboot": ["perm", "/vms/{vmid}", [
    "VM.PowerMgmt",
  ]],
  "PUT /nodes/{node}/qemu/{vmid}/config": [
    "perm",
    "/vms/{vmid}",
    [
      "VM.Config.Disk",
      "VM.Config.CDROM",
      "VM.Config.CPU",
      "VM.Config.Memory",
      "VM.Config.Network",
      "VM.Config.HWType",
      "VM.Config.Options",
      "VM.Config.Cloudinit",
    ],
    "any",
    1,
  ],
  "POST /nodes/{node}/qemu/{vmid}/config": [
    "perm",
    "/vms/{vmid}",
    [
      "VM.Config.Disk",
      "VM.Config.CDROM",
      "VM.Config.CPU",
      "VM.Config.Memory",
      "VM.Config.Network",
      "VM.Config.HWType",
      "VM.Config.Options",
      "VM.Config.Cloudinit",
    ],
    "any",
    1,
  ],
  "PUT /nodes/{node}/lxc/{vmid}/config": [
    "perm",
    "/vms/{vmid}",
    [
      "VM.Config.Disk",
      "VM.Config.CPU",
      "VM.Config.Memory",
      "VM.Config.Network",
      "VM.Config.Options",
    ],
    "any",
    1,
  ],
  "PUT /nodes/{node}/qemu/{vmid}/resize": ["perm", "/vms/{vmid}", [
    "VM.Config.Disk",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/migrate": ["perm", "/vms/{vmid}", [
    "VM.Migrate",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/migrate": ["perm", "/vms/{vmid}", [
    "VM.Migrate",
  ]],
  "DELETE /nodes/{node}/qemu/{vmid}": ["perm", "/vms/{vmid}", ["VM.Allocate"]],
  "DELETE /nodes/{node}/lxc/{vmid}": ["perm", "/vms/{vmid}", ["VM.Allocate"]],
  "POST /nodes/{node}/qemu/{vmid}/clone": ["and", ["perm", "/vms/{vmid}", [
    "VM.Clone",
  ]], ["or", ["perm", "/vms/{newid}", ["VM.Allocate"]], [
    "perm",
    "/pool/{pool}",
    ["VM.Allocate"],
    "require_param",
    "pool",
  ]]],
  "GET /nodes/{node}/storage/{storage}/status": [
    "perm",
    "/storage/{storage}",
    ["Datastore.Audit", "Datastore.AllocateSpace"],
    "any",
    1,
  ],
  "GET /nodes/{node}/storage/{storage}/content": [
    "perm",
    "/storage/{storage}",
    ["Datastore.Audit", "Datastore.AllocateSpace"],
    "any",
    1,
  ],
  "POST /nodes/{node}/qemu/{vmid}/agent/ping": [
    "perm",
    "/vms/{vmid}",
    ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"],
    "any",
    1,
  ],
  "GET /nodes/{node}/qemu/{vmid}/agent/get-osinfo": [
    "perm",
    "/vms/{vmid}",
    ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"],
    "any",
    1,
  ],
  "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces": [
    "perm",
    "/vms/{vmid}",
    ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"],
    "any",
    1,
  ],
  "POST /nodes/{node}/qemu/{vmid}/agent/exec": ["perm", "/vms/{vmid}", [
    "VM.GuestAgent.Unrestricted",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/agent/exec-status": ["perm", "/vms/{vmid}", [
    "VM.GuestAgent.Unrestricted",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/agent/file-read": [
    "perm",
    "/vms/{vmid}",
    ["VM.GuestAgent.FileRead", "VM.GuestAgent.Unrestricted"],
    "any",
    1,
  ],
  "POST /nodes/{node}/qemu/{vmid}/agent/file-write": [
    "perm",
    "/vms/{vmid}",
    ["VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted"],
    "any",
    1,
  ],
  "GET /nodes/{node}/qemu/{vmid}/firewall/rules": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/firewall/rules": ["perm", "/vms/{vmid}", [
    "VM.Config.Network",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/firewall/rules/{pos}": [
    "perm",
    "/vms/{vmid}",
    ["VM.Audit"],
  ],
  "PUT /nodes/{node}/qemu/{vmid}/firewall/rules/{pos}": [
    "perm",
    "/vms/{vmid}",
    ["VM.Config.Network"],
  ],
  "DELETE /nodes/{node}/qemu/{vmid}/firewall/rules/{pos}": [
    "perm",
    "/vms/{vmid}",
    ["VM.Config.Network"],
  ],
  "GET /nodes/{node}/qemu/{vmid}/firewall/options": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "PUT /nodes/{node}/qemu/{vmid}/firewall/options": ["perm", "/vms/{vmid}", [
    "VM.Config.Network",
  ]],
  "GET /nodes/{node}/lxc/{vmid}/firewall/rules": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "POST /nodes/{node}/lxc/{vmid}/firewall/rules": ["perm", "/vms/{vmid}", [
    "VM.Config.Network",
  ]],
  "GET /nodes/{node}/lxc/{vmid}/firewall/rules/{pos}": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "PUT /nodes/{node}/lxc/{vmid}/firewall/rules/{pos}": ["perm", "/vms/{vmid}", [
    "VM.Config.Network",
  ]],
  "DELETE /nodes/{node}/lxc/{vmid}/firewall/rules/{pos}": [
    "perm",
    "/vms/{vmid}",
    ["VM.Config.Network"],
  ],
  "GET /nodes/{node}/lxc/{vmid}/firewall/options": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
  "PUT /nodes/{node}/lxc/{vmid}/firewall/options": ["perm", "/vms/{vmid}", [
    "VM.Config.Network",
  ]],
  "GET /nodes/{node}/lxc/{vmid}/interfaces": ["perm", "/vms/{vmid}", [
    "VM.Audit",
  ]],
};

export const CHECKS_PVE8: Record<string, Check> = {
  "POST /nodes/{node}/qemu/{vmid}/agent/ping": ["perm", "/vms/{vmid}", [
    "VM.Monitor",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/agent/get-osinfo": ["perm", "/vms/{vmid}", [
    "VM.Monitor",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces": [
    "perm",
    "/vms/{vmid}",
    ["VM.Monitor"],
  ],
  "POST /nodes/{node}/qemu/{vmid}/agent/exec": ["perm", "/vms/{vmid}", [
    "VM.Monitor",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/agent/exec-status": ["perm", "/vms/{vmid}", [
    "VM.Monitor",
  ]],
  "GET /nodes/{node}/qemu/{vmid}/agent/file-read": ["perm", "/vms/{vmid}", [
    "VM.Monitor",
  ]],
  "POST /nodes/{node}/qemu/{vmid}/agent/file-write": ["perm", "/vms/{vmid}", [
    "VM.Monitor",
  ]],
};

/** The user of a UPID (`UPID:node:pid:pstart:starttime:type:id:user:`). */
function upidUser(upid: unknown): string | undefined {
  return typeof upid === "string" ? upid.split(":")[7] : undefined;
}

/**
 * The checks PVE's handlers make themselves where the schema says
 * `user: all` (create, restore, vzdump, tasks), before the handler runs.
 */
export function handlerChecks(
  access: Access,
  who: string,
  route: string,
  params: Record<string, unknown>,
  cluster: Cluster,
): void {
  const guestExists = (vmid: number) => cluster.guests.has(vmid);
  const p = (k: string) =>
    params[k] === undefined ? undefined : String(params[k]);
  if (
    route === "POST /nodes/{node}/qemu" || route === "POST /nodes/{node}/lxc"
  ) {
    const vmid = p("vmid");
    const restore = p("archive") !== undefined &&
      (route.endsWith("qemu") || p("restore") === "1");
    const force = p("force") === "1" || p("force") === "true";
    const pool = p("pool");
    if (
      !access.holds(who, `/vms/${vmid}`, ["VM.Allocate"]) &&
      !(pool && access.holds(who, `/pool/${pool}`, ["VM.Allocate"])) &&
      !(restore && force && guestExists(Number(vmid)) &&
        access.holds(who, `/vms/${vmid}`, ["VM.Backup"]))
    ) throw denied();
    const storage = p("storage") ??
      (p("rootfs") ?? "").split(":")[0] ?? "local";
    access.check(who, `/storage/${storage || "local"}`, [
      "Datastore.AllocateSpace",
    ]);
    return;
  }
  if (route === "POST /nodes/{node}/vzdump") {
    const storage = p("storage");
    if (storage) {
      access.check(who, `/storage/${storage}`, ["Datastore.AllocateSpace"]);
    }
    for (const v of (p("vmid") ?? "").split(/[,;\s]+/).filter(Boolean)) {
      access.check(who, `/vms/${v}`, ["VM.Backup"]);
    }
    return;
  }
  const guest =
    /^(?:PUT|POST) \/nodes\/\{node\}\/(qemu|lxc)\/\{vmid\}\/(config|clone|resize)$/
      .exec(route);
  if (guest) {
    const vmid = Number(p("vmid"));
    const conf = cluster.guests.get(vmid)?.config ?? {};
    const storeOf = (v: unknown) => String(v ?? "").split(/[:,]/)[0];
    if (guest[2] === "config") {
      // check_vm_modify_config_perm: each option its own privilege.
      const keys = [
        ...Object.keys(params),
        ...(p("delete") ?? "").split(/[,;\s]+/).filter(Boolean),
      ];
      for (const k of keys) {
        const priv = configPrivilege(guest[1] as "qemu" | "lxc", k);
        if (priv) access.check(who, `/vms/${vmid}`, [priv]);
      }
    } else if (guest[2] === "resize") {
      const sid = storeOf(conf[p("disk") ?? ""]);
      if (sid) {
        access.check(who, `/storage/${sid}`, ["Datastore.AllocateSpace"]);
      }
    } else {
      // check_storage_access_clone: every disk's storage (or the target).
      for (const [k, v] of Object.entries(conf)) {
        if (!DISK.test(k) || /media=cdrom/.test(String(v))) continue;
        const sid = p("storage") ?? storeOf(v);
        access.check(who, `/storage/${sid}`, ["Datastore.AllocateSpace"]);
      }
    }
    return;
  }
  const task = /^(GET|DELETE) \/nodes\/\{node\}\/tasks\/\{upid\}/.exec(route);
  if (task && upidUser(params.upid) !== who) {
    access.check(who, `/nodes/${p("node")}`, [
      task[1] === "DELETE" ? "Sys.Modify" : "Sys.Audit",
    ]);
  }
}

/** What PVE's listings leave out for a caller without the privilege to see it. */
export function filterListing(
  access: Access,
  who: string,
  route: string,
  params: Record<string, unknown>,
  data: unknown,
): unknown {
  if (!Array.isArray(data)) return data;
  const vm = (e: Record<string, unknown>) =>
    access.holds(who, `/vms/${e.vmid}`, ["VM.Audit"]);
  const store = (id: unknown) =>
    access.holds(who, `/storage/${id}`, [
      "Datastore.Audit",
      "Datastore.AllocateSpace",
    ], true);
  const task = (e: Record<string, unknown>) =>
    upidUser(e.upid) === who ||
    access.holds(who, `/nodes/${e.node ?? params.node}`, ["Sys.Audit"]);
  let keep: ((e: Record<string, unknown>) => boolean) | undefined;
  switch (route) {
    case "GET /cluster/resources":
      keep = (e) =>
        e.type === "qemu" || e.type === "lxc"
          ? vm(e)
          : e.type === "storage"
          ? store(e.storage)
          : e.type === "pool"
          ? access.holds(who, `/pool/${e.pool}`, ["Pool.Audit"])
          : true;
      break;
    case "GET /nodes/{node}/qemu":
    case "GET /nodes/{node}/lxc":
      keep = vm;
      break;
    case "GET /nodes/{node}/storage":
      keep = (e) => store(e.storage);
      break;
    case "GET /nodes/{node}/tasks":
    case "GET /cluster/tasks":
      keep = task;
      break;
  }
  if (!keep) return data;
  const kept = data.filter((e) => keep!(e as Record<string, unknown>));
  // A list's page carries PVE's `total` as a symbol: keep it.
  for (const sym of Object.getOwnPropertySymbols(data)) {
    (kept as unknown as Record<symbol, unknown>)[sym] =
      (data as unknown as Record<symbol, unknown>)[sym];
  }
  return kept;
}

const DISK = /^(ide|sata|scsi|virtio|efidisk|tpmstate|unused|rootfs|mp)\d*$/;
const NOT_OPTIONS = new Set([
  "node",
  "vmid",
  "digest",
  "delete",
  "revert",
  "skiplock",
  "background_delay",
]);

/** The privilege PVE's config update checks for one option (simplified). */
function configPrivilege(
  type: "qemu" | "lxc",
  key: string,
): string | undefined {
  if (NOT_OPTIONS.has(key)) return undefined;
  if (DISK.test(key)) return "VM.Config.Disk";
  if (/^net\d+$/.test(key)) return "VM.Config.Network";
  if (/^(cores|sockets|cpu|vcpus|cpulimit|cpuunits|numa|affinity)$/.test(key)) {
    return "VM.Config.CPU";
  }
  if (/^(memory|balloon|shares|swap)$/.test(key)) return "VM.Config.Memory";
  if (type === "lxc" && /^(hostname|nameserver|searchdomain)$/.test(key)) {
    return "VM.Config.Network";
  }
  if (
    type === "qemu" &&
    /^(ciuser|cipassword|citype|ciupgrade|cicustom|sshkeys|nameserver|searchdomain|ipconfig\d+)$/
      .test(key)
  ) return "VM.Config.Cloudinit";
  return "VM.Config.Options";
}

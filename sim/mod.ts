/**
 * A stateful Proxmox VE API simulator on Deno.serve, playing PVE 9.1 or 8.4:
 * PVE's paths, the `{data}` envelope and error shapes, ticket and token auth,
 * tasks with UPIDs, locks. Validates parameters against the official schema
 * when given one, records every request, and injects faults on demand
 * (`sim.faults`).
 */
import {
  Access,
  CHECKS,
  CHECKS_PVE8,
  filterListing,
  handlerChecks,
} from "./access.ts";
import type { Fault, Faults } from "./faults.ts";
import { type Front, startFront } from "./front.ts";
import { type MatchedRoute, Router, type SimRequest, TOTAL } from "./router.ts";
import { ALL_ROUTES } from "./routes/mod.ts";
import type { ApiSchema } from "./schema.ts";
import { seedCluster, type SeedOptions } from "./seed.ts";
import { Cluster, SimError } from "./state.ts";
import {
  isPve9,
  paramsMissingIn,
  type PveVersion,
  pveVersion,
} from "./versions.ts";

export type { Fault, FaultRule, TaskFault } from "./faults.ts";
export { Faults } from "./faults.ts";
export { Access } from "./access.ts";
export {
  ONLY_IN,
  PVE_RELEASES,
  type PveRelease,
  type PveVersion,
  pveVersion,
} from "./versions.ts";

export interface SimOptions extends SeedOptions {
  /** The PVE release to play (default "9.1"): `/version`, parameters and answers follow it. */
  pveVersion?: PveVersion;
  port?: number;
  hostname?: string;
  /** PEM cert and key to serve HTTPS. */
  tls?: { cert: string; key: string };
  /** Official schema: validate every request with it (and count violations). */
  schema?: ApiSchema | null;
  /** Duration of one task step in ms (default 50). */
  taskMs?: number;
  /** Ticket lifetime in seconds (default 7200, as PVE). */
  ticketLifetimeS?: number;
  user?: string;
  password?: string;
  tokenId?: string;
  tokenSecret?: string;
  /** Keep a log of requests in `requests` (default true; off for soak runs). */
  recordRequests?: boolean;
  /** Delay of unauthorized answers in ms (PVE: about 3000; default 0). */
  authFailDelayMs?: number;
  /**
   * Serve through a relay that owns the client connections, so that a
   * `reset` fault closes the connection before any byte of an answer (by
   * default a reset sends the head of an answer, then drops the connection:
   * Deno.serve cannot do more). HTTP/1.1 only.
   */
  rawSockets?: boolean;
}

export interface Violation {
  method: string;
  path: string;
  errors: Record<string, string>;
}

export interface RecordedRequest {
  method: string;
  /** The route template (`/nodes/{node}/qemu/{vmid}/status/start`), or the concrete path when no route matched. */
  path: string;
  /** Query, body and path parameters. */
  params: Record<string, unknown>;
  /** The path exactly as received, before decoding and without the query (`/api2/json/...`). */
  rawPath: string;
  /** When it arrived (Date.now()). */
  at: number;
}

export interface Credentials {
  user: string;
  password: string;
  tokenId: string;
  tokenSecret: string;
}

export interface Simulator extends AsyncDisposable {
  url: string;
  /** The PVE release it plays. */
  pveVersion: PveVersion;
  port: number;
  credentials: Credentials;
  cluster: Cluster;
  /**
   * Users, tokens, roles, pools and ACLs: every caller but root@pam is
   * checked against them (`sim.access.grant("/vms/105", "ops@pve", "PVEVMUser")`).
   */
  access: Access;
  /** Requests the official schema rejected. */
  violations: Violation[];
  /** Every secret it knows: password, token secret, tickets, CSRF tokens. */
  secrets(): string[];
  /**
   * Every request that reached it (faulted ones too, recorded before the
   * fault acts), unless `recordRequests` is false.
   */
  requests: RecordedRequest[];
  /** Fault injection for requests and tasks. */
  faults: Faults;
  close(): Promise<void>;
}

const JSON_TYPE = "application/json;charset=UTF-8";
const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");

function randomB64(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...b));
}

/** PVE's answer for an error: reason phrase = first line, message in body. */
export function errorResponse(e: SimError): Response {
  const msg = e.message.endsWith("\n") ? e.message : e.message + "\n";
  const body: Record<string, unknown> = { data: null, message: msg };
  // Per-parameter messages are PVE's as they are: only validator format
  // errors carry a trailing newline, and they bring it themselves.
  if (e.errors) body.errors = e.errors;
  return new Response(JSON.stringify(body), {
    status: e.status,
    // The reason phrase is bytes on the wire: keep it ASCII, as PVE's are.
    statusText: msg.split("\n")[0].replace(/[^\x20-\x7e]/g, "?"),
    headers: { "content-type": JSON_TYPE },
  });
}

function emptyResponse(status: number, reason: string): Response {
  return new Response(null, { status, statusText: reason });
}

/** Starts a simulator; close it with `await using` or close(). */
// deno-lint-ignore require-await
export async function startSimulator(
  options: SimOptions = {},
): Promise<Simulator> {
  const cluster = new Cluster(options.taskMs ?? 50);
  cluster.pveVersion = pveVersion(options.pveVersion);
  seedCluster(cluster, options);
  const router = new Router(ALL_ROUTES);
  const schema = options.schema ?? null;
  const lifetimeMs = (options.ticketLifetimeS ?? 7200) * 1000;
  const credentials: Credentials = {
    user: options.user ?? "root@pam",
    password: options.password ?? randomB64(12),
    tokenId: options.tokenId ?? "root@pam!mcp",
    tokenSecret: options.tokenSecret ?? crypto.randomUUID(),
  };
  const access = new Access(!isPve9(cluster.pveVersion));
  cluster.access = access;
  access.addUser(credentials.user, credentials.password);
  // The default token is its user's (root's) own: no privilege separation.
  access.tokens.set(credentials.tokenId, {
    secret: credentials.tokenSecret,
    privsep: false,
  });
  const tickets = new Map<string, { user: string; csrf: string; at: number }>();
  const issued = new Map<string, string>();
  const violations: Violation[] = [];
  const requests: Simulator["requests"] = [];
  const authDelay = options.authFailDelayMs ?? 0;
  const record = options.recordRequests ?? true;
  const guestSecrets = new Set<string>();

  const issueTicket = (user: string) => {
    const now = Date.now();
    const t = hex8(Math.floor(now / 1000));
    const ticket = `PVE:${user}:${t}::${randomB64(48)}`;
    const csrf = `${t}:${randomB64(32).replace(/=+$/, "")}`;
    tickets.set(ticket, { user, csrf, at: now });
    issued.set(ticket, csrf);
    return {
      ticket,
      CSRFPreventionToken: csrf,
      username: user,
      clustername: cluster.clusterName,
      cap: {
        vms: {
          "VM.Audit": 1,
          "VM.PowerMgmt": 1,
          "VM.Allocate": 1,
          // The guest agent's privileges were split in 9.0.
          ...(isPve9(cluster.pveVersion)
            ? {
              "VM.GuestAgent.Audit": 1,
              "VM.GuestAgent.FileRead": 1,
              "VM.GuestAgent.FileWrite": 1,
              "VM.GuestAgent.FileSystemMgmt": 1,
              "VM.GuestAgent.Unrestricted": 1,
            }
            : { "VM.Monitor": 1 }),
        },
        nodes: { "Sys.Audit": 1 },
        storage: { "Datastore.Audit": 1 },
      },
    };
  };

  const validTicket = (ticket: string | undefined) => {
    if (!ticket) return undefined;
    const t = tickets.get(ticket);
    if (!t) return undefined;
    if (Date.now() - t.at >= lifetimeMs) {
      tickets.delete(ticket);
      return undefined;
    }
    return t;
  };

  const unauthorized = async (reason: string) => {
    if (authDelay) await cluster.sleep(authDelay).catch(() => {});
    return emptyResponse(401, reason);
  };

  const faults = cluster.faults;
  let front: Front | undefined;

  async function handle(
    request: Request,
    info: Deno.ServeHandlerInfo,
  ): Promise<Response> {
    const at = Date.now();
    const url = new URL(request.url);
    const rawPath = rawPathOf(request.url);
    const method = request.method;
    const prefix = "/api2/json";
    if (!url.pathname.startsWith(prefix + "/")) {
      if (record) {
        requests.push({ method, path: url.pathname, params: {}, rawPath, at });
      }
      return emptyResponse(
        501,
        `Unsupported format '${url.pathname.split("/")[2] ?? ""}'`,
      );
    }
    const path = url.pathname.slice(prefix.length).replace(/\/+$/, "") || "/";
    const params: Record<string, string | string[]> = {};
    const body = await request.text();
    let json = false;
    if (body) {
      if (
        (request.headers.get("content-type") ?? "").includes("application/json")
      ) {
        json = true;
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          parsed = {};
        }
        for (const [k, v] of Object.entries(parsed ?? {})) {
          (params as Record<string, unknown>)[k] = v as string;
        }
      } else {
        for (const [k, v] of new URLSearchParams(body)) {
          addParam(params, k, v);
        }
      }
    }
    // Query-string parameters win over body parameters.
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of url.searchParams) addParam(query, k, v);
    Object.assign(params, query);
    const matched = router.match(method, path);

    if (record) {
      // Secrets sent to guests (root passwords, cloud-init passwords) are
      // secrets too: tests check that no server log ever shows them.
      for (const k of ["password", "cipassword"]) {
        const v = params[k];
        if (typeof v === "string" && path !== "/access/ticket") {
          guestSecrets.add(v);
        }
      }
      requests.push({
        method,
        path: matched?.route.path ?? path,
        params: { ...params, ...matched?.pathParams },
        rawPath,
        at,
      });
    }

    const isTicketCall = path === "/access/ticket" ||
      path === "/access/domains";
    const carryOut = () =>
      serve(request, {
        method,
        path,
        params,
        body,
        json,
        matched,
        isTicketCall,
      });
    const fault = faults.take(method, path);
    if (!fault) return carryOut();
    const drop = () => {
      front?.drop((info.remoteAddr as Deno.NetAddr).port);
      return dropped();
    };
    return await applyFault(fault, request, isTicketCall, carryOut, drop);
  }

  async function applyFault(
    fault: Fault,
    request: Request,
    isTicketCall: boolean,
    carryOut: () => Promise<Response>,
    drop: () => Response,
  ): Promise<Response> {
    switch (fault.kind) {
      case "hang": {
        if (fault.apply) await (await carryOut()).body?.cancel();
        await faults.hold(request.signal);
        return dropped();
      }
      case "delay":
        try {
          await cluster.sleep(fault.ms);
        } catch {
          return dropped(); // closed while waiting
        }
        return carryOut();
      case "status":
        return errorResponse(
          new SimError(
            fault.status,
            fault.message ?? REASONS[fault.status] ?? "Error",
          ),
        );
      case "html":
        return htmlPage(fault.status);
      case "truncate": {
        const r = await carryOut();
        const text = await r.text();
        return new Response(text.slice(0, Math.floor(text.length / 2)), {
          status: r.status,
          statusText: r.statusText,
          headers: { "content-type": JSON_TYPE },
        });
      }
      case "reset":
        if (fault.apply) await (await carryOut()).body?.cancel();
        return drop();
      case "unauthorized":
        tickets.clear();
        // A login still works: that is how a client recovers.
        return isTicketCall
          ? carryOut()
          : unauthorized("Authentication failed!");
    }
  }

  async function serve(
    request: Request,
    { method, path, params, body, json, matched, isTicketCall }: {
      method: string;
      path: string;
      params: Record<string, string | string[]>;
      body: string;
      json: boolean;
      matched: MatchedRoute | null;
      isTicketCall: boolean;
    },
  ): Promise<Response> {
    if ((method === "GET" || method === "DELETE") && body.length > 0) {
      return emptyResponse(501, `Unexpected content for method '${method}'`);
    }

    // Authentication.
    let user = "";
    let isToken = false;
    if (!isTicketCall) {
      const authz = request.headers.get("authorization") ?? "";
      // The cookie first, then the same ticket in an Authorization header.
      const cookie = /(?:^|;\s*)PVEAuthCookie=([^;]+)/.exec(
        request.headers.get("cookie") ?? "",
      )?.[1] ?? /^PVEAuthCookie=(\S+)$/.exec(authz)?.[1];
      if (cookie !== undefined) {
        const t = validTicket(decodeURIComponent(cookie));
        if (!t) return unauthorized("Authentication failed!");
        if (
          method !== "GET" &&
          request.headers.get("csrfpreventiontoken") !== t.csrf
        ) {
          return unauthorized("Permission denied - invalid csrf token");
        }
        user = t.user;
      } else if (/^PVEAPIToken[= ]/.test(authz)) {
        const value = authz.slice("PVEAPIToken=".length);
        const i = value.lastIndexOf("=");
        const id = value.slice(0, i);
        const secret = value.slice(i + 1);
        if (access.tokens.get(id)?.secret !== secret || !secret) {
          return unauthorized("Authentication failed!");
        }
        user = id;
        isToken = true;
      } else {
        return unauthorized("No ticket");
      }
    }

    if (!matched) {
      const reason = `Method '${method} ${path}' not implemented`;
      return new Response(JSON.stringify({ data: null, message: reason }), {
        status: 501,
        statusText: reason,
        headers: { "content-type": JSON_TYPE },
      });
    }
    for (const [k, v] of Object.entries(matched.pathParams)) {
      const given = params[k];
      if (given !== undefined && given !== v) {
        return errorResponse(SimError.param({
          [k]:
            "duplicate parameter (already defined in URI) with conflicting values!",
        }));
      }
      params[k] = v;
    }
    if (schema) {
      const errors = schema.validate(method, matched.route.path, params, {
        json,
      });
      if (errors) {
        violations.push({ method, path: matched.route.path, errors });
        return errorResponse(SimError.param(errors));
      }
    }
    // Without a schema too: a release refuses what only the other one has.
    const missing = paramsMissingIn(
      cluster.pveVersion,
      method,
      matched.route.path,
      params,
    );
    if (missing) return errorResponse(SimError.param(missing));
    const req: SimRequest = { method, path, params, user, isToken, cluster };
    try {
      // Calls for a node are proxied to it: unknown or offline nodes fail.
      if (matched.pathParams.node !== undefined) {
        // Firewall calls are not proxied (proxyto null): any node answers
        // them, even for a guest on an offline node.
        if (matched.route.path.includes("/firewall/")) {
          if (!cluster.nodes.has(matched.pathParams.node)) {
            cluster.node(matched.pathParams.node);
          }
        } else cluster.node(matched.pathParams.node);
      }
      if (path === "/access/ticket" && method === "POST") {
        const username = String(params.username ?? "");
        const password = String(params.password ?? "");
        const renew = validTicket(password);
        const known = access.users.get(username)?.password;
        const ok = renew?.user === username ||
          (known !== undefined && password === known);
        if (!ok) {
          if (authDelay) await cluster.sleep(authDelay).catch(() => {});
          throw new SimError(401, "authentication failure");
        }
        return ok200(issueTicket(username));
      }
      const route = `${method} ${matched.route.path}`;
      const checked = user !== "root@pam" && !isTicketCall;
      if (checked) {
        const check = (cluster.pveVersion.startsWith("8")
          ? CHECKS_PVE8[route]
          : undefined) ?? CHECKS[route];
        if (check) {
          access.run(user, check, params);
        }
        handlerChecks(
          access,
          user,
          route,
          params,
          cluster,
        );
      }
      const data = await matched.route.handler(req);
      return ok200(
        checked ? filterListing(access, user, route, params, data) : data,
      );
    } catch (e) {
      if (e instanceof SimError) return errorResponse(e);
      const msg = e instanceof Error ? e.message : String(e);
      return errorResponse(new SimError(500, msg));
    }
  }

  const host = options.hostname ?? "127.0.0.1";
  const server = options.rawSockets
    ? Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handle)
    : Deno.serve({
      hostname: host,
      port: options.port ?? 0,
      onListen: () => {},
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
    }, handle);
  if (options.rawSockets) {
    front = startFront({
      hostname: host,
      port: options.port ?? 0,
      target: server.addr.port,
      tls: options.tls,
    });
  }
  const port = front?.port ?? server.addr.port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    cluster.close();
    faults.releaseAll();
    await front?.close();
    await server.shutdown();
  };
  return {
    url: `${options.tls ? "https" : "http"}://${
      host === "0.0.0.0" ? "127.0.0.1" : host
    }:${port}`,
    port,
    pveVersion: cluster.pveVersion,
    credentials,
    cluster,
    access,
    violations,
    requests,
    faults,
    secrets: () => [
      credentials.password,
      credentials.tokenSecret,
      ...[...issued].flatMap(([t, csrf]) => [t, csrf]),
      ...guestSecrets,
      ...[...access.users.values()].flatMap((u) =>
        u.password ? [u.password] : []
      ),
      ...[...access.tokens.values()].map((t) => t.secret),
    ],
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reason phrases for status faults without a message. */
const REASONS: Record<number, string> = {
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  595: "No route to host",
  596: "Connection timed out",
};

/** An HTML error page as nginx in front of PVE sends it. */
function htmlPage(status: number): Response {
  const title = `${status} ${REASONS[status] ?? "Error"}`;
  return new Response(
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
    {
      status,
      statusText: REASONS[status] ?? "Error",
      headers: { "content-type": "text/html" },
    },
  );
}

/**
 * A dropped connection. Deno.serve cannot close a connection before the
 * status line, so the head goes out promising a body that never comes and
 * the connection closes: clients get a network error reading the answer,
 * and nothing is logged.
 */
function dropped(): Response {
  const body = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  return new Response(body, {
    headers: { "content-type": JSON_TYPE, "content-length": "4096" },
  });
}

/** The path as received: no decoding, no dot-segment removal, no query. */
/**
 * Adds a form or query parameter as PVE's parser does: `_dc` (a cache
 * buster) is ignored, and a repeated name collects its values.
 */
function addParam(
  to: Record<string, string | string[]>,
  k: string,
  v: string,
): void {
  if (k === "_dc") return;
  const cur = to[k];
  to[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
}

function rawPathOf(url: string): string {
  const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "");
  const end = path.search(/[?#]/);
  return end < 0 ? path : path.slice(0, end);
}

function ok200(data: unknown): Response {
  const total = (data as { [TOTAL]?: number } | null)?.[TOTAL];
  const body = total === undefined ? { data: data ?? null } : { data, total };
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { "content-type": JSON_TYPE },
  });
}

/**
 * PveClient: the only code that speaks HTTP to Proxmox. Ticket login with CSRF
 * and renewal, API tokens, TLS (system roots, an extra CA, or verification off
 * for the Proxmox host only), form encoding, timeouts and PVE's error shapes.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { logger } from "../log.ts";
import { PveError, ToolError } from "./errors.ts";
import { assertSafePath } from "./path.ts";

/**
 * The cancel signal of the tool call being served. callTool runs each tool
 * inside it, so every Proxmox request a tool makes is aborted when its call
 * is cancelled (notifications/cancelled, HTTP client gone, shutdown).
 */
export const callSignal: AsyncLocalStorage<AbortSignal> = new AsyncLocalStorage<
  AbortSignal
>();

export type Auth =
  | { kind: "password"; user: string; password: string }
  | { kind: "token"; tokenId: string; secret: string };

export type ParamValue = string | number | boolean | string[] | undefined;
export type Params = Record<string, ParamValue>;

export interface PveClientOptions {
  /** e.g. `https://pve:8006` (without `/api2/json`). */
  baseUrl: string;
  auth: Auth;
  verifySsl?: boolean;
  /** PEM text of an extra CA to trust. */
  caCert?: string;
  /** Per-request timeout in milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Renew a ticket once it is this old (default 1 h 45 min). */
  ticketRenewMs?: number;
}

/** Where a guest lives: from one `/cluster/resources` call. */
export interface GuestRef {
  vmid: number;
  node: string;
  type: "qemu" | "lxc";
  name?: string;
  status: string;
  template: boolean;
  lock?: string;
  /** `/nodes/{node}/{type}/{vmid}` */
  path: string;
}

interface RawResponse {
  status: number;
  statusText: string;
  body: string;
}

type Sender = (
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal,
) => Promise<RawResponse>;

const log = logger("pve");
const RESOURCE_CACHE_MS = 1500;

export class PveClient {
  readonly baseUrl: string;
  #auth: Auth;
  #timeoutMs: number;
  #renewMs: number;
  #send: Sender;
  #ticket?: { ticket: string; csrf: string; at: number };
  #login?: Promise<void>;
  #resources?: { at: number; data: Promise<Record<string, unknown>[]> };

  constructor(options: PveClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#auth = options.auth;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#renewMs = options.ticketRenewMs ?? 105 * 60_000;
    this.#send = makeSender(options);
  }

  get<T = unknown>(path: string, params?: Params): Promise<T> {
    return this.request<T>("GET", path, params);
  }
  post<T = unknown>(path: string, params?: Params): Promise<T> {
    return this.request<T>("POST", path, params);
  }
  put<T = unknown>(path: string, params?: Params): Promise<T> {
    return this.request<T>("PUT", path, params);
  }
  delete<T = unknown>(path: string, params?: Params): Promise<T> {
    return this.request<T>("DELETE", path, params);
  }

  /** One API call; returns PVE's `data`. Throws PveError. */
  async request<T = unknown>(
    method: string,
    path: string,
    params?: Params,
    signal?: AbortSignal,
  ): Promise<T> {
    return (await this.#exchange<T>(method, path, params, signal)).data;
  }

  /** A GET that also returns PVE's top-level `total` (task logs, lists). */
  page<T = unknown>(
    path: string,
    params?: Params,
  ): Promise<{ data: T; total?: number }> {
    return this.#exchange<T>("GET", path, params);
  }

  async #exchange<T>(
    method: string,
    path: string,
    params?: Params,
    signal?: AbortSignal,
  ): Promise<{ data: T; total?: number }> {
    if (method !== "GET") this.#resources = undefined;
    await this.#ensureLogin();
    const res = await this.#call(method, path, params, signal);
    if (res.status === 401 && this.#auth.kind === "password") {
      // The ticket expired or was revoked: the request was not carried out,
      // so one fresh login and one retry are safe.
      log.info("Ticket refused; logging in again");
      this.#ticket = undefined;
      await this.#ensureLogin();
      return this.#unwrap<T>(
        method,
        path,
        await this.#call(method, path, params, signal),
      );
    }
    return this.#unwrap<T>(method, path, res);
  }

  /**
   * Finds a guest by vmid (and checks the node when given) with one
   * `/cluster/resources?type=vm` call, cached for a moment.
   */
  async locate(vmid: number, node?: string): Promise<GuestRef> {
    const list = await this.guests();
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
    const type = e.type === "lxc" ? "lxc" : "qemu";
    return {
      vmid,
      node: String(e.node),
      type,
      name: e.name as string | undefined,
      status: String(e.status ?? "unknown"),
      template: Number(e.template ?? 0) === 1,
      lock: e.lock as string | undefined,
      path: `/nodes/${e.node}/${type}/${vmid}`,
    };
  }

  /** `/cluster/resources?type=vm`, shared by callers within a short window. */
  guests(): Promise<Record<string, unknown>[]> {
    const now = Date.now();
    if (!this.#resources || now - this.#resources.at > RESOURCE_CACHE_MS) {
      const data = this.get<Record<string, unknown>[]>("/cluster/resources", {
        type: "vm",
      });
      this.#resources = { at: now, data };
      data.catch(() => {
        if (this.#resources?.data === data) this.#resources = undefined;
      });
    }
    return this.#resources.data;
  }

  /** Forgets cached lookups (after a change made elsewhere). */
  invalidate(): void {
    this.#resources = undefined;
  }

  /**
   * Logs in when needed. The login is shared by every waiting call, so it
   * runs without any one caller's cancel signal (its own timeout applies).
   */
  async #ensureLogin(): Promise<void> {
    if (this.#auth.kind !== "password") return;
    const t = this.#ticket;
    if (t && Date.now() - t.at < this.#renewMs) return;
    this.#login ??= this.#doLogin().finally(() => {
      this.#login = undefined;
    });
    await this.#login;
  }

  async #doLogin(): Promise<void> {
    const auth = this.#auth as { user: string; password: string };
    const old = this.#ticket;
    // Renew with the current ticket while it is still valid, else log in.
    const tries = old ? [old.ticket, auth.password] : [auth.password];
    let last: PveError | undefined;
    for (const password of tries) {
      const res = await this.#call(
        "POST",
        "/access/ticket",
        {
          username: auth.user,
          password,
        },
        undefined,
        true,
      );
      if (res.status === 200) {
        const data =
          this.#unwrap<{ ticket?: string; CSRFPreventionToken?: string }>(
            "POST",
            "/access/ticket",
            res,
          ).data;
        if (!data?.ticket || !data.CSRFPreventionToken) {
          throw new PveError({
            status: 200,
            method: "POST",
            path: "/access/ticket",
            pveMessage:
              "The login answer holds no ticket (is PROXMOX_URL a Proxmox VE API?)",
          });
        }
        this.#ticket = {
          ticket: data.ticket,
          csrf: data.CSRFPreventionToken,
          at: Date.now(),
        };
        log.debug("Logged in", {
          user: auth.user,
          renewed: password !== auth.password,
        });
        return;
      }
      try {
        this.#unwrap("POST", "/access/ticket", res);
      } catch (e) {
        last = e as PveError;
      }
    }
    this.#ticket = undefined;
    if (last?.status === 401) {
      throw new PveError({
        status: 401,
        method: "POST",
        path: "/access/ticket",
        pveMessage: "authentication failure",
        hint:
          `Check PROXMOX_USER (${auth.user}, with its realm) and PROXMOX_PASSWORD`,
      });
    }
    throw last!;
  }

  async #call(
    method: string,
    path: string,
    params: Params | undefined,
    signal: AbortSignal | undefined,
    noAuth = false,
  ): Promise<RawResponse> {
    assertSafePath(path);
    // The login is shared by every waiting call: no one caller's signal.
    if (!noAuth) signal ??= callSignal.getStore();
    const headers: Record<string, string> = { Accept: "application/json" };
    if (!noAuth) {
      if (this.#auth.kind === "token") {
        headers.Authorization =
          `PVEAPIToken=${this.#auth.tokenId}=${this.#auth.secret}`;
      } else if (this.#ticket) {
        headers.Cookie = `PVEAuthCookie=${this.#ticket.ticket}`;
        if (method !== "GET") {
          headers.CSRFPreventionToken = this.#ticket.csrf;
        }
      }
    }
    const encoded = encodeParams(params);
    let url = `${this.baseUrl}/api2/json${path}`;
    let body: string | undefined;
    if (method === "GET" || method === "DELETE") {
      if (encoded) url += `?${encoded}`;
    } else {
      body = encoded;
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    }
    // A timer cleared on completion: AbortSignal.timeout() would keep every
    // request's signal alive for the whole timeout (memory grows with rate).
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    const sig = signal
      ? AbortSignal.any([signal, timeout.signal])
      : timeout.signal;
    const started = performance.now();
    let res: RawResponse;
    try {
      res = await this.#send(method, url, headers, body, sig);
    } catch (e) {
      throw this.#networkError(e, method, path, timeout.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
    log.debug("PVE request", {
      method,
      path,
      params: traceParams(params),
      status: res.status,
      ms: Math.round(performance.now() - started),
    });
    return res;
  }

  #networkError(
    e: unknown,
    method: string,
    path: string,
    timedOut: boolean,
  ): PveError {
    let text = e instanceof Error ? e.message : String(e);
    // fetch wraps the reason: "fetch failed" with the real error as cause.
    for (let c = (e as Error)?.cause; c; c = (c as Error).cause) {
      text += `: ${(c as Error).message ?? c}`;
    }
    const base = { status: 0, method, path };
    if (timedOut) {
      return new PveError({
        ...base,
        pveMessage: `Proxmox did not answer within ${this.#timeoutMs / 1000} s`,
        hint: "Check that Proxmox is up, or raise PROXMOX_TIMEOUT",
      });
    }
    if ((e as Error)?.name === "AbortError") {
      return new PveError({ ...base, pveMessage: "Request cancelled" });
    }
    if (/certificate|tls|ssl|handshake|UnknownIssuer/i.test(text)) {
      return new PveError({
        ...base,
        pveMessage: `TLS verification of ${this.baseUrl} failed (${
          firstLine(text)
        })`,
        hint:
          "Set PROXMOX_CA_FILE to the cluster's CA (/etc/pve/pve-root-ca.pem), or PROXMOX_VERIFY_SSL=false on a trusted network",
      });
    }
    if (e instanceof Deno.errors.NotCapable) {
      return new PveError({
        ...base,
        pveMessage: `No permission to reach ${this.baseUrl}`,
        hint: "Grant it with --allow-net=<proxmox host:port>",
      });
    }
    return new PveError({
      ...base,
      pveMessage: `Cannot reach Proxmox at ${this.baseUrl} (${
        firstLine(text)
      })`,
      hint: "Check PROXMOX_URL and that the host is up",
    });
  }

  #unwrap<T>(
    method: string,
    path: string,
    res: RawResponse,
  ): { data: T; total?: number } {
    let json: {
      data?: unknown;
      total?: number;
      message?: string;
      errors?: Record<string, string>;
    } | undefined;
    try {
      json = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status >= 200 && res.status < 300) {
      if (json === undefined) {
        throw new PveError({
          status: res.status,
          method,
          path,
          pveMessage: "Proxmox sent a reply that is not JSON",
        });
      }
      return { data: json.data as T, total: json.total };
    }
    // PVE >= 8.3 has `message` in the body; older ones only the reason phrase.
    const message = (json?.message ?? res.statusText ?? "").trim() ||
      `HTTP ${res.status}`;
    let hint: string | undefined;
    if (res.status === 401) {
      hint = this.#auth.kind === "token"
        ? "Check PROXMOX_TOKEN_ID and PROXMOX_TOKEN_SECRET"
        : "The login was refused: check PROXMOX_USER and PROXMOX_PASSWORD";
    } else if (res.status === 403) {
      hint =
        "The Proxmox user or token lacks this privilege: grant it in Datacenter > Permissions";
    } else if (res.status === 595 || res.status === 596) {
      hint = "A node is unreachable: check the cluster's node status";
    }
    return (() => {
      throw new PveError({
        status: res.status,
        method,
        path,
        pveMessage: message,
        errors: json?.errors ?? undefined,
        hint,
      });
    })();
  }
}

/**
 * Parameters as DEBUG traces show them: secret-named ones are redacted by the
 * logger; a guest command line may hold secrets too, so only its size shows.
 */
function traceParams(params?: Params): Params | undefined {
  if (!params || params.command === undefined) return params;
  const n = Array.isArray(params.command) ? params.command.length : 1;
  return { ...params, command: `[${n} argument(s)]` };
}

/** Form encoding as PVE wants it: booleans as 1/0, arrays as repeated keys. */
export function encodeParams(params?: Params): string {
  if (!params) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    const values = Array.isArray(v) ? v : [v];
    for (const item of values) {
      const s = typeof item === "boolean" ? (item ? "1" : "0") : String(item);
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(s)}`);
    }
  }
  return parts.join("&");
}

function firstLine(s: string): string {
  return s.split("\n")[0].slice(0, 200);
}

function makeSender(options: PveClientOptions): Sender {
  if (options.verifySsl === false && options.baseUrl.startsWith("https:")) {
    return nodeHttpsSender();
  }
  const client = options.caCert
    ? Deno.createHttpClient({ caCerts: [options.caCert] })
    : undefined;
  return async (method, url, headers, body, signal) => {
    const res = await fetch(url, {
      method,
      headers,
      body,
      signal,
      ...(client ? { client } : {}),
    });
    return {
      status: res.status,
      statusText: res.statusText,
      body: await res.text(),
    };
  };
}

/** TLS without verification, for the Proxmox host only (Deno's fetch cannot). */
function nodeHttpsSender(): Sender {
  let mod: Promise<typeof import("node:https")> | undefined;
  let agent: import("node:https").Agent | undefined;
  return async (method, url, headers, body, signal) => {
    const https = await (mod ??= import("node:https"));
    agent ??= new https.Agent({ rejectUnauthorized: false, keepAlive: true });
    return await new Promise<RawResponse>((resolve, reject) => {
      const req = https.request(url, {
        method,
        headers: body === undefined ? headers : {
          ...headers,
          "Content-Length": String(new TextEncoder().encode(body).length),
        },
        agent,
        signal,
      }, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? "",
            body: new TextDecoder().decode(concat(chunks)),
          }));
        res.on("error", reject);
      });
      req.on("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let i = 0;
  for (const c of chunks) {
    out.set(c, i);
    i += c.length;
  }
  return out;
}

/**
 * PveClient: the only code that speaks HTTP to Proxmox. Ticket login with CSRF
 * and renewal, API tokens, TLS (system roots, an extra CA, a pinned
 * certificate fingerprint, or verification off for the Proxmox host only),
 * form encoding, timeouts and PVE's error shapes.
 *
 * Exactly once: a write (POST, PUT, DELETE) is sent once. The only re-sends
 * are the login and a write PVE refused with 401 (PVE checks authentication
 * before it acts). A write whose answer never came is a PveError of kind
 * `uncertain`: it may have been applied.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { logger, replaceSecret } from "../log.ts";
import { PveError } from "./errors.ts";
import { assertSafePath } from "./path.ts";

/**
 * The cancel signal of the tool call being served. callTool runs each tool
 * inside it, so every Proxmox request a tool makes is aborted when its call
 * is cancelled (notifications/cancelled, HTTP client gone, shutdown).
 */
export const callSignal: AsyncLocalStorage<AbortSignal> = new AsyncLocalStorage<
  AbortSignal
>();

/**
 * What one tool call does to Proxmox. callTool runs each changing tool inside
 * one: every write (POST, PUT, DELETE; the login excepted) is noted, with the
 * UPIDs Proxmox answered, for the audit line. In a dry run a write is noted
 * and not sent, and answered with a stand-in (see standIn).
 */
export interface CallRecord {
  dryRun: boolean;
  /** The writes, in order: sent, or in a dry run, planned. */
  writes: { method: string; path: string; params?: Params }[];
  /** UPIDs of the tasks the writes started. */
  upids: string[];
}
export const callRecord: AsyncLocalStorage<CallRecord> = new AsyncLocalStorage<
  CallRecord
>();

/**
 * Thrown in a dry run by a write after which the tool only waits for what
 * the guest does (guest agent exec): the plan is complete.
 */
export class DryRunComplete extends Error {
  constructor() {
    super("Dry run: the plan ends here");
    this.name = "DryRunComplete";
  }
}

/** A UPID that names a dry run: never sent, never followed. */
const DRY_RUN_UPID_TASK = "dryrun";

/** What a write answers in a dry run: a stand-in UPID, or {pid} for exec. */
function standIn(path: string): unknown {
  if (/\/agent\/exec$/.test(path)) throw new DryRunComplete();
  const node = /^\/nodes\/([^/]+)/.exec(path)?.[1] ?? "localhost";
  const vmid = /\/(?:qemu|lxc)\/(\d+)/.exec(path)?.[1] ?? "";
  return `UPID:${node}:00000000:00000000:00000000:${DRY_RUN_UPID_TASK}:${vmid}:dry-run:`;
}

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
  /** Where caCert came from (PROXMOX_CA_FILE's path), named in TLS hints. */
  caFile?: string;
  /**
   * SHA-256 fingerprints of the Proxmox certificate (`AA:BB:…`, as
   * normalizeFingerprint makes them): the certificate must have one of them,
   * and nothing else about it is checked (as Proxmox's own clients pin).
   */
  fingerprints?: string[];
  /** Per-request timeout in milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Renew a ticket once it is this old (default 1 h 45 min). */
  ticketRenewMs?: number;
  /**
   * The PROXMOX_CONFIG cluster these settings came from: hints then name its
   * keys (`the user of cluster 'lab' in PROXMOX_CONFIG`) instead of the
   * PROXMOX_* variables it cannot set.
   */
  cluster?: string;
}

interface RawResponse {
  status: number;
  statusText: string;
  /** The Content-Type header ("" when absent). */
  contentType: string;
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

/** The key of a PROXMOX_CONFIG cluster that stands for each variable. */
const CONFIG_KEYS = {
  PROXMOX_URL: "url",
  PROXMOX_USER: "user",
  PROXMOX_PASSWORD: "password",
  PROXMOX_TOKEN_ID: "tokenId",
  PROXMOX_TOKEN_SECRET: "tokenSecret",
  PROXMOX_CA_FILE: "caFile",
  PROXMOX_TLS_FINGERPRINT: "fingerprint",
} as const;
const RESOURCE_CACHE_MS = 1500;

export class PveClient {
  readonly baseUrl: string;
  #auth: Auth;
  #timeoutMs: number;
  #renewMs: number;
  #send: Sender;
  #options: PveClientOptions;
  #ticket?: { ticket: string; csrf: string; at: number };
  /** The ticket and CSRF token the log masks for this client (held). */
  #masked?: { ticket: string; csrf: string };
  #login?: Promise<void>;
  #resources?: { at: number; data: Promise<Record<string, unknown>[]> };

  constructor(options: PveClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#auth = options.auth;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#renewMs = options.ticketRenewMs ?? 105 * 60_000;
    this.#options = options;
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
    const record = method === "GET" ? undefined : callRecord.getStore();
    if (record?.dryRun) {
      record.writes.push({ method, path, params });
      return { data: standIn(path) as T };
    }
    if (method !== "GET") this.#resources = undefined;
    if (!record) {
      return await this.#exchangeOnce<T>(method, path, params, signal);
    }
    record.writes.push({ method, path });
    const out = await this.#exchangeOnce<T>(method, path, params, signal);
    if (typeof out.data === "string" && out.data.startsWith("UPID:")) {
      record.upids.push(out.data);
    }
    return out;
  }

  async #exchangeOnce<T>(
    method: string,
    path: string,
    params?: Params,
    signal?: AbortSignal,
  ): Promise<{ data: T; total?: number }> {
    await this.#ensureLogin();
    const used = this.#ticket;
    const res = await this.#call(method, path, params, signal);
    if (res.status === 401 && this.#auth.kind === "password") {
      // The ticket expired or was revoked: PVE checks authentication before
      // it acts, so the request was not carried out and one fresh login and
      // one re-send are safe (the only re-send of a write). A ticket another
      // call has renewed meanwhile is kept.
      log.info("Ticket refused; logging in again");
      if (this.#ticket === used) this.#ticket = undefined;
      await this.#ensureLogin();
      return this.#unwrap<T>(
        method,
        path,
        await this.#call(method, path, params, signal),
      );
    }
    return this.#unwrap<T>(method, path, res);
  }

  /** `/cluster/resources?type=vm`, shared by callers within a short window. */
  guests(): Promise<Record<string, unknown>[]> {
    const now = Date.now();
    if (!this.#resources || now - this.#resources.at > RESOURCE_CACHE_MS) {
      // Shared by every call in the window: made outside any one caller's
      // cancel signal (its own timeout applies), so one cancelled call does
      // not fail the others. run(undefined), not exit(): under Deno, exit()
      // does not last past the first await (the login), run() does.
      const data = callSignal.run(
        undefined as unknown as AbortSignal,
        () =>
          this.get<Record<string, unknown>[]>("/cluster/resources", {
            type: "vm",
          }),
      );
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
            pveMessage: `The login answer holds no ticket (is ${
              this.#setting("PROXMOX_URL")
            } a Proxmox VE API?)`,
          });
        }
        this.#ticket = {
          ticket: data.ticket,
          csrf: data.CSRFPreventionToken,
          at: Date.now(),
        };
        // Masked by value in log lines while this client holds them; the
        // replaced ones join the recent secrets (src/log.ts).
        replaceSecret(this.#masked?.ticket, data.ticket);
        replaceSecret(this.#masked?.csrf, data.CSRFPreventionToken);
        this.#masked = { ticket: data.ticket, csrf: data.CSRFPreventionToken };
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
        hint: `Check ${
          this.#setting("PROXMOX_USER")
        } (${auth.user}, with its realm) and ${
          this.#setting("PROXMOX_PASSWORD")
        }`,
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
      throw await this.#networkError(e, {
        method,
        path,
        timedOut: timeout.signal.aborted,
        cancelled: !!signal?.aborted,
        // The login is no write: it changes nothing and is re-sent freely.
        write: method !== "GET" && !noAuth,
      });
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

  async #networkError(
    e: unknown,
    at: {
      method: string;
      path: string;
      timedOut: boolean;
      /** The caller's signal aborted (whatever reason it carries). */
      cancelled: boolean;
      write: boolean;
    },
  ): Promise<PveError> {
    const { method, path, timedOut, cancelled, write } = at;
    let text = e instanceof Error ? e.message : String(e);
    // fetch wraps the reason: "fetch failed" with the real error as cause.
    let reason = text;
    let denied: Error | undefined = e instanceof Deno.errors.NotCapable
      ? e
      : undefined;
    for (let c = (e as Error)?.cause; c; c = (c as Error).cause) {
      reason = String((c as Error).message ?? c);
      text += `: ${reason}`;
      if (c instanceof Deno.errors.NotCapable) denied ??= c;
    }
    // The innermost reason, without fetch's "error sending request for url".
    reason = firstLine(reason.replace(/^.*\): (?=[a-z])/i, ""));
    const base = { status: 0, method, path };
    const seconds = this.#timeoutMs / 1000;
    if (timedOut) {
      return write
        ? new PveError({
          ...base,
          kind: "uncertain",
          pveMessage:
            `Proxmox did not answer within ${seconds} s; the request may have been applied`,
          hint:
            "Check the guest's state or its recent tasks before sending it again (raise PROXMOX_TIMEOUT if Proxmox is slow)",
        })
        : new PveError({
          ...base,
          kind: "timeout",
          pveMessage: `Proxmox did not answer within ${seconds} s`,
          hint: "Check that Proxmox is up, or raise PROXMOX_TIMEOUT",
        });
    }
    if (cancelled || (e as Error)?.name === "AbortError") {
      return new PveError({
        ...base,
        kind: "cancelled",
        pveMessage: write
          ? "Request cancelled before Proxmox answered; it may have been applied"
          : "Request cancelled",
      });
    }
    if (denied) {
      // Deno names the permission actually missing (net, sys, env, read).
      return new PveError({
        ...base,
        kind: "network",
        pveMessage: `Missing permission to reach ${this.baseUrl}: ${
          firstLine(denied.message)
        }`,
        hint:
          "Grant what it names in the deno run flags (the shipped tasks grant what the server needs)",
      });
    }
    if (e instanceof FingerprintMismatch) {
      return new PveError({
        ...base,
        kind: "tls",
        pveMessage:
          `The certificate of ${this.baseUrl} has SHA-256 fingerprint ${e.actual}, which ${
            this.#setting("PROXMOX_TLS_FINGERPRINT")
          } does not pin; nothing was sent`,
        hint:
          `If the node's certificate was renewed, compare with \`pvenode cert info\` on the node and update ${
            this.#setting("PROXMOX_TLS_FINGERPRINT")
          }`,
      });
    }
    if (/Failed opening CA file|Unable to add pem file/i.test(text)) {
      // Deno loads DENO_CERT for every fetch, plain http too.
      return new PveError({
        ...base,
        kind: "tls",
        pveMessage:
          `Deno cannot load the CA file that DENO_CERT names (${reason}); nothing was sent`,
        hint:
          `Fix or unset DENO_CERT in the server's environment (MCP clients pass theirs on), or pin the certificate with ${
            this.#setting("PROXMOX_TLS_FINGERPRINT")
          }, which does not use it`,
      });
    }
    if (this.#options.caFile && /BadEncoding|pem/i.test(text)) {
      return new PveError({
        ...base,
        kind: "tls",
        pveMessage: `${
          this.#setting("PROXMOX_CA_FILE")
        } (${this.#options.caFile}) holds no valid PEM certificate (${reason}); nothing was sent`,
        hint:
          `Use the cluster's CA as PEM (/etc/pve/pve-root-ca.pem on a node), or pin the certificate with ${
            this.#setting("PROXMOX_TLS_FINGERPRINT")
          }`,
      });
    }
    if (
      /certificate|tls|ssl|handshake|UnknownIssuer|CaUsedAsEndEntity/i.test(
        text,
      )
    ) {
      return new PveError({
        ...base,
        kind: "tls",
        pveMessage:
          `TLS verification of ${this.baseUrl} failed (${reason}); nothing was sent`,
        hint: await this.#tlsHint(text),
      });
    }
    if (
      /connect error|connection refused|ECONNREFUSED|dns error|ENOTFOUND|EAI_AGAIN|failed to lookup|no route to host|EHOSTUNREACH|ENETUNREACH|network is unreachable/i
        .test(text)
    ) {
      return new PveError({
        ...base,
        kind: "network",
        pveMessage: `Cannot reach Proxmox at ${this.baseUrl} (${reason})${
          write ? "; nothing was sent" : ""
        }`,
        hint: usesNodeTls(this.#options)
          ? `Check ${this.#setting("PROXMOX_URL")} and that the host is up`
          : `Check ${
            this.#setting("PROXMOX_URL")
          } and that the host is up; with HTTPS_PROXY or HTTP_PROXY set, NO_PROXY must list the Proxmox host`,
      });
    }
    // Connected, then the answer never came whole (reset, closed early).
    return write
      ? new PveError({
        ...base,
        kind: "uncertain",
        pveMessage:
          `The connection to Proxmox dropped before it answered (${reason}); the request may have been applied`,
        hint:
          "Check the guest's state or its recent tasks before sending it again",
      })
      : new PveError({
        ...base,
        kind: "network",
        pveMessage:
          `The connection to Proxmox dropped before it answered (${reason})`,
        hint:
          "Try again; if it persists, check a proxy or firewall between this server and Proxmox",
      });
  }

  /**
   * How a hint names a connection setting: the variable itself, or with
   * PROXMOX_CONFIG the cluster's key in that file (a PROXMOX_* variable
   * cannot set it there).
   */
  #setting(env: keyof typeof CONFIG_KEYS): string {
    const cluster = this.#options.cluster;
    return cluster === undefined
      ? env
      : `the ${CONFIG_KEYS[env]} of cluster '${cluster}' in PROXMOX_CONFIG`;
  }

  /** What to do about a certificate that did not verify. */
  async #tlsHint(text: string): Promise<string> {
    const fp = await peerFingerprint(this.baseUrl).catch(() => undefined);
    const fpSetting = this.#setting("PROXMOX_TLS_FINGERPRINT");
    const caSetting = this.#setting("PROXMOX_CA_FILE");
    const pin = fp
      ? `${
        this.#options.cluster
          ? `${fpSetting} set to ${fp}`
          : `${fpSetting}=${fp}`
      } (the certificate presented now: compare it with \`pvenode cert info\` on the node first)`
      : `${fpSetting} (the SHA-256 fingerprint \`pvenode cert info\` prints)`;
    if (/CaUsedAsEndEntity/i.test(text)) {
      return `The certificate is self-signed and marked as a CA, which TLS refuses as a server certificate even when ${caSetting} names it: pin it instead with ${pin}`;
    }
    if (this.#options.caFile) {
      return `${caSetting} (${this.#options.caFile}) does not verify this certificate: use the CA that signed it (/etc/pve/pve-root-ca.pem on a node), or pin the certificate with ${pin}`;
    }
    return `Set ${caSetting} to the cluster's CA (/etc/pve/pve-root-ca.pem), or pin the certificate with ${pin}`;
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
    const html = json === undefined && isHtml(res);
    const write = method !== "GET" && path !== "/access/ticket";
    if (res.status >= 200 && res.status < 300) {
      if (json === undefined || typeof json !== "object" || json === null) {
        throw new PveError({
          status: res.status,
          method,
          path,
          kind: "badResponse",
          pveMessage: html
            ? `Proxmox sent an HTML page${
              htmlTitle(res.body) ? ` titled '${htmlTitle(res.body)}'` : ""
            } where JSON was expected`
            : `Proxmox sent a reply that is not JSON (${
              res.body ? "cut short or garbled" : "empty"
            })${write ? "; the request was accepted" : ""}`,
          hint: html
            ? `Is ${
              this.#setting("PROXMOX_URL")
            } the Proxmox API (https://host:8006), not a web page or a proxy's login?`
            : write
            ? "Check the guest's state or its recent tasks: it was carried out, but its answer was lost"
            : "Try again; if it persists, check a proxy between this server and Proxmox",
        });
      }
      return { data: json.data as T, total: json.total };
    }
    // PVE >= 8.3 has `message` in the body; older ones only the reason phrase.
    // A proxy's HTML error page: its title, never the HTML.
    const title = html ? htmlTitle(res.body) : undefined;
    const message = (json?.message ?? title ?? res.statusText ?? "").trim() ||
      `HTTP ${res.status}`;
    let hint: string | undefined;
    if (res.status === 401) {
      hint = this.#auth.kind === "token"
        ? `Check ${this.#setting("PROXMOX_TOKEN_ID")} and ${
          this.#setting("PROXMOX_TOKEN_SECRET")
        }`
        : `The login was refused: check ${this.#setting("PROXMOX_USER")} and ${
          this.#setting("PROXMOX_PASSWORD")
        }`;
    } else if (res.status === 403) {
      hint =
        "The Proxmox user or token lacks this privilege: grant it in Datacenter > Permissions";
    } else if (res.status === 595 || res.status === 596) {
      hint = "A node is unreachable: check the cluster's node status";
    } else if ([502, 503, 504].includes(res.status)) {
      hint = html
        ? `A proxy between this server and Proxmox answered with an HTML page (${res.status}): check that pveproxy runs on the node and the proxy reaches it, then try again`
        : "Proxmox (pveproxy) is restarting or overloaded: try again shortly";
    } else if (html) {
      hint =
        `Something other than the Proxmox API answered with an HTML page: check ${
          this.#setting("PROXMOX_URL")
        } (https://host:8006) and any proxy in between`;
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

/** A certificate whose fingerprint is not pinned (the connection is closed). */
class FingerprintMismatch extends Error {
  override name = "FingerprintMismatch";
  readonly actual: string;
  constructor(actual: string) {
    super(`certificate fingerprint ${actual} is not pinned`);
    this.actual = actual;
  }
}

function isHtml(res: RawResponse): boolean {
  return /text\/html/i.test(res.contentType) ||
    /^\s*<(!doctype html|html)/i.test(res.body);
}

/** An HTML page's title, whitespace collapsed and cut short. */
function htmlTitle(body: string): string | undefined {
  const m = /<title[^>]*>([^<]*)<\/title>/i.exec(body);
  const t = m?.[1].replace(/\s+/g, " ").trim().slice(0, 120);
  return t || undefined;
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

/**
 * Whether requests go through node:tls (a pinned or unchecked certificate),
 * which connects directly, or through fetch, which honours HTTPS_PROXY,
 * HTTP_PROXY and NO_PROXY as Deno does.
 */
function usesNodeTls(options: PveClientOptions): boolean {
  return options.baseUrl.startsWith("https:") &&
    (!!options.fingerprints?.length || options.verifySsl === false);
}

function makeSender(options: PveClientOptions): Sender {
  if (usesNodeTls(options)) return nodeTlsSender(options.fingerprints);
  // Creating the client loads the root store (and DENO_CERT) and parses the
  // CA: a failure is reported by the first request, as a PveError, instead of
  // stopping the server from loading.
  //
  // Exactly once: fetch re-sends a request whose reused keep-alive
  // connection closes before any answer, whatever the method. Writes go
  // through a client that keeps no idle connection, so a write always has a
  // fresh one and is never sent again; reads keep the pool.
  let reads: Deno.HttpClient | undefined;
  let writes: Deno.HttpClient | undefined;
  let failed: unknown;
  try {
    const caCerts = options.caCert ? [options.caCert] : undefined;
    reads = caCerts ? Deno.createHttpClient({ caCerts }) : undefined;
    writes = Deno.createHttpClient({ caCerts, poolMaxIdlePerHost: 0 });
  } catch (e) {
    failed = e;
  }
  return async (method, url, headers, body, signal) => {
    if (failed) throw failed;
    const client = method === "GET" ? reads : writes;
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
      contentType: res.headers.get("content-type") ?? "",
      body: await res.text(),
    };
  };
}

type Https = typeof import("node:https");
type Tls = typeof import("node:tls");

/**
 * TLS through node:tls, for the Proxmox host only: the certificate pinned by
 * fingerprint, or (no fingerprints) not checked at all. Deno's fetch can do
 * neither.
 *
 * Each connection is made and its certificate checked before the request is
 * handed its socket, so a mismatch fails closed: no byte of the request (nor
 * its credentials) is written. `ca: []` keeps node:tls from building the
 * default CA store, which it does from NODE_EXTRA_CA_CERTS and
 * NODE_USE_SYSTEM_CA and which needs --allow-sys and --allow-env: no CA
 * decides anything here.
 *
 * Exactly once: Deno's node:http client re-sends a request whose reused
 * keep-alive socket closes before an answer, even a POST and even one its
 * caller aborted (maybeRetryRequest in node:_http_client). So writes never
 * get a reused socket (a fresh connection each, closed after the answer), and
 * an aborted read gives its socket up without that re-send.
 */
function nodeTlsSender(fingerprints: string[] | undefined): Sender {
  let mods: Promise<[Https, Tls]> | undefined;
  let agents: {
    read: import("node:https").Agent;
    write: import("node:https").Agent;
  } | undefined;
  const pinned = fingerprints?.length ? new Set(fingerprints) : undefined;
  return async (method, url, headers, body, signal) => {
    const [https, tls] = await (mods ??= Promise.all([
      import("node:https"),
      import("node:tls"),
    ]));
    agents ??= {
      read: checkedAgent(https, tls, pinned, true),
      write: checkedAgent(https, tls, pinned, false),
    };
    if (signal.aborted) {
      throw new DOMException("The request was aborted", "AbortError");
    }
    return await new Promise<RawResponse>((resolve, reject) => {
      const req = https.request(url, {
        method,
        headers: body === undefined ? headers : {
          ...headers,
          "Content-Length": String(new TextEncoder().encode(body).length),
        },
        agent: method === "GET" ? agents!.read : agents!.write,
      }, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(c));
        res.on("end", () => {
          if (!res.complete) {
            return settle(
              new Error("connection closed before the answer ended"),
            );
          }
          settle(undefined, {
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? "",
            contentType: String(res.headers["content-type"] ?? ""),
            body: new TextDecoder().decode(concat(chunks)),
          });
        });
        res.on("error", (e) => settle(e));
        res.on(
          "aborted",
          () => settle(new Error("connection closed before the answer ended")),
        );
      });
      let done = false;
      const onAbort = () => {
        // Give the socket up without Deno's re-send on a reused socket.
        (req as { reusedSocket: boolean }).reusedSocket = false;
        req.destroy();
        settle(new DOMException("The request was aborted", "AbortError"));
      };
      function settle(e?: unknown, r?: RawResponse) {
        if (done) return;
        done = true;
        signal.removeEventListener("abort", onAbort);
        if (r) resolve(r);
        else reject(e);
      }
      signal.addEventListener("abort", onAbort, { once: true });
      req.on("error", (e) => settle(e));
      if (body !== undefined) req.write(body);
      req.end();
    });
  };
}

/**
 * An agent whose connections are checked before any request gets them:
 * `keepAlive` for reads (a socket may serve many), none for writes.
 */
function checkedAgent(
  https: Https,
  tls: Tls,
  pinned: Set<string> | undefined,
  keepAlive: boolean,
): import("node:https").Agent {
  const agent = new https.Agent({ keepAlive });

  // Called as createConnection(options, done): a socket handed to `done`
  // later is what the request is written to (none is returned at once).
  const connect = (
    options: {
      host?: string | null;
      port?: number | string | null;
      servername?: string;
    },
    done: (err: Error | null, socket?: import("node:tls").TLSSocket) => void,
  ): undefined => {
    const socket = tls.connect({
      host: options.host ?? undefined,
      port: Number(options.port),
      servername: options.servername || undefined,
      rejectUnauthorized: false,
      ca: [],
      ALPNProtocols: ["http/1.1"],
    });
    const fail = (e: Error) => {
      socket.destroy();
      done(e);
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      socket.off("error", fail);
      if (pinned) {
        const actual = socket.getPeerCertificate()?.fingerprint256 ?? "";
        if (!pinned.has(actual.toUpperCase())) {
          return fail(new FingerprintMismatch(actual || "(none)"));
        }
      }
      done(null, socket);
    });
    return undefined;
  };
  (agent as unknown as { createConnection: typeof connect }).createConnection =
    connect;
  return agent;
}

/**
 * The SHA-256 fingerprint of the certificate a TLS server presents (nothing
 * is sent); for hints after a failed verification.
 */
async function peerFingerprint(
  baseUrl: string,
  timeoutMs = 3000,
): Promise<string | undefined> {
  const url = new URL(baseUrl);
  if (url.protocol !== "https:") return undefined;
  const tls = await import("node:tls");
  return await new Promise<string | undefined>((resolve) => {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const socket = tls.connect({
      host,
      port: Number(url.port || 443),
      servername: /^[\d.]+$|:/.test(host) ? undefined : host,
      rejectUnauthorized: false,
      ca: [],
    });
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    function finish(fp: string | undefined) {
      clearTimeout(timer);
      socket.destroy();
      resolve(fp);
    }
    socket.once("error", () => finish(undefined));
    socket.once(
      "secureConnect",
      () => finish(socket.getPeerCertificate()?.fingerprint256 || undefined),
    );
  });
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

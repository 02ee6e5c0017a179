/**
 * MCP over HTTP on `Deno.serve`, all on one port:
 *
 * - `/mcp` Streamable HTTP. 2026-07-28 requests are served statelessly by the
 *   SDK's `createMcpHandler` (one McpServer per request, nothing shared but
 *   the PveClient, so replicas need no shared state). A 2025-era `initialize`
 *   opens a session (`Mcp-Session-Id`; server→client requests work on it)
 *   that ends on DELETE, after an idle time, or at shutdown; the number of
 *   open sessions is capped. Other 2025-era requests without a session are
 *   served statelessly.
 * - `/sse` + `/messages` the legacy HTTP+SSE transport (sse.ts), same checks
 *   and the same session cap.
 * - `/healthz` liveness: unauthenticated, says nothing but ok/draining.
 *
 * Everything else passes, in order: Host and Origin checks (DNS-rebinding
 * protection: loopback names, MCP_ALLOWED_HOSTS and the bind address; 403),
 * then the bearer token when MCP_AUTH_TOKEN is set (constant-time compare;
 * 401 with WWW-Authenticate). SIGTERM/SIGINT: stop accepting, let in-flight
 * calls finish (up to a grace period), close the sessions, return.
 */
import { createHash } from "node:crypto";
import {
  createMcpHandler,
  isLegacyRequest,
  legacyStatelessFallback,
  localhostAllowedHostnames,
  type McpServer,
  validateHostHeader,
  validateOriginHeader,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import type { Config } from "../config.ts";
import { logger } from "../log.ts";
import { createServer, type ServerDeps } from "../server.ts";
import { jsonRpcError, SseServerTransport } from "./sse.ts";

export interface HttpOptions {
  /** A 2025-era session unused this long is closed (default 30 min). */
  sessionIdleMs?: number;
  /** Open sessions (Streamable HTTP and SSE together) at most (default 100). */
  maxSessions?: number;
  /** How long shutdown waits for in-flight calls (default 30 s). */
  drainMs?: number;
  /** SSE keep-alive comment interval (default 15 s). */
  keepAliveMs?: number;
  /** Largest accepted request body (default 4 MiB). */
  maxBodyBytes?: number;
}

const DEFAULTS: Required<HttpOptions> = {
  sessionIdleMs: 30 * 60_000,
  maxSessions: 100,
  drainMs: 30_000,
  keepAliveMs: 15_000,
  maxBodyBytes: 4 * 1024 * 1024,
};

/** The HTTP face of the server, independent of the listening socket. */
export interface HttpApp {
  fetch(request: Request): Promise<Response>;
  /** Open sessions by transport. */
  sessions(): { streamable: number; sse: number };
  /** Requests (tool calls and other POSTs) still being answered. */
  busy(): number;
  /**
   * Refuses new requests, waits for in-flight ones (up to `drainMs`, or until
   * `signal` aborts), then closes every session.
   */
  shutdown(signal?: AbortSignal): Promise<void>;
}

interface Session {
  id: string;
  kind: "streamable" | "sse";
  server: McpServer;
  transport: WebStandardStreamableHTTPServerTransport | SseServerTransport;
  lastSeen: number;
  /** POSTs of this session still being answered. */
  busy: number;
}

const log = logger("http");
const WILDCARDS = new Set(["0.0.0.0", "::", "[::]"]);

/** Hostnames (no port) that Host and Origin may name. */
export function allowedHostnames(
  config: Pick<Config, "host" | "allowedHosts">,
): string[] {
  const names = new Set(localhostAllowedHostnames());
  const add = (entry: string) => {
    let h = entry.trim().toLowerCase();
    if (!h) return;
    if (h.includes("://")) {
      try {
        h = new URL(h).hostname;
      } catch {
        return;
      }
    } else if (h.startsWith("[")) {
      h = h.slice(0, h.indexOf("]") + 1);
    } else if ((h.match(/:/g) ?? []).length > 1) {
      h = `[${h}]`; // a bare IPv6 address
    } else {
      h = h.split(":")[0]; // drop a port
    }
    names.add(h);
  };
  for (const h of config.allowedHosts) add(h);
  if (!WILDCARDS.has(config.host)) add(config.host);
  return [...names];
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/** The bearer check, or undefined when no token is configured. */
function bearerCheck(
  token: string | undefined,
): ((request: Request) => Promise<Response | undefined>) | undefined {
  if (!token) return undefined;
  const expected = sha256(token);
  const challenge = (error?: string) =>
    jsonRpcError(
      401,
      error
        ? "Unauthorized: the bearer token is wrong"
        : "Unauthorized: send Authorization: Bearer <MCP_AUTH_TOKEN>",
      {
        "WWW-Authenticate": `Bearer realm="proxmox-mcp"${
          error ? `, error="${error}"` : ""
        }`,
      },
    );
  // deno-lint-ignore require-await
  return async (request) => {
    const m = /^Bearer +(\S+) *$/i.exec(
      request.headers.get("authorization") ?? "",
    );
    if (!m) return challenge();
    // Compare digests (equal length) without an early exit.
    const got = sha256(m[1]);
    const want = expected;
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff |= got[i] ^ want[i];
    return diff === 0 ? undefined : challenge("invalid_token");
  };
}

/** Calls `done` once the response body has been sent (or abandoned). */
function whenSent(response: Response, done: () => void): Response {
  // A JSON answer is complete once built (Deno.serve's shutdown still waits
  // for its bytes); only an event stream needs following, and wrapping every
  // body in a stream would cost every call.
  if (
    !response.body ||
    !(response.headers.get("content-type") ?? "").includes("text/event-stream")
  ) {
    done();
    return response;
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  response.body.pipeTo(writable).catch(() => {}).finally(done);
  return new Response(readable, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

function isInitialize(body: unknown): boolean {
  return (Array.isArray(body) ? body : [body]).some((m) =>
    (m as { method?: unknown })?.method === "initialize"
  );
}

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** Builds the request handler for every HTTP path of the server. */
export function createHttpApp(
  deps: ServerDeps,
  options: HttpOptions = {},
): HttpApp {
  const opts = { ...DEFAULTS, ...options };
  // Build one server now: a bad setting (e.g. an unknown toolset) stops the
  // process at start, as on stdio, instead of failing every request.
  void createServer(deps).close();
  const factory = () => createServer(deps);
  const onerror = (e: Error) => log.debug(`MCP HTTP: ${e.message}`);
  const modern = createMcpHandler(factory, {
    legacy: "reject",
    onerror,
    keepAliveMs: opts.keepAliveMs,
    maxRequestBodySize: opts.maxBodyBytes,
  });
  const stateless = legacyStatelessFallback(factory, onerror, {
    maxRequestBodySize: opts.maxBodyBytes,
  });
  const hosts = allowedHostnames(deps.config);
  const checkToken = bearerCheck(deps.config.authToken);
  const sessions = new Map<string, Session>();
  let opening = 0;
  let inflight = 0;
  let draining = false;

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const s of sessions.values()) {
      if (
        s.kind === "streamable" && s.busy === 0 &&
        now - s.lastSeen > opts.sessionIdleMs
      ) {
        void endSession(s.id, "idle");
      }
    }
  }, Math.min(60_000, Math.max(25, opts.sessionIdleMs / 4)));
  Deno.unrefTimer(sweeper);

  async function endSession(id: string, why: string): Promise<void> {
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    log.debug(`Session ${id.slice(0, 8)} (${s.kind}) ended: ${why}`);
    await s.transport.close().catch(() => {});
    await s.server.close().catch(() => {});
  }

  /** Follows the session's transport so that a close from any side forgets it. */
  function register(s: Session): void {
    sessions.set(s.id, s);
    const previous = s.transport.onclose;
    s.transport.onclose = () => {
      previous?.();
      if (sessions.get(s.id) === s) sessions.delete(s.id);
    };
    log.debug(`Session ${s.id.slice(0, 8)} (${s.kind}) opened`);
  }

  function full(): Response | undefined {
    if (sessions.size + opening < opts.maxSessions) return undefined;
    log.warning(`Session cap reached (${opts.maxSessions})`);
    return jsonRpcError(
      503,
      `Too many open sessions (${opts.maxSessions}): retry later`,
      { "Retry-After": "30" },
    );
  }

  /** Counts a POST as in flight until its response has been sent. */
  async function track(
    request: Request,
    session: Session | undefined,
    serve: () => Promise<Response>,
  ): Promise<Response> {
    if (session) session.lastSeen = Date.now();
    if (request.method !== "POST") return serve();
    inflight++;
    if (session) session.busy++;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      inflight--;
      if (session) {
        session.busy--;
        session.lastSeen = Date.now();
      }
    };
    try {
      return whenSent(await serve(), done);
    } catch (e) {
      done();
      throw e;
    }
  }

  async function openSession(
    request: Request,
    parsedBody: unknown,
  ): Promise<Response> {
    const refused = full();
    if (refused) return refused;
    const server = factory();
    opening++;
    const session: Session = {
      id: "",
      kind: "streamable",
      server,
      transport:
        undefined as unknown as WebStandardStreamableHTTPServerTransport,
      lastSeen: Date.now(),
      busy: 0,
    };
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      keepAliveMs: opts.keepAliveMs,
      maxRequestBodySize: opts.maxBodyBytes,
      onsessioninitialized: (id) => {
        session.id = id;
        register(session);
      },
      onsessionclosed: (id) => void endSession(id, "closed by the client"),
    });
    session.transport = transport;
    try {
      await server.connect(transport);
      return await track(
        request,
        session,
        () => transport.handleRequest(request, { parsedBody }),
      );
    } finally {
      opening--;
      if (!session.id) {
        // The initialize was refused: nothing to keep.
        await transport.close().catch(() => {});
        await server.close().catch(() => {});
      }
    }
  }

  async function mcp(request: Request): Promise<Response> {
    const sid = request.headers.get("mcp-session-id");
    if (sid !== null) {
      const s = sessions.get(sid);
      if (!s || s.kind !== "streamable") {
        return jsonRpcError(
          404,
          "Session not found (expired or closed): send initialize again",
        );
      }
      const transport = s.transport as WebStandardStreamableHTTPServerTransport;
      return track(request, s, () => transport.handleRequest(request));
    }
    if (request.method !== "POST") return stateless(request); // 405
    // Read and parse the body once; the SDK's entries take it pre-parsed.
    const declared = Number(request.headers.get("content-length") ?? 0);
    if (declared > opts.maxBodyBytes) return modern.fetch(request); // its 413
    const text = await request.text();
    let parsedBody: unknown;
    try {
      parsedBody = JSON.parse(text);
    } catch {
      // Let the SDK answer malformed bodies in its own words.
      const again = new Request(request.url, {
        method: "POST",
        headers: request.headers,
        body: text,
      });
      return modern.fetch(again);
    }
    if (
      await isLegacyRequest(request, parsedBody, {
        maxRequestBodySize: opts.maxBodyBytes,
      })
    ) {
      if (isInitialize(parsedBody)) return openSession(request, parsedBody);
      return track(
        request,
        undefined,
        () => stateless(request, { parsedBody }),
      );
    }
    return track(
      request,
      undefined,
      () => modern.fetch(request, { parsedBody }),
    );
  }

  async function openSse(): Promise<Response> {
    const refused = full();
    if (refused) return refused;
    const transport = new SseServerTransport({
      messagesPath: "/messages",
      keepAliveMs: opts.keepAliveMs,
      maxBodyBytes: opts.maxBodyBytes,
    });
    const server = factory();
    await server.connect(transport);
    register({
      id: transport.sessionId,
      kind: "sse",
      server,
      transport,
      lastSeen: Date.now(),
      busy: 0,
    });
    return transport.response;
  }

  function postMessage(request: Request, url: URL): Promise<Response> {
    const s = sessions.get(url.searchParams.get("sessionId") ?? "");
    if (!s || s.kind !== "sse") {
      return Promise.resolve(jsonRpcError(
        404,
        "Session not found: open a new stream with GET /sse",
      ));
    }
    s.lastSeen = Date.now();
    return (s.transport as SseServerTransport).handlePost(request);
  }

  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") {
      return Response.json({ status: draining ? "draining" : "ok" }, {
        status: draining ? 503 : 200,
      });
    }
    if (draining) {
      return jsonRpcError(503, "The server is shutting down", {
        "Retry-After": "5",
        Connection: "close",
      });
    }
    const host = validateHostHeader(request.headers.get("host"), hosts);
    if (!host.ok) {
      log.debug(`403 ${host.message}`);
      return jsonRpcError(
        403,
        `${host.message}: add the name to MCP_ALLOWED_HOSTS`,
      );
    }
    const origin = validateOriginHeader(request.headers.get("origin"), hosts);
    if (!origin.ok) {
      log.debug(`403 ${origin.message}`);
      return jsonRpcError(403, `Forbidden: ${origin.message}`);
    }
    const denied = await checkToken?.(request);
    if (denied) {
      log.debug(`401 ${request.method} ${url.pathname}`);
      return denied;
    }
    switch (url.pathname) {
      case "/mcp":
        return mcp(request);
      case "/sse":
        return request.method === "GET"
          ? openSse()
          : jsonRpcError(405, "Method not allowed: GET /sse", {
            Allow: "GET",
          });
      case "/messages":
        return request.method === "POST"
          ? postMessage(request, url)
          : jsonRpcError(405, "Method not allowed: POST /messages", {
            Allow: "POST",
          });
      default:
        return jsonRpcError(
          404,
          "Not found: MCP is served at /mcp (legacy SSE at /sse)",
        );
    }
  }

  function busy(): number {
    let n = inflight;
    for (const s of sessions.values()) {
      if (s.transport instanceof SseServerTransport) n += s.transport.pending;
    }
    return n;
  }

  return {
    fetch: route,
    sessions: () => {
      let sse = 0;
      for (const s of sessions.values()) if (s.kind === "sse") sse++;
      return { streamable: sessions.size - sse, sse };
    },
    busy,
    async shutdown(signal?: AbortSignal): Promise<void> {
      draining = true;
      const deadline = Date.now() + opts.drainMs;
      while (busy() > 0 && Date.now() < deadline && !signal?.aborted) {
        await delay(25, signal);
      }
      clearInterval(sweeper);
      await Promise.all(
        [...sessions.keys()].map((id) => endSession(id, "shutdown")),
      );
      await modern.close();
    },
  };
}

function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** Serves MCP over HTTP until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runHttp(deps: ServerDeps): Promise<void> {
  const { config } = deps;
  const app = createHttpApp(deps);
  const stop = new AbortController();
  const force = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  let received: Deno.Signal | undefined;
  const handlers = signals.map((sig) => {
    const handler = () => {
      if (received) {
        force.abort(); // a second signal: stop waiting
        return;
      }
      received = sig;
      stop.abort();
    };
    Deno.addSignalListener(sig, handler);
    return [sig, handler] as const;
  });

  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => {
      log.info(
        `Listening on http://${
          urlHost(hostname)
        }:${port}: Streamable HTTP at /mcp, legacy SSE at /sse${
          config.authToken ? ", bearer token required" : ""
        }`,
      );
    },
    onError: (e) => {
      log.error("HTTP handler failed", { error: (e as Error)?.message });
      return jsonRpcError(500, "Internal server error", {}, -32603);
    },
  }, app.fetch);

  await new Promise<void>((resolve) =>
    stop.signal.addEventListener("abort", () => resolve(), { once: true })
  );
  const busy = app.busy();
  log.info(
    `${received}: shutting down${
      busy ? `, finishing ${busy} in-flight request(s)` : ""
    }`,
  );
  const closed = server.shutdown();
  await app.shutdown(force.signal);
  await Promise.race([closed, delay(2_000, force.signal)]);
  for (const [sig, handler] of handlers) {
    Deno.removeSignalListener(sig, handler);
  }
  log.info("Stopped");
}

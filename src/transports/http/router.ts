/**
 * The HTTP face of the server, independent of the listening socket:
 *
 * - `/mcp` Streamable HTTP. 2026-07-28 requests are served statelessly by the
 *   SDK's `createMcpHandler` (one McpServer per request, nothing shared but
 *   the PveClient; a question to the human carries its state sealed, so
 *   replicas share only MCP_STATE_SECRET: src/safety/state.ts). A 2025-era `initialize`
 *   opens a session (`Mcp-Session-Id`; server→client requests work on it); see
 *   sessions.ts for how sessions end. Other 2025-era requests without a
 *   session are served statelessly.
 * - `/sse` + `/messages` the legacy HTTP+SSE transport (sse.ts), same checks
 *   and the same session store.
 * - `/healthz` liveness: unauthenticated, says nothing but ok/draining; 503
 *   from `leaving()` on (SIGTERM), while requests are still served.
 * - `/.well-known/*` 404 before auth: the server offers no OAuth, and a 401
 *   there would start an OAuth flow in clients.
 *
 * Everything else passes, in order: the Host check (loopback names,
 * MCP_ALLOWED_HOSTS and the bind address; 403), the Origin check (only
 * MCP_ALLOWED_ORIGINS; requests without Origin pass; 403), then the bearer
 * token when MCP_AUTH_TOKEN is set (401 with WWW-Authenticate). Paths match
 * exactly: `/mcp/`, `//mcp` or `/%6dcp` are 404 (after auth).
 */
import {
  createMcpHandler,
  isLegacyRequest,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import { setTimeout as delay } from "node:timers/promises";
import { logger } from "../../log.ts";
import { createServer, type ServerDeps } from "../../server.ts";
import { selectTools } from "../../tools/mod.ts";
import { jsonRpcError, SseServerTransport } from "../sse.ts";
import {
  allowedHostnames,
  allowedOrigins,
  bearerGuard,
  hostGuard,
  originGuard,
  readBody,
} from "./guards.ts";
import { type Session, SessionStore } from "./sessions.ts";

export interface HttpOptions {
  /** A 2025-era session unused this long is closed (default 10 min). */
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
  sessionIdleMs: 10 * 60_000,
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
   * Tells load balancers this server is about to stop: `/healthz` answers
   * 503 from now on, while every request is still served.
   */
  leaving(): void;
  /**
   * Refuses new requests, waits for in-flight ones (up to `drainMs`, or until
   * `signal` aborts), then closes every session.
   */
  shutdown(signal?: AbortSignal): Promise<void>;
}

const log = logger("http");
const NOT_FOUND = "Not found: MCP is served at /mcp (legacy SSE at /sse)";

/** Calls `done` once the response body has been sent (or abandoned). */
function whenSent(response: Response, done: () => void): Response {
  // A JSON answer is complete once built; only an event stream needs
  // following, and wrapping every body in a stream would cost every call.
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

/** The tool a single `tools/call` names, if the body is one. */
function toolCalled(body: unknown): string | undefined {
  if (Array.isArray(body) || body === null || typeof body !== "object") {
    return undefined;
  }
  const m = body as { method?: unknown; params?: { name?: unknown } };
  return m.method === "tools/call" && typeof m.params?.name === "string"
    ? m.params.name
    : undefined;
}

function isInitialize(body: unknown): boolean {
  return (Array.isArray(body) ? body : [body]).some((m) =>
    (m as { method?: unknown })?.method === "initialize"
  );
}

/** Builds the request handler for every HTTP path of the server. */
export function createHttpApp(
  deps: ServerDeps,
  options: HttpOptions = {},
): HttpApp {
  const opts = { ...DEFAULTS, ...options };
  // Build one server now: a bad setting (e.g. an unknown toolset) stops the
  // process at start, as on stdio, instead of failing every request.
  void createServer(deps).close();
  // A stateless request gets a server of its own; for a tools/call of a
  // selected tool, that server registers only the tool called (registering
  // all of them per request dominated the cost of a call). Sessions and
  // every other request get every tool.
  const selected = new Set(selectTools(deps.config).map((t) => t.name));
  const calledTool = new WeakMap<Request, string>();
  const factory = (context?: { requestInfo?: Request }) => {
    const only = context?.requestInfo && calledTool.get(context.requestInfo);
    const narrowed: ServerDeps & { onlyTool?: string } = only
      ? { ...deps, onlyTool: only }
      : deps;
    return createServer(narrowed);
  };
  const onerror = (e: Error) => log.debug(`MCP HTTP: ${e.message}`);
  // Every request without a session, both eras, classified once by the
  // SDK's own routing (2026-07-28 served as such, a 2025-era request by its
  // stateless fallback); it also answers what is not a POST (405) and a
  // body that is not JSON (-32700) in its own words.
  const either = createMcpHandler(factory, {
    legacy: "stateless",
    onerror,
    keepAliveMs: opts.keepAliveMs,
    maxRequestBodySize: opts.maxBodyBytes,
  });
  const checkHost = hostGuard(allowedHostnames(deps.config));
  const checkOrigin = originGuard(allowedOrigins(deps.config));
  const checkToken = bearerGuard(deps.config.authToken);
  const store = new SessionStore(opts.maxSessions, opts.sessionIdleMs);
  let inflight = 0;
  let draining = false;
  let leaving = false;

  function full(): Response {
    log.warning(`Session cap reached (${opts.maxSessions})`);
    return jsonRpcError(
      503,
      `Too many open sessions (${opts.maxSessions}): retry later`,
      { "Retry-After": "30" },
    );
  }

  /** Counts a request as in flight from now; the call ends it (once). */
  function begin(session?: Session): () => void {
    inflight++;
    if (session) session.busy++;
    let finished = false;
    return () => {
      if (finished) return;
      finished = true;
      inflight--;
      if (session) {
        session.busy--;
        session.lastSeen = Date.now();
      }
    };
  }

  /**
   * Counts a POST as in flight until its response has been sent; `counted`
   * ends the count its body was read under, once this one has begun.
   */
  async function track(
    request: Request,
    session: Session | undefined,
    serve: () => Promise<Response>,
    counted?: () => void,
  ): Promise<Response> {
    if (request.method !== "POST") return serve();
    const done = begin(session);
    counted?.();
    try {
      return whenSent(await serve(), done);
    } catch (e) {
      done();
      throw e;
    }
  }

  /** Builds a piece of a session whose place is reserved: a throw frees it. */
  function reserved<T>(make: () => T): T {
    try {
      return make();
    } catch (e) {
      store.abandoned();
      throw e;
    }
  }

  async function openSession(
    request: Request,
    parsedBody: unknown,
    reading: () => void,
  ): Promise<Response> {
    if (!store.reserve()) return full();
    const server = reserved(factory);
    let opened = false;
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
        opened = true;
        store.opened(session);
      },
      onsessionclosed: (id) => void store.end(id, "closed by the client"),
    });
    session.transport = transport;
    try {
      await server.connect(transport);
      return await track(
        request,
        session,
        () => transport.handleRequest(request, { parsedBody }),
        reading,
      );
    } finally {
      if (!opened) {
        // The initialize was refused: nothing to keep.
        store.abandoned();
        await transport.close().catch(() => {});
        await server.close().catch(() => {});
      }
    }
  }

  async function mcp(request: Request): Promise<Response> {
    const sid = request.headers.get("mcp-session-id");
    if (sid !== null) {
      const s = store.use(sid);
      if (!s || s.kind !== "streamable") {
        return jsonRpcError(
          404,
          "Session not found (expired or closed): send initialize again",
        );
      }
      const transport = s.transport as WebStandardStreamableHTTPServerTransport;
      return track(request, s, () => transport.handleRequest(request));
    }
    if (request.method !== "POST") return either.fetch(request); // 405
    // In flight from its first byte: a body still arriving when shutdown
    // starts is waited for, and answered (track() counts it on from there).
    const reading = begin();
    try {
      return await sessionless(request, reading);
    } finally {
      reading();
    }
  }

  /**
   * A POST without a session (one stateless request, or an initialize),
   * counted as `reading` until track() counts it.
   */
  async function sessionless(
    request: Request,
    reading: () => void,
  ): Promise<Response> {
    // Read (counting while it streams) and parse the body once; the SDK's
    // entries take it pre-parsed.
    const body = await readBody(request, opts.maxBodyBytes);
    if (!body.ok) return body.response;
    let parsedBody: unknown;
    try {
      parsedBody = JSON.parse(body.text);
    } catch {
      // Let the SDK answer malformed bodies in its own words.
      const again = new Request(request.url, {
        method: "POST",
        headers: request.headers,
        body: body.text,
      });
      return either.fetch(again);
    }
    const called = toolCalled(parsedBody);
    if (called !== undefined && selected.has(called)) {
      calledTool.set(request, called);
    }
    // Only a 2025-era initialize opens a session: classify it here; every
    // other request is classified once, by the SDK's entry.
    if (
      isInitialize(parsedBody) &&
      await isLegacyRequest(request, parsedBody, {
        maxRequestBodySize: opts.maxBodyBytes,
      })
    ) {
      return openSession(request, parsedBody, reading);
    }
    return track(
      request,
      undefined,
      () => either.fetch(request, { parsedBody }),
      reading,
    );
  }

  async function openSse(): Promise<Response> {
    if (!store.reserve()) return full();
    const transport = reserved(() =>
      new SseServerTransport({
        messagesPath: "/messages",
        keepAliveMs: opts.keepAliveMs,
        maxBodyBytes: opts.maxBodyBytes,
      })
    );
    const server = reserved(factory);
    try {
      await server.connect(transport);
    } catch (e) {
      store.abandoned();
      throw e;
    }
    store.opened({
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
    const s = store.use(url.searchParams.get("sessionId") ?? "");
    if (!s || s.kind !== "sse") {
      return Promise.resolve(jsonRpcError(
        404,
        "Session not found: open a new stream with GET /sse",
      ));
    }
    return (s.transport as SseServerTransport).handlePost(request);
  }

  function route(request: Request): Promise<Response> | Response {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === "/healthz") {
      const down = draining || leaving;
      return Response.json({ status: down ? "draining" : "ok" }, {
        status: down ? 503 : 200,
      });
    }
    if (path.startsWith("/.well-known/")) {
      return jsonRpcError(404, "Not found: this server offers no OAuth");
    }
    if (draining) {
      return jsonRpcError(503, "The server is shutting down", {
        "Retry-After": "5",
        Connection: "close",
      });
    }
    const refused = checkHost(request) ?? checkOrigin(request) ??
      checkToken?.(request);
    if (refused) {
      log.debug(`${refused.status} ${request.method} ${path}`);
      return refused;
    }
    switch (path) {
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
        return jsonRpcError(404, NOT_FOUND);
    }
  }

  function busy(): number {
    let n = inflight;
    for (const s of store.values()) {
      if (s.transport instanceof SseServerTransport) n += s.transport.pending;
    }
    return n;
  }

  return {
    fetch: async (request) => await route(request),
    sessions: () => {
      const sse = store.count("sse");
      return { streamable: store.size - sse, sse };
    },
    busy,
    leaving: () => {
      leaving = true;
    },
    async shutdown(signal?: AbortSignal): Promise<void> {
      draining = true;
      const deadline = Date.now() + opts.drainMs;
      while (busy() > 0 && Date.now() < deadline && !signal?.aborted) {
        await delay(25, undefined, { signal }).catch(() => {});
      }
      await store.close();
      await either.close();
    },
  };
}

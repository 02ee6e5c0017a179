/**
 * MCP over stdio with a fast opening. stdout carries the protocol; logs go to
 * stderr.
 *
 * Loading the SDK, zod and the tools costs far more than the rest of start-up,
 * so a 2025-era client's opening (`initialize`, `notifications/initialized`,
 * `tools/list`, `ping`) is answered from src/tools/catalog.json, which a test
 * keeps identical to the SDK's own answers. The first other message (a tool
 * call, or any 2026-era request) hands the connection to the SDK's
 * `serveStdio`: the opening is replayed to it (its duplicate answers dropped),
 * and from then on every message passes straight through.
 *
 * What this layer guarantees, whoever answers (tests/e2e/stdio_test.ts):
 * - Every line gets a JSON-RPC answer or is ignored as JSON-RPC says (bad
 *   notifications and responses): not JSON → -32700; not a message object, a
 *   batch, no method, a bad `jsonrpc`/`method`/`params`, an id that is not a
 *   string or safe integer → -32600. No line ends the session.
 * - Lines are split in linear time. A line longer than {@link MAX_LINE_BYTES}
 *   is skipped unread and answered with -32600, with its id when its first or
 *   last bytes show it (a response is not answered); the session goes on.
 * - Shutdown (stdin closed, or a first SIGTERM/SIGINT): reading stops, and
 *   calls in flight get up to {@link SHUTDOWN_GRACE_MS} to finish. A further
 *   SIGTERM/SIGINT ends the wait at once. Calls still running then are
 *   cancelled (their signals abort their Proxmox requests) and answered with
 *   an error saying so; a Proxmox task one of them started goes on. stdout is
 *   flushed before this function returns.
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config.ts";
import type { ServerDeps } from "../server.ts";
import { deferSdk } from "../sdk_defer.ts";
import catalogJson from "../tools/catalog.json" with { type: "json" };
import { selectBy } from "../tools/toolsets.ts";
import { FastCalls } from "./call_fast.ts";

type RequestId = string | number;

type Message = {
  jsonrpc: "2.0";
  id?: RequestId | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: unknown;
};

interface Catalog {
  protocolVersions: string[];
  latestProtocolVersion: string;
  initialize: Record<string, unknown>;
  tools: { name: string; annotations?: { readOnlyHint?: boolean } }[];
  toolsetOf: Record<string, string>;
}

/** The longest line (one JSON-RPC message) read: 4 MiB, as HTTP's body limit. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
/**
 * How long calls in flight may run on once stdin closes or a first
 * SIGTERM/SIGINT arrives: under Docker's 10 s between SIGTERM and SIGKILL.
 */
export const SHUTDOWN_GRACE_MS = 8_000;

/** JSON-RPC error codes used here. */
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const INTERNAL_ERROR = -32603;
/** Server-defined: the call was cancelled because the server is shutting down. */
const SHUTTING_DOWN = -32000;

/** How many first and last bytes of an over-long line are searched for its id. */
const EDGE_BYTES = 4096;

const catalog = catalogJson as unknown as Catalog;
const encoder = new TextEncoder();

/** The catalog's tools under the config's filters (same order as the SDK's). */
export function catalogTools(
  config: Pick<Config, "readOnly" | "toolsets">,
): Catalog["tools"] {
  return selectBy(catalog.tools, (t) => ({
    toolset: catalog.toolsetOf[t.name],
    readOnly: t.annotations?.readOnlyHint === true,
  }), config);
}

/** An id echoed exactly as the client wrote it (a number JSON cannot hold). */
class RawId {
  constructor(readonly text: string) {}
}
type ReplyId = RequestId | RawId | null;

function isRequestId(id: unknown): id is RequestId {
  return typeof id === "string" || Number.isSafeInteger(id);
}

function isReply(m: Message): m is Message & { id: RequestId } {
  return m.method === undefined && isRequestId(m.id) &&
    ("result" in m || "error" in m);
}

/** Writes whole lines to stdout, in order. */
class Output {
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /** Told of every reply as it is queued. */
  onReply?: (id: RequestId) => void;

  write(msg: Message): Promise<void> {
    if (isReply(msg)) this.onReply?.(msg.id);
    return this.#line(JSON.stringify(msg));
  }

  error(id: ReplyId, code: number, message: string): Promise<void> {
    if (!(id instanceof RawId)) {
      return this.write({ jsonrpc: "2.0", id, error: { code, message } });
    }
    return this.#line(
      `{"jsonrpc":"2.0","id":${id.text},"error":${
        JSON.stringify({ code, message })
      }}`,
    );
  }

  /** Resolves once everything queued so far is written (or stdout is gone). */
  idle(): Promise<void> {
    return this.#queue;
  }

  #line(text: string): Promise<void> {
    const bytes = encoder.encode(text + "\n");
    this.#queue = this.#queue.then(async () => {
      if (this.#closed) return;
      try {
        let off = 0;
        while (off < bytes.length) {
          off += await Deno.stdout.write(bytes.subarray(off));
        }
      } catch {
        this.#closed = true; // the client went away
      }
    });
    return this.#queue;
  }
}

/** Requests read and not answered yet (ids may repeat), with their methods. */
class InFlight {
  #calls = new Map<RequestId, string[]>();
  #waiters: (() => void)[] = [];

  get size(): number {
    return this.#calls.size;
  }

  add(id: RequestId, method: string): void {
    const methods = this.#calls.get(id);
    if (methods) methods.push(method);
    else this.#calls.set(id, [method]);
  }

  /** The request was answered, or cancelled by the client (no answer due). */
  settle(id: RequestId): void {
    const methods = this.#calls.get(id);
    if (!methods) return;
    methods.shift();
    if (methods.length === 0) this.#calls.delete(id);
    if (this.#calls.size === 0) {
      for (const w of this.#waiters.splice(0)) w();
    }
  }

  /** Resolves when nothing is in flight. */
  drained(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }

  /** Everything still in flight, forgotten here. */
  takeAll(): [RequestId, string][] {
    const all = [...this.#calls].flatMap(([id, methods]) =>
      methods.map((m): [RequestId, string] => [id, m])
    );
    this.#calls.clear();
    return all;
  }
}

/** A Transport (the SDK's interface) fed by our reader, writing to Output. */
class HandoffTransport {
  onmessage?: (message: Message) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  #out: Output;
  /** Ids of replayed requests whose answers the client already has. */
  #suppress: Set<string | number>;
  #started!: () => void;
  /** Set at shutdown: late answers of cancelled calls are dropped. */
  muted = false;
  /** Resolves once the SDK has started the transport (its handlers are set). */
  readonly started: Promise<void> = new Promise((r) => this.#started = r);
  constructor(out: Output, suppress: Set<string | number>) {
    this.#out = out;
    this.#suppress = suppress;
  }
  start(): Promise<void> {
    this.#started();
    return Promise.resolve();
  }
  send(message: Message): Promise<void> {
    if (this.muted) return Promise.resolve();
    const isReply = message.method === undefined && message.id !== undefined &&
      message.id !== null;
    if (isReply && this.#suppress.delete(message.id as string | number)) {
      return Promise.resolve();
    }
    return this.#out.write(message);
  }
  close(): Promise<void> {
    this.onclose?.();
    return Promise.resolve();
  }
}

/** What one parsed line is, by JSON-RPC 2.0's and MCP's rules. */
type Inbound =
  | { kind: "request"; msg: Message & { id: RequestId; method: string } }
  | { kind: "notification"; msg: Message & { method: string } }
  | { kind: "response"; msg: Message }
  | { kind: "invalid"; id: ReplyId; reason: string }
  | { kind: "ignored"; reason: string };

/** Classifies a parsed line; `text` is the line, to echo odd ids exactly. */
function classify(value: unknown, text: string): Inbound {
  if (Array.isArray(value)) {
    return {
      kind: "invalid",
      id: null,
      reason: "batches are not supported (one message per line)",
    };
  }
  if (value === null || typeof value !== "object") {
    return {
      kind: "invalid",
      id: null,
      reason: "a message must be a JSON object",
    };
  }
  const m = value as Record<string, unknown>;
  const hasId = Object.hasOwn(m, "id");
  const echo: ReplyId = isRequestId(m.id)
    ? m.id
    : typeof m.id === "number"
    ? numberToken(text, m.id)
    : null;
  const invalid = (reason: string): Inbound =>
    hasId ? { kind: "invalid", id: echo, reason } : { kind: "ignored", reason };
  if (Object.hasOwn(m, "method")) {
    if (m.jsonrpc !== "2.0") return invalid(`jsonrpc must be "2.0"`);
    if (typeof m.method !== "string") return invalid("method must be a string");
    if (
      m.params !== undefined &&
      (m.params === null || typeof m.params !== "object" ||
        Array.isArray(m.params))
    ) {
      return invalid("params must be an object");
    }
    if (!hasId) return { kind: "notification", msg: m as never };
    if (!isRequestId(m.id)) {
      return invalid(
        m.id === null
          ? "id must not be null"
          : "id must be a string or an integer within ±(2^53 - 1)",
      );
    }
    return { kind: "request", msg: m as never };
  }
  if (Object.hasOwn(m, "result") || Object.hasOwn(m, "error")) {
    return isRequestId(m.id) && m.jsonrpc === "2.0"
      ? { kind: "response", msg: m as never }
      : { kind: "ignored", reason: "a response without a valid id" };
  }
  return { kind: "invalid", id: echo, reason: "no method" };
}

/** The top-level id as written, when it is a number equal to `parsed`. */
function numberToken(text: string, parsed: number): ReplyId {
  const token = scanTop(text).id;
  return token !== undefined && !token.startsWith('"') &&
      Number(token) === parsed
    ? new RawId(token)
    : null;
}

/** An id token as a reply id (exact, for numbers JSON cannot hold). */
function replyId(token: string | undefined): ReplyId {
  if (token === undefined) return null;
  try {
    const id = JSON.parse(token);
    if (isRequestId(id)) return id;
    return typeof id === "number" ? new RawId(token) : null;
  } catch {
    return null;
  }
}

const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/;
/** A top-level id as the last member (where the SDK's client writes it). */
const LAST_ID =
  /[,{]\s*"id"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"(?:[^"\\]|\\.)*")\s*\}\s*$/;

/**
 * What an over-long line was, from its first and last bytes: a response
 * (never answered), or a message to answer with this id (null when unknown).
 */
function overlongId(head: string, tail: string): ReplyId | "response" {
  const top = scanTop(head);
  if (
    !top.keys.has('"method"') &&
    (top.keys.has('"result"') || top.keys.has('"error"'))
  ) {
    return "response";
  }
  return replyId(top.id ?? LAST_ID.exec(tail)?.[1]);
}

/**
 * The top-level member names of JSON object text (raw, with quotes) and the
 * raw token of its `"id"` when that is a string or a number, as far as the
 * text goes (it may be cut).
 */
function scanTop(text: string): { id?: string; keys: Set<string> } {
  const keys = new Set<string>();
  let id: string | undefined;
  const n = text.length;
  let i = 0;
  const ws = () => {
    while (i < n && " \t\r\n".includes(text[i])) i++;
  };
  const str = (): string | undefined => {
    const start = i++;
    while (i < n) {
      const c = text[i++];
      if (c === "\\") i++;
      else if (c === '"') return text.slice(start, i);
    }
    return undefined;
  };
  const skipValue = (): boolean => {
    let depth = 0;
    while (i < n) {
      const c = text[i];
      if (c === '"') {
        if (str() === undefined) return false;
        continue;
      }
      if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        if (depth === 0) return true;
        depth--;
      } else if (c === "," && depth === 0) return true;
      i++;
    }
    return false;
  };
  ws();
  if (text[i++] !== "{") return { keys };
  while (i < n) {
    ws();
    if (text[i] !== '"') break;
    const key = str();
    ws();
    if (key === undefined || text[i++] !== ":") break;
    keys.add(key);
    ws();
    if (key === '"id"' && id === undefined) {
      id = text[i] === '"' ? str() : NUMBER.exec(text.slice(i, i + 400))?.[0];
      if (id === undefined) break;
    } else if (!skipValue()) break;
    ws();
    if (text[i++] !== ",") break;
  }
  return { id, keys };
}

/** One line of input, or the first and last bytes of one too long to read. */
type Line = { text: string } | { tooLong: { head: string; tail: string } };

/**
 * Splits a byte stream into lines in linear time. A line longer than `max`
 * bytes is skipped and reported once it ends, with its first and last
 * {@link EDGE_BYTES}. A last line without a newline counts.
 */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array>,
  max: number,
): AsyncGenerator<Line> {
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let size = 0;
  /** Set while skipping an over-long line: its first bytes. */
  let head: Uint8Array | undefined;
  let tail = new Uint8Array(0);
  const take = (): string => {
    const bytes = new Uint8Array(size);
    let off = 0;
    for (const p of parts) {
      bytes.set(p, off);
      off += p.length;
    }
    parts = [];
    size = 0;
    return decoder.decode(bytes).replace(/\r$/, "");
  };
  const overlong = (): Line => {
    const line = {
      tooLong: { head: decoder.decode(head), tail: decoder.decode(tail) },
    };
    head = undefined;
    tail = new Uint8Array(0);
    return line;
  };
  for await (const chunk of chunks) {
    let start = 0;
    while (true) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (head === undefined && size + piece.length > max) {
        parts.push(piece);
        head = new Uint8Array(EDGE_BYTES);
        let n = 0;
        for (const p of parts) {
          const k = Math.min(p.length, EDGE_BYTES - n);
          head.set(p.subarray(0, k), n);
          n += k;
          if (n === EDGE_BYTES) break;
        }
        head = head.subarray(0, n);
        parts = [];
        size = 0;
      }
      if (head !== undefined) {
        // Keep only the last bytes of what is skipped.
        if (piece.length >= EDGE_BYTES) tail = piece.slice(-EDGE_BYTES);
        else {
          const joined = new Uint8Array(tail.length + piece.length);
          joined.set(tail);
          joined.set(piece, tail.length);
          tail = joined.slice(-EDGE_BYTES);
        }
      } else if (piece.length > 0) {
        parts.push(piece.slice());
        size += piece.length;
      }
      if (nl < 0) break;
      yield head !== undefined ? overlong() : { text: take() };
      start = nl + 1;
    }
  }
  if (head !== undefined) yield overlong();
  else if (size > 0) yield { text: take() };
}

/** Chunks of `stream` until it ends or `stop` resolves; `onEnd` is told. */
async function* chunksOf(
  stream: ReadableStream<Uint8Array>,
  stop: Promise<void>,
  onEnd: () => void,
): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  const stopped = stop.then(() => ({ done: true as const, value: undefined }));
  try {
    while (true) {
      const r = await Promise.race([reader.read(), stopped]);
      if (r.done) return;
      yield r.value;
    }
  } catch {
    // stdin broke: as closed
  } finally {
    onEnd();
    reader.cancel().catch(() => {});
  }
}

/** `p`'s value, or undefined once `ms` have passed (or when it fails). */
async function within<T>(
  ms: number,
  p: Promise<T> | undefined,
): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms)),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The answer to a call still running when the grace period ended. */
function shutdownMessage(method: string): string {
  const waited = `${SHUTDOWN_GRACE_MS / 1000} s`;
  return method === "tools/call"
    ? `Server shutting down: the call was cancelled after ${waited}. A Proxmox task it started goes on; see the node's task log`
    : `Server shutting down: the request was cancelled after ${waited}`;
}

export interface StdioOptions {
  config: Config;
  /** Loads everything behind the opening (logging, Proxmox client). */
  load: () => Promise<ServerDeps>;
}

/**
 * Serves MCP on stdin/stdout until stdin closes or SIGTERM/SIGINT, then
 * finishes or cancels the calls in flight (see the module's documentation)
 * and returns once every answer is written.
 */
export async function serveStdio(options: StdioOptions): Promise<void> {
  const tools = catalogTools(options.config);
  const out = new Output();
  const inflight = new InFlight();
  out.onReply = (id) => inflight.settle(id);
  const opening: Message[] = [];
  const suppress = new Set<string | number>();
  let initialized = false;
  let transport: HandoffTransport | undefined;
  let sdkHandle: { close(): Promise<void> } | undefined;
  let handoff: Promise<HandoffTransport> | undefined;
  let prefetch: Promise<ServerDeps> | undefined;
  /** Set once the SDK is loaded (and with it, configured logging). */
  let log: Logger | undefined;
  /** Set when shutdown is complete: nothing more is delivered. */
  let finished = false;
  const deps = () => prefetch ??= options.load();
  // The first read-only calls are answered without the SDK (call_fast.ts):
  // nothing may load it before the handoff.
  deferSdk();
  const fastCalls = new FastCalls({
    config: options.config,
    readOnlyTools: new Set(
      tools.filter((t) => t.annotations?.readOnlyHint === true).map((t) =>
        t.name
      ),
    ),
    deps,
    client: () => opening[0]?.params,
    write: (msg) => out.write(msg as Message),
  });
  /** MCP's own message schema, once the SDK is loaded. */
  let wellFormed: (m: Message) => boolean = () => true;

  const startHandoff = () =>
    handoff ??= (async () => {
      const [d, sdk, server, core] = await Promise.all([
        deps(),
        import("@modelcontextprotocol/server/stdio"),
        import("../server.ts"),
        import("@modelcontextprotocol/server"),
        import("../sdk.ts").then((m) => m.loadSdk()),
      ]);
      wellFormed = (m) => {
        try {
          core.parseJSONRPCMessage(m);
          return true;
        } catch {
          return false;
        }
      };
      const { logger } = await import("../log.ts");
      const l = logger("stdio");
      const t = new HandoffTransport(out, suppress);
      sdkHandle = sdk.serveStdio(() => server.createServer(d), {
        transport: t as never,
        onerror: (e) => l.warning("stdio error", { error: e.message }),
      });
      await t.started;
      l.info("Serving MCP on stdio");
      for (const m of opening) t.onmessage?.(m);
      transport = t;
      log = l;
      return t;
    })();

  /**
   * Starts the handoff in the background, once no call is answered without
   * the SDK (loading it meanwhile would only slow that answer down).
   */
  const handoffSoon = () =>
    setTimeout(() => {
      if (fastCalls.size > 0) fastCalls.idle().then(handoffSoon);
      else startHandoff().catch(() => {});
    }, 5);

  /** Loading failed: said on stderr, and to the request that needed it. */
  const cannotLoad = (e: unknown, m: Message) => {
    const message = `Cannot load the server: ${(e as Error)?.message ?? e}`;
    // Logging may be what failed to load: say it on stderr as main.ts does.
    try {
      Deno.stderr.writeSync(encoder.encode(`proxmox-mcp: ${message}\n`));
    } catch {
      // stderr closed
    }
    if (isRequestId(m.id) && m.method !== undefined) {
      out.error(m.id, INTERNAL_ERROR, message);
    }
  };

  const reply = (id: Message["id"], result: unknown) =>
    out.write({ jsonrpc: "2.0", id, result });

  /** Answers from the catalog when it can; false hands the message over. */
  const fast = (m: Message): boolean => {
    // Hidden tools change the opening (listChanged) and the list, and
    // several clusters the instructions and every tool's schema (`cluster`):
    // the SDK answers everything then.
    if (
      handoff || options.config.hideUnpermitted ||
      (options.config.clusters?.length ?? 0) > 1
    ) return false;
    if (
      m.method === "initialize" && m.id != null && !initialized &&
      opening.length === 0
    ) {
      const asked = String(m.params?.protocolVersion ?? "");
      const protocolVersion = catalog.protocolVersions.includes(asked)
        ? asked
        : catalog.latestProtocolVersion;
      initialized = true;
      opening.push(m);
      suppress.add(m.id);
      reply(m.id, { protocolVersion, ...catalog.initialize });
      return true;
    }
    if (!initialized) return false;
    if (m.id === undefined && m.method?.startsWith("notifications/")) {
      opening.push(m);
      return true;
    }
    if (
      m.method === "tools/list" && m.id != null &&
      m.params?.cursor === undefined
    ) {
      // The client will call a tool next: load the rest (the SDK, zod, the
      // tools, the Proxmox client) and hand over while it thinks, once the
      // answer is out; a failure is reported on the request that needs it.
      reply(m.id, { tools }).then(handoffSoon);
      return true;
    }
    if (m.method === "ping" && m.id != null) {
      reply(m.id, {});
      return true;
    }
    return false;
  };

  const deliver = (t: HandoffTransport, m: Message) => {
    // The SDK drops a message its schema refuses without a word (e.g. an
    // object as progressToken): answer such a request here.
    if (!wellFormed(m)) {
      if (isRequestId(m.id) && m.method !== undefined) {
        out.error(
          m.id,
          INVALID_REQUEST,
          "Invalid Request: the message does not match MCP's JSON-RPC schema",
        );
      } else log?.debug("Ignored a malformed message");
      return;
    }
    try {
      t.onmessage?.(m);
    } catch (e) {
      log?.error("The SDK failed on a message", { error: String(e) });
      if (isRequestId(m.id) && m.method !== undefined) {
        out.error(m.id, INTERNAL_ERROR, "Internal error");
      }
    }
  };

  /** Handles one line; resolves once it is delivered (in order). */
  const handle = async (text: string): Promise<void> => {
    if (finished || !text.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      out.error(null, PARSE_ERROR, "Parse error");
      return;
    }
    const inbound = classify(value, text);
    switch (inbound.kind) {
      case "invalid":
        out.error(
          inbound.id,
          INVALID_REQUEST,
          `Invalid Request: ${inbound.reason}`,
        );
        return;
      case "ignored":
        log?.debug("Ignored a line", { reason: inbound.reason });
        return;
      case "response":
        // Before the handoff the server has asked nothing: nothing to answer.
        if (transport) deliver(transport, inbound.msg);
        else log?.debug("Ignored a response to no request");
        return;
      case "request":
        inflight.add(inbound.msg.id, inbound.msg.method);
        break;
      case "notification": {
        const cancelled = inbound.msg.params?.requestId;
        // A call answered without the SDK is cancelled here (no answer).
        if (
          inbound.msg.method === "notifications/cancelled" &&
          isRequestId(cancelled) && fastCalls.cancel(cancelled)
        ) {
          inflight.settle(cancelled);
          return;
        }
        // The SDK aborts a cancelled call and sends no answer for it.
        if (
          inbound.msg.method === "notifications/cancelled" &&
          isRequestId(cancelled) && handoff
        ) {
          inflight.settle(cancelled);
        }
        break;
      }
    }
    const msg = inbound.msg;
    if (transport) return deliver(transport, msg);
    if (initialized && fastCalls.accepts(msg)) {
      fastCalls.call(msg as Message & { id: RequestId }).catch((e) =>
        cannotLoad(e, msg)
      );
      return;
    }
    if (fast(msg)) return;
    let t: HandoffTransport;
    try {
      t = await startHandoff();
    } catch (e) {
      cannotLoad(e, msg);
      return;
    }
    if (!finished) deliver(t, msg);
  };

  // Shutdown triggers: stdin's end, then signals (a second one hurries).
  const stop = Promise.withResolvers<void>();
  const first = Promise.withResolvers<string>();
  const hurry = Promise.withResolvers<string>();
  let triggered = false;
  const trigger = (why: string) => {
    if (!triggered) {
      triggered = true;
      first.resolve(why);
    } else hurry.resolve(why);
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const listeners = signals.map((sig) => [sig, () => trigger(sig)] as const);
  for (const [sig, fn] of listeners) {
    try {
      Deno.addSignalListener(sig, fn);
    } catch {
      // not supported here
    }
  }
  // One failing promise must not end a session that serves others.
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    log?.error("Unhandled rejection", { error: String(e.reason) });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);

  const reading = (async () => {
    const chunks = chunksOf(Deno.stdin.readable, stop.promise, () => {
      if (!triggered) trigger("stdin closed");
    });
    for await (const line of splitLines(chunks, MAX_LINE_BYTES)) {
      if ("tooLong" in line) {
        const id = overlongId(line.tooLong.head, line.tooLong.tail);
        if (finished || id === "response") continue;
        out.error(
          id,
          INVALID_REQUEST,
          `Invalid Request: message longer than ${MAX_LINE_BYTES} bytes (the limit for one line)`,
        );
        continue;
      }
      try {
        await handle(line.text);
      } catch (e) {
        log?.error("Failed to handle a line", { error: String(e) });
      }
    }
  })();

  try {
    const why = await first.promise;
    stop.resolve();
    const waiting = inflight.size;
    if (waiting > 0) {
      log?.info(
        `Shutting down (${why}): waiting up to ${SHUTDOWN_GRACE_MS} ms for ${waiting} request(s)`,
      );
    }
    const ended = await within(
      SHUTDOWN_GRACE_MS,
      Promise.race([
        reading.catch(() => {}).then(() => inflight.drained()).then(() =>
          "drained"
        ),
        hurry.promise,
      ]),
    ) ?? "grace period over";
    finished = true;
    if (ended !== "drained") {
      // Abort every call's signal (the SDK then answers none of them) ...
      fastCalls.abortAll();
      await within(1000, sdkHandle?.close());
      if (transport) transport.muted = true;
      // ... and answer each here.
      const left = inflight.takeAll();
      for (const [id, method] of left) {
        out.error(id, SHUTTING_DOWN, shutdownMessage(method));
      }
      if (left.length > 0) {
        log?.warning(
          `Shutting down (${ended}): cancelled ${left.length} request(s) still running`,
        );
      }
    } else {
      await within(1000, sdkHandle?.close());
    }
    await out.idle();
  } finally {
    for (const [sig, fn] of listeners) {
      try {
        Deno.removeSignalListener(sig, fn);
      } catch {
        // was never added
      }
    }
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
}

/**
 * An HTTP/1.1 listener that cannot be exhausted, in front of a
 * `(Request) => Response` handler.
 *
 * `Deno.serve` offers no connection cap and no header or keep-alive timeout,
 * and one failed `accept` (EMFILE, "Too many open files") ends it and, with
 * it, the process. So connections are accepted here (`Deno.listen`):
 *
 * - an `accept` that fails is logged and retried after a short back-off; the
 *   listener keeps serving the connections it has;
 * - at most `maxConnections` are served at once; one more is answered 503
 *   (`Retry-After`) and closed;
 * - a connection must deliver a complete request head within
 *   `headersTimeoutMs` of opening, and the next one within `idleTimeoutMs` of
 *   the previous response (keep-alive); bytes trickling in do not extend
 *   either deadline (slowloris);
 * - a head larger than `maxHeaderBytes` gets 431; framing that could smuggle
 *   a request (Content-Length with Transfer-Encoding, conflicting lengths, a
 *   coding other than chunked) gets 400 and the connection closes;
 * - bodies (Content-Length or chunked) stream to the handler as it reads
 *   them: nothing is buffered ahead, so a size limit in the handler stops an
 *   oversized body after at most one read past it;
 * - a client that goes away aborts its request's `signal` and cancels a
 *   streamed response.
 *
 * Responses whose type is `text/event-stream` are streamed (chunked); others
 * are sent whole with a Content-Length.
 */
import { setTimeout as delay } from "node:timers/promises";
import { logger } from "../../log.ts";

export interface ListenOptions {
  hostname: string;
  port: number;
  /** Connections served at once; one more is answered 503 (default 256). */
  maxConnections?: number;
  /** From accept to a complete first request head (default 10 s). */
  headersTimeoutMs?: number;
  /** From the end of a response to the next complete request head (default 30 s). */
  idleTimeoutMs?: number;
  /** Largest request head (default 16 KiB). */
  maxHeaderBytes?: number;
  /** From a complete head to the end of its body (default 30 s). */
  bodyTimeoutMs?: number;
  onListen?: (addr: Deno.NetAddr) => void;
  /** The answer when the handler throws. */
  onError?: (error: unknown) => Response;
}

export interface Listener {
  addr: Deno.NetAddr;
  /** Connections open now. */
  connections(): number;
  /**
   * Stops accepting; idle connections close now, busy ones after their
   * response. Resolves when every connection is closed.
   */
  shutdown(): Promise<void>;
  /** Closes every connection at once. */
  close(): void;
}

type Handler = (request: Request) => Response | Promise<Response>;

const log = logger("http");
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const CRLF2 = [13, 10, 13, 10];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([A-Z]{1,16}) (\S+) HTTP\/1\.([01])$/;
const SAFE_HOST =
  /^[A-Za-z0-9.\-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;
const READ_SIZE = 16 * 1024;
const SWEEP_MS = 250;
/** Refusals in progress at most; beyond, a connection is closed unanswered. */
const MAX_SHEDDING = 128;
/** How long a refusal waits for the request before answering 503. */
const SHED_WAIT_MS = 50;

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  202: "Accepted",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  408: "Request Timeout",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** A complete response for a connection that is refused before any handler. */
function plain(status: number, message: string, extra = ""): Uint8Array {
  const body = JSON.stringify({
    jsonrpc: "2.0",
    error: { code: -32000, message },
    id: null,
  });
  return encoder.encode(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}\r\n` +
      `content-type: application/json\r\ncontent-length: ${body.length}\r\n` +
      `${extra}connection: close\r\n\r\n${body}`,
  );
}

const SHED = (max: number) =>
  plain(
    503,
    `Too many open connections (${max}): retry later`,
    "retry-after: 1\r\n",
  );

function indexOfHeadEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = Math.max(from, 0); i + 3 < to; i++) {
    if (
      buf[i] === 13 && buf[i + 1] === CRLF2[1] && buf[i + 2] === 13 &&
      buf[i + 3] === 10
    ) {
      return i;
    }
  }
  return -1;
}

class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** One accepted connection: a read buffer shared by heads and bodies. */
class Connection {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(READ_SIZE);
  start = 0;
  end = 0;
  /** Epoch ms after which an idle connection is closed; 0 while a request is served. */
  deadline: number;
  closed = false;
  /** Aborts the request being served, if any. */
  abort?: AbortController;
  #reading?: Promise<boolean>;

  constructor(readonly conn: Deno.Conn, headersTimeoutMs: number) {
    this.deadline = Date.now() + headersTimeoutMs;
  }

  get buffered(): number {
    return this.end - this.start;
  }

  /** Reads more bytes into the buffer; false at EOF or on error. One read at a time. */
  fill(): Promise<boolean> {
    if (this.#reading) return this.#reading;
    if (this.closed) return Promise.resolve(false);
    if (this.start === this.end) this.start = this.end = 0;
    if (this.buf.length - this.end < READ_SIZE) {
      const live = this.end - this.start;
      const size = Math.max(this.buf.length, live + READ_SIZE);
      const next = size > this.buf.length ? new Uint8Array(size) : this.buf;
      next.set(this.buf.subarray(this.start, this.end), 0);
      this.buf = next;
      this.start = 0;
      this.end = live;
    }
    const reading = this.conn.read(this.buf.subarray(this.end)).then(
      (n) => {
        this.#reading = undefined;
        if (n === null) return false;
        this.end += n;
        return true;
      },
      () => {
        this.#reading = undefined;
        return false;
      },
    );
    this.#reading = reading;
    return reading;
  }

  /** Takes up to `max` buffered bytes (a copy). */
  take(max: number): Uint8Array<ArrayBuffer> {
    const n = Math.min(max, this.end - this.start);
    const out = this.buf.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }

  async write(bytes: Uint8Array): Promise<boolean> {
    try {
      let off = 0;
      while (off < bytes.length) {
        off += await this.conn.write(bytes.subarray(off));
      }
      return true;
    } catch {
      this.close();
      return false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort?.abort();
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

interface Head {
  method: string;
  target: string;
  minor: number;
  /**
   * The header lines as read (name, trimmed value), given to the Request as
   * they are: building a Headers first and copying it into the Request cost
   * about 5 % of a tool call under load.
   */
  headers: [string, string][];
  /** The Host header (values joined as Headers.get would), or null. */
  host: string | null;
  /** Body length, or -1 for chunked. */
  length: number;
  close: boolean;
  continue: boolean;
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const m = REQUEST_LINE.exec(lines[0]);
  if (!m) throw new BadRequest(400, "Bad Request: malformed request line");
  const headers: [string, string][] = [];
  /** The headers read here, values joined with ", " as Headers.get does. */
  const seen: Record<string, string | undefined> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) {
      throw new BadRequest(400, "Bad Request: malformed header line");
    }
    const value = line.slice(colon + 1).trim();
    // What Headers refuses in a value (a lone CR or LF within the line, NUL).
    if (/[\0\r\n]/.test(value)) {
      throw new BadRequest(400, "Bad Request: invalid header value");
    }
    headers.push([name, value]);
    const key = name.toLowerCase();
    if (WANTED.has(key)) {
      const before = seen[key];
      seen[key] = before === undefined ? value : `${before}, ${value}`;
    }
  }
  const header = (name: string): string | null => seen[name] ?? null;
  const minor = Number(m[3]);
  const te = header("transfer-encoding");
  const cl = header("content-length");
  let length = 0;
  if (te !== null) {
    if (cl !== null || te.toLowerCase() !== "chunked" || minor === 0) {
      throw new BadRequest(400, "Bad Request: unsupported body framing");
    }
    length = -1;
  } else if (cl !== null) {
    const values = cl.split(",").map((v) => v.trim());
    if (!values.every((v) => /^\d{1,15}$/.test(v) && v === values[0])) {
      throw new BadRequest(400, "Bad Request: invalid Content-Length");
    }
    length = Number(values[0]);
  }
  const connection = (header("connection") ?? "").toLowerCase();
  return {
    method: m[1],
    target: m[2],
    minor,
    headers,
    host: header("host"),
    length,
    close: minor === 0
      ? !connection.includes("keep-alive")
      : connection.includes("close"),
    continue: minor === 1 &&
      (header("expect") ?? "").toLowerCase() === "100-continue",
  };
}

/** The headers the listener itself reads. */
const WANTED = new Set([
  "host",
  "transfer-encoding",
  "content-length",
  "connection",
  "expect",
]);

/** The request body as a stream that reads from the connection on demand. */
function bodyStream(
  c: Connection,
  head: Head,
  state: { done: boolean },
): ReadableStream<Uint8Array> {
  let remaining = head.length; // -1: chunked, read the next size line
  let chunked = head.length < 0;
  let sentContinue = !head.continue;
  const fail = (controller: ReadableStreamDefaultController, msg: string) => {
    controller.error(new BadRequest(400, msg));
  };
  /** The next CRLF-terminated line of a chunked body (bounded). */
  const line = async (): Promise<string | null> => {
    for (;;) {
      const at = c.buf.subarray(c.start, c.end).indexOf(10);
      if (at >= 0) {
        const text = latin1.decode(c.buf.subarray(c.start, c.start + at));
        c.start += at + 1;
        return text.endsWith("\r") ? text.slice(0, -1) : text;
      }
      if (c.buffered > 4096 || !(await c.fill())) return null;
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentContinue) {
        sentContinue = true;
        await c.write(encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
      }
      for (;;) {
        if (chunked && remaining <= 0) {
          if (remaining === 0) {
            // the CRLF after a chunk's data
            if ((await line()) !== "") return fail(controller, "Bad chunk");
          }
          const size = await line();
          if (size === null) return fail(controller, "Truncated body");
          const hex = size.split(";")[0].trim();
          if (!/^[0-9A-Fa-f]{1,12}$/.test(hex)) {
            return fail(controller, "Bad chunk size");
          }
          remaining = parseInt(hex, 16);
          if (remaining === 0) {
            // trailers until an empty line
            for (;;) {
              const t = await line();
              if (t === null) return fail(controller, "Truncated body");
              if (t === "") break;
            }
            chunked = false;
            state.done = true;
            c.deadline = 0;
            controller.close();
            return;
          }
        }
        if (!chunked && remaining === 0) {
          state.done = true;
          c.deadline = 0;
          controller.close();
          return;
        }
        if (c.buffered === 0 && !(await c.fill())) {
          return fail(controller, "Truncated body");
        }
        const bytes = c.take(remaining);
        remaining -= bytes.length;
        if (bytes.length > 0) {
          controller.enqueue(bytes);
          return;
        }
      }
    },
    cancel() {
      // The handler stopped reading: the connection cannot be reused.
      state.done = false;
    },
  }, { highWaterMark: 0 });
}

function responseHead(
  response: Response,
  close: boolean,
  length: number | "chunked",
): Uint8Array {
  let head = `HTTP/1.1 ${response.status} ${
    STATUS_TEXT[response.status] ?? (response.statusText || "Status")
  }\r\n`;
  for (const [k, v] of response.headers) {
    if (
      k === "content-length" || k === "transfer-encoding" || k === "connection"
    ) continue;
    head += `${k}: ${v}\r\n`;
  }
  if (length === "chunked") head += "transfer-encoding: chunked\r\n";
  else head += `content-length: ${length}\r\n`;
  if (close) head += "connection: close\r\n";
  return encoder.encode(head + "\r\n");
}

/** Serves HTTP/1.1 with `handler` until shut down. */
export function listen(options: ListenOptions, handler: Handler): Listener {
  const max = options.maxConnections ?? 256;
  const headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  const maxHeaderBytes = options.maxHeaderBytes ?? 16 * 1024;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 30_000;
  const listener = Deno.listen({
    hostname: options.hostname,
    port: options.port,
    transport: "tcp",
  });
  const addr = listener.addr as Deno.NetAddr;
  const shed = SHED(max);
  const conns = new Set<Connection>();
  let shedding = 0;
  let stopping = false;
  let allClosed: (() => void) | undefined;
  /** The last time each kind of warning was logged (at most one per 10 s). */
  const warned = { accept: 0, cap: 0 };
  const warn = (kind: keyof typeof warned, msg: string) => {
    const now = Date.now();
    if (now - warned[kind] < 10_000) return;
    warned[kind] = now;
    log.warning(msg);
  };

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const c of conns) {
      if (c.deadline !== 0 && now > c.deadline) c.close();
    }
  }, SWEEP_MS);

  function forget(c: Connection): void {
    c.close();
    conns.delete(c);
    if (stopping && conns.size === 0) allClosed?.();
  }

  async function refuse(conn: Deno.Conn): Promise<void> {
    // Read what the client sent first (briefly), so that closing does not
    // reset the connection before it reads the 503; a silent client gets the
    // 503 after SHED_WAIT_MS.
    shedding++;
    const timer = setTimeout(() => conn.close(), 1_000);
    try {
      let wait: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        conn.read(new Uint8Array(READ_SIZE)),
        new Promise((r) => wait = setTimeout(r, SHED_WAIT_MS)),
      ]);
      clearTimeout(wait);
      let off = 0;
      while (off < shed.length) off += await conn.write(shed.subarray(off));
    } catch {
      // the client went away
    } finally {
      clearTimeout(timer);
      shedding--;
      try {
        conn.close();
      } catch {
        // closed by the timer
      }
    }
  }

  async function serve(c: Connection): Promise<void> {
    let scanned = 0;
    try {
      for (;;) {
        // A complete head, within the connection's deadline (blank lines
        // between requests are ignored, as RFC 9112 allows).
        while (
          c.buffered >= 2 && c.buf[c.start] === 13 && c.buf[c.start + 1] === 10
        ) c.start += 2;
        const at = indexOfHeadEnd(c.buf, c.start + scanned, c.end);
        if (at < 0) {
          if (c.buffered > maxHeaderBytes) {
            await c.write(
              plain(431, "Request header fields too large"),
            );
            return;
          }
          scanned = Math.max(0, c.buffered - 3);
          if (stopping && c.buffered === 0) return;
          if (!(await c.fill())) return;
          continue;
        }
        scanned = 0;
        const text = latin1.decode(c.buf.subarray(c.start, at));
        c.start = at + 4;
        // No deadline while the handler runs; a body must arrive in time.
        c.deadline = 0;
        let head: Head;
        try {
          head = parseHead(text);
        } catch (e) {
          const status = e instanceof BadRequest ? e.status : 400;
          await c.write(plain(status, (e as Error).message));
          return;
        }
        const keep = await exchange(c, head);
        if (!keep || stopping) return;
        c.deadline = Date.now() + idleTimeoutMs;
      }
    } finally {
      forget(c);
    }
  }

  /** One request and its response; true when the connection can serve another. */
  async function exchange(c: Connection, head: Head): Promise<boolean> {
    const host = head.host ?? "";
    const authority = SAFE_HOST.test(host)
      ? host
      : `${
        addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
      }:${addr.port}`;
    if (!head.target.startsWith("/")) {
      await c.write(plain(400, "Bad Request: origin-form target expected"));
      return false;
    }
    // A body already read whole (the usual small POST) is passed as bytes:
    // no stream to build and pull on the hot path.
    const whole = head.length > 0 && head.length <= c.buffered
      ? c.take(head.length)
      : null;
    const state = { done: head.length === 0 || whole !== null };
    const hasBody = head.length !== 0;
    if (!state.done) c.deadline = Date.now() + bodyTimeoutMs;
    const abort = new AbortController();
    c.abort = abort;
    let request: Request;
    try {
      request = new Request(`http://${authority}${head.target}`, {
        method: head.method,
        headers: head.headers,
        body: !hasBody || head.method === "GET" || head.method === "HEAD"
          ? null
          : whole ?? bodyStream(c, head, state),
        signal: abort.signal,
        // @ts-ignore: the fetch spec's option for streamed request bodies
        duplex: "half",
      });
    } catch {
      await c.write(plain(400, "Bad Request: invalid request target"));
      return false;
    }
    // Watch for the client leaving while the handler runs (only once the
    // body is read, so that the two never read at once).
    const watch = () => {
      if (state.done && !c.closed) {
        void c.fill().then((ok) => {
          if (!ok) c.close();
        });
      }
    };
    if (state.done) watch();
    let response: Response;
    try {
      response = await handler(request);
    } catch (e) {
      response = options.onError?.(e) ??
        new Response("Internal Server Error", { status: 500 });
    }
    const reusable = () => state.done && !head.close && !stopping && !c.closed;
    const noBody = head.method === "HEAD" || response.status === 204 ||
      response.status === 304 || response.status < 200;
    try {
      if (noBody || response.body === null) {
        await response.body?.cancel();
        return await c.write(responseHead(response, !reusable(), 0)) &&
          reusable();
      }
      const type = response.headers.get("content-type") ?? "";
      if (!type.includes("text/event-stream")) {
        const body = new Uint8Array(await response.arrayBuffer());
        const headBytes = responseHead(response, !reusable(), body.length);
        const all = new Uint8Array(headBytes.length + body.length);
        all.set(headBytes, 0);
        all.set(body, headBytes.length);
        return await c.write(all) && reusable();
      }
      // A stream: chunked, each piece as it comes; the client leaving cancels it.
      watch();
      const reader = response.body.getReader();
      const onAbort = () => reader.cancel().catch(() => {});
      abort.signal.addEventListener("abort", onAbort, { once: true });
      try {
        if (!(await c.write(responseHead(response, !reusable(), "chunked")))) {
          return false;
        }
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (value.length === 0) continue;
          const size = encoder.encode(`${value.length.toString(16)}\r\n`);
          const piece = new Uint8Array(size.length + value.length + 2);
          piece.set(size, 0);
          piece.set(value, size.length);
          piece.set([13, 10], size.length + value.length);
          if (!(await c.write(piece))) return false;
        }
        return await c.write(encoder.encode("0\r\n\r\n")) && reusable();
      } finally {
        abort.signal.removeEventListener("abort", onAbort);
        reader.cancel().catch(() => {});
      }
    } catch (e) {
      log.debug(`Response not sent: ${(e as Error)?.message}`);
      return false;
    } finally {
      c.abort = undefined;
    }
  }

  async function acceptLoop(): Promise<void> {
    let backoff = 10;
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (stopping) return;
        warn(
          "accept",
          `Cannot accept a connection: ${
            (e as Error).message
          } (${conns.size} open); still serving`,
        );
        await delay(backoff);
        backoff = Math.min(backoff * 2, 1_000);
        continue;
      }
      backoff = 10;
      if (stopping) {
        conn.close();
        continue;
      }
      if (conns.size >= max) {
        warn("cap", `Connection cap reached (${max}): answering 503`);
        if (shedding < MAX_SHEDDING) void refuse(conn);
        else conn.close();
        continue;
      }
      // Streamed responses are written piece by piece: no Nagle delay.
      (conn as Deno.TcpConn).setNoDelay?.(true);
      const c = new Connection(conn, headersTimeoutMs);
      conns.add(c);
      void serve(c);
    }
  }

  options.onListen?.(addr);
  void acceptLoop();

  return {
    addr,
    connections: () => conns.size,
    shutdown() {
      if (!stopping) {
        stopping = true;
        try {
          listener.close();
        } catch {
          // already closed
        }
      }
      // Idle connections (no request in flight) close now.
      for (const c of conns) if (c.deadline !== 0) c.close();
      clearInterval(sweeper);
      if (conns.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const previous = allClosed;
        allClosed = () => {
          previous?.();
          resolve();
        };
      });
    },
    close() {
      stopping = true;
      clearInterval(sweeper);
      try {
        listener.close();
      } catch {
        // already closed
      }
      for (const c of [...conns]) forget(c);
    },
  };
}

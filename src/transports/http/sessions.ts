/**
 * The open 2025-era sessions (Streamable HTTP with `Mcp-Session-Id`, and
 * legacy SSE streams), in least-recently-used order.
 *
 * A Streamable HTTP session ends on DELETE, when idle for `idleMs`, or, when
 * the store is full and a new one is asked for, when it is the least recently
 * used one with no request in flight: SDK clients close without DELETE, so a
 * full store of forgotten sessions must not lock new clients out. An SSE
 * session lives as long as its stream is open (its client is connected), so
 * it is never evicted; at the cap with nothing to evict, the new session is
 * refused.
 */
import type {
  McpServer,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import { logger } from "../../log.ts";
import type { SseServerTransport } from "../sse.ts";

export interface Session {
  id: string;
  kind: "streamable" | "sse";
  server: McpServer;
  transport: WebStandardStreamableHTTPServerTransport | SseServerTransport;
  lastSeen: number;
  /** Requests of this session still being answered. */
  busy: number;
}

const log = logger("http");

export class SessionStore {
  /** Map order is use order: the first entry is the least recently used. */
  #sessions = new Map<string, Session>();
  #opening = 0;
  #sweeper: ReturnType<typeof setInterval>;

  constructor(
    readonly max: number,
    readonly idleMs: number,
  ) {
    this.#sweeper = setInterval(
      () => this.expire(Date.now()),
      Math.min(60_000, Math.max(25, idleMs / 4)),
    );
    Deno.unrefTimer(this.#sweeper);
  }

  get size(): number {
    return this.#sessions.size;
  }

  count(kind: Session["kind"]): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.kind === kind) n++;
    return n;
  }

  /** The session, marked as just used. */
  use(id: string): Session | undefined {
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    this.#sessions.delete(id);
    this.#sessions.set(id, s);
    s.lastSeen = Date.now();
    return s;
  }

  /**
   * Makes room for one more session: true when there is (evicting the least
   * recently used idle Streamable HTTP session if needed), false at the cap.
   * A true answer reserves the place until `opened` or `abandoned`.
   */
  reserve(): boolean {
    if (this.#sessions.size + this.#opening >= this.max) {
      for (const s of this.#sessions.values()) {
        if (s.kind === "streamable" && s.busy === 0) {
          void this.end(s.id, "evicted (least recently used, session cap)");
          break;
        }
      }
    }
    if (this.#sessions.size + this.#opening >= this.max) return false;
    this.#opening++;
    return true;
  }

  /** Ends the reservation without a session. */
  abandoned(): void {
    this.#opening--;
  }

  /** Stores a session opened on a reservation; a close from any side forgets it. */
  opened(s: Session): void {
    this.#opening--;
    this.#sessions.set(s.id, s);
    const previous = s.transport.onclose;
    s.transport.onclose = () => {
      previous?.();
      if (this.#sessions.get(s.id) === s) this.#sessions.delete(s.id);
    };
    log.debug(`Session ${s.id.slice(0, 8)} (${s.kind}) opened`);
  }

  /** Ends idle Streamable HTTP sessions. */
  expire(now: number): void {
    for (const s of this.#sessions.values()) {
      if (
        s.kind === "streamable" && s.busy === 0 &&
        now - s.lastSeen > this.idleMs
      ) {
        void this.end(s.id, "idle");
      }
    }
  }

  async end(id: string, why: string): Promise<void> {
    const s = this.#sessions.get(id);
    if (!s) return;
    this.#sessions.delete(id);
    log.debug(`Session ${id.slice(0, 8)} (${s.kind}) ended: ${why}`);
    await s.transport.close().catch(() => {});
    await s.server.close().catch(() => {});
  }

  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Ends every session and stops the idle sweeper. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await Promise.all(
      [...this.#sessions.keys()].map((id) => this.end(id, "shutdown")),
    );
  }
}

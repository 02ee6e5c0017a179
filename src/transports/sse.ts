/**
 * The legacy HTTP+SSE transport (protocol 2024-11-05) for older clients, as a
 * small adapter on the SDK's `Transport` interface (SDK v2 has none):
 * `GET /sse` opens the event stream and announces, in an `endpoint` event,
 * where to POST; `POST /messages?sessionId=…` delivers client messages, and
 * every server message (responses, progress) goes down the stream.
 * Auth, Host/Origin checks and the session cap are applied by http.ts.
 */
import {
  isJsonContentType,
  type JSONRPCMessage,
  type MessageExtraInfo,
  parseJSONRPCMessage,
  readRequestBody,
  type Transport,
} from "@modelcontextprotocol/server";

const encoder = new TextEncoder();

/** A JSON-RPC error answer over plain HTTP (before anything reached the server). */
export function jsonRpcError(
  status: number,
  message: string,
  headers: Record<string, string> = {},
  code = -32000,
): Response {
  return Response.json(
    { jsonrpc: "2.0", error: { code, message }, id: null },
    { status, headers },
  );
}

export interface SseOptions {
  /** Path clients POST to; the session id is appended as `?sessionId=`. */
  messagesPath: string;
  /** Interval of `: ping` comments that keep proxies from closing the stream. */
  keepAliveMs: number;
  /** Upper bound of a POSTed body in bytes. */
  maxBodyBytes: number;
}

/** One legacy SSE session: the stream of `GET /sse` and its POST endpoint. */
export class SseServerTransport implements Transport {
  readonly sessionId: string = crypto.randomUUID();
  /** The `GET /sse` response carrying the event stream. */
  readonly response: Response;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;

  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #options: SseOptions;
  #closed = false;
  #keepAlive?: ReturnType<typeof setInterval>;
  /** Ids of client requests not answered yet (for draining on shutdown). */
  #pending = new Set<string | number>();

  constructor(options: SseOptions) {
    this.#options = options;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        // The client went away.
        void this.close();
      },
    });
    this.response = new Response(stream, {
      headers: {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",
      },
    });
  }

  /** Client requests still waiting for their answer. */
  get pending(): number {
    return this.#pending.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  start(): Promise<void> {
    this.#write(
      `event: endpoint\ndata: ${this.#options.messagesPath}?sessionId=${this.sessionId}\n\n`,
    );
    if (this.#options.keepAliveMs > 0) {
      this.#keepAlive = setInterval(
        () => this.#write(": ping\n\n"),
        this.#options.keepAliveMs,
      );
    }
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Error("The SSE stream is closed"));
    }
    if ("id" in message && !("method" in message)) {
      this.#pending.delete(message.id as string | number);
    }
    this.#write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#keepAlive);
    this.#pending.clear();
    try {
      this.#controller.close();
    } catch {
      // already closed or errored by the client's disconnect
    }
    this.onclose?.();
    return Promise.resolve();
  }

  /** Serves `POST /messages?sessionId=…` for this session: 202 once delivered. */
  async handlePost(request: Request): Promise<Response> {
    if (this.#closed) return jsonRpcError(404, "Session not found");
    if (!isJsonContentType(request.headers.get("content-type"))) {
      return jsonRpcError(
        415,
        "Unsupported Media Type: Content-Type must be application/json",
      );
    }
    let text: string;
    try {
      const read = await readRequestBody(request, this.#options.maxBodyBytes);
      if (read.tooLarge) {
        return jsonRpcError(
          413,
          `Request body larger than ${this.#options.maxBodyBytes} bytes`,
        );
      }
      text = read.text;
    } catch {
      return jsonRpcError(
        400,
        "The request body could not be read",
        {},
        -32700,
      );
    }
    let messages: JSONRPCMessage[];
    try {
      const raw = JSON.parse(text);
      messages = (Array.isArray(raw) ? raw : [raw]).map(parseJSONRPCMessage);
    } catch {
      return jsonRpcError(
        400,
        "Parse error: not a JSON-RPC message",
        {},
        -32700,
      );
    }
    for (const message of messages) {
      if ("method" in message && "id" in message) {
        this.#pending.add(message.id as string | number);
      }
      this.onmessage?.(message, { request });
    }
    return new Response("Accepted", { status: 202 });
  }

  #write(text: string): void {
    if (this.#closed) return;
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch (e) {
      this.onerror?.(e as Error);
      void this.close();
    }
  }
}

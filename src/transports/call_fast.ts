/**
 * A session's first tool calls, answered before the SDK is loaded.
 *
 * A fresh stdio process answers the opening from the catalog (stdio.ts); the
 * SDK takes ~half of what the first tool answer then costs. A `tools/call`
 * that arrives before the SDK serves the connection, of a read-only tool, is
 * answered here: its arguments checked with the same schema the SDK is given
 * (server.ts's registration()), the same callTool() run, its output checked,
 * and the answer written as the SDK writes it, byte for byte
 * (tests/e2e/call_fast_test.ts compares both on the same calls, errors included).
 *
 * What could need the SDK is left to it: a tool that changes anything (it may
 * ask the human), MCP_LOCKDOWN (a read may ask too), and any request whose
 * params hold more than `name`, `arguments` and a progress token.
 */
import type { ServerContext } from "@modelcontextprotocol/server";
import type { Config } from "../config.ts";
import type { ServerDeps } from "../server.ts";

type RequestId = string | number;

/** A JSON-RPC message as stdio.ts passes it. */
export interface CallMessage {
  jsonrpc: "2.0";
  id?: RequestId | null;
  method?: string;
  params?: Record<string, unknown>;
}

type Block = { type: string; text?: string };
type CallResult = {
  _meta?: unknown;
  content: Block[];
  structuredContent?: unknown;
  isError?: boolean;
};

export interface FastCallOptions {
  config: Config;
  /** Names of the read-only tools the catalog offers under the config. */
  readOnlyTools: ReadonlySet<string>;
  /** Logging and the Proxmox client (shared with the SDK's server). */
  deps: () => Promise<ServerDeps>;
  /** The initialize request's params: the client's name and capabilities. */
  client: () => Record<string, unknown> | undefined;
  /** Writes one message (answer or notification) to the client. */
  write: (msg: Record<string, unknown>) => Promise<void>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isRequestId(v: unknown): v is RequestId {
  return typeof v === "string" || Number.isSafeInteger(v);
}

/** The SDK's wording of one schema issue (validateStandardSchema). */
function formatIssue(
  issue: { message: string; path?: readonly unknown[] },
): string {
  if (!issue.path?.length) return issue.message;
  return `${
    issue.path.map((p) =>
      String(
        typeof p === "object" && p !== null ? (p as { key: unknown }).key : p,
      )
    ).join(".")
  }: ${issue.message}`;
}

/** The SDK's tool error result (McpServer.createToolError). */
function toolError(message: string): CallResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

/**
 * A result in the key order the SDK's wire schema gives it (known keys
 * first, in schema order, then the rest as they came).
 */
function wireOrder(r: CallResult): Record<string, unknown> {
  const { _meta, content, structuredContent, isError, ...rest } = r;
  return {
    ...(_meta !== undefined && { _meta }),
    content,
    ...(structuredContent !== undefined && { structuredContent }),
    ...(isError !== undefined && { isError }),
    ...rest,
  };
}

/** Tool calls answered without the SDK, while it is not loaded. */
export class FastCalls {
  #options: FastCallOptions;
  /** Calls in flight, by id (ids may repeat), each with its cancel switch. */
  #running = new Map<RequestId, AbortController[]>();
  #idle: (() => void)[] = [];

  constructor(options: FastCallOptions) {
    this.#options = options;
  }

  /** How many calls are being answered here. */
  get size(): number {
    return this.#running.size;
  }

  /** Whether `m` can be answered here (decided without loading anything). */
  accepts(m: CallMessage): boolean {
    if (m.method !== "tools/call" || !isRequestId(m.id)) return false;
    if (this.#options.config.lockdown) return false;
    const p = m.params;
    if (!isPlainObject(p) || typeof p.name !== "string") return false;
    if (!this.#options.readOnlyTools.has(p.name)) return false;
    for (const key of Object.keys(p)) {
      if (key !== "name" && key !== "arguments" && key !== "_meta") {
        return false;
      }
    }
    const args = p.arguments;
    if (
      args !== undefined &&
      (!isPlainObject(args) || Object.hasOwn(args, "__proto__"))
    ) return false;
    const meta = p._meta;
    if (meta === undefined) return true;
    if (!isPlainObject(meta)) return false;
    const keys = Object.keys(meta);
    return keys.length === 0 ||
      (keys.length === 1 && isRequestId(meta.progressToken));
  }

  /**
   * Answers an accepted call (nothing when it is cancelled first, as the SDK
   * does); resolves once the answer is written. Rejects when the server
   * cannot be loaded for a call still wanted (the caller answers it).
   */
  async call(m: CallMessage & { id: RequestId }): Promise<void> {
    const abort = new AbortController();
    const list = this.#running.get(m.id);
    if (list) list.push(abort);
    else this.#running.set(m.id, [abort]);
    try {
      let answer;
      try {
        answer = await this.#run(m, abort.signal);
      } catch (e) {
        // Loading failed: a call cancelled meanwhile (by the client, or at
        // shutdown, which answered it) gets no answer, as one that ran.
        if (abort.signal.aborted) return;
        throw e;
      }
      if (abort.signal.aborted) return;
      await this.#options.write(
        "error" in answer
          ? { jsonrpc: "2.0", id: m.id, error: answer.error }
          : { result: answer.result, jsonrpc: "2.0", id: m.id },
      );
    } finally {
      const left = this.#running.get(m.id);
      left?.splice(left.indexOf(abort), 1);
      if (left?.length === 0) this.#running.delete(m.id);
      if (this.#running.size === 0) {
        for (const w of this.#idle.splice(0)) w();
      }
    }
  }

  /**
   * `notifications/cancelled` for `id`: true when it was a call here (it is
   * aborted and gets no answer).
   */
  cancel(id: RequestId): boolean {
    const list = this.#running.get(id);
    if (!list?.length) return false;
    list[0].abort("cancelled");
    return true;
  }

  /** Shutdown: every call here is aborted and will not answer. */
  abortAll(): void {
    for (const list of this.#running.values()) {
      for (const a of list) a.abort("shutting down");
    }
  }

  /** Resolves when no call is being answered here. */
  idle(): Promise<void> {
    if (this.#running.size === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  async #run(
    m: CallMessage & { id: RequestId },
    signal: AbortSignal,
  ): Promise<
    { result: Record<string, unknown> } | {
      error: { code: number; message: string };
    }
  > {
    const params = m.params as {
      name: string;
      arguments?: Record<string, unknown>;
      _meta?: { progressToken?: RequestId };
    };
    const [deps, server, { selectTools }, { clustersOf }, { canElicit }, log] =
      await Promise.all([
        this.#options.deps(),
        import("../server.ts"),
        import("../tools/mod.ts"),
        import("../clusters.ts"),
        import("../safety/confirm.ts"),
        import("../log.ts"),
      ]);
    const tool = selectTools(deps.config).find((t) => t.name === params.name);
    if (!tool) {
      // The catalog and the registry disagree: as the SDK would answer.
      return {
        error: { code: -32602, message: `Tool ${params.name} not found` },
      };
    }
    const registration = server.registration(
      tool,
      clustersOf(deps).map((c) => c.name),
    );
    const ctx = {
      sessionId: undefined,
      mcpReq: {
        id: m.id,
        method: "tools/call",
        _meta: params._meta,
        signal,
        notify: (n: { method: string; params?: unknown }) =>
          this.#options.write({ jsonrpc: "2.0", ...n }),
      },
    } as unknown as ServerContext;
    const init = this.#options.client();
    const info = init?.clientInfo as
      | { name?: string; version?: string }
      | undefined;
    const client = {
      canAsk: () =>
        canElicit(
          init?.capabilities as Parameters<typeof canElicit>[0],
        ),
      name: () => info?.name ? `${info.name}/${info.version}` : undefined,
    };
    // McpServer's tools/call handler, step by step.
    let result: CallResult;
    try {
      const input = await registration.inputSchema["~standard"].validate(
        params.arguments ?? {},
      );
      if (input.issues) {
        throw new Error(
          `Input validation error: Invalid arguments for tool ${params.name}: ${
            input.issues.map(formatIssue).join(", ")
          }`,
        );
      }
      const out = await server.callTool(
        tool,
        input.value,
        deps,
        ctx,
        client,
      );
      if ("resultType" in out) {
        // Only a changing tool or lockdown asks, and neither comes here.
        throw new Error(`${params.name} asked for input on the fast path`);
      }
      result = out as CallResult;
      if (!result.isError) {
        if (result.structuredContent === undefined) {
          throw new Error(
            `Output validation error: Tool ${params.name} has an output schema but no structured content was provided`,
          );
        }
        const output = await registration.outputSchema["~standard"].validate(
          result.structuredContent,
        );
        if (output.issues?.length) {
          throw new Error(
            `Output validation error: Invalid structured content for tool ${params.name}: ${
              output.issues.map(formatIssue).join(", ")
            }`,
          );
        }
      }
    } catch (e) {
      result = toolError(e instanceof Error ? e.message : String(e));
    }
    log.logger("stdio").debug("Answered a tools/call without the SDK", {
      id: m.id,
    });
    return { result: wireOrder(result) };
  }
}

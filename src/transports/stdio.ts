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
 */
import type { Config } from "../config.ts";
import type { ServerDeps } from "../server.ts";
import catalogJson from "../tools/catalog.json" with { type: "json" };

type Message = {
  jsonrpc: "2.0";
  id?: string | number | null;
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
  toolsets: string[];
}

const catalog = catalogJson as unknown as Catalog;
const encoder = new TextEncoder();

/** The catalog's tools under the config's filters (same order as the SDK's). */
export function catalogTools(
  config: Pick<Config, "readOnly" | "toolsets">,
): Catalog["tools"] {
  for (const t of config.toolsets ?? []) {
    if (!catalog.toolsets.includes(t)) {
      throw new RangeError(
        `Unknown toolset '${t}' in MCP_TOOLSETS: expected some of ${
          catalog.toolsets.join(", ")
        }`,
      );
    }
  }
  const enabled = config.toolsets ? new Set(config.toolsets) : undefined;
  return catalog.tools.filter((t) =>
    (!enabled || enabled.has(catalog.toolsetOf[t.name])) &&
    (!config.readOnly || t.annotations?.readOnlyHint === true)
  );
}

/** Writes whole lines to stdout, in order. */
class Output {
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  write(msg: unknown): Promise<void> {
    const bytes = encoder.encode(JSON.stringify(msg) + "\n");
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

/** A Transport (the SDK's interface) fed by our reader, writing to Output. */
class HandoffTransport {
  onmessage?: (message: Message) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  #out: Output;
  /** Ids of replayed requests whose answers the client already has. */
  #suppress: Set<string | number>;
  #started!: () => void;
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

export interface StdioOptions {
  config: Config;
  /** Loads everything behind the opening (logging, Proxmox client). */
  load: () => Promise<ServerDeps>;
}

/** Serves MCP on stdin/stdout until stdin closes. */
export async function serveStdio(options: StdioOptions): Promise<void> {
  const tools = catalogTools(options.config);
  const out = new Output();
  const opening: Message[] = [];
  const suppress = new Set<string | number>();
  let initialized = false;
  let transport: HandoffTransport | undefined;
  let handoff: Promise<HandoffTransport> | undefined;
  let prefetch: Promise<ServerDeps> | undefined;
  const deps = () => prefetch ??= options.load();

  const startHandoff = () =>
    handoff ??= (async () => {
      const [d, sdk, server] = await Promise.all([
        deps(),
        import("@modelcontextprotocol/server/stdio"),
        import("../server.ts"),
      ]);
      const { logger } = await import("../log.ts");
      const log = logger("stdio");
      const t = new HandoffTransport(out, suppress);
      sdk.serveStdio(() => server.createServer(d), {
        transport: t as never,
        onerror: (e) => log.warning("stdio error", { error: e.message }),
      });
      await t.started;
      log.info("Serving MCP on stdio");
      for (const m of opening) t.onmessage?.(m);
      transport = t;
      return t;
    })();

  const reply = (id: Message["id"], result: unknown) =>
    out.write({ jsonrpc: "2.0", id, result });

  /** Answers from the catalog when it can; false hands the message over. */
  const fast = (m: Message): boolean => {
    if (handoff) return false;
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
      // The client will call a tool next: load the rest while it thinks,
      // once the answer is out.
      reply(m.id, { tools }).then(() =>
        setTimeout(() => deps().catch(() => {}), 5)
      );
      return true;
    }
    if (m.method === "ping" && m.id != null) {
      reply(m.id, {});
      return true;
    }
    return false;
  };

  let buf = "";
  const decoder = new TextDecoder();
  for await (const chunk of Deno.stdin.readable) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: Message;
      try {
        msg = JSON.parse(line);
      } catch {
        out.write({
          jsonrpc: "2.0",
          id: null,
          error: { code: -32700, message: "Parse error" },
        });
        continue;
      }
      if (transport) {
        transport.onmessage?.(msg);
      } else if (!fast(msg)) {
        const t = await startHandoff();
        t.onmessage?.(msg);
      }
    }
  }
  // stdin closed: the client is gone.
  await transport?.close();
}

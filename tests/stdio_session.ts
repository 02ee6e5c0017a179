/**
 * A real server process over stdio for tests that compare answers byte for
 * byte: its stdout lines are kept exactly as written.
 */
import { setTimeout as delay } from "node:timers/promises";
import { serverArgs } from "./server_args.ts";

export const INIT = {
  jsonrpc: "2.0",
  id: "init",
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "t", version: "1" },
  },
};
export const INITIALIZED = {
  jsonrpc: "2.0",
  method: "notifications/initialized",
};

/** A server process whose stdout lines are kept as written. */
export class Session {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  lines: string[] = [];
  stderr = "";
  #reading: Promise<void>;

  /** `args`: how `deno` starts the server (default: src/main.ts). */
  constructor(env: Record<string, string>, args: string[] = serverArgs()) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      env: { ...env, LOG_LEVEL: "DEBUG" },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    const collect = async (
      stream: ReadableStream<Uint8Array>,
      onText: (t: string) => void,
    ) => {
      for await (const t of stream.pipeThrough(new TextDecoderStream())) {
        onText(t);
      }
    };
    let buf = "";
    this.#reading = Promise.all([
      collect(this.#child.stdout, (t) => {
        buf += t;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          this.lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }),
      collect(this.#child.stderr, (t) => this.stderr += t),
    ]).then(() => {});
  }

  send(...msgs: unknown[]): Promise<void> {
    return this.#writer.write(
      new TextEncoder().encode(
        msgs.map((m) => JSON.stringify(m) + "\n").join(""),
      ),
    );
  }

  /** The line answering `id`. */
  reply(id: string): string | undefined {
    return this.lines.find((l) =>
      (JSON.parse(l) as { id?: unknown }).id === id
    );
  }

  async until(ids: string[], ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (ids.some((id) => !this.reply(id))) {
      if (Date.now() > end) {
        throw new Error(
          `no answer to ${ids.filter((id) => !this.reply(id))}: ${this.stderr}`,
        );
      }
      await delay(20);
    }
  }

  async close(): Promise<number> {
    await this.#writer.close().catch(() => {});
    const { code } = await this.#child.status;
    await this.#reading;
    return code;
  }
}

/** Which ids the fast path says it answered (a DEBUG line each). */
export function answeredFast(stderr: string): Set<unknown> {
  const ids = new Set<unknown>();
  for (const line of stderr.split("\n")) {
    if (!line.includes("Answered a tools/call without the SDK")) continue;
    ids.add((JSON.parse(line) as { id?: unknown }).id);
  }
  return ids;
}

export function call(id: string, params: unknown) {
  return { jsonrpc: "2.0", id, method: "tools/call", params };
}

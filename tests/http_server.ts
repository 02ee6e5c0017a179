/**
 * The real entry point over HTTP in a child process (src/main.ts --transport
 * http --port 0), with the product's own grants; its port read from its log.
 */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { serverArgs } from "./server_args.ts";

const decoder = new TextDecoder();

export interface HttpServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  base: string;
  process: Deno.ChildProcess;
  stderr(): string;
  /** Exit status, once the process ended. */
  status: Promise<Deno.CommandStatus>;
}

/** Spawns src/main.ts over HTTP on an ephemeral port; reads the port from its log. */
export async function spawnHttp(
  env: Record<string, string>,
  args: string[] = [],
  options: { openFiles?: number } = {},
): Promise<HttpServer> {
  const deno = serverArgs(["--transport", "http", "--port", "0", ...args]);
  // With a file-descriptor limit: bash sets it, then becomes the server.
  const [cmd, cmdArgs] = options.openFiles
    ? [
      "bash",
      [
        "-c",
        `ulimit -n ${options.openFiles} && exec "$0" "$@"`,
        Deno.execPath(),
        ...deno,
      ],
    ]
    : [Deno.execPath(), deno];
  const process = new Deno.Command(cmd, {
    args: cmdArgs,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      // No /healthz drain before a stop, unless a test asks for one.
      MCP_DRAIN_S: "0",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>, to: "err" | "out") => {
    for await (const c of s) {
      if (to === "err") err += decoder.decode(c);
      else out += decoder.decode(c);
    }
  };
  const pumps = Promise.all([
    pump(process.stderr, "err"),
    pump(process.stdout, "out"),
  ]);
  const status = process.status.then(async (s) => {
    await pumps;
    return s;
  });
  const deadline = Date.now() + 20_000;
  let host: string | undefined;
  let port: string | undefined;
  let exited = false;
  status.then(() => exited = true);
  while (!port) {
    [, host, port] = /Listening on http:\/\/([\d.]+):(\d+)/.exec(err) ?? [];
    if (port) break;
    if (exited || Date.now() > deadline) {
      throw new Error(`The server did not start:\n${err}${out}`);
    }
    await delay(25);
  }
  const close = async () => {
    if (!exited) {
      try {
        process.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await status;
    assert.equal(out, "", "nothing on stdout over HTTP");
  };
  return {
    base: `http://${host}:${port}`,
    process,
    stderr: () => err,
    status,
    [Symbol.asyncDispose]: close,
  };
}

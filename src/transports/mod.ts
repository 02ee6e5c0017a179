/**
 * The transports, one contract: `(config, load) => Promise<void>` serves
 * until the client is gone or a signal asks to stop, then returns (main.ts
 * exits). `load` brings up everything behind the first reply (logging, the
 * Proxmox client); each transport loads its own code only when chosen, so
 * stdio's start-up never pays for HTTP.
 *
 * `sse` is `http`: one port serves Streamable HTTP at `/mcp` and the legacy
 * HTTP+SSE transport (2024-11-05) at `GET /sse` + `POST /messages`, with the
 * same guards and session store. The name stays for configurations that
 * already use it.
 */
import type { Config } from "../config.ts";
import type { ServerDeps } from "../server.ts";

export type Transport = (
  config: Config,
  load: () => Promise<ServerDeps>,
) => Promise<void>;

async function stdio(
  config: Config,
  load: () => Promise<ServerDeps>,
): Promise<void> {
  const { serveStdio } = await import("./stdio.ts");
  // The demo's simulator must be up before the first reply's tools run.
  const ready = config.demo ? load() : undefined;
  if (ready) await ready;
  await serveStdio({ config, load: () => ready ?? load() });
}

async function http(
  config: Config,
  load: () => Promise<ServerDeps>,
): Promise<void> {
  const { allowedOrigins, runHttp } = await import("./http/mod.ts");
  // A setting the listener refuses stops the start before anything loads
  // (or logs: the start-up line comes with the load).
  allowedOrigins(config);
  await runHttp(await load());
}

export const TRANSPORTS: Readonly<Record<Config["transport"], Transport>> = {
  stdio,
  http,
  sse: http,
};

/**
 * MCP over HTTP, all on one port: the router (router.ts) behind the guarded
 * listener (listener.ts). SIGTERM (what an orchestrator sends): `/healthz`
 * answers 503 for MCP_DRAIN_S while calls are still served (a load
 * balancer's health check sees it and sends no more); then, as at once on
 * SIGINT (Ctrl-C): stop accepting, let in-flight calls finish
 * (up to a grace period), close the sessions, return. A second signal skips
 * the waits.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Config } from "../../config.ts";
import { logger } from "../../log.ts";
import type { ServerDeps } from "../../server.ts";
import { jsonRpcError } from "../sse.ts";
import { listen } from "./listener.ts";
import { createHttpApp } from "./router.ts";

export { allowedHostnames, allowedOrigins } from "./guards.ts";
export { listen, type ListenOptions } from "./listener.ts";
export { createHttpApp, type HttpApp, type HttpOptions } from "./router.ts";

const log = logger("http");

function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** Serves MCP over HTTP until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runHttp(deps: ServerDeps): Promise<void> {
  const config: Config = deps.config;
  // One failing promise must not end a server that serves many clients.
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    log.error("Unhandled rejection", { error: String(e.reason) });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  if (
    !config.stateSecret &&
    (config.lockdown || (config.confirm !== "never" && !config.readOnly))
  ) {
    log.warning(
      "MCP_STATE_SECRET is not set: a human's answer to a confirmation or MCP_LOCKDOWN question is taken only by this process. With several replicas behind one address, set the same MCP_STATE_SECRET (32+ characters) on each",
    );
  }
  const app = createHttpApp(deps);
  const stop = new AbortController();
  const force = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  let received: Deno.Signal | undefined;
  const handlers = signals.map((sig) => {
    const handler = () => {
      if (received) {
        force.abort(); // a second signal: stop waiting
        return;
      }
      received = sig;
      stop.abort();
    };
    Deno.addSignalListener(sig, handler);
    return [sig, handler] as const;
  });

  const server = listen({
    hostname: config.host,
    port: config.port,
    maxConnections: config.maxConnections,
    onListen: ({ hostname, port }) => {
      log.info(
        `Listening on http://${
          urlHost(hostname)
        }:${port}: Streamable HTTP at /mcp, legacy SSE at /sse${
          config.authToken ? ", bearer token required" : ""
        }`,
      );
    },
    onError: (e) => {
      log.error("HTTP handler failed", { error: (e as Error)?.message });
      return jsonRpcError(500, "Internal server error", {}, -32603);
    },
  }, app.fetch);

  await new Promise<void>((resolve) =>
    stop.signal.addEventListener("abort", () => resolve(), { once: true })
  );
  const drainMs = received === "SIGTERM" ? config.drainMs ?? 0 : 0;
  if (drainMs > 0) {
    app.leaving();
    log.info(
      `${received}: /healthz answers 503 for ${
        drainMs / 1000
      } s (MCP_DRAIN_S) while calls are still served`,
    );
    await delay(drainMs, undefined, { signal: force.signal }).catch(() => {});
  }
  const busy = app.busy();
  log.info(
    `${received}: shutting down${
      busy ? `, finishing ${busy} in-flight request(s)` : ""
    }`,
  );
  const closed = server.shutdown();
  await app.shutdown(force.signal);
  await Promise.race([
    closed,
    delay(2_000, undefined, { signal: force.signal }).catch(() => {}),
  ]);
  server.close();
  for (const [sig, handler] of handlers) {
    Deno.removeSignalListener(sig, handler);
  }
  globalThis.removeEventListener("unhandledrejection", onRejection);
  log.info("Stopped");
}

/** MCP over stdio: stdout carries the protocol, logs go to stderr. */
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import { logger } from "../log.ts";
import { createServer, type ServerDeps } from "../server.ts";

/** Serves until stdin closes. */
export function runStdio(deps: ServerDeps): void {
  const log = logger("stdio");
  serveStdio(() => createServer(deps), {
    onerror: (e) => log.warning("stdio error", { error: e.message }),
  });
  log.info("Serving MCP on stdio");
}

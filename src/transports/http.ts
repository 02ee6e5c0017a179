/** HTTP transports (Streamable HTTP and legacy SSE): see issue 5. */
import type { ServerDeps } from "../server.ts";

/** Serves MCP over HTTP until SIGTERM/SIGINT. */
export function runHttp(_deps: ServerDeps): Promise<void> {
  return Promise.reject(new RangeError("MCP_TRANSPORT=http is not built yet"));
}

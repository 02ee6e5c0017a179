/**
 * The MCP SDK's values that the call path and createServer use, bound once
 * the SDK is loaded.
 *
 * Loading `@modelcontextprotocol/server` costs more than everything else a
 * first tool call needs (it builds hundreds of zod schemas). The stdio
 * transport answers a session's first calls without it (src/transports/
 * call_fast.ts), so server.ts, safety/confirm.ts and safety/untrusted.ts take
 * the SDK's values from here instead of from the package: the bindings below
 * are live, set by {@link loadSdk}.
 *
 * Whoever imports this module gets the SDK loaded before its own code runs
 * (a top-level await), as with a static import, unless the stdio transport
 * deferred the load first (src/sdk_defer.ts); it then calls loadSdk() before
 * it creates a server. Only what a read-only call never reaches before that
 * is bound late; the two values every call reads are local copies (a test
 * keeps them equal to the SDK's).
 */
import type * as Sdk from "@modelcontextprotocol/server";
import type * as Resources from "./resources.ts";
import { sdkLoad } from "./sdk_defer.ts";

/** `_meta` key of the client's name and version on 2026-07-28 requests. */
export const CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo";

/** Whether a handler's result asks the client for input (the SDK's check). */
export function isInputRequiredResult(
  value: unknown,
): value is Sdk.InputRequiredResult {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) &&
    (value as { resultType?: unknown }).resultType === "input_required";
}

export type McpServer = Sdk.McpServer;
// Live bindings, set by loadSdk().
export let McpServer: typeof Sdk.McpServer;
export let inputRequired: typeof Sdk.inputRequired;
export let inputResponse: typeof Sdk.inputResponse;
/** src/resources.ts imports the SDK: it is loaded with it. */
export let registerResources: typeof Resources.registerResources;
export let RESOURCE_CAPABILITIES: typeof Resources.RESOURCE_CAPABILITIES;

let loading: Promise<void> | undefined;

/** Loads the SDK (once) and binds its values here. */
export function loadSdk(): Promise<void> {
  return loading ??= (async () => {
    const [sdk, resources] = await Promise.all([
      import("@modelcontextprotocol/server"),
      import("./resources.ts"),
    ]);
    McpServer = sdk.McpServer;
    inputRequired = sdk.inputRequired;
    inputResponse = sdk.inputResponse;
    registerResources = resources.registerResources;
    RESOURCE_CAPABILITIES = resources.RESOURCE_CAPABILITIES;
  })();
}

if (!sdkLoad.deferred) await loadSdk();

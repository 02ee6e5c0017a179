/**
 * Whether src/sdk.ts leaves the SDK unloaded when it is first imported (see
 * there). Its own module, so that setting it loads nothing.
 */
export const sdkLoad = { deferred: false };

/** Called by the stdio transport before anything imports src/sdk.ts. */
export function deferSdk(): void {
  sdkLoad.deferred = true;
}

/**
 * Pieces the several-cluster tests share: PROXMOX_CONFIG files and entries,
 * and an in-process server's opening to compare the real entry point's with.
 */
import { InMemoryTransport } from "@modelcontextprotocol/server";
import { boot } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { setLogWriter } from "../src/log.ts";
import { createServer } from "../src/server.ts";
import { initializeParams } from "./helpers.ts";
import type { TestSim } from "./sim_helpers.ts";

/** A PROXMOX_CONFIG file holding `doc` (as written when a string), removed on dispose. */
export async function configFile(
  doc: unknown,
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(
    path,
    typeof doc === "string" ? doc : JSON.stringify(doc),
  );
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

/** A cluster entry logging in to `sim` with its password. */
export function entry(
  sim: TestSim,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    url: sim.url,
    user: sim.credentials.user,
    password: sim.credentials.password,
    ...extra,
  };
}

/** The raw answers of an in-process SDK server (no client in between). */
export async function sdkOpening(
  env: Record<string, string>,
): Promise<{ initialize: Record<string, unknown>; tools: unknown[] }> {
  const parsed = loadConfig([], { LOG_LEVEL: "ERROR", ...env });
  if (parsed.kind !== "run") throw new TypeError("not a run");
  setLogWriter(() => {});
  try {
    const server = createServer(await boot(parsed.config));
    const [mine, theirs] = InMemoryTransport.createLinkedPair();
    const replies = new Map<number, PromiseWithResolvers<unknown>>();
    mine.onmessage = (m) => {
      const msg = m as { id?: number; result?: unknown };
      if (typeof msg.id === "number") replies.get(msg.id)?.resolve(msg.result);
    };
    await server.connect(theirs);
    await mine.start();
    const ask = (id: number, method: string, params?: unknown) => {
      const p = Promise.withResolvers<unknown>();
      replies.set(id, p);
      mine.send({ jsonrpc: "2.0", id, method, params } as never);
      return p.promise as Promise<Record<string, unknown>>;
    };
    const initialize = await ask(1, "initialize", initializeParams());
    await mine.send(
      { jsonrpc: "2.0", method: "notifications/initialized" } as never,
    );
    const list = await ask(2, "tools/list");
    await server.close();
    return { initialize, tools: list.tools as unknown[] };
  } finally {
    setLogWriter();
  }
}

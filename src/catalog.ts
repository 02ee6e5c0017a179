/**
 * The catalog: what the SDK answers to `initialize` and `tools/list` for the
 * full tool set, stored in src/tools/catalog.json so that the stdio transport
 * can answer a client's opening before the SDK is even loaded. A test keeps
 * the file identical to the SDK's own answers (UPDATE_SNAPSHOTS=1 rewrites it).
 */
import {
  InMemoryTransport,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/server";
import type { Config } from "./config.ts";
import { PveClient } from "./proxmox/client.ts";
import { createServer } from "./server.ts";
import { ALL_TOOLS } from "./tools/mod.ts";

export interface Catalog {
  protocolVersions: string[];
  latestProtocolVersion: string;
  /** The initialize result without protocolVersion. */
  initialize: Record<string, unknown>;
  tools: Record<string, unknown>[];
  /** Tool name → toolset id. */
  toolsetOf: Record<string, string>;
}

/** Asks an in-process SDK server (stdio era 2025) for its opening answers. */
export async function buildCatalog(
  filter: Pick<Config, "readOnly" | "toolsets"> = { readOnly: false },
): Promise<Catalog> {
  const config = {
    proxmoxUrl: "http://127.0.0.1:9",
    auth: { kind: "password", user: "root@pam", password: "x" },
    ...filter,
  } as Config;
  const pve = new PveClient({ baseUrl: config.proxmoxUrl, auth: config.auth });
  const server = createServer({ config, pve });
  const [mine, theirs] = InMemoryTransport.createLinkedPair();
  const replies = new Map<number, Record<string, unknown>>();
  const waiting = new Map<number, () => void>();
  mine.onmessage = (m) => {
    const msg = m as { id?: number; result?: Record<string, unknown> };
    if (typeof msg.id === "number" && msg.result) {
      replies.set(msg.id, msg.result);
      waiting.get(msg.id)?.();
    }
  };
  await server.connect(theirs);
  await mine.start();
  const ask = (id: number, method: string, params?: unknown) =>
    new Promise<Record<string, unknown>>((resolve) => {
      waiting.set(id, () => resolve(replies.get(id)!));
      mine.send({ jsonrpc: "2.0", id, method, params } as never);
    });
  const init = await ask(1, "initialize", {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: "catalog", version: "1" },
  });
  await mine.send(
    { jsonrpc: "2.0", method: "notifications/initialized" } as never,
  );
  const list = await ask(2, "tools/list");
  await server.close();
  const { protocolVersion: _, ...initialize } = init;
  return {
    protocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS],
    latestProtocolVersion: LATEST_PROTOCOL_VERSION,
    initialize,
    tools: JSON.parse(JSON.stringify(list.tools)),
    toolsetOf: Object.fromEntries(ALL_TOOLS.map((t) => [t.name, t.toolset])),
  };
}

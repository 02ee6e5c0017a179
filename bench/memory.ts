/**
 * Memory over 10 000 tool calls through the full tool path (SDK server and
 * client, tool wrapper, PveClient, simulator over HTTP). Heap after a forced
 * GC at 1 000 calls is the baseline; at 10 000 it must be about the same.
 * The resident size of the real stdio server process is reported beside it
 * (it includes V8's heap reservations, which grow in steps, not per call).
 * Run with --v8-flags=--expose-gc.
 */
import { Client } from "@modelcontextprotocol/client";
import { InMemoryTransport } from "@modelcontextprotocol/server";
import { loadConfig } from "../src/config.ts";
import { PveClient } from "../src/proxmox/client.ts";
import { createServer } from "../src/server.ts";
import { startSimulator } from "../sim/mod.ts";
import { rssKiB, spawnServer } from "./common.ts";

const TOOLS: [string, Record<string, unknown>][] = [
  ["proxmox_list_nodes", {}],
  ["proxmox_list_vms", { status: "running" }],
  ["proxmox_get_vm_stats", { vmid: 100 }],
];

function heapMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Deno.memoryUsage().heapUsed / 1048576;
}

export async function memoryBench(calls = 10_000): Promise<{
  heap1k: number;
  heapEnd: number;
  heapRatio: number;
  rss1k: number;
  rssEnd: number;
}> {
  if (!("gc" in globalThis)) throw new Error("run with --v8-flags=--expose-gc");
  await using sim = await startSimulator({ port: 0, recordRequests: false });
  const env = {
    PROXMOX_URL: sim.url,
    PROXMOX_USER: sim.credentials.user,
    PROXMOX_PASSWORD: sim.credentials.password,
    LOG_LEVEL: "ERROR",
  };
  const parsed = loadConfig([], env);
  if (parsed.kind !== "run") throw new Error("config");
  const pve = new PveClient({ baseUrl: sim.url, auth: parsed.config.auth });
  const server = createServer({ config: parsed.config, pve });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b);
  const client = new Client({ name: "bench", version: "1" });
  await client.connect(a);
  let heap1k = 0;
  for (let i = 1; i <= calls; i++) {
    const [name, args] = TOOLS[i % 3];
    const r = await client.callTool({ name, arguments: args });
    if (r.isError) throw new Error(JSON.stringify(r.content));
    if (i === 1000) heap1k = heapMiB();
  }
  const heapEnd = heapMiB();
  await client.close();

  // The real server process over stdio, same mix of calls.
  const s = await spawnServer(env);
  let rss1k = 0;
  try {
    for (let i = 1; i <= calls; i++) {
      const [name, args] = TOOLS[i % 3];
      await s.client.callTool({ name, arguments: args });
      if (i === 1000) rss1k = rssKiB(s.pid) / 1024;
    }
    const rssEnd = rssKiB(s.pid) / 1024;
    return { heap1k, heapEnd, heapRatio: heapEnd / heap1k, rss1k, rssEnd };
  } finally {
    await s.close();
  }
}

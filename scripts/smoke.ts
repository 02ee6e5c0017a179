/**
 * Smoke test of a built server: starts the simulator on a loopback port, runs
 * the given command as an MCP stdio server logged in with an API token, and
 * checks initialize, tools/list and one tool call. The release workflow runs it
 * on each compiled binary; here it runs the same way against `deno run`:
 *
 *   deno run --allow-run --allow-net --allow-env --allow-read scripts/smoke.ts dist/proxmox-mcp-linux-x64
 *   deno run --allow-run --allow-net --allow-env --allow-read scripts/smoke.ts deno task start
 *
 * Prints one line (`smoke: <n> tools, <n> nodes`) and exits 0, or names what failed and exits 1.
 */
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { startSimulator } from "../sim/mod.ts";

export interface SmokeResult {
  tools: number;
  nodes: number;
}

/** What a process needs from the environment to start (Windows needs SystemRoot). */
function passThrough(): Record<string, string> {
  const env: Record<string, string> = {};
  for (
    const k of ["PATH", "HOME", "SystemRoot", "TEMP", "TMP", "USERPROFILE"]
  ) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** Runs `command args...` against a fresh simulator; throws on any failure. */
export async function smoke(
  command: string,
  args: string[] = [],
): Promise<SmokeResult> {
  await using sim = await startSimulator({ port: 0, taskMs: 20 });
  const transport = new StdioClientTransport({
    command,
    args,
    env: {
      ...passThrough(),
      PROXMOX_URL: sim.url,
      PROXMOX_TOKEN_ID: sim.credentials.tokenId,
      PROXMOX_TOKEN_SECRET: sim.credentials.tokenSecret,
    },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (c: Uint8Array) => {
    stderr += new TextDecoder().decode(c);
  });
  const client = new Client({ name: "proxmox-mcp-smoke", version: "1.0.0" });
  try {
    await client.connect(transport);
    const info = client.getServerVersion();
    if (info?.name !== "proxmox-mcp") {
      throw new Error(`initialize answered as ${info?.name}, not proxmox-mcp`);
    }
    const { tools } = await client.listTools();
    if (!tools.some((t) => t.name === "proxmox_list_nodes")) {
      throw new Error("tools/list lacks proxmox_list_nodes");
    }
    const r = await client.callTool({ name: "proxmox_list_nodes" });
    const nodes = (r.structuredContent as { nodes?: unknown[] } | undefined)
      ?.nodes;
    if (r.isError || !Array.isArray(nodes) || nodes.length === 0) {
      throw new Error(
        `proxmox_list_nodes failed: ${JSON.stringify(r.content)}`,
      );
    }
    return { tools: tools.length, nodes: nodes.length };
  } catch (e) {
    throw new Error(
      `${(e as Error).message}\nserver stderr:\n${stderr.slice(-2000)}`,
    );
  } finally {
    await client.close();
  }
}

if (import.meta.main) {
  const [command, ...args] = Deno.args;
  if (!command) {
    Deno.stderr.writeSync(
      new TextEncoder().encode("Usage: smoke.ts <command> [args...]\n"),
    );
    Deno.exit(2);
  }
  try {
    const r = await smoke(command, args);
    Deno.stdout.writeSync(
      new TextEncoder().encode(`smoke: ${r.tools} tools, ${r.nodes} nodes\n`),
    );
  } catch (e) {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`smoke failed: ${(e as Error).message}\n`),
    );
    Deno.exit(1);
  }
}

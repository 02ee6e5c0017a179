/** Shared pieces of the benchmarks: spawning the real server over stdio. */
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { MAIN, serverArgs } from "../tests/server_args.ts";

export const ROOT = new URL("..", import.meta.url).pathname;

/**
 * `deno` args for the simulator in a process of its own, printing its url
 * and credentials as its first line (no schema checks: a real Proxmox is
 * another machine; here it shares the cores).
 */
export const SIM_ARGS: readonly string[] = [
  "run",
  "--no-prompt",
  "--allow-net",
  "--allow-env",
  "--allow-read",
  `${ROOT}sim/cli.ts`,
  "--port",
  "0",
  "--no-validate",
];

export interface Spawned {
  client: Client;
  pid: number;
  close(): Promise<void>;
}

/** src/main.ts over stdio with the SDK client, as a user would run it. */
export async function spawnServer(
  env: Record<string, string>,
): Promise<Spawned> {
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: serverArgs(),
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      ...env,
    },
    stderr: "ignore",
  });
  const client = new Client({ name: "bench", version: "1" });
  await client.connect(transport);
  return { client, pid: transport.pid!, close: () => client.close() };
}

/**
 * `deno run` args for the server under test: src/main.ts, or the entry
 * BENCH_MAIN names (e.g. an older checkout, to compare in one run).
 */
export function benchServerArgs(
  args: string[] = [],
  permissions: string[] = [],
): string[] {
  const main = Deno.env.get("BENCH_MAIN");
  return serverArgs(args, permissions).map((a) =>
    main && a === MAIN ? main : a
  );
}

/** Resident memory of a process in KiB (ps; /proc would need --allow-all). */
export function rssKiB(pid: number): number {
  const out = new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
  })
    .outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

export function print(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

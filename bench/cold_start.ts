/**
 * Cold start: time from spawning a process to the `tools/list` reply on stdout,
 * for proxmox-mcp (2025-era opening: initialize, initialized, tools/list) and
 * for a bare Deno JSON-RPC echo process in the same run. Prints medians and the
 * ratio.
 */
import { serverArgs } from "../tests/server_args.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 15);

const OPENING = [
  {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "bench", version: "1" },
    },
  },
  { jsonrpc: "2.0", method: "notifications/initialized" },
  { jsonrpc: "2.0", id: 2, method: "tools/list" },
].map((m) => JSON.stringify(m) + "\n").join("");

/** Milliseconds until the reply with id 2 arrives. */
export async function timeToToolsList(
  args: string[],
  env: Record<string, string>,
): Promise<number> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(OPENING));
  let buf = "";
  let ms = -1;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    if (/"id":2[,}]/.test(buf) && buf.endsWith("\n")) {
      ms = performance.now() - started;
      break;
    }
  }
  await w.close().catch(() => {});
  try {
    child.kill();
  } catch { /* already gone */ }
  await child.status;
  if (ms < 0) throw new Error(`no tools/list reply from ${args.join(" ")}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function coldStart(): Promise<
  { baseline: number; server: number; ratio: number }
> {
  const env = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    PROXMOX_URL: "https://127.0.0.1:9",
    PROXMOX_USER: "root@pam",
    PROXMOX_PASSWORD: "bench-password",
  };
  const baseArgs = [
    "run",
    "--no-prompt",
    "--cached-only",
    `${ROOT}bench/echo_server.ts`,
  ];
  const serverRun = serverArgs([], ["--cached-only"]);
  // Warm the module caches once each.
  await timeToToolsList(baseArgs, env);
  await timeToToolsList(serverRun, env);
  const b: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    b.push(await timeToToolsList(baseArgs, env));
    s.push(await timeToToolsList(serverRun, env));
  }
  const baseline = median(b);
  const server = median(s);
  return { baseline, server, ratio: server / baseline };
}

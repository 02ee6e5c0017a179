/**
 * HTTP throughput and latency: tool calls (proxmox_list_nodes, each one a real
 * request to the simulator) over Streamable HTTP as a 2026-07-28 client makes
 * them, statelessly, from CONCURRENCY loops for DURATION seconds. Baseline: the
 * same load against a bare Deno.serve that answers a fixed result.
 */
import { ENV_VARS } from "../src/config.ts";
import { startSimulator } from "../src/sim/mod.ts";
import { percentile, ROOT } from "./common.ts";

const CONCURRENCY = Number(Deno.env.get("BENCH_CONCURRENCY") ?? 8);
const DURATION_S = Number(Deno.env.get("BENCH_SECONDS") ?? 5);

const META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};
const BODY = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name: "proxmox_list_nodes", arguments: {}, _meta: META },
});
const HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2026-07-28",
  "mcp-method": "tools/call",
  "mcp-name": "proxmox_list_nodes",
  authorization: "Bearer bench-token-0123456789",
};

/** Runs the load; returns calls per second and latencies in ms. */
async function load(
  url: string,
  check: (text: string) => void,
): Promise<{ perS: number; lat: number[] }> {
  const lat: number[] = [];
  const end = performance.now() + DURATION_S * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const res = await fetch(url, {
        method: "POST",
        headers: HEADERS,
        body: BODY,
      });
      const text = await res.text();
      if (res.status !== 200) {
        throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      }
      check(text);
      lat.push(performance.now() - t);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return { perS: lat.length / ((performance.now() - started) / 1000), lat };
}

async function spawnListening(
  args: string[],
  env: Record<string, string>,
): Promise<{ port: number; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The server logs "Listening on http://127.0.0.1:PORT" on stderr; the echo prints its port.
  const lines = (s: ReadableStream<Uint8Array>) =>
    s.pipeThrough(new TextDecoderStream()).getReader();
  const err = lines(child.stderr);
  const out = lines(child.stdout);
  let buf = "";
  const port = await Promise.race([
    (async () => {
      while (true) {
        const { value, done } = await err.read();
        if (done) throw new Error(`server exited: ${buf}`);
        buf += value;
        const m = /Listening on http:\/\/[^:]+:(\d+)/.exec(buf);
        if (m) return Number(m[1]);
      }
    })(),
    (async () => {
      const { value } = await out.read();
      const n = Number(value?.trim());
      if (!n) return new Promise<number>(() => {});
      return n;
    })(),
  ]);
  // Keep draining so the child never blocks on a full pipe.
  (async () => {
    while (!(await err.read()).done) { /* drain */ }
  })();
  (async () => {
    while (!(await out.read()).done) { /* drain */ }
  })();
  return { port, child };
}

export async function httpBench(): Promise<
  {
    callsPerS: number;
    p50: number;
    p99: number;
    baselinePerS: number;
    baselineP99: number;
  }
> {
  await using sim = await startSimulator({ port: 0, recordRequests: false });
  const server = await spawnListening([
    "run",
    "--no-prompt",
    `--allow-env=${ENV_VARS.join(",")}`,
    "--allow-net",
    `${ROOT}src/main.ts`,
  ], {
    PROXMOX_URL: sim.url,
    PROXMOX_USER: sim.credentials.user,
    PROXMOX_PASSWORD: sim.credentials.password,
    MCP_TRANSPORT: "http",
    MCP_PORT: "0",
    MCP_AUTH_TOKEN: "bench-token-0123456789",
    LOG_LEVEL: "INFO",
  });
  const base = await spawnListening([
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    `${ROOT}bench/echo_http.ts`,
  ], {});
  try {
    const ok = (text: string) => {
      if (!text.includes("pve1") || text.includes('"isError":true')) {
        throw new Error(text.slice(0, 300));
      }
    };
    await load(`http://127.0.0.1:${server.port}/mcp`, ok); // warm-up
    const r = await load(`http://127.0.0.1:${server.port}/mcp`, ok);
    const b = await load(`http://127.0.0.1:${base.port}/mcp`, () => {});
    return {
      callsPerS: r.perS,
      p50: percentile(r.lat, 0.5),
      p99: percentile(r.lat, 0.99),
      baselinePerS: b.perS,
      baselineP99: percentile(b.lat, 0.99),
    };
  } finally {
    for (const c of [server.child, base.child]) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
  }
}

if (import.meta.main) {
  const r = await httpBench();
  Deno.stdout.writeSync(new TextEncoder().encode(
    `http: ${r.callsPerS.toFixed(0)} tool calls/s (target >= 1000), p50 ${
      r.p50.toFixed(1)
    } ms, p99 ${r.p99.toFixed(1)} ms (target <= 20); bare Deno.serve ${
      r.baselinePerS.toFixed(0)
    } req/s p99 ${r.baselineP99.toFixed(1)} ms; ratio ${
      (r.callsPerS / r.baselinePerS).toFixed(2)
    }\n`,
  ));
}

/**
 * HTTP throughput and latency: tool calls (proxmox_list_nodes, each one a real
 * request to the simulator) over Streamable HTTP as a 2026-07-28 client makes
 * them, statelessly, from CONCURRENCY loops for DURATION seconds. Baseline: the
 * same load against a bare Deno.serve that answers a fixed result.
 */
import {
  benchServerArgs,
  percentile,
  ROOT,
  rssKiB,
  SIM_ARGS,
} from "./common.ts";
import { setTimeout as delay } from "node:timers/promises";

let CONCURRENCY = 2;
/** RSS counts as back to its baseline within this factor of it. */
const RSS_SETTLED = 1.1;
/** How long to wait for it after the load, at most. */
const RSS_WAIT_S = Number(Deno.env.get("BENCH_RSS_WAIT_S") ?? 60);
/** The p99 target per concurrency (issue 13: 20 ms at 2, 100 ms at 50). */
const P99_TARGET: Record<number, number> = { 2: 20, 8: 20, 50: 100 };
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

interface Listening {
  port: number;
  child: Deno.ChildProcess;
  /** The simulator's JSON line (url and credentials). */
  info?: { url: string; user: string; password: string };
}

async function spawnListening(
  args: string[],
  env: Record<string, string>,
): Promise<Listening> {
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
  let info: Listening["info"];
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
      const line = value?.trim() ?? "";
      if (line.startsWith("{")) {
        info = JSON.parse(line);
        return Number(new URL(info!.url).port);
      }
      const n = Number(line);
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
  return { port, child, info };
}

/** CPU time (user + system) a process has used, in ms (Linux /proc, read with cat). */
async function cpuMs(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`] })
    .output();
  const fields = new TextDecoder().decode(out.stdout).split(") ")[1]
    .split(" ");
  // utime and stime are fields 14 and 15 (clock ticks, 100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** wrk (a C load generator: it leaves the cores to the server) when installed. */
async function wrkLoad(
  url: string,
): Promise<{ perS: number; count: number; p50: number; p99: number } | null> {
  const lua = await Deno.makeTempFile({ suffix: ".lua" });
  const headers = Object.entries(HEADERS).map(([k, v]) =>
    `wrk.headers["${k}"] = "${v}"`
  ).join("\n");
  await Deno.writeTextFile(
    lua,
    `wrk.method = "POST"\nwrk.body = '${BODY}'\n${headers}\n`,
  );
  try {
    const out = await new Deno.Command("wrk", {
      args: [
        "-t1",
        `-c${CONCURRENCY}`,
        `-d${DURATION_S}s`,
        "--latency",
        "-s",
        lua,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (/Non-2xx/.test(text)) throw new Error(`wrk saw errors:\n${text}`);
    const ms = (m: RegExpExecArray | null) => {
      if (!m) return NaN;
      const v = parseFloat(m[1]);
      return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
    };
    return {
      perS: parseFloat(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? "0"),
      count: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
      p50: ms(/50%\s+([\d.]+)(us|ms|s)/.exec(text)),
      p99: ms(/99%\s+([\d.]+)(us|ms|s)/.exec(text)),
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  } finally {
    await Deno.remove(lua);
  }
}

/** A Deno fetch load generator (fallback without wrk). */
async function fetchLoad(
  url: string,
): Promise<{ perS: number; count: number; p50: number; p99: number }> {
  const r = await load(url, () => {});
  return {
    perS: r.perS,
    count: r.lat.length,
    p50: percentile(r.lat, 0.5),
    p99: percentile(r.lat, 0.99),
  };
}

export async function httpBench(concurrency = 2): Promise<{
  generator: string;
  callsPerS: number;
  /** The server's CPU time (user + system) per call, in ms: what a busy machine changes least. */
  cpuPerCall: number;
  p50: number;
  p99: number;
  baselinePerS: number;
  baselineP99: number;
  /** The server's resident size (MiB): after one call, right after the load, and once settled. */
  rss: {
    before: number;
    after: number;
    settled: number;
    settledAfterS: number;
  };
}> {
  CONCURRENCY = concurrency;
  // The simulator in a process of its own (no schema checks: a real Proxmox
  // is another machine; here it shares the two cores).
  const sim = await spawnListening([...SIM_ARGS], {});
  const server = await spawnListening(benchServerArgs(), {
    PROXMOX_URL: sim.info!.url,
    PROXMOX_USER: sim.info!.user,
    PROXMOX_PASSWORD: sim.info!.password,
    MCP_TRANSPORT: "http",
    MCP_PORT: "0",
    MCP_AUTH_TOKEN: "bench-token-0123456789",
    MCP_DRAIN_S: "0", // no /healthz drain before the stop
    LOG_LEVEL: "INFO",
  });
  const base = await spawnListening([
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    `${ROOT}bench/echo_http.ts`,
  ], {});
  try {
    const url = `http://127.0.0.1:${server.port}/mcp`;
    const rss = () => rssKiB(server.child.pid) / 1024;
    const one = await fetch(url, {
      method: "POST",
      headers: HEADERS,
      body: BODY,
    });
    await one.text();
    const before = rss();
    // Correct answers first, and a warm-up for the JIT.
    await load(url, (text) => {
      if (!text.includes("pve1") || text.includes('"isError":true')) {
        throw new Error(text.slice(0, 300));
      }
    });
    const useWrk = (await wrkLoad(url)) !== null;
    const run = (u: string) =>
      useWrk ? wrkLoad(u).then((r) => r!) : fetchLoad(u);
    const cpu0 = await cpuMs(server.child.pid);
    const r = await run(url);
    const cpuPerCall = (await cpuMs(server.child.pid) - cpu0) / r.count;
    const after = rss();
    const b = await run(`http://127.0.0.1:${base.port}/mcp`);
    // Back to the size after one call? V8 gives its heap back once idle
    // (its memory reducer): wait for it, up to RSS_WAIT_S.
    const t0 = performance.now();
    let settled = rss();
    while (
      settled > before * RSS_SETTLED &&
      performance.now() - t0 < RSS_WAIT_S * 1000
    ) {
      await delay(1000);
      settled = rss();
    }
    return {
      generator: useWrk ? "wrk" : "deno fetch",
      callsPerS: r.perS,
      cpuPerCall,
      p50: r.p50,
      p99: r.p99,
      baselinePerS: b.perS,
      baselineP99: b.p99,
      rss: {
        before,
        after,
        settled,
        settledAfterS: (performance.now() - t0) / 1000,
      },
    };
  } finally {
    for (const c of [server.child, base.child, sim.child]) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
  }
}

/** One line of results for a concurrency level. */
export function httpLine(
  r: Awaited<ReturnType<typeof httpBench>>,
  concurrency: number,
): string {
  return `http (${r.generator}, ${concurrency} connections): ${
    r.callsPerS.toFixed(0)
  } tool calls/s (target >= 1000), server CPU ${
    r.cpuPerCall.toFixed(3)
  } ms/call, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms${
    P99_TARGET[concurrency] ? ` (target <= ${P99_TARGET[concurrency]})` : ""
  }; bare Deno.serve ${r.baselinePerS.toFixed(0)} req/s, p99 ${
    r.baselineP99.toFixed(1)
  } ms; ratio ${(r.callsPerS / r.baselinePerS).toFixed(3)}; server RSS ${
    r.rss.before.toFixed(0)
  } MiB after one call, ${r.rss.after.toFixed(0)} after the load, ${
    r.rss.settled.toFixed(0)
  } ${r.rss.settledAfterS.toFixed(0)} s later (ratio ${
    (r.rss.settled / r.rss.before).toFixed(2)
  })`;
}

if (import.meta.main) {
  for (
    const c of (Deno.env.get("BENCH_CONCURRENCY") ?? "2,8,50").split(",").map(
      Number,
    )
  ) {
    Deno.stdout.writeSync(
      new TextEncoder().encode(httpLine(await httpBench(c), c) + "\n"),
    );
  }
}

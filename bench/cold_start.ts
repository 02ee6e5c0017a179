/**
 * Cold start, two figures against a bare Deno process in the same run:
 * - to the `tools/list` reply: spawn, then a 2025-era opening (initialize,
 *   initialized, tools/list);
 * - to the first tool answer: the same opening plus a `tools/call` of
 *   proxmox_list_nodes against the simulator (started once, outside the
 *   timed part), as a fresh SSH or `docker run -i` session makes it.
 * The baseline is bench/echo_server.ts, a bare Deno process answering the
 * same lines. Both the sources and the bundle the container and the binaries
 * run (scripts/bundle.ts) are measured, in turn, in the same run. Prints
 * medians and ratios.
 */
import { setTimeout as delay } from "node:timers/promises";
import { benchServerArgs, median, ROOT, SIM_ARGS } from "./common.ts";
import { buildBundle, bundleRunFlags } from "../scripts/bundle.ts";
import { MAIN, serverArgs } from "../tests/server_args.ts";

const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 15);

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "bench", version: "1" },
  },
};
const OPENING = [
  INITIALIZE,
  { jsonrpc: "2.0", method: "notifications/initialized" },
  { jsonrpc: "2.0", id: 2, method: "tools/list" },
];
const FIRST_CALL = [
  ...OPENING,
  {
    jsonrpc: "2.0",
    id: 3,
    method: "tools/call",
    params: { name: "proxmox_list_nodes", arguments: {} },
  },
];
const lines = (msgs: unknown[]) =>
  msgs.map((m) => JSON.stringify(m) + "\n").join("");

/**
 * Milliseconds from spawning until the reply with id `until` arrives, after
 * writing `input` at once (a client that does not wait between lines).
 */
export async function timeToReply(
  args: string[],
  env: Record<string, string>,
  input: string,
  until: number,
  check?: (reply: string) => void,
): Promise<number> {
  const started = performance.now();
  const child = spawnStdio(args, env);
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  const want = new RegExp(`"id":${until}[,}]`);
  let buf = "";
  let ms = -1;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    if (buf.endsWith("\n") && want.test(buf)) {
      ms = performance.now() - started;
      break;
    }
  }
  await w.close().catch(() => {});
  try {
    child.kill();
  } catch { /* already gone */ }
  await child.status;
  if (ms < 0) throw new Error(`no reply ${until} from ${args.join(" ")}`);
  check?.(buf.split("\n").find((l) => want.test(l)) ?? "");
  return ms;
}

/**
 * A client that thinks: the opening, its answers, `pauseMs` of silence (the
 * model choosing a tool), then the first call and a second one. Returns each
 * call's own latency in ms.
 */
export async function callsAfterPause(
  args: string[],
  env: Record<string, string>,
  pauseMs: number,
): Promise<{ first: number; next: number }> {
  const child = spawnStdio(args, env);
  const w = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let buf = "";
  const until = async (id: number) => {
    const want = new RegExp(`"id":${id}[,}]`);
    while (!(buf.endsWith("\n") && want.test(buf))) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`no reply ${id} from ${args.join(" ")}`);
      buf += value;
    }
  };
  const send = (msgs: unknown[]) =>
    w.write(new TextEncoder().encode(lines(msgs)));
  const call = (id: number) => ({ ...FIRST_CALL[3] as object, id });
  try {
    await send(OPENING);
    await until(2);
    await delay(pauseMs);
    let t = performance.now();
    await send([call(3)]);
    await until(3);
    const first = performance.now() - t;
    t = performance.now();
    await send([call(4)]);
    await until(4);
    return { first, next: performance.now() - t };
  } finally {
    await w.close().catch(() => {});
    await reader.cancel().catch(() => {});
    try {
      child.kill();
    } catch { /* already gone */ }
    await child.status;
  }
}

/** Milliseconds until the tools/list reply (kept for other benches). */
export function timeToToolsList(
  args: string[],
  env: Record<string, string>,
): Promise<number> {
  return timeToReply(args, env, lines(OPENING), 2);
}

export interface ColdResult {
  baseline: number;
  server: number;
  ratio: number;
}

/** The server under test over stdio, with only the environment given. */
function spawnStdio(
  args: string[],
  env: Record<string, string>,
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args,
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

/** The simulator in its own process; its url and credentials. */
async function startSim(): Promise<
  { child: Deno.ChildProcess; url: string; user: string; password: string }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...SIM_ARGS],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the simulator exited");
    buf += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return { child, ...JSON.parse(buf.split("\n")[0]) };
}

/** A way to start the server over stdio: `deno` args. */
export interface ColdServer {
  name: string;
  args: string[];
}

/**
 * The servers `deno task bench cold` compares in one run: the sources
 * (src/main.ts, or BENCH_MAIN), and the bundle that the container and the
 * binaries run (scripts/bundle.ts, built here into dist/cold_bundle/; set
 * BENCH_BUNDLE=0 to skip it); with BENCH_BEFORE=<path of an older
 * src/main.ts>, that one too, as "before".
 */
export async function coldServers(): Promise<ColdServer[]> {
  const servers = [{
    name: "source",
    args: benchServerArgs([], ["--cached-only"]),
  }];
  const before = Deno.env.get("BENCH_BEFORE");
  if (before) {
    servers.unshift({
      name: "before",
      args: serverArgs([], ["--cached-only"]).map((a) =>
        a === MAIN ? before : a
      ),
    });
  }
  if (Deno.env.get("BENCH_BUNDLE") !== "0") {
    const entry = await buildBundle("dist/cold_bundle");
    servers.push({
      name: "bundle",
      args: serverArgs([], ["--cached-only", ...await bundleRunFlags()])
        .map((a) => a === MAIN ? entry : a),
    });
  }
  return servers;
}

export interface ColdRun {
  name: string;
  toolsList: ColdResult;
  firstCall: ColdResult;
  afterPause: { pauseMs: number; first: number; next: number };
}

/**
 * Both cold-start figures for each server, against the bare Deno process,
 * measured in turn (one run of each, then again) so that the machine's load
 * weighs on all alike.
 */
export async function coldStart(
  servers?: ColdServer[],
): Promise<ColdRun[]> {
  servers ??= await coldServers();
  const sim = await startSim();
  try {
    const base = {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
    };
    const env = {
      ...base,
      PROXMOX_URL: sim.url,
      PROXMOX_USER: sim.user,
      PROXMOX_PASSWORD: sim.password,
    };
    const echo = [
      "run",
      "--no-prompt",
      "--cached-only",
      `${ROOT}bench/echo_server.ts`,
    ];
    const opening = lines(OPENING);
    const firstCall = lines(FIRST_CALL);
    const answered = (reply: string) => {
      if (!reply.includes("pve1") || reply.includes('"isError":true')) {
        throw new Error(`unexpected first answer: ${reply.slice(0, 300)}`);
      }
    };
    // Warm the module caches once each, and check the answer.
    await timeToReply(echo, base, firstCall, 3);
    for (const s of servers) {
      await timeToReply(s.args, env, firstCall, 3, answered);
    }
    const t = { b: [] as number[], s: servers.map(() => [] as number[]) };
    const c = { b: [] as number[], s: servers.map(() => [] as number[]) };
    for (let i = 0; i < RUNS; i++) {
      t.b.push(await timeToReply(echo, base, opening, 2));
      c.b.push(await timeToReply(echo, base, firstCall, 3));
      for (const [k, s] of servers.entries()) {
        t.s[k].push(await timeToReply(s.args, env, opening, 2));
        c.s[k].push(await timeToReply(s.args, env, firstCall, 3));
      }
    }
    const result = (b: number[], s: number[]): ColdResult => {
      const baseline = median(b);
      const server = median(s);
      return { baseline, server, ratio: server / baseline };
    };
    const runs: ColdRun[] = [];
    for (const [k, s] of servers.entries()) {
      // A client that waits for each answer and thinks before calling.
      const pauseMs = 500;
      const first: number[] = [];
      const next: number[] = [];
      for (let i = 0; i < Math.min(RUNS, 5); i++) {
        const r = await callsAfterPause(s.args, env, pauseMs);
        first.push(r.first);
        next.push(r.next);
      }
      runs.push({
        name: s.name,
        toolsList: result(t.b, t.s[k]),
        firstCall: result(c.b, c.s[k]),
        afterPause: { pauseMs, first: median(first), next: median(next) },
      });
    }
    return runs;
  } finally {
    try {
      sim.child.kill("SIGTERM");
    } catch { /* gone */ }
    await sim.child.status;
  }
}

/** The lines `deno task bench cold` prints. */
export function coldLines(runs: ColdRun[]): string[] {
  return runs.flatMap((r) => {
    const line = (what: string, x: ColdResult) =>
      `cold start to ${what}: bare deno ${
        x.baseline.toFixed(1)
      } ms, proxmox-mcp (${r.name}) ${x.server.toFixed(1)} ms, ratio ${
        x.ratio.toFixed(2)
      } (target <= 3)`;
    return [
      line("tools/list", r.toolsList),
      line("the first tool answer", r.firstCall),
      `first tool call ${r.afterPause.pauseMs} ms after the tools/list answer (${r.name}): ${
        r.afterPause.first.toFixed(1)
      } ms, the next call ${r.afterPause.next.toFixed(1)} ms (ratio ${
        (r.afterPause.first / r.afterPause.next).toFixed(2)
      })`,
    ];
  });
}

if (import.meta.main) {
  for (const l of coldLines(await coldStart())) {
    Deno.stdout.writeSync(new TextEncoder().encode(l + "\n"));
  }
}

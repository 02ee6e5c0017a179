/**
 * What the deployment tests (deploy_test.ts, replicas_test.ts) share: running
 * a command to its end, a free port, waiting for a probe, the docker CLI's
 * environment and a fetch that trusts Caddy's CA.
 */
import { setTimeout as delay } from "node:timers/promises";

const ROOT = new URL("../..", import.meta.url).pathname;
const decoder = new TextDecoder();

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; throws with its output when it fails and `check` is set. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; check?: boolean } = {},
): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: "null",
  }).output();
  const r = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  if (options.check !== false && r.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r;
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Polls `probe` every 200 ms until it answers true; throws after `ms`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await delay(200);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/** What the docker CLI needs to reach the testbed's podman. */
export function dockerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (
    const k of ["DOCKER_HOST", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"]
  ) {
    const v = Deno.env.get(k);
    if (v) env[k] = v;
  }
  return env;
}

/**
 * A fetch that trusts Caddy's internal CA (for the SDK transports), from a
 * loopback address of its own if given.
 */
export function trustingFetch(
  caPem: string,
  localAddress?: string,
): typeof fetch {
  const client = Deno.createHttpClient({ caCerts: [caPem], localAddress });
  return ((input: RequestInfo | URL, init?: RequestInit) =>
    fetch(input, { ...init, client })) as typeof fetch;
}

/**
 * A fresh compose directory: the shipped `files` unchanged, beside a .env
 * like the one users write from .env.example (the simulator's login from
 * `env`, `token`, INFO logs, then `extra`), and an empty caddy-data.
 */
export async function composeDir(
  dir: string,
  o: {
    files: string[];
    env: Record<string, string>;
    token: string;
    extra?: Record<string, string>;
  },
): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${dir}/caddy-data`, { recursive: true });
  for (const f of o.files) await Deno.copyFile(`${ROOT}${f}`, `${dir}/${f}`);
  await Deno.writeTextFile(
    `${dir}/.env`,
    [
      `PROXMOX_URL=${o.env.PROXMOX_URL}`,
      `PROXMOX_USER=${o.env.PROXMOX_USER}`,
      `PROXMOX_PASSWORD=${o.env.PROXMOX_PASSWORD}`,
      `MCP_AUTH_TOKEN=${o.token}`,
      "LOG_LEVEL=INFO",
      ...Object.entries(o.extra ?? {}).map(([k, v]) => `${k}=${v}`),
    ].join("\n") + "\n",
  );
}

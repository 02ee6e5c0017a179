/**
 * The simulator side of the test harness, free of product imports (so the
 * sim tests run while the product is mid-edit): a simulator validated
 * against the official schema of the PVE release it plays.
 */
import assert from "node:assert/strict";
import {
  PVE_RELEASES,
  type PveVersion,
  pveVersion,
  type SimOptions,
  type Simulator,
  startSimulator,
} from "../sim/mod.ts";
import { type ApiSchema, loadApiSchema } from "../sim/schema.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Simulators started by startSim and not closed yet (their secrets are checked in logs). */
export const liveSims: Set<Simulator> = new Set();

const schemaPromises = new Map<PveVersion, Promise<ApiSchema | null>>();
const warned = new Set<PveVersion>();

/** The PVE release tests simulate: `$PVE_VERSION` (8.4 or 9.1), else 9.1. */
export function defaultPveVersion(): PveVersion {
  return pveVersion(Deno.env.get("PVE_VERSION") || undefined);
}

/**
 * The official schema of a PVE release. When its file is missing: an error
 * under CI (schema checks are never skipped there), else null with one
 * visible warning.
 */
export async function officialSchema(
  version: PveVersion = defaultPveVersion(),
): Promise<ApiSchema | null> {
  const file = version === "9.1"
    ? Deno.env.get("PVE_API_SCHEMA") ??
      `${ROOT}../shared/pve-api/pve-api-schema.json`
    : `${ROOT}../shared/pve-api/${PVE_RELEASES[version].schemaFile}`;
  let promise = schemaPromises.get(version);
  if (!promise) {
    promise = loadApiSchema(file);
    schemaPromises.set(version, promise);
  }
  const s = await promise;
  if (!s && Deno.env.get("CI")) {
    throw new Error(
      `Cannot check requests against the official PVE ${version} schema: ${file} not found`,
    );
  }
  if (!s && !warned.has(version)) {
    warned.add(version);
    // deno-lint-ignore no-console
    console.warn(
      `SKIPPED: official PVE ${version} schema checks (${file} not found)`,
    );
  }
  return s;
}

export interface TestSim extends Simulator {
  /** Asserts that no request broke the official schema. */
  assertNoViolations(): void;
}

/**
 * A simulator on an ephemeral loopback port that checks every request against
 * the official schema; closing it asserts there were no violations.
 */
export async function startSim(options: SimOptions = {}): Promise<TestSim> {
  const version = pveVersion(options.pveVersion ?? defaultPveVersion());
  const schema = "schema" in options
    ? options.schema
    : await officialSchema(version);
  const sim = await startSimulator({
    port: 0,
    taskMs: 20,
    ...options,
    schema,
    pveVersion: version,
  });
  liveSims.add(sim);
  const assertNoViolations = () =>
    assert.deepEqual(
      sim.violations,
      [],
      "requests that break the official PVE schema",
    );
  const close = async () => {
    liveSims.delete(sim);
    await sim.close();
    assertNoViolations();
  };
  return { ...sim, close, assertNoViolations, [Symbol.asyncDispose]: close };
}

/** What `deno task sim` prints first: url, credentials, tokens. */
// deno-lint-ignore no-explicit-any
type CliInfo = Record<string, any>;

/**
 * Starts `deno task sim` on a free port with `args` and reads the JSON line
 * it prints first (url, credentials, tokens); `stop` ends it.
 */
export async function startCli(
  args: string[],
): Promise<{ info: CliInfo; stop: () => Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--cwd", ROOT, "sim", "--port", "0", ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  return {
    info: JSON.parse(buf.split("\n")[0]),
    stop: async () => {
      child.kill("SIGTERM");
      await reader.cancel();
      await child.status;
    },
  };
}

/** The requests to a simulator that change something (the login excepted). */
export function writes<R extends { method: string; path: string }>(
  sim: { requests: readonly R[] },
): R[] {
  return sim.requests.filter((r) =>
    r.method !== "GET" && r.path !== "/access/ticket"
  );
}

/** How many guest-agent exec POSTs reached a simulator. */
export function execPosts(
  sim: { requests: readonly { method: string; path: string }[] },
): number {
  return sim.requests.filter((r) =>
    r.method === "POST" && r.path.endsWith("/agent/exec")
  ).length;
}

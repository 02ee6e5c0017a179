/**
 * How tests and benchmarks start the real server: `deno run` with the
 * product's own minimal grants (as the deno.json tasks do), never -A.
 */
import { ENV_VARS } from "../src/config.ts";

export const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

/** `run --no-prompt --node-modules-dir=manual --allow-env=<ours> --allow-net [...permissions] src/main.ts [...args]` */
export function serverArgs(
  args: string[] = [],
  permissions: string[] = [],
): string[] {
  return [
    "run",
    "--no-prompt",
    // node_modules is installed before the tests (deno install): with
    // "auto", servers starting side by side each take its lock and may print
    // "Blocking waiting for file lock on node_modules directory" on stderr,
    // which tests that read stderr would see.
    "--node-modules-dir=manual",
    `--allow-env=${ENV_VARS.join(",")}`,
    "--allow-net",
    ...permissions,
    MAIN,
    ...args,
  ];
}

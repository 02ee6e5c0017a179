/**
 * How tests and benchmarks start the real server: `deno run` with the
 * product's own minimal grants (as the deno.json tasks do), never -A.
 */
import { ENV_VARS } from "../src/config.ts";

export const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

/** `run --no-prompt --allow-env=<ours> --allow-net [...permissions] src/main.ts [...args]` */
export function serverArgs(
  args: string[] = [],
  permissions: string[] = [],
): string[] {
  return [
    "run",
    "--no-prompt",
    `--allow-env=${ENV_VARS.join(",")}`,
    "--allow-net",
    ...permissions,
    MAIN,
    ...args,
  ];
}

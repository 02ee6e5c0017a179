/**
 * The one permission list: the flags of `deno task start` in deno.json, which
 * the compiled binaries, the bundle launcher and the release smoke test reuse.
 *
 *   deno run --allow-read=deno.json scripts/permissions.ts   # prints them, one per line
 */

const DENO_JSON = new URL("../deno.json", import.meta.url);

/** The permission flags (`--allow-*`, `--deny-*`, `--no-prompt`) of a `deno run` task. */
export function taskPermissions(task: string): string[] {
  const words = task.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new TypeError(`Cannot read permissions: task is not 'deno run ...'`);
  }
  const entry = words.indexOf("src/main.ts");
  if (entry < 0) {
    throw new TypeError(
      "Cannot read permissions: task does not run src/main.ts",
    );
  }
  const flags = words.slice(2, entry);
  for (const f of flags) {
    if (!/^--(allow|deny)-[a-z-]+(=.*)?$|^--no-prompt$/.test(f)) {
      throw new TypeError(`Cannot read permissions: unexpected flag ${f}`);
    }
    if (f === "--allow-all" || f === "-A") {
      throw new TypeError("Cannot read permissions: the start task grants all");
    }
  }
  if (!flags.includes("--no-prompt")) {
    throw new TypeError(
      "Cannot read permissions: the start task lacks --no-prompt",
    );
  }
  return flags;
}

/** The permission flags of `deno task start`, read from deno.json. */
export async function startPermissions(): Promise<string[]> {
  const json = JSON.parse(await Deno.readTextFile(DENO_JSON));
  return taskPermissions(json.tasks.start);
}

if (import.meta.main) {
  const out = (await startPermissions()).join("\n") + "\n";
  await Deno.stdout.write(new TextEncoder().encode(out));
}

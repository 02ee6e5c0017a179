/**
 * `deno task bundle`: src/main.ts as plain JavaScript in dist/bundle/ —
 * main.js and the chunks it imports when it needs them (the SDK only after a
 * session's first answers) — what the container image and the compiled
 * binaries run. A fresh process answers its first tool call in about 70 % of
 * the time the sources take (bench/cold_start.ts measures both; 2.9× a bare
 * Deno responder instead of 4×): one file per chunk instead of
 * ~200 modules resolved and read one import level at a time, and no
 * deno.json, lock file or npm resolution at start.
 *
 * `deno bundle` runs esbuild, the version this Deno release pins (fetched
 * from npm on first use). The bundle resolves the import map and every npm
 * package, so it runs with `--no-config`; deno.json's `unstable` features
 * are passed as flags instead ({@link bundleRunFlags}).
 *
 *   deno run --allow-read --allow-write=dist --allow-run --allow-env --allow-net scripts/bundle.ts [OUTDIR]
 */

const ROOT = new URL("..", import.meta.url);

/** Where `deno task bundle` writes the bundle; main.js is its entry. */
export const BUNDLE_DIR = "dist/bundle";

/** The `deno bundle` arguments. */
export function bundleArgs(outdir: string = BUNDLE_DIR): string[] {
  return [
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    "--minify",
    "--code-splitting",
    "--outdir",
    outdir,
    "src/main.ts",
  ];
}

/**
 * V8's young generation starts at 16 MiB: a fresh process builds its zod
 * schemas without four scavenges on the way (~20 ms of CPU before the first
 * answer), for ~5 MiB more resident memory.
 */
export const V8_FLAGS = "--v8-flags=--min-semi-space-size=16";

/**
 * The flags `deno run` (or `deno compile`) needs for the bundle besides
 * permissions: no config (resolved already), deno.json's unstable features
 * as flags, and {@link V8_FLAGS}.
 */
export async function bundleRunFlags(): Promise<string[]> {
  const json = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  ) as { unstable?: string[] };
  return [
    "--no-config",
    ...(json.unstable ?? []).map((f) => `--unstable-${f}`),
    V8_FLAGS,
  ];
}

/** Imports in the output that only a config could resolve. */
const UNRESOLVED = /(?:from|import)\s*\(?\s*["'](?:npm:|jsr:|@[a-z]|zod)/;

/** Builds the bundle into `outdir` (emptied first); returns its entry. */
export async function buildBundle(
  outdir: string = BUNDLE_DIR,
): Promise<string> {
  const dir = new URL(`${outdir}/`, ROOT);
  await Deno.remove(dir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: bundleArgs(outdir),
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `Cannot bundle src/main.ts: ${new TextDecoder().decode(stderr)}`,
    );
  }
  for await (const f of Deno.readDir(dir)) {
    const text = await Deno.readTextFile(new URL(f.name, dir));
    const bad = UNRESOLVED.exec(text);
    if (bad) {
      throw new Error(`Cannot bundle src/main.ts: ${f.name} imports ${bad[0]}`);
    }
  }
  return new URL("main.js", dir).pathname;
}

if (import.meta.main) {
  const entry = await buildBundle(Deno.args[0]);
  Deno.stdout.writeSync(new TextEncoder().encode(entry + "\n"));
}

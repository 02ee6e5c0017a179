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

/**
 * Why `dir` must not be emptied for a bundle, or undefined when it may: it
 * is missing, empty, or an earlier bundle (main.js and only other .js files,
 * no directories). Anything else (dist/ itself, the sources, a directory
 * given by mistake) is refused rather than deleted.
 */
async function notOwnBundle(dir: URL): Promise<string | undefined> {
  const names: string[] = [];
  try {
    for await (const f of Deno.readDir(dir)) {
      if (!f.isFile || !f.name.endsWith(".js")) {
        return `it holds ${f.name}, which a bundle does not`;
      }
      names.push(f.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return names.length === 0 || names.includes("main.js")
    ? undefined
    : "it holds .js files but no main.js, so it is no earlier bundle";
}

/**
 * Builds the bundle into `outdir` (emptied first, only when it is missing,
 * empty or an earlier bundle); returns its entry.
 */
export async function buildBundle(
  outdir: string = BUNDLE_DIR,
): Promise<string> {
  const dir = new URL(`${outdir}/`, ROOT);
  const refused = await notOwnBundle(dir);
  if (refused) {
    throw new Error(
      `Cannot bundle into ${outdir}: ${refused}; give a new directory or an earlier bundle's, such as ${BUNDLE_DIR}`,
    );
  }
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

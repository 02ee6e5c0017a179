/**
 * `deno task compile:<os>-<arch>`: one binary in dist/ with exactly the
 * permissions of `deno task start` (scripts/permissions.ts), never -A. It
 * compiles the bundle (scripts/bundle.ts, built first) with the flags the
 * bundle runs with: a binary starts as fast as the bundle does.
 *
 *   deno run --allow-read --allow-run scripts/compile.ts linux-x64 [--output FILE]
 */
import { buildBundle, BUNDLE_DIR, bundleRunFlags } from "./bundle.ts";
import { startPermissions } from "./permissions.ts";

/** Release asset name → Rust target triple that `deno compile --target` takes. */
export const TARGETS: Readonly<Record<string, string>> = {
  "linux-x64": "x86_64-unknown-linux-gnu",
  "linux-arm64": "aarch64-unknown-linux-gnu",
  "darwin-x64": "x86_64-apple-darwin",
  "darwin-arm64": "aarch64-apple-darwin",
  "windows-x64": "x86_64-pc-windows-msvc",
};

/** The `deno compile` arguments for one target. */
export async function compileArgs(
  name: string,
  output = `dist/proxmox-mcp-${name}${
    name.startsWith("windows") ? ".exe" : ""
  }`,
): Promise<string[]> {
  const target = TARGETS[name];
  if (!target) {
    throw new RangeError(
      `Unknown target ${name}: expected one of ${
        Object.keys(TARGETS).join(", ")
      }`,
    );
  }
  return [
    "compile",
    ...await startPermissions(),
    ...await bundleRunFlags(),
    "--target",
    target,
    "--output",
    output,
    `${BUNDLE_DIR}/main.js`,
  ];
}

if (import.meta.main) {
  const [name, flag, output] = Deno.args;
  const args = await compileArgs(
    name,
    flag === "--output" ? output : undefined,
  );
  const root = new URL("..", import.meta.url);
  await buildBundle();
  const { code } = await new Deno.Command(Deno.execPath(), { args, cwd: root })
    .spawn().status;
  Deno.exit(code);
}

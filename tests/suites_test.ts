/**
 * `deno task test` runs the fast tier through suites (tests/suites/*.ts):
 * each suite imports a few test files, and deno runs it in one worker, so
 * the product, the SDK and the simulator load once per suite instead of once
 * per file (that load was most of the tier's CPU). Every test file of
 * tests/ must be in exactly one suite, or `deno task test` would skip it or
 * run it twice; each file still runs alone (`deno test -A tests/x_test.ts`).
 */
import assert from "node:assert/strict";

const TESTS = new URL("./", import.meta.url);
const SUITES = new URL("suites/", TESTS);

/** The names of the files in `dir` that end with `suffix`, sorted. */
async function names(dir: URL, suffix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(suffix)) out.push(e.name);
  }
  return out.sort();
}

Deno.test("every test file of tests/ is in exactly one suite, and every suite imports only test files", async () => {
  const files = await names(TESTS, "_test.ts");
  const suiteOf = new Map<string, string[]>();
  for (const suite of await names(SUITES, ".ts")) {
    const text = await Deno.readTextFile(new URL(suite, SUITES));
    const imported = [...text.matchAll(/^import "\.\.\/([^"/]+)";$/gm)]
      .map((m) => m[1]);
    assert.ok(imported.length > 0, `${suite} imports no test file`);
    for (const f of imported) {
      assert.ok(files.includes(f), `${suite} imports ${f}, not a test file`);
      suiteOf.set(f, [...suiteOf.get(f) ?? [], suite]);
    }
  }
  const missing = files.filter((f) => !suiteOf.has(f));
  assert.deepEqual(missing, [], "test files in no suite (add each to one)");
  const twice = [...suiteOf].filter(([, s]) => s.length > 1);
  assert.deepEqual(twice, [], "test files in more than one suite");
});

Deno.test("deno task test runs the suites, and no test file beside them", async () => {
  const tasks = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", TESTS)),
  ).tasks as Record<string, string>;
  const args = tasks.test.split(/\s+/);
  const run = args.filter((a) => a.startsWith("tests/"));
  assert.deepEqual(run, ["tests/suites/*.ts"]);
});

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
/** Folders whose test files run in their own tasks (test:e2e, test:deploy). */
const OWN_TASK = ["e2e/", "deploy/"];
/** The names deno test takes for test files. */
const TEST_FILE = /(^|[._])test\.(ts|tsx|mts|js|mjs|jsx)$/;

/** The names of the files in `dir` that end with `suffix`, sorted. */
async function names(dir: URL, suffix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(suffix)) out.push(e.name);
  }
  return out.sort();
}

/** Every test file below tests/ (deno test's names), as paths from tests/. */
async function testFiles(dir: URL = TESTS, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) {
      out.push(
        ...await testFiles(new URL(`${e.name}/`, dir), `${prefix}${e.name}/`),
      );
    } else if (TEST_FILE.test(e.name)) out.push(prefix + e.name);
  }
  return out.sort();
}

/** The test files a suite imports (comments left out). */
function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  return [...code.matchAll(/^import "\.\.\/([^"]+)";$/gm)].map((m) => m[1]);
}

Deno.test("every test file below tests/ is in exactly one suite, or in a folder with its own task", async () => {
  const files = await testFiles();
  const inSuites = files.filter((f) => !OWN_TASK.some((d) => f.startsWith(d)));
  const suiteOf = new Map<string, string[]>();
  for (const suite of await names(SUITES, ".ts")) {
    const imported = importsOf(
      await Deno.readTextFile(new URL(suite, SUITES)),
    );
    assert.ok(imported.length > 0, `${suite} imports no test file`);
    for (const f of imported) {
      assert.ok(
        inSuites.includes(f),
        `${suite} imports ${f}, not a test file of the fast tier`,
      );
      suiteOf.set(f, [...suiteOf.get(f) ?? [], suite]);
    }
  }
  const missing = inSuites.filter((f) => !suiteOf.has(f));
  assert.deepEqual(missing, [], "test files in no suite (add each to one)");
  const twice = [...suiteOf].filter(([, s]) => s.length > 1);
  assert.deepEqual(twice, [], "test files in more than one suite");
});

Deno.test("deno task test runs the suites and nothing else; test:e2e and test:deploy run their folders", async () => {
  const tasks = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", TESTS)),
  ).tasks as Record<string, string>;
  const paths = (task: string) =>
    tasks[task].split(/\s+/).filter((a) => a.startsWith("tests/"));
  assert.deepEqual(paths("test"), ["tests/suites/*.ts"]);
  assert.ok(paths("test:e2e").includes("tests/e2e/"), tasks["test:e2e"]);
  assert.ok(
    tasks["test:deploy"].includes("tests/deploy/"),
    tasks["test:deploy"],
  );
});

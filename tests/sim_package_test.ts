/**
 * The simulator is its own workspace member (sim/, @proxmox-mcp/sim): it
 * imports nothing from the product, and the product reaches it only through
 * --demo's one dynamic import of sim/demo.ts.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Every .ts file below `dir` (a folder URL), as URLs. */
async function sources(dir: URL): Promise<URL[]> {
  const out: URL[] = [];
  for await (const e of Deno.readDir(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) out.push(...await sources(u));
    else if (e.name.endsWith(".ts")) out.push(u);
  }
  return out;
}

/** The specifiers `file` imports, statically or dynamically. */
async function imports(file: URL): Promise<string[]> {
  const text = await Deno.readTextFile(file);
  const statements = [
    /^(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm,
    /^import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return statements.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]));
}

Deno.test("the simulator imports only its own modules and node: built-ins", async () => {
  const sim = new URL("sim/", ROOT);
  const files = await sources(sim);
  assert.ok(files.length > 10, "sim/ has its modules");
  for (const f of files) {
    for (const spec of await imports(f)) {
      if (spec.startsWith("node:")) continue;
      // A bare name (a package, the root's import map) is outside sim/ too.
      assert.match(
        spec,
        /^\.\.?\//,
        `${
          f.pathname.slice(ROOT.pathname.length)
        } imports ${spec}, not a module of sim/`,
      );
      const target = new URL(spec, f);
      assert.ok(
        target.href.startsWith(sim.href),
        `${
          f.pathname.slice(ROOT.pathname.length)
        } imports ${spec}, outside sim/`,
      );
    }
  }
});

Deno.test("the product reaches the simulator only through --demo's import of sim/demo.ts", async () => {
  const src = new URL("src/", ROOT);
  const uses: string[] = [];
  for (const f of await sources(src)) {
    for (const spec of await imports(f)) {
      const bySim = spec.startsWith("@proxmox-mcp/sim") ||
        /^\.\.?\//.test(spec) &&
          new URL(spec, f).href.startsWith(new URL("sim/", ROOT).href);
      if (bySim) {
        uses.push(`${f.pathname.slice(ROOT.pathname.length)} -> ${spec}`);
      }
    }
  }
  assert.deepEqual(uses, ["src/app.ts -> ../sim/demo.ts"]);
});

Deno.test("sim/deno.json names the package and its entry points", async () => {
  const root = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  assert.ok(root.workspace.includes("./sim"), "sim is a workspace member");
  const pkg = JSON.parse(
    await Deno.readTextFile(new URL("sim/deno.json", ROOT)),
  );
  assert.equal(pkg.name, "@proxmox-mcp/sim");
  for (const path of Object.values(pkg.exports) as string[]) {
    await Deno.stat(new URL(path, new URL("sim/", ROOT)));
  }
});

/** The tool surface: every tool declared completely, and snapshotted. */
import assert from "node:assert/strict";
import { z } from "zod";
import { buildCatalog } from "../src/catalog.ts";
import { ALL_TOOLS, selectTools, TOOLSETS } from "../src/tools/mod.ts";
import { callOk, connect, simEnv, startSim } from "./helpers.ts";

const SNAPSHOTS = new URL("./snapshots/tools/", import.meta.url);
const CATALOG = new URL("../src/tools/catalog.json", import.meta.url);

Deno.test("every tool has the prefix, a toolset, all four annotations and an output schema", () => {
  const names = new Set<string>();
  const toolsets = new Set(TOOLSETS.map((t) => t.id));
  for (const t of ALL_TOOLS) {
    assert.match(t.name, /^proxmox_[a-z_]+$/, `${t.name}: proxmox_ prefix`);
    assert.ok(!names.has(t.name), `${t.name}: duplicate name`);
    names.add(t.name);
    assert.ok(
      toolsets.has(t.toolset),
      `${t.name}: unknown toolset ${t.toolset}`,
    );
    assert.ok(
      t.title.length > 0 && t.description.length > 0,
      `${t.name}: title and description`,
    );
    for (
      const hint of [
        "readOnlyHint",
        "destructiveHint",
        "idempotentHint",
        "openWorldHint",
      ] as const
    ) {
      assert.equal(
        typeof t.annotations[hint],
        "boolean",
        `${t.name}: ${hint} set explicitly`,
      );
    }
    assert.ok(
      t.output instanceof z.ZodObject,
      `${t.name}: output schema is an object`,
    );
    if (t.annotations.readOnlyHint) {
      assert.equal(
        t.annotations.destructiveHint,
        false,
        `${t.name}: read-only is not destructive`,
      );
    }
  }
});

Deno.test("read-only mode keeps only read-only tools and wins over toolsets", () => {
  const ro = selectTools({ readOnly: true });
  assert.ok(ro.length > 0);
  assert.ok(ro.every((t) => t.annotations.readOnlyHint));
  const some = selectTools({ readOnly: true, toolsets: ["nodes"] });
  assert.deepEqual(some.map((t) => t.name), ["proxmox_list_nodes"]);
  assert.throws(
    () => selectTools({ readOnly: false, toolsets: ["nope"] }),
    /Unknown toolset 'nope'/,
  );
});

Deno.test("tools/list matches one snapshot per tool (UPDATE_SNAPSHOTS=1 accepts a change and refreshes src/tools/catalog.json)", async () => {
  const update = Deno.env.get("UPDATE_SNAPSHOTS") === "1";
  if (update) {
    // The stdio transport answers tools/list from the catalog: refresh it first.
    await Deno.writeTextFile(
      CATALOG,
      JSON.stringify(await buildCatalog(), null, 1) + "\n",
    );
  }
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const { tools } = await s.client.listTools();
  assert.equal(tools.length, ALL_TOOLS.length);
  if (update) {
    await Deno.remove(SNAPSHOTS, { recursive: true }).catch(() => {});
    await Deno.mkdir(SNAPSHOTS, { recursive: true });
  }
  const stale: string[] = [];
  for (const tool of tools) {
    const file = new URL(`${tool.name}.json`, SNAPSHOTS);
    const text = JSON.stringify(tool, null, 1) + "\n";
    if (update) await Deno.writeTextFile(file, text);
    if (await Deno.readTextFile(file).catch(() => "") !== text) {
      stale.push(tool.name);
    }
  }
  const files = [...Deno.readDirSync(SNAPSHOTS)].map((e) => e.name).sort();
  assert.deepEqual(
    files,
    tools.map((t) => `${t.name}.json`).sort(),
    "one snapshot per tool, none left over",
  );
  assert.deepEqual(
    stale,
    [],
    "tools/list changed: review and run with UPDATE_SNAPSHOTS=1",
  );
  // What a model sees of each tool stays small (README: ≤ 300 bytes on average).
  const sizes = tools.map((t) =>
    JSON.stringify({
      name: t.name,
      description: t.description,
      inputSchema: t.inputSchema,
    }).length
  );
  const avg = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  assert.ok(avg <= 300, `average ${avg} bytes per tool`);
});

Deno.test("MCP_READ_ONLY hides every tool that changes something", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), MCP_READ_ONLY: "true" },
  });
  const { tools } = await s.client.listTools();
  assert.equal(
    tools.length,
    ALL_TOOLS.filter((t) => t.annotations.readOnlyHint).length,
  );
  assert.ok(tools.every((t) => t.annotations?.readOnlyHint === true));
  await callOk(s.client, "proxmox_list_nodes");
});

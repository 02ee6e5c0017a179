/**
 * What a model sees of each tool: name + description + input schema, as
 * compact JSON, from the catalog the server answers tools/list with.
 */
import catalog from "../src/tools/catalog.json" with { type: "json" };
import { print } from "./common.ts";

export function toolSizes(): { name: string; bytes: number }[] {
  return (catalog.tools as {
    name: string;
    description: string;
    inputSchema: unknown;
  }[]).map((t) => ({
    name: t.name,
    bytes: JSON.stringify({
      name: t.name,
      description: t.description,
      inputSchema: t.inputSchema,
    }).length,
  }));
}

if (import.meta.main) {
  const sizes = toolSizes();
  const avg = sizes.reduce((a, s) => a + s.bytes, 0) / sizes.length;
  for (const s of sizes.sort((a, b) => b.bytes - a.bytes)) {
    print(`  ${s.name} ${s.bytes}`);
  }
  print(
    `tool size: ${sizes.length} tools, average ${
      avg.toFixed(0)
    } bytes, ratio to target 300: ${(avg / 300).toFixed(2)}`,
  );
}

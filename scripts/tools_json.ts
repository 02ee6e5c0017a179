/**
 * tools.json for Docker's MCP registry (what `tools/list` answers, without
 * output schemas and annotations), generated from src/tools/catalog.json:
 *
 *   deno run --allow-read --allow-write scripts/tools_json.ts          # writes tools.json
 *   deno run --allow-read scripts/tools_json.ts --check                # exit 1 when stale
 */

const CATALOG = new URL("../src/tools/catalog.json", import.meta.url);
export const TOOLS_JSON = new URL("../tools.json", import.meta.url);

interface CatalogTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

/** The text tools.json must have for the catalog as it is now. */
export async function toolsJson(): Promise<string> {
  const catalog = JSON.parse(await Deno.readTextFile(CATALOG)) as {
    tools: CatalogTool[];
  };
  const tools = catalog.tools.map((t) => ({
    name: t.name,
    description: t.description,
    inputSchema: t.inputSchema,
  }));
  return JSON.stringify(tools, null, 2) + "\n";
}

if (import.meta.main) {
  const want = await toolsJson();
  if (Deno.args.includes("--check")) {
    const have = await Deno.readTextFile(TOOLS_JSON).catch(() => "");
    if (have !== want) {
      Deno.stderr.writeSync(new TextEncoder().encode(
        "tools.json is stale: run deno run --allow-read --allow-write scripts/tools_json.ts\n",
      ));
      Deno.exit(1);
    }
  } else {
    await Deno.writeTextFile(TOOLS_JSON, want);
  }
}

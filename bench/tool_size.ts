/**
 * What a model sees of each tool: name + description + input schema, as
 * compact JSON, from the catalog the server answers tools/list with.
 */
import catalog from "../src/tools/catalog.json" with { type: "json" };

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

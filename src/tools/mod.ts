/**
 * The registry: every tool, assembled from the toolset modules, and the
 * filter that chooses which tools a server offers. Read-only mode is derived from each tool's
 * readOnlyHint and wins over every other filter.
 */
import * as access from "./access.ts";
import * as backups from "./backups.ts";
import { type ToolDef, toolsOf } from "./define.ts";
import * as firewall from "./firewall.ts";
import * as guest from "./guest.ts";
import * as nodes from "./nodes.ts";
import * as snapshots from "./snapshots.ts";
import * as storage from "./storage.ts";
import * as tasks from "./tasks.ts";
import { selectBy, type ToolFilter, TOOLSETS } from "./toolsets.ts";
import * as vms from "./vms.ts";

export { type ToolFilter, Toolset, TOOLSETS } from "./toolsets.ts";

/** Where each toolset's place in the list comes from. */
const RANK = new Map<string, number>(TOOLSETS.map((t, i) => [t.id, i]));

/**
 * Every tool, by toolset (in TOOLSETS order) and then in the order its file
 * declares it. A new tool is a new export of a toolset module: nothing else
 * lists it.
 */
export const ALL_TOOLS: readonly ToolDef[] = [
  nodes,
  access,
  vms,
  tasks,
  snapshots,
  backups,
  storage,
  guest,
  firewall,
].flatMap((m) => toolsOf(m)).sort((a, b) =>
  RANK.get(a.toolset)! - RANK.get(b.toolset)!
);

/** The tools a server offers under a filter. Throws on an unknown toolset. */
export function selectTools(filter: ToolFilter): ToolDef[] {
  return selectBy(ALL_TOOLS, (t) => ({
    toolset: t.toolset,
    readOnly: t.annotations.readOnlyHint,
  }), filter);
}

/**
 * Toolsets and the one filter that chooses which tools a server offers.
 * Imports nothing: the stdio transport filters the stored catalog with it
 * before the SDK, zod or any tool is loaded.
 */

/** The toolsets, as typed constants (`toolset: Toolset.vms`). */
export const Toolset = {
  nodes: "nodes",
  vms: "vms",
  tasks: "tasks",
  snapshots: "snapshots",
  backups: "backups",
  storage: "storage",
  guest: "guest",
  firewall: "firewall",
} as const;
export type ToolsetId = typeof Toolset[keyof typeof Toolset];

export const TOOLSETS: readonly { id: ToolsetId; description: string }[] = [
  { id: Toolset.nodes, description: "Cluster nodes" },
  {
    id: Toolset.vms,
    description: "VMs and containers: inventory and lifecycle",
  },
  { id: Toolset.tasks, description: "Following Proxmox tasks" },
  { id: Toolset.snapshots, description: "Snapshots" },
  { id: Toolset.backups, description: "Backups and restores" },
  { id: Toolset.storage, description: "Storage and its content" },
  { id: Toolset.guest, description: "Inside VMs through the QEMU guest agent" },
  { id: Toolset.firewall, description: "Guest firewall rules" },
];

export interface ToolFilter {
  readOnly: boolean;
  toolsets?: string[];
}

/** What the filter needs to know of a tool. */
export interface ToolFacts {
  toolset: string;
  readOnly: boolean;
}

/**
 * The tools a server offers under a filter, in registry order. Read-only
 * mode keeps only read-only tools and wins over every other filter. Throws
 * a RangeError naming MCP_TOOLSETS on an unknown toolset.
 */
export function selectBy<T>(
  tools: readonly T[],
  facts: (tool: T) => ToolFacts,
  filter: ToolFilter,
): T[] {
  const known = new Set<string>(TOOLSETS.map((t) => t.id));
  for (const t of filter.toolsets ?? []) {
    if (!known.has(t)) {
      throw new RangeError(
        `Unknown toolset '${t}' in MCP_TOOLSETS: expected some of ${
          [...known].join(", ")
        }`,
      );
    }
  }
  const enabled = filter.toolsets ? new Set(filter.toolsets) : known;
  return tools.filter((tool) => {
    const f = facts(tool);
    return enabled.has(f.toolset) && (!filter.readOnly || f.readOnly);
  });
}

/**
 * The master list of tools and toolsets, and the filters that choose which
 * tools a server offers. Read-only mode is derived from each tool's
 * readOnlyHint and wins over every other filter.
 */
import { createBackup, listBackups, restoreBackup } from "./backups.ts";
import type { ToolDef } from "./define.ts";
import { addFirewallRule, listFirewallRules } from "./firewall.ts";
import {
  executeCommand,
  installSoftware,
  readFileVm,
  writeFileVm,
} from "./guest.ts";
import { listNodes } from "./nodes.ts";
import {
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  rollbackSnapshot,
} from "./snapshots.ts";
import { listContent, listStorage } from "./storage.ts";
import { getTask } from "./tasks.ts";
import {
  createLxc,
  createVmFromTemplate,
  deleteVm,
  getVmStats,
  listVms,
  migrateVm,
  startVm,
  stopVm,
  updateVm,
} from "./vms.ts";

export interface Toolset {
  id: string;
  description: string;
}

export const TOOLSETS: readonly Toolset[] = [
  { id: "nodes", description: "Cluster nodes" },
  { id: "vms", description: "VMs and containers: inventory and lifecycle" },
  { id: "tasks", description: "Following Proxmox tasks" },
  { id: "snapshots", description: "Snapshots" },
  { id: "backups", description: "Backups and restores" },
  { id: "storage", description: "Storage and its content" },
  { id: "guest", description: "Inside VMs through the QEMU guest agent" },
  { id: "firewall", description: "Guest firewall rules" },
];

export const ALL_TOOLS: readonly ToolDef[] = [
  listNodes,
  listVms,
  getVmStats,
  startVm,
  stopVm,
  createVmFromTemplate,
  createLxc,
  updateVm,
  migrateVm,
  deleteVm,
  getTask,
  createSnapshot,
  listSnapshots,
  rollbackSnapshot,
  deleteSnapshot,
  createBackup,
  listBackups,
  restoreBackup,
  listStorage,
  listContent,
  executeCommand,
  readFileVm,
  writeFileVm,
  installSoftware,
  listFirewallRules,
  addFirewallRule,
];

export interface ToolFilter {
  readOnly: boolean;
  toolsets?: string[];
}

/** The tools a server offers under a filter. Throws on an unknown toolset. */
export function selectTools(filter: ToolFilter): ToolDef[] {
  const known = new Set(TOOLSETS.map((t) => t.id));
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
  return ALL_TOOLS.filter((t) =>
    enabled.has(t.toolset) && (!filter.readOnly || t.annotations.readOnlyHint)
  );
}

/**
 * The master list of tools and toolsets, and the filters that choose which
 * tools a server offers. Read-only mode is derived from each tool's
 * readOnlyHint and wins over every other filter.
 */
import { createBackup, listBackups, restoreBackup } from "./backups.ts";
import type { ToolDef } from "./define.ts";
import { selectBy, type ToolFilter } from "./toolsets.ts";
import { addFirewallRule, listFirewallRules } from "./firewall.ts";
import {
  executeCommand,
  installSoftware,
  readFileVm,
  writeFileVm,
} from "./guest.ts";
import { whoami } from "./access.ts";
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

export { type ToolFilter, Toolset, TOOLSETS } from "./toolsets.ts";

export const ALL_TOOLS: readonly ToolDef[] = [
  listNodes,
  whoami,
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

/** The tools a server offers under a filter. Throws on an unknown toolset. */
export function selectTools(filter: ToolFilter): ToolDef[] {
  return selectBy(ALL_TOOLS, (t) => ({
    toolset: t.toolset,
    readOnly: t.annotations.readOnlyHint,
  }), filter);
}

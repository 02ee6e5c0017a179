/** Every simulator route. Each area has its own file; add yours here. */
import type { Route } from "../router.ts";
import { AGENT_ROUTES } from "./agent.ts";
import { BACKUP_ROUTES, RESTORE_ROUTES, restoreLxc } from "./backup.ts";
import { CLUSTER_ROUTES } from "./cluster.ts";
import { CLONE_ROUTES, lxcCreateRoute } from "./create.ts";
import { FIREWALL_ROUTES } from "./firewall.ts";
import { GUEST_ROUTES } from "./guests.ts";
import { LIFECYCLE_ROUTES } from "./lifecycle.ts";
import { LIFECYCLE_AGENT_ROUTES } from "./lifecycle_agent.ts";
import { SNAPSHOT_ROUTES } from "./snapshots.ts";
import { STORAGE_ROUTES } from "./storage.ts";
import { TASK_ROUTES } from "./tasks.ts";

export const ALL_ROUTES: Route[] = [
  ...CLUSTER_ROUTES,
  ...GUEST_ROUTES,
  ...TASK_ROUTES,
  ...SNAPSHOT_ROUTES,
  ...LIFECYCLE_ROUTES,
  ...CLONE_ROUTES,
  // Creates a CT, or restores one (restore=1) with backup.ts's handler.
  lxcCreateRoute(restoreLxc),
  // Restores a VM (archive); plain VM creation is not simulated yet.
  ...RESTORE_ROUTES,
  ...BACKUP_ROUTES,
  ...STORAGE_ROUTES,
  ...AGENT_ROUTES,
  ...FIREWALL_ROUTES,
  ...LIFECYCLE_AGENT_ROUTES,
];

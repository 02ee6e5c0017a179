/** Every simulator route. Each area has its own file; add yours here. */
import type { Route } from "../router.ts";
import { CLUSTER_ROUTES } from "./cluster.ts";
import { GUEST_ROUTES } from "./guests.ts";
import { TASK_ROUTES } from "./tasks.ts";

export const ALL_ROUTES: Route[] = [
  ...CLUSTER_ROUTES,
  ...GUEST_ROUTES,
  ...TASK_ROUTES,
];

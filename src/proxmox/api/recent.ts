/**
 * What became of a write whose answer never came: the tasks Proxmox started
 * for that guest since the request was sent (`GET /nodes/{node}/tasks`, with
 * running tasks too), so a tool can say what happened instead of "maybe".
 */
import type { PveClient } from "../client.ts";
import type { PveError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";

/** A task from PVE's task list. */
export interface RecentTask {
  upid: string;
  type: string;
  user: string;
  /** UNIX epoch seconds. */
  starttime: number;
  /** Absent while running; `OK`, `WARNINGS: n` or the error once stopped. */
  status?: string;
}

/** The guest a write path acts on: `/nodes/{node}/{qemu|lxc}/{vmid}/…`. */
function guestOfPath(
  path: string,
): { node: string; vmid: number } | undefined {
  const m = /^\/nodes\/([^/]+)\/(?:qemu|lxc)\/(\d+)(?:\/|$)/.exec(path);
  return m ? { node: m[1], vmid: Number(m[2]) } : undefined;
}

/**
 * Tasks for guest `vmid` on `node` started at or after `since` (UNIX epoch
 * seconds), newest first: running and finished ones (`source=all`; PVE's
 * default lists finished tasks only).
 */
async function recentGuestTasks(
  pve: PveClient,
  node: string,
  vmid: number,
  since: number,
  signal?: AbortSignal,
): Promise<RecentTask[]> {
  const list = await pve.request<RecentTask[]>(
    "GET",
    pvePath`/nodes/${seg.node(node)}/tasks`,
    { vmid, since: Math.floor(since), source: "all", limit: 20 },
    signal,
  );
  return (list ?? [])
    .filter((t) => Number(t.starttime) >= Math.floor(since))
    .sort((a, b) => b.starttime - a.starttime);
}

/**
 * For an `uncertain` write on a guest's path: one sentence saying which tasks
 * Proxmox started for that guest since `sinceMs` (our clock, with a minute's
 * slack for the node's), or that none did. Undefined when the path names no
 * guest or the lookup fails too (it is bounded by `timeoutMs`).
 */
export async function explainUncertain(
  pve: PveClient,
  error: PveError,
  sinceMs: number,
  timeoutMs = 5000,
): Promise<string | undefined> {
  const guest = guestOfPath(error.path);
  if (!guest) return undefined;
  const since = Math.floor(sinceMs / 1000) - 60;
  try {
    const tasks = await recentGuestTasks(
      pve,
      guest.node,
      guest.vmid,
      since,
      AbortSignal.timeout(timeoutMs),
    );
    if (tasks.length === 0) {
      return `Proxmox lists no task for guest ${guest.vmid} on ${guest.node} started in the last minute (by this server's clock): a request that starts a task was most likely not applied (one that starts none cannot be checked this way)`;
    }
    const shown = tasks.slice(0, 3).map((t) =>
      `${t.type} ${
        t.status ? `ended: ${t.status}` : "still running"
      } (${t.upid})`
    );
    return `Proxmox started ${tasks.length} task(s) for guest ${guest.vmid} on ${guest.node} in the last minute: ${
      shown.join("; ")
    }. Follow one with proxmox_get_task before sending the request again`;
  } catch {
    return undefined;
  }
}

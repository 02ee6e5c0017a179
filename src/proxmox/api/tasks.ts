/**
 * Tasks: reading one task by UPID (status, log tail), and telling what kind
 * of failure an error is, whether PVE refused the call itself or the task it
 * started ended in error.
 */
import type { PveClient } from "../client.ts";
import { classify, PveError, type PveErrorKind, ToolError } from "../errors.ts";
import { pvePath, seg } from "../path.ts";
import { scopeOf } from "../../safety/scope.ts";
import {
  parseUpid,
  taskLogTail,
  type TaskStatus,
  taskSucceeded,
  type Upid,
} from "../tasks.ts";

export {
  parseUpid,
  taskLogTail,
  TaskStatusUnknown,
  taskSucceeded,
  waitForTask,
} from "../tasks.ts";
export type { TaskResult, TaskStatus, Upid } from "../tasks.ts";

/** A task as proxmox_get_task shows it. */
export interface TaskInfo {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  status: "running" | "stopped";
  exitstatus?: string;
  /** Set once stopped: `OK` or `WARNINGS: n`. */
  ok?: boolean;
  /** ISO time the task started (from the UPID). */
  started: string;
  log: string[];
}

/**
 * The task a UPID names, refused when the text is not a UPID or the task is
 * outside this server's scope: on a node outside it, or of a guest outside
 * it (a guest's task names its VMID as the task id: qmstart:100).
 */
async function taskInScope(pve: PveClient, upid: string): Promise<Upid> {
  const u = parseUpid(upid);
  if (!u) {
    throw new ToolError(
      `Not a UPID: '${upid}'. A UPID looks like UPID:pve1:0000A1B2:0012C3D4:66A1B2C3:qmstart:100:root@pam: (tools that start tasks return it)`,
    );
  }
  const scope = scopeOf(pve);
  scope.checkNode(u.node);
  if (/^\d+$/.test(u.id) && Number(u.id) >= 100) {
    scope.checkGuest(
      Number(u.id),
      (await pve.guests()).find((g) => Number(g.vmid) === Number(u.id)) as
        | { node: unknown }
        | undefined,
    );
  }
  return u;
}

/**
 * Reads a task's status and the last `lines` lines of its log, on the node
 * named in the UPID (two or three GETs, in parallel).
 */
export async function readTask(
  pve: PveClient,
  upid: string,
  lines: number,
): Promise<TaskInfo> {
  const u = await taskInScope(pve, upid);
  const [st, log] = await Promise.all([
    pve.get<TaskStatus>(
      pvePath`/nodes/${seg.node(u.node)}/tasks/${seg.upid(u.upid)}/status`,
    ),
    taskLogTail(pve, u.upid, lines),
  ]);
  return {
    upid: u.upid,
    node: u.node,
    type: u.type,
    id: u.id,
    user: u.user,
    status: st.status,
    exitstatus: st.exitstatus,
    ok: st.status === "stopped" ? taskSucceeded(st.exitstatus) : undefined,
    started: new Date(u.starttime * 1000).toISOString(),
    log,
  };
}

/**
 * The kind of a failure: PveError's own kind for a refused call, the kind of
 * the exit status for a task that ended in error (ctx.task's ToolError
 * carries it), undefined for anything else.
 */
export function failureKind(e: unknown): PveErrorKind | undefined {
  if (e instanceof PveError) return e.kind;
  const exit = e instanceof ToolError ? e.detail?.exitstatus : undefined;
  return typeof exit === "string" ? classify(500, exit) : undefined;
}

/**
 * PVE's words for a failure: its message and per-parameter errors, or a
 * failed task's exit status.
 */
export function failureText(e: unknown): string {
  if (e instanceof PveError) {
    return [e.pveMessage, ...Object.values(e.errors ?? {})].join("\n");
  }
  const exit = e instanceof ToolError ? e.detail?.exitstatus : undefined;
  if (typeof exit === "string") return exit;
  return e instanceof Error ? e.message : String(e ?? "");
}

/**
 * Proxmox tasks: UPID parsing and following a task to its end.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { PveClient } from "./client.ts";
import { PveError, ToolError } from "./errors.ts";
import { pvePath, seg } from "./path.ts";

export interface Upid {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

/** Parses a UPID; null when it is not one. The node is the second field. */
export function parseUpid(upid: string): Upid | null {
  const m = UPID_RE.exec(upid);
  if (!m) return null;
  return {
    upid,
    node: m[1],
    pid: parseInt(m[2], 16),
    pstart: parseInt(m[3], 16),
    starttime: parseInt(m[4], 16),
    type: m[5],
    id: m[6],
    user: m[7],
  };
}

/**
 * The status of a task could not be read (twice in a row): the task itself
 * may well still be running on its node.
 */
export class TaskStatusUnknown extends ToolError {
  override name = "TaskStatusUnknown";
  readonly upid: string;
  constructor(upid: string, why: PveError) {
    super(
      `Cannot read the status of task ${upid} (${why.message}); the task may still be running: follow it with proxmox_get_task`,
      { upid, status: "unknown" },
    );
    this.upid = upid;
  }
}

export interface TaskStatus {
  status: "running" | "stopped";
  exitstatus?: string;
}

export interface TaskResult {
  upid: string;
  node: string;
  type: string;
  /** `running` when the wait timed out. */
  status: "ok" | "warnings" | "error" | "running";
  /** PVE's exit status (`OK`, `WARNINGS: 2`, or the error text). */
  exitstatus?: string;
  /** The last lines of the task log (on error, and when asked). */
  log?: string[];
  seconds: number;
}

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called after every poll while the task runs. */
  onProgress?: (
    info: { elapsedMs: number; line?: string },
  ) => void | Promise<void>;
  /** Log lines to return (default 10 on error, 0 on success). */
  logLines?: number;
  /** First poll interval in ms (default 100); grows to 2 s. */
  pollMs?: number;
}

/** Whether an exit status means success (`OK` or `WARNINGS: n`). */
export function taskSucceeded(exitstatus: string | undefined): boolean {
  return exitstatus === "OK" || /^WARNINGS: \d+$/.test(exitstatus ?? "");
}

/** Polls a task on the node in its UPID until it ends or the wait times out. */
export async function waitForTask(
  pve: PveClient,
  upid: string,
  options: WaitOptions,
): Promise<TaskResult> {
  const parsed = parseUpid(upid);
  if (!parsed) throw new TypeError(`Cannot parse UPID: ${upid}`);
  const path = pvePath`/nodes/${seg.node(parsed.node)}/tasks/${
    seg.upid(upid)
  }/status`;
  const started = performance.now();
  let pollMs = options.pollMs ?? 100;
  let failedPolls = 0;
  while (true) {
    let st: TaskStatus;
    try {
      st = await pve.request<TaskStatus>(
        "GET",
        path,
        undefined,
        options.signal,
      );
      failedPolls = 0;
    } catch (e) {
      // A failed status read says nothing about the task: retry once, then
      // say it may still be running (never "failed").
      if (
        !(e instanceof PveError) || e.kind === "cancelled" ||
        options.signal?.aborted || ++failedPolls > 1
      ) {
        if (e instanceof PveError && e.kind !== "cancelled") {
          throw new TaskStatusUnknown(upid, e);
        }
        throw e;
      }
      await delay(Math.min(pollMs, 1000), undefined, {
        signal: options.signal,
      });
      continue;
    }
    const elapsedMs = performance.now() - started;
    if (st.status === "stopped") {
      const ok = taskSucceeded(st.exitstatus);
      const lines = options.logLines ?? (ok ? 0 : 10);
      return {
        upid,
        node: parsed.node,
        type: parsed.type,
        status: st.exitstatus === "OK" ? "ok" : ok ? "warnings" : "error",
        exitstatus: st.exitstatus,
        log: lines > 0 ? await taskLogTail(pve, upid, lines) : undefined,
        seconds: round1(elapsedMs / 1000),
      };
    }
    if (elapsedMs >= options.timeoutMs) {
      return {
        upid,
        node: parsed.node,
        type: parsed.type,
        status: "running",
        seconds: round1(elapsedMs / 1000),
      };
    }
    if (options.onProgress) {
      const tail = await taskLogTail(pve, upid, 1).catch(() => []);
      await options.onProgress({ elapsedMs, line: tail.at(-1) });
    }
    await delay(
      Math.max(0, Math.min(pollMs, options.timeoutMs - elapsedMs)),
      undefined,
      { signal: options.signal },
    );
    pollMs = Math.min(pollMs * 1.5, 2000);
  }
}

/**
 * The last `lines` lines of a task's log: one small request for the total,
 * one for the tail (never the whole log of a long task).
 */
export async function taskLogTail(
  pve: PveClient,
  upid: string,
  lines: number,
): Promise<string[]> {
  const parsed = parseUpid(upid);
  if (!parsed) throw new TypeError(`Cannot parse UPID: ${upid}`);
  const base = pvePath`/nodes/${seg.node(parsed.node)}/tasks/${
    seg.upid(upid)
  }/log`;
  type Line = { n: number; t: string };
  const first = await pve.page<Line[]>(base, { start: 0, limit: lines });
  const total = first.total ?? first.data.length;
  if (total <= lines) return first.data.map((l) => l.t);
  const tail = await pve.get<Line[]>(base, {
    start: total - lines,
    limit: lines,
  });
  return tail.map((l) => l.t);
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

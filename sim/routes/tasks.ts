/** Task endpoints: always addressed to the node inside the UPID. */
import {
  bool,
  int,
  type Route,
  type SimRequest,
  str,
  withTotal,
} from "../router.ts";
import { SimError, type Task } from "../state.ts";

function taskOf(req: SimRequest): Task {
  const upid = str(req, "upid")!;
  const node = str(req, "node")!;
  req.cluster.node(node);
  if (!/^UPID:/.test(upid) || upid.split(":").length !== 9) {
    throw SimError.param({ upid: "unable to parse worker upid" });
  }
  const t = req.cluster.tasks.get(upid);
  if (!t || t.node !== node) throw SimError.param({ upid: "no such task" });
  return t;
}

/** What a task's list entry and its status both start with. */
function taskFields(t: Task, user: string): Record<string, unknown> {
  return {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user,
  };
}

function listEntry(t: Task): Record<string, unknown> {
  const e = taskFields(t, t.tokenid ? `${t.user}!${t.tokenid}` : t.user);
  if (t.status === "stopped") {
    e.endtime = t.endtime;
    e.status = t.exitstatus;
  }
  return e;
}

export const TASK_ROUTES: Route[] = [
  {
    method: "GET",
    path: "/nodes/{node}/tasks/{upid}/status",
    handler: (req) => {
      const t = taskOf(req);
      const e: Record<string, unknown> = {
        ...taskFields(t, t.user),
        status: t.status,
      };
      if (t.tokenid) e.tokenid = t.tokenid;
      if (t.status === "stopped") e.exitstatus = t.exitstatus;
      return e;
    },
  },
  {
    method: "GET",
    path: "/nodes/{node}/tasks/{upid}/log",
    handler: (req) => {
      const t = taskOf(req);
      const start = int(req, "start") ?? 0;
      const limit = int(req, "limit") ?? 50;
      if (bool(req, "download")) return t.log.join("\n");
      const lines = t.log.length ? t.log : ["no content"];
      const slice = limit === 0
        ? lines.slice(start)
        : lines.slice(start, start + limit);
      return withTotal(
        slice.map((text, i) => ({ n: start + i + 1, t: text })),
        lines.length,
      );
    },
  },
  {
    method: "DELETE",
    path: "/nodes/{node}/tasks/{upid}",
    handler: (req) => {
      const t = taskOf(req);
      if (t.status === "running") {
        t.status = "stopped";
        t.exitstatus = "interrupted by signal";
        t.log.push("received interrupt", "TASK ERROR: interrupted by signal");
        t.endtime = Math.floor(Date.now() / 1000);
      }
      return null;
    },
  },
  {
    method: "GET",
    path: "/nodes/{node}/tasks",
    handler: (req) => {
      const node = str(req, "node")!;
      req.cluster.node(node);
      const vmid = str(req, "vmid");
      const start = int(req, "start") ?? 0;
      const limit = int(req, "limit") ?? 50;
      const list = [...req.cluster.tasks.values()]
        .filter((t) => t.node === node && (vmid === undefined || t.id === vmid))
        .sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);
      return withTotal(
        list.slice(start, start + limit).map(listEntry),
        list.length,
      );
    },
  },
  {
    method: "GET",
    path: "/cluster/tasks",
    handler: (req) =>
      [...req.cluster.tasks.values()].sort((a, b) => b.pid - a.pid).slice(0, 50)
        .map(listEntry),
  },
];

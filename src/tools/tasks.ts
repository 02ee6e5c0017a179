/** The `tasks` toolset: following Proxmox tasks by UPID. */
import { z } from "zod";
import { readTask } from "../proxmox/api/tasks.ts";
import { defineTool, node, READ_ONLY, UpidArg } from "./define.ts";

const LOG_LINES = 20;

export const getTask = defineTool({
  name: "proxmox_get_task",
  toolset: "tasks",
  title: "Task status and log",
  description: "A task's status, exit status and log tail.",
  input: { upid: UpidArg },
  output: z.object({
    upid: z.string(),
    node: z.string(),
    type: z.string(),
    id: z.string(),
    user: z.string(),
    status: z.enum(["running", "stopped"]),
    exitstatus: z.string().optional(),
    ok: z.boolean().optional(),
    started: z.string(),
    log: z.array(z.string()),
  }),
  annotations: READ_ONLY,
  privileges: [node("Sys.Audit", { only: "tasks of other users" })],
  run: ({ upid }, { pve }) => readTask(pve, upid, LOG_LINES),
});

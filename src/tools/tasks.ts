/** Following Proxmox tasks by UPID. */
import { z } from "zod";
import { ToolError } from "../proxmox/errors.ts";
import {
  parseUpid,
  taskLogTail,
  type TaskStatus,
  taskSucceeded,
} from "../proxmox/tasks.ts";
import { defineTool } from "./define.ts";

const LOG_LINES = 20;

export const getTask = defineTool({
  name: "proxmox_get_task",
  toolset: "tasks",
  title: "Task status and log",
  description: "A task's status, exit status and log tail.",
  input: { upid: z.string() },
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
  annotations: {
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ upid }, { pve }) {
    const u = parseUpid(upid.trim());
    if (!u) {
      throw new ToolError(
        `Not a UPID: '${upid}'. A UPID looks like UPID:pve1:0000A1B2:0012C3D4:66A1B2C3:qmstart:100:root@pam: (tools that start tasks return it)`,
      );
    }
    const path = `/nodes/${u.node}/tasks/${encodeURIComponent(u.upid)}`;
    const [st, log] = await Promise.all([
      pve.get<TaskStatus>(`${path}/status`),
      taskLogTail(pve, u.upid, LOG_LINES),
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
  },
});

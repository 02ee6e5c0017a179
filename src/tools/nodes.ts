/** The `nodes` toolset: cluster nodes. */
import { z } from "zod";
import { listNodes as readNodes } from "../proxmox/api/nodes.ts";
import {
  across,
  defineTool,
  fieldsOf,
  gib,
  node,
  READ_ONLY,
} from "./define.ts";

const pct = (f: unknown): number | undefined =>
  typeof f === "number" ? Math.round(f * 1000) / 10 : undefined;

export const listNodes = defineTool({
  name: "proxmox_list_nodes",
  toolset: "nodes",
  title: "List cluster nodes",
  description: "Cluster nodes: status, CPU, memory, disk, uptime.",
  input: {},
  output: z.object({
    nodes: z.array(z.object({
      node: z.string(),
      status: z.string(),
      // What a node reports only while it is online.
      ...fieldsOf(
        z.number().optional(),
        "cpu_pct",
        "cores",
        "mem_gib",
        "maxmem_gib",
        "disk_gib",
        "maxdisk_gib",
        "uptime_s",
      ),
    })),
  }),
  annotations: READ_ONLY,
  privileges: [node("Sys.Audit")],
  listing: true,
  async run(_args, ctx) {
    // Every cluster the call covers (rows get `cluster`), or the one it names.
    const { rows: nodes, unreachable } = await across(
      ctx,
      async (pve) =>
        (await readNodes(pve)).map((n) => ({
          node: String(n.node),
          status: n.status,
          cpu_pct: pct(n.cpu),
          cores: n.maxcpu,
          mem_gib: gib(n.mem),
          maxmem_gib: gib(n.maxmem),
          disk_gib: gib(n.disk),
          maxdisk_gib: gib(n.maxdisk),
          uptime_s: n.uptime,
        })),
    );
    return unreachable ? { nodes, unreachable } : { nodes };
  },
});

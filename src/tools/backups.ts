/** Backups (vzdump) of VMs and containers: create, list, restore. */
import { z } from "zod";
import type { PveClient } from "../proxmox/client.ts";
import { PveError, ToolError } from "../proxmox/errors.ts";
import { taskLogTail } from "../proxmox/tasks.ts";
import {
  defineTool,
  GuestNode,
  NodeName,
  TaskOutcome,
  TimeoutS,
  Vmid,
  Wait,
} from "./define.ts";
import { isoTime, storageContent, storageLocations } from "./storage.ts";

const MIB = 1024 ** 2;
const round1 = (n: number) => Math.round(n * 10) / 10;

/**
 * What a backup archive holds, from its name: `vzdump-qemu-100-...`,
 * `vzdump-lxc-101-...` (`openvz` is an old container backup), or a PBS
 * snapshot `backup/vm/100/...` / `backup/ct/101/...`.
 */
export function archiveInfo(
  volid: string,
): { type: "qemu" | "lxc"; vmid: number } | undefined {
  const m = /vzdump-(qemu|lxc|openvz)-(\d+)-/.exec(volid) ??
    /:backup\/(vm|ct)\/(\d+)\//.exec(volid);
  if (!m) return undefined;
  return {
    type: m[1] === "qemu" || m[1] === "vm" ? "qemu" : "lxc",
    vmid: Number(m[2]),
  };
}

/** The volid of the archive a vzdump task made, from its log. */
export function archiveFromLog(
  lines: string[],
  storage: string,
): string | undefined {
  for (const line of lines) {
    const file = /creating vzdump archive '([^']+)'/.exec(line)?.[1];
    if (file) return `${storage}:backup/${file.split("/").pop()}`;
    const pbs = /creating Proxmox Backup Server archive '([^']+)'/.exec(line)
      ?.[1];
    if (pbs) return `${storage}:backup/${pbs}`;
  }
  return undefined;
}

/** vzdump's notes-template is one line: `\n` for newlines, `\\` for `\`. */
const notesTemplate = (notes: string) =>
  notes.replaceAll("\\", "\\\\").replace(/\r?\n/g, "\\n");

export const createBackup = defineTool({
  name: "proxmox_create_backup",
  toolset: "backups",
  title: "Back up a guest",
  description: "Back up a guest (vzdump); returns the archive volid.",
  input: {
    vmid: Vmid,
    storage: z.string().optional(),
    mode: z.enum(["snapshot", "suspend", "stop"]).optional(),
    compress: z.enum(["zstd", "gzip", "lzo", "none"]).optional(),
    notes: z.string().optional(),
    node: GuestNode,
    wait: Wait,
    timeout_s: TimeoutS(3600),
  },
  output: TaskOutcome.extend({
    volid: z.string().optional(),
    storage: z.string(),
  }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: true,
  },
  async run(a, ctx) {
    const g = await ctx.pve.locate(a.vmid, a.node);
    const storage = a.storage ??
      (await storageLocations(ctx.pve, { node: g.node, content: "backup" }))[0]
        ?.storage;
    if (!storage) {
      throw new ToolError(
        `Node '${g.node}' has no available storage for backups: add the content type 'backup' to a storage, or pass storage`,
      );
    }
    const upid = await ctx.pve.post<string>(`/nodes/${g.node}/vzdump`, {
      vmid: String(g.vmid),
      storage,
      mode: a.mode ?? "snapshot",
      compress: a.compress === "none" ? "0" : a.compress ?? "zstd",
      // A one-off backup must not prune older archives (vzdump's default).
      remove: false,
      "notes-template": a.notes === undefined
        ? undefined
        : notesTemplate(a.notes),
    });
    if (!upid.startsWith("UPID:")) {
      throw new ToolError(
        `Proxmox backed up nothing: guest ${g.vmid} is no longer on node '${g.node}'; try again`,
      );
    }
    const what = `back up ${g.type === "qemu" ? "VM" : "CT"} ${g.vmid}`;
    const outcome = await ctx.task(upid, {
      wait: a.wait,
      timeoutS: a.timeout_s,
      what,
    });
    if (outcome.status === "running") return { ...outcome, storage };
    let volid = archiveFromLog(
      await taskLogTail(ctx.pve, upid, 1000),
      storage,
    );
    if (!volid) {
      // Fall back to the newest archive of this guest on the storage.
      const list = await storageContent(ctx.pve, {
        node: g.node,
        storage,
        shared: false,
        content: [],
      }, { content: "backup", vmid: g.vmid });
      volid = list.sort((x, y) => (y.ctime ?? 0) - (x.ctime ?? 0))[0]?.volid;
    }
    return { ...outcome, volid, storage };
  },
});

const Backup = z.object({
  volid: z.string(),
  vmid: z.number().optional(),
  type: z.enum(["qemu", "lxc"]).optional(),
  size_mib: z.number(),
  time: z.string().optional(),
  notes: z.string().optional(),
  protected: z.boolean(),
  storage: z.string(),
  node: z.string().optional(),
});

export const listBackups = defineTool({
  name: "proxmox_list_backups",
  toolset: "backups",
  title: "List backups",
  description: "Backup archives, newest first.",
  input: {
    vmid: Vmid.optional(),
    storage: z.string().optional(),
    node: NodeName.optional(),
  },
  output: z.object({ count: z.number(), backups: z.array(Backup) }),
  annotations: {
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ vmid, storage, node }, { pve }) {
    const places = await storageLocations(pve, {
      node,
      storage,
      content: "backup",
    });
    const lists = await Promise.all(
      places.map((at) => storageContent(pve, at, { content: "backup", vmid })),
    );
    const backups: z.infer<typeof Backup>[] = lists.flatMap((list, i) =>
      list.map((v) => {
        const info = archiveInfo(v.volid);
        return {
          volid: v.volid,
          vmid: v.vmid ?? info?.vmid,
          type: info?.type ??
            (v.subtype === "qemu" || v.subtype === "lxc"
              ? v.subtype
              : undefined),
          size_mib: round1((v.size ?? 0) / MIB),
          time: isoTime(v.ctime),
          notes: v.notes,
          protected: Number(v.protected ?? 0) === 1,
          storage: places[i].storage,
          // Local storage: the archive exists on this node only.
          node: places[i].shared ? undefined : places[i].node,
        };
      })
    );
    backups.sort((x, y) => (y.time ?? "").localeCompare(x.time ?? ""));
    return { count: backups.length, backups };
  },
});

/**
 * A node that holds an archive: any node for shared storage (the backed-up
 * guest's first), else the node whose storage lists it.
 */
async function archiveNode(
  pve: PveClient,
  volid: string,
  prefer?: string,
): Promise<string> {
  const places = (await storageLocations(pve, {
    storage: volid.split(":")[0],
    content: "backup",
  })).sort((x, y) => Number(y.node === prefer) - Number(x.node === prefer));
  if (places[0].shared) return places[0].node;
  for (const at of places) {
    const list = await storageContent(pve, at, { content: "backup" });
    if (list.some((v) => v.volid === volid)) return at.node;
  }
  throw new ToolError(
    `Backup '${volid}' is on no online node: take volids from proxmox_list_backups`,
  );
}

export const restoreBackup = defineTool({
  name: "proxmox_restore_backup",
  toolset: "backups",
  title: "Restore a backup",
  description:
    "Restore a backup as a new guest, or over a stopped one with force.",
  input: {
    volid: z.string(),
    vmid: Vmid.optional(),
    storage: z.string().optional(),
    force: z.boolean().optional(),
    start: z.boolean().optional(),
    node: NodeName.optional(),
    wait: Wait,
    timeout_s: TimeoutS(3600),
  },
  output: TaskOutcome.extend({
    vmid: z.number(),
    node: z.string(),
    type: z.enum(["qemu", "lxc"]),
  }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: true,
  },
  async run(a, ctx) {
    const { pve } = ctx;
    const info = archiveInfo(a.volid);
    if (!info) {
      throw new ToolError(
        `'${a.volid}' is not a vzdump backup archive: take volids from proxmox_list_backups`,
      );
    }
    const guests = await pve.guests();
    const existing = a.vmid === undefined
      ? undefined
      : guests.find((r) => Number(r.vmid) === a.vmid);
    const source = guests.find((r) => Number(r.vmid) === info.vmid);
    // Node: the overwritten guest's, else one that holds the archive.
    const node = a.node ?? (existing?.node as string | undefined) ??
      await archiveNode(pve, a.volid, source?.node as string | undefined);
    const vmid = a.vmid ?? Number(await pve.get("/cluster/nextid"));
    // PVE puts a container's volumes on `storage`, which defaults to `local`
    // (rarely able to hold containers): default to a rootdir storage instead.
    const storage = a.storage ??
      (info.type === "lxc"
        ? (await storageLocations(pve, { node, content: "rootdir" }))[0]
          ?.storage
        : undefined);
    const params = info.type === "qemu"
      ? { vmid, archive: a.volid }
      : { vmid, ostemplate: a.volid, restore: true };
    const kindOf = info.type === "qemu" ? "VM" : "CT";
    let upid: string;
    try {
      upid = await pve.post<string>(`/nodes/${node}/${info.type}`, {
        ...params,
        storage,
        force: a.force,
        start: a.start,
      });
    } catch (e) {
      if (e instanceof PveError && /already exists/.test(e.pveMessage)) {
        throw new ToolError(
          `${e.pveMessage}: pass force: true to overwrite it (it must be stopped), or omit vmid to restore to a new one`,
        );
      }
      if (e instanceof PveError && /overwrite running/.test(e.pveMessage)) {
        throw new ToolError(
          `${e.pveMessage}: stop ${kindOf} ${vmid} first, then restore with force: true`,
        );
      }
      throw e;
    }
    const outcome = await ctx.task(upid, {
      wait: a.wait,
      timeoutS: a.timeout_s,
      what: `restore ${a.volid} to ${kindOf} ${vmid}`,
    }).catch((e: unknown) => {
      if (e instanceof ToolError && /vm is running/.test(e.message)) {
        throw new ToolError(
          `${e.message}: stop VM ${vmid} first, then restore with force: true`,
          e.detail,
        );
      }
      throw e;
    });
    pve.invalidate();
    return { ...outcome, vmid, node, type: info.type };
  },
});

/**
 * Guest lifecycle: start, stop, update, migrate and delete QEMU VMs and LXC
 * containers. Each tool locates the guest (one /cluster/resources call),
 * checks what PVE would refuse or do silently, calls PVE and follows the task.
 */
import { z } from "zod";
import type { GuestRef, PveClient } from "../proxmox/client.ts";
import { ToolError } from "../proxmox/errors.ts";
import {
  defineTool,
  GuestNode,
  NodeName,
  TaskOutcome,
  TimeoutS,
  type ToolContext,
  Vmid,
  Wait,
} from "./define.ts";

/** `VM 100 (web-01)` / `CT 200 (dns-01)`, as messages name a guest. */
export function label(g: Pick<GuestRef, "type" | "vmid" | "name">): string {
  return `${g.type === "qemu" ? "VM" : "CT"} ${g.vmid}${
    g.name ? ` (${g.name})` : ""
  }`;
}

interface Current {
  status: string;
  qmpstatus?: string;
  lock?: string;
}

/** The guest's live status (cluster/resources may lag a few seconds). */
export function current(pve: PveClient, g: GuestRef): Promise<Current> {
  return pve.get<Current>(`${g.path}/status/current`);
}

/** Advice added to a failure whose message matches. */
export interface Hint {
  when: RegExp;
  text: string;
}

/** PVE's words with per-parameter errors, or a task failure's message. */
function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e ?? "");
}

/**
 * Rethrows a failure with what to do about it: a lock names its cause and
 * the way out. The task detail (UPID, exit status, log tail) is kept.
 */
export function explain(e: unknown, g: GuestRef, hint?: Hint): never {
  const msg = messageOf(e);
  const lock = /is locked \(([\w-]+)\)/.exec(msg)?.[1];
  const extra = lock
    ? `${
      label(g)
    } is locked (${lock}) by another operation: wait for it to end and retry; a stale lock is cleared with '${
      g.type === "qemu" ? "qm" : "pct"
    } unlock ${g.vmid}' on ${g.node}`
    : hint?.when.test(msg)
    ? hint.text
    : undefined;
  if (!extra || !(e instanceof Error)) throw e;
  const detail = e instanceof ToolError ? e.detail : undefined;
  throw new ToolError(`${e.message}. ${extra}`, detail);
}

const Guest = {
  vmid: z.number(),
  node: z.string(),
  type: z.enum(["qemu", "lxc"]),
};

/** Result of a power, migrate or delete call: the guest and its task. */
const GuestTask = z.object({
  ...Guest,
  state: z.string().optional(),
  task: TaskOutcome.optional(),
  note: z.string().optional(),
});
type GuestTask = z.infer<typeof GuestTask>;

function base(g: GuestRef): Pick<GuestTask, "vmid" | "node" | "type"> {
  return { vmid: g.vmid, node: g.node, type: g.type };
}

/** Starts a task and follows it; PVE failures get explained. */
async function follow(
  ctx: ToolContext,
  g: GuestRef,
  call: () => Promise<unknown>,
  opts: { wait: boolean; timeoutS: number; what: string; hint?: Hint },
): Promise<TaskOutcome> {
  try {
    const upid = String(await call());
    return await ctx.task(upid, opts);
  } catch (e) {
    explain(e, g, opts.hint);
  }
}

const POWER = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: true,
};

export const startVm = defineTool({
  name: "proxmox_start_vm",
  toolset: "vms",
  title: "Start a VM or container",
  description: "Start or resume a guest.",
  input: {
    vmid: Vmid,
    node: GuestNode,
    wait: Wait,
    timeout_s: TimeoutS(120),
  },
  output: GuestTask,
  annotations: POWER,
  async run({ vmid, node, wait, timeout_s }, ctx) {
    const g = await ctx.pve.locate(vmid, node);
    if (g.template) {
      throw new ToolError(
        `${
          label(g)
        } is a template and cannot be started: clone it with proxmox_create_vm_from_template`,
      );
    }
    const already = { ...base(g), state: "running", note: "Already running" };
    const cur = await current(ctx.pve, g);
    const opts = { wait, timeoutS: timeout_s, what: `start ${label(g)}` };
    if (cur.status === "running") {
      if (cur.qmpstatus !== "paused") return already;
      const task = await follow(
        ctx,
        g,
        () => ctx.pve.post(`${g.path}/status/resume`),
        { ...opts, what: `resume ${label(g)}` },
      );
      return { ...base(g), state: stateAfter(task, "running"), task };
    }
    try {
      const task = await follow(
        ctx,
        g,
        () => ctx.pve.post(`${g.path}/status/start`),
        opts,
      );
      return { ...base(g), state: stateAfter(task, "running"), task };
    } catch (e) {
      // Started by someone else meanwhile: QEMU says so in the task, LXC sync.
      if (/: (VM|CT) \d+ already running$/m.test(messageOf(e))) return already;
      throw e;
    }
  },
});

function stateAfter(task: TaskOutcome, state: string): string | undefined {
  return task.status === "running" ? undefined : state;
}

export const stopVm = defineTool({
  name: "proxmox_stop_vm",
  toolset: "vms",
  title: "Shut down a VM or container",
  description: "Shut down a guest; force=true hard-stops if needed.",
  input: {
    vmid: Vmid,
    node: GuestNode,
    force: z.boolean().default(false),
    wait: Wait,
    timeout_s: TimeoutS(120),
  },
  output: GuestTask,
  annotations: { ...POWER, destructiveHint: true },
  async run({ vmid, node, force, wait, timeout_s }, ctx) {
    const g = await ctx.pve.locate(vmid, node);
    const already = { ...base(g), state: "stopped", note: "Already stopped" };
    const cur = await current(ctx.pve, g);
    if (cur.status !== "running") return already;
    if (cur.qmpstatus === "paused" && !force) {
      throw new ToolError(
        `${
          label(g)
        } is paused and cannot shut down cleanly: use force: true to stop it`,
      );
    }
    // PVE's shutdown timeout leaves room to see a forced stop finish.
    const timeout = Math.max(1, Math.floor(timeout_s * 0.8));
    try {
      const task = await follow(
        ctx,
        g,
        () =>
          ctx.pve.post(`${g.path}/status/shutdown`, {
            timeout,
            forceStop: force || undefined,
          }),
        {
          wait,
          timeoutS: timeout_s,
          what: `shut down ${label(g)}`,
          hint: {
            when: /powerdown failed|did not stop/,
            text:
              `The guest did not shut down within ${timeout} s: retry with force: true (hard stop after the timeout) or a longer timeout_s`,
          },
        },
      );
      return { ...base(g), state: stateAfter(task, "stopped"), task };
    } catch (e) {
      if (g.type === "lxc" && /: CT \d+ not running$/.test(messageOf(e))) {
        return already; // LXC answers a stop of a stopped CT with a sync error
      }
      throw e;
    }
  },
});

export const updateVm = defineTool({
  name: "proxmox_update_vm",
  toolset: "vms",
  title: "Change a VM's or container's resources",
  description: "Change cores, memory, name, description, tags.",
  input: {
    vmid: Vmid,
    node: GuestNode,
    cores: z.number().int().optional(),
    memory_mib: z.number().int().optional(),
    name: z.string().optional(),
    description: z.string().optional(),
    tags: z.string().optional(),
    restart: z.boolean().default(true),
    wait: Wait,
    timeout_s: TimeoutS(300),
  },
  output: z.object({
    ...Guest,
    applied: z.array(z.string()),
    pending: z.array(z.string()),
    restarted: z.boolean(),
    task: TaskOutcome.optional(),
    note: z.string().optional(),
  }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run(args, ctx) {
    const { pve } = ctx;
    const g = await pve.locate(args.vmid, args.node);
    const qemu = g.type === "qemu";
    const params: Record<string, string | number | undefined> = {
      cores: args.cores,
      memory: qemu && args.memory_mib ? String(args.memory_mib) : undefined,
      description: args.description,
      tags: args.tags,
    };
    if (!qemu) params.memory = args.memory_mib;
    params[qemu ? "name" : "hostname"] = args.name;
    const keys = Object.keys(params).filter((k) => params[k] !== undefined);
    if (!keys.length) {
      throw new ToolError(
        "Nothing to change: give cores, memory_mib, name, description or tags",
      );
    }
    try {
      await pve.put(`${g.path}/config`, params);
    } catch (e) {
      explain(e, g);
    }
    const stillPending = async () => {
      const list = await pve.get<{ key: string; pending?: unknown }[]>(
        `${g.path}/pending`,
      );
      return keys.filter((k) =>
        list.some((p) => p.key === k && p.pending !== undefined)
      );
    };
    const pending = await stillPending();
    const out = {
      ...base(g),
      applied: keys.filter((k) => !pending.includes(k)),
      pending,
      restarted: false,
    };
    if (!pending.length) return out;
    if (!args.restart) {
      return {
        ...out,
        note: `${
          pending.join(", ")
        } take effect at the next restart (restart: true reboots now)`,
      };
    }
    let task: TaskOutcome;
    try {
      task = await follow(
        ctx,
        g,
        () => pve.post(`${g.path}/status/reboot`),
        {
          wait: args.wait,
          timeoutS: args.timeout_s,
          what: `reboot ${label(g)}`,
        },
      );
    } catch (e) {
      throw new ToolError(
        `Changed ${label(g)} (applied: ${
          out.applied.join(", ") || "none"
        }; pending: ${
          pending.join(", ")
        }), but the reboot to apply them failed: ${(e as Error).message}`,
        e instanceof ToolError ? e.detail : undefined,
      );
    }
    if (task.status === "running") return { ...out, task };
    const left = await stillPending();
    return {
      ...out,
      applied: keys.filter((k) => !left.includes(k)),
      pending: left,
      restarted: true,
      task,
    };
  },
});

export const migrateVm = defineTool({
  name: "proxmox_migrate_vm",
  toolset: "vms",
  title: "Migrate a VM or container",
  description: "Move a guest to another node.",
  input: {
    vmid: Vmid,
    node: GuestNode,
    target: NodeName,
    wait: Wait,
    timeout_s: TimeoutS(600),
  },
  output: GuestTask.extend({ from: z.string(), mode: z.string() }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ vmid, node, target, wait, timeout_s }, ctx) {
    const { pve } = ctx;
    const g = await pve.locate(vmid, node);
    if (g.node === target) {
      return {
        ...base(g),
        from: g.node,
        mode: "none",
        note: `Already on ${target}`,
      };
    }
    const nodes = await pve.get<{ node: string; status: string }[]>("/nodes");
    const online = nodes.filter((n) => n.status === "online").map((n) => n.node)
      .sort();
    const t = nodes.find((n) => n.node === target);
    if (!t || t.status !== "online") {
      throw new ToolError(
        `Node '${target}' is ${
          t ? t.status : "not in this cluster"
        }: cannot migrate there. Online nodes: ${online.join(", ")}`,
      );
    }
    const running = (await current(pve, g)).status === "running";
    const mode = !running
      ? "offline"
      : g.type === "qemu"
      ? "online"
      : "restart";
    const params = mode === "online"
      ? { target, online: true, "with-local-disks": true }
      : mode === "restart"
      ? { target, restart: true }
      : { target };
    const task = await follow(
      ctx,
      g,
      () => pve.post(`${g.path}/migrate`, params),
      { wait, timeoutS: timeout_s, what: `migrate ${label(g)} to ${target}` },
    );
    const done = task.status !== "running";
    return {
      ...base(g),
      node: done ? target : g.node,
      from: g.node,
      mode,
      state: done ? (running ? "running" : "stopped") : undefined,
      task,
    };
  },
});

export const deleteVm = defineTool({
  name: "proxmox_delete_vm",
  toolset: "vms",
  title: "Delete a stopped VM or container",
  description: "Destroy a stopped guest and its disks.",
  input: {
    vmid: Vmid,
    node: GuestNode,
    wait: Wait,
    timeout_s: TimeoutS(300),
  },
  output: GuestTask.extend({ name: z.string().optional() }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: true,
  },
  async run({ vmid, node, wait, timeout_s }, ctx) {
    const { pve } = ctx;
    const g = await pve.locate(vmid, node);
    const refuse = () =>
      new ToolError(
        `${
          label(g)
        } is running: stop it first with proxmox_stop_vm (delete never stops a guest)`,
      );
    if ((await current(pve, g)).status === "running") throw refuse();
    try {
      const task = await follow(
        ctx,
        g,
        () =>
          pve.delete(`/nodes/${g.node}/${g.type}/${g.vmid}`, {
            purge: true,
            "destroy-unreferenced-disks": true,
          }),
        { wait, timeoutS: timeout_s, what: `delete ${label(g)}` },
      );
      return {
        ...base(g),
        name: g.name,
        state: stateAfter(task, "deleted"),
        task,
      };
    } catch (e) {
      if (/is running|container is running/.test(messageOf(e))) throw refuse();
      throw e;
    }
  },
});

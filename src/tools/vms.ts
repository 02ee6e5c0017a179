/**
 * The `vms` toolset: QEMU VMs and LXC containers. Inventory and statistics,
 * start, stop, update, migrate and delete, and new guests (a VM cloned from a
 * cloud-init template, a container from an ostemplate). Each tool maps its
 * arguments to the API layer (every path and PVE quirk lives there), follows
 * the task it started and says what to do when PVE refuses.
 */
import { z } from "zod";
import {
  bootDisk,
  cloneTemplate,
  configureCloudInit,
  createContainer,
  freeVmid,
  guestPassword,
  ipSpec,
  isContainerTemplate,
  noContainerDirectories,
  pveSize,
  resizeDisk,
  rootdirStorage,
  sizeBytes,
  usesLocalStorage,
  wholeGib,
} from "../proxmox/api/create.ts";
import {
  currentStatus,
  getConfig,
  type GuestRef,
  hourStats,
  listGuests,
  locate,
  lockAdvice,
  lockOf,
  named,
  newGuest,
  pendingKeys,
  type RrdPoint,
  updateConfig,
  waitForAddresses,
} from "../proxmox/api/guests.ts";
import { listNodes } from "../proxmox/api/nodes.ts";
import {
  destroy,
  migrate,
  migrationMode,
  reboot,
  refusedAsRunning,
  resume,
  shutdown,
  shutdownTimedOut,
  start,
  wasRunning,
  wasStopped,
} from "../proxmox/api/power.ts";
import {
  across,
  AddressList,
  CREATES,
  defineTool,
  DESTRUCTIVE,
  DnsName,
  fieldsOf,
  GIB,
  GuestNode,
  IDEMPOTENT_CHANGE,
  IDEMPOTENT_DESTRUCTIVE,
  messageOf,
  MIB,
  mib,
  newVm,
  NodeName,
  page,
  Paging,
  READ_ONLY,
  round,
  startTask,
  storage,
  StorageId,
  TagList,
  taskFollower,
  TaskOutcome,
  TaskWait,
  type ToolContext,
  ToolError,
  UnreachableClusters,
  vm,
  Vmid,
} from "./define.ts";

const num = (v: unknown): number =>
  typeof v === "number" ? v : Number(v ?? 0) || 0;

// ---------------------------------------------------------------- inventory

const LIST_COLUMNS = [
  "vmid",
  "name",
  "node",
  "type",
  "status",
  "template",
  "cpu_pct",
  "mem_mib",
  "maxmem_mib",
  "maxdisk_gib",
] as const;

export const listVms = defineTool({
  name: "proxmox_list_vms",
  toolset: "vms",
  title: "List VMs and containers",
  description: "All VMs and containers, one row each.",
  input: {
    node: NodeName.optional(),
    // /cluster/resources knows running, stopped, unknown (a paused VM is running).
    status: z.enum(["running", "stopped"]).optional(),
    type: z.enum(["qemu", "lxc"]).optional(),
    name_contains: z.string().max(64).optional(),
    ...Paging,
  },
  output: z.object({
    /** Guests that match the filters, on every page. */
    total: z.number(),
    columns: z.array(z.string()),
    rows: z.array(z.array(z.union([z.string(), z.number()]))),
    by_node: z.record(z.string(), z.number()),
    by_status: z.record(z.string(), z.number()),
    by_type: z.record(z.string(), z.number()),
    next_cursor: z.string().optional(),
    unreachable: UnreachableClusters,
  }),
  annotations: READ_ONLY,
  privileges: [vm("VM.Audit")],
  listing: true,
  async run({ cursor, limit, ...filter }, ctx) {
    const { node, status, type, name_contains } = filter;
    // One /cluster/resources request per cluster, whatever the page.
    const { rows: all, unreachable } = await across(ctx, listGuests);
    const many = ctx.clusters !== undefined;
    const needle = name_contains?.toLowerCase();
    const rows: (string | number)[][] = [];
    const by_node: Record<string, number> = {};
    const by_status: Record<string, number> = {};
    const by_type: Record<string, number> = {};
    const add = (m: Record<string, number>, k: string) => {
      m[k] = (m[k] ?? 0) + 1;
    };
    for (const r of all) {
      if (node && r.node !== node) continue;
      if (status && r.status !== status) continue;
      if (type && r.type !== type) continue;
      const nm = String(r.name ?? "");
      if (needle && !nm.toLowerCase().includes(needle)) continue;
      const row = [
        num(r.vmid),
        nm,
        String(r.node),
        String(r.type),
        String(r.status ?? "unknown"),
        num(r.template),
        round(num(r.cpu) * 100),
        Math.round(num(r.mem) / MIB),
        Math.round(num(r.maxmem) / MIB),
        round(num(r.maxdisk) / GIB),
      ];
      if (many) row.unshift(String(r.cluster ?? ""));
      rows.push(row);
      add(by_node, many ? `${r.cluster}/${r.node}` : String(r.node));
      add(by_status, String(r.status ?? "unknown"));
      add(by_type, String(r.type));
    }
    const columns = many ? ["cluster", ...LIST_COLUMNS] : [...LIST_COLUMNS];
    const envelope = {
      columns,
      by_node,
      by_status,
      by_type,
      ...(unreachable ? { unreachable } : {}),
    };
    // Sorted by (cluster, vmid): a vmid is unique within its cluster.
    const p = page(rows, {
      tool: "proxmox_list_vms",
      order: many
        ? [{ type: "string" }, { type: "number" }]
        : [{ type: "number" }],
      key: (row) => many ? [row[0], row[1]] : [row[0]],
      filter,
      at: ctx,
      cursor,
      limit,
      envelope,
    });
    return {
      total: p.total,
      columns,
      rows: p.rows,
      by_node,
      by_status,
      by_type,
      next_cursor: p.next_cursor,
      ...(unreachable ? { unreachable } : {}),
    };
  },
});

function average(points: RrdPoint[], key: keyof RrdPoint): number | undefined {
  const vals = points.map((p) => p[key]).filter((v): v is number =>
    typeof v === "number"
  );
  return vals.length
    ? vals.reduce((a, b) => a + b, 0) / vals.length
    : undefined;
}

export const getVmStats = defineTool({
  name: "proxmox_get_vm_stats",
  toolset: "vms",
  title: "Guest statistics",
  description: "A guest's CPU, memory, disk, net, uptime; 1 h averages.",
  input: { vmid: Vmid, node: GuestNode },
  output: z.object({
    vmid: z.number(),
    name: z.string().optional(),
    node: z.string(),
    type: z.enum(["qemu", "lxc"]),
    status: z.string(),
    qmpstatus: z.string().optional(),
    lock: z.string().optional(),
    // Its figures now; hour_avg averages the last hour.
    ...fieldsOf(
      z.number(),
      "uptime_s",
      "cpu_pct",
      "cores",
      "mem_mib",
      "maxmem_mib",
      "disk_gib",
      "maxdisk_gib",
      "netin_mib",
      "netout_mib",
      "diskread_mib",
      "diskwrite_mib",
    ),
    // Each average is left out when the hour has no value for it.
    hour_avg: z.object(fieldsOf(
      z.number().optional(),
      "cpu_pct",
      "mem_mib",
      "netin_kibps",
      "netout_kibps",
      "diskread_kibps",
      "diskwrite_kibps",
    )).optional(),
  }),
  annotations: READ_ONLY,
  privileges: [vm("VM.Audit")],
  async run({ vmid, node }, { pve }) {
    const g = await locate(pve, vmid, node);
    const [cur, rrd] = await Promise.all([
      currentStatus(pve, g),
      hourStats(pve, g),
    ]);
    const avg = (k: keyof RrdPoint, scale: number, d = 1) => {
      const a = average(rrd, k);
      return a === undefined ? undefined : round(a / scale, d);
    };
    const cpuAvg = average(rrd, "cpu");
    return {
      vmid,
      name: cur.name,
      node: g.node,
      type: g.type,
      status: String(cur.status),
      qmpstatus: cur.qmpstatus,
      lock: cur.lock,
      uptime_s: num(cur.uptime),
      cpu_pct: round(num(cur.cpu) * 100),
      cores: num(cur.cpus),
      mem_mib: Math.round(num(cur.mem) / MIB),
      maxmem_mib: Math.round(num(cur.maxmem) / MIB),
      disk_gib: round(num(cur.disk) / GIB),
      maxdisk_gib: round(num(cur.maxdisk) / GIB),
      netin_mib: mib(num(cur.netin)),
      netout_mib: mib(num(cur.netout)),
      diskread_mib: mib(num(cur.diskread)),
      diskwrite_mib: mib(num(cur.diskwrite)),
      hour_avg: rrd.length
        ? {
          cpu_pct: cpuAvg === undefined ? undefined : round(cpuAvg * 100),
          mem_mib: avg("mem", MIB, 0),
          netin_kibps: avg("netin", 1024),
          netout_kibps: avg("netout", 1024),
          diskread_kibps: avg("diskread", 1024),
          diskwrite_kibps: avg("diskwrite", 1024),
        }
        : undefined,
    };
  },
});

// ---------------------------------------------------------------- lifecycle

/** Advice added to a failure it fits. */
interface Hint {
  when: (e: unknown) => boolean;
  text: string;
}

/**
 * Rethrows a failure with what to do about it: a lock names its cause and
 * the way out. The task detail (UPID, exit status, log tail) is kept.
 */
function explain(e: unknown, g: GuestRef, hint?: Hint): never {
  const lock = lockOf(e);
  const extra = lock
    ? lockAdvice(g, lock)
    : hint?.when(e)
    ? hint.text
    : undefined;
  if (!extra || !(e instanceof Error)) throw e;
  throw new ToolError(
    `${e.message}. ${extra}`,
    e instanceof ToolError ? e.detail : undefined,
  );
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

/** The state a finished task leaves; unknown while it still runs. */
function stateAfter(task: TaskOutcome, state: string): string | undefined {
  return task.status === "running" ? undefined : state;
}

/**
 * Starts a power task and follows it to the state `already` names. When PVE
 * answers that the guest was in that state already (`was`), that is the
 * answer rather than an error.
 */
async function powerTask(
  ctx: ToolContext,
  g: GuestRef,
  call: () => Promise<string>,
  opts: {
    wait: boolean;
    timeoutS: number;
    what: string;
    hint?: Hint;
    already: GuestTask & { state: string };
    was?: (e: unknown) => boolean;
  },
): Promise<GuestTask> {
  try {
    const task = await follow(ctx, g, call, opts);
    return { ...base(g), state: stateAfter(task, opts.already.state), task };
  } catch (e) {
    if (opts.was?.(e)) return opts.already;
    throw e;
  }
}

/** Starts a task and follows it; PVE failures get explained. */
function follow(
  ctx: ToolContext,
  g: GuestRef,
  call: () => Promise<string>,
  opts: { wait: boolean; timeoutS: number; what: string; hint?: Hint },
): Promise<TaskOutcome> {
  const { wait, timeoutS, what, hint } = opts;
  return startTask(ctx, call, {
    wait,
    timeoutS,
    what,
    advise: (e) => explain(e, g, hint),
  });
}

export const startVm = defineTool({
  name: "proxmox_start_vm",
  toolset: "vms",
  title: "Start a VM or container",
  description: "Start or resume a guest.",
  input: {
    vmid: Vmid,
    node: GuestNode,
    ...TaskWait,
  },
  output: GuestTask,
  annotations: IDEMPOTENT_CHANGE,
  privileges: [vm("VM.PowerMgmt"), vm("VM.Audit")],
  async run({ vmid, node, wait, timeout_s }, ctx) {
    const { pve } = ctx;
    const g = await locate(pve, vmid, node);
    if (g.template) {
      throw new ToolError(
        `${
          named(g)
        } is a template and cannot be started: clone it with proxmox_create_vm_from_template`,
      );
    }
    const already = { ...base(g), state: "running", note: "Already running" };
    const cur = await currentStatus(pve, g);
    const opts = { wait, timeoutS: timeout_s, what: `start ${named(g)}` };
    if (cur.status === "running") {
      if (cur.qmpstatus !== "paused") return already;
      return await powerTask(ctx, g, () => resume(pve, g), {
        ...opts,
        what: `resume ${named(g)}`,
        already,
      });
    }
    // Started by someone else meanwhile: QEMU says so in the task, LXC sync.
    return await powerTask(ctx, g, () => start(pve, g), {
      ...opts,
      already,
      was: wasRunning,
    });
  },
});

export const stopVm = defineTool({
  name: "proxmox_stop_vm",
  toolset: "vms",
  title: "Shut down a VM or container",
  description: "Shut down a guest; force=true hard-stops if needed.",
  input: {
    vmid: Vmid,
    node: GuestNode,
    force: z.boolean().default(false),
    ...TaskWait,
  },
  output: GuestTask,
  annotations: IDEMPOTENT_DESTRUCTIVE,
  privileges: [vm("VM.PowerMgmt"), vm("VM.Audit")],
  async run({ vmid, node, force, wait, timeout_s }, ctx) {
    const { pve } = ctx;
    const g = await locate(pve, vmid, node);
    const already = { ...base(g), state: "stopped", note: "Already stopped" };
    const cur = await currentStatus(pve, g);
    if (cur.status !== "running") return already;
    if (cur.qmpstatus === "paused" && !force) {
      throw new ToolError(
        `${
          named(g)
        } is paused and cannot shut down cleanly: use force: true to stop it`,
      );
    }
    // PVE's shutdown timeout leaves room to see a forced stop finish.
    const timeout = Math.max(1, Math.floor(timeout_s * 0.8));
    return await powerTask(
      ctx,
      g,
      () => shutdown(pve, g, { timeoutS: timeout, force }),
      {
        wait,
        timeoutS: timeout_s,
        what: `shut down ${named(g)}`,
        hint: {
          when: shutdownTimedOut,
          text:
            `The guest did not shut down within ${timeout} s: retry with force: true (hard stop after the timeout) or a longer timeout_s`,
        },
        already,
        // LXC answers a stop of a stopped CT with a refused call.
        was: wasStopped,
      },
    );
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
    name: DnsName.optional(),
    description: z.string().optional(),
    tags: TagList.optional(),
    restart: z.boolean().default(true),
    ...TaskWait,
  },
  output: z.object({
    ...Guest,
    applied: z.array(z.string()),
    pending: z.array(z.string()),
    restarted: z.boolean(),
    task: TaskOutcome.optional(),
    note: z.string().optional(),
  }),
  annotations: IDEMPOTENT_DESTRUCTIVE,
  privileges: [
    vm(["VM.Config.CPU", "VM.Config.Memory", "VM.Config.Options"]),
    vm("VM.Audit"),
    vm("VM.PowerMgmt", { only: "restart" }),
  ],
  async run(args, ctx) {
    const { pve } = ctx;
    const g = await locate(pve, args.vmid, args.node);
    const qemu = g.type === "qemu";
    const params: Record<string, string | number | undefined> = {
      cores: args.cores,
      // QEMU's memory is a property string, LXC's an integer.
      memory: !qemu
        ? args.memory_mib
        : args.memory_mib
        ? String(args.memory_mib)
        : undefined,
      description: args.description,
      tags: args.tags,
    };
    params[qemu ? "name" : "hostname"] = args.name;
    const keys = Object.keys(params).filter((k) => params[k] !== undefined);
    if (!keys.length) {
      throw new ToolError(
        "Nothing to change: give cores, memory_mib, name, description or tags",
      );
    }
    try {
      await updateConfig(pve, g, params);
    } catch (e) {
      explain(e, g);
    }
    // From here on the change is made: a later failure says so.
    const partial = (done: string, e: unknown): ToolError =>
      new ToolError(
        `${done}; reading pending changes of ${named(g)} failed: ${
          messageOf(e)
        }. Changes that need a restart take effect at the next one; proxmox_get_vm_stats shows the guest`,
        {
          vmid: g.vmid,
          node: g.node,
          written: keys,
          ...(e instanceof ToolError ? e.detail : {}),
        },
      );
    let pending: string[];
    try {
      pending = await pendingKeys(pve, g, keys);
    } catch (e) {
      throw partial(`Configuration applied (${keys.join(", ")})`, e);
    }
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
      task = await follow(ctx, g, () => reboot(pve, g), {
        wait: args.wait,
        timeoutS: args.timeout_s,
        what: `reboot ${named(g)}`,
      });
    } catch (e) {
      throw new ToolError(
        `Changed ${named(g)} (applied: ${
          out.applied.join(", ") || "none"
        }; pending: ${
          pending.join(", ")
        }), but the reboot to apply them failed: ${messageOf(e)}`,
        e instanceof ToolError ? e.detail : undefined,
      );
    }
    if (task.status === "running") return { ...out, task };
    let left: string[];
    try {
      left = await pendingKeys(pve, g, keys);
    } catch (e) {
      throw partial(
        `Configuration applied (${keys.join(", ")}) and ${
          named(g)
        } rebooted (task ${task.upid})`,
        e,
      );
    }
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
    ...TaskWait,
  },
  output: GuestTask.extend({ from: z.string(), mode: z.string() }),
  annotations: IDEMPOTENT_CHANGE,
  privileges: [vm("VM.Migrate"), vm("VM.Audit")],
  async run({ vmid, node, target, wait, timeout_s }, ctx) {
    const { pve } = ctx;
    const g = await locate(pve, vmid, node);
    if (g.node === target) {
      return {
        ...base(g),
        from: g.node,
        mode: "none",
        note: `Already on ${target}`,
      };
    }
    const nodes = await listNodes(pve);
    const online = nodes.filter((n) => n.status === "online").map((n) =>
      n.node
    );
    const t = nodes.find((n) => n.node === target);
    if (!t || t.status !== "online") {
      throw new ToolError(
        `Node '${target}' is ${
          t ? t.status : "not in this cluster"
        }: cannot migrate there. Online nodes: ${online.join(", ")}`,
      );
    }
    const running = (await currentStatus(pve, g)).status === "running";
    const mode = migrationMode(g, running);
    const task = await follow(ctx, g, () => migrate(pve, g, target, mode), {
      wait,
      timeoutS: timeout_s,
      what: `migrate ${named(g)} to ${target}`,
    });
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
    ...TaskWait,
  },
  output: GuestTask.extend({ name: z.string().optional() }),
  annotations: DESTRUCTIVE,
  privileges: [vm("VM.Allocate"), vm("VM.Audit")],
  async run({ vmid, node, wait, timeout_s }, ctx) {
    const { pve } = ctx;
    const g = await locate(pve, vmid, node);
    const refuse = () =>
      new ToolError(
        `${
          named(g)
        } is running: stop it first with proxmox_stop_vm (delete never stops a guest)`,
      );
    if ((await currentStatus(pve, g)).status === "running") throw refuse();
    try {
      const task = await follow(ctx, g, () => destroy(pve, g), {
        wait,
        timeoutS: timeout_s,
        what: `delete ${named(g)}`,
      });
      return {
        ...base(g),
        name: g.name,
        state: stateAfter(task, "deleted"),
        task,
      };
    } catch (e) {
      if (refusedAsRunning(e)) throw refuse();
      throw e;
    }
  },
});

// ---------------------------------------------------------------- new guests

interface Step {
  step: string;
  upid: string;
  status: string;
}

/**
 * The steps of one create call: MCP progress (the step index plus a fraction
 * while its task runs, always increasing, `total` = steps), the tasks started
 * and the steps completed, for a report when a later one fails.
 */
function stepper(ctx: ToolContext, total: number) {
  let index = -1;
  let last = -1;
  const send = (message: string, p: number) => {
    last = Math.max(p, last + 0.001);
    return ctx.progress(message, Math.round(last * 1000) / 1000, total);
  };
  const steps: Step[] = [];
  const done: string[] = [];
  let current = "";
  const task = taskFollower(
    ctx.pve,
    ctx.signal,
    (message, p) =>
      send(message, index + Math.min(0.9, (p ?? 0) / ((p ?? 0) + 20_000))),
  );
  return {
    steps,
    /** Steps completed so far, in order. */
    done,
    /** The step under way (or the last one begun). */
    get current(): string {
      return current;
    },
    begin(name: string): Promise<void> {
      current = name;
      index++;
      return send(`step ${index + 1}/${total}: ${name}`, index);
    },
    /** Marks the step under way as completed. */
    finish(): void {
      if (current && !done.includes(current)) done.push(current);
    },
    /** Progress within the step under way (polls while waiting). */
    tick(message: string, fraction: number): Promise<void> {
      return send(`${current}: ${message}`, index + Math.min(0.9, fraction));
    },
    /** Begins a step that starts a task, and follows the task. */
    async run(
      name: string,
      what: string,
      call: () => Promise<string>,
      opts: { wait?: boolean; timeoutS: number },
    ): Promise<TaskOutcome> {
      await this.begin(name);
      return await this.follow(what, call, opts);
    },
    /** Starts the task of the step under way and follows it. */
    async follow(
      what: string,
      call: () => Promise<string>,
      opts: { wait?: boolean; timeoutS: number },
    ): Promise<TaskOutcome> {
      const name = current;
      const upid = await call();
      steps.push({ step: name, upid, status: "running" });
      const out = await task(upid, {
        wait: opts.wait ?? true,
        timeoutS: opts.timeoutS,
        what,
        step: name,
      });
      steps[steps.length - 1].status = out.status;
      if (out.status !== "running") this.finish();
      return out;
    },
  };
}

type Chain = ReturnType<typeof stepper>;

/**
 * The last steps of a create call: start the new guest, then wait for its
 * addresses (with progress while it polls). Returns the state it leaves the
 * guest in, with its addresses and a note: why there are none yet, or, while
 * the start task still runs (`starting`), how to follow the task.
 */
async function startAndAddresses(
  ctx: ToolContext,
  chain: Chain,
  o: { guest: GuestRef; wait: boolean; timeoutS: number; deadline: number },
): Promise<{ state: "starting" | "running"; ips?: string[]; note?: string }> {
  const g = o.guest;
  const started = await chain.run(
    "start",
    `start ${g.type === "lxc" ? "CT" : "VM"} ${g.vmid}`,
    () => start(ctx.pve, g),
    { wait: o.wait, timeoutS: o.timeoutS },
  );
  if (started.status === "running") {
    return {
      state: "starting",
      note: started.note ?? "Start still running: no addresses yet",
    };
  }
  await chain.begin("addresses");
  // A dry run started nothing: no address to wait for.
  const { ips, why }: { ips?: string[]; why?: string } = ctx.dryRun
    ? { why: "dry run" }
    : await waitForAddresses(ctx.pve, g, {
      deadline: o.deadline,
      signal: ctx.signal,
      onPoll: (polls) =>
        chain.tick(`waiting for an address (${polls})`, polls / (polls + 10)),
    });
  return { state: "running", ips, note: why && `No IPs yet: ${why}` };
}

/**
 * A step after the guest was created failed: say which guest exists, which
 * steps were applied, its state, and how to go on; keep the task detail
 * (UPID, log tail).
 */
async function createdButFailed(
  ctx: ToolContext,
  g: GuestRef,
  chain: Chain,
  e: unknown,
  extra: Record<string, unknown>,
): Promise<never> {
  let state = "in an unknown state";
  try {
    const c = await currentStatus(ctx.pve, g);
    state = c.lock ? `${c.status} and locked (${c.lock})` : c.status;
  } catch { /* keep "unknown" */ }
  const step = chain.current;
  throw new ToolError(
    `${named(g)} was created on ${g.node} (done: ${
      chain.done.join(", ")
    }) and is ${state}, but the ${step} step failed: ${
      messageOf(e)
    }. Fix the cause and finish it by hand, or remove it with proxmox_delete_vm`,
    {
      vmid: g.vmid,
      node: g.node,
      state,
      done_steps: chain.done,
      failed_step: step,
      ...(e instanceof ToolError ? e.detail : {}),
      ...extra,
    },
  );
}

const Created = z.object({
  vmid: z.number(),
  node: z.string(),
  name: z.string().optional(),
  state: z.string(),
  user: z.string().optional(),
  password: z.string().optional().describe("Generated; shown only once"),
  disk: z.string().optional(),
  ips: z.array(z.string()).optional(),
  tasks: z.array(
    z.object({ step: z.string(), upid: z.string(), status: z.string() }),
  ),
  note: z.string().optional(),
});

// Arguments both create tools take, in the order each advertises them.
const Resources = {
  cores: z.number().int().optional(),
  memory_mib: z.number().int().optional(),
};
const Login = {
  password: z.string().min(5).optional(),
  sshkeys: z.string().optional(),
};
const Address = {
  ip: z.string().default("dhcp"),
  gateway: z.string().optional(),
};
const StartAndWait = {
  start: z.boolean().optional(),
  ...TaskWait,
};

/** One timeout_s shared by every step of a call: seconds left, at least 1. */
function budget(timeoutS: number): { deadline: number; left: () => number } {
  const deadline = Date.now() + timeoutS * 1000;
  return {
    deadline,
    left: () => Math.max(1, Math.ceil((deadline - Date.now()) / 1000)),
  };
}

export const createVmFromTemplate = defineTool({
  name: "proxmox_create_vm_from_template",
  toolset: "vms",
  title: "Create a VM from a cloud-init template",
  description: "Clone a cloud-init VM template, resize, start, return IPs.",
  input: {
    template: Vmid,
    newid: Vmid.optional(),
    name: DnsName.optional(),
    node: NodeName.optional(),
    storage: StorageId.optional(),
    linked: z.boolean().optional(),
    disk_size: z.string().default("64G"),
    ...Resources,
    ciuser: z.string().optional(),
    ...Login,
    ...Address,
    nameserver: AddressList.optional(),
    searchdomain: z.string().optional(),
    ...StartAndWait,
  },
  output: Created,
  annotations: CREATES,
  privileges: [
    vm("VM.Clone"),
    vm("VM.Audit"),
    newVm("VM.Allocate"),
    newVm("VM.Config.Cloudinit"),
    newVm("VM.Config.Disk"),
    storage("Datastore.AllocateSpace"),
    newVm("VM.PowerMgmt", { only: "start" }),
  ],
  async run(a, ctx) {
    const want = sizeBytes(a.disk_size);
    if (!want) {
      throw new ToolError(
        `disk_size must look like 64G or 1T, not '${a.disk_size}'`,
      );
    }
    const ipconfig0 = ipSpec(a.ip, a.gateway);
    const { pve } = ctx;
    const { deadline, left } = budget(a.timeout_s);
    const { password, generated } = guestPassword(a.password);
    const tpl = await locate(pve, a.template);
    if (tpl.type !== "qemu" || !tpl.template) {
      throw new ToolError(
        `${
          named(tpl)
        } is not a QEMU template: pick one with proxmox_list_vms (template = 1)`,
      );
    }
    const node = a.node ?? tpl.node;
    const newid = await freeVmid(pve, a.newid);
    const chain = stepper(ctx, a.start ? 5 : 3);
    const result = (
      vm: { state: string; name?: string },
      extra: Partial<z.infer<typeof Created>> = {},
    ) => ({ vmid: newid, node, ...vm, tasks: chain.steps, ...extra });

    // 1. Clone. PVE removes a clone that fails, so nothing is left over.
    let out: TaskOutcome;
    try {
      out = await chain.run(
        "clone",
        `clone ${named(tpl)} to VM ${newid}`,
        () =>
          cloneTemplate(pve, tpl, {
            newid,
            name: a.name,
            linked: a.linked,
            storage: a.storage,
            node,
          }),
        { timeoutS: left() },
      );
    } catch (e) {
      explain(e, tpl, {
        when: usesLocalStorage,
        text:
          `Clone it on ${tpl.node} (omit node), then move it with proxmox_migrate_vm`,
      });
    }
    const vm = newGuest({ vmid: newid, node, type: "qemu", name: a.name });
    if (out.status === "running") {
      return result({ state: "locked (clone)" }, {
        note:
          `The clone is still running after ${a.timeout_s} s (follow it with proxmox_get_task); cloud-init, disk size and start were NOT applied to VM ${newid}: once the clone ends, remove it with proxmox_delete_vm and call again with a longer timeout_s (up to 3600), or finish it by hand`,
      });
    }

    const shown = generated ? password : undefined;
    let passwordSet = false;
    try {
      // 2. Cloud-init and resources (PUT: nothing to allocate).
      await chain.begin("configure");
      await configureCloudInit(pve, vm, {
        ciuser: a.ciuser,
        cipassword: password,
        sshkeys: a.sshkeys,
        ipconfig0,
        nameserver: a.nameserver,
        searchdomain: a.searchdomain,
        cores: a.cores,
        memoryMib: a.memory_mib,
      });
      passwordSet = true;
      chain.finish();

      // 3. The boot disk grows to disk_size; it never shrinks.
      await chain.begin("resize");
      // A dry run made no clone: the template's disks are what it would get.
      const cfg = await getConfig(pve, ctx.dryRun ? tpl : vm);
      vm.name = String(cfg.name ?? vm.name ?? "");
      const base = {
        name: vm.name,
        user: cfg.ciuser as string | undefined,
        password: shown,
      };
      const boot = bootDisk(cfg);
      let disk: string | undefined;
      let note: string | undefined;
      if (!boot) {
        chain.finish();
        note = "No boot disk found in the config: nothing resized";
      } else if (boot.size >= want) {
        chain.finish();
        disk = `${boot.key} ${pveSize(boot.size)}`;
        if (boot.size > want) {
          note = `${boot.key} is already ${pveSize(boot.size)}: not shrunk`;
        }
      } else {
        out = await chain.follow(
          `resize ${boot.key} of VM ${newid} to ${pveSize(want)}`,
          () => resizeDisk(pve, vm, boot.key, want),
          { timeoutS: left() },
        );
        disk = `${boot.key} ${pveSize(want)}`;
        if (out.status === "running") {
          return result({ ...base, state: "stopped" }, {
            disk,
            note:
              `The resize is still running (follow it with proxmox_get_task); VM ${newid} was not started: start it with proxmox_start_vm once the resize ends`,
          });
        }
      }
      if (!a.start) {
        return result({ ...base, state: "stopped" }, { disk, note });
      }

      // 4. Start, then 5. wait for the agent to report addresses.
      const { state, ...up } = await startAndAddresses(ctx, chain, {
        guest: vm,
        wait: a.wait,
        timeoutS: left(),
        deadline,
      });
      // Once the VM runs, the note is the resize's and the addresses'.
      if (state === "running") {
        up.note = [note, up.note].filter(Boolean).join("; ") || undefined;
      }
      return result({ ...base, state }, { disk, ...up });
    } catch (e) {
      return await createdButFailed(
        ctx,
        vm,
        chain,
        e,
        passwordSet && shown ? { password: shown } : {},
      );
    }
  },
});

export const createLxc = defineTool({
  name: "proxmox_create_lxc",
  toolset: "vms",
  title: "Create an LXC container",
  description: "New container from an ostemplate volid; returns its IPs.",
  input: {
    ostemplate: z.string(),
    node: NodeName,
    vmid: Vmid.optional(),
    hostname: DnsName.optional(),
    ...Login,
    ...Resources,
    swap_mib: z.number().int().optional(),
    storage: StorageId.optional(),
    disk_size: z.string().default("8G"),
    bridge: z.string().optional(),
    ...Address,
    privileged: z.boolean().optional(),
    nesting: z.boolean().optional(),
    ...StartAndWait,
  },
  output: Created,
  annotations: CREATES,
  privileges: [
    newVm("VM.Allocate"),
    storage("Datastore.AllocateSpace"),
    newVm("VM.PowerMgmt", { only: "start" }),
  ],
  async run(a, ctx) {
    const { pve } = ctx;
    const { deadline, left } = budget(a.timeout_s);
    if (!isContainerTemplate(a.ostemplate)) {
      throw new ToolError(
        `ostemplate must be a template volid like local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst (see the storage content), not '${a.ostemplate}'`,
      );
    }
    const bytes = sizeBytes(a.disk_size);
    if (!bytes) {
      throw new ToolError(`disk_size must look like 8G, not '${a.disk_size}'`);
    }
    const ip = ipSpec(a.ip, a.gateway);
    const { password, generated } = guestPassword(a.password);
    const storage = a.storage ?? await rootdirStorage(pve, a.node);
    const vmid = await freeVmid(pve, a.vmid);
    const shown = generated ? password : undefined;
    const chain = stepper(ctx, a.start ? 3 : 1);
    const ct = newGuest({
      vmid,
      node: a.node,
      type: "lxc",
      name: a.hostname ?? `CT${vmid}`,
    });
    const result = (
      state: string,
      extra: Partial<z.infer<typeof Created>> = {},
    ) => ({
      vmid,
      node: a.node,
      name: ct.name,
      state,
      user: "root",
      password: shown,
      disk: `rootfs ${wholeGib(bytes)}G`,
      tasks: chain.steps,
      ...extra,
    });

    // 1. Create. PVE removes a container whose create task fails.
    const out = await chain.run(
      "create",
      `create ${named(ct)}`,
      () =>
        createContainer(pve, {
          vmid,
          node: a.node,
          ostemplate: a.ostemplate,
          hostname: a.hostname,
          password,
          sshkeys: a.sshkeys,
          cores: a.cores,
          memoryMib: a.memory_mib,
          swapMib: a.swap_mib,
          storage,
          diskBytes: bytes,
          bridge: a.bridge ?? "vmbr0",
          ip,
          privileged: a.privileged,
          nesting: a.nesting,
        }),
      { timeoutS: left() },
    ).catch((e) =>
      explain(e, ct, {
        when: noContainerDirectories,
        text: "Pick a storage with content 'rootdir' (e.g. local-lvm)",
      })
    );
    if (out.status === "running") {
      return result("locked (create)", {
        note:
          `The create task is still running (follow it with proxmox_get_task); CT ${vmid} was not started: start it with proxmox_start_vm once the task ends`,
      });
    }
    if (!a.start) return result("stopped");
    try {
      const { state, ...up } = await startAndAddresses(ctx, chain, {
        guest: ct,
        wait: a.wait,
        timeoutS: left(),
        deadline,
      });
      return result(state, up);
    } catch (e) {
      return await createdButFailed(
        ctx,
        ct,
        chain,
        e,
        shown ? { password: shown } : {},
      );
    }
  },
});

/**
 * Tools as data: every tool is declared with defineTool() and registered by
 * one wrapper (server.ts) that logs, times and turns errors into results.
 */
import { z } from "zod";
import type { Config } from "../config.ts";
import { callRecord, type PveClient } from "../proxmox/client.ts";
import { reasonOf, ToolError } from "../proxmox/errors.ts";
import { type Format, FORMATS } from "../proxmox/path.ts";
import { type TaskResult, waitForTask } from "../proxmox/tasks.ts";
import type { ToolsetId } from "./toolsets.ts";
import type { Cluster, Unreachable } from "../clusters.ts";
export type { Cluster, Unreachable } from "../clusters.ts";

// What tool files need from below, so that they import only this module,
// the API layer and zod.
export { PveError, ToolError } from "../proxmox/errors.ts";
export type { PveErrorKind } from "../proxmox/errors.ts";
export { Toolset } from "./toolsets.ts";
export { page, pagedOutput, Paging } from "./paging.ts";
export {
  AGENT,
  newVm,
  node,
  type Privilege,
  standing,
  storage,
  vm,
} from "../safety/privileges.ts";
import type { Privilege } from "../safety/privileges.ts";

export interface Annotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ToolContext {
  pve: PveClient;
  /**
   * Set only when two or more clusters are configured and a listing's call
   * names none: the listing covers each of them (see across()).
   */
  clusters?: readonly Cluster[];
  /**
   * Set only when two or more clusters are configured and the call names
   * one: its name (a listing's cursor is bound to it, see paging.ts).
   */
  cluster?: string;
  config: Config;
  signal: AbortSignal;
  /** Sends an MCP progress notification when the client asked for them. */
  progress(message: string, progress?: number, total?: number): Promise<void>;
  /** Follows a task (see TaskOptions); throws ToolError when it failed. */
  task(upid: string, options: TaskOptions): Promise<TaskOutcome>;
  /** The tools this server offers (whoami reports on each). */
  tools?: readonly ToolDef[];
  /**
   * A dry run: writes are noted, not sent, and tasks count as done at once.
   * A tool that reads what an earlier write would have made reads its source
   * instead (a clone reads the template), and skips waiting on the guest.
   */
  dryRun?: boolean;
}

export interface TaskOptions {
  wait: boolean;
  /** Seconds to wait before returning the UPID as still running. */
  timeoutS: number;
  /** What the task does, for messages: "start VM 100". */
  what: string;
  /** Progress step label, e.g. "clone" (multi-step tools). */
  step?: string;
}

export interface ToolDef<
  // deno-lint-ignore no-explicit-any
  I extends z.ZodRawShape = any,
  // deno-lint-ignore no-explicit-any
  O extends z.ZodType = any,
> {
  name: string;
  toolset: ToolsetId;
  title: string;
  description: string;
  input: I;
  output: O;
  annotations: Annotations;
  /** The PVE privileges it needs (src/safety/privileges.ts); [] for none. */
  privileges?: readonly Privilege[];
  /**
   * A listing: with several clusters, a call that names none covers every
   * one (its rows get `cluster`, see across()); other tools need `cluster`.
   */
  listing?: boolean;
  run(args: z.infer<z.ZodObject<I>>, ctx: ToolContext): Promise<z.infer<O>>;
}

/**
 * Annotation presets: every tool takes one of these, so the hints a client's
 * approval UI reads are consistent across tools. Every tool talks to
 * Proxmox, so the world is always open.
 */
function hints(
  o: { readOnly?: boolean; destructive?: boolean; idempotent?: boolean },
): Annotations {
  return {
    readOnlyHint: o.readOnly ?? false,
    destructiveHint: o.destructive ?? false,
    idempotentHint: o.idempotent ?? false,
    openWorldHint: true,
  };
}
export const READ_ONLY: Annotations = hints({
  readOnly: true,
  idempotent: true,
});
/** Adds something new (a guest, a snapshot, a backup); repeating adds more. */
export const CREATES: Annotations = hints({});
/** Changes state without destroying anything; repeating changes nothing. */
export const IDEMPOTENT_CHANGE: Annotations = hints({ idempotent: true });
/** May destroy data or interrupt work (delete, rollback, commands). */
export const DESTRUCTIVE: Annotations = hints({ destructive: true });
/** Destructive, but repeating it with the same arguments changes nothing. */
export const IDEMPOTENT_DESTRUCTIVE: Annotations = hints({
  destructive: true,
  idempotent: true,
});

/** Every tool declared so far, with its place in the order of declaration. */
const declared = new WeakMap<object, number>();
let order = 0;

/** Declares a tool; the registry test checks every field. */
export function defineTool<I extends z.ZodRawShape, O extends z.ZodType>(
  def: ToolDef<I, O>,
): ToolDef<I, O> {
  declared.set(def, order++);
  return def;
}

/**
 * The tools a toolset module exports, in the order they are declared: the
 * registry is assembled from the modules, with no list of tools to keep.
 */
export function toolsOf(module: Record<string, unknown>): ToolDef[] {
  return Object.values(module)
    .filter((v): v is ToolDef =>
      typeof v === "object" && v !== null && declared.has(v)
    )
    .sort((a, b) => declared.get(a)! - declared.get(b)!);
}

// Shared input pieces: short descriptions keep tools/list small.
export const Vmid = z.number().int().min(100).max(999999999);
/** A string in one of PVE's formats (the same check the path builder makes). */
function formatted(name: keyof typeof FORMATS): z.ZodString {
  const f: Format = FORMATS[name];
  return z.string().max(f.maxLength ?? 4096).regex(f.re, {
    error: `Not a valid ${name}: ${f.rule}`,
  });
}
export const NodeName: z.ZodString = formatted("node");
/** pve-configid, at most 40 long (snapshot names). */
export const SnapName: z.ZodString = formatted("snapname");
export const StorageId: z.ZodString = formatted("storage");
/** `storage:volume`, as list_content and list_backups show it. */
export const Volid: z.ZodString = formatted("volid");
export const UpidArg: z.ZodString = formatted("upid");
/** PVE's dns-name: a guest name or a container's hostname. */
export const DnsName: z.ZodString = z.string().max(255).regex(
  /^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/,
  { error: "Not a valid DNS name: letters, digits and '-', dot-separated" },
);
/** PVE's address-list: IP addresses or DNS names, split by space, `,` or `;`. */
const ADDRESS =
  "(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\\.)*[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?|[0-9a-fA-F]*:[0-9a-fA-F:.]+)";
export const AddressList: z.ZodString = z.string().max(1024).regex(
  new RegExp(`^${ADDRESS}(?:[,; ]+${ADDRESS})*$`),
  { error: "Not a valid address list: IP addresses or DNS names" },
);
/** PVE's pve-tag-list: tags of letters, digits, `_-+.`, split by `;`, `,` or space. */
export const TagList: z.ZodString = z.string().max(1024).regex(
  /^[a-z0-9_][a-z0-9_\-+.]*([;, ]+[a-z0-9_][a-z0-9_\-+.]*)*$/i,
  {
    error: "Not a valid tag list: tags of letters, digits, '_-+.' split by ';'",
  },
);
/**
 * A guest's node: accepted (and checked against where the guest really is)
 * but not advertised. Vmids are unique in a cluster and the node is found
 * with one /cluster/resources call, so the model never needs it.
 */
export const GuestNode = NodeName.optional().meta({ advertise: false });
/**
 * wait and timeout_s: taken by every tool that starts a task, explained once
 * in the server's instructions instead of in every tool's schema.
 */
export const Wait = z.boolean().default(true).meta({ advertise: false });
/**
 * dry_run: taken by every tool that changes anything (server.ts adds it),
 * explained once in the server's instructions.
 */
export const DryRun = z.boolean().optional().meta({ advertise: false });
export const TimeoutS = (seconds: number): z.ZodDefault<z.ZodNumber> =>
  z.number().int().min(1).max(3600).default(seconds).meta({ advertise: false });
/**
 * wait and timeout_s as every tool that starts a task takes them. The default
 * wait stays below common client request timeouts (the SDK client's is
 * 60 s); a longer task comes back `running` with its UPID, and timeout_s up
 * to 3600 waits longer on request.
 */
export const TaskWait = { wait: Wait, timeout_s: TimeoutS(45) };

/**
 * A listing's rows from every cluster the call covers. With one cluster (or
 * a call that names one) this is `read(ctx.pve)` and rows carry no
 * `cluster`; otherwise each row gets its cluster's name, the clusters are
 * read at once, and one that fails is named in `unreachable` instead of
 * failing the others (only when every cluster fails does the call fail,
 * naming each with its reason).
 */
export async function across<T extends object>(
  ctx: Pick<ToolContext, "pve" | "clusters">,
  read: (pve: PveClient) => Promise<T[]>,
): Promise<
  { rows: (T & { cluster?: string })[]; unreachable?: Unreachable[] }
> {
  if (!ctx.clusters) return { rows: await read(ctx.pve) };
  const settled = await Promise.allSettled(
    ctx.clusters.map((c) => read(c.pve)),
  );
  const rows: (T & { cluster?: string })[] = [];
  const unreachable: Unreachable[] = [];
  settled.forEach((s, i) => {
    const cluster = ctx.clusters![i].name;
    if (s.status === "fulfilled") {
      for (const r of s.value) rows.push({ cluster, ...r });
    } else {
      unreachable.push({ cluster, error: reasonOf(s.reason) });
    }
  });
  if (!rows.length && unreachable.length === settled.length) {
    // One cluster's error alone would hide the others' and not say whose.
    throw new ToolError(
      `No cluster could be read: ${
        unreachable.map((u) => `${u.cluster}: ${u.error}`).join("; ")
      }. Name one with cluster for its whole answer`,
      undefined,
      {
        cause: (settled.find((s) => s.status === "rejected") as
          | PromiseRejectedResult
          | undefined)?.reason,
      },
    );
  }
  return unreachable.length ? { rows, unreachable } : { rows };
}

// Numbers as results show them.
export const MIB = 1024 ** 2;
export const GIB = 1024 ** 3;
/** `n` rounded to `digits` decimals (one by default). */
export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
/** Bytes in MiB with one decimal. */
export function mib(bytes: number): number {
  return round(bytes / MIB);
}
/** Bytes in GiB with one decimal; anything but a number is undefined. */
export function gib(bytes: unknown): number | undefined {
  return typeof bytes === "number" ? round(bytes / GIB) : undefined;
}
/** What an error says: its message, or the thrown value as text. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e ?? "");
}

/**
 * Fields of one type, in the order named (the order the schema shows them):
 * `fieldsOf(z.number().optional(), "cpu_pct", "cores")` is
 * `{ cpu_pct: z.number().optional(), cores: z.number().optional() }`.
 */
export function fieldsOf<const K extends string, T extends z.ZodType>(
  type: T,
  ...names: K[]
): Record<K, T> {
  return Object.fromEntries(names.map((n) => [n, type])) as Record<K, T>;
}

/** The clusters a listing could not read, with why (see across()). */
export const UnreachableClusters = z.array(
  z.object({ cluster: z.string(), error: z.string() }),
).optional();

/** What a tool that starts a task returns. */
export const TaskOutcome = z.object({
  upid: z.string(),
  status: z.enum(["ok", "warnings", "running"]),
  exitstatus: z.string().optional(),
  seconds: z.number().optional(),
  log: z.array(z.string()).optional(),
  note: z.string().optional(),
});
export type TaskOutcome = z.infer<typeof TaskOutcome>;

/** Turns a finished or timed-out task into an outcome, or a ToolError. */
function outcomeOf(r: TaskResult, what: string): TaskOutcome {
  if (r.status === "error") {
    throw new ToolError(
      `Task failed: ${what}: ${r.exitstatus ?? "unknown error"}`,
      { upid: r.upid, exitstatus: r.exitstatus, log: r.log },
    );
  }
  if (r.status === "running") {
    return {
      upid: r.upid,
      status: "running",
      seconds: r.seconds,
      note:
        `Still running after ${r.seconds} s; follow it with proxmox_get_task`,
    };
  }
  return {
    upid: r.upid,
    status: r.status,
    exitstatus: r.status === "warnings" ? r.exitstatus : undefined,
    seconds: r.seconds,
  };
}

/**
 * Starts a task with `start` and follows it (ctx.task). A refused start and a
 * failed task alike go to `advise`, which throws them with what to do.
 */
export async function startTask(
  ctx: Pick<ToolContext, "task">,
  start: () => Promise<string>,
  o: TaskOptions & { advise?: (e: unknown) => never },
): Promise<TaskOutcome> {
  const { advise, ...options } = o;
  try {
    return await ctx.task(await start(), options);
  } catch (e) {
    if (advise) advise(e);
    throw e;
  }
}

/** Builds the ctx.task implementation over a PveClient. */
export function taskFollower(
  pve: PveClient,
  signal: AbortSignal,
  progress: ToolContext["progress"],
): ToolContext["task"] {
  return async (upid, options) => {
    if (callRecord.getStore()?.dryRun) {
      // Nothing was started: the next step is planned as if this one ended.
      return { upid, status: "ok", note: "Dry run: not started" };
    }
    if (!options.wait) {
      return {
        upid,
        status: "running",
        note: "Started; follow it with proxmox_get_task",
      };
    }
    const started = performance.now();
    const r = await waitForTask(pve, upid, {
      timeoutMs: options.timeoutS * 1000,
      signal,
      onProgress: ({ elapsedMs, line }) =>
        progress(
          `${options.step ? options.step + ": " : ""}${options.what}: running ${
            Math.round(elapsedMs / 1000)
          } s${line ? ` — ${line}` : ""}`,
          Math.round(performance.now() - started),
        ),
    });
    pve.invalidate();
    return outcomeOf(r, options.what);
  };
}

/**
 * Keywords left out of what a model sees (zod still enforces every one): the
 * model reads names, types, enums and defaults; bounds and patterns only cost
 * context, and a wrong value comes back as a clear error.
 */
const DROPPED_KEYWORDS = new Set([
  "$schema",
  "advertise",
  "advertiseDefault",
  "advertiseEnum",
  "pattern",
  "additionalProperties",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
]);

/** The JSON Schema a model sees, kept small (see DROPPED_KEYWORDS). */
function compactJsonSchema(
  schema: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (DROPPED_KEYWORDS.has(k)) continue;
    if (k === "default" && schema.advertiseDefault === false) continue;
    // An enum says its values; "type" beside it says nothing more.
    if (
      k === "type" && Array.isArray(schema.enum) &&
      schema.advertiseEnum !== false
    ) continue;
    if (k === "enum" && schema.advertiseEnum === false) continue;
    if (k === "properties" && v && typeof v === "object") {
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, Record<string, unknown>>)
          .filter(([, p]) => p.advertise !== false)
          .map(([p, sub]) => [p, compactJsonSchema(sub)]),
      );
    } else if (k === "required" && Array.isArray(v)) {
      const props = (schema.properties ?? {}) as Record<
        string,
        Record<string, unknown>
      >;
      const req = v.filter((p: string) => props[p]?.advertise !== false);
      if (req.length) out[k] = req;
    } else if (
      k === "items" && v && typeof v === "object" && !Array.isArray(v)
    ) {
      out[k] = compactJsonSchema(v as Record<string, unknown>);
    } else if ((k === "anyOf" || k === "oneOf") && Array.isArray(v)) {
      out[k] = v.map((s) => compactJsonSchema(s as Record<string, unknown>));
    } else out[k] = v;
  }
  return out;
}

/** A zod schema whose advertised JSON Schema is compacted. */
export function compactStandardSchema<T extends z.ZodType>(schema: T): T {
  const std = schema["~standard"];
  // Converted once: the HTTP transport builds a server (and asks) per request.
  let input: Record<string, unknown> | undefined;
  let output: Record<string, unknown> | undefined;
  const wrapped = {
    "~standard": {
      ...std,
      jsonSchema: {
        input: () =>
          input ??= compactJsonSchema(
            z.toJSONSchema(schema, {
              target: "draft-2020-12",
              io: "input",
            }) as Record<string, unknown>,
          ),
        output: () => {
          if (!output) {
            const { $schema: _, ...rest } = z.toJSONSchema(schema, {
              target: "draft-2020-12",
              io: "output",
            }) as Record<string, unknown>;
            // A union of objects (a result or a dry run's plan) is an
            // object: MCP wants type "object" at the root of an outputSchema.
            output = Array.isArray(rest.anyOf) && rest.type === undefined
              ? { type: "object", ...rest }
              : rest;
          }
          return output;
        },
      },
    },
  };
  return wrapped as unknown as T;
}

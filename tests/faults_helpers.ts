/**
 * Fault injection, tool by tool (issue 9, item 9): the shared part of the
 * fault suites (faults_test.ts: request faults × tools, latency and hangs
 * included; faults_tasks_test.ts: task faults; faults_transport_test.ts:
 * every way of reaching Proxmox, lost authentication). The cases of a table
 * run side by side (tool_helpers.ts's sideBySide), so that their waits
 * overlap; each file is seeded the same way.
 *
 * Every fault the simulator injects (latency, hang, PVE error statuses, a
 * dropped connection, a cut JSON body, a proxy's HTML page, a ticket that
 * expired mid-session, failing and endless tasks, failing task-status polls)
 * against a read tool, a write that starts no task and two task tools. Each
 * is a clear result within the tool's bound (about PROXMOX_TIMEOUT), writes
 * are sent exactly once, and the next call succeeds.
 *
 * Seeded (`FAULTS_SEED`): the latency, the PVE wording of error answers and
 * task failures, and which error a failing poll gets are drawn from it; the
 * seed is named in every failure message. Bounded: PROXMOX_TIMEOUT is 1 s
 * where a request hangs (10 s elsewhere, so that a busy machine does not turn
 * a normal answer into a timeout), and every call is raced against a hard
 * limit.
 */
import assert from "node:assert/strict";
import type { Fault } from "../sim/mod.ts";
import type { SimTls } from "../sim/tls.ts";
import {
  call,
  connect,
  type Connected,
  prng,
  simEnv,
  startSim,
  type TestSim,
  type ToolResult,
} from "./helpers.ts";
import { sideBySide, type SideCase } from "./tool_helpers.ts";

export const SEED = Number(Deno.env.get("FAULTS_SEED") ?? 91129);
/** PROXMOX_TIMEOUT where a request hangs (or is slow on purpose), in seconds. */
export const TIMEOUT_S = 1;
/**
 * PROXMOX_TIMEOUT where no request hangs, in seconds: a busy machine (the
 * suite runs its files side by side) must not turn a slow normal answer into
 * a timeout there. Calls are still raced against HARD_MS.
 */
export const CALM_TIMEOUT_S = 10;
/**
 * The most a call may take when one request hangs: the timeout, plus the
 * follow-up reads an uncertain write makes to say what Proxmox did, plus
 * scheduling slack on a busy machine.
 */
export const BOUND_MS = TIMEOUT_S * 1000 + 2500;
/** A hard limit on any single call here, so a regression cannot stall the run. */
export const HARD_MS = 15_000;

export const rand = prng(SEED);
export function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}
export const why = (s: string) => `${s} (FAULTS_SEED=${SEED})`;

// ---------------------------------------------------------------------------
// The tools, one per class

export type Class = "read" | "write" | "task";

export interface ToolCase {
  tool: string;
  cls: Class;
  /** Arguments for the n-th call (a fresh snapshot name, another value). */
  args(n: number): Record<string, unknown>;
  /** The request a fault is aimed at (the one that matters for this tool). */
  target: { method: string; path: string };
  /** The PVE task type and guest, for task tools. */
  task?: { type: string; vmid: number; node: string };
  /** The UPID in a successful result. */
  upidOf?(data: Record<string, unknown>): string | undefined;
}

export const TOOLS: ToolCase[] = [
  {
    tool: "proxmox_list_vms",
    cls: "read",
    args: () => ({}),
    target: { method: "GET", path: "/cluster/resources" },
  },
  {
    tool: "proxmox_get_vm_stats",
    cls: "read",
    args: () => ({ vmid: 100 }),
    target: { method: "GET", path: "/nodes/pve1/qemu/100/status/current" },
  },
  {
    // VM 102 is stopped: the change applies at once, nothing is pending and
    // no reboot task starts.
    tool: "proxmox_update_vm",
    cls: "write",
    args: (n) => ({ vmid: 102, cores: 2 + (n % 4) }),
    target: { method: "PUT", path: "/nodes/pve2/qemu/102/config" },
  },
  {
    // VM 106 is stopped in the seeded cluster.
    tool: "proxmox_start_vm",
    cls: "task",
    args: () => ({ vmid: 106, timeout_s: 10 }),
    target: { method: "POST", path: "/nodes/pve2/qemu/106/status/start" },
    task: { type: "qmstart", vmid: 106, node: "pve2" },
    upidOf: (d) => (d.task as { upid?: string } | undefined)?.upid,
  },
  {
    tool: "proxmox_create_snapshot",
    cls: "task",
    args: (n) => ({ vmid: 100, name: `fault${n}`, timeout_s: 10 }),
    target: { method: "POST", path: "/nodes/pve1/qemu/100/snapshot" },
    task: { type: "qmsnapshot", vmid: 100, node: "pve1" },
    upidOf: (d) => d.upid as string | undefined,
  },
];

// ---------------------------------------------------------------------------
// Shared checks

/** Words that tell the user what to do next. */
export const ADVICE =
  /\b(try|retry|check|raise|grant|set|follow|wait|look|use|compare)\b|proxmox_[a-z_]+/i;
/** A stack frame, as V8 prints it. */
export const STACK = /\n\s+at | {4}at /;

/** Every isError: actionable, no stack trace, no secret of the simulator's. */
export function assertCleanError(
  r: ToolResult,
  sim: TestSim,
  what: string,
): void {
  assert.equal(
    r.isError,
    true,
    why(`${what}: expected isError, got ${r.text}`),
  );
  assert.ok(!STACK.test(r.text), why(`${what}: a stack trace: ${r.text}`));
  assert.match(r.text, ADVICE, why(`${what}: says what to do: ${r.text}`));
  for (const s of sim.secrets().filter((s) => s.length >= 6)) {
    assert.ok(!r.text.includes(s), why(`${what}: a secret in the result`));
  }
}

/** How often the target write arrived at the simulator. */
export function sent(sim: TestSim, t: ToolCase): number {
  return sim.requests.filter((q) =>
    q.method === t.target.method && q.rawPath === `/api2/json${t.target.path}`
  ).length;
}

export function running(sim: TestSim): boolean {
  return [...sim.cluster.tasks.values()].some((k) => k.status === "running");
}

export function logins(sim: TestSim): number {
  return sim.requests.filter((q) =>
    q.method === "POST" && q.path === "/access/ticket"
  ).length;
}

/** A call raced against HARD_MS, with its duration. */
export async function timed(
  s: Connected,
  t: ToolCase,
  n: number,
  extra: Record<string, unknown> = {},
): Promise<{ r: ToolResult; ms: number }> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const r = await Promise.race([
      call(s.client, t.tool, { ...t.args(n), ...extra }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(why(`${t.tool}: no answer in ${HARD_MS} ms`))),
          HARD_MS,
        );
      }),
    ]);
    return { r, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** After a fault is gone, the next call of the same tool succeeds. */
export async function assertNextCallSucceeds(
  sim: TestSim,
  s: Connected,
  t: ToolCase,
): Promise<void> {
  sim.faults.clear();
  // A task started by the faulted call (its answer lost) may still hold the
  // guest's lock: PVE refuses a second one meanwhile, rightly.
  for (let i = 0; i < 100 && running(sim); i++) {
    await new Promise((ok) => setTimeout(ok, 30));
  }
  const { r } = await timed(s, t, 99);
  assert.ok(!r.isError, why(`${t.tool}: the call after the fault: ${r.text}`));
}

/** A simulator and a server connected to it; both stop on dispose. */
export type Setup = { sim: TestSim; s: Connected } & AsyncDisposable;

/**
 * A fresh simulator and an in-process server; PROXMOX_TIMEOUT is `timeoutS`
 * (TIMEOUT_S where a request hangs), else CALM_TIMEOUT_S.
 */
export async function setup(
  options: {
    rawSockets?: boolean;
    tls?: SimTls;
    env?: Record<string, string>;
    timeoutS?: number;
  } = {},
): Promise<Setup> {
  const sim = await startSim({
    rawSockets: options.rawSockets,
    tls: options.tls,
  });
  const s = await connect({
    env: {
      ...simEnv(sim),
      PROXMOX_TIMEOUT: String(options.timeoutS ?? CALM_TIMEOUT_S),
      ...options.env,
    },
  });
  return {
    sim,
    s,
    async [Symbol.asyncDispose]() {
      sim.faults.clear();
      await s.close();
      sim.faults.releaseAll();
      await sim.close();
    },
  };
}

// ---------------------------------------------------------------------------
// Request faults

export interface RequestFault {
  name: string;
  rawSockets?: boolean;
  fault: () => Fault;
  check(
    ctx: {
      t: ToolCase;
      sim: TestSim;
      r: ToolResult;
      ms: number;
      fault: Fault;
      loginsBefore: number;
    },
  ): void;
}

/** PVE's own wording for error answers of each status. */
const PVE_WORDS: Record<number, readonly string[]> = {
  500: [
    "got timeout",
    "unable to read tail (got timeout)",
    "can't lock file '/var/lock/qemu-server/lock-102.conf' - got timeout",
  ],
  502: ["Bad Gateway", "proxy loop detected"],
  503: ["Service Unavailable", "service unavailable - cluster not ready"],
  595: ["Connection refused", "No route to host", "Connection timed out"],
};

/** For a write whose answer never came: it may have been applied. */
export const MAYBE_APPLIED = /may have been applied|was accepted|carried out/i;

export const REQUEST_FAULTS: RequestFault[] = [
  {
    name: "latency below PROXMOX_TIMEOUT",
    fault: () => ({
      kind: "delay",
      ms: Math.round(TIMEOUT_S * 1000 * (0.2 + 0.3 * rand())),
    }),
    check({ t, sim, r }) {
      assert.ok(!r.isError, why(`${t.tool} under latency: ${r.text}`));
      if (t.cls !== "read") assert.equal(sent(sim, t), 1, why("sent once"));
    },
  },
  {
    name: "hang",
    fault: () => ({ kind: "hang" }),
    check({ t, sim, r, ms }) {
      if (t.cls !== "read") {
        assert.equal(
          sent(sim, t),
          1,
          why(`${t.tool}: the write sent once; result: ${r.text}`),
        );
      }
      assertCleanError(r, sim, `${t.tool} on a hang`);
      assert.ok(
        ms <= BOUND_MS,
        why(`${t.tool}: answered after ${Math.round(ms)} ms (> ${BOUND_MS})`),
      );
      assert.match(r.text, new RegExp(`within ${TIMEOUT_S} s`));
      if (t.cls === "read") {
        assert.doesNotMatch(r.text, MAYBE_APPLIED);
      } else {
        assert.match(r.text, MAYBE_APPLIED, why(`${t.tool}: ${r.text}`));
      }
    },
  },
  ...[500, 502, 503, 595].map((status): RequestFault => ({
    name: `status ${status}`,
    fault: () => ({ kind: "status", status, message: pick(PVE_WORDS[status]) }),
    check({ t, sim, r, fault }) {
      assertCleanError(r, sim, `${t.tool} on ${status}`);
      const words = (fault as { message: string }).message;
      assert.ok(
        r.text.includes(words),
        why(`${t.tool} on ${status}: PVE's words '${words}' in: ${r.text}`),
      );
      assert.match(r.text, new RegExp(`\\b${status}\\b`));
      if (t.cls !== "read") assert.equal(sent(sim, t), 1, why("sent once"));
    },
  })),
  {
    name: "connection reset before any answer",
    rawSockets: true,
    fault: () => ({ kind: "reset" }),
    check({ t, sim, r }) {
      if (t.cls === "read") {
        // A read may be sent again (it changes nothing): then it answers.
        if (!r.isError) assert.ok(sent(sim, t) >= 2, why("answered how?"));
        else assertCleanError(r, sim, `${t.tool} on a reset`);
        return;
      }
      assert.equal(
        sent(sim, t),
        1,
        why(`${t.tool}: the write sent once; result: ${r.text}`),
      );
      assertCleanError(r, sim, `${t.tool} on a reset`);
      assert.match(r.text, MAYBE_APPLIED, why(`${t.tool}: ${r.text}`));
    },
  },
  {
    name: "connection dropped after the status line",
    fault: () => ({ kind: "reset" }),
    check({ t, sim, r }) {
      if (t.cls === "read") {
        if (!r.isError) assert.ok(sent(sim, t) >= 2, why("answered how?"));
        else assertCleanError(r, sim, `${t.tool} on a dropped answer`);
        return;
      }
      assert.equal(
        sent(sim, t),
        1,
        why(`${t.tool}: the write sent once; result: ${r.text}`),
      );
      assertCleanError(r, sim, `${t.tool} on a dropped answer`);
      assert.match(r.text, MAYBE_APPLIED, why(`${t.tool}: ${r.text}`));
    },
  },
  {
    name: "truncated JSON",
    fault: () => ({ kind: "truncate" }),
    check({ t, sim, r }) {
      if (t.cls !== "read") {
        assert.equal(
          sent(sim, t),
          1,
          why(`${t.tool}: the write sent once; result: ${r.text}`),
        );
      }
      assertCleanError(r, sim, `${t.tool} on a cut body`);
      // Carried out, answer lost.
      if (t.cls !== "read") {
        assert.match(r.text, MAYBE_APPLIED, why(`${t.tool}: ${r.text}`));
      }
    },
  },
  {
    name: "HTML error page",
    fault: () => ({ kind: "html", status: pick([502, 503, 504]) }),
    check({ t, sim, r, fault }) {
      const status = (fault as { status: number }).status;
      assertCleanError(r, sim, `${t.tool} on an HTML page`);
      assert.match(r.text, new RegExp(`\\b${status}\\b`), why("names status"));
      assert.doesNotMatch(
        r.text,
        /<\s*\/?\s*(html|head|body|title|h1|hr|center|!doctype)/i,
        why(`${t.tool}: raw HTML in: ${r.text}`),
      );
      if (t.cls !== "read") assert.equal(sent(sim, t), 1, why("sent once"));
    },
  },
  {
    name: "401 mid-session",
    fault: () => ({ kind: "unauthorized" }),
    check({ t, sim, r, loginsBefore }) {
      assert.ok(!r.isError, why(`${t.tool} after a 401: ${r.text}`));
      assert.equal(
        logins(sim) - loginsBefore,
        1,
        why(`${t.tool}: one fresh login after the 401`),
      );
      if (t.cls !== "read") {
        // Refused before PVE acted, so re-sent once after the login.
        assert.equal(sent(sim, t), 2, why(`${t.tool}: refused once, re-sent`));
      }
    },
  },
];

/** The request faults that wait (on latency, or for PROXMOX_TIMEOUT). */
export const WAITING: ReadonlySet<string> = new Set([
  "latency below PROXMOX_TIMEOUT",
  "hang",
]);

/**
 * Registers one test per request fault in `faults`: a step per tool, the
 * tools side by side, each on a cluster of its own. The faults are drawn
 * here, in table order, so that a seed replays the same ones.
 */
export function requestFaultTests(faults: readonly RequestFault[]): void {
  for (const f of faults) {
    sideBySide(
      `fault '${f.name}' × a read, a write and two task tools`,
      TOOLS.map((t): SideCase<Setup> => {
        const fault = f.fault();
        return {
          name:
            `fault '${f.name}' on ${t.target.method} ${t.target.path}: ${t.tool} (${t.cls}) gives a clear answer in time, then works again`,
          setup: () =>
            setup({
              rawSockets: f.rawSockets,
              timeoutS: WAITING.has(f.name) ? TIMEOUT_S : CALM_TIMEOUT_S,
            }),
          async run({ sim, s }) {
            // A first call: logged in, a keep-alive connection open (as in a
            // session). Not list_vms: its /cluster/resources answer is cached
            // briefly.
            const warm = await call(s.client, "proxmox_list_nodes");
            assert.ok(!warm.isError, warm.text);
            sim.faults.inject({
              method: t.target.method,
              path: t.target.path,
              fault,
            });
            const loginsBefore = logins(sim);
            const { r, ms } = await timed(s, t, 1);
            f.check({ t, sim, r, ms, fault, loginsBefore });
            await assertNextCallSucceeds(sim, s, t);
          },
        };
      }),
    );
  }
}

// ---------------------------------------------------------------------------
// Tasks

/** A task-status poll's path. */
export const STATUS_POLL = /^\/nodes\/[^/]+\/tasks\/[^/]+\/status$/;

/** A UPID, as PVE writes it. */
export const UPID =
  /UPID:[a-zA-Z0-9-]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:\w+:\d*:[^:\s]+:/;

/** The task tool the transport and authentication tests use. */
export const START = TOOLS.find((t) => t.tool === "proxmox_start_vm")!;

/** How many start tasks Proxmox ran for VM 106. */
export function startTasks(sim: TestSim): number {
  return [...sim.cluster.tasks.values()].filter((k) =>
    k.type === "qmstart" && k.id === "106"
  ).length;
}

/**
 * Fault injection, tool by tool (issue 9, item 9): every fault the simulator
 * injects (latency, hang, PVE error statuses, a dropped connection, a cut
 * JSON body, a proxy's HTML page, a ticket that expired mid-session, failing
 * and endless tasks, failing task-status polls) against a read tool, a write
 * that starts no task and two task tools. Each is a clear result within the
 * tool's bound (about PROXMOX_TIMEOUT), writes are sent exactly once, and the
 * next call succeeds.
 *
 * Seeded (`FAULTS_SEED`): the latency, the PVE wording of error answers and
 * task failures, and which error a failing poll gets are drawn from it; the
 * seed is named in every failure message. Bounded: PROXMOX_TIMEOUT is 1 s and
 * every call is raced against a hard limit.
 */
import assert from "node:assert/strict";
import type { Fault } from "../src/sim/mod.ts";
import { type SimTls, simTls } from "../src/sim/tls.ts";
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

const SEED = Number(Deno.env.get("FAULTS_SEED") ?? 91129);
/** PROXMOX_TIMEOUT of every server here, in seconds. */
const TIMEOUT_S = 1;
/**
 * The most a call may take when one request hangs: the timeout, plus the
 * follow-up reads an uncertain write makes to say what Proxmox did, plus
 * scheduling slack on a busy machine.
 */
const BOUND_MS = TIMEOUT_S * 1000 + 2500;
/** A hard limit on any single call here, so a regression cannot stall the run. */
const HARD_MS = 15_000;

const rand = prng(SEED);
function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}
const why = (s: string) => `${s} (FAULTS_SEED=${SEED})`;

// ---------------------------------------------------------------------------
// The tools, one per class

type Class = "read" | "write" | "task";

interface ToolCase {
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

const TOOLS: ToolCase[] = [
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
const ADVICE =
  /\b(try|retry|check|raise|grant|set|follow|wait|look|use|compare)\b|proxmox_[a-z_]+/i;
/** A stack frame, as V8 prints it. */
const STACK = /\n\s+at | {4}at /;

/** Every isError: actionable, no stack trace, no secret of the simulator's. */
function assertCleanError(
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
function sent(sim: TestSim, t: ToolCase): number {
  return sim.requests.filter((q) =>
    q.method === t.target.method && q.rawPath === `/api2/json${t.target.path}`
  ).length;
}

function running(sim: TestSim): boolean {
  return [...sim.cluster.tasks.values()].some((k) => k.status === "running");
}

function logins(sim: TestSim): number {
  return sim.requests.filter((q) =>
    q.method === "POST" && q.path === "/access/ticket"
  ).length;
}

/** A call raced against HARD_MS, with its duration. */
async function timed(
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
async function assertNextCallSucceeds(
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

/** A fresh simulator and an in-process server with a short PROXMOX_TIMEOUT. */
async function setup(
  options: {
    rawSockets?: boolean;
    tls?: SimTls;
    env?: Record<string, string>;
  } = {},
): Promise<{ sim: TestSim; s: Connected } & AsyncDisposable> {
  const sim = await startSim({
    rawSockets: options.rawSockets,
    tls: options.tls,
  });
  const s = await connect({
    env: {
      ...simEnv(sim),
      PROXMOX_TIMEOUT: String(TIMEOUT_S),
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
// Request faults × tools

interface RequestFault {
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
const MAYBE_APPLIED = /may have been applied|was accepted|carried out/i;

const REQUEST_FAULTS: RequestFault[] = [
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

for (const f of REQUEST_FAULTS) {
  for (const t of TOOLS) {
    Deno.test(`fault '${f.name}' on ${t.target.method} ${t.target.path}: ${t.tool} (${t.cls}) gives a clear answer in time, then works again`, async () => {
      await using env = await setup({ rawSockets: f.rawSockets });
      const { sim, s } = env;
      // A first call: logged in, a keep-alive connection open (as in a
      // session). Not list_vms: its /cluster/resources answer is cached briefly.
      const warm = await call(s.client, "proxmox_list_nodes");
      assert.ok(!warm.isError, warm.text);
      const fault = f.fault();
      sim.faults.inject({
        method: t.target.method,
        path: t.target.path,
        fault,
      });
      const loginsBefore = logins(sim);
      const { r, ms } = await timed(s, t, 1);
      f.check({ t, sim, r, ms, fault, loginsBefore });
      await assertNextCallSucceeds(sim, s, t);
    });
  }
}

// ---------------------------------------------------------------------------
// Task faults × task tools

const STATUS_POLL = /^\/nodes\/[^/]+\/tasks\/[^/]+\/status$/;

/** PVE's exit statuses of failed tasks. */
const TASK_FAILURES: Record<string, readonly string[]> = {
  qmstart: [
    "start failed: QEMU exited with code 1",
    "TASK ERROR: timeout waiting on systemd",
    "command 'qm start 106' failed: exit code 2",
  ],
  qmsnapshot: [
    "snapshot feature is not available",
    "VM 100 qmp command 'savevm-start' failed - unable to save state",
  ],
};

/** A failing status poll: an answer a node or proxy gives now and then. */
const POLL_FAULTS: readonly Fault[] = [
  { kind: "status", status: 500, message: "got timeout" },
  { kind: "status", status: 503, message: "Service Unavailable" },
  { kind: "status", status: 595, message: "Connection refused" },
  { kind: "html", status: 502 },
];

async function stopTask(sim: TestSim, upid: string): Promise<void> {
  const node = upid.split(":")[1];
  const r = await fetch(
    `${sim.url}/api2/json/nodes/${node}/tasks/${encodeURIComponent(upid)}`,
    {
      method: "DELETE",
      headers: {
        Authorization:
          `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
      },
    },
  );
  await r.body?.cancel();
  assert.equal(r.status, 200);
}

const UPID =
  /UPID:[a-zA-Z0-9-]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:\w+:\d*:[^:\s]+:/;

for (const t of TOOLS.filter((t) => t.task)) {
  const task = t.task!;

  Deno.test(`failing task: ${t.tool} is isError with PVE's exit status and the UPID, then works again`, async () => {
    await using env = await setup();
    const { sim, s } = env;
    const fail = pick(TASK_FAILURES[task.type]);
    sim.faults.task({ type: task.type, vmid: task.vmid, fail });
    const { r } = await timed(s, t, 1);
    assertCleanError(r, sim, `${t.tool} with a failing task`);
    assert.ok(r.text.includes(fail), why(`PVE's exit status in: ${r.text}`));
    assert.match(r.text, UPID, why(`${t.tool}: the UPID in: ${r.text}`));
    assert.equal(sent(sim, t), 1);
    await assertNextCallSucceeds(sim, s, t);
  });

  Deno.test(`endless task: ${t.tool} returns 'running' with the UPID within timeout_s, then works again`, async () => {
    await using env = await setup();
    const { sim, s } = env;
    sim.faults.task({ type: task.type, vmid: task.vmid, endless: true });
    const { r, ms } = await timed(s, t, 1, { timeout_s: 1 });
    assert.ok(!r.isError, why(`${t.tool}: ${r.text}`));
    const upid = t.upidOf!(r.data);
    assert.match(upid ?? "", UPID, why(`the UPID in: ${r.text}`));
    assert.match(r.text, /"status":"running"/);
    assert.match(r.text, /proxmox_get_task/, why("how to follow it"));
    assert.ok(ms <= 1000 + BOUND_MS, why(`answered after ${Math.round(ms)}`));
    assert.equal(sent(sim, t), 1);
    // The operator stops it; the next call works.
    await stopTask(sim, upid!);
    await assertNextCallSucceeds(sim, s, t);
  });

  Deno.test(`one failing task-status poll: ${t.tool} retries it and reports the task's success`, async () => {
    await using env = await setup();
    const { sim, s } = env;
    sim.faults.inject({
      method: "GET",
      path: STATUS_POLL,
      times: 1,
      fault: pick(POLL_FAULTS),
    });
    const { r } = await timed(s, t, 1);
    assert.ok(!r.isError, why(`${t.tool}: one failed poll: ${r.text}`));
    assert.equal(sim.faults.pending, 0, "the failing poll happened");
    assert.doesNotMatch(r.text, /"status":"running"/);
    assert.equal(sent(sim, t), 1);
    await assertNextCallSucceeds(sim, s, t);
  });

  Deno.test(`two failing task-status polls: ${t.tool} says the task may still be running, with its UPID, never 'task failed'`, async () => {
    await using env = await setup();
    const { sim, s } = env;
    sim.faults.inject({
      method: "GET",
      path: STATUS_POLL,
      times: 2,
      fault: pick(POLL_FAULTS),
    });
    const { r, ms } = await timed(s, t, 1);
    assert.equal(sim.faults.pending, 0, "both failing polls happened");
    assert.match(r.text, UPID, why(`${t.tool}: the UPID in: ${r.text}`));
    assert.doesNotMatch(r.text, /task failed/i, why(`${t.tool}: ${r.text}`));
    if (r.isError) {
      assertCleanError(r, sim, `${t.tool} with unreadable task status`);
      assert.match(r.text, /may still be running/i, why(r.text));
    } else {
      assert.match(r.text, /"status":"(running|unknown)"/, why(r.text));
    }
    assert.ok(ms <= BOUND_MS, why(`answered after ${Math.round(ms)} ms`));
    assert.equal(sent(sim, t), 1);
    await assertNextCallSucceeds(sim, s, t);
  });
}

// ---------------------------------------------------------------------------
// Exactly once, on every way of reaching Proxmox

/** The ways the client reaches Proxmox: fetch (http, https with a CA) or node:tls. */
const PATHS: {
  name: string;
  env(tls: SimTls): Record<string, string>;
  https: boolean;
}[] = [
  { name: "http (fetch)", https: false, env: () => ({}) },
  {
    name: "https with PROXMOX_CA_FILE (fetch)",
    https: true,
    env: (tls) => ({ PROXMOX_CA_FILE: tls.caFile }),
  },
  {
    name: "https with PROXMOX_VERIFY_SSL=false (node:tls)",
    https: true,
    env: () => ({ PROXMOX_VERIFY_SSL: "false" }),
  },
  {
    name: "https with PROXMOX_TLS_FINGERPRINT (node:tls)",
    https: true,
    env: (tls) => ({ PROXMOX_TLS_FINGERPRINT: tls.fingerprint }),
  },
];

const START = TOOLS.find((t) => t.tool === "proxmox_start_vm")!;

function startTasks(sim: TestSim): number {
  return [...sim.cluster.tasks.values()].filter((k) =>
    k.type === "qmstart" && k.id === "106"
  ).length;
}

for (const p of PATHS) {
  Deno.test(`${p.name}: a POST whose reused keep-alive connection closes without an answer reaches Proxmox exactly once`, async () => {
    const tls = await simTls();
    await using env = await setup({
      rawSockets: true,
      tls: p.https ? tls : undefined,
      env: p.env(tls),
    });
    const { sim, s } = env;
    // One GET first, so the POST can go out on a reused connection.
    const warm = await call(s.client, "proxmox_list_nodes");
    assert.ok(!warm.isError, warm.text);
    sim.faults.inject({
      method: "POST",
      path: START.target.path,
      fault: { kind: "reset", apply: true },
    });
    const { r } = await timed(s, START, 1);
    assert.equal(
      sent(sim, START),
      1,
      why(`POSTs that arrived; result: ${r.text}`),
    );
    assert.equal(startTasks(sim), 1, "one start task");
    // The start was carried out, its answer lost: never a plain success
    // unless the tool found out what happened (then it names the task).
    if (r.isError) {
      assertCleanError(r, sim, "start_vm on a reset after applying");
      assert.match(r.text, MAYBE_APPLIED);
    } else {
      assert.match(r.text, UPID, why(r.text));
    }
    await assertNextCallSucceeds(sim, s, START);
  });

  Deno.test(`${p.name}: a POST that hangs is sent once and reported as possibly applied within PROXMOX_TIMEOUT`, async () => {
    const tls = await simTls();
    await using env = await setup({
      tls: p.https ? tls : undefined,
      env: p.env(tls),
    });
    const { sim, s } = env;
    const warm = await call(s.client, "proxmox_list_nodes");
    assert.ok(!warm.isError, warm.text);
    sim.faults.inject({
      method: "POST",
      path: START.target.path,
      fault: { kind: "hang" },
    });
    const { r, ms } = await timed(s, START, 1);
    assert.equal(
      sent(sim, START),
      1,
      why(`POSTs that arrived; result: ${r.text}`),
    );
    assertCleanError(r, sim, "start_vm on a hang");
    assert.match(r.text, MAYBE_APPLIED);
    assert.ok(ms <= BOUND_MS, why(`answered after ${Math.round(ms)} ms`));
    assert.equal(startTasks(sim), 0, "the hung start was not carried out");
    await assertNextCallSucceeds(sim, s, START);
  });
}

// ---------------------------------------------------------------------------
// Authentication lost for good, and a write carried out whose answer hung

Deno.test("401 with an API token: isError naming the token settings, nothing sent again, then works again", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim, "token"), PROXMOX_TIMEOUT: String(TIMEOUT_S) },
  });
  for (const t of [TOOLS[0], START]) {
    sim.faults.inject({
      method: t.target.method,
      path: t.target.path,
      fault: { kind: "unauthorized" },
    });
    const { r } = await timed(s, t, 1);
    assertCleanError(r, sim, `${t.tool} refused with a token`);
    assert.match(r.text, /PROXMOX_TOKEN_ID|PROXMOX_TOKEN_SECRET/, r.text);
    assert.equal(sent(sim, t), 1, why(`${t.tool}: not sent again`));
    await assertNextCallSucceeds(sim, s, t);
  }
});

Deno.test("401 mid-session and the fresh login refused too (password changed): isError naming PROXMOX_USER and PROXMOX_PASSWORD, then works again", async () => {
  await using env = await setup();
  const { sim, s } = env;
  const warm = await call(s.client, "proxmox_list_nodes");
  assert.ok(!warm.isError, warm.text);
  sim.faults.inject({
    method: START.target.method,
    path: START.target.path,
    fault: { kind: "unauthorized" },
  });
  sim.faults.inject({
    method: "POST",
    path: "/access/ticket",
    times: 2,
    fault: { kind: "status", status: 401, message: "authentication failure" },
  });
  const { r } = await timed(s, START, 1);
  assertCleanError(r, sim, "start_vm with the login refused");
  assert.match(r.text, /PROXMOX_USER|PROXMOX_PASSWORD/, r.text);
  assert.equal(sent(sim, START), 1, why("the refused start is not re-sent"));
  assert.equal(startTasks(sim), 0);
  await assertNextCallSucceeds(sim, s, START);
});

for (const t of TOOLS.filter((t) => t.task)) {
  Deno.test(`a write carried out whose answer never came: ${t.tool} names the task Proxmox started (UPID), sent once`, async () => {
    await using env = await setup();
    const { sim, s } = env;
    sim.faults.inject({
      method: t.target.method,
      path: t.target.path,
      fault: { kind: "hang", apply: true },
    });
    const { r, ms } = await timed(s, t, 1);
    assert.equal(sent(sim, t), 1, why(`${t.tool}: sent once; ${r.text}`));
    assert.ok(ms <= BOUND_MS, why(`answered after ${Math.round(ms)} ms`));
    // Where the tool can find out, it says what happened: the task it started.
    assert.match(r.text, new RegExp(`:${t.task!.type}:${t.task!.vmid}:`));
    if (r.isError) assertCleanError(r, sim, `${t.tool} hung after applying`);
    await assertNextCallSucceeds(sim, s, t);
  });
}

for (const t of TOOLS.filter((t) => t.task)) {
  Deno.test(`a task-status poll that hangs once: ${t.tool} retries after PROXMOX_TIMEOUT and reports the task's success`, async () => {
    await using env = await setup();
    const { sim, s } = env;
    sim.faults.inject({
      method: "GET",
      path: STATUS_POLL,
      fault: { kind: "hang" },
    });
    const { r, ms } = await timed(s, t, 1);
    assert.ok(!r.isError, why(`${t.tool}: one hung poll: ${r.text}`));
    assert.doesNotMatch(r.text, /"status":"running"/);
    assert.ok(ms <= BOUND_MS, why(`answered after ${Math.round(ms)} ms`));
    assert.equal(sent(sim, t), 1);
    await assertNextCallSucceeds(sim, s, t);
  });
}

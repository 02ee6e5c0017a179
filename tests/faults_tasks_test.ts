/**
 * Task faults × task tools (issue 9, item 9): failing and endless tasks,
 * task-status polls that fail or hang, and a write carried out whose answer
 * never came. Each is a clear result within the tool's bound, the write is
 * sent exactly once, and the next call succeeds. Shared part:
 * faults_helpers.ts.
 */
import assert from "node:assert/strict";
import type { Fault } from "../sim/mod.ts";
import {
  assertCleanError,
  assertNextCallSucceeds,
  BOUND_MS,
  pick,
  sent,
  type Setup,
  setup,
  STATUS_POLL,
  timed,
  TIMEOUT_S,
  type ToolCase,
  TOOLS,
  UPID,
  why,
} from "./faults_helpers.ts";
import type { TestSim } from "./helpers.ts";
import { sideBySide, type SideCase } from "./tool_helpers.ts";

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

/** The next `times` task-status polls fail with `fault` (drawn from POLL_FAULTS). */
function failPolls(sim: TestSim, times: number, fault: Fault): void {
  sim.faults.inject({ method: "GET", path: STATUS_POLL, times, fault });
}

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

/**
 * The cases of one task tool, each on a cluster of its own. PVE's words are
 * drawn here, in table order, so that a seed replays the same ones.
 */
function taskCases(t: ToolCase): SideCase<Setup>[] {
  const task = t.task!;
  const fail = pick(TASK_FAILURES[task.type]);
  const onePoll = pick(POLL_FAULTS);
  const twoPolls = pick(POLL_FAULTS);
  return [{
    name:
      `failing task: ${t.tool} is isError with PVE's exit status and the UPID, then works again`,
    setup: () => setup(),
    async run({ sim, s }) {
      sim.faults.task({ type: task.type, vmid: task.vmid, fail });
      const { r } = await timed(s, t, 1);
      assertCleanError(r, sim, `${t.tool} with a failing task`);
      assert.ok(r.text.includes(fail), why(`PVE's exit status in: ${r.text}`));
      assert.match(r.text, UPID, why(`${t.tool}: the UPID in: ${r.text}`));
      assert.equal(sent(sim, t), 1);
      await assertNextCallSucceeds(sim, s, t);
    },
  }, {
    name:
      `endless task: ${t.tool} returns 'running' with the UPID within timeout_s, then works again`,
    setup: () => setup(),
    async run({ sim, s }) {
      sim.faults.task({ type: task.type, vmid: task.vmid, endless: true });
      const { r, ms } = await timed(s, t, 1, { timeout_s: 1 });
      assert.ok(!r.isError, why(`${t.tool}: ${r.text}`));
      const upid = t.upidOf!(r.data);
      assert.match(upid ?? "", UPID, why(`the UPID in: ${r.text}`));
      assert.match(r.text, /"status":"running"/);
      assert.match(r.text, /proxmox_get_task/, why("how to follow it"));
      assert.ok(
        ms <= 1000 + BOUND_MS,
        why(`answered after ${Math.round(ms)}`),
      );
      assert.equal(sent(sim, t), 1);
      // The operator stops it; the next call works.
      await stopTask(sim, upid!);
      await assertNextCallSucceeds(sim, s, t);
    },
  }, {
    name:
      `one failing task-status poll: ${t.tool} retries it and reports the task's success`,
    setup: () => setup(),
    async run({ sim, s }) {
      failPolls(sim, 1, onePoll);
      const { r } = await timed(s, t, 1);
      assert.ok(!r.isError, why(`${t.tool}: one failed poll: ${r.text}`));
      assert.equal(sim.faults.pending, 0, "the failing poll happened");
      assert.doesNotMatch(r.text, /"status":"running"/);
      assert.equal(sent(sim, t), 1);
      await assertNextCallSucceeds(sim, s, t);
    },
  }, {
    name:
      `two failing task-status polls: ${t.tool} says the task may still be running, with its UPID, never 'task failed'`,
    setup: () => setup(),
    async run({ sim, s }) {
      failPolls(sim, 2, twoPolls);
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
    },
  }, {
    name:
      `a write carried out whose answer never came: ${t.tool} names the task Proxmox started (UPID), sent once`,
    setup: () => setup({ timeoutS: TIMEOUT_S }),
    async run({ sim, s }) {
      sim.faults.inject({
        method: t.target.method,
        path: t.target.path,
        fault: { kind: "hang", apply: true },
      });
      const { r, ms } = await timed(s, t, 1);
      assert.equal(sent(sim, t), 1, why(`${t.tool}: sent once; ${r.text}`));
      assert.ok(ms <= BOUND_MS, why(`answered after ${Math.round(ms)} ms`));
      // Where the tool can find out, it says what happened: the task it started.
      assert.match(r.text, new RegExp(`:${task.type}:${task.vmid}:`));
      if (r.isError) assertCleanError(r, sim, `${t.tool} hung after applying`);
      await assertNextCallSucceeds(sim, s, t);
    },
  }, {
    name:
      `a task-status poll that hangs once: ${t.tool} retries after PROXMOX_TIMEOUT and reports the task's success`,
    setup: () => setup({ timeoutS: TIMEOUT_S }),
    async run({ sim, s }) {
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
    },
  }];
}

sideBySide(
  "task faults × the task tools: failing and endless tasks, failing and hanging status polls, a write carried out whose answer never came",
  TOOLS.filter((t) => t.task).flatMap(taskCases),
);

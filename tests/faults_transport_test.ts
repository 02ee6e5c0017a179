/**
 * Every way of reaching Proxmox (fetch over http, https with a CA file;
 * node:tls with verification off or a pinned fingerprint), and
 * authentication lost for good (issue 9, item 9): a POST whose connection
 * closes or hangs reaches Proxmox exactly once and is reported as possibly
 * applied; a 401 that a fresh login cannot cure names the settings to check.
 * Shared part: faults_helpers.ts.
 */
import assert from "node:assert/strict";
import { type SimTls, simTls } from "../sim/tls.ts";
import {
  assertCleanError,
  assertNextCallSucceeds,
  BOUND_MS,
  CALM_TIMEOUT_S,
  MAYBE_APPLIED,
  sent,
  type Setup,
  setup,
  START,
  startTasks,
  timed,
  TIMEOUT_S,
  TOOLS,
  UPID,
  why,
} from "./faults_helpers.ts";
import type { Fault } from "../sim/mod.ts";
import { call, connect, simEnv, startSim } from "./helpers.ts";
import { sideBySide, type SideCase } from "./tool_helpers.ts";

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

/** `setup` reaching Proxmox the way `p` does (https with the worker's shared CA where it is https). */
async function setupPath(
  p: (typeof PATHS)[number],
  options: { rawSockets?: boolean; timeoutS?: number },
): Promise<Setup> {
  const tls = await simTls();
  return await setup({
    ...options,
    tls: p.https ? tls : undefined,
    env: p.env(tls),
  });
}

/**
 * One GET answered first, so the POST can go out on a reused connection;
 * then `fault` on start_vm's POST.
 */
async function warmThenFaultStart(
  { sim, s }: Setup,
  fault: Fault,
): Promise<void> {
  const warm = await call(s.client, "proxmox_list_nodes");
  assert.ok(!warm.isError, warm.text);
  sim.faults.inject({ method: "POST", path: START.target.path, fault });
}

/** The cases of one way of reaching Proxmox, each on a cluster of its own. */
function pathCases(p: (typeof PATHS)[number]): SideCase<Setup>[] {
  return [{
    name:
      `${p.name}: a POST whose reused keep-alive connection closes without an answer reaches Proxmox exactly once`,
    setup: () => setupPath(p, { rawSockets: true }),
    async run(env) {
      const { sim, s } = env;
      await warmThenFaultStart(env, { kind: "reset", apply: true });
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
    },
  }, {
    name:
      `${p.name}: a POST that hangs is sent once and reported as possibly applied within PROXMOX_TIMEOUT`,
    setup: () => setupPath(p, { timeoutS: TIMEOUT_S }),
    async run(env) {
      const { sim, s } = env;
      await warmThenFaultStart(env, { kind: "hang" });
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
    },
  }];
}

sideBySide(
  "every way of reaching Proxmox: a POST whose connection closes or hangs reaches it once",
  PATHS.flatMap(pathCases),
);

// ---------------------------------------------------------------------------
// Authentication lost for good, and a write carried out whose answer hung

Deno.test("401 with an API token: isError naming the token settings, nothing sent again, then works again", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: {
      ...simEnv(sim, "token"),
      PROXMOX_TIMEOUT: String(CALM_TIMEOUT_S),
    },
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

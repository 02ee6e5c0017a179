/**
 * Table-driven cases side by side: each case is a step of one test (its own
 * name, its own pass or failure) and the steps run at the same time, so that
 * cases which wait (for PROXMOX_TIMEOUT, a task's timeout_s) wait together
 * instead of one after another. Each case gets an environment of its own
 * (a fresh simulator and server): no case sees another's state.
 *
 * In-process servers share this process's log writer, and closing one
 * restores the default writer: every environment is therefore disposed only
 * once every case is done (a disposal's failure, such as a simulator's schema
 * violations, fails the test).
 */
import type { SimOptions } from "../sim/mod.ts";
import {
  connect,
  type Connected,
  simEnv,
  startSim,
  type TestSim,
} from "./helpers.ts";

/** One case: its step's name, its environment, and what it does there. */
export interface SideCase<E extends AsyncDisposable> {
  name: string;
  setup(): Promise<E>;
  run(env: E): Promise<void>;
}

/**
 * Registers a test named `title` that runs `cases` as steps side by side.
 * Steps run together only without sanitizers, so this test has none.
 */
export function sideBySide<E extends AsyncDisposable>(
  title: string,
  cases: readonly SideCase<E>[],
): void {
  Deno.test({
    name: title,
    sanitizeOps: false,
    sanitizeResources: false,
    sanitizeExit: false,
    async fn(t) {
      const envs = await Promise.allSettled(cases.map((c) => c.setup()));
      const ran = await Promise.allSettled([
        Promise.all(cases.map((c, i) =>
          t.step(c.name, async () => {
            const env = envs[i];
            if (env.status === "rejected") throw env.reason;
            await c.run(env.value);
          })
        )),
      ]);
      const closed = await Promise.allSettled(
        envs.flatMap((e) =>
          e.status === "fulfilled" ? [e.value[Symbol.asyncDispose]()] : []
        ),
      );
      for (const r of [...ran, ...closed]) {
        if (r.status === "rejected") throw r.reason;
      }
    },
  });
}

/**
 * Date.now moves ahead when told, until disposed (`using clock =
 * movableClock(); clock.advance(1100)`): for the simulator and the server in
 * this process, that much time has passed, without waiting for it (timers
 * are not affected).
 */
export function movableClock(): { advance(ms: number): void } & Disposable {
  const now = Date.now;
  let ahead = 0;
  const moved = () => now() + ahead;
  Date.now = moved;
  return {
    advance: (ms) => {
      ahead += ms;
    },
    [Symbol.dispose]: () => {
      // Another patch over this one would be undone (or redone) by restoring.
      if (Date.now !== moved) {
        throw new Error(
          "movableClock: Date.now was replaced again; clocks must end in reverse order",
        );
      }
      Date.now = now;
    },
  };
}

/**
 * The next task of `type` that `sim` starts is held until released (or
 * disposed): at the first step of its work (`at: "step"`, the default: what
 * its work does first, such as locking a guest, is done) or before any of its
 * work (`at: "work"`). A test sees the task running, and what it holds, for
 * as long as it needs, however busy the machine. Other tasks run as usual.
 */
export function holdNextTask(
  sim: TestSim,
  type: string,
  at: "step" | "work" = "step",
): { release(): void } & Disposable {
  const cluster = sim.cluster;
  const { promise, resolve } = Promise.withResolvers<void>();
  const startTask = cluster.startTask;
  const holding: typeof startTask = function (
    this: typeof cluster,
    opts,
    work,
  ) {
    if (opts.type !== type) return startTask.call(this, opts, work);
    cluster.startTask = startTask;
    return startTask.call(this, opts, async (t) => {
      if (at === "work") await promise;
      await work({
        ...t,
        step: async (ms) => {
          await promise;
          await t.step(ms);
        },
      });
    });
  };
  cluster.startTask = holding;
  return {
    release: () => resolve(),
    [Symbol.dispose]: () => {
      resolve();
      // Held and restored already, or still waiting: anything else is a
      // second hold on this simulator that restoring would drop.
      if (cluster.startTask !== holding && cluster.startTask !== startTask) {
        throw new Error(
          "holdNextTask: another hold on this simulator is still in place",
        );
      }
      cluster.startTask = startTask;
    },
  };
}

/** A simulator and an in-process server logged in to it; both stop on dispose. */
export interface Cluster extends AsyncDisposable {
  sim: TestSim;
  s: Connected;
}

/**
 * A fresh simulator (`options`) and an in-process server logged in to it
 * with a ticket (`env` added to its environment).
 */
export async function cluster(
  options: SimOptions = {},
  env: Record<string, string> = {},
): Promise<Cluster> {
  const sim = await startSim(options);
  try {
    const s = await connect({ env: { ...simEnv(sim), ...env } });
    return {
      sim,
      s,
      async [Symbol.asyncDispose]() {
        await s.close();
        await sim.close();
      },
    };
  } catch (e) {
    await sim.close().catch(() => {});
    throw e;
  }
}

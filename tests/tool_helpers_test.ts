/** The test helpers that patch shared things refuse to end out of order (they would restore the wrong thing). */
import assert from "node:assert/strict";
import { holdNextTask, movableClock } from "./tool_helpers.ts";
import { startSim } from "./helpers.ts";
Deno.test("clocks ending out of order are refused", () => {
  const a = movableClock();
  const b = movableClock();
  assert.throws(() => a[Symbol.dispose](), /reverse order/);
  b[Symbol.dispose]();
  a[Symbol.dispose]();
});
Deno.test("two holds ending out of order are refused", async () => {
  await using sim = await startSim();
  const a = holdNextTask(sim, "qmstart");
  const b = holdNextTask(sim, "qmstop");
  assert.throws(() => a[Symbol.dispose](), /another hold/);
  b[Symbol.dispose]();
  a[Symbol.dispose]();
});

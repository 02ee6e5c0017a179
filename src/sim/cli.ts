/**
 * `deno task sim [--port N] [--https] [--task-ms N] [--no-validate]`: serves the simulator and
 * prints one JSON line with its url and the credentials it accepts.
 */
import { parseArgs } from "node:util";
import { startSimulator } from "./mod.ts";
import { loadApiSchema } from "./schema.ts";
import { selfSignedCert } from "./tls.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "8006" },
    https: { type: "boolean", default: false },
    "task-ms": { type: "string", default: "400" },
    "ticket-lifetime": { type: "string" },
    // Skip checking requests against the official schema (load tests).
    "no-validate": { type: "boolean", default: false },
  },
});
const tls = values.https ? await selfSignedCert() : undefined;
const sim = await startSimulator({
  port: Number(values.port),
  taskMs: Number(values["task-ms"]),
  ticketLifetimeS: values["ticket-lifetime"]
    ? Number(values["ticket-lifetime"])
    : undefined,
  schema: values["no-validate"]
    ? null
    : await loadApiSchema().catch(() => null),
  recordRequests: false,
  tls: tls ? { cert: tls.cert, key: tls.key } : undefined,
});
const out = {
  url: sim.url,
  ...sim.credentials,
  ...(tls ? { caFile: tls.caFile } : {}),
};
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(out) + "\n"));
Deno.addSignalListener("SIGINT", () => sim.close().then(() => Deno.exit(0)));
Deno.addSignalListener("SIGTERM", () => sim.close().then(() => Deno.exit(0)));

/** The demo wiring: a simulator in-process for `deno task demo`. */
import { startSimulator } from "./mod.ts";
import { loadApiSchema } from "./schema.ts";

export interface Demo {
  url: string;
  user: string;
  password: string;
}

/** Starts the simulated cluster on an ephemeral loopback port. */
export async function startDemo(): Promise<Demo> {
  // The official schema validates requests when it is at hand (PVE_API_SCHEMA).
  const schema = await loadApiSchema().catch(() => null);
  const sim = await startSimulator({ port: 0, taskMs: 400, schema });
  return {
    url: sim.url,
    user: sim.credentials.user,
    password: sim.credentials.password,
  };
}

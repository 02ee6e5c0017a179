/** Pieces the several-cluster tests share: PROXMOX_CONFIG files and entries. */
import type { TestSim } from "./sim_helpers.ts";

/** A PROXMOX_CONFIG file holding `doc` (as written when a string), removed on dispose. */
export async function configFile(
  doc: unknown,
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(
    path,
    typeof doc === "string" ? doc : JSON.stringify(doc),
  );
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

/** A cluster entry logging in to `sim` with its password. */
export function entry(
  sim: TestSim,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    url: sim.url,
    user: sim.credentials.user,
    password: sim.credentials.password,
    ...extra,
  };
}

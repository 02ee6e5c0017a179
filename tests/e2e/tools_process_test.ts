/**
 * The tool tests whose point is the real entry point: src/main.ts in a child
 * process over stdio, with the permissions a user grants (the same tools in
 * process: tests/inventory_test.ts and the other tool tests).
 */
import assert from "node:assert/strict";
import { selfSignedCert } from "../../sim/tls.ts";
import { callOk, connect, simEnv, startSim } from "../helpers.ts";

/**
 * The real entry point reads PROXMOX_CA_FILE at start with no more than
 * --allow-read of that file, and trusts it.
 */
Deno.test("the real entry point with --allow-read of PROXMOX_CA_FILE only: https verifies the simulator's certificate", async () => {
  const tls = await selfSignedCert();
  try {
    await using sim = await startSim({ tls });
    await using s = await connect({
      env: { ...simEnv(sim), PROXMOX_CA_FILE: tls.caFile },
      permissions: [`--allow-read=${tls.caFile}`],
    });
    const nodes = await callOk(s.client, "proxmox_list_nodes");
    assert.equal(nodes.nodes.length, 3);
    // Without the CA and with verification off: tests/inventory_test.ts
    // (the same server in process).
  } finally {
    await Deno.remove(tls.dir, { recursive: true });
  }
});

/**
 * The tool tests whose point is the real entry point: src/main.ts in a child
 * process over stdio, with the permissions a user grants (the same tools in
 * process: tests/inventory_test.ts and the other tool tests).
 */
import assert from "node:assert/strict";
import { selfSignedCert } from "../../sim/tls.ts";
import { call, callOk, connect, simEnv, startSim } from "../helpers.ts";

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

    // Without the CA, verification is on by default and fails clearly.
    await using bad = await connect({ env: simEnv(sim) });
    const r = await call(bad.client, "proxmox_list_nodes");
    assert.equal(r.isError, true);
    assert.match(
      r.text,
      /TLS verification of https:\/\/127\.0\.0\.1:\d+ failed/,
    );
    assert.match(r.text, /PROXMOX_CA_FILE/);

    // PROXMOX_VERIFY_SSL=false works, with a warning at start.
    await using insecure = await connect({
      env: { ...simEnv(sim), PROXMOX_VERIFY_SSL: "false" },
    });
    const ok = await call(insecure.client, "proxmox_list_nodes");
    assert.ok(!ok.isError, ok.text);
    assert.match(insecure.stderr(), /PROXMOX_VERIFY_SSL=false/);
  } finally {
    await Deno.remove(tls.dir, { recursive: true });
  }
});

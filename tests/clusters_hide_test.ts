/**
 * MCP_HIDE_UNPERMITTED with several clusters (a credential each): a tool is
 * hidden when no cluster's credential can use it, once every cluster's
 * permissions are read; one that any cluster permits stays listed.
 */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { configFile, entry } from "./cluster_helpers.ts";
import { connect, startSim, type TestSim } from "./helpers.ts";
import { operatorOf105 } from "./safety_helpers.ts";

/** A cluster entry logging in to `sim` with ops@pve's token (auditor, VM user of 105). */
function operator(sim: TestSim): Record<string, unknown> {
  const t = operatorOf105(sim);
  return { url: sim.url, tokenId: t.tokenId, tokenSecret: t.secret };
}

/** Resolves once `sim` has answered a read of the credential's permissions. */
async function permissionsRead(sim: TestSim): Promise<void> {
  const signal = AbortSignal.timeout(10_000);
  while (!sim.requests.some((r) => r.path === "/access/permissions")) {
    await delay(10, undefined, { signal });
  }
}

Deno.test("two clusters whose credentials both lack a privilege: its tools are hidden, with one tools/list_changed", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: operator(a), lab: operator(b) },
  });
  // lab's permissions come later: nothing is hidden before both are known.
  b.faults.inject({
    method: "GET",
    path: "/access/permissions",
    fault: { kind: "delay", ms: 300 },
  });
  await using s = await connect({
    env: { PROXMOX_CONFIG: f.path, MCP_HIDE_UNPERMITTED: "true" },
  });
  assert.equal(s.client.getServerCapabilities()?.tools?.listChanged, true);
  let changed = 0;
  const notified = new Promise<void>((resolve) =>
    s.client.setNotificationHandler("notifications/tools/list_changed", () => {
      changed++;
      resolve();
    })
  );
  await permissionsRead(a);
  const early = (await s.client.listTools()).tools.map((t) => t.name);
  assert.ok(
    early.includes("proxmox_delete_vm"),
    "listed until lab's are known",
  );
  await notified;
  const after = (await s.client.listTools()).tools.map((t) => t.name);
  assert.equal(changed, 1);
  for (const n of ["proxmox_delete_vm", "proxmox_execute_command"]) {
    assert.ok(!after.includes(n), `${n} hidden`);
  }
  for (const n of ["proxmox_list_vms", "proxmox_start_vm"]) {
    assert.ok(after.includes(n), `${n} kept`);
  }
  assert.match(
    s.stderr(),
    /Hiding \d+ tools no cluster's Proxmox credential can use: .*proxmox_delete_vm/,
  );
});

Deno.test("two clusters, one credential may do everything: no tool is hidden", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: operator(b) },
  });
  await using s = await connect({
    env: { PROXMOX_CONFIG: f.path, MCP_HIDE_UNPERMITTED: "true" },
  });
  const all = (await s.client.listTools()).tools.length;
  // home's login comes first: its permissions are read after it.
  await s.client.callTool({ name: "proxmox_list_nodes", arguments: {} });
  await Promise.all([permissionsRead(a), permissionsRead(b)]);
  // No signal comes when nothing is hidden: give the answers time to land.
  await delay(100);
  assert.equal((await s.client.listTools()).tools.length, all);
  assert.doesNotMatch(s.stderr(), /Hiding/);
});

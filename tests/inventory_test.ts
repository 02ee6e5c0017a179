/**
 * The inventory tools against the simulator, in process (the real entry
 * point with PROXMOX_CA_FILE: tests/e2e/tools_process_test.ts).
 */
import assert from "node:assert/strict";
import { simTls } from "../sim/tls.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { movableClock } from "./tool_helpers.ts";

Deno.test("inventory tools over stdio with ticket auth", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim, "ticket") });
  const { tools } = await s.client.listTools();
  const names = tools.map((t) => t.name);
  for (
    const n of [
      "proxmox_list_nodes",
      "proxmox_list_vms",
      "proxmox_get_vm_stats",
    ]
  ) {
    assert.ok(names.includes(n), `${n} listed`);
  }
  assert.equal(
    sim.requests.length,
    0,
    "no PVE request before the first tool call",
  );

  const nodes = await callOk(s.client, "proxmox_list_nodes");
  assert.deepEqual(nodes.nodes.map((n: { node: string }) => n.node), [
    "pve1",
    "pve2",
    "pve3",
  ]);
  const pve3 = nodes.nodes.find((n: { node: string }) => n.node === "pve3");
  assert.equal(pve3.status, "offline");
  assert.equal(pve3.cpu_pct, undefined);
  const pve1 = nodes.nodes.find((n: { node: string }) => n.node === "pve1");
  assert.equal(pve1.status, "online");
  assert.equal(pve1.cores, 16);
  assert.equal(pve1.maxmem_gib, 64);

  const before =
    sim.requests.filter((r) => r.path === "/cluster/resources").length;
  const all = await callOk(s.client, "proxmox_list_vms");
  assert.equal(
    sim.requests.filter((r) => r.path === "/cluster/resources").length - before,
    1,
    "one /cluster/resources request for the whole cluster",
  );
  assert.equal(all.total, sim.cluster.guests.size);
  const col = (name: string) => all.columns.indexOf(name);
  const row100 = all.rows.find((r: unknown[]) => r[col("vmid")] === 100);
  assert.equal(row100[col("name")], "web-01");
  assert.equal(row100[col("node")], "pve1");
  assert.equal(row100[col("type")], "qemu");
  assert.equal(row100[col("status")], "running");
  assert.equal(row100[col("maxmem_mib")], 4096);
  const tpl = all.rows.find((r: unknown[]) => r[col("vmid")] === 9000);
  assert.equal(tpl[col("template")], 1);
  const offline = all.rows.find((r: unknown[]) => r[col("vmid")] === 300);
  assert.equal(offline[col("status")], "unknown");

  const lxcStopped = await callOk(s.client, "proxmox_list_vms", {
    type: "lxc",
    status: "stopped",
  });
  assert.deepEqual(lxcStopped.rows.map((r: unknown[]) => r[0]), [201]);
  const byName = await callOk(s.client, "proxmox_list_vms", {
    name_contains: "DB",
    node: "pve1",
  });
  assert.deepEqual(byName.rows.map((r: unknown[]) => r[0]), [101]);

  const stats = await callOk(s.client, "proxmox_get_vm_stats", { vmid: 100 });
  assert.equal(stats.node, "pve1");
  assert.equal(stats.type, "qemu");
  assert.equal(stats.status, "running");
  assert.equal(stats.maxmem_mib, 4096);
  assert.ok(stats.uptime_s > 0);
  assert.ok(stats.hour_avg.cpu_pct > 0);
  const ct = await callOk(s.client, "proxmox_get_vm_stats", { vmid: 201 });
  assert.equal(ct.type, "lxc");
  assert.equal(ct.status, "stopped");
  assert.equal(ct.uptime_s, 0);
});

Deno.test("inventory with an API token, and the DEBUG log holds no secret", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim, "token"), LOG_LEVEL: "DEBUG" },
  });
  const vms = await callOk(s.client, "proxmox_list_vms", { node: "pve2" });
  assert.ok(vms.rows.every((r: unknown[]) => r[2] === "pve2"));
  assert.ok(vms.total >= 3);
  await callOk(s.client, "proxmox_get_vm_stats", { vmid: 200, node: "pve1" });
  const log = s.stderr();
  assert.match(
    log,
    /"msg":"PVE request"/,
    "DEBUG traces PVE requests as JSON lines",
  );
  assert.ok(
    !log.includes(sim.credentials.tokenSecret),
    "token secret not in the log",
  );
});

Deno.test("https with PROXMOX_CA_FILE verifies the simulator's certificate", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  await using s = await connect({
    env: { ...simEnv(sim), PROXMOX_CA_FILE: tls.caFile },
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
});

Deno.test("errors come back as isError results with PVE's words", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const unknown = await call(s.client, "proxmox_get_vm_stats", { vmid: 4242 });
  assert.equal(unknown.isError, true);
  assert.match(unknown.text, /Guest 4242 does not exist.*proxmox_list_vms/);
  const wrongNode = await call(s.client, "proxmox_get_vm_stats", {
    vmid: 100,
    node: "pve2",
  });
  assert.equal(wrongNode.isError, true);
  assert.match(wrongNode.text, /on node 'pve1', not 'pve2'/);
  const invalid = await call(s.client, "proxmox_get_vm_stats", { vmid: 5 });
  assert.equal(invalid.isError, true);
  assert.doesNotMatch(invalid.text, /at .*\.ts:\d+/, "no stack trace");
  const offline = await call(s.client, "proxmox_get_vm_stats", { vmid: 300 });
  assert.equal(offline.isError, true);
  assert.match(offline.text, /595.*No route to host/);

  await using badPw = await connect({
    env: { ...simEnv(sim), PROXMOX_PASSWORD: "wrong-password" },
  });
  const denied = await call(badPw.client, "proxmox_list_nodes");
  assert.equal(denied.isError, true);
  assert.match(denied.text, /401.*authentication failure/);
  assert.match(denied.text, /PROXMOX_PASSWORD/);
  assert.ok(!denied.text.includes("wrong-password"));

  await using badToken = await connect({
    env: { ...simEnv(sim, "token"), PROXMOX_TOKEN_SECRET: crypto.randomUUID() },
  });
  const tokenDenied = await call(badToken.client, "proxmox_list_vms");
  assert.equal(tokenDenied.isError, true);
  assert.match(tokenDenied.text, /401.*PROXMOX_TOKEN_SECRET/);
});

Deno.test("an unreachable Proxmox is an isError result, not a crash", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await using s = await connect({
    env: {
      PROXMOX_URL: `http://127.0.0.1:${port}`,
      PROXMOX_USER: "root@pam",
      PROXMOX_PASSWORD: "x-secret",
    },
  });
  const r = await call(s.client, "proxmox_list_nodes");
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    new RegExp(`Cannot reach Proxmox at http://127.0.0.1:${port}`),
  );
  // The server is still alive afterwards.
  const again = await call(s.client, "proxmox_list_vms");
  assert.equal(again.isError, true);
});

Deno.test("an expired ticket is renewed by logging in again mid-session", async () => {
  await using sim = await startSim({ ticketLifetimeS: 1 });
  await using s = await connect({ env: simEnv(sim) });
  await callOk(s.client, "proxmox_list_nodes");
  using clock = movableClock();
  clock.advance(1100);
  const nodes = await callOk(s.client, "proxmox_list_nodes");
  assert.equal(nodes.nodes.length, 3);
  const logins = sim.requests.filter((r) => r.path === "/access/ticket");
  assert.equal(logins.length, 2, "one login, then one re-login after expiry");
});

Deno.test("get_vm_stats without RRD data (a young guest, or rrddata failing) still answers, without hour averages", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "GET",
    path: "/nodes/pve1/qemu/100/rrddata",
    fault: { kind: "status", status: 500, message: "rrd error" },
  });
  const stats = await callOk(s.client, "proxmox_get_vm_stats", { vmid: 100 });
  assert.equal(stats.status, "running");
  assert.equal(stats.hour_avg, undefined);
  assert.ok(stats.maxmem_mib > 0);
  // A failing status read is an error: nothing to report without it.
  sim.faults.inject({
    method: "GET",
    path: "/nodes/pve1/qemu/100/status/current",
    fault: { kind: "status", status: 500, message: "got timeout" },
  });
  const r = await call(s.client, "proxmox_get_vm_stats", { vmid: 100 });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /500 to GET \/nodes\/pve1\/qemu\/100\/status\/current: got timeout/,
  );
});

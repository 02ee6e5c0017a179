/**
 * With PROXMOX_CONFIG, advice names the cluster's keys in that file, not the
 * PROXMOX_* variables (which cannot set them there): login, TLS and scope.
 * One cluster in the file is enough.
 */
import assert from "node:assert/strict";
import { simTls } from "../sim/tls.ts";
import { configFile, entry } from "./cluster_helpers.ts";
import { call, connect, startSim } from "./helpers.ts";

Deno.test("a refused login names the user and password of the file's cluster", async () => {
  await using sim = await startSim();
  await using file = await configFile({
    clusters: { lab: entry(sim, { password: "not-the-password" }) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: file.path } });
  const r = await call(s.client, "proxmox_list_nodes");
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /the user of cluster 'lab' in PROXMOX_CONFIG \(root@pam, with its realm\) and the password of cluster 'lab' in PROXMOX_CONFIG/,
  );
  assert.doesNotMatch(r.text, /PROXMOX_USER|PROXMOX_PASSWORD/);
});

Deno.test("an unverified certificate: the hint names the cluster's caFile and fingerprint keys", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  await using file = await configFile({ clusters: { lab: entry(sim) } });
  await using s = await connect({ env: { PROXMOX_CONFIG: file.path } });
  const r = await call(s.client, "proxmox_list_nodes");
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /Set the caFile of cluster 'lab' in PROXMOX_CONFIG to the cluster's CA/,
  );
  assert.ok(
    r.text.includes(
      `the fingerprint of cluster 'lab' in PROXMOX_CONFIG set to ${tls.fingerprint}`,
    ),
    r.text,
  );
  assert.doesNotMatch(r.text, /PROXMOX_CA_FILE|PROXMOX_TLS_FINGERPRINT/);
});

Deno.test("a scope refusal names the cluster's allowedVmids, not MCP_ALLOWED_VMIDS", async () => {
  await using sim = await startSim();
  await using file = await configFile({
    clusters: { lab: entry(sim, { allowedVmids: "100-199" }) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: file.path } });
  const r = await call(s.client, "proxmox_get_vm_stats", { vmid: 200 });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /VMID 200 is outside this server's scope of cluster 'lab' \(allowedVmids 100-199\)/,
  );
  assert.doesNotMatch(r.text, /MCP_ALLOWED_VMIDS/);
});

Deno.test("without PROXMOX_CONFIG the same advice names the variables", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: {
      PROXMOX_URL: sim.url,
      PROXMOX_USER: sim.credentials.user,
      PROXMOX_PASSWORD: "not-the-password",
    },
  });
  const login = await call(s.client, "proxmox_list_nodes");
  assert.match(
    login.text,
    /Check PROXMOX_USER \(root@pam, with its realm\) and PROXMOX_PASSWORD/,
  );
});

Deno.test("among several clusters, a dry run's note and the call's log line name the cluster", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using file = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: file.path } });
  const planned = await call(s.client, "proxmox_start_vm", {
    cluster: "lab",
    vmid: 101,
    dry_run: true,
  });
  assert.equal(planned.isError, undefined, planned.text);
  assert.match(planned.text, /Dry run on cluster 'lab': nothing was sent/);
  assert.match(s.stderr(), /proxmox_start_vm on cluster 'lab' ok \d+ms/);
  assert.equal(
    b.requests.filter((r) => r.method !== "GET").length,
    1,
    "login only",
  );
});

Deno.test("a file cluster whose limits come from MCP_ALLOWED_VMIDS / MCP_ALLOWED_NODES: the refusal names the variables", async () => {
  await using sim = await startSim();
  await using file = await configFile({ clusters: { lab: entry(sim) } });
  await using s = await connect({
    env: {
      PROXMOX_CONFIG: file.path,
      MCP_ALLOWED_VMIDS: "100-199",
      MCP_ALLOWED_NODES: "pve2",
    },
  });
  const vmid = await call(s.client, "proxmox_get_vm_stats", { vmid: 200 });
  assert.match(
    vmid.text,
    /VMID 200 is outside this server's scope of cluster 'lab' \(MCP_ALLOWED_VMIDS=100-199\)/,
  );
  const node = await call(s.client, "proxmox_start_vm", {
    vmid: 100,
    dry_run: true,
  });
  assert.equal(node.isError, true);
  assert.match(node.text, /not in MCP_ALLOWED_NODES=pve2/);
  assert.doesNotMatch(vmid.text + node.text, /allowedVmids|allowedNodes/);
});

Deno.test("among several clusters, a dry run whose planning stops names the cluster", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using file = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: file.path } });
  b.faults.inject({
    method: "GET",
    path: "/nodes/pve1/qemu/100/pending",
    fault: { kind: "status", status: 500, message: "boom" },
  });
  const r = await call(s.client, "proxmox_update_vm", {
    cluster: "lab",
    vmid: 100,
    cores: 4,
    dry_run: true,
  });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /^Dry run on cluster 'lab': planning stopped after 1 request\(s\)/,
  );
});

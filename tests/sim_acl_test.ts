/**
 * The simulator enforces PVE's permissions for users and API tokens with
 * ACLs: PVE's 403 wording, propagation, pools, privilege separation, the
 * listings filtered by what the caller may see, and GET /access/permissions.
 */
import assert from "node:assert/strict";
import { startCli, startSim, type TestSim } from "./sim_helpers.ts";

/** Calls the simulator's API with a token; returns status, message and data. */
async function api(
  sim: TestSim,
  auth: { tokenId: string; secret: string },
  method: string,
  path: string,
  params: Record<string, string> = {},
): Promise<{ status: number; message?: string; data: unknown }> {
  const q = new URLSearchParams(params).toString();
  const get = method === "GET" || method === "DELETE";
  const res = await fetch(
    `${sim.url}/api2/json${path}${get && q ? `?${q}` : ""}`,
    {
      method,
      headers: {
        authorization: `PVEAPIToken=${auth.tokenId}=${auth.secret}`,
        ...(get ? {} : { "content-type": "application/x-www-form-urlencoded" }),
      },
      body: get ? undefined : q,
    },
  );
  const body = await res.json().catch(() => ({}));
  return { status: res.status, message: body.message?.trim(), data: body.data };
}

Deno.test("a token without VM.PowerMgmt gets PVE's 403 naming the path and privilege", async () => {
  await using sim = await startSim();
  const t = sim.access.addToken("ops@pve", "mcp", { privsep: false });
  sim.access.grant("/vms/105", "ops@pve", "PVEAuditor");
  const r = await api(sim, t, "POST", "/nodes/pve1/qemu/105/status/start");
  assert.equal(r.status, 403);
  assert.equal(r.message, "Permission check failed (/vms/105, VM.PowerMgmt)");
  const audit = await api(sim, t, "GET", "/nodes/pve1/qemu/105/status/current");
  assert.equal(audit.status, 200);
});

Deno.test("a privilege-separated token holds its own ACLs intersected with its user's", async () => {
  await using sim = await startSim();
  sim.access.addUser("ops@pve");
  sim.access.grant("/vms", "ops@pve", "PVEVMUser");
  const t = sim.access.addToken("ops@pve", "sep");
  // Without an ACL of its own the token may do nothing.
  let r = await api(sim, t, "GET", "/nodes/pve1/qemu/105/status/current");
  assert.equal(r.message, "Permission check failed (/vms/105, VM.Audit)");
  // Its own ACL grants more than the user has: only the overlap counts.
  sim.access.grant("/", t.tokenId, "Administrator");
  r = await api(sim, t, "POST", "/nodes/pve1/qemu/105/status/start");
  assert.equal(r.status, 200);
  r = await api(sim, t, "DELETE", "/nodes/pve1/qemu/105");
  assert.equal(r.message, "Permission check failed (/vms/105, VM.Allocate)");
  const perms = await api(sim, t, "GET", "/access/permissions", {
    path: "/vms/105",
  });
  const held = Object.keys(
    (perms.data as Record<string, Record<string, number>>)["/vms/105"],
  ).sort();
  assert.ok(held.includes("VM.PowerMgmt") && !held.includes("VM.Allocate"));
  const info = await api(sim, t, "GET", "/access/users/ops@pve/token/sep");
  assert.equal(info.message, "Permission check failed");
});

Deno.test("ACLs: a deeper path replaces the inherited roles, propagate=0 stays on its path, pools reach their members", async () => {
  await using sim = await startSim();
  const t = sim.access.addToken("dev@pve", "mcp", { privsep: false });
  sim.access.grant("/vms", "dev@pve", "PVEVMAdmin");
  sim.access.grant("/vms/101", "dev@pve", "PVEAuditor");
  sim.access.grant("/nodes", "dev@pve", "PVEAuditor", { propagate: false });
  sim.access.addPool("dev", { vms: [200] });
  sim.access.grant("/pool/dev", "ops@pve", "PVEVMUser");
  const u = sim.access.addToken("ops@pve", "mcp", { privsep: false });

  let r = await api(sim, t, "POST", "/nodes/pve1/qemu/101/status/start");
  assert.equal(r.message, "Permission check failed (/vms/101, VM.PowerMgmt)");
  r = await api(sim, t, "GET", "/nodes/pve1/status");
  assert.equal(r.message, "Permission check failed (/nodes/pve1, Sys.Audit)");
  r = await api(sim, u, "GET", "/nodes/pve1/lxc/200/status/current");
  assert.equal(r.status, 200);
  r = await api(sim, u, "GET", "/nodes/pve1/qemu/100/status/current");
  assert.equal(r.message, "Permission check failed (/vms/100, VM.Audit)");
  // Listings show only what the caller may audit.
  const list = await api(sim, u, "GET", "/cluster/resources", { type: "vm" });
  assert.deepEqual(
    (list.data as { vmid: number }[]).map((g) => g.vmid),
    [200],
  );
  const perms = (await api(sim, u, "GET", "/access/permissions"))
    .data as Record<
      string,
      Record<string, number>
    >;
  assert.deepEqual(Object.keys(perms).sort(), ["/pool/dev", "/vms/200"]);
  assert.equal(perms["/pool/dev"]["VM.PowerMgmt"], 1);
  assert.equal(
    perms["/vms/200"]["VM.PowerMgmt"],
    0,
    "pool-derived: not propagated",
  );
});

Deno.test("root@pam and its default token hold every privilege; /access/permissions answers path → {priv: 1}", async () => {
  await using sim = await startSim();
  const root = {
    tokenId: sim.credentials.tokenId,
    secret: sim.credentials.tokenSecret,
  };
  const perms = (await api(sim, root, "GET", "/access/permissions"))
    .data as Record<
      string,
      Record<string, number>
    >;
  assert.equal(perms["/"]["VM.PowerMgmt"], 1);
  assert.equal(perms["/vms"]["Sys.Audit"], 1);
  // Not itself (a token is not its user), but with root's User.Modify.
  const r = await api(sim, root, "GET", "/access/users/root@pam/token/mcp");
  assert.deepEqual(r.data, { privsep: 0, expire: 0 });
});

Deno.test("PVE 8.4: the agent needs VM.Monitor", async () => {
  await using sim = await startSim({ pveVersion: "8.4" });
  const t = sim.access.addToken("ops@pve", "mcp", { privsep: false });
  sim.access.grant("/vms/101", "ops@pve", "PVEVMUser");
  const r = await api(sim, t, "POST", "/nodes/pve1/qemu/101/agent/exec", {
    command: "uname",
  });
  assert.equal(r.message, "Permission check failed (/vms/101, VM.Monitor)");
});

Deno.test("a restricted user logs in with a ticket; creating a guest needs VM.Allocate", async () => {
  await using sim = await startSim();
  sim.access.addUser("ops@pve", "secret-pass-1");
  sim.access.grant("/", "ops@pve", "PVEVMUser");
  const login = await fetch(`${sim.url}/api2/json/access/ticket`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "username=ops%40pve&password=secret-pass-1",
  });
  assert.equal(login.status, 200);
  const { data } = await login.json();
  const res = await fetch(`${sim.url}/api2/json/nodes/pve1/lxc`, {
    method: "POST",
    headers: {
      cookie: `PVEAuthCookie=${encodeURIComponent(data.ticket)}`,
      csrfpreventiontoken: data.CSRFPreventionToken,
      "content-type": "application/x-www-form-urlencoded",
    },
    body:
      "vmid=300&ostemplate=local%3Avztmpl%2Fdebian-12-standard_12.7-1_amd64.tar.zst",
  });
  assert.equal(res.status, 403);
  assert.equal((await res.json()).message.trim(), "Permission check failed");
});

Deno.test("deno task sim --token adds a restricted, privilege-separated token and prints its secret", async () => {
  const { info, stop } = await startCli([
    "--no-validate",
    "--token",
    "ops@pve!mcp:PVEAuditor@/,PVEVMUser@/vms/105",
  ]);
  try {
    assert.equal(info.tokens[0].tokenId, "ops@pve!mcp");
    const t = {
      tokenId: info.tokens[0].tokenId,
      secret: info.tokens[0].tokenSecret,
    };
    const sim = { url: info.url } as TestSim;
    const ok = await api(sim, t, "POST", "/nodes/pve1/qemu/105/status/start");
    assert.equal(ok.status, 200);
    const no = await api(sim, t, "POST", "/nodes/pve1/qemu/100/status/start");
    assert.equal(
      no.message,
      "Permission check failed (/vms/100, VM.PowerMgmt)",
    );
  } finally {
    await stop();
  }
});

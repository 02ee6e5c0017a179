/** PveClient details that the e2e tests cannot reach through a tool. */
import assert from "node:assert/strict";
import { encodeParams, PveClient } from "../src/proxmox/client.ts";
import { parseUpid, taskSucceeded } from "../src/proxmox/tasks.ts";
import { startSim } from "./helpers.ts";

Deno.test("a ticket is renewed with itself before it expires, without the password", async () => {
  await using sim = await startSim();
  const pve = new PveClient({
    baseUrl: sim.url,
    auth: {
      kind: "password",
      user: sim.credentials.user,
      password: sim.credentials.password,
    },
    ticketRenewMs: 150,
  });
  await pve.get("/version");
  await new Promise((r) => setTimeout(r, 200));
  await pve.get("/version");
  const logins = sim.requests.filter((r) => r.path === "/access/ticket");
  assert.equal(logins.length, 2);
  assert.equal(logins[0].params.password, sim.credentials.password);
  assert.match(
    String(logins[1].params.password),
    /^PVE:root@pam:[0-9A-F]{8}::/,
    "renewed with the ticket",
  );
});

Deno.test("writes carry the CSRF token; form encoding sends booleans as 1/0 and arrays as repeated keys", async () => {
  assert.equal(
    encodeParams({
      a: true,
      b: false,
      command: ["ls", "-l"],
      skip: undefined,
      s: "a b&c",
    }),
    "a=1&b=0&command=ls&command=-l&s=a%20b%26c",
  );
  await using sim = await startSim();
  const pve = new PveClient({
    baseUrl: sim.url,
    auth: {
      kind: "password",
      user: sim.credentials.user,
      password: sim.credentials.password,
    },
  });
  // The simulator answers 401 to a write without the CSRF token, so success shows it was sent.
  const upid = await pve.post<string>("/nodes/pve2/qemu/102/status/start");
  assert.equal(parseUpid(upid)?.node, "pve2");
});

Deno.test("UPIDs are parsed as PVE's regex says; WARNINGS count as success", () => {
  const u = parseUpid(
    "UPID:pve1:00001A2B:0004C3D5:68B4F0A1:qmstart:100:root@pam!mcp:",
  );
  assert.deepEqual(
    u && [u.node, u.pid, u.type, u.id, u.user],
    ["pve1", 0x1a2b, "qmstart", "100", "root@pam!mcp"],
  );
  assert.equal(parseUpid("UPID:pve1:1:2:3:qmstart:100:root@pam:"), null);
  assert.equal(
    parseUpid("UPID:pve1:00001A2B:0004C3D5:68B4F0A1:qmstart:100:root@pam"),
    null,
    "trailing colon",
  );
  assert.ok(taskSucceeded("OK") && taskSucceeded("WARNINGS: 2"));
  assert.ok(
    !taskSucceeded("VM 100 already running") &&
      !taskSucceeded("unexpected status"),
  );
});

/**
 * TLS to Proxmox: certificate pinning by fingerprint, checked after the
 * handshake and before any request (or credential) is sent; hints that fit
 * the configuration (a CA file that does not verify, a self-signed
 * certificate used as its own CA); a write that got no answer. The server in
 * process against an HTTPS simulator. The real entry point with `deno task
 * start`'s permissions and a company shell's environment:
 * tests/e2e/tls_env_test.ts.
 */
import assert from "node:assert/strict";
import { PveClient } from "../src/proxmox/client.ts";
import { PveError } from "../src/proxmox/errors.ts";
import { caAsEndEntityCert, simTls } from "../sim/tls.ts";
import {
  call,
  callOk,
  connect,
  simEnv,
  startSim,
  type TestSim,
} from "./helpers.ts";

function tokenClient(
  sim: TestSim,
  extra: Partial<ConstructorParameters<typeof PveClient>[0]>,
): PveClient {
  return new PveClient({
    baseUrl: sim.url,
    auth: {
      kind: "token",
      tokenId: sim.credentials.tokenId,
      secret: sim.credentials.tokenSecret,
    },
    ...extra,
  });
}

Deno.test("a pinned fingerprint that matches is enough: no CA, no verification off", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  for (
    const fp of [
      tls.fingerprint,
      tls.fingerprint.toLowerCase(),
    ]
  ) {
    const pve = tokenClient(sim, { fingerprints: [fp.toUpperCase()] });
    assert.ok(await pve.get("/version"));
    assert.ok(await pve.post("/nodes/pve2/qemu/106/status/start"));
  }
});

Deno.test("a mismatching fingerprint fails closed: no request (nor its credentials) reaches Proxmox, and the error shows the presented one", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  const wrong = tls.fingerprint.replace(/^../, (b) => b === "00" ? "01" : "00");
  for (const auth of ["token", "ticket"] as const) {
    const pve = auth === "token"
      ? tokenClient(sim, { fingerprints: [wrong] })
      : new PveClient({
        baseUrl: sim.url,
        auth: {
          kind: "password",
          user: sim.credentials.user,
          password: sim.credentials.password,
        },
        fingerprints: [wrong],
      });
    for (const method of ["GET", "POST"]) {
      let err: unknown;
      try {
        await pve.request(method, "/nodes/pve1/qemu/100/status/current");
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof PveError, String(err));
      assert.equal(err.kind, "tls");
      assert.ok(
        err.message.includes(tls.fingerprint),
        "names the presented fingerprint",
      );
      assert.match(err.message, /nothing was sent/);
    }
  }
  assert.equal(sim.requests.length, 0, "no request reached Proxmox");
});

Deno.test("PROXMOX_CA_FILE that does not verify the certificate: the hint names that file and the presented fingerprint, never 'Set PROXMOX_CA_FILE'", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  const other = await caAsEndEntityCert(); // any other CA
  try {
    await using s = await connect({
      env: { ...simEnv(sim), PROXMOX_CA_FILE: other.caFile },
    });
    const r = await call(s.client, "proxmox_list_nodes");
    assert.equal(r.isError, true);
    assert.match(
      r.text,
      /TLS verification of https:\/\/127\.0\.0\.1:\d+ failed/,
    );
    assert.ok(
      r.text.includes(`PROXMOX_CA_FILE (${other.caFile}) does not verify`),
    );
    assert.ok(!r.text.includes("Set PROXMOX_CA_FILE"));
    assert.ok(r.text.includes(`PROXMOX_TLS_FINGERPRINT=${tls.fingerprint}`));
    assert.equal(sim.requests.length, 0);
  } finally {
    await Deno.remove(other.dir, { recursive: true });
  }
});

Deno.test("a self-signed certificate used as its own CA (CaUsedAsEndEntity) gets a hint to pin its fingerprint, and pinning it works", async () => {
  const own = await caAsEndEntityCert();
  try {
    await using sim = await startSim({ tls: own });
    await using s = await connect({
      env: { ...simEnv(sim), PROXMOX_CA_FILE: own.caFile },
    });
    const r = await call(s.client, "proxmox_list_nodes");
    assert.equal(r.isError, true);
    assert.match(r.text, /CaUsedAsEndEntity/);
    assert.match(r.text, /self-signed and marked as a CA/);
    assert.ok(r.text.includes(`PROXMOX_TLS_FINGERPRINT=${own.fingerprint}`));

    await using pinned = await connect({
      env: { ...simEnv(sim), PROXMOX_TLS_FINGERPRINT: own.fingerprint },
    });
    const nodes = await callOk(pinned.client, "proxmox_list_nodes");
    assert.equal(nodes.nodes.length, 3);
  } finally {
    await Deno.remove(own.dir, { recursive: true });
  }
});

Deno.test("a tool whose write got no answer says it may have been applied, and which task Proxmox started for the guest", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  await using s = await connect({
    env: {
      ...simEnv(sim),
      PROXMOX_VERIFY_SSL: "false",
      PROXMOX_TIMEOUT: "0.5",
    },
  });
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve2/qemu/102/status/start",
    fault: { kind: "hang", apply: true },
  });
  const r = await call(s.client, "proxmox_start_vm", { vmid: 102 });
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /Proxmox did not answer within 0\.5 s; the request may have been applied/,
  );
  assert.match(
    r.text,
    /Proxmox started 1 task\(s\) for guest 102 on pve2 in the last minute: qmstart .*\(UPID:pve2:[^)]+\)/,
  );
  const starts = sim.requests.filter((q) =>
    q.method === "POST" && q.rawPath.endsWith("/102/status/start")
  );
  assert.equal(starts.length, 1, "sent once");
  const lookups = sim.requests.filter((q) =>
    q.path === "/nodes/{node}/tasks" && q.params.vmid === "102"
  );
  assert.equal(lookups.length, 1);
  assert.equal(lookups[0].params.source, "all", "running tasks too");

  // Where nothing was started, it says so.
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve2/qemu/106/status/start",
    fault: { kind: "hang" },
  });
  const none = await call(s.client, "proxmox_start_vm", { vmid: 106 });
  assert.equal(none.isError, true);
  assert.match(none.text, /lists no task for guest 106 on pve2/);

  // An answer cut short: carried out, its UPID lost; the task list has it.
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve1/qemu/101/status/shutdown",
    fault: { kind: "truncate" },
  });
  const cut = await call(s.client, "proxmox_stop_vm", { vmid: 101 });
  assert.equal(cut.isError, true);
  assert.match(
    cut.text,
    /not JSON \(cut short or garbled\); the request was accepted/,
  );
  assert.match(
    cut.text,
    /Proxmox started 1 task\(s\) for guest 101 on pve1 in the last minute: qmshutdown/,
  );
});

Deno.test("a mismatching fingerprint is checked after the handshake and before the request: the server receives not one byte of it", async () => {
  const tls = await simTls();
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: tls.cert,
    key: tls.key,
  });
  const received = (async () => {
    let bytes = 0;
    let handshakes = 0;
    for (let i = 0; i < 2; i++) { // a GET and a POST: one connection each
      const conn = await listener.accept();
      try {
        await conn.handshake();
        handshakes++;
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          bytes += n;
        }
      } finally {
        try {
          conn.close();
        } catch { /* closed by the peer */ }
      }
    }
    return { bytes, handshakes };
  })();
  const wrong = tls.fingerprint.replace(/^../, (b) => b === "00" ? "01" : "00");
  const pve = new PveClient({
    baseUrl: `https://127.0.0.1:${listener.addr.port}`,
    auth: { kind: "token", tokenId: "root@pam!mcp", secret: "not-to-be-sent" },
    fingerprints: [wrong],
  });
  for (const method of ["GET", "POST"]) {
    await assert.rejects(
      pve.request(method, "/version"),
      (e: PveError) => e.kind === "tls",
    );
  }
  const r = await received;
  listener.close();
  assert.equal(r.handshakes, 2, "the TLS handshake completed");
  assert.equal(r.bytes, 0, "no request byte (nor the token) was sent");
});

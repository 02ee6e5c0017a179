/** Simulator fault injection and the raw request log, driven with plain fetch. */
import { setTimeout as delay } from "node:timers/promises";
import assert from "node:assert/strict";
import { simTls } from "../sim/tls.ts";
import { startSim, type TestSim } from "./sim_helpers.ts";

function api(sim: TestSim) {
  const auth = {
    Authorization:
      `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
  };
  return (path: string, init: RequestInit = {}) =>
    fetch(`${sim.url}/api2/json${path}`, {
      ...init,
      headers: { ...auth, ...init.headers },
    });
}

const START = "/nodes/pve1/qemu/100/status/start";
const stopped = (sim: TestSim) => {
  const g = sim.cluster.guests.get(100)!;
  g.status = "stopped";
  g.qmpstatus = "stopped";
  return g;
};

async function waitTask(
  call: ReturnType<typeof api>,
  upid: string,
): Promise<Record<string, unknown>> {
  const node = upid.split(":")[1];
  for (;;) {
    const r = await call(
      `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`,
    );
    const { data } = await r.json();
    if (data.status === "stopped") return data;
    await delay(10);
  }
}

Deno.test("sim fault status: PVE-shaped error with that status, once, then normal answers", async () => {
  await using sim = await startSim();
  const call = api(sim);
  sim.faults.inject({
    path: "/version",
    fault: { kind: "status", status: 503 },
  });
  sim.faults.inject({
    method: "GET",
    path: /^\/nodes$/,
    times: 2,
    fault: { kind: "status", status: 595, message: "Connection refused" },
  });
  const r = await call("/version");
  assert.equal(r.status, 503);
  assert.equal(r.statusText, "Service Unavailable");
  assert.deepEqual(await r.json(), {
    data: null,
    message: "Service Unavailable\n",
  });
  assert.equal((await call("/version")).status, 200);
  for (let i = 0; i < 2; i++) {
    const n = await call("/nodes");
    assert.equal(n.status, 595);
    assert.equal((await n.json()).message, "Connection refused\n");
  }
  assert.equal((await call("/nodes")).status, 200);
  assert.equal(sim.faults.pending, 0);
});

Deno.test("sim fault status: a write answered with an error is not carried out", async () => {
  await using sim = await startSim();
  const g = stopped(sim);
  sim.faults.inject({
    method: "POST",
    path: START,
    fault: { kind: "status", status: 500 },
  });
  const r = await api(sim)(START, { method: "POST" });
  assert.equal(r.status, 500);
  await r.body?.cancel();
  await delay(100);
  assert.equal(g.status, "stopped");
  assert.equal(sim.cluster.tasks.size, 0);
});

Deno.test("sim fault method: a rule for POST leaves GET on the same path alone", async () => {
  await using sim = await startSim();
  sim.faults.inject({
    method: "POST",
    path: "/nodes/pve1/qemu/100/config",
    fault: { kind: "status", status: 500 },
  });
  const r = await api(sim)("/nodes/pve1/qemu/100/config");
  assert.equal(r.status, 200);
  await r.body?.cancel();
  assert.equal(sim.faults.pending, 1);
  sim.faults.clear();
  assert.equal(sim.faults.pending, 0);
});

Deno.test("sim fault html: a proxy's HTML error page", async () => {
  await using sim = await startSim();
  sim.faults.inject({ fault: { kind: "html", status: 502 } });
  const r = await api(sim)("/nodes");
  assert.equal(r.status, 502);
  assert.match(r.headers.get("content-type")!, /^text\/html/);
  const text = await r.text();
  assert.match(text, /<title>502 Bad Gateway<\/title>/);
  assert.throws(() => JSON.parse(text), SyntaxError);
});

Deno.test("sim fault truncate: 200 with half a JSON body, and the request was carried out", async () => {
  await using sim = await startSim();
  const g = stopped(sim);
  const call = api(sim);
  sim.faults.inject({ path: START, fault: { kind: "truncate" } });
  const r = await call(START, { method: "POST" });
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.throws(() => JSON.parse(text), SyntaxError);
  assert.match(text, /^\{"data":"UPID:pve1:/);
  const [upid] = [...sim.cluster.tasks.keys()];
  assert.equal((await waitTask(call, upid)).exitstatus, "OK");
  assert.equal(g.status, "running");
});

Deno.test("sim fault reset: the connection drops without a usable answer and nothing is done", async () => {
  await using sim = await startSim();
  const g = stopped(sim);
  sim.faults.inject({ path: START, fault: { kind: "reset" } });
  await assert.rejects(async () => {
    const r = await api(sim)(START, { method: "POST" });
    await r.text();
  }, TypeError);
  await delay(100);
  assert.equal(g.status, "stopped");
  assert.equal(sim.cluster.tasks.size, 0);
  // The next request on a fresh connection is answered.
  const ok = await api(sim)("/version");
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("sim fault reset with apply: the write is carried out, then the connection drops", async () => {
  await using sim = await startSim();
  const g = stopped(sim);
  sim.faults.inject({
    method: "POST",
    path: START,
    fault: { kind: "reset", apply: true },
  });
  await assert.rejects(async () => {
    const r = await api(sim)(START, { method: "POST" });
    await r.text();
  }, TypeError);
  const [upid] = [...sim.cluster.tasks.keys()];
  assert.equal((await waitTask(api(sim), upid)).exitstatus, "OK");
  assert.equal(g.status, "running");
});

Deno.test("sim fault delay: answered normally after the delay", async () => {
  await using sim = await startSim();
  sim.faults.inject({ path: "/version", fault: { kind: "delay", ms: 300 } });
  const t0 = performance.now();
  const r = await api(sim)("/version");
  const ms = performance.now() - t0;
  assert.equal(r.status, 200);
  assert.equal((await r.json()).data.release, sim.pveVersion);
  assert.ok(ms >= 290, `answered after ${ms} ms`);
});

Deno.test("sim fault hang: no answer until the client gives up; nothing done", async () => {
  await using sim = await startSim();
  const g = stopped(sim);
  sim.faults.inject({ path: START, fault: { kind: "hang" } });
  const t0 = performance.now();
  await assert.rejects(
    api(sim)(START, { method: "POST", signal: AbortSignal.timeout(200) }),
    (e: Error) => e.name === "TimeoutError",
  );
  assert.ok(performance.now() - t0 >= 190);
  await delay(100);
  assert.equal(g.status, "stopped");
  assert.equal(sim.cluster.tasks.size, 0);
  assert.equal(sim.faults.hanging, 0, "the client gave up: nothing held");
});

Deno.test("sim fault hang with apply: the write is carried out, the answer never comes", async () => {
  await using sim = await startSim();
  const g = stopped(sim);
  sim.faults.inject({ path: START, fault: { kind: "hang", apply: true } });
  await assert.rejects(
    api(sim)(START, { method: "POST", signal: AbortSignal.timeout(200) }),
  );
  const [upid] = [...sim.cluster.tasks.keys()];
  assert.ok(upid, "the start task was created");
  assert.equal((await waitTask(api(sim), upid)).exitstatus, "OK");
  assert.equal(g.status, "running");
  assert.equal(
    sim.requests.filter((r) => r.path.endsWith("/status/start")).length,
    1,
    "exactly one start request arrived",
  );
});

Deno.test("sim fault hang: closing the simulator ends a hung request", async () => {
  const sim = await startSim();
  sim.faults.inject({ fault: { kind: "hang" }, times: Infinity });
  const pending = api(sim)("/version").then((r) => r.text());
  await delay(100);
  assert.equal(sim.faults.hanging, 1);
  const t0 = performance.now();
  await sim.close();
  assert.ok(performance.now() - t0 < 2000, "close did not wait for the hang");
  await assert.rejects(pending);
});

Deno.test("sim fault unauthorized: the ticket is forgotten mid-session, a new login works", async () => {
  await using sim = await startSim();
  const login = async () => {
    const r = await fetch(`${sim.url}/api2/json/access/ticket`, {
      method: "POST",
      body: new URLSearchParams({
        username: sim.credentials.user,
        password: sim.credentials.password,
      }),
    });
    return (await r.json()).data.ticket as string;
  };
  const get = (ticket: string) =>
    fetch(`${sim.url}/api2/json/nodes`, {
      headers: { Cookie: `PVEAuthCookie=${encodeURIComponent(ticket)}` },
    });
  const ticket = await login();
  assert.equal((await (await get(ticket)).json()).data.length, 3);
  sim.faults.inject({ fault: { kind: "unauthorized" } });
  const r = await get(ticket);
  assert.equal(r.status, 401);
  await r.body?.cancel();
  const again = await get(ticket);
  assert.equal(again.status, 401, "the old ticket stays invalid");
  await again.body?.cancel();
  const fresh = await login();
  assert.equal((await get(fresh)).status, 200);
});

Deno.test("sim task fault fail: the next matching task ends with PVE's wording, and the work is not done", async () => {
  await using sim = await startSim();
  const g = stopped(sim);
  const call = api(sim);
  sim.faults.task({ type: "qmstart", vmid: 100 });
  const { data: upid } = await (await call(START, { method: "POST" })).json();
  const status = await waitTask(call, upid);
  assert.equal(status.exitstatus, "command 'qm start 100' failed: exit code 1");
  assert.equal(g.status, "stopped");
  const log = await (await call(
    `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`,
  )).json();
  assert.equal(
    log.data.at(-1).t,
    "TASK ERROR: command 'qm start 100' failed: exit code 1",
  );
  // Only once: the next start succeeds.
  const { data: again } = await (await call(START, { method: "POST" })).json();
  assert.equal((await waitTask(call, again)).exitstatus, "OK");
  assert.equal(g.status, "running");
});

Deno.test("sim task fault fail: custom exit status; other guests' tasks are untouched", async () => {
  await using sim = await startSim();
  const call = api(sim);
  sim.faults.task({ vmid: 100, fail: "start failed: QEMU exited with code 1" });
  const other = sim.cluster.guests.get(101);
  assert.ok(other);
  const { data: upid } = await (await call(START, { method: "POST" })).json();
  // 100 is running in the seed: without the fault this would fail differently.
  assert.equal(
    (await waitTask(call, upid)).exitstatus,
    "start failed: QEMU exited with code 1",
  );
});

Deno.test("sim task fault endless: runs until stopped through the API", async () => {
  await using sim = await startSim();
  stopped(sim);
  const call = api(sim);
  sim.faults.task({ type: "qmstart", endless: true });
  const { data: upid } = await (await call(START, { method: "POST" })).json();
  await delay(300);
  const path = `/nodes/pve1/tasks/${encodeURIComponent(upid)}`;
  const { data: running } = await (await call(`${path}/status`)).json();
  assert.equal(running.status, "running");
  const del = await call(path, { method: "DELETE" });
  assert.equal(del.status, 200);
  await del.body?.cancel();
  const status = await waitTask(call, upid);
  assert.equal(status.exitstatus, "interrupted by signal");
});

Deno.test("sim request log: every request with its raw path and arrival time, faulted ones too", async () => {
  await using sim = await startSim();
  sim.faults.inject({ path: "/nodes", fault: { kind: "status", status: 502 } });
  const t0 = Date.now();
  const r = await api(sim)("/nodes?type=x");
  await r.body?.cancel();
  const unauth = await fetch(`${sim.url}/api2/json/cluster/resources`);
  await unauth.body?.cancel();
  const snap = await api(sim)(
    "/nodes/pve1/qemu/100/snapshot/pre%2Dup/rollback",
    { method: "POST" },
  );
  await snap.body?.cancel();
  const [nodes, resources, snapshot] = sim.requests;
  assert.equal(sim.requests.length, 3);
  assert.equal(nodes.method, "GET");
  assert.equal(nodes.path, "/nodes");
  assert.equal(nodes.rawPath, "/api2/json/nodes");
  assert.deepEqual(nodes.params, { type: "x" });
  assert.ok(nodes.at >= t0 && nodes.at <= Date.now());
  assert.equal(resources.path, "/cluster/resources", "unauthenticated too");
  assert.equal(
    snapshot.rawPath,
    "/api2/json/nodes/pve1/qemu/100/snapshot/pre%2Dup/rollback",
  );
  assert.equal(snapshot.params.snapname, "pre-up");
});

Deno.test("sim request log: the raw path keeps dot segments a raw client sent", async () => {
  await using sim = await startSim();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: sim.port });
  await conn.write(
    new TextEncoder().encode(
      "DELETE /api2/json/nodes/pve1/qemu/100/snapshot/.. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ),
  );
  const buf = new Uint8Array(4096);
  while ((await conn.read(buf)) !== null) { /* drain */ }
  conn.close();
  assert.equal(
    sim.requests[0].rawPath,
    "/api2/json/nodes/pve1/qemu/100/snapshot/..",
  );
  assert.equal(sim.cluster.guests.has(100), true);
});

Deno.test("sim faults over HTTPS: reset drops the connection, hang holds until the client gives up", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls: { cert: tls.cert, key: tls.key } });
  const client = Deno.createHttpClient({ caCerts: [tls.ca] });
  try {
    const call = (init: RequestInit = {}) =>
      fetch(`${sim.url}/api2/json/version`, {
        ...init,
        client,
        headers: {
          Authorization:
            `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
        },
      });
    sim.faults.inject({ fault: { kind: "reset" } });
    await assert.rejects(async () => await (await call()).text(), TypeError);
    sim.faults.inject({ fault: { kind: "hang" } });
    await assert.rejects(call({ signal: AbortSignal.timeout(200) }));
    await delay(100);
    assert.equal(sim.faults.hanging, 0);
    const ok = await call();
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    assert.equal(sim.requests.length, 3);
  } finally {
    client.close();
  }
});

async function rawExchange(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch { /* reset by peer: also no more bytes */ }
  try {
    conn.close();
  } catch { /* closed */ }
  return new TextDecoder().decode(
    new Uint8Array(chunks.flatMap((c) => [...c])),
  );
}

Deno.test("sim rawSockets: a reset closes the connection before any byte of an answer; without it a head goes out first", async () => {
  for (const rawSockets of [true, false]) {
    await using sim = await startSim({ rawSockets });
    const auth =
      `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`;
    const request =
      `GET /api2/json/version HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`;
    sim.faults.inject({ fault: { kind: "reset" } });
    const answer = await rawExchange(sim.port, request);
    if (rawSockets) assert.equal(answer, "", "not one byte");
    else assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(sim.requests.length, 1, "the request arrived");
    // Later requests are served as usual.
    const ok = await rawExchange(
      sim.port,
      request.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
    );
    assert.match(ok, /^HTTP\/1\.1 200 OK\r\n[\s\S]*"release":/);
  }
});

Deno.test("sim rawSockets: node:http sees the reset as ECONNRESET, over HTTP and HTTPS", async () => {
  const http = await import("node:http");
  const https = await import("node:https");
  const tls = await simTls();
  for (const secure of [false, true]) {
    await using sim = await startSim({
      rawSockets: true,
      ...(secure ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    });
    sim.faults.inject({ fault: { kind: "reset" } });
    const code = await new Promise<string>((resolve) => {
      const req = (secure ? https : http).request(
        `${sim.url}/api2/json/version`,
        {
          headers: {
            Authorization:
              `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
          },
          ...(secure ? { ca: tls.ca } : {}),
        },
        (res) => {
          res.resume();
          resolve(`answered ${res.statusCode}`);
        },
      );
      req.on(
        "error",
        (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message),
      );
      req.end();
    });
    assert.equal(code, "ECONNRESET", secure ? "https" : "http");
    assert.equal(sim.requests.length, 1);
  }
});

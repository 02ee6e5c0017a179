/** PveClient details that the e2e tests cannot reach through a tool. */
import { setTimeout as delay } from "node:timers/promises";
import assert from "node:assert/strict";
import {
  callSignal,
  encodeParams,
  PveClient,
  type PveClientOptions,
} from "../src/proxmox/client.ts";
import { PveError } from "../src/proxmox/errors.ts";
import { parseUpid, taskSucceeded } from "../src/proxmox/tasks.ts";
import type { Fault } from "../sim/mod.ts";
import { type SimTls, simTls } from "../sim/tls.ts";
import { startSim, type TestSim } from "./helpers.ts";
import { sideBySide, type SideCase } from "./tool_helpers.ts";

Deno.test("a ticket is renewed with itself before it expires, without the password", async () => {
  await using sim = await startSim();
  const pve = clientFor(sim, "http", undefined, { ticketRenewMs: 150 });
  await pve.get("/version");
  await delay(200);
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
  const pve = clientFor(sim, "http", undefined);
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

// --- Exactly-once writes and network faults (issue 9 items 2, 3, 9) -------

type TlsPath = "http" | "https+ca" | "https, verify off" | "https, pinned";

const TLS_PATHS: TlsPath[] = [
  "http",
  "https+ca",
  "https, verify off",
  "https, pinned",
];

/** A client of `sim` the way a TLS path sets it up. */
function clientFor(
  sim: TestSim,
  path: TlsPath,
  tls: SimTls | undefined,
  extra: Partial<PveClientOptions> = {},
): PveClient {
  return new PveClient({
    baseUrl: sim.url,
    auth: {
      kind: "password",
      user: sim.credentials.user,
      password: sim.credentials.password,
    },
    ...(path === "https+ca" ? { caCert: tls!.ca, caFile: tls!.caFile } : {}),
    ...(path === "https, verify off" ? { verifySsl: false } : {}),
    ...(path === "https, pinned" ? { fingerprints: [tls!.fingerprint] } : {}),
    ...extra,
  });
}

async function rejection(p: Promise<unknown>): Promise<PveError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PveError, `a PveError, not ${e}`);
    return e;
  }
  throw new assert.AssertionError({ message: "expected a PveError" });
}

const START = "/nodes/pve1/qemu/100/status/start";
const sleep = (ms: number) => delay(ms);

/** A simulator for a TLS path (https with the worker's shared CA, http for "http"). */
async function simFor(path: TlsPath): Promise<{ sim: TestSim; tls?: SimTls }> {
  const tls = path === "http" ? undefined : await simTls();
  return { sim: await startSim(tls ? { tls } : {}), tls };
}

/** A simulator and a client of it; the simulator closes on dispose. */
interface Env extends AsyncDisposable {
  sim: TestSim;
  pve: PveClient;
}

async function envFor(
  path: TlsPath,
  extra: Partial<PveClientOptions> = {},
): Promise<Env> {
  const { sim, tls } = await simFor(path);
  return {
    sim,
    pve: clientFor(sim, path, tls, extra),
    [Symbol.asyncDispose]: () => sim.close(),
  };
}

const hangingWrites: SideCase<Env>[] = TLS_PATHS.map((path) => ({
  name:
    `a write that never gets an answer is sent exactly once and reported uncertain (${path})`,
  setup: () => envFor(path, { timeoutMs: 400 }),
  async run({ sim, pve }) {
    // A first request leaves a keep-alive connection for the write to reuse.
    await pve.get("/version");
    sim.faults.inject({
      method: "POST",
      path: START,
      fault: { kind: "hang", apply: true },
    });
    const e = await rejection(pve.post(START));
    assert.equal(e.kind, "uncertain");
    assert.match(
      e.message,
      /^Proxmox did not answer within 0\.4 s; the request may have been applied \(POST \/nodes\/pve1\/qemu\/100\/status\/start\)/,
    );
    await sleep(600); // a re-send would arrive in this time
    const starts = sim.requests.filter((r) =>
      r.method === "POST" && r.rawPath.endsWith("/status/start")
    );
    assert.equal(starts.length, 1, "the write reached Proxmox exactly once");
    // The next call works.
    assert.ok(await pve.get("/version"));
  },
}));

const timedOutRead: SideCase<Env> = {
  name:
    "a read that times out is kind timeout, sent once, and the next read works (verify off)",
  setup: () => envFor("https, verify off", { timeoutMs: 300 }),
  async run({ sim, pve }) {
    await pve.get("/version");
    sim.faults.inject({
      method: "GET",
      path: "/nodes",
      fault: { kind: "hang" },
    });
    const e = await rejection(pve.get("/nodes"));
    assert.equal(e.kind, "timeout");
    assert.match(
      e.message,
      /^Proxmox did not answer within 0\.3 s \(GET \/nodes\)/,
    );
    await sleep(500);
    assert.equal(sim.requests.filter((r) => r.path === "/nodes").length, 1);
    assert.ok(Array.isArray(await pve.get("/nodes")));
  },
};

Deno.test("a write refused with 401 (expired ticket) is logged in again and sent once more: PVE checks auth before acting", async () => {
  await using sim = await startSim();
  const pve = clientFor(sim, "http", undefined);
  await pve.get("/version");
  sim.faults.inject({
    method: "POST",
    path: START,
    fault: { kind: "unauthorized" },
  });
  const upid = await pve.post<string>(START);
  assert.match(upid, /^UPID:pve1:/);
  const starts = sim.requests.filter((r) =>
    r.method === "POST" && r.rawPath.endsWith("/status/start")
  );
  assert.equal(starts.length, 2, "the refused one and the one carried out");
  assert.equal(sim.cluster.tasks.size >= 1, true);
});

Deno.test("network faults become PveErrors with a kind and advice, and the next call works", async (t) => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  for (const path of ["http", "https, verify off"] as const) {
    await using plain = path === "http" ? await startSim() : undefined;
    const target = plain ?? sim;
    const pve = clientFor(target, path, tls);
    await pve.get("/version");
    const cases: {
      name: string;
      method: "GET" | "POST";
      fault: Fault;
      check: (e: PveError) => void;
    }[] = [
      {
        name: "reset on a read",
        method: "GET",
        fault: { kind: "reset" },
        check: (e) => {
          assert.equal(e.kind, "network");
          assert.match(
            e.message,
            /connection to Proxmox dropped before it answered/,
          );
          assert.match(e.message, /Try again/);
        },
      },
      {
        name: "reset on a write",
        method: "POST",
        fault: { kind: "reset" },
        check: (e) => {
          assert.equal(e.kind, "uncertain");
          assert.match(
            e.message,
            /dropped before it answered .*; the request may have been applied/,
          );
        },
      },
      {
        name: "truncated JSON on a read",
        method: "GET",
        fault: { kind: "truncate" },
        check: (e) => {
          assert.equal(e.kind, "badResponse");
          assert.equal(e.status, 200);
          assert.match(e.message, /not JSON \(cut short or garbled\)/);
        },
      },
      {
        name: "truncated JSON on a write",
        method: "POST",
        fault: { kind: "truncate" },
        check: (e) => {
          assert.equal(e.kind, "badResponse");
          assert.match(e.message, /the request was accepted/);
        },
      },
      {
        name: "HTML error page",
        method: "GET",
        fault: { kind: "html", status: 502 },
        check: (e) => {
          assert.equal(e.kind, "server");
          assert.equal(e.status, 502);
          assert.match(
            e.message,
            /^Proxmox answered 502 to GET \/nodes\/pve1\/qemu\/100\/status\/current: 502 Bad Gateway\. A proxy/,
          );
          assert.doesNotMatch(e.message, /<|nginx/);
        },
      },
      {
        name: "503",
        method: "GET",
        fault: { kind: "status", status: 503 },
        check: (e) => {
          assert.equal(e.kind, "server");
          assert.match(
            e.message,
            /restarting or overloaded: try again shortly/,
          );
        },
      },
      {
        name: "595",
        method: "GET",
        fault: { kind: "status", status: 595, message: "Connection refused" },
        check: (e) => {
          assert.equal(e.kind, "nodeUnreachable");
          assert.match(e.message, /A node is unreachable/);
        },
      },
    ];
    for (const c of cases) {
      await t.step(`${c.name} (${path})`, async () => {
        const at = c.method === "GET"
          ? "/nodes/pve1/qemu/100/status/current"
          : "/nodes/pve1/qemu/100/status/stop";
        target.faults.inject({ method: c.method, path: at, fault: c.fault });
        const before = target.requests.length;
        c.check(await rejection(pve.request(c.method, at)));
        assert.equal(
          target.requests.filter((r, i) =>
            i >= before && r.rawPath.endsWith(at)
          ).length,
          1,
          "sent once",
        );
        assert.ok(await pve.get("/version"), "the next call works");
      });
    }
  }
});

const cancelledWrites: SideCase<Env>[] = (
  ["http", "https, verify off"] as const
).map((path) => ({
  name:
    `a write cancelled by its caller is kind cancelled, may have been applied, and is not sent again (${path})`,
  setup: () => envFor(path),
  async run({ sim, pve }) {
    await pve.get("/version");
    sim.faults.inject({
      method: "POST",
      path: START,
      fault: { kind: "hang", apply: true },
    });
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort("the client went away"), 150);
    const e = await rejection(
      pve.request("POST", START, undefined, ctrl.signal),
    );
    assert.equal(e.kind, "cancelled");
    assert.match(
      e.message,
      /cancelled before Proxmox answered; it may have been applied/,
    );
    await sleep(300);
    assert.equal(
      sim.requests.filter((r) => r.rawPath.endsWith("/status/start")).length,
      1,
    );
  },
}));

sideBySide(
  "writes that never get an answer, a read that times out and cancelled writes: each sent once, over every TLS path",
  [...hangingWrites, timedOutRead, ...cancelledWrites],
);

Deno.test("a CA that is not a valid PEM certificate is a tls PveError naming PROXMOX_CA_FILE, and nothing is sent", async () => {
  await using sim = await startSim();
  const pve = new PveClient({
    baseUrl: sim.url.replace("http:", "https:"),
    auth: { kind: "token", tokenId: "root@pam!mcp", secret: "s" },
    caCert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    caFile: "/etc/proxmox-mcp/ca.pem",
  });
  const e = await rejection(pve.get("/version"));
  assert.equal(e.kind, "tls");
  assert.match(
    e.message,
    /^PROXMOX_CA_FILE \(\/etc\/proxmox-mcp\/ca\.pem\) holds no valid PEM certificate \(.*BadEncoding\); nothing was sent/,
  );
  assert.equal(sim.requests.length, 0);
});

Deno.test("the shared guest lookup outlives a cancelled first caller: a fresh client's login and request run without its signal", async () => {
  await using sim = await startSim();
  const pve = clientFor(sim, "http", undefined);
  const first = new AbortController();
  // The first caller starts the shared lookup (a login, then the request)
  // and is cancelled at once; a second caller in the same window shares it.
  const mine = callSignal.run(first.signal, () => pve.guests());
  first.abort();
  const theirs = await pve.guests();
  assert.ok(theirs.length > 0, "the second caller got the guests");
  await mine.catch(() => {});
});

/**
 * Beyond one process: two replicas of the image behind Caddy, started from the shipped
 * docker-compose.yaml + docker-compose.replicas.yaml and Caddyfile on the testbed (host
 * networking: each replica on its own loopback port, Caddy's MCP_UPSTREAM lists both), against
 * the simulator running here. Which replica served a call is read from the replicas' own logs
 * (one INFO line per tool call).
 *   - 2026-07-28 calls (stateless) spread over both replicas;
 *   - a 2025-era session (Streamable HTTP, or HTTP+SSE) stays on the replica that opened it:
 *     Caddy hashes the client's address (clients here at 127.0.0.2, .3, ...);
 *   - one replica stopped (docker stop: SIGTERM) under a bounded load (4 readers, 1 writer,
 *     about 5 s) of stateless calls: no call runs twice (every write reaches Proxmox once if it
 *     succeeded, never if it failed; the replicas logged exactly the reads that succeeded); a
 *     call fails only as Caddy's 502 for a request no replica received, and only until Caddy's
 *     next /healthz probe (REPLICAS_LOSSLESS=1: none);
 *     the other replica's sessions go on, the stopped one's get 404 and the client recovers by
 *     initializing again.
 */
import {
  Client,
  SdkHttpError,
  SSEClientTransport,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { callOk, simEnv, startSim, type TestSim } from "../helpers.ts";
import {
  composeDir,
  dockerEnv,
  freePort,
  type Run,
  run,
  trustingFetch,
  waitFor,
} from "./deploy_helpers.ts";

/** The image deploy_test.ts builds (built here when missing); MCP_TEST_IMAGE for another. */
const IMAGE = Deno.env.get("MCP_TEST_IMAGE") ?? "proxmox-mcp:deploy-test";
const TOKEN = "replicas-token-0123456789abcdef";
/** MCP_STATE_SECRET in .env, shared by the replicas (docker-compose.replicas.yaml requires it). */
const STATE_SECRET = "replicas-state-secret-0123456789abcdef0123456789";
const PROJECT = "proxmox-mcp-replicas-test";
const REPLICAS = ["proxmox-mcp", "proxmox-mcp-2"] as const;
type Replica = typeof REPLICAS[number];

const TESTBED = Deno.env.get("TESTBED_DIR");
const ready = !!(TESTBED && Deno.env.get("DOCKER_HOST"));

/** The compose project: both replicas and Caddy, as the shipped files describe them. */
class Deployment {
  readonly base: string;
  readonly fetch: typeof fetch;
  readonly ca: string;
  readonly #compose: (args: string[], check?: boolean) => Promise<Run>;

  private constructor(
    base: string,
    ca: string,
    compose: (args: string[], check?: boolean) => Promise<Run>,
  ) {
    this.base = base;
    this.ca = ca;
    this.fetch = trustingFetch(ca);
    this.#compose = compose;
  }

  static async up(work: string, sim: TestSim): Promise<Deployment> {
    const dir = `${work}/replicas`;
    await composeDir(dir, {
      files: [
        "docker-compose.yaml",
        "docker-compose.testbed.yaml",
        "docker-compose.replicas.yaml",
        "Caddyfile",
      ],
      env: simEnv(sim),
      token: TOKEN,
      extra: { MCP_STATE_SECRET: STATE_SECRET },
    });
    // Host networking only on the testbed: the second replica gets a port of its own, and
    // Caddy reaches both on loopback (with compose's network: proxmox-mcp-2:8000).
    const [port1, port2, httpsPort] = [freePort(), freePort(), freePort()];
    await Deno.writeTextFile(
      `${dir}/docker-compose.replicas-testbed.yaml`,
      JSON.stringify({
        services: {
          "proxmox-mcp-2": {
            network_mode: "host",
            environment: { MCP_HOST: "127.0.0.1", MCP_PORT: String(port2) },
          },
          caddy: {
            environment: {
              MCP_UPSTREAM: `127.0.0.1:${port1} 127.0.0.1:${port2}`,
              CADDY_HTTPS_PORT: String(httpsPort),
            },
          },
        },
      }),
    );
    const composeEnv = {
      PATH: Deno.env.get("PATH")!,
      ...dockerEnv(),
      MCP_IMAGE: IMAGE,
      MCP_TESTBED_PORT: String(port1),
      CADDY_TESTBED_HTTP_PORT: String(freePort()),
      CADDY_TESTBED_DATA: `${dir}/caddy-data`,
    };
    const merged = await run("docker-compose", [
      "-f",
      "docker-compose.yaml",
      "-f",
      "docker-compose.testbed.yaml",
      "-f",
      "docker-compose.replicas.yaml",
      "-f",
      "docker-compose.replicas-testbed.yaml",
      "config",
    ], { cwd: dir, env: composeEnv });
    await Deno.writeTextFile(`${dir}/merged.yaml`, merged.stdout);
    // docker-compose 1.29 refuses published ports with host networking.
    await run("python3", [
      "-c",
      `import yaml
d = yaml.safe_load(open("merged.yaml"))
assert d["services"]["caddy"]["environment"]["MCP_UPSTREAM"].count(" ") == 1
for r in ("proxmox-mcp", "proxmox-mcp-2"):
    assert d["services"][r]["environment"]["MCP_STATE_SECRET"] == "${STATE_SECRET}", r
for s in d["services"].values():
    if s.get("network_mode") == "host": s.pop("ports", None)
yaml.safe_dump(d, open("merged.yaml", "w"))`,
    ], { cwd: dir });
    const compose = (args: string[], check = true) =>
      run("docker-compose", ["-p", PROJECT, "-f", "merged.yaml", ...args], {
        cwd: dir,
        env: composeEnv,
        check,
      });
    // Left over from an interrupted run.
    await compose(["down", "-v", "-t", "5"], false);
    await compose(["up", "-d", "--no-build"]);
    const caFile = `${dir}/caddy-data/caddy/pki/authorities/local/root.crt`;
    await waitFor("Caddy's CA", () => Deno.stat(caFile).then(() => true));
    const ca = await Deno.readTextFile(caFile);
    const base = `https://127.0.0.1:${httpsPort}`;
    const d = new Deployment(base, ca, compose);
    for (const port of [port1, port2]) {
      await waitFor(`the replica on ${port}`, async () => {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        await r.body?.cancel();
        return r.ok;
      });
    }
    await waitFor("Caddy", async () => {
      const r = await d.fetch(`${base}/healthz`);
      await r.body?.cancel();
      return r.ok;
    });
    // Caddy probes every replica as it starts, which is often before a replica listens
    // (depends_on orders the starts, not readiness); one found down gets requests again from
    // its next passing probe. So Caddy sends to both only one probe interval after both listen:
    // the steady state the steps measure.
    const interval = /\bhealth_interval (\d+)s\b/.exec(
      await Deno.readTextFile(`${dir}/Caddyfile`),
    );
    assert.ok(interval, "the Caddyfile's health_interval");
    await delay(Number(interval[1]) * 1_000 + 1_000);
    for (const r of REPLICAS) {
      assert.doesNotMatch(
        await d.logs(r),
        /MCP_STATE_SECRET is not set/,
        `${r} has the shared MCP_STATE_SECRET`,
      );
    }
    return d;
  }

  container(replica: Replica | "caddy"): string {
    return `${PROJECT}_${replica}_1`;
  }

  /** A container's log so far (stdout and stderr). */
  async logs(container: Replica | "caddy"): Promise<string> {
    const logs = await run("docker", ["logs", this.container(container)], {
      env: { PATH: Deno.env.get("PATH")!, ...dockerEnv() },
    });
    return logs.stdout + logs.stderr;
  }

  /** Caddy's health checker's lines (a probe failed, a replica is up again), shortened. */
  async probes(): Promise<string> {
    return (await this.logs("caddy")).split("\n")
      .filter((l) => l.includes("health_checker"))
      .map((l) => {
        try {
          const e = JSON.parse(l);
          return `${new Date(e.ts * 1000).toISOString()} ${e.host} ${e.msg}${
            e.status_code ? ` ${e.status_code}` : ""
          }`;
        } catch {
          return l;
        }
      }).join("\n");
  }

  /** Tool calls each replica has logged so far ("<tool> ok <ms>ms" or "<tool> error ..."). */
  async served(tool: string): Promise<Record<Replica, number>> {
    const counts = {} as Record<Replica, number>;
    const line = new RegExp(`\\b${tool} (ok|error) `, "g");
    for (const r of REPLICAS) {
      counts[r] = (await this.logs(r)).match(line)?.length ?? 0;
    }
    return counts;
  }

  /** docker stop: SIGTERM, the server finishes what is in flight and exits. */
  async stop(replica: Replica): Promise<string> {
    await run("docker", ["stop", "-t", "20", this.container(replica)], {
      env: { PATH: Deno.env.get("PATH")!, ...dockerEnv() },
    });
    return await this.logs(replica);
  }

  /** A client's transport; `from` is its own loopback address (Caddy hashes it). */
  transport(from?: string): StreamableHTTPClientTransport {
    return new StreamableHTTPClientTransport(new URL(`${this.base}/mcp`), {
      authProvider: { token: () => Promise.resolve(TOKEN) },
      fetch: from ? trustingFetch(this.ca, from) : this.fetch,
    });
  }

  /** A 2026-07-28 client: no session, every call stands alone. */
  async modern(name: string): Promise<Client> {
    const c = new Client({ name, version: "1" }, {
      versionNegotiation: { mode: { pin: "2026-07-28" } },
    });
    await c.connect(this.transport());
    return c;
  }

  /** A 2025-era client: initialize opens a session (Mcp-Session-Id). */
  async legacy(name: string, from: string): Promise<Session> {
    const transport = this.transport(from);
    const client = new Client({ name, version: "1" });
    await client.connect(transport);
    assert.ok(transport.sessionId, "a session through Caddy");
    return { client, transport };
  }

  async down(): Promise<void> {
    const r = await this.#compose(["down", "-v", "-t", "20"], false);
    assert.equal(r.code, 0, r.stderr);
  }
}

/** A call that failed under load: which, how (HTTP status), when (ms into the load). */
interface Failure {
  call: string;
  status: number | string;
  at: number;
}

/**
 * On the testbed's Caddy (Debian's 2.6.2), calls that Caddy sent to the stopping replica before
 * its next /healthz probe fail with 502, unexecuted: Caddy retries a request with a body after a
 * refused connection only from the release with caddyserver/caddy#7547 (2026-03; 2.6 through
 * 2.11.1 close the body on the dial error: caddyserver/caddy#7546). REPLICAS_LOSSLESS=1 asserts
 * that none fail: with such a Caddy, or a server that answers /healthz 503 for a few seconds
 * before it closes its listener (measured with a 3 s drain: 0 failed of about 1 000 calls).
 */
const LOSSLESS = Deno.env.get("REPLICAS_LOSSLESS") === "1";

interface Session {
  client: Client;
  transport: StreamableHTTPClientTransport;
}

/** Clients at different addresses: 127.0.0.2, 127.0.0.3, ... */
const address = (i: number) => `127.0.0.${2 + i}`;

function delta(
  after: Record<Replica, number>,
  before: Record<Replica, number>,
): Record<Replica, number> {
  return Object.fromEntries(
    REPLICAS.map((r) => [r, after[r] - before[r]]),
  ) as Record<Replica, number>;
}

/** The replica that served a session's calls (all of them, or the test fails). */
async function homeOf(d: Deployment, s: Session, calls = 3): Promise<Replica> {
  const before = await d.served("proxmox_get_vm_stats");
  for (let i = 0; i < calls; i++) {
    await callOk(s.client, "proxmox_get_vm_stats", { vmid: 101 });
  }
  const moved = delta(await d.served("proxmox_get_vm_stats"), before);
  const home = REPLICAS.filter((r) => moved[r] > 0);
  assert.equal(
    home.length,
    1,
    `one session, one replica: ${JSON.stringify(moved)}`,
  );
  assert.equal(moved[home[0]], calls);
  return home[0];
}

async function ensureImage(): Promise<void> {
  const env = { PATH: Deno.env.get("PATH")!, ...dockerEnv() };
  const have = await run("docker", ["image", "inspect", IMAGE], {
    env,
    check: false,
  });
  if (have.code !== 0) {
    await run("docker", ["build", "-q", "-t", IMAGE, "."], { env });
  }
}

Deno.test({
  name:
    "replicas behind Caddy: stateless calls spread, sessions stick, a stopped replica runs no call twice and fails only calls no replica ran, its sessions get 404 and re-initialize",
  ignore: !ready,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using sim = await startSim();
    await ensureImage();
    const d = await Deployment.up(`${TESTBED}/deploy`, sim);
    const open: Client[] = [];
    try {
      await t.step("2026-07-28 calls spread over both replicas", async () => {
        const client = await d.modern("spread");
        open.push(client);
        const before = await d.served("proxmox_list_nodes");
        for (let i = 0; i < 24; i++) {
          await callOk(client, "proxmox_list_nodes");
        }
        const moved = delta(await d.served("proxmox_list_nodes"), before);
        assert.equal(moved["proxmox-mcp"] + moved["proxmox-mcp-2"], 24);
        // At random: both get some (all 24 on one has odds of 2^-23).
        if (REPLICAS.some((r) => moved[r] === 0)) {
          assert.fail(
            `${JSON.stringify(moved)}; Caddy's probes:\n${await d.probes()}`,
          );
        }
      });

      // Sessions until each replica holds at least two.
      const sessions: { s: Session; home: Replica; from: string }[] = [];
      await t.step(
        "a 2025-era session (Streamable HTTP, HTTP+SSE) stays on the replica that opened it",
        async () => {
          for (let i = 0; i < 16; i++) {
            const s = await d.legacy(`session-${i}`, address(i));
            open.push(s.client);
            sessions.push({ s, home: await homeOf(d, s), from: address(i) });
            const on = (r: Replica) =>
              sessions.filter((x) => x.home === r).length;
            if (REPLICAS.every((r) => on(r) >= 2)) break;
          }
          for (const r of REPLICAS) {
            assert.ok(sessions.some((x) => x.home === r), `a session on ${r}`);
          }
          // Legacy HTTP+SSE: the stream (GET /sse) and its POST /messages meet one replica.
          const sse = new Client({ name: "sse", version: "1" });
          open.push(sse);
          await sse.connect(
            new SSEClientTransport(new URL(`${d.base}/sse`), {
              authProvider: { token: () => Promise.resolve(TOKEN) },
              fetch: trustingFetch(d.ca, address(40)),
            }),
          );
          for (let i = 0; i < 4; i++) await callOk(sse, "proxmox_list_nodes");
        },
      );

      await t.step(
        "one replica stopped under load (docker stop): each write reaches Proxmox once, a failed call is a 502 no replica ran, failures end with Caddy's next probe, the other's sessions go on",
        async () => {
          const victim: Replica = "proxmox-mcp-2";
          const survivor: Replica = "proxmox-mcp";
          const readers = await Promise.all(
            [0, 1, 2, 3].map((i) => d.modern(`reader-${i}`)),
          );
          const writer = await d.modern("writer");
          open.push(...readers, writer);
          const before = await d.served("proxmox_list_nodes");
          let stopping = false;
          const t0 = Date.now();
          const failures: Failure[] = [];
          let reads = 0;
          const written: string[] = [];
          const failed = (call: string) => (e: unknown) => {
            failures.push({
              call,
              status: e instanceof SdkHttpError ? e.status : String(e),
              at: Date.now() - t0,
            });
          };
          const load = [
            ...readers.map(async (c) => {
              while (!stopping) {
                await c.callTool({ name: "proxmox_list_nodes", arguments: {} })
                  .then((r) => {
                    if (r.isError) failed("read")(JSON.stringify(r));
                    else reads++;
                  }, failed("read"));
              }
            }),
            (async () => {
              for (let i = 0; !stopping; i++) {
                const comment = `replica-write-${i}`;
                await writer.callTool({
                  name: "proxmox_add_firewall_rule",
                  arguments: {
                    vmid: 101,
                    type: "in",
                    action: "ACCEPT",
                    proto: "tcp",
                    dport: String(10_000 + i),
                    comment,
                  },
                }).then((r) => {
                  if (r.isError) failed(comment)(JSON.stringify(r));
                  else written.push(comment);
                }, failed(comment));
              }
            })(),
          ];
          await delay(1_500);
          const readsBefore = reads;
          const stopAt = Date.now() - t0;
          const victimLog = await d.stop(victim);
          const stoppedAt = Date.now() - t0;
          // Past Caddy's next health probes (every 2 s): the survivor alone.
          await delay(3_000);
          stopping = true;
          await Promise.all(load);
          const moved = delta(await d.served("proxmox_list_nodes"), before);
          // deno-lint-ignore no-console
          console.log(
            `  ${reads} reads (${
              moved[victim]
            } on the stopped replica), ${written.length} writes; docker stop at ${stopAt} ms took ${
              stoppedAt - stopAt
            } ms; failed: ${failures.length} (${
              [...new Set(failures.map((f) => f.status))].join(", ")
            }) from ${failures[0]?.at ?? "-"} to ${
              failures.at(-1)?.at ?? "-"
            } ms`,
          );

          assert.ok(readsBefore > 20, `load before the stop: ${readsBefore}`);
          assert.ok(reads > readsBefore + 20, `calls after the stop: ${reads}`);
          assert.ok(moved[victim] > 0 && moved[survivor] > 0);
          assert.match(victimLog, /SIGTERM: shutting down/);
          assert.match(victimLog, /Stopped/);
          // A call that failed is one that no replica executed (Caddy's 502 for a request it
          // could not deliver): the client may send it again without running it twice.
          assert.equal(moved[victim] + moved[survivor], reads, "reads run");
          const posted = sim.requests.filter((r) =>
            r.method === "POST" &&
            r.path === "/nodes/{node}/qemu/{vmid}/firewall/rules"
          ).map((r) => String(r.params.comment));
          for (const w of written) {
            assert.equal(posted.filter((p) => p === w).length, 1, `${w} once`);
          }
          assert.equal(posted.length, written.length, "no failed write ran");
          // Only while the stopped replica was going away, never after the probes saw it.
          for (const f of failures) {
            assert.equal(f.status, 502, JSON.stringify(f));
            assert.ok(
              f.at >= stopAt && f.at <= stoppedAt + 2_500,
              JSON.stringify(f),
            );
          }
          if (LOSSLESS) {
            assert.deepEqual(failures, [], "no call failed");
          }

          for (
            const { s, home } of sessions.filter((x) => x.home === survivor)
          ) {
            assert.equal(await homeOf(d, s), home, "the session stays put");
          }
        },
      );

      await t.step(
        "the stopped replica's sessions get 404 and the client recovers by initializing again",
        async () => {
          const orphans = sessions.filter((x) => x.home === "proxmox-mcp-2");
          for (const { s, from } of orphans) {
            const err = await s.client.callTool({
              name: "proxmox_get_vm_stats",
              arguments: { vmid: 101 },
            }).then(() => undefined, (e) => e);
            assert.ok(err instanceof SdkHttpError, String(err));
            assert.equal(err.status, 404);
            assert.match(err.message, /Session not found.*initialize again/);
            // What the spec asks of the client: a new session (the SDK leaves it to the caller).
            await s.client.close();
            const transport = d.transport(from);
            await s.client.connect(transport);
            assert.ok(transport.sessionId);
            assert.equal(
              await homeOf(d, { client: s.client, transport }),
              "proxmox-mcp",
            );
          }
        },
      );
    } finally {
      await Promise.all(open.map((c) => c.close().catch(() => {})));
      await d.down();
    }
  },
});

/**
 * The three ways users run the server, end to end on the testbed (tests/deploy/run.sh sets it
 * up: podman behind the docker CLI, docker-compose, Caddy, OpenSSH), against the simulator
 * running here on the host:
 *   1. the image: `docker build`, then the SDK Client over `docker run -i --rm` (stdio);
 *      the image's HTTP mode against the MCP conformance suite;
 *   2. docker-compose with Caddy: the Client over https://127.0.0.1:8443 with the token, 401
 *      without it (Caddy failing closed without MCP_AUTH_TOKEN, over HTTP/1.1 and HTTP/2, is a
 *      test of its own that needs only caddy and curl);
 *   3. the SSH gateway: the Client over `ssh` with a forced-command key that runs nothing else.
 */
import {
  Client,
  SSEClientTransport,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import assert from "node:assert/strict";
import { ENV_VARS } from "../../src/config.ts";
import { selfSignedCert } from "../../sim/tls.ts";
import { callOk, simEnv, startSim, type TestSim } from "../helpers.ts";
import { bundleRunFlags } from "../../scripts/bundle.ts";
import {
  composeDir,
  dockerEnv,
  freePort,
  run,
  trustingFetch,
  waitFor,
} from "./deploy_helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const IMAGE = "proxmox-mcp:deploy-test";
const TOKEN = "deploy-token-0123456789abcdef";
const CONFORMANCE = "@modelcontextprotocol/conformance@0.2.0-alpha.12";
const decoder = new TextDecoder();

const TESTBED = Deno.env.get("TESTBED_DIR");
const SSHD = Deno.env.get("TESTBED_SSHD");
const ready = !!(TESTBED && SSHD && Deno.env.get("DOCKER_HOST"));

async function healthy(url: string, init?: RequestInit): Promise<boolean> {
  const r = await fetch(url, init);
  await r.body?.cancel();
  return r.status === 200;
}

/** Lists the tools and calls two of them; checks the call reached the simulator. */
async function exercise(client: Client, sim: TestSim): Promise<void> {
  const { tools } = await client.listTools();
  assert.ok(tools.length >= 10, `tools listed: ${tools.length}`);
  assert.ok(tools.some((t) => t.name === "proxmox_list_vms"));
  const before = sim.requests.length;
  const nodes = await callOk(client, "proxmox_list_nodes");
  assert.deepEqual(nodes.nodes.map((n: { node: string }) => n.node), [
    "pve1",
    "pve2",
    "pve3",
  ]);
  const stats = await callOk(client, "proxmox_get_vm_stats", { vmid: 101 });
  assert.equal(stats.name, "db-01");
  assert.ok(sim.requests.length > before, "the calls reached Proxmox");
}

function assertNoSecrets(text: string, sim: TestSim): void {
  for (const s of [TOKEN, ...sim.secrets()]) {
    assert.ok(!text.includes(s), "no secret in the log");
  }
}

/** The simulator's login as an env file (what users pass with --env-file). */
async function writeEnvFile(path: string, sim: TestSim): Promise<void> {
  const env = { ...simEnv(sim), LOG_LEVEL: "INFO" };
  await Deno.writeTextFile(
    path,
    Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n") + "\n",
  );
}

Deno.test({
  name:
    "deployment: image, docker run over stdio, compose + Caddy, SSH gateway, conformance",
  ignore: !ready,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using sim = await startSim();
    const work = `${TESTBED}/deploy`;
    await Deno.mkdir(work, { recursive: true });
    // A fixed path: the forced-command key's command line names it.
    const envFile = `${work}/pve.env`;
    await writeEnvFile(envFile, sim);

    await t.step(
      "the image builds with docker build and runs as non-root",
      async () => {
        await run("docker", ["build", "-q", "-t", IMAGE, "."]);
        const user = (await run("docker", [
          "image",
          "inspect",
          "--format",
          "{{.Config.User}}",
          IMAGE,
        ])).stdout.trim();
        assert.equal(user, "65532:65532");
        // Its command runs the bundle, with the flags scripts/bundle.ts names.
        const cmd = (await run("docker", [
          "image",
          "inspect",
          "--format",
          "{{json .Config.Cmd}}",
          IMAGE,
        ])).stdout.trim();
        assert.deepEqual(JSON.parse(cmd), [
          ...await bundleRunFlags(),
          "--allow-net",
          "dist/bundle/main.js",
        ]);
        // Build stages left behind by the rebuild.
        await run("docker", ["image", "prune", "-f"], { check: false });
      },
    );

    await t.step(
      "docker run -i --rm over stdio: read-only root, no capabilities, network narrowed to Proxmox",
      async () => {
        const transport = new StdioClientTransport({
          command: "docker",
          args: [
            "run",
            "-i",
            "--rm",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--network=host",
            `--env-file=${envFile}`,
            IMAGE,
            // The image's command (the bundle), the network narrowed.
            ...await bundleRunFlags(),
            `--allow-net=127.0.0.1:${sim.port}`,
            "dist/bundle/main.js",
          ],
          env: { PATH: Deno.env.get("PATH")!, ...dockerEnv() },
          stderr: "pipe",
        });
        let err = "";
        transport.stderr?.on(
          "data",
          (c: Uint8Array) => err += decoder.decode(c),
        );
        const client = new Client({ name: "docker-stdio", version: "1" });
        await client.connect(transport);
        try {
          await exercise(client, sim);
        } finally {
          await client.close();
        }
        assert.match(err, /proxmox_list_nodes ok/);
        assert.doesNotMatch(
          err,
          /warning|error/i,
          "a clean log: nothing wants to write",
        );
        assertNoSecrets(err, sim);
      },
    );

    await t.step(
      "the Docker MCP Toolkit entry (and a Claude Desktop `docker run -e` config) drive the image; HTTPS Proxmox with a mounted CA",
      () => catalogEntry(work),
    );

    await t.step(
      "the image over HTTP passes the conformance suite's applicable scenarios at /mcp",
      async () => {
        const port = freePort();
        const name = `proxmox-mcp-conformance-${port}`;
        await run("docker", [
          "run",
          "-d",
          "--read-only",
          "--network=host",
          `--name=${name}`,
          `--env-file=${envFile}`,
          "-e",
          "MCP_TRANSPORT=http",
          "-e",
          "MCP_HOST=127.0.0.1",
          "-e",
          `MCP_PORT=${port}`,
          IMAGE,
        ]);
        try {
          await waitFor(
            "the server",
            () => healthy(`http://127.0.0.1:${port}/healthz`),
          );
          const suite = await conformanceSuite(work);
          for (const rev of ["2025-11-25", "2026-07-28"]) {
            const r = await run(Deno.execPath(), [
              "run",
              "--no-prompt",
              "--allow-net=127.0.0.1",
              "--allow-read",
              "--allow-write",
              "--allow-env",
              "--allow-sys",
              suite,
              "server",
              "--url",
              `http://127.0.0.1:${port}/mcp`,
              "--requirements",
              rev,
              "--expected-failures",
              `${ROOT}tests/deploy/conformance-baseline.yml`,
              "-o",
              `${work}/conformance-${rev}`,
            ], { check: false });
            assert.equal(
              r.code,
              0,
              `conformance ${rev}:\n${
                r.stdout.slice(r.stdout.indexOf("=== SUMMARY"))
              }`,
            );
            assert.match(r.stdout, /Baseline check passed/);
            const passing = rev === "2026-07-28"
              ? [
                "http-header-validation",
                "dns-rebinding-protection",
                "tools-list",
                "resources-list",
                "sep-2164-resource-not-found",
              ]
              : [
                "server-initialize",
                "server-session-lifecycle",
                "ping",
                "dns-rebinding-protection",
                "tools-list",
                "resources-list",
              ];
            for (const s of passing) {
              assert.match(
                r.stdout,
                new RegExp(`✓ ${s}: \\d+ passed, 0 failed`),
              );
            }
          }
        } finally {
          // SIGTERM: the server shuts down cleanly and the container ends with 0.
          await run("docker", ["stop", "-t", "20", name], { check: false });
          const exit = await run("docker", [
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            name,
          ], { check: false });
          await run("docker", ["rm", "-f", name], { check: false });
          assert.equal(exit.stdout.trim(), "0", "exit code after docker stop");
        }
      },
    );

    await t.step(
      "docker-compose with Caddy: https://127.0.0.1:8443 with the token works, without it 401",
      async () => {
        await composeWithCaddy(work, sim);
      },
    );

    await t.step(
      "SSH gateway: a forced-command key runs the container and nothing else",
      async () => {
        await sshGateway(work, envFile, sim);
      },
    );
  },
});

/**
 * Runs the image the way the Docker MCP Toolkit (and the README's Claude Desktop config) do:
 * `docker run -i --rm -e NAME ...` with each setting passed from the environment, settings not
 * configured passed empty. The names come from proxmox-mcp.yaml.
 */
async function catalogEntry(work: string): Promise<void> {
  const yaml = await run("python3", [
    "-c",
    "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
    `${ROOT}proxmox-mcp.yaml`,
  ]);
  const entry = JSON.parse(yaml.stdout);
  assert.equal(entry.type, "server");
  assert.match(entry.image, /^ghcr\.io\/[a-z0-9-]+\/proxmox-mcp:/); // the release image; IMAGE is its local build
  const names: string[] = [
    ...entry.config.env.map((e: { name: string }) => e.name),
    ...entry.config.secrets.map((e: { env: string }) => e.env),
  ];
  const settings: readonly string[] = ENV_VARS;
  for (const n of names) assert.ok(settings.includes(n), `${n} is a setting`);

  const tls = await selfSignedCert();
  await using sim = await startSim({ tls });
  const ca = `${work}/pve-root-ca.pem`;
  await Deno.writeTextFile(ca, tls.ca);
  await Deno.chmod(ca, 0o644);
  const values: Record<string, string> = {
    ...Object.fromEntries(names.map((n) => [n, ""])), // not configured in the Toolkit
    ...simEnv(sim),
    MCP_READ_ONLY: "true",
    PROXMOX_CA_FILE: "/etc/proxmox-mcp/pve-root-ca.pem",
  };
  const transport = new StdioClientTransport({
    command: "docker",
    args: [
      "run",
      "-i",
      "--rm",
      "--read-only",
      "--cap-drop=ALL",
      "--network=host",
      "-v",
      `${ca}:/etc/proxmox-mcp/pve-root-ca.pem:ro`,
      ...Object.keys(values).flatMap((n) => ["-e", n]),
      IMAGE,
    ],
    env: { PATH: Deno.env.get("PATH")!, ...dockerEnv(), ...values },
    stderr: "pipe",
  });
  let err = "";
  transport.stderr?.on("data", (c: Uint8Array) => err += decoder.decode(c));
  const client = new Client({ name: "toolkit", version: "1" });
  await client.connect(transport);
  try {
    assert.ok(sim.url.startsWith("https://"));
    const { tools } = await client.listTools();
    assert.ok(tools.length > 5);
    assert.ok(
      tools.every((t) => t.annotations?.readOnlyHint === true),
      "MCP_READ_ONLY=true reached the server",
    );
    const nodes = await callOk(client, "proxmox_list_nodes");
    assert.equal(nodes.nodes.length, 3);
  } finally {
    await client.close();
    await Deno.remove(tls.dir, { recursive: true }).catch(() => {});
  }
  assertNoSecrets(err, sim);
}

/** Installs the conformance suite with npm into the testbed (not a project dependency). */
async function conformanceSuite(work: string): Promise<string> {
  const dir = `${work}/conformance-suite`;
  const main =
    `${dir}/node_modules/@modelcontextprotocol/conformance/dist/index.js`;
  const have = await Deno.readTextFile(
    `${dir}/node_modules/@modelcontextprotocol/conformance/package.json`,
  ).then((t) => JSON.parse(t).version, () => "");
  if (`@modelcontextprotocol/conformance@${have}` !== CONFORMANCE) {
    await run("npm", [
      "install",
      "--prefix",
      dir,
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      CONFORMANCE,
    ]);
  }
  return main;
}

async function composeWithCaddy(work: string, sim: TestSim): Promise<void> {
  const dir = `${work}/compose`;
  // The unchanged files, next to a .env like the one users write from .env.example.
  await composeDir(dir, {
    files: ["docker-compose.yaml", "docker-compose.testbed.yaml", "Caddyfile"],
    env: simEnv(sim),
    token: TOKEN,
  });
  // As shipped: only Caddy is published; the server is on the compose network alone.
  const shipped = JSON.parse(
    (await run("python3", [
      "-c",
      "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
      `${ROOT}docker-compose.yaml`,
    ])).stdout,
  );
  assert.equal(shipped.services["proxmox-mcp"].ports, undefined);
  assert.ok(shipped.services.caddy.ports.includes("8443:8443"));
  const serverPort = freePort();
  const composeEnv = {
    PATH: Deno.env.get("PATH")!,
    ...dockerEnv(),
    MCP_IMAGE: IMAGE,
    MCP_TESTBED_PORT: String(serverPort),
    CADDY_TESTBED_HTTP_PORT: String(freePort()),
    CADDY_TESTBED_DATA: `${dir}/caddy-data`,
  };
  const project = "proxmox-mcp-deploy-test";
  // The testbed has host networking only, where Docker ignores published ports and
  // docker-compose 1.29 refuses them: drop `ports` from the merged configuration.
  const merged = await run("docker-compose", [
    "-f",
    "docker-compose.yaml",
    "-f",
    "docker-compose.testbed.yaml",
    "config",
  ], { cwd: dir, env: composeEnv });
  await Deno.writeTextFile(`${dir}/merged.yaml`, merged.stdout);
  await run("python3", [
    "-c",
    `import yaml
d = yaml.safe_load(open("merged.yaml"))
for s in d["services"].values():
    if s.get("network_mode") == "host": s.pop("ports", None)
yaml.safe_dump(d, open("merged.yaml", "w"))`,
  ], { cwd: dir });
  const compose = (args: string[], check = true) =>
    run("docker-compose", ["-p", project, "-f", "merged.yaml", ...args], {
      cwd: dir,
      env: composeEnv,
      check,
    });
  await compose(["up", "-d", "--no-build"]);
  try {
    const caFile = `${dir}/caddy-data/caddy/pki/authorities/local/root.crt`;
    await waitFor(
      "Caddy's internal CA",
      () => Deno.stat(caFile).then(() => true),
    );
    const secureFetch = trustingFetch(await Deno.readTextFile(caFile));
    const base = "https://127.0.0.1:8443";
    await waitFor(
      "server and Caddy",
      () =>
        secureFetch(`${base}/healthz`).then(async (r) => {
          await r.body?.cancel();
          return r.status === 200;
        }),
    );

    // Without the token (or with a wrong one): Caddy answers 401 with a challenge.
    const unauthorized: Record<string, string>[] = [
      {},
      { Authorization: "Bearer not-the-token-123456" },
    ];
    for (const headers of unauthorized) {
      const r = await secureFetch(`${base}/mcp`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body: "{}",
      });
      assert.equal(r.status, 401);
      assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.match(r.headers.get("strict-transport-security") ?? "", /max-age/);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
      assert.equal(r.headers.get("x-frame-options"), "DENY");
      assert.equal(r.headers.get("referrer-policy"), "no-referrer");
      assert.match(
        r.headers.get("content-security-policy") ?? "",
        /default-src 'none'/,
      );
      assert.equal(r.headers.get("server"), null);
      assert.equal(await r.text(), "Unauthorized", "Caddy's own answer");
    }
    // The server checks the token too: going around Caddy does not help.
    const direct = await fetch(`http://127.0.0.1:${serverPort}/mcp`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    assert.equal(direct.status, 401);
    await direct.body?.cancel();

    const authProvider = { token: () => Promise.resolve(TOKEN) };
    // A 2026-07-28 client (stateless), then a 2025-era one with a session.
    const modern = new Client({ name: "caddy-2026", version: "1" }, {
      versionNegotiation: { mode: { pin: "2026-07-28" } },
    });
    await modern.connect(
      new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
        authProvider,
        fetch: secureFetch,
      }),
    );
    await exercise(modern, sim);
    await modern.close();

    const legacyTransport = new StreamableHTTPClientTransport(
      new URL(`${base}/mcp`),
      { authProvider, fetch: secureFetch },
    );
    const legacy = new Client({ name: "caddy-2025", version: "1" });
    await legacy.connect(legacyTransport);
    assert.ok(legacyTransport.sessionId, "a session through Caddy");
    await exercise(legacy, sim);
    await legacyTransport.terminateSession();
    await legacy.close();

    // Legacy SSE streams through Caddy unbuffered (the answer arrives on the open stream).
    const sse = new Client({ name: "caddy-sse", version: "1" });
    await sse.connect(
      new SSEClientTransport(new URL(`${base}/sse`), {
        authProvider,
        fetch: secureFetch,
      }),
    );
    await exercise(sse, sim);
    await sse.close();

    const logs = await run("docker", ["logs", `${project}_proxmox-mcp_1`]);
    assertNoSecrets(logs.stdout + logs.stderr, sim);
    assert.match(logs.stderr, /Listening on http:\/\/127\.0\.0\.1:\d+/);
  } finally {
    const down = await compose(["down", "-v", "-t", "20"], false);
    assert.equal(down.code, 0, down.stderr);
  }
}

/**
 * The shipped Caddyfile run by Debian's caddy with MCP_AUTH_TOKEN unset, then empty: every
 * request to /mcp is refused with 401 over HTTP/1.1 and over HTTP/2 (curl --http1.1/--http2,
 * TLS with Caddy's internal CA), whatever Authorization it carries. HTTP/2 keeps a header's
 * trailing space: "Bearer " once matched the expected "Bearer {empty token}".
 */
async function caddyWithoutToken(work: string): Promise<void> {
  // The upstream: a listener that would answer 200 to anything that got through.
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("reached the server"),
  );
  try {
    for (const token of [undefined, ""]) {
      await caddyRefusesAll(work, upstream.addr.port, token);
    }
  } finally {
    await upstream.shutdown();
  }
}

async function caddyRefusesAll(
  work: string,
  upstreamPort: number,
  token: string | undefined,
): Promise<void> {
  const data = `${work}/caddy-no-token-${
    token === undefined ? "unset" : "empty"
  }`;
  await Deno.remove(data, { recursive: true }).catch(() => {});
  const caddy = new Deno.Command("caddy", {
    args: ["run", "--config", `${ROOT}Caddyfile`, "--adapter", "caddyfile"],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH")!,
      HOME: data,
      XDG_DATA_HOME: `${data}/data`,
      XDG_CONFIG_HOME: `${data}/config`,
      MCP_UPSTREAM: `127.0.0.1:${upstreamPort}`,
      CADDY_HTTP_PORT: String(freePort()),
      ...(token === undefined ? {} : { MCP_AUTH_TOKEN: token }),
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logs = (async () => {
    let s = "";
    for await (const c of caddy.stderr) s += decoder.decode(c);
    return s;
  })();
  try {
    const caFile = `${data}/data/caddy/pki/authorities/local/root.crt`;
    await waitFor("Caddy", () => Deno.stat(caFile).then(() => true));
    const secureFetch = trustingFetch(await Deno.readTextFile(caFile));
    await waitFor(
      "Caddy's listener",
      () =>
        secureFetch("https://127.0.0.1:8443/healthz").then(async (r) => {
          await r.body?.cancel();
          return r.status === 200;
        }),
    );
    for (const [flag, version] of [["--http1.1", "1.1"], ["--http2", "2"]]) {
      for (
        const auth of [
          undefined,
          "Bearer",
          "Bearer ",
          "Bearer  ",
          "Bearer x",
          "bearer ",
        ]
      ) {
        const r = await run("curl", [
          "-sS",
          flag,
          "--cacert",
          caFile,
          "-o",
          "/dev/null",
          "-w",
          "%{http_code} %{http_version}",
          "-X",
          "POST",
          "-d",
          "{}",
          ...(auth === undefined ? [] : ["-H", `Authorization: ${auth}`]),
          "https://127.0.0.1:8443/mcp",
        ]);
        assert.equal(
          r.stdout,
          `401 ${version}`,
          `MCP_AUTH_TOKEN ${
            token === undefined ? "unset" : "empty"
          }, ${flag}, Authorization: ${JSON.stringify(auth)}`,
        );
      }
    }
  } finally {
    caddy.kill("SIGTERM");
    await caddy.status;
    await logs;
  }
}

Deno.test({
  name:
    "Caddy (as shipped) refuses every request over HTTP/1.1 and HTTP/2 when MCP_AUTH_TOKEN is unset or empty",
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "caddy-no-token-" });
    try {
      await caddyWithoutToken(work);
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

async function sshGateway(
  work: string,
  envFile: string,
  sim: TestSim,
): Promise<void> {
  const port = freePort();
  const started = await run(SSHD!, ["start", String(port)], {
    env: { PATH: Deno.env.get("PATH")!, ...dockerEnv(), TESTBED_DIR: TESTBED! },
  });
  assert.match(started.stdout, /SSHD_PORT=/);
  try {
    // The README's authorized_keys line: restrict,command="docker run -i --rm ..."
    const command =
      `docker run -i --rm --read-only --cap-drop=ALL --network=host --env-file=${envFile} ${IMAGE}`;
    const key = (await run(SSHD!, ["forced", "proxmox-mcp-gateway", command], {
      env: { PATH: Deno.env.get("PATH")!, TESTBED_DIR: TESTBED! },
    })).stdout.trim();
    const ssh = [
      "-p",
      String(port),
      "-i",
      key,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "LogLevel=ERROR",
      "root@127.0.0.1",
    ];
    const transport = new StdioClientTransport({
      command: "ssh",
      args: ssh,
      env: { PATH: Deno.env.get("PATH")! },
      stderr: "pipe",
    });
    let err = "";
    transport.stderr?.on("data", (c: Uint8Array) => err += decoder.decode(c));
    const client = new Client({ name: "ssh-gateway", version: "1" });
    await client.connect(transport);
    try {
      await exercise(client, sim);
    } finally {
      await client.close();
    }
    assertNoSecrets(err, sim);

    // Asking for another command still runs the forced one (which reads stdin, gets EOF
    // and ends): nothing of the request happens.
    const marker = `${work}/ssh-marker`;
    await Deno.remove(marker).catch(() => {});
    const other = await run(
      "ssh",
      [...ssh, `touch ${marker}; echo ran-something-else; cat /etc/hostname`],
      { check: false },
    );
    assert.equal(other.code, 0, `the forced command ran: ${other.stderr}`);
    assert.doesNotMatch(other.stdout, /ran-something-else/);
    await assert.rejects(Deno.stat(marker), Deno.errors.NotFound);
  } finally {
    await run(SSHD!, ["stop"], {
      env: { PATH: Deno.env.get("PATH")!, TESTBED_DIR: TESTBED! },
      check: false,
    });
  }
}

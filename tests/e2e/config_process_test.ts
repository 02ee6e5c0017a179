/**
 * Start-up through the real entry point (src/main.ts in a child process),
 * where the process is the point: exit code 2 and one line on stderr for
 * each bad setting, --help and --version on stdout, PROXMOX_CA_FILE and a
 * cluster's caFile read at start under the grants given, PROXMOX_CONFIG's
 * `{"env": …}` secrets read under --allow-env, and the stdio opening with
 * several clusters. The same settings in process are in tests/config_test.ts
 * and tests/clusters_test.ts.
 */
import assert from "node:assert/strict";
import { simTls } from "../../sim/tls.ts";
import { ENV_VARS } from "../../src/config.ts";
import {
  callOk,
  childBaseEnv,
  connect,
  eachLine,
  MAIN,
  openingRequests,
  simEnv,
  startSim,
  writes,
} from "../helpers.ts";
import { configFile, entry, sdkOpening } from "../cluster_helpers.ts";
import { assertRefused, BAD_SETTINGS, BASE, start } from "../config_helpers.ts";

Deno.test("a bad or missing setting stops the process with one line naming it, exit code 2", async () => {
  for (const [env, expected] of BAD_SETTINGS) {
    const r = await start(env, [], [
      `--allow-env=${ENV_VARS.join(",")}`,
      "--allow-net",
      "--allow-read",
    ]);
    assertRefused(r, env, expected);
    assert.equal(r.stdout, "", "nothing on the protocol channel");
  }
});

Deno.test("--help and --version answer on stdout; an unknown flag stops the process with exit code 2", async () => {
  const help = await start({}, ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--read-only/);
  const version = await start({}, ["--version"]);
  assert.match(version.stdout, /^proxmox-mcp \d+\.\d+\.\d+\n$/);
  const bad = await start(BASE, ["--bogus"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bogus.*see --help/);
});

Deno.test("PROXMOX_CA_FILE without read permission: one line naming --allow-read and the fingerprint that needs no file", async () => {
  const r = await start({
    ...BASE,
    PROXMOX_CA_FILE: "/etc/pve/pve-root-ca.pem",
  });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^proxmox-mcp: Cannot read PROXMOX_CA_FILE \/etc\/pve\/pve-root-ca\.pem: Requires read access to .*\(grant --allow-read=\/etc\/pve\/pve-root-ca\.pem, or pin the certificate with PROXMOX_TLS_FINGERPRINT, which needs no file\)$/m,
  );
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

Deno.test("a PROXMOX_CA_FILE that holds no PEM certificate stops the start with one line naming it", async () => {
  const file = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(file, "not a certificate\n");
    const r = await start({ ...BASE, PROXMOX_CA_FILE: file }, [], [
      `--allow-env=${ENV_VARS.join(",")}`,
      "--allow-net",
      `--allow-read=${file}`,
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `proxmox-mcp: PROXMOX_CA_FILE ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----): use the cluster's CA, /etc/pve/pve-root-ca.pem on a node`,
    );
  } finally {
    await Deno.remove(file);
  }
});

/** Spawns the real entry point and speaks raw lines to it: its answers by id. */
async function stdioOpening(
  env: Record<string, string>,
  permissions: string[],
): Promise<Map<number, string>> {
  const lines = openingRequests().map((m) => JSON.stringify(m) + "\n").join(
    "",
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--allow-env=${ENV_VARS.join(",")}`,
      "--allow-net",
      ...permissions,
      MAIN,
    ],
    clearEnv: true,
    env: { ...childBaseEnv(), LOG_LEVEL: "ERROR", ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(lines));
  const answers = new Map<number, string>();
  await eachLine(child.stdout, async (line) => {
    const id = JSON.parse(line).id;
    if (typeof id === "number") answers.set(id, line);
    // tools/list answered: the client is done, stdin closes.
    if (id === 2) await writer.close();
  });
  const [status, err] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
  ]);
  assert.equal(status.code, 0, err);
  return answers;
}

Deno.test("stdio: with two clusters initialize and tools/list are the SDK's answers; with one cluster the opening is byte-identical to the PROXMOX_* server's", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using two = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  await using one = await configFile({ clusters: { home: entry(a) } });
  const read = (f: string) => [`--allow-read=${f}`];

  const sdk = await sdkOpening({ PROXMOX_CONFIG: two.path });
  const stdio = await stdioOpening(
    { PROXMOX_CONFIG: two.path },
    read(two.path),
  );
  const init = JSON.parse(stdio.get(1)!).result;
  assert.equal(
    init.instructions,
    (sdk.initialize as { instructions: string }).instructions,
  );
  assert.equal(
    JSON.stringify(JSON.parse(stdio.get(2)!).result.tools),
    JSON.stringify(sdk.tools),
  );

  const single = await stdioOpening(
    { PROXMOX_CONFIG: one.path },
    read(one.path),
  );
  const env = await stdioOpening(simEnv(a), []);
  assert.equal(single.get(1), env.get(1));
  assert.equal(single.get(2), env.get(2));
});

Deno.test("the real entry point: PROXMOX_CONFIG with an {env} secret serves both clusters over stdio; the secret never shows", async () => {
  await using a = await startSim({ password: "home-pw-0123456789" });
  await using b = await startSim({ password: "lab-pw-9876543210" });
  await using f = await configFile({
    clusters: {
      home: entry(a),
      lab: {
        url: b.url,
        user: b.credentials.user,
        password: { env: "PROXMOX_LAB_PASSWORD" },
      },
    },
  });
  await using s = await connect({
    env: {
      PROXMOX_CONFIG: f.path,
      PROXMOX_LAB_PASSWORD: b.credentials.password,
    },
    permissions: [
      `--allow-read=${f.path}`,
      "--allow-env=PROXMOX_LAB_PASSWORD",
    ],
  });
  const { tools } = await s.client.listTools();
  assert.ok(tools.every((t) => "cluster" in (t.inputSchema.properties ?? {})));
  const vms = await callOk(s.client, "proxmox_list_vms");
  assert.equal(vms.columns[0], "cluster");
  assert.ok(vms.rows.some((r: unknown[]) => r[0] === "home"));
  assert.ok(vms.rows.some((r: unknown[]) => r[0] === "lab"));
  assert.equal(vms.unreachable, undefined);
  await callOk(s.client, "proxmox_start_vm", { cluster: "lab", vmid: 102 });
  assert.deepEqual(writes(a), []);
  assert.equal(b.cluster.guests.get(102)!.status, "running");
  // assertNoSecrets (on close) checks the log against both simulators' secrets.
  assert.ok(!s.stderr().includes("lab-pw-9876543210"));
});

/**
 * Starts the real entry point (our variables and `read` granted; PATH and
 * `env` its whole environment), which must stop with code 2: its stderr.
 */
async function refusedStart(
  read: string[],
  env: Record<string, string>,
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--allow-env=${ENV_VARS.join(",")}`,
      `--allow-read=${read.join(",")}`,
      MAIN,
    ],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr).trim();
  assert.equal(out.code, 2, err);
  return err;
}

Deno.test("the real entry point: an {env} secret the process may not read stops the start with one line naming the grant", async () => {
  await using f = await configFile({
    clusters: {
      lab: {
        url: "https://pve.example.com:8006",
        user: "root@pam",
        password: { env: "PROXMOX_LAB_PASSWORD" },
      },
    },
  });
  const err = await refusedStart([f.path], {
    PROXMOX_CONFIG: f.path,
    PROXMOX_LAB_PASSWORD: "never-printed-secret",
  });
  assert.match(
    err,
    /^proxmox-mcp: password of cluster 'lab' in PROXMOX_CONFIG \S+: cannot read PROXMOX_LAB_PASSWORD: .*\(grant --allow-env=PROXMOX_LAB_PASSWORD; the shipped tasks grant PROXMOX_\* and MCP_\*\)$/,
  );
  assert.ok(!err.includes("never-printed-secret"));
});

Deno.test("the real entry point: TLS per cluster (one trusts its caFile, read at start, one pins its fingerprint, one has neither and is unreachable); a caFile without a certificate stops the start naming the cluster", async () => {
  const tls = await simTls();
  await using a = await startSim({ tls });
  await using b = await startSim({ tls });
  await using f = await configFile({
    clusters: {
      home: entry(a, { caFile: tls.caFile }),
      lab: entry(b, { fingerprint: tls.fingerprint }),
      bare: entry(a),
    },
  });
  await using s = await connect({
    env: { PROXMOX_CONFIG: f.path },
    permissions: [`--allow-read=${f.path},${tls.caFile}`],
  });
  const nodes = await callOk(s.client, "proxmox_list_nodes");
  assert.deepEqual(
    [...new Set(nodes.nodes.map((n: { cluster: string }) => n.cluster))],
    ["home", "lab"],
  );
  assert.deepEqual(
    nodes.unreachable.map((u: { cluster: string }) => u.cluster),
    ["bare"],
  );

  await using notPem = await configFile("not a certificate\n");
  await using bad = await configFile({
    clusters: {
      home: entry(a, { caFile: tls.caFile }),
      lab: entry(b, { caFile: notPem.path }),
    },
  });
  const err = await refusedStart([bad.path, tls.caFile, notPem.path], {
    PROXMOX_CONFIG: bad.path,
  });
  assert.equal(
    err,
    `proxmox-mcp: caFile ${notPem.path} of cluster 'lab' in PROXMOX_CONFIG holds no PEM certificate (-----BEGIN CERTIFICATE-----): use the cluster's CA, /etc/pve/pve-root-ca.pem on a node`,
  );
});

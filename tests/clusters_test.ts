/**
 * Several clusters (PROXMOX_CONFIG): the file's parsing and its errors, the
 * tool surface with one cluster (unchanged) and with two (`cluster` on every
 * tool), listings over every cluster with an unreachable one, calls that
 * reach one simulator only, scope, confirmation and audit per cluster. The
 * real entry point with PROXMOX_CONFIG (its stdio opening, an `{"env": …}`
 * secret under --allow-env, caFile and fingerprint per cluster) is in
 * tests/e2e/config_process_test.ts.
 */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../src/config.ts";
import { closeAuditFiles } from "../src/safety/audit.ts";
import { INSTRUCTIONS } from "../src/server.ts";
import { call, callOk, connect, startSim, writes } from "./helpers.ts";
import { configFile, entry, sdkOpening } from "./cluster_helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CATALOG = JSON.parse(
  await Deno.readTextFile(`${ROOT}src/tools/catalog.json`),
);

/** The tools that cover every cluster when called without `cluster`. */
const LISTINGS = [
  "proxmox_list_nodes",
  "proxmox_list_vms",
  "proxmox_list_storage",
  "proxmox_list_content",
  "proxmox_list_backups",
];

/** loadConfig's error for this file (and environment). */
async function configError(
  doc: unknown,
  env: Record<string, string> = {},
): Promise<string> {
  await using f = await configFile(doc);
  try {
    loadConfig([], { PROXMOX_CONFIG: f.path, ...env });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    if (!env.PROXMOX_URL) {
      assert.ok(e.message.includes(f.path), `names the file: ${e.message}`);
    }
    return e.message;
  }
  throw new Error("loadConfig accepted the file");
}

Deno.test("PROXMOX_CONFIG errors name the file, the cluster and the key, and never quote a secret", async () => {
  const SECRET = "s3cr3t-never-shown-0123456789";
  const url = "https://pve.example.com:8006";
  const cases: [unknown, RegExp, Record<string, string>?][] = [
    // V8 quotes the text around a JSON fault: the message must not.
    [
      `{"clusters": {"home": {"url": "${url}", "password": "${SECRET}" "user": "root@pam"}}}`,
      /^Cannot parse PROXMOX_CONFIG \S+: not JSON \((line \d+ column \d+|position \d+)\)$/,
    ],
    [
      { clusters: { home: { url, user: "root@pam", pasword: SECRET } } },
      /: unknown key 'pasword' in cluster 'home' \(known: url, user, password/,
    ],
    [{ clusterz: {} }, /: 'clusters' is missing$/],
    [
      { clusters: { home: { url, user: "root@pam", password: SECRET } }, x: 1 },
      /: unknown key 'x': the file holds \{"clusters": \{…\}\}$/,
    ],
    [
      {
        clusters: {
          home: {
            url,
            tokenId: "root@pam!mcp",
            tokenSecret: { env: "PROXMOX_HOME_SECRET" },
          },
        },
      },
      /tokenSecret of cluster 'home' in PROXMOX_CONFIG \S+: the variable PROXMOX_HOME_SECRET is not set$/,
    ],
    [
      {
        clusters: {
          home: { url, user: "root@pam", password: { env: "HOME" } },
        },
      },
      /password of cluster 'home' .*names a variable the server may not read: only PROXMOX_\* and MCP_\* variables \(upper case\) may hold secrets$/,
    ],
    [
      { clusters: { home: { url, user: "root@pam", password: 42 } } },
      /^PROXMOX_CONFIG \S+: password of cluster 'home' must be a string or \{"env": "NAME"\}$/,
    ],
    [
      { clusters: { "Bad Name": { url, user: "root@pam", password: SECRET } } },
      /cluster name 'Bad Name' must be 1-32 lower-case letters/,
    ],
    [
      { clusters: { home: { user: "root@pam", password: SECRET } } },
      /: url of cluster 'home' is missing$/,
    ],
    [
      {
        clusters: {
          home: { url: "pve:8006", user: "root@pam", password: SECRET },
        },
      },
      /^url of cluster 'home' in PROXMOX_CONFIG \S+ must start with https:\/\//,
    ],
    [
      { clusters: { home: { url, user: "root@pam" } } },
      /^Cluster 'home' in PROXMOX_CONFIG \S+: No Proxmox login: set user and password, or tokenId and tokenSecret$/,
    ],
    [
      {
        clusters: {
          home: { url, user: "root@pam", password: SECRET, allowedVmids: "9" },
        },
      },
      /^Cannot parse allowedVmids of cluster 'home' in PROXMOX_CONFIG \S+: '9' is not a range of VMIDs/,
    ],
    [{ clusters: {} }, /names no cluster/],
    [
      { clusters: { home: { url, user: "root@pam", password: SECRET } } },
      /^PROXMOX_CONFIG and PROXMOX_URL are both set: with PROXMOX_CONFIG, each cluster's address, login and TLS settings are in the file$/,
      { PROXMOX_URL: url },
    ],
  ];
  for (const [doc, re, env] of cases) {
    const message = await configError(doc, env);
    assert.match(message, re);
    assert.ok(!message.includes(SECRET), `a secret in: ${message}`);
    assert.equal(message.split("\n").length, 1, message);
  }
  // A file that does not exist (or cannot be read) is named.
  assert.throws(
    () => loadConfig([], { PROXMOX_CONFIG: "/nonexistent/clusters.json" }),
    /^ConfigError: Cannot read PROXMOX_CONFIG \/nonexistent\/clusters\.json: /,
  );
});

Deno.test("PROXMOX_CONFIG: clusters in the file's order, {env} secrets resolved, per-cluster scope over the MCP_* defaults; the first cluster fills the single-cluster fields", async () => {
  await using f = await configFile({
    clusters: {
      home: {
        url: "https://home.example.com:8006/api2/json",
        tokenId: "root@pam!mcp",
        tokenSecret: { env: "PROXMOX_HOME_SECRET" },
        fingerprint: "aa".repeat(32),
      },
      lab: {
        url: "https://lab.example.com:8006",
        user: "root@pam",
        password: "literal-password",
        verifySsl: false,
        allowedVmids: "200-299",
        protectedTag: "keep",
      },
    },
  });
  const r = loadConfig([], {
    PROXMOX_CONFIG: f.path,
    PROXMOX_HOME_SECRET: "uuid-secret",
    MCP_ALLOWED_VMIDS: "100-199",
    MCP_ALLOWED_NODES: "pve1",
  });
  assert.equal(r.kind, "run");
  if (r.kind !== "run") return;
  const [home, lab] = r.config.clusters!;
  assert.deepEqual(r.config.clusters!.map((c) => c.name), ["home", "lab"]);
  assert.equal(home.proxmoxUrl, "https://home.example.com:8006");
  assert.deepEqual(home.auth, {
    kind: "token",
    tokenId: "root@pam!mcp",
    secret: "uuid-secret",
  });
  assert.equal(home.tlsFingerprints?.[0], Array(32).fill("AA").join(":"));
  assert.deepEqual(home.allowedVmids, [[100, 199]]);
  assert.deepEqual(home.allowedNodes, ["pve1"]);
  assert.equal(home.protectedTag, "mcp-protected");
  assert.equal(lab.verifySsl, false);
  assert.deepEqual(lab.allowedVmids, [[200, 299]]);
  assert.deepEqual(lab.allowedNodes, ["pve1"]);
  assert.equal(lab.protectedTag, "keep");
  assert.equal(r.config.proxmoxUrl, home.proxmoxUrl);
  assert.deepEqual(r.config.auth, home.auth);
  assert.deepEqual(r.config.allowedVmids, home.allowedVmids);
});

Deno.test("one cluster in PROXMOX_CONFIG: tools/list and the instructions are byte-identical to the catalog (no cluster anywhere)", async () => {
  await using sim = await startSim();
  await using f = await configFile({ clusters: { home: entry(sim) } });
  const one = await sdkOpening({ PROXMOX_CONFIG: f.path });
  assert.equal(JSON.stringify(one.tools), JSON.stringify(CATALOG.tools));
  assert.equal(
    (one.initialize as { instructions?: string }).instructions,
    INSTRUCTIONS,
  );
  // Calls name no cluster and rows carry none.
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const nodes = await callOk(s.client, "proxmox_list_nodes");
  assert.equal(nodes.nodes.length, 3);
  assert.ok(nodes.nodes.every((n: object) => !("cluster" in n)));
  const named = await call(s.client, "proxmox_list_nodes", { cluster: "home" });
  assert.ok(named.isError, "one cluster: cluster is not an argument");
});

Deno.test("two clusters: every tool takes cluster, optional for listings and required for the rest; the instructions say so", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  const two = await sdkOpening({ PROXMOX_CONFIG: f.path });
  assert.equal(two.tools.length, CATALOG.tools.length);
  for (const t of two.tools as Record<string, Record<string, unknown>>[]) {
    const schema = t.inputSchema as {
      properties: Record<string, { enum?: string[] }>;
      required?: string[];
    };
    assert.deepEqual(
      schema.properties.cluster?.enum,
      ["home", "lab"],
      t.name as unknown as string,
    );
    const required = schema.required?.includes("cluster") ?? false;
    assert.equal(
      required,
      !LISTINGS.includes(t.name as unknown as string),
      `${t.name}: cluster ${required ? "required" : "optional"}`,
    );
    if (LISTINGS.includes(t.name as unknown as string)) {
      const out = JSON.stringify(t.outputSchema);
      assert.match(out, /"unreachable"/, `${t.name} may say unreachable`);
    }
  }
  const instructions = (two.initialize as { instructions: string })
    .instructions;
  assert.ok(instructions.startsWith(INSTRUCTIONS));
  assert.match(instructions, /clusters are configured \(home, lab\)/);
});

Deno.test("two clusters: list_vms, list_nodes, list_storage, list_content and list_backups without cluster have rows from both, each with its cluster; with cluster, one", async () => {
  await using a = await startSim();
  await using b = await startSim({ extraGuests: 4 });
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const vms = await callOk(s.client, "proxmox_list_vms", { limit: 1000 });
  assert.equal(vms.columns[0], "cluster");
  const by = (c: string) =>
    vms.rows.filter((r: unknown[]) => r[0] === c).length;
  assert.equal(by("home"), a.cluster.guests.size);
  assert.equal(by("lab"), b.cluster.guests.size);
  assert.equal(vms.total, a.cluster.guests.size + b.cluster.guests.size);
  assert.equal(vms.unreachable, undefined);

  const nodes = await callOk(s.client, "proxmox_list_nodes");
  assert.deepEqual(
    nodes.nodes.map((n: { cluster: string; node: string }) =>
      `${n.cluster}/${n.node}`
    ).sort(),
    [
      "home/pve1",
      "home/pve2",
      "home/pve3",
      "lab/pve1",
      "lab/pve2",
      "lab/pve3",
    ],
  );
  const storages = await callOk(s.client, "proxmox_list_storage", {
    node: "pve1",
  });
  assert.deepEqual(
    [...new Set(storages.storages.map((x: { cluster: string }) => x.cluster))],
    ["home", "lab"],
  );

  const content = await callOk(s.client, "proxmox_list_content", {
    storage: "local",
  });
  const backups = await callOk(s.client, "proxmox_list_backups", {});
  for (const rows of [content.items, backups.backups]) {
    assert.deepEqual(
      [...new Set(rows.map((x: { cluster: string }) => x.cluster))].sort(),
      ["home", "lab"],
    );
  }

  const lab = await callOk(s.client, "proxmox_list_vms", {
    cluster: "lab",
    limit: 1000,
  });
  assert.notEqual(lab.columns[0], "cluster");
  assert.equal(lab.total, b.cluster.guests.size);
});

Deno.test("a cursor is bound to its cluster: one from cluster home given with cluster lab, or one over every cluster given with a named one, is refused as made with other arguments", async () => {
  await using a = await startSim({ pbs: true });
  await using b = await startSim({ pbs: true });
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const other = /was made with other arguments/;
  for (
    const [tool, args] of [
      ["proxmox_list_vms", {}],
      ["proxmox_list_content", { storage: "local", content: "iso" }],
      ["proxmox_list_backups", {}],
    ] as const
  ) {
    const home = await callOk(s.client, tool, {
      ...args,
      cluster: "home",
      limit: 1,
    });
    assert.ok(home.next_cursor, `${tool}: a second page on home`);
    // The same cursor on its own cluster goes on.
    await callOk(s.client, tool, {
      ...args,
      cluster: "home",
      cursor: home.next_cursor,
    });
    const onLab = await call(s.client, tool, {
      ...args,
      cluster: "lab",
      cursor: home.next_cursor,
    });
    assert.equal(onLab.isError, true, `${tool}: ${onLab.text}`);
    assert.match(onLab.text, other);
    const all = await callOk(s.client, tool, { ...args, limit: 1 });
    assert.ok(all.next_cursor, `${tool}: a second page over both`);
    for (const cluster of ["home", "lab"]) {
      const named = await call(s.client, tool, {
        ...args,
        cluster,
        cursor: all.next_cursor,
      });
      assert.equal(named.isError, true, `${tool}: ${named.text}`);
      assert.match(named.text, other);
    }
    // A named cluster's cursor over every cluster: refused alike.
    const both = await call(s.client, tool, {
      ...args,
      cursor: home.next_cursor,
    });
    assert.equal(both.isError, true, `${tool}: ${both.text}`);
    assert.match(both.text, other);
  }
});

Deno.test("list_backups and list_content over two clusters with a storage or node one of them lacks: its rows from the other, and no cluster named unreachable; naming that cluster, the missing storage is an error", async () => {
  await using a = await startSim({ pbs: true });
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b, { allowedNodes: "pve2,pve3" }) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const onPbs =
    [...a.cluster.volumes.values()].filter((v) => v.storage === "pbs").length;
  assert.ok(onPbs >= 2, "the seeded PBS backups");
  const backups = await callOk(s.client, "proxmox_list_backups", {
    storage: "pbs",
  });
  assert.equal(backups.unreachable, undefined, JSON.stringify(backups));
  assert.equal(backups.total, onPbs);
  assert.ok(
    backups.backups.every((x: { cluster: string }) => x.cluster === "home"),
  );
  const content = await callOk(s.client, "proxmox_list_content", {
    storage: "pbs",
    content: "backup",
  });
  assert.equal(content.unreachable, undefined, JSON.stringify(content));
  assert.equal(content.total, onPbs);
  // pve1 is outside lab's scope: lab has no such node to list.
  for (const tool of ["proxmox_list_backups", "proxmox_list_content"]) {
    const r = await callOk(s.client, tool, { storage: "local", node: "pve1" });
    assert.equal(r.unreachable, undefined, `${tool}: ${JSON.stringify(r)}`);
    const rows = r.backups ?? r.items;
    assert.ok(rows.length > 0, tool);
    assert.ok(rows.every((x: { cluster: string }) => x.cluster === "home"));
  }
  // Named, the cluster without the storage answers as one cluster does.
  const lab = await call(s.client, "proxmox_list_backups", {
    cluster: "lab",
    storage: "pbs",
  });
  assert.equal(lab.isError, true);
  assert.match(lab.text, /Storage 'pbs' is not available/);
  // A storage no cluster has is an error over every cluster too.
  for (const tool of ["proxmox_list_backups", "proxmox_list_content"]) {
    const none = await call(s.client, tool, { storage: "pbs-typo" });
    assert.equal(none.isError, true, `${tool}: ${none.text}`);
    assert.match(
      none.text,
      /Storage 'pbs-typo' is not available on any online node of any cluster/,
    );
  }
});

Deno.test("unreachable[].error reads the same everywhere: Proxmox's words, one line, for a cluster list_vms, list_backups or the summary resource could not read and for a storage list_backups could not", async () => {
  await using a = await startSim({ pbs: true });
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  const words = "pveproxy exploded";
  b.faults.inject({
    path: "/cluster/resources",
    times: Infinity,
    fault: { kind: "status", status: 500, message: `${words}\nat line 2` },
  });
  a.faults.inject({
    method: "GET",
    path: /^\/nodes\/[^/]+\/storage\/pbs\/content$/,
    times: Infinity,
    fault: { kind: "status", status: 500, message: words },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const vms = await callOk(s.client, "proxmox_list_vms");
  assert.deepEqual(vms.unreachable, [{ cluster: "lab", error: words }]);
  const backups = await callOk(s.client, "proxmox_list_backups");
  assert.deepEqual(backups.unreachable, [
    { cluster: "lab", error: words },
    { cluster: "home", storage: "pbs", error: words },
  ]);
  const r = await s.client.readResource({ uri: "proxmox://cluster" });
  const summary = JSON.parse((r.contents[0] as { text: string }).text);
  assert.deepEqual(summary.unreachable, [{ cluster: "lab", error: words }]);
});

Deno.test("a cluster that is down or failing is named in unreachable; the other cluster's rows are still there", async () => {
  await using a = await startSim();
  await using b = await startSim();
  // A port nothing listens on: a cluster that is down.
  const down = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const downUrl = `http://127.0.0.1:${(down.addr as Deno.NetAddr).port}`;
  down.close();
  await using f = await configFile({
    clusters: {
      home: entry(a),
      lab: entry(b),
      attic: { url: downUrl, user: "root@pam", password: "unused-pw" },
    },
  });
  b.faults.inject({
    path: "/nodes",
    times: Infinity,
    fault: { kind: "status", status: 500, message: "pveproxy exploded" },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const nodes = await callOk(s.client, "proxmox_list_nodes");
  assert.deepEqual(
    [...new Set(nodes.nodes.map((n: { cluster: string }) => n.cluster))],
    ["home"],
  );
  const unreachable = nodes.unreachable as { cluster: string; error: string }[];
  assert.deepEqual(unreachable.map((u) => u.cluster).sort(), ["attic", "lab"]);
  assert.match(unreachable.find((u) => u.cluster === "lab")!.error, /exploded/);

  const vms = await callOk(s.client, "proxmox_list_vms");
  assert.ok(vms.rows.some((r: unknown[]) => r[0] === "home"));
  assert.ok(vms.rows.some((r: unknown[]) => r[0] === "lab"), "lab's guests");
  assert.deepEqual(
    vms.unreachable.map((u: { cluster: string }) => u.cluster),
    ["attic"],
  );
  // A call for the cluster that is down alone fails as a call does.
  const only = await call(s.client, "proxmox_list_nodes", { cluster: "attic" });
  assert.ok(only.isError);
});

Deno.test("start_vm on cluster lab reaches lab's simulator only; a call without cluster, or with an unknown one, is an error naming the clusters", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const r = await callOk(s.client, "proxmox_start_vm", {
    cluster: "lab",
    vmid: 102,
  });
  assert.equal(r.task.status, "ok");
  assert.equal(b.cluster.guests.get(102)!.status, "running");
  assert.equal(a.cluster.guests.get(102)!.status, "stopped");
  assert.deepEqual(writes(a), [], "nothing written to home");
  assert.ok(
    writes(b).some((w) => w.path.endsWith("/status/start")),
    "lab started it",
  );
  assert.ok(
    !a.requests.some((q) => q.path.includes("102")),
    "home was not even asked about 102",
  );

  const missing = await call(s.client, "proxmox_start_vm", { vmid: 102 });
  assert.ok(missing.isError);
  assert.match(missing.text, /needs cluster/);
  assert.match(missing.text, /home, lab/);
  const unknown = await call(s.client, "proxmox_start_vm", {
    cluster: "attic",
    vmid: 102,
  });
  assert.ok(unknown.isError);
  assert.match(
    unknown.text,
    /Unknown cluster 'attic': the configured clusters are home, lab/,
  );
  assert.deepEqual(writes(a), []);
});

Deno.test("scope is per cluster: allowedVmids of one cluster limits it alone, and its refusals name the cluster", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: {
      home: entry(a, { allowedVmids: "100-101" }),
      lab: entry(b),
    },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const vms = await callOk(s.client, "proxmox_list_vms", { limit: 1000 });
  const ids = (c: string) =>
    vms.rows.filter((r: unknown[]) => r[0] === c).map((r: unknown[]) => r[1]);
  assert.deepEqual(ids("home").sort(), [100, 101]);
  assert.equal(ids("lab").length, b.cluster.guests.size);

  const refused = await call(s.client, "proxmox_start_vm", {
    cluster: "home",
    vmid: 102,
  });
  assert.ok(refused.isError);
  assert.match(
    refused.text,
    /VMID 102 is outside this server's scope of cluster 'home' \(allowedVmids 100-101\)/,
  );
  assert.deepEqual(writes(a), []);
  await callOk(s.client, "proxmox_start_vm", { cluster: "lab", vmid: 102 });
  assert.equal(b.cluster.guests.get(102)!.status, "running");
});

Deno.test("the confirmation question names the cluster, and the audit line carries it", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  const audit = await Deno.makeTempFile({ suffix: ".jsonl" });
  const asked: string[] = [];
  try {
    await using s = await connect({
      env: { PROXMOX_CONFIG: f.path, MCP_AUDIT_FILE: audit },
      elicit: (p) => {
        asked.push(p.message);
        return { action: "accept", content: { confirm: true } };
      },
    });
    const r = await call(s.client, "proxmox_delete_vm", {
      cluster: "lab",
      vmid: 106,
    });
    assert.ok(!r.isError, r.text);
    assert.equal(asked.length, 1);
    assert.match(asked[0], /^.*: proxmox_delete_vm on cluster 'lab'\n/);
    assert.match(asked[0], /VM 106 \(rocky-ci\) on node pve2/);
    assert.doesNotMatch(asked[0], /With: .*cluster=/);
    assert.ok(!b.cluster.guests.has(106), "deleted on lab");
    assert.ok(a.cluster.guests.has(106), "home's 106 untouched");
    closeAuditFiles();
    const lines = (await Deno.readTextFile(audit)).trim().split("\n").map((
      l,
    ) => JSON.parse(l));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].cluster, "lab");
    assert.equal(lines[0].tool, "proxmox_delete_vm");
    assert.equal(lines[0].args.cluster, undefined, "cluster is its own field");
  } finally {
    closeAuditFiles();
    await Deno.remove(audit);
  }
});

Deno.test("each call runs with its cluster's login: whoami on a password cluster and on a token cluster; over HTTP (2026-07-28, a server per call) as over memory", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: {
      home: entry(a),
      lab: {
        url: b.url,
        tokenId: b.credentials.tokenId,
        tokenSecret: b.credentials.tokenSecret,
      },
    },
  });
  for (const era of [undefined, "2026-07-28"] as const) {
    await using s = await connect({ env: { PROXMOX_CONFIG: f.path }, era });
    const home = await callOk(s.client, "proxmox_whoami", { cluster: "home" });
    assert.deepEqual([home.kind, home.as], ["user", a.credentials.user]);
    const lab = await callOk(s.client, "proxmox_whoami", { cluster: "lab" });
    assert.deepEqual([lab.kind, lab.as], ["token", b.credentials.tokenId]);
    const vms = await callOk(s.client, "proxmox_list_vms", { limit: 1000 });
    assert.equal(vms.total, a.cluster.guests.size + b.cluster.guests.size);
    const missing = await call(s.client, "proxmox_whoami", {});
    assert.ok(missing.isError, `${era}: whoami needs cluster`);
    assert.match(missing.text, /needs cluster.*home, lab/);
  }
});

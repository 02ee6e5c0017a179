/**
 * Resources (src/resources.ts): the cluster summary, a guest's config and a
 * task's log, with completion of cluster names and VMIDs; hostile template
 * variables refused before Proxmox hears of them; over memory, stdio and
 * HTTP (2026-07-28 stateless, 2025-11-25 sessions).
 */
import assert from "node:assert/strict";
import { callOk, connect, simEnv, startSim, type TestSim } from "./helpers.ts";
import {
  CONFIG,
  NODE,
  readError,
  readJson,
  SUMMARY,
  TASK_LOG,
} from "./resource_helpers.ts";

/** The PVE endpoints reached while `run` ran, as `METHOD /template`. */
async function endpointsOf(
  sim: TestSim,
  run: () => Promise<unknown>,
): Promise<string[]> {
  const from = sim.requests.length;
  await run();
  return sim.requests.slice(from).map((r) => `${r.method} ${r.path}`);
}

Deno.test("resources: the summary is listed, the three templates are, and capabilities declare no list changes or subscriptions", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const caps = s.client.getServerCapabilities()!;
  assert.deepEqual(caps.resources, { listChanged: false });
  assert.ok(caps.completions, "completions declared");
  const { resources } = await s.client.listResources();
  assert.deepEqual(resources.map((r) => r.uri), [SUMMARY]);
  assert.equal(resources[0].mimeType, "application/json");
  const { resourceTemplates } = await s.client.listResourceTemplates();
  assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate).sort(), [
    CONFIG,
    NODE,
    TASK_LOG,
  ]);
  // The descriptions of those holding editable text say it is untrusted.
  for (const t of resourceTemplates.filter((t) => t.uriTemplate !== NODE)) {
    assert.match(t.description ?? "", /untrusted/);
  }
  assert.equal(sim.requests.length, 0, "listing asks Proxmox nothing");
});

Deno.test("resources follow MCP_TOOLSETS: a resource whose toolset is off is neither listed nor read (guest config: vms, task log: tasks, node status and summary: nodes); initialize declares the same capabilities; completion is an error, not a missing method", async () => {
  await using sim = await startSim();
  const upid = (await (async () => {
    await using s = await connect({ env: simEnv(sim) });
    return await callOk(s.client, "proxmox_create_snapshot", {
      vmid: 100,
      name: "before",
    });
  })()).upid as string;
  const cases: [string, string[], string[]][] = [
    ["backups", [], []],
    ["vms", [], [CONFIG]],
    ["tasks", [], [TASK_LOG]],
    ["nodes", [SUMMARY], [NODE]],
    ["backups,vms,tasks,nodes", [SUMMARY], [CONFIG, NODE, TASK_LOG]],
  ];
  const reads: [string, string][] = [
    [CONFIG, "proxmox://default/guests/101/config"],
    [TASK_LOG, `proxmox://default/tasks/${upid}/log`],
    [NODE, "proxmox://default/nodes/pve1/status"],
    [SUMMARY, SUMMARY],
  ];
  for (const [toolsets, fixed, templates] of cases) {
    await using s = await connect({
      env: { ...simEnv(sim), MCP_TOOLSETS: toolsets },
    });
    const caps = s.client.getServerCapabilities()!;
    assert.deepEqual(caps.resources, { listChanged: false }, toolsets);
    assert.ok(caps.completions, toolsets);
    const { resources } = await s.client.listResources();
    assert.deepEqual(resources.map((r) => r.uri), fixed, toolsets);
    const { resourceTemplates } = await s.client.listResourceTemplates();
    assert.deepEqual(
      resourceTemplates.map((t) => t.uriTemplate).sort(),
      templates,
      toolsets,
    );
    for (const [which, uri] of reads) {
      if ([...fixed, ...templates].includes(which)) {
        await readJson(s.client, uri);
        continue;
      }
      const from = sim.requests.length;
      const e = await readError(s.client, uri);
      // Not found (the SDK's ResourceNotFoundError: -32602 with the uri).
      assert.equal(e.code, -32602, `${toolsets}: ${uri}: ${e.message}`);
      assert.match(e.message, /Resource not found/);
      assert.equal(sim.requests.length, from, "Proxmox is not asked");
    }
    const completion = await s.client.complete({
      ref: { type: "ref/resource", uri: CONFIG },
      argument: { name: "vmid", value: "10" },
    }).then((r) => r.completion.values, (e) => e as { code: number });
    if (templates.includes(CONFIG)) {
      assert.ok(Array.isArray(completion) && completion.includes("101"));
    } else {
      assert.equal((completion as { code: number }).code, -32602, toolsets);
    }
  }
});

Deno.test("resources: proxmox://cluster counts nodes, guests and storage in two Proxmox requests and stays small with 5000 extra guests", async () => {
  await using sim = await startSim({ extraGuests: 5000 });
  await using s = await connect({ env: simEnv(sim) });
  // The first read logs in and reads /version (once per client).
  const first = await endpointsOf(sim, () => readJson(s.client, SUMMARY));
  assert.deepEqual(first.sort(), [
    "GET /cluster/resources",
    "GET /cluster/status",
    "GET /version",
    "POST /access/ticket",
  ]);
  let text = "";
  const reached = await endpointsOf(sim, async () => {
    const r = await s.client.readResource({ uri: SUMMARY });
    text = (r.contents[0] as { text: string }).text;
  });
  assert.deepEqual(reached.sort(), [
    "GET /cluster/resources",
    "GET /cluster/status",
  ]);
  assert.ok(text.length < 4096, `summary is ${text.length} bytes`);
  const { clusters, unreachable } = JSON.parse(text);
  assert.equal(unreachable, undefined);
  assert.equal(clusters.length, 1);
  const c = clusters[0];
  assert.equal(c.cluster, "default");
  assert.equal(c.pve_cluster, "sim");
  assert.equal(c.quorate, true);
  assert.match(c.pve_release, /^\d+\.\d+$/);
  const guests = [...sim.cluster.guests.values()];
  assert.equal(c.guests.total, guests.length);
  assert.ok(c.guests.total > 5000);
  assert.equal(
    c.guests.by_type.lxc,
    guests.filter((g) => g.type === "lxc").length,
  );
  assert.equal(
    c.guests.by_type.qemu,
    guests.filter((g) => g.type === "qemu").length,
  );
  const sum = (o: Record<string, number>) =>
    Object.values(o).reduce((a, b) => a + b, 0);
  assert.equal(sum(c.guests.by_status), guests.length);
  assert.equal(
    c.guests.by_status.unknown,
    guests.filter((g) => !sim.cluster.nodes.get(g.node)!.online).length,
    "guests on an offline node are unknown",
  );
  assert.equal(c.guests.templates, 1);
  assert.deepEqual(
    c.nodes.map((n: { node: string; status: string }) => [n.node, n.status]),
    [["pve1", "online"], ["pve2", "online"], ["pve3", "offline"]],
  );
  const pve1 = c.nodes[0];
  assert.equal(pve1.cores, 16);
  assert.equal(pve1.maxmem_gib, 64);
  assert.ok(pve1.cpu_pct >= 0 && pve1.mem_pct > 0);
  assert.equal(
    pve1.guests,
    guests.filter((g) => g.node === "pve1").length,
  );
  assert.equal(c.nodes[2].cpu_pct, undefined, "no stats for an offline node");
  const local = c.storage.find((x: { storage: string }) =>
    x.storage === "local"
  );
  assert.ok(local && !local.shared && local.nodes === 2, JSON.stringify(local));
  assert.ok(local.total_gib > 0 && local.used_pct >= 0);
});

Deno.test("resources: the summary counts only what MCP_ALLOWED_VMIDS and MCP_ALLOWED_NODES show", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: {
      ...simEnv(sim),
      MCP_ALLOWED_VMIDS: "100-199",
      MCP_ALLOWED_NODES: "pve1",
    },
  });
  const { clusters: [c] } = await readJson(s.client, SUMMARY);
  const inScope = [...sim.cluster.guests.values()].filter((g) =>
    g.vmid >= 100 && g.vmid <= 199 && g.node === "pve1"
  );
  assert.ok(inScope.length > 0);
  assert.equal(c.guests.total, inScope.length);
  assert.deepEqual(c.nodes.map((n: { node: string }) => n.node), ["pve1"]);
  assert.ok(
    c.storage.every((x: { nodes: number }) => x.nodes === 1),
    "storage of pve1 only",
  );
});

Deno.test("resources: a guest's config is read through the API layer, its editable text marked untrusted", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const uri = "proxmox://default/guests/102/config";
  let g: Record<string, unknown> = {};
  const reached = await endpointsOf(sim, async () => {
    g = await readJson(s.client, uri);
  });
  assert.ok(reached.includes("GET /nodes/{node}/qemu/{vmid}/config"));
  assert.equal(g.cluster, "default");
  assert.equal(g.vmid, 102);
  assert.equal(g.node, sim.cluster.guests.get(102)!.node);
  assert.equal(g.type, "qemu");
  const config = g.config as Record<string, unknown>;
  assert.equal(config.description, "Windows build agent\n");
  assert.equal(config.name, sim.cluster.guests.get(102)!.config.name);
  assert.match(String(config.digest), /^[0-9a-f]{40}$/);
  assert.deepEqual(g.untrusted, ["config.description", "config.name"]);
  // A container: its hostname is the editable name.
  const ct = await readJson(s.client, "proxmox://default/guests/201/config");
  assert.equal(ct.type, "lxc");
  assert.ok((ct.untrusted as string[]).includes("config.hostname"));
});

Deno.test("resources: a task's log is read by its UPID, raw or percent-encoded, and marked untrusted", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const started = await callOk(s.client, "proxmox_create_snapshot", {
    vmid: 100,
    name: "before",
  });
  const upid = started.upid as string;
  for (
    const uri of [
      `proxmox://default/tasks/${upid}/log`,
      `proxmox://default/tasks/${encodeURIComponent(upid)}/log`,
    ]
  ) {
    const t = await readJson(s.client, uri);
    assert.equal(t.cluster, "default");
    assert.equal(t.upid, upid);
    assert.equal(t.node, "pve1");
    assert.equal(t.type, "qmsnapshot");
    assert.equal(t.status, "stopped");
    assert.equal(t.ok, true);
    assert.ok(t.log.length > 0 && t.log.at(-1) === "TASK OK", t.log.join());
    assert.deepEqual(t.untrusted, ["log[]"]);
  }
});

Deno.test("resources: completion of vmid by prefix, in scope, 100 at most; and of cluster names", async () => {
  await using sim = await startSim({ extraGuests: 300 });
  await using s = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_VMIDS: "100-199,10000-10249" },
  });
  const complete = (name: string, value: string, cluster?: string) =>
    s.client.complete({
      ref: { type: "ref/resource", uri: CONFIG },
      argument: { name, value },
      ...(cluster ? { context: { arguments: { cluster } } } : {}),
    }).then((r) => r.completion);

  const ten = await complete("vmid", "101", "default");
  // 101 and 10100-10199: sorted, capped at 100, the total said.
  assert.equal(ten.values.length, 100);
  assert.equal(ten.total, 101);
  assert.equal(ten.hasMore, true);
  assert.equal(ten.values[0], "101");
  assert.equal(ten.values[1], "10100");
  assert.ok(ten.values.every((v) => v.startsWith("101")));

  const inScope = [...sim.cluster.guests.keys()].filter((id) =>
    (id >= 100 && id <= 199) || (id >= 10000 && id <= 10249)
  );
  const all = await complete("vmid", "");
  assert.equal(all.total, inScope.length);
  assert.ok(!all.values.includes("200"), "CT 200 is outside the scope");
  assert.ok(!all.values.includes("10250"), "10250 is outside the scope");
  const one = await complete("vmid", "1025");
  assert.deepEqual(one.values, []);
  assert.deepEqual((await complete("vmid", "x")).values, []);
  assert.deepEqual(
    (await complete("vmid", "10", "elsewhere")).values,
    [],
    "an unknown cluster has no guests",
  );

  assert.deepEqual((await complete("cluster", "d")).values, ["default"]);
  assert.deepEqual((await complete("cluster", "x")).values, []);
  const tasks = await s.client.complete({
    ref: { type: "ref/resource", uri: TASK_LOG },
    argument: { name: "cluster", value: "" },
  });
  assert.deepEqual(tasks.completion.values, ["default"]);
});

Deno.test("resources: hostile template values are refused with a clear error and never reach Proxmox", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_VMIDS: "100-105" },
  });
  const upid = "UPID:pve1:00001234:00ABCDEF:6740A1B2:qmstart:100:root@pam:";
  const cases: [string, RegExp][] = [
    ["proxmox://default/guests/../config", /not found/i],
    // URL parsing collapses a dotted segment: no template matches.
    ["proxmox://default/guests/%2e%2e/config", /Resource not found/],
    ["proxmox://default/guests/1\0/config", /Invalid vmid "1\\u0000"/],
    ["proxmox://default/guests/..%2f/config", /Invalid vmid "\.\.\/"/],
    ["proxmox://default/guests/%2f/config", /Invalid vmid "\/"/],
    ["proxmox://default/guests/1%00/config", /Invalid vmid "1\\u0000"/],
    ["proxmox://default/guests/%zz/config", /malformed percent-encoding/],
    ["proxmox://default/guests/99999999999999999999/config", /Invalid vmid/],
    ["proxmox://default/guests/1e3/config", /Invalid vmid/],
    ["proxmox://default/guests/-100/config", /Invalid vmid/],
    ["proxmox://default/guests/99/config", /from 100 to 999999999/],
    [
      "proxmox://default/guests/106/config",
      /VMID 106 is outside this server's scope \(MCP_ALLOWED_VMIDS=100-105\)/,
    ],
    ["proxmox://default/tasks/..%2f/log", /Invalid UPID "\.\.\/"/],
    ["proxmox://default/tasks/%2e%2e/log", /Resource not found/],
    ["proxmox://default/tasks/%2e%2e%2f/log", /Invalid UPID "\.\.\/"/],
    [
      `proxmox://default/tasks/${upid.replace("pve1", "..")}/log`,
      /Invalid UPID/,
    ],
    [
      `proxmox://default/tasks/${encodeURIComponent(upid + "/../x")}/log`,
      /Invalid UPID/,
    ],
    [`proxmox://default/tasks/${"A".repeat(600)}/log`, /Invalid UPID "A{60}…"/],
    [
      `proxmox://default/tasks/${upid.replace(":100:", ":106:")}/log`,
      /outside this server's scope/,
    ],
    ["proxmox://default/nodes/pve_1/status", /Invalid node name "pve_1"/],
    ["proxmox://default/nodes/-pve/status", /Invalid node name "-pve"/],
    ["proxmox://default/nodes/..%2f/status", /Invalid node name "\.\.\/"/],
    ["proxmox://default/nodes/pve1%00/status", /Invalid node name/],
    [`proxmox://default/nodes/${"a".repeat(64)}/status`, /Invalid node name/],
    [
      "proxmox://nope/guests/100/config",
      /Unknown cluster "nope": use one of default/,
    ],
    [
      "proxmox://%2e%2e/tasks/x/log",
      /Unknown cluster "\.\.": use one of default/,
    ],
  ];
  const from = sim.requests.length;
  for (const [uri, want] of cases) {
    const e = await readError(s.client, uri);
    assert.equal(e.code, -32602, `${uri}: ${e.message}`);
    assert.match(e.message, want, uri);
    assert.doesNotMatch(e.message, /\n\s+at /, "no stack trace");
  }
  // Only the login and the guest lookup that finds 106 out of scope (by
  // its node) or the task's guest: no guest or task endpoint at all.
  const reached = new Set(
    sim.requests.slice(from).map((r) => `${r.method} ${r.path}`),
  );
  for (const e of reached) {
    assert.ok(
      ["POST /access/ticket", "GET /cluster/resources"].includes(e),
      `a hostile read reached ${e}`,
    );
  }
  for (const r of sim.requests) {
    assert.doesNotMatch(r.rawPath, /\/\.\.?(\/|$)|%2e%2e|%00/i);
  }
  // The server is still there.
  const g = await readJson(s.client, "proxmox://default/guests/100/config");
  assert.equal(g.vmid, 100);
});

Deno.test("resources: Proxmox's refusal becomes a clear error with Proxmox's words; a missing task or guest is not found", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  sim.faults.inject({
    method: "GET",
    path: /\/qemu\/100\/config$/,
    fault: { kind: "status", status: 500, message: "got timeout" },
  });
  const e = await readError(s.client, "proxmox://default/guests/100/config");
  assert.equal(e.code, -32603);
  assert.match(
    e.message,
    /Proxmox answered 500 to GET \/nodes\/pve1\/qemu\/100\/config: got timeout/,
  );
  assert.doesNotMatch(e.message, /\n\s+at /);

  const gone = await readError(
    s.client,
    "proxmox://default/guests/4242/config",
  );
  assert.equal(gone.code, -32602);
  assert.match(gone.message, /Guest 4242 does not exist/);

  const upid = "UPID:pve1:00001234:00ABCDEF:6740A1B2:qmstart:100:root@pam:";
  const task = await readError(s.client, `proxmox://default/tasks/${upid}/log`);
  assert.match(task.message, /no such task/);

  sim.faults.inject({
    path: "/cluster/resources",
    fault: {
      kind: "status",
      status: 403,
      message: "Permission check failed (/, Sys.Audit)",
    },
  });
  const summary = await readError(s.client, SUMMARY);
  assert.match(summary.message, /Permission denied: missing Sys\.Audit on \//);
});

for (const era of ["2026-07-28", "2025-11-25"] as const) {
  Deno.test(`resources over HTTP (${era}): list, read and complete`, async () => {
    await using sim = await startSim();
    await using s = await connect({ env: simEnv(sim), era, http: true });
    const { resources } = await s.client.listResources();
    assert.deepEqual(resources.map((r) => r.uri), [SUMMARY]);
    const { clusters } = await readJson(s.client, SUMMARY);
    assert.equal(clusters[0].guests.total, sim.cluster.guests.size);
    const g = await readJson(s.client, "proxmox://default/guests/201/config");
    assert.equal(g.type, "lxc");
    const c = await s.client.complete({
      ref: { type: "ref/resource", uri: CONFIG },
      argument: { name: "vmid", value: "20" },
      context: { arguments: { cluster: "default" } },
    });
    assert.deepEqual(
      c.completion.values,
      [...sim.cluster.guests.keys()].filter((id) => String(id).startsWith("20"))
        .sort((a, b) => a - b).map(String),
    );
    assert.ok(c.completion.values.includes("201"));
    const e = await readError(s.client, "proxmox://default/guests/0/config");
    assert.equal(e.code, -32602);
    assert.match(e.message, /Invalid vmid "0"/);
  });
}

Deno.test("resources with several clusters (PROXMOX_CONFIG): the summary covers each and names the unreachable one; reads, completion and scope go by {cluster}", async () => {
  await using home = await startSim();
  await using lab = await startSim();
  const file = await Deno.makeTempFile({ suffix: ".json" });
  const login = (sim: TestSim) => ({
    url: sim.url,
    user: sim.credentials.user,
    password: sim.credentials.password,
  });
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      clusters: {
        home: login(home),
        lab: { ...login(lab), allowedVmids: "100-101" },
        down: { url: "http://127.0.0.1:9", user: "root@pam", password: "x" },
      },
    }),
  );
  try {
    await using s = await connect({ env: { PROXMOX_CONFIG: file } });
    const summary = await readJson(s.client, SUMMARY);
    assert.deepEqual(
      summary.clusters.map((c: { cluster: string }) => c.cluster),
      ["home", "lab"],
    );
    assert.equal(summary.clusters[0].guests.total, home.cluster.guests.size);
    assert.equal(summary.clusters[1].guests.total, 2, "lab's scope: 100-101");
    assert.equal(summary.unreachable.length, 1);
    assert.equal(summary.unreachable[0].cluster, "down");
    assert.ok(summary.unreachable[0].error.length > 0);

    // The read goes to the cluster the URI names.
    lab.cluster.guests.get(100)!.config.description = "lab's web";
    const fromLab = home.requests.length;
    const g = await readJson(s.client, "proxmox://lab/guests/100/config");
    assert.equal(g.cluster, "lab");
    assert.equal(g.config.description, "lab's web");
    assert.equal(home.requests.length, fromLab, "home was not asked");
    const h = await readJson(s.client, "proxmox://home/guests/102/config");
    assert.equal(h.cluster, "home");

    const outside = await readError(
      s.client,
      "proxmox://lab/guests/102/config",
    );
    assert.equal(outside.code, -32602);
    assert.match(outside.message, /VMID 102 is outside this server's scope/);
    const unknown = await readError(
      s.client,
      "proxmox://nope/guests/100/config",
    );
    assert.match(unknown.message, /use one of home, lab, down/);

    const complete = (name: string, value: string, cluster?: string) =>
      s.client.complete({
        ref: { type: "ref/resource", uri: CONFIG },
        argument: { name, value },
        ...(cluster ? { context: { arguments: { cluster } } } : {}),
      }).then((r) => r.completion.values);
    assert.deepEqual(await complete("cluster", ""), ["home", "lab", "down"]);
    assert.deepEqual(await complete("cluster", "l"), ["lab"]);
    assert.deepEqual(await complete("vmid", "10", "lab"), ["100", "101"]);
    assert.ok((await complete("vmid", "10", "home")).includes("102"));
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("resources: a node's status, an offline node without asking it, nodes complete in scope", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  let n: Record<string, unknown> = {};
  const reached = await endpointsOf(sim, async () => {
    n = await readJson(s.client, "proxmox://default/nodes/pve1/status");
  });
  assert.ok(reached.includes("GET /nodes/{node}/status"));
  assert.equal(n.cluster, "default");
  assert.equal(n.node, "pve1");
  assert.equal(n.status, "online");
  assert.equal(n.cpus, 16);
  assert.equal(n.maxmem_gib, 64);
  assert.equal((n.loadavg as number[]).length, 3);
  assert.match(String(n.pve_version), /^pve-manager\//);
  assert.ok(Number(n.uptime_s) > 0);

  const off = await endpointsOf(sim, async () => {
    n = await readJson(s.client, "proxmox://default/nodes/pve3/status");
  });
  assert.deepEqual(n, { cluster: "default", node: "pve3", status: "offline" });
  assert.ok(!off.includes("GET /nodes/{node}/status"), "pve3 is not asked");

  const gone = await readError(s.client, "proxmox://default/nodes/pve9/status");
  assert.equal(gone.code, -32602);
  assert.match(
    gone.message,
    /'pve9' is not in this cluster: use one of pve1, pve2, pve3/,
  );

  const complete = (value: string) =>
    s.client.complete({
      ref: { type: "ref/resource", uri: NODE },
      argument: { name: "node", value },
    }).then((r) => r.completion.values);
  assert.deepEqual(await complete("pve"), ["pve1", "pve2", "pve3"]);
  assert.deepEqual(await complete("pve2"), ["pve2"]);
  assert.deepEqual(await complete("x"), []);

  await using scoped = await connect({
    env: { ...simEnv(sim), MCP_ALLOWED_NODES: "pve1" },
  });
  const outside = await readError(
    scoped.client,
    "proxmox://default/nodes/pve2/status",
  );
  assert.match(outside.message, /Node 'pve2' is outside this server's scope/);
  const inScope = await scoped.client.complete({
    ref: { type: "ref/resource", uri: NODE },
    argument: { name: "node", value: "" },
  });
  assert.deepEqual(inScope.completion.values, ["pve1"]);
});

Deno.test("resources: the guest config template's description names the clusters {cluster} takes: default with PROXMOX_URL, the one name of a single PROXMOX_CONFIG cluster, each name with several", async () => {
  await using home = await startSim();
  await using lab = await startSim();
  const login = (sim: TestSim) => ({
    url: sim.url,
    user: sim.credentials.user,
    password: sim.credentials.password,
  });
  const file = await Deno.makeTempFile({ suffix: ".json" });
  const description = async (env: Record<string, string>) => {
    await using s = await connect({ env });
    const { resourceTemplates } = await s.client.listResourceTemplates();
    return resourceTemplates.find((t) => t.uriTemplate === CONFIG)!
      .description!;
  };
  try {
    assert.match(await description(simEnv(home)), /\(`cluster`: `default`\)/);
    await Deno.writeTextFile(
      file,
      JSON.stringify({ clusters: { lab: login(lab) } }),
    );
    const one = await description({ PROXMOX_CONFIG: file });
    assert.match(one, /\(`cluster`: `lab`\)/);
    assert.doesNotMatch(one, /default/);
    await Deno.writeTextFile(
      file,
      JSON.stringify({ clusters: { home: login(home), lab: login(lab) } }),
    );
    assert.match(
      await description({ PROXMOX_CONFIG: file }),
      /\(`cluster`: one of `home`, `lab`\)/,
    );
  } finally {
    await Deno.remove(file);
  }
});

/**
 * Several clusters, as a review found them: PROXMOX_CONFIG errors that
 * quoted what may be a secret or broke the one-line rule, a cluster the file
 * names that vanished without a word, a listing over clusters that all fail,
 * a refusal that named the wrong setting, a lockdown question that did not
 * say which cluster's guest the output came from, and a node filter no
 * cluster matches.
 */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../src/config.ts";
import {
  call,
  callOk,
  connect,
  type ElicitParams,
  startSim,
} from "./helpers.ts";
import { configFile, entry } from "./cluster_helpers.ts";

/** loadConfig's outcome for a PROXMOX_CONFIG file holding `text`. */
async function loadFile(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, text);
    const r = loadConfig([], { PROXMOX_CONFIG: path });
    return `loaded: ${
      JSON.stringify(
        r.kind === "run" ? r.config.clusters?.map((c) => c.name) : r,
      )
    }`;
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  } finally {
    await Deno.remove(path);
  }
}

const URL_ = "https://pve.example.com:8006";
const SECRET = "hunter2-never-shown";

Deno.test('PROXMOX_CONFIG: a secret written where a variable\'s name goes ({"env": secret}) is not quoted in the error', async () => {
  const message = await loadFile(JSON.stringify({
    clusters: {
      home: { url: URL_, user: "root@pam", password: { env: SECRET } },
    },
  }));
  assert.match(
    message,
    /^password of cluster 'home' in PROXMOX_CONFIG \S+ names a variable the server may not read/,
  );
  assert.ok(!message.includes(SECRET), message);
});

Deno.test("PROXMOX_CONFIG: a cluster named __proto__ is refused by name instead of vanishing (the next cluster became the first)", async () => {
  const message = await loadFile(
    `{"clusters": {"__proto__": {"url": "${URL_}", "user": "root@pam", "password": "${SECRET}"}, "lab": {"url": "${URL_}", "user": "root@pam", "password": "x"}}}`,
  );
  assert.match(
    message,
    /cluster name '__proto__' must be 1-32 lower-case letters/,
  );
  assert.ok(!message.includes(SECRET), message);
});

Deno.test("PROXMOX_CONFIG: a cluster name or unknown key with a line break or control character stays on one line in the error", async () => {
  for (
    const doc of [
      { clusters: { "home\nINJECTED": 5 } },
      { clusters: { "home\u001b[2J": { url: URL_ } } },
      { clusters: { home: { url: URL_, "x\nINJECTED": 1 } } },
      { "y\rINJECTED": 1, clusters: {} },
    ]
  ) {
    const message = await loadFile(JSON.stringify(doc));
    assert.equal(message.split(/[\n\r]/).length, 1, JSON.stringify(message));
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\x00-\x1f]/.test(message), JSON.stringify(message));
  }
});

Deno.test("PROXMOX_CONFIG: an unknown key beside env in a secret is named as such, not with the cluster's keys", async () => {
  const message = await loadFile(JSON.stringify({
    clusters: {
      home: {
        url: URL_,
        user: "root@pam",
        password: { env: "PROXMOX_HOME_PASSWORD", value: "x" },
      },
    },
  }));
  assert.match(
    message,
    /unknown key 'value' in password of cluster 'home' \(a secret is a string or \{"env": "NAME"\}\)$/,
  );
});

/** A URL nothing listens on: a cluster that is down. */
function downUrl(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
  l.close();
  return url;
}

Deno.test("a listing over two clusters that both fail is an error naming each cluster with its reason, not the first one's error alone", async () => {
  await using b = await startSim();
  b.faults.inject({
    path: "/cluster/resources",
    times: Infinity,
    fault: { kind: "status", status: 500, message: "pveproxy exploded" },
  });
  b.faults.inject({
    path: "/nodes",
    times: Infinity,
    fault: { kind: "status", status: 500, message: "pveproxy exploded" },
  });
  await using f = await configFile({
    clusters: {
      home: { url: downUrl(), user: "root@pam", password: "unused-pw" },
      lab: entry(b),
    },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  for (const tool of ["proxmox_list_vms", "proxmox_list_nodes"]) {
    const r = await call(s.client, tool, {});
    assert.ok(r.isError, r.text);
    assert.match(
      r.text,
      /^No cluster could be read: home: .*Cannot reach Proxmox.*; lab: .*pveproxy exploded/,
      `${tool}: ${r.text}`,
    );
    assert.equal(r.text.split("\n").length, 1, r.text);
  }
});

Deno.test("a guest carrying a cluster's protectedTag is refused naming that cluster's setting, not MCP_PROTECTED_TAG alone", async () => {
  await using a = await startSim();
  await using b = await startSim();
  b.cluster.guests.get(102)!.config.tags = "keep";
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b, { protectedTag: "keep" }) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const r = await call(s.client, "proxmox_start_vm", {
    cluster: "lab",
    vmid: 102,
  });
  assert.ok(r.isError);
  assert.match(
    r.text,
    /carries the tag 'keep' \(protectedTag of cluster 'lab', else MCP_PROTECTED_TAG\): this server only reads it/,
  );
  // The cluster is named once, by the setting.
  assert.equal(r.text.split("cluster 'lab'").length, 2, r.text);
  assert.equal(b.cluster.guests.get(102)!.status, "stopped");
});

Deno.test("MCP_LOCKDOWN with two clusters: the release question names the cluster the guest output came from", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  const asked: ElicitParams[] = [];
  await using s = await connect({
    env: { PROXMOX_CONFIG: f.path, MCP_LOCKDOWN: "true" },
    elicit: (p) => {
      asked.push(p);
      return { action: "accept", content: { release: true } };
    },
  });
  const file = await callOk(s.client, "proxmox_read_file_vm", {
    cluster: "lab",
    vmid: 101,
    path: "/etc/hostname",
  });
  assert.notEqual(file.content, "[withheld: MCP_LOCKDOWN]");
  assert.equal(asked.length, 1);
  assert.match(
    asked[0].message,
    /proxmox_read_file_vm in VM 101 on cluster 'lab' is done\. Show the contents of \/etc\/hostname/,
  );
});

Deno.test("list_storage over two clusters with a node no cluster has is an error, as with one cluster, instead of an empty listing", async () => {
  await using a = await startSim();
  await using b = await startSim();
  await using f = await configFile({
    clusters: { home: entry(a), lab: entry(b) },
  });
  await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
  const r = await call(s.client, "proxmox_list_storage", { node: "pve9" });
  assert.ok(r.isError, r.text);
  assert.match(
    r.text,
    /^Node 'pve9' is in no cluster \(home, lab\), or outside this server's scope: see proxmox_list_nodes$/,
  );
  // A node both have: rows from both, each with its cluster.
  const both = await callOk(s.client, "proxmox_list_storage", {
    node: "pve1",
  });
  assert.deepEqual(
    [...new Set(both.storages.map((x: { cluster: string }) => x.cluster))]
      .sort(),
    ["home", "lab"],
  );
  assert.ok(
    both.storages.every((x: { node: string }) => x.node === "pve1"),
  );
});

Deno.test("an unreachable cluster from PROXMOX_CONFIG is advised by its url in PROXMOX_CONFIG, not PROXMOX_URL, with one cluster and with two", async () => {
  await using b = await startSim();
  await using one = await configFile({
    clusters: {
      lab: { url: downUrl(), user: "root@pam", password: "unused-pw" },
    },
  });
  await using two = await configFile({
    clusters: {
      lab: { url: downUrl(), user: "root@pam", password: "unused-pw" },
      home: entry(b),
    },
  });
  for (const [f, args] of [[one, {}], [two, { cluster: "lab" }]] as const) {
    await using s = await connect({ env: { PROXMOX_CONFIG: f.path } });
    const r = await call(s.client, "proxmox_list_nodes", args);
    assert.ok(r.isError, r.text);
    assert.match(r.text, /Cannot reach Proxmox/, r.text);
    assert.match(
      r.text,
      /Check the url of cluster 'lab' in PROXMOX_CONFIG and that the host is up/,
      r.text,
    );
    assert.doesNotMatch(r.text, /PROXMOX_URL/, r.text);
  }
});

Deno.test('a password read from the environment loses only its trailing line breaks, the same through PROXMOX_PASSWORD and {"env": ...} in PROXMOX_CONFIG; a token secret is trimmed both ways', async () => {
  const direct = (v: Record<string, string>) => {
    const r = loadConfig([], { PROXMOX_URL: URL_, ...v });
    assert.equal(r.kind, "run");
    return r.kind === "run" ? r.config.auth : undefined;
  };
  await using f = await configFile({
    clusters: {
      lab: { url: URL_, user: "root@pam", password: { env: "PROXMOX_LAB_PW" } },
      home: {
        url: URL_,
        tokenId: "root@pam!mcp",
        tokenSecret: { env: "PROXMOX_HOME_SECRET" },
      },
    },
  });
  const viaFile = (pw: string, secret = "uuid") => {
    const r = loadConfig([], {
      PROXMOX_CONFIG: f.path,
      PROXMOX_LAB_PW: pw,
      PROXMOX_HOME_SECRET: secret,
    });
    assert.equal(r.kind, "run");
    return r.kind === "run" ? r.config.clusters!.map((c) => c.auth) : [];
  };
  for (
    const [value, password] of [
      ["s3cret\n", "s3cret"],
      ["s3cret\r\n", "s3cret"],
      [" spaced pass \n", " spaced pass "],
      ["tab\t", "tab\t"],
    ]
  ) {
    const want = { kind: "password", user: "root@pam", password };
    assert.deepEqual(
      direct({ PROXMOX_USER: "root@pam", PROXMOX_PASSWORD: value }),
      want,
      JSON.stringify(value),
    );
    assert.deepEqual(viaFile(value)[0], want, JSON.stringify(value));
  }
  const token = { kind: "token", tokenId: "root@pam!mcp", secret: "uuid" };
  assert.deepEqual(
    direct({
      PROXMOX_TOKEN_ID: "root@pam!mcp",
      PROXMOX_TOKEN_SECRET: " uuid\n",
    }),
    token,
  );
  assert.deepEqual(viaFile("pw", " uuid\n")[1], token);
  // Only whitespace is empty, both ways.
  assert.throws(
    () => direct({ PROXMOX_USER: "root@pam", PROXMOX_PASSWORD: " \n" }),
    /PROXMOX_PASSWORD must not be empty/,
  );
  assert.throws(
    () => viaFile(" \n"),
    /password of cluster 'lab' in .*: the variable PROXMOX_LAB_PW is empty/,
  );
});

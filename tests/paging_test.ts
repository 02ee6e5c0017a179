/**
 * Paging of long listings (src/tools/paging.ts): a default answer holds at
 * most 16 KiB of JSON with the total and a next_cursor; a walk through the
 * pages returns every row exactly once, even while guests come and go; a
 * cursor that is not the tool's own is a clear error. And list_backups lists
 * what it can read when one storage fails, naming that one in unreachable.
 */
import assert from "node:assert/strict";
import { newGuest } from "../sim/seed.ts";
import type { Simulator } from "../sim/mod.ts";
import type { Guest } from "../sim/state.ts";
import { PveClient } from "../src/proxmox/client.ts";
import { listVms } from "../src/tools/vms.ts";
import type { ToolContext } from "../src/tools/define.ts";
import {
  call,
  callOk,
  connect,
  type Connected,
  prng,
  simEnv,
  startSim,
} from "./helpers.ts";
import { movableClock } from "./tool_helpers.ts";

const KIB16 = 16 * 1024;
const bytes = (text: string) => new TextEncoder().encode(text).length;
/** The client's /cluster/resources cache (src/proxmox/client.ts, by Date.now), and a bit. */
const PAST_RESOURCE_CACHE_MS = 1600;

interface Answer {
  text: string;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/** Every page of a listing, from the first (each answer asserted ok). */
async function walk(
  s: Connected,
  tool: string,
  args: Record<string, unknown> = {},
  between?: (page: number, last: Answer) => void | Promise<void>,
): Promise<Answer[]> {
  const pages: Answer[] = [];
  let cursor: string | undefined;
  do {
    const r = await call(
      s.client,
      tool,
      cursor ? { ...args, cursor } : args,
    );
    assert.ok(!r.isError, `${tool} page ${pages.length + 1}: ${r.text}`);
    pages.push(r);
    cursor = r.data.next_cursor;
    assert.ok(pages.length < 1000, "the walk ends");
    if (cursor && between) await between(pages.length, r);
  } while (cursor);
  return pages;
}

const resourceCalls = (sim: Simulator) =>
  sim.requests.filter((r) => r.path === "/cluster/resources").length;

Deno.test("list_vms on 5 000 guests: the default answer is at most 16 KiB, sorted by vmid, with the total and counts by node, status and type over every guest, from one /cluster/resources request", async () => {
  await using sim = await startSim({ extraGuests: 5000 });
  await using s = await connect({ env: simEnv(sim) });
  const before = resourceCalls(sim);
  const r = await call(s.client, "proxmox_list_vms");
  assert.ok(!r.isError, r.text);
  assert.equal(resourceCalls(sim) - before, 1, "one /cluster/resources call");
  assert.ok(bytes(r.text) <= KIB16, `${bytes(r.text)} bytes`);
  assert.ok(bytes(r.text) > KIB16 - 1024, "the budget is used, not wasted");
  const { data } = r;
  assert.equal(data.total, sim.cluster.guests.size);
  assert.equal(data.total, 5000 + 12);
  assert.ok(data.next_cursor, "more pages");
  const vmids = data.rows.map((row: unknown[]) => row[0]);
  assert.deepEqual(
    vmids,
    [...sim.cluster.guests.keys()].sort((a, b) => a - b).slice(
      0,
      vmids.length,
    ),
    "the first guests by vmid",
  );
  // The counts cover every guest, not the page.
  const expect = (
    f: (g: { node: string; type: string; status: string }) => string,
  ) => {
    const m: Record<string, number> = {};
    for (const g of sim.cluster.guests.values()) m[f(g)] = (m[f(g)] ?? 0) + 1;
    return m;
  };
  assert.deepEqual(data.by_node, expect((g) => g.node));
  assert.deepEqual(data.by_type, expect((g) => g.type));
  // A guest on an offline node has status unknown in /cluster/resources.
  const offline = new Set(
    [...sim.cluster.nodes.values()].filter((n) => !n.online).map((n) => n.node),
  );
  assert.deepEqual(
    data.by_status,
    expect((g) => offline.has(g.node) ? "unknown" : g.status),
  );
  assert.equal(
    Object.values(data.by_status as Record<string, number>).reduce(
      (a, b) => a + b,
    ),
    data.total,
  );
});

Deno.test("walking list_vms through its pages returns every guest exactly once, in vmid order, each page at most 16 KiB", async () => {
  await using sim = await startSim({ extraGuests: 5000 });
  await using s = await connect({ env: simEnv(sim) });
  const pages = await walk(s, "proxmox_list_vms");
  const seen = pages.flatMap((p) => p.data.rows.map((r: unknown[]) => r[0]));
  assert.deepEqual(
    seen,
    [...sim.cluster.guests.keys()].sort((a, b) => a - b),
  );
  assert.equal(new Set(seen).size, seen.length, "no repeats");
  assert.ok(pages.length >= 15, `${pages.length} pages`);
  for (const p of pages) {
    assert.ok(bytes(p.text) <= KIB16, `${bytes(p.text)} bytes`);
    assert.equal(p.data.total, 5012);
  }
  assert.equal(pages.at(-1)!.data.next_cursor, undefined);
  // limit asks for fewer rows (or more, within its cap).
  const ten = await callOk(s.client, "proxmox_list_vms", { limit: 10 });
  assert.equal(ten.rows.length, 10);
  const more = await call(s.client, "proxmox_list_vms", { limit: 1000 });
  assert.equal(more.data.rows.length, 1000);
  assert.ok(bytes(more.text) <= 64 * 1024);
  const over = await call(s.client, "proxmox_list_vms", { limit: 100000 });
  assert.equal(over.isError, true);
});

Deno.test("guests created and deleted between pages: no guest twice, and every guest present throughout listed once", async () => {
  await using sim = await startSim({ extraGuests: 300 });
  await using s = await connect({ env: simEnv(sim) });
  const initial = new Set(sim.cluster.guests.keys());
  const created: number[] = [];
  const deleted: number[] = [];
  const add = (vmid: number) => {
    sim.cluster.guests.set(
      vmid,
      newGuest({
        vmid,
        type: "qemu",
        node: "pve1",
        config: { name: `new-${vmid}`, memory: "512" },
      }),
    );
    created.push(vmid);
  };
  const remove = (vmid: number) => {
    assert.ok(sim.cluster.guests.delete(vmid));
    deleted.push(vmid);
  };
  const calls = resourceCalls(sim);
  using clock = movableClock();
  const pages = await walk(
    s,
    "proxmox_list_vms",
    { limit: 100 },
    (n, last) => {
      // Behind the cursor and ahead of it: with offsets, a removal behind
      // would skip a guest and an addition behind would repeat one.
      remove(10000 + 10 * n); // already listed
      // The guest the cursor names: the next page starts right after it.
      if (n === 2) remove(last.data.rows.at(-1)[0]);
      remove(10299 - n); // not yet listed
      add(150 + n); // behind the cursor: not listed, and nothing repeats
      add(20000 + n); // ahead: listed
      clock.advance(PAST_RESOURCE_CACHE_MS); // the next page reads PVE afresh
    },
  );
  assert.equal(
    resourceCalls(sim) - calls,
    pages.length,
    "every page read the guests afresh",
  );
  const seen = pages.flatMap((p) => p.data.rows.map((r: unknown[]) => r[0]));
  assert.equal(new Set(seen).size, seen.length, "no guest twice");
  const throughout = [...initial].filter((v) => !deleted.includes(v));
  for (const v of throughout) {
    assert.equal(seen.filter((x) => x === v).length, 1, `guest ${v} once`);
  }
  for (const v of created.filter((v) => v >= 20000)) {
    assert.ok(seen.includes(v), `guest ${v}, created ahead, is listed`);
  }
  for (const v of deleted.filter((v) => v >= 10290)) {
    assert.ok(!seen.includes(v), `guest ${v}, deleted ahead, is not listed`);
  }
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "in vmid order");
});

Deno.test("filters combine with paging, and a cursor is refused with other filters", async () => {
  await using sim = await startSim({ extraGuests: 2000 });
  await using s = await connect({ env: simEnv(sim) });
  const args = { type: "lxc", status: "running", node: "pve2", limit: 50 };
  const pages = await walk(s, "proxmox_list_vms", args);
  const rows = pages.flatMap((p) => p.data.rows);
  const col = (n: string) => pages[0].data.columns.indexOf(n);
  const want = [...sim.cluster.guests.values()].filter((g) =>
    g.type === "lxc" && g.status === "running" && g.node === "pve2"
  ).map((g) => g.vmid).sort((a, b) => a - b);
  assert.ok(want.length > 100, "several pages");
  assert.deepEqual(rows.map((r: unknown[]) => r[col("vmid")]), want);
  assert.ok(rows.every((r: unknown[]) => r[col("type")] === "lxc"));
  assert.ok(rows.every((r: unknown[]) => r[col("node")] === "pve2"));
  assert.equal(pages[0].data.total, want.length);
  assert.deepEqual(pages[0].data.by_type, { lxc: want.length });
  // The same cursor with another filter: refused, clearly.
  const other = await call(s.client, "proxmox_list_vms", {
    ...args,
    node: "pve1",
    cursor: pages[0].data.next_cursor,
  });
  assert.equal(other.isError, true);
  assert.match(other.text, /other arguments/);
  // Another limit is fine.
  const r = await callOk(s.client, "proxmox_list_vms", {
    ...args,
    limit: 5,
    cursor: pages[0].data.next_cursor,
  });
  assert.deepEqual(r.rows.map((x: unknown[]) => x[0]), want.slice(50, 55));
});

/** Cursors no listing made: random bytes, paths, other shapes. */
function hostileCursors(seed: number): string[] {
  const rnd = prng(seed);
  const b64 = (s: string) =>
    btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  const random = Array.from({ length: 4 }, (_, n) =>
    btoa(String.fromCharCode(
      ...Array.from({ length: 8 + n * 20 }, () => Math.floor(rnd() * 256)),
    )));
  return [
    ...random,
    ...random.map((r) => r.replaceAll("+", "-").replaceAll("/", "_")),
    "",
    "../../../etc/passwd",
    "/nodes/pve1/qemu/100",
    "%2e%2e",
    "a\0b",
    b64("../../etc/passwd"),
    b64(JSON.stringify({ t: "list_vms", f: "x", k: ["../../etc/passwd"] })),
    b64(JSON.stringify({ t: "../list_vms", f: "0", k: [1] })),
    b64(JSON.stringify({ t: "list_vms", f: "0", k: [1e400] })),
    b64(JSON.stringify({ t: "list_vms", f: "0", k: [1], x: 1 })),
    b64(JSON.stringify(["list_vms", 100])),
    b64("null"),
    b64("{}"),
    "A".repeat(5000),
  ];
}

Deno.test("a hostile cursor (random bytes, a path, another tool's cursor) is a clear isError for every paged listing", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const listings: [string, Record<string, unknown>][] = [
    ["proxmox_list_vms", {}],
    ["proxmox_list_content", { storage: "local" }],
    ["proxmox_list_backups", {}],
    ["proxmox_list_snapshots", { vmid: 100 }],
    ["proxmox_list_firewall_rules", { vmid: 100 }],
  ];
  // A real cursor of list_backups (one archive per page).
  const backups = await callOk(s.client, "proxmox_list_backups", { limit: 1 });
  assert.ok(backups.next_cursor);
  for (const [tool, args] of listings) {
    for (const cursor of hostileCursors(13)) {
      const r = await call(s.client, tool, { ...args, cursor });
      assert.equal(r.isError, true, `${tool} with ${JSON.stringify(cursor)}`);
      assert.match(r.text, /cursor/i, `${tool}: ${r.text}`);
      assert.doesNotMatch(r.text, /Internal error/, `${tool}: ${r.text}`);
    }
    if (tool !== "proxmox_list_backups") {
      const r = await call(s.client, tool, {
        ...args,
        cursor: backups.next_cursor,
      });
      assert.equal(r.isError, true);
      assert.match(r.text, /from proxmox_list_backups, not /);
    }
  }
  assert.ok(
    !sim.requests.some((r) => /etc|passwd|\.\./.test(r.rawPath)),
    "no cursor reached a Proxmox path",
  );
});

Deno.test("list_content, list_backups, list_snapshots and list_firewall_rules page through every row exactly once", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const g = sim.cluster.guests.get(100)!;
  for (let i = 0; i < 30; i++) {
    g.firewall.rules.push({
      type: "in",
      action: "ACCEPT",
      proto: "tcp",
      dport: String(1000 + i),
      enable: 1,
    });
  }
  for (let i = 0; i < 5; i++) {
    await callOk(s.client, "proxmox_create_snapshot", {
      vmid: 100,
      name: `s${i}`,
    });
  }
  const cases: [
    string,
    Record<string, unknown>,
    string,
    (x: never) => string,
  ][] = [
    ["proxmox_list_content", { storage: "local" }, "items", (x: {
      volid: string;
      node?: string;
    }) => `${x.volid}@${x.node}`],
    ["proxmox_list_backups", {}, "backups", (x: { volid: string }) => x.volid],
    ["proxmox_list_snapshots", { vmid: 100 }, "snapshots", (x: {
      name: string;
    }) => x.name],
    ["proxmox_list_firewall_rules", { vmid: 100 }, "rules", (x: {
      pos: number;
    }) => String(x.pos)],
  ];
  for (const [tool, args, field, id] of cases) {
    const whole = await callOk(s.client, tool, { ...args, limit: 1000 });
    assert.equal(whole.next_cursor, undefined, tool);
    const all = whole[field].map(id);
    assert.ok(all.length >= 3, `${tool}: ${all.length} rows`);
    const pages = await walk(s, tool, { ...args, limit: 2 });
    assert.equal(pages.length, Math.ceil(all.length / 2), tool);
    const seen = pages.flatMap((p) => p.data[field].map(id));
    assert.deepEqual(seen, all, `${tool}: every row once, in order`);
    assert.ok(pages.every((p) => p.data.total === pages[0].data.total));
  }
  const rules = await callOk(s.client, "proxmox_list_firewall_rules", {
    vmid: 100,
  });
  assert.equal(rules.total, 30);
  assert.deepEqual(rules.rules.map((r: { pos: number }) => r.pos).slice(0, 3), [
    0,
    1,
    2,
  ]);
  const backups = await callOk(s.client, "proxmox_list_backups", {});
  const times = backups.backups.map((b: { time: string }) => b.time);
  assert.deepEqual(times, [...times].sort().reverse(), "newest first");
});

/** Four more firewall rules on guest 100 (`g`), then their first page of two (it has a next one). */
async function firstRulesPage(g: Guest, s: Connected) {
  for (let i = 0; i < 4; i++) {
    g.firewall.rules.push({ type: "in", action: "DROP", enable: 1 });
  }
  const first = await callOk(s.client, "proxmox_list_firewall_rules", {
    vmid: 100,
    limit: 2,
  });
  assert.ok(first.next_cursor);
  return first;
}

/** A rule added at the top of guest 100's (`g`) rules shifts every position: the page at `cursor` is refused. */
async function assertShiftedRulesRefused(
  g: Guest,
  s: Connected,
  cursor: string,
): Promise<void> {
  g.firewall.rules.unshift({ type: "out", action: "ACCEPT", enable: 1 });
  const next = await call(s.client, "proxmox_list_firewall_rules", {
    vmid: 100,
    limit: 2,
    cursor,
  });
  assert.equal(next.isError, true, next.text);
  assert.match(next.text, /changed since that page/);
}

Deno.test("firewall rules or snapshots changed between pages: the next page is refused (they are known by position), not listed with repeats or gaps", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const g = sim.cluster.guests.get(100)!;
  const first = await firstRulesPage(g, s);
  await assertShiftedRulesRefused(g, s, first.next_cursor);

  for (const name of ["a1", "a2", "a3"]) {
    await callOk(s.client, "proxmox_create_snapshot", { vmid: 100, name });
  }
  const snaps = await callOk(s.client, "proxmox_list_snapshots", {
    vmid: 100,
    limit: 2,
  });
  assert.ok(snaps.next_cursor);
  await callOk(s.client, "proxmox_delete_snapshot", { vmid: 100, name: "a1" });
  const after = await call(s.client, "proxmox_list_snapshots", {
    vmid: 100,
    limit: 2,
    cursor: snaps.next_cursor,
  });
  assert.equal(after.isError, true);
  assert.match(after.text, /changed since that page/);
});

Deno.test("firewall rules changed between pages behind a proxy that drops PVE's digest: the next page is still refused, from the rules themselves", async () => {
  await using sim = await startSim();
  // Passes every request on; takes `digest` out of firewall rule lists.
  await using proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      const res = await fetch(sim.url + url.pathname + url.search, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        redirect: "manual",
      });
      if (!/\/firewall\/rules$/.test(url.pathname) || req.method !== "GET") {
        return res;
      }
      const body = await res.json();
      for (const r of body.data ?? []) delete r.digest;
      return Response.json(body, { status: res.status });
    },
  );
  const base = new URL(sim.url);
  const proxied = `http://127.0.0.1:${proxy.addr.port}${base.pathname}`
    .replace(/\/$/, "");
  await using s = await connect({
    env: { ...simEnv(sim), PROXMOX_URL: proxied },
  });
  const g = sim.cluster.guests.get(100)!;
  const first = await firstRulesPage(g, s);
  assert.ok(
    sim.requests.some((r) => r.path.endsWith("/firewall/rules")),
    "the rules came through the proxy",
  );
  await assertShiftedRulesRefused(g, s, first.next_cursor);
});

/** PVE's answer when a storage's backend cannot be reached (PVE::Storage::activate_storage). */
const NOT_ONLINE = (storage: string) => `storage '${storage}' is not online`;

Deno.test("list_backups with a PBS storage that is not online lists the other storages' backups and names it in unreachable with Proxmox's words", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const healthy = await callOk(s.client, "proxmox_list_backups", {});
  const onPbs = healthy.backups.filter((b: { storage: string }) =>
    b.storage === "pbs"
  );
  assert.ok(onPbs.length >= 2, "the seeded PBS backups");
  assert.equal(healthy.unreachable, undefined);
  sim.faults.inject({
    method: "GET",
    path: /^\/nodes\/[^/]+\/storage\/pbs\/content$/,
    times: Infinity,
    fault: { kind: "status", status: 500, message: NOT_ONLINE("pbs") },
  });
  const r = await callOk(s.client, "proxmox_list_backups", {});
  assert.deepEqual(r.unreachable, [{
    storage: "pbs",
    error: NOT_ONLINE("pbs"),
  }]);
  assert.deepEqual(
    r.backups.map((b: { volid: string }) => b.volid),
    healthy.backups.filter((b: { storage: string }) => b.storage !== "pbs")
      .map((b: { volid: string }) => b.volid),
  );
  assert.equal(r.total, healthy.total - onPbs.length);

  // Only that storage asked for: its error, as an error.
  const only = await call(s.client, "proxmox_list_backups", {
    storage: "pbs",
  });
  assert.equal(only.isError, true);
  assert.match(only.text, /storage 'pbs' is not online/);

  // Every storage failing: an error naming each.
  sim.faults.inject({
    method: "GET",
    path: /\/storage\/[^/]+\/content$/,
    times: Infinity,
    fault: { kind: "status", status: 500, message: "got timeout" },
  });
  const none = await call(s.client, "proxmox_list_backups", {});
  assert.equal(none.isError, true);
  assert.match(none.text, /No backup storage could be read/);
  assert.match(none.text, /pbs: storage 'pbs' is not online/);
  assert.match(none.text, /local on pve1: got timeout/);
});

Deno.test("list_backups with a PBS that Proxmox reports down (status unknown in /cluster/resources) names it in unreachable with that status and lists the rest; asked for alone, it is an error saying so", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({ env: simEnv(sim) });
  const healthy = await callOk(s.client, "proxmox_list_backups", {});
  const onPbs =
    healthy.backups.filter((b: { storage: string }) => b.storage === "pbs")
      .length;
  assert.ok(onPbs >= 2, "the seeded PBS backups");
  // Node pve3 is down: its local storage is the node's absence, not named.
  assert.equal(healthy.unreachable, undefined);
  sim.cluster.storages.find((x) => x.storage === "pbs")!.offline = true;
  const r = await callOk(s.client, "proxmox_list_backups", {});
  assert.equal(r.unreachable?.length, 1, JSON.stringify(r.unreachable));
  assert.equal(r.unreachable[0].storage, "pbs");
  assert.equal(r.unreachable[0].node, undefined, "shared: once, no node");
  assert.match(r.unreachable[0].error, /status as 'unknown', not available/);
  assert.equal(r.total, healthy.total - onPbs);
  assert.ok(r.backups.every((b: { storage: string }) => b.storage !== "pbs"));
  const only = await call(s.client, "proxmox_list_backups", {
    storage: "pbs",
  });
  assert.equal(only.isError, true);
  assert.match(only.text, /Storage 'pbs' is not available.*'unknown'/);
});

Deno.test("list_backups with a storage that never answers reports it unreachable after the request timeout and lists the rest", async () => {
  await using sim = await startSim({ pbs: true });
  await using s = await connect({
    env: { ...simEnv(sim), PROXMOX_TIMEOUT: "1" },
  });
  sim.faults.inject({
    method: "GET",
    path: /^\/nodes\/[^/]+\/storage\/pbs\/content$/,
    times: Infinity,
    fault: { kind: "hang" },
  });
  const r = await callOk(s.client, "proxmox_list_backups", {});
  assert.equal(r.unreachable.length, 1);
  assert.equal(r.unreachable[0].storage, "pbs");
  assert.match(r.unreachable[0].error, /1 s|timed out|did not answer/i);
  assert.ok(r.backups.length > 0);
  assert.ok(r.backups.every((b: { storage: string }) => b.storage !== "pbs"));
});

Deno.test("list_vms across two clusters (ctx.clusters, as across() reads them): rows carry cluster first, sorted by cluster then vmid, pages go through both exactly once, an unreachable cluster is named", async () => {
  await using a = await startSim({ extraGuests: 400 });
  await using b = await startSim({ extraGuests: 400 });
  const client = (sim: Simulator) =>
    new PveClient({
      baseUrl: sim.url,
      auth: {
        kind: "password",
        user: sim.credentials.user,
        password: sim.credentials.password,
      },
    });
  const ctx = {
    pve: client(a),
    clusters: [{ name: "home", pve: client(a) }, {
      name: "lab",
      pve: client(b),
    }],
  } as unknown as ToolContext;
  const rows: unknown[][] = [];
  let cursor: string | undefined;
  let first: Awaited<ReturnType<typeof listVms.run>> | undefined;
  do {
    const r = await listVms.run({ cursor }, ctx);
    first ??= r;
    assert.ok(bytes(JSON.stringify(r)) <= KIB16);
    rows.push(...r.rows);
    cursor = r.next_cursor;
  } while (cursor);
  assert.equal(first!.columns[0], "cluster");
  assert.equal(first!.total, a.cluster.guests.size + b.cluster.guests.size);
  const ids = rows.map((r) => `${r[0]}/${r[1]}`);
  assert.equal(new Set(ids).size, ids.length, "no repeats");
  const want = [
    ...[...a.cluster.guests.keys()].sort((x, y) => x - y).map((v) =>
      `home/${v}`
    ),
    ...[...b.cluster.guests.keys()].sort((x, y) => x - y).map((v) =>
      `lab/${v}`
    ),
  ];
  assert.deepEqual(ids, want);
  assert.equal(first!.by_node["home/pve1"], first!.by_node["lab/pve1"]);
  // One cluster down: the other is listed, and the dead one named.
  b.faults.inject({
    path: "/cluster/resources",
    times: Infinity,
    fault: { kind: "status", status: 500, message: "cluster lab is down" },
  });
  using clock = movableClock();
  clock.advance(PAST_RESOURCE_CACHE_MS);
  const half = await listVms.run({ limit: 1000 }, ctx);
  assert.equal(half.total, a.cluster.guests.size);
  assert.equal(half.unreachable?.length, 1);
  assert.equal(half.unreachable![0].cluster, "lab");
  assert.match(half.unreachable![0].error, /cluster lab is down/);
});

Deno.test("no tool advertises cursor or limit; the instructions explain them once", async () => {
  const { INSTRUCTIONS } = await import("../src/server.ts");
  assert.match(INSTRUCTIONS, /next_cursor as cursor/);
  assert.match(INSTRUCTIONS, /limit/);
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const { tools } = await s.client.listTools();
  for (const t of tools) {
    const props = Object.keys(t.inputSchema.properties ?? {});
    assert.ok(!props.includes("cursor"), `${t.name} advertises cursor`);
    assert.ok(!props.includes("limit"), `${t.name} advertises limit`);
  }
});

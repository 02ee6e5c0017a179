/** e2e: storage and content listings over stdio, and what they feed. */
import assert from "node:assert/strict";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { HOSTILE_SEGMENTS } from "./path_strings.ts";

interface Storage {
  node: string;
  storage: string;
  type: string;
  content: string[];
  total_gib?: number;
  used_gib?: number;
  avail_gib?: number;
  used_pct?: number;
  active: boolean;
  enabled: boolean;
  shared: boolean;
}

Deno.test("list_storage shows every online node's storages with content types, usage and flags", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const all = await callOk(s.client, "proxmox_list_storage", {});
  const at = (node: string, id: string): Storage =>
    all.storages.find((x: Storage) => x.node === node && x.storage === id);
  assert.deepEqual(
    [...new Set(all.storages.map((x: Storage) => x.node))],
    ["pve1", "pve2"],
    "the offline node is left out",
  );
  assert.deepEqual(at("pve1", "local"), {
    node: "pve1",
    storage: "local",
    type: "dir",
    content: ["backup", "iso", "snippets", "vztmpl"],
    total_gib: 100,
    used_gib: at("pve1", "local").used_gib,
    avail_gib: at("pve1", "local").avail_gib,
    used_pct: at("pve1", "local").used_pct,
    active: true,
    enabled: true,
    shared: false,
  });
  const local = at("pve1", "local");
  assert.ok(local.used_gib! > 12, "base usage plus ISOs, templates, a backup");
  assert.equal(
    Math.round((local.used_gib! + local.avail_gib!) * 10) / 10,
    100,
  );
  assert.equal(at("pve1", "nas-backup").shared, true);
  assert.equal(at("pve2", "local-lvm").type, "lvmthin");

  const rootdir = await callOk(s.client, "proxmox_list_storage", {
    node: "pve2",
    content: "rootdir",
  });
  assert.deepEqual(
    rootdir.storages.map((x: Storage) => x.storage),
    ["local-lvm"],
  );
  const offline = await call(s.client, "proxmox_list_storage", {
    node: "pve3",
  });
  assert.equal(offline.isError, true);
});

Deno.test("list_content lists ISOs and CT templates by default, other types on request, with the node for local storage", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const r = await callOk(s.client, "proxmox_list_content", {
    storage: "local",
    node: "pve1",
  });
  // Sorted by volid: the order pages follow.
  assert.deepEqual(r.items.map((i: { volid: string }) => i.volid), [
    "local:iso/debian-12.7.0-amd64-netinst.iso",
    "local:iso/ubuntu-24.04.1-live-server-amd64.iso",
    "local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz",
    "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
  ]);
  assert.equal(r.total, 5);
  const deb = r.items[3];
  assert.equal(deb.content, "vztmpl");
  assert.equal(deb.format, "tzst");
  assert.equal(deb.size_mib, 126);
  assert.equal(deb.node, "pve1");
  assert.equal(r.items[0].format, "iso");

  // Without a node, local storage is read on each online node.
  const everywhere = await callOk(s.client, "proxmox_list_content", {
    storage: "local",
    content: "iso",
  });
  assert.equal(everywhere.total, 4);
  assert.deepEqual(
    [...new Set(everywhere.items.map((i: { node: string }) => i.node))],
    ["pve1", "pve2"],
  );
  const images = await callOk(s.client, "proxmox_list_content", {
    storage: "local-lvm",
    node: "pve1",
    content: "images",
  });
  assert.ok(
    images.items.some((i: { volid: string; vmid: number }) =>
      i.volid === "local-lvm:vm-100-disk-0" && i.vmid === 100
    ),
  );
  assert.ok(
    images.items.every((i: { content: string }) => i.content === "images"),
  );
  const req = sim.requests.filter((x) =>
    x.path === "/nodes/{node}/storage/{storage}/content"
  ).at(-1)!;
  assert.equal(req.params.content, "images", "one type is filtered by PVE");
  const rootdir = await callOk(s.client, "proxmox_list_content", {
    storage: "local-lvm",
    node: "pve1",
    content: "rootdir",
  });
  assert.ok(
    rootdir.items.some((i: { volid: string }) =>
      i.volid === "local-lvm:vm-200-disk-0"
    ),
    "container volumes are content rootdir",
  );

  const missing = await call(s.client, "proxmox_list_content", {
    storage: "nope",
  });
  assert.equal(missing.isError, true);
  assert.match(
    missing.text,
    /Storage 'nope' is not available on any online node/,
  );
});

Deno.test("storage and content listings feed proxmox_create_lxc", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const node = "pve1";
  const tplStores = await callOk(s.client, "proxmox_list_storage", {
    node,
    content: "vztmpl",
  });
  const tplStore = tplStores.storages[0].storage;
  const templates = await callOk(s.client, "proxmox_list_content", {
    storage: tplStore,
    node,
    content: "vztmpl",
  });
  const debian = templates.items.find((i: { volid: string }) =>
    i.volid.includes("debian-12-standard")
  );
  const ctStores = await callOk(s.client, "proxmox_list_storage", {
    node,
    content: "rootdir",
  });
  const ctStore = ctStores.storages.find((x: Storage) => x.active).storage;

  const created = await callOk(s.client, "proxmox_create_lxc", {
    ostemplate: debian.volid,
    node,
    storage: ctStore,
    hostname: "from-listing",
  });
  const ct = sim.cluster.guests.get(created.vmid)!;
  assert.equal(ct.type, "lxc");
  assert.equal(ct.node, node);
  assert.equal(ct.config.hostname, "from-listing");
  assert.match(String(ct.config.rootfs), new RegExp(`^${ctStore}:`));
  const create = sim.requests.find((x) =>
    x.method === "POST" && x.path === "/nodes/{node}/lxc"
  )!;
  assert.equal(create.params.ostemplate, debian.volid);
});

Deno.test("storage ids and node names that could change a path are refused before any request", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  sim.requests.length = 0;
  for (const bad of HOSTILE_SEGMENTS) {
    const content = await call(s.client, "proxmox_list_content", {
      storage: bad,
      node: "pve1",
    });
    assert.equal(content.isError, true, JSON.stringify(bad));
    assert.match(content.text, /storage: Not a valid storage/);
    const contentNode = await call(s.client, "proxmox_list_content", {
      storage: "local",
      node: bad,
    });
    assert.equal(contentNode.isError, true);
    assert.match(contentNode.text, /node: Not a valid node/);
    const storage = await call(s.client, "proxmox_list_storage", { node: bad });
    assert.equal(storage.isError, true);
  }
  assert.deepEqual(sim.requests.map((r) => `${r.method} ${r.path}`), []);
  // A well-formed storage id is read from a path built by the API layer.
  await callOk(s.client, "proxmox_list_content", {
    storage: "nas-backup",
    content: "backup",
  });
  assert.deepEqual(
    sim.requests.filter((r) => r.path.includes("{storage}")).map((r) =>
      r.rawPath.replace(/\?.*$/, "")
    ),
    ["/api2/json/nodes/pve1/storage/nas-backup/content"],
    "a shared storage is read once",
  );
});

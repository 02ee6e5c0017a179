/** Cluster and node read endpoints. */
import { type Route, str } from "../router.ts";
import { SimError } from "../state.ts";
import { PVE_RELEASES } from "../versions.ts";
import { nodeEntry, resourceEntry } from "../views.ts";

export const CLUSTER_ROUTES: Route[] = [
  // Answered by the server itself (it owns the tickets); declared for matching.
  { method: "POST", path: "/access/ticket", handler: () => null },
  {
    method: "GET",
    path: "/access/permissions",
    handler: (req) => {
      const who = str(req, "userid") ?? req.user;
      const owned = who.startsWith(req.user + "!");
      if (who !== req.user && !owned) {
        req.cluster.access.check(req.user, "/access", ["Sys.Audit"]);
      }
      return req.cluster.access.effective(who, str(req, "path"));
    },
  },
  {
    method: "GET",
    path: "/access/users/{userid}/token/{tokenid}",
    handler: (req) => {
      const id = `${str(req, "userid")}!${str(req, "tokenid")}`;
      const t = req.cluster.access.tokens.get(id);
      if (!t) {
        throw new SimError(
          500,
          `no such token '${str(req, "tokenid")}' for user '${
            str(req, "userid")
          }'`,
        );
      }
      return { privsep: t.privsep ? 1 : 0, expire: 0 };
    },
  },
  {
    method: "GET",
    path: "/version",
    handler: ({ cluster }) => {
      const { version, release, repoid } = PVE_RELEASES[cluster.pveVersion];
      return { version, release, repoid };
    },
  },
  {
    method: "GET",
    path: "/nodes",
    handler: ({ cluster }) =>
      [...cluster.nodes.values()].map((n) => nodeEntry(cluster, n)),
  },
  {
    method: "GET",
    path: "/nodes/{node}/status",
    handler: (req) => {
      const n = req.cluster.node(str(req, "node")!);
      const release = PVE_RELEASES[req.cluster.pveVersion];
      const e = nodeEntry(req.cluster, n) as Record<string, number>;
      return {
        uptime: e.uptime,
        cpu: e.cpu,
        wait: 0.001,
        cpuinfo: {
          cpus: n.maxcpu,
          cores: n.maxcpu / 2,
          sockets: 1,
          model: "AMD EPYC 7302P 16-Core Processor",
          mhz: "3000.000",
        },
        memory: {
          total: n.maxmem,
          used: e.mem,
          free: n.maxmem - e.mem,
          available: n.maxmem - e.mem,
        },
        swap: { total: 8 * 1024 ** 3, used: 0, free: 8 * 1024 ** 3 },
        rootfs: {
          total: n.maxdisk,
          used: e.disk,
          free: n.maxdisk - e.disk,
          avail: n.maxdisk - e.disk,
        },
        loadavg: ["0.42", "0.37", "0.30"],
        pveversion: `pve-manager/${release.version}/${release.repoid}`,
        kversion: release.kversion,
        "boot-info": { mode: "efi", secureboot: 0 },
        ksm: { shared: 0 },
      };
    },
  },
  {
    method: "GET",
    path: "/cluster/status",
    handler: ({ cluster }) => [
      {
        type: "cluster",
        id: "cluster",
        name: cluster.clusterName,
        nodes: cluster.nodes.size,
        quorate: 1,
        version: cluster.nodes.size,
      },
      ...[...cluster.nodes.values()].map((n, i) => ({
        type: "node",
        id: `node/${n.node}`,
        name: n.node,
        nodeid: i + 1,
        local: i === 0 ? 1 : 0,
        online: n.online ? 1 : 0,
        ip: n.ip,
        level: "",
      })),
    ],
  },
  {
    method: "GET",
    path: "/cluster/resources",
    handler: (req) => {
      const type = str(req, "type");
      const c = req.cluster;
      const out: Record<string, unknown>[] = [];
      if (!type || type === "node") {
        for (const n of c.nodes.values()) {
          out.push({ ...nodeEntry(c, n), "cgroup-mode": 2 });
        }
      }
      if (!type || type === "vm") {
        for (const g of c.guests.values()) out.push(resourceEntry(c, g));
      }
      if (!type || type === "storage") {
        for (const n of c.nodes.values()) {
          for (const s of c.storages) {
            if (s.nodes && !s.nodes.includes(n.node)) continue;
            // pvestatd reports active storages only (with their use): a
            // disabled or unreachable one, or any on a node that is down,
            // shows as unknown, without disk and maxdisk.
            const active = n.online && s.enabled && !s.offline;
            out.push({
              id: `storage/${n.node}/${s.storage}`,
              type: "storage",
              storage: s.storage,
              node: n.node,
              plugintype: s.type,
              status: active ? "available" : "unknown",
              shared: s.shared ? 1 : 0,
              content: s.content.join(","),
              ...(active
                ? { disk: c.storageUsed(s, n.node), maxdisk: s.total }
                : {}),
            });
          }
        }
      }
      return out;
    },
  },
  {
    method: "GET",
    path: "/cluster/nextid",
    handler: (req) => {
      const c = req.cluster;
      const want = str(req, "vmid");
      if (want !== undefined) {
        if (c.guests.has(Number(want))) {
          throw SimError.param({ vmid: `VM ${want} already exists` });
        }
        return want;
      }
      // PVE returns the number as a string.
      return String(c.nextId());
    },
  },
];

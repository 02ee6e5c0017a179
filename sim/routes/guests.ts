/** Guest read endpoints shared by QEMU and LXC: lists, status, config, RRD. */
import { bool, int, type Route, type SimRequest, str } from "../router.ts";
import { type GuestType, SimError } from "../state.ts";
import { configView, guestStats, listEntry, statusCurrent } from "../views.ts";

function guestOf(req: SimRequest, type: GuestType) {
  return req.cluster.guest(str(req, "node")!, type, int(req, "vmid")!);
}

function rrd(req: SimRequest, type: GuestType) {
  const g = guestOf(req, type);
  const s = guestStats(g);
  const tf = str(req, "timeframe") ?? "hour";
  const step = {
    hour: 60,
    day: 60,
    week: 1800,
    month: 1800,
    year: 21600,
    decade: 86400 * 7,
  }[tf] ?? 60;
  const count = tf === "hour" ? 60 : tf === "week" ? 336 : 1440;
  const now = Math.floor(Date.now() / 1000 / step) * step;
  const points = [];
  for (let i = count - 1; i >= 0; i--) {
    const wave = 1 + 0.3 * Math.sin((now - i * step) / 600 + g.vmid);
    const p: Record<string, number> = {
      time: now - i * step,
      maxcpu: s.maxcpu,
      maxmem: s.maxmem,
      maxdisk: s.maxdisk,
    };
    if (g.status === "running") {
      p.cpu = g.load.cpu * wave;
      p.mem = s.mem * (0.9 + 0.1 * wave);
      p.disk = s.disk;
      p.netin = 1200 * wave;
      p.netout = 800 * wave;
      p.diskread = 4000 * wave;
      p.diskwrite = 2500 * wave;
    }
    points.push(p);
  }
  return points;
}

function forType(type: GuestType): Route[] {
  const base = `/nodes/{node}/${type}`;
  return [
    {
      method: "GET",
      path: base,
      handler: (req) => {
        const node = str(req, "node")!;
        req.cluster.node(node);
        return [...req.cluster.guests.values()]
          .filter((g) => g.node === node && g.type === type)
          .map(listEntry);
      },
    },
    {
      method: "GET",
      path: `${base}/{vmid}/status/current`,
      handler: (req) => statusCurrent(guestOf(req, type)),
    },
    {
      method: "GET",
      path: `${base}/{vmid}/config`,
      handler: (req) => {
        const g = guestOf(req, type);
        const current = bool(req, "current") ?? false;
        const snap = str(req, "snapshot");
        if (snap !== undefined && current) {
          const msg = "cannot use 'snapshot' parameter with 'current'";
          throw SimError.param({ snapshot: msg, current: msg });
        }
        if (snap !== undefined) {
          const s = g.snapshots.get(snap);
          if (!s) throw new SimError(500, `snapshot '${snap}' does not exist`);
          return {
            ...s.config,
            snaptime: s.snaptime,
            ...(s.parent ? { parent: s.parent } : {}),
          };
        }
        return configView(g, current);
      },
    },
    {
      method: "GET",
      path: `${base}/{vmid}/pending`,
      handler: (req) => {
        const g = guestOf(req, type);
        const keys = new Set([
          ...Object.keys(g.config),
          ...Object.keys(g.pending),
          ...g.pendingDelete,
        ]);
        keys.delete("digest");
        return [...keys].sort().map((key) => {
          const e: Record<string, unknown> = { key };
          if (key in g.config) {
            e.value = key === "cipassword" ? "**********" : g.config[key];
          }
          if (key in g.pending) {
            e.pending = key === "cipassword" ? "**********" : g.pending[key];
          }
          if (g.pendingDelete.includes(key)) e.delete = 1;
          return e;
        });
      },
    },
    {
      method: "GET",
      path: `${base}/{vmid}/rrddata`,
      handler: (req) => rrd(req, type),
    },
  ];
}

export const GUEST_ROUTES: Route[] = [...forType("qemu"), ...forType("lxc")];

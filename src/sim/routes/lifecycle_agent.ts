/**
 * The guest addresses the lifecycle tools read after a start (issue 3):
 * QEMU `agent/ping` and `agent/network-get-interfaces` (SEMANTICS §4.11) and
 * LXC `interfaces` (§5).
 *
 * NOTE for the guest-agent area (issue 6, routes/agent.ts): these two agent
 * endpoints are only the minimum lifecycle needs. They are registered last in
 * routes/mod.ts, and the Router takes the first match, so agent.ts's own
 * versions win once it exists; then these two can be deleted.
 */
import { int, type Route, type SimRequest, str } from "../router.ts";
import { type Guest, parsePropString, SimError } from "../state.ts";

/** Task steps a booting guest needs before its agent answers. */
const AGENT_BOOT_STEPS = 3;

/** The §4.11 preconditions, in PVE's order; returns the guest. */
function agentGuest(req: SimRequest): Guest {
  const c = req.cluster;
  const g = c.guest(str(req, "node")!, "qemu", int(req, "vmid")!);
  if (g.config.agent === undefined) {
    throw new SimError(500, "No QEMU guest agent configured");
  }
  if (g.status !== "running") {
    throw new SimError(500, `VM ${g.vmid} is not running`);
  }
  const booted = Date.now() - (g.startedAt ?? 0) >=
    AGENT_BOOT_STEPS * c.taskMs;
  if (!g.guestOs?.agentRunning || !booted || g.qmpstatus === "paused") {
    throw new SimError(500, "QEMU guest agent is not running");
  }
  return g;
}

export const LIFECYCLE_AGENT_ROUTES: Route[] = [
  {
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/agent/ping",
    handler: (req) => {
      agentGuest(req);
      return { result: {} };
    },
  },
  {
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
    handler: (req) => ({
      result: structuredClone(agentGuest(req).guestOs!.interfaces),
    }),
  },
  {
    method: "GET",
    path: "/nodes/{node}/lxc/{vmid}/interfaces",
    handler: (req) => {
      const g = req.cluster.guest(str(req, "node")!, "lxc", int(req, "vmid")!);
      if (g.status !== "running") {
        throw new SimError(500, `CT ${g.vmid} not running`);
      }
      const lo = {
        name: "lo",
        hwaddr: "00:00:00:00:00:00",
        "hardware-address": "00:00:00:00:00:00",
        inet: "127.0.0.1/8",
        inet6: "::1/128",
        "ip-addresses": [
          { "ip-address": "127.0.0.1", "ip-address-type": "inet", prefix: 8 },
          { "ip-address": "::1", "ip-address-type": "inet6", prefix: 128 },
        ],
      };
      const nics = Object.keys(g.config).filter((k) => /^net\d+$/.test(k))
        .sort().map((k) => {
          const net = parsePropString(String(g.config[k]));
          // DHCP hands out 192.168.2.x to containers in the simulation.
          const cidr = /^[\d.]+\/\d+$/.test(net.ip ?? "")
            ? net.ip
            : `192.168.2.${g.vmid % 250}/24`;
          const [ip, prefix] = cidr.split("/");
          const hw = (net.hwaddr ?? "").toLowerCase();
          return {
            name: net.name ?? "eth0",
            hwaddr: hw,
            "hardware-address": hw,
            inet: cidr,
            "ip-addresses": [
              {
                "ip-address": ip,
                "ip-address-type": "inet",
                prefix: Number(prefix),
              },
            ],
          };
        });
      return [lo, ...nics];
    },
  },
];

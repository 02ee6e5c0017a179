/**
 * The guest addresses the lifecycle tools read after a start (issue 3): LXC
 * `interfaces` (§5). The QEMU side (`agent/ping`,
 * `agent/network-get-interfaces`, with the same boot delay) lives in
 * routes/agent.ts with the other guest-agent endpoints.
 */
import { int, type Route, str } from "../router.ts";
import { parsePropString, SimError } from "../state.ts";

export const LIFECYCLE_AGENT_ROUTES: Route[] = [
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

/**
 * Guest firewall endpoints (SEMANTICS.md §4.12), identical for QEMU and LXC:
 * rules (list, create, read, update/move, delete) and options. Reproduces
 * pve-firewall's quirks: a new rule is always inserted at position 0 and
 * `pos` is ignored on create, a rule is stored disabled unless `enable` is
 * given, `iface` must be `netN`, `forward` is refused for guests, the list
 * digest guards changes, and `moveto` moves a rule *before* that index.
 * These calls are not proxied to the guest's node.
 */
import { createHash } from "node:crypto";
import { int, type Route, type SimRequest, str } from "../router.ts";
import {
  configMissing,
  type FirewallRule,
  type Guest,
  type GuestType,
  SimError,
} from "../state.ts";

/** Cluster-level aliases (lower-case name → CIDR) and IP sets. */
export const CLUSTER_ALIASES: Record<string, string> = {
  "mgmt-net": "10.0.0.0/24",
  "backup-host": "192.168.1.50",
  "office-v6": "2001:db8:10::/48",
};
export const CLUSTER_IPSETS = new Set(["trusted", "blocklist"]);

/** pve-firewall macros (a subset): name → the rules it expands to. */
const MACROS: Record<
  string,
  { proto: string; dport?: string; sport?: string }[]
> = {
  BGP: [{ proto: "tcp", dport: "179" }],
  Ceph: [{ proto: "tcp", dport: "6789" }, { proto: "tcp", dport: "6800:7300" }],
  DHCPfwd: [{ proto: "udp", dport: "67:68", sport: "67:68" }],
  DNS: [{ proto: "udp", dport: "53" }, { proto: "tcp", dport: "53" }],
  FTP: [{ proto: "tcp", dport: "21" }],
  Git: [{ proto: "tcp", dport: "9418" }],
  HTTP: [{ proto: "tcp", dport: "80" }],
  HTTPS: [{ proto: "tcp", dport: "443" }],
  IMAP: [{ proto: "tcp", dport: "143" }],
  IMAPS: [{ proto: "tcp", dport: "993" }],
  LDAP: [{ proto: "tcp", dport: "389" }],
  LDAPS: [{ proto: "tcp", dport: "636" }],
  MSSQL: [{ proto: "tcp", dport: "1433" }],
  Mail: [
    { proto: "tcp", dport: "25" },
    { proto: "tcp", dport: "465" },
    { proto: "tcp", dport: "587" },
  ],
  MySQL: [{ proto: "tcp", dport: "3306" }],
  NTP: [{ proto: "udp", dport: "123" }],
  OpenVPN: [{ proto: "udp", dport: "1194" }],
  POP3: [{ proto: "tcp", dport: "110" }],
  Ping: [{ proto: "icmp", dport: "echo-request" }],
  PostgreSQL: [{ proto: "tcp", dport: "5432" }],
  RDP: [{ proto: "tcp", dport: "3389" }],
  Rsync: [{ proto: "tcp", dport: "873" }],
  SMTP: [{ proto: "tcp", dport: "25" }],
  SMTPS: [{ proto: "tcp", dport: "465" }],
  SNMP: [{ proto: "udp", dport: "161:162" }, { proto: "tcp", dport: "161" }],
  SSH: [{ proto: "tcp", dport: "22" }],
  Squid: [{ proto: "tcp", dport: "3128" }],
  Submission: [{ proto: "tcp", dport: "587" }],
  Syslog: [{ proto: "udp", dport: "514" }, { proto: "tcp", dport: "514" }],
  TFTP: [{ proto: "udp", dport: "69" }],
  Telnet: [{ proto: "tcp", dport: "23" }],
  Trcrt: [
    { proto: "udp", dport: "33434:33524" },
    { proto: "icmp", dport: "echo-request" },
  ],
  VNC: [{ proto: "tcp", dport: "5900:5999" }],
  Web: [{ proto: "tcp", dport: "80" }, { proto: "tcp", dport: "443" }],
  Webcache: [{ proto: "tcp", dport: "8080" }],
};
const PREFERRED_MACRO = new Map(
  Object.keys(MACROS).map((m) => [m.toLowerCase(), m]),
);

const PROTOCOLS_WITH_PORTS = new Set([
  "udp",
  "17",
  "udplite",
  "136",
  "tcp",
  "6",
  "dccp",
  "33",
  "sctp",
  "132",
]);

/** `$rule_properties`: what a rule stores. */
const RULE_KEYS = [
  "type",
  "action",
  "macro",
  "source",
  "dest",
  "enable",
  "proto",
  "dport",
  "sport",
  "iface",
  "log",
  "comment",
  "icmp-type",
] as const;
const NAME_RE = /^[A-Za-z][A-Za-z0-9\-_]+$/;
const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

function fwGuest(req: SimRequest, type: GuestType): Guest {
  const vmid = int(req, "vmid")!;
  const g = req.cluster.guests.get(vmid);
  if (!g || g.type !== type) {
    throw new SimError(500, configMissing(str(req, "node")!, type, vmid));
  }
  return g;
}

function digestOfRules(rules: FirewallRule[]): string {
  return createHash("sha1").update(JSON.stringify(rules)).digest("hex");
}

function digestOfOptions(options: Record<string, unknown>): string {
  const keys = Object.keys(options).sort();
  return createHash("sha1").update(
    keys.map((k) => `${k}: ${options[k]}`).join("\n"),
  ).digest("hex");
}

/** `PVE::Tools::assert_if_modified`. */
function assertDigest(req: SimRequest, current: string): void {
  const given = str(req, "digest");
  if (given !== undefined && given !== current) {
    throw new SimError(
      500,
      "detected modified configuration - file changed by other user? Try again.",
    );
  }
}

/** IP version of one address-list value, or 0 for an alias or IP set. */
function ipVersionOf(value: string): number {
  if (value.startsWith("+") || NAME_RE.test(value)) return 0;
  let version = 0;
  for (const part of value.split(",")) {
    const first = part.split(/[-/]/)[0].trim();
    const v = IPV4_RE.test(first) ? 4 : 6;
    if (version && v !== version) {
      throw new Error(
        `detected mixed ipv4/ipv6 addresses in address list '${value}'`,
      );
    }
    version = v;
  }
  return version;
}

/** `PVE::Firewall::verify_rule` for rule_env vm/ct; the first error wins. */
function verifyRule(rule: FirewallRule, env: "vm" | "ct"): void {
  const fail = (key: string, msg: string): never => {
    throw SimError.param({ [key]: msg });
  };
  let ipversion = 0;
  const setVersion = (v: number) => {
    if (!v) return;
    if (ipversion && v !== ipversion) {
      throw new Error("detected mixed ipv4/ipv6 addresses in rule");
    }
    ipversion = v;
  };
  const { type, action } = rule;
  if (type === "in" || type === "out") {
    if (!/^(ACCEPT|DROP|REJECT)$/.test(action)) {
      fail("action", `unknown action '${action}'`);
    }
  } else if (type === "group") {
    if (!NAME_RE.test(action)) {
      fail("action", "invalid characters in security group name");
    }
  } else if (type === "forward") {
    fail("type", `invalid rule type 'forward' for rule_env '${env}'`);
  } else {
    fail("type", `unknown rule type '${type}'`);
  }
  const iface = rule.iface as string | undefined;
  if (iface && !/^net(\d+)$/.test(iface)) {
    fail("iface", "value does not match the regex pattern 'net\\d+'");
  }
  if (rule.macro) {
    const preferred = PREFERRED_MACRO.get(String(rule.macro).toLowerCase());
    if (!preferred) fail("macro", `unknown macro '${rule.macro}'`);
    rule.macro = preferred!;
  }
  const proto = rule.proto as string | undefined;
  if (proto === "icmp") setVersion(4);
  if (proto === "icmpv6" || proto === "ipv6-icmp") setVersion(6);
  if (rule.dport) {
    if (!proto) {
      fail("proto", "missing property - 'dport' requires this property");
    }
    if (
      !PROTOCOLS_WITH_PORTS.has(proto!) && proto !== "icmp" &&
      proto !== "icmpv6"
    ) {
      fail("dport", `protocol '${proto}' does not support ports`);
    }
  }
  if (rule.sport) {
    if (!proto) {
      fail("proto", "missing property - 'sport' requires this property");
    }
    if (!PROTOCOLS_WITH_PORTS.has(proto!)) {
      fail("sport", `protocol '${proto}' does not support ports`);
    }
  }
  for (const key of ["source", "dest"] as const) {
    const value = rule[key] as string | undefined;
    if (!value) continue;
    try {
      setVersion(ipVersionOf(value));
    } catch (e) {
      fail(key, (e as Error).message);
    }
    if (value.startsWith("+")) {
      const m = /^\+(?:(?:dc|guest)\/)?([A-Za-z][A-Za-z0-9\-_]+)$/.exec(value);
      if (!m) fail(key, `invalid ipset name '${value}'`);
      else if (!CLUSTER_IPSETS.has(m[1])) fail(key, `no such ipset '${m[1]}'`);
    } else if (NAME_RE.test(value)) {
      const cidr = CLUSTER_ALIASES[value.toLowerCase()];
      if (!cidr) fail(key, `no such alias '${value}'`);
      setVersion(cidr.includes(":") ? 6 : 4);
    }
  }
  if (ipversion) rule.ipversion = ipversion;
  if (rule.macro) {
    for (const templ of MACROS[rule.macro as string]) {
      for (const [k, v] of Object.entries(templ)) {
        const given = rule[k];
        if (given !== undefined && String(given) !== v) {
          fail(k, `parameter '${k}' already define in macro (value = '${v}')`);
        }
      }
    }
  }
}

/** `copy_rule_data`: '' or '-' deletes a key. */
function copyRuleData(rule: Record<string, string | number>, req: SimRequest) {
  for (const k of RULE_KEYS) {
    const v = k === "enable" ? int(req, k) : str(req, k);
    if (v === undefined) continue;
    if (v === "" || v === "-") delete rule[k];
    else rule[k] = v;
  }
}

function listView(rules: FirewallRule[]): Record<string, unknown>[] {
  const digest = digestOfRules(rules);
  return rules.map((r, pos) => ({ ...r, pos, digest }));
}

const OPTION_BOOLS = ["enable", "dhcp", "ipfilter", "macfilter", "ndp", "radv"];
const OPTION_STRINGS = [
  "policy_in",
  "policy_out",
  "log_level_in",
  "log_level_out",
];

function forType(type: GuestType): Route[] {
  const base = `/nodes/{node}/${type}/{vmid}/firewall`;
  const env = type === "qemu" ? "vm" : "ct";
  const posOf = (req: SimRequest, rules: FirewallRule[]) => {
    const pos = int(req, "pos")!;
    if (pos >= rules.length) {
      throw new SimError(500, `no rule at position ${pos}`);
    }
    return pos;
  };
  return [
    {
      method: "GET",
      path: `${base}/rules`,
      handler: (req) => listView(fwGuest(req, type).firewall.rules),
    },
    {
      method: "POST",
      path: `${base}/rules`,
      handler: (req) => {
        const fw = fwGuest(req, type).firewall;
        // PVE reads `digest` on create but does not check it.
        const rule: Record<string, string | number> = {};
        copyRuleData(rule, req);
        verifyRule(rule as FirewallRule, env);
        if (int(req, "enable") === undefined) rule.enable = 0;
        // Always prepended: `pos` is accepted and ignored.
        fw.rules.unshift(rule as FirewallRule);
        return null;
      },
    },
    {
      method: "GET",
      path: `${base}/rules/{pos}`,
      handler: (req) => {
        const rules = fwGuest(req, type).firewall.rules;
        const pos = posOf(req, rules);
        return { ...rules[pos], pos };
      },
    },
    {
      method: "PUT",
      path: `${base}/rules/{pos}`,
      handler: (req) => {
        const fw = fwGuest(req, type).firewall;
        assertDigest(req, digestOfRules(fw.rules));
        const pos = posOf(req, fw.rules);
        const rule = fw.rules[pos];
        const moveto = int(req, "moveto");
        if (moveto !== undefined && moveto !== pos) {
          // Moves the rule before the rule now at `moveto` (or to the end).
          const next: FirewallRule[] = [];
          fw.rules.forEach((r, i) => {
            if (i === pos) return;
            if (i === moveto) next.push(rule);
            next.push(r);
          });
          if (moveto >= fw.rules.length) next.push(rule);
          fw.rules = next;
          return null;
        }
        const updated: Record<string, string | number> = { ...rule };
        copyRuleData(updated, req);
        for (const k of (str(req, "delete") ?? "").split(/[,;\s]+/)) {
          if (!k) continue;
          if (!(RULE_KEYS as readonly string[]).includes(k)) {
            throw SimError.param({ delete: `no such property ('${k}')` });
          }
          if (k === "type" || k === "action") {
            throw SimError.param({
              delete: `unable to delete required property '${k}'`,
            });
          }
          delete updated[k];
        }
        delete updated.ipversion;
        verifyRule(updated as FirewallRule, env);
        fw.rules[pos] = updated as FirewallRule;
        return null;
      },
    },
    {
      method: "DELETE",
      path: `${base}/rules/{pos}`,
      handler: (req) => {
        const fw = fwGuest(req, type).firewall;
        assertDigest(req, digestOfRules(fw.rules));
        fw.rules.splice(posOf(req, fw.rules), 1);
        return null;
      },
    },
    {
      method: "GET",
      path: `${base}/options`,
      handler: (req) => {
        const options = fwGuest(req, type).firewall.options;
        return { ...options, digest: digestOfOptions(options) };
      },
    },
    {
      method: "PUT",
      path: `${base}/options`,
      handler: (req) => {
        const fw = fwGuest(req, type).firewall;
        assertDigest(req, digestOfOptions(fw.options));
        const next = { ...fw.options };
        for (const k of (str(req, "delete") ?? "").split(/[,;\s]+/)) {
          if (k) delete next[k];
        }
        for (const k of OPTION_BOOLS) {
          const v = str(req, k);
          if (v !== undefined) next[k] = v === "1" || v === "true" ? 1 : 0;
        }
        for (const k of OPTION_STRINGS) {
          const v = str(req, k);
          if (v !== undefined) next[k] = v;
        }
        fw.options = next;
        return null;
      },
    },
  ];
}

export const FIREWALL_ROUTES: Route[] = [...forType("qemu"), ...forType("lxc")];

/**
 * Guest firewall rules, for VMs and containers alike. Every field is checked
 * before the first request to PVE (pve-firewall's port, address and
 * interface syntax, and the cross-field rules of `verify_rule`). PVE's create
 * quirks are handled: a new rule lands at position 0 whatever `pos` says, so
 * it is moved with a follow-up `moveto`; and it is stored disabled unless
 * `enable=1` is sent.
 */
import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";
import type { GuestRef, PveClient } from "../proxmox/client.ts";
import { ToolError } from "../proxmox/errors.ts";
import { defineTool, Vmid } from "./define.ts";

// ---------------------------------------------------------------------------
// Field syntax (pve-firewall's parse_port_name_number_or_range and
// parse_address_list)

const NAME_RE = /^[A-Za-z][A-Za-z0-9\-_]+$/;
const ALIAS_RE = /^((dc|guest)\/)?[A-Za-z][A-Za-z0-9\-_]+$/;

/** Why a port list is invalid, or undefined. */
export function portSpecError(spec: string): string | undefined {
  let numbers = 0;
  for (const item of spec.split(",")) {
    const m = /^(\d+)(?::(\d+))?$/.exec(item);
    if (m) {
      const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
      if (a > 65535 || b > 65535) return `invalid port '${item}' (0-65535)`;
      if (a > b) return `backwards range '${item}': write '${m[2]}:${m[1]}'`;
      numbers += m[2] === undefined ? 1 : 2;
    } else if (!/^[a-z][a-z0-9+._-]*$/i.test(item)) {
      return `invalid port '${item}': use numbers, ranges like 80:85 or service names, comma-separated`;
    }
  }
  if (numbers > 15) return "too many entries in port list (> 15 numbers)";
  return undefined;
}

function ipBits(ip: string): string {
  if (isIPv4(ip)) {
    return ip.split(".").map((q) => Number(q).toString(2).padStart(8, "0"))
      .join("");
  }
  let s = ip;
  const last = s.slice(s.lastIndexOf(":") + 1);
  if (last.includes(".")) {
    const o = last.split(".").map(Number);
    s = `${s.slice(0, s.lastIndexOf(":") + 1)}${
      ((o[0] << 8) | o[1]).toString(16)
    }:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = s.includes("::") ? s.split("::") : [s, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? h
    : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, "0"))
    .join("");
}

/** 4 or 6 for an IP/CIDR/range list, 0 for an alias or IP set. */
export function addressVersion(spec: string): number {
  if (spec.startsWith("+") || ALIAS_RE.test(spec)) return 0;
  const first = spec.split(/[,/-]/)[0];
  return isIPv4(first) ? 4 : 6;
}

/** Why an address spec is invalid, or undefined. */
export function addressSpecError(spec: string): string | undefined {
  if (spec.startsWith("+")) {
    return /^\+((dc|guest)\/)?[A-Za-z][A-Za-z0-9\-_]+$/.test(spec) &&
        spec.length <= 65
      ? undefined
      : `invalid IP set '${spec}': write +name`;
  }
  if (ALIAS_RE.test(spec)) {
    return spec.length <= 64 ? undefined : "alias name too long";
  }
  const items = spec.split(",");
  let version = 0;
  for (const item of items) {
    const range = item.split("-");
    if (range.length > 2) return `invalid address '${item}'`;
    if (range.length === 2) {
      if (items.length > 1) return "a range cannot be part of a list";
      const [a, b] = range;
      if (!isIPv4(a) && !isIPv6(a)) return `invalid IP address '${a}'`;
      if (isIPv4(a) !== isIPv4(b) || (!isIPv4(b) && !isIPv6(b))) {
        return `invalid range '${item}'`;
      }
      if (ipBits(a) > ipBits(b)) return `backwards range '${item}'`;
    } else {
      const [ip, len, extra] = item.split("/");
      if (!isIPv4(ip) && !isIPv6(ip)) {
        return `invalid address '${item}': use an IP, a CIDR, a range a-b, an alias or +ipset`;
      }
      if (extra !== undefined) return `invalid CIDR '${item}'`;
      if (len !== undefined) {
        const bits = ipBits(ip);
        if (!/^\d+$/.test(len) || Number(len) > bits.length) {
          return `invalid prefix length in '${item}'`;
        }
        if (bits.slice(Number(len)).includes("1")) {
          return `'${item}' has host bits set: use the network address`;
        }
      }
    }
    const v = isIPv4(range[0].split("/")[0]) ? 4 : 6;
    if (version && v !== version) return "IPv4 and IPv6 mixed in one list";
    version = v;
  }
  return undefined;
}

function checked(
  check: (v: string) => string | undefined,
): z.ZodType<string> {
  return z.string().min(1).max(512).superRefine((v, ctx) => {
    const msg = check(v);
    if (msg) ctx.addIssue({ code: "custom", message: msg });
  });
}

const PortSpec = checked(portSpecError);
const AddressSpec = checked(addressSpecError);

const LOG_LEVELS = [
  "emerg",
  "alert",
  "crit",
  "err",
  "warning",
  "notice",
  "info",
  "debug",
  "nolog",
] as const;
const PORT_PROTOCOLS = new Set([
  "tcp",
  "udp",
  "udplite",
  "dccp",
  "sctp",
  "6",
  "17",
  "136",
  "33",
  "132",
]);

// ---------------------------------------------------------------------------
// Reading rules and options

const Rule = z.object({
  pos: z.number(),
  type: z.string(),
  action: z.string(),
  enable: z.number(),
  macro: z.string().optional(),
  proto: z.string().optional(),
  dport: z.string().optional(),
  sport: z.string().optional(),
  source: z.string().optional(),
  dest: z.string().optional(),
  iface: z.string().optional(),
  log: z.string().optional(),
  comment: z.string().optional(),
  "icmp-type": z.string().optional(),
});
type Rule = z.infer<typeof Rule>;

function ruleOf(raw: Record<string, unknown>): Rule {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(Rule.shape)) {
    const v = raw[key];
    if (v === undefined || v === null || v === "") continue;
    out[key] = key === "pos" || key === "enable" ? Number(v) : String(v);
  }
  out.enable ??= 0;
  return out as Rule;
}

async function readRules(
  pve: PveClient,
  g: GuestRef,
): Promise<{ rules: Rule[]; digest?: string }> {
  const raw = await pve.get<Record<string, unknown>[]>(
    `${g.path}/firewall/rules`,
  );
  return {
    rules: raw.map(ruleOf).sort((a, b) => a.pos - b.pos),
    digest: raw[0]?.digest as string | undefined,
  };
}

interface Options {
  enable?: number | boolean;
  policy_in?: string;
  policy_out?: string;
}

async function readOptions(pve: PveClient, g: GuestRef): Promise<Options> {
  return await pve.get<Options>(`${g.path}/firewall/options`);
}

const enabled = (o: Options) => Number(o.enable ?? 0) === 1;

// ---------------------------------------------------------------------------

export const listFirewallRules = defineTool({
  name: "proxmox_list_firewall_rules",
  toolset: "firewall",
  title: "List guest firewall rules",
  description: "A guest's firewall rules, in order, and firewall state.",
  input: { vmid: Vmid },
  output: z.object({
    vmid: z.number(),
    firewall_enabled: z.boolean(),
    policy_in: z.string().optional(),
    policy_out: z.string().optional(),
    rules: z.array(Rule),
  }),
  annotations: {
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ vmid }, { pve }) {
    const g = await pve.locate(vmid);
    const [{ rules }, options] = await Promise.all([
      readRules(pve, g),
      readOptions(pve, g),
    ]);
    return {
      vmid,
      firewall_enabled: enabled(options),
      policy_in: options.policy_in,
      policy_out: options.policy_out,
      rules,
    };
  },
});

/** verify_rule's cross-field checks, before any request. */
function checkRule(a: {
  type: string;
  action: string;
  proto?: string;
  dport?: string;
  sport?: string;
  source?: string;
  dest?: string;
  macro?: string;
  log?: string;
}): string {
  let action = a.action;
  if (a.type === "group") {
    if (action.length > 18) {
      throw new ToolError("A security group name has at most 18 characters");
    }
    const extra = ["proto", "dport", "sport", "source", "dest", "macro", "log"]
      .filter((k) => a[k as keyof typeof a] !== undefined);
    if (extra.length) {
      throw new ToolError(
        `A group rule takes only action (the security group), iface, comment and enable, not ${
          extra.join(", ")
        }: put those in the group's own rules`,
      );
    }
  } else {
    action = action.toUpperCase();
    if (!["ACCEPT", "DROP", "REJECT"].includes(action)) {
      throw new ToolError(
        `unknown action '${a.action}' for type ${a.type}: use ACCEPT, DROP or REJECT (a security group needs type group)`,
      );
    }
  }
  const proto = a.proto?.toLowerCase();
  for (const port of ["dport", "sport"] as const) {
    if (a[port] === undefined) continue;
    if (!proto) {
      throw new ToolError(`${port} needs proto (e.g. tcp or udp)`);
    }
    const icmpOk = port === "dport" && (proto === "icmp" || proto === "icmpv6");
    if (!PORT_PROTOCOLS.has(proto) && !icmpOk) {
      throw new ToolError(`protocol '${a.proto}' does not support ports`);
    }
  }
  const versions = new Set(
    [a.source, a.dest].filter((x) => x !== undefined).map((x) =>
      addressVersion(x!)
    ).filter(Boolean),
  );
  if (proto === "icmp") versions.add(4);
  if (proto === "icmpv6" || proto === "ipv6-icmp") versions.add(6);
  if (versions.size > 1) {
    throw new ToolError(
      "IPv4 and IPv6 mixed in one rule (source, dest and proto must agree)",
    );
  }
  return action;
}

export const addFirewallRule = defineTool({
  name: "proxmox_add_firewall_rule",
  toolset: "firewall",
  title: "Add a guest firewall rule",
  description:
    "Add a guest firewall rule. Ports: 22, 80:85, http; addresses: IP, CIDR, alias, +ipset.",
  input: {
    vmid: Vmid,
    type: z.enum(["in", "out", "group"]),
    action: z.string().regex(NAME_RE).max(20).describe(
      "ACCEPT, DROP, REJECT or group name",
    ),
    proto: z.string().regex(/^([a-z][a-z0-9.+-]{0,31}|\d{1,3})$/i)
      .refine((p) => !/^\d+$/.test(p) || Number(p) <= 255, {
        error: "Protocol numbers go from 0 to 255",
      }).optional(),
    dport: PortSpec.optional(),
    sport: PortSpec.optional(),
    source: AddressSpec.optional(),
    dest: AddressSpec.optional(),
    iface: z.string().regex(/^net\d+$/, { error: "Use netN (e.g. net0)" })
      .optional(),
    macro: z.string().regex(/^[A-Za-z][A-Za-z0-9]{1,127}$/).optional(),
    comment: z.string().regex(/^[^\r\n]{0,1024}$/, {
      error: "One line, at most 1024 characters",
    }).optional(),
    // PVE's syslog levels; validated, not listed (they cost context).
    log: z.enum(LOG_LEVELS).optional().meta({ advertiseEnum: false }),
    enable: z.boolean().default(true),
    position: z.number().int().min(0).max(10000).optional(),
    enable_firewall: z.boolean().optional(),
  },
  output: z.object({
    vmid: z.number(),
    added: z.boolean(),
    rule: Rule,
    rules: z.number(),
    firewall_enabled: z.boolean(),
    warning: z.string().optional(),
  }),
  annotations: {
    readOnlyHint: false,
    // A DROP rule, or enable_firewall under a DROP policy, can cut a guest off.
    destructiveHint: true,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run(args, { pve }) {
    const action = checkRule(args);
    const g = await pve.locate(args.vmid);
    const fields = {
      type: args.type,
      action,
      proto: args.proto,
      dport: args.dport,
      sport: args.sport,
      source: args.source,
      dest: args.dest,
      iface: args.iface,
      macro: args.macro,
      comment: args.comment,
      log: args.log,
    };
    let { rules, digest } = await readRules(pve, g);
    // The same rule is not added twice (so a retry with enable_firewall is safe).
    let pos = rules.findIndex((r) => sameRule(r, fields));
    const added = pos < 0;
    if (added) {
      // PVE stores a rule disabled unless enable is sent.
      await pve.post(`${g.path}/firewall/rules`, {
        ...fields,
        enable: args.enable ? 1 : 0,
      });
      // PVE always inserts at 0; moveto puts it before the rule at that index.
      ({ rules, digest } = await readRules(pve, g));
      const want = Math.min(args.position ?? 0, rules.length - 1);
      if (want > 0) {
        const moveto = want === rules.length - 1 ? rules.length : want + 1;
        await pve.put(`${g.path}/firewall/rules/0`, { moveto, digest });
        ({ rules } = await readRules(pve, g));
      }
      pos = want;
    } else if (args.enable && rules[pos].enable !== 1) {
      await pve.put(`${g.path}/firewall/rules/${pos}`, { enable: 1, digest });
      ({ rules } = await readRules(pve, g));
    }
    let options = await readOptions(pve, g);
    const warnings: string[] = [];
    if (!enabled(options) && args.enable_firewall) {
      await pve.put(`${g.path}/firewall/options`, { enable: true });
      options = await readOptions(pve, g);
      warnings.push(
        `Switched the guest firewall on: inbound traffic that no rule accepts now meets policy_in ${
          options.policy_in ?? "DROP"
        }`,
      );
    } else if (!enabled(options)) {
      warnings.push(
        `The firewall of guest ${args.vmid} is off, so this rule has no effect yet: repeat this call with enable_firewall: true (the rule is not added twice; policy_in ${
          options.policy_in ?? "DROP"
        } then applies to other inbound traffic)`,
      );
    }
    const nic = await nicWarning(pve, g, args.iface);
    if (nic) warnings.push(nic);
    return {
      vmid: args.vmid,
      added,
      rule: rules[pos],
      rules: rules.length,
      firewall_enabled: enabled(options),
      warning: warnings.length ? warnings.join("; ") : undefined,
    };
  },
});

function sameRule(r: Rule, f: Record<string, string | undefined>): boolean {
  return Object.entries(f).every(([k, v]) => {
    const have = r[k as keyof Rule] as string | undefined;
    return k === "macro" || k === "proto" || k === "action"
      ? have?.toLowerCase() === v?.toLowerCase()
      : have === v;
  });
}

/** Rules only act on NICs with firewall=1. */
async function nicWarning(
  pve: PveClient,
  g: GuestRef,
  iface: string | undefined,
): Promise<string | undefined> {
  const config = await pve.get<Record<string, unknown>>(`${g.path}/config`);
  const nics = Object.keys(config).filter((k) => /^net\d+$/.test(k));
  const on = nics.filter((k) => /(^|,)firewall=1(,|$)/.test(String(config[k])));
  if (iface && !nics.includes(iface)) {
    return `Guest ${g.vmid} has no ${iface} (it has ${
      nics.join(", ") || "no NIC"
    })`;
  }
  if (iface && !on.includes(iface)) {
    return `${iface} of guest ${g.vmid} has no firewall=1, so the firewall does not filter it: set firewall=1 on ${iface}`;
  }
  if (!on.length) {
    return `No network device of guest ${g.vmid} has firewall=1, so the firewall filters nothing: set firewall=1 on its NICs`;
  }
  return undefined;
}

export const FIREWALL_TOOLS = [listFirewallRules, addFirewallRule];

/**
 * A guest's firewall (`/nodes/{node}/{type}/{vmid}/firewall/...`, the same
 * for VMs and containers): rules, options, and which NICs it filters.
 * PVE's quirks live here: a new rule always lands at position 0 whatever
 * `pos` says; it is stored disabled unless `enable=1` is sent; `moveto` puts
 * a rule before the rule at that index of the old list; every rule in a list
 * carries the list's `digest`.
 */
import { isIPv4, isIPv6 } from "../ip.ts";
import type { PveClient } from "../client.ts";
import { pvePath, seg } from "../path.ts";
import { getConfig, type GuestRef } from "./guests.ts";

// ---------------------------------------------------------------------------
// Field syntax (pve-firewall's parse_port_name_number_or_range and
// parse_address_list)

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

// ---------------------------------------------------------------------------
// Rules

/** A rule as PVE lists it (empty fields left out, numbers as numbers). */
export interface FirewallRule {
  pos: number;
  type: string;
  action: string;
  enable: number;
  macro?: string;
  proto?: string;
  dport?: string;
  sport?: string;
  source?: string;
  dest?: string;
  iface?: string;
  log?: string;
  comment?: string;
  "icmp-type"?: string;
}

/** The fields of a rule a caller sets (all but pos and enable). */
export type RuleFields = Omit<FirewallRule, "pos" | "enable">;

/** The keys of FirewallRule a rule may lack, all text, in the order shown. */
export const RULE_TEXT_KEYS = [
  "macro",
  "proto",
  "dport",
  "sport",
  "source",
  "dest",
  "iface",
  "log",
  "comment",
  "icmp-type",
] as const satisfies readonly (keyof FirewallRule)[];

/** Every key of FirewallRule, in the order a rule is shown. */
export const RULE_KEYS = [
  "pos",
  "type",
  "action",
  "enable",
  ...RULE_TEXT_KEYS,
] as const satisfies readonly (keyof FirewallRule)[];

function ruleOf(raw: Record<string, unknown>): FirewallRule {
  const out: Record<string, unknown> = {};
  for (const key of RULE_KEYS) {
    const v = raw[key];
    if (v === undefined || v === null || v === "") continue;
    out[key] = key === "pos" || key === "enable" ? Number(v) : String(v);
  }
  out.enable ??= 0;
  return out as unknown as FirewallRule;
}

/** The rules in order, with the digest that guards a change of them. */
export async function listRules(
  pve: PveClient,
  g: GuestRef,
): Promise<{ rules: FirewallRule[]; digest?: string }> {
  const raw = await pve.get<Record<string, unknown>[]>(
    pvePath`/${seg.guest(g)}/firewall/rules`,
  );
  return {
    rules: raw.map(ruleOf).sort((a, b) => a.pos - b.pos),
    digest: raw[0]?.digest as string | undefined,
  };
}

/**
 * Creates a rule. PVE puts it at position 0 (see moveRule) and stores it
 * disabled unless told: `enable` is always sent.
 */
export async function createRule(
  pve: PveClient,
  g: GuestRef,
  fields: RuleFields,
  enable: boolean,
): Promise<void> {
  await pve.post(pvePath`/${seg.guest(g)}/firewall/rules`, {
    ...fields,
    enable: enable ? 1 : 0,
  });
}

/**
 * Moves the rule at `from` so that it ends up at index `to` (PVE's `moveto`
 * inserts before that index of the list as it was, or at the end).
 */
export async function moveRule(
  pve: PveClient,
  g: GuestRef,
  from: number,
  to: number,
  digest?: string,
): Promise<void> {
  if (from === to) return;
  await pve.put(pvePath`/${seg.guest(g)}/firewall/rules/${seg.pos(from)}`, {
    moveto: to > from ? to + 1 : to,
    digest,
  });
}

/** Enables the rule at `pos`. */
export async function enableRule(
  pve: PveClient,
  g: GuestRef,
  pos: number,
  digest?: string,
): Promise<void> {
  await pve.put(pvePath`/${seg.guest(g)}/firewall/rules/${seg.pos(pos)}`, {
    enable: 1,
    digest,
  });
}

/** A guest's firewall options, as far as the tools use them. */
export interface FirewallOptions {
  enabled: boolean;
  policy_in?: string;
  policy_out?: string;
}

/** `GET firewall/options`; the guest firewall is off until enabled. */
export async function getOptions(
  pve: PveClient,
  g: GuestRef,
): Promise<FirewallOptions> {
  const o = await pve.get<
    { enable?: number | boolean; policy_in?: string; policy_out?: string }
  >(pvePath`/${seg.guest(g)}/firewall/options`);
  return {
    enabled: Number(o?.enable ?? 0) === 1,
    policy_in: o?.policy_in,
    policy_out: o?.policy_out,
  };
}

/** Switches the guest's firewall on or off. */
export async function setEnabled(
  pve: PveClient,
  g: GuestRef,
  on: boolean,
): Promise<void> {
  await pve.put(pvePath`/${seg.guest(g)}/firewall/options`, { enable: on });
}

/**
 * The guest's NICs and those the firewall filters: rules act only on NICs
 * with `firewall=1` in their property string.
 */
export async function firewallNics(
  pve: PveClient,
  g: GuestRef,
): Promise<{ nics: string[]; filtered: string[] }> {
  const config = await getConfig(pve, g);
  const nics = Object.keys(config).filter((k) => /^net\d+$/.test(k));
  const filtered = nics.filter((k) =>
    /(^|,)firewall=1(,|$)/.test(String(config[k]))
  );
  return { nics, filtered };
}

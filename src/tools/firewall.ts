/**
 * Guest firewall rules, for VMs and containers alike. Every field is checked
 * before the first request to PVE (pve-firewall's port, address and
 * interface syntax, and the cross-field rules of `verify_rule`). PVE's create
 * quirks (a new rule lands at position 0; it is stored disabled unless
 * enabled) are handled in the API layer. Adding a rule takes several writes:
 * when a later one fails, the error says exactly which were applied.
 */
import { z } from "zod";
import {
  addressSpecError,
  addressVersion,
  createRule,
  enableRule,
  firewallNics,
  type FirewallRule,
  getOptions,
  listRules,
  moveRule,
  portSpecError,
  RULE_TEXT_KEYS,
  type RuleFields,
  setEnabled,
} from "../proxmox/api/firewall.ts";
import { type GuestRef, locate } from "../proxmox/api/guests.ts";
import {
  defineTool,
  fieldsOf,
  IDEMPOTENT_DESTRUCTIVE,
  page,
  pagedOutput,
  Paging,
  PveError,
  READ_ONLY,
  ToolError,
  Toolset,
  vm,
  Vmid,
} from "./define.ts";

const NAME_RE = /^[A-Za-z][A-Za-z0-9\-_]+$/;

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
// What a rule looks like in results

const Rule = z.object({
  pos: z.number(),
  type: z.string(),
  action: z.string(),
  enable: z.number(),
  ...fieldsOf(z.string().optional(), ...RULE_TEXT_KEYS),
});

export const listFirewallRules = defineTool({
  name: "proxmox_list_firewall_rules",
  toolset: Toolset.firewall,
  title: "List guest firewall rules",
  description: "A guest's firewall rules, in order, and firewall state.",
  input: { vmid: Vmid, ...Paging },
  output: pagedOutput("rules", Rule, {
    head: {
      vmid: z.number(),
      firewall_enabled: z.boolean(),
      policy_in: z.string().optional(),
      policy_out: z.string().optional(),
    },
  }),
  annotations: READ_ONLY,
  privileges: [vm("VM.Audit")],
  async run({ vmid, cursor, limit }, ctx) {
    const { pve } = ctx;
    const g = await locate(pve, vmid);
    const [{ rules, digest }, options] = await Promise.all([
      listRules(pve, g),
      getOptions(pve, g),
    ]);
    const head = {
      vmid,
      firewall_enabled: options.enabled,
      policy_in: options.policy_in,
      policy_out: options.policy_out,
    };
    // Rules are known by position, which shifts when one is added or moved:
    // a page made from another version of the list (PVE's digest, else the
    // rules themselves when an answer carries none) is refused.
    const p = page(rules, {
      tool: "proxmox_list_firewall_rules",
      order: [{ type: "number" }],
      key: (r) => [r.pos],
      filter: { vmid },
      at: ctx,
      cursor,
      limit,
      envelope: head,
      version: digest ?? rules,
    });
    return {
      ...head,
      total: p.total,
      rules: p.rows,
      next_cursor: p.next_cursor,
    };
  },
});

/**
 * The rule a call describes, after verify_rule's cross-field checks (before
 * any request): its action upper-cased unless it names a security group.
 */
function checkedRule(a: RuleFields): RuleFields {
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
  return {
    type: a.type,
    action,
    proto: a.proto,
    dport: a.dport,
    sport: a.sport,
    source: a.source,
    dest: a.dest,
    iface: a.iface,
    macro: a.macro,
    comment: a.comment,
    log: a.log,
  };
}

export const addFirewallRule = defineTool({
  name: "proxmox_add_firewall_rule",
  toolset: Toolset.firewall,
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
  // A DROP rule, or enable_firewall under a DROP policy, can cut a guest off;
  // repeating the call adds nothing.
  annotations: IDEMPOTENT_DESTRUCTIVE,
  privileges: [vm("VM.Config.Network"), vm("VM.Audit")],
  async run(args, ctx) {
    const fields = checkedRule(args);
    const { pve } = ctx;
    const g = await locate(pve, args.vmid);
    const steps = new Steps(g);
    let { rules, digest } = await listRules(pve, g);
    // The same rule is not added twice (so a retry with enable_firewall is safe).
    let pos = rules.findIndex((r) => sameRule(r, fields));
    const added = pos < 0;
    if (added) {
      await steps.write(
        "adding the rule",
        "added the rule at position 0 (where PVE puts new rules)",
        () => createRule(pve, g, fields, args.enable),
      );
      ({ rules, digest } = await steps.read(() => listRules(pve, g)));
      // A dry run added nothing: the list it reads back lacks the new rule.
      const count = rules.length + (ctx.dryRun ? 1 : 0);
      const want = Math.min(args.position ?? 0, count - 1);
      if (want > 0) {
        await steps.write(
          `moving it to position ${want}`,
          `moved it to position ${want}`,
          () => moveRule(pve, g, 0, want, digest),
        );
        ({ rules } = await steps.read(() => listRules(pve, g)));
      }
      pos = want;
    } else if (args.enable && rules[pos].enable !== 1) {
      await steps.write(
        `enabling the existing rule at position ${pos}`,
        `enabled the existing rule at position ${pos}`,
        () => enableRule(pve, g, pos, digest),
      );
      ({ rules } = await steps.read(() => listRules(pve, g)));
    }
    let options = await steps.read(() => getOptions(pve, g));
    const warnings: string[] = [];
    if (!options.enabled && args.enable_firewall) {
      await steps.write(
        "switching the guest firewall on",
        "switched the guest firewall on",
        () => setEnabled(pve, g, true),
      );
      options = await steps.read(() => getOptions(pve, g));
      warnings.push(
        `Switched the guest firewall on: inbound traffic that no rule accepts now meets policy_in ${
          options.policy_in ?? "DROP"
        }`,
      );
    } else if (!options.enabled) {
      warnings.push(
        `The firewall of guest ${args.vmid} is off, so this rule has no effect yet: repeat this call with enable_firewall: true (the rule is not added twice; policy_in ${
          options.policy_in ?? "DROP"
        } then applies to other inbound traffic)`,
      );
    }
    const nic = nicWarning(
      g,
      args.iface,
      await steps.read(() => firewallNics(pve, g)),
    );
    if (nic) warnings.push(nic);
    return {
      vmid: args.vmid,
      added,
      rule: rules[pos],
      rules: rules.length,
      firewall_enabled: options.enabled,
      warning: warnings.length ? warnings.join("; ") : undefined,
    };
  },
});

/**
 * The writes of one call, so that a failure after some of them says which
 * were applied ("added the rule at position 0; moving it to position 2
 * failed: …") instead of leaving the caller to guess.
 */
class Steps {
  readonly #g: GuestRef;
  readonly #done: string[] = [];
  constructor(g: GuestRef) {
    this.#g = g;
  }

  /** A write: on failure, says what was applied before it. */
  async write(doing: string, done: string, fn: () => Promise<void>) {
    try {
      await fn();
    } catch (e) {
      throw this.#failed(doing, e);
    }
    this.#done.push(done);
  }

  /** A read: after a write, its failure says what was applied. */
  async read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!this.#done.length) throw e;
      throw this.#failed("reading the result back", e);
    }
  }

  #failed(doing: string, e: unknown): unknown {
    const uncertain = e instanceof PveError && e.kind === "uncertain";
    if (!this.#done.length && !uncertain) return e;
    // Firewall changes start no task: PVE's rules are where to look.
    const why = e instanceof PveError
      ? uncertain ? e.pveMessage : e.message
      : String((e as Error)?.message ?? e);
    const applied = this.#done.length ? `${this.#done.join("; ")}; ` : "";
    return new ToolError(
      `Firewall of guest ${this.#g.vmid}: ${applied}${doing} ${
        uncertain ? "may or may not have been applied" : "failed"
      }: ${why}. Check with proxmox_list_firewall_rules before repeating the call`,
      { applied: [...this.#done], ...(uncertain ? { uncertain: doing } : {}) },
    );
  }
}

function sameRule(r: FirewallRule, f: RuleFields): boolean {
  return Object.entries(f).every(([k, v]) => {
    const have = r[k as keyof FirewallRule] as string | undefined;
    return k === "macro" || k === "proto" || k === "action"
      ? have?.toLowerCase() === v?.toLowerCase()
      : have === v;
  });
}

/** Rules only act on the NICs with firewall=1: `filtered` of `nics`. */
function nicWarning(
  g: GuestRef,
  iface: string | undefined,
  { nics, filtered }: { nics: string[]; filtered: string[] },
): string | undefined {
  if (iface && !nics.includes(iface)) {
    return `Guest ${g.vmid} has no ${iface} (it has ${
      nics.join(", ") || "no NIC"
    })`;
  }
  if (iface && !filtered.includes(iface)) {
    return `${iface} of guest ${g.vmid} has no firewall=1, so the firewall does not filter it: set firewall=1 on ${iface}`;
  }
  if (!filtered.length) {
    return `No network device of guest ${g.vmid} has firewall=1, so the firewall filters nothing: set firewall=1 on its NICs`;
  }
  return undefined;
}

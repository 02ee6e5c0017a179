/**
 * Scope: the guests and nodes this server may see and act on
 * (`MCP_ALLOWED_VMIDS`, `MCP_ALLOWED_NODES`), and the tag that makes a guest
 * read-only to it (`MCP_PROTECTED_TAG`).
 *
 * The API layer (src/proxmox/api/) consults the scope of the PveClient it is
 * given (`scopeOf`, set once at boot): guest and node listings leave out what
 * is outside, resolving a guest refuses one outside, and a new guest's VMID is
 * taken inside. So every tool obeys it, including tools written later.
 * Protection (PVE's `protection` flag, or the tag) is checked before a
 * changing call acts (src/safety/guard.ts). Imports nothing that speaks to
 * Proxmox.
 */
import type { Config } from "../config.ts";
import { ToolError } from "../proxmox/errors.ts";

/** The tag that makes a guest read-only to this server by default. */
const DEFAULT_PROTECTED_TAG = "mcp-protected";

/** Inclusive VMID ranges, sorted and merged. */
export type VmidRanges = readonly (readonly [number, number])[];

export interface ScopeSettings {
  /** VMIDs in scope; undefined: every VMID. */
  vmids?: VmidRanges;
  /** Nodes in scope; undefined: every node. */
  nodes?: readonly string[];
  /** A guest carrying this tag is read-only to this server. */
  protectedTag?: string;
  /**
   * The PROXMOX_CONFIG cluster this scope is of: refusals name it, and each
   * limit by where it was set (the file's key, or the variable it falls
   * back to).
   */
  cluster?: string;
  /** Which limits the file sets for `cluster` (default: both). */
  inFile?: { allowedVmids: boolean; allowedNodes: boolean };
}

/** `100-199,250`: ranges as MCP_ALLOWED_VMIDS writes them. */
export function rangesText(ranges: VmidRanges): string {
  return ranges.map(([lo, hi]) => lo === hi ? `${lo}` : `${lo}-${hi}`).join(
    ",",
  );
}

/** The guests and nodes this server may see and act on. */
export class Scope {
  readonly vmids?: VmidRanges;
  readonly nodes?: ReadonlySet<string>;
  readonly protectedTag: string;
  readonly cluster?: string;
  readonly #inFile: { allowedVmids: boolean; allowedNodes: boolean };

  constructor(settings: ScopeSettings = {}) {
    this.vmids = settings.vmids?.length ? settings.vmids : undefined;
    this.nodes = settings.nodes?.length ? new Set(settings.nodes) : undefined;
    this.protectedTag = settings.protectedTag ?? DEFAULT_PROTECTED_TAG;
    this.cluster = settings.cluster;
    this.#inFile = settings.inFile ??
      { allowedVmids: true, allowedNodes: true };
  }

  /** The scope a configuration sets (of a PROXMOX_CONFIG `cluster`). */
  static of(
    config: Pick<Config, "allowedVmids" | "allowedNodes" | "protectedTag">,
    cluster?: {
      name: string;
      inFile: { allowedVmids: boolean; allowedNodes: boolean };
    },
  ): Scope {
    return new Scope({
      vmids: config.allowedVmids,
      nodes: config.allowedNodes,
      protectedTag: config.protectedTag,
      cluster: cluster?.name,
      inFile: cluster?.inFile,
    });
  }

  /**
   * `(MCP_ALLOWED_VMIDS=…)`; of a cluster `of cluster 'lab' (allowedVmids
   * …)`, or `of cluster 'lab' (MCP_ALLOWED_VMIDS=…)` when the file leaves it
   * to the variable.
   */
  #setting(
    env: string,
    key: "allowedVmids" | "allowedNodes",
    value: string,
  ): string {
    if (this.cluster === undefined) return `(${env}=${value})`;
    return `of cluster '${this.cluster}' (${
      this.#inFile[key] ? `${key} ${value}` : `${env}=${value}`
    })`;
  }

  /** True when the scope leaves something out. */
  get limited(): boolean {
    return this.vmids !== undefined || this.nodes !== undefined;
  }

  hasVmid(vmid: number): boolean {
    return !this.vmids ||
      this.vmids.some(([lo, hi]) => vmid >= lo && vmid <= hi);
  }

  hasNode(node: string): boolean {
    return !this.nodes || this.nodes.has(node);
  }

  /** A guest is in scope when its VMID and its node are. */
  hasGuest(g: { vmid: unknown; node: unknown }): boolean {
    return this.hasVmid(Number(g.vmid)) && this.hasNode(String(g.node));
  }

  /** The VMIDs in scope, lowest first (undefined: every VMID). */
  *candidates(): Generator<number> {
    for (const [lo, hi] of this.vmids ?? []) {
      for (let id = lo; id <= hi; id++) yield id;
    }
  }

  /** A guest carries the protected tag (PVE's `tags`, `;`, `,` or space separated). */
  tagged(tags: unknown): boolean {
    const want = this.protectedTag.toLowerCase();
    return String(tags ?? "").split(/[;, ]+/).some((t) =>
      t.toLowerCase() === want
    );
  }

  /** One line for the start-up log: `VMIDs 100-199,250; nodes pve1`. */
  describe(): string {
    if (!this.limited) return "the whole cluster";
    return [
      this.vmids && `VMIDs ${rangesText(this.vmids)}`,
      this.nodes && `nodes ${[...this.nodes].join(",")}`,
    ].filter(Boolean).join("; ");
  }

  /**
   * Refuses a VMID outside the scope. `creating`: the VMID is for a new
   * guest (the advice says which ones may be used).
   */
  checkVmid(vmid: number, options: { creating?: boolean } = {}): void {
    if (this.hasVmid(vmid)) return;
    throw new ToolError(
      `VMID ${vmid} is outside this server's scope ${
        this.#setting(
          "MCP_ALLOWED_VMIDS",
          "allowedVmids",
          rangesText(this.vmids!),
        )
      }: ${
        options.creating
          ? "pick a VMID in that range, or omit it to take the first free one"
          : "this server neither shows nor changes that guest"
      }`,
    );
  }

  /** Refuses a node outside the scope. */
  checkNode(node: string): void {
    if (this.hasNode(node)) return;
    throw new ToolError(
      `Node '${node}' is outside this server's scope ${
        this.#setting(
          "MCP_ALLOWED_NODES",
          "allowedNodes",
          [...this.nodes!].join(","),
        )
      }: use one of those nodes`,
    );
  }

  /**
   * Refuses an existing guest outside the scope (its VMID, or the node it
   * is on). `entry` is the guest as /cluster/resources lists it, if it
   * exists.
   */
  checkGuest(vmid: number, entry?: { node: unknown }): void {
    this.checkVmid(vmid);
    if (entry && !this.hasNode(String(entry.node))) {
      throw new ToolError(
        `Guest ${vmid} is outside this server's scope${
          this.cluster === undefined ? "" : ` of cluster '${this.cluster}'`
        }: it is on a node not in ${
          this.cluster === undefined || !this.#inFile.allowedNodes
            ? "MCP_ALLOWED_NODES="
            : "allowedNodes "
        }${
          [...this.nodes!].join(",")
        }; this server neither shows nor changes it`,
      );
    }
  }
}

/**
 * The start-up line: scope, protection, read-only, toolsets, confirmation
 * mode (`Scope: VMIDs 100-199; nodes pve1. Protected: ...`).
 */
export function safetyLine(
  config: Pick<Config, "readOnly" | "toolsets" | "confirm">,
  scope: Scope,
): string {
  return `Scope: ${scope.describe()}. Protected (read-only to this server): guests with Proxmox's protection flag or the tag '${scope.protectedTag}'. Read-only: ${
    config.readOnly ? "yes" : "no"
  }. Toolsets: ${config.toolsets?.join(",") ?? "all"}. Confirmation: ${
    config.confirm ?? "auto"
  }`;
}

const UNLIMITED = new Scope();
const scopes = new WeakMap<object, Scope>();

/** Binds a scope to a Proxmox client (once, at boot). */
export function setScope(pve: object, scope: Scope): void {
  scopes.set(pve, scope);
}

/** The scope bound to a Proxmox client; the whole cluster when none is. */
export function scopeOf(pve: object): Scope {
  return scopes.get(pve) ?? UNLIMITED;
}

/**
 * The one place a Proxmox API path is built. Every variable part of a path is
 * a Segment, made only by the checks below, which refuse what the PVE schema's
 * format for that parameter refuses (and so `.`, `..`, empty parts, `/`, `?`,
 * `#`, NUL and newlines). Paths are written as tagged templates:
 *
 *   pvePath`/nodes/${seg.node(n)}/qemu/${seg.vmid(id)}/snapshot/${seg.snapname(s)}`
 *
 * PveClient checks every path again before sending it (assertSafePath).
 */
import { ToolError } from "./errors.ts";

/** A checked, encoded path segment. Only the functions in `seg` make one. */
export class Segment {
  readonly #text: string;
  private constructor(text: string) {
    this.#text = text;
  }
  /** @internal */
  static make(text: string): Segment {
    return new Segment(text);
  }
  toString(): string {
    return this.#text;
  }
}

/** A PVE format: what a value must look like, and how to say so. */
export interface Format {
  re: RegExp;
  maxLength?: number;
  /** "use 2-40 letters, digits, '_' or '-', starting with a letter" */
  rule: string;
}

/**
 * PVE's formats for the parameters that reach a path (pve-node,
 * pve-configid, pve-storage-id, pve-volume-id, a UPID), as its schema and
 * PVE::JSONSchema define them.
 */
export const FORMATS = {
  node: {
    re: /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/,
    maxLength: 63,
    rule: "use letters, digits and '-', not at the start or end",
  },
  snapname: {
    re: /^[a-zA-Z][a-zA-Z0-9_-]+$/,
    maxLength: 40,
    rule: "use 2-40 letters, digits, '_' or '-', starting with a letter",
  },
  storage: {
    re: /^[a-zA-Z][a-zA-Z0-9._-]*[a-zA-Z0-9]$/,
    maxLength: 100,
    rule: "use letters, digits, '.', '_' or '-', starting with a letter",
  },
  volid: {
    // storage:volume; the volume may hold '/', never a parent reference.
    re:
      // deno-lint-ignore no-control-regex
      /^[a-zA-Z][a-zA-Z0-9._-]*[a-zA-Z0-9]:(?!\.\.?(\/|$))(?!.*\/\.\.?(\/|$))[^\0-\x1f\x7f?#]+$/,
    maxLength: 4096,
    rule: "use 'storage:volume' as proxmox_list_content shows it",
  },
  upid: {
    re:
      /^UPID:[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8,9}:[0-9A-Fa-f]{8}:[^:\s/]+:[^:\s/]*:[^:\s/]+:$/,
    maxLength: 512,
    rule: "use the UPID exactly as a tool returned it",
  },
} as const satisfies Record<string, Format>;

const LABELS: Record<keyof typeof FORMATS, string> = {
  node: "node name",
  snapname: "snapshot name",
  storage: "storage id",
  volid: "volume id",
  upid: "UPID",
};

/** Whether `value` has the PVE format `name`. */
export function hasFormat(name: keyof typeof FORMATS, value: string): boolean {
  const f: Format = FORMATS[name];
  return value.length <= (f.maxLength ?? Infinity) && f.re.test(value);
}

function checked(name: keyof typeof FORMATS, value: unknown): string {
  if (typeof value !== "string" || !hasFormat(name, value)) {
    const shown = typeof value === "string"
      ? JSON.stringify(value.length > 60 ? value.slice(0, 60) + "…" : value)
      : String(value);
    throw new ToolError(
      `Invalid ${LABELS[name]} ${shown}: ${FORMATS[name].rule}`,
    );
  }
  return value;
}

function integer(label: string, value: unknown, min: number, max: number) {
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < min ||
    value > max
  ) {
    throw new ToolError(
      `Invalid ${label} ${
        String(value)
      }: use a whole number from ${min} to ${max}`,
    );
  }
  return Segment.make(String(value));
}

/** The checks that make path segments. */
export const seg = {
  node: (v: string): Segment => Segment.make(checked("node", v)),
  vmid: (v: number): Segment => integer("vmid", v, 100, 999_999_999),
  guestType: (v: "qemu" | "lxc"): Segment => {
    if (v !== "qemu" && v !== "lxc") {
      throw new ToolError(`Invalid guest type ${String(v)}: use qemu or lxc`);
    }
    return Segment.make(v);
  },
  snapname: (v: string): Segment => Segment.make(checked("snapname", v)),
  storage: (v: string): Segment => Segment.make(checked("storage", v)),
  volid: (v: string): Segment =>
    Segment.make(encodeURIComponent(checked("volid", v))),
  upid: (v: string): Segment =>
    Segment.make(encodeURIComponent(checked("upid", v))),
  /** `nodes/{node}/{type}/{vmid}`: where a guest's endpoints live. */
  guest: (g: { node: string; type: "qemu" | "lxc"; vmid: number }): Segment =>
    Segment.make(
      `nodes/${seg.node(g.node)}/${seg.guestType(g.type)}/${seg.vmid(g.vmid)}`,
    ),
  /** A firewall rule's position. */
  pos: (v: number): Segment => integer("rule position", v, 0, 65_535),
  /** A user id, `name@realm` (pve-userid). */
  userid: (v: string): Segment => {
    if (!/^[^\s:/@]+@[A-Za-z][A-Za-z0-9.\-_]+$/.test(v) || v.length > 64) {
      throw new ToolError(`Invalid user id ${v}: use name@realm`);
    }
    return Segment.make(encodeURIComponent(v));
  },
  /** An API token's name (the part after `!`). */
  tokenName: (v: string): Segment => {
    if (!/^[A-Za-z][A-Za-z0-9.\-_]+$/.test(v)) {
      throw new ToolError(`Invalid token name ${v}: letters, digits, '.-_'`);
    }
    return Segment.make(v);
  },
};

/** Builds a path from literal parts and checked segments only. */
export function pvePath(
  parts: TemplateStringsArray,
  ...segments: Segment[]
): string {
  let out = parts[0];
  for (let i = 0; i < segments.length; i++) {
    if (!(segments[i] instanceof Segment)) {
      throw new TypeError("pvePath takes only Segments made by seg.*");
    }
    out += String(segments[i]) + parts[i + 1];
  }
  assertSafePath(out);
  return out;
}

/** One path part: unreserved characters and %XX escapes only. */
const PART = /^(?:[A-Za-z0-9._~!*'()@:-]|%[0-9A-Fa-f]{2})+$/;
const DOTS = /^(?:\.|%2e){1,2}$/i;

/**
 * Refuses a path that URL resolution could change or that names no single
 * endpoint: `.`/`..` parts (plain or encoded), empty parts, a query or
 * fragment, spaces and control characters, malformed escapes.
 */
export function assertSafePath(path: string): void {
  if (!path.startsWith("/") || path.length > 8192) {
    throw new TypeError(`Unsafe Proxmox path: ${JSON.stringify(path)}`);
  }
  for (const part of path.slice(1).split("/")) {
    if (!PART.test(part) || DOTS.test(part)) {
      throw new TypeError(`Unsafe Proxmox path: ${JSON.stringify(path)}`);
    }
  }
}

/**
 * Paging of long listings. An answer holds at most ANSWER_BYTES of JSON by
 * default (or `limit` rows, up to MAX_LIMIT), the `total` of rows that match
 * the call's filters, and `next_cursor` when more remain.
 *
 * Keyset paging, not offsets: every listing has a fixed total order with a
 * unique last key (list_vms: cluster, vmid), and a cursor names the key of
 * the last row it returned. The next page starts after that key in the list
 * as it is then, so a row present during the whole walk is returned exactly
 * once, whatever was added or removed meanwhile. Where rows have no key of
 * their own (firewall rules are known by their position, which shifts), the
 * cursor also carries a version of the whole list, and a changed list is
 * refused instead of being paged with repeats or gaps.
 *
 * A cursor is base64url JSON: the tool, a fingerprint of the call's filters
 * and of the cluster(s) it listed, the key (and the version). Anything else
 * is refused with a clear error.
 */
import { z } from "zod";
import { decodeBase64Url, encodeBase64Url } from "../base64url.ts";
import { ToolError } from "../proxmox/errors.ts";

/** What a default answer holds at most: bytes of its JSON text. */
const ANSWER_BYTES = 16 * 1024;
/** What an answer with an explicit `limit` holds at most. */
const LIMIT_ANSWER_BYTES = 64 * 1024;
/** Rows in a default answer, at most (small rows stop here before the bytes). */
const DEFAULT_ROWS = 500;
/** The largest `limit`. */
const MAX_LIMIT = 1000;
/**
 * Bytes kept free for what the server adds to an answer after the tool
 * (`untrusted`, naming the fields that hold untrusted text).
 */
const SERVER_RESERVE = 96;
const MAX_CURSOR = 2048;

/**
 * `cursor` and `limit`: taken by every paged listing, explained once in the
 * server's instructions instead of in each tool's schema.
 */
const Cursor = z.string().max(MAX_CURSOR).optional().meta({
  advertise: false,
});
const Limit = z.number().int().min(1).max(MAX_LIMIT).optional().meta({
  advertise: false,
});
/** `cursor` and `limit` as every paged listing takes them, after its filters. */
export const Paging = { cursor: Cursor, limit: Limit };

/**
 * A paged listing's output: what the answer says besides its rows (`head`),
 * `total` (the rows that match, on every page), the rows under `name`,
 * `next_cursor`, then anything after them (`tail`).
 */
export function pagedOutput<
  N extends string,
  R extends z.ZodType,
  H extends z.ZodRawShape = Record<never, never>,
  T extends z.ZodRawShape = Record<never, never>,
>(
  name: N,
  row: R,
  o: { head?: H; tail?: T } = {},
): z.ZodObject<
  & H
  & { total: z.ZodNumber }
  & { [K in N]: z.ZodArray<R> }
  & { next_cursor: z.ZodOptional<z.ZodString> }
  & T
> {
  return z.object({
    ...o.head,
    total: z.number(),
    [name]: z.array(row),
    next_cursor: z.string().optional(),
    ...o.tail,
  }) as never;
}

/** One part of a sort key, and how it sorts. */
export interface KeyPart {
  type: "string" | "number";
  /** Largest first (newest backups first). */
  desc?: boolean;
}
export type Key = (string | number)[];

export interface PageOptions<R> {
  /** The tool's name (a cursor names the tool it came from). */
  tool: string;
  /** The sort order: one entry per part of the key. */
  order: readonly KeyPart[];
  /** A row's key, unique in the listing. */
  key: (row: R) => Key;
  /** The arguments that chose the rows: a cursor is valid with these only. */
  filter: Record<string, unknown>;
  /**
   * The call's tool context: the cluster it named, or the clusters it
   * covers (src/server.ts strips `cluster` from the arguments). A cursor is
   * valid on the same cluster(s) only.
   */
  at: PagingContext;
  cursor?: string;
  limit?: number;
  /** The rest of the answer, measured with the rows (default {}). */
  envelope?: Record<string, unknown>;
  /**
   * What identifies this version of the whole list (hashed into the cursor),
   * for listings whose key is a position: a cursor made from another
   * version is refused.
   */
  version?: unknown;
}

/** What paging reads of a ToolContext: which cluster(s) a call lists. */
export interface PagingContext {
  cluster?: string;
  clusters?: readonly { name: string }[];
}

export interface Page<R> {
  rows: R[];
  /** Rows that match the filters, in every page. */
  total: number;
  /** Where the next page starts; absent on the last page. */
  next_cursor?: string;
}

interface CursorData {
  t: string;
  f: string;
  k: Key;
  v?: string;
}

const encoder = new TextEncoder();
const bytes = (v: unknown): number => encoder.encode(JSON.stringify(v)).length;

/** FNV-1a (32 bits, base 36) of a text: to tell versions apart, not a secret. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(36);
}

/**
 * The filters' canonical form, with the cluster the call named or the
 * clusters it covers, hashed: a cursor stays with its filters and clusters.
 */
function fingerprint(
  filter: Record<string, unknown>,
  at: PagingContext,
): string {
  const pairs: unknown[] = Object.keys(filter).sort().filter((k) =>
    filter[k] !== undefined
  ).map((k) => [k, filter[k]]);
  // Not an argument name (the server takes `cluster` out of them).
  const cluster = at.cluster ?? at.clusters?.map((c) => c.name);
  if (cluster !== undefined) pairs.push([" cluster", cluster]);
  return hash(JSON.stringify(pairs));
}

/** Orders two keys by the listing's order. */
function compareKeys(
  a: Key,
  b: Key,
  order: readonly KeyPart[],
): number {
  for (let i = 0; i < order.length; i++) {
    const x = a[i], y = b[i];
    if (x === y) continue;
    const c = x < y ? -1 : 1;
    return order[i].desc ? -c : c;
  }
  return 0;
}

function encodeCursor(c: CursorData): string {
  return encodeBase64Url(encoder.encode(JSON.stringify(c)));
}

/** The cursor's data, checked strictly; a ToolError says what is wrong. */
function decodeCursor<R>(cursor: string, o: PageOptions<R>): CursorData {
  const invalid = (why: string) =>
    new ToolError(
      `Not a cursor of ${o.tool} (${why}): pass next_cursor from its previous answer unchanged, or leave cursor out to start from the first page`,
    );
  if (cursor.length > MAX_CURSOR || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalid("not base64url");
  }
  let data: unknown;
  try {
    data = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        decodeBase64Url(cursor),
      ),
    );
  } catch {
    throw invalid("not base64url JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw invalid("not an object");
  }
  const c = data as Record<string, unknown>;
  const keys = Object.keys(c).sort().join(",");
  if (keys !== "f,k,t" && keys !== "f,k,t,v") throw invalid("unknown fields");
  if (
    typeof c.t !== "string" || !/^[a-z_]{1,40}$/.test(c.t) ||
    typeof c.f !== "string"
  ) throw invalid("bad fields");
  if (c.t !== o.tool.replace(/^proxmox_/, "")) {
    throw new ToolError(
      `This cursor is from proxmox_${c.t}, not ${o.tool}: pass it to the tool that returned it, or leave cursor out to start from the first page`,
    );
  }
  // Before the key: a cursor of another cluster (or of every cluster) has a
  // key of another shape.
  if (c.f !== fingerprint(o.filter, o.at)) {
    throw new ToolError(
      `This cursor of ${o.tool} was made with other arguments: repeat the first page's arguments with it (only limit may change), or leave cursor out to start over`,
    );
  }
  if (
    !Array.isArray(c.k) || c.k.length !== o.order.length ||
    !c.k.every((v, i) =>
      o.order[i].type === "number"
        ? typeof v === "number" && Number.isFinite(v)
        : typeof v === "string" && v.length <= 1024
    )
  ) throw invalid("bad key");
  if (c.v !== undefined && typeof c.v !== "string") throw invalid("bad fields");
  return c as unknown as CursorData;
}

/**
 * One page of a listing: sorts `all` by the key, starts after the cursor's
 * key, and takes rows while the answer (envelope, rows and next_cursor) stays
 * within the byte budget and the row limit. A page holds at least one row,
 * whatever its size, so a walk always ends.
 */
export function page<R>(all: readonly R[], o: PageOptions<R>): Page<R> {
  const tag = o.tool.replace(/^proxmox_/, "");
  const f = fingerprint(o.filter, o.at);
  const keyed = all.map((row) => ({ row, key: o.key(row) }));
  keyed.sort((a, b) => compareKeys(a.key, b.key, o.order));
  const v = o.version === undefined
    ? undefined
    : hash(JSON.stringify(o.version));
  let start = 0;
  if (o.cursor !== undefined) {
    const c = decodeCursor(o.cursor, o);
    if (c.v !== v) {
      throw new ToolError(
        `The listing of ${o.tool} changed since that page was made (its rows are known by position): leave cursor out to list it again from the first page`,
      );
    }
    // The first row after the cursor's key (binary search: rows are sorted).
    let lo = 0, hi = keyed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(keyed[mid].key, c.k, o.order) <= 0) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const maxRows = o.limit ?? DEFAULT_ROWS;
  const budget = (o.limit ? LIMIT_ANSWER_BYTES : ANSWER_BYTES) -
    SERVER_RESERVE;
  const cursorOf = (key: Key) =>
    encodeCursor({ t: tag, f, k: key, ...(v ? { v } : {}) });
  // The answer without rows, with `"total":N` and an empty rows array.
  let used = bytes({ ...o.envelope, rows: [], total: keyed.length });
  const rows: R[] = [];
  let i = start;
  for (; i < keyed.length && rows.length < maxRows; i++) {
    const size = bytes(keyed[i].row) + (rows.length ? 1 : 0);
    const last = i === keyed.length - 1;
    // `,"next_cursor":"..."` unless this row is the last of all.
    const tail = last ? 0 : 17 + cursorOf(keyed[i].key).length;
    if (rows.length && used + size + tail > budget) break;
    rows.push(keyed[i].row);
    used += size;
  }
  return {
    rows,
    total: keyed.length,
    next_cursor: i < keyed.length ? cursorOf(keyed[i - 1].key) : undefined,
  };
}

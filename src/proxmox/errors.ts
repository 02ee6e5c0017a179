/**
 * Errors a user can act on. Their messages are safe to show: PVE's own words,
 * what failed, and what to do; never a secret or a stack trace.
 */

/**
 * What went wrong, classified once from PVE's status and wording (see
 * ERROR_KINDS). Tools switch on the kind and add their own advice.
 */
export type PveErrorKind =
  | "notFound"
  | "exists"
  | "locked"
  | "alreadyRunning"
  | "alreadyStopped"
  | "notRunning"
  /** The guest runs, and the action needs it stopped (restore, destroy). */
  | "guestRunning"
  | "agentNotConfigured"
  | "agentNotRunning"
  | "agent"
  | "permission"
  | "auth"
  | "badRequest"
  | "notImplemented"
  | "nodeUnreachable"
  | "server"
  | "badResponse"
  /** A read that got no answer in time (safe to retry). */
  | "timeout"
  /** A write that got no answer: it may have been applied. */
  | "uncertain"
  | "tls"
  | "network"
  | "cancelled"
  | "unknown";

/**
 * PVE's wording → kind, first match wins. Status 0 (no answer) is classified
 * by whoever makes the error (PveClient), never from text.
 */
const ERROR_KINDS: readonly {
  kind: PveErrorKind;
  status?: readonly number[];
  re?: RegExp;
}[] = [
  { kind: "auth", status: [401] },
  { kind: "permission", status: [403] },
  { kind: "notImplemented", status: [501] },
  { kind: "nodeUnreachable", status: [595, 596] },
  { kind: "locked", re: /\bis locked \(|can't lock file/ },
  { kind: "alreadyRunning", re: /\b(VM|CT) \d+ already running$/m },
  // "VM 100 is not running": the action needs a running guest (a stop path
  // reads it as "already stopped": power.ts wasStopped).
  { kind: "notRunning", re: /\b(VM|CT) \d+ is not running/ },
  // LXC's "CT 201 not running" to a stop, and "already stopped".
  { kind: "alreadyStopped", re: /\b(VM|CT) \d+ not running$|already stopped/m },
  { kind: "agentNotConfigured", re: /^No QEMU guest agent configured/ },
  { kind: "agentNotRunning", re: /^QEMU guest agent is not running/ },
  {
    kind: "guestRunning",
    re: /\b(?:vm|VM \d+|CT \d+|container) is running\b|overwrite running/,
  },
  { kind: "agent", re: /^Agent error:/ },
  {
    kind: "notFound",
    re:
      /does not exist|not found|no such|unable to find|Configuration file .* does not exist/i,
  },
  { kind: "exists", re: /already exists/i },
  { kind: "badRequest", status: [400] },
  { kind: "server", status: [500, 502, 503, 504] },
];

/**
 * The ACL path and privileges of PVE's 403 `Permission check failed
 * (/vms/105, VM.PowerMgmt)`; several privileges (`A|B`) mean any one of them.
 * Undefined for a bare `Permission check failed`.
 */
function parseDenied(
  message: string,
): { path: string; privs: string[] } | undefined {
  const m = /Permission check failed \(([^,()]+), ([^()]+)\)/.exec(message);
  if (!m) return undefined;
  return { path: m[1].trim(), privs: m[2].trim().split("|") };
}

/** "missing VM.PowerMgmt on /vms/105" for a parsed 403. */
function missingText(d: { path: string; privs: string[] }): string {
  return `missing ${
    d.privs.length > 1 ? `one of ${d.privs.join(", ")}` : d.privs[0]
  } on ${d.path}`;
}

/**
 * What to do, by kind, for an error no tool has advised on (the last word
 * of callTool): every error a user sees says what to try next.
 */
export const ADVICE: Partial<Record<PveErrorKind, string>> = {
  locked:
    "Another task holds the lock: wait for it to end (the node's task list, or proxmox_get_task) and retry",
  server:
    "Proxmox failed on this request: retry in a moment; if it persists, check the node's logs (journalctl -u pveproxy -u pvedaemon)",
  unknown:
    "Retry in a moment; if it persists, check the node's logs (journalctl -u pveproxy -u pvedaemon)",
  notFound: "Check the name or id with the matching list tool",
  badRequest: "Check the arguments against Proxmox's words above",
  exists: "Choose another name or id, or use the existing one",
  notImplemented: "This Proxmox release does not offer it",
  badResponse:
    "Check that PROXMOX_URL points at the Proxmox API (nothing in between rewrites answers), and retry",
};

/** An error's text with the advice of its kind when it has none yet. */
export function advised(e: PveError): string {
  const advice = e.advised ? undefined : ADVICE[e.kind];
  return advice ? `${e.message}. ${advice}` : e.message;
}

/** The kind of a PVE answer from its status and message. */
export function classify(status: number, message: string): PveErrorKind {
  for (const rule of ERROR_KINDS) {
    if (rule.status && !rule.status.includes(status)) continue;
    if (rule.re && !rule.re.test(message)) continue;
    if (!rule.status && !rule.re) continue;
    return rule.kind;
  }
  return "unknown";
}

/** An error answer from the Proxmox API, or no answer at all. */
export class PveError extends Error {
  override name = "PveError";
  /** What went wrong (see ERROR_KINDS). */
  readonly kind: PveErrorKind;
  /** HTTP status; 0 when Proxmox could not be reached. */
  readonly status: number;
  readonly method: string;
  readonly path: string;
  /** PVE's message, without the trailing newline. */
  readonly pveMessage: string;
  /** Per-parameter errors of a 400 `Parameter verification failed.` */
  readonly errors?: Record<string, string>;
  /** A 403's ACL path and privileges (`Permission check failed (path, priv)`). */
  readonly denied?: { path: string; privs: string[] };
  /** Whether the message already says what to do. */
  readonly advised: boolean;
  constructor(
    init: {
      status: number;
      method: string;
      path: string;
      pveMessage: string;
      errors?: Record<string, string>;
      hint?: string;
      /** Set when there was no answer (status 0); else classified. */
      kind?: PveErrorKind;
    },
  ) {
    const detail = init.errors
      ? " " + Object.entries(init.errors).map(([k, v]) => `${k}: ${v.trim()}`)
        .join("; ")
      : "";
    const where = `${init.method} ${init.path}`;
    const denied = init.status === 403
      ? parseDenied(init.pveMessage)
      : undefined;
    const head = init.status === 0
      ? `${init.pveMessage} (${where})`
      : denied
      ? `Permission denied: ${
        missingText(denied)
      } (Proxmox answered 403 to ${where}: ${init.pveMessage})`
      : `Proxmox answered ${init.status} to ${where}: ${init.pveMessage}${detail}`;
    super(init.hint ? `${head}. ${init.hint}` : head);
    this.kind = init.kind ?? classify(init.status, init.pveMessage);
    this.status = init.status;
    this.method = init.method;
    this.path = init.path;
    this.pveMessage = init.pveMessage;
    this.errors = init.errors;
    this.advised = !!init.hint || !!denied;
    this.denied = denied;
  }
}

/**
 * A request that cannot be carried out as asked (unknown guest, a refused
 * precondition, a failed task). The message says what to do.
 */
export class ToolError extends Error {
  override name = "ToolError";
  /** Structured detail that goes into the result next to the message. */
  readonly detail?: Record<string, unknown>;
  constructor(
    message: string,
    detail?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.detail = detail;
  }
}

/**
 * Why a read failed, as every `unreachable[].error` says it (a cluster a
 * listing or the summary could not read, a storage list_backups could not):
 * Proxmox's own words when it answered, the client's account when it did
 * not (no answer in time, no connection), else the error's message; the
 * first line only, so no stack or detail. None of these holds a secret.
 */
export function reasonOf(e: unknown): string {
  const text = e instanceof PveError
    ? e.pveMessage || e.message
    : e instanceof Error
    ? e.message
    : String(e ?? "");
  return text.split("\n")[0].trim();
}

/** The Proxmox error behind an error (itself, or a ToolError's cause). */
export function pveErrorOf(e: unknown): PveError | undefined {
  if (e instanceof PveError) return e;
  const cause = e instanceof Error ? e.cause : undefined;
  return cause instanceof PveError ? cause : undefined;
}

/**
 * Logging to stderr through LogTape (stdout is the protocol on stdio).
 * INFO and above: one human-readable line per event. DEBUG: JSON lines.
 * Secrets are redacted twice: by key name, and by value for every secret the
 * process knows (registered with `addSecret`).
 */
import {
  configureSync,
  getLogger,
  type Logger,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";

export type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";

const SECRET_KEY =
  /pass(word)?|secret|ticket|csrf|token|authorization|cookie|sshkeys|ssh-public-keys|^content$|input-data/i;
const REDACTED = "[redacted]";
/** The process's own secrets (credentials, tokens, keys): kept for good. */
const pinned = new Set<string>();
/**
 * Secrets that stay valid while something holds them (each client's current
 * login ticket and CSRF token): kept until replaced (replaceSecret), however
 * many recent ones come meanwhile.
 */
const held = new Set<string>();
/**
 * Secrets of one event (guest passwords, a replaced ticket's last minutes):
 * the most recent RECENT_MAX, oldest dropped first. A password is shown
 * once; by the time a thousand newer ones came, it is in no log line's way
 * (and fields named like secrets stay masked by name). Unbounded, every
 * guest created grew the set, and every log line scanned it whole.
 */
const recent = new Map<string, true>();
export const RECENT_MAX = 1024;
const encoder = new TextEncoder();

/** A secret value and its URL-encoded form, when that differs. */
function forms(value: string): string[] {
  const enc = encodeURIComponent(value);
  return enc !== value ? [value, enc] : [value];
}

/**
 * Registers a secret value so that it never appears in a log line:
 * `process` (the default: configured credentials) for as long as the process
 * runs, `recent` (a guest's password) among the latest RECENT_MAX.
 */
export function addSecret(
  value: string | undefined,
  lifetime: "process" | "recent" = "process",
): void {
  if (!value || value.length < 4) return;
  for (const v of forms(value)) {
    if (lifetime === "process") {
      pinned.add(v);
      recent.delete(v);
    } else if (!pinned.has(v)) {
      recent.delete(v); // re-added: the most recent again
      recent.set(v, true);
      if (recent.size > RECENT_MAX) {
        recent.delete(recent.keys().next().value as string);
      }
    }
  }
}

/**
 * Masks `next` until it is itself replaced, and lets `old` go (a login
 * ticket and its renewal): `old` joins the recent secrets, as a replaced
 * ticket stays valid a little longer.
 */
export function replaceSecret(
  old: string | undefined,
  next: string | undefined,
): void {
  if (old === next) return;
  if (old) {
    for (const v of forms(old)) held.delete(v);
    addSecret(old, "recent");
  }
  if (next && next.length >= 4) {
    for (const v of forms(next)) {
      held.add(v);
      recent.delete(v);
    }
  }
}

/** How many secret values the log masks now (pinned, held and recent). */
export function knownSecrets(): number {
  return pinned.size + held.size + recent.size;
}

/** Replaces every known secret value in a string. */
export function scrub(text: string): string {
  for (const s of pinned) {
    if (text.includes(s)) text = text.replaceAll(s, REDACTED);
  }
  for (const s of held) {
    if (text.includes(s)) text = text.replaceAll(s, REDACTED);
  }
  for (const s of recent.keys()) {
    if (text.includes(s)) text = text.replaceAll(s, REDACTED);
  }
  return text;
}

/** A copy of `value` with secret-named fields and known secret values replaced. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return scrub(value);
  if (value === null || typeof value !== "object" || depth > 6) return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return scrub(value.message);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && v !== ""
      ? REDACTED
      : redact(v, depth + 1);
  }
  return out;
}

function toStderr(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing to do
  }
}
let write: (line: string) => void = toStderr;

/**
 * Sends log lines somewhere else than stderr (in-process tests read the log
 * of the server they run); no argument restores stderr.
 */
export function setLogWriter(writer?: (line: string) => void): void {
  write = writer ?? toStderr;
}

function renderMessage(record: LogRecord): string {
  let s = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    s += i % 2 === 0 ? String(part) : JSON.stringify(redact(part));
  }
  return scrub(s);
}

function lineSink(record: LogRecord): void {
  const props = redact(record.properties) as Record<string, unknown>;
  const extra = Object.entries(props).map(([k, v]) =>
    `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
  ).join(" ");
  write(
    `${
      new Date(record.timestamp).toISOString()
    } ${record.level.toUpperCase()} ${
      record.category.slice(1).join(".") || "main"
    }: ${renderMessage(record)}${extra ? " " + extra : ""}`,
  );
}

function jsonSink(record: LogRecord): void {
  write(JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    msg: renderMessage(record),
    ...(redact(record.properties) as Record<string, unknown>),
  }));
}

const LEVELS = {
  DEBUG: "debug",
  INFO: "info",
  WARNING: "warning",
  ERROR: "error",
} as const;

/** Sets up logging for the process; call once from main. */
export function setupLogging(level: Level): void {
  resetSync();
  configureSync({
    sinks: { stderr: level === "DEBUG" ? jsonSink : lineSink },
    loggers: [
      {
        category: ["proxmox-mcp"],
        lowestLevel: LEVELS[level],
        sinks: ["stderr"],
      },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["stderr"],
      },
    ],
  });
}

/** A logger under the `proxmox-mcp` category. */
export function logger(...category: string[]): Logger {
  return getLogger(["proxmox-mcp", ...category]);
}

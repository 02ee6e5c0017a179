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
const secrets = new Set<string>();
const encoder = new TextEncoder();

/** Registers a secret value so that it never appears in a log line. */
export function addSecret(value: string | undefined): void {
  if (value && value.length >= 4) {
    secrets.add(value);
    const enc = encodeURIComponent(value);
    if (enc !== value) secrets.add(enc);
  }
}

/** Replaces every known secret value in a string. */
export function scrub(text: string): string {
  for (const s of secrets) {
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

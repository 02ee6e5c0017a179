/**
 * The audit trail: one JSON line per call of a tool that changes anything
 * (dry runs and refusals included), on stderr at INFO and appended to
 * MCP_AUDIT_FILE when set. The file is created 0600, opened for appending
 * (never truncated) and written line by line, each line in one write.
 */
import { logger, redact } from "../log.ts";

const log = logger("audit");
const encoder = new TextEncoder();

/** How a call ended, for the audit line. */
export type AuditResult = "ok" | "error" | "refused" | "dry-run";

/** One audit line. */
export interface AuditEntry {
  time: string;
  transport: string;
  client?: string;
  session?: string;
  /** The cluster acted on, when PROXMOX_CONFIG names the clusters. */
  cluster?: string;
  tool: string;
  /** The arguments, secrets masked. */
  args: unknown;
  dry_run: boolean;
  /** How the human confirmation went (src/safety/confirm.ts). */
  confirmation?: string;
  /** MCP_LOCKDOWN: whether guest output was asked about, released or withheld. */
  lockdown?: string;
  /** The writes sent to Proxmox (in a dry run: planned, not sent). */
  requests: { method: string; path: string }[];
  upids: string[];
  result: AuditResult;
  /** The first line of the error or refusal. */
  error?: string;
  ms: number;
}

interface Sink {
  file: Deno.FsFile;
  /** Writes in order: one line after the other, never interleaved. */
  queue: Promise<void>;
  /** Said with the first line. */
  warning?: string;
}
const sinks = new Map<string, Sink>();

/**
 * Opens (creating it 0600 if needed) the audit file for appending. main.ts
 * calls this at start so that a file the process cannot write stops the
 * server before it serves anything. Throws RangeError naming the variable.
 */
export async function openAuditFile(path: string): Promise<void> {
  if (sinks.has(path)) return;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  } catch (e) {
    throw new RangeError(
      `Cannot open MCP_AUDIT_FILE ${path}: ${
        (e as Error).message.split("\n")[0]
      }${
        e instanceof Deno.errors.NotCapable
          ? ` (grant --allow-write=${path})`
          : ""
      }`,
    );
  }
  // Created 0600; a file that existed keeps its mode, said (with the first
  // line, once logging is set up) if loose. fstat needs read access, which
  // the process may have given up.
  const mode = await file.stat().then((st) => st.mode, () => null);
  const warning = mode !== null && (mode & 0o077) !== 0
    ? `MCP_AUDIT_FILE ${path} is readable by others (mode ${
      (mode & 0o777).toString(8)
    }): chmod 600 it`
    : undefined;
  sinks.set(path, { file, queue: Promise.resolve(), warning });
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/**
 * Writes one audit line: to stderr at INFO, and to the audit file when one
 * is configured. A failed file write is logged, never thrown at the caller.
 */
export async function audit(
  entry: AuditEntry,
  file?: string,
  /** The arguments as the INFO log may show them (no command line). */
  logArgs: unknown = entry.args,
): Promise<void> {
  const line = JSON.stringify(redact(entry));
  const logLine = JSON.stringify(redact({ ...entry, args: logArgs }));
  // LogTape reads {...} as placeholders: doubled braces are literal ones.
  log.info(`audit ${logLine.replaceAll("{", "{{").replaceAll("}", "}}")}`);
  if (!file) return;
  try {
    await openAuditFile(file);
  } catch (e) {
    log.error((e as Error).message);
    return;
  }
  const sink = sinks.get(file)!;
  if (sink.warning) {
    log.warning(sink.warning);
    sink.warning = undefined;
  }
  const bytes = encoder.encode(line + "\n");
  const next = sink.queue.then(() => writeAll(sink.file, bytes)).catch(
    (e) => {
      log.error(`Cannot write to MCP_AUDIT_FILE ${file}`, {
        error: (e as Error)?.message,
      });
    },
  );
  sink.queue = next;
  await next;
}

/** Closes the audit files (tests; the process closes them on exit). */
export function closeAuditFiles(): void {
  for (const { file } of sinks.values()) {
    try {
      file.close();
    } catch { /* already closed */ }
  }
  sinks.clear();
}

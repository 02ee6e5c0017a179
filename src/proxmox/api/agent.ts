/**
 * The QEMU guest agent (`/nodes/{node}/qemu/{vmid}/agent/...`): run a
 * program and collect its output, read and write files, the guest's OS.
 * PVE's quirks live here: how bytes are handed over (one char per byte),
 * file-read's per-release parameters (see quirks.ts), the limits PVE sets.
 *
 * Guest commands can carry secrets (`sshpass -p`, `MYSQL_PWD=`, `echo pw |
 * sudo -S`, `htpasswd -b`), and no pattern list catches every form: at INFO
 * only the program and the number of arguments are logged; the masked
 * command line only at DEBUG. File contents and stdin are never logged.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { PveClient } from "../client.ts";
import { PveError, ToolError } from "../errors.ts";
import { logger } from "../../log.ts";
import { pvePath, seg } from "../path.ts";
import { quirksOf } from "../quirks.ts";
import type { GuestRef } from "./guests.ts";

const log = logger("guest");

/** PVE's `content` limit for agent/file-write (base64 characters). */
export const FILE_WRITE_MAX_CHARS = 61440;
/** The most bytes one file-write takes (61440 base64 characters). */
export const FILE_WRITE_MAX_BYTES = FILE_WRITE_MAX_CHARS / 4 * 3;
/** PVE's `input-data` limit for agent/exec. */
export const STDIN_MAX_BYTES = 65536;
/** PVE's limit for one agent/file-read. */
const FILE_READ_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The privilege an agent call needs on this cluster's release, for advice on
 * a 403: `VM.GuestAgent.Unrestricted (Proxmox VE 9.1)`.
 */
export async function agentPrivilege(
  pve: PveClient,
  call: "exec" | "file",
): Promise<string> {
  const q = await quirksOf(pve);
  const p = call === "exec" ? q.agentExecPrivilege : q.agentFilePrivilege;
  return q.release === "unknown" ? p : `${p} (Proxmox VE ${q.release})`;
}

// ---------------------------------------------------------------------------
// Bytes as PVE hands them over

const encoder = new TextEncoder();

/** Bytes as a string of chars 0-255 (how PVE's Perl hands bytes over). */
function toBinary(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** PVE sends decoded agent output as one char per byte. */
function fromBinary(s: string): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) return encoder.encode(s);
  }
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** Standard base64 of bytes. */
export function base64Encode(bytes: Uint8Array): string {
  return btoa(toBinary(bytes));
}

/** Bytes of standard base64 (whitespace ignored), or undefined. */
export function base64Decode(text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) {
    return undefined;
  }
  try {
    return Uint8Array.from(atob(clean), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// What a command line looks like in the log

const SHELLS = /^(?:\/(?:usr\/)?bin\/)?(?:sh|bash|dash|ash|zsh|ksh)$/;

/** The program a command runs, for the INFO log: `sshpass`, `/bin/sh`. */
export function describeCommand(
  argv: readonly string[],
): { program: string; args: number } {
  const first = argv[0] ?? "";
  // Only what looks like a program name or path: `PASSWORD=x` or a whole
  // script given as argv[0] is not logged.
  const program = /^[\w./+-]{1,120}$/.test(first) ? first : "[not shown]";
  return { program, args: Math.max(0, argv.length - 1) };
}

/** A word in a shell line: quoted, or up to the next blank or operator. */
const WORD = `(?:'[^']*'|"(?:[^"\\\\]|\\\\.)*"|[^\\s'"|;&<>()])+`;
const SECRET_WORD =
  "pass(?:word|wd|phrase)?|pwd|secret|token|api[-_]?key|auth|credentials?";
const MASK = "[redacted]";

/**
 * Masks in a shell line (a script for sh -c, or an argv written out).
 * Replacer functions keep what they do not mask.
 */
const MASKS: [RegExp, string | ((...m: string[]) => string)][] = [
  // --password=x, --token x, -auth 'x'
  [
    new RegExp(
      `(^|\\s)(-{1,2}[\\w-]*(?:${SECRET_WORD})[\\w-]*)(=|\\s+)(?!-)${WORD}`,
      "gi",
    ),
    `$1$2$3${MASK}`,
  ],
  // PASSWORD=x, MYSQL_PWD='x', db_token=x (environment or config lines)
  [
    new RegExp(`\\b([\\w.-]*(?:${SECRET_WORD})[\\w.-]*)=${WORD}`, "gi"),
    `$1=${MASK}`,
  ],
  // https://user:pass@host
  [/(:\/\/[^/\s:@'"]+:)[^@\s/'"]+@/g, `$1${MASK}@`],
  // Authorization: Bearer x / PVEAPIToken=...
  [/(authorization:\s*\w+\s+)[^'"\s]+/gi, `$1${MASK}`],
  // Any header naming a key, token or secret: -H 'X-Api-Key: x'
  [
    new RegExp(
      `\\b(?!authorization:)([\\w-]*(?:${SECRET_WORD}|key)[\\w-]*:\\s*)[^'"\\s]+`,
      "gi",
    ),
    `$1${MASK}`,
  ],
  // mysql -psecret, sshpass -p secret, sshpass -p 'se cret'
  [new RegExp(`(^|\\s)-p(?!\\s*-)(\\s*)${WORD}`, "g"), `$1-p$2${MASK}`],
  // echo 'pw' | sudo -S / passwd --stdin / chpasswd: what is piped in
  [
    new RegExp(
      `\\b(echo|printf)((?:\\s+${WORD})+?)(\\s*\\|\\s*(?:[\\w/]*sudo\\b[^|;&]*\\s(?:-\\w*S|--stdin)|[\\w/]*passwd\\b|[\\w/]*chpasswd\\b|[\\w/]*htpasswd\\b))`,
      "g",
    ),
    `$1 ${MASK}$3`,
  ],
  // curl -u user:pw, --user=user:pw: the part after the colon
  [
    /(^|\s)(-u|--user|--proxy-user)(=|\s+)(['"]?)([^\s:'"]+):[^\s'"]+/g,
    `$1$2$3$4$5:${MASK}`,
  ],
  // net user name pw [/add] (Windows): the word after the name
  [
    new RegExp(`\\b(net\\s+user\\s+${WORD}\\s+)(?![/*])${WORD}`, "gi"),
    `$1${MASK}`,
  ],
  // sudo -S <<< 'pw': a here-string is stdin, often a password
  [new RegExp(`(<<<\\s*)${WORD}`, "g"), `$1${MASK}`],
  // sudo -S <<EOF ... EOF: a here-document is stdin too; its body is masked
  [
    /(<<-?\s*(['"]?)(\w+)\2[^\n]*\n)[\s\S]*?(?=\n\3\b|$)/g,
    `$1${MASK}`,
  ],
  // htpasswd -b[other flags] [file] user password: the last word
  [
    new RegExp(
      `\\b(htpasswd((?:\\s+-\\w+(?:\\s+\\d+)?)*)\\s+)((?:${WORD}\\s+){1,2})${WORD}`,
      "g",
    ),
    (all, head, flags, words) => {
      if (!/\s-\w*b/.test(flags)) return all;
      // -n prints instead of writing a file: one word (user) before the
      // password, else two (file and user).
      const before = /\s-\w*n/.test(flags) ? 1 : 2;
      const kept = words.trim().split(/\s+/);
      if (kept.length < before) return all;
      return `${head}${kept.slice(0, before).join(" ")} ${MASK}`;
    },
  ],
];

function maskLine(line: string): string {
  return MASKS.reduce(
    (text, [re, to]) => text.replace(re, to as string),
    line,
  );
}

/** One argv element as a shell word. */
function shellWord(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

/** Longest text masked at once: the patterns stay linear-ish and fast. */
const MASK_WINDOW = 400;
const LOGGED_CHARS = 300;

/**
 * A command line for the DEBUG log: secrets masked (best effort: the INFO
 * log never has the command line at all), at most 300 chars. Only the first
 * 400 chars of each part are looked at.
 */
export function redactCommand(argv: readonly string[]): string {
  const mask = (text: string) => {
    if (text.length <= MASK_WINDOW) return maskLine(text);
    // Cut where no secret can be left half-recognised: before the last word,
    // and before an unclosed quote.
    let head = text.slice(0, MASK_WINDOW);
    head = head.slice(0, Math.max(0, head.search(/\s\S*$/)));
    for (const q of ["'", '"']) {
      if (head.split(q).length % 2 === 0) {
        head = head.slice(0, head.lastIndexOf(q));
      }
    }
    return maskLine(head) + " …";
  };
  let line: string;
  if (argv.length >= 3 && SHELLS.test(argv[0]) && argv[1] === "-c") {
    line = `${argv[0]} -c ${JSON.stringify(mask(argv[2]))}${
      argv.slice(3).map((a) => " " + shellWord(mask(a))).join("")
    }`;
  } else if (
    argv.length >= 3 && /^cmd(\.exe)?$/i.test(argv[0]) &&
    /^\/c$/i.test(argv[1])
  ) {
    line = `${argv[0]} ${argv[1]} ${JSON.stringify(mask(argv[2]))}`;
  } else {
    line = mask(argv.map(shellWord).join(" "));
  }
  return line.length > LOGGED_CHARS ? line.slice(0, LOGGED_CHARS) + "…" : line;
}

// ---------------------------------------------------------------------------
// exec and exec-status

interface RawExecStatus {
  exited: number | boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: number | boolean;
  "err-truncated"?: number | boolean;
}

/** A guest process, finished or still running. */
export interface ExecOutcome {
  pid: number;
  exited: boolean;
  exitcode?: number;
  signal?: number;
  stdout: string;
  stderr: string;
  /** The agent kept only part of the stream (16 MiB). */
  outTruncated: boolean;
  errTruncated: boolean;
  seconds: number;
}

export interface RunOptions {
  /** Bytes for the program's stdin (at most STDIN_MAX_BYTES). */
  stdin?: Uint8Array;
  /** How long to wait for the program to exit. */
  timeoutS: number;
  signal?: AbortSignal;
  /** A process started earlier (by pid): wait for it instead of starting one. */
  pid?: number;
  /** Called between polls with the elapsed time in ms. */
  onPoll?: (elapsedMs: number) => Promise<void>;
  /** Who runs it, for the log (a tool name). */
  by?: string;
}

/** `POST agent/exec`: starts argv in the guest; returns the guest pid. */
export async function exec(
  pve: PveClient,
  g: GuestRef,
  argv: string[],
  options: { stdin?: Uint8Array; by?: string } = {},
): Promise<number> {
  const { program, args } = describeCommand(argv);
  log.info("guest exec", {
    tool: options.by,
    vmid: g.vmid,
    program,
    args,
    ...(options.stdin ? { stdin_bytes: options.stdin.length } : {}),
  });
  log.debug("guest exec command", {
    vmid: g.vmid,
    command: redactCommand(argv),
  });
  try {
    const { pid } = await pve.post<{ pid: number }>(
      pvePath`/${seg.guest(g)}/agent/exec`,
      {
        command: argv,
        // One char per byte: PVE base64-encodes it byte for byte.
        "input-data": options.stdin ? toBinary(options.stdin) : undefined,
      },
    );
    return pid;
  } catch (e) {
    // The agent names a program it cannot start; one that is not shown in
    // the log (PASSWORD=x as argv[0]) is not repeated in the error either,
    // since errors are logged.
    if (
      e instanceof PveError && program === "[not shown]" && argv[0] &&
      e.pveMessage.includes(argv[0])
    ) {
      throw new PveError({
        status: e.status,
        method: e.method,
        path: e.path,
        pveMessage: e.pveMessage.replaceAll(argv[0], "<argv[0]>"),
        errors: e.errors,
      });
    }
    throw e;
  }
}

/** `GET agent/exec-status`; the output once the process has exited. */
async function execStatus(
  pve: PveClient,
  g: GuestRef,
  pid: number,
): Promise<Omit<ExecOutcome, "seconds">> {
  const st = await pve.get<RawExecStatus>(
    pvePath`/${seg.guest(g)}/agent/exec-status`,
    {
      pid,
    },
  );
  if (!(st.exited === true || Number(st.exited) === 1)) {
    return {
      pid,
      exited: false,
      stdout: "",
      stderr: "",
      outTruncated: false,
      errTruncated: false,
    };
  }
  const dec = new TextDecoder();
  return {
    pid,
    exited: true,
    exitcode: st.exitcode,
    signal: st.signal,
    stdout: dec.decode(fromBinary(st["out-data"] ?? "")),
    stderr: dec.decode(fromBinary(st["err-data"] ?? "")),
    outTruncated: Number(st["out-truncated"] ?? 0) === 1,
    errTruncated: Number(st["err-truncated"] ?? 0) === 1,
  };
}

/**
 * Runs argv in the guest (or follows `options.pid`) and polls exec-status
 * until the process exits or `timeoutS` is up; the process keeps running in
 * the guest after that.
 */
export async function runCommand(
  pve: PveClient,
  g: GuestRef,
  argv: string[],
  options: RunOptions,
): Promise<ExecOutcome> {
  const started = performance.now();
  const pid = options.pid ??
    await exec(pve, g, argv, { stdin: options.stdin, by: options.by });
  const deadline = started + options.timeoutS * 1000;
  let wait = 100;
  for (;;) {
    const st = await statusRetried(pve, g, pid, options.signal);
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    if (st.exited) {
      log.info("guest exec ended", {
        tool: options.by,
        vmid: g.vmid,
        pid,
        ...(st.signal === undefined
          ? { exitcode: st.exitcode }
          : { signal: st.signal }),
        seconds,
      });
      return { ...st, seconds };
    }
    const left = deadline - performance.now();
    if (left <= 0) return { ...st, seconds };
    await options.onPoll?.(Math.round(performance.now() - started));
    await delay(Math.min(wait, left), undefined, { signal: options.signal });
    wait = Math.min(wait * 1.5, 2000);
  }
}

/** Kinds of failure a second exec-status read may not see. */
const TRANSIENT = new Set(["timeout", "network", "server", "badResponse"]);

/**
 * exec-status, read again once after a transient failure. When it still
 * cannot be read, the process may well be running: say so, with its pid.
 */
async function statusRetried(
  pve: PveClient,
  g: GuestRef,
  pid: number,
  signal?: AbortSignal,
): Promise<Omit<ExecOutcome, "seconds">> {
  try {
    return await execStatus(pve, g, pid);
  } catch (e) {
    if (!(e instanceof PveError) || !TRANSIENT.has(e.kind)) throw e;
    await delay(500, undefined, { signal });
    try {
      return await execStatus(pve, g, pid);
    } catch (again) {
      if (!(again instanceof PveError) || !TRANSIENT.has(again.kind)) {
        throw again;
      }
      throw new ToolError(
        `Cannot read the state of guest pid ${pid} in VM ${g.vmid} (${again.message}); it may still be running in the guest: ask again with pid: ${pid}`,
        { pid },
      );
    }
  }
}

/** `GET agent/get-osinfo`: QGA's guest-get-osinfo (`id` is "mswindows" on Windows). */
export async function osInfo(
  pve: PveClient,
  g: GuestRef,
): Promise<{ id?: string; name?: string; "pretty-name"?: string }> {
  const r = await pve.get<{ result?: Record<string, string> }>(
    pvePath`/${seg.guest(g)}/agent/get-osinfo`,
  );
  return r?.result ?? {};
}

// ---------------------------------------------------------------------------
// Files

/** A file's first bytes. */
export interface FileContent {
  bytes: Uint8Array;
  /** Bytes returned (at most the asked maximum). */
  size: number;
  /** The file is longer than what was returned. */
  truncated: boolean;
}

/**
 * `GET agent/file-read`: at most `maxBytes` of a file. On 9.x PVE reads only
 * that much and hands it over base64-encoded (`count`, `decode=0`); 8.x has
 * neither parameter, reads the whole file (up to 16 MiB) and sends it
 * decoded, so the cut is made here.
 */
export async function readFile(
  pve: PveClient,
  g: GuestRef,
  file: string,
  maxBytes: number,
  options: { by?: string } = {},
): Promise<FileContent> {
  const q = await quirksOf(pve);
  log.info("guest file read", { tool: options.by, vmid: g.vmid, path: file });
  const r = await pve.get<
    { content?: string; "bytes-read"?: number; truncated?: number | boolean }
  >(
    pvePath`/${seg.guest(g)}/agent/file-read`,
    q.fileReadWindow
      ? { file, count: Math.min(maxBytes, FILE_READ_MAX_BYTES), decode: false }
      : { file },
  );
  const content = r?.content ?? "";
  const all = q.fileReadWindow
    ? base64Decode(content) ?? fromBinary(content)
    : fromBinary(content);
  const more = r?.truncated === true || Number(r?.truncated ?? 0) === 1;
  const bytes = all.length > maxBytes ? all.subarray(0, maxBytes) : all;
  return {
    bytes,
    size: bytes.length,
    truncated: more || all.length > maxBytes,
  };
}

/**
 * `POST agent/file-write`: writes (overwrites) a file with exactly these
 * bytes, sent base64-encoded (`encode=0`). Callers check
 * FILE_WRITE_MAX_BYTES first.
 */
export async function writeFile(
  pve: PveClient,
  g: GuestRef,
  file: string,
  bytes: Uint8Array,
  options: { by?: string } = {},
): Promise<void> {
  const content = base64Encode(bytes);
  if (content.length > FILE_WRITE_MAX_CHARS) {
    throw new RangeError(
      `File content of ${bytes.length} bytes exceeds PVE's file-write limit of ${FILE_WRITE_MAX_BYTES} bytes`,
    );
  }
  log.info("guest file write", {
    tool: options.by,
    vmid: g.vmid,
    path: file,
    bytes: bytes.length,
  });
  await pve.post(pvePath`/${seg.guest(g)}/agent/file-write`, {
    file,
    content,
    encode: false,
  });
}

/**
 * Inside QEMU VMs through the guest agent: run commands, read and write
 * files, install software from fixed recipes. Safety properties:
 * - containers are refused before any agent call (the agent is QEMU-only);
 * - PVE's agent errors keep PVE's words and gain what to do;
 * - output and file reads are capped so one call cannot flood the context;
 * - install_software runs only the reviewed recipes below: no user text and
 *   no text from the guest reaches a shell;
 * - every exec and file write is logged at INFO with tool, vmid and a
 *   redacted command, never with file contents or stdin.
 */
import { z } from "zod";
import { logger } from "../log.ts";
import type { GuestRef, PveClient } from "../proxmox/client.ts";
import { PveError, ToolError } from "../proxmox/errors.ts";
import { defineTool, TimeoutS, type ToolContext, Vmid } from "./define.ts";

const log = logger("guest");

/** PVE's `content` limit for agent/file-write (base64 characters). */
export const FILE_WRITE_MAX_CHARS = 61440;
/** PVE's `input-data` limit for agent/exec. */
const STDIN_MAX_BYTES = 65536;

// ---------------------------------------------------------------------------
// Helpers shared by the tools

/** The VM behind a vmid; containers get an error that says what to use. */
async function qemuGuest(pve: PveClient, vmid: number): Promise<GuestRef> {
  const g = await pve.locate(vmid);
  if (g.type === "lxc") {
    throw new ToolError(
      `Guest ${vmid} is an LXC container; the QEMU guest agent exists only for VMs: run commands in it with 'pct exec ${vmid} -- <command>' on node ${g.node}, or over SSH`,
    );
  }
  return g;
}

const AGENT_HINTS: [RegExp, string][] = [
  [
    /^No QEMU guest agent configured/,
    "enable the agent option (qm set <vmid> --agent enabled=1), install qemu-guest-agent in the guest, then stop and start the VM",
  ],
  [/^VM \d+ is not running/, "start it first (proxmox_start_vm)"],
  [
    /^QEMU guest agent is not running/,
    "install and start qemu-guest-agent inside the guest (e.g. apt install qemu-guest-agent; systemctl enable --now qemu-guest-agent), or wait a moment after boot",
  ],
];

/** Runs an agent call; PVE's agent errors become ToolErrors with a hint. */
async function agent<T>(vmid: number, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof PveError) || e.status !== 500) throw e;
    const msg = e.pveMessage;
    const where = msg.includes(String(vmid)) ? "" : ` (VM ${vmid})`;
    for (const [re, hint] of AGENT_HINTS) {
      if (re.test(msg)) {
        throw new ToolError(
          `${msg}${where}: ${hint.replace("<vmid>", String(vmid))}`,
        );
      }
    }
    if (msg.startsWith("Agent error:")) throw new ToolError(`${msg}${where}`);
    throw e;
  }
}

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

function base64Encode(bytes: Uint8Array): string {
  return btoa(toBinary(bytes));
}

function base64Decode(text: string): Uint8Array | undefined {
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

/** Keeps head and tail of a long text; says how much was left out. */
export function capText(
  text: string,
  max: number,
): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  const head = Math.floor(max / 2);
  const tail = max - head;
  const omitted = text.length - head - tail;
  return {
    text: `${text.slice(0, head)}\n[… ${omitted} chars omitted …]\n${
      text.slice(text.length - tail)
    }`,
    truncated: true,
  };
}

const SECRET_WORD = "pass(?:word|wd)?|secret|token|api[-_]?key|auth";
const REDACTIONS: [RegExp, string][] = [
  // --password=x, --token x, -auth x
  [
    new RegExp(`(-{1,2}[\\w-]*(?:${SECRET_WORD})[\\w-]*)(=|\\s+)(\\S+)`, "gi"),
    "$1$2[redacted]",
  ],
  // PASSWORD=x, db_token=x
  [
    new RegExp(`\\b([\\w-]*(?:${SECRET_WORD})[\\w-]*)=(\\S+)`, "gi"),
    "$1=[redacted]",
  ],
  // https://user:pass@host
  [/(:\/\/[^/\s:@]+:)[^@\s/]+@/g, "$1[redacted]@"],
  // Authorization: Bearer x / PVEAPIToken=...
  [/(authorization:\s*\w+\s+)\S+/gi, "$1[redacted]"],
  // Any header naming a key, token or secret: -H 'X-Api-Key: x'
  [
    new RegExp(
      `\\b(?!authorization:)([\\w-]*(?:${SECRET_WORD}|key)[\\w-]*:\\s*)[^'"\\s]+`,
      "gi",
    ),
    "$1[redacted]",
  ],
  // mysql -psecret, sshpass -p secret (as one argument or inside sh -c)
  [/(^|\s)(-p)(?!\s*-)(\s*)([^\s'"]+)/g, "$1$2$3[redacted]"],
  // user:password fed to chpasswd
  [/(\b\w+:)[^\s:'"|]+(['"]?\s*\|\s*chpasswd)/g, "$1[redacted]$2"],
];

const SECRET_FLAG = new RegExp(`^-{1,2}[\\w-]*(?:${SECRET_WORD})[\\w-]*$`, "i");

/** A command line for the log: secrets masked, at most 300 chars. */
export function redactCommand(argv: string[]): string {
  const args = argv.map((a) =>
    REDACTIONS.reduce((text, [re, to]) => text.replace(re, to), a)
  );
  // `--password secret` as two arguments.
  for (let i = 0; i < args.length - 1; i++) {
    if (SECRET_FLAG.test(args[i]) || args[i] === "-p") {
      args[i + 1] = "[redacted]";
    }
  }
  const s = args.map((a) =>
    /[\s"'\\]/.test(a) || a === "" ? JSON.stringify(a) : a
  ).join(" ");
  return s.length > 300 ? s.slice(0, 300) + "…" : s;
}

interface ExecStatus {
  exited: number | boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: number | boolean;
  "err-truncated"?: number | boolean;
}

interface ExecOutcome {
  pid: number;
  exited: boolean;
  exitcode?: number;
  signal?: number;
  stdout: string;
  stderr: string;
  outTruncated: boolean;
  errTruncated: boolean;
  seconds: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const id = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(id);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * agent/exec, then exec-status until the process exits or the time is up.
 * Logs the redacted command (never stdin) at INFO.
 */
async function execInVm(
  ctx: ToolContext,
  g: GuestRef,
  argv: string[],
  options: {
    tool: string;
    stdin?: Uint8Array;
    timeoutS: number;
    /** Called between polls with the elapsed time in ms. */
    onPoll?: (elapsedMs: number) => Promise<void>;
  },
): Promise<ExecOutcome> {
  const started = performance.now();
  log.info("guest exec", {
    tool: options.tool,
    vmid: g.vmid,
    command: redactCommand(argv),
    stdin_bytes: options.stdin?.length,
  });
  const { pid } = await agent(
    g.vmid,
    () =>
      ctx.pve.post<{ pid: number }>(`${g.path}/agent/exec`, {
        command: argv,
        // One char per byte: PVE base64-encodes it byte for byte.
        "input-data": options.stdin ? toBinary(options.stdin) : undefined,
      }),
  );
  const deadline = started + options.timeoutS * 1000;
  let delay = 100;
  for (;;) {
    const st = await agent(
      g.vmid,
      () => ctx.pve.get<ExecStatus>(`${g.path}/agent/exec-status`, { pid }),
    );
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    if (st.exited === true || Number(st.exited) === 1) {
      log.info("guest exec ended", {
        tool: options.tool,
        vmid: g.vmid,
        pid,
        exitcode: st.exitcode,
        signal: st.signal,
        seconds,
      });
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
        seconds,
      };
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      return {
        pid,
        exited: false,
        stdout: "",
        stderr: "",
        outTruncated: false,
        errTruncated: false,
        seconds,
      };
    }
    await options.onPoll?.(Math.round(performance.now() - started));
    await sleep(Math.min(delay, left), ctx.signal);
    delay = Math.min(delay * 1.5, 2000);
  }
}

function stillRunning(vmid: number, o: ExecOutcome, what: string): ToolError {
  return new ToolError(
    `${what} is still running in VM ${vmid} after ${o.seconds} s (guest pid ${o.pid}); it keeps running in the guest: raise timeout_s, or start it in the background`,
    { pid: o.pid, exited: false },
  );
}

// ---------------------------------------------------------------------------
// proxmox_execute_command

const READ = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: true,
};

export const executeCommand = defineTool({
  name: "proxmox_execute_command",
  toolset: "guest",
  title: "Run a command in a VM",
  description:
    "Run a command in a VM: argv, or a string for sh -c (Windows: cmd /c).",
  input: {
    vmid: Vmid,
    command: z.union([
      z.string().min(1).max(16384),
      // No empty arguments: PVE's form decoding would not pass them intact.
      z.array(z.string().min(1).max(16384)).min(1).max(256),
    ]),
    stdin: z.string().max(STDIN_MAX_BYTES).optional(),
    timeout_s: TimeoutS(60),
    max_output: z.number().int().min(200).max(1_000_000).default(8000),
  },
  output: z.object({
    vmid: z.number(),
    exitcode: z.number().optional(),
    signal: z.number().optional(),
    stdout: z.string(),
    stderr: z.string(),
    stdout_truncated: z.boolean(),
    stderr_truncated: z.boolean(),
    seconds: z.number(),
  }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: true,
  },
  async run({ vmid, command, stdin, timeout_s, max_output }, ctx) {
    const stdinBytes = stdin === undefined ? undefined : encoder.encode(stdin);
    if (stdinBytes && stdinBytes.length > STDIN_MAX_BYTES) {
      throw new ToolError(
        `stdin is ${stdinBytes.length} bytes; the agent takes at most ${STDIN_MAX_BYTES}: send it in parts (e.g. 'cat >> file' per part)`,
      );
    }
    const g = await qemuGuest(ctx.pve, vmid);
    let argv: string[];
    if (Array.isArray(command)) argv = command;
    else {
      const info = await agent(
        vmid,
        () =>
          ctx.pve.get<{ result?: { id?: string } }>(
            `${g.path}/agent/get-osinfo`,
          ),
      );
      argv = info?.result?.id === "mswindows"
        ? ["cmd", "/c", command]
        : ["/bin/sh", "-c", command];
    }
    const o = await execInVm(ctx, g, argv, {
      tool: "proxmox_execute_command",
      stdin: stdinBytes,
      timeoutS: timeout_s,
    });
    if (!o.exited) throw stillRunning(vmid, o, "The command");
    const out = capText(o.stdout, max_output);
    const err = capText(o.stderr, max_output);
    return {
      vmid,
      exitcode: o.exitcode,
      signal: o.signal,
      stdout: out.text,
      stderr: err.text,
      stdout_truncated: out.truncated || o.outTruncated,
      stderr_truncated: err.truncated || o.errTruncated,
      seconds: o.seconds,
    };
  },
});

// ---------------------------------------------------------------------------
// proxmox_read_file_vm / proxmox_write_file_vm

const GuestPath = z.string().min(1).max(4096).refine((p) => !p.includes("\0"), {
  error: "Path contains a NUL character",
});

export const readFileVm = defineTool({
  name: "proxmox_read_file_vm",
  toolset: "guest",
  title: "Read a file in a VM",
  description: "Read a file in a VM: UTF-8 text, else base64.",
  input: {
    vmid: Vmid,
    path: GuestPath,
    max_bytes: z.number().int().min(1).max(16777216).default(32768),
  },
  output: z.object({
    vmid: z.number(),
    path: z.string(),
    encoding: z.enum(["utf-8", "base64"]),
    content: z.string(),
    size: z.number(),
    truncated: z.boolean(),
  }),
  annotations: READ,
  async run({ vmid, path, max_bytes }, ctx) {
    const g = await qemuGuest(ctx.pve, vmid);
    log.info("guest file read", { tool: "proxmox_read_file_vm", vmid, path });
    const r = await agent(vmid, () =>
      ctx.pve.get<
        { content: string; "bytes-read"?: number; truncated?: number }
      >(`${g.path}/agent/file-read`, {
        file: path,
        count: max_bytes,
        decode: false,
      }));
    const bytes = base64Decode(r.content ?? "") ?? fromBinary(r.content ?? "");
    let text: string | undefined;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      if (text.includes("\0")) text = undefined;
    } catch {
      text = undefined;
    }
    return {
      vmid,
      path,
      encoding: text === undefined ? "base64" as const : "utf-8" as const,
      content: text ?? base64Encode(bytes),
      size: r["bytes-read"] ?? bytes.length,
      truncated: Number(r.truncated ?? 0) === 1,
    };
  },
});

export const writeFileVm = defineTool({
  name: "proxmox_write_file_vm",
  toolset: "guest",
  title: "Write a file in a VM",
  description: "Write (overwrite) a file in a VM; max 46080 bytes.",
  input: {
    vmid: Vmid,
    path: GuestPath,
    content: z.string(),
    base64: z.boolean().optional(),
  },
  output: z.object({ vmid: z.number(), path: z.string(), bytes: z.number() }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: true,
    openWorldHint: true,
  },
  async run({ vmid, path, content, base64 }, ctx) {
    const bytes = base64 ? base64Decode(content) : encoder.encode(content);
    if (!bytes) {
      throw new ToolError(
        "content is not valid base64: send base64=false for text",
      );
    }
    // Sent already base64-encoded (encode=0): exact bytes, any encoding.
    const encoded = base64Encode(bytes);
    if (encoded.length > FILE_WRITE_MAX_CHARS) {
      throw new ToolError(
        `Content is ${bytes.length} bytes; PVE's file-write takes at most ${FILE_WRITE_MAX_CHARS} base64 characters (${
          FILE_WRITE_MAX_CHARS / 4 * 3
        } bytes): write the first part with this tool, then append the rest with proxmox_execute_command (stdin, 'cat >> <path>')`,
      );
    }
    const g = await qemuGuest(ctx.pve, vmid);
    log.info("guest file write", {
      tool: "proxmox_write_file_vm",
      vmid,
      path,
      bytes: bytes.length,
    });
    await agent(vmid, () =>
      ctx.pve.post(`${g.path}/agent/file-write`, {
        file: path,
        content: encoded,
        encode: false,
      }));
    return { vmid, path, bytes: bytes.length };
  },
});

// ---------------------------------------------------------------------------
// proxmox_install_software: fixed, reviewed recipes

export type Software = "docker" | "nginx" | "update";

interface Recipe {
  manager: "apt" | "dnf" | "yum" | "apk";
  script: string;
}

/** Parses os-release text (`KEY=value`, quotes removed). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}

const APT = "exec 2>&1; export DEBIAN_FRONTEND=noninteractive; apt-get update";
const APT_KEEP_CONF =
  "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";
const DOCKER_REPOS = {
  centos: "https://download.docker.com/linux/centos/docker-ce.repo",
  rhel: "https://download.docker.com/linux/rhel/docker-ce.repo",
  fedora: "https://download.docker.com/linux/fedora/docker-ce.repo",
} as const;

/**
 * The recipe for a distribution, chosen by comparing os-release values with
 * constants: every script below is a fixed string.
 */
export function recipeFor(
  osRelease: Record<string, string>,
  software: Software,
): Recipe | undefined {
  const id = (osRelease.ID ?? "").toLowerCase();
  const family = [id, ...(osRelease.ID_LIKE ?? "").toLowerCase().split(/\s+/)];
  if (family.includes("debian") || family.includes("ubuntu")) {
    const script = {
      update: `${APT} && apt-get -y ${APT_KEEP_CONF} upgrade`,
      nginx:
        `${APT} && apt-get install -y nginx && systemctl enable --now nginx`,
      docker:
        `${APT} && apt-get install -y docker.io && systemctl enable --now docker`,
    }[software];
    return { manager: "apt", script };
  }
  if (family.includes("alpine")) {
    const script = {
      update: "exec 2>&1; apk update && apk upgrade",
      nginx:
        "exec 2>&1; apk add nginx && rc-update add nginx default && rc-service nginx start",
      docker:
        "exec 2>&1; apk add docker && rc-update add docker default && rc-service docker start",
    }[software];
    return { manager: "apk", script };
  }
  if (["rhel", "fedora", "centos"].some((f) => family.includes(f))) {
    const major = parseInt(osRelease.VERSION_ID ?? "", 10);
    const pm = id !== "fedora" && major < 8 ? "yum" : "dnf";
    const repo = id === "fedora"
      ? DOCKER_REPOS.fedora
      : id === "rhel"
      ? DOCKER_REPOS.rhel
      : DOCKER_REPOS.centos;
    const script = {
      update: `exec 2>&1; ${pm} -y upgrade`,
      nginx:
        `exec 2>&1; ${pm} -y install nginx && systemctl enable --now nginx`,
      docker:
        `exec 2>&1; curl -fsSL ${repo} -o /etc/yum.repos.d/docker-ce.repo && ${pm} -y install docker-ce docker-ce-cli containerd.io && systemctl enable --now docker`,
    }[software];
    return { manager: pm, script };
  }
  return undefined;
}

/** Guest text for a message: printable, short. */
function shown(text: string | undefined): string {
  return (text ?? "").replace(/[^\x20-\x7e]/g, "?").slice(0, 80);
}

function tail(text: string, lines: number, chars: number): string {
  const t = text.trimEnd().split("\n").slice(-lines).join("\n");
  return t.length > chars ? "…" + t.slice(t.length - chars) : t;
}

export const installSoftware = defineTool({
  name: "proxmox_install_software",
  toolset: "guest",
  title: "Install software in a VM",
  description: "Install docker or nginx, or update packages, in a VM.",
  input: {
    vmid: Vmid,
    software: z.enum(["docker", "nginx", "update"]),
    timeout_s: TimeoutS(900),
  },
  output: z.object({
    vmid: z.number(),
    software: z.string(),
    distro: z.string(),
    package_manager: z.string(),
    exitcode: z.number(),
    seconds: z.number(),
    output_tail: z.string(),
  }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: true,
  },
  async run({ vmid, software, timeout_s }, ctx) {
    const g = await qemuGuest(ctx.pve, vmid);
    let osText: string;
    try {
      const r = await agent(
        vmid,
        () =>
          ctx.pve.get<{ content: string }>(`${g.path}/agent/file-read`, {
            file: "/etc/os-release",
            count: 65536,
            decode: false,
          }),
      );
      const bytes = base64Decode(r.content ?? "") ?? new Uint8Array();
      osText = new TextDecoder().decode(bytes);
    } catch (e) {
      if (e instanceof ToolError && e.message.startsWith("Agent error:")) {
        throw new ToolError(
          `Cannot read /etc/os-release in VM ${vmid} (${e.message}): proxmox_install_software supports Linux guests; use proxmox_execute_command`,
        );
      }
      throw e;
    }
    const osr = parseOsRelease(osText);
    const distro = shown(osr.PRETTY_NAME ?? osr.NAME ?? osr.ID ?? "unknown");
    const recipe = recipeFor(osr, software);
    if (!recipe) {
      throw new ToolError(
        `Unsupported distribution in VM ${vmid}: ${distro} (ID=${
          shown(osr.ID)
        }); proxmox_install_software knows Debian/Ubuntu (apt), the RHEL family (dnf/yum) and Alpine (apk): use proxmox_execute_command with the guest's package manager`,
      );
    }
    const what = software === "update"
      ? "Updating packages"
      : `Installing ${software}`;
    await ctx.progress(
      `${what} in VM ${vmid} (${distro}) with ${recipe.manager}`,
      0,
    );
    const o = await execInVm(ctx, g, ["/bin/sh", "-c", recipe.script], {
      tool: "proxmox_install_software",
      timeoutS: timeout_s,
      // The progress value is the elapsed ms: it always grows.
      onPoll: (ms) =>
        ctx.progress(
          `${what} in VM ${vmid}: running ${Math.round(ms / 1000)} s`,
          ms,
        ),
    });
    if (!o.exited) throw stillRunning(vmid, o, `${what} (${recipe.manager})`);
    const output = tail(o.stdout + o.stderr, 30, 3000);
    if (o.exitcode !== 0) {
      throw new ToolError(
        `${what} in VM ${vmid} failed with exit code ${
          o.exitcode ?? `signal ${o.signal}`
        }: ${output.split("\n").slice(-1)[0]}`,
        { exitcode: o.exitcode, output_tail: output },
      );
    }
    return {
      vmid,
      software,
      distro,
      package_manager: recipe.manager,
      exitcode: 0,
      seconds: o.seconds,
      output_tail: output,
    };
  },
});

export const GUEST_TOOLS = [
  executeCommand,
  readFileVm,
  writeFileVm,
  installSoftware,
];

/**
 * Inside QEMU VMs through the guest agent: run commands, read and write
 * files, install software from fixed recipes. Safety properties:
 * - containers are refused before any agent call (the agent is QEMU-only);
 * - PVE's agent errors keep PVE's words and gain what to do (by error kind);
 * - output and file reads are capped so one call cannot flood the context;
 * - install_software runs only the reviewed recipes below: no user text and
 *   no text from the guest reaches a shell;
 * - waits stop at timeout_s (45 s by default) with `running` and the guest
 *   pid to follow; the process goes on in the guest;
 * - commands are logged at INFO by program and argument count only (the
 *   masked command line at DEBUG), never with file contents or stdin.
 */
import { z } from "zod";
import {
  agentPrivilege,
  base64Decode,
  base64Encode,
  type ExecOutcome,
  FILE_WRITE_MAX_BYTES,
  FILE_WRITE_MAX_CHARS,
  type FileContent,
  osInfo,
  readFile,
  runCommand,
  STDIN_MAX_BYTES,
  writeFile,
} from "../proxmox/api/agent.ts";
import { type GuestRef, locate } from "../proxmox/api/guests.ts";
import {
  AGENT,
  defineTool,
  DESTRUCTIVE,
  IDEMPOTENT_DESTRUCTIVE,
  PveError,
  type PveErrorKind,
  READ_ONLY,
  TimeoutS,
  type ToolContext,
  ToolError,
  Toolset,
  vm,
  Vmid,
} from "./define.ts";

// ---------------------------------------------------------------------------
// Helpers shared by the tools

/** The VM behind a vmid; containers get an error that says what to use. */
async function qemuGuest(ctx: ToolContext, vmid: number): Promise<GuestRef> {
  const g = await locate(ctx.pve, vmid);
  if (g.type === "lxc") {
    throw new ToolError(
      `Guest ${vmid} is an LXC container; the QEMU guest agent exists only for VMs: run commands in it with 'pct exec ${vmid} -- <command>' on node ${g.node}, or over SSH`,
    );
  }
  return g;
}

/** What to do about an agent error of each kind (PVE's words come first). */
const AGENT_ADVICE: Partial<Record<PveErrorKind, (vmid: number) => string>> = {
  agentNotConfigured: (vmid) =>
    `enable the agent option (qm set ${vmid} --agent enabled=1), install qemu-guest-agent in the guest, then stop and start the VM`,
  // PVE says "VM 100 is not running"; the table may call it either.
  notRunning: () => "start it first (proxmox_start_vm)",
  agentNotRunning: () =>
    "install and start qemu-guest-agent inside the guest (e.g. apt install qemu-guest-agent; systemctl enable --now qemu-guest-agent), or wait a moment after boot",
};

/**
 * Runs agent calls; PVE's agent errors become ToolErrors with what to do.
 * `privilege` names what the call needs, for a 403.
 */
async function agent<T>(
  ctx: ToolContext,
  vmid: number,
  privilege: "exec" | "file",
  call: () => Promise<T>,
  /** Said after an `Agent error:` (what else may explain it). */
  agentHint?: string,
): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof PveError)) throw e;
    const msg = e.pveMessage;
    const where = msg.includes(String(vmid)) ? "" : ` (VM ${vmid})`;
    if (e.status === 500) {
      const advice = AGENT_ADVICE[e.kind];
      if (advice) throw new ToolError(`${msg}${where}: ${advice(vmid)}`);
      if (e.kind === "agent") {
        throw new ToolError(
          `${msg}${where}${agentHint ? `: ${agentHint}` : ""}`,
        );
      }
    }
    if (e.kind === "uncertain") {
      // Agent calls start no task: there is nothing in PVE to look at.
      throw new ToolError(
        `${e.pveMessage} (VM ${vmid}): ${
          privilege === "exec"
            ? "the command may have started in the guest: check there (for example with ps) before running it again"
            : "the file may have been written: read it back with proxmox_read_file_vm before writing it again"
        }`,
      );
    }
    if (e.kind === "permission") {
      throw new ToolError(
        `${e.message}; the guest agent needs ${await agentPrivilege(
          ctx.pve,
          privilege,
        )} on /vms/${vmid}`,
      );
    }
    throw e;
  }
}

const encoder = new TextEncoder();

/** Keeps head and tail of a long text; says how much was left out. */
function capText(
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

/** What a caller does about a process still running at timeout_s. */
function followNote(
  tool: string,
  vmid: number,
  o: ExecOutcome,
  what: string,
): string {
  return `${what} is still running in VM ${vmid} after ${o.seconds} s (guest pid ${o.pid}); it keeps running in the guest: call ${tool} again with the same arguments plus pid: ${o.pid} to wait for it and collect its output (it is not started again), optionally with a longer timeout_s`;
}

const FORGOTTEN_PID =
  "the agent forgets a process once its end has been collected, and all of them when the guest restarts";

/** A guest pid from an earlier call that returned `running`. */
const FollowPid = z.number().int().min(1).max(2 ** 31 - 1).optional().meta({
  advertise: false,
});

/**
 * Runs argv in the VM through the agent (or follows `pid` from an earlier
 * call), with progress while it waits: "<doing> in VM 100: running 3 s".
 */
function runInVm(
  ctx: ToolContext,
  g: GuestRef,
  o: {
    argv: string[];
    stdin?: Uint8Array;
    timeoutS: number;
    pid?: number;
    by: string;
    doing: string;
  },
): Promise<ExecOutcome> {
  return agent(
    ctx,
    g.vmid,
    "exec",
    () =>
      runCommand(ctx.pve, g, o.argv, {
        stdin: o.stdin,
        timeoutS: o.timeoutS,
        signal: ctx.signal,
        pid: o.pid,
        by: o.by,
        // The progress value is the elapsed ms: it always grows.
        onPoll: (ms) =>
          ctx.progress(
            `${o.doing} in VM ${g.vmid}: running ${Math.round(ms / 1000)} s`,
            ms,
          ),
      }),
    o.pid === undefined ? undefined : FORGOTTEN_PID,
  );
}

/**
 * Reads a file in the VM through the agent, at most `maxBytes` of it.
 * `unreadable` replaces the error when the agent itself fails to read it.
 */
function readInVm(
  ctx: ToolContext,
  g: GuestRef,
  o: {
    path: string;
    maxBytes: number;
    by: string;
    unreadable?: (e: PveError) => Error;
  },
): Promise<FileContent> {
  return agent(
    ctx,
    g.vmid,
    "file",
    () =>
      readFile(ctx.pve, g, o.path, o.maxBytes, { by: o.by }).catch((e) => {
        if (o.unreadable && e instanceof PveError && e.kind === "agent") {
          throw o.unreadable(e);
        }
        throw e;
      }),
  );
}

// ---------------------------------------------------------------------------
// proxmox_execute_command

export const executeCommand = defineTool({
  name: "proxmox_execute_command",
  toolset: Toolset.guest,
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
    timeout_s: TimeoutS(45),
    max_output: z.number().int().min(200).max(1_000_000).default(8000),
    pid: FollowPid,
  },
  output: z.object({
    vmid: z.number(),
    status: z.enum(["exited", "running"]),
    pid: z.number(),
    exitcode: z.number().optional(),
    signal: z.number().optional(),
    stdout: z.string(),
    stderr: z.string(),
    stdout_truncated: z.boolean(),
    stderr_truncated: z.boolean(),
    seconds: z.number(),
    note: z.string().optional(),
  }),
  annotations: DESTRUCTIVE,
  privileges: [AGENT.exec, vm("VM.Audit")],
  async run({ vmid, command, stdin, timeout_s, max_output, pid }, ctx) {
    const stdinBytes = stdin === undefined ? undefined : encoder.encode(stdin);
    if (stdinBytes && stdinBytes.length > STDIN_MAX_BYTES) {
      throw new ToolError(
        `stdin is ${stdinBytes.length} bytes; the agent takes at most ${STDIN_MAX_BYTES}: send it in parts (e.g. 'cat >> file' per part)`,
      );
    }
    const g = await qemuGuest(ctx, vmid);
    let argv: string[] = [];
    if (pid === undefined) {
      if (Array.isArray(command)) argv = command;
      else {
        const info = await agent(ctx, vmid, "exec", () => osInfo(ctx.pve, g));
        argv = info.id === "mswindows"
          ? ["cmd", "/c", command]
          : ["/bin/sh", "-c", command];
      }
    }
    const o = await runInVm(ctx, g, {
      argv,
      stdin: stdinBytes,
      timeoutS: timeout_s,
      pid,
      by: "proxmox_execute_command",
      doing: "Command",
    });
    const out = capText(o.stdout, max_output);
    const err = capText(o.stderr, max_output);
    return {
      vmid,
      status: o.exited ? "exited" as const : "running" as const,
      pid: o.pid,
      exitcode: o.exitcode,
      signal: o.signal,
      stdout: out.text,
      stderr: err.text,
      stdout_truncated: out.truncated || o.outTruncated,
      stderr_truncated: err.truncated || o.errTruncated,
      seconds: o.seconds,
      note: o.exited
        ? undefined
        : followNote("proxmox_execute_command", vmid, o, "The command"),
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
  toolset: Toolset.guest,
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
  annotations: READ_ONLY,
  privileges: [AGENT.read, vm("VM.Audit")],
  async run({ vmid, path, max_bytes }, ctx) {
    const g = await qemuGuest(ctx, vmid);
    const r = await readInVm(ctx, g, {
      path,
      maxBytes: max_bytes,
      by: "proxmox_read_file_vm",
    });
    let text: string | undefined;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(r.bytes);
      if (text.includes("\0")) text = undefined;
    } catch {
      text = undefined;
    }
    return {
      vmid,
      path,
      encoding: text === undefined ? "base64" as const : "utf-8" as const,
      content: text ?? base64Encode(r.bytes),
      size: r.size,
      truncated: r.truncated,
    };
  },
});

export const writeFileVm = defineTool({
  name: "proxmox_write_file_vm",
  toolset: Toolset.guest,
  title: "Write a file in a VM",
  description: "Write (overwrite) a file in a VM; max 46080 bytes.",
  input: {
    vmid: Vmid,
    path: GuestPath,
    content: z.string(),
    base64: z.boolean().optional(),
  },
  output: z.object({ vmid: z.number(), path: z.string(), bytes: z.number() }),
  annotations: IDEMPOTENT_DESTRUCTIVE,
  privileges: [AGENT.write, vm("VM.Audit")],
  async run({ vmid, path, content, base64 }, ctx) {
    const bytes = base64 ? base64Decode(content) : encoder.encode(content);
    if (!bytes) {
      throw new ToolError(
        "content is not valid base64: send base64=false for text",
      );
    }
    if (bytes.length > FILE_WRITE_MAX_BYTES) {
      throw new ToolError(
        `Content is ${bytes.length} bytes; PVE's file-write takes at most ${FILE_WRITE_MAX_CHARS} base64 characters (${FILE_WRITE_MAX_BYTES} bytes): write the first part with this tool, then append the rest with proxmox_execute_command (stdin, 'cat >> <path>')`,
      );
    }
    const g = await qemuGuest(ctx, vmid);
    await agent(
      ctx,
      vmid,
      "file",
      () => writeFile(ctx.pve, g, path, bytes, { by: "proxmox_write_file_vm" }),
    );
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
  toolset: Toolset.guest,
  title: "Install software in a VM",
  description: "Install docker or nginx, or update packages, in a VM.",
  input: {
    vmid: Vmid,
    software: z.enum(["docker", "nginx", "update"]),
    timeout_s: TimeoutS(45),
    pid: FollowPid,
  },
  output: z.object({
    vmid: z.number(),
    software: z.string(),
    distro: z.string(),
    package_manager: z.string(),
    status: z.enum(["ok", "running"]),
    pid: z.number(),
    exitcode: z.number().optional(),
    seconds: z.number(),
    output_tail: z.string(),
    note: z.string().optional(),
  }),
  annotations: DESTRUCTIVE,
  privileges: [AGENT.exec, vm("VM.Audit")],
  async run({ vmid, software, timeout_s, pid }, ctx) {
    const g = await qemuGuest(ctx, vmid);
    const r = await readInVm(ctx, g, {
      path: "/etc/os-release",
      maxBytes: 65536,
      by: "proxmox_install_software",
      unreadable: (e) =>
        new ToolError(
          `Cannot read /etc/os-release in VM ${vmid} (${e.pveMessage}): proxmox_install_software supports Linux guests; use proxmox_execute_command`,
        ),
    });
    const osText = new TextDecoder().decode(r.bytes);
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
    const o = await runInVm(ctx, g, {
      argv: ["/bin/sh", "-c", recipe.script],
      timeoutS: timeout_s,
      pid,
      by: "proxmox_install_software",
      doing: what,
    });
    const base = {
      vmid,
      software,
      distro,
      package_manager: recipe.manager,
      pid: o.pid,
      seconds: o.seconds,
    };
    if (!o.exited) {
      return {
        ...base,
        status: "running" as const,
        output_tail: "",
        note: followNote(
          "proxmox_install_software",
          vmid,
          o,
          `${what} (${recipe.manager})`,
        ),
      };
    }
    const output = tail(o.stdout + o.stderr, 30, 3000);
    if (o.exitcode !== 0) {
      throw new ToolError(
        `${what} in VM ${vmid} failed with exit code ${
          o.exitcode ?? `signal ${o.signal}`
        }: ${output.split("\n").slice(-1)[0]}`,
        { exitcode: o.exitcode, output_tail: output },
      );
    }
    return { ...base, status: "ok" as const, exitcode: 0, output_tail: output };
  },
});

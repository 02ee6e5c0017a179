/**
 * QEMU guest agent endpoints (SEMANTICS.md §4.11) over each VM's scripted
 * guest (sim/guest_shell.ts): the precondition order of
 * `assert_agent_available`, `Agent error: <desc>` for failures inside the
 * guest, and PVE's return shapes (exec-status out-data already decoded and
 * handed over byte for byte, file-read `bytes-read`, `truncated`).
 */
import {
  binToBytes,
  bytesToBin,
  distroOf,
  execInGuest,
  SpawnError,
} from "../guest_shell.ts";
import { int, need, type Route, type SimRequest, str } from "../router.ts";
import {
  type Guest,
  type GuestOs,
  parsePropString,
  SimError,
} from "../state.ts";
import { isPve9 } from "../versions.ts";

/** QGA keeps at most this much of each stream (GUEST_EXEC_MAX_OUTPUT). */
const MAX_CAPTURE = 16 * 1024 * 1024;
const MAX_READ_SIZE = 16 * 1024 * 1024;
/** Task steps a booting guest needs before its agent answers. */
const AGENT_BOOT_STEPS = 3;

/** The guest when the agent can be used, else PVE's error in PVE's order. */
function agentGuest(req: SimRequest): { g: Guest; os: GuestOs } {
  const vmid = int(req, "vmid")!;
  const g = req.cluster.guest(str(req, "node")!, "qemu", vmid);
  if (g.config.agent === undefined) {
    throw new SimError(500, "No QEMU guest agent configured");
  }
  if (g.status !== "running") {
    throw new SimError(500, `VM ${vmid} is not running`);
  }
  const enabled = parsePropString(String(g.config.agent), "enabled").enabled;
  const os = g.guestOs;
  // A freshly started guest needs a moment before its agent answers.
  const booted = Date.now() - (g.startedAt ?? 0) >=
    AGENT_BOOT_STEPS * req.cluster.taskMs;
  if (
    !os || !os.agentRunning || enabled === "0" || !booted ||
    g.qmpstatus === "paused"
  ) {
    throw new SimError(500, "QEMU guest agent is not running");
  }
  return { g, os };
}

const agentError = (desc: string) => new SimError(500, `Agent error: ${desc}`);

/** Perl's encode_base64 on a decoded (character) string with wide chars. */
function perlBytes(text: string, where: string): string {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) {
      throw new SimError(
        500,
        `Wide character in subroutine entry at ${where}.`,
      );
    }
  }
  return text;
}

function isDir(os: GuestOs, path: string): boolean {
  const p = path.replace(/\/+$/, "") + "/";
  if (p === "/") return true;
  for (const k of os.files.keys()) if (k.startsWith(p)) return true;
  return ["/tmp/", "/root/", "/home/", "/var/", "/opt/", "/srv/", "/usr/"]
    .includes(p);
}

function parentExists(os: GuestOs, path: string): boolean {
  const i = path.lastIndexOf("/");
  return i <= 0 || isDir(os, path.slice(0, i));
}

function decodeB64(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) {
    throw agentError("Base64 decoding failed");
  }
  return Uint8Array.from(atob(clean), (c) => c.charCodeAt(0));
}

const isWindows = (g: Guest) => /^w/.test(String(g.config.ostype ?? ""));

function osInfo(g: Guest, os: GuestOs): Record<string, string> {
  if (isWindows(g)) {
    return {
      id: "mswindows",
      name: "Microsoft Windows",
      "pretty-name": "Windows Server 2022 Standard",
      "version-id": "2022",
      version: "Microsoft Windows Server 2022",
      "kernel-release": "20348",
      "kernel-version": "10.0",
      machine: "x86_64",
      variant: "server",
      "variant-id": "server",
    };
  }
  const d = distroOf(os);
  return {
    id: d.id,
    name: d.name,
    "pretty-name": d.prettyName,
    "version-id": d.versionId,
    "kernel-release": d.kernel,
    "kernel-version": d.kernelVersion,
    machine: "x86_64",
  };
}

const BASE = "/nodes/{node}/qemu/{vmid}/agent";

export const AGENT_ROUTES: Route[] = [
  {
    method: "POST",
    path: `${BASE}/ping`,
    handler: (req) => {
      agentGuest(req);
      return { result: {} };
    },
  },
  {
    method: "GET",
    path: `${BASE}/get-osinfo`,
    handler: (req) => {
      const { g, os } = agentGuest(req);
      return { result: osInfo(g, os) };
    },
  },
  {
    method: "GET",
    path: `${BASE}/network-get-interfaces`,
    handler: (req) => ({
      result: structuredClone(agentGuest(req).os.interfaces),
    }),
  },
  {
    method: "POST",
    path: `${BASE}/exec`,
    handler: (req) => {
      const raw = req.params.command;
      const command = raw === undefined
        ? []
        : Array.isArray(raw)
        ? raw.map(String)
        : [String(raw)];
      req.cluster.guest(str(req, "node")!, "qemu", int(req, "vmid")!);
      const input = str(req, "input-data");
      // qemu_exec: encode_base64 of the input before the agent is asked.
      const stdin = input === undefined
        ? ""
        : perlBytes(input, "/usr/share/perl5/PVE/QemuServer/Agent.pm line 74");
      if (!command.length && input === undefined) {
        throw new SimError(500, "command or input-data (or both) required");
      }
      const { g, os } = agentGuest(req);
      if (!command.length) {
        throw agentError("Invalid parameter 'path'");
      }
      let r;
      try {
        r = execInGuest(os, command, stdin, {
          stepMs: req.cluster.taskMs,
          windows: isWindows(g),
        });
      } catch (e) {
        if (e instanceof SpawnError) {
          throw agentError(
            `Guest agent command failed, error was '${e.message}'`,
          );
        }
        throw e;
      }
      const pid = os.nextPid++;
      os.processes.set(pid, {
        pid,
        endsAt: Date.now() + r.ms,
        exitcode: r.exitcode,
        out: r.stdout,
        err: r.stderr,
      });
      return { pid };
    },
  },
  {
    method: "GET",
    path: `${BASE}/exec-status`,
    handler: (req) => {
      const { os } = agentGuest(req);
      const pid = int(req, "pid")!;
      const p = os.processes.get(pid);
      if (!p) throw agentError("Invalid parameter 'pid'");
      if (Date.now() < p.endsAt) return { exited: 0 };
      // QGA forgets a process once its end has been reported.
      os.processes.delete(pid);
      const res: Record<string, unknown> = { exited: 1 };
      if (p.signal !== undefined) res.signal = p.signal;
      else res.exitcode = p.exitcode;
      if (p.out.length) res["out-data"] = p.out.slice(0, MAX_CAPTURE);
      if (p.err.length) res["err-data"] = p.err.slice(0, MAX_CAPTURE);
      if (p.out.length > MAX_CAPTURE) res["out-truncated"] = 1;
      if (p.err.length > MAX_CAPTURE) res["err-truncated"] = 1;
      return res;
    },
  },
  {
    method: "GET",
    path: `${BASE}/file-read`,
    handler: (req) => {
      const { os } = agentGuest(req);
      const file = need(req, "file");
      const offset = int(req, "offset") ?? 0;
      const count = Math.min(int(req, "count") ?? MAX_READ_SIZE, MAX_READ_SIZE);
      const decode = str(req, "decode") !== "0";
      const data = os.files.get(file);
      if (!data) {
        if (isDir(os, file)) {
          throw agentError("failed to read file: Is a directory");
        }
        throw agentError(
          `failed to open file '${file}' (mode: 'r'): No such file or directory`,
        );
      }
      if (!isPve9(req.cluster.pveVersion)) {
        // 8.x: the whole file up to 16 MiB, decoded, and no `bytes-read`.
        const res: Record<string, unknown> = {
          content: bytesToBin(data.subarray(0, MAX_READ_SIZE)),
        };
        if (data.length > MAX_READ_SIZE) res.truncated = 1;
        return res;
      }
      const chunk = data.subarray(offset, offset + count);
      const res: Record<string, unknown> = {
        content: decode ? bytesToBin(chunk) : btoa(bytesToBin(chunk)),
        "bytes-read": chunk.length,
      };
      if (offset + count < data.length) res.truncated = 1;
      return res;
    },
  },
  {
    method: "POST",
    path: `${BASE}/file-write`,
    handler: (req) => {
      const file = need(req, "file");
      const content = need(req, "content");
      const encode = str(req, "encode") !== "0";
      const bytes = encode
        ? binToBytes(
          perlBytes(
            content,
            "/usr/share/perl5/PVE/API2/Qemu/Agent.pm line 589",
          ),
        )
        : undefined;
      const { os } = agentGuest(req);
      if (!parentExists(os, file) || isDir(os, file)) {
        throw agentError(
          `failed to open file '${file}' (mode: 'wb'): ${
            isDir(os, file) ? "Is a directory" : "No such file or directory"
          }`,
        );
      }
      os.files.set(file, bytes ?? decodeB64(content));
      return null;
    },
  },
];

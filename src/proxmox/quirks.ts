/**
 * Behaviour per Proxmox VE release, in one table. `/version` is read once
 * per client, lazily, by the first call that needs a quirk; API modules ask
 * `quirksOf(pve)` and never compare version strings themselves. Quirks change
 * what is sent to PVE and how its answers are read, never the tools' schemas.
 */
import type { PveClient } from "./client.ts";
import { logger } from "../log.ts";

const log = logger("quirks");

/** What differs between the PVE releases this server supports. */
export interface Quirks {
  /** The release the quirks are for: "8.4", "9.1"; "unknown" when unread. */
  release: string;
  /**
   * `agent/file-read` takes `offset`, `count` and `decode` (9.x). Without
   * them (8.x) PVE reads the whole file, up to 16 MiB, and sends it decoded
   * (one char per byte).
   */
  fileReadWindow: boolean;
  /** The privilege `agent/exec` needs (9.x split VM.Monitor up). */
  agentExecPrivilege: string;
  /** The privilege `agent/file-read` and `agent/file-write` need. */
  agentFilePrivilege: string;
}

type Rules = Omit<Quirks, "release">;

/**
 * From the newest release down: the first row whose `from` is at or below
 * the running release applies. Releases older than the last row get the last
 * row (and a warning in the log).
 */
export const RELEASES: readonly { from: [number, number]; quirks: Rules }[] = [
  {
    from: [9, 0],
    quirks: {
      fileReadWindow: true,
      agentExecPrivilege: "VM.GuestAgent.Unrestricted",
      agentFilePrivilege:
        "VM.GuestAgent.FileRead / VM.GuestAgent.FileWrite (or VM.GuestAgent.Unrestricted)",
    },
  },
  {
    from: [8, 0],
    quirks: {
      fileReadWindow: false,
      agentExecPrivilege: "VM.Monitor",
      agentFilePrivilege: "VM.Monitor",
    },
  },
];

/**
 * What works on every supported release, for when `/version` cannot be read:
 * sending 9.x-only parameters to 8.x would be refused, while the 8.x way is
 * accepted by 9.x too (only less efficient).
 */
const SAFE: Quirks = { release: "unknown", ...RELEASES.at(-1)!.quirks };

/** The quirks of a release given as PVE's `release` ("8.4") or `version`. */
export function quirksFor(release: string): Quirks {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return { ...SAFE };
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const row = RELEASES.find(({ from: [a, b] }) =>
    major > a || (major === a && minor >= b)
  );
  if (!row) {
    log.warning(
      `Proxmox VE ${release} is older than the oldest supported release (8.0); requests may fail`,
    );
  }
  return { release: `${major}.${minor}`, ...(row ?? RELEASES.at(-1)!).quirks };
}

const cache = new WeakMap<PveClient, Promise<Quirks>>();

/**
 * The quirks of the cluster behind `pve`: `/version` is read once per client
 * by the first caller. A failed read is not cached (the next call tries
 * again) and yields the quirks that work everywhere.
 */
export function quirksOf(pve: PveClient): Promise<Quirks> {
  let p = cache.get(pve);
  if (!p) {
    // Shared by every caller: no one caller's cancel signal (the client's
    // timeout applies), as for the login.
    p = pve.request<{ release?: string; version?: string }>(
      "GET",
      "/version",
      undefined,
      new AbortController().signal,
    ).then(
      (v) => {
        const q = quirksFor(String(v?.release ?? v?.version ?? ""));
        log.debug("Proxmox VE release", { release: q.release });
        return q;
      },
    );
    cache.set(pve, p);
    p.catch(() => {
      if (cache.get(pve) === p) cache.delete(pve);
    });
  }
  return p.catch((e) => {
    log.warning(
      `Cannot read the Proxmox VE version (${
        (e as Error)?.message ?? e
      }); using what works on every supported release`,
    );
    return { ...SAFE };
  });
}

/**
 * The human confirms (MCP elicitation). Before a destructive tool acts on a
 * guest, the client is asked a form question that names the guest and what
 * the action would destroy; the answer is bound to the guest's config digest
 * as it was shown, so a guest that changed in between is refused. An answer
 * is acted on once: its question's id is spent before the action runs, and
 * the same answer again is refused (per process: see spend() in state.ts).
 *
 * One mechanism serves every transport: the SDK's input-required results.
 * A 2026-07-28 client answers them by retrying the call with its responses;
 * on 2025-era sessions (stdio, HTTP sessions) the SDK asks the client itself
 * with `elicitation/create` and re-enters the handler.
 */
import type {
  InputRequiredResult,
  ServerContext,
} from "@modelcontextprotocol/server";
import { inputRequired, inputResponse } from "../sdk.ts";
import { redact } from "../log.ts";
import type { PveClient } from "../proxmox/client.ts";
import { readBackups } from "../proxmox/api/backups.ts";
import {
  type ClusterGuest,
  getConfig,
  type GuestRef,
  listGuests,
  locate,
  named,
} from "../proxmox/api/guests.ts";
import { getSnapshots } from "../proxmox/api/snapshots.ts";
import {
  callDigest,
  isSpent,
  open,
  refusalText,
  seal,
  spend,
  stateId,
  stateKeys,
} from "./state.ts";

/** `auto`: ask when the client can; `always`: refuse when it cannot; `never`. */
export type ConfirmMode = "auto" | "always" | "never";

/** What a confirmation gate decided. */
export type Gate =
  | { kind: "proceed"; outcome: ConfirmOutcome }
  | { kind: "ask"; result: InputRequiredResult }
  | { kind: "refuse"; text: string; outcome: ConfirmOutcome };

/** How the confirmation went, for the result and the audit line. */
export type ConfirmOutcome =
  | "not-needed"
  | "not-asked" // the client cannot ask; MCP_CONFIRM=auto leaves it to the client
  | "confirmed"
  | "declined"
  | "cancelled"
  | "changed"
  | "unverified" // the answer's state was not this server's, or expired
  | "used" // the answer's state was already acted on (a replay)
  | "unavailable"; // MCP_CONFIRM=always and the client cannot ask

const KEY = "confirm";

/** The form: one explicit confirm field. */
const REQUESTED = {
  type: "object" as const,
  properties: {
    confirm: {
      type: "boolean" as const,
      title: "Go ahead",
      description: "Tick to carry out exactly what is described above",
      default: false,
    },
  },
  required: ["confirm"],
};

/** What a question's state holds: the call, and the guest as shown. */
interface State {
  /** the call (tool and arguments), as callDigest() */
  c: string;
  /** the guest's config digest as shown */
  d: string;
  /** this question's id: its answer is acted on once (spend()) */
  j: string;
}

const PURPOSE = "confirm";
const STATE_TTL_MS = 10 * 60_000;

/** Whether the client can answer a form question. */
export function canElicit(
  caps: { elicitation?: { form?: unknown; url?: unknown } } | undefined,
): boolean {
  const e = caps?.elicitation;
  if (!e) return false;
  // An empty elicitation capability means form mode (2025-06-18 clients).
  return e.form !== undefined || e.url === undefined;
}

export interface GateInput {
  mode: ConfirmMode;
  tool: { name: string; title: string; destructive: boolean };
  args: Record<string, unknown>;
  pve: PveClient;
  ctx: ServerContext;
  clientCanAsk: boolean;
  /**
   * The server's config: its MCP_STATE_SECRET seals the question's state,
   * so that any replica sharing it can take the answer.
   */
  config: { stateSecret?: string };
}

/**
 * Decides whether a call may proceed: not destructive, MCP_CONFIRM=never, a
 * client that cannot ask (auto), or a confirmation bound to the same guest
 * state; else asks, or refuses.
 */
export async function confirmGate(input: GateInput): Promise<Gate> {
  const { mode, tool, args, ctx } = input;
  if (!tool.destructive || mode === "never") {
    return { kind: "proceed", outcome: "not-needed" };
  }
  if (!input.clientCanAsk) {
    if (mode === "always") {
      return {
        kind: "refuse",
        outcome: "unavailable",
        text:
          `Not done: ${tool.name} needs a human's confirmation (MCP_CONFIRM=always), and this client cannot ask (no form elicitation). Nothing was sent to Proxmox`,
      };
    }
    return { kind: "proceed", outcome: "not-asked" };
  }
  const response = inputResponse(ctx.mcpReq.inputResponses, KEY);
  const vmid = typeof args.vmid === "number" ? args.vmid : undefined;
  if (response.kind !== "missing") {
    const accepted = response.kind === "elicit" &&
      response.action === "accept" && response.content?.confirm === true;
    if (!accepted) {
      const cancelled = response.kind === "elicit" &&
        response.action === "cancel";
      return {
        kind: "refuse",
        outcome: cancelled ? "cancelled" : "declined",
        text: `Not done: the human ${
          cancelled ? "cancelled the question" : "declined"
        } (${tool.name}). Nothing was sent to Proxmox`,
      };
    }
    const opened = await open<State>(
      await stateKeys(input.config),
      PURPOSE,
      ctx.mcpReq.requestState(),
    );
    if (!opened.ok) {
      return {
        kind: "refuse",
        outcome: "unverified",
        text:
          `Not done: the human's confirmation of ${tool.name} cannot be taken: its question's state ${
            refusalText(opened.why)
          }. Nothing was sent to Proxmox; call again to be asked anew`,
      };
    }
    const used: Gate = {
      kind: "refuse",
      outcome: "used",
      text:
        `Not done: this confirmation was already used (${tool.name} ran when it was first answered; an answer is acted on once). Nothing was sent to Proxmox; call again to be asked anew`,
    };
    if (typeof opened.value.j !== "string" || isSpent(opened.value.j)) {
      return used;
    }
    if (opened.value.c !== await callDigest(tool.name, args)) {
      return {
        kind: "refuse",
        outcome: "unverified",
        text:
          `Not done: the confirmation answers a question about another call than this ${tool.name}. Nothing was sent to Proxmox; call again to be asked anew`,
      };
    }
    if (vmid !== undefined) {
      const now = await digestOf(input.pve, vmid);
      if (now !== opened.value.d) {
        return {
          kind: "refuse",
          outcome: "changed",
          text:
            `Not done: guest ${vmid} changed after the human confirmed (its configuration digest is no longer the one shown). Nothing was sent to Proxmox; ask again to confirm the current state`,
        };
      }
    }
    // Spent before the action runs, in one step with the check: of two
    // copies of the answer racing here, one proceeds.
    const spent = spend(opened.value.j, STATE_TTL_MS);
    if (spent === "again") return used;
    if (spent === "full") {
      return {
        kind: "refuse",
        outcome: "unverified",
        text:
          `Not done: too many confirmations were taken in the last 10 minutes to tell a new one from a replay. Nothing was sent to Proxmox; call again later`,
      };
    }
    return { kind: "proceed", outcome: "confirmed" };
  }
  return ask(input, vmid);
}

async function digestOf(pve: PveClient, vmid: number): Promise<string> {
  const found = await guestOf(pve, vmid);
  if (!found) return "absent";
  return String((await getConfig(pve, found.ref)).digest ?? "");
}

/** The guest as it is now (no cached lookup), and its resource entry. */
async function guestOf(
  pve: PveClient,
  vmid: number,
): Promise<{ ref: GuestRef; entry: ClusterGuest } | undefined> {
  pve.invalidate();
  const entry = (await listGuests(pve)).find((r) => Number(r.vmid) === vmid);
  if (!entry) return undefined;
  return { ref: await locate(pve, vmid), entry };
}

/**
 * The question's count of the guest's backups. A storage that cannot be read
 * is named: the human must not read "0" before a delete when it is unknown.
 */
async function backupsLine(pve: PveClient, vmid: number): Promise<string> {
  try {
    const { backups, unreachable } = await readBackups(pve, { vmid });
    if (!unreachable.length) return `Backups on record: ${backups.length}`;
    const where = unreachable.map((u) =>
      `${u.storage}${u.node ? ` on ${u.node}` : ""}`
    ).join(", ");
    return `Backups on record: ${backups.length} on the storages that could be read; unknown on ${where} (could not be read)`;
  } catch (e) {
    const why = redact((e as Error)?.message ?? String(e));
    return `Backups on record: unknown (${String(why).split("\n")[0]})`;
  }
}

const DISK_KEY = /^(scsi|virtio|sata|ide|efidisk|tpmstate|rootfs|mp)\d*$/;

/** The question: the guest, and what the action would touch or destroy. */
async function ask(input: GateInput, vmid: number | undefined): Promise<Gate> {
  const { tool, args, pve } = input;
  // With several clusters the call names one (its args carry it, so the
  // answer is bound to it too): the question says which.
  const lines = [
    `${tool.title}: ${tool.name}${
      typeof args.cluster === "string" ? ` on cluster '${args.cluster}'` : ""
    }`,
  ];
  let digest = "none";
  if (vmid !== undefined) {
    const found = await guestOf(pve, vmid);
    if (!found) {
      digest = "absent";
      lines.push(`Guest ${vmid} does not exist yet.`);
    } else {
      const { ref: g, entry: e } = found;
      const [cfg, snaps, backups] = await Promise.all([
        getConfig(pve, g),
        getSnapshots(pve, g).catch(() => []),
        backupsLine(pve, vmid),
      ]);
      digest = String(cfg.digest ?? "");
      lines.push(
        `Guest: ${named(g)} on node ${g.node}, ${g.status}${
          g.template ? ", a template" : ""
        }`,
      );
      const disks = Object.entries(cfg)
        .filter(([k, v]) =>
          DISK_KEY.test(k) && typeof v === "string" && !/media=cdrom/.test(v)
        )
        .map(([k, v]) => {
          const size = /size=([^,]+)/.exec(String(v))?.[1];
          return `${k} ${String(v).split(",")[0]}${size ? ` (${size})` : ""}`;
        });
      if (disks.length) lines.push(`Disks: ${disks.join("; ")}`);
      const real = snaps.filter((s) => s.name !== "current");
      lines.push(
        `Snapshots: ${
          real.length ? real.map((s) => s.name).join(", ") : "none"
        }`,
      );
      lines.push(backups);
      if (e.hastate) lines.push(`HA: managed (${e.hastate})`);
      if (Number(cfg.protection ?? 0) === 1) {
        lines.push("Protection: on (Proxmox refuses to remove this guest)");
      }
    }
  }
  const shown = Object.entries(redact(args) as Record<string, unknown>)
    .filter(([k]) => k !== "vmid" && k !== "cluster")
    .map(([k, v]) => {
      const text = JSON.stringify(v) ?? "";
      return `${k}=${text.length > 200 ? text.slice(0, 200) + "…" : text}`;
    })
    .join(", ");
  if (shown) lines.push(`With: ${shown}`);
  const requestState = await seal(
    await stateKeys(input.config),
    PURPOSE,
    {
      c: await callDigest(tool.name, args),
      d: digest,
      j: stateId(),
    } satisfies State,
    STATE_TTL_MS,
  );
  return {
    kind: "ask",
    result: inputRequired({
      inputRequests: {
        [KEY]: inputRequired.elicit({
          message: lines.join("\n"),
          requestedSchema: REQUESTED,
        }),
      },
      requestState,
    }),
  };
}

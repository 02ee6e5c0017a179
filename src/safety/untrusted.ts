/**
 * Untrusted content. Text from inside a guest (command output, file contents)
 * or from fields anyone with access to a guest can edit (names, notes,
 * descriptions, comments, task logs) reaches the model as data: a result that
 * holds such text says which fields in `untrusted` (paths; `[]` is every
 * element; in a table, a column by its name), and the server's instructions
 * say that such text is never an instruction.
 *
 * MCP_LOCKDOWN=true withholds guest output (command output, file contents)
 * unless the human agrees to show it: the result is held, sealed, in the
 * question's state (state.ts: any replica with the same MCP_STATE_SECRET can
 * open it), the client is asked (the SDK's input-required rounds, as for
 * confirmations), and the answer's round returns the held result; nothing
 * runs twice. A client that
 * cannot ask gets the result with that output withheld, and is told so.
 *
 * Unlike a confirmation's, a release answer may be taken more than once (a
 * client whose answer round's response was lost can post it again): it only
 * shows the output already held and runs nothing, and single use would add
 * no protection, since the answer's content is the client's word anyway.
 */
import type {
  InputRequiredResult,
  ServerContext,
} from "@modelcontextprotocol/server";
import { inputRequired, inputResponse } from "../sdk.ts";
import { callDigest, open, refusalText, seal, stateKeys } from "./state.ts";

/** Per tool: the fields of its result that may hold untrusted text. */
export const UNTRUSTED: Readonly<Record<string, readonly string[]>> = {
  proxmox_list_vms: ["rows[].name"],
  proxmox_get_vm_stats: ["name"],
  proxmox_delete_vm: ["name"],
  proxmox_get_task: ["log[]"],
  proxmox_list_snapshots: ["snapshots[].name", "snapshots[].description"],
  proxmox_list_backups: ["backups[].notes"],
  proxmox_list_content: ["items[].notes"],
  proxmox_execute_command: ["stdout", "stderr"],
  proxmox_read_file_vm: ["content"],
  proxmox_install_software: ["distro", "output_tail"],
  proxmox_list_firewall_rules: ["rules[].comment"],
  proxmox_add_firewall_rule: ["rule.comment"],
};

/** Per tool: the fields that carry guest output, withheld under lockdown. */
export const GUEST_OUTPUT: Readonly<Record<string, readonly string[]>> = {
  proxmox_execute_command: ["stdout", "stderr"],
  proxmox_read_file_vm: ["content"],
  proxmox_install_software: ["distro", "output_tail"],
};

/** Whether `path` names a value that is present (and not empty) in `value`. */
function present(value: unknown, path: string[], columns?: string[]): boolean {
  if (value === undefined || value === null || value === "") return false;
  if (!path.length) return !(Array.isArray(value) && value.length === 0);
  const [head, ...rest] = path;
  if (head.endsWith("[]")) {
    const key = head.slice(0, -2);
    const list = key ? (value as Record<string, unknown>)[key] : value;
    if (!Array.isArray(list)) return false;
    return list.some((item) => {
      // A table row: the column of that name.
      if (Array.isArray(item) && rest.length === 1 && columns) {
        return present(item[columns.indexOf(rest[0])], []);
      }
      return present(item, rest, columns);
    });
  }
  return present((value as Record<string, unknown>)[head], rest, columns);
}

/** The untrusted fields present in a tool's result (none: undefined). */
export function untrustedFields(
  tool: string,
  result: Record<string, unknown>,
): string[] | undefined {
  const columns = Array.isArray(result.columns)
    ? result.columns.map(String)
    : undefined;
  const found = (UNTRUSTED[tool] ?? []).filter((p) =>
    present(result, p.split("."), columns)
  );
  return found.length ? found : undefined;
}

const KEY = "release";
const WITHHELD = "[withheld: MCP_LOCKDOWN]";
const PURPOSE = "lockdown hold";
const HOLD_MS = 10 * 60_000;
/**
 * The most JSON (UTF-8 bytes) a held result may be: it travels (sealed) in
 * the question's state and comes back in the answer's request, whose body
 * the HTTP transport takes up to 4 MiB. Longer guest output is cut (head and
 * tail) and the result says so. Sealed and base64url: about 1.4 MB.
 */
export const HOLD_MAX_BYTES = 1024 * 1024;
const encoder = new TextEncoder();

/** What the question's state holds: the call and its result. */
interface Held {
  /** the call (tool and arguments), as callDigest() */
  c: string;
  r: Record<string, unknown>;
}

/** The UTF-8 size of a value's JSON. */
function jsonBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(value)).length;
}

/**
 * A result cut to fit HOLD_MAX_BYTES: the longest guest output first, each
 * keeping its head and tail; its truncation flags set and a note added.
 */
function bounded(
  tool: string,
  result: Record<string, unknown>,
): Record<string, unknown> {
  if (jsonBytes(result) <= HOLD_MAX_BYTES) return result;
  const out = { ...result };
  const note =
    `Guest output cut to ${HOLD_MAX_BYTES} bytes in all to travel with the release question (MCP_LOCKDOWN); ask for less output to see it whole`;
  out.note = typeof out.note === "string" ? `${out.note}; ${note}` : note;
  const fields = (GUEST_OUTPUT[tool] ?? []).filter((f) =>
    typeof out[f] === "string"
  );
  // A character may take up to 6 bytes of JSON: cut by each field's share,
  // and again while it does not fit (twice at most, in practice).
  for (let round = 0; round < 8; round++) {
    const over = jsonBytes(out) - HOLD_MAX_BYTES;
    if (over <= 0) break;
    const f = fields.reduce((a, b) =>
      (out[b] as string).length > (out[a] as string).length ? b : a
    );
    const text = out[f] as string;
    const keep = Math.max(
      0,
      Math.floor(text.length * (1 - (over + 256) / jsonBytes(text))) - 64,
    );
    const head = Math.floor(keep / 2);
    out[f] = `${text.slice(0, head)}\n[… ${
      text.length - keep
    } chars cut to fit the release question …]\n${
      text.slice(text.length - (keep - head))
    }`;
    for (const flag of [`${f}_truncated`, "truncated"]) {
      if (typeof out[flag] === "boolean") out[flag] = true;
    }
  }
  return out;
}

/** A copy of a result with its guest output withheld. */
function withhold(
  tool: string,
  result: Record<string, unknown>,
  why: string,
): Record<string, unknown> {
  const out = { ...result };
  for (const f of GUEST_OUTPUT[tool] ?? []) {
    if (typeof out[f] === "string" && out[f] !== "") out[f] = WITHHELD;
  }
  const note = `Guest output withheld (MCP_LOCKDOWN=true): ${why}`;
  out.note = typeof out.note === "string" ? `${out.note}; ${note}` : note;
  return out;
}

/** Whether a call's result carries guest output that lockdown holds back. */
export function holdsGuestOutput(
  tool: string,
  result: Record<string, unknown>,
): boolean {
  return (GUEST_OUTPUT[tool] ?? []).some((f) =>
    typeof result[f] === "string" && result[f] !== ""
  );
}

/** What lockdown does with a finished call's result. */
export type Release =
  | { kind: "show"; result: Record<string, unknown> }
  | { kind: "ask"; result: InputRequiredResult };

/**
 * A result with guest output, under lockdown: ask the human (the result is
 * held until the answer), or withhold the output when the client cannot ask.
 */
export async function lockdownGate(
  tool: { name: string; title: string },
  args: Record<string, unknown>,
  result: Record<string, unknown>,
  canAsk: boolean,
  config: { stateSecret?: string },
): Promise<Release> {
  if (!canAsk) {
    return {
      kind: "show",
      result: withhold(
        tool.name,
        result,
        "this client cannot ask the human to release it",
      ),
    };
  }
  // With several clusters the call names one (as the confirmation does).
  const where = `${typeof args.vmid === "number" ? ` in VM ${args.vmid}` : ""}${
    typeof args.cluster === "string" ? ` on cluster '${args.cluster}'` : ""
  }`;
  const what = typeof args.path === "string"
    ? `the contents of ${args.path}`
    : "the output";
  return {
    kind: "ask",
    result: inputRequired({
      inputRequests: {
        [KEY]: inputRequired.elicit({
          message:
            `${tool.title}: ${tool.name}${where} is done. Show ${what} to the assistant? It comes from inside the guest and may hold text written to steer the assistant.`,
          requestedSchema: {
            type: "object" as const,
            properties: {
              release: {
                type: "boolean" as const,
                title: "Show it",
                description: "Tick to pass the guest's output on",
                default: false,
              },
            },
            required: ["release"],
          },
        }),
      },
      requestState: await seal(
        await stateKeys(config),
        PURPOSE,
        {
          c: await callDigest(tool.name, args),
          r: bounded(tool.name, result),
        } satisfies Held,
        HOLD_MS,
      ),
    }),
  };
}

/**
 * The round that carries the human's answer to a release question: the held
 * result (from the question's sealed state: any replica with the same
 * MCP_STATE_SECRET can answer), shown or withheld; or why it cannot be
 * opened. Undefined when this call answers no such question.
 */
export async function releaseAnswer(
  tool: string,
  args: Record<string, unknown>,
  ctx: ServerContext,
  config: { stateSecret?: string },
): Promise<
  Record<string, unknown> | { refused: string } | undefined
> {
  const response = inputResponse(ctx.mcpReq.inputResponses, KEY);
  if (response.kind === "missing") return undefined;
  const opened = await open<Held>(
    await stateKeys(config),
    PURPOSE,
    ctx.mcpReq.requestState(),
  );
  if (!opened.ok) {
    return {
      refused: opened.why === "expired"
        ? `The guest output of ${tool} is no longer held (it is kept 10 minutes for the human's answer): call again`
        : `The guest output of ${tool} cannot be released: the question's state ${
          refusalText(opened.why)
        }. The call ran when the question was asked; calling again runs it again`,
    };
  }
  if (opened.value.c !== await callDigest(tool, args)) {
    return {
      refused:
        `The release answer belongs to another call than this ${tool}: nothing is shown, nothing ran`,
    };
  }
  const held = opened.value.r;
  const released = response.kind === "elicit" &&
    response.action === "accept" && response.content?.release === true;
  return released ? held : withhold(tool, held, "the human did not release it");
}

/**
 * A failed call's message and detail under lockdown: guest output it quotes
 * (install_software's last output line and output tail) withheld.
 */
export function withholdError(
  tool: string,
  message: string,
  detail: Record<string, unknown> | undefined,
): { message: string; detail?: Record<string, unknown> } {
  const fields = GUEST_OUTPUT[tool] ?? [];
  if (!detail || !fields.some((f) => f in detail)) return { message, detail };
  const out = { ...detail };
  for (const f of fields) if (f in out) out[f] = WITHHELD;
  return {
    // "… failed with exit code 1: <guest output line>"
    message: message.replace(
      /(failed with exit code [^:]+): [\s\S]*$/,
      `$1: ${WITHHELD}`,
    ),
    detail: out,
  };
}

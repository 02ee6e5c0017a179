/**
 * Dry run: a changing tool called with `dry_run: true` runs as usual (checks,
 * guest and node resolution, auto-VMID, volumes), but inside a CallRecord in
 * dry-run mode, so PveClient notes every write instead of sending it and
 * answers it with a stand-in (a dry-run UPID; tasks are not waited for). The
 * result is the list of writes the call would send, secrets masked.
 */
import { z } from "zod";
import { redact } from "../log.ts";
import { describeCommand, redactCommand } from "../proxmox/api/agent.ts";
import type { CallRecord, Params } from "../proxmox/client.ts";

/** One planned Proxmox request. */
export const PlannedRequest = z.object({
  method: z.string(),
  path: z.string(),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type PlannedRequest = z.infer<typeof PlannedRequest>;

/** What a dry run returns instead of the tool's own result. */
export const DryRunResult = z.object({
  dry_run: z.literal(true),
  requests: z.array(PlannedRequest),
  note: z.string(),
});
export type DryRunResult = z.infer<typeof DryRunResult>;

/**
 * A request's parameters as a dry run shows them: secret-named fields
 * (passwords, keys, file contents, stdin) and known secret values masked, a
 * guest command masked as the DEBUG log masks it; undefined ones left out.
 */
function maskParams(
  params: Params | undefined,
): Record<string, unknown> | undefined {
  if (!params) return undefined;
  const defined = Object.fromEntries(
    Object.entries(params).filter(([, v]) => v !== undefined),
  );
  if (!Object.keys(defined).length) return undefined;
  const out = redact(defined) as Record<string, unknown>;
  if (Array.isArray(params.command)) {
    out.command = redactCommand(params.command);
  }
  return out;
}

/** The planned writes of a dry-run call, masked. */
function plannedRequests(record: CallRecord): PlannedRequest[] {
  return record.writes.map(({ method, path, params }) => {
    const masked = maskParams(params);
    return masked ? { method, path, params: masked } : { method, path };
  });
}

/** `Dry run`, or among several clusters `Dry run on cluster 'lab'`. */
function dryRunOn(cluster?: string): string {
  return cluster === undefined ? "Dry run" : `Dry run on cluster '${cluster}'`;
}

/**
 * The result of a dry run that went through; `cluster`: among several, the
 * one it planned on, named in the note.
 */
export function dryRunResult(
  record: CallRecord,
  cluster?: string,
): DryRunResult {
  const requests = plannedRequests(record);
  return {
    dry_run: true,
    requests,
    note: requests.length
      ? `${
        dryRunOn(cluster)
      }: nothing was sent. These ${requests.length} request(s) would be sent to Proxmox, in this order (tasks not waited for; task-dependent values such as a digest are read at run time)`
      : `${
        dryRunOn(cluster)
      }: nothing was sent, and this call would send no change to Proxmox (the guest is already as asked)`,
  };
}

/**
 * The error of a dry run whose planning stopped at `error` (a step needs
 * what an earlier, unsent one would have made), with the requests planned
 * so far.
 */
export function dryRunStopped(
  record: CallRecord,
  error: string,
  cluster?: string,
): string {
  return `${
    dryRunOn(cluster)
  }: planning stopped after ${record.writes.length} request(s): ${error}\n${
    JSON.stringify(plannedRequests(record))
  }`;
}

/**
 * A call's arguments as the audit line shows them: secret-named fields
 * masked, a guest command masked as the DEBUG log masks it.
 */
export function maskArgs(
  args: Record<string, unknown>,
  options: { commandLine?: boolean } = {},
): Record<string, unknown> {
  const out = redact(args) as Record<string, unknown>;
  const command = args.command;
  const argv = Array.isArray(command)
    ? command.map(String)
    : typeof command === "string"
    ? ["/bin/sh", "-c", command]
    : undefined;
  if (argv && options.commandLine === false) {
    // The INFO log names the program and counts arguments, nothing more.
    const { program, args: n } = describeCommand(argv);
    out.command = `[${program}, ${n} argument(s)]`;
  } else if (Array.isArray(command)) {
    out.command = redactCommand(command.map(String));
  } else if (typeof command === "string") {
    out.command = redactCommand(["sh", "-c", command]).replace(/^sh -c /, "");
  }
  if (typeof args.stdin === "string") out.stdin = "[redacted]";
  return out;
}

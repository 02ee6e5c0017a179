/**
 * Pieces the safety tests share in process (tests/*_test.ts) and through the
 * real entry point (tests/e2e/safety_process_test.ts): a human who answers
 * questions, restricted tokens, the audit trail's lines and the secrets a
 * run must never show.
 */
import type { Client } from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { closeAuditFiles } from "../src/safety/audit.ts";
import {
  call,
  callOk,
  type Connected,
  type ElicitAnswer,
  type ElicitParams,
  testClient,
  type ToolResult,
} from "./helpers.ts";
import { startSim, type TestSim } from "./sim_helpers.ts";

import { writes } from "./sim_helpers.ts";
export { writes };

/** A client whose human answers with `answer`, recording each question. */
export function human(
  answer: ElicitAnswer | ((p: ElicitParams) => ElicitAnswer),
) {
  const asked: ElicitParams[] = [];
  return {
    asked,
    elicit: (p: ElicitParams) => {
      asked.push(p);
      return typeof answer === "function" ? answer(p) : answer;
    },
  };
}

/** Server environment for an API token of the simulator. */
export function tokenEnv(
  sim: TestSim,
  t: { tokenId: string; secret: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PROXMOX_URL: sim.url,
    PROXMOX_TOKEN_ID: t.tokenId,
    PROXMOX_TOKEN_SECRET: t.secret,
    ...extra,
  };
}

/** ops@pve with PVEAuditor everywhere and PVEVMUser on VM 105 only; a token without privilege separation. */
export function operatorOf105(
  sim: TestSim,
): { tokenId: string; secret: string } {
  const t = sim.access.addToken("ops@pve", "mcp", { privsep: false });
  sim.access.grant("/", "ops@pve", "PVEAuditor");
  sim.access.grant("/vms/105", "ops@pve", "PVEVMUser");
  return t;
}

// deno-lint-ignore no-explicit-any
export type AuditLine = Record<string, any>;

/** The JSON lines of an audit file's text. */
export function linesOf(text: string): AuditLine[] {
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** The audit lines a server logged on stderr. */
export function stderrAudit(log: string): AuditLine[] {
  return log.split("\n").flatMap((l) => {
    const m = / INFO audit: audit (\{.*\})$/.exec(l) ??
      /"msg":"audit (\{.*\})"/.exec(l);
    if (!m) return [];
    return [
      JSON.parse(m[0].startsWith('"msg"') ? JSON.parse(`"${m[1]}"`) : m[1]),
    ];
  });
}

/**
 * Runs `body` with an audit file path in a new temporary directory and a
 * simulator; afterwards closes the audit files and removes the directory.
 */
export async function withAuditFile(
  body: (file: string, sim: TestSim) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await using sim = await startSim();
    await body(`${dir}/audit.jsonl`, sim);
  } finally {
    closeAuditFiles();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The lines of an audit file, once the server's handle on it is closed. */
export async function auditLines(file: string): Promise<AuditLine[]> {
  closeAuditFiles();
  return linesOf(await Deno.readTextFile(file));
}

/** A random secret that no output would contain by chance. */
export function secret(tag: string): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return `${tag}${[...b].map((x) => x.toString(36)).join("")}`;
}

/** Guest command lines that carry a password, as people write them. */
export function commandSecrets(): { pw: string; command: string | string[] }[] {
  const a = secret("Ssh"),
    b = secret("Sudo"),
    c = secret("My"),
    d = secret("Ht"),
    e = secret("Argv");
  return [
    { pw: a, command: `sshpass -p '${a}' ssh root@10.0.0.5 uptime` },
    { pw: b, command: `echo '${b}' | sudo -S systemctl restart nginx` },
    { pw: c, command: `MYSQL_PWD=${c} mysql -u root -e 'select 1'` },
    { pw: d, command: `htpasswd -b /etc/nginx/.htpasswd admin ${d}` },
    // The argv form reaches the agent without a shell.
    { pw: e, command: ["sshpass", "-p", e, "ssh", "root@10.0.0.5", "true"] },
  ];
}

/** The results of a run of tool calls, and the tools called. */
export interface Run {
  results: { tool: string; r: ToolResult }[];
  called: Set<string>;
}

/** Calls `tool`, keeping its result in `into`. */
export async function run(
  s: Connected,
  tool: string,
  args: Record<string, unknown>,
  into: Run,
): Promise<ToolResult> {
  const r = await call(s.client, tool, args);
  into.results.push({ tool, r });
  into.called.add(tool);
  return r;
}

/** Asserts that none of `secrets` is in the log nor in any result. */
export function assertNowhere(
  secrets: string[],
  log: string,
  runs: Run,
): void {
  for (const sec of secrets.filter((x) => x.length >= 6)) {
    const tag = `${sec.slice(0, 4)}…`;
    assert.ok(!log.includes(sec), `a secret (${tag}) in the DEBUG log`);
    for (const { tool, r } of runs.results) {
      const out = r.text + JSON.stringify(r.data ?? null);
      assert.ok(!out.includes(sec), `a secret (${tag}) in ${tool}'s result`);
    }
  }
}

/** The VMIDs proxmox_list_vms lists, in order. */
export async function listedVmids(client: Client): Promise<unknown[]> {
  const vms = await callOk(client, "proxmox_list_vms");
  return vms.rows.map((r: unknown[]) => r[0]);
}

/** The INFO line that states the scope: there is exactly one. */
export function scopeLine(log: string): string {
  const lines = log.split("\n").filter((l) => l.includes("Scope: "));
  assert.equal(lines.length, 1, log);
  return lines[0];
}

/** The scope the entry-point scope scenario runs under (with simEnv). */
export const SCOPE_ENV = {
  LOG_LEVEL: "INFO",
  MCP_ALLOWED_VMIDS: "100-105",
  MCP_ALLOWED_NODES: "pve1,pve2",
};

/**
 * A server started with SCOPE_ENV lists only 100-105, refuses a guest
 * outside and a protected one with 0 writes, still reads the protected one,
 * and logs its Scope line once.
 */
export async function scopeScenario(s: Connected, sim: TestSim): Promise<void> {
  assert.deepEqual(await listedVmids(s.client), [100, 101, 102, 103, 104, 105]);
  sim.cluster.guests.get(104)!.config.tags = "mcp-protected";
  sim.requests.length = 0;
  const outside = await call(s.client, "proxmox_delete_vm", { vmid: 106 });
  assert.match(outside.text, /VMID 106 is outside this server's scope/);
  const prot = await call(s.client, "proxmox_stop_vm", { vmid: 104 });
  assert.match(prot.text, /carries the tag 'mcp-protected'/);
  assert.deepEqual(writes(sim), []);
  await callOk(s.client, "proxmox_get_vm_stats", { vmid: 104 });
  assert.match(
    scopeLine(s.stderr()),
    /Scope: VMIDs 100-105; nodes pve1,pve2\./,
  );
}

/**
 * A client of each era connects over `transport()` (a server with
 * MCP_ALLOWED_VMIDS=100-105) and lists the 6 guests in scope.
 */
export async function listInScopeEachEra(
  transport: () => Parameters<Client["connect"]>[0],
): Promise<void> {
  for (const era of ["2026-07-28", "2025-11-25"] as const) {
    const client = testClient({ era }, "scope-test");
    await client.connect(transport());
    const vms = await callOk(client, "proxmox_list_vms");
    assert.equal(vms.total, 6, era);
    await client.close();
  }
}

/**
 * The audit trail: one JSON line per call of a changing tool (refusals and
 * dry runs too) on stderr at INFO and appended to MCP_AUDIT_FILE (0600, never
 * truncated), secrets masked, UPIDs present.
 */
import assert from "node:assert/strict";
import { closeAuditFiles } from "../src/safety/audit.ts";
import { call, callOk, connect, simEnv } from "./helpers.ts";
import {
  auditLines,
  linesOf,
  stderrAudit,
  withAuditFile,
} from "./safety_helpers.ts";

Deno.test("one audit line per changing call in the file and on stderr: tool, args with secrets masked, requests, UPIDs, result; none for reads", async () => {
  await withAuditFile(async (file, sim) => {
    {
      await using s = await connect({
        env: { ...simEnv(sim), MCP_AUDIT_FILE: file, LOG_LEVEL: "INFO" },
      });
      await callOk(s.client, "proxmox_list_vms", {});
      await callOk(s.client, "proxmox_start_vm", { vmid: 102 });
      await callOk(s.client, "proxmox_create_lxc", {
        ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        node: "pve1",
        hostname: "ct-audit",
        password: "Audit-secret-77",
      });
      await callOk(s.client, "proxmox_stop_vm", { vmid: 102, dry_run: true });
      const failed = await call(s.client, "proxmox_start_vm", { vmid: 4242 });
      assert.ok(failed.isError);
      await callOk(s.client, "proxmox_execute_command", {
        vmid: 101,
        command: "MYSQL_PWD=hunter22 mysql -e 'select 1'",
      });
      const fromLog = stderrAudit(s.stderr());
      assert.equal(fromLog.length, 5, s.stderr());
      // On stderr (INFO), a guest command is its program and argument count.
      assert.equal(fromLog[4].args.command, "[/bin/sh, 2 argument(s)]");
    }
    closeAuditFiles();
    const text = await Deno.readTextFile(file);
    assert.ok(!text.includes("Audit-secret-77"), "create password masked");
    assert.ok(!text.includes("hunter22"), "command secret masked");
    const lines = linesOf(text);
    assert.deepEqual(
      lines.map((l) => `${l.tool} ${l.result}`),
      [
        "proxmox_start_vm ok",
        "proxmox_create_lxc ok",
        "proxmox_stop_vm dry-run",
        "proxmox_start_vm error",
        "proxmox_execute_command ok",
      ],
    );
    const [start, create, dry, failed, exec] = lines;
    assert.equal(start.transport, "stdio");
    assert.equal(start.client, "proxmox-mcp-tests/1.0.0");
    assert.equal(start.confirmation, "not-needed");
    assert.deepEqual(start.requests, [{
      method: "POST",
      path: "/nodes/pve2/qemu/102/status/start",
    }]);
    assert.equal(start.upids.length, 1);
    assert.match(start.upids[0], /^UPID:pve2:.*:qmstart:102:/);
    assert.ok(!Number.isNaN(Date.parse(start.time)));
    assert.equal(create.args.password, "[redacted]");
    assert.equal(create.upids.length, 1);
    assert.equal(dry.dry_run, true);
    assert.deepEqual(dry.upids, []);
    assert.match(dry.requests[0].path, /\/status\/(shutdown|stop)$/);
    assert.match(failed.error, /4242/);
    assert.ok(!failed.error.includes("\n"));
    assert.equal(exec.confirmation, "not-asked");
    assert.match(exec.requests[0].path, /\/agent\/exec$/);
    const mode = (await Deno.stat(file)).mode! & 0o777;
    assert.equal(mode, 0o600);
  });
});

Deno.test("declined confirmations are audited as refused, with the outcome; the question round is not a line", async () => {
  await withAuditFile(async (file, sim) => {
    {
      await using s = await connect({
        env: { ...simEnv(sim), MCP_AUDIT_FILE: file },
        elicit: () => ({ action: "decline" }),
      });
      const r = await call(s.client, "proxmox_delete_vm", { vmid: 106 });
      assert.ok(r.isError);
    }
    const lines = await auditLines(file);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].result, "refused");
    assert.equal(lines[0].confirmation, "declined");
    assert.deepEqual(lines[0].requests, []);
  });
});

Deno.test("a scope refusal is audited as refused; a 2026-07-28 stateless call names its client from the request envelope", async () => {
  await withAuditFile(async (file, sim) => {
    {
      await using s = await connect({
        env: {
          ...simEnv(sim),
          MCP_AUDIT_FILE: file,
          MCP_ALLOWED_VMIDS: "100-105",
        },
        era: "2026-07-28",
      });
      const r = await call(s.client, "proxmox_start_vm", { vmid: 106 });
      assert.ok(r.isError);
      await callOk(s.client, "proxmox_start_vm", { vmid: 102 });
    }
    const [refused, ok] = await auditLines(file);
    assert.equal(refused.result, "refused");
    assert.deepEqual(refused.requests, []);
    assert.match(refused.error, /106/);
    assert.equal(ok.result, "ok");
    assert.equal(ok.client, "proxmox-mcp-tests/1.0.0");
    assert.equal(ok.upids.length, 1);
  });
});

Deno.test("MCP_LOCKDOWN: the command's line records the exec and the question; the answer's line records the release", async () => {
  await withAuditFile(async (file, sim) => {
    {
      await using s = await connect({
        env: {
          ...simEnv(sim),
          MCP_AUDIT_FILE: file,
          MCP_LOCKDOWN: "true",
          MCP_CONFIRM: "never",
        },
        elicit: () => ({ action: "accept", content: { release: true } }),
      });
      await callOk(s.client, "proxmox_execute_command", {
        vmid: 101,
        command: "hostname",
      });
    }
    const lines = await auditLines(file);
    assert.deepEqual(
      lines.map((l) => [l.result, l.lockdown, l.requests.length]),
      [["ok", "asked", 1], ["ok", "released", 0]],
    );
  });
});

Deno.test("an audit file that exists with a loose mode is appended to, kept, and the log says to chmod 600 it; a second server appends after the first (the real processes: tests/e2e/safety_process_test.ts)", async () => {
  await withAuditFile(async (file, sim) => {
    await Deno.writeTextFile(file, '{"earlier":true}\n', { mode: 0o644 });
    await Deno.chmod(file, 0o644);
    for (const vmid of [102, 106]) {
      await using s = await connect({
        env: { ...simEnv(sim), MCP_AUDIT_FILE: file, LOG_LEVEL: "INFO" },
      });
      await callOk(s.client, "proxmox_start_vm", { vmid });
      assert.equal(stderrAudit(s.stderr()).length, 1, s.stderr());
      if (vmid === 102) {
        assert.match(s.stderr(), /readable by others \(mode 644\): chmod 600/);
      }
      // As at a process's exit: the next server opens the file anew.
      closeAuditFiles();
    }
    const lines = await auditLines(file);
    assert.deepEqual(lines[0], { earlier: true });
    assert.deepEqual(lines.slice(1).map((l) => l.args.vmid), [102, 106]);
    assert.ok(lines.slice(1).every((l) => l.result === "ok"));
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o644, "kept");
  });
});

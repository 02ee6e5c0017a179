/**
 * A real third-party client: the MCP Inspector CLI (v2, from npm) lists and
 * calls the tools against `deno task demo`.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname;
const INSPECTOR = "@modelcontextprotocol/inspector@2.12.0";

async function run(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ ok: boolean; out: string; stdout: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(r.stdout);
  return { ok: r.success, out: stdout + dec.decode(r.stderr), stdout };
}

Deno.test({
  name: "the Inspector CLI lists and calls the tools against deno task demo",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = Deno.env.get("INSPECTOR_DIR") ??
      `${Deno.env.get("HOME") ?? "/tmp"}/.cache/proxmox-mcp-inspector`;
    const cli =
      `${dir}/node_modules/@modelcontextprotocol/inspector/clients/cli/build/index.js`;
    if (!(await Deno.stat(cli).catch(() => null))) {
      await Deno.mkdir(dir, { recursive: true });
      const npm = await run("npm", [
        "install",
        "--silent",
        "--no-audit",
        "--no-fund",
        "--prefix",
        dir,
        INSPECTOR,
      ], dir);
      assert.ok(npm.ok, `npm install ${INSPECTOR}: ${npm.out}`);
    }
    const list = await run("node", [
      cli,
      "deno",
      "task",
      "--cwd",
      ROOT,
      "demo",
      "--method",
      "tools/list",
    ], ROOT);
    assert.ok(list.ok, list.out);
    const tools = JSON.parse(list.stdout).tools as {
      name: string;
    }[];
    assert.ok(tools.some((t) => t.name === "proxmox_list_vms"));
    const call = await run("node", [
      cli,
      "deno",
      "task",
      "--cwd",
      ROOT,
      "demo",
      "--method",
      "tools/call",
      "--tool-name",
      "proxmox_get_vm_stats",
      "--tool-arg",
      "vmid=100",
    ], ROOT);
    assert.ok(call.ok, call.out);
    const result = JSON.parse(call.stdout);
    assert.equal(result.isError ?? false, false, call.out);
    assert.equal(result.structuredContent.name, "web-01");
  },
});

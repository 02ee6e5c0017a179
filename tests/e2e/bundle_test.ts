/**
 * The MCP bundle as Claude Desktop installs it: manifest.json packed with
 * `mcpb pack` around a launcher that stands in for the compiled binary (the
 * server from source with the start task's permissions), unpacked, and started
 * exactly as the manifest says — command, args and env with user_config
 * substituted by mcpb's own reference code — then listed through the SDK client.
 */
import assert from "node:assert/strict";
import {
  getMcpConfigForManifest,
  packExtension,
  unpackExtension,
} from "@anthropic-ai/mcpb";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { startPermissions } from "../../scripts/permissions.ts";
import { simTls } from "../../sim/tls.ts";
import { assertNoSecrets, callOk, startSim } from "../helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const MAIN = `${ROOT}src/main.ts`;

/** Packs manifest.json + launcher into a .mcpb and unpacks it as a client would. */
async function installBundle(work: string): Promise<string> {
  const ext = `${work}/ext`;
  await Deno.mkdir(`${ext}/server`, { recursive: true });
  await Deno.copyFile(`${ROOT}manifest.json`, `${ext}/manifest.json`);
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const launcher = [
    "#!/bin/sh",
    "# Stands in for the compiled binary: the server from source, same permissions.",
    `exec ${
      [Deno.execPath(), "run", ...await startPermissions(), MAIN].map(quote)
        .join(" ")
    } "$@"`,
    "",
  ].join("\n");
  await Deno.writeTextFile(`${ext}/server/proxmox-mcp`, launcher, {
    mode: 0o755,
  });
  const bundle = `${work}/proxmox-mcp.mcpb`;
  assert.equal(
    await packExtension({
      extensionPath: ext,
      outputPath: bundle,
      silent: true,
    }),
    true,
    "mcpb pack accepts the manifest",
  );
  const installed = `${work}/installed`;
  assert.equal(
    await unpackExtension({
      mcpbPath: bundle,
      outputDir: installed,
      silent: true,
    }),
    true,
  );
  return installed;
}

// deno-lint-ignore no-explicit-any
async function mcpConfig(installed: string, userConfig: Record<string, any>) {
  const manifest = JSON.parse(
    await Deno.readTextFile(`${installed}/manifest.json`),
  );
  return await getMcpConfigForManifest({
    manifest,
    extensionPath: installed,
    systemDirs: { HOME: Deno.env.get("HOME") ?? "/root" },
    userConfig,
    pathSeparator: "/",
  });
}

/** Starts the server as the client would, lists its tools and calls one. */
async function listAndCall(
  command: string,
  args: string[],
  env: Record<string, string>,
  expect: { readOnly: boolean },
): Promise<void> {
  const transport = new StdioClientTransport({
    command,
    args,
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (c: Uint8Array) => {
    stderr += new TextDecoder().decode(c);
  });
  const client = new Client({
    name: "claude-desktop-stand-in",
    version: "1",
  });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    assert.ok(tools.length > 5);
    assert.equal(
      tools.every((t) => t.annotations?.readOnlyHint === true),
      expect.readOnly,
      "read_only reached the server",
    );
    const nodes = await callOk(client, "proxmox_list_nodes");
    assert.equal(nodes.nodes.length, 3);
  } catch (e) {
    throw new Error(`${(e as Error).message}; server stderr: ${stderr}`);
  } finally {
    await client.close();
  }
  assertNoSecrets(stderr, env);
}

Deno.test("the packed bundle starts as its manifest says and lists tools with the user's settings", async () => {
  const work = await Deno.makeTempDir({ prefix: "proxmox-mcp-bundle-" });
  await using sim = await startSim();
  try {
    const installed = await installBundle(work);
    const stat = await Deno.stat(`${installed}/server/proxmox-mcp`);
    assert.ok((stat.mode ?? 0) & 0o100, "the entry point stays executable");

    // Only the required settings and one switch: optional ones take their defaults.
    const config = await mcpConfig(installed, {
      proxmox_url: sim.url,
      token_id: sim.credentials.tokenId,
      token_secret: sim.credentials.tokenSecret,
      read_only: true,
    });
    assert.ok(config, "all required settings given");
    assert.equal(config.command, `${installed}/server/proxmox-mcp`);
    const env = config.env ?? {};
    for (
      const v of [config.command, ...(config.args ?? []), ...Object.values(env)]
    ) {
      assert.ok(!v.includes("${"), `nothing left unsubstituted: ${v}`);
    }
    assert.equal(env.PROXMOX_TOKEN_SECRET, sim.credentials.tokenSecret);
    assert.equal(env.MCP_READ_ONLY, "true");
    assert.equal(env.PROXMOX_VERIFY_SSL, "true");

    await listAndCall(config.command, config.args ?? [], env, {
      readOnly: true,
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("the bundle does not start without the token secret (a required setting)", async () => {
  const work = await Deno.makeTempDir({ prefix: "proxmox-mcp-bundle-" });
  try {
    const installed = await installBundle(work);
    const config = await mcpConfig(installed, {
      proxmox_url: "https://pve.example.com:8006",
      token_id: "mcp@pve!mcp",
    });
    assert.equal(config, undefined);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("the bundle reaches a self-signed Proxmox through the fingerprint the user gives, without a CA file", async () => {
  const work = await Deno.makeTempDir({ prefix: "proxmox-mcp-bundle-" });
  const tls = await simTls();
  await using sim = await startSim({ tls });
  try {
    const installed = await installBundle(work);
    const config = await mcpConfig(installed, {
      proxmox_url: sim.url,
      token_id: sim.credentials.tokenId,
      token_secret: sim.credentials.tokenSecret,
      tls_fingerprint: tls.fingerprint,
    });
    assert.ok(config && sim.url.startsWith("https://"));
    assert.equal(config.env?.PROXMOX_TLS_FINGERPRINT, tls.fingerprint);
    assert.equal(config.env?.PROXMOX_VERIFY_SSL, "true");
    await listAndCall(config.command, config.args ?? [], config.env ?? {}, {
      readOnly: false,
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

/** Pieces the start-up tests share in process and through the real entry point. */
import assert from "node:assert/strict";
import { ENV_VARS } from "../src/config.ts";
import { MAIN } from "./server_args.ts";

/** A valid login to a host that is never asked (nothing here connects). */
export const BASE = {
  PROXMOX_URL: "https://pve.example.com:8006",
  PROXMOX_USER: "root@pam",
  PROXMOX_PASSWORD: "s3cret-passw0rd",
};

/** Starts the real entry point with `env` (and PATH) alone; its exit code and output. */
export async function start(
  env: Record<string, string>,
  args: string[] = [],
  permissions = [`--allow-env=${ENV_VARS.join(",")}`, "--allow-net"],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...permissions, MAIN, ...args],
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/**
 * Settings the server refuses to start with, and the line that says why
 * (main.ts writes it as `proxmox-mcp: <message>` and exits with code 2).
 */
export const BAD_SETTINGS: [Record<string, string>, RegExp][] = [
  [
    { PROXMOX_USER: "root@pam", PROXMOX_PASSWORD: "x" },
    /PROXMOX_URL is not set/,
  ],
  [{ ...BASE, PROXMOX_URL: "pve.example.com" }, /Cannot parse PROXMOX_URL/],
  [
    { ...BASE, PROXMOX_URL: "ftp://pve:8006" },
    /PROXMOX_URL must start with https:\/\//,
  ],
  [
    { ...BASE, PROXMOX_VERIFY_SSL: "maybe" },
    /PROXMOX_VERIFY_SSL must be true or false/,
  ],
  [{ ...BASE, MCP_PORT: "http" }, /MCP_PORT must be a port number/],
  [
    { ...BASE, MCP_TRANSPORT: "carrier-pigeon" },
    /MCP_TRANSPORT must be one of stdio, http, sse/,
  ],
  [
    { ...BASE, PROXMOX_USER: "root" },
    /PROXMOX_USER must look like user@realm/,
  ],
  [{ PROXMOX_URL: BASE.PROXMOX_URL }, /No Proxmox login/],
  [{
    ...BASE,
    PROXMOX_TOKEN_ID: "root@pam!mcp",
    PROXMOX_TOKEN_SECRET: "tok-secret-1234",
  }, /Both PROXMOX_PASSWORD and/],
  [
    { PROXMOX_URL: BASE.PROXMOX_URL, PROXMOX_TOKEN_ID: "root@pam!mcp" },
    /must be set together/,
  ],
  [{ ...BASE, MCP_TOOLSETS: "nodes,bogus" }, /Unknown toolset 'bogus'/],
  [
    { ...BASE, MCP_TRANSPORT: "http", MCP_PORT: "0", MCP_TOOLSETS: "bogus" },
    /Unknown toolset 'bogus'/,
  ],
  [
    { ...BASE, MCP_TRANSPORT: "http", MCP_HOST: "0.0.0.0" },
    /beyond loopback: set MCP_AUTH_TOKEN/,
  ],
  [
    { ...BASE, MCP_AUTH_TOKEN: "short" },
    /^proxmox-mcp: MCP_AUTH_TOKEN must be at least 16 characters$/m,
  ],
  [
    { ...BASE, PROXMOX_CA_FILE: "/nonexistent/ca.pem" },
    /Cannot read PROXMOX_CA_FILE \/nonexistent\/ca.pem/,
  ],
];

/**
 * Asserts a start refused as main.ts refuses a bad setting: exit code 2 and
 * one stderr line matching `expected`, with no configured secret echoed.
 */
export function assertRefused(
  r: { code: number; stderr: string },
  env: Record<string, string>,
  expected: RegExp,
): void {
  assert.equal(r.code, 2, `exit code for ${JSON.stringify(env)}: ${r.stderr}`);
  assert.match(r.stderr, expected);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  for (const secret of ["s3cret-passw0rd", "tok-secret-1234", "short"]) {
    if (env.MCP_AUTH_TOKEN === secret || env.PROXMOX_PASSWORD === secret) {
      assert.ok(
        !r.stderr.includes(`: ${secret}`) && !r.stderr.includes(`'${secret}'`),
        "secret echoed",
      );
    }
  }
}

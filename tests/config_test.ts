/**
 * Start-up: configuration errors and flags in process, as main.ts reads and
 * reports them, and one start of the real entry point lacking a permission.
 * The rest of what only a process shows (exit codes and stderr for each bad
 * setting, --help on stdout, PROXMOX_CA_FILE read at start) is in
 * tests/e2e/config_process_test.ts.
 */
import assert from "node:assert/strict";
import { boot } from "../src/app.ts";
import {
  ConfigError,
  ENV_VARS,
  HELP,
  loadConfig,
  VERSION,
} from "../src/config.ts";
import { addSecret, redact, scrub, setLogWriter } from "../src/log.ts";
import { assertRefused, BAD_SETTINGS, BASE, start } from "./config_helpers.ts";
import { assertNoSecrets } from "./helpers.ts";

/**
 * What main.ts stops on before it serves, in process: loadConfig's error,
 * else boot's (an unknown toolset), as the line main.ts writes for it.
 * main.ts exits with code 2 for a ConfigError or RangeError, 1 otherwise.
 */
async function startLine(
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  setLogWriter(() => {});
  try {
    const parsed = loadConfig([], env);
    if (parsed.kind === "run") await boot(parsed.config);
  } catch (e) {
    const code = e instanceof ConfigError || e instanceof RangeError ? 2 : 1;
    return { code, stderr: `proxmox-mcp: ${(e as Error).message}\n` };
  } finally {
    setLogWriter();
  }
  throw new assert.AssertionError({
    message: `started with ${JSON.stringify(env)}`,
  });
}

Deno.test("a bad or missing setting is refused with one line naming it, as main.ts stops on it with exit code 2 (PROXMOX_CA_FILE, which main.ts reads, in tests/e2e/config_process_test.ts)", async () => {
  const cases = BAD_SETTINGS.filter(([env]) => !env.PROXMOX_CA_FILE);
  assert.equal(cases.length, BAD_SETTINGS.length - 1);
  for (const [env, expected] of cases) {
    const r = await startLine(env);
    assertRefused(r, env, expected);
  }
});

Deno.test("flags override the environment; --help, --version and an unknown flag as loadConfig reads them", () => {
  assert.deepEqual(loadConfig(["--help"], {}), { kind: "help" });
  assert.match(HELP, /--read-only/);
  assert.deepEqual(loadConfig(["--version"], {}), { kind: "version" });
  assert.match(`proxmox-mcp ${VERSION}\n`, /^proxmox-mcp \d+\.\d+\.\d+\n$/);
  assert.throws(
    () => loadConfig(["--bogus"], BASE),
    (e) => e instanceof ConfigError && /bogus.*see --help/.test(e.message),
  );

  const r = loadConfig([
    "--transport",
    "http",
    "--port",
    "9123",
    "--read-only",
    "--toolsets",
    "nodes,vms",
  ], {
    ...BASE,
    MCP_TRANSPORT: "stdio",
    MCP_PORT: "8000",
  });
  assert.equal(r.kind, "run");
  if (r.kind === "run") {
    assert.equal(r.config.transport, "http");
    assert.equal(r.config.port, 9123);
    assert.equal(r.config.readOnly, true);
    assert.deepEqual(r.config.toolsets, ["nodes", "vms"]);
    assert.equal(r.config.verifySsl, true, "TLS verified by default");
    assert.equal(r.config.proxmoxUrl, "https://pve.example.com:8006");
  }
  const eq = loadConfig(["--port=9000", "--demo"], BASE);
  assert.ok(eq.kind === "run" && eq.config.port === 9000 && eq.config.demo);
  assert.deepEqual(loadConfig(["-h"], {}), { kind: "help" });
  assert.throws(
    () => loadConfig(["--port"], BASE),
    /'--port <value>' needs a value/,
  );
  assert.throws(() => loadConfig(["--demo=yes"], BASE), /takes no value/);
  assert.throws(
    () => loadConfig(["stray"], BASE),
    /Unexpected argument 'stray'/,
  );
  const token = loadConfig([], {
    PROXMOX_URL: "https://pve:8006/api2/json/",
    PROXMOX_USER: "svc@pve",
    PROXMOX_TOKEN_ID: "mcp",
    PROXMOX_TOKEN_SECRET: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
  });
  assert.ok(token.kind === "run" && token.config.auth.kind === "token");
  if (token.kind === "run" && token.config.auth.kind === "token") {
    assert.equal(token.config.auth.tokenId, "svc@pve!mcp");
    assert.equal(token.config.proxmoxUrl, "https://pve:8006");
  }
});

Deno.test("a permission the process lacks gives one clear line, not a stack trace", async () => {
  const r = await start(BASE, [], ["--allow-net"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^proxmox-mcp: Missing permission: .*PROXMOX_URL/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
});

Deno.test("log redaction: secret-named keys and registered secret values", () => {
  addSecret("hunter2-hunter2");
  assert.equal(
    scrub("login with hunter2-hunter2 ok"),
    "login with [redacted] ok",
  );
  assert.deepEqual(
    redact({
      password: "p",
      CSRFPreventionToken: "c",
      cipassword: "x",
      sshkeys: "k",
      vmid: 100,
      nested: { ticket: "t" },
    }),
    {
      password: "[redacted]",
      CSRFPreventionToken: "[redacted]",
      cipassword: "[redacted]",
      sshkeys: "[redacted]",
      vmid: 100,
      nested: { ticket: "[redacted]" },
    },
  );
  assert.throws(
    () => assertNoSecrets("oops s3cret-passw0rd", BASE),
    /a secret/,
  );
});

Deno.test("PROXMOX_TLS_FINGERPRINT: SHA-256 as pvenode cert info prints it, lower case or without colons; anything else is refused by name", () => {
  const fp =
    "2A:C0:57:3D:2C:8B:74:D1:92:22:B1:4B:54:E5:F3:B9:F0:F6:A6:B1:CA:97:06:F6:EB:8C:25:4B:9E:38:D1:93";
  const config = (value: string, url = BASE.PROXMOX_URL) => {
    const r = loadConfig([], {
      ...BASE,
      PROXMOX_URL: url,
      PROXMOX_TLS_FINGERPRINT: value,
    });
    assert.equal(r.kind, "run");
    return r.kind === "run" ? r.config : undefined!;
  };
  for (const v of [fp, fp.toLowerCase(), fp.replace(/:/g, ""), ` ${fp} `]) {
    assert.deepEqual(config(v).tlsFingerprints, [fp], v);
  }
  // Two, for a certificate change.
  const other = fp.replace(/^2A/, "3B");
  assert.deepEqual(config(`${fp}, ${other}`).tlsFingerprints, [fp, other]);
  const plain = loadConfig([], BASE);
  assert.ok(plain.kind === "run" && plain.config.tlsFingerprints === undefined);
  const refused: [string, RegExp, string?][] = [
    [fp.slice(0, -3), /must be a SHA-256 fingerprint: 32 hex bytes/],
    [fp.replace(/:/g, "-"), /must be a SHA-256 fingerprint/],
    [fp.replace("2A", "ZZ"), /must be a SHA-256 fingerprint/],
    [
      "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD",
      /is a SHA-1 fingerprint: use the SHA-256 one/,
    ],
    [fp, /PROXMOX_URL is http:\/\//, "http://pve:8006"],
  ];
  for (const [value, re, url] of refused) {
    assert.throws(() => config(value, url), re, value);
  }
});

Deno.test("the shipped run tasks grant every variable the server reads; start, http and sse can read PROXMOX_CA_FILE", async () => {
  const tasks = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ).tasks as Record<string, string>;
  for (const name of ["start", "demo", "http", "sse"]) {
    const env = /--allow-env=([A-Z_,*]+)/.exec(tasks[name])?.[1].split(",");
    assert.ok(env, `${name} grants env`);
    // `PROXMOX_*` grants every PROXMOX_ variable: a new one needs no edit.
    const granted = (v: string) =>
      env.some((g) => g.endsWith("*") ? v.startsWith(g.slice(0, -1)) : g === v);
    for (const v of ENV_VARS) assert.ok(granted(v), `${name}: ${v}`);
    assert.ok(!granted("HOME") && !granted("NODE_EXTRA_CA_CERTS"), name);
    assert.doesNotMatch(tasks[name], /--allow-sys|--allow-all|-A /, name);
  }
  for (const name of ["start", "http", "sse"]) {
    assert.match(tasks[name], / --allow-read /, name);
  }
});

Deno.test("MCP_DRAIN_S above 300 s (where the timer would overflow and skip the drain) is refused by name; 300 and 0 are taken", () => {
  for (const [v, ms] of [["0", 0], ["300", 300_000], ["2.5", 2_500]] as const) {
    const r = loadConfig([], { ...BASE, MCP_DRAIN_S: v });
    assert.ok(r.kind === "run" && r.config.drainMs === ms, v);
  }
  assert.throws(
    () => loadConfig([], { ...BASE, MCP_DRAIN_S: "Infinity" }),
    /MCP_DRAIN_S must be/,
  );
  for (const v of ["301", "2147484", "1e12"]) {
    assert.throws(
      () => loadConfig([], { ...BASE, MCP_DRAIN_S: v }),
      /MCP_DRAIN_S must be at most 300 seconds/,
      v,
    );
  }
});

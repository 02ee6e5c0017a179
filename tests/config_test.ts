/** Start-up: configuration errors, flags, permissions (the real entry point). */
import assert from "node:assert/strict";
import { ENV_VARS, loadConfig } from "../src/config.ts";
import { addSecret, redact, scrub } from "../src/log.ts";
import { assertNoSecrets, MAIN } from "./helpers.ts";

const BASE = {
  PROXMOX_URL: "https://pve.example.com:8006",
  PROXMOX_USER: "root@pam",
  PROXMOX_PASSWORD: "s3cret-passw0rd",
};

async function start(
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

Deno.test("a bad or missing setting stops the process with one line naming it, exit code 2", async () => {
  const cases: [Record<string, string>, RegExp][] = [
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
  for (const [env, expected] of cases) {
    const r = await start(env, [], [
      `--allow-env=${ENV_VARS.join(",")}`,
      "--allow-net",
      "--allow-read",
    ]);
    assert.equal(
      r.code,
      2,
      `exit code for ${JSON.stringify(env)}: ${r.stderr}`,
    );
    assert.match(r.stderr, expected);
    assert.equal(
      r.stderr.trim().split("\n").length,
      1,
      `one line: ${r.stderr}`,
    );
    assert.equal(r.stdout, "", "nothing on the protocol channel");
    for (const secret of ["s3cret-passw0rd", "tok-secret-1234", "short"]) {
      if (env.MCP_AUTH_TOKEN === secret || env.PROXMOX_PASSWORD === secret) {
        assert.ok(
          !r.stderr.includes(`: ${secret}`) &&
            !r.stderr.includes(`'${secret}'`),
          "secret echoed",
        );
      }
    }
  }
});

Deno.test("flags override the environment; --help and --version answer on stdout", async () => {
  const help = await start({}, ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--read-only/);
  const version = await start({}, ["--version"]);
  assert.match(version.stdout, /^proxmox-mcp \d+\.\d+\.\d+\n$/);
  const bad = await start(BASE, ["--bogus"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bogus.*see --help/);

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

Deno.test("PROXMOX_CA_FILE without read permission: one line naming --allow-read and the fingerprint that needs no file", async () => {
  const r = await start({
    ...BASE,
    PROXMOX_CA_FILE: "/etc/pve/pve-root-ca.pem",
  });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^proxmox-mcp: Cannot read PROXMOX_CA_FILE \/etc\/pve\/pve-root-ca\.pem: Requires read access to .*\(grant --allow-read=\/etc\/pve\/pve-root-ca\.pem, or pin the certificate with PROXMOX_TLS_FINGERPRINT, which needs no file\)$/m,
  );
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

Deno.test("a PROXMOX_CA_FILE that holds no PEM certificate stops the start with one line naming it", async () => {
  const file = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(file, "not a certificate\n");
    const r = await start({ ...BASE, PROXMOX_CA_FILE: file }, [], [
      `--allow-env=${ENV_VARS.join(",")}`,
      "--allow-net",
      `--allow-read=${file}`,
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `proxmox-mcp: PROXMOX_CA_FILE ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----): use the cluster's CA, /etc/pve/pve-root-ca.pem on a node`,
    );
  } finally {
    await Deno.remove(file);
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

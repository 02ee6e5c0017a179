/**
 * Every setting of the server: one zod schema, read from the environment, with
 * command-line flags on top. Errors name the variable and what is expected, and
 * never echo a secret.
 */
// zod/mini: the same zod, a third of the start-up cost (start-up is measured).
import { z } from "zod/mini";

export const VERSION = "0.1.0";
/** The longest MCP_DRAIN_S: ample for a load balancer's health checks. */
const MAX_DRAIN_S = 300;

/** Every environment variable the server reads (the `--allow-env` list). */
export const ENV_VARS = [
  "PROXMOX_URL",
  "PROXMOX_USER",
  "PROXMOX_PASSWORD",
  "PROXMOX_TOKEN_ID",
  "PROXMOX_TOKEN_SECRET",
  "PROXMOX_VERIFY_SSL",
  "PROXMOX_CA_FILE",
  "PROXMOX_TLS_FINGERPRINT",
  "PROXMOX_TIMEOUT",
  "PROXMOX_CONFIG",
  "MCP_TRANSPORT",
  "MCP_HOST",
  "MCP_PORT",
  "MCP_AUTH_TOKEN",
  "MCP_ALLOWED_HOSTS",
  "MCP_ALLOWED_ORIGINS",
  "MCP_MAX_CONNECTIONS",
  "MCP_READ_ONLY",
  "MCP_CONFIRM",
  "MCP_AUDIT_FILE",
  "MCP_LOCKDOWN",
  "MCP_HIDE_UNPERMITTED",
  "MCP_TOOLSETS",
  "MCP_ALLOWED_VMIDS",
  "MCP_ALLOWED_NODES",
  "MCP_PROTECTED_TAG",
  "MCP_STATE_SECRET",
  "MCP_DRAIN_S",
  "LOG_LEVEL",
] as const;

type EnvName = typeof ENV_VARS[number];

const bool = (name: EnvName) =>
  z.pipe(
    z.enum(["1", "0", "true", "false", "yes", "no", "on", "off"], {
      error: `${name} must be true or false`,
    }),
    z.transform((v) => ["1", "true", "yes", "on"].includes(v)),
  );

const SECRET_NAMES: ReadonlySet<string> = new Set([
  "PROXMOX_PASSWORD",
  "PROXMOX_TOKEN_SECRET",
  "MCP_AUTH_TOKEN",
  "MCP_STATE_SECRET",
]);

const nonEmpty = (error: string) => z.string().check(z.minLength(1, { error }));

const USER = /^[^\s@]+@[^\s@]+$/;
const TOKEN_ID = /^(?:[^\s@!]+@[^\s@!]+!)?[A-Za-z][A-Za-z0-9.\-_]+$/;
const TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

const EnvSchema = z.object({
  PROXMOX_URL: z.optional(z.string()),
  PROXMOX_USER: z.optional(
    z.string().check(z.regex(USER, {
      error: "PROXMOX_USER must look like user@realm (e.g. root@pam)",
    })),
  ),
  PROXMOX_PASSWORD: z.optional(nonEmpty("PROXMOX_PASSWORD must not be empty")),
  PROXMOX_TOKEN_ID: z.optional(
    z.string().check(z.regex(
      TOKEN_ID,
      {
        error:
          "PROXMOX_TOKEN_ID must be user@realm!tokenid (or tokenid with PROXMOX_USER set)",
      },
    )),
  ),
  PROXMOX_TOKEN_SECRET: z.optional(
    nonEmpty("PROXMOX_TOKEN_SECRET must not be empty"),
  ),
  PROXMOX_VERIFY_SSL: z._default(bool("PROXMOX_VERIFY_SSL"), true),
  PROXMOX_CA_FILE: z.optional(nonEmpty("PROXMOX_CA_FILE must name a file")),
  PROXMOX_TLS_FINGERPRINT: z.optional(z.string()),
  PROXMOX_TIMEOUT: z._default(
    z.coerce.number({ error: "PROXMOX_TIMEOUT must be a number of seconds" })
      .check(z.positive({
        error: "PROXMOX_TIMEOUT must be a positive number of seconds",
      })),
    30,
  ),
  PROXMOX_CONFIG: z.optional(nonEmpty("PROXMOX_CONFIG must name a file")),
  MCP_TRANSPORT: z._default(
    z.enum(["stdio", "http", "sse"], {
      error: "MCP_TRANSPORT must be one of stdio, http, sse",
    }),
    "stdio",
  ),
  MCP_HOST: z._default(nonEmpty("MCP_HOST must not be empty"), "127.0.0.1"),
  MCP_PORT: z._default(
    z.coerce.number({ error: "MCP_PORT must be a port number" }).check(
      z.int({ error: "MCP_PORT must be a whole port number" }),
      z.minimum(0, { error: "MCP_PORT must be 0-65535" }),
      z.maximum(65535, { error: "MCP_PORT must be 0-65535" }),
    ),
    8000,
  ),
  MCP_AUTH_TOKEN: z.optional(
    z.string().check(z.minLength(16, {
      error: "MCP_AUTH_TOKEN must be at least 16 characters",
    })),
  ),
  MCP_ALLOWED_HOSTS: z.optional(z.string()),
  MCP_ALLOWED_ORIGINS: z.optional(z.string()),
  MCP_MAX_CONNECTIONS: z._default(
    z.coerce.number({ error: "MCP_MAX_CONNECTIONS must be a number" }).check(
      z.int({ error: "MCP_MAX_CONNECTIONS must be a whole number" }),
      z.minimum(1, { error: "MCP_MAX_CONNECTIONS must be at least 1" }),
    ),
    256,
  ),
  MCP_READ_ONLY: z._default(bool("MCP_READ_ONLY"), false),
  MCP_CONFIRM: z._default(
    z.enum(["auto", "always", "never"], {
      error: "MCP_CONFIRM must be one of auto, always, never",
    }),
    "auto",
  ),
  MCP_AUDIT_FILE: z.optional(nonEmpty("MCP_AUDIT_FILE must name a file")),
  MCP_LOCKDOWN: z._default(bool("MCP_LOCKDOWN"), false),
  MCP_HIDE_UNPERMITTED: z._default(bool("MCP_HIDE_UNPERMITTED"), false),
  MCP_TOOLSETS: z.optional(z.string()),
  MCP_ALLOWED_VMIDS: z.optional(z.string()),
  MCP_ALLOWED_NODES: z.optional(z.string()),
  MCP_PROTECTED_TAG: z._default(
    z.string().check(z.regex(TAG, {
      error: "MCP_PROTECTED_TAG must be a Proxmox tag: letters, digits, '_-+.'",
    })),
    "mcp-protected",
  ),
  MCP_STATE_SECRET: z.optional(
    z.string().check(z.minLength(32, {
      error:
        "MCP_STATE_SECRET must be at least 32 characters (e.g. openssl rand -hex 32)",
    })),
  ),
  MCP_DRAIN_S: z._default(
    z.coerce.number({ error: "MCP_DRAIN_S must be a number of seconds" })
      .check(
        z.minimum(0, { error: "MCP_DRAIN_S must be 0 or more seconds" }),
        // A timer longer than 2^31-1 ms would fire at once: no drain at all.
        z.maximum(MAX_DRAIN_S, {
          error: `MCP_DRAIN_S must be at most ${MAX_DRAIN_S} seconds`,
        }),
      ),
    5,
  ),
  LOG_LEVEL: z._default(
    z.enum(["DEBUG", "INFO", "WARNING", "ERROR"], {
      error: "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR",
    }),
    "INFO",
  ),
});

export type Auth =
  | { kind: "password"; user: string; password: string }
  | { kind: "token"; tokenId: string; secret: string };

export interface Config {
  /** Base URL of the Proxmox API, e.g. `https://pve:8006` (no `/api2/json`). */
  proxmoxUrl: string;
  auth: Auth;
  verifySsl: boolean;
  caFile?: string;
  /**
   * SHA-256 fingerprints the Proxmox certificate is pinned to (`AA:BB:…`);
   * when set, only the pin decides (neither a CA nor verification applies).
   */
  tlsFingerprints?: string[];
  /** Per-request timeout in milliseconds. */
  timeoutMs: number;
  transport: "stdio" | "http" | "sse";
  host: string;
  port: number;
  authToken?: string;
  allowedHosts: string[];
  /** Browser origins allowed to call the HTTP transport (none by default). */
  allowedOrigins?: string[];
  /** HTTP connections served at once; one more is answered 503. */
  maxConnections?: number;
  readOnly: boolean;
  /**
   * When a destructive tool asks the human first: `auto` (when the client
   * can ask), `always` (refuse when it cannot), `never`.
   */
  confirm: "auto" | "always" | "never";
  /** Append one JSON line per changing call here (created 0600). */
  auditFile?: string;
  /** Guest output (command output, file contents) only after the human agrees. */
  lockdown?: boolean;
  /**
   * Hide the tools the Proxmox credential cannot use, once its permissions
   * are read after the first login (clients get tools/list_changed).
   */
  hideUnpermitted?: boolean;
  /** Enabled toolsets; undefined means the defaults. */
  toolsets?: string[];
  /** VMIDs this server sees and acts on, as sorted inclusive ranges (all when absent). */
  allowedVmids?: [number, number][];
  /** Nodes this server sees and acts on (all when absent). */
  allowedNodes?: string[];
  /** A guest with this tag (or PVE's protection flag) is read-only to this server. */
  protectedTag?: string;
  logLevel: "DEBUG" | "INFO" | "WARNING" | "ERROR";
  /**
   * MCP_STATE_SECRET: the key of the state a question to the human carries
   * (confirmations, lockdown holds) is derived from it, so that replicas
   * sharing it take each other's answers. Absent: a random key per process.
   */
  stateSecret?: string;
  /**
   * MCP_DRAIN_S: after SIGTERM, /healthz answers 503 this long (ms) while
   * calls are still served, so that a load balancer stops sending first.
   */
  drainMs?: number;
  /** Run against the embedded simulator. */
  demo: boolean;
  /**
   * The clusters PROXMOX_CONFIG names, in the file's order; absent with the
   * PROXMOX_* variables (one cluster, `default`). The fields above that
   * describe one cluster (proxmoxUrl, auth, TLS, scope) are the first one's.
   */
  clusters?: ClusterConfig[];
}

/** One cluster of PROXMOX_CONFIG: where it is, how to log in, its scope. */
export interface ClusterConfig {
  name: string;
  proxmoxUrl: string;
  auth: Auth;
  verifySsl: boolean;
  caFile?: string;
  tlsFingerprints?: string[];
  allowedVmids?: [number, number][];
  allowedNodes?: string[];
  protectedTag?: string;
  /**
   * The scope keys the file sets for this cluster; the others come from
   * MCP_ALLOWED_VMIDS / MCP_ALLOWED_NODES (refusals name where each did).
   */
  scopeInFile: { allowedVmids: boolean; allowedNodes: boolean };
}

/** A config as one cluster sees it: its connection and scope in the top-level fields. */
export function clusterView(config: Config, c: ClusterConfig): Config {
  return {
    ...config,
    proxmoxUrl: c.proxmoxUrl,
    auth: c.auth,
    verifySsl: c.verifySsl,
    caFile: c.caFile,
    tlsFingerprints: c.tlsFingerprints,
    allowedVmids: c.allowedVmids,
    allowedNodes: c.allowedNodes,
    protectedTag: c.protectedTag,
  };
}

/** A configuration problem: the message is safe to print. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export const HELP = `proxmox-mcp ${VERSION} — MCP server for Proxmox VE

Usage: proxmox-mcp [options]

Options (each overrides its environment variable):
  --transport stdio|http|sse   MCP_TRANSPORT (default stdio)
  --host ADDR                  MCP_HOST (default 127.0.0.1)
  --port N                     MCP_PORT (default 8000)
  --read-only                  MCP_READ_ONLY: only tools that change nothing
  --toolsets a,b               MCP_TOOLSETS: enabled toolsets (default all)
  --demo                       serve an embedded simulated cluster (no Proxmox needed)
  --help, --version

Proxmox: PROXMOX_URL, PROXMOX_USER + PROXMOX_PASSWORD, or PROXMOX_TOKEN_ID +
PROXMOX_TOKEN_SECRET; PROXMOX_VERIFY_SSL (default true), PROXMOX_CA_FILE,
PROXMOX_TLS_FINGERPRINT (SHA-256, as \`pvenode cert info\` prints it),
PROXMOX_TIMEOUT (seconds).
Several clusters: PROXMOX_CONFIG=file.json instead of the PROXMOX_URL, login and
TLS variables: {"clusters": {"home": {"url", "tokenId", "tokenSecret"}, "lab": {"url",
"user", "password", "verifySsl", "caFile", "fingerprint", "allowedVmids", "allowedNodes",
"protectedTag"}}}; a secret may be {"env": "PROXMOX_..."} (PROXMOX_* and MCP_* only).
HTTP: MCP_AUTH_TOKEN, MCP_ALLOWED_HOSTS, MCP_ALLOWED_ORIGINS,
MCP_MAX_CONNECTIONS (default 256), MCP_STATE_SECRET (replicas: the same on each),
MCP_DRAIN_S (default 5). Scope: MCP_ALLOWED_VMIDS (e.g. 100-199,250),
MCP_ALLOWED_NODES (names), MCP_PROTECTED_TAG (default mcp-protected). LOG_LEVEL.
`;

/**
 * A password as read from the environment (PROXMOX_PASSWORD, or a variable
 * PROXMOX_CONFIG names): trailing line breaks, which a secrets file's last
 * line brings, are dropped; spaces are kept, since a Proxmox or PAM password
 * may begin or end with one. Only whitespace counts as empty.
 */
function envPassword(value: string): string {
  return value.trim() === "" ? "" : value.replace(/[\r\n]+$/, "");
}

export type CliResult =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; config: Config };

/**
 * Parses flags and the environment into a Config. Throws ConfigError with one
 * line naming the setting at fault.
 */
export function loadConfig(
  args: string[],
  env: Record<string, string | undefined>,
  overrides: Partial<Config> = {},
): CliResult {
  const flags = parseFlags(args);
  if (flags.help) return { kind: "help" };
  if (flags.version) return { kind: "version" };

  const raw: Record<string, string | undefined> = {};
  for (const name of ENV_VARS) {
    const v = env[name];
    if (v !== undefined && v !== "") {
      raw[name] = name === "PROXMOX_PASSWORD" ? envPassword(v) : v.trim();
    }
  }
  if (flags.transport !== undefined) raw.MCP_TRANSPORT = flags.transport;
  if (flags.host !== undefined) raw.MCP_HOST = flags.host;
  if (flags.port !== undefined) raw.MCP_PORT = flags.port;
  if (flags.toolsets !== undefined) raw.MCP_TOOLSETS = flags.toolsets;
  if (flags["read-only"]) raw.MCP_READ_ONLY = "true";

  const parsed = EnvSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0] ?? "configuration");
    // zod may quote the received value: never print it for a secret.
    // Our own messages never quote values; zod's might.
    const msg = issue.message.startsWith(name)
      ? issue.message
      : SECRET_NAMES.has(name)
      ? `${name} is invalid`
      : `${name}: ${issue.message}`;
    throw new ConfigError(msg);
  }
  const e = parsed.data;
  const demo = flags.demo === true;

  let auth: Auth;
  let proxmoxUrl = "";
  let clusters: ClusterConfig[] | undefined;
  if (demo) {
    auth = { kind: "password", user: "root@pam", password: "demo" };
  } else if (e.PROXMOX_CONFIG) {
    const both = CLUSTER_ENV.filter((n) => e[n] !== undefined);
    if (both.length) {
      throw new ConfigError(
        `PROXMOX_CONFIG and ${
          both.join(", ")
        } are both set: with PROXMOX_CONFIG, each cluster's address, login and TLS settings are in the file`,
      );
    }
    clusters = parseClusterFile(e.PROXMOX_CONFIG, env, {
      allowedVmids: e.MCP_ALLOWED_VMIDS,
      allowedNodes: e.MCP_ALLOWED_NODES,
      protectedTag: e.MCP_PROTECTED_TAG,
      verifySsl: e.PROXMOX_VERIFY_SSL,
    });
    ({ proxmoxUrl, auth } = clusters[0]);
  } else {
    if (!e.PROXMOX_URL) {
      throw new ConfigError(
        "PROXMOX_URL is not set: expected the Proxmox address, e.g. https://pve.example.com:8006 (or PROXMOX_CONFIG, a file naming several clusters)",
      );
    }
    proxmoxUrl = parseProxmoxUrl(e.PROXMOX_URL);
    auth = loginOf({
      user: e.PROXMOX_USER,
      password: e.PROXMOX_PASSWORD,
      tokenId: e.PROXMOX_TOKEN_ID,
      tokenSecret: e.PROXMOX_TOKEN_SECRET,
    }, ENV_LOGIN);
  }

  const first = clusters?.[0];
  const config: Config = {
    proxmoxUrl,
    auth,
    verifySsl: first?.verifySsl ?? e.PROXMOX_VERIFY_SSL,
    caFile: first ? first.caFile : e.PROXMOX_CA_FILE,
    tlsFingerprints: first
      ? first.tlsFingerprints
      : parseFingerprints(e.PROXMOX_TLS_FINGERPRINT, proxmoxUrl),
    timeoutMs: e.PROXMOX_TIMEOUT * 1000,
    transport: e.MCP_TRANSPORT,
    host: e.MCP_HOST,
    port: e.MCP_PORT,
    authToken: e.MCP_AUTH_TOKEN,
    allowedHosts: (e.MCP_ALLOWED_HOSTS ?? "").split(",").map((s) => s.trim())
      .filter(Boolean),
    allowedOrigins: (e.MCP_ALLOWED_ORIGINS ?? "").split(",").map((s) =>
      s.trim()
    ).filter(Boolean),
    maxConnections: e.MCP_MAX_CONNECTIONS,
    readOnly: e.MCP_READ_ONLY,
    confirm: e.MCP_CONFIRM,
    auditFile: e.MCP_AUDIT_FILE,
    lockdown: e.MCP_LOCKDOWN,
    hideUnpermitted: e.MCP_HIDE_UNPERMITTED,
    toolsets: e.MCP_TOOLSETS?.split(",").map((s) => s.trim()).filter(Boolean),
    allowedVmids: first
      ? first.allowedVmids
      : parseVmidRanges(e.MCP_ALLOWED_VMIDS),
    allowedNodes: first
      ? first.allowedNodes
      : parseNodeList(e.MCP_ALLOWED_NODES),
    protectedTag: first?.protectedTag ?? e.MCP_PROTECTED_TAG,
    logLevel: e.LOG_LEVEL,
    stateSecret: e.MCP_STATE_SECRET,
    drainMs: e.MCP_DRAIN_S * 1000,
    demo,
    ...(clusters ? { clusters } : {}),
    ...overrides,
  };
  if (
    config.transport !== "stdio" && !config.authToken &&
    !isLoopback(config.host)
  ) {
    throw new ConfigError(
      `MCP_HOST is ${config.host}, beyond loopback: set MCP_AUTH_TOKEN before listening there`,
    );
  }
  return { kind: "run", config };
}

const BOOLEAN_FLAGS: Record<string, string> = {
  help: "help",
  h: "help",
  version: "version",
  V: "version",
  demo: "demo",
  "read-only": "read-only",
};
const STRING_FLAGS = new Set(["transport", "host", "port", "toolsets"]);

interface Flags {
  help?: boolean;
  version?: boolean;
  demo?: boolean;
  "read-only"?: boolean;
  transport?: string;
  host?: string;
  port?: string;
  toolsets?: string;
}

/**
 * The command line: `--flag`, `--name value` or `--name=value`. Hand-written
 * because node:util alone costs a third of a bare Deno start (measured).
 */
function parseFlags(args: string[]): Flags {
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/.exec(arg);
    if (!m) {
      throw new ConfigError(`Unexpected argument '${arg}'; see --help`);
    }
    const [, name, inline] = m;
    if (BOOLEAN_FLAGS[name] && (name.length === 1) === !arg.startsWith("--")) {
      if (inline !== undefined) {
        throw new ConfigError(`Option '--${name}' takes no value; see --help`);
      }
      flags[BOOLEAN_FLAGS[name]] = true;
    } else if (STRING_FLAGS.has(name) && arg.startsWith("--")) {
      const value = inline ?? args[++i];
      if (
        value === undefined || (inline === undefined && value.startsWith("--"))
      ) {
        throw new ConfigError(
          `Option '--${name} <value>' needs a value; see --help`,
        );
      }
      flags[name] = value;
    } else {
      throw new ConfigError(`Unknown option '${arg}'; see --help`);
    }
  }
  return flags as Flags;
}

/** True for addresses that only this machine can reach. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * PROXMOX_TLS_FINGERPRINT: one or more SHA-256 fingerprints (comma-separated,
 * for a certificate change), each as `pvenode cert info` prints it
 * (`AA:BB:…`), lower case or without colons too; returned as `AA:BB:…`.
 * `name` and `urlName` say where the values come from, for errors.
 */
function parseFingerprints(
  value: string | undefined,
  proxmoxUrl: string,
  name = "PROXMOX_TLS_FINGERPRINT",
  urlName = "PROXMOX_URL",
): string[] | undefined {
  if (value === undefined) return undefined;
  const out: string[] = [];
  for (const part of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const hex = part.replace(/:/g, "");
    if (/^[0-9a-f]{40}$/i.test(hex)) {
      throw new ConfigError(
        `${name} is a SHA-1 fingerprint: use the SHA-256 one (32 bytes, as \`pvenode cert info\` prints it)`,
      );
    }
    if (
      !/^([0-9a-f]{2}:){31}[0-9a-f]{2}$/i.test(part) &&
      !/^[0-9a-f]{64}$/i.test(part)
    ) {
      throw new ConfigError(
        `${name} must be a SHA-256 fingerprint: 32 hex bytes as \`pvenode cert info\` prints them (AA:BB:…:FF)`,
      );
    }
    out.push(hex.toUpperCase().match(/../g)!.join(":"));
  }
  if (out.length === 0) return undefined;
  if (proxmoxUrl.startsWith("http:")) {
    throw new ConfigError(
      `${name} is set but ${urlName} is http://: a fingerprint pins an https:// certificate`,
    );
  }
  return out;
}

/**
 * MCP_ALLOWED_VMIDS: ids and inclusive ranges (`100-199,250`), returned
 * sorted with overlapping or adjacent ranges merged.
 */
function parseVmidRanges(
  value: string | undefined,
  name = "MCP_ALLOWED_VMIDS",
): [number, number][] | undefined {
  if (value === undefined) return undefined;
  const ranges: [number, number][] = [];
  for (const part of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d{1,9})(?:\s*-\s*(\d{1,9}))?$/.exec(part);
    if (!m) {
      throw new ConfigError(
        `Cannot parse ${name}: '${part}' is neither a VMID nor a range like 100-199`,
      );
    }
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (lo < 100 || hi < lo) {
      throw new ConfigError(
        `Cannot parse ${name}: '${part}' is not a range of VMIDs (100-999999999, low to high)`,
      );
    }
    ranges.push([lo, hi]);
  }
  if (ranges.length === 0) {
    throw new ConfigError(
      `Cannot parse ${name}: missing VMIDs (e.g. 100-199,250)`,
    );
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [ranges[0]];
  for (const [lo, hi] of ranges.slice(1)) {
    const last = merged[merged.length - 1];
    if (lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  return merged;
}

/** MCP_ALLOWED_NODES: node names, comma-separated. */
function parseNodeList(
  value: string | undefined,
  name = "MCP_ALLOWED_NODES",
): string[] | undefined {
  if (value === undefined) return undefined;
  const nodes = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of nodes) {
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(n) || n.length > 63) {
      throw new ConfigError(
        `Cannot parse ${name}: '${n}' is not a node name (letters, digits and '-')`,
      );
    }
  }
  if (nodes.length === 0) {
    throw new ConfigError(
      `Cannot parse ${name}: missing node names (e.g. pve1,pve2)`,
    );
  }
  return nodes;
}

function parseProxmoxUrl(value: string, name = "PROXMOX_URL"): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      `Cannot parse ${name}: expected e.g. https://pve.example.com:8006`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(`${name} must start with https:// (or http://)`);
  }
  if (url.username || url.password) {
    throw new ConfigError(
      `${name} must not carry credentials: ${
        name === "PROXMOX_URL"
          ? "use PROXMOX_USER/PROXMOX_PASSWORD or a token"
          : "use the cluster's user/password or tokenId/tokenSecret"
      }`,
    );
  }
  const path = url.pathname.replace(/\/+$/, "").replace(/\/api2\/json$/, "");
  return `${url.protocol}//${url.host}${path}`;
}

/** What a login is made of, by the names its settings go by (for errors). */
interface Login {
  user?: string;
  password?: string;
  tokenId?: string;
  tokenSecret?: string;
}

const ENV_LOGIN = {
  user: "PROXMOX_USER",
  password: "PROXMOX_PASSWORD",
  tokenId: "PROXMOX_TOKEN_ID",
  tokenSecret: "PROXMOX_TOKEN_SECRET",
} as const;

/** A password or a token login; `prefix` starts each error (the cluster). */
function loginOf(
  v: Login,
  n: Record<keyof Login, string>,
  prefix = "",
): Auth {
  const fail = (msg: string) => new ConfigError(prefix + msg);
  const hasToken = v.tokenId !== undefined || v.tokenSecret !== undefined;
  if (hasToken && v.password !== undefined) {
    throw fail(
      `Both ${n.password} and ${n.tokenId}/${n.tokenSecret} are set: configure one login method`,
    );
  }
  if (hasToken) {
    if (!v.tokenId || !v.tokenSecret) {
      throw fail(`${n.tokenId} and ${n.tokenSecret} must be set together`);
    }
    let tokenId = v.tokenId;
    if (!tokenId.includes("!")) {
      if (!v.user) {
        throw fail(
          `${n.tokenId} has no user: set it as user@realm!tokenid or set ${n.user}`,
        );
      }
      tokenId = `${v.user}!${tokenId}`;
    }
    return { kind: "token", tokenId, secret: v.tokenSecret };
  }
  if (!v.user || !v.password) {
    throw fail(
      `No Proxmox login: set ${n.user} and ${n.password}, or ${n.tokenId} and ${n.tokenSecret}`,
    );
  }
  return { kind: "password", user: v.user, password: v.password };
}

/**
 * The PROXMOX_* variables that describe one cluster: with PROXMOX_CONFIG
 * they are in the file, and setting both is an error (the secrets may be
 * set: the file can name them with `{"env": "PROXMOX_PASSWORD"}`).
 */
const CLUSTER_ENV = [
  "PROXMOX_URL",
  "PROXMOX_USER",
  "PROXMOX_TOKEN_ID",
  "PROXMOX_CA_FILE",
  "PROXMOX_TLS_FINGERPRINT",
] as const;

/** A cluster's name: short, lower case, safe in messages, logs and enums. */
const CLUSTER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * Environment variables a PROXMOX_CONFIG secret may name: the ones the
 * shipped tasks and binaries may read (`--allow-env=PROXMOX_*,MCP_*`), so a
 * config file cannot reach any other variable of the process.
 */
const SECRET_ENV = /^(PROXMOX|MCP)_[A-Z0-9_]+$/;

/** A secret: the value itself, or the environment variable holding it. */
const Secret = z.union([z.string(), z.strictObject({ env: z.string() })]);

const ClusterSchema = z.strictObject({
  url: z.string(),
  user: z.optional(z.string()),
  password: z.optional(Secret),
  tokenId: z.optional(z.string()),
  tokenSecret: z.optional(Secret),
  verifySsl: z.optional(z.boolean()),
  caFile: z.optional(z.string()),
  fingerprint: z.optional(z.string()),
  allowedVmids: z.optional(z.string()),
  allowedNodes: z.optional(z.string()),
  protectedTag: z.optional(z.string()),
});
const CLUSTER_KEYS = Object.keys(ClusterSchema.def.shape);

const ClusterFileSchema = z.strictObject({
  clusters: z.record(z.string(), ClusterSchema),
});

/** What every cluster takes from the environment unless its entry says. */
interface ClusterDefaults {
  allowedVmids?: string;
  allowedNodes?: string;
  protectedTag: string;
  verifySsl: boolean;
}

/**
 * PROXMOX_CONFIG: `{"clusters": {"name": {url, login, TLS, scope}}}`, read
 * now (main.ts gives up file access after start-up). A secret may be
 * `{"env": "PROXMOX_…"}`. Errors name the file, the cluster and the key,
 * never a value.
 */
function parseClusterFile(
  file: string,
  env: Record<string, string | undefined>,
  defaults: ClusterDefaults,
): ClusterConfig[] {
  const where = `PROXMOX_CONFIG ${file}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new ConfigError(
      `Cannot read ${where}: ${(e as Error).message.split("\n")[0]}${
        e instanceof Deno.errors.NotCapable
          ? ` (grant --allow-read=${file})`
          : ""
      }`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // V8 may quote the text around the fault (a secret, perhaps): say only where.
    const at = /line \d+ column \d+|position \d+/.exec(String(e))?.[0];
    throw new ConfigError(
      `Cannot parse ${where}: not JSON${at ? ` (${at})` : ""}`,
    );
  }
  // Names first, on the file's own keys: parsed, a cluster named __proto__
  // would vanish (its object becomes the prototype) instead of being refused.
  const named = (raw as { clusters?: unknown } | null)?.clusters;
  if (named && typeof named === "object" && !Array.isArray(named)) {
    for (const name of Object.keys(named)) {
      if (!CLUSTER_NAME.test(name)) {
        throw new ConfigError(
          `${where}: cluster name ${
            quoted(name)
          } must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter`,
        );
      }
    }
  }
  const parsed = ClusterFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `${where}: ${fileIssue(parsed.error.issues[0], raw)}`,
    );
  }
  const entries = Object.entries(parsed.data.clusters);
  if (entries.length === 0) {
    throw new ConfigError(
      `${where} names no cluster: expected {"clusters": {"name": {"url": …}}}`,
    );
  }
  return entries.map(([name, c]) => {
    const of = (key: string) => `${key} of cluster '${name}' in ${where}`;
    const secret = (key: "password" | "tokenSecret"): string | undefined => {
      const s = c[key];
      if (s === undefined) return undefined;
      if (typeof s === "string") {
        if (!s) throw new ConfigError(`${of(key)} is empty`);
        return s;
      }
      if (!SECRET_ENV.test(s.env)) {
        // Not quoted: what stands there may be the secret itself, put in
        // place of the variable's name.
        throw new ConfigError(
          `${
            of(key)
          } names a variable the server may not read: only PROXMOX_* and MCP_* variables (upper case) may hold secrets`,
        );
      }
      let value: string | undefined;
      try {
        value = env[s.env];
      } catch (e) {
        throw new ConfigError(
          `${of(key)}: cannot read ${s.env}: ${
            (e as Error).message.split("\n")[0]
          } (grant --allow-env=${s.env}; the shipped tasks grant PROXMOX_* and MCP_*)`,
        );
      }
      if (!value) {
        throw new ConfigError(`${of(key)}: the variable ${s.env} is not set`);
      }
      // As the same setting read from PROXMOX_PASSWORD or PROXMOX_TOKEN_SECRET.
      value = key === "password" ? envPassword(value) : value.trim();
      if (!value) {
        throw new ConfigError(`${of(key)}: the variable ${s.env} is empty`);
      }
      return value;
    };
    if (c.user !== undefined && !USER.test(c.user)) {
      throw new ConfigError(
        `${of("user")} must look like user@realm (e.g. root@pam)`,
      );
    }
    if (c.tokenId !== undefined && !TOKEN_ID.test(c.tokenId)) {
      throw new ConfigError(
        `${
          of("tokenId")
        } must be user@realm!tokenid (or tokenid with user set)`,
      );
    }
    if (c.protectedTag !== undefined && !TAG.test(c.protectedTag)) {
      throw new ConfigError(
        `${of("protectedTag")} must be a Proxmox tag: letters, digits, '_-+.'`,
      );
    }
    const proxmoxUrl = parseProxmoxUrl(c.url, of("url"));
    return {
      name,
      proxmoxUrl,
      auth: loginOf({
        user: c.user,
        password: secret("password"),
        tokenId: c.tokenId,
        tokenSecret: secret("tokenSecret"),
      }, {
        user: "user",
        password: "password",
        tokenId: "tokenId",
        tokenSecret: "tokenSecret",
      }, `Cluster '${name}' in ${where}: `),
      verifySsl: c.verifySsl ?? defaults.verifySsl,
      caFile: c.caFile || undefined,
      tlsFingerprints: parseFingerprints(
        c.fingerprint,
        proxmoxUrl,
        of("fingerprint"),
        of("url"),
      ),
      allowedVmids: parseVmidRanges(
        c.allowedVmids ?? defaults.allowedVmids,
        c.allowedVmids === undefined ? undefined : of("allowedVmids"),
      ),
      allowedNodes: parseNodeList(
        c.allowedNodes ?? defaults.allowedNodes,
        c.allowedNodes === undefined ? undefined : of("allowedNodes"),
      ),
      protectedTag: c.protectedTag ?? defaults.protectedTag,
      scopeInFile: {
        allowedVmids: c.allowedVmids !== undefined,
        allowedNodes: c.allowedNodes !== undefined,
      },
    };
  });
}

/** A key of PROXMOX_CONFIG as an error shows it: quoted, one line, cut short. */
function quoted(key: string): string {
  // deno-lint-ignore no-control-regex
  return `'${key.slice(0, 40).replace(/[\x00-\x1f\x7f]/g, "?")}'`;
}

/** One schema issue of PROXMOX_CONFIG, by path, with no value quoted. */
function fileIssue(
  issue: { code: string; path: PropertyKey[]; keys?: string[] },
  raw: unknown,
): string {
  const path = issue.path.map(String);
  let value: unknown = raw;
  for (const p of path) {
    value = value && typeof value === "object"
      ? (value as Record<string, unknown>)[p]
      : undefined;
  }
  const [, name, key] = path;
  const at = path.length === 0
    ? "the file"
    : path.length === 1
    ? quoted(path[0])
    : path.length === 2
    ? `cluster ${quoted(name)}`
    : `${key} of cluster ${quoted(name)}`;
  if (issue.code === "unrecognized_keys") {
    const keys = (issue.keys ?? []).map(quoted).join(", ");
    return path.length === 0
      ? `unknown key ${keys}: the file holds {"clusters": {…}}`
      : path.length > 2
      ? `unknown key ${keys} in ${at} (a secret is a string or {"env": "NAME"})`
      : `unknown key ${keys} in ${at} (known: ${CLUSTER_KEYS.join(", ")})`;
  }
  if (value === undefined) return `${at} is missing`;
  const expected = path.length === 0
    ? `an object {"clusters": {…}}`
    : path.length === 1
    ? `an object of clusters by name`
    : path.length === 2
    ? "an object"
    : key === "password" || key === "tokenSecret"
    ? `a string or {"env": "NAME"}`
    : key === "verifySsl"
    ? "true or false"
    : "a string";
  return `${at} must be ${expected}`;
}

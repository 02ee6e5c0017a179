/**
 * CLI entry: flags + environment → Config → transport. The only place that
 * exits the process. Start-up is measured (bench/cold_start.ts): this module
 * loads only the config; the SDK, the tools and the Proxmox client load behind
 * the first reply (src/app.ts).
 */
import {
  type Config,
  ConfigError,
  ENV_VARS,
  HELP,
  loadConfig,
  VERSION,
} from "./config.ts";

const encoder = new TextEncoder();

function fail(message: string, code = 2): never {
  Deno.stderr.writeSync(encoder.encode(`proxmox-mcp: ${message}\n`));
  Deno.exit(code);
}

/**
 * The environment as loadConfig reads it: every variable it knows, and on
 * demand the ones a PROXMOX_CONFIG secret names (`{"env": "PROXMOX_…"}`).
 */
function readEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of ENV_VARS) env[name] = Deno.env.get(name);
  return new Proxy(env, {
    get: (known, name) =>
      typeof name !== "string" || name in known
        ? known[name as string]
        : Deno.env.get(name),
  });
}

/**
 * PROXMOX_CA_FILE (or each cluster's `caFile` in PROXMOX_CONFIG), read once
 * at start; then file access is given up (the server reads no other file),
 * so the broad --allow-read the shipped tasks grant for it is gone before
 * anything is served. With PROXMOX_CONFIG: the CAs by cluster name.
 */
async function readCa(
  config: Config,
): Promise<string | Record<string, string> | undefined> {
  try {
    if (config.demo) return undefined;
    if (config.clusters) {
      const cas: Record<string, string> = {};
      for (const c of config.clusters) {
        const pem = await readCaFile(
          c,
          (file) => `caFile ${file} of cluster '${c.name}' in PROXMOX_CONFIG`,
          "its fingerprint",
        );
        if (pem) cas[c.name] = pem;
      }
      return cas;
    }
    return await readCaFile(
      config,
      (file) => `PROXMOX_CA_FILE ${file}`,
      "PROXMOX_TLS_FINGERPRINT",
    );
  } finally {
    await Deno.permissions.revoke({ name: "read" });
  }
}

/** One CA file; `name` says where it is set and `pin` the setting that needs none. */
async function readCaFile(
  c: Pick<Config, "caFile" | "tlsFingerprints">,
  name: (file: string) => string,
  pin: string,
): Promise<string | undefined> {
  // A pinned fingerprint needs no CA file.
  if (!c.caFile || c.tlsFingerprints?.length) return undefined;
  try {
    const pem = await Deno.readTextFile(c.caFile);
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new ConfigError(
        `${
          name(c.caFile)
        } holds no PEM certificate (-----BEGIN CERTIFICATE-----): use the cluster's CA, /etc/pve/pve-root-ca.pem on a node`,
      );
    }
    return pem;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(
      `Cannot read ${name(c.caFile)}: ${(e as Error).message.split("\n")[0]}${
        e instanceof Deno.errors.NotCapable
          ? ` (grant --allow-read=${c.caFile}, or pin the certificate with ${pin}, which needs no file)`
          : ""
      }`,
    );
  }
}

async function main(): Promise<void> {
  const parsed = loadConfig(Deno.args, readEnv());
  if (parsed.kind === "help") {
    Deno.stdout.writeSync(encoder.encode(HELP));
    return;
  }
  if (parsed.kind === "version") {
    Deno.stdout.writeSync(encoder.encode(`proxmox-mcp ${VERSION}\n`));
    return;
  }
  const config = parsed.config;
  if (config.auditFile) {
    // Opened (created 0600) now: a file the process cannot write stops the
    // server before it serves anything; before readCa gives up file reads,
    // so that the mode of an existing file can be checked.
    await (await import("./safety/audit.ts")).openAuditFile(config.auditFile);
  }
  const caCert = await readCa(config);
  const load = async () => (await import("./app.ts")).boot(config, caCert);
  const { TRANSPORTS } = await import("./transports/mod.ts");
  await TRANSPORTS[config.transport](config, load);
  // The client is gone (stdin closed) or the server drained after a signal:
  // exit even if something (the demo's simulator, a pending Proxmox request,
  // a connection past the grace period) would keep the process alive.
  Deno.exit(0);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    if (e instanceof ConfigError || e instanceof RangeError) fail(e.message);
    if (e instanceof Deno.errors.NotCapable) {
      fail(
        `Missing permission: ${
          (e as Error).message.split("\n")[0]
        } (grant it with the flag it names, e.g. --allow-net=<host:port>)`,
      );
    }
    fail(`Cannot start: ${(e as Error)?.message ?? e}`, 1);
  }
}

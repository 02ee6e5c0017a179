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

function readEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of ENV_VARS) env[name] = Deno.env.get(name);
  return env;
}

/**
 * PROXMOX_CA_FILE, read once at start; then file access is given up (the
 * server reads no other file), so the broad --allow-read the shipped tasks
 * grant for it is gone before anything is served.
 */
async function readCa(config: Config): Promise<string | undefined> {
  try {
    // The demo and a pinned fingerprint need no CA file.
    if (!config.caFile || config.demo || config.tlsFingerprints?.length) {
      return undefined;
    }
    const pem = await Deno.readTextFile(config.caFile);
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new ConfigError(
        `PROXMOX_CA_FILE ${config.caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----): use the cluster's CA, /etc/pve/pve-root-ca.pem on a node`,
      );
    }
    return pem;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(
      `Cannot read PROXMOX_CA_FILE ${config.caFile}: ${
        (e as Error).message.split("\n")[0]
      }${
        e instanceof Deno.errors.NotCapable
          ? ` (grant --allow-read=${config.caFile}, or pin the certificate with PROXMOX_TLS_FINGERPRINT, which needs no file)`
          : ""
      }`,
    );
  } finally {
    await Deno.permissions.revoke({ name: "read" });
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

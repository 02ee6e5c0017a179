/**
 * CLI entry: flags + environment → Config → PveClient → server → transport.
 * The only place that exits the process.
 */
import { ConfigError, ENV_VARS, HELP, loadConfig, VERSION } from "./config.ts";
import { addSecret, logger, setupLogging } from "./log.ts";
import { PveClient } from "./proxmox/client.ts";

function fail(message: string, code = 2): never {
  Deno.stderr.writeSync(new TextEncoder().encode(`proxmox-mcp: ${message}\n`));
  Deno.exit(code);
}

function readEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of ENV_VARS) env[name] = Deno.env.get(name);
  return env;
}

async function main(): Promise<void> {
  const parsed = loadConfig(Deno.args, readEnv());
  if (parsed.kind === "help") {
    Deno.stdout.writeSync(new TextEncoder().encode(HELP));
    return;
  }
  if (parsed.kind === "version") {
    Deno.stdout.writeSync(new TextEncoder().encode(`proxmox-mcp ${VERSION}\n`));
    return;
  }
  const config = parsed.config;
  setupLogging(config.logLevel);
  const log = logger("main");
  const auth = config.auth;
  addSecret(auth.kind === "password" ? auth.password : auth.secret);
  addSecret(config.authToken);

  let caCert: string | undefined;
  if (config.caFile) {
    try {
      caCert = await Deno.readTextFile(config.caFile);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable) throw e;
      throw new ConfigError(
        `Cannot read PROXMOX_CA_FILE ${config.caFile}: ${(e as Error).message}`,
      );
    }
  }
  if (config.demo) {
    const { startDemo } = await import("./sim/demo.ts");
    const sim = await startDemo();
    config.proxmoxUrl = sim.url;
    config.auth = { kind: "password", user: sim.user, password: sim.password };
    addSecret(sim.password);
    log.info(`Demo: simulated Proxmox VE cluster at ${sim.url}`);
  }
  if (!config.verifySsl && config.proxmoxUrl.startsWith("https:")) {
    log.warning(
      `PROXMOX_VERIFY_SSL=false: the certificate of ${config.proxmoxUrl} is not checked`,
    );
  }
  const pve = new PveClient({
    baseUrl: config.proxmoxUrl,
    auth: config.auth,
    verifySsl: config.verifySsl,
    caCert,
    timeoutMs: config.timeoutMs,
  });
  const deps = { config, pve };
  if (config.transport === "stdio") {
    const { runStdio } = await import("./transports/stdio.ts");
    runStdio(deps);
  } else {
    const { runHttp } = await import("./transports/http.ts");
    await runHttp(deps);
  }
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

/**
 * Everything behind the first reply: logging, secrets, the demo simulator and
 * the Proxmox client. Loaded lazily by main.ts so that start-up stays fast.
 */
import type { Config } from "./config.ts";
import { addSecret, logger, setupLogging } from "./log.ts";
import { PveClient } from "./proxmox/client.ts";
import { safetyLine, Scope, setScope } from "./safety/scope.ts";
import { selectBy } from "./tools/toolsets.ts";
import type { ServerDeps } from "./server.ts";

/** Sets up logging and the Proxmox client (no request is made here). */
export async function boot(
  config: Config,
  caCert?: string,
): Promise<ServerDeps> {
  setupLogging(config.logLevel);
  const log = logger("main");
  const auth = config.auth;
  addSecret(auth.kind === "password" ? auth.password : auth.secret);
  addSecret(config.authToken);
  if (config.demo) {
    const { startDemo } = await import("./sim/demo.ts");
    const sim = await startDemo();
    config.proxmoxUrl = sim.url;
    config.auth = { kind: "password", user: sim.user, password: sim.password };
    addSecret(sim.password);
    log.info(`Demo: simulated Proxmox VE cluster at ${sim.url}`);
  }
  const https = config.proxmoxUrl.startsWith("https:");
  if (https && config.tlsFingerprints?.length) {
    log.info(
      `The certificate of ${config.proxmoxUrl} is pinned by PROXMOX_TLS_FINGERPRINT`,
    );
  } else if (!config.verifySsl && https) {
    log.warning(
      `PROXMOX_VERIFY_SSL=false: the certificate of ${config.proxmoxUrl} is not checked (PROXMOX_TLS_FINGERPRINT pins it instead)`,
    );
  }
  const pve = new PveClient({
    baseUrl: config.proxmoxUrl,
    auth: config.auth,
    verifySsl: config.verifySsl,
    caCert,
    caFile: config.caFile,
    fingerprints: config.tlsFingerprints,
    timeoutMs: config.timeoutMs,
  });
  // The API layer keeps every tool inside the scope bound to this client.
  const scope = Scope.of(config);
  setScope(pve, scope);
  // The line names the toolsets: an unknown one stops the start first.
  selectBy([], () => ({ toolset: "", readOnly: true }), config);
  log.info(safetyLine(config, scope));
  return { config, pve };
}

/**
 * Everything behind the first reply: logging, secrets, the demo simulator and
 * the Proxmox client. Loaded lazily by main.ts so that start-up stays fast.
 */
import { type Cluster, DEFAULT_CLUSTER } from "./clusters.ts";
import { clusterView, type Config } from "./config.ts";
import { addSecret, logger, setupLogging } from "./log.ts";
import { PveClient } from "./proxmox/client.ts";
import { safetyLine, Scope, setScope } from "./safety/scope.ts";
import { selectBy } from "./tools/toolsets.ts";
import type { ServerDeps } from "./server.ts";

/**
 * Sets up logging and a Proxmox client per cluster (no request is made
 * here). `ca`: PROXMOX_CA_FILE's certificate, or with PROXMOX_CONFIG each
 * cluster's, by name.
 */
export async function boot(
  config: Config,
  ca?: string | Record<string, string>,
): Promise<ServerDeps> {
  setupLogging(config.logLevel);
  const log = logger("main");
  const auth = config.auth;
  addSecret(auth.kind === "password" ? auth.password : auth.secret);
  addSecret(config.authToken);
  addSecret(config.stateSecret);
  if (config.demo) {
    const { startDemo } = await import("../sim/demo.ts");
    const sim = await startDemo();
    config.proxmoxUrl = sim.url;
    config.auth = { kind: "password", user: sim.user, password: sim.password };
    addSecret(sim.password);
    log.info(`Demo: simulated Proxmox VE cluster at ${sim.url}`);
  }
  // With two or more clusters, every line names its cluster; a scope refusal
  // names the cluster whenever its settings come from PROXMOX_CONFIG.
  const many = (config.clusters?.length ?? 0) > 1;
  const clusters = (config.clusters ?? [undefined]).map((c, i) => {
    const view = c ? clusterView(config, c) : config;
    const name = c?.name ?? DEFAULT_CLUSTER;
    const a = view.auth;
    addSecret(a.kind === "password" ? a.password : a.secret);
    const https = view.proxmoxUrl.startsWith("https:");
    const pin = c
      ? `the fingerprint of cluster '${name}'`
      : "PROXMOX_TLS_FINGERPRINT";
    if (https && view.tlsFingerprints?.length) {
      log.info(`The certificate of ${view.proxmoxUrl} is pinned by ${pin}`);
    } else if (!view.verifySsl && https) {
      log.warning(
        c
          ? `verifySsl false for cluster '${name}': the certificate of ${view.proxmoxUrl} is not checked (a fingerprint pins it instead)`
          : `PROXMOX_VERIFY_SSL=false: the certificate of ${view.proxmoxUrl} is not checked (PROXMOX_TLS_FINGERPRINT pins it instead)`,
      );
    }
    const pve = new PveClient({
      baseUrl: view.proxmoxUrl,
      auth: view.auth,
      verifySsl: view.verifySsl,
      // One CA (PROXMOX_CA_FILE's, or the first cluster's caFile) is the first's.
      caCert: typeof ca === "string" ? (i === 0 ? ca : undefined) : ca?.[name],
      caFile: view.caFile,
      fingerprints: view.tlsFingerprints,
      timeoutMs: view.timeoutMs,
      ...(c ? { cluster: name } : {}),
    });
    // The API layer keeps every tool inside the scope bound to this client.
    const scope = Scope.of(
      view,
      c ? { name, inFile: c.scopeInFile } : undefined,
    );
    setScope(pve, scope);
    return { name, pve, config: view, scope };
  });
  // The line names the toolsets: an unknown one stops the start first.
  selectBy([], () => ({ toolset: "", readOnly: true }), config);
  for (const c of clusters) {
    log.info(
      `${many ? `Cluster '${c.name}' (${c.config.proxmoxUrl}): ` : ""}${
        safetyLine(config, c.scope)
      }`,
    );
  }
  return {
    config,
    pve: clusters[0].pve,
    ...(config.clusters
      ? {
        clusters: clusters.map(({ name, pve, config }): Cluster => ({
          name,
          pve,
          config,
        })),
      }
      : {}),
  };
}

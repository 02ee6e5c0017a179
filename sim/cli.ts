/**
 * `deno task sim [--port N] [--https] [--task-ms N] [--ticket-lifetime S]
 * [--pve-version 8.4|9.1] [--extra-guests N] [--pbs] [--raw-sockets] [--no-validate]
 * [--token 'user@realm!name:ROLE@/path,...']...`: serves the simulator and prints one JSON line
 * with its url, the PVE release it plays and the credentials it accepts. Each `--token` adds a
 * restricted API token with privilege separation, its roles granted to it and to its user (as
 * README's `pveum acl modify` lines do), and lists it under `tokens` with its secret.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startSimulator } from "./mod.ts";
import { loadApiSchema } from "./schema.ts";
import { selfSignedCert } from "./tls.ts";
import { PVE_RELEASES, pveVersion } from "./versions.ts";

function count(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new RangeError(
      `Cannot parse --${name}: '${value}' is not a whole number`,
    );
  }
  return n;
}

function parse() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8006" },
      https: { type: "boolean", default: false },
      "task-ms": { type: "string", default: "400" },
      "ticket-lifetime": { type: "string" },
      "pve-version": { type: "string", default: "9.1" },
      // Generated guests on top of the seed (big-cluster tests and benchmarks).
      "extra-guests": { type: "string", default: "0" },
      // A Proxmox Backup Server storage `pbs` with two backups.
      pbs: { type: "boolean", default: false },
      // A relay owns client connections: reset faults send no byte at all.
      "raw-sockets": { type: "boolean", default: false },
      // Skip checking requests against the official schema (load tests).
      "no-validate": { type: "boolean", default: false },
      // A restricted token: 'ops@pve!mcp:PVEVMUser@/vms/105,PVEAuditor@/'.
      token: { type: "string", multiple: true, default: [] },
    },
  });
  const tokens = (values.token ?? []).map((spec) => {
    const m = /^([^\s:/@!]+@[A-Za-z][\w.-]*)!([A-Za-z][\w.-]+):(.+)$/.exec(
      spec,
    );
    const grants = m?.[3].split(",").map((g) => {
      const at = g.indexOf("@");
      return { role: g.slice(0, at), path: g.slice(at + 1) };
    });
    if (
      !m || !grants || grants.some((g) => !g.role || !g.path.startsWith("/"))
    ) {
      throw new RangeError(
        `Cannot parse --token: '${spec}' is not user@realm!name:ROLE@/path[,ROLE@/path]`,
      );
    }
    return { user: m[1], name: m[2], grants };
  });
  return {
    values,
    tokens,
    version: pveVersion(values["pve-version"]),
    extraGuests: count("extra-guests", values["extra-guests"]),
  };
}

let args: ReturnType<typeof parse>;
try {
  args = parse();
} catch (e) {
  // One line on stderr, no stack: stdout carries only the JSON line.
  Deno.stderr.writeSync(new TextEncoder().encode(`${(e as Error).message}\n`));
  Deno.exit(2);
}
const { values, version, extraGuests, tokens } = args;
const tls = values.https ? await selfSignedCert() : undefined;
// 9.1 keeps honouring PVE_API_SCHEMA; 8.4 reads its own file beside it.
const schemaFile = version === "9.1"
  ? undefined
  : resolve(Deno.cwd(), "../shared/pve-api", PVE_RELEASES[version].schemaFile);
const sim = await startSimulator({
  port: Number(values.port),
  taskMs: Number(values["task-ms"]),
  ticketLifetimeS: values["ticket-lifetime"]
    ? Number(values["ticket-lifetime"])
    : undefined,
  pveVersion: version,
  extraGuests,
  pbs: values.pbs,
  rawSockets: values["raw-sockets"],
  schema: values["no-validate"]
    ? null
    : await loadApiSchema(schemaFile).catch(() => null),
  recordRequests: false,
  tls: tls ? { cert: tls.cert, key: tls.key } : undefined,
});
let restricted: { tokenId: string; tokenSecret: string }[];
try {
  restricted = tokens.map((t) => {
    const { tokenId, secret } = sim.access.addToken(t.user, t.name);
    for (const g of t.grants) {
      sim.access.grant(g.path, t.user, g.role);
      sim.access.grant(g.path, tokenId, g.role);
    }
    return { tokenId, tokenSecret: secret };
  });
} catch (e) {
  Deno.stderr.writeSync(
    new TextEncoder().encode(`Cannot parse --token: ${(e as Error).message}\n`),
  );
  await sim.close();
  Deno.exit(2);
}
const out = {
  url: sim.url,
  pveVersion: sim.pveVersion,
  guests: sim.cluster.guests.size,
  ...sim.credentials,
  ...(tls ? { caFile: tls.caFile } : {}),
  ...(restricted.length ? { tokens: restricted } : {}),
};
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(out) + "\n"));
Deno.addSignalListener("SIGINT", () => sim.close().then(() => Deno.exit(0)));
Deno.addSignalListener("SIGTERM", () => sim.close().then(() => Deno.exit(0)));

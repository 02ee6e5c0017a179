/**
 * The Proxmox VE releases the simulator plays: what `/version` and the node
 * status say, and which official schema file describes each.
 */

export type PveVersion = "8.4" | "9.1";

export interface PveRelease {
  /** `GET /version`: as pve-manager reports it. */
  version: string;
  release: string;
  repoid: string;
  /** `GET /nodes/{node}/status` kversion. */
  kversion: string;
  /** The official schema's file name in ../shared/pve-api/. */
  schemaFile: string;
}

export const PVE_RELEASES: Record<PveVersion, PveRelease> = {
  "8.4": {
    version: "8.4.1",
    release: "8.4",
    repoid: "2a5fa54a8503f96d",
    kversion: "Linux 6.8.12-9-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9",
    schemaFile: "pve-api-schema-pve8.json",
  },
  "9.1": {
    version: "9.1.1",
    release: "9.1",
    repoid: "42db4a6cf33dac83",
    kversion: "Linux 6.17.2-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1",
    schemaFile: "pve-api-schema.json",
  },
};

/**
 * Parameters of the endpoints the simulator serves that only one release
 * has, by `METHOD /template` (read from the two official schemas; a test
 * keeps this table equal to them). The other release refuses them as
 * undefined, with or without a schema to validate against.
 */
export const ONLY_IN: Record<PveVersion, Record<string, readonly string[]>> = {
  "8.4": {
    "POST /nodes/{node}/vzdump": ["notification-policy", "notification-target"],
  },
  "9.1": {
    "GET /nodes/{node}/qemu/{vmid}/agent/file-read": [
      "count",
      "decode",
      "offset",
    ],
    "POST /nodes/{node}/lxc": ["entrypoint", "env", "ha-managed"],
    "POST /nodes/{node}/qemu": ["allow-ksm", "ha-managed", "intel-tdx"],
    "POST /nodes/{node}/qemu/{vmid}/config": ["allow-ksm", "intel-tdx"],
    "POST /nodes/{node}/qemu/{vmid}/migrate": ["with-conntrack-state"],
    "POST /nodes/{node}/qemu/{vmid}/status/start": ["with-conntrack-state"],
    "PUT /nodes/{node}/lxc/{vmid}/config": ["entrypoint", "env"],
    "PUT /nodes/{node}/qemu/{vmid}/config": ["allow-ksm", "intel-tdx"],
  },
};

const UNDEFINED_PARAM =
  "property is not defined in schema and the schema does not allow additional properties";

/**
 * PVE's per-parameter errors for parameters of `method template` that the
 * release lacks, or null.
 */
export function paramsMissingIn(
  version: PveVersion,
  method: string,
  template: string,
  params: Record<string, unknown>,
): Record<string, string> | null {
  const other: PveVersion = version === "8.4" ? "9.1" : "8.4";
  const names = ONLY_IN[other][`${method} ${template}`] ?? [];
  const given = names.filter((k) => params[k] !== undefined);
  return given.length
    ? Object.fromEntries(given.map((k) => [k, UNDEFINED_PARAM]))
    : null;
}

/** The version named, or a RangeError naming the ones supported. */
export function pveVersion(value: string | undefined): PveVersion {
  if (value === undefined) return "9.1";
  if (value === "8.4" || value === "9.1") return value;
  throw new RangeError(
    `Cannot simulate PVE version '${value}': use 8.4 or 9.1`,
  );
}

/** Whether the release is 9.x (the agent file-read paging, memhost, ...). */
export function isPve9(v: PveVersion): boolean {
  return v.startsWith("9.");
}

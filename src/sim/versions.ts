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

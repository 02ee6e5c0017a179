/**
 * The demo cluster: three nodes (pve3 offline), QEMU VMs and LXC containers in
 * several states, a cloud-init VM template, container templates and ISOs in
 * storage, storages of several content types, one existing backup.
 */
import {
  type Cluster,
  type ConfigValue,
  type Guest,
  type GuestOs,
  type GuestType,
  parseSize,
  type StorageDef,
} from "./state.ts";

export interface SeedOptions {
  /** Nodes to mark offline (default: pve3). */
  offlineNodes?: string[];
  /** Extra generated guests spread over the online nodes (benchmarks). */
  extraGuests?: number;
  /**
   * A Proxmox Backup Server storage `pbs` (shared, content backup) holding a
   * backup of VM 105 and one of CT 200, with PBS-style volids
   * (`pbs:backup/vm/105/2026-11-20T03:00:00Z`). Off by default: it adds a
   * storage and backups to every listing.
   */
  pbs?: boolean;
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
/** A fixed instant so that seeded ctimes are stable: 2026-11-20 03:00 UTC. */
const SEED_TIME = Date.UTC(2026, 10, 20, 3, 0, 0) / 1000;

/** The seeded PBS datastore's storage definition. */
export const PBS_STORAGE: StorageDef = {
  storage: "pbs",
  type: "pbs",
  content: ["backup"],
  shared: true,
  enabled: true,
  total: 8192 * GIB,
  baseUsed: 2300 * GIB,
  snapshots: false,
};

export const OS_RELEASE = {
  debian:
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n',
  ubuntu:
    'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
  alpine:
    'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
  rocky:
    'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n',
  arch:
    'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n',
} as const;

export type Distro = keyof typeof OS_RELEASE;

let macSeq = 0x10;
/** A MAC with PVE's default prefix BC:24:11. */
export function newMac(): string {
  const n = macSeq++;
  const b = [0xAA, (n >> 8) & 0xff, n & 0xff].map((x) =>
    x.toString(16).toUpperCase().padStart(2, "0")
  );
  return `BC:24:11:${b.join(":")}`;
}

/** A scripted guest OS for the QEMU guest agent. */
export function makeGuestOs(
  distro: Distro,
  ip: string,
  mac: string,
  agentRunning = true,
): GuestOs {
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>([
    ["/etc/os-release", enc.encode(OS_RELEASE[distro])],
    ["/etc/hostname", enc.encode("guest\n")],
  ]);
  return {
    agentRunning,
    osRelease: OS_RELEASE[distro],
    files,
    interfaces: [
      {
        name: "lo",
        "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [
          { "ip-address": "127.0.0.1", "ip-address-type": "ipv4", prefix: 8 },
        ],
      },
      {
        name: "eth0",
        "hardware-address": mac.toLowerCase(),
        "ip-addresses": [
          { "ip-address": ip, "ip-address-type": "ipv4", prefix: 24 },
        ],
      },
    ],
    processes: new Map(),
    nextPid: 1000,
  };
}

export function newGuest(
  init: {
    vmid: number;
    type: GuestType;
    node: string;
    status?: "running" | "stopped";
    config: Record<string, ConfigValue>;
    guestOs?: GuestOs;
  },
): Guest {
  const running = init.status === "running";
  return {
    vmid: init.vmid,
    type: init.type,
    node: init.node,
    status: running ? "running" : "stopped",
    qmpstatus: init.type === "qemu"
      ? (running ? "running" : "stopped")
      : undefined,
    config: init.config,
    pending: {},
    pendingDelete: [],
    snapshots: new Map(),
    firewall: {
      rules: [],
      options: { enable: 0, policy_in: "DROP", policy_out: "ACCEPT" },
    },
    guestOs: init.guestOs,
    startedAt: running ? Date.now() - 3 * 86400_000 : undefined,
    load: {
      cpu: 0.02 + (init.vmid % 7) / 100,
      memFraction: 0.3 + (init.vmid % 5) / 10,
      diskFraction: 0.4,
    },
    io: { netin: 0, netout: 0, diskread: 0, diskwrite: 0 },
  };
}

function qemu(
  vmid: number,
  node: string,
  name: string,
  opts: {
    status?: "running" | "stopped";
    cores?: number;
    memory?: number;
    disk?: string;
    agent?: boolean;
    template?: boolean;
    distro?: Distro;
    agentRunning?: boolean;
    ip?: string;
    extra?: Record<string, ConfigValue>;
  },
): Guest {
  const mac = newMac();
  const base = opts.template ? "base" : "vm";
  const config: Record<string, ConfigValue> = {
    name,
    cores: opts.cores ?? 2,
    sockets: 1,
    memory: String(opts.memory ?? 2048),
    ostype: "l26",
    scsihw: "virtio-scsi-single",
    scsi0: `local-lvm:${base}-${vmid}-disk-0,iothread=1,size=${
      opts.disk ?? "32G"
    }`,
    net0: `virtio=${mac},bridge=vmbr0,firewall=1`,
    boot: "order=scsi0;net0",
    smbios1: `uuid=${crypto.randomUUID()}`,
    vmgenid: crypto.randomUUID(),
    meta: `creation-qemu=9.2.0,ctime=${SEED_TIME}`,
    ...opts.extra,
  };
  if (opts.agent) config.agent = "1";
  if (opts.template) config.template = 1;
  return newGuest({
    vmid,
    type: "qemu",
    node,
    status: opts.status,
    config,
    guestOs: opts.distro
      ? makeGuestOs(
        opts.distro,
        opts.ip ?? `192.168.1.${vmid % 250}`,
        mac,
        opts.agentRunning ?? true,
      )
      : undefined,
  });
}

function lxc(
  vmid: number,
  node: string,
  hostname: string,
  status: "running" | "stopped",
  extra: Record<string, ConfigValue> = {},
): Guest {
  return newGuest({
    vmid,
    type: "lxc",
    node,
    status,
    config: {
      hostname,
      arch: "amd64",
      cores: 1,
      memory: 512,
      swap: 512,
      ostype: "debian",
      rootfs: `local-lvm:vm-${vmid}-disk-0,size=8G`,
      net0:
        `name=eth0,bridge=vmbr0,firewall=1,hwaddr=${newMac()},ip=dhcp,type=veth`,
      unprivileged: 1,
      features: "nesting=1",
      ...extra,
    },
  });
}

const STORAGES: StorageDef[] = [
  {
    storage: "local",
    type: "dir",
    content: ["iso", "vztmpl", "backup", "snippets"],
    shared: false,
    enabled: true,
    total: 100 * GIB,
    baseUsed: 12 * GIB,
    snapshots: false,
  },
  {
    storage: "local-lvm",
    type: "lvmthin",
    content: ["images", "rootdir"],
    shared: false,
    enabled: true,
    total: 800 * GIB,
    baseUsed: 0,
    snapshots: true,
  },
  {
    storage: "nas-backup",
    type: "nfs",
    content: ["backup", "iso"],
    shared: true,
    enabled: true,
    total: 4096 * GIB,
    baseUsed: 900 * GIB,
    snapshots: false,
  },
];

/** Fills a cluster with the demo world. */
export function seedCluster(c: Cluster, options: SeedOptions = {}): void {
  const offline = new Set(options.offlineNodes ?? ["pve3"]);
  const now = Date.now();
  for (const [i, node] of ["pve1", "pve2", "pve3"].entries()) {
    c.nodes.set(node, {
      node,
      online: !offline.has(node),
      maxcpu: [16, 8, 8][i],
      maxmem: [64, 32, 32][i] * GIB,
      maxdisk: 100 * GIB,
      ip: `10.0.0.${11 + i}`,
      bootedAt: now - (12 + i) * 86400_000,
    });
  }
  c.storages = STORAGES.map((s) => ({ ...s, content: [...s.content] }));

  const guests: Guest[] = [
    qemu(100, "pve1", "web-01", {
      status: "running",
      agent: true,
      distro: "debian",
      ip: "192.168.1.100",
      memory: 4096,
    }),
    qemu(101, "pve1", "db-01", {
      status: "running",
      agent: true,
      distro: "ubuntu",
      ip: "192.168.1.101",
      cores: 4,
      memory: 8192,
      disk: "100G",
    }),
    qemu(102, "pve2", "win-build", {
      status: "stopped",
      cores: 4,
      memory: 8192,
      disk: "120G",
      extra: { ostype: "win11" },
    }),
    qemu(103, "pve2", "alpine-edge", {
      status: "running",
      agent: true,
      distro: "alpine",
      ip: "192.168.1.103",
      memory: 1024,
      disk: "8G",
    }),
    qemu(104, "pve1", "legacy-app", {
      status: "running",
      agent: true,
      distro: "debian",
      agentRunning: false,
    }),
    qemu(105, "pve1", "arch-lab", {
      status: "running",
      agent: true,
      distro: "arch",
      memory: 2048,
    }),
    qemu(106, "pve2", "rocky-ci", {
      status: "stopped",
      agent: true,
      distro: "rocky",
    }),
    lxc(200, "pve1", "dns-01", "running"),
    lxc(201, "pve2", "media", "stopped", { memory: 2048, cores: 2 }),
    lxc(202, "pve1", "proxy", "running", { memory: 256, swap: 256 }),
    qemu(300, "pve3", "offsite-replica", { status: "running" }),
    qemu(9000, "pve1", "debian-12-cloud", {
      template: true,
      agent: true,
      disk: "3G",
      memory: 2048,
      extra: {
        ide2: "local-lvm:vm-9000-cloudinit,media=cdrom",
        serial0: "socket",
        vga: "serial0",
        ciuser: "debian",
        ipconfig0: "ip=dhcp",
        description: "Debian 12 generic cloud image with cloud-init\n",
      },
    }),
  ];
  for (const g of guests) c.guests.set(g.vmid, g);
  c.guests.get(102)!.config.description = "Windows build agent\n";
  c.guests.get(100)!.config.tags = "prod;web";
  c.guests.get(101)!.config.tags = "prod;db";

  // Extra guests for benchmarks: small VMs spread over the online nodes.
  const online = [...c.nodes.values()].filter((n) => n.online).map((n) =>
    n.node
  );
  for (let i = 0; i < (options.extraGuests ?? 0); i++) {
    const vmid = 10000 + i;
    const node = online[i % online.length];
    const g = i % 3 === 0
      ? lxc(vmid, node, `ct-${vmid}`, i % 2 ? "running" : "stopped")
      : qemu(vmid, node, `vm-${vmid}`, {
        status: i % 2 ? "running" : "stopped",
      });
    c.guests.set(vmid, g);
  }

  // Volumes: guest disks, ISOs, container templates, one backup.
  for (const g of c.guests.values()) {
    for (const [k, v] of Object.entries(g.config)) {
      if (
        !/^(scsi|virtio|sata|ide)\d+$|^rootfs$/.test(k) || typeof v !== "string"
      ) continue;
      if (v.includes("media=cdrom") && !v.includes("cloudinit")) continue;
      const [volid, ...rest] = v.split(",");
      const size = rest.find((p) => p.startsWith("size="))?.slice(5) ?? "4M";
      c.volumes.push({
        storage: volid.split(":")[0],
        node: g.node,
        volid,
        content: g.type === "lxc" ? "rootdir" : "images",
        format: "raw",
        size: parseSize(size),
        ctime: SEED_TIME,
        vmid: g.vmid,
      });
    }
  }
  for (const node of ["pve1", "pve2", "pve3"]) {
    for (
      const [name, size] of [
        ["debian-12.7.0-amd64-netinst.iso", 631 * MIB],
        ["ubuntu-24.04.1-live-server-amd64.iso", 2694 * MIB],
      ] as const
    ) {
      c.volumes.push({
        storage: "local",
        node,
        volid: `local:iso/${name}`,
        content: "iso",
        format: "iso",
        size,
        ctime: SEED_TIME,
      });
    }
    for (
      const [name, size, format] of [
        ["debian-12-standard_12.7-1_amd64.tar.zst", 126 * MIB, "tzst"],
        ["ubuntu-24.04-standard_24.04-2_amd64.tar.zst", 141 * MIB, "tzst"],
        ["alpine-3.20-default_20240908_amd64.tar.xz", 3 * MIB, "txz"],
      ] as const
    ) {
      c.volumes.push({
        storage: "local",
        node,
        volid: `local:vztmpl/${name}`,
        content: "vztmpl",
        format,
        size,
        ctime: SEED_TIME,
      });
    }
  }
  if (options.pbs) seedPbs(c);
  const db = c.guests.get(101)!;
  c.volumes.push({
    storage: "local",
    node: "pve1",
    volid: "local:backup/vzdump-qemu-101-2026_11_20-03_00_00.vma.zst",
    content: "backup",
    format: "vma.zst",
    subtype: "qemu",
    size: 14 * GIB,
    ctime: SEED_TIME,
    vmid: 101,
    notes: "db-01 nightly",
    backup: { type: "qemu", config: structuredClone(db.config) },
  });
}

/** `2026-11-20T03:00:00Z`: how PBS names a backup snapshot's time. */
export function pbsTime(sec: number): string {
  return new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function seedPbs(c: Cluster): void {
  c.storages.push({ ...PBS_STORAGE, content: [...PBS_STORAGE.content] });
  for (const [vmid, size] of [[105, 9 * GIB], [200, 700 * MIB]] as const) {
    const g = c.guests.get(vmid)!;
    c.volumes.push({
      storage: "pbs",
      volid: `pbs:backup/${g.type === "qemu" ? "vm" : "ct"}/${vmid}/${
        pbsTime(SEED_TIME)
      }`,
      content: "backup",
      format: g.type === "qemu" ? "pbs-vm" : "pbs-ct",
      subtype: g.type,
      size,
      ctime: SEED_TIME,
      vmid,
      notes: `${g.config.hostname ?? g.config.name} weekly`,
      backup: { type: g.type, config: structuredClone(g.config) },
    });
  }
}

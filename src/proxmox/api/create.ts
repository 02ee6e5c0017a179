/**
 * New guests: a free VMID, a clone of a VM template and its cloud-init
 * settings, disk growth, and LXC containers from an ostemplate. Also the
 * formats these calls need (sizes, ipconfig, SSH keys) and the passwords
 * they set, which are registered as secrets before anything is sent.
 */
import { addSecret } from "../../log.ts";
import type { PveClient } from "../client.ts";
import { PveError, ToolError } from "../errors.ts";
import { isIPv4 } from "../ip.ts";
import { hasFormat, pvePath, seg } from "../path.ts";
import { rangesText, scopeOf } from "../../safety/scope.ts";
import type { GuestRef } from "./guests.ts";
import { failureText } from "./tasks.ts";

const GIB = 1024 ** 3;
/** Unambiguous letters and digits: 56 symbols, 24 of them ≈ 139 bits. */
const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/** A random password from the CSPRNG (uniform, with upper, lower, digit). */
export function generatePassword(length = 24): string {
  const limit = 256 - (256 % ALPHABET.length);
  while (true) {
    let out = "";
    while (out.length < length) {
      for (const b of crypto.getRandomValues(new Uint8Array(length * 2))) {
        if (b < limit && out.length < length) {
          out += ALPHABET[b % ALPHABET.length];
        }
      }
    }
    if (/[A-Z]/.test(out) && /[a-z]/.test(out) && /\d/.test(out)) return out;
  }
}

/**
 * The password a new guest gets: the one given, or a generated one
 * (`generated` true: the caller shows it once). Either is masked by value in
 * log lines while it is among the latest secrets (src/log.ts).
 */
export function guestPassword(
  given?: string,
): { password: string; generated: boolean } {
  const password = given ?? generatePassword();
  addSecret(password, "recent");
  return { password, generated: given === undefined };
}

/**
 * `64G`, `64`, `1.5T`, `512M` → bytes. A bare number is GiB for what users
 * type (`disk_size: "64"`), but bytes in PVE's own `size=` (it prints sizes
 * that are no whole KiB as plain bytes): pass `bareUnit` "" for those.
 */
export function sizeBytes(s: string, bareUnit = "G"): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT])?(?:i?B)?\s*$/i.exec(s);
  if (!m) return undefined;
  const unit = (m[2] ?? bareUnit).toUpperCase();
  return Math.round(parseFloat(m[1]) * 1024 ** (" KMGT".indexOf(unit || " ")));
}

/** Bytes as PVE's size syntax: whole GiB when exact, else MiB. */
export function pveSize(bytes: number): string {
  return bytes % GIB === 0
    ? `${bytes / GIB}G`
    : `${Math.ceil(bytes / 2 ** 20)}M`;
}

/** Whole GiB, rounded up (LXC's `rootfs: storage:<GiB>`). */
export function wholeGib(bytes: number): number {
  return Math.ceil(bytes / GIB);
}

/**
 * PVE's CIDRv4 (pve_verify_cidrv4): an IPv4 address (no leading zeros, as
 * PVE's $IPV4RE and node:net) and a prefix of 8 to 32.
 */
function isCidrV4(s: string): boolean {
  const m = /^([^/]*)\/(\d+)$/.exec(s);
  return m !== null && isIPv4(m[1]) && Number(m[2]) >= 8 &&
    Number(m[2]) <= 32;
}

/** `ip=dhcp` or `ip=<cidr>[,gw=<gateway>]` (QEMU ipconfigN and LXC netN). */
export function ipSpec(ip: string, gateway?: string): string {
  if (ip === "dhcp") {
    if (gateway) {
      throw new ToolError("gateway needs a static ip (CIDR), not dhcp");
    }
    return "ip=dhcp";
  }
  if (!isCidrV4(ip)) {
    throw new ToolError(
      `ip must be 'dhcp' or an IPv4 CIDR like 192.168.1.50/24 (prefix 8-32), not '${ip}'`,
    );
  }
  if (gateway !== undefined && !isIPv4(gateway)) {
    throw new ToolError(`gateway must be an IPv4 address, not '${gateway}'`);
  }
  return gateway ? `ip=${ip},gw=${gateway}` : `ip=${ip}`;
}

/** One key per line, blank lines dropped. */
function keyLines(keys: string): string {
  return keys.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).join("\n");
}

const DISK_ORDER = ["scsi", "virtio", "sata", "ide"];

/**
 * The boot disk from a QEMU config: the first disk of `boot: order=`, else
 * legacy `bootdisk`, else the first disk (cdroms and cloud-init excluded).
 */
export function bootDisk(
  config: Record<string, unknown>,
): { key: string; size: number } | undefined {
  const isDisk = (k: string) =>
    /^(scsi|virtio|sata|ide)\d+$/.test(k) && typeof config[k] === "string" &&
    !/media=cdrom|cloudinit/.test(String(config[k]));
  const order = /(?:^|,)order=([^,]+)/.exec(String(config.boot ?? ""))?.[1]
    .split(";") ?? [];
  const rank = (k: string) =>
    DISK_ORDER.indexOf(k.replace(/\d+$/, "")) * 100 + Number(k.match(/\d+$/));
  const key = order.find(isDisk) ??
    (isDisk(String(config.bootdisk)) ? String(config.bootdisk) : undefined) ??
    Object.keys(config).filter(isDisk).sort((a, b) => rank(a) - rank(b))[0];
  if (!key) return undefined;
  const size = /(?:^|,)size=([^,]+)/.exec(String(config[key]))?.[1];
  return { key, size: sizeBytes(size ?? "0", "") ?? 0 };
}

/** How many taken VMIDs of the scope PVE may refuse before we give up. */
const SCOPE_TRIES = 16;

/**
 * A free VMID: the one asked for (checked, and refused outside this server's
 * scope), or the next one: PVE's, or with MCP_ALLOWED_VMIDS the first free
 * one in range (checked with PVE, which knows VMIDs the guest list may not).
 */
export async function freeVmid(pve: PveClient, want?: number): Promise<number> {
  const scope = scopeOf(pve);
  if (want === undefined && scope.vmids) {
    const used = new Set((await pve.guests()).map((g) => Number(g.vmid)));
    let tries = 0;
    for (const id of scope.candidates()) {
      if (used.has(id)) continue;
      try {
        await pve.get("/cluster/nextid", { vmid: id });
        return id;
      } catch (e) {
        if (!(e instanceof PveError) || e.status !== 400) throw e;
        if (++tries >= SCOPE_TRIES) break;
      }
    }
    throw new ToolError(
      `No free VMID in this server's scope (MCP_ALLOWED_VMIDS=${
        rangesText(scope.vmids)
      }): remove a guest in that range, or widen the setting`,
    );
  }
  if (want === undefined) {
    // PVE returns the number as a string.
    return Number(await pve.get<string | number>("/cluster/nextid"));
  }
  scope.checkVmid(want, { creating: true });
  try {
    await pve.get("/cluster/nextid", { vmid: want });
  } catch (e) {
    if (e instanceof PveError && e.status === 400) {
      throw new ToolError(
        `VMID ${want} is already in use: omit it to take the next free one`,
      );
    }
    throw e;
  }
  return want;
}

/**
 * `POST .../clone` of a template → UPID. A full clone (on `storage` when
 * given) unless `linked`; `node` other than the template's is a target.
 * PVE removes a clone whose task fails.
 */
export async function cloneTemplate(
  pve: PveClient,
  tpl: GuestRef,
  options: {
    newid: number;
    name?: string;
    linked?: boolean;
    storage?: string;
    node: string;
  },
): Promise<string> {
  scopeOf(pve).checkVmid(options.newid, { creating: true });
  scopeOf(pve).checkNode(options.node);
  return String(
    await pve.post(pvePath`/${seg.guest(tpl)}/clone`, {
      newid: options.newid,
      name: options.name,
      full: !options.linked,
      storage: options.linked ? undefined : options.storage,
      target: options.node !== tpl.node ? options.node : undefined,
    }),
  );
}

/** A clone refused because its disks are local to the template's node. */
export function usesLocalStorage(e: unknown): boolean {
  return /uses local storage/.test(failureText(e));
}

/** Cloud-init and resources of a new VM (`PUT .../config`). */
export interface CloudInit {
  ciuser?: string;
  /** Registered as a secret by guestPassword() before this is called. */
  cipassword: string;
  sshkeys?: string;
  ipconfig0: string;
  nameserver?: string;
  searchdomain?: string;
  cores?: number;
  memoryMib?: number;
}

/** Writes a new VM's cloud-init settings and resources. */
export async function configureCloudInit(
  pve: PveClient,
  vm: GuestRef,
  c: CloudInit,
): Promise<void> {
  addSecret(c.cipassword, "recent");
  await pve.put(pvePath`/${seg.guest(vm)}/config`, {
    ciuser: c.ciuser,
    cipassword: c.cipassword,
    // URL-encoded, as PVE demands (then form-encoded once more).
    sshkeys: c.sshkeys ? encodeURIComponent(keyLines(c.sshkeys)) : undefined,
    ipconfig0: c.ipconfig0,
    nameserver: c.nameserver,
    searchdomain: c.searchdomain,
    cores: c.cores,
    memory: c.memoryMib ? String(c.memoryMib) : undefined,
  });
}

/** `PUT .../resize` to an absolute size → UPID (it never shrinks). */
export async function resizeDisk(
  pve: PveClient,
  vm: GuestRef,
  disk: string,
  bytes: number,
): Promise<string> {
  return String(
    await pve.put(pvePath`/${seg.guest(vm)}/resize`, {
      disk,
      size: pveSize(bytes),
    }),
  );
}

/** What a new container is made of. */
export interface NewContainer {
  vmid: number;
  node: string;
  ostemplate: string;
  hostname?: string;
  /** Registered as a secret by guestPassword() before this is called. */
  password: string;
  sshkeys?: string;
  cores?: number;
  memoryMib?: number;
  swapMib?: number;
  storage: string;
  diskBytes: number;
  bridge: string;
  ip: string;
  privileged?: boolean;
  nesting?: boolean;
}

/** `POST /nodes/{node}/lxc` → UPID. PVE removes a CT whose create fails. */
export async function createContainer(
  pve: PveClient,
  c: NewContainer,
): Promise<string> {
  addSecret(c.password, "recent");
  scopeOf(pve).checkVmid(c.vmid, { creating: true });
  scopeOf(pve).checkNode(c.node);
  if (!BRIDGE.test(c.bridge)) {
    throw new ToolError(
      `Invalid bridge ${
        JSON.stringify(c.bridge)
      }: use letters, digits, '-', '_' or '.' (e.g. vmbr0)`,
    );
  }
  return String(
    await pve.post(pvePath`/nodes/${seg.node(c.node)}/lxc`, {
      vmid: c.vmid,
      ostemplate: c.ostemplate,
      hostname: c.hostname,
      password: c.password,
      "ssh-public-keys": c.sshkeys ? keyLines(c.sshkeys) : undefined,
      cores: c.cores,
      memory: c.memoryMib,
      swap: c.swapMib,
      rootfs: `${c.storage}:${wholeGib(c.diskBytes)}`,
      net0: `name=eth0,bridge=${c.bridge},${c.ip}`,
      unprivileged: !c.privileged,
      // Nesting on by default, as PVE's GUI does for new containers.
      features: c.nesting === false ? undefined : "nesting=1",
    }),
  );
}

/** A storage refused for container disks (no `rootdir` content). */
export function noContainerDirectories(e: unknown): boolean {
  return /does not support container directories/.test(failureText(e));
}

/**
 * Whether a volid names a container template: `<storage>:vztmpl/<file>` with
 * an archive extension PVE accepts for templates (a plain file name).
 */
export function isContainerTemplate(volid: string): boolean {
  return hasFormat("volid", volid) &&
    /^[a-z][\w.-]*:vztmpl\/[^/\s]+\.(tar\.(gz|xz|zst|bz2)|tgz)$/i.test(volid);
}

/** pve-bridge-id: a value inside net0, so no ',' or '=' may slip in. */
const BRIDGE = /^[-_.\w\d]+$/;

/** A storage on the node that holds container root disks (`rootdir`). */
export async function rootdirStorage(
  pve: PveClient,
  node: string,
): Promise<string> {
  const all = await pve.get<Record<string, unknown>[]>("/cluster/resources", {
    type: "storage",
  });
  const fit = all.filter((s) =>
    s.node === node && s.status === "available" &&
    String(s.content ?? "").split(",").includes("rootdir")
  ).map((s) => String(s.storage)).sort((x, y) =>
    Number(y === "local-lvm") - Number(x === "local-lvm") || x.localeCompare(y)
  );
  if (!fit.length) {
    throw new ToolError(
      `No storage on node '${node}' holds container disks (content 'rootdir'): give storage`,
    );
  }
  return fit[0];
}

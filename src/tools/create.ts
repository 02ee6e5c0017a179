/**
 * New guests in one tool call each: a VM cloned from a cloud-init template
 * (clone → configure → resize → start → addresses) and an LXC container from
 * an ostemplate (create → start → addresses), with MCP progress across the
 * steps. A failure after the guest exists says which guest it is and its
 * state; a generated password is returned once and never logged.
 */
import { z } from "zod";
import { addSecret } from "../log.ts";
import type { GuestRef, PveClient } from "../proxmox/client.ts";
import { PveError, ToolError } from "../proxmox/errors.ts";
import {
  defineTool,
  NodeName,
  taskFollower,
  TaskOutcome,
  TimeoutS,
  type ToolContext,
  Vmid,
  Wait,
} from "./define.ts";
import { current, explain, label } from "./lifecycle.ts";

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
function pveSize(bytes: number): string {
  return bytes % GIB === 0
    ? `${bytes / GIB}G`
    : `${Math.ceil(bytes / 2 ** 20)}M`;
}

const IPV4 = String
  .raw`(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}`;
const CIDR4 = new RegExp(`^${IPV4}/([0-9]|[12]\\d|3[0-2])$`);
const ADDR4 = new RegExp(`^${IPV4}$`);

/** `ip=dhcp` or `ip=<cidr>[,gw=<gateway>]` (QEMU ipconfigN and LXC netN). */
export function ipSpec(ip: string, gateway?: string): string {
  if (ip === "dhcp") {
    if (gateway) {
      throw new ToolError("gateway needs a static ip (CIDR), not dhcp");
    }
    return "ip=dhcp";
  }
  if (!CIDR4.test(ip)) {
    throw new ToolError(
      `ip must be 'dhcp' or an IPv4 CIDR like 192.168.1.50/24, not '${ip}'`,
    );
  }
  if (gateway !== undefined && !ADDR4.test(gateway)) {
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

interface Step {
  step: string;
  upid: string;
  status: string;
}

/**
 * Progress across the steps of one call: the value is the step index plus a
 * fraction while its task runs, always increasing, with `total` = steps.
 */
function stepper(ctx: ToolContext, total: number) {
  let index = -1;
  let last = -1;
  const send = (message: string, p: number) => {
    last = Math.max(p, last + 0.001);
    return ctx.progress(message, Math.round(last * 1000) / 1000, total);
  };
  const steps: Step[] = [];
  const task = taskFollower(
    ctx.pve,
    ctx.signal,
    (message, p) =>
      send(message, index + Math.min(0.9, (p ?? 0) / ((p ?? 0) + 20_000))),
  );
  return {
    steps,
    begin(name: string): Promise<void> {
      index++;
      return send(`step ${index + 1}/${total}: ${name}`, index);
    },
    /** Runs a step that starts a task and follows it. */
    async run(
      name: string,
      what: string,
      call: () => Promise<unknown>,
      opts: { wait?: boolean; timeoutS: number },
    ): Promise<TaskOutcome> {
      await this.begin(name);
      const upid = String(await call());
      steps.push({ step: name, upid, status: "running" });
      const out = await task(upid, {
        wait: opts.wait ?? true,
        timeoutS: opts.timeoutS,
        what,
        step: name,
      });
      steps[steps.length - 1].status = out.status;
      return out;
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, Math.max(0, ms));
    const stop = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", stop, { once: true });
  });
}

/** Usable addresses: no loopback, no link-local; IPv4 first. */
function usable(ips: string[]): string[] {
  return ips.filter((ip) => !/^(127\.|169\.254\.|::1$|fe80:)/i.test(ip)).sort((
    a,
    b,
  ) => Number(a.includes(":")) - Number(b.includes(":")));
}

/**
 * Polls for the guest's addresses until it has one or the deadline passes:
 * the QEMU guest agent's network-get-interfaces, or LXC's interfaces.
 */
async function guestIps(
  pve: PveClient,
  g: GuestRef,
  deadline: number,
  signal: AbortSignal,
): Promise<{ ips?: string[]; why?: string }> {
  let delay = 250;
  while (true) {
    try {
      let ips: string[];
      if (g.type === "qemu") {
        const r = await pve.get<{ result: AgentIface[] }>(
          `${g.path}/agent/network-get-interfaces`,
        );
        ips = r.result.flatMap((i) =>
          (i["ip-addresses"] ?? []).map((a) => a["ip-address"])
        );
      } else {
        const r = await pve.get<{ inet?: string; inet6?: string }[]>(
          `${g.path}/interfaces`,
        );
        ips = r.flatMap((i) => [i.inet, i.inet6]).filter((x): x is string =>
          !!x
        ).map((cidr) => cidr.split("/")[0]);
      }
      if (usable(ips).length) return { ips: usable(ips) };
    } catch (e) {
      if (!(e instanceof PveError)) throw e;
      if (/No QEMU guest agent configured/.test(e.pveMessage)) {
        return { why: "the guest agent is not enabled in its config" };
      }
    }
    if (Date.now() + delay > deadline) {
      return {
        why: g.type === "qemu"
          ? "the guest agent did not report an address within timeout_s"
          : "no address within timeout_s",
      };
    }
    await sleep(delay, signal);
    delay = Math.min(delay * 1.5, 3000);
  }
}

interface AgentIface {
  name: string;
  "ip-addresses"?: { "ip-address": string }[];
}

/**
 * A step after the guest was created failed: say which guest exists, in
 * what state, and how to go on; keep the task detail (UPID, log tail).
 */
async function createdButFailed(
  pve: PveClient,
  g: GuestRef,
  step: string,
  e: unknown,
  extra: Record<string, unknown>,
): Promise<never> {
  let state = "in an unknown state";
  try {
    const c = await current(pve, g);
    state = c.lock ? `${c.status} and locked (${c.lock})` : c.status;
  } catch { /* keep "unknown" */ }
  const msg = e instanceof Error ? e.message : String(e);
  throw new ToolError(
    `${
      label(g)
    } was created on ${g.node} and is ${state}, but the ${step} step failed: ${msg}. Fix the cause and finish it by hand, or remove it with proxmox_delete_vm`,
    {
      vmid: g.vmid,
      node: g.node,
      state,
      failed_step: step,
      ...(e instanceof ToolError ? e.detail : {}),
      ...extra,
    },
  );
}

/** A free VMID: the one asked for (checked), or the next one. */
async function freeVmid(pve: PveClient, want?: number): Promise<number> {
  if (want === undefined) {
    // PVE returns the number as a string.
    return Number(await pve.get<string | number>("/cluster/nextid"));
  }
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

const Created = z.object({
  vmid: z.number(),
  node: z.string(),
  name: z.string().optional(),
  state: z.string(),
  user: z.string().optional(),
  password: z.string().optional().describe("Generated; shown only once"),
  disk: z.string().optional(),
  ips: z.array(z.string()).optional(),
  tasks: z.array(
    z.object({ step: z.string(), upid: z.string(), status: z.string() }),
  ),
  note: z.string().optional(),
});

const CREATE = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: true,
};

export const createVmFromTemplate = defineTool({
  name: "proxmox_create_vm_from_template",
  toolset: "vms",
  title: "Create a VM from a cloud-init template",
  description: "Clone a cloud-init VM template, resize, start, return IPs.",
  input: {
    template: Vmid,
    newid: Vmid.optional(),
    name: z.string().optional(),
    node: NodeName.optional(),
    storage: z.string().optional(),
    linked: z.boolean().optional(),
    disk_size: z.string().default("64G"),
    cores: z.number().int().optional(),
    memory_mib: z.number().int().optional(),
    ciuser: z.string().optional(),
    password: z.string().optional(),
    sshkeys: z.string().optional(),
    ip: z.string().default("dhcp"),
    gateway: z.string().optional(),
    nameserver: z.string().optional(),
    searchdomain: z.string().optional(),
    start: z.boolean().optional(),
    wait: Wait,
    timeout_s: TimeoutS(600),
  },
  output: Created,
  annotations: CREATE,
  async run(a, ctx) {
    const { pve } = ctx;
    const deadline = Date.now() + a.timeout_s * 1000;
    const left = () => Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    const want = sizeBytes(a.disk_size);
    if (!want) {
      throw new ToolError(
        `disk_size must look like 64G or 1T, not '${a.disk_size}'`,
      );
    }
    const ipconfig0 = ipSpec(a.ip, a.gateway);
    if (a.password !== undefined) addSecret(a.password);
    const tpl = await pve.locate(a.template);
    if (tpl.type !== "qemu" || !tpl.template) {
      throw new ToolError(
        `${
          label(tpl)
        } is not a QEMU template: pick one with proxmox_list_vms (template = 1)`,
      );
    }
    const node = a.node ?? tpl.node;
    const newid = await freeVmid(pve, a.newid);
    const chain = stepper(ctx, a.start ? 5 : 3);
    const result = (
      vm: { state: string; name?: string },
      extra: Partial<z.infer<typeof Created>> = {},
    ) => ({ vmid: newid, node, ...vm, tasks: chain.steps, ...extra });

    // 1. Clone. PVE removes a clone that fails, so nothing is left over.
    let out: TaskOutcome;
    try {
      out = await chain.run(
        "clone",
        `clone ${label(tpl)} to VM ${newid}`,
        () =>
          pve.post(`${tpl.path}/clone`, {
            newid,
            name: a.name,
            full: !a.linked,
            storage: a.linked ? undefined : a.storage,
            target: node !== tpl.node ? node : undefined,
          }),
        { timeoutS: left() },
      );
    } catch (e) {
      explain(e, tpl, {
        when: /uses local storage/,
        text:
          `Clone it on ${tpl.node} (omit node), then move it with proxmox_migrate_vm`,
      });
    }
    const vm: GuestRef = {
      vmid: newid,
      node,
      type: "qemu",
      name: a.name,
      status: "stopped",
      template: false,
      path: `/nodes/${node}/qemu/${newid}`,
    };
    if (out.status === "running") {
      return result({ state: "locked (clone)" }, {
        note:
          `The clone is still running after ${a.timeout_s} s (follow it with proxmox_get_task); cloud-init, disk size and start were NOT applied to VM ${newid}`,
      });
    }

    const password = a.password ?? generatePassword();
    addSecret(password);
    const shown = a.password === undefined ? password : undefined;
    let step = "configure";
    let passwordSet = false;
    try {
      // 2. Cloud-init and resources (PUT: nothing to allocate).
      await chain.begin(step);
      await pve.put(`${vm.path}/config`, {
        ciuser: a.ciuser,
        cipassword: password,
        // URL-encoded, as PVE demands (then form-encoded once more).
        sshkeys: a.sshkeys
          ? encodeURIComponent(keyLines(a.sshkeys))
          : undefined,
        ipconfig0,
        nameserver: a.nameserver,
        searchdomain: a.searchdomain,
        cores: a.cores,
        memory: a.memory_mib ? String(a.memory_mib) : undefined,
      });
      passwordSet = true;
      const cfg = await pve.get<Record<string, unknown>>(`${vm.path}/config`);
      vm.name = String(cfg.name ?? vm.name ?? "");
      const base = {
        name: vm.name,
        user: cfg.ciuser as string | undefined,
        password: shown,
      };

      // 3. The boot disk grows to disk_size; it never shrinks.
      step = "resize";
      const boot = bootDisk(cfg);
      let disk: string | undefined;
      let note: string | undefined;
      if (!boot) {
        await chain.begin(step);
        note = "No boot disk found in the config: nothing resized";
      } else if (boot.size >= want) {
        await chain.begin(step);
        disk = `${boot.key} ${pveSize(boot.size)}`;
        if (boot.size > want) {
          note = `${boot.key} is already ${pveSize(boot.size)}: not shrunk`;
        }
      } else {
        out = await chain.run(
          step,
          `resize ${boot.key} of VM ${newid} to ${pveSize(want)}`,
          () =>
            pve.put(`${vm.path}/resize`, {
              disk: boot.key,
              size: pveSize(want),
            }),
          { timeoutS: left() },
        );
        disk = `${boot.key} ${pveSize(want)}`;
        if (out.status === "running") {
          return result({ ...base, state: "stopped" }, {
            disk,
            note:
              `The resize is still running (follow it with proxmox_get_task); VM ${newid} was not started`,
          });
        }
      }
      if (!a.start) {
        return result({ ...base, state: "stopped" }, { disk, note });
      }

      // 4. Start, then 5. wait for the agent to report addresses.
      step = "start";
      out = await chain.run(
        step,
        `start VM ${newid}`,
        () => pve.post(`${vm.path}/status/start`),
        { wait: a.wait, timeoutS: left() },
      );
      if (out.status === "running") {
        return result({ ...base, state: "starting" }, {
          disk,
          note: out.note ?? "Start still running: no addresses yet",
        });
      }
      step = "addresses";
      await chain.begin(step);
      const ips = await guestIps(pve, vm, deadline, ctx.signal);
      return result({ ...base, state: "running" }, {
        disk,
        ips: ips.ips,
        note: [note, ips.why && `No IPs yet: ${ips.why}`].filter(Boolean)
          .join("; ") || undefined,
      });
    } catch (e) {
      return await createdButFailed(
        pve,
        vm,
        step,
        e,
        passwordSet && shown ? { password: shown } : {},
      );
    }
  },
});

export const createLxc = defineTool({
  name: "proxmox_create_lxc",
  toolset: "vms",
  title: "Create an LXC container",
  description: "New container from an ostemplate volid; returns its IPs.",
  input: {
    ostemplate: z.string(),
    node: NodeName,
    vmid: Vmid.optional(),
    hostname: z.string().optional(),
    password: z.string().optional(),
    sshkeys: z.string().optional(),
    cores: z.number().int().optional(),
    memory_mib: z.number().int().optional(),
    swap_mib: z.number().int().optional(),
    storage: z.string().optional(),
    disk_size: z.string().default("8G"),
    bridge: z.string().optional(),
    ip: z.string().default("dhcp"),
    gateway: z.string().optional(),
    privileged: z.boolean().optional(),
    nesting: z.boolean().optional(),
    start: z.boolean().optional(),
    wait: Wait,
    timeout_s: TimeoutS(300),
  },
  output: Created,
  annotations: CREATE,
  async run(a, ctx) {
    const { pve } = ctx;
    const deadline = Date.now() + a.timeout_s * 1000;
    const left = () => Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    if (!/^[a-z][\w.-]*:vztmpl\/.+/i.test(a.ostemplate)) {
      throw new ToolError(
        `ostemplate must be a template volid like local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst (see the storage content), not '${a.ostemplate}'`,
      );
    }
    const bytes = sizeBytes(a.disk_size);
    if (!bytes) {
      throw new ToolError(`disk_size must look like 8G, not '${a.disk_size}'`);
    }
    const net0 = `name=eth0,bridge=${a.bridge ?? "vmbr0"},${
      ipSpec(a.ip, a.gateway)
    }`;
    if (a.password !== undefined) addSecret(a.password);
    const storage = a.storage ?? await rootdirStorage(pve, a.node);
    const vmid = await freeVmid(pve, a.vmid);
    const password = a.password ?? generatePassword();
    addSecret(password);
    const shown = a.password === undefined ? password : undefined;
    const chain = stepper(ctx, a.start ? 3 : 1);
    const ct: GuestRef = {
      vmid,
      node: a.node,
      type: "lxc",
      name: a.hostname ?? `CT${vmid}`,
      status: "stopped",
      template: false,
      path: `/nodes/${a.node}/lxc/${vmid}`,
    };
    const result = (
      state: string,
      extra: Partial<z.infer<typeof Created>> = {},
    ) => ({
      vmid,
      node: a.node,
      name: ct.name,
      state,
      user: "root",
      password: shown,
      disk: `rootfs ${pveSize(Math.ceil(bytes / GIB) * GIB)}`,
      tasks: chain.steps,
      ...extra,
    });

    // 1. Create. PVE removes a container whose create task fails.
    let out = await chain.run(
      "create",
      `create ${label(ct)}`,
      () =>
        pve.post(`/nodes/${a.node}/lxc`, {
          vmid,
          ostemplate: a.ostemplate,
          hostname: a.hostname,
          password,
          "ssh-public-keys": a.sshkeys ? keyLines(a.sshkeys) : undefined,
          cores: a.cores,
          memory: a.memory_mib,
          swap: a.swap_mib,
          rootfs: `${storage}:${Math.ceil(bytes / GIB)}`,
          net0,
          unprivileged: !a.privileged,
          // Nesting on by default, as PVE's GUI does for new containers.
          features: a.nesting === false ? undefined : "nesting=1",
        }),
      { timeoutS: left() },
    ).catch((e) =>
      explain(e, ct, {
        when: /does not support container directories/,
        text: "Pick a storage with content 'rootdir' (e.g. local-lvm)",
      })
    );
    if (out.status === "running") {
      return result("locked (create)", {
        note:
          `The create task is still running (follow it with proxmox_get_task); CT ${vmid} was not started`,
      });
    }
    if (!a.start) return result("stopped");
    let step = "start";
    try {
      out = await chain.run(
        step,
        `start CT ${vmid}`,
        () => pve.post(`${ct.path}/status/start`),
        { wait: a.wait, timeoutS: left() },
      );
      if (out.status === "running") {
        return result("starting", { note: out.note });
      }
      step = "addresses";
      await chain.begin(step);
      const ips = await guestIps(pve, ct, deadline, ctx.signal);
      return result("running", {
        ips: ips.ips,
        note: ips.why && `No IPs yet: ${ips.why}`,
      });
    } catch (e) {
      return await createdButFailed(
        pve,
        ct,
        step,
        e,
        shown ? { password: shown } : {},
      );
    }
  },
});

/** A storage on the node that holds container root disks (`rootdir`). */
async function rootdirStorage(pve: PveClient, node: string): Promise<string> {
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

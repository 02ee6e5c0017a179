import assert from "node:assert/strict";
import {
  type ApiSchema,
  type ParamErrors,
  type ParamValue,
  type ValidateOptions,
} from "../sim/schema.ts";
import { ONLY_IN } from "../sim/mod.ts";
import { ALL_ROUTES } from "../sim/routes/mod.ts";
import { officialSchema, startSim, type TestSim } from "./sim_helpers.ts";

// Missing under CI fails this file; elsewhere one visible warning.
const schema = await officialSchema("9.1");
const ignore = schema === null;

function api(): ApiSchema {
  assert.ok(schema !== null);
  return schema;
}

/** Route `method path` and validate `params` (path parameters merged in). */
function check(
  method: string,
  path: string,
  params: Record<string, ParamValue> = {},
  options: ValidateOptions = {},
): ParamErrors | null {
  const m = api().match(method, path);
  assert.ok(m, `no route for ${method} ${path}`);
  return api().validate(method, m.template, { ...m.pathParams, ...params }, {
    ...options,
  });
}

const NOT_DEFINED =
  "property is not defined in schema and the schema does not allow additional properties";

Deno.test({
  name: "schema: match resolves templates and path parameters",
  ignore,
  fn() {
    assert.deepEqual(api().match("POST", "/nodes/pve1/qemu/100/status/start"), {
      template: "/nodes/{node}/qemu/{vmid}/status/start",
      pathParams: { node: "pve1", vmid: "100" },
    });
    assert.deepEqual(api().match("GET", "//nodes//pve1/lxc/"), {
      template: "/nodes/{node}/lxc",
      pathParams: { node: "pve1" },
    });
    assert.deepEqual(api().match("GET", "/version"), {
      template: "/version",
      pathParams: {},
    });
    // the storage content subtree swallows the rest of the URI
    assert.deepEqual(
      api().match(
        "DELETE",
        "/nodes/pve/storage/local/content/local:backup/vzdump-qemu-100.vma.zst",
      ),
      {
        template: "/nodes/{node}/storage/{storage}/content/{volume}",
        pathParams: {
          node: "pve",
          storage: "local",
          volume: "local:backup/vzdump-qemu-100.vma.zst",
        },
      },
    );
    // 501 cases: unknown path, unknown method on a known path
    assert.equal(api().match("GET", "/nodes/pve/foo"), null);
    assert.equal(api().match("DELETE", "/version"), null);
    assert.equal(api().match("get", "/version"), null);
    assert.equal(api().match("GET", "/nodes/bad node/status"), null);
    assert.equal(api().size, 649);
    assert.ok(api().methodInfo("POST", "/access/ticket"));
    assert.equal(api().methodInfo("POST", "/nope"), null);
  },
});

Deno.test({
  name: "schema: enum, unknown parameter, _dc, missing parameter",
  ignore,
  fn() {
    assert.deepEqual(check("GET", "/cluster/resources", { type: "foo" }), {
      type:
        "value 'foo' does not have a value in the enumeration 'vm, storage, node, sdn'",
    });
    assert.equal(check("GET", "/cluster/resources", { type: "vm" }), null);
    assert.deepEqual(
      check("POST", "/access/ticket", {
        username: "root@pam",
        password: "secret",
        foo: "bar",
        _dc: "1700000000000",
      }),
      { foo: NOT_DEFINED },
    );
    assert.deepEqual(
      check("POST", "/access/ticket", { username: "root@pam" }),
      {
        password: "property is missing and it is not optional",
      },
    );
    assert.deepEqual(
      check("POST", "/access/ticket", {
        username: "u".repeat(65),
        password: "x",
      }),
      { username: "value may only be 64 characters long" },
    );
  },
});

Deno.test({
  name: "schema: types, VMID format, ranges, lengths, pattern",
  ignore,
  fn() {
    const vmidFormat = {
      vmid: "invalid format - value does not look like a valid VM ID\n",
    };
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu", { vmid: "99" }),
      vmidFormat,
    );
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu", { vmid: "1000000000" }),
      vmidFormat,
    );
    assert.deepEqual(check("POST", "/nodes/pve/qemu", { vmid: "abc" }), {
      vmid: "type check ('integer') failed - got 'abc'",
    });
    assert.deepEqual(check("POST", "/nodes/pve/qemu", {}), {
      vmid: "property is missing and it is not optional",
    });
    assert.equal(check("POST", "/nodes/pve/qemu", { vmid: "100" }), null);
    assert.equal(
      check("POST", "/nodes/pve/qemu", { vmid: 100 }, { json: true }),
      null,
    );
    // path parameters are validated too
    assert.deepEqual(check("GET", "/nodes/pve/qemu/abc/status/current"), {
      vmid: "type check ('integer') failed - got 'abc'",
    });
    assert.deepEqual(check("GET", "/nodes/-pve/qemu"), {
      node: "invalid format - value does not look like a valid node name\n",
    });
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu/100/config", {
        background_delay: "31",
        cores: "0",
      }),
      {
        background_delay: "value must have a maximum value of 30",
        cores: "value must have a minimum value of 1",
      },
    );
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu/100/snapshot", {
        snapname: "s".repeat(41),
      }),
      { snapname: "value may only be 40 characters long" },
    );
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu/100/snapshot", { snapname: "1st" }),
      { snapname: "invalid format - invalid configuration ID '1st'\n" },
    );
    assert.deepEqual(
      check("POST", "/nodes/pve/lxc", {
        vmid: "101",
        ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        password: "abc",
      }),
      { password: "value must be at least 5 characters long" },
    );
    assert.deepEqual(
      check("PUT", "/nodes/pve/qemu/100/resize", {
        disk: "scsi0",
        size: "10X",
      }),
      { size: "value does not match the regex pattern" },
    );
    assert.equal(
      check("PUT", "/nodes/pve/qemu/100/resize", {
        disk: "scsi0",
        size: "+10G",
      }),
      null,
    );
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu", { vmid: "100", storage: "1local" }),
      {
        storage:
          "invalid format - storage ID '1local' contains illegal characters\n",
      },
    );
  },
});

Deno.test({
  name: "schema: booleans are 0/1 in forms, true/false only in JSON",
  ignore,
  fn() {
    const path = "/nodes/pve/qemu/100/config";
    assert.deepEqual(check("POST", path, { onboot: "true" }), {
      onboot: "type check ('boolean') failed - got 'true'",
    });
    assert.equal(check("POST", path, { onboot: "1" }), null);
    assert.equal(check("POST", path, { onboot: "0" }), null);
    assert.equal(check("POST", path, { onboot: true }, { json: true }), null);
    assert.equal(check("POST", path, { onboot: 1 }, { json: true }), null);
    // a JS boolean in a form body is the text "true"
    assert.deepEqual(check("POST", path, { onboot: true }), {
      onboot: "type check ('boolean') failed - got 'true'",
    });
    assert.deepEqual(check("POST", path, { cores: true }, { json: true }), {
      cores: "type check ('integer') failed - got JSON::PP::Boolean",
    });
  },
});

Deno.test({
  name: "schema: sshkeys must be URL-encoded",
  ignore,
  fn() {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH+abc/def= user@host";
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu/100/config", { sshkeys: key }),
      {
        sshkeys: `invalid format - invalid urlencoded string: ${key}\n`,
      },
    );
    assert.equal(
      check("POST", "/nodes/pve/qemu/100/config", {
        sshkeys: encodeURIComponent(`${key}\n`),
      }),
      null,
    );
  },
});

Deno.test({
  name: "schema: property strings (net, memory, agent, ipconfig, disks)",
  ignore,
  fn() {
    const path = "/nodes/pve/qemu/100/config";
    assert.equal(
      check("POST", path, {
        net0: "virtio,bridge=vmbr0",
        net1: "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=10",
        memory: "2048",
        agent: "1",
        ipconfig0: "ip=192.168.1.10/24,gw=192.168.1.1",
        scsi0: "local-lvm:32,iothread=1",
        ide2: "local:iso/debian-12.iso,media=cdrom",
      }),
      null,
    );
    assert.equal(check("POST", path, { memory: "current=4096" }), null);
    assert.equal(
      check("POST", path, { agent: "enabled=1,fstrim_cloned_disks=on" }),
      null,
    );
    assert.deepEqual(check("POST", path, { net0: "virtio,brige=vmbr0" }), {
      net0:
        "invalid format - invalid key in comma-separated list property: brige\n",
    });
    assert.deepEqual(
      check("POST", path, { net0: "virtio,bridge=vmbr0,tag=x" }),
      {
        net0:
          "invalid format - format error\nnet0.tag: type check ('integer') failed - got 'x'\n",
      },
    );
    assert.deepEqual(check("POST", path, { net0: "foo" }), {
      net0:
        "invalid format - format error\nnet0.model: value 'foo' does not have a value in the enumeration 'e1000, e1000-82540em, e1000-82544gc, e1000-82545em, e1000e, i82551, i82557b, i82559er, ne2k_isa, ne2k_pci, pcnet, rtl8139, virtio, vmxnet3'\n",
    });
    assert.deepEqual(check("POST", path, { memory: "8" }), {
      memory:
        "invalid format - format error\nmemory.current: value must have a minimum value of 16\n",
    });
    assert.deepEqual(check("POST", path, { ipconfig0: "gw=192.168.1.1" }), {
      ipconfig0:
        "invalid format - format error\nipconfig0.ip: missing property - 'ipconfig0.gw' requires this property\n",
    });
    assert.deepEqual(check("POST", path, { net0: "virtio,virtio" }), {
      net0:
        "invalid format - duplicate key in comma-separated list property: model\n",
    });
  },
});

Deno.test({
  name: "schema: indexed parameters map onto name[n] with PVE's bounds",
  ignore,
  fn() {
    const path = "/nodes/pve/qemu/100/config";
    assert.equal(
      check("POST", path, { net31: "virtio", scsi30: "none" }),
      null,
    );
    assert.deepEqual(check("POST", path, { net32: "virtio" }), {
      net32: NOT_DEFINED,
    });
    assert.deepEqual(check("POST", path, { scsi31: "none" }), {
      scsi31: NOT_DEFINED,
    });
    assert.deepEqual(check("POST", path, { net01: "virtio" }), {
      net01: NOT_DEFINED,
    });
    assert.equal(
      check("PUT", "/nodes/pve/lxc/101/config", {
        mp255: "local-lvm:8,mp=/x",
      }),
      null,
    );
  },
});

Deno.test({
  name: "schema: requires (schema and firewall handler)",
  ignore,
  fn() {
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu", { vmid: "100", force: "1" }),
      { archive: "missing property - 'force' requires this property" },
    );
    const rules = "/nodes/pve/qemu/100/firewall/rules";
    assert.deepEqual(
      check("POST", rules, { type: "in", action: "ACCEPT", dport: "22" }),
      { proto: "missing property - 'dport' requires this property" },
    );
    assert.equal(
      check("POST", rules, { type: "in", action: "ACCEPT", dport: "22" }, {
        handlerChecks: false,
      }),
      null,
    );
    assert.equal(
      check("POST", rules, {
        type: "in",
        action: "ACCEPT",
        proto: "tcp",
        dport: "22,80:85,https",
        source: "192.168.1.0/24",
        enable: "1",
      }),
      null,
    );
    assert.deepEqual(
      check("POST", rules, {
        type: "in",
        action: "ACCEPT",
        proto: "tcp",
        dport: "85:80",
      }),
      {
        dport:
          "invalid format - backwards range '85:80' not allowed, did you mean '80:85'?\n",
      },
    );
  },
});

Deno.test({
  name: "schema: arrays and -list formats",
  ignore,
  fn() {
    const exec = "/nodes/pve/qemu/100/agent/exec";
    assert.equal(check("POST", exec, { command: ["ls", "-l"] }), null);
    assert.equal(check("POST", exec, { command: "ls" }), null);
    assert.equal(
      check("POST", exec, { command: ["sh", "-c", "ls | wc -l"] }, {
        json: true,
      }),
      null,
    );
    assert.deepEqual(check("POST", exec, {}), {
      command: "property is missing and it is not optional",
    });
    assert.deepEqual(
      api().normalize("POST", "/nodes/{node}/qemu/{vmid}/agent/exec", {
        command: "ls",
        _dc: "1",
      }, { pathParams: { node: "pve", vmid: "100" } }),
      { node: "pve", vmid: "100", command: ["ls"] },
    );
    // a repeated form key for a scalar parameter is an array
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu/100/config", { cores: ["1", "2"] }),
      { cores: "type check ('integer') failed - got ARRAY" },
    );

    const vzdump = "/nodes/pve/vzdump";
    assert.equal(check("POST", vzdump, { vmid: "100" }), null);
    assert.equal(check("POST", vzdump, { vmid: "100,101 102" }), null);
    assert.equal(
      check("POST", vzdump, { vmid: ["100", "101"] }, { json: true }),
      null,
    );
    assert.deepEqual(check("POST", vzdump, { vmid: "100,abc" }), {
      vmid: "invalid format - value does not look like a valid VM ID\n",
    });
    assert.deepEqual(
      check("POST", vzdump, { storage: "local", "notes-template": "x" }),
      null,
    );
    assert.deepEqual(check("POST", vzdump, { protected: "1" }), {
      storage: "missing property - 'protected' requires this property",
    });
    assert.equal(
      check("POST", "/nodes/pve/qemu/100/config", { delete: "net0,ide2" }),
      null,
    );
    assert.deepEqual(
      check("POST", "/nodes/pve/qemu/100/config", { delete: "net0,-x" }),
      { delete: "invalid format - invalid configuration ID '-x'\n" },
    );
  },
});

Deno.test({
  name: "schema: path parameter given again in the body",
  ignore,
  fn() {
    const m = api().match("POST", "/nodes/pve/qemu/100/config");
    assert.ok(m);
    assert.deepEqual(
      api().validate("POST", m.template, { vmid: "101", cores: "2" }, {
        pathParams: m.pathParams,
      }),
      {
        vmid:
          "duplicate parameter (already defined in URI) with conflicting values!",
      },
    );
    assert.equal(
      api().validate("POST", m.template, { vmid: "100", cores: "2" }, {
        pathParams: m.pathParams,
      }),
      null,
    );
    assert.equal(
      api().validate("POST", m.template, { vmid: 100, cores: 2 }, {
        pathParams: m.pathParams,
        json: true,
      }),
      null,
    );
    assert.throws(() => api().validate("GET", "/nope", {}));
  },
});

Deno.test({
  name: "schema: unimplemented formats are collected, not enforced",
  ignore,
  fn() {
    api().compileAll();
    assert.ok(api().unknownFormats instanceof Set);
    assert.ok(api().unknownFormats.has("pve-calendar-event"));
    for (
      const f of [
        "pve-vmid",
        "pve-node",
        "pve-storage-id",
        "pve-configid",
        "pve-configid-list",
        "pve-vmid-list",
        "urlencoded",
        "dns-name",
        "address-list",
        "pve-qm-ipconfig",
        "pve-volume-id",
        "pve-fw-addr-spec",
        "pve-fw-dport-spec",
        "pve-fw-sport-spec",
        "pve-fw-protocol-spec",
        "pve-fw-icmp-type-spec",
        "email",
        "ip",
        "ipv4",
        "ipv6",
        "CIDR",
      ]
    ) {
      assert.ok(!api().unknownFormats.has(f), f);
    }
    assert.equal(api().unsupportedPatterns.size, 0);
  },
});

Deno.test({
  name: "schema: validate() is cheap",
  ignore,
  fn() {
    const s = api();
    const cfg = s.match("POST", "/nodes/pve/qemu/100/config");
    const res = s.match("GET", "/cluster/resources");
    assert.ok(cfg && res);
    const cfgParams = {
      ...cfg.pathParams,
      net0: "virtio,bridge=vmbr0,firewall=1",
      memory: "2048",
      cores: "2",
      onboot: "1",
      ipconfig0: "ip=dhcp",
      scsi0: "local-lvm:32,iothread=1",
    };
    const n = 10_000;
    for (let i = 0; i < 2000; i++) s.validate("POST", cfg.template, cfgParams);
    let t0 = performance.now();
    for (let i = 0; i < n; i++) {
      assert.equal(s.validate("POST", cfg.template, cfgParams), null);
    }
    const heavy = (performance.now() - t0) / n * 1000;
    t0 = performance.now();
    for (let i = 0; i < n; i++) {
      s.validate("GET", res.template, { type: "vm" });
    }
    const light = (performance.now() - t0) / n * 1000;
    // deno-lint-ignore no-console
    console.log(
      `validate(): ${
        heavy.toFixed(1)
      } µs (qemu config, 6 params incl. property strings), ${
        light.toFixed(1)
      } µs (GET /cluster/resources)`,
    );
    assert.ok(heavy < 200, `validate() too slow: ${heavy} µs`);
  },
});

// PVE 8.4 mode: the simulator answers and validates as 8.4 does.

function tokenApi(sim: TestSim) {
  const auth = {
    Authorization:
      `PVEAPIToken=${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
  };
  return async (path: string, init: RequestInit = {}) => {
    const r = await fetch(`${sim.url}/api2/json${path}`, {
      ...init,
      headers: { ...auth, ...init.headers },
    });
    return { status: r.status, ...(await r.json()) };
  };
}

const schema8 = await officialSchema("8.4");

Deno.test("sim pveVersion: /version and the node status answer as each release", async () => {
  for (
    const [pveVersion, version, kernel] of [
      ["8.4", "8.4.1", /^Linux 6\.8\./],
      ["9.1", "9.1.1", /^Linux 6\.17\./],
    ] as const
  ) {
    await using sim = await startSim({ pveVersion });
    assert.equal(sim.pveVersion, pveVersion);
    const api = tokenApi(sim);
    const { data } = await api("/version");
    assert.deepEqual(Object.keys(data).sort(), [
      "release",
      "repoid",
      "version",
    ]);
    assert.equal(data.version, version);
    assert.equal(data.release, pveVersion);
    assert.match(data.repoid, /^[0-9a-f]{16}$/);
    const { data: status } = await api("/nodes/pve1/status");
    assert.equal(status.pveversion, `pve-manager/${version}/${data.repoid}`);
    assert.match(status.kversion, kernel);
  }
});

Deno.test("sim pveVersion: an unknown release is refused", async () => {
  await assert.rejects(
    () => startSim({ pveVersion: "9.0" as "9.1" }),
    (e: Error) =>
      e instanceof RangeError &&
      e.message === "Cannot simulate PVE version '9.0': use 8.4 or 9.1",
  );
});

Deno.test("sim 8.4: agent file-read has no offset/count/decode and returns the whole file without bytes-read", async () => {
  // Without a schema too: the handler keeps to 8.4's parameters itself.
  for (const schema of [schema8, null]) {
    await using sim = await startSim({ pveVersion: "8.4", schema });
    const api = tokenApi(sim);
    const read = "/nodes/pve1/qemu/100/agent/file-read?file=/etc/os-release";
    const whole = await api(read);
    assert.equal(whole.status, 200);
    assert.match(whole.data.content, /^PRETTY_NAME=/);
    assert.equal(whole.data["bytes-read"], undefined);
    assert.equal(whole.data.truncated, undefined);
    const paged = await api(`${read}&count=10&decode=0`);
    assert.equal(paged.status, 400);
    assert.deepEqual(Object.keys(paged.errors).sort(), ["count", "decode"]);
    assert.equal(paged.errors.count, NOT_DEFINED);
    if (schema) sim.violations.length = 0; // the point of this request
  }
});

Deno.test("sim 9.1: agent file-read pages with offset/count and reports bytes-read", async () => {
  await using sim = await startSim({ pveVersion: "9.1" });
  const api = tokenApi(sim);
  const r = await api(
    "/nodes/pve1/qemu/100/agent/file-read?file=/etc/os-release&offset=7&count=10",
  );
  assert.equal(r.status, 200);
  assert.equal(r.data.content.length, 10);
  assert.equal(r.data["bytes-read"], 10);
  assert.equal(r.data.truncated, 1);
});

Deno.test({
  name:
    "sim 8.4: requests are validated against the 8.4 schema (9.x-only parameters rejected, 8.4-only accepted)",
  ignore: schema8 === null,
  async fn() {
    await using sim = await startSim({ pveVersion: "8.4" });
    const api = tokenApi(sim);
    const start = await api("/nodes/pve1/qemu/100/status/start", {
      method: "POST",
      body: new URLSearchParams({ "with-conntrack-state": "1" }),
    });
    assert.equal(start.status, 400);
    assert.equal(start.errors["with-conntrack-state"], NOT_DEFINED);
    assert.equal(sim.violations.length, 1);
    sim.violations.length = 0;
    // notification-policy exists in 8.4 only (deprecated there, gone in 9).
    const dump = await api("/nodes/pve1/vzdump", {
      method: "POST",
      body: new URLSearchParams({
        vmid: "100",
        storage: "local",
        "notification-policy": "never",
      }),
    });
    assert.equal(dump.status, 200, JSON.stringify(dump));
    assert.match(dump.data, /^UPID:pve1:/);
  },
});

Deno.test("sim 8.4: /cluster/resources has no memhost (added in 9.0)", async () => {
  for (const [pveVersion, has] of [["8.4", false], ["9.1", true]] as const) {
    await using sim = await startSim({ pveVersion });
    const { data } = await tokenApi(sim)("/cluster/resources?type=vm");
    const vm = data.find((e: { vmid: number }) => e.vmid === 100);
    assert.equal("memhost" in vm, has, pveVersion);
  }
});

Deno.test({
  name:
    "sim ONLY_IN lists exactly the parameters one release's schema has and the other's lacks, for every simulated endpoint",
  ignore: schema === null || schema8 === null,
  fn() {
    const names = (s: ApiSchema, method: string, path: string) =>
      Object.keys(s.methodInfo(method, path)?.parameters?.properties ?? {});
    const found: Record<"8.4" | "9.1", Record<string, string[]>> = {
      "8.4": {},
      "9.1": {},
    };
    for (const { method, path } of ALL_ROUTES) {
      const p8 = names(schema8!, method, path);
      const p9 = names(schema!, method, path);
      const only8 = p8.filter((k) => !p9.includes(k)).sort();
      const only9 = p9.filter((k) => !p8.includes(k)).sort();
      if (only8.length) found["8.4"][`${method} ${path}`] = only8;
      if (only9.length) found["9.1"][`${method} ${path}`] = only9;
    }
    assert.deepEqual(found, ONLY_IN);
  },
});

Deno.test("sim without a schema still refuses what only the other release has", async () => {
  await using sim84 = await startSim({ pveVersion: "8.4", schema: null });
  const start = await tokenApi(sim84)("/nodes/pve1/qemu/100/status/start", {
    method: "POST",
    body: new URLSearchParams({ "with-conntrack-state": "1" }),
  });
  assert.equal(start.status, 400);
  assert.deepEqual(start.errors, { "with-conntrack-state": NOT_DEFINED });
  await using sim91 = await startSim({ pveVersion: "9.1", schema: null });
  const dump = await tokenApi(sim91)("/nodes/pve1/vzdump", {
    method: "POST",
    body: new URLSearchParams({ vmid: "100", "notification-policy": "never" }),
  });
  assert.equal(dump.status, 400);
  assert.deepEqual(dump.errors, { "notification-policy": NOT_DEFINED });
});

Deno.test("officialSchema: a missing schema file fails under CI instead of skipping", async () => {
  const code = `import { officialSchema } from ${
    JSON.stringify(new URL("./sim_helpers.ts", import.meta.url).href)
  };
try { await officialSchema("9.1"); console.log("no error"); }
catch (e) { console.log(e.message); }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-prompt", "--allow-read", "--allow-env", code],
    env: { CI: "1", PVE_API_SCHEMA: "/nonexistent/pve-api-schema.json" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(
    text,
    "Cannot check requests against the official PVE 9.1 schema: /nonexistent/pve-api-schema.json not found",
    new TextDecoder().decode(out.stderr),
  );
});

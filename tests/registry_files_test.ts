/**
 * The files the registries read (server.json for the official MCP registry,
 * manifest.json for MCP bundles, proxmox-mcp.yaml and tools.json for Docker's
 * MCP registry, the Dockerfile's label) are valid and agree with each other and
 * with src/config.ts on name, version and variables.
 */
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { parse as parseYaml } from "yaml";
import { ENV_VARS, VERSION } from "../src/config.ts";
import {
  bundleAssets,
  fillDockerfile,
  fillManifest,
  fillServerJson,
  fillYaml,
  imageName,
  parseSums,
  repoUrl,
  serverName,
} from "../scripts/release_fill.ts";
import { startPermissions, taskPermissions } from "../scripts/permissions.ts";
import { compileArgs, TARGETS } from "../scripts/compile.ts";
import { TOOLS_JSON, toolsJson } from "../scripts/tools_json.ts";
import { apidataToJson, SCHEMAS } from "../scripts/fetch_pve_schemas.ts";

const root = (f: string) => new URL(`../${f}`, import.meta.url);
const read = (f: string) => Deno.readTextFile(root(f));
// deno-lint-ignore no-explicit-any
const readJson = async (f: string): Promise<any> => JSON.parse(await read(f));

const serverJson = await readJson("server.json");
const manifest = await readJson("manifest.json");
const yaml = parseYaml(await read("proxmox-mcp.yaml"));
const dockerfile = await read("Dockerfile");
const SETTINGS: readonly string[] = ENV_VARS;
const SECRETS = ["PROXMOX_PASSWORD", "PROXMOX_TOKEN_SECRET"];

/** The owner every file is written for, read from server.json's name. */
const owner = /^io\.github\.([A-Za-z0-9-]+)\/proxmox-mcp$/.exec(
  serverJson.name,
)?.[1];

// ajv-formats is CommonJS: its default export is the plugin (or holds it).
const addFormats = ((addFormatsModule as unknown as { default?: unknown })
  .default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

async function registrySchemaErrors(doc: unknown): Promise<string[]> {
  const schema = await readJson("tests/fixtures/server.schema.json");
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(schema);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

function ociPackage() {
  return serverJson.packages.find((p: { registryType: string }) =>
    p.registryType === "oci"
  );
}

Deno.test("server.json is valid against the registry's 2025-09-29 schema", async () => {
  assert.equal(
    serverJson.$schema,
    "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json",
  );
  assert.deepEqual(await registrySchemaErrors(serverJson), []);
  assert.ok(serverJson.description.length <= 100);
});

Deno.test("the vendored schema rejects what the registry rejects", async () => {
  const long = { ...serverJson, description: "x".repeat(101) };
  assert.notDeepEqual(await registrySchemaErrors(long), []);
  const latest = structuredClone(serverJson);
  latest.packages[0].version = "latest";
  assert.notDeepEqual(await registrySchemaErrors(latest), []);
  const badSha = structuredClone(serverJson);
  badSha.packages[1].fileSha256 = "not-a-hash";
  assert.notDeepEqual(await registrySchemaErrors(badSha), []);
});

Deno.test("every file names the same server, owner, repository, version and licence", async () => {
  assert.ok(
    owner,
    `server.json's name ${serverJson.name} is io.github.<owner>/proxmox-mcp`,
  );
  assert.equal(serverJson.name, serverName(owner));
  assert.equal(serverJson.repository.url, repoUrl(owner));
  assert.equal(serverJson.version, VERSION);
  assert.equal(manifest.name, "proxmox-mcp");
  assert.equal(manifest.version, VERSION);
  assert.equal(manifest.repository.url, repoUrl(owner));
  assert.equal(manifest.license, "MIT");
  assert.match(await read("LICENSE"), /^MIT License\n/);
  assert.equal(yaml.name, "proxmox-mcp");
  assert.equal(yaml.source.project, repoUrl(owner));
  assert.match(yaml.source.commit, /^[0-9a-f]{40}$/);
  assert.match(
    yaml.image,
    new RegExp(`^${imageName(owner)}:${VERSION}(@sha256:[0-9a-f]{64})?$`),
  );
  const label = /^LABEL io\.modelcontextprotocol\.server\.name="([^"]+)"$/m
    .exec(dockerfile)?.[1];
  assert.equal(label, serverJson.name, "Dockerfile LABEL = server.json name");
  const oci = ociPackage();
  assert.equal(`ghcr.io/${oci.identifier}`, imageName(owner));
  assert.equal(oci.version, VERSION);
  const bundles = serverJson.packages.filter((p: { registryType: string }) =>
    p.registryType === "mcpb"
  );
  assert.deepEqual(
    bundles.map((p: { identifier: string }) => p.identifier),
    bundleAssets().map((a) =>
      `${repoUrl(owner)}/releases/download/v${VERSION}/${a}`
    ),
  );
});

Deno.test("the committed files are what the release filler writes for their owner", async () => {
  const r = { owner: owner!, version: VERSION };
  assert.deepEqual(fillServerJson(serverJson, r), serverJson);
  assert.deepEqual(fillManifest(manifest, r), manifest);
  assert.equal(
    fillYaml(await read("proxmox-mcp.yaml"), r),
    await read("proxmox-mcp.yaml"),
  );
  assert.equal(fillDockerfile(dockerfile, r), dockerfile);
});

Deno.test("the release filler writes checksums, digest, commit and a fork's owner", async () => {
  const sha = (n: number) => n.toString(16).repeat(64).slice(0, 64);
  const sums = parseSums(
    bundleAssets().map((a, i) => `${sha(i + 1)}  dist/${a}`).join("\n") +
      `\n${sha(9)} *proxmox-mcp-linux-x64\n`,
  );
  const r = {
    owner: "Some-Fork",
    version: VERSION,
    commit: "0123456789abcdef0123456789abcdef01234567",
    imageDigest: `sha256:${sha(7)}`,
    sums,
  };
  const filled = fillServerJson(serverJson, r);
  assert.deepEqual(await registrySchemaErrors(filled), []);
  assert.equal(filled.name, "io.github.Some-Fork/proxmox-mcp");
  const mcpb = filled.packages.filter((p: { registryType: string }) =>
    p.registryType === "mcpb"
  );
  assert.equal(mcpb.length, 5);
  mcpb.forEach((p: { fileSha256: string }, i: number) =>
    assert.equal(p.fileSha256, sha(i + 1))
  );
  assert.equal(filled.packages[0].identifier, "some-fork/proxmox-mcp");
  const y = parseYaml(fillYaml(await read("proxmox-mcp.yaml"), r));
  assert.equal(
    y.image,
    `ghcr.io/some-fork/proxmox-mcp:${VERSION}@sha256:${sha(7)}`,
  );
  assert.equal(y.source.commit, r.commit);
  assert.equal(y.source.project, "https://github.com/Some-Fork/proxmox-mcp");
  assert.match(
    fillDockerfile(dockerfile, r),
    /LABEL io\.modelcontextprotocol\.server\.name="io\.github\.Some-Fork\/proxmox-mcp"/,
  );
  assert.throws(
    () => fillServerJson(serverJson, { ...r, sums: {} }),
    /SHA256SUMS lacks proxmox-mcp-linux-x64\.mcpb/,
  );
});

Deno.test("the variables agree with src/config.ts, and secrets are marked secret everywhere", () => {
  const oci = ociPackage();
  const fromServer: string[] = oci.environmentVariables.map((
    v: { name: string },
  ) => v.name);
  const fromYaml: string[] = [
    ...yaml.config.env.map((e: { name: string }) => e.name),
    ...yaml.config.secrets.map((s: { env: string }) => s.env),
  ];
  const fromManifest = Object.keys(manifest.server.mcp_config.env);
  for (const n of [...fromServer, ...fromYaml, ...fromManifest]) {
    assert.ok(SETTINGS.includes(n), `${n} is a variable src/config.ts reads`);
  }
  assert.deepEqual([...fromYaml].sort(), [...fromServer].sort());
  for (const n of fromManifest) assert.ok(fromServer.includes(n), n);
  for (
    const n of [
      "PROXMOX_URL",
      "PROXMOX_TOKEN_ID",
      "PROXMOX_TOKEN_SECRET",
      "PROXMOX_TLS_FINGERPRINT",
      "PROXMOX_VERIFY_SSL",
      "MCP_READ_ONLY",
      "MCP_TOOLSETS",
    ]
  ) {
    assert.ok(fromManifest.includes(n), `the bundle sets ${n}`);
    assert.ok(fromServer.includes(n), `server.json lists ${n}`);
  }
  for (const v of oci.environmentVariables) {
    assert.equal(v.isSecret === true, SECRETS.includes(v.name), v.name);
  }
  assert.deepEqual(
    yaml.config.secrets.map((s: { env: string }) => s.env).sort(),
    [...SECRETS].sort(),
  );
  // Token and password are alternatives: only the URL is required.
  assert.deepEqual(yaml.config.parameters.required, ["url"]);
  assert.deepEqual(
    oci.environmentVariables.filter((v: { isRequired?: boolean }) =>
      v.isRequired
    ).map((v: { name: string }) => v.name),
    ["PROXMOX_URL"],
  );
  // Every {{param}} in the yaml is a declared parameter.
  for (const e of yaml.config.env) {
    const p = /^\{\{proxmox-mcp\.(\w+)\}\}$/.exec(e.value)?.[1];
    assert.ok(
      p && yaml.config.parameters.properties[p],
      `${e.name}: ${e.value}`,
    );
  }
  const uc = manifest.user_config;
  assert.equal(uc.token_secret.sensitive, true);
  for (
    const [k, v] of Object.entries(uc) as [string, { sensitive?: boolean }][]
  ) {
    const env = Object.entries(manifest.server.mcp_config.env).find(([, val]) =>
      val === `\${user_config.${k}}`
    )?.[0];
    assert.ok(env, `user_config.${k} reaches the server`);
    assert.equal(v.sensitive === true, SECRETS.includes(env), k);
  }
});

Deno.test("tools.json is generated from the current catalog", async () => {
  assert.equal(
    await Deno.readTextFile(TOOLS_JSON),
    await toolsJson(),
    "tools.json is stale: deno run --allow-read --allow-write scripts/tools_json.ts",
  );
});

Deno.test("binaries and the Dockerfile get the start task's permissions, never -A", async () => {
  const perms = await startPermissions();
  assert.ok(perms.includes("--no-prompt"));
  assert.ok(perms.some((p) => p.startsWith("--allow-env=")));
  const args = await compileArgs("darwin-arm64");
  assert.deepEqual(args.slice(1, 1 + perms.length), perms);
  assert.ok(args.includes("aarch64-apple-darwin"));
  assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
  assert.equal(
    (await compileArgs("windows-x64")).at(-2),
    "dist/proxmox-mcp-windows-x64.exe",
  );
  assert.throws(
    () => taskPermissions("deno run -A src/main.ts"),
    /unexpected flag -A/,
  );
  const env = perms.find((p) => p.startsWith("--allow-env="));
  assert.ok(
    dockerfile.includes(`"${env}"`),
    "the image's ENTRYPOINT grants the same variables as deno task start",
  );
});

Deno.test("the schema fetcher rebuilds ../shared/pve-api byte for byte from apidata.js", async () => {
  for (const s of SCHEMAS) {
    const have = await Deno.readTextFile(
      new URL(`../../shared/pve-api/${s.file}`, import.meta.url),
    );
    const js = `const apiSchema = ${JSON.stringify(JSON.parse(have))};\n`;
    const rebuilt = new TextEncoder().encode(apidataToJson(js));
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", rebuilt),
    );
    const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    assert.equal(hex, s.sha256, s.file);
  }
});

Deno.test("the release workflow tests first, then builds, smoke-tests and bundles every target", async () => {
  const wf = parseYaml(await read(".github/workflows/release.yml"));
  const testSteps = JSON.stringify(wf.jobs.test.steps);
  for (
    const cmd of ["deno task ok", "deno task test", "validate manifest.json"]
  ) {
    assert.ok(testSteps.includes(cmd), cmd);
  }
  assert.equal(wf.jobs.binaries.needs, "test");
  assert.equal(wf.jobs.image.needs, "test");
  const matrix: { os: string; target: string }[] =
    wf.jobs.binaries.strategy.matrix.include;
  assert.deepEqual(
    matrix.map((m) => m.target).sort(),
    Object.keys(TARGETS).sort(),
  );
  assert.ok(matrix.every((m) => m.os !== "macos-13"), "macos-13 was retired");
  const steps = JSON.stringify(wf.jobs.binaries.steps);
  for (
    const s of [
      "deno task compile:${{ matrix.target }}",
      "scripts/smoke.ts",
      'mcpb@${MCPB_VERSION}\\" pack',
    ]
  ) assert.ok(steps.includes(s), s);
  const all = await read(".github/workflows/release.yml");
  assert.ok(!/deno (run|compile) -A|--allow-all/.test(all), "never -A");
  for (
    const s of [
      "actions/attest-build-provenance",
      "SHA256SUMS",
      "scripts/release_fill.ts",
      "steps.push.outputs.digest",
      "mcp-publisher publish server.json",
    ]
  ) assert.ok(all.includes(s), s);
});

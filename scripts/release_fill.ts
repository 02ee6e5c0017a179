/**
 * Fills the registry files for a release: owner, version, source commit, image
 * digest and bundle checksums. The release workflow runs it; the results are
 * published (server.json to the MCP registry) and attached to the release.
 *
 *   deno run --allow-read --allow-write scripts/release_fill.ts --owner OWNER \
 *     [--commit SHA] [--image-digest sha256:...] [--sums dist/SHA256SUMS]
 *
 * The version is src/config.ts's VERSION: the workflow checks the tag against it.
 */
import { VERSION } from "../src/config.ts";
import { TARGETS } from "./compile.ts";

export const NAME = "proxmox-mcp";

export interface Release {
  /** GitHub owner of the repository (user or organisation). */
  owner: string;
  version: string;
  /** Full commit hash of the tag. */
  commit?: string;
  /** Digest of the pushed image manifest list (`sha256:...`). */
  imageDigest?: string;
  /** Asset file name → SHA-256 (hex), from SHA256SUMS. */
  sums?: Record<string, string>;
}

/** Asset names of the bundles, one per target. */
export function bundleAssets(): string[] {
  return Object.keys(TARGETS).map((t) => `${NAME}-${t}.mcpb`);
}

export function repoUrl(owner: string): string {
  return `https://github.com/${owner}/${NAME}`;
}

export function serverName(owner: string): string {
  return `io.github.${owner}/${NAME}`;
}

/** `ghcr.io/<owner>/proxmox-mcp` (GHCR wants lower case). */
export function imageName(owner: string): string {
  return `ghcr.io/${owner.toLowerCase()}/${NAME}`;
}

/** Parses `sha256sum` output (`<hex>  <file>` or `<hex> *<file>`). */
export function parseSums(text: string): Record<string, string> {
  const sums: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([a-f0-9]{64}) [ *](.+)$/.exec(line.trim());
    if (m) sums[m[2].replace(/^.*\//, "")] = m[1];
  }
  return sums;
}

// deno-lint-ignore no-explicit-any
type Json = any;

export function fillServerJson(doc: Json, r: Release): Json {
  const out = structuredClone(doc);
  out.name = serverName(r.owner);
  out.version = r.version;
  out.repository = { url: repoUrl(r.owner), source: "github" };
  out.websiteUrl = `${repoUrl(r.owner)}#readme`;
  const oci = out.packages.find((p: Json) => p.registryType === "oci");
  if (!oci) throw new TypeError("server.json has no oci package");
  oci.registryBaseUrl = "https://ghcr.io";
  oci.identifier = `${r.owner.toLowerCase()}/${NAME}`;
  oci.version = r.version;
  const bundles = bundleAssets().map((asset) => {
    const pkg: Json = {
      registryType: "mcpb",
      identifier: `${
        repoUrl(r.owner)
      }/releases/download/v${r.version}/${asset}`,
      version: r.version,
      transport: { type: "stdio" },
    };
    if (r.sums) {
      const sha = r.sums[asset];
      if (!sha) throw new TypeError(`SHA256SUMS lacks ${asset}`);
      pkg.fileSha256 = sha;
    }
    return pkg;
  });
  out.packages = [oci, ...bundles];
  return out;
}

export function fillManifest(doc: Json, r: Release): Json {
  const out = structuredClone(doc);
  out.version = r.version;
  out.author.url = repoUrl(r.owner);
  out.repository.url = repoUrl(r.owner);
  out.homepage = repoUrl(r.owner);
  out.documentation = `${repoUrl(r.owner)}#readme`;
  out.support = `${repoUrl(r.owner)}/issues`;
  return out;
}

function replaceLine(text: string, re: RegExp, line: string): string {
  if (!re.test(text)) throw new TypeError(`Cannot fill: no line matches ${re}`);
  return text.replace(re, line);
}

export function fillYaml(text: string, r: Release): string {
  const digest = r.imageDigest ? `@${r.imageDigest}` : "";
  let out = replaceLine(
    text,
    /^image: .*$/m,
    `image: ${imageName(r.owner)}:${r.version}${digest}`,
  );
  out = replaceLine(
    out,
    /^ {2}project: .*$/m,
    `  project: ${repoUrl(r.owner)}`,
  );
  if (r.commit) {
    if (!/^[0-9a-f]{40}$/.test(r.commit)) {
      throw new TypeError(`Cannot fill: commit ${r.commit} is not a full hash`);
    }
    out = replaceLine(out, /^ {2}commit: .*$/m, `  commit: "${r.commit}"`);
  }
  return out;
}

export function fillDockerfile(text: string, r: Release): string {
  return replaceLine(
    text,
    /^LABEL io\.modelcontextprotocol\.server\.name=.*$/m,
    `LABEL io.modelcontextprotocol.server.name="${serverName(r.owner)}"`,
  );
}

const ROOT = new URL("..", import.meta.url);

async function edit(
  file: string,
  fn: (text: string) => string,
): Promise<void> {
  const url = new URL(file, ROOT);
  await Deno.writeTextFile(url, fn(await Deno.readTextFile(url)));
}

const json = (f: (d: Json) => Json) => (text: string) =>
  JSON.stringify(f(JSON.parse(text)), null, 2) + "\n";

/** Rewrites server.json, manifest.json, proxmox-mcp.yaml and the Dockerfile in place. */
export async function fillAll(r: Release): Promise<void> {
  await edit("server.json", json((d) => fillServerJson(d, r)));
  await edit("manifest.json", json((d) => fillManifest(d, r)));
  await edit("proxmox-mcp.yaml", (t) => fillYaml(t, r));
  await edit("Dockerfile", (t) => fillDockerfile(t, r));
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const owner = arg("owner");
  if (!owner) {
    Deno.stderr.writeSync(new TextEncoder().encode(
      "Usage: release_fill.ts --owner OWNER [--commit SHA] [--image-digest sha256:...] [--sums FILE]\n",
    ));
    Deno.exit(2);
  }
  const sumsFile = arg("sums");
  await fillAll({
    owner,
    version: VERSION,
    commit: arg("commit"),
    imageDigest: arg("image-digest"),
    sums: sumsFile ? parseSums(await Deno.readTextFile(sumsFile)) : undefined,
  });
}

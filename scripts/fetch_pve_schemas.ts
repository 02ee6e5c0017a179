/**
 * Lays out the official Proxmox VE API schemas where the tests look for them
 * (`../shared/pve-api/` beside the clone), for machines that do not have them
 * (GitHub's runners). The schema is the data behind Proxmox's API viewer,
 * `api-viewer/apidata.js` of proxmox/pve-docs, at the commits recorded in
 * ../shared/pve-api/SOURCE.md; `const apiSchema = ` and the final `;` are
 * stripped and the JSON written with 1-space indentation, which must give the
 * SHA-256 recorded there for each file.
 *
 *   deno run --allow-net=raw.githubusercontent.com --allow-write=.. scripts/fetch_pve_schemas.ts ../shared/pve-api
 */

export const SCHEMAS = [
  {
    file: "pve-api-schema.json", // PVE 9.1 (pve-docs 9.1.3)
    commit: "a8736b6d6169ea9679ee02285ea36fdab42e85c3",
    sha256: "a84cb189b9aa22cc2ba0cc221f1c9244cbaaf7b64a981916ece4390aaf54772b",
  },
  {
    file: "pve-api-schema-pve8.json", // PVE 8.4 (pve-docs 8.4.2, stable-bookworm)
    commit: "ae1bf37ed06b2fab39c9fa28a0e6c18e6435b7de",
    sha256: "1c835c9b986766c6820d1e15b2a3f90911ed262711d52ecb719616466f69cfc9",
  },
] as const;

/** The JSON inside an apidata.js file. */
export function apidataToJson(js: string): string {
  const body = js.replace(/^\s*const apiSchema = /, "").replace(/;\s*$/, "");
  return JSON.stringify(JSON.parse(body), null, 1);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

if (import.meta.main) {
  const dir = Deno.args[0] ?? "../shared/pve-api";
  await Deno.mkdir(dir, { recursive: true });
  for (const s of SCHEMAS) {
    const url =
      `https://raw.githubusercontent.com/proxmox/pve-docs/${s.commit}/api-viewer/apidata.js`;
    const res = await fetch(url);
    if (!res.ok) throw new Error(`Cannot fetch ${url}: ${res.status}`);
    const json = apidataToJson(await res.text());
    const bytes = new TextEncoder().encode(json);
    if (await sha256(bytes) !== s.sha256) {
      throw new Error(
        `Cannot use ${url}: the schema's SHA-256 is not ${s.sha256}`,
      );
    }
    await Deno.writeFile(`${dir}/${s.file}`, bytes);
  }
}

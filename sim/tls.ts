/**
 * Test certificates (openssl): a throwaway CA and a server certificate for
 * 127.0.0.1/localhost, as PVE's pve-root-ca and pve-ssl; or one self-signed
 * certificate that is its own CA, as a hand-made node certificate often is.
 */

export interface SimTls {
  cert: string;
  key: string;
  /** PEM of the CA that signed cert (what PROXMOX_CA_FILE would name). */
  ca: string;
  caFile: string;
  dir: string;
  /** SHA-256 of cert, as `pvenode cert info` prints it (`AA:BB:…`). */
  fingerprint: string;
}

/** The SHA-256 fingerprint of a PEM certificate, as `AA:BB:…`. */
export async function pemFingerprint(pem: string): Promise<string> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return [...hash].map((b) => b.toString(16).padStart(2, "0").toUpperCase())
    .join(":");
}

let shared: Promise<SimTls> | undefined;

/**
 * One CA-signed certificate set per process, made on first use (openssl takes
 * a while) and removed when the process ends. Tests share it read-only.
 */
export function simTls(): Promise<SimTls> {
  if (!shared) {
    shared = selfSignedCert();
    shared.then((t) =>
      globalThis.addEventListener("unload", () => {
        try {
          Deno.removeSync(t.dir, { recursive: true });
        } catch { /* already gone */ }
      })
    ).catch(() => {});
  }
  return shared;
}

/**
 * A certificate for 127.0.0.1/localhost that is its own CA (basicConstraints
 * CA:TRUE, as `openssl req -x509` makes by default): `ca` is the certificate
 * itself, which TLS libraries refuse as an end entity (CaUsedAsEndEntity).
 */
export async function caAsEndEntityCert(): Promise<SimTls> {
  const dir = await Deno.makeTempDir({ prefix: "pve-sim-tls-" });
  await selfSigned(dir, {
    name: "server",
    subject: "/CN=localhost",
    ext: [
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "basicConstraints=critical,CA:TRUE",
    ],
  });
  return await readTls(dir, `${dir}/server.pem`);
}

/**
 * `openssl req -x509` in `dir`: a new RSA key `<name>.key` and a certificate
 * `<name>.pem` that signs itself, valid for two days.
 */
function selfSigned(
  dir: string,
  o: { name: string; subject: string; ext?: string[] },
): Promise<void> {
  return openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-keyout",
    `${o.name}.key`,
    "-out",
    `${o.name}.pem`,
    "-subj",
    o.subject,
    ...(o.ext ?? []).flatMap((e) => ["-addext", e]),
  ], dir);
}

/** The server's certificate and key in `dir`, trusted through `caFile`. */
async function readTls(dir: string, caFile: string): Promise<SimTls> {
  const cert = await Deno.readTextFile(`${dir}/server.pem`);
  return {
    cert,
    key: await Deno.readTextFile(`${dir}/server.key`),
    ca: await Deno.readTextFile(caFile),
    caFile,
    dir,
    fingerprint: await pemFingerprint(cert),
  };
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** Makes a CA and a cert signed by it in a temporary directory. */
export async function selfSignedCert(): Promise<SimTls> {
  const dir = await Deno.makeTempDir({ prefix: "pve-sim-tls-" });
  await selfSigned(dir, { name: "ca", subject: "/CN=PVE Sim Root CA" });
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  ], dir);
  await openssl([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  return await readTls(dir, `${dir}/ca.pem`);
}

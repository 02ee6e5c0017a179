/**
 * State that travels with a question to the human (the SDK's input-required
 * rounds): a 2026-07-28 client echoes it in the answer's round, which a load
 * balancer may send to another replica. So nothing waits in process memory:
 * the state is sealed (AES-256-GCM, WebCrypto) with a key every replica
 * derives from the same `MCP_STATE_SECRET` (HKDF-SHA256), bound to its
 * purpose and expiring. Without the secret, each process makes a random key
 * of its own: answers are honoured only by the process that asked.
 *
 * Sealed, not only signed: a lockdown hold carries guest output the human has
 * not released, which the client must not read from the state either.
 *
 * The SDK's `createRequestStateCodec` was not used: it signs without
 * encrypting (its payload is readable base64), and its failures reach the
 * client only as a frozen `-32602 Invalid or expired requestState`; here a
 * tool says what went wrong (another replica's key, tampering, expiry).
 */
import { decodeBase64Url, encodeBase64Url } from "../base64url.ts";
import { VERSION } from "../config.ts";

/** What a server seals with: derived from MCP_STATE_SECRET, or random. */
export interface StateKeys {
  cipher: CryptoKey;
  /** Names the key (not secret): tells "another key" from "tampered". */
  id: string;
}

/** Why a state was not accepted. */
export type Refusal = "malformed" | "version" | "key" | "tampered" | "expired";

export type Opened<T> = { ok: true; value: T } | { ok: false; why: Refusal };

/** Largest state accepted back (a sealed lockdown hold fits well within). */
const STATE_MAX_CHARS = 3 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
/**
 * The state's format. With the server's version it leads the token in clear
 * and is bound into the authenticated data: a state another version issued
 * (a rolling upgrade's other half) is refused as such, never read with this
 * version's idea of its fields.
 */
const FORMAT = "v2";
const RELEASE = encodeBase64Url(encoder.encode(VERSION));
/** Keys by secret; "" for the process's random one. */
const keys = new Map<string, Promise<StateKeys>>();

/** The keys for a server's config: its MCP_STATE_SECRET's, or the process's. */
export function stateKeys(
  config: { stateSecret?: string },
): Promise<StateKeys> {
  const secret = config.stateSecret ?? "";
  let k = keys.get(secret);
  if (!k) {
    k = derive(config.stateSecret);
    keys.set(secret, k);
  }
  return k;
}

async function derive(secret: string | undefined): Promise<StateKeys> {
  const ikm = secret !== undefined
    ? encoder.encode(secret)
    : crypto.getRandomValues(new Uint8Array(32));
  const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, [
    "deriveKey",
    "deriveBits",
  ]);
  const hkdf = (info: string) => ({
    name: "HKDF",
    hash: "SHA-256",
    salt: encoder.encode("proxmox-mcp request state"),
    info: encoder.encode(info),
  });
  const [cipher, idBits] = await Promise.all([
    crypto.subtle.deriveKey(
      hkdf("aes-256-gcm v1"),
      base,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    ),
    crypto.subtle.deriveBits(hkdf("key id v1"), base, 64),
  ]);
  return {
    cipher,
    id: encodeBase64Url(new Uint8Array(idBits)),
  };
}

/** Arguments in a stable order, so the same call hashes the same. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${
      Object.keys(value).sort().map((k) =>
        `${JSON.stringify(k)}:${
          canonical((value as Record<string, unknown>)[k])
        }`
      ).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** A call, as a short digest: the tool and its arguments. */
export async function callDigest(
  tool: string,
  args: Record<string, unknown>,
): Promise<string> {
  const hash = await crypto.subtle.digest(
    "SHA-256",
    encoder.encode(`${tool}\0${canonical(args)}`),
  );
  return encodeBase64Url(new Uint8Array(hash));
}

/** What the tag authenticates besides the ciphertext. */
function boundData(purpose: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`${FORMAT}\0${VERSION}\0${purpose}`);
}

/**
 * Seals `payload` for `purpose` (it opens only for the same purpose), valid
 * for `ttlMs`: `v2.<server version>.<key id>.<iv>.<ciphertext>`.
 */
export async function seal(
  k: StateKeys,
  purpose: string,
  payload: unknown,
  ttlMs: number,
): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = encoder.encode(
    JSON.stringify({ x: Date.now() + ttlMs, p: payload }),
  );
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: boundData(purpose) },
    k.cipher,
    plain,
  );
  return `${FORMAT}.${RELEASE}.${k.id}.${encodeBase64Url(iv)}.${
    encodeBase64Url(new Uint8Array(sealed))
  }`;
}

/**
 * Opens a state sealed by `seal` for `purpose`. The tag check (WebCrypto's
 * AES-GCM) is what authenticates it: any change fails as a whole.
 */
export async function open<T>(
  k: StateKeys,
  purpose: string,
  token: unknown,
): Promise<Opened<T>> {
  if (typeof token !== "string" || token.length > STATE_MAX_CHARS) {
    return { ok: false, why: "malformed" };
  }
  const parts = token.split(".");
  // Another format (v1 had no version), or another server version.
  if (/^v\d{1,3}$/.test(parts[0]) && parts[0] !== FORMAT) {
    return { ok: false, why: "version" };
  }
  if (parts.length !== 5 || parts[0] !== FORMAT) {
    return { ok: false, why: "malformed" };
  }
  if (parts[1] !== RELEASE) return { ok: false, why: "version" };
  if (parts[2] !== k.id) return { ok: false, why: "key" };
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: decodeBase64Url(parts[3]),
        additionalData: boundData(purpose),
      },
      k.cipher,
      decodeBase64Url(parts[4]),
    );
  } catch {
    return { ok: false, why: "tampered" };
  }
  let sealed: { x?: unknown; p?: unknown };
  try {
    sealed = JSON.parse(decoder.decode(plain));
  } catch {
    // Authentic, yet not what seal() writes: no state of this server.
    return { ok: false, why: "malformed" };
  }
  if (
    typeof sealed !== "object" || sealed === null ||
    typeof sealed.x !== "number" || !("p" in sealed)
  ) {
    return { ok: false, why: "malformed" };
  }
  if (!(sealed.x > Date.now())) return { ok: false, why: "expired" };
  return { ok: true, value: sealed.p as T };
}

/**
 * Ids of states already acted on in this process, each until its state has
 * expired for sure (in spending order, which is expiry order: one lifetime
 * per purpose). Per process: a replay that a load balancer sends to another
 * replica is not seen here.
 */
const spent = new Map<string, number>();
/**
 * Spent ids kept at most. Each stands for an action a human confirmed in
 * the last 10 minutes; past this, confirmations are refused (not forgotten).
 */
const SPENT_MAX = 100_000;

/** A random id for a state that may be acted on once. */
export function stateId(): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(16)));
}

/** Whether a state's id was already spent in this process. */
export function isSpent(id: string): boolean {
  const until = spent.get(id);
  return until !== undefined && until > Date.now();
}

/**
 * Spends a state's id for `lifetimeMs` (at least what is left of the
 * state's own): `first` the first time, `again` after. Checked and recorded
 * in one synchronous step, so that of two answers racing, one is first.
 */
export function spend(
  id: string,
  lifetimeMs: number,
): "first" | "again" | "full" {
  const now = Date.now();
  for (const [old, until] of spent) {
    if (until > now) break;
    spent.delete(old);
  }
  if (isSpent(id)) return "again";
  if (spent.size >= SPENT_MAX) return "full";
  spent.set(id, now + lifetimeMs);
  return "first";
}

/** Why a state was refused, in words for a tool result. */
export function refusalText(why: Refusal): string {
  switch (why) {
    case "version":
      return `it was issued by another version of the server (this is ${VERSION}; replicas behind one address answer each other's questions only when they run the same version)`;
    case "key":
      return "it was sealed by a server with another key (replicas behind one address need the same MCP_STATE_SECRET; without it, only the process that asked can take the answer)";
    case "tampered":
      return "it was altered on the way (it failed its integrity check)";
    case "expired":
      return "it expired (an answer is taken for 10 minutes)";
    default:
      return "it is not state this server issued";
  }
}

/**
 * base64url without padding (RFC 4648 §5), for the tokens the server hands
 * out and takes back: paging cursors (tools/paging.ts) and sealed request
 * state (safety/state.ts).
 */

/** Bytes as base64url text, without padding. */
export function encodeBase64Url(bytes: Uint8Array): string {
  let s = "";
  // In slices: spreading a megabyte of arguments overflows the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The bytes of base64url text (padding optional). Throws a TypeError for
 * anything else (another alphabet, a length no encoding has).
 */
export function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) {
    throw new TypeError("Cannot decode base64url: invalid character");
  }
  let bin: string;
  try {
    bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    throw new TypeError("Cannot decode base64url: invalid length");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

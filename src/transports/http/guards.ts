/**
 * What a request must pass before it reaches MCP: the Host and Origin checks
 * (DNS-rebinding protection), the bearer token, and the body size limit.
 */
import { createHash } from "node:crypto";
import {
  localhostAllowedHostnames,
  readRequestBody,
  validateHostHeader,
} from "@modelcontextprotocol/server";
import type { Config } from "../../config.ts";
import { jsonRpcError } from "../sse.ts";

const WILDCARDS = new Set(["0.0.0.0", "::", "[::]"]);

/** Hostnames (no port) that the Host header may name. */
export function allowedHostnames(
  config: Pick<Config, "host" | "allowedHosts">,
): string[] {
  const names = new Set(localhostAllowedHostnames());
  const add = (entry: string) => {
    let h = entry.trim().toLowerCase();
    if (!h) return;
    if (h.includes("://")) {
      try {
        h = new URL(h).hostname;
      } catch {
        return;
      }
    } else if (h.startsWith("[")) {
      h = h.slice(0, h.indexOf("]") + 1);
    } else if ((h.match(/:/g) ?? []).length > 1) {
      h = `[${h}]`; // a bare IPv6 address
    } else {
      h = h.split(":")[0]; // drop a port
    }
    names.add(h);
  };
  for (const h of config.allowedHosts) add(h);
  if (!WILDCARDS.has(config.host)) add(config.host);
  return [...names];
}

/**
 * The origins (scheme://host[:port], as browsers send them) that may call the
 * server: exactly those in MCP_ALLOWED_ORIGINS. A default port is dropped, as
 * browsers do. Throws RangeError for an entry that is not an origin.
 */
export function allowedOrigins(
  config: Pick<Config, "allowedOrigins">,
): Set<string> {
  const out = new Set<string>();
  for (const entry of config.allowedOrigins ?? []) {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      // reported below
    }
    if (
      !url || (url.protocol !== "http:" && url.protocol !== "https:") ||
      url.pathname !== "/" || url.search || url.username
    ) {
      throw new RangeError(
        `Cannot parse MCP_ALLOWED_ORIGINS: ${entry} is not an origin (e.g. http://localhost:6274)`,
      );
    }
    out.add(url.origin);
  }
  return out;
}

/** 403 for a Host not allowed. */
export function hostGuard(
  hosts: string[],
): (request: Request) => Response | undefined {
  return (request) => {
    const host = validateHostHeader(request.headers.get("host"), hosts);
    if (host.ok) return undefined;
    return jsonRpcError(
      403,
      `${host.message}: add the name to MCP_ALLOWED_HOSTS`,
    );
  };
}

/**
 * 403 for an Origin that is neither the server's own (scheme + the Host the
 * request was sent to, port included; the Host check runs first) nor listed
 * in MCP_ALLOWED_ORIGINS. Requests without Origin (every non-browser client)
 * pass: a browser always sends it on the requests DNS rebinding needs. A page
 * on another port of an allowed name (`http://localhost:6274`) is another
 * origin: refused unless listed.
 */
export function originGuard(
  origins: Set<string>,
): (request: Request) => Response | undefined {
  return (request) => {
    const origin = request.headers.get("origin");
    if (origin === null || origins.has(origin)) return undefined;
    const host = request.headers.get("host");
    if (
      host !== null &&
      (origin === `http://${host}` || origin === `https://${host}`)
    ) {
      return undefined;
    }
    return jsonRpcError(
      403,
      `Forbidden: Origin ${
        origin.slice(0, 100)
      } is not allowed: add it to MCP_ALLOWED_ORIGINS`,
    );
  };
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/**
 * The bearer check (RFC 6750: `Authorization: Bearer <token>`, the scheme
 * case-insensitive), or undefined when no token is configured. Exactly one
 * token is accepted; a token in the query string is ignored.
 */
export function bearerGuard(
  token: string | undefined,
): ((request: Request) => Response | undefined) | undefined {
  if (!token) return undefined;
  const expected = sha256(token);
  const challenge = (error?: string) =>
    jsonRpcError(
      401,
      error
        ? "Unauthorized: the bearer token is wrong"
        : "Unauthorized: send Authorization: Bearer <MCP_AUTH_TOKEN>",
      {
        "WWW-Authenticate": `Bearer realm="proxmox-mcp"${
          error ? `, error="${error}"` : ""
        }`,
      },
    );
  return (request) => {
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(
      request.headers.get("authorization") ?? "",
    );
    if (!m) return challenge();
    // Compare digests (equal length) without an early exit.
    const got = sha256(m[1]);
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff |= got[i] ^ expected[i];
    return diff === 0 ? undefined : challenge("invalid_token");
  };
}

export type BodyRead =
  | { ok: true; text: string }
  | { ok: false; response: Response };

/**
 * Reads a request body up to `max` bytes with the SDK's `readRequestBody`,
 * which counts while it streams (chunked included): a declared
 * Content-Length past the limit is refused before any read, a body that
 * grows past it at the first read beyond. Either is cancelled (the
 * connection cannot be reused) and answered 413; a body that cannot be read
 * is answered 400.
 */
export async function readBody(
  request: Request,
  max: number,
): Promise<BodyRead> {
  let read: Awaited<ReturnType<typeof readRequestBody>>;
  try {
    read = await readRequestBody(request, max);
  } catch {
    return {
      ok: false,
      response: jsonRpcError(
        400,
        "The request body could not be read",
        { Connection: "close" },
        -32700,
      ),
    };
  }
  if (!read.tooLarge) return { ok: true, text: read.text };
  await request.body?.cancel().catch(() => {});
  return {
    ok: false,
    response: jsonRpcError(
      413,
      `Request body larger than ${max} bytes`,
      { Connection: "close" },
    ),
  };
}

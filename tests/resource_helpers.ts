/** Pieces the resource tests share in process and through the real entry point. */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/client";

export const SUMMARY = "proxmox://cluster";
export const CONFIG = "proxmox://{cluster}/guests/{vmid}/config";
export const TASK_LOG = "proxmox://{cluster}/tasks/{upid}/log";
export const NODE = "proxmox://{cluster}/nodes/{node}/status";

/** Reads `uri`: its one JSON content, parsed. */
// deno-lint-ignore no-explicit-any
export async function readJson(client: Client, uri: string): Promise<any> {
  const r = await client.readResource({ uri });
  assert.equal(r.contents.length, 1);
  const c = r.contents[0] as { uri: string; mimeType?: string; text?: string };
  assert.equal(c.uri, uri);
  assert.equal(c.mimeType, "application/json");
  return JSON.parse(c.text!);
}

/** The error a read ends with (it must end with one). */
export async function readError(
  client: Client,
  uri: string,
): Promise<{ code: number; message: string }> {
  try {
    await client.readResource({ uri });
  } catch (e) {
    return e as { code: number; message: string };
  }
  throw new assert.AssertionError({ message: `${uri} was read` });
}

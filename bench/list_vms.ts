/**
 * proxmox_list_vms on a simulated cluster of 5 000 guests: the bytes of the
 * default answer (the text the model reads; target at most 16 KiB), PVE
 * requests per call (target 1), time per call against a proxmox_list_nodes
 * call in the same session (the baseline), and a walk through every page
 * (pages, time, every guest exactly once).
 */
import { setTimeout as delay } from "node:timers/promises";
import { startSimulator } from "../sim/mod.ts";
import { median, spawnServer } from "./common.ts";

export interface ListVmsResult {
  guests: number;
  /** PVE requests the first call made. */
  requests: number;
  /** Bytes (UTF-8) of the default answer's text. */
  answerBytes: number;
  /** Rows in the default answer. */
  rows: number;
  /** Median time per default call, past the client's resources cache. */
  ms: number;
  baselineMs: number;
  walk: {
    pages: number;
    ms: number;
    /** PVE requests over the whole walk. */
    requests: number;
    largestPageBytes: number;
    /** Every guest exactly once, in vmid order. */
    everyGuestOnce: boolean;
  };
}

const bytes = (text: string) => new TextEncoder().encode(text).length;

export async function listVmsBench(guests = 5000): Promise<ListVmsResult> {
  await using sim = await startSimulator({ port: 0, extraGuests: guests - 12 });
  const s = await spawnServer({
    PROXMOX_URL: sim.url,
    PROXMOX_USER: sim.credentials.user,
    PROXMOX_PASSWORD: sim.credentials.password,
  });
  const list = async (args: Record<string, unknown>) => {
    const r = await s.client.callTool({
      name: "proxmox_list_vms",
      arguments: args,
    });
    if (r.isError) throw new Error(JSON.stringify(r.content));
    return {
      text: (r.content as { text: string }[])[0].text,
      data: r.structuredContent as {
        total: number;
        rows: (string | number)[][];
        next_cursor?: string;
      },
    };
  };
  try {
    const total = sim.cluster.guests.size;
    await s.client.callTool({ name: "proxmox_list_nodes", arguments: {} });
    const before = sim.requests.length;
    const first = await list({});
    const requests = sim.requests.length - before;
    if (first.data.total !== total) {
      throw new Error(`total ${first.data.total}, not ${total}`);
    }
    const times: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < 15; i++) {
      let t = performance.now();
      await s.client.callTool({ name: "proxmox_list_nodes", arguments: {} });
      base.push(performance.now() - t);
      await delay(1600); // past the resources cache
      t = performance.now();
      await list({});
      times.push(performance.now() - t);
    }
    // The walk: every page in turn, as a model would ask for them.
    await delay(1600);
    const walkBefore = sim.requests.length;
    const seen: number[] = [];
    let pages = 0;
    let largest = 0;
    let cursor: string | undefined;
    const t0 = performance.now();
    do {
      const p = await list(cursor ? { cursor } : {});
      pages++;
      largest = Math.max(largest, bytes(p.text));
      for (const row of p.data.rows) seen.push(row[0] as number);
      cursor = p.data.next_cursor;
    } while (cursor);
    const walkMs = performance.now() - t0;
    const want = [...sim.cluster.guests.keys()].sort((a, b) => a - b);
    return {
      guests: total,
      requests,
      answerBytes: bytes(first.text),
      rows: first.data.rows.length,
      ms: median(times),
      baselineMs: median(base),
      walk: {
        pages,
        ms: walkMs,
        requests: sim.requests.length - walkBefore,
        largestPageBytes: largest,
        everyGuestOnce: seen.length === want.length &&
          seen.every((v, i) => v === want[i]),
      },
    };
  } finally {
    await s.close();
  }
}

/** The line bench/run.ts prints. */
export function listVmsLine(r: ListVmsResult): string {
  return `list_vms on ${r.guests} guests: default answer ${r.answerBytes} bytes (target <= 16384), ${r.rows} rows, ${r.requests} PVE request(s) (target 1), ${
    r.ms.toFixed(1)
  } ms per call vs ${r.baselineMs.toFixed(1)} ms for list_nodes (ratio ${
    (r.ms / r.baselineMs).toFixed(2)
  }); walk: ${r.walk.pages} pages in ${
    r.walk.ms.toFixed(0)
  } ms, ${r.walk.requests} PVE requests, largest page ${r.walk.largestPageBytes} bytes, every guest once: ${r.walk.everyGuestOnce}`;
}

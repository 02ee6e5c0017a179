/**
 * proxmox_list_vms on a simulated cluster of 5 000 guests: PVE requests per
 * call, bytes per guest of the text the model reads, and time per call against
 * a proxmox_list_nodes call in the same session (the baseline).
 */
import { setTimeout as delay } from "node:timers/promises";
import { startSimulator } from "../src/sim/mod.ts";
import { median, spawnServer } from "./common.ts";

export async function listVmsBench(guests = 5000): Promise<{
  requests: number;
  bytesPerGuest: number;
  ms: number;
  baselineMs: number;
}> {
  await using sim = await startSimulator({ port: 0, extraGuests: guests - 12 });
  const s = await spawnServer({
    PROXMOX_URL: sim.url,
    PROXMOX_USER: sim.credentials.user,
    PROXMOX_PASSWORD: sim.credentials.password,
  });
  try {
    const total = sim.cluster.guests.size;
    await s.client.callTool({ name: "proxmox_list_nodes", arguments: {} });
    const before = sim.requests.length;
    const r = await s.client.callTool({
      name: "proxmox_list_vms",
      arguments: {},
    });
    const requests = sim.requests.length - before;
    const text = (r.content as { text: string }[])[0].text;
    const count = (r.structuredContent as { count: number }).count;
    if (count !== total) throw new Error(`listed ${count} of ${total}`);
    const times: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < 15; i++) {
      let t = performance.now();
      await s.client.callTool({ name: "proxmox_list_nodes", arguments: {} });
      base.push(performance.now() - t);
      await delay(1600); // past the resources cache
      t = performance.now();
      await s.client.callTool({ name: "proxmox_list_vms", arguments: {} });
      times.push(performance.now() - t);
    }
    return {
      requests,
      bytesPerGuest: text.length / total,
      ms: median(times),
      baselineMs: median(base),
    };
  } finally {
    await s.close();
  }
}

/**
 * `deno task bench [cold|size|list|memory|http]`: every benchmark (or one), each printing its ratio against a
 * baseline measured in the same run. Results are recorded in bench/RESULTS.md.
 */
import { print } from "./common.ts";
import { coldLines, coldStart } from "./cold_start.ts";
import { listVmsBench, listVmsLine } from "./list_vms.ts";
import { memoryBench } from "./memory.ts";
import { toolSizes } from "./tool_size.ts";

const only = Deno.args[0];
const want = (name: string) => !only || only === name;

if (want("cold")) {
  for (const line of coldLines(await coldStart())) print(line);
}
if (want("size")) {
  const sizes = toolSizes();
  if (only) {
    for (const s of [...sizes].sort((a, b) => b.bytes - a.bytes)) {
      print(`  ${s.name} ${s.bytes}`);
    }
  }
  const avg = sizes.reduce((a, s) => a + s.bytes, 0) / sizes.length;
  const max = sizes.reduce((a, s) => (s.bytes > a.bytes ? s : a));
  print(
    `tool size: ${sizes.length} tools, average ${
      avg.toFixed(0)
    } bytes (largest ${max.name} ${max.bytes}), ratio to the 300-byte target ${
      (avg / 300).toFixed(2)
    }, to the peers' 460 ${(avg / 460).toFixed(2)}`,
  );
}
if (want("list")) print(listVmsLine(await listVmsBench()));
if (want("memory")) {
  const r = await memoryBench();
  print(
    `memory over 10000 calls: heap after GC ${
      r.heap1k.toFixed(1)
    } MiB at 1000, ${r.heapEnd.toFixed(1)} MiB at 10000, ratio ${
      r.heapRatio.toFixed(3)
    }; stdio server RSS ${r.rss1k.toFixed(0)} -> ${r.rssEnd.toFixed(0)} MiB`,
  );
}
if (want("http")) {
  const { httpBench, httpLine } = await import("./http.ts");
  for (const c of [2, 8, 50]) print(httpLine(await httpBench(c), c));
}

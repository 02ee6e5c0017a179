/**
 * Baseline for the cold-start benchmark: a bare Deno process that answers
 * JSON-RPC lines on stdin with a fixed reply (what "no work at all" costs).
 */
const enc = new TextEncoder();
let buf = "";
for await (
  const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
) {
  buf += chunk;
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const msg = JSON.parse(line);
    if (msg.id !== undefined) {
      Deno.stdout.writeSync(
        enc.encode(
          JSON.stringify({
            jsonrpc: "2.0",
            id: msg.id,
            result: { tools: [] },
          }) + "\n",
        ),
      );
    }
  }
}

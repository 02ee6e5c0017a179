/** Baseline for the HTTP benchmark: a bare Deno.serve answering a fixed JSON-RPC result. */
const port = Number(Deno.args[0] ?? 0);
const body = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  result: { content: [{ type: "text", text: "{}" }], structuredContent: {} },
});
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) =>
    Deno.stdout.writeSync(new TextEncoder().encode(`${port}\n`)),
}, async (req) => {
  await req.text();
  return new Response(body, {
    headers: { "content-type": "application/json" },
  });
});

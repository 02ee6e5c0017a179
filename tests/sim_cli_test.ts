/** `deno task sim`: one JSON line with the url and the credentials it accepts. */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

async function startCli(
  args: string[],
): Promise<{ info: Record<string, string>; stop: () => Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--cwd", ROOT, "sim", "--port", "0", ...args],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  return {
    info: JSON.parse(buf.split("\n")[0]),
    stop: async () => {
      child.kill("SIGTERM");
      await reader.cancel();
      await child.status;
    },
  };
}

Deno.test("deno task sim prints its url and credentials, which log in", async () => {
  const { info, stop } = await startCli([]);
  try {
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.user, "root@pam");
    const res = await fetch(`${info.url}/api2/json/access/ticket`, {
      method: "POST",
      body: new URLSearchParams({
        username: info.user,
        password: info.password,
      }),
    });
    const { data } = await res.json();
    assert.match(data.ticket, /^PVE:root@pam:[0-9A-F]{8}::/);
    const vms = await fetch(`${info.url}/api2/json/cluster/resources?type=vm`, {
      headers: {
        Authorization: `PVEAPIToken=${info.tokenId}=${info.tokenSecret}`,
      },
    });
    assert.ok((await vms.json()).data.length > 5);
  } finally {
    await stop();
  }
});

Deno.test("deno task sim --https serves TLS with a CA file to trust", async () => {
  const { info, stop } = await startCli(["--https"]);
  try {
    assert.match(info.url, /^https:\/\//);
    const client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(info.caFile)],
    });
    const res = await fetch(`${info.url}/api2/json/version`, { client });
    assert.equal(res.status, 401, "no ticket");
    await res.body?.cancel();
    client.close();
  } finally {
    await stop();
  }
});

/** `deno task sim`: one JSON line with the url and the credentials it accepts. */
import assert from "node:assert/strict";
import { startCli } from "../sim_helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

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

Deno.test("deno task sim --pve-version 8.4 --extra-guests 500 --raw-sockets plays PVE 8.4 with 500 more guests and validates with the 8.4 schema", async () => {
  const { info, stop } = await startCli([
    "--pve-version",
    "8.4",
    "--extra-guests",
    "500",
    "--raw-sockets",
  ]);
  try {
    assert.equal(info.pveVersion, "8.4");
    const headers = {
      Authorization: `PVEAPIToken=${info.tokenId}=${info.tokenSecret}`,
    };
    const get = (path: string) =>
      fetch(`${info.url}/api2/json${path}`, { headers }).then((r) => r.json());
    assert.equal((await get("/version")).data.version, "8.4.1");
    const vms = (await get("/cluster/resources?type=vm")).data;
    assert.equal(vms.length, Number(info.guests));
    assert.ok(vms.length >= 500 + 5, `${vms.length} guests`);
    assert.ok(vms.some((g: { vmid: number }) => g.vmid === 10499));
    // A 9.x-only parameter is refused, as the 8.4 schema has no such thing.
    const start = await fetch(
      `${info.url}/api2/json/nodes/pve1/qemu/100/status/start`,
      {
        method: "POST",
        headers,
        body: new URLSearchParams({ "with-conntrack-state": "1" }),
      },
    );
    assert.equal(start.status, 400);
    assert.ok("with-conntrack-state" in (await start.json()).errors);
  } finally {
    await stop();
  }
});

Deno.test("deno task sim refuses an unknown --pve-version and a bad --extra-guests with one line", async () => {
  for (
    const [args, message] of [
      [
        ["--pve-version", "7.4"],
        "Cannot simulate PVE version '7.4': use 8.4 or 9.1",
      ],
      [
        ["--extra-guests", "lots"],
        "Cannot parse --extra-guests: 'lots' is not a whole number",
      ],
    ]
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "--cwd", ROOT, "sim", "--port", "0", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    assert.equal(new TextDecoder().decode(out.stdout), "");
    assert.equal(new TextDecoder().decode(out.stderr).trim(), message);
  }
});

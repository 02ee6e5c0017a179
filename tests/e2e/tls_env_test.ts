/**
 * TLS where users are: the real server, started with `deno task start`'s
 * own permissions (scripts/permissions.ts) and the environment a company
 * shell or an MCP client passes on, against an HTTPS simulator; hints that
 * fit the configuration. Pinning and the TLS hints in process:
 * tests/tls_test.ts.
 */
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import assert from "node:assert/strict";
import { startPermissions } from "../../scripts/permissions.ts";
import { type SimTls, simTls } from "../../sim/tls.ts";
import {
  assertNoSecrets,
  call,
  callOk,
  MAIN,
  simEnv,
  startSim,
} from "../helpers.ts";

/**
 * What an MCP client started from a company shell passes on: CA bundles for
 * node and Deno, a proxy for the outside world with the local network
 * exempt, the usual locale and terminal variables.
 */
function inheritedEnv(tls: SimTls): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
    LANG: "en_US.UTF-8",
    TERM: "xterm-256color",
    USER: "alice",
    SHELL: "/bin/bash",
    NODE_EXTRA_CA_CERTS: tls.caFile,
    NODE_USE_SYSTEM_CA: "1",
    DENO_CERT: tls.caFile,
    SSL_CERT_FILE: tls.caFile,
    REQUESTS_CA_BUNDLE: tls.caFile,
    // A proxy that is not there: anything sent to it fails.
    HTTPS_PROXY: "http://127.0.0.1:9",
    HTTP_PROXY: "http://127.0.0.1:9",
    https_proxy: "http://127.0.0.1:9",
    NO_PROXY: "127.0.0.1,localhost,.internal",
    no_proxy: "127.0.0.1,localhost,.internal",
    LOG_LEVEL: "DEBUG",
  };
}

/** The real entry point with `deno task start`'s permissions. */
async function startTask(
  env: Record<string, string>,
  permissions?: string[],
): Promise<
  { client: Client; stderr: () => string } & AsyncDisposable
> {
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: ["run", ...(permissions ?? await startPermissions()), MAIN],
    env,
    stderr: "pipe",
  });
  let err = "";
  transport.stderr?.on("data", (c: Uint8Array) => {
    err += new TextDecoder().decode(c);
  });
  const client = new Client({ name: "tls-test", version: "1.0.0" });
  await client.connect(transport);
  return {
    client,
    stderr: () => err,
    [Symbol.asyncDispose]: async () => {
      await client.close();
      assertNoSecrets(err, env);
    },
  };
}

Deno.test("deno task start's permissions reach HTTPS Proxmox with a company shell's environment (NODE_EXTRA_CA_CERTS, NODE_USE_SYSTEM_CA, DENO_CERT, HTTPS_PROXY/NO_PROXY): verify off, pinned, CA file", async (t) => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  const settings: Record<string, Record<string, string>> = {
    "PROXMOX_VERIFY_SSL=false": { PROXMOX_VERIFY_SSL: "false" },
    "PROXMOX_TLS_FINGERPRINT": {
      PROXMOX_TLS_FINGERPRINT: tls.fingerprint.toLowerCase(),
    },
    "PROXMOX_CA_FILE": { PROXMOX_CA_FILE: tls.caFile },
  };
  for (const [name, extra] of Object.entries(settings)) {
    await t.step(name, async () => {
      await using s = await startTask({
        ...inheritedEnv(tls),
        ...simEnv(sim),
        ...extra,
      });
      const r = await call(s.client, "proxmox_list_nodes");
      assert.ok(!r.isError, `${name}: ${r.text}\n${s.stderr()}`);
      assert.equal(r.data.nodes.length, 3);
      // A write goes through the same path.
      const started = await callOk(s.client, "proxmox_start_vm", {
        vmid: 102,
      });
      assert.equal(started.state, "running");
    });
  }
});

Deno.test("a DENO_CERT naming a missing file (a stale company setting) is named in the error; a pinned fingerprint does not depend on it", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  const env = {
    ...inheritedEnv(tls),
    ...simEnv(sim),
    DENO_CERT: "/nonexistent/corp-ca.pem",
  };
  await using broken = await startTask({
    ...env,
    PROXMOX_CA_FILE: tls.caFile,
  });
  const r = await call(broken.client, "proxmox_list_nodes");
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /Deno cannot load the CA file that DENO_CERT names \(.*\); nothing was sent .*Fix or unset DENO_CERT/,
  );
  await using pinned = await startTask({
    ...env,
    PROXMOX_TLS_FINGERPRINT: tls.fingerprint,
  });
  const ok = await call(pinned.client, "proxmox_list_nodes");
  assert.ok(!ok.isError, ok.text);
});

Deno.test("a permission the server lacks is named in the error (not a wrong --allow-net hint)", async () => {
  const tls = await simTls();
  await using sim = await startSim({ tls });
  const perms = (await startPermissions()).map((f) =>
    f === "--allow-net" ? "--allow-net=127.0.0.1:1" : f
  );
  await using s = await startTask({
    ...inheritedEnv(tls),
    ...simEnv(sim),
    PROXMOX_VERIFY_SSL: "false",
  }, perms);
  const r = await call(s.client, "proxmox_list_nodes");
  assert.equal(r.isError, true);
  assert.match(
    r.text,
    /Missing permission to reach https:\/\/127\.0\.0\.1:\d+: Requires net access to "127\.0\.0\.1:\d+", run again with the --allow-net flag/,
  );
});

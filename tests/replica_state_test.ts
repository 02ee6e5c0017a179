/**
 * Replicas: a 2026-07-28 call whose question round one server answers and
 * whose answer round another takes (a load balancer with `lb_policy random`).
 * Two HTTP apps in process, each booted from its own config (its own keys,
 * as two processes have), behind one client whose fetch sends the question
 * round to A and the answer round to B: with another secret, a tampered or
 * an expired state, B refuses and says why. The sealed state itself: bound
 * to its purpose and the server version, bounded in size. Two real
 * processes (tests/e2e/replica_processes_test.ts) show the point: without
 * MCP_STATE_SECRET (a random key per process) the other one refuses; with the
 * same secret, each answer is taken by the process that did not ask, and
 * nothing runs twice.
 */
import type { Client } from "@modelcontextprotocol/client";
import assert from "node:assert/strict";
import { boot } from "../src/app.ts";
import { type Config, loadConfig } from "../src/config.ts";
import { setLogWriter } from "../src/log.ts";
import { open, refusalText, seal, stateKeys } from "../src/safety/state.ts";
import { VERSION } from "../src/config.ts";
import { encodeBase64Url } from "../src/base64url.ts";
import { createHttpApp, type HttpApp } from "../src/transports/http/router.ts";
import {
  appTransport,
  assertNoSecrets,
  call,
  type ElicitAnswer,
  execPosts,
  simEnv,
  startSim,
  testClient,
  writes,
} from "./helpers.ts";

const SECRET = "replica-state-secret-0123456789abcdef";
const OTHER = "another-state-secret-0123456789abcdef";

interface Replicas extends AsyncDisposable {
  client: Client;
  /** Which server took each tools/call round: "A" or "B". */
  served: string[];
  asked: number;
  log(): string;
  configs: Config[];
}

/**
 * Two servers (A, B) and a 2026-07-28 client: a tools/call that carries
 * input responses (the answer round) goes to B, every other request to A.
 * `rewrite` may change the answer round's requestState on its way.
 */
async function replicas(
  envA: Record<string, string>,
  envB: Record<string, string>,
  answer: ElicitAnswer,
  rewrite?: (state: string, b: Config) => Promise<string>,
): Promise<Replicas> {
  let text = "";
  setLogWriter((line) => {
    text += line + "\n";
  });
  const configs: Config[] = [];
  const apps: HttpApp[] = [];
  for (const env of [envA, envB]) {
    const parsed = loadConfig([], { LOG_LEVEL: "DEBUG", ...env });
    if (parsed.kind !== "run") throw new TypeError("not a server run");
    configs.push(parsed.config);
    apps.push(createHttpApp(await boot(parsed.config)));
  }
  const served: string[] = [];
  const state = { asked: 0 };
  const client = testClient({
    era: "2026-07-28",
    elicit: () => {
      state.asked++;
      return answer;
    },
  }, "replica-test");
  const port = configs[0].port;
  await client.connect(
    appTransport(port, async (url, init) => {
      let body = init.body;
      let to = 0;
      if (typeof body === "string") {
        const msg = JSON.parse(body);
        if (msg.method === "tools/call") {
          if (msg.params?.inputResponses) {
            to = 1;
            if (rewrite && typeof msg.params.requestState === "string") {
              msg.params.requestState = await rewrite(
                msg.params.requestState,
                configs[1],
              );
              body = JSON.stringify(msg);
            }
          }
          served.push(to ? "B" : "A");
        }
      }
      return apps[to].fetch(new Request(url, { ...init, body }));
    }),
  );
  const close = async () => {
    await client.close();
    for (const app of apps) await app.shutdown();
    setLogWriter();
    assertNoSecrets(text, envA);
    assert.ok(!text.includes(SECRET) && !text.includes(OTHER));
  };
  return {
    client,
    served,
    get asked() {
      return state.asked;
    },
    log: () => text,
    configs,
    [Symbol.asyncDispose]: close,
  };
}

const ACCEPT: ElicitAnswer = { action: "accept", content: { confirm: true } };
const RELEASE: ElicitAnswer = { action: "accept", content: { release: true } };

Deno.test("replicas with different MCP_STATE_SECRETs: B refuses the confirmation and the release, and says why", async () => {
  await using sim = await startSim();
  const envA = { ...simEnv(sim), MCP_STATE_SECRET: SECRET };
  const envB = { ...simEnv(sim), MCP_STATE_SECRET: OTHER };
  {
    await using r = await replicas(envA, envB, ACCEPT);
    const res = await call(r.client, "proxmox_delete_vm", { vmid: 106 });
    assert.ok(res.isError);
    assert.match(res.text, /^Not done: .*another key.*MCP_STATE_SECRET/);
    assert.match(res.text, /Nothing was sent to Proxmox/);
    assert.equal(writes(sim).length, 0);
    assert.ok(sim.cluster.guests.has(106));
  }
  const lock = { MCP_LOCKDOWN: "true", MCP_CONFIRM: "never" };
  {
    await using r = await replicas(
      { ...envA, ...lock },
      { ...envB, ...lock },
      RELEASE,
    );
    const res = await call(r.client, "proxmox_execute_command", {
      vmid: 101,
      command: "echo held-on-A",
    });
    assert.ok(res.isError);
    assert.match(res.text, /cannot be released: .*another key/);
    assert.match(res.text, /calling again runs it again/);
    assert.ok(!res.text.includes("held-on-A"), "the output stays held");
    assert.equal(execPosts(sim), 1, "B ran nothing");
  }
});

Deno.test("a tampered or expired state is refused by the replica that takes the answer; nothing is sent", async () => {
  for (
    const [what, rewrite, expect] of [
      [
        "tampered",
        (s: string) => {
          // One character of the ciphertext changed.
          const i = s.length - 10;
          return Promise.resolve(
            s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1),
          );
        },
        /altered on the way/,
      ],
      [
        "expired",
        async (s: string, b: Config) => {
          const keys = await stateKeys(b);
          const opened = await open(keys, "confirm", s);
          assert.ok(opened.ok, "B can open A's state");
          return await seal(keys, "confirm", opened.value, -1);
        },
        /expired/,
      ],
    ] as const
  ) {
    await using sim = await startSim();
    const env = { ...simEnv(sim), MCP_STATE_SECRET: SECRET };
    await using r = await replicas(env, env, ACCEPT, rewrite);
    const res = await call(r.client, "proxmox_delete_vm", { vmid: 106 });
    assert.ok(res.isError, what);
    assert.match(res.text, expect, what);
    assert.equal(writes(sim).length, 0, what);
  }
});

Deno.test("a held result beyond the cap travels cut (head and tail, in UTF-8 bytes), and says so; the state stays bounded", async () => {
  const { lockdownGate, HOLD_MAX_BYTES } = await import(
    "../src/safety/untrusted.ts"
  );
  const config = { stateSecret: SECRET };
  for (const unit of ["x", "€", "\u0001"]) {
    const big = unit.repeat(3 * HOLD_MAX_BYTES) + "THE-END";
    const gate = await lockdownGate(
      { name: "proxmox_read_file_vm", title: "Read a file" },
      { vmid: 101, path: "/var/log/big" },
      { content: big, truncated: false, size: big.length },
      true,
      config,
    );
    assert.equal(gate.kind, "ask");
    const state = (gate.result as { requestState?: string }).requestState!;
    assert.ok(state.length < 1.5 * HOLD_MAX_BYTES, `state ${state.length}`);
    const opened = await open<{ r: Record<string, unknown> }>(
      await stateKeys(config),
      "lockdown hold",
      state,
    );
    assert.ok(opened.ok);
    const held = opened.value.r;
    const bytes = new TextEncoder().encode(JSON.stringify(held)).length;
    assert.ok(bytes <= HOLD_MAX_BYTES, `${JSON.stringify(unit)}: ${bytes}`);
    assert.ok(bytes > HOLD_MAX_BYTES / 2, "not cut far beyond need");
    assert.equal(held.truncated, true);
    assert.match(String(held.content), /THE-END$/, "head and tail kept");
    assert.match(String(held.note), /cut to .* to travel with the release/);
  }
});

Deno.test("a state opens only for its purpose: a confirmation's state is no lockdown hold", async () => {
  const keys = await stateKeys({ stateSecret: SECRET });
  const token = await seal(keys, "confirm", { c: "x", d: "y" }, 60_000);
  assert.deepEqual(await open(keys, "confirm", token), {
    ok: true,
    value: { c: "x", d: "y" },
  });
  assert.deepEqual(await open(keys, "lockdown hold", token), {
    ok: false,
    why: "tampered",
  });
  assert.deepEqual(await open(keys, "confirm", "x.y"), {
    ok: false,
    why: "malformed",
  });
  assert.ok(
    !token.includes(btoa('"d":"y"').slice(0, 6)),
    "sealed, not only signed",
  );
});

Deno.test("a state of the previous format (v1) or of another server version is refused as issued by another version, before decryption", async () => {
  const keys = await stateKeys({ stateSecret: SECRET });
  const token = await seal(keys, "confirm", { c: "x", d: "y" }, 60_000);
  const [format, release, ...rest] = token.split(".");
  assert.equal(format, "v2");
  assert.equal(release, encodeBase64Url(new TextEncoder().encode(VERSION)));
  // v1's layout: v1.<key id>.<iv>.<ciphertext>.
  assert.deepEqual(await open(keys, "confirm", ["v1", ...rest].join(".")), {
    ok: false,
    why: "version",
  });
  const older = encodeBase64Url(new TextEncoder().encode("0.0.1"));
  assert.deepEqual(
    await open(keys, "confirm", [format, older, ...rest].join(".")),
    { ok: false, why: "version" },
  );
  assert.match(refusalText("version"), /another version of the server/);
  assert.ok(refusalText("version").includes(VERSION));
});

Deno.test("an authentic state whose plaintext is not seal()'s JSON is refused as malformed, never thrown", async () => {
  // The key as state.ts derives it from MCP_STATE_SECRET (HKDF-SHA256).
  const enc = new TextEncoder();
  const base = await crypto.subtle.importKey(
    "raw",
    enc.encode(SECRET),
    "HKDF",
    false,
    ["deriveKey"],
  );
  const cipher = await crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: enc.encode("proxmox-mcp request state"),
      info: enc.encode("aes-256-gcm v1"),
    },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt"],
  );
  const keys = await stateKeys({ stateSecret: SECRET });
  const token = await seal(keys, "confirm", {}, 60_000);
  const [format, release, id] = token.split(".");
  for (const plain of ["not json {", "5", "null", '{"p":1}', "\xff\xfe"]) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.encrypt(
      {
        name: "AES-GCM",
        iv,
        additionalData: enc.encode(`v2\0${VERSION}\0confirm`),
      },
      cipher,
      plain === "\xff\xfe" ? new Uint8Array([0xff, 0xfe]) : enc.encode(plain),
    );
    const forged = [
      format,
      release,
      id,
      encodeBase64Url(iv),
      encodeBase64Url(new Uint8Array(sealed)),
    ].join(".");
    assert.deepEqual(await open(keys, "confirm", forged), {
      ok: false,
      why: "malformed",
    }, plain);
  }
});

Deno.test("a replica of another version refuses the confirmation as issued by another version of the server; nothing is sent", async () => {
  await using sim = await startSim();
  const env = { ...simEnv(sim), MCP_STATE_SECRET: SECRET };
  const older = encodeBase64Url(new TextEncoder().encode("0.0.1"));
  await using r = await replicas(env, env, ACCEPT, (s) => {
    const parts = s.split(".");
    parts[1] = older;
    return Promise.resolve(parts.join("."));
  });
  const res = await call(r.client, "proxmox_delete_vm", { vmid: 106 });
  assert.ok(res.isError);
  assert.match(
    res.text,
    /^Not done: .*issued by another version of the server/,
  );
  assert.match(res.text, /Nothing was sent to Proxmox/);
  assert.equal(writes(sim).length, 0);
  assert.ok(sim.cluster.guests.has(106));
});

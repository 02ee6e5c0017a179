/**
 * Several clusters, as a review found them: PROXMOX_CONFIG errors that
 * quoted what may be a secret or broke the one-line rule, and a cluster the
 * file names that vanished without a word.
 */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../src/config.ts";

/** loadConfig's outcome for a PROXMOX_CONFIG file holding `text`. */
async function loadFile(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, text);
    const r = loadConfig([], { PROXMOX_CONFIG: path });
    return `loaded: ${
      JSON.stringify(
        r.kind === "run" ? r.config.clusters?.map((c) => c.name) : r,
      )
    }`;
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  } finally {
    await Deno.remove(path);
  }
}

const URL_ = "https://pve.example.com:8006";
const SECRET = "hunter2-never-shown";

Deno.test('PROXMOX_CONFIG: a secret written where a variable\'s name goes ({"env": secret}) is not quoted in the error', async () => {
  const message = await loadFile(JSON.stringify({
    clusters: {
      home: { url: URL_, user: "root@pam", password: { env: SECRET } },
    },
  }));
  assert.match(
    message,
    /^password of cluster 'home' in PROXMOX_CONFIG \S+ names a variable the server may not read/,
  );
  assert.ok(!message.includes(SECRET), message);
});

Deno.test("PROXMOX_CONFIG: a cluster named __proto__ is refused by name instead of vanishing (the next cluster became the first)", async () => {
  const message = await loadFile(
    `{"clusters": {"__proto__": {"url": "${URL_}", "user": "root@pam", "password": "${SECRET}"}, "lab": {"url": "${URL_}", "user": "root@pam", "password": "x"}}}`,
  );
  assert.match(
    message,
    /cluster name '__proto__' must be 1-32 lower-case letters/,
  );
  assert.ok(!message.includes(SECRET), message);
});

Deno.test("PROXMOX_CONFIG: a cluster name or unknown key with a line break or control character stays on one line in the error", async () => {
  for (
    const doc of [
      { clusters: { "home\nINJECTED": 5 } },
      { clusters: { "home\u001b[2J": { url: URL_ } } },
      { clusters: { home: { url: URL_, "x\nINJECTED": 1 } } },
      { "y\rINJECTED": 1, clusters: {} },
    ]
  ) {
    const message = await loadFile(JSON.stringify(doc));
    assert.equal(message.split(/[\n\r]/).length, 1, JSON.stringify(message));
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\x00-\x1f]/.test(message), JSON.stringify(message));
  }
});

Deno.test("PROXMOX_CONFIG: an unknown key beside env in a secret is named as such, not with the cluster's keys", async () => {
  const message = await loadFile(JSON.stringify({
    clusters: {
      home: {
        url: URL_,
        user: "root@pam",
        password: { env: "PROXMOX_HOME_PASSWORD", value: "x" },
      },
    },
  }));
  assert.match(
    message,
    /unknown key 'value' in password of cluster 'home' \(a secret is a string or \{"env": "NAME"\}\)$/,
  );
});

/**
 * The log's known secrets stay bounded: the process's own are kept for good,
 * per-event ones (guest passwords) among the latest RECENT_MAX, so a
 * long-running server that creates many guests neither grows without end
 * nor scans an ever longer list on every log line; a client's live ticket
 * and CSRF token are held until its next login replaces them.
 */
import assert from "node:assert/strict";
import { addSecret, knownSecrets, RECENT_MAX, scrub } from "../src/log.ts";
import { PveClient } from "../src/proxmox/client.ts";
import { startSim } from "./helpers.ts";

Deno.test("100 000 guest passwords later: the known secrets stay bounded, the latest and the process's own are still masked", () => {
  const own = "configured-password-0123456789";
  addSecret(own);
  const before = knownSecrets();
  const password = (i: number) => `guest-pw-${i.toString(36)}-x9Q`;
  const started = performance.now();
  for (let i = 0; i < 100_000; i++) addSecret(password(i), "recent");
  const ms = performance.now() - started;
  assert.ok(
    knownSecrets() <= before + RECENT_MAX,
    `${knownSecrets()} known after 100 000`,
  );
  for (let i = 100_000 - 100; i < 100_000; i++) {
    assert.equal(scrub(`pw=${password(i)}`), "pw=[redacted]", `#${i}`);
  }
  assert.equal(scrub(`pw=${own}`), "pw=[redacted]", "pinned for good");
  // The oldest per-event secrets were let go (the choice: latest RECENT_MAX).
  assert.equal(scrub(`pw=${password(0)}`), `pw=${password(0)}`);
  assert.ok(ms < 5_000, `adding took ${Math.round(ms)} ms`);
});

Deno.test("a process secret registered again as recent stays pinned", () => {
  const own = "token-secret-aaaa-bbbb-cccc-dddd";
  addSecret(own);
  addSecret(own, "recent");
  for (let i = 0; i < RECENT_MAX + 10; i++) {
    addSecret(`ticket-${i}-PVE:root@pam:ABCDEF`, "recent");
  }
  assert.equal(scrub(own), "[redacted]");
});

Deno.test("a client's live login ticket and CSRF token stay masked after 2 000 newer guest passwords, and its renewed ones too", async () => {
  await using sim = await startSim();
  const pve = new PveClient({
    baseUrl: sim.url,
    auth: {
      kind: "password",
      user: sim.credentials.user,
      password: sim.credentials.password,
    },
    // Renewed on every call: the second call holds a new ticket.
    ticketRenewMs: 0,
  });
  const issued = () => sim.secrets().filter((s) => s.startsWith("PVE:"));
  const csrfOf = (ticket: string) => {
    const all = sim.secrets();
    return all[all.indexOf(ticket) + 1];
  };
  for (const round of [1, 2]) {
    await pve.get("/version");
    const ticket = issued().at(-1)!;
    assert.equal(issued().length, round);
    const csrf = csrfOf(ticket);
    for (let i = 0; i < 2_000; i++) {
      addSecret(`guest-pw-${round}-${i.toString(36)}-x9Q`, "recent");
    }
    assert.equal(
      scrub(`Cookie: PVEAuthCookie=${ticket}`),
      "Cookie: PVEAuthCookie=[redacted]",
      `round ${round}: the live ticket`,
    );
    assert.equal(
      scrub(`cookie=${encodeURIComponent(ticket)}`),
      "cookie=[redacted]",
      `round ${round}: the live ticket, URL-encoded`,
    );
    assert.equal(scrub(`csrf ${csrf}`), "csrf [redacted]", `round ${round}`);
  }
});

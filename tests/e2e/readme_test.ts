/**
 * README.md as a new user reads it: every shell snippet marked
 * `<!-- runnable -->` runs as written (bash, from the repository root) against
 * the simulator, with the user's settings exported as the README says and the
 * example host `pve.example.com:8006` standing for the simulator. A snippet that
 * starts the server is spoken to over stdio: initialize, tools/list and one tool
 * call must be answered. Links, privileges and the test command are checked too.
 */
import assert from "node:assert/strict";
import { ENV_VARS } from "../../src/config.ts";
import { bundleAssets } from "../../scripts/release_fill.ts";
import { TARGETS } from "../../scripts/compile.ts";
import { startSim, type TestSim } from "../helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const README = await Deno.readTextFile(`${ROOT}README.md`);
const serverJson = JSON.parse(await Deno.readTextFile(`${ROOT}server.json`));

/** The shell snippets marked runnable, in order. */
export function runnableSnippets(markdown: string): string[] {
  const re = /<!-- runnable -->\s*\n```(?:sh|bash)\n([\s\S]*?)\n```/g;
  return [...markdown.matchAll(re)].map((m) => m[1]);
}

const REQUESTS = [
  {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "readme", version: "1" },
    },
  },
  { jsonrpc: "2.0", method: "notifications/initialized" },
  { jsonrpc: "2.0", id: 2, method: "tools/list" },
  {
    jsonrpc: "2.0",
    id: 3,
    method: "tools/call",
    params: { name: "proxmox_list_nodes", arguments: {} },
  },
].map((r) => JSON.stringify(r) + "\n").join("");

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  /** The JSON-RPC answers the snippet wrote, by id. */
  answers: Map<number, { result?: Record<string, unknown>; error?: unknown }>;
}

/** Runs one snippet with bash, speaking MCP to it on stdin; resolves on exit. */
async function runSnippet(snippet: string, sim: TestSim): Promise<Outcome> {
  const host = new URL(sim.url).host;
  const script = snippet
    .replaceAll("https://pve.example.com:8006", sim.url)
    .replaceAll("pve.example.com:8006", host);
  const child = new Deno.Command("bash", {
    args: ["-euo", "pipefail", "-c", script],
    cwd: ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      ...(Deno.env.get("DENO_DIR")
        ? { DENO_DIR: Deno.env.get("DENO_DIR")! }
        : {}),
      NO_COLOR: "1",
      // What a user has exported after "A least-privilege API token".
      PROXMOX_URL: sim.url,
      PROXMOX_TOKEN_ID: sim.credentials.tokenId,
      PROXMOX_TOKEN_SECRET: sim.credentials.tokenSecret,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(REQUESTS));
  const answers: Outcome["answers"] = new Map();
  let stdout = "";
  let closed = false;
  const closeStdin = async () => {
    if (closed) return;
    closed = true;
    await writer.close().catch(() => {});
  };
  const timer = setTimeout(closeStdin, 20_000);
  const readOut = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      stdout += decoder.decode(chunk, { stream: true });
      for (const line of stdout.split("\n")) {
        try {
          const msg = JSON.parse(line);
          if (typeof msg.id === "number") answers.set(msg.id, msg);
        } catch { /* not a JSON-RPC line */ }
      }
      if (answers.has(3)) await closeStdin(); // the client is done: stdin closes
    }
  })();
  const stderr = new Response(child.stderr).text();
  const { code } = await child.status;
  clearTimeout(timer);
  await closeStdin();
  await readOut;
  return { code, stdout, stderr: await stderr, answers };
}

Deno.test("every runnable README snippet runs as written against the simulator", async (t) => {
  const snippets = runnableSnippets(README);
  assert.ok(snippets.length >= 3, "README marks its runnable snippets");
  for (const snippet of snippets) {
    await t.step(snippet.split("\n")[0], async () => {
      await using sim = await startSim();
      const out = await runSnippet(snippet, sim);
      assert.equal(
        out.code,
        0,
        `exit ${out.code}\nstderr: ${out.stderr.slice(-1500)}`,
      );
      if (out.answers.size > 0) {
        // It started a server: it must answer like one.
        const list = out.answers.get(2)?.result as { tools?: unknown[] };
        assert.ok(list?.tools?.length, `tools/list answered: ${out.stdout}`);
        const call = out.answers.get(3)?.result as {
          isError?: boolean;
          structuredContent?: { nodes?: unknown[] };
        };
        assert.ok(call && !call.isError, `tool call answered: ${out.stdout}`);
        assert.equal(call.structuredContent?.nodes?.length, 3);
      }
    });
  }
});

Deno.test("the README's --allow-env grants cover every variable the server reads", () => {
  const lists = [...README.matchAll(/--allow-env='?([A-Z_*,]+)/g)].map((m) =>
    m[1].split(",")
  );
  assert.ok(lists.length > 0);
  const covers = (grant: string, name: string) =>
    grant.endsWith("*") ? name.startsWith(grant.slice(0, -1)) : grant === name;
  for (const list of lists) {
    for (const name of ENV_VARS) {
      assert.ok(list.some((g) => covers(g, name)), name);
    }
  }
});

Deno.test("README documents every variable, the test command and the requirements", () => {
  for (const name of ENV_VARS) {
    assert.ok(README.includes(`\`${name}\``), `README documents ${name}`);
  }
  assert.match(README, /`deno task test`/);
  for (const tool of ["openssl", "npm", "Deno"]) {
    assert.ok(README.includes(tool));
  }
});

Deno.test("download links follow the releases pattern and name real assets", () => {
  const owner = /^io\.github\.([^/]+)\//.exec(serverJson.name)![1];
  const links = [
    ...README.matchAll(
      /https:\/\/github\.com\/([^/\s]+)\/proxmox-mcp\/releases\/([^\s)`]+)/g,
    ),
  ];
  assert.ok(links.length >= 5);
  const assets = new Set([
    ...bundleAssets(),
    ...Object.keys(TARGETS).map((t) =>
      `proxmox-mcp-${t}${t.startsWith("windows") ? ".exe" : ""}`
    ),
    "SHA256SUMS",
    "<asset>",
  ]);
  for (const [url, linkOwner, rest] of links) {
    assert.equal(linkOwner, owner, url);
    const m = /^latest\/download\/(.+)$/.exec(rest);
    assert.ok(
      m && assets.has(m[1]),
      `${url} is …/releases/latest/download/<asset>`,
    );
  }
  for (const a of bundleAssets()) assert.ok(README.includes(a), a);
});

Deno.test("the least-privilege roles use privileges Proxmox VE knows", async () => {
  const schema = await Deno.readTextFile(
    `${ROOT}../shared/pve-api/pve-api-schema.json`,
  );
  const privs = [...README.matchAll(/--privs "([^"]+)"/g)].flatMap((m) =>
    m[1].split(",")
  );
  assert.ok(privs.length > 10);
  for (const p of privs) {
    assert.ok(schema.includes(`"${p}"`), `${p} is a PVE 9 privilege`);
  }
  assert.ok(/--privsep 1/.test(README), "the token has privilege separation");
});

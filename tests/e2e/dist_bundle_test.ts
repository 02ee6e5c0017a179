/**
 * The bundle that the container image and the binaries run (`deno task
 * bundle`, scripts/bundle.ts): built for real, then started as they start
 * it — no deno.json, no node_modules beside it, the start task's permissions
 * — over stdio against the simulator.
 */
import assert from "node:assert/strict";
import {
  buildBundle,
  bundleArgs,
  bundleRunFlags,
} from "../../scripts/bundle.ts";
import { startPermissions } from "../../scripts/permissions.ts";
import { simEnv, startSim } from "../helpers.ts";
import {
  answeredFast,
  call,
  INIT,
  INITIALIZED,
  Session,
} from "../stdio_session.ts";

const CATALOG = JSON.parse(
  await Deno.readTextFile(
    new URL("../../src/tools/catalog.json", import.meta.url),
  ),
) as { tools: unknown[] };

Deno.test("the bundle, started alone in an empty directory with the start task's permissions, answers the opening, a first call without the SDK and a later one through it, the same bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "proxmox-mcp-bundle-" });
  try {
    const entry = await buildBundle(`${dir}/build`);
    // Only the bundle's files, away from deno.json and node_modules.
    const alone = `${dir}/alone`;
    await Deno.mkdir(alone);
    for await (const f of Deno.readDir(`${dir}/build`)) {
      await Deno.copyFile(`${dir}/build/${f.name}`, `${alone}/${f.name}`);
    }
    assert.ok(entry.endsWith("/build/main.js"));
    await using sim = await startSim();
    const now = Date.now;
    const frozen = now();
    Date.now = () => frozen;
    using _clock = {
      [Symbol.dispose]: () => {
        Date.now = now;
      },
    };
    const session = new Session(simEnv(sim), [
      "run",
      ...await startPermissions(),
      ...await bundleRunFlags(),
      "--cached-only",
      `${alone}/main.js`,
    ]);
    const nodes = { name: "proxmox_list_nodes", arguments: {} };
    await session.send(
      INIT,
      INITIALIZED,
      { jsonrpc: "2.0", id: "list", method: "tools/list" },
      call("fast", nodes),
    );
    await session.until(["fast"]);
    await session.send(
      call("handoff", {
        name: "proxmox_start_vm",
        arguments: { vmid: 100, dry_run: true },
      }),
    );
    await session.until(["handoff"]);
    await session.send(call("sdk", nodes));
    await session.until(["sdk"]);
    assert.equal(await session.close(), 0, session.stderr);
    assert.deepEqual(
      JSON.parse(session.reply("list")!).result.tools,
      CATALOG.tools,
    );
    assert.deepEqual([...answeredFast(session.stderr)], ["fast"]);
    assert.match(session.reply("fast")!, /"node":"pve1"/);
    assert.equal(
      session.reply("fast")!.replace('"id":"fast"', '"id":"sdk"'),
      session.reply("sdk"),
    );
    assert.match(session.reply("handoff")!, /"dry_run":true/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the bundle is built minified with code splitting for the deno platform, and run without a config", async () => {
  const args = bundleArgs("out");
  assert.equal(args[0], "bundle");
  assert.equal(args[args.indexOf("--platform") + 1], "deno");
  assert.equal(args[args.indexOf("--outdir") + 1], "out");
  for (const flag of ["--minify", "--code-splitting"]) {
    assert.ok(args.includes(flag), flag);
  }
  assert.equal(args.at(-1), "src/main.ts");
  const flags = await bundleRunFlags();
  assert.equal(flags[0], "--no-config");
  // deno.json's unstable features still apply.
  const json = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { unstable?: string[] };
  for (const f of json.unstable ?? []) {
    assert.ok(flags.includes(`--unstable-${f}`), f);
  }
});

Deno.test("every command the README and the Dockerfile show for the bundle (the image's, its code cache warm-up, the narrowed ones) carries the flags it runs with", async () => {
  const flags = await bundleRunFlags();
  const text = (await Promise.all(
    ["../../README.md", "../../Dockerfile"].map((f) =>
      Deno.readTextFile(new URL(f, import.meta.url))
    ),
  )).join("\n");
  // A Dockerfile instruction (or a comment) continued over several lines is one.
  const commands = text.replace(/\\\n#?/g, " ").split("\n").filter((l) =>
    l.includes("dist/bundle/main.js") && /--allow-|\s-A\s/.test(l)
  );
  assert.ok(commands.length >= 4, commands.join("\n"));
  for (const command of commands) {
    const words = command.split(/[\s",`[\]]+/);
    for (const flag of flags) {
      assert.ok(words.includes(flag), `${flag} missing in: ${command}`);
    }
  }
});

Deno.test("buildBundle refuses an outdir that is not missing, empty or an earlier bundle, and deletes nothing in it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "proxmox-mcp-bundle-" });
  try {
    await Deno.writeTextFile(`${dir}/notes.txt`, "keep");
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeTextFile(`${dir}/src/main.ts`, "keep");
    await assert.rejects(
      buildBundle(dir),
      (e: Error) =>
        e.message.startsWith(`Cannot bundle into ${dir}: it holds `) &&
        e.message.includes("a bundle does not"),
    );
    assert.equal(await Deno.readTextFile(`${dir}/notes.txt`), "keep");
    assert.equal(await Deno.readTextFile(`${dir}/src/main.ts`), "keep");
    // .js files without a main.js are no earlier bundle either.
    const js = `${dir}/js`;
    await Deno.mkdir(js);
    await Deno.writeTextFile(`${js}/tool.js`, "keep");
    await assert.rejects(
      buildBundle(js),
      /Cannot bundle into .*: it holds \.js files but no main\.js/,
    );
    assert.equal(await Deno.readTextFile(`${js}/tool.js`), "keep");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** e2e: the guest-agent tools over stdio against the simulator's scripted guests. */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { makeGuestOs } from "../sim/seed.ts";
import { redactCommand } from "../src/proxmox/api/agent.ts";
import {
  executeCommand,
  installSoftware,
  recipeFor,
} from "../src/tools/guest.ts";
import { call, callOk, connect, simEnv, startSim } from "./helpers.ts";
import { cluster, sideBySide } from "./tool_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("execute_command returns exit codes, stdout, stderr and stdin; strings run by /bin/sh -c, argv as given", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });

  const r = await callOk(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: "echo hello; echo oops >&2; exit 3",
  });
  assert.equal(r.exitcode, 3);
  assert.equal(r.stdout, "hello\n");
  assert.equal(r.stderr, "oops\n");
  assert.equal(r.stdout_truncated, false);
  const exec = sim.requests.filter((q) => q.path.endsWith("/agent/exec"));
  assert.deepEqual(exec.at(-1)!.params.command, [
    "/bin/sh",
    "-c",
    "echo hello; echo oops >&2; exit 3",
  ]);

  const ok = await callOk(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: ["uname", "-r"],
  });
  assert.equal(ok.exitcode, 0);
  assert.equal(ok.stdout, "6.1.0-27-amd64\n");
  assert.equal(ok.stderr, "");

  // stdin (input-data), byte for byte, non-ASCII included.
  const cat = await callOk(s.client, "proxmox_execute_command", {
    vmid: 101,
    command: "cat",
    stdin: "héllo ✓\nline 2\n",
  });
  assert.equal(cat.stdout, "héllo ✓\nline 2\n");

  // A missing program in a shell: exit 127 with the shell's words.
  const missing = await callOk(s.client, "proxmox_execute_command", {
    vmid: 103,
    command: "apt-get update",
  });
  assert.equal(missing.exitcode, 127);
  assert.equal(missing.stderr, "sh: apt-get: not found\n");
  const dash = await callOk(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: "cat /etc/nope",
  });
  assert.equal(dash.exitcode, 1);
  assert.equal(dash.stderr, "cat: /etc/nope: No such file or directory\n");

  // A missing program as argv[0]: the agent cannot start it.
  const spawn = await call(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: ["no-such-program"],
  });
  assert.ok(spawn.isError);
  assert.match(spawn.text, /^Agent error: .*no-such-program.*No such file/);
});

Deno.test("execute_command caps output per stream, keeping head and tail", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const r = await callOk(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: "seq 1 20000",
    max_output: 1000,
  });
  assert.equal(r.exitcode, 0);
  assert.equal(r.stdout_truncated, true);
  assert.ok(r.stdout.length < 1100, `kept ${r.stdout.length} chars`);
  assert.ok(r.stdout.startsWith("1\n2\n3\n"));
  assert.ok(r.stdout.endsWith("19999\n20000\n"));
  assert.match(r.stdout, /\[… \d+ chars omitted …\]/);
  // The default cap keeps one call small too.
  const d = await callOk(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: ["seq", "20000"], // about 108 KB: far over the default 8000
  });
  assert.equal(d.stdout_truncated, true);
  assert.ok(d.stdout.length <= 8100);
});

Deno.test("guest commands wait 45 s by default, not longer (clients give up after 60 s)", () => {
  for (const tool of [executeCommand, installSoftware]) {
    assert.equal(tool.input.timeout_s.parse(undefined), 45, tool.name);
  }
});

Deno.test("read_file_vm and write_file_vm round-trip text and binary, with PVE's limit and truncated flag", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const os = sim.cluster.guests.get(101)!.guestOs!;

  const text = "hello\nwörld ✓\n";
  const w = await callOk(s.client, "proxmox_write_file_vm", {
    vmid: 101,
    path: "/root/note.txt",
    content: text,
  });
  assert.equal(w.bytes, enc.encode(text).length);
  assert.equal(dec.decode(os.files.get("/root/note.txt")), text);
  const r = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/root/note.txt",
  });
  assert.deepEqual(r, {
    vmid: 101,
    path: "/root/note.txt",
    encoding: "utf-8",
    content: text,
    size: enc.encode(text).length,
    truncated: false,
    untrusted: ["content"],
  });

  const bin = new Uint8Array([0, 1, 2, 0x80, 0xfe, 0xff, 0x0a]);
  const b64 = btoa(String.fromCharCode(...bin));
  await callOk(s.client, "proxmox_write_file_vm", {
    vmid: 101,
    path: "/tmp/blob.bin",
    content: b64,
    base64: true,
  });
  assert.deepEqual(os.files.get("/tmp/blob.bin"), bin);
  const rb = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/tmp/blob.bin",
  });
  assert.equal(rb.encoding, "base64");
  assert.equal(rb.content, b64);
  assert.equal(rb.size, bin.length);

  const part = await callOk(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/etc/os-release",
    max_bytes: 10,
  });
  assert.equal(part.truncated, true);
  assert.equal(part.size, 10);
  assert.equal(part.content, "PRETTY_NAM");

  const missing = await call(s.client, "proxmox_read_file_vm", {
    vmid: 101,
    path: "/etc/nope",
  });
  assert.ok(missing.isError);
  assert.equal(
    missing.text,
    "Agent error: failed to open file '/etc/nope' (mode: 'r'): No such file or directory (VM 101)",
  );

  // 46080 bytes is 61440 base64 characters: PVE's limit, still accepted.
  await callOk(s.client, "proxmox_write_file_vm", {
    vmid: 101,
    path: "/tmp/max.txt",
    content: "a".repeat(46080),
  });
  assert.equal(os.files.get("/tmp/max.txt")!.length, 46080);
  const writes = sim.requests.filter((q) => q.path.endsWith("/file-write"))
    .length;
  const big = await call(s.client, "proxmox_write_file_vm", {
    vmid: 101,
    path: "/tmp/big.txt",
    content: "a".repeat(46081),
  });
  assert.ok(big.isError);
  assert.match(big.text, /61440 base64 characters \(46080 bytes\)/);
  assert.equal(
    sim.requests.filter((q) => q.path.endsWith("/file-write")).length,
    writes,
    "refused before any file-write request",
  );
});

Deno.test("agent errors come in PVE's order and words with what to do; containers are refused before any agent call", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const cases: [number, RegExp][] = [
    // 102: no agent and stopped: the agent check comes first.
    [
      102,
      /^No QEMU guest agent configured \(VM 102\): enable the agent option \(qm set 102 --agent enabled=1\)/,
    ],
    [106, /^VM 106 is not running: start it first/],
    [
      104,
      /^QEMU guest agent is not running \(VM 104\): install and start qemu-guest-agent/,
    ],
  ];
  for (const [vmid, re] of cases) {
    for (
      const [tool, args] of [
        ["proxmox_execute_command", { command: ["true"] }],
        ["proxmox_read_file_vm", { path: "/etc/hostname" }],
        ["proxmox_write_file_vm", { path: "/tmp/x", content: "x" }],
        ["proxmox_install_software", { software: "nginx" }],
      ] as const
    ) {
      const r = await call(s.client, tool, { vmid, ...args });
      assert.ok(r.isError, `${tool} ${vmid}`);
      assert.match(r.text, re, `${tool} ${vmid}`);
    }
  }

  const before = sim.requests.length;
  const ct = await call(s.client, "proxmox_execute_command", {
    vmid: 200,
    command: "uptime",
  });
  assert.ok(ct.isError);
  assert.match(
    ct.text,
    /^Guest 200 is an LXC container; the QEMU guest agent exists only for VMs: run commands in it with 'pct exec 200 -- <command>' on node pve1, or over SSH/,
  );
  assert.ok(
    sim.requests.slice(before).every((q) => !q.path.includes("/agent/")),
    "no agent request for a container",
  );
});

Deno.test("the INFO log of an exec and a file write names tool, vmid, program and argument count, never the command line, file contents or stdin", async () => {
  await using sim = await startSim();
  await using s = await connect({
    env: { ...simEnv(sim), LOG_LEVEL: "INFO" },
  });
  await callOk(s.client, "proxmox_write_file_vm", {
    vmid: 100,
    path: "/root/app.env",
    content: "DB_PASSWORD=content-never-logged-42\n",
  });
  await callOk(s.client, "proxmox_execute_command", {
    vmid: 100,
    command:
      "cat > /dev/null; echo --password=hunter2-never-logged > /dev/null",
    stdin: "stdin-never-logged-77",
  });
  // The file really was written.
  assert.equal(
    dec.decode(
      sim.cluster.guests.get(100)!.guestOs!.files.get("/root/app.env"),
    ),
    "DB_PASSWORD=content-never-logged-42\n",
  );
  const log = s.stderr();
  assert.match(
    log,
    / INFO guest: guest file write tool=proxmox_write_file_vm vmid=100 path=\/root\/app\.env bytes=36/,
  );
  assert.match(
    log,
    / INFO guest: guest exec tool=proxmox_execute_command vmid=100 program=\/bin\/sh args=2 stdin_bytes=21\n/,
  );
  assert.match(
    log,
    / INFO guest: guest exec ended tool=proxmox_execute_command vmid=100 pid=\d+ exitcode=0 seconds=/,
  );
  for (
    const secret of [
      "content-never-logged",
      "hunter2",
      "stdin-never-logged",
      "/dev/null",
    ]
  ) {
    assert.ok(!log.includes(secret), `${secret} is not in the log`);
  }
});

/** Four common ways a password ends up in a guest command. */
const SECRET_COMMANDS: [string, string | string[], RegExp][] = [
  [
    "sshpass -p",
    "sshpass -p 'Sshpass-Secret-1' ssh root@10.0.0.5 uptime",
    /sshpass -p \[redacted\] ssh root@10\.0\.0\.5 uptime/,
  ],
  [
    "echo | sudo -S",
    "echo 'Sudo-Secret-2' | sudo -S apt-get update",
    /echo \[redacted\] \| sudo -S apt-get update/,
  ],
  [
    "MYSQL_PWD=",
    "MYSQL_PWD=Mysql-Secret-3 mysql -u root -e 'select 1'",
    /MYSQL_PWD=\[redacted\] mysql -u root/,
  ],
  [
    "htpasswd -b",
    "htpasswd -b /etc/nginx/.htpasswd admin Htpasswd-Secret-4",
    /htpasswd -b \/etc\/nginx\/\.htpasswd admin \[redacted\]/,
  ],
  [
    "sshpass -p (argv)",
    ["sshpass", "-p", "Sshpass-Secret-5", "ssh", "host"],
    /sshpass -p \[redacted\] ssh host/,
  ],
  [
    "MYSQL_PWD= (argv)",
    ["MYSQL_PWD=Mysql-Secret-7", "mysql"],
    /MYSQL_PWD=\[redacted\] mysql/,
  ],
  [
    "htpasswd -nb (argv)",
    ["htpasswd", "-nb", "admin", "Htpasswd Secret 6"],
    /htpasswd -nb admin \[redacted\]/,
  ],
];

for (const level of ["INFO", "DEBUG"] as const) {
  Deno.test(`passwords in guest commands (sshpass -p, echo | sudo -S, MYSQL_PWD=, htpasswd -b) never reach the ${level} log`, async () => {
    await using sim = await startSim();
    await using s = await connect({
      env: { ...simEnv(sim), LOG_LEVEL: level },
    });
    for (const [form, command] of SECRET_COMMANDS) {
      // The command runs (or the guest cannot find the program): either way
      // it was sent to the guest.
      await call(s.client, "proxmox_execute_command", { vmid: 100, command });
      const sent = sim.requests.filter((q) => q.path.endsWith("/agent/exec"))
        .at(-1)!;
      assert.deepEqual(
        sent.params.command,
        Array.isArray(command) ? command : ["/bin/sh", "-c", command],
        form,
      );
    }
    const log = s.stderr();
    for (const [form, command, masked] of SECRET_COMMANDS) {
      const secret = /\b(\w+[- ]Secret[- ]\d)\b/.exec(String(command))![1];
      assert.ok(!log.includes(secret), `${form}: the password is in the log`);
      if (level === "DEBUG") assert.match(log, masked, form);
    }
    if (level === "INFO") {
      assert.equal(
        log.match(
          /guest exec tool=proxmox_execute_command vmid=100 program=\/bin\/sh args=2\n/g,
        )
          ?.length,
        4,
      );
      assert.match(log, /program=sshpass args=4\n/);
      assert.match(log, /program=\[not shown\] args=1\n/);
      assert.match(log, /program=htpasswd args=3\n/);
      assert.doesNotMatch(log, /redacted|ssh root|apt-get|mysql|htpasswd -/);
    }
  });
}

Deno.test("on a Windows guest a string command runs through cmd /c, and install_software says it needs os-release", async () => {
  await using sim = await startSim();
  const win = sim.cluster.guests.get(102)!;
  win.config.agent = "1";
  win.status = "running";
  win.qmpstatus = "running";
  win.startedAt = Date.now() - 60_000;
  win.guestOs = makeGuestOs("debian", "192.168.1.102", "BC:24:11:AA:01:02");
  win.guestOs.files.clear();
  await using s = await connect({ env: simEnv(sim) });
  const r = await callOk(s.client, "proxmox_execute_command", {
    vmid: 102,
    command: "echo hello",
  });
  assert.equal(r.exitcode, 0);
  assert.equal(r.stdout, "hello\r\n");
  const exec = sim.requests.filter((q) => q.path.endsWith("/agent/exec")).at(
    -1,
  )!;
  assert.deepEqual(exec.params.command, ["cmd", "/c", "echo hello"]);
  const inst = await call(s.client, "proxmox_install_software", {
    vmid: 102,
    software: "nginx",
  });
  assert.ok(inst.isError);
  assert.match(
    inst.text,
    /^Cannot read \/etc\/os-release in VM 102 \(Agent error: failed to open file .*\): proxmox_install_software supports Linux guests/,
  );
});

Deno.test("install recipes are fixed strings chosen by comparing os-release with constants", () => {
  const hostile = {
    ID: "ubuntu",
    ID_LIKE: "debian",
    PRETTY_NAME: "$(reboot)",
    VERSION_ID: "24.04; rm -rf /",
  };
  const apt = recipeFor(hostile, "docker")!;
  assert.equal(apt.manager, "apt");
  assert.equal(
    apt.script,
    "exec 2>&1; export DEBIAN_FRONTEND=noninteractive; apt-get update && apt-get install -y docker.io && systemctl enable --now docker",
  );
  const centos7 = recipeFor(
    { ID: "centos", ID_LIKE: "rhel fedora", VERSION_ID: "7" },
    "nginx",
  )!;
  assert.equal(centos7.manager, "yum");
  assert.equal(
    centos7.script,
    "exec 2>&1; yum -y install nginx && systemctl enable --now nginx",
  );
  const fedora = recipeFor({ ID: "fedora", VERSION_ID: "41" }, "docker")!;
  assert.equal(fedora.manager, "dnf");
  assert.match(fedora.script, /linux\/fedora\/docker-ce\.repo/);
  const rhel = recipeFor(
    { ID: "rhel", ID_LIKE: "fedora", VERSION_ID: "9.4" },
    "docker",
  )!;
  assert.match(rhel.script, /linux\/rhel\/docker-ce\.repo/);
  assert.equal(
    recipeFor({ ID: "alpine", VERSION_ID: "3.20.3" }, "update")!.script,
    "exec 2>&1; apk update && apk upgrade",
  );
  for (
    const other of [
      { ID: "arch" },
      { ID: "opensuse-leap", ID_LIKE: "suse" },
      {},
    ] as Record<string, string>[]
  ) {
    assert.equal(recipeFor(other, "nginx"), undefined);
  }
});

Deno.test("logged commands have their secrets masked", () => {
  for (
    const [argv, logged] of [
      [
        ["/bin/sh", "-c", "mysql -uroot -phunter2 db"],
        '/bin/sh -c "mysql -uroot -p[redacted] db"',
      ],
      [["sshpass", "-p", "hunter2", "ssh", "x"], "sshpass -p [redacted] ssh x"],
      [
        ["/bin/sh", "-c", "curl -H 'X-Api-Key: abc123' http://x"],
        `/bin/sh -c "curl -H 'X-Api-Key: [redacted]' http://x"`,
      ],
      [
        ["/bin/sh", "-c", "echo 'root:hunter2' | chpasswd"],
        `/bin/sh -c "echo [redacted] | chpasswd"`,
      ],
    ] as const
  ) assert.equal(redactCommand([...argv]), logged);
  assert.equal(
    redactCommand(["mysql", "--password=s3cret", "-u", "root"]),
    "mysql --password=[redacted] -u root",
  );
  assert.equal(
    redactCommand(["/bin/sh", "-c", "DB_TOKEN=abc123 ./run --api-key xyz"]),
    '/bin/sh -c "DB_TOKEN=[redacted] ./run --api-key [redacted]"',
  );
  assert.equal(
    redactCommand(["sshpass", "--password", "pw", "ssh", "host"]),
    "sshpass --password [redacted] ssh host",
  );
  assert.equal(
    redactCommand(["curl", "https://bob:hunter2@example.com/x"]),
    "curl https://bob:[redacted]@example.com/x",
  );
  assert.equal(
    redactCommand(["curl", "-H", "Authorization: Bearer abc.def"]),
    "curl -H 'Authorization: Bearer [redacted]'",
  );
  assert.equal(
    redactCommand(["/bin/sh", "-c", "sudo -S apt-get update <<< 'pw x'"]),
    '/bin/sh -c "sudo -S apt-get update <<< [redacted]"',
  );
  assert.equal(
    redactCommand(["/bin/sh", "-c", 'echo "pw" | passwd --stdin bob']),
    '/bin/sh -c "echo [redacted] | passwd --stdin bob"',
  );
  assert.ok(redactCommand(["echo", "x".repeat(1000)]).length <= 301);
  // A secret cut at the end of what is looked at is not half shown, even
  // when masking before it shortened the line below the 300 shown chars.
  const before = `--password=${"p".repeat(150)} ; `;
  const pad = "x".repeat(390 - before.length - "echo ; sshpass -p ".length);
  const script = `${before}echo ${pad}; sshpass -p 'Cut Secret Here' ssh h`;
  assert.equal(script.indexOf("'Cut"), 390);
  const cut = redactCommand(["/bin/sh", "-c", script]);
  assert.doesNotMatch(cut, /Cut|Secret|Here|ppp/);
  // Masking stays fast on the longest commands the tool takes (no regular
  // expression backtracks without bound).
  const t0 = performance.now();
  redactCommand(["/bin/sh", "-c", "echo " + "x".repeat(16384)]);
  redactCommand(["/bin/sh", "-c", "a.".repeat(8192)]);
  redactCommand(Array(256).fill("echo " + "x-".repeat(8000)));
  assert.ok(performance.now() - t0 < 1000, "masking took over a second");
});

/** Strings that once turned into other endpoints, or that a path must refuse. */
const HOSTILE = ["..", ".", "a/..", "%2e%2e", "/", "?x=", "#", "\0", "\n"];

Deno.test("hostile strings in every string argument of the guest tools reach only the agent endpoints each tool uses", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const COMMON = [
    "POST /access/ticket",
    "GET /cluster/resources",
    "GET /version",
    // The scope and protection gate reads a changed guest's config first.
    "GET /nodes/{node}/qemu/{vmid}/config",
  ];
  const AGENT = "/nodes/{node}/qemu/{vmid}/agent";
  const EXEC = [
    `GET ${AGENT}/get-osinfo`,
    `POST ${AGENT}/exec`,
    `GET ${AGENT}/exec-status`,
  ];
  const cases: [string, Record<string, unknown>, string, string[]][] = [
    ["proxmox_execute_command", { vmid: 100 }, "command", EXEC],
    ["proxmox_execute_command", { vmid: 100, command: "cat" }, "stdin", EXEC],
    ["proxmox_read_file_vm", { vmid: 100 }, "path", [`GET ${AGENT}/file-read`]],
    [
      "proxmox_write_file_vm",
      { vmid: 100, content: "x" },
      "path",
      [`POST ${AGENT}/file-write`],
    ],
    [
      "proxmox_write_file_vm",
      { vmid: 100, path: "/tmp/h" },
      "content",
      [`POST ${AGENT}/file-write`],
    ],
    [
      "proxmox_install_software",
      { vmid: 100 },
      "software",
      [`GET ${AGENT}/file-read`, ...EXEC],
    ],
  ];
  for (const [tool, base, arg, allowed] of cases) {
    for (const value of HOSTILE) {
      for (const v of arg === "command" ? [value, [value]] : [value]) {
        const before = sim.requests.length;
        await call(s.client, tool, { ...base, [arg]: v });
        for (const q of sim.requests.slice(before)) {
          const what = `${tool} ${arg}=${
            JSON.stringify(v)
          }: ${q.method} ${q.rawPath}`;
          assert.ok(
            [...COMMON, ...allowed].includes(`${q.method} ${q.path}`),
            what,
          );
          assert.doesNotMatch(q.rawPath, /\/\.\.?(\/|$)|%2e|\/\/|%2f/i, what);
          // A guest file path goes to the guest as given, never into the URL.
          if (arg === "path" && q.path.includes("/agent/file-")) {
            assert.equal(q.params.file, v, what);
          }
        }
      }
    }
  }
  // The guest is intact.
  assert.equal(sim.cluster.guests.get(100)!.status, "running");
});

Deno.test("following a pid the agent no longer knows says why", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  const r = await call(s.client, "proxmox_execute_command", {
    vmid: 100,
    command: "true",
    pid: 999_999,
  });
  assert.ok(r.isError);
  assert.match(
    r.text,
    /^Agent error: Invalid parameter 'pid' \(VM 100\): the agent forgets a process once its end has been collected/,
  );
  assert.ok(
    !sim.requests.some((q) => q.path.endsWith("/agent/exec")),
    "nothing was started",
  );
});

Deno.test("an exec or file write whose answer never came is sent once and reported as maybe applied, with where to check", async () => {
  await using sim = await startSim();
  await using s = await connect({ env: simEnv(sim) });
  for (
    const [tool, args, endpoint, advice] of [
      [
        "proxmox_execute_command",
        { command: ["true"] },
        "/agent/exec",
        /the command may have started in the guest: check there/,
      ],
      [
        "proxmox_write_file_vm",
        { path: "/tmp/x", content: "x" },
        "/agent/file-write",
        /the file may have been written: read it back with proxmox_read_file_vm/,
      ],
    ] as const
  ) {
    sim.faults.inject({
      method: "POST",
      path: `/nodes/pve1/qemu/100${endpoint}`,
      fault: { kind: "reset" },
    });
    const before = sim.requests.length;
    const r = await call(s.client, tool, { vmid: 100, ...args });
    assert.ok(r.isError, tool);
    assert.match(r.text, /may have been applied \(VM 100\): /, tool);
    assert.match(r.text, advice, tool);
    assert.equal(
      sim.requests.slice(before).filter((q) => q.path.endsWith(endpoint))
        .length,
      1,
      `${tool}: sent exactly once`,
    );
  }
});

sideBySide(
  "guest commands that wait (timeout_s, installs, unreadable or cancelled exec status), side by side",
  [
    {
      name:
        "execute_command stops waiting at timeout_s with status running, the guest pid and how to follow it; a call with that pid collects the output without running it again",
      setup: () => cluster(),
      async run({ sim, s }) {
        const t0 = performance.now();
        const progress: string[] = [];
        const r = await call(s.client, "proxmox_execute_command", {
          vmid: 100,
          command: "sleep 2; echo late",
          timeout_s: 1,
        }, { onprogress: (p) => progress.push(p.message ?? "") });
        assert.ok(
          progress.some((m) => /^Command in VM 100: running \d+ s$/.test(m)),
          `progress while waiting: ${progress.join("|")}`,
        );
        const took = performance.now() - t0;
        assert.ok(!r.isError, r.text);
        assert.equal(r.data.status, "running");
        assert.equal(r.data.exitcode, undefined);
        assert.match(
          r.data.note,
          /still running in VM 100 after 1(\.\d)? s \(guest pid (\d+)\); it keeps running in the guest: call proxmox_execute_command again with the same arguments plus pid: \d+/,
        );
        assert.ok(took < 4000, `returned after ${took} ms`);
        // The process is still there in the guest.
        const os = sim.cluster.guests.get(100)!.guestOs!;
        assert.equal([...os.processes.values()].length, 1);

        const execs = () =>
          sim.requests.filter((q) => q.path.endsWith("/agent/exec")).length;
        const before = execs();
        const done = await callOk(s.client, "proxmox_execute_command", {
          vmid: 100,
          command: "sleep 2; echo late",
          pid: r.data.pid,
          timeout_s: 10,
        });
        assert.equal(done.status, "exited");
        assert.equal(done.pid, r.data.pid);
        assert.equal(done.exitcode, 0);
        assert.equal(done.stdout, "late\n");
        assert.equal(execs(), before, "not started again");
      },
    },
    {
      name:
        "install_software runs the apt recipe on Debian and apk on Alpine with progress; unknown distros are refused",
      setup: () => cluster(),
      async run({ sim, s }) {
        const progress: string[] = [];
        const r = await call(s.client, "proxmox_install_software", {
          vmid: 100,
          software: "nginx",
        }, { onprogress: (p) => progress.push(p.message ?? "") });
        assert.ok(!r.isError, r.text);
        assert.equal(r.data.package_manager, "apt");
        assert.equal(r.data.distro, "Debian GNU/Linux 12 (bookworm)");
        assert.equal(r.data.exitcode, 0);
        assert.match(r.data.output_tail, /Setting up nginx \(1\.22\.1/);
        assert.match(
          r.data.output_tail,
          /Created symlink/,
          "stderr is in the tail",
        );
        assert.match(progress[0], /Installing nginx in VM 100 .* with apt/);
        assert.ok(
          progress.some((m) => /running \d+ s/.test(m)),
          progress.join("|"),
        );
        const debian = sim.cluster.guests.get(100)!.guestOs!;
        assert.ok(debian.files.has("/usr/sbin/nginx"));
        assert.ok(
          debian.files.has(
            "/etc/systemd/system/multi-user.target.wants/nginx.service",
          ),
        );
        const exec = sim.requests.filter((q) => q.path.endsWith("/agent/exec"))
          .at(
            -1,
          )!;
        assert.deepEqual((exec.params.command as string[]).slice(0, 2), [
          "/bin/sh",
          "-c",
        ]);
        assert.match(
          (exec.params.command as string[])[2],
          /^exec 2>&1; export DEBIAN_FRONTEND=noninteractive; apt-get update && apt-get install -y nginx/,
        );

        const a = await callOk(s.client, "proxmox_install_software", {
          vmid: 103,
          software: "docker",
        });
        assert.equal(a.package_manager, "apk");
        assert.match(a.output_tail, /Installing docker \(26\.1\.5-r0\)/);
        const alpine = sim.cluster.guests.get(103)!.guestOs!;
        assert.ok(alpine.files.has("/usr/bin/docker"));
        assert.ok(alpine.files.has("/etc/runlevels/default/docker"));

        const up = await callOk(s.client, "proxmox_install_software", {
          vmid: 101,
          software: "update",
        });
        assert.equal(up.package_manager, "apt");
        assert.match(up.output_tail, /Setting up openssl/);

        // The RHEL family, once its VM runs.
        const rocky = sim.cluster.guests.get(106)!;
        rocky.status = "running";
        rocky.startedAt = Date.now() - 60_000;
        const d = await callOk(s.client, "proxmox_install_software", {
          vmid: 106,
          software: "docker",
        });
        assert.equal(d.package_manager, "dnf");
        assert.match(d.output_tail, /Complete!/);
        assert.ok(
          rocky.guestOs!.files.has("/etc/yum.repos.d/docker-ce.repo"),
          "the docker-ce repository was added",
        );

        const execs = sim.requests.filter((q) => q.path.endsWith("/agent/exec"))
          .length;
        const arch = await call(s.client, "proxmox_install_software", {
          vmid: 105,
          software: "nginx",
        });
        assert.ok(arch.isError);
        assert.match(
          arch.text,
          /^Unsupported distribution in VM 105: Arch Linux \(ID=arch\); .*Debian\/Ubuntu \(apt\), the RHEL family \(dnf\/yum\) and Alpine \(apk\)/,
        );
        assert.equal(
          sim.requests.filter((q) => q.path.endsWith("/agent/exec")).length,
          execs,
          "nothing ran in the unknown guest",
        );
      },
    },
    {
      name:
        "one failed exec-status read is read again; when the status stays unreadable the error says the command may still run, with its pid",
      setup: () => cluster(),
      async run({ sim, s }) {
        sim.faults.inject({
          method: "GET",
          path: /\/agent\/exec-status$/,
          fault: { kind: "status", status: 502 },
        });
        const r = await callOk(s.client, "proxmox_execute_command", {
          vmid: 100,
          command: "echo once",
        });
        assert.equal(r.stdout, "once\n");

        sim.faults.inject({
          method: "GET",
          path: /\/agent\/exec-status$/,
          times: 2,
          fault: { kind: "status", status: 503 },
        });
        const lost = await call(s.client, "proxmox_execute_command", {
          vmid: 100,
          command: "echo twice",
        });
        assert.ok(lost.isError);
        assert.match(
          lost.text,
          /^Cannot read the state of guest pid (\d+) in VM 100 \(.*503.*\); it may still be running in the guest: ask again with pid: \1/,
        );
        const pid = Number(/pid: (\d+)/.exec(lost.text)![1]);
        const later = await callOk(s.client, "proxmox_execute_command", {
          vmid: 100,
          command: "echo twice",
          pid,
        });
        assert.equal(later.stdout, "twice\n");
      },
    },
    {
      name:
        "a cancelled execute_command stops polling the guest at once (the process goes on in the guest)",
      setup: () => cluster(),
      async run({ sim, s }) {
        const ac = new AbortController();
        const started = performance.now();
        const pending = s.client.callTool(
          {
            name: "proxmox_execute_command",
            arguments: { vmid: 100, command: "sleep 30", timeout_s: 20 },
          },
          { signal: ac.signal },
        );
        const polls = () =>
          sim.requests.filter((q) => q.path.endsWith("/agent/exec-status"))
            .length;
        while (polls() < 2) await delay(20);
        ac.abort();
        await assert.rejects(pending);
        assert.ok(performance.now() - started < 5000);
        const after = polls();
        // The first polls come 100 ms apart, then 150 ms (growing by half each
        // time): a poll that outlived the cancel would arrive well inside this
        // window.
        await delay(1000);
        assert.equal(polls(), after, "no exec-status read after the cancel");
        const os = sim.cluster.guests.get(100)!.guestOs!;
        assert.equal(
          os.processes.size,
          1,
          "the process still runs in the guest",
        );
      },
    },
    {
      name:
        "install_software returns running with the pid at timeout_s; a call with that pid waits for the same run and reports it",
      // Slow steps: the guest takes several seconds to install.
      setup: () => cluster({ taskMs: 150 }),
      async run({ sim, s }) {
        const r = await callOk(s.client, "proxmox_install_software", {
          vmid: 100,
          software: "nginx",
          timeout_s: 1,
        });
        assert.equal(r.status, "running");
        assert.equal(r.exitcode, undefined);
        assert.match(
          r.note,
          /^Installing nginx \(apt\) is still running in VM 100 after 1(\.\d)? s \(guest pid \d+\); .*plus pid: \d+/,
        );
        const execs = sim.requests.filter((q) => q.path.endsWith("/agent/exec"))
          .length;
        const done = await callOk(s.client, "proxmox_install_software", {
          vmid: 100,
          software: "nginx",
          pid: r.pid,
          timeout_s: 30,
        });
        assert.equal(done.status, "ok");
        assert.equal(done.exitcode, 0);
        assert.match(done.output_tail, /Setting up nginx/);
        assert.equal(
          sim.requests.filter((q) => q.path.endsWith("/agent/exec")).length,
          execs,
          "not started again",
        );
      },
    },
  ],
);

/**
 * Fault injection: rules that make the next matching requests misbehave the
 * way networks, proxies and PVE itself do (hangs, delays, error statuses, HTML
 * pages, truncated bodies, dropped connections, expired tickets), and task
 * faults that make the next matching task fail or never end.
 */

export type Fault =
  /** Never answer (until the client gives up or the simulator closes). `apply`: carry the request out first. */
  | { kind: "hang"; apply?: boolean }
  /** Wait `ms`, then carry the request out and answer normally. */
  | { kind: "delay"; ms: number }
  /** A PVE-shaped error answer with this status (not carried out). */
  | { kind: "status"; status: number; message?: string }
  /** An HTML error page, as a proxy in front of PVE sends (not carried out). */
  | { kind: "html"; status: number }
  /** Carried out, then answered 200 with the JSON body cut in half. */
  | { kind: "truncate" }
  /** The connection drops without a usable answer; `apply`: carry the request out first. */
  | { kind: "reset"; apply?: boolean }
  /** Every ticket is forgotten first, so this request gets 401. */
  | { kind: "unauthorized" };

export interface FaultRule {
  /** "GET" | "POST" | "PUT" | "DELETE"; any when absent. */
  method?: string;
  /** The concrete path after /api2/json; a string matches exactly. */
  path?: string | RegExp;
  /** How often it fires (default 1; Infinity for always). */
  times?: number;
  fault: Fault;
}

export interface TaskFault {
  /** Task type (`qmstart`, `vzdump`, `qmclone`...); any when absent. */
  type?: string;
  /** The task's id (the guest's vmid); any when absent. */
  vmid?: number;
  /** The task ends with this exit status (PVE wording). */
  fail?: string;
  /** The task never ends, until stopped with DELETE /nodes/{node}/tasks/{upid}. */
  endless?: boolean;
  /** How often it fires (default 1; Infinity for always). */
  times?: number;
}

/** What a matching task fault makes of a task. */
export type TaskOutcome = { fail: string } | { endless: true };

/** The fault rules of one simulator. */
export class Faults {
  #rules: { rule: FaultRule; left: number }[] = [];
  #tasks: { rule: TaskFault; left: number }[] = [];
  #hung = new Set<() => void>();

  /** Adds a rule; rules are matched in order, each fires `times` times. */
  inject(rule: FaultRule): void {
    this.#rules.push({ rule, left: rule.times ?? 1 });
  }

  /** Makes the next matching task fail with `fail` or never end. */
  task(rule: TaskFault): void {
    this.#tasks.push({ rule, left: rule.times ?? 1 });
  }

  /** Drops every request and task rule. */
  clear(): void {
    this.#rules = [];
    this.#tasks = [];
  }

  /** Requests held by a hang fault right now. */
  get hanging(): number {
    return this.#hung.size;
  }

  /** Holds a request until its client gives up (signal) or releaseAll(). */
  hold(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        this.#hung.delete(release);
        signal.removeEventListener("abort", release);
        resolve();
      };
      this.#hung.add(release);
      if (signal.aborted) release();
      else signal.addEventListener("abort", release, { once: true });
    });
  }

  /** Ends every held request (the simulator closes). */
  releaseAll(): void {
    for (const release of [...this.#hung]) release();
  }

  /** Rules that have not fired all their times yet. */
  get pending(): number {
    return this.#rules.length + this.#tasks.length;
  }

  /** The fault for a request, counting it as fired; null when none matches. */
  take(method: string, path: string): Fault | null {
    const i = this.#rules.findIndex(({ rule }) =>
      (rule.method === undefined ||
        rule.method.toUpperCase() === method) &&
      (rule.path === undefined ||
        (typeof rule.path === "string"
          ? rule.path === path
          : matches(rule.path, path)))
    );
    if (i < 0) return null;
    const entry = this.#rules[i];
    if (--entry.left <= 0) this.#rules.splice(i, 1);
    return entry.rule.fault;
  }

  /** The outcome for a starting task, counting it as fired. */
  takeTask(type: string, id: string): TaskOutcome | null {
    const i = this.#tasks.findIndex(({ rule }) =>
      (rule.type === undefined || rule.type === type) &&
      (rule.vmid === undefined || String(rule.vmid) === id)
    );
    if (i < 0) return null;
    const entry = this.#tasks[i];
    if (--entry.left <= 0) this.#tasks.splice(i, 1);
    const { fail, endless } = entry.rule;
    if (endless) return { endless: true };
    return {
      fail: fail ?? `command '${command(type, id)}' failed: exit code 1`,
    };
  }
}

function matches(re: RegExp, path: string): boolean {
  re.lastIndex = 0; // a global or sticky RegExp keeps state between tests
  return re.test(path);
}

/** `qmstart` → `qm start 100`, `vzstop` → `pct stop 100`, as PVE's workers name them. */
function command(type: string, id: string): string {
  const m = /^(qm|vz)(.+)$/.exec(type);
  if (!m) return `${type} ${id}`.trim();
  return `${m[1] === "qm" ? "qm" : "pct"} ${m[2]} ${id}`.trim();
}

/**
 * Errors a user can act on. Their messages are safe to show: PVE's own words,
 * what failed, and what to do; never a secret or a stack trace.
 */

/** An error answer from the Proxmox API, or no answer at all. */
export class PveError extends Error {
  override name = "PveError";
  /** HTTP status; 0 when Proxmox could not be reached. */
  readonly status: number;
  readonly method: string;
  readonly path: string;
  /** PVE's message, without the trailing newline. */
  readonly pveMessage: string;
  /** Per-parameter errors of a 400 `Parameter verification failed.` */
  readonly errors?: Record<string, string>;
  constructor(
    init: {
      status: number;
      method: string;
      path: string;
      pveMessage: string;
      errors?: Record<string, string>;
      hint?: string;
    },
  ) {
    const detail = init.errors
      ? " " + Object.entries(init.errors).map(([k, v]) => `${k}: ${v.trim()}`)
        .join("; ")
      : "";
    const where = `${init.method} ${init.path}`;
    const head = init.status === 0
      ? `${init.pveMessage} (${where})`
      : `Proxmox answered ${init.status} to ${where}: ${init.pveMessage}${detail}`;
    super(init.hint ? `${head}. ${init.hint}` : head);
    this.status = init.status;
    this.method = init.method;
    this.path = init.path;
    this.pveMessage = init.pveMessage;
    this.errors = init.errors;
  }
}

/**
 * A request that cannot be carried out as asked (unknown guest, a refused
 * precondition, a failed task). The message says what to do.
 */
export class ToolError extends Error {
  override name = "ToolError";
  /** Structured detail that goes into the result next to the message. */
  readonly detail?: Record<string, unknown>;
  constructor(message: string, detail?: Record<string, unknown>) {
    super(message);
    this.detail = detail;
  }
}

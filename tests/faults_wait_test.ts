/**
 * Latency below PROXMOX_TIMEOUT and a request that hangs, against a read
 * tool, a write that starts no task and two task tools (issue 9, item 9):
 * the slow answer is used, the hang is a clear error within the tool's bound
 * (about PROXMOX_TIMEOUT), writes are sent exactly once, and the next call
 * succeeds. Apart from faults_test.ts so that `deno test --parallel` runs
 * these waits beside the rest.
 */
import {
  REQUEST_FAULTS,
  requestFaultTests,
  WAITING,
} from "./faults_helpers.ts";

requestFaultTests(REQUEST_FAULTS.filter((f) => WAITING.has(f.name)));

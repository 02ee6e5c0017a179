/**
 * Request faults × tools (issue 9, item 9): latency below PROXMOX_TIMEOUT, a
 * request that hangs, a PVE error status, a dropped connection, a cut JSON
 * body, a proxy's HTML page and a ticket that expired mid-session, each
 * against a read tool, a write that starts no task and two task tools (side
 * by side, a cluster each): a clear answer in time, writes sent exactly
 * once, and the next call succeeds. Task faults are in faults_tasks_test.ts,
 * every way of reaching Proxmox in faults_transport_test.ts; the shared part
 * (seed, tools, checks) is faults_helpers.ts.
 */
import { REQUEST_FAULTS, requestFaultTests } from "./faults_helpers.ts";

requestFaultTests(REQUEST_FAULTS);

/** Suite: faults of Proxmox and the network, and the client's TLS paths (one test worker; see tests/suites_test.ts). */
import "../faults_test.ts";
import "../faults_transport_test.ts";
import "../faults_tasks_test.ts";
import "../client_test.ts";

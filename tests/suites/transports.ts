/** Suite: sealed request state across replicas and TLS settings, in process (one test worker; see tests/suites_test.ts). */
import "../replica_state_test.ts";
import "../tls_test.ts";

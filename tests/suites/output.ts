/** Suite: what the server writes and returns: secrets masked, untrusted content, audit lines, logs (one test worker; see tests/suites_test.ts). */
import "../secrets_test.ts";
import "../untrusted_test.ts";
import "../audit_test.ts";
import "../log_test.ts";

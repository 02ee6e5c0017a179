/** Suite: snapshot, backup and storage tools, PBS included (one test worker; see tests/suites_test.ts). */
import "../snapshots_test.ts";
import "../backups_test.ts";
import "../pbs_test.ts";
import "../storage_test.ts";

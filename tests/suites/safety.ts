/** Suite: least privilege, scope, dry run and confirmation (one test worker; see tests/suites_test.ts). */
import "../privileges_test.ts";
import "../scope_test.ts";
import "../dryrun_test.ts";
import "../confirm_test.ts";

/** Suite: the simulator itself (one test worker; see tests/suites_test.ts). */
import "../sim_faults_test.ts";
import "../sim_schema_test.ts";
import "../sim_tasks_test.ts";
import "../sim_pbs_test.ts";
import "../sim_acl_test.ts";
import "../sim_package_test.ts";

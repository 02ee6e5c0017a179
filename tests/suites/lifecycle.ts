/** Suite: guest lifecycle, creation and inventory tools (one test worker; see tests/suites_test.ts). */
import "../lifecycle_test.ts";
import "../create_test.ts";
import "../vms_paths_test.ts";
import "../inventory_test.ts";

/** Suite: the registry: hostile strings through every tool argument, the tool list and the registry files (one test worker; see tests/suites_test.ts). */
import "../path_safety_test.ts";
import "../registry_test.ts";
import "../registry_files_test.ts";

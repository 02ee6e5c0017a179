/** Suite: configuration, the entry point's few processes, several clusters, resources and small units (one test worker; see tests/suites_test.ts). */
import "../config_test.ts";
import "../entry_test.ts";
import "../clusters_test.ts";
import "../clusters_hide_test.ts";
import "../cluster_hints_test.ts";
import "../clusters_review_test.ts";
import "../resources_test.ts";
import "../ip_test.ts";
import "../base64url_test.ts";
import "../suites_test.ts";
import "../tool_helpers_test.ts";

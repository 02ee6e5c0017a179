/** Suite: guest-agent and firewall tools, paging and PVE version quirks (one test worker; see tests/suites_test.ts). */
import "../guest_test.ts";
import "../firewall_test.ts";
import "../paging_test.ts";
import "../quirks_test.ts";

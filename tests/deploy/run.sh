#!/usr/bin/env bash
# `deno task test:deploy`: the deployment paths (image, docker run over stdio, docker-compose
# with Caddy, two replicas behind Caddy (replicas_test.ts), the SSH gateway, the MCP conformance
# suite against /mcp) on the offline testbed in
# ../shared/testbed (podman behind the docker CLI, docker-compose, Caddy, OpenSSH; loopback only).
# PROXMOX_MCP_SHARED overrides where the shared directory is (default: beside the clone).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${PROXMOX_MCP_SHARED:-$ROOT/../shared}
cd "$ROOT"

D=${TESTBED_DIR:-${TMPDIR:-/tmp}/proxmox-mcp-testbed}
running() { [ -f "$D/run/podman-service.pid" ] && kill -0 "$(cat "$D/run/podman-service.pid")" 2>/dev/null; }
was_running=false
running && was_running=true

# shellcheck disable=SC1090
source <("$SHARED/testbed/setup.sh")
export TESTBED_SSHD="$SHARED/testbed/sshd.sh"

cleanup() {
  "$TESTBED_SSHD" stop || true
  # Stop the Docker-API service only if this run started it.
  if [ "$was_running" = false ] && running; then kill "$(cat "$D/run/podman-service.pid")" || true; fi
}
trap cleanup EXIT

deno test --no-prompt --allow-run --allow-net --allow-env --allow-read --allow-write tests/deploy/

#!/usr/bin/env bash
# The backup and restore jobs on IPv6: the demo (tests/e2e/demo.sh) on a one-node cluster whose
# node and agent listen on ::1 only, so every call of the jobs to the engine and to the agent
# goes over IPv6 (the S3 server stays on 127.0.0.1: the node reaches it, not the jobs). Checks
# that the data came back identical and that the jobs named the node's IPv6 address in
# brackets. Its own work directory and S3 port, so it runs beside the other suites' clusters.
# Usage: tests/e2e/test_ipv6.sh   (as root; AGENT_BIN defaults to build/agent/es-agent)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${E2E_IPV6_OUT:-/tmp/es-e2e-ipv6-out}
PASSED=0
FAILED=0

say() { printf '[test_ipv6] %s\n' "$*"; }

# check DESCRIPTION COMMAND...
check() {
  local what=$1
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
    say "ok   ${what}"
  else
    FAILED=$((FAILED + 1))
    say "FAIL ${what}"
  fi
}

main() {
  if ! ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/128'; then
    say "SKIP: this host has no IPv6 loopback address"
    return 0
  fi
  rm -rf "$OUT"
  install -d -m 0755 "$OUT"
  local log="${OUT}/demo.log" rc=0
  E2E_NODE_ADDRS_LIST="::1" E2E_WORK=/tmp/es-e2e-ipv6 E2E_S3_PORT=7074 DEMO_REPLICAS=0 \
    timeout 900 bash "${HERE}/demo.sh" >"$log" 2>&1 || rc=$?
  check "the demo's backup and restore on ::1 bring every index back identical (exit ${rc}; log ${log})" \
    grep -q '^\[demo\] OK: every index came back identical' "$log"
  check "the jobs reached the engine at http://[::1]:9200" \
    test "$(grep -c -F 'cluster http://[::1]:9200, repository' "$log")" -eq 2
  check "and the agent at [::1]:8080, for the backup and for the restore" \
    test "$(grep -c -E 'node node-1 \(\[::1\]:8080\): ok, keystore ' "$log")" -eq 2
  check "the clean-up reached the agent too" \
    test "$(grep -c -E 'keystore: client kb_[0-9a-z_]+ removed from all 1 nodes \(1 held it\)' "$log")" -eq 2
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [[ $FAILED -eq 0 ]]
}

main "$@"

#!/usr/bin/env bash
# The agent's cli backend (--keystore-backend cli) against the keystore tools of older engine
# releases: the same GoogleTest cases that ctest runs against the current tools (Engines/*,
# tests/cli_keystore_test.cc), once per release in E2E_TOOL_RELEASES, each on Java 17.
# The releases come from `bash tests/e2e/lib/deps.sh` (Maven Central integ-test-zips).
# Usage: bash tests/compat/cli_tools.sh   (AGENT_TESTS: the agent_tests binary)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tests/e2e/lib/env.sh
source "$ROOT/tests/e2e/lib/env.sh"

AGENT_TESTS="${AGENT_TESTS:-$ROOT/build/agent/agent_tests}"
JAVA17="${CLI_TOOLS_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"

die() {
  printf '[cli-tools] ERROR: %s\n' "$*" >&2
  exit 1
}

# run_release ENGINE VERSION: the Engines/* cases for that engine, against that release's tool.
run_release() {
  local engine=$1 version=$2 home="$E2E_TOOL_HOMES/$1-$2" variable
  [[ -x "$home/bin/$engine-keystore" ]] || die "no $engine $version at $home (run: bash tests/e2e/lib/deps.sh)"
  variable=AGENT_TEST_OPENSEARCH_HOME
  [[ $engine == elasticsearch ]] && variable=AGENT_TEST_ES_HOME
  printf '[cli-tools] %s %s (%s)\n' "$engine" "$version" "$home"
  # --gtest_fail_if_no_test... is not in Debian's GoogleTest: a skip would pass, so the count
  # of passed cases is checked instead.
  local out
  out=$(env "$variable=$home" AGENT_TEST_JAVA_HOME="$JAVA17" \
    "$AGENT_TESTS" --gtest_filter="Engines/*/$engine" --gtest_brief=1 2>&1) || {
    printf '%s\n' "$out"
    die "the cli backend failed against $engine $version"
  }
  if grep -q '\[  SKIPPED \]' <<<"$out"; then
    printf '%s\n' "$out"
    die "cases were skipped against $engine $version"
  fi
  printf '[cli-tools]   %s\n' "$(grep -E '^\[  PASSED  \]' <<<"$out")"
}

main() {
  [[ -x $AGENT_TESTS ]] || die "no $AGENT_TESTS (run: make agent)"
  [[ -x $JAVA17/bin/java ]] || die "no Java 17 at $JAVA17 (set CLI_TOOLS_JAVA_HOME)"
  local release count=0
  for release in $E2E_TOOL_RELEASES; do
    run_release "${release%%:*}" "${release#*:}"
    count=$((count + 1))
  done
  printf 'cli-tools: %d releases passed\n' "$count"
}

main "$@"

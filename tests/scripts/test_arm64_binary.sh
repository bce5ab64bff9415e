#!/usr/bin/env bash
# The arm64 es-agent (build.sh cross-bin) run under qemu-user on this amd64 host: it is a static
# AArch64 executable, prints its version, serves /health over real HTTP, writes S3 settings
# into a keystore that Elasticsearch's own keystore tool then lists and reads, and its liveness
# probe (es-agent health) says alive. No Docker needed; tools/install-cross-deps.sh installs
# the cross toolchain and qemu-user.
# Ends with 'N passed, M failed'; exits non-zero on a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/e2e/lib/env.sh
source "$ROOT/tests/e2e/lib/env.sh"

ARM_BIN="${ARM_BIN:-$ROOT/build/agent-arm64-bin/es-agent}"
readonly ADDR=127.0.0.72 PORT=8080
WORK=$(mktemp -d /tmp/arm64-agent.XXXXXX)
AGENT_PID=""
PASSED=0
FAILED=0

check() {
  local what=$1
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
    printf 'ok   %s\n' "$what"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL %s\n' "$what"
  fi
}

on_exit() {
  [[ -z $AGENT_PID ]] || kill "$AGENT_PID" 2>/dev/null || true
  rm -rf "$WORK"
}

# lacks FILE SECRET...: none of the secrets is in FILE (they reach grep on a pipe, not argv).
lacks() {
  local file=$1
  shift
  ! grep -qF -f <(printf '%s\n' "$@") "$file"
}

# probe_says_alive SERVE_FLAGS...: es-agent health exits 0 and prints "ok".
probe_says_alive() { [[ $(qemu-aarch64 "$ARM_BIN" health "$@") == ok ]]; }

curl_agent() { # curl_agent METHOD PATH [BODY_FILE]: the status, the body in $WORK/body
  local data=()
  [[ $# -lt 3 ]] || data=(--data-binary "@$3" -H 'Content-Type: application/json')
  curl -sS --connect-timeout 5 --max-time 30 -X "$1" "${data[@]}" -o "$WORK/body" -w '%{http_code}' \
    "http://$ADDR:$PORT$2" 2>>"$WORK/curl.err" || true
}

serve_flags() {
  printf '%s\n' serve --listen-address "$ADDR" --port "$PORT" --config-dir "$WORK/config" \
    --engine elasticsearch --engine-version "$E2E_ELASTICSEARCH_VERSION" --node-address 127.0.0.1:1 \
    --auth-mode none --allow-without-s3-repository
}

main() {
  trap on_exit EXIT
  [[ -f $ARM_BIN ]] || { echo "no $ARM_BIN (run: bash addons/elasticsearch/agent/build.sh cross-bin)" >&2; exit 1; }
  command -v qemu-aarch64 >/dev/null || { echo "no qemu-aarch64 (run: bash tools/install-cross-deps.sh)" >&2; exit 1; }
  check "an AArch64 executable" grep -q 'Machine:.*AArch64' <(readelf -h "$ARM_BIN")
  check "statically linked (no program interpreter, no shared libraries)" \
    test -z "$(readelf -l -d "$ARM_BIN" 2>/dev/null | grep -E 'INTERP|NEEDED')"
  check "prints its version under qemu" grep -qE '^es-agent [0-9]+\.[0-9]+\.[0-9]+$' <(qemu-aarch64 "$ARM_BIN" --version)

  mkdir -p "$WORK/config"
  chown -R "$E2E_USER:$E2E_USER" "$WORK"
  local flags
  mapfile -t flags < <(serve_flags)
  "${E2E_AS_ESNODE[@]}" qemu-aarch64 "$ARM_BIN" "${flags[@]}" >"$WORK/agent.log" 2>&1 &
  AGENT_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(curl_agent GET /health) == 200 ]] && break
    sleep 0.2
  done
  check "serves GET /health over HTTP" test "$(curl_agent GET /health)" == 200
  check "its liveness probe, es-agent health with the same options, says alive" \
    probe_says_alive "${flags[@]:1}"

  local key secret
  key="AKIA$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  secret="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  jq -n --arg k "$key" --arg s "$secret" '{access_key_id: $k, secret_access_key: $s, client: "arm"}' \
    >"$WORK/request.json"
  check "POST /keystore writes the settings" test "$(curl_agent POST /keystore "$WORK/request.json")" == 200
  rm -f "$WORK/request.json"
  # The engine's own tool reads what the arm64 agent wrote (key derivation, AES-GCM, layout).
  local listed
  listed=$(e2e_es_keystore "$WORK/config" list 2>/dev/null | tr '\n' ' ')
  check "Elasticsearch's keystore tool lists them (got: $listed)" \
    test "$listed" == "keystore.seed s3.client.arm.access_key s3.client.arm.secret_key "
  check "and reads the secret key back unchanged" \
    test "$(e2e_es_keystore "$WORK/config" show s3.client.arm.secret_key 2>/dev/null)" == "$secret"
  check "no secret in the agent's log" lacks "$WORK/agent.log" "$key" "$secret"
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  ((FAILED == 0))
}

main "$@"

#!/usr/bin/env bash
# The agent against a real Elasticsearch keystore: Elasticsearch's own elasticsearch-keystore
# tool (from the integ-test distribution) creates the keystore with entries the agent does not
# manage; the agent writes S3 settings; the tool then lists and shows exactly what was written
# and everything that was there before; the tool removes the entries again. Also: a keystore
# the agent creates from nothing, and a password-protected one. No Elasticsearch node runs:
# the integ-test distribution has no S3 module, so it would refuse these entries at start.
set -euo pipefail

# shellcheck source=tests/e2e/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

readonly AGENT_BIN="${AGENT_BIN:-$E2E_ROOT/build/agent/es-agent}"
readonly AGENT_ADDR=127.0.0.21
readonly AGENT_PORT=8080
PASSED=0
FAILED=0
WORK=""
AGENT_PID=""

pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; }
check() { # check NAME COMMAND...: passes when the command succeeds
  local name="$1"
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

cleanup() {
  stop_agent
  [[ -n "$WORK" ]] && rm -rf "$WORK"
}

random_secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32; }

# es_tool_as_user CONFIG_DIR ARGS...: the engine's own tool, as the engine's user.
es_tool_as_user() {
  local conf="$1"
  shift
  ES_PATH_CONF="$conf" ES_JAVA_HOME="$ES_JAVA_HOME" as_esnode "$ES_HOME/bin/elasticsearch-keystore" "$@"
}

start_agent() { # start_agent CONFIG_DIR [EXTRA FLAGS...]
  local conf="$1"
  shift
  # Not through the as_esnode function: a backgrounded function is a subshell, and $! would
  # name the subshell, not the agent.
  ELASTIC_USERNAME=elastic ELASTIC_PASSWORD="$AGENT_PASSWORD" "${E2E_AS_ESNODE[@]}" "$AGENT_BIN" serve \
    --listen-address "$AGENT_ADDR" --port "$AGENT_PORT" --config-dir "$conf" \
    --node-address 127.0.0.1:1 --allow-without-s3-repository "$@" >>"$WORK/agent.log" 2>&1 &
  AGENT_PID=$!
  local _
  for _ in $(seq 50); do
    curl --silent --fail --connect-timeout 1 --max-time 2 "http://$AGENT_ADDR:$AGENT_PORT/health" \
      >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "agent did not start; its log:" >&2
  tail -n 20 "$WORK/agent.log" >&2
  return 1
}

stop_agent() {
  if [[ -n "$AGENT_PID" ]]; then
    kill "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
  fi
}

# post_credentials CLIENT ACCESS_VAR SECRET_VAR: POST /keystore; body and Basic credentials
# travel on standard input and in a 0600 config file, never on the command line.
post_credentials() {
  local client="$1" body auth_conf
  auth_conf="$WORK/curl-auth.conf"
  printf 'user = "elastic:%s"\n' "$AGENT_PASSWORD" >"$auth_conf"
  body="$(ACCESS="${!2}" SECRET="${!3}" jq -n --arg client "$client" \
    '{access_key_id: env.ACCESS, secret_access_key: env.SECRET, client: $client}')"
  printf '%s' "$body" | curl --silent --show-error --fail-with-body --connect-timeout 2 --max-time 30 \
    --config "$auth_conf" -H 'Content-Type: application/json' --data-binary @- \
    "http://$AGENT_ADDR:$AGENT_PORT/keystore"
}

new_config_dir() { # a config dir owned by the engine's user, with an elasticsearch.yml
  local dir="$WORK/$1"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$dir"
  : >"$dir/elasticsearch.yml"
  chown "$E2E_USER:$E2E_USER" "$dir/elasticsearch.yml"
  printf '%s\n' "$dir"
}

format_version_of() { # the format version in the keystore header (bytes 27..30, big-endian)
  od -An -tu1 -j27 -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}'
}

test_update_keeps_every_entry() {
  local conf seed_before bootstrap access secret reply names expected
  conf="$(new_config_dir updated)"
  es_tool_as_user "$conf" create >/dev/null
  bootstrap="$(random_secret)"
  printf '%s\n' "$bootstrap" | es_tool_as_user "$conf" add --stdin bootstrap.password >/dev/null
  head -c 300 /dev/urandom >"$WORK/blob.bin"
  chmod 0644 "$WORK/blob.bin"
  es_tool_as_user "$conf" add-file my.file "$WORK/blob.bin" >/dev/null
  seed_before="$(es_tool_as_user "$conf" show keystore.seed)"
  local format_before
  format_before="$(format_version_of "$conf/elasticsearch.keystore")"

  start_agent "$conf"
  access="$(random_secret)"
  secret="$(random_secret)"
  if reply="$(post_credentials kb_test access secret)"; then
    pass "agent wrote S3 settings into a keystore that elasticsearch-keystore created"
  else
    fail "agent refused the write: $(jq -r '.error.code + ": " + .error.message' <<<"$reply")"
    return
  fi
  stop_agent

  names="$(es_tool_as_user "$conf" list | tr '\n' ' ')"
  expected="bootstrap.password keystore.seed my.file s3.client.kb_test.access_key s3.client.kb_test.secret_key "
  check "elasticsearch-keystore list shows exactly the old and the new entries" \
    test "$names" == "$expected"
  check "show returns the access key written" test "$(es_tool_as_user "$conf" show s3.client.kb_test.access_key)" == "$access"
  check "show returns the secret key written" test "$(es_tool_as_user "$conf" show s3.client.kb_test.secret_key)" == "$secret"
  check "bootstrap.password is unchanged" test "$(es_tool_as_user "$conf" show bootstrap.password)" == "$bootstrap"
  check "keystore.seed is unchanged" test "$(es_tool_as_user "$conf" show keystore.seed)" == "$seed_before"
  check "the file entry is unchanged, byte for byte" \
    cmp -s <(es_tool_as_user "$conf" show my.file) "$WORK/blob.bin"
  check "the file keeps its format version ($format_before)" \
    test "$(format_version_of "$conf/elasticsearch.keystore")" == "$format_before"
  check "the answer's digest is the file's SHA-256" \
    test "$(jq -r .sha256 <<<"$reply")" == "$(sha256sum "$conf/elasticsearch.keystore" | cut -d' ' -f1)"

  es_tool_as_user "$conf" remove s3.client.kb_test.access_key s3.client.kb_test.secret_key >/dev/null
  names="$(es_tool_as_user "$conf" list | tr '\n' ' ')"
  check "elasticsearch-keystore removes the entries again, leaving the rest" \
    test "$names" == "bootstrap.password keystore.seed my.file "
}

test_agent_creates_a_keystore() {
  local conf access secret reply
  conf="$(new_config_dir created)"
  start_agent "$conf" --engine-version "$E2E_ELASTICSEARCH_VERSION"
  access="$(random_secret)"
  secret="$(random_secret)"
  reply="$(post_credentials default access secret)" || true
  stop_agent
  check "agent created a keystore (format $(jq -r .format_version <<<"$reply") for $E2E_ELASTICSEARCH_VERSION)" \
    test "$(jq -r .created <<<"$reply")" == true
  check "elasticsearch-keystore lists the created keystore" \
    test "$(es_tool_as_user "$conf" list | tr '\n' ' ')" == "keystore.seed s3.client.default.access_key s3.client.default.secret_key "
  check "show returns the secret key of the created keystore" \
    test "$(es_tool_as_user "$conf" show s3.client.default.secret_key)" == "$secret"
  check "the created keystore has the engine's mode 0660" \
    test "$(stat -c %a "$conf/elasticsearch.keystore")" == 660
}

test_password_protected_keystore() {
  local conf password access secret reply
  conf="$(new_config_dir protected)"
  password="$(random_secret)"
  printf '%s\n%s\n' "$password" "$password" | es_tool_as_user "$conf" create -p >/dev/null 2>&1
  install -o "$E2E_USER" -g "$E2E_USER" -m 0400 /dev/null "$WORK/keystore-password"
  printf '%s' "$password" >"$WORK/keystore-password"
  start_agent "$conf" --keystore-password-file "$WORK/keystore-password"
  access="$(random_secret)"
  secret="$(random_secret)"
  reply="$(post_credentials default access secret)" || true
  stop_agent
  check "agent wrote into a password-protected keystore" test "$(jq -r '.settings | length' <<<"$reply")" == 2
  check "elasticsearch-keystore, given the password, shows the secret key" \
    test "$(printf '%s\n' "$password" | es_tool_as_user "$conf" show s3.client.default.secret_key 2>/dev/null)" == "$secret"
  check "has-passwd still says the keystore is password-protected" \
    es_tool_as_user "$conf" has-passwd >/dev/null

  local before
  before="$(sha256sum "$conf/elasticsearch.keystore")"
  printf '%s' "not-the-password" >"$WORK/keystore-password"
  start_agent "$conf" --keystore-password-file "$WORK/keystore-password"
  reply="$(post_credentials default access secret 2>/dev/null)" || true
  stop_agent
  check "a wrong keystore password is refused as KEYSTORE_PASSWORD_INCORRECT" \
    test "$(jq -r .error.code <<<"$reply")" == KEYSTORE_PASSWORD_INCORRECT
  check "and the keystore is untouched" test "$(sha256sum "$conf/elasticsearch.keystore")" == "$before"
}

main() {
  if [[ ! -x "$ES_HOME/bin/elasticsearch-keystore" ]]; then
    echo "Elasticsearch is not installed at $ES_HOME: run tests/e2e/lib/deps.sh" >&2
    exit 1
  fi
  [[ -x "$AGENT_BIN" ]] || { echo "no agent at $AGENT_BIN: build it first" >&2; exit 1; }
  e2e_ensure_user
  WORK="$(mktemp -d /tmp/es-keystore-test.XXXXXX)"
  chmod 0755 "$WORK"
  trap cleanup EXIT
  AGENT_PASSWORD="$(random_secret)"
  echo "# Elasticsearch $E2E_ELASTICSEARCH_VERSION keystore tool against es-agent"
  test_update_keeps_every_entry
  test_agent_creates_a_keystore
  test_password_protected_keystore
  echo "es-keystore: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"

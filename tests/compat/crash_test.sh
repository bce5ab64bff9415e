#!/usr/bin/env bash
# Crash safety and concurrency of the agent's keystore writes, judged by an engine's own code.
# Crash: a writer loop
# sends POST /keystore calls with numbered key pairs (AK<i>, SK<i>) while the agent is killed
# (SIGKILL) at random moments, until CRASH_WRITES writes were attempted. After each kill the
# engine's KeyStoreWrapper (Elasticsearch CRASH_RELEASE, through the compat checker) loads the
# keystore and must find the pair of the last acknowledged write or of the one in flight, never
# a mix, with every other entry intact; a temporary file the kill left must be gone once the
# agent has started again. Concurrency: 200 simultaneous calls with distinct pairs end with a
# keystore that the engine loads and that holds one call's pair. Needs the classpath that
# tests/compat/run.sh resolves.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${COMPAT_CACHE:-$ROOT/.cache/compat}"
readonly ROOT CACHE
readonly AGENT_BIN="${AGENT_BIN:-$ROOT/build/agent/es-agent}"
# Format 5 (10,000 KDF iterations) keeps writes quick; the write path is the same for all formats.
readonly CRASH_RELEASE="${CRASH_RELEASE:-8.13.4}"
readonly CRASH_WRITES="${CRASH_WRITES:-500}"
readonly JDK="${CRASH_JDK:-/usr/lib/jvm/java-17-openjdk-amd64}"
readonly ADDR=127.0.0.71
readonly PORT=8080

WORK=""
AGENT_PID=""
WRITER_PID=""
JVM_PID=""
PASSED=0
FAILED=0

log() { printf '[crash] %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); }
fail() {
  FAILED=$((FAILED + 1))
  log "FAIL: $*"
}

cleanup() {
  [[ -n "$WRITER_PID" ]] && kill "$WRITER_PID" 2>/dev/null
  [[ -n "$AGENT_PID" ]] && kill -9 "$AGENT_PID" 2>/dev/null
  if [[ -n "$JVM_PID" ]]; then
    { printf 'quit\n' >&"${CHECKER[1]}"; } 2>/dev/null || true
    kill "$JVM_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  [[ -n "$WORK" ]] && rm -rf "$WORK"
}

start_checker() {
  local classpath="$CACHE/maven/elasticsearch-$CRASH_RELEASE/classpath.txt" line
  [[ -s "$classpath" && -f "$CACHE/classes/Checker.class" ]] ||
    { log "no checker classpath for $CRASH_RELEASE: run tests/compat/run.sh first"; exit 1; }
  coproc CHECKER { exec "$JDK/bin/java" -Xmx256m -XX:+UseSerialGC \
    -cp "$CACHE/classes:$(cat "$classpath")" Checker 2>>"$WORK/checker.log"; }
  JVM_PID="$CHECKER_PID"
  if ! IFS= read -r -t 120 line <&"${CHECKER[0]}" || [[ "$line" != ready$'\t'* ]]; then
    log "checker did not start: $(tail -n 3 "$WORK/checker.log")"
    exit 1
  fi
}

checker() { # CMD ARGS...: succeeds iff the verdict is ok; VERDICT holds the detail
  local IFS=$'\t' line
  printf '%s\n' "$*" >&"${CHECKER[1]}"
  IFS= read -r -t 120 line <&"${CHECKER[0]}" || { VERDICT="no verdict"; return 1; }
  VERDICT="${line#*$'\t'}"
  [[ "$line" == ok$'\t'* ]]
}

start_agent() {
  "$AGENT_BIN" serve --listen-address "$ADDR" --port "$PORT" --config-dir "$WORK/config" \
    --engine elasticsearch --node-address 127.0.0.1:1 --max-connections 512 \
    --auth-mode none --allow-without-s3-repository >>"$WORK/agent.log" 2>&1 &
  AGENT_PID=$!
  local _
  for _ in $(seq 100); do
    curl --silent --fail --connect-timeout 1 --max-time 2 "http://$ADDR:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  log "agent did not start"
  tail -n 5 "$WORK/agent.log"
  exit 1
}

# writer FIRST: POSTs pairs FIRST, FIRST+1, ... until a call fails; appends each number that
# was acknowledged to $WORK/acked, and the one it is sending to $WORK/sending.
writer() {
  local i="$1"
  while ((i <= CRASH_WRITES)); do
    printf '%s\n' "$i" >"$WORK/sending"
    jq -n --arg i "$i" '{access_key_id: ("AK" + $i), secret_access_key: ("SK" + $i), client: "crash"}' |
      curl --silent --fail --connect-timeout 1 --max-time 10 --data-binary @- \
        -H 'Content-Type: application/json' "http://$ADDR:$PORT/keystore" >/dev/null 2>&1 || return 0
    printf '%s\n' "$i" >>"$WORK/acked"
    i=$((i + 1))
  done
}

value_of() { # NAME: the base64-decoded value in the export
  awk -F'\t' -v n="$1" '$2 == n {print $3}' "$WORK/export" | base64 -d
}

# verify FIRST: after a kill, the engine loads the keystore; the pair is one call's, and that
# call is the old state (the last write acknowledged in this round, else what the keystore held
# before the round, $HELD) or the one in flight; the entries the engine wrote are untouched.
verify() {
  local first="$1" old sending access secret n
  old="$(tail -n 1 "$WORK/acked")"
  ((old >= first)) || old="$HELD"
  sending="$(cat "$WORK/sending")"
  if ! checker export "$WORK/config" "$WORK/empty" "$WORK/export"; then
    fail "the engine cannot load the keystore after a kill: $VERDICT"
    return
  fi
  access="$(value_of s3.client.crash.access_key)"
  secret="$(value_of s3.client.crash.secret_key)"
  n="${access#AK}"
  if [[ "$secret" != "SK$n" ]]; then
    fail "mixed credentials after a kill: access key of write $n, secret key of another"
  elif [[ "$n" != "$old" && "$n" != "$sending" ]]; then
    fail "keystore holds write $n, expected the old state ($old) or the write in flight ($sending)"
  else
    pass
  fi
  HELD="$n"
  if [[ "$(value_of bootstrap.password)" != "$BOOTSTRAP" || "$(value_of keystore.seed)" != "$SEED" ]]; then
    fail "an entry the agent does not manage changed"
  fi
}

main() {
  [[ -x "$AGENT_BIN" ]] || { log "no agent at $AGENT_BIN"; exit 1; }
  WORK="$(mktemp -d /tmp/crash-test.XXXXXX)"
  trap cleanup EXIT
  mkdir -p "$WORK/config"
  : >"$WORK/empty"
  start_checker

  # The engine creates the keystore, with an entry of its own; the first write seeds the pair.
  BOOTSTRAP="engine-$RANDOM$RANDOM"
  printf 'string\tbootstrap.password\t%s\n' "$(printf '%s' "$BOOTSTRAP" | base64 -w0)" >"$WORK/entries"
  checker create "$WORK/config" "$WORK/empty" "$WORK/entries" || { log "create: $VERDICT"; exit 1; }
  start_agent
  printf '0\n' >"$WORK/sending"
  jq -n '{access_key_id: "AK0", secret_access_key: "SK0", client: "crash"}' |
    curl --silent --fail --max-time 10 --data-binary @- "http://$ADDR:$PORT/keystore" >/dev/null
  printf '0\n' >"$WORK/acked"
  checker export "$WORK/config" "$WORK/empty" "$WORK/export" || { log "export: $VERDICT"; exit 1; }
  SEED="$(value_of keystore.seed)"
  HELD=0

  local kills=0 leftovers=0 next=1
  while ((next <= CRASH_WRITES)); do
    writer "$next" &
    WRITER_PID=$!
    sleep "0.$(printf '%03d' $((RANDOM % 150)))"
    kill -9 "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true  # bash would report the kill: expected, so quiet
    wait "$WRITER_PID" 2>/dev/null || true
    AGENT_PID="" WRITER_PID=""
    kills=$((kills + 1))
    verify "$next"
    compgen -G "$WORK/config/.elasticsearch.keystore.agent-*" >/dev/null && leftovers=$((leftovers + 1))
    next=$(($(cat "$WORK/sending") + 1))
    start_agent  # cleans up what the kill left, under the lock
    if compgen -G "$WORK/config/.elasticsearch.keystore.agent-*" >/dev/null; then
      fail "a temporary file survived the agent's restart"
    fi
  done
  log "$CRASH_WRITES writes, $kills kills, $leftovers left a temporary file (each removed at restart)"
  concurrent_writes
  kill -9 "$AGENT_PID"
  wait "$AGENT_PID" 2>/dev/null || true
  AGENT_PID=""
  echo "crash: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

# 200 calls at once, each with its own pair: every one is answered 200 and the keystore
# holds the access and secret key of one and the same call.
concurrent_writes() {
  local i pids=() failed=0 access secret
  for i in $(seq 1001 1200); do
    jq -n --arg i "$i" '{access_key_id: ("AK" + $i), secret_access_key: ("SK" + $i), client: "crash"}' |
      curl --silent --fail --connect-timeout 5 --max-time 60 --data-binary @- \
        "http://$ADDR:$PORT/keystore" >/dev/null 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
  if ((failed > 0)); then fail "$failed of 200 concurrent calls were not answered 200"; else pass; fi
  if ! checker export "$WORK/config" "$WORK/empty" "$WORK/export"; then
    fail "the engine cannot load the keystore after 200 concurrent writes: $VERDICT"
    return
  fi
  access="$(value_of s3.client.crash.access_key)"
  secret="$(value_of s3.client.crash.secret_key)"
  if [[ "$secret" == "SK${access#AK}" && "${access#AK}" -ge 1001 ]]; then
    pass
    log "200 concurrent writes: the keystore holds the pair of call ${access#AK}"
  else
    fail "after 200 concurrent writes the keystore holds a mixed or stale pair"
  fi
}

main "$@"

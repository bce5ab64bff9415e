#!/usr/bin/env bash
# End-to-end tests of the DataProtection jobs (addons/elasticsearch/dataprotection/backup.sh
# and restore.sh) on the local cluster of real components: three OpenSearch nodes, one
# keystore agent per node, versitygw as S3. The cluster is started once for the whole file
# and stopped at the end, also on failure. Each test runs the jobs as a DataProtection job
# runs them and asserts their exit code, their messages and their backup-info output.
# One declared test double: for an agent answering 500 to a write, 503 to everything, or its
# node refusing a reload, a python http.server stands in for one agent on its address (the real agent is started again
# after those tests).
#
# Ends with 'N passed, M failed'; exits non-zero when a test failed.
# Usage: tests/e2e/test_jobs.sh   (as root; AGENT_BIN defaults to build/agent/es-agent;
# TEST_JOBS_ONLY="test_x test_y" runs only those tests)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/env.sh disable=SC1091
source "${HERE}/lib/env.sh"

JOBS_DIR="${E2E_ROOT}/addons/elasticsearch/dataprotection"
AGENT_BIN=${AGENT_BIN:-${E2E_ROOT}/build/agent/es-agent}
JOB_TIMEOUT=${JOB_TIMEOUT:-600}
RUN_ID=$(date -u +%H%M%S)
POLICY_PREFIX=e2e-elasticsearch-backup-policy

CLUSTER_STARTED=false
STOPPED_PIDS=()
PASSED=0
FAILED=0
FAILED_NAMES=()
ERRORS=()

say() { printf '[test_jobs] %s\n' "$*"; }

# --- harness ------------------------------------------------------------------------

# check DESCRIPTION COMMAND...: records DESCRIPTION as a failure of the current test
# unless COMMAND succeeds.
check() {
  local what=$1
  shift
  if ! "$@"; then
    ERRORS+=("$what")
  fi
}

# run_test FUNCTION: one test; passes when none of its checks failed.
run_test() {
  local name=$1 t0=$SECONDS
  # TEST_JOBS_ONLY="test_a test_b" runs only those (while working on them).
  [[ -z ${TEST_JOBS_ONLY:-} || " ${TEST_JOBS_ONLY} " == *" ${name} "* ]] || return 0
  ERRORS=()
  say "RUN  ${name}"
  "$name" || ERRORS+=("the test stopped early (status $?)")
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    say "PASS ${name} ($((SECONDS - t0))s)"
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    say "FAIL ${name} ($((SECONDS - t0))s)"
    local e
    for e in "${ERRORS[@]}"; do
      say "     - ${e}"
    done
  fi
}

on_exit() {
  local rc=$? pid
  set +e
  for pid in "${STOPPED_PIDS[@]}"; do
    kill -CONT "$pid" 2>/dev/null
  done
  if [[ -n ${STANDIN_PID:-} ]]; then
    kill "$STANDIN_PID" 2>/dev/null
  fi
  rm -rf "${PRIVATE:-}"
  if [[ $CLUSTER_STARTED == true ]]; then
    say "stopping the local cluster"
    bash "${HERE}/cluster.sh" stop >/dev/null 2>&1
  fi
  exit "$rc"
}

# --- the cluster and its data -------------------------------------------------------

cred() {
  sed -n "s/^$1=//p" "$2"
}

start_cluster() {
  [[ -x $AGENT_BIN ]] || {
    say "agent binary ${AGENT_BIN} missing: build it first"
    exit 2
  }
  CLUSTER_STARTED=true
  AGENT_BIN=$AGENT_BIN bash "${HERE}/cluster.sh" start >"${TMPDIR:-/tmp}/test_jobs.cluster.log" 2>&1 || {
    cat "${TMPDIR:-/tmp}/test_jobs.cluster.log"
    say "the cluster did not start"
    exit 2
  }
  OUT="${E2E_WORK}/test-jobs"
  PRIVATE="${E2E_WORK}/test-jobs-private"
  install -d -m 0755 "$OUT"
  install -d -m 0700 "$PRIVATE"
  CURL_AUTH="${PRIVATE}/auth.curlrc"
  printf 'header = "Authorization: Basic %s"\n' \
    "$(printf '%s:%s' "$(cred ELASTIC_USERNAME "$E2E_AGENT_CREDENTIALS")" "$(cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS")" | base64 -w0)" \
    >"$CURL_AUTH"
  chmod 0600 "$CURL_AUTH"
}

# es METHOD PATH [CURL ARGS...]: a request to the cluster; fails on HTTP errors. The body's
# type is JSON unless CONTENT_TYPE says otherwise.
es() {
  local method=$1 path=$2
  shift 2
  curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 120 \
    --config "$CURL_AUTH" --request "$method" --header "Content-Type: ${CONTENT_TYPE:-application/json}" \
    "$@" --url "${E2E_ES_URL}${path}"
}

# es_status METHOD PATH: only the HTTP status.
es_status() {
  curl --silent --connect-timeout 5 --max-time 60 --config "$CURL_AUTH" --request "$1" \
    --output /dev/null --write-out '%{http_code}' --url "${E2E_ES_URL}$2" || true
}

# load_index INDEX DOCS SHARDS [TEXT_REPEAT]: creates INDEX with DOCS deterministic documents.
load_index() {
  local index=$1 docs=$2 shards=$3 repeat=${4:-1} file="${OUT}/${1}.ndjson"
  es PUT "/${index}" --data-binary "{\"settings\":{\"number_of_shards\":${shards},\"number_of_replicas\":1}}" >/dev/null
  awk -v idx="$index" -v n="$docs" -v rep="$repeat" 'BEGIN {
    for (i = 1; i <= n; i++) {
      text = ""
      for (r = 0; r < rep; r++) text = text sprintf("%s line %d of document %d; ", idx, r, i * 104729 + r)
      printf "{\"index\":{\"_index\":\"%s\",\"_id\":\"%s-%07d\"}}\n", idx, idx, i
      printf "{\"n\":%d,\"kind\":\"k%d\",\"text\":\"%s\"}\n", i, i % 13, text
    }
  }' >"$file"
  split -l 4000 "$file" "${file}.part."
  local part
  for part in "${file}".part.*; do
    CONTENT_TYPE=application/x-ndjson es POST /_bulk --data-binary "@${part}" |
      jq -e '.errors == false' >/dev/null || return 1
  done
  rm -f "$file" "${file}".part.*
  es POST "/${index}/_refresh" >/dev/null
}

# loaded INDEX DOCS SHARDS [TEXT_REPEAT]: load_index for a test; a failure is the test's.
loaded() {
  load_index "$@" || {
    ERRORS+=("loading $1 failed")
    return 1
  }
}

# fingerprint INDEX: '<count> <sha256 over sorted id+source>' (indices up to 10,000 docs).
fingerprint() {
  local count sum
  count=$(es GET "/$1/_count" | jq -r '.count')
  sum=$(es POST "/$1/_search" --data-binary '{"size":10000,"sort":["_doc"]}' |
    jq -cS '.hits.hits[] | [._id, ._source]' | LC_ALL=C sort | sha256sum | cut -c1-64)
  printf '%s %s' "$count" "$sum"
}

# cluster_state_summary: the indices with their document counts, and the repositories.
cluster_state_summary() {
  es GET '/_cat/indices?h=index,docs.count&s=index&expand_wildcards=all'
  es GET '/_snapshot' | jq -cS 'keys'
}

# --- running the jobs ---------------------------------------------------------------

# run_job TAG SCRIPT [VAR=VALUE...]: runs a job with a DataProtection job's environment
# (plus the overrides); its output goes to $OUT/TAG.log, its status to JOB_RC.
run_job() {
  local tag=$1 script=$2
  shift 2
  JOB_RC=0
  (
    job_env "$script" "$tag" "$@"
    exec timeout "$JOB_TIMEOUT" bash "${JOBS_DIR}/${script}"
  ) >"${OUT}/${tag}.log" 2>&1 || JOB_RC=$?
  say "     ${script} (${tag}) exit ${JOB_RC}; log ${OUT}/${tag}.log"
}

# start_job TAG SCRIPT [VAR=VALUE...]: like run_job, in the background; JOB_PID is the job's
# own bash process.
start_job() {
  local tag=$1 script=$2
  shift 2
  (
    job_env "$script" "$tag" "$@"
    exec bash "${JOBS_DIR}/${script}"
  ) >"${OUT}/${tag}.log" 2>&1 &
  JOB_PID=$!
}

# wait_for_job_line TAG PATTERN TICKS: until TAG's log has a line matching PATTERN, the job
# (JOB_PID) ends, or TICKS times 50 ms have passed.
wait_for_job_line() {
  local ticks=0
  until log_has "$1" "$2" || ! kill -0 "$JOB_PID" 2>/dev/null || ((ticks > $3)); do
    sleep 0.05
    ticks=$((ticks + 1))
  done
}

# start_job_in_its_group TAG SCRIPT [VAR=VALUE...]: start_job, the job leading a process
# group of its own (JOB_PID its id), as under timeout(1) or a terminal's Ctrl-C.
start_job_in_its_group() {
  local tag=$1 script=$2
  shift 2
  (
    job_env "$script" "$tag" "$@"
    exec setsid bash "${JOBS_DIR}/${script}"
  ) >"${OUT}/${tag}.log" 2>&1 &
  JOB_PID=$!
}

# job_env SCRIPT TAG [VAR=VALUE...]: exports a DataProtection job's environment (in the job's
# subshell).
job_env() {
  local script=$1 tag=$2 kv
  shift 2
  export DP_DB_HOST="${E2E_NODE_ADDRS[0]}" DP_DB_PORT="$E2E_HTTP_PORT"
  DP_DB_USER=$(cred ELASTIC_USERNAME "$E2E_AGENT_CREDENTIALS")
  DP_DB_PASSWORD=$(cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS")
  export DP_DB_USER DP_DB_PASSWORD
  export KB_NAMESPACE=e2e KB_CLUSTER_NAME="$E2E_CLUSTER_NAME" DP_TARGET_POD_NAME=node-1
  export DATASAFED_CONF="$E2E_DATASAFED_CONF" POLL_INTERVAL=1
  export DP_BACKUP_INFO_FILE="${OUT}/${tag}.info"
  for kv in "$@"; do
    export "${kv?}"
  done
  export DP_BACKUP_BASE_PATH="${DP_BACKUP_BASE_PATH:-/e2e/${POLICY_PREFIX}/${DP_BACKUP_NAME}}"
  [[ $script == backup.sh ]] || unset DP_BACKUP_INFO_FILE
}

# jq_true JQ_FILTER FILE: the filter holds for FILE (no output).
jq_true() {
  jq -e "$1" "$2" >/dev/null
}

# log_has TAG EXTENDED_REGEX
log_has() {
  grep -E -q -- "$2" "${OUT}/$1.log" 2>/dev/null
}

log_lacks() {
  ! grep -E -q -- "$2" "${OUT}/$1.log"
}

# log_before TAG FIRST THEN: TAG's log has a line matching FIRST before any matching THEN.
log_before() {
  local first later
  first=$(grep -n -E -m1 -- "$2" "${OUT}/$1.log" | cut -d: -f1)
  later=$(grep -n -E -m1 -- "$3" "${OUT}/$1.log" | cut -d: -f1)
  [[ -n $first && -n $later ]] && ((first < later))
}

# repo_absent BACKUP: the job left no repository registered.
repo_absent() {
  # A restore's repository is its attempt's own: kb-<backup>[-<Restore>]-r<attempt>.
  es GET /_snapshot | jq -e --arg b "kb-$1" '
      keys | all(. != $b and ((startswith($b + "-") and (.[($b | length) + 1:] | test("^([0-9a-f]{8}-)?r[0-9a-f]{6}$"))) | not))' >/dev/null
}

failed_with_exit_marker() {
  [[ -e ${OUT}/$1.info.exit && ! -e ${OUT}/$1.info ]]
}

# backup_info_valid TAG BACKUP: the fragment KubeBlocks merges, with the expected shape.
backup_info_valid() {
  jq -e --arg name "$2" '
      def rfc3339: type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$");
      (keys == ["extras", "timeRange", "totalSize"])
      and (.totalSize | type == "string" and test("^[0-9]+$") and (tonumber > 0))
      and (.timeRange.start | rfc3339) and (.timeRange.end | rfc3339)
      and (.timeRange.start <= .timeRange.end)
      and (.extras | type == "array" and length == 1)
      and ([.extras[0][] | type] | all(. == "string"))
      and .extras[0].snapshot == $name
      and (.extras[0].uuid | length > 0)
      and (.extras[0].indices | tonumber >= 1)
      and (.extras[0].version | test("^[0-9]+\\.[0-9]+"))' "${OUT}/$1.info" >/dev/null
}

# bucket_has_snapshot BACKUP: every file of the repository, shard data included, is under
# the Backup's own path (nothing elsewhere in the bucket names the Backup).
bucket_has_snapshot() {
  local root="${E2E_S3_DATA_DIR}/${E2E_BUCKET}" dir="e2e/${POLICY_PREFIX}/$1"
  compgen -G "${root}/${dir}/index-*" >/dev/null || return 1
  [[ $(find "${root}/${dir}/indices" -mindepth 3 -type f -name '__*' | wc -l) -gt 0 ]] || return 1
  [[ -z $(find "$root" -path "*/$1/*" -type f ! -path "${root}/${dir}/*" -print -quit) ]]
}

# addr_re N: node N's address as an extended regex.
addr_re() {
  local a
  a=$(e2e_node_addr "$1")
  printf '%s' "${a//./\\.}"
}

# agent_keystore_names N: the setting names in node N's keystore, from its agent.
agent_keystore_names() {
  curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 30 --config "$CURL_AUTH" \
    --url "http://$(e2e_node_addr "$1"):${E2E_AGENT_PORT}/keystore" | jq -r '.settings[]?'
}

# no_client_left CLIENT: no node's keystore holds a setting of CLIENT.
no_client_left() {
  local n
  for n in $(seq 1 "$E2E_NODE_COUNT"); do
    ! agent_keystore_names "$n" | grep -q "^s3\.client\.$1\." || return 1
  done
}

# client_still_there CLIENT: some node's keystore still holds a setting of CLIENT.
client_still_there() {
  ! no_client_left "$1"
}

# job_client TAG: the S3 client a job's log names.
job_client() {
  grep -o 'S3 client kb_[a-z0-9_-]*' "${OUT}/$1.log" | head -n1 | cut -d' ' -f3
}

# kill_tree PID: SIGKILL for PID and every process under it, as a pod's end after its grace
# period (or a lost node) is: no exit trap runs, and no call of the job's is left in flight.
kill_tree() {
  local pid=$1 child
  kill -STOP "$pid" 2>/dev/null
  for child in $(ps -o pid= --ppid "$pid"); do
    kill_tree "$child"
  done
  kill -KILL "$pid" 2>/dev/null
}

# restore_pod RESTORE_UID8 BACKUP: the name KubeBlocks gives a restore Job's pod (its HOSTNAME),
# which tells the job the Restore it serves.
restore_pod() {
  printf 'restore-post-ready-%s-%s-0-0-x7k2p' "$1" "$2"
}

# attempt_repo TAG: the restore repository a job's log names.
attempt_repo() {
  grep -oE 'repository kb-[a-z0-9.-]+-r[0-9a-f]{6}' "${OUT}/$1.log" | head -n1 | cut -d' ' -f2
}

# agent_pid N: the pid cluster.sh recorded for agent N, if that process still runs.
agent_pid() {
  local file="${E2E_WORK}/run/agent-$1.pid" pid marker
  { read -r pid && read -r marker; } <"$file" || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
  printf '%s' "$pid"
}

# --- a declared test double -----------------------------------------------------------

# A stand-in for one agent, for the faults a real agent does not show on demand (an answer of
# 500 to a write, a steady 503, its node refusing the reload of a password-protected keystore):
# a tiny python http.server on the agent's address and port. It logs each request's method
# and path (no header, no body) to STANDIN_LOG.
write_standin() {
  cat >"${OUT}/agent_standin.py" <<'PY'
import http.server, json, sys, time

mode, addr, port, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

class StandIn(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b"{}"
        with open(log, "a") as f:
            f.write(f"{self.command} {self.path}\n")
        route = self.path.split("?")[0]
        if mode == "busy":
            return self.answer(503, {"error": {"code": "TOO_MANY_CONNECTIONS", "message": "stand-in: busy"}})
        if route == "/ready":
            return self.answer(200, {"status": "ready"})
        if self.command == "GET" and route == "/keystore":
            return self.answer(200, {"keystore": "/stand-in", "exists": True, "has_password": mode == "reload-fails",
                                     "settings": [], "sha256": "0"})
        if self.command == "POST" and route == "/keystore" and mode == "reload-fails":
            client = json.loads(body).get("client", "default")
            return self.answer(502, {"keystore": "/stand-in", "sha256": "0", "changed": True,
                                     "settings": [f"s3.client.{client}.access_key", f"s3.client.{client}.secret_key"],
                                     "reload": {"node": "node-3", "reloaded": False,
                                                "failure": "stand-in: the keystore password is wrong"},
                                     "error": {"code": "NODE_RELOAD_FAILED",
                                               "message": "the keystore was saved, but the reload failed"}})
        if self.command == "POST" and route == "/keystore" and mode == "slow-write":
            time.sleep(60)  # longer than the job's grace period
            return self.answer(500, {"error": {"code": "KEYSTORE_LOCK_TIMEOUT", "message": "stand-in: slow"}})
        if self.command == "POST" and route == "/keystore":
            return self.answer(500, {"error": {"code": "KEYSTORE_WRITE_FAILED", "message": "stand-in: disk full"}})
        if self.command == "DELETE" and route == "/keystore":
            return self.answer(200, {"keystore": "/stand-in", "settings": [], "changed": False})
        return self.answer(404, {"error": {"code": "NOT_FOUND", "message": "stand-in"}})

    do_GET = do_POST = do_DELETE = handle_any

    def log_message(self, *args):
        pass

# Threads: a slow write must not hold back the DELETE that follows it.
http.server.ThreadingHTTPServer((addr, port), StandIn).serve_forever()
PY
}

# with_standin N MODE FUNCTION: replaces agent N by the stand-in (MODE 'fail-write', 'busy',
# 'slow-write' or 'reload-fails') while FUNCTION runs, then starts the real agent again as cluster.sh does.
with_standin() {
  local n=$1 mode=$2 fn=$3 pid waited=0 addr
  addr=$(e2e_node_addr "$n")
  pid=$(agent_pid "$n") || {
    ERRORS+=("agent-${n} is not running")
    return 0
  }
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null && ((waited < 40)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  STANDIN_LOG="${OUT}/standin-${mode}.log"
  : >"$STANDIN_LOG"
  python3 "${OUT}/agent_standin.py" "$mode" "$addr" "$E2E_AGENT_PORT" "$STANDIN_LOG" &
  STANDIN_PID=$!
  waited=0
  until curl --silent --output /dev/null --connect-timeout 1 --max-time 2 "http://${addr}:${E2E_AGENT_PORT}/ready" || ((waited > 40)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  : >"$STANDIN_LOG"
  "$fn"
  kill "$STANDIN_PID" 2>/dev/null
  wait "$STANDIN_PID" 2>/dev/null
  STANDIN_PID=''
  restart_agent "$n"
}

# restart_agent N: agent N as cluster.sh starts it, with its pid file updated (so that
# cluster.sh stop ends it).
restart_agent() {
  local n=$1 dir addr waited=0
  dir=$(e2e_node_dir "$n")
  addr=$(e2e_node_addr "$n")
  ELASTIC_USERNAME=$(cred ELASTIC_USERNAME "$E2E_AGENT_CREDENTIALS") \
    ELASTIC_PASSWORD=$(cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS") \
    setsid "${E2E_AS_ESNODE[@]}" "$AGENT_BIN" serve --listen-address "$addr" --port "$E2E_AGENT_PORT" \
    --config-dir "$dir/config" --engine opensearch --node-address "$addr:$E2E_HTTP_PORT" \
    </dev/null >>"$dir/agent.log" 2>&1 &
  printf '%s\n%s\n' "$!" "--config-dir $dir/config" >"${E2E_WORK}/run/agent-${n}.pid"
  until curl --silent --fail --output /dev/null --connect-timeout 1 --max-time 2 "http://${addr}:${E2E_AGENT_PORT}/ready" || ((waited > 80)); do
    sleep 0.25
    waited=$((waited + 1))
  done
}

standin_fails_the_write() {
  local name="t-e500-${RUN_ID}"
  run_job e500-backup backup.sh "DP_BACKUP_NAME=${name}"
  check "backup fails" test "$JOB_RC" -ne 0
  check "the node's 500 named with the agent's code and message" \
    log_has e500-backup "ERROR: keystore update failed on 1 of 3 node\\(s\\): node-3 \\($(addr_re 3):8080\\): POST /keystore: agent answered 500 KEYSTORE_WRITE_FAILED: stand-in: disk full"
  check "a 500 is not retried" test "$(grep -c '^POST /keystore' "$STANDIN_LOG")" -eq 1
  check "nothing registered" log_lacks e500-backup "registered and verified"
  check "the two real nodes got the keys, and lost them again at the end" no_client_left "$(job_client e500-backup)"
  check "the removal asked the failed node too" grep -q "^DELETE /keystore?client=$(job_client e500-backup)&reload=true$" "$STANDIN_LOG"
  check ".exit touched, no backup info" failed_with_exit_marker e500-backup
}

standin_is_busy() {
  local name="t-busy-${RUN_ID}"
  run_job busy-backup backup.sh "DP_BACKUP_NAME=${name}" AGENT_ATTEMPTS=3
  check "backup fails" test "$JOB_RC" -ne 0
  check "the busy node named" log_has busy-backup "node node-1 \\($(addr_re 1):8080\\): FAILED: agent is not ready \\(GET /ready answered 503 TOO_MANY_CONNECTIONS\\): stand-in: busy"
  check "a 503 is retried, AGENT_ATTEMPTS times" test "$(grep -c '^GET /ready' "$STANDIN_LOG")" -eq 3
  check "nothing written anywhere" log_lacks busy-backup "ok, keystore"
}

standin_writes_slowly() {
  # The pod is deleted while one node's write hangs: the clean-up (the keys off the other
  # nodes) must end within the grace period, not after the hung call's 30 s.
  local name="t-grace-${RUN_ID}" waited=0 t0 took rc=0
  start_job grace-backup backup.sh "DP_BACKUP_NAME=${name}" EXIT_GRACE=8 EXIT_CALL_TIMEOUT=3
  until grep -q '^POST /keystore' "$STANDIN_LOG" || ((waited > 120)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  sleep 1 # the two real nodes' writes are done by then
  t0=$(date +%s%N)
  kill -TERM "$JOB_PID"
  wait "$JOB_PID" || rc=$?
  took=$((($(date +%s%N) - t0) / 1000000))
  say "     backup.sh (grace-backup) exit ${rc} ${took} ms after SIGTERM; log ${OUT}/grace-backup.log"
  check "the slow node was being written when the signal came" grep -q '^POST /keystore' "$STANDIN_LOG"
  check "the job exits 143" test "$rc" -eq 143
  check "within EXIT_GRACE (8 s; took ${took} ms)" test "$took" -lt 9000
  check "says how long the clean-up may take" log_has grace-backup "stopped by a signal: the clean-up ends within 8s \\(EXIT_GRACE\\), each of its calls within 3s"
  check "names the agent whose write was cut off" \
    log_has grace-backup "agent calls still running were cut off to end within the grace period \\(agents at $(addr_re 3)\\)"
  check "the removal asked the slow node too" grep -q "^DELETE /keystore?client=$(job_client grace-backup)&reload=true$" "$STANDIN_LOG"
  check "the real nodes lost the client again" no_client_left "$(job_client grace-backup)"
  check ".exit touched, no backup info" failed_with_exit_marker grace-backup
}

test_sigterm_during_a_normal_exit_is_bounded() {
  # The pod is deleted just as the job ends well, while one agent hangs: the rest of the
  # clean-up ends within the grace period (the job's work stands: exit 0).
  local name="t-lateterm-${RUN_ID}" agent t0 took rc=0
  agent=$(agent_pid 3) || {
    ERRORS+=("agent-3 is not running")
    return 0
  }
  start_job lateterm-backup backup.sh "DP_BACKUP_NAME=${name}" EXIT_GRACE=8 EXIT_CALL_TIMEOUT=3
  wait_for_job_line lateterm-backup "backup ${name} done in" 1200
  kill -STOP "$agent"
  sleep 1
  t0=$(date +%s%N)
  kill -TERM "$JOB_PID"
  wait "$JOB_PID" || rc=$?
  took=$((($(date +%s%N) - t0) / 1000000))
  kill -CONT "$agent"
  say "     backup.sh (lateterm-backup) exit ${rc} ${took} ms after SIGTERM; log ${OUT}/lateterm-backup.log"
  check "the job's work stands: exit 0" test "$rc" -eq 0
  check "backup info written" backup_info_valid lateterm-backup "$name"
  check "within EXIT_GRACE (8 s; took ${took} ms)" test "$took" -lt 9000
  check "says the clean-up is bounded from the signal on" log_has lateterm-backup "stopped by a signal: the clean-up ends within 8s \\(EXIT_GRACE\\)"
  check "no shell notice of the calls the job stopped" log_lacks lateterm-backup "User defined signal|Terminated|Killed"
  check "names the agent whose call was cut off" \
    log_has lateterm-backup "agent calls still running were cut off to end within the grace period \\(agents at $(addr_re 3)\\)"
  # What the warning tells an operator to do on node-3.
  curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 30 --config "$CURL_AUTH" -X DELETE --output /dev/null \
    --url "http://$(e2e_node_addr 3):${E2E_AGENT_PORT}/keystore?client=$(job_client lateterm-backup)&reload=true" || true
  check "the other nodes lost the client" no_client_left "$(job_client lateterm-backup)"
}

test_group_sigterm_during_a_normal_exit_keeps_the_calls() {
  # timeout(1) and a terminal's Ctrl-C signal the job's whole process group: the calls of its
  # exit's clean-up are the job's to stop, not the signal's. Node-3's agent is held while the
  # job ends well; the call to it, in flight at the signal, ends once the agent goes on (2 s
  # later, inside EXIT_GRACE), and node-3's keys go too.
  local name="t-groupterm-${RUN_ID}" agent t0 took rc=0
  agent=$(agent_pid 3) || {
    ERRORS+=("agent-3 is not running")
    return 0
  }
  start_job_in_its_group groupterm-backup backup.sh "DP_BACKUP_NAME=${name}" EXIT_GRACE=8 EXIT_CALL_TIMEOUT=3
  # The agents' part is over once the snapshot starts: node-3's is held from then on.
  wait_for_job_line groupterm-backup "snapshot ${name} started" 1200
  kill -STOP "$agent"
  wait_for_job_line groupterm-backup "backup ${name} done in" 1200
  sleep 0.5
  t0=$(date +%s%N)
  kill -TERM -- "-${JOB_PID}"
  sleep 2
  kill -CONT "$agent"
  wait "$JOB_PID" || rc=$?
  took=$((($(date +%s%N) - t0) / 1000000))
  say "     backup.sh (groupterm-backup) exit ${rc} ${took} ms after SIGTERM to its process group; log ${OUT}/groupterm-backup.log"
  check "the job's work stands: exit 0" test "$rc" -eq 0
  check "says the clean-up is bounded from the signal on" log_has groupterm-backup "stopped by a signal: the clean-up ends within 8s \\(EXIT_GRACE\\)"
  check "the call to node-3 waited for its agent (took ${took} ms)" test "$took" -ge 2000
  check "within EXIT_GRACE" test "$took" -lt 9000
  check "no call was cut off, every removal done" log_lacks groupterm-backup "cut off|NOT removed|left on"
  check "no node holds the job's client, node-3 included" no_client_left "$(job_client groupterm-backup)"
}

test_agent_answering_500() {
  with_standin 3 fail-write standin_fails_the_write
}

test_agent_staying_busy() {
  with_standin 1 busy standin_is_busy
}

test_sigterm_during_a_hung_write_ends_within_the_grace_period() {
  with_standin 3 slow-write standin_writes_slowly
}

# --- tests ----------------------------------------------------------------------------

test_backup_then_restore() {
  local name="t-happy-${RUN_ID}" before_a before_b
  before_a=$(fingerprint t-alpha)
  before_b=$(fingerprint t-beta)
  run_job happy-backup backup.sh "DP_BACKUP_NAME=${name}"
  check "backup exits 0" test "$JOB_RC" -eq 0
  local n
  for n in 1 2 3; do
    check "one ok line for node-${n} and its agent" log_has happy-backup "node node-${n} \\($(addr_re "$n"):8080\\): ok"
    check "reload ok on node-${n}" log_has happy-backup "reload node-${n}: ok"
  done
  check "repository registered at the Backup's path" \
    log_has happy-backup "repository kb-${name} registered and verified \\(read-write\\)"
  check "base_path is the Backup's own path" log_has happy-backup "base_path e2e/${POLICY_PREFIX}/${name},"
  check "every node verified the repository" \
    log_has happy-backup "repository kb-${name} verified by all 3 master-eligible and data nodes"
  check "snapshot followed to SUCCESS" log_has happy-backup "snapshot ${name}: SUCCESS"
  check "backup info has totalSize, timeRange and string extras" backup_info_valid happy-backup "$name"
  check "no .exit marker" test ! -e "${OUT}/happy-backup.info.exit"
  check "repository unregistered after the job" repo_absent "$name"
  check "all snapshot files, shard data included, under the Backup's path" bucket_has_snapshot "$name"
  check "the job's S3 client removed from every keystore" log_has happy-backup "keystore: client kb_[a-z0-9_]+ removed from all 3 nodes \\(3 held it\\)"
  check "and no keystore holds it any more" no_client_left "$(job_client happy-backup)"

  es DELETE /t-alpha,t-beta >/dev/null
  run_job happy-restore restore.sh "DP_BACKUP_NAME=${name}"
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "restore registers the repository read-only" \
    log_has happy-restore "repository kb-${name}-r[0-9a-f]{6} registered and verified \\(read-only\\)"
  check "restore checks the snapshot first" log_has happy-restore "snapshot ${name}: SUCCESS, "
  check "restore waits for the primaries" log_has happy-restore "every restored primary shard is active"
  check "t-alpha back with the same documents" test "$(fingerprint t-alpha)" == "$before_a"
  check "t-beta back with the same documents" test "$(fingerprint t-beta)" == "$before_b"
  check "restore leaves no repository registered" repo_absent "$name"
}

writes_then_is_killed() {
  # Agent 3 (the stand-in) holds its write; the real agents 1 and 2 have written when the job
  # is killed, before any repository is registered.
  local waited=0
  start_job keykill-first backup.sh "DP_BACKUP_NAME=${KEYKILL_NAME}"
  until grep -q '^POST /keystore' "$STANDIN_LOG" || ((waited > 120)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  sleep 1
  kill_tree "$JOB_PID"
  wait "$JOB_PID" 2>/dev/null
}

test_killed_in_the_keystore_step_keys_collected_by_the_rerun() {
  # SIGKILL after the keys reached two nodes and before a repository exists: the rerun cannot
  # find that attempt by its repository, and writes a client of its own; at its end it
  # removes the keys of every client of this Backup that no repository uses.
  KEYKILL_NAME="t-keykill-${RUN_ID}"
  with_standin 3 slow-write writes_then_is_killed
  local first
  first=$(job_client keykill-first)
  check "the killed attempt had written its keys on the real nodes" client_still_there "$first"
  check "and registered no repository" repo_absent "$KEYKILL_NAME"
  run_job keykill-rerun backup.sh "DP_BACKUP_NAME=${KEYKILL_NAME}"
  check "the rerun exits 0" test "$JOB_RC" -eq 0
  check "to SUCCESS" log_has keykill-rerun "snapshot ${KEYKILL_NAME}: SUCCESS after [0-9]+s"
  check "with a client of its own" test "$(job_client keykill-rerun)" != "$first"
  local n
  for n in 1 2; do
    check "it removed the killed attempt's keys from node-${n}" \
      log_has keykill-rerun "node node-${n} \\($(addr_re "$n"):8080\\): keys of earlier attempts removed: client\\(s\\) ${first}$"
  done
  check "node-3 (its write never landed) had none to remove" log_lacks keykill-rerun "node node-3 .*keys of earlier attempts"
  check "no keystore holds the killed attempt's client" no_client_left "$first"
  check "nor the rerun's" no_client_left "$(job_client keykill-rerun)"
  check "the repository unregistered" repo_absent "$KEYKILL_NAME"
}

test_killed_restore_leftovers_collected_by_its_next_attempt() {
  # A restore attempt killed while the engine restores from its own repository: its next
  # attempt (the same Restore: the same pod name but for the suffix) leaves that repository
  # and its keys while the engine still uses them, and a later one removes both. Another
  # Restore's repository and keys of the same Backup are never touched.
  local name="t-happy-${RUN_ID}" pod other_client other_repo="kb-t-happy-${RUN_ID}-ffffffff-rffffff" waited=0 n
  pod=$(restore_pod 0a1b2c3d "$name")
  start_job rkill-first restore.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=${pod}" \
    'RESTORE_INDICES=t-alpha' 'RESTORE_RENAME_PATTERN=t-alpha' 'RESTORE_RENAME_REPLACEMENT=t-rkill-a' \
    MAX_RESTORE_BYTES_PER_SEC=512b
  while ! log_has rkill-first "restore of ${name} started" && kill -0 "$JOB_PID" 2>/dev/null && ((waited < 480)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  kill_tree "$JOB_PID"
  wait "$JOB_PID" 2>/dev/null
  local first_repo first_client
  first_repo=$(attempt_repo rkill-first)
  first_client=$(job_client rkill-first)
  check "the killed attempt had started its restore" log_has rkill-first "restore of ${name} started"
  check "and left its repository" test "$(es_status GET "/_snapshot/${first_repo}")" == 200
  # Another Restore of the same Backup, as its job would have left things.
  # shellcheck source=../../addons/elasticsearch/dataprotection/common.sh disable=SC1091
  other_client=$(source "${JOBS_DIR}/common.sh" && client_name e2e "$name" ffffffff)_ffffff
  es GET "/_snapshot/${first_repo}" | jq -c --arg r "$first_repo" --arg c "$other_client" '.[$r] | .settings.client = $c' >"${OUT}/other-repo.json"
  es PUT "/_snapshot/${other_repo}?verify=false" --data-binary "@${OUT}/other-repo.json" >"${OUT}/other-repo.put" ||
    ERRORS+=("registering another Restore's repository failed: $(cat "${OUT}/other-repo.put")")
  for n in $(seq 1 "$E2E_NODE_COUNT"); do
    jq -n --arg c "$other_client" '{client: $c, access_key_id: "AKIAOTHERRESTORE", secret_access_key: "other-restore-secret"}' |
      curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 30 --config "$CURL_AUTH" \
        -H 'Content-Type: application/json' --data-binary @- --output /dev/null \
        --url "http://$(e2e_node_addr "$n"):${E2E_AGENT_PORT}/keystore"
  done
  # What a delete mode's trial leaves when its attempt is killed during it: an index under the
  # trial prefix of this Restore, restoring from that attempt's repository. The job's own
  # trial deletes its indices within milliseconds, too soon to kill it there reliably, so the
  # test asks the engine for that restore itself, as the trial does (a declared stand-in for
  # the kill's timing; the engine, the repository and the names are the real ones).
  local scope_hash trial
  scope_hash=${first_client%_*}
  scope_hash=${scope_hash: -8}
  trial="kb-trial-${scope_hash}ffffff-t-beta"
  es POST "/_snapshot/${first_repo}/${name}/_restore" \
    --data-binary "$(jq -cn --arg t "$trial" '{indices: "t-beta", rename_pattern: "^", rename_replacement: ($t | rtrimstr("t-beta")), include_aliases: false, include_global_state: false}')" >/dev/null ||
    ERRORS+=("the stand-in trial restore was refused")
  check "the stand-in trial's index exists" test "$(es_status GET "/${trial}")" == 200
  run_job rkill-second restore.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=${pod}" TRIAL_LEFT_WAIT=2 \
    'RESTORE_INDICES=t-beta' 'RESTORE_RENAME_PATTERN=t-beta' 'RESTORE_RENAME_REPLACEMENT=t-rkill-b'
  check "the next attempt exits 0" test "$JOB_RC" -eq 0
  check "it keeps the killed attempt's repository while the engine restores from it" \
    log_has rkill-second "repository ${first_repo}, left by an earlier attempt, is kept: shards of t-rkill-a are still being restored from it"
  check "and its keys" client_still_there "$first_client"
  check "it deletes what the killed attempt's trial left, once it has stood for TRIAL_LEFT_WAIT" \
    log_has rkill-second "earlier attempts: trial indices of this Restore found \\(${trial}\\): those still there in 2s are deleted"
  check "which is gone" test "$(es_status GET "/${trial}")" == 404
  # The Restore's options are the same at every attempt: one more with the killed one's.
  run_job rkill-same restore.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=${pod}" \
    'RESTORE_INDICES=t-alpha' 'RESTORE_RENAME_PATTERN=t-alpha' 'RESTORE_RENAME_REPLACEMENT=t-rkill-a'
  check "an attempt with the same options fails on the index the killed one is restoring" test "$JOB_RC" -ne 0
  check "saying that an earlier restore of this Backup still restores it" \
    log_has rkill-same "renamed name\\(s\\) already exist in the cluster: t-rkill-a \\(open index\\).*Still being restored from another restore repository of this Backup \\(an earlier attempt of this Restore whose job stopped, or another Restore\\): t-rkill-a \\(from ${first_repo}\\)"
  # The killed attempt's restore is given up (deleting the index being restored ends it).
  es DELETE /t-rkill-a >/dev/null
  run_job rkill-third restore.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=${pod}" \
    'RESTORE_INDICES=t-beta' 'RESTORE_RENAME_PATTERN=t-beta' 'RESTORE_RENAME_REPLACEMENT=t-rkill-c'
  check "a later attempt exits 0" test "$JOB_RC" -eq 0
  check "it unregisters the killed attempt's repository" \
    log_has rkill-third "repository ${first_repo}, left by an earlier attempt, unregistered"
  check "which is gone" test "$(es_status GET "/_snapshot/${first_repo}")" == 404
  check "and its keys, from every node" no_client_left "$first_client"
  check "no attempt's own repository or keys left" no_client_left "$(job_client rkill-third)"
  check "another Restore's repository is untouched" test "$(es_status GET "/_snapshot/${other_repo}")" == 200
  check "and its keys too" test "$(agent_keystore_names 1 | grep -c "^s3\\.client\\.${other_client}\\.")" -eq 2
  es DELETE "/_snapshot/${other_repo}" >/dev/null
  for n in $(seq 1 "$E2E_NODE_COUNT"); do
    curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 30 --config "$CURL_AUTH" -X DELETE --output /dev/null \
      --url "http://$(e2e_node_addr "$n"):${E2E_AGENT_PORT}/keystore?client=${other_client}&reload=true"
  done
  es DELETE /t-rkill-b,t-rkill-c >/dev/null
}

test_killed_restore_paused_ism_named_by_its_next_attempt() {
  # A restore attempt killed after it paused ISM for its restore cannot put it back. Its next
  # attempt (the same Restore) finds ISM off already: it cannot tell whether that attempt or
  # someone else turned it off, nor to what it was before, so it changes nothing and says so.
  # ISM's plugin is not published where this machine can get it: a TEST DOUBLE
  # (tests/e2e/lib/features_double.py) in front of node-1 stands in for its switch, everything
  # else reaches the real cluster.
  local name="t-happy-${RUN_ID}" pod port=9209 double waited=0 first_repo url
  url="http://$(e2e_host_port "${E2E_NODE_ADDRS[0]}" "$port")"
  /usr/bin/python3 "${HERE}/lib/features_double.py" "${E2E_NODE_ADDRS[0]}" "$port" "$E2E_ES_URL" >"${OUT}/ism-double.log" 2>&1 &
  double=$!
  until curl --silent --fail --max-time 2 -X PUT --data-binary '{"ism": "true"}' --output /dev/null "${url}/_double/state" ||
    ((waited > 50)); do
    sleep 0.2
    waited=$((waited + 1))
  done
  waited=0
  pod=$(restore_pod 0a1b2c3c "$name")
  start_job ism-first restore.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=${pod}" "DP_DB_PORT=${port}" \
    'RESTORE_INDICES=t-alpha' 'RESTORE_RENAME_PATTERN=t-alpha' 'RESTORE_RENAME_REPLACEMENT=t-ism-a' \
    MAX_RESTORE_BYTES_PER_SEC=512b
  while ! log_has ism-first "restore of ${name} started" && kill -0 "$JOB_PID" 2>/dev/null && ((waited < 480)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  kill_tree "$JOB_PID"
  wait "$JOB_PID" 2>/dev/null
  first_repo=$(attempt_repo ism-first)
  check "the killed attempt paused ISM" log_has ism-first "ISM: was persistent plugins.index_state_management.enabled=\"true\", set false for the restore"
  check "ISM is off" test "$(curl --silent --max-time 5 "${url}/_double/state" | jq -r .ism)" == false
  # A retry with the same options stops at the conflict, before its own pause step: it names
  # ISM all the same, from a look at the end.
  run_job ism-conflict restore.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=${pod}" "DP_DB_PORT=${port}" \
    'RESTORE_INDICES=t-alpha' 'RESTORE_RENAME_PATTERN=t-alpha' 'RESTORE_RENAME_REPLACEMENT=t-ism-a'
  check "a retry with the same options fails on the index still being restored" test "$JOB_RC" -ne 0
  check "it names ISM as maybe paused by the killed attempt" \
    log_has ism-conflict "WARNING: ISM paused \\(this attempt stopped before its pause step, and paused nothing\\), and an earlier attempt of this Restore left its repository \\(${first_repo}\\)"
  check "and changes nothing of it" test "$(curl --silent --max-time 5 "${url}/_double/state" | jq -r .ism)" == false
  # The killed attempt's restore is given up (its index deleted), so its repository is free.
  es DELETE /t-ism-a >/dev/null
  run_job ism-second restore.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=${pod}" "DP_DB_PORT=${port}" \
    'RESTORE_INDICES=t-beta' 'RESTORE_RENAME_PATTERN=t-beta' 'RESTORE_RENAME_REPLACEMENT=t-ism-b'
  check "the next attempt exits 0" test "$JOB_RC" -eq 0
  check "it found ISM off and left it so" log_has ism-second "ISM: disabled already"
  check "it collects the killed attempt's repository" log_has ism-second "repository ${first_repo}, left by an earlier attempt, unregistered"
  check "and names ISM as maybe paused by that attempt, to put back by hand" \
    log_has ism-second "WARNING: ISM paused already when this attempt began, and an earlier attempt of this Restore left its repository \\(${first_repo}\\): if that attempt was stopped outright after it paused them for its restore, nothing puts them back"
  check "ISM is left as it was found" test "$(curl --silent --max-time 5 "${url}/_double/state" | jq -r .ism)" == false
  kill "$double" 2>/dev/null
  wait "$double" 2>/dev/null
  es DELETE /t-ism-b >/dev/null
}

test_snapshot_in_progress_is_followed() {
  local name="t-slow-${RUN_ID}"
  loaded t-big 8000 3 12 || return 0
  run_job slow-backup backup.sh "DP_BACKUP_NAME=${name}" MAX_SNAPSHOT_BYTES_PER_SEC=256kb PROGRESS_INTERVAL=1
  check "backup exits 0" test "$JOB_RC" -eq 0
  check "the running snapshot was reported at least twice" \
    test "$(grep -c "snapshot ${name}: IN_PROGRESS" "${OUT}/slow-backup.log")" -ge 2
  check "each progress line counts shards and bytes" \
    log_has slow-backup "snapshot ${name}: IN_PROGRESS, [0-9]+/[0-9]+ shards done, [0-9]+(\\.[0-9])? of [0-9]+(\\.[0-9])? MiB \\([0-9]+s\\)"
  check "then followed to SUCCESS" log_has slow-backup "snapshot ${name}: SUCCESS after [0-9]+s"
  check "backup info written" backup_info_valid slow-backup "$name"
  check "the snapshot took several seconds" \
    jq_true '((.timeRange.end | fromdateiso8601) - (.timeRange.start | fromdateiso8601)) >= 3' "${OUT}/slow-backup.info"
  es DELETE /t-big >/dev/null
}

test_backup_deadline_aborts_the_snapshot() {
  # BACKUP_TIMEOUT reached while the snapshot runs: the job aborts it and fails saying so;
  # nothing of the job is left on the cluster, and the data is untouched.
  local name="t-deadline-${RUN_ID}" before
  loaded t-deadline 3000 2 8 || return 0
  before=$(fingerprint t-deadline)
  run_job deadline-backup backup.sh "DP_BACKUP_NAME=${name}" BACKUP_INDICES=t-deadline \
    MAX_SNAPSHOT_BYTES_PER_SEC=8kb BACKUP_TIMEOUT=3
  check "backup fails" test "$JOB_RC" -ne 0
  check "the snapshot had started" log_has deadline-backup "snapshot ${name} started"
  check "the deadline named" \
    log_has deadline-backup "ERROR: snapshot ${name} still running after the deadline of 3s \\(BACKUP_TIMEOUT\\)"
  check "the abort announced, then done, before the job ended" \
    log_before deadline-backup "snapshot ${name}: the deadline of 3s \\(BACKUP_TIMEOUT\\) is reached: aborting it" "snapshot ${name} aborted"
  check "(the abort came before the failure)" log_before deadline-backup "snapshot ${name} aborted" "ERROR: snapshot ${name} still running"
  check ".exit touched, no backup info" failed_with_exit_marker deadline-backup
  check "repository not left registered" repo_absent "$name"
  check "the job's client removed from every keystore" no_client_left "$(job_client deadline-backup)"
  check "the index is untouched" test "$(fingerprint t-deadline)" == "$before"
  # Again, the abort given 2 s (a throttled abort takes longer): the snapshot still needs its
  # repository and client, so both stay, and the log says how to remove them.
  name="t-deadline2-${RUN_ID}"
  run_job deadline-keep backup.sh "DP_BACKUP_NAME=${name}" BACKUP_INDICES=t-deadline \
    MAX_SNAPSHOT_BYTES_PER_SEC=8kb BACKUP_TIMEOUT=3 ES_VERIFY_TIMEOUT=2
  check "backup fails" test "$JOB_RC" -ne 0
  check ".exit touched, no backup info" failed_with_exit_marker deadline-keep
  local client
  client=$(job_client deadline-keep)
  if log_has deadline-keep "WARNING: could not abort snapshot ${name}"; then
    check "the repository and client are left to the engine, saying how to remove them" \
      log_has deadline-keep "both are left in place so that it can finish; once it has ended, unregister the repository \\(DELETE _snapshot/kb-${name}"
    check "the repository is still registered" test "$(es_status GET "/_snapshot/kb-${name}")" == 200
    check "the client is still in the keystores" client_still_there "$client"
    remove_what_the_engine_kept "$name" "$client"
  else
    check "(the abort ended within 2 s) aborted" log_has deadline-keep "snapshot ${name} aborted"
    check "and the client removed from every keystore" no_client_left "$client"
  fi
  es DELETE /t-deadline >/dev/null
}

# remove_what_the_engine_kept BACKUP CLIENT: what a warning about a kept repository tells an
# operator to do, once the snapshot's abort has ended.
remove_what_the_engine_kept() {
  local n
  es DELETE "/_snapshot/kb-$1/$1" --max-time 300 >/dev/null 2>&1 || true
  es DELETE "/_snapshot/kb-$1" >/dev/null 2>&1 || true
  for n in $(seq 1 "$E2E_NODE_COUNT"); do
    curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 30 --config "$CURL_AUTH" -X DELETE \
      --url "http://$(e2e_node_addr "$n"):${E2E_AGENT_PORT}/keystore?client=$2&reload=true" >/dev/null || true
  done
}

test_wrong_secret_fails_at_registration() {
  local name="t-wrongkey-${RUN_ID}" conf="${PRIVATE}/wrong-secret.conf"
  WRONG_SECRET="wrong$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    awk '/^[[:space:]]*secret_access_key[[:space:]]*=/ { print "secret_access_key = " ENVIRON["WRONG_SECRET"]; next } { print }' \
    "$E2E_DATASAFED_CONF" >"$conf"
  run_job wrongkey-backup backup.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}"
  check "backup fails" test "$JOB_RC" -ne 0
  check "credentials still reached every node" test "$(grep -c ': ok, keystore ' "${OUT}/wrongkey-backup.log")" -eq 3
  check "it fails at repository registration" log_has wrongkey-backup "ERROR: registration of repository kb-${name}"
  check "and says why (the S3 signature is refused)" log_has wrongkey-backup "[Ss]ignature|SignatureDoesNotMatch|403"
  check "no snapshot started" log_lacks wrongkey-backup "snapshot ${name} started"
  check ".exit touched, no backup info" failed_with_exit_marker wrongkey-backup
  check "repository not left registered" repo_absent "$name"
  check "the job's client removed from every keystore after the failure" no_client_left "$(job_client wrongkey-backup)"
}

test_restore_refuses_missing_snapshot() {
  local name="t-missing-${RUN_ID}" before after
  before=$(cluster_state_summary)
  run_job missing-restore restore.sh "DP_BACKUP_NAME=${name}"
  after=$(cluster_state_summary)
  check "restore fails" test "$JOB_RC" -ne 0
  check "says the snapshot does not exist" log_has missing-restore "snapshot ${name} does not exist in bucket ${E2E_BUCKET} at e2e/${POLICY_PREFIX}/${name}: nothing restored"
  check "no restore started" log_lacks missing-restore "restore of ${name} started"
  check "indices and repositories unchanged" test "$before" == "$after"
  check "repository not left registered" repo_absent "$name"
}

test_two_jobs_keep_their_own_credentials() {
  local good="t-par-good-${RUN_ID}" bad="t-par-bad-${RUN_ID}" conf="${PRIVATE}/wrong-secret.conf"
  run_job par-good backup.sh "DP_BACKUP_NAME=${good}" &
  local pid_good=$!
  run_job par-bad backup.sh "DP_BACKUP_NAME=${bad}" "DATASAFED_CONF=${conf}" &
  local pid_bad=$!
  wait "$pid_good" "$pid_bad"
  check "the job with the right key succeeds while a wrong key is written beside it" \
    log_has par-good "backup ${good} done in [0-9]+s"
  check "its backup info is written" backup_info_valid par-good "$good"
  check "the job with the wrong key fails" log_has par-bad "ERROR: registration of repository kb-${bad}"
  check "and touches its own .exit" failed_with_exit_marker par-bad
  local c_good c_bad
  c_good=$(grep -o 'S3 client kb_[a-z0-9_-]*' "${OUT}/par-good.log" | head -n1)
  c_bad=$(grep -o 'S3 client kb_[a-z0-9_-]*' "${OUT}/par-bad.log" | head -n1)
  check "each job wrote its own client" test -n "$c_good" -a -n "$c_bad" -a "$c_good" != "$c_bad"
}

test_hung_agent_times_out() {
  local name="t-hung-${RUN_ID}" pid t0
  pid=$(agent_pid 3) || {
    ERRORS+=("agent-3 is not running")
    return 0
  }
  kill -STOP "$pid"
  STOPPED_PIDS+=("$pid")
  t0=$SECONDS
  run_job hung-backup backup.sh "DP_BACKUP_NAME=${name}" AGENT_TIMEOUT=3 AGENT_CONNECT_TIMEOUT=2 AGENT_NODE_DEADLINE=8
  local took=$((SECONDS - t0))
  kill -CONT "$pid"
  STOPPED_PIDS=()
  check "backup fails" test "$JOB_RC" -ne 0
  check "names the hung node and the timeout" log_has hung-backup "node node-3 \\($(addr_re 3):8080\\): FAILED: GET /ready: no answer from the agent( after [0-9] attempts)?: .*(timed out|Timeout)"
  check "nothing written on the other nodes" test "$(grep -c ': ok, keystore ' "${OUT}/hung-backup.log")" -eq 0
  check "their keystores do not hold the job's client" no_client_left "$(job_client hung-backup)"
  check "bounded by the node's deadline (${took}s)" test "$took" -lt 20
  check "nothing registered" log_lacks hung-backup "registered and verified"
  check "repository absent" repo_absent "$name"
  check ".exit touched, no backup info" failed_with_exit_marker hung-backup
}

test_stopped_agent_fails_before_registration() {
  local name="t-agentdown-${RUN_ID}" pid waited=0
  pid=$(agent_pid 2) || {
    ERRORS+=("agent-2 is not running")
    return 0
  }
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null && ((waited < 40)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  run_job agentdown-backup backup.sh "DP_BACKUP_NAME=${name}"
  check "backup fails" test "$JOB_RC" -ne 0
  check "names the node and its address" log_has agentdown-backup "node node-2 \\($(addr_re 2):8080\\): FAILED: GET /ready: no answer from the agent after 3 attempts: .*(Failed to connect|Connection refused)"
  check "the summary names the failed node" log_has agentdown-backup "ERROR: agents not ready on 1 of 3 node\\(s\\), nothing written: node-2 \\($(addr_re 2):8080\\)"
  check "nothing written on the other nodes" test "$(grep -c ': ok, keystore ' "${OUT}/agentdown-backup.log")" -eq 0
  check "no reload attempted" log_lacks agentdown-backup "reload node-"
  check "nothing registered" log_lacks agentdown-backup "registered and verified"
  check "repository absent" repo_absent "$name"
  check ".exit touched, no backup info" failed_with_exit_marker agentdown-backup
}

test_rerun_takes_the_snapshot_as_result() {
  # A retried job finds its snapshot done: success with its info, nothing taken again.
  local name="t-happy-${RUN_ID}"
  run_job rerun-backup backup.sh "DP_BACKUP_NAME=${name}"
  check "the rerun exits 0" test "$JOB_RC" -eq 0
  check "it takes the earlier snapshot as the result" \
    log_has rerun-backup "snapshot ${name} was already completed \\(SUCCESS\\) by an earlier attempt of this Backup: taking it as the result"
  check "no new snapshot started" log_lacks rerun-backup "snapshot ${name} started"
  check "its backup info is the snapshot's" backup_info_valid rerun-backup "$name"
  check "the same snapshot (uuid) as the first run" \
    test "$(jq -r '.extras[0].uuid' "${OUT}/rerun-backup.info")" == "$(jq -r '.extras[0].uuid' "${OUT}/happy-backup.info")"
}

# start_throttled_backup TAG NAME: backup NAME in the background (JOB_PID), its snapshot
# throttled to 8 kb/s: slow enough (about 40 s) to act on it while it runs, even on a loaded
# machine; returns once the job says the snapshot started (or after 60 s).
start_throttled_backup() {
  local tag=$1 name=$2 waited=0
  start_job "$tag" backup.sh "DP_BACKUP_NAME=${name}" MAX_SNAPSHOT_BYTES_PER_SEC=8kb
  while ! log_has "$tag" "snapshot ${name} started" && ((waited < 240)); do
    sleep 0.25
    waited=$((waited + 1))
  done
}

test_killed_job_rerun_follows_its_snapshot() {
  # The job is killed (SIGKILL: no clean-up at all) once its snapshot runs; the rerun takes
  # over the repository it left (same settings) and follows the same snapshot to its end.
  local name="t-killed-${RUN_ID}" before
  loaded t-killed 3000 2 8 || return 0
  before=$(fingerprint t-killed)
  start_throttled_backup killed-backup "$name"
  kill -KILL "$JOB_PID" 2>/dev/null
  wait "$JOB_PID" 2>/dev/null
  check "the first attempt had started the snapshot" log_has killed-backup "snapshot ${name} started"
  check "and left its repository registered" test "$(es_status GET "/_snapshot/kb-${name}")" == 200
  run_job killed-rerun backup.sh "DP_BACKUP_NAME=${name}" MAX_SNAPSHOT_BYTES_PER_SEC=8kb EARLIER_ATTEMPT_WAIT=2
  check "the rerun exits 0" test "$JOB_RC" -eq 0
  check "it waited for the repository to go, then took it as left by an attempt that did not end" \
    log_has killed-rerun "repository kb-${name} is still registered after 2s: left by an attempt that did not end, or kept for a snapshot or restore the engine may still run .*; this job takes it over"
  check "it takes over, as it is, the repository its first attempt left with its snapshot running" \
    log_has killed-rerun "repository kb-${name} is registered by an earlier attempt of this Backup whose snapshot still runs: taking it over as it is, on that attempt's S3 client $(job_client killed-backup)"
  check "it follows the running snapshot" log_has killed-rerun "snapshot ${name} is already running \\(an earlier attempt of this Backup\\): following it"
  check "to SUCCESS" log_has killed-rerun "snapshot ${name}: SUCCESS after [0-9]+s"
  check "no second snapshot started" log_lacks killed-rerun "snapshot ${name} started"
  check "backup info written" backup_info_valid killed-rerun "$name"
  check "the repository unregistered at the end" repo_absent "$name"
  check "the client removed from every keystore at the end" no_client_left "$(job_client killed-rerun)"
  check "and the first attempt's client too, once the repository that used it is gone" \
    no_client_left "$(job_client killed-backup)"
  check "each attempt had a client of its own" test "$(job_client killed-backup)" != "$(job_client killed-rerun)"
  restores_as_it_was killed-check "$name" t-killed "$before"
  es DELETE /t-killed >/dev/null
}

# restores_as_it_was TAG BACKUP INDEX FINGERPRINT: BACKUP's INDEX, restored beside the original
# (renamed <INDEX>-check), holds the documents FINGERPRINT describes; the copy is deleted then.
restores_as_it_was() {
  local tag=$1 backup=$2 index=$3 expected=$4
  run_job "$tag" restore.sh "DP_BACKUP_NAME=${backup}" "RESTORE_INDICES=${index}" RESTORE_CONFLICT_MODE=rename \
    "RESTORE_RENAME_PATTERN=^${index}\$" "RESTORE_RENAME_REPLACEMENT=${index}-check"
  check "the backup restores (as ${index}-check)" test "$JOB_RC" -eq 0
  check "with every document of ${index} as it was backed up" test "$(fingerprint "${index}-check")" == "$expected"
  es DELETE "/${index}-check" >/dev/null 2>&1 || true
}

test_overlapping_attempt_waits_for_the_earlier_one() {
  # The Job's next pod starts while the deleted one is still ending: the first attempt is
  # stopped by SIGTERM and held (SIGSTOP) in its clean-up while the second starts. The second
  # waits for the first one's repository to go, so that the first one's exit does not pull the
  # keys and the repository from under it, and then takes the Backup to SUCCESS.
  local name="t-overlap-${RUN_ID}" rc=0 first waited=0
  loaded t-overlap 3000 2 8 || return 0
  start_throttled_backup overlap-first "$name"
  first=$JOB_PID
  kill -TERM "$first"
  sleep 0.5
  kill -STOP "$first"
  start_job overlap-second backup.sh "DP_BACKUP_NAME=${name}" MAX_SNAPSHOT_BYTES_PER_SEC=8kb
  while ! log_has overlap-second "waiting up to 40s for it to go" && kill -0 "$JOB_PID" 2>/dev/null && ((waited < 120)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  sleep 2
  kill -CONT "$first"
  wait "$first" || rc=$?
  local second_rc=0
  wait "$JOB_PID" || second_rc=$?
  say "     backup.sh (overlap-second) exit ${second_rc}; log ${OUT}/overlap-second.log"
  check "the stopped attempt exits 143" test "$rc" -eq 143
  check "the second attempt exits 0" test "$second_rc" -eq 0
  check "it waited for the earlier attempt's repository" \
    log_has overlap-second "repository kb-${name} is registered already: an earlier attempt of this Backup may still be ending; waiting up to 40s for it to go"
  check "which went (or, its abort unfinished, stayed and was taken over)" \
    log_has overlap-second "repository kb-${name} is (gone: the earlier attempt has ended|still registered after 40s)"
  check "its keys were written after the earlier attempt had ended" \
    log_before overlap-second "repository kb-${name} is (gone|still registered)" ": ok, keystore "
  check "to SUCCESS" log_has overlap-second "snapshot ${name}: SUCCESS after [0-9]+s"
  check "backup info written" backup_info_valid overlap-second "$name"
  check "the repository unregistered at the end" repo_absent "$name"
  check "the client removed from every keystore" no_client_left "$(job_client overlap-second)"
  es DELETE /t-overlap >/dev/null
}

test_two_attempts_at_once() {
  # Two pods of the Job at once (a node cut off while its pod still runs): both attempts start
  # together and find no repository. Neither fails at the snapshot's start: the one whose
  # request comes second follows the other's snapshot; nothing of either is left after both.
  local name="t-twin-${RUN_ID}" pid_a pid_b rc_a=0 rc_b=0
  start_job twin-a backup.sh "DP_BACKUP_NAME=${name}"
  pid_a=$JOB_PID
  start_job twin-b backup.sh "DP_BACKUP_NAME=${name}"
  pid_b=$JOB_PID
  wait "$pid_a" || rc_a=$?
  wait "$pid_b" || rc_b=$?
  say "     backup.sh (twin-a) exit ${rc_a}, (twin-b) exit ${rc_b}; logs ${OUT}/twin-{a,b}.log"
  check "neither fails at the snapshot's start" log_lacks twin-a "ERROR: start of snapshot"
  check "(nor the other)" log_lacks twin-b "ERROR: start of snapshot"
  check "one snapshot was taken" test "$(cat "${OUT}/twin-a.log" "${OUT}/twin-b.log" | grep -c "snapshot ${name} started")" -eq 1
  check "an attempt reaches SUCCESS and writes the backup info" test "$rc_a" -eq 0 -o "$rc_b" -eq 0
  if ((rc_a == 0)); then
    check "its backup info is valid" backup_info_valid twin-a "$name"
  else
    check "its backup info is valid" backup_info_valid twin-b "$name"
  fi
  local tag
  for tag in twin-a twin-b; do
    # The one that ends second may find the repository gone under it (the first unregistered
    # it, while the second followed the snapshot or, its verification retried, verified the
    # repository): it says so, and claims nothing of the job's is left in the cluster.
    if ! backup_info_valid "$tag" "$name" 2>/dev/null; then
      check "${tag}, not the Backup's result, says why" \
        log_has "$tag" "repository kb-${name} was unregistered while this job (followed snapshot ${name}|verified it): another attempt of this Backup"
    fi
    check "${tag} claims nothing left to the engine" log_lacks "$tag" "left in place"
  done
  check "no repository left" repo_absent "$name"
  check "no keys of the first left" no_client_left "$(job_client twin-a)"
  check "no keys of the second left" no_client_left "$(job_client twin-b)"
}

test_recreated_backup_of_the_same_name_is_refused() {
  # A Backup deleted with its data kept and made again under its name has the same path: the
  # snapshot there is the old Backup's, which must not be reported as the new one's.
  local name="t-again-${RUN_ID}"
  run_job again-first backup.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=dp-backup-0-${name}-aaaaaaaa-x1y2z"
  check "the first Backup succeeds" test "$JOB_RC" -eq 0
  run_job again-second backup.sh "DP_BACKUP_NAME=${name}" "HOSTNAME=dp-backup-0-${name}-bbbbbbbb-q3w4e"
  check "the one made again fails" test "$JOB_RC" -ne 0
  check "saying the snapshot there is another Backup's of the name" \
    log_has again-second "snapshot ${name} at this Backup's path was taken for another Backup of the same name \\(UID aaaaaaaa\\.\\.\\., this one's bbbbbbbb"
  check "with no backup info" failed_with_exit_marker again-second
  check "the old snapshot is left in place" bucket_has_snapshot "$name"
  check "nothing left registered" repo_absent "$name"
  check "nor its keys" no_client_left "$(job_client again-second)"
}

test_sigterm_during_the_snapshot_aborts_it() {
  # Stopped while its snapshot runs, the job aborts it before it removes the keys: a snapshot
  # left running without its S3 client would hold the repository and its indices.
  local name="t-term-${RUN_ID}" rc=0
  loaded t-term 3000 2 8 || return 0
  start_throttled_backup term-backup "$name"
  sleep 1
  kill -TERM "$JOB_PID"
  wait "$JOB_PID" || rc=$?
  check "the job exits 143" test "$rc" -eq 143
  check ".exit touched, no backup info" failed_with_exit_marker term-backup
  local client
  client=$(job_client term-backup)
  if log_has term-backup "snapshot ${name} aborted \\(the job was stopped\\)"; then
    check "its snapshot aborted: the repository unregistered" repo_absent "$name"
    check "and the client removed from every keystore" no_client_left "$client"
  else
    # The abort did not end within the call's time (a throttled snapshot stops slowly): the
    # snapshot still needs its repository and client, so both stay, and the log says so.
    check "an abort that did not end is said" log_has term-backup "WARNING: could not abort snapshot ${name}"
    check "and the repository and client are left to the engine, saying how to remove them" \
      log_has term-backup "both are left in place so that it can finish; once it has ended, unregister the repository \\(DELETE _snapshot/kb-${name}"
    check "the repository is still registered" test "$(es_status GET "/_snapshot/kb-${name}")" == 200
    check "the client is still in the keystores" client_still_there "$client"
    remove_what_the_engine_kept "$name" "$client"
  fi
  es DELETE /t-term >/dev/null
}

test_sigterm_after_the_snapshot_ended_keeps_it() {
  # The snapshot ends while the job is not looking (here: the job is held with SIGSTOP), and
  # then the pod is deleted: the finished snapshot is kept, not "aborted" (which would delete
  # it), and a retry of the Backup takes it as its result.
  local name="t-ended-${RUN_ID}" rc=0 waited=0 state=''
  start_job ended-backup backup.sh "DP_BACKUP_NAME=${name}" BACKUP_INDICES=t-beta MAX_SNAPSHOT_BYTES_PER_SEC=32kb
  wait_for_job_line ended-backup "snapshot ${name} started" 1200
  kill -STOP "$JOB_PID"
  STOPPED_PIDS+=("$JOB_PID")
  until [[ $state == SUCCESS ]] || ((waited > 240)); do
    sleep 0.25
    waited=$((waited + 1))
    state=$(es GET "/_snapshot/kb-${name}/${name}" 2>/dev/null | jq -r '.snapshots[0].state // empty') || true
  done
  kill -TERM "$JOB_PID"
  kill -CONT "$JOB_PID"
  STOPPED_PIDS=()
  wait "$JOB_PID" || rc=$?
  check "the snapshot had ended SUCCESS while the job was held (${state:-unknown})" test "$state" == SUCCESS
  check "the job exits 143" test "$rc" -eq 143
  check "it keeps the ended snapshot, saying so" \
    log_has ended-backup "snapshot ${name} had ended SUCCESS when the job was stopped: it is kept, not aborted"
  check "nothing aborted" log_lacks ended-backup "snapshot ${name} aborted"
  check "the repository unregistered" repo_absent "$name"
  check "the client removed from every keystore" no_client_left "$(job_client ended-backup)"
  run_job ended-rerun backup.sh "DP_BACKUP_NAME=${name}" BACKUP_INDICES=t-beta
  check "the retry exits 0" test "$JOB_RC" -eq 0
  check "taking the kept snapshot as the result" \
    log_has ended-rerun "snapshot ${name} was already completed \\(SUCCESS\\) by an earlier attempt of this Backup: taking it as the result"
  check "backup info written" backup_info_valid ended-rerun "$name"
}

test_snapshot_missing_what_was_asked_fails() {
  # A selection that matches nothing, and a closed index the engine leaves out: each snapshot
  # ends SUCCESS, and neither is the backup that was asked for.
  run_job nomatch-backup backup.sh "DP_BACKUP_NAME=t-nomatch-${RUN_ID}" 'BACKUP_INDICES=nomatch*'
  check "a selection matching nothing fails" test "$JOB_RC" -ne 0
  check "saying so" log_has nomatch-backup "ERROR: snapshot t-nomatch-${RUN_ID} holds no index: BACKUP_INDICES 'nomatch\\*' matched none"
  check ".exit touched, no backup info" failed_with_exit_marker nomatch-backup
  es PUT /t-closed --data-binary '{"settings":{"number_of_shards":1,"number_of_replicas":0}}' >/dev/null
  es POST /t-closed/_close >/dev/null
  run_job closed-backup backup.sh "DP_BACKUP_NAME=t-closed-${RUN_ID}"
  local closed_rc=$JOB_RC
  run_job closed-unselected backup.sh "DP_BACKUP_NAME=t-closed2-${RUN_ID}" 'BACKUP_INDICES=t-beta,t-c*,-t-closed'
  check "a closed index the selection leaves out does not fail the backup" test "$JOB_RC" -eq 0
  check "(it holds t-beta)" jq_true '.extras[0].indices == "1"' "${OUT}/closed-unselected.info"
  # A closed index the selection takes through an alias is resolved as the engine does.
  es POST /_aliases --data-binary '{"actions":[{"add":{"index":"t-closed","alias":"t-closed-alias"}}]}' >/dev/null
  run_job closed-alias backup.sh "DP_BACKUP_NAME=t-closed3-${RUN_ID}" 'BACKUP_INDICES=t-beta,t-closed-al*'
  if log_has closed-alias "snapshot t-closed3-${RUN_ID}: SUCCESS" && ! log_has closed-alias "left out closed"; then
    check "the engine took the closed index behind the alias" test "$JOB_RC" -eq 0
  else
    check "a closed index selected through an alias and left out fails the backup" test "$JOB_RC" -ne 0
    check "naming it" log_has closed-alias "ERROR: snapshot t-closed3-${RUN_ID} left out closed index\\(es\\) t-closed:"
  fi
  JOB_RC=$closed_rc
  es DELETE /t-closed >/dev/null
  if log_has closed-backup "snapshot t-closed-${RUN_ID}: SUCCESS" && ! log_has closed-backup "left out closed"; then
    check "the engine took the closed index (nothing left out)" test "$JOB_RC" -eq 0
  else
    check "a closed index left out fails the backup" test "$JOB_RC" -ne 0
    check "naming it and what to do" log_has closed-backup "ERROR: snapshot t-closed-${RUN_ID} left out closed index\\(es\\) t-closed: the engine does not snapshot them; open them"
    check ".exit touched, no backup info" failed_with_exit_marker closed-backup
  fi
}

test_foreign_repository_is_never_changed() {
  # Someone registered kb-<backup> elsewhere: the job neither changes nor unregisters it.
  local name="t-foreign-${RUN_ID}" before after
  es PUT "/_snapshot/kb-${name}?verify=false" --data-binary \
    "$(jq -n --argjson s "$(e2e_s3_repo_settings "someone/else" default)" '{type: "s3", settings: $s}')" >/dev/null
  before=$(es GET "/_snapshot/kb-${name}" | jq -cS .)
  run_job foreign-backup backup.sh "DP_BACKUP_NAME=${name}"
  after=$(es GET "/_snapshot/kb-${name}" | jq -cS .)
  check "backup fails" test "$JOB_RC" -ne 0
  check "says the repository belongs to someone else and is left unchanged" \
    log_has foreign-backup "ERROR: repository kb-${name} already exists with other settings \\(type s3, bucket ${E2E_BUCKET}, base_path someone/else, client default, readonly false\\), registered by someone else: it is left unchanged"
  check "the repository is exactly as it was" test "$before" == "$after"
  check "and still registered" test "$(es_status GET "/_snapshot/kb-${name}")" == 200
  check "no snapshot started" log_lacks foreign-backup "snapshot ${name} started"
  check ".exit touched, no backup info" failed_with_exit_marker foreign-backup
  es DELETE "/_snapshot/kb-${name}" >/dev/null
}

test_unassigned_primary_fails_unless_partial() {
  # An index whose only copy cannot be allocated: the snapshot cannot be complete. By
  # default the job fails; with BACKUP_ALLOW_PARTIAL it ends PARTIAL, with a warning; a rerun
  # that does not allow partial then refuses that snapshot and leaves it.
  local name="t-partial-${RUN_ID}"
  es PUT '/t-red?wait_for_active_shards=0' --data-binary '{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.routing.allocation.require._name":"no-such-node"}}' >/dev/null
  run_job partial-default backup.sh "DP_BACKUP_NAME=${name}"
  check "by default the backup fails" test "$JOB_RC" -ne 0
  check "naming the index without its primary" log_has partial-default "ERROR: (start of snapshot ${name}|snapshot ${name} ended FAILED).*t-red"
  check ".exit touched, no backup info" failed_with_exit_marker partial-default
  run_job partial-allowed backup.sh "DP_BACKUP_NAME=${name}" BACKUP_ALLOW_PARTIAL=true
  check "with partial allowed the backup succeeds" test "$JOB_RC" -eq 0
  check "with a warning that it is PARTIAL" log_has partial-allowed "WARNING: snapshot ${name} ended PARTIAL \\(allowed by BACKUP_ALLOW_PARTIAL\\)"
  check "the backup info says PARTIAL and counts the failed shard" \
    jq_true '.extras[0].state == "PARTIAL" and (.extras[0].failedShards | tonumber >= 1)' "${OUT}/partial-allowed.info"
  run_job partial-rerun backup.sh "DP_BACKUP_NAME=${name}"
  check "a rerun not allowing partial fails" test "$JOB_RC" -ne 0
  check "saying the earlier snapshot is PARTIAL and left in place" \
    log_has partial-rerun "snapshot ${name} left by an earlier attempt of this Backup ended PARTIAL: .*it is left in place"
  check ".exit touched, no backup info" failed_with_exit_marker partial-rerun
  local before after
  before=$(cluster_state_summary)
  run_job partial-restore restore.sh "DP_BACKUP_NAME=${name}"
  after=$(cluster_state_summary)
  check "a restore of the PARTIAL snapshot fails" test "$JOB_RC" -ne 0
  check "saying it is not SUCCESS and nothing was restored" \
    log_has partial-restore "ERROR: snapshot ${name} is PARTIAL, not SUCCESS: nothing restored"
  check "indices and repositories unchanged" test "$before" == "$after"
  es DELETE /t-red >/dev/null
}

test_options_reach_the_snapshot() {
  local name="t-options-${RUN_ID}" settings rc=0
  # The S3 object options reach the engine's repository (versitygw ignores them on objects, so
  # they are read from the repository while the throttled snapshot runs).
  start_job options-backup backup.sh "DP_BACKUP_NAME=${name}" BACKUP_INDICES=t-beta \
    BACKUP_INCLUDE_GLOBAL_STATE=false BACKUP_CANNED_ACL=bucket-owner-full-control \
    BACKUP_SERVER_SIDE_ENCRYPTION=true BACKUP_STORAGE_CLASS=standard_ia MAX_SNAPSHOT_BYTES_PER_SEC=16kb
  wait_for_job_line options-backup "repository kb-${name} registered and verified" 1200
  settings=$(es GET "/_snapshot/kb-${name}" | jq -cS --arg r "kb-${name}" '.[$r].settings
      | {canned_acl, server_side_encryption, storage_class, max_snapshot_bytes_per_sec}')
  wait "$JOB_PID" || rc=$?
  check "backup exits 0" test "$rc" -eq 0
  check "the repository carried the S3 options (${settings})" test "$settings" == \
    '{"canned_acl":"bucket-owner-full-control","max_snapshot_bytes_per_sec":"16kb","server_side_encryption":"true","storage_class":"standard_ia"}'
  check "the request says what it takes" log_has options-backup "snapshot ${name} started \\(indices t-beta, global state false, partial false\\)"
  check "the snapshot holds only t-beta" jq_true '.extras[0].indices == "1"' "${OUT}/options-backup.info"
  run_job options-bad backup.sh "DP_BACKUP_NAME=${name}-bad" BACKUP_STORAGE_CLASS=glacier
  check "a bad option fails the job" test "$JOB_RC" -ne 0
  check "naming the option and the allowed values" log_has options-bad "ERROR: option BACKUP_STORAGE_CLASS 'glacier' is not one of: standard"
  check "before the cluster is contacted" log_lacks options-bad "cluster .*: opensearch"
  run_job options-features backup.sh "DP_BACKUP_NAME=${name}-fs" BACKUP_FEATURE_STATES=none
  check "feature states on OpenSearch fail" test "$JOB_RC" -ne 0
  check "saying they need Elasticsearch 7.12+" log_has options-features "ERROR: option BACKUP_FEATURE_STATES needs Elasticsearch 7.12 or newer; this cluster runs opensearch"
  check "before any keystore is written" log_lacks options-features "ok, keystore"
}

test_wrong_cluster_password_stops_at_the_agents() {
  # The agents check the job's credentials (the local OpenSearch nodes have no security, so
  # only the agents can refuse them): every write is refused, nothing is written anywhere.
  local name="t-badpw-${RUN_ID}" password
  password="wrong-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf '%s\n' "$password" >"${PRIVATE}/wrong-password.txt"
  run_job badpw-backup backup.sh "DP_BACKUP_NAME=${name}" "DP_DB_PASSWORD=${password}"
  check "backup fails" test "$JOB_RC" -ne 0
  check "every node named with the 401" test "$(grep -c 'FAILED: POST /keystore: agent answered 401 UNAUTHORIZED: wrong or missing cluster credentials' "${OUT}/badpw-backup.log")" -eq 3
  check "the summary names the refused write" log_has badpw-backup "ERROR: keystore update failed on 3 of 3 node\\(s\\)"
  check "a 401 is not retried" log_lacks badpw-backup "401 UNAUTHORIZED after"
  check "no keystore holds the job's client" no_client_left "$(job_client badpw-backup)"
  check "and the exit does not claim keys were left where every write was refused" \
    log_lacks badpw-backup "NOT removed|left on [0-9]+ of"
}

# irsa_conf FILE: the cluster's datasafed.conf as a BackupRepo with env_auth and no keys.
irsa_conf() {
  awk '/^[[:space:]]*(access_key_id|secret_access_key)[[:space:]]*=/ { next }
       /^[[:space:]]*env_auth[[:space:]]*=/ { print "env_auth = true"; next } { print }' \
    "$E2E_DATASAFED_CONF" >"$1"
}

test_env_auth_skips_the_keystore() {
  local name="t-irsa-${RUN_ID}" conf="${PRIVATE}/irsa.conf"
  irsa_conf "$conf"
  run_job irsa-backup backup.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}"
  check "says the keystore step is skipped, and why" \
    log_has irsa-backup "keystore step skipped: the BackupRepo has env_auth = true and no keys"
  check "no agent was asked" log_lacks irsa-backup "ok, keystore|agents ready"
  check "the repository uses the default client" log_has irsa-backup "S3 client default"
  check "these nodes have no identity of their own: registration fails" log_has irsa-backup "ERROR: registration of repository kb-${name}"
  check "repository not left registered" repo_absent "$name"
}

test_env_auth_restore_collects_its_restores_repositories() {
  # With env_auth every attempt's S3 client is 'default': a killed restore attempt's repository
  # is told from another Restore's by its name, which carries the Restore. The next attempt of
  # that Restore unregisters it, even failing itself (these nodes have no identity of their own,
  # so its registration fails); another Restore's stays.
  local name="t-happy-${RUN_ID}" conf="${PRIVATE}/irsa.conf" repo
  local mine="kb-t-happy-${RUN_ID}-0a1b2c3e-r0a0a0a" theirs="kb-t-happy-${RUN_ID}-0a1b2c3f-r0b0b0b"
  irsa_conf "$conf"
  # What killed attempts of two Restores left: the Backup's path, read-only, client 'default'.
  for repo in "$mine" "$theirs"; do
    jq -n --arg b "$E2E_BUCKET" --arg p "e2e/${POLICY_PREFIX}/${name}" \
      '{type: "s3", settings: {bucket: $b, base_path: $p, client: "default", readonly: true}}' |
      es PUT "/_snapshot/${repo}?verify=false" --data-binary @- >/dev/null || ERRORS+=("registering ${repo} failed")
  done
  run_job irsa-restore restore.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}" "HOSTNAME=$(restore_pod 0a1b2c3e "$name")"
  check "the attempt fails at its own registration (no identity here)" \
    log_has irsa-restore "ERROR: registration of repository kb-${name}-0a1b2c3e-r[0-9a-f]{6}"
  check "it unregisters the earlier attempt's repository of its Restore" \
    log_has irsa-restore "repository ${mine}, left by an earlier attempt, unregistered"
  check "which is gone" test "$(es_status GET "/_snapshot/${mine}")" == 404
  check "another Restore's stays" test "$(es_status GET "/_snapshot/${theirs}")" == 200
  check "nor is its own left" test "$(es GET /_snapshot | jq --arg p "kb-${name}-0a1b2c3e-r" '[keys[] | select(startswith($p))] | length')" -eq 0
  es DELETE "/_snapshot/${theirs}" >/dev/null
}

# default_client_on_every_node put|remove: the S3 server's keys as client 'default' in every
# node's keystore (reloaded), as an instance role or IRSA gives a real node its identity, or
# gone again. The keys reach jq through its environment, never a command line.
default_client_on_every_node() {
  local n
  for n in $(seq 1 "$E2E_NODE_COUNT"); do
    if [[ $1 == put ]]; then
      KB_AK=$(cred S3_ACCESS_KEY "$E2E_S3_CREDENTIALS") KB_SK=$(cred S3_SECRET_KEY "$E2E_S3_CREDENTIALS") \
        jq -nc '{client: "default", access_key_id: env.KB_AK, secret_access_key: env.KB_SK, reload: true}' |
        curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 60 --config "$CURL_AUTH" \
          -H 'Content-Type: application/json' --data-binary @- --output /dev/null \
          --url "http://$(e2e_node_addr "$n"):${E2E_AGENT_PORT}/keystore" || return 1
    else
      curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 60 --config "$CURL_AUTH" -X DELETE \
        --output /dev/null --url "http://$(e2e_node_addr "$n"):${E2E_AGENT_PORT}/keystore?client=default&reload=true" || return 1
    fi
  done
}

test_env_auth_rerun_waits_for_the_earlier_attempt() {
  # With env_auth the repository's client is 'default' at every attempt: a rerun tells the
  # Backup's repository by its name, and waits for the earlier attempt, stopped and ending,
  # to go, instead of following the snapshot that attempt is aborting.
  local name="t-irsa-rerun-${RUN_ID}" conf="${PRIVATE}/irsa.conf" waited=0 pid_a rc_a=0
  irsa_conf "$conf"
  default_client_on_every_node put || {
    ERRORS+=("writing client 'default' on the nodes failed")
    return 0
  }
  start_job irsa-first backup.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}" MAX_SNAPSHOT_BYTES_PER_SEC=100kb
  pid_a=$JOB_PID
  until log_has irsa-first "snapshot ${name} started" || ! kill -0 "$pid_a" 2>/dev/null || ((waited > 1200)); do
    sleep 0.05
    waited=$((waited + 1))
  done
  kill -TERM "$pid_a"
  run_job irsa-rerun backup.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}"
  wait "$pid_a" || rc_a=$?
  default_client_on_every_node remove || ERRORS+=("removing client 'default' from the nodes failed")
  check "the first attempt, stopped, aborted its snapshot" log_has irsa-first "snapshot ${name} aborted"
  check "the rerun waited for it" log_has irsa-rerun "repository kb-${name} is registered already: an earlier attempt of this Backup may still be ending"
  check "until it had gone" log_has irsa-rerun "repository kb-${name} is gone: the earlier attempt has ended"
  check "and took the Backup anew: exit 0" test "$JOB_RC" -eq 0
  check "its snapshot is SUCCESS" log_has irsa-rerun "snapshot ${name}: SUCCESS"
  check "no repository left" repo_absent "$name"
}

# s3_keys PREFIX: the bucket's object keys under PREFIX, through the S3 API (as datasafed
# sees them), one a line.
s3_keys() {
  local prefix=${1//\//%2F} token='' page
  while true; do
    page=$(e2e_s3_curl "${E2E_S3_ENDPOINT}/${E2E_BUCKET}?list-type=2&prefix=${prefix}${token:+&continuation-token=${token}}") || return 1
    grep -o '<Key>[^<]*</Key>' <<<"$page" | sed -e 's/<Key>//' -e 's/<\/Key>//'
    grep -q '<IsTruncated>true</IsTruncated>' <<<"$page" || return 0
    token=$(grep -o '<NextContinuationToken>[^<]*' <<<"$page" | sed 's/<NextContinuationToken>//' | jq -sRr @uri)
  done
}

test_deleting_one_backup_leaves_the_others() {
  # KubeBlocks deletes a Backup by removing its path in the bucket (datasafed rm -r): done
  # here through the S3 API, object by object. Nothing of that Backup is left, and another
  # Backup still restores.
  local gone="t-killed-${RUN_ID}" kept="t-slow-${RUN_ID}" prefix key count=0
  prefix="e2e/${POLICY_PREFIX}/${gone}/"
  while IFS= read -r key; do
    [[ -n $key ]] || continue
    e2e_s3_curl --request DELETE --output /dev/null "${E2E_S3_ENDPOINT}/${E2E_BUCKET}/${key}" && count=$((count + 1))
  done < <(s3_keys "$prefix")
  check "the deleted Backup had objects (${count})" test "$count" -gt 0
  check "none of its objects is left" test -z "$(s3_keys "$prefix")"
  check "and no file of it anywhere in the bucket" \
    test -z "$(find "${E2E_S3_DATA_DIR}/${E2E_BUCKET}" -path "*/${gone}/*" -type f -print -quit)"
  check "the other Backup's objects are still there" test -n "$(s3_keys "e2e/${POLICY_PREFIX}/${kept}/")"
  run_job kept-restore restore.sh "DP_BACKUP_NAME=${kept}" RESTORE_INDICES=t-big
  check "the other Backup restores" test "$JOB_RC" -eq 0
  check "with all its documents" test "$(es GET /t-big/_count | jq -r '.count')" == 8000
  es DELETE /t-big >/dev/null
}

test_non_s3_backup_repo_refused_at_once() {
  # A BackupRepo of another storage type (here rclone's 'local'): both jobs stop before they
  # reach the cluster, saying what they need.
  local conf="${PRIVATE}/local.conf" script tag
  printf '[storage]\ntype = local\nroot = /backups\n' >"$conf"
  for script in backup.sh restore.sh; do
    tag="nons3-${script%.sh}"
    run_job "$tag" "$script" "DP_BACKUP_NAME=t-nons3-${RUN_ID}" "DATASAFED_CONF=${conf}"
    check "${script} fails" test "$JOB_RC" -ne 0
    check "${script} names the storage type and what it needs" \
      log_has "$tag" "ERROR: BackupRepo storage type is 'local': the full-backup method writes S3 snapshots and needs an S3-compatible BackupRepo"
    check "${script} did not reach the cluster or the agents" log_lacks "$tag" "cluster .*: opensearch|agents ready|keystore"
  done
  check "the backup touched .exit, no backup info" failed_with_exit_marker nons3-backup
}

test_prefix_in_root_and_the_elastic_users_variables() {
  # The BackupRepo's root holds a bucket and a prefix, and the job has only the elastic user's
  # own variables (the target pod's env) instead of DataProtection's account: the agents check
  # them (a 401 otherwise), and every file lands under the prefix, then the Backup's path.
  local name="t-prefix-${RUN_ID}" conf="${PRIVATE}/prefix.conf" before root
  root="${E2E_S3_DATA_DIR}/${E2E_BUCKET}"
  awk -v r="${E2E_BUCKET}/team-a//nightly/" '/^[[:space:]]*root[[:space:]]*=/ { print "root = " r; next } { print }' \
    "$E2E_DATASAFED_CONF" >"$conf"
  before=$(fingerprint t-beta)
  run_job prefix-backup backup.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}" BACKUP_INDICES=t-beta \
    DP_DB_USER= DP_DB_PASSWORD= "ELASTIC_USERNAME=$(cred ELASTIC_USERNAME "$E2E_AGENT_CREDENTIALS")" \
    "ELASTIC_PASSWORD=$(cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS")"
  check "backup exits 0" test "$JOB_RC" -eq 0
  check "the agents took the elastic user's credentials" test "$(grep -c ': ok, keystore ' "${OUT}/prefix-backup.log")" -eq 3
  check "base_path is the prefix, then the Backup's path" \
    log_has prefix-backup "base_path team-a/nightly/e2e/${POLICY_PREFIX}/${name},"
  check "backup info written" backup_info_valid prefix-backup "$name"
  check "the snapshot's files are under the prefix" \
    compgen -G "${root}/team-a/nightly/e2e/${POLICY_PREFIX}/${name}/index-*"
  check "and nowhere else in the bucket" \
    test -z "$(find "$root" -path "*/${name}/*" -type f ! -path "${root}/team-a/nightly/*" -print -quit)"
  check "the job's client removed from every keystore" no_client_left "$(job_client prefix-backup)"
  run_job prefix-check restore.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}" RESTORE_INDICES=t-beta \
    RESTORE_CONFLICT_MODE=rename 'RESTORE_RENAME_PATTERN=^t-beta$' RESTORE_RENAME_REPLACEMENT=t-beta-check \
    DP_DB_USER= DP_DB_PASSWORD= "ELASTIC_USERNAME=$(cred ELASTIC_USERNAME "$E2E_AGENT_CREDENTIALS")" \
    "ELASTIC_PASSWORD=$(cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS")"
  check "the restore from the prefix exits 0" test "$JOB_RC" -eq 0
  check "with every document of t-beta" test "$(fingerprint t-beta-check)" == "$before"
  es DELETE /t-beta-check >/dev/null 2>&1 || true
}

test_missing_bucket_named() {
  local name="t-nobucket-${RUN_ID}" conf="${PRIVATE}/no-bucket.conf"
  awk '/^[[:space:]]*root[[:space:]]*=/ { print "root = no-such-bucket-e2e/prefix"; next } { print }' \
    "$E2E_DATASAFED_CONF" >"$conf"
  run_job nobucket-backup backup.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}"
  check "backup fails" test "$JOB_RC" -ne 0
  check "at registration, with the storage's cause" \
    log_has nobucket-backup "ERROR: registration of repository kb-${name} \\(bucket no-such-bucket-e2e, base_path prefix/.*(NoSuchBucket|does not exist|404)"
  check "no snapshot started" log_lacks nobucket-backup "snapshot ${name} started"
  check ".exit touched, no backup info" failed_with_exit_marker nobucket-backup
  check "repository not left registered" repo_absent "$name"
  check "the client removed again" no_client_left "$(job_client nobucket-backup)"
}

test_untrusted_endpoint_certificate() {
  # An S3 endpoint whose certificate the nodes do not trust: a second versitygw on the same
  # bucket, serving TLS with a self-signed certificate. The job names that cause.
  local name="t-untrusted-${RUN_ID}" port=$((E2E_S3_PORT + 500)) conf="${PRIVATE}/tls.conf" pid waited=0
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=untrusted-s3" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "${PRIVATE}/tls.key" -out "${PRIVATE}/tls.crt" 2>/dev/null || {
    ERRORS+=("openssl could not make a certificate")
    return 0
  }
  ROOT_ACCESS_KEY=$(cred S3_ACCESS_KEY "$E2E_S3_CREDENTIALS") ROOT_SECRET_KEY=$(cred S3_SECRET_KEY "$E2E_S3_CREDENTIALS") \
    "$E2E_VERSITYGW_BIN" --port "127.0.0.1:${port}" --region "$E2E_S3_REGION" \
    --cert "${PRIVATE}/tls.crt" --key "${PRIVATE}/tls.key" --quiet posix "$E2E_S3_DATA_DIR" \
    </dev/null >"${OUT}/versitygw-tls.log" 2>&1 &
  pid=$!
  until curl --silent --output /dev/null --insecure --connect-timeout 1 --max-time 2 "https://127.0.0.1:${port}/" || ((waited > 40)); do
    sleep 0.25
    waited=$((waited + 1))
  done
  # With the scheme, and without it (https is then the default the nodes are given).
  local endpoint tag
  for endpoint in "https://127.0.0.1:${port}" "127.0.0.1:${port}"; do
    tag=untrusted-backup
    [[ $endpoint == https://* ]] || tag=untrusted-noscheme
    awk -v e="$endpoint" '/^[[:space:]]*endpoint[[:space:]]*=/ { print "endpoint = " e; next } { print }' \
      "$E2E_DATASAFED_CONF" >"$conf"
    run_job "$tag" backup.sh "DP_BACKUP_NAME=${name}" "DATASAFED_CONF=${conf}"
    check "${tag}: backup fails" test "$JOB_RC" -ne 0
    check "${tag}: at registration, naming the untrusted certificate as the cause" \
      log_has "$tag" "ERROR: registration of repository kb-${name} .*\\(the nodes do not trust the certificate of the S3 endpoint https://127\\.0\\.0\\.1:${port}: add its CA"
    check "${tag}: .exit touched, no backup info" failed_with_exit_marker "$tag"
    check "${tag}: repository not left registered" repo_absent "$name"
    check "${tag}: the client removed again" no_client_left "$(job_client "$tag")"
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# node_pid N: the pid cluster.sh recorded for node N, if that process still runs.
node_pid() {
  local file="${E2E_WORK}/run/node-$1.pid" pid marker
  { read -r pid && read -r marker; } <"$file" || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
  printf '%s' "$pid"
}

# pause_node_after N SECONDS TAG PATTERN: once TAG's log matches PATTERN, node N's JVM is
# stopped (SIGSTOP) for SECONDS, then continued.
pause_node_after() {
  local n=$1 seconds=$2 tag=$3 pattern=$4 pid waited=0
  pid=$(node_pid "$n") || return 1
  while ! log_has "$tag" "$pattern" && ((waited < 400)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -STOP "$pid"
  STOPPED_PIDS+=("$pid")
  sleep "$seconds"
  kill -CONT "$pid"
  STOPPED_PIDS=()
}

test_cluster_unreachable_while_waiting() {
  # The node the job talks to stops answering while the snapshot runs: a short outage is
  # ridden out; a long one fails the job saying the final state is unknown (never a success).
  local name="t-outage-${RUN_ID}"
  loaded t-outage 3000 2 8 || return 0
  start_job outage-short backup.sh "DP_BACKUP_NAME=${name}" MAX_SNAPSHOT_BYTES_PER_SEC=40kb \
    ES_TIMEOUT=2 ES_CONNECT_TIMEOUT=1 MAX_POLL_ERRORS=20 POLL_INTERVAL=1
  pause_node_after 1 5 outage-short "snapshot ${name} started"
  wait "$JOB_PID"
  local rc=$?
  check "a short outage: the job still exits 0" test "$rc" -eq 0
  check "it said it could not read the status" log_has outage-short "WARNING: reading snapshot ${name} \\(1/20\\): no answer"
  check "then followed it to SUCCESS" log_has outage-short "snapshot ${name}: SUCCESS after"
  name="t-outage2-${RUN_ID}"
  start_job outage-long backup.sh "DP_BACKUP_NAME=${name}" MAX_SNAPSHOT_BYTES_PER_SEC=40kb \
    ES_TIMEOUT=2 ES_CONNECT_TIMEOUT=1 MAX_POLL_ERRORS=3 POLL_INTERVAL=1
  pause_node_after 1 16 outage-long "snapshot ${name} started"
  wait "$JOB_PID"
  rc=$?
  check "a long outage: the job fails" test "$rc" -ne 0
  check "saying the snapshot's final state is unknown" log_has outage-long "status unreadable 3 times in a row; its final state is unknown"
  check "no backup info, .exit touched" failed_with_exit_marker outage-long
  # Its snapshot may still run: the job leaves its repository and S3 client for it, says so,
  # and the test aborts the snapshot there.
  check "the repository and client left for the engine are said so" \
    log_has outage-long "WARNING: the engine may still be using repository kb-${name} and S3 client"
  drop_index_after_outage t-outage "kb-${name}" "$name"
}

# drop_index_after_outage INDEX REPOSITORY SNAPSHOT: once the paused node is back, aborts the
# snapshot the failed job left running, unregisters its repository, deletes INDEX.
drop_index_after_outage() {
  local tries=0
  es GET "/_cluster/health?wait_for_nodes=${E2E_NODE_COUNT}&timeout=90s" >/dev/null 2>&1 || true
  es DELETE "/_snapshot/$2/$3" >/dev/null 2>&1 || true
  es DELETE "/_snapshot/$2" >/dev/null 2>&1 || true
  until es DELETE "/$1" >/dev/null 2>&1; do
    ((tries < 60)) || {
      ERRORS+=("could not delete $1 after the outage")
      return 0
    }
    sleep 1
    tries=$((tries + 1))
  done
}

standin_refuses_the_reload() {
  local name="t-reloadfail-${RUN_ID}"
  run_job reloadfail-backup backup.sh "DP_BACKUP_NAME=${name}"
  check "backup fails" test "$JOB_RC" -ne 0
  check "a password-protected keystore: every node reloads through its agent" \
    log_has reloadfail-backup "1 keystore\\(s\\) have a password: each node reloads through its agent"
  check "the real agents reloaded their nodes" \
    test "$(grep -c -E "node node-[12] \\(.*\\): ok, keystore" "${OUT}/reloadfail-backup.log")" -eq 2
  check "the node whose reload failed is named, with its reason" \
    log_has reloadfail-backup "ERROR: keystore update failed on 1 of 3 node\\(s\\): node-3 \\($(addr_re 3):8080\\): saved, but its node refused the reload: stand-in: the keystore password is wrong"
  check "a refused reload is not retried" test "$(grep -c '^POST /keystore' "$STANDIN_LOG")" -eq 1
  check "no cluster-wide reload was tried" log_lacks reloadfail-backup "reload node-1: ok$"
  check "nothing registered" log_lacks reloadfail-backup "registered and verified"
  check "the real nodes lost the client again" no_client_left "$(job_client reloadfail-backup)"
}

test_one_nodes_reload_failing() {
  with_standin 3 reload-fails standin_refuses_the_reload
}

test_no_secret_in_any_output() {
  local secrets="${PRIVATE}/secrets.txt" logs
  {
    cred S3_ACCESS_KEY "$E2E_S3_CREDENTIALS"
    cred S3_SECRET_KEY "$E2E_S3_CREDENTIALS"
    cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS"
    sed -n 's/^secret_access_key = //p' "${PRIVATE}/wrong-secret.conf"
    cat "${PRIVATE}/wrong-password.txt"
    sed -n 's/^header = "Authorization: Basic \(.*\)"$/\1/p' "$CURL_AUTH"
  } | grep -v '^$' >"$secrets"
  chmod 0600 "$secrets"
  logs=$(find "$OUT" -type f \( -name '*.log' -o -name '*.info' \) | wc -l)
  check "secrets file has the 6 values" test "$(wc -l <"$secrets")" -eq 6
  check "captured output exists (${logs} files)" test "$logs" -ge 8
  # -l prints only the names of files that hold a secret, never the secret itself.
  local leaks
  leaks=$(grep -r -F -l -f "$secrets" "$OUT" || true)
  check "no S3 key or password in any captured output${leaks:+ (found in: ${leaks//$'\n'/ })}" test -z "$leaks"
}

main() {
  trap on_exit EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  say "starting the local cluster (3 OpenSearch nodes, agents, versitygw)"
  start_cluster
  say "loading test data"
  load_index t-alpha 3000 3 || {
    say "loading test data failed"
    exit 2
  }
  load_index t-beta 1500 1 || exit 2

  run_test test_backup_then_restore
  run_test test_killed_restore_leftovers_collected_by_its_next_attempt
  run_test test_killed_restore_paused_ism_named_by_its_next_attempt
  run_test test_rerun_takes_the_snapshot_as_result
  run_test test_snapshot_in_progress_is_followed
  run_test test_backup_deadline_aborts_the_snapshot
  run_test test_killed_job_rerun_follows_its_snapshot
  run_test test_overlapping_attempt_waits_for_the_earlier_one
  run_test test_two_attempts_at_once
  run_test test_recreated_backup_of_the_same_name_is_refused
  run_test test_sigterm_during_the_snapshot_aborts_it
  run_test test_sigterm_after_the_snapshot_ended_keeps_it
  run_test test_snapshot_missing_what_was_asked_fails
  run_test test_foreign_repository_is_never_changed
  run_test test_unassigned_primary_fails_unless_partial
  run_test test_options_reach_the_snapshot
  run_test test_wrong_cluster_password_stops_at_the_agents
  run_test test_env_auth_skips_the_keystore
  run_test test_env_auth_restore_collects_its_restores_repositories
  run_test test_env_auth_rerun_waits_for_the_earlier_attempt
  run_test test_wrong_secret_fails_at_registration
  run_test test_missing_bucket_named
  run_test test_non_s3_backup_repo_refused_at_once
  run_test test_prefix_in_root_and_the_elastic_users_variables
  run_test test_untrusted_endpoint_certificate
  run_test test_cluster_unreachable_while_waiting
  run_test test_restore_refuses_missing_snapshot
  run_test test_two_jobs_keep_their_own_credentials
  run_test test_deleting_one_backup_leaves_the_others
  write_standin
  run_test test_agent_answering_500
  run_test test_killed_in_the_keystore_step_keys_collected_by_the_rerun
  run_test test_one_nodes_reload_failing
  run_test test_agent_staying_busy
  run_test test_sigterm_during_a_hung_write_ends_within_the_grace_period
  run_test test_hung_agent_times_out
  run_test test_sigterm_during_a_normal_exit_is_bounded
  run_test test_group_sigterm_during_a_normal_exit_keeps_the_calls
  run_test test_stopped_agent_fails_before_registration
  run_test test_no_secret_in_any_output

  [[ $FAILED -eq 0 ]] || say "failed: ${FAILED_NAMES[*]}"
  say "stopping the local cluster"
  bash "${HERE}/cluster.sh" stop >/dev/null 2>&1 || say "cluster.sh stop failed"
  CLUSTER_STARTED=false
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [[ $FAILED -eq 0 ]]
}

main "$@"

#!/usr/bin/env bash
# End-to-end tests of the restore job (addons/elasticsearch/dataprotection/restore.sh).
#
# Part 1, on the local cluster of real components (three OpenSearch nodes, one keystore agent
# each, versitygw as S3), the whole job as a DataProtection job runs it: conflicts (fail by
# default, close, delete, rename), the upstream addon's layout, options refused before any
# call, the cluster unreachable while the job waits.
# Part 2, on one real Elasticsearch 8.19.21 node with a shared-filesystem repository (its
# integ-test distribution has no S3 module): restore.sh's own functions from the pre-flight
# on (tests/e2e/lib/restore_fs_job.sh): feature states, a single node and replicas, and the
# features that pause during a restore. ILM, SLM, watcher and ML are not in that
# distribution: a TEST DOUBLE (tests/e2e/lib/features_double.py, a proxy in front of the real
# node) answers their APIs; everything else reaches the real node.
# Each engine is started once; the two parts run one after the other.
#
# Ends with 'N passed, M failed'; exits non-zero when a test failed.
# Usage: tests/e2e/test_restore.sh   (as root; AGENT_BIN defaults to build/agent/es-agent)
# Addresses: E2E_NODE_ADDRS_LIST (default 127.0.0.101-103), E2E_S3_PORT (7072), E2E_WORK
# (/tmp/es-e2e-restore); the Elasticsearch node 127.0.0.105:9200, the double :9201.
# The jobs' environments are set in subshells on purpose (SC2030/SC2031), and '$1' in a
# rename replacement is the engine's, not the shell's (SC2016).
# shellcheck disable=SC2030,SC2031,SC2016
set -euo pipefail

export E2E_NODE_ADDRS_LIST=${E2E_NODE_ADDRS_LIST:-127.0.0.101 127.0.0.102 127.0.0.103}
export E2E_S3_PORT=${E2E_S3_PORT:-7072}
export E2E_WORK=${E2E_WORK:-/tmp/es-e2e-restore}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/env.sh disable=SC1091
source "${HERE}/lib/env.sh"
# shellcheck source=lib/restore_es_node.sh disable=SC1091
source "${HERE}/lib/restore_es_node.sh"

JOBS_DIR="${E2E_ROOT}/addons/elasticsearch/dataprotection"
AGENT_BIN=${AGENT_BIN:-${E2E_ROOT}/build/agent/es-agent}
JOB_TIMEOUT=${JOB_TIMEOUT:-300}
RUN_ID=$(date -u +%H%M%S)
POLICY=e2e-restore-policy
DOUBLE_PORT=9201
DOUBLE_URL="http://${RESTORE_ES_ADDR}:${DOUBLE_PORT}"
OUT="${E2E_WORK}-out"
PRIVATE="${E2E_WORK}-private"

CLUSTER_STARTED=false
ES_STARTED=false
DOUBLE_PID=''
STOPPED_PIDS=()
PASSED=0
FAILED=0
FAILED_NAMES=()
ERRORS=()

say() { printf '[test_restore] %s\n' "$*"; }

# --- harness ------------------------------------------------------------------------

check() {
  local what=$1
  shift
  if ! "$@"; then
    ERRORS+=("$what")
  fi
}

run_test() {
  local name=$1 t0=$SECONDS
  # ONLY=regex runs just the tests whose names match (the set-up still runs whole).
  [[ -z ${ONLY:-} || $name =~ $ONLY ]] || return 0
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
    kill -CONT -- "$pid" 2>/dev/null
  done
  [[ -z $DOUBLE_PID ]] || kill "$DOUBLE_PID" 2>/dev/null
  [[ $ES_STARTED != true ]] || restore_es_stop
  if [[ $CLUSTER_STARTED == true ]]; then
    say "stopping the local cluster"
    bash "${HERE}/cluster.sh" stop >/dev/null 2>&1
  fi
  rm -rf "$PRIVATE"
  exit "$rc"
}

cred() {
  sed -n "s/^$1=//p" "$2"
}

# --- talking to the engines ------------------------------------------------------------

# ES_TARGET: the base URL the helpers below talk to (the OpenSearch cluster, or the
# Elasticsearch node); CURL_AUTH: the credentials for it (empty file for none).
es() {
  local method=$1 path=$2
  shift 2
  curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 120 \
    --config "$CURL_AUTH" --request "$method" --header "Content-Type: ${CONTENT_TYPE:-application/json}" \
    "$@" --url "${ES_TARGET}${path}"
}

es_status() {
  curl --silent --connect-timeout 5 --max-time 60 --config "$CURL_AUTH" --request "$1" \
    --output /dev/null --write-out '%{http_code}' --url "${ES_TARGET}$2" || true
}

# bulk_load INDEX DOCS [TEXT_REPEAT] [OP]: DOCS deterministic documents (OP create for a
# data stream, which needs @timestamp).
bulk_load() {
  local index=$1 docs=$2 repeat=${3:-1} op=${4:-index} file="${OUT}/${1}.ndjson" part
  awk -v idx="$index" -v n="$docs" -v rep="$repeat" -v op="$op" 'BEGIN {
    for (i = 1; i <= n; i++) {
      text = ""
      for (r = 0; r < rep; r++) text = text sprintf("%s line %d of document %d; ", idx, r, i * 7919 + r)
      printf "{\"%s\":{\"_index\":\"%s\",\"_id\":\"%s-%06d\"}}\n", op, idx, idx, i
      printf "{\"@timestamp\":\"2024-01-01T00:00:%02dZ\",\"n\":%d,\"text\":\"%s\"}\n", i % 60, i, text
    }
  }' >"$file"
  split -l 4000 "$file" "${file}.part."
  for part in "${file}".part.*; do
    CONTENT_TYPE=application/x-ndjson es POST /_bulk --data-binary "@${part}" | jq -e '.errors == false' >/dev/null || return 1
  done
  rm -f "$file" "${file}".part.*
  es POST "/${index}/_refresh" >/dev/null
}

# make_index INDEX SHARDS REPLICAS DOCS [TEXT_REPEAT]
make_index() {
  es PUT "/$1" --data-binary "{\"settings\":{\"number_of_shards\":$2,\"number_of_replicas\":$3}}" >/dev/null &&
    bulk_load "$1" "$4" "${5:-1}"
}

# fingerprint INDEX: '<count> <sha256 over sorted id+source>' (up to 10,000 documents).
fingerprint() {
  local count sum
  count=$(es GET "/$1/_count" | jq -r '.count') || return 1
  sum=$(es POST "/$1/_search" --data-binary '{"size":10000,"sort":["_doc"]}' |
    jq -cS '.hits.hits[] | [._id, ._source]' | LC_ALL=C sort | sha256sum | cut -c1-64)
  printf '%s %s' "$count" "$sum"
}

# add_doc INDEX: one more document (a data stream gets an op_type=create one).
add_doc() {
  es POST "/$1/_doc?refresh=true&op_type=create" --data-binary '{"@timestamp":"2025-01-01T00:00:00Z","n":-1,"text":"added after the backup"}' >/dev/null
}

# state_summary: every index with its status and document count, the data streams, the
# aliases and the repositories.
state_summary() {
  es GET '/_cat/indices?h=index,status,docs.count&s=index&expand_wildcards=all'
  es GET '/_data_stream' | jq -cS '[.data_streams[] | {name, indices: [.indices[].index_name]}]'
  es GET '/_cat/aliases?h=alias,index&s=alias'
  es GET '/_snapshot' | jq -cS 'keys'
}

index_status() {
  es GET "/_cat/indices/$1?h=status&expand_wildcards=all" | tr -d ' \n'
}

# --- running the job ---------------------------------------------------------------

# run_job TAG [VAR=VALUE...]: restore.sh with a DataProtection job's environment; output in
# $OUT/TAG.log, status in JOB_RC.
run_job() {
  local tag=$1 kv
  shift
  JOB_RC=0
  (
    export DP_DB_HOST="${E2E_NODE_ADDRS[0]}" DP_DB_PORT="$E2E_HTTP_PORT"
    DP_DB_USER=$(cred ELASTIC_USERNAME "$E2E_AGENT_CREDENTIALS")
    DP_DB_PASSWORD=$(cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS")
    export DP_DB_USER DP_DB_PASSWORD KB_NAMESPACE=e2e DATASAFED_CONF="$E2E_DATASAFED_CONF" POLL_INTERVAL=1
    for kv in "$@"; do
      export "${kv?}"
    done
    export DP_BACKUP_BASE_PATH="${DP_BACKUP_BASE_PATH:-/e2e/${POLICY}/${DP_BACKUP_NAME}}"
    exec timeout "$JOB_TIMEOUT" bash "${JOBS_DIR}/${SCRIPT:-restore.sh}"
  ) >"${OUT}/${tag}.log" 2>&1 || JOB_RC=$?
  say "     ${SCRIPT:-restore.sh} (${tag}) exit ${JOB_RC}; log ${OUT}/${tag}.log"
}

# run_fs_job TAG [VAR=VALUE...]: restore.sh's functions on the Elasticsearch node's
# shared-filesystem repository (DP_DB_PORT=9201 goes through the test double).
run_fs_job() {
  local tag=$1
  JOB_RC=0
  start_fs_job "$@"
  wait "$FS_JOB_PID" || JOB_RC=$?
  say "     restore_fs_job.sh (${tag}) exit ${JOB_RC}; log ${OUT}/${tag}.log"
}

# start_fs_job TAG [VAR=VALUE...]: run_fs_job in the background; FS_JOB_PID is the job's own
# process, timeout(1), which passes a signal on to the job's whole process group.
start_fs_job() {
  local tag=$1 kv
  shift
  (
    export DP_DB_HOST="$RESTORE_ES_ADDR" DP_DB_PORT="$RESTORE_ES_PORT" DP_BACKUP_NAME=es-snap
    export DP_BACKUP_BASE_PATH=/fs/es-snap RESTORE_FS_REPOSITORY=fsr POLL_INTERVAL=1
    for kv in "$@"; do
      export "${kv?}"
    done
    exec timeout "$JOB_TIMEOUT" bash "${HERE}/lib/restore_fs_job.sh"
  ) >"${OUT}/${tag}.log" 2>&1 &
  FS_JOB_PID=$!
}

log_has() {
  grep -E -q -- "$2" "${OUT}/$1.log"
}

log_lacks() {
  ! grep -E -q -- "$2" "${OUT}/$1.log"
}

# repo_absent BACKUP: no repository of BACKUP's is registered (a restore's is its attempt's
# own, kb-<backup>[-<Restore>]-r<attempt>).
repo_absent() {
  es GET /_snapshot | jq -e --arg b "kb-$1" '
      keys | all(. != $b and ((startswith($b + "-") and (.[($b | length) + 1:] | test("^([0-9a-f]{8}-)?r[0-9a-f]{6}$"))) | not))' >/dev/null
}

# node_pid N: the pid cluster.sh recorded for OpenSearch node N, if it still runs.
node_pid() {
  local file="${E2E_WORK}/run/node-$1.pid" pid marker
  { read -r pid && read -r marker; } <"$file" || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
  printf '%s' "$pid"
}

# wait_for_log TAG REGEX SECONDS
wait_for_log() {
  local deadline=$((SECONDS + $3))
  until grep -E -q -- "$2" "${OUT}/$1.log" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# ====================================================================================
# Part 1: OpenSearch cluster, S3, the whole job
# ====================================================================================

start_cluster() {
  [[ -x $AGENT_BIN ]] || {
    say "agent binary ${AGENT_BIN} missing: build it first"
    exit 2
  }
  CLUSTER_STARTED=true
  AGENT_BIN=$AGENT_BIN bash "${HERE}/cluster.sh" start >"${OUT}/cluster.log" 2>&1 || {
    tail -n 30 "${OUT}/cluster.log"
    say "the cluster did not start"
    exit 2
  }
  ES_TARGET=$E2E_ES_URL
  CURL_AUTH="${PRIVATE}/os.curlrc"
  printf 'header = "Authorization: Basic %s"\n' \
    "$(printf '%s:%s' "$(cred ELASTIC_USERNAME "$E2E_AGENT_CREDENTIALS")" "$(cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS")" | base64 -w0)" \
    >"$CURL_AUTH"
  chmod 0600 "$CURL_AUTH"
  # Kept now: cluster.sh stop removes the credentials.
  {
    cred S3_ACCESS_KEY "$E2E_S3_CREDENTIALS"
    cred S3_SECRET_KEY "$E2E_S3_CREDENTIALS"
    cred ELASTIC_PASSWORD "$E2E_AGENT_CREDENTIALS"
    sed -n 's/^header = "Authorization: Basic \(.*\)"$/\1/p' "$CURL_AUTH"
  } | grep -v '^$' >"${PRIVATE}/secrets.txt"
  chmod 0600 "${PRIVATE}/secrets.txt"
}

# The data and the two backups every Part 1 test restores: BASE (this addon's layout) and
# UPSTREAM (the upstream addon's: the repository two directories above the Backup's path).
setup_cluster_data() {
  make_index r-alpha 3 1 1500 &&
    make_index r-beta 1 1 600 &&
    make_index r-big 2 0 3000 8 || return 1
  es PUT /_index_template/logs-r --data-binary '{"index_patterns":["logs-r*"],"data_stream":{},"priority":500}' >/dev/null
  # Global state only (no index uses it): what a restore with the global state brings back.
  es PUT /_index_template/r-tmpl --data-binary '{"index_patterns":["r-tmpl-*"],"priority":10,"template":{"settings":{"number_of_shards":1}}}' >/dev/null
  bulk_load logs-r 200 1 create || return 1
  local i
  for i in r-alpha r-beta r-big logs-r; do
    SNAP_FP[$i]=$(fingerprint "$i")
  done
  BASE="r-base-${RUN_ID}"
  UPSTREAM="r-up-${RUN_ID}"
  UPSTREAM_PARENT="/e2e/r-cluster-0b5e6f"
  SCRIPT=backup.sh run_job setup-backup "DP_BACKUP_NAME=${BASE}" "DP_BACKUP_INFO_FILE=${OUT}/setup-backup.info"
  [[ $JOB_RC == 0 ]] || return 1
  # As the upstream addon lays it out: its repository's base_path is /<ns>/<cluster>-<uid>.
  SCRIPT=backup.sh run_job setup-upstream "DP_BACKUP_NAME=${UPSTREAM}" "DP_BACKUP_INFO_FILE=${OUT}/setup-upstream.info" \
    "DP_BACKUP_BASE_PATH=${UPSTREAM_PARENT}"
  [[ $JOB_RC == 0 ]]
}

test_conflicts_fail_by_default() {
  local before after
  before=$(state_summary)
  run_job conflicts "DP_BACKUP_NAME=${BASE}"
  after=$(state_summary)
  check "restore fails" test "$JOB_RC" -ne 0
  check "every conflict listed: r-alpha" log_has conflicts "ERROR: .*r-alpha \\(open index\\)"
  check "every conflict listed: r-beta and r-big" log_has conflicts "ERROR: .*r-beta \\(open index\\), r-big \\(open index\\)"
  check "every conflict listed: the data stream and its backing index" \
    log_has conflicts "ERROR: .*index of data stream logs-r\\).*logs-r \\(data stream\\)"
  check "says nothing was changed and how to choose" log_has conflicts "Nothing was changed. Choose RESTORE_CONFLICT_MODE=rename"
  check "no restore started" log_lacks conflicts "restore of ${BASE} started"
  check "nothing paused before the pre-flight passed" log_lacks conflicts "ISM:"
  check "indices, data streams, aliases and repositories unchanged" test "$before" == "$after"
  check "r-alpha's documents unchanged" test "$(fingerprint r-alpha)" == "${SNAP_FP[r-alpha]}"
  check "repository unregistered" repo_absent "$BASE"
}

test_close_mode_overwrites_only_the_conflict() {
  add_doc r-alpha
  add_doc r-beta
  local beta_now
  beta_now=$(fingerprint r-beta)
  run_job close "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-alpha RESTORE_CONFLICT_MODE=close
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "the conflict is listed with its mode" log_has close "conflicts \\(1, settled by mode close\\): r-alpha \\(open index\\)"
  check "r-alpha was closed, then restored" log_has close "closed: r-alpha"
  check "OpenSearch without ISM: nothing to pause, said so" log_has close "ISM: plugin opensearch-index-management not installed"
  check "done means primaries active" log_has close "every restored primary shard is active \\(1 index"
  check "and their recoveries done" log_has close "recoveries: every restored primary DONE"
  check "r-alpha is open again" test "$(index_status r-alpha)" == open
  check "r-alpha holds the snapshot's documents" test "$(fingerprint r-alpha)" == "${SNAP_FP[r-alpha]}"
  check "r-beta (not selected) kept its new document" test "$(fingerprint r-beta)" == "$beta_now"
}

test_close_mode_cannot_close_a_data_stream() {
  local before after
  before=$(state_summary)
  run_job close-ds "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=logs-r RESTORE_CONFLICT_MODE=close
  after=$(state_summary)
  check "restore fails" test "$JOB_RC" -ne 0
  check "says close cannot settle a data stream" log_has close-ds "RESTORE_CONFLICT_MODE close cannot settle: .*logs-r \\(data stream\\).*Nothing was changed"
  check "nothing closed or changed" test "$before" == "$after"
}

test_delete_mode_deletes_only_what_collides() {
  add_doc logs-r
  make_index r-keep 1 0 5
  local keep alpha
  keep=$(fingerprint r-keep)
  alpha=$(fingerprint r-alpha)
  run_job delete "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-beta,logs-r RESTORE_CONFLICT_MODE=delete
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "deleted the colliding data stream" log_has delete "deleted data stream\\(s\\): logs-r$"
  check "deleted the colliding index, by name" log_has delete "deleted: r-beta \\(RESTORE_CONFLICT_MODE=delete\\)"
  check "nothing else deleted" test "$(grep -c -E 'deleted( data stream\(s\))?: ' "${OUT}/delete.log")" -eq 2
  check "the restore was tried under temporary names first" \
    log_has delete "delete mode: the engine accepted the restore under temporary names, the trial's indices are deleted"
  check "no trial index or data stream left" test "$(trial_leftovers)" == ""
  check "r-beta holds the snapshot's documents" test "$(fingerprint r-beta)" == "${SNAP_FP[r-beta]}"
  check "logs-r holds the snapshot's documents" test "$(fingerprint logs-r)" == "${SNAP_FP[logs-r]}"
  check "r-keep (not in the snapshot) untouched" test "$(fingerprint r-keep)" == "$keep"
  check "r-alpha (not selected) untouched" test "$(fingerprint r-alpha)" == "$alpha"
}

# trial_leftovers [indices]: the names the delete mode's trial restores under, if any is left
# (indices only: for the Elasticsearch node, whose distribution has no data streams).
trial_leftovers() {
  local indices streams=''
  indices=$(es GET '/_cat/indices/kb-trial-*,.ds-kb-trial-*?h=index&expand_wildcards=all') || {
    echo '(indices unreadable)'
    return
  }
  [[ ${1:-} == indices ]] || streams=$(es GET '/_data_stream/kb-trial-*' | jq -r '.data_streams[].name') || {
    echo '(data streams unreadable)'
    return
  }
  printf '%s%s' "${indices//[[:space:]]/}" "$streams"
}

test_delete_mode_trial_refused_deletes_nothing() {
  # The trial restore (under temporary names) meets the shard limit while nothing is
  # deleted yet: the job stops there.
  local before after beta
  add_doc r-beta
  beta=$(fingerprint r-beta)
  before=$(state_summary)
  es PUT /_cluster/settings --data-binary '{"persistent":{"cluster.max_shards_per_node":1}}' >/dev/null
  run_job trial-refused "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-beta RESTORE_CONFLICT_MODE=delete
  es PUT /_cluster/settings --data-binary '{"persistent":{"cluster.max_shards_per_node":null}}' >/dev/null
  after=$(state_summary)
  check "restore fails" test "$JOB_RC" -ne 0
  check "the engine's refusal of the trial and its cause named" \
    log_has trial-refused "ERROR: delete mode: the engine refused the restore \(tried under temporary names first\): HTTP [0-9]+: .*shards.*Nothing was deleted"
  check "with the way out: the trial's shards count beside those the delete frees" \
    log_has trial-refused "raise cluster.max_shards_per_node for the restore, or use RESTORE_CONFLICT_MODE=close, which needs no trial"
  check "nothing deleted" log_lacks trial-refused "deleted( data stream\(s\))?: "
  check "indices, data streams, aliases and repositories unchanged" test "$before" == "$after"
  check "r-beta keeps its document added after the backup" test "$(fingerprint r-beta)" == "$beta"
  check "no trial index left" test "$(trial_leftovers)" == ""
  check "repository unregistered" repo_absent "$BASE"
}

test_delete_mode_alias_refusal_restores_without_aliases() {
  # A snapshot whose alias names an index the target keeps: no listing of the snapshot names
  # its aliases, so only the engine sees the collision, at the restore, after the delete
  # mode has deleted. The indices then come back without the aliases, and the job fails.
  local snap="r-al-${RUN_ID}" view snap_fp
  make_index r-al 1 0 20 &&
    es POST /_aliases --data-binary '{"actions":[{"add":{"index":"r-al","alias":"r-al-view"}}]}' >/dev/null
  SCRIPT=backup.sh run_job al-backup "DP_BACKUP_NAME=${snap}" BACKUP_INDICES=r-al "DP_BACKUP_INFO_FILE=${OUT}/al-backup.info"
  check "the backup with the alias exits 0" test "$JOB_RC" -eq 0
  snap_fp=$(fingerprint r-al)
  es POST /_aliases --data-binary '{"actions":[{"remove":{"index":"r-al","alias":"r-al-view"}}]}' >/dev/null
  make_index r-al-view 1 0 3
  add_doc r-al
  view=$(fingerprint r-al-view)
  run_job al-delete "DP_BACKUP_NAME=${snap}" RESTORE_INDICES=r-al RESTORE_CONFLICT_MODE=delete
  check "restore fails" test "$JOB_RC" -ne 0
  check "the trial passed (it leaves the aliases out)" log_has al-delete "delete mode: the engine accepted the restore under temporary names"
  check "r-al was deleted, by name" log_has al-delete "deleted: r-al \(RESTORE_CONFLICT_MODE=delete\)"
  check "the alias refusal is named, then the restore goes on without aliases" \
    log_has al-delete "WARNING: the engine refused the restore with the snapshot's aliases \(HTTP [0-9]+: .*r-al-view.*\); r-al deleted already: restoring without the aliases"
  check "the job's error says the indices are back without the aliases, and why" \
    log_has al-delete "ERROR: restore of ${snap}: the indices are back, WITHOUT the snapshot's aliases: the engine refused them \(HTTP [0-9]+: .*r-al-view.*\) after r-al had been deleted"
  check "r-al holds the snapshot's documents" test "$(fingerprint r-al)" == "$snap_fp"
  check "r-al-view untouched" test "$(fingerprint r-al-view)" == "$view"
  check "no trial index left" test "$(trial_leftovers)" == ""
  check "repository unregistered" repo_absent "$snap"
  es DELETE /r-al,r-al-view >/dev/null
}

test_delete_mode_keeps_a_data_stream_restored_in_part() {
  # A backing index named alone collides with the data stream's own: deleting it would take
  # the whole data stream (its later backing indices too). Refused.
  local backing before after
  backing=$(es GET /_data_stream/logs-r | jq -r '.data_streams[0].indices[0].index_name')
  before=$(state_summary)
  run_job ds-part "DP_BACKUP_NAME=${BASE}" "RESTORE_INDICES=${backing}" RESTORE_CONFLICT_MODE=delete
  after=$(state_summary)
  check "restore fails" test "$JOB_RC" -ne 0
  check "naming the backing index and its data stream" \
    log_has ds-part "ERROR: RESTORE_CONFLICT_MODE delete would delete whole data streams of which only backing indices are restored: ${backing//./\\.} \(of data stream logs-r\).*Nothing was changed"
  check "nothing changed" test "$before" == "$after"
}

test_delete_mode_refuses_a_data_stream_rolled_over_since() {
  # logs-r rolled over after the backup: its new backing index holds documents the snapshot
  # lacks, and deleting the data stream would take them. Refused, nothing changed; then the
  # data stream is put back as the snapshot has it, for the tests after this one.
  local before after newer
  es POST /logs-r/_rollover >/dev/null
  add_doc logs-r
  newer=$(es GET /_data_stream/logs-r | jq -r '.data_streams[0].indices[-1].index_name')
  before=$(state_summary)
  run_job ds-newer "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=logs-r RESTORE_CONFLICT_MODE=delete
  after=$(state_summary)
  check "restore fails" test "$JOB_RC" -ne 0
  check "naming the backing index the snapshot lacks" \
    log_has ds-newer "ERROR: RESTORE_CONFLICT_MODE delete would delete data stream backing indices that snapshot ${BASE} does not hold \(logs-r: ${newer//./\\.}\): their documents would be lost.*Nothing was changed"
  check "nothing deleted" log_lacks ds-newer "deleted( data stream\(s\))?: "
  check "nothing changed" test "$before" == "$after"
  es DELETE /_data_stream/logs-r >/dev/null
  run_job ds-reset "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=logs-r
  check "logs-r restored as the snapshot has it, for the next tests" test "$(fingerprint logs-r)" == "${SNAP_FP[logs-r]}"
}

test_rename_restores_beside_the_originals() {
  local alpha beta
  alpha=$(fingerprint r-alpha)
  beta=$(fingerprint r-beta)
  run_job rename "DP_BACKUP_NAME=${BASE}" 'RESTORE_INDICES=r-alpha,r-beta' RESTORE_CONFLICT_MODE=rename \
    'RESTORE_RENAME_PATTERN=^r-(.+)$' 'RESTORE_RENAME_REPLACEMENT=copy-$1'
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "names the renames" log_has rename "renamed: r-alpha -> copy-alpha, r-beta -> copy-beta"
  check "no conflict after the rename" log_has rename "conflicts: none"
  check "copy-alpha holds r-alpha's snapshot documents" test "$(fingerprint copy-alpha)" == "${SNAP_FP[r-alpha]}"
  check "copy-beta holds r-beta's snapshot documents" test "$(fingerprint copy-beta)" == "${SNAP_FP[r-beta]}"
  check "the originals untouched" test "$(fingerprint r-alpha) $(fingerprint r-beta)" == "$alpha $beta"

  local before after
  before=$(state_summary)
  run_job rename-again "DP_BACKUP_NAME=${BASE}" RESTORE_CONFLICT_MODE=rename \
    'RESTORE_RENAME_PATTERN=^r-(.+)$' 'RESTORE_RENAME_REPLACEMENT=copy-$1'
  after=$(state_summary)
  check "a rename that still collides fails" test "$JOB_RC" -ne 0
  check "listing the renamed names that exist" log_has rename-again "ERROR: .*copy-alpha \\(open index\\), copy-beta \\(open index\\)"
  check "and the data stream the pattern leaves as it is" log_has rename-again "ERROR: .*logs-r \\(data stream\\)"
  check "saying which the pattern does not rename, and what to do for each kind" \
    log_has rename-again "RESTORE_RENAME_PATTERN does not rename .*logs-r \\(data stream\\): widen the pattern to them, or leave them out of RESTORE_INDICES; for the renamed ones choose another RESTORE_RENAME_REPLACEMENT"
  check "nothing changed" test "$before" == "$after"
}

test_upstream_layout_restores() {
  es DELETE /r-beta >/dev/null
  run_job upstream "DP_BACKUP_NAME=${UPSTREAM}" RESTORE_INDICES=r-beta \
    "DP_BACKUP_BASE_PATH=${UPSTREAM_PARENT}/elasticsearch/${UPSTREAM}"
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "looked at the Backup's own path first" log_has upstream "snapshot ${UPSTREAM} is not at e2e${UPSTREAM_PARENT#/e2e}/elasticsearch/${UPSTREAM}: trying the upstream addon's layout, base_path e2e${UPSTREAM_PARENT#/e2e}$"
  check "found it there" log_has upstream "snapshot ${UPSTREAM} found in the upstream addon's layout"
  check "r-beta holds the snapshot's documents" test "$(fingerprint r-beta)" == "${SNAP_FP[r-beta]}"
  check "repository unregistered" repo_absent "$UPSTREAM"
}

test_global_state_and_names_in_batches() {
  # The global state (an index template) comes back when asked; the names go to the engine
  # one a request (NAMES_PER_REQUEST=1), in the wait and the checks after it.
  es DELETE /_index_template/r-tmpl >/dev/null
  local keep before after
  before=$(state_summary)
  run_job global-partial "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-alpha,r-beta RESTORE_CONFLICT_MODE=delete \
    RESTORE_INCLUDE_GLOBAL_STATE=true
  after=$(state_summary)
  check "the global state without the snapshot's data stream is refused (OpenSearch would fail it)" test "$JOB_RC" -ne 0
  check "naming the data stream left out and the ways out" \
    log_has global-partial "ERROR: RESTORE_INCLUDE_GLOBAL_STATE=true with data stream\\(s\\) of the snapshot left out \\(logs-r\\): OpenSearch fails such a restore; add them to RESTORE_INDICES, or restore without the global state: nothing restored"
  check "before the delete mode deleted anything" test "$before" == "$after"
  keep=$(fingerprint r-big)
  run_job global "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-alpha,r-beta,logs-r RESTORE_CONFLICT_MODE=delete \
    RESTORE_INCLUDE_GLOBAL_STATE=true NAMES_PER_REQUEST=1
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "the request asks for the global state" log_has global "restore of ${BASE} started \\(indices 'logs-r,r-alpha,r-beta', global state true"
  check "the index template of the global state is back" test "$(es_status GET /_index_template/r-tmpl)" == 200
  check "done means both indices' primaries active, read one name a request" \
    log_has global "every restored primary shard is active \\(3 index\\(es\\), [0-9]+s, ([3-9]|[1-9][0-9]+) health read\\(s\\)\\)"
  check "recoveries checked for both" log_has global "recoveries: every restored primary DONE"
  check "both reported" log_has global "restored indices: [0-9] green, [0-9] yellow"
  check "r-alpha holds the snapshot's documents" test "$(fingerprint r-alpha)" == "${SNAP_FP[r-alpha]}"
  check "r-beta holds the snapshot's documents" test "$(fingerprint r-beta)" == "${SNAP_FP[r-beta]}"
  check "logs-r holds the snapshot's documents" test "$(fingerprint logs-r)" == "${SNAP_FP[logs-r]}"
  check "r-big (not selected) untouched" test "$(fingerprint r-big)" == "$keep"
}

test_missing_snapshot_changes_nothing() {
  local name="r-none-${RUN_ID}" before after
  before=$(state_summary)
  run_job missing "DP_BACKUP_NAME=${name}"
  after=$(state_summary)
  check "restore fails" test "$JOB_RC" -ne 0
  check "says where it looked, both layouts" \
    log_has missing "snapshot ${name} does not exist in bucket ${E2E_BUCKET} at e2e/${POLICY}/${name}: nothing restored \\(nor at e2e, where the upstream addon keeps it\\)"
  check "nothing changed" test "$before" == "$after"
}

test_bad_options_fail_before_any_call() {
  local -a cases=(
    'RESTORE_CONFLICT_MODE=merge|RESTORE_CONFLICT_MODE .merge. is not one of fail, rename, close, delete'
    'RESTORE_CONFLICT_MODE=rename|RESTORE_CONFLICT_MODE rename needs RESTORE_RENAME_PATTERN'
    'RESTORE_RENAME_PATTERN=(|RESTORE_RENAME_PATTERN is set but RESTORE_RENAME_REPLACEMENT is empty'
    'RESTORE_REPLICAS=-1|RESTORE_REPLICAS .-1. is not a whole number'
    'MAX_RESTORE_BYTES_PER_SEC=fast|MAX_RESTORE_BYTES_PER_SEC .fast. is not a byte rate'
    'RESTORE_FEATURE_STATES=a b|RESTORE_FEATURE_STATES .a b. is not'
    'RESTORE_INCLUDE_GLOBAL_STATE=maybe|RESTORE_INCLUDE_GLOBAL_STATE .maybe. is not a boolean'
    'RESTORE_TIMEOUT=0|RESTORE_TIMEOUT .0. is not a positive number'
    'RESTORE_LAYOUT=sideways|RESTORE_LAYOUT .sideways. is not one of auto, own, upstream'
    'RESTORE_INDICES=a b|RESTORE_INDICES .a b. holds blanks'
  )
  local c i=0
  for c in "${cases[@]}"; do
    i=$((i + 1))
    run_job "option-${i}" "DP_BACKUP_NAME=${BASE}" "${c%%|*}"
    check "${c%%|*}: refused" test "$JOB_RC" -eq 1
    check "${c%%|*}: says why" log_has "option-${i}" "ERROR: ${c#*|}"
    check "${c%%|*}: before any call" log_lacks "option-${i}" "nodes: "
  done
  run_job option-regex "DP_BACKUP_NAME=${BASE}" 'RESTORE_RENAME_PATTERN=(' RESTORE_RENAME_REPLACEMENT=x
  check "an invalid pattern is refused before any call" log_has option-regex "ERROR: RESTORE_RENAME_PATTERN .\\(. is not a valid regular expression"
  run_job option-delete-rename "DP_BACKUP_NAME=${BASE}" RESTORE_CONFLICT_MODE=delete \
    'RESTORE_RENAME_PATTERN=^r-(.+)$' 'RESTORE_RENAME_REPLACEMENT=copy-$1'
  check "a rename with the delete mode is refused before any call" \
    log_has option-delete-rename "ERROR: RESTORE_RENAME_PATTERN with RESTORE_CONFLICT_MODE delete: a rename goes with mode rename \\(or fail\\)"
  check "a rename with the delete mode: before any call" log_lacks option-delete-rename "nodes: "

  local before after
  before=$(state_summary)
  run_job option-nope "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-alpha,nope
  check "an index the snapshot lacks is refused" log_has option-nope "ERROR: RESTORE_INDICES names what snapshot ${BASE} does not hold: nope: nothing restored"
  run_job option-features "DP_BACKUP_NAME=${BASE}" RESTORE_FEATURE_STATES=tasks
  check "feature states refused on OpenSearch, saying where system indices travel" \
    log_has option-features "ERROR: RESTORE_FEATURE_STATES 'tasks': feature states exist on Elasticsearch 7.12 and later only; on opensearch 3.6.0 system indices travel with the indices"
  after=$(state_summary)
  check "nothing changed" test "$before" == "$after"
}

# stop_node_for N SECONDS: SIGSTOP node N's process group (it answers nothing) for a while.
stop_node_for() {
  local pid
  pid=$(node_pid "$1") || return 1
  kill -STOP -- "-$pid"
  STOPPED_PIDS+=("-$pid")
  sleep "$2"
  kill -CONT -- "-$pid"
  STOPPED_PIDS=()
}

test_unreachable_while_waiting_then_back() {
  es DELETE /r-big >/dev/null
  run_job unreachable "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-big MAX_RESTORE_BYTES_PER_SEC=16kb \
    ES_TIMEOUT=3 ES_CONNECT_TIMEOUT=2 PROGRESS_INTERVAL=2 POLL_INTERVAL=2 &
  local job=$! took reads
  if wait_for_log unreachable "restore of ${BASE} started" 120; then
    sleep 1
    stop_node_for 1 9
  else
    ERRORS+=("the restore never started")
  fi
  wait "$job" || true
  check "restore exits 0" log_has unreachable "restore ${BASE} done in "
  check "the unanswered reads were reported" log_has unreachable "WARNING: cluster health unreadable while waiting \\(curl: \\(28\\) .*\\): retrying for up to 300s"
  check "then the cluster answered again" log_has unreachable "the cluster answers again \\(after [0-9]+s\\)"
  check "the throttled restore was reported while it ran" log_has unreachable "restore in progress: [1-9][0-9]* shard\\(s\\) recovering from the snapshot, [0-9.]+ of [0-9.]+ MiB"
  # The engines call a restoring index yellow at once: the reads are held by the engine
  # (wait_for_active_shards) and paced by the job's back-off, not made in a tight loop.
  read -r took reads < <(sed -nE 's/.*every restored primary shard is active \([0-9]+ index\(es\), ([0-9]+)s, ([0-9]+) health read\(s\)\).*/\1 \2/p' "${OUT}/unreachable.log") || true
  check "health read at most once every POLL_INTERVAL (2s) after the first: ${reads:-no} reads in ${took:-no}s" \
    test "${reads:-999999}" -le "$((${took:-0} / 2 + 6))"
  check "r-big holds the snapshot's documents" test "$(fingerprint r-big)" == "${SNAP_FP[r-big]}"
}

test_unreachable_too_long_says_unknown() {
  es DELETE /r-big >/dev/null
  run_job unknown "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-big MAX_RESTORE_BYTES_PER_SEC=32kb \
    ES_TIMEOUT=2 ES_CONNECT_TIMEOUT=2 RESTORE_UNREACHABLE_TIMEOUT=4 &
  local job=$!
  if wait_for_log unknown "restore of ${BASE} started" 120; then
    sleep 1
    stop_node_for 1 12
  else
    ERRORS+=("the restore never started")
  fi
  wait "$job" || true
  check "restore fails" log_has unknown "restore ${BASE} FAILED"
  check "saying the outcome is unknown, not success" \
    log_has unknown "ERROR: restore of ${BASE}: the cluster did not answer for 4s \\(RESTORE_UNREACHABLE_TIMEOUT\\) while the restore ran: its outcome is unknown"
  check "never claims done" log_lacks unknown "done in"
  # The engine went on: the data arrives.
  # Green, not yellow: the engines call an index yellow while a primary is still
  # restoring from the snapshot; r-big has no replicas, so green is every primary done.
  es GET '/_cluster/health/r-big?wait_for_status=green&timeout=90s' >/dev/null || true
  local got
  got=$(fingerprint r-big) || true
  check "the engine finished the restore: r-big holds the snapshot's documents" test "$got" == "${SNAP_FP[r-big]}"
  unregister_left_repository
  [[ $got == "${SNAP_FP[r-big]}" ]] || {
    say "     r-big: '${got}', snapshot's '${SNAP_FP[r-big]}'"
    es GET '/_cat/shards/r-big?v' || true
    es GET '/_cat/recovery/r-big?v&h=index,shard,stage,type,files_percent,bytes_percent' || true
    es GET '/_cluster/health/r-big' || true
  } >&2
}

test_restore_deadline_leaves_it_to_the_engine() {
  # RESTORE_TIMEOUT reached while primaries still restore: the job fails naming them and the
  # deadline, never claims done, and leaves the repository and keys to the engine, which
  # finishes the restore.
  es DELETE /r-big >/dev/null
  run_job deadline "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-big MAX_RESTORE_BYTES_PER_SEC=16kb RESTORE_TIMEOUT=3
  check "restore fails" test "$JOB_RC" -ne 0
  check "it had started" log_has deadline "restore of ${BASE} started"
  check "naming the deadline and the primaries still restoring" \
    log_has deadline "ERROR: restore of ${BASE}: deadline of 3s \\(RESTORE_TIMEOUT\\) reached with inactive primaries: r-big\\[[0-9]+\\].*\\(the engine goes on restoring\\)"
  check "never claims done" log_lacks deadline "done in"
  check "the repository and client left to the engine are said so" \
    log_has deadline "WARNING: the engine may still be using repository kb-${BASE}-r[0-9a-f]{6} and S3 client"
  check "the engine finished the restore: r-big holds the snapshot's documents" wait_for_fingerprint r-big
  unregister_left_repository
}

test_sigterm_while_restoring_leaves_it_to_the_engine() {
  es DELETE /r-big >/dev/null
  run_job term "DP_BACKUP_NAME=${BASE}" RESTORE_INDICES=r-big MAX_RESTORE_BYTES_PER_SEC=64kb &
  local job=$! timeout_pid
  if wait_for_log term "restore of ${BASE} started" 120; then
    sleep 1
    # The job's own process is timeout(1), the child of the background subshell; it passes
    # SIGTERM on to the job as the kubelet's would reach it.
    timeout_pid=$(ps -o pid= --ppid "$job" | head -n1 | tr -d ' ')
    [[ -n $timeout_pid ]] && kill -TERM "$timeout_pid"
  else
    ERRORS+=("the restore never started")
  fi
  wait "$job" || true
  check "the job ends as terminated" log_has term "restore ${BASE} FAILED \\(exit 143\\)"
  check "its clean-up bounded for the pod's grace period" log_has term "stopped by a signal: the clean-up ends within 25s \\(EXIT_GRACE\\), each of its calls within 10s"
  check "the repository and the S3 client left to the engine, with how to remove them" \
    log_has term "WARNING: the engine may still be using repository kb-${BASE}-r[0-9a-f]{6} and S3 client kb_"
  check "so the engine finishes the restore: r-big holds the snapshot's documents" wait_for_fingerprint r-big
  unregister_left_repository
}

# unregister_left_repository: what the job's warning says to do once the engine has ended
# (DELETE _snapshot/<repo>), so that the next job registers its own settings.
unregister_left_repository() {
  local repo
  repo=$(es GET /_snapshot | jq -r --arg b "kb-${BASE}-r" '[keys[] | select(startswith($b))][0] // "none"')
  check "the repository left behind unregisters as the warning says" es DELETE "/_snapshot/${repo}" -o /dev/null
}

# wait_for_fingerprint INDEX: once INDEX is green (a restoring index is yellow already), its
# documents are the snapshot's.
wait_for_fingerprint() {
  es GET "/_cluster/health/$1?wait_for_status=green&timeout=90s" >/dev/null || true
  [[ $(fingerprint "$1") == "${SNAP_FP[$1]}" ]]
}

# ====================================================================================
# Part 2: one Elasticsearch node, shared-filesystem repository, restore.sh's functions
# ====================================================================================

start_es() {
  bash "${HERE}/cluster.sh" stop >/dev/null 2>&1 || true
  CLUSTER_STARTED=false
  ES_STARTED=true
  restore_es_start || {
    say "the Elasticsearch node did not start"
    exit 2
  }
  python3 "${HERE}/lib/features_double.py" "$RESTORE_ES_ADDR" "$DOUBLE_PORT" "$RESTORE_ES_URL" \
    >"${OUT}/double.log" 2>&1 &
  DOUBLE_PID=$!
  ES_TARGET=$RESTORE_ES_URL
  CURL_AUTH="${PRIVATE}/none.curlrc"
  : >"$CURL_AUTH"
  local i
  for i in $(seq 50); do
    [[ $(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 2 "${DOUBLE_URL}/_double/state" || true) == 200 ]] && return 0
    sleep 0.2
  done
  say "the test double did not start"
  exit 2
}

# A task result in .tasks (the 'tasks' feature state): force-merge is the one task with a
# stored result that this distribution can run.
store_task_result() {
  es POST "/$1/_forcemerge?wait_for_completion=false" >/dev/null
  local _
  for _ in $(seq 50); do
    [[ $(es GET "/.tasks/_count?expand_wildcards=all" 2>/dev/null | jq -r '.count // 0') -ge $2 ]] && return 0
    es POST '/.tasks/_refresh?expand_wildcards=all' >/dev/null 2>&1 || true
    sleep 0.2
  done
  return 1
}

tasks_count() {
  es POST '/.tasks/_refresh?expand_wildcards=all' >/dev/null 2>&1 || true
  es GET '/.tasks/_count?expand_wildcards=all' | jq -r '.count'
}

setup_es_data() {
  make_index e-one 2 0 20 &&
    make_index e-rep 1 1 10 &&
    make_index e-big 1 0 2000 8 || return 1
  store_task_result e-one 1 || return 1
  es PUT /_snapshot/fsr --data-binary "{\"type\":\"fs\",\"settings\":{\"location\":\"${RESTORE_ES_REPO_DIR}/fsr\",\"max_restore_bytes_per_sec\":\"64kb\"}}" >/dev/null
  es PUT '/_snapshot/fsr/es-snap?wait_for_completion=true' --data-binary '{"include_global_state":true}' |
    jq -e '.snapshot.state == "SUCCESS" and (.snapshot.feature_states | map(.feature_name) | index("tasks") != null)' >/dev/null || return 1
  local i
  for i in e-one e-rep e-big; do
    SNAP_FP[$i]=$(fingerprint "$i")
  done
  # A second task result, after the snapshot.
  store_task_result e-rep 2
}

double_state() {
  curl --silent --fail --max-time 5 "${DOUBLE_URL}/_double/state" | jq -c '{ilm, slm, watcher, ml_upgrade_mode}'
}

double_set() {
  curl --silent --fail --max-time 5 -X PUT --data-binary "$1" "${DOUBLE_URL}/_double/state" >/dev/null
}

double_calls() {
  curl --silent --fail --max-time 5 "${DOUBLE_URL}/_double/calls" | jq -r 'join(" ")'
}

test_es_feature_states_default_none() {
  es DELETE /e-one >/dev/null
  run_fs_job es-default RESTORE_INDICES=e-one
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "says what the snapshot holds" log_has es-default "snapshot contents: data streams: none; feature states: tasks; global state: included"
  check "the snapshot's 8.19 version range is understood" log_has es-default "version: snapshot 8\\.19\\.[0-9]+-8\\.19\\.21, cluster elasticsearch 8\\.19\\.21: restorable"
  check "no feature state by default" log_has es-default "feature states to restore: none \\(RESTORE_FEATURE_STATES=none\\)"
  check ".tasks keeps the result stored after the snapshot" test "$(tasks_count)" -eq 2
  check "e-one back" test "$(fingerprint e-one)" == "${SNAP_FP[e-one]}"
}

test_es_feature_state_restored_when_chosen() {
  run_fs_job es-tasks RESTORE_INDICES=e-one RESTORE_CONFLICT_MODE=delete RESTORE_FEATURE_STATES=tasks
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "names the feature state" log_has es-tasks "feature states to restore: tasks$"
  check "waits for the feature's system index too" log_has es-tasks "every restored primary shard is active \\(2 index"
  check ".tasks is the snapshot's (one result)" test "$(tasks_count)" -eq 1
  check "the delete mode tried the restore under temporary names first" \
    log_has es-tasks "delete mode: the engine accepted the restore under temporary names"
  check "no trial index left" test "$(trial_leftovers indices)" == ""
  check "e-one back" test "$(fingerprint e-one)" == "${SNAP_FP[e-one]}"
}

test_es_feature_state_and_system_index_refused() {
  local before after
  before=$(es GET '/_cat/indices?h=index,docs.count&s=index&expand_wildcards=all')
  run_fs_job es-bogus RESTORE_INDICES=e-one RESTORE_FEATURE_STATES=tasks,bogus
  check "an unknown feature state is refused" log_has es-bogus "ERROR: RESTORE_FEATURE_STATES names feature state\\(s\\) not in snapshot es-snap: bogus \\(it has: tasks\\)"
  run_fs_job es-system RESTORE_INDICES=.tasks
  check "a system index by name is refused" log_has es-system "ERROR: RESTORE_INDICES names system indices \\(\\.tasks\\): .* only with their feature state"
  after=$(es GET '/_cat/indices?h=index,docs.count&s=index&expand_wildcards=all')
  check "nothing changed" test "$before" == "$after"
}

test_es_single_node_keeps_replicas_yellow() {
  es DELETE /e-rep >/dev/null
  run_fs_job es-replicas RESTORE_INDICES=e-rep
  check "restore exits 0 (no hang)" test "$JOB_RC" -eq 0
  check "warns that the replicas cannot be placed, and how to lower them" \
    log_has es-replicas "WARNING: e-rep \\(1 replica\\(s\\)\\) cannot place every replica on 1 data node\\(s\\): .*RESTORE_REPLICAS=0 lowers"
  check "e-rep is yellow" test "$(es GET '/_cat/indices/e-rep?h=health' | tr -d ' \n')" == yellow
  check "e-rep back" test "$(fingerprint e-rep)" == "${SNAP_FP[e-rep]}"

  run_fs_job es-replicas0 RESTORE_INDICES=e-rep RESTORE_CONFLICT_MODE=delete RESTORE_REPLICAS=0
  check "restore with RESTORE_REPLICAS=0 exits 0" test "$JOB_RC" -eq 0
  check "no warning" log_lacks es-replicas0 "cannot place"
  check "says green" log_has es-replicas0 "restored indices: 1 green, 0 yellow"
  check "e-rep has 0 replicas" test "$(es GET '/e-rep/_settings/index.number_of_replicas?flat_settings=true' | jq -r '.["e-rep"].settings["index.number_of_replicas"]')" == 0
  check "e-rep back" test "$(fingerprint e-rep)" == "${SNAP_FP[e-rep]}"
}

test_es_features_paused_and_put_back() {
  double_set '{"ilm":"RUNNING","slm":"STOPPED","watcher":"started","ml_upgrade_mode":false,"fail":[]}'
  local before calls0
  before=$(double_state)
  calls0=$(double_calls)
  run_fs_job es-pause "DP_DB_PORT=${DOUBLE_PORT}" RESTORE_INDICES=e-one RESTORE_CONFLICT_MODE=delete
  check "restore exits 0" test "$JOB_RC" -eq 0
  check "ILM saved and paused" log_has es-pause "ILM: was RUNNING, paused for the restore"
  check "SLM already stopped: left alone" log_has es-pause "SLM: STOPPED already: left as it is"
  check "watcher and ML upgrade mode paused" log_has es-pause "ML upgrade mode: was upgrade_mode=false, paused"
  check "paused before the delete" test "$(grep -n 'paused for the restore' "${OUT}/es-pause.log" | tail -n1 | cut -d: -f1)" \
    -lt "$(grep -n 'deleted: e-one' "${OUT}/es-pause.log" | cut -d: -f1)"
  check "every feature back to its saved state" test "$(double_state)" == "$before"
  check "stopped and started in reverse order; SLM never touched" \
    test "$(double_calls)" == "${calls0:+$calls0 }ilm_stop watcher_stop ml_upgrade_on ml_upgrade_off watcher_start ilm_start"
  check "e-one back" test "$(fingerprint e-one)" == "${SNAP_FP[e-one]}"
}

test_es_features_put_back_when_the_restore_fails() {
  double_set '{"ilm":"RUNNING","slm":"RUNNING","watcher":"started","ml_upgrade_mode":false,"fail":[]}'
  local before
  before=$(double_state)
  # e-one with one shard: the snapshot's two-shard e-one cannot be restored over it.
  es DELETE /e-one >/dev/null
  make_index e-one 1 0 3
  local e_one
  e_one=$(fingerprint e-one)
  run_fs_job es-fail "DP_DB_PORT=${DOUBLE_PORT}" RESTORE_INDICES=e-one RESTORE_CONFLICT_MODE=close
  check "restore fails" test "$JOB_RC" -ne 0
  check "with the engine's cause" log_has es-fail "ERROR: restore of es-snap: engine answered HTTP [45][0-9]{2}: .*shards"
  check "the index it closed is reopened" log_has es-fail "reopened e-one: the restore did not start"
  check "e-one open with its own documents" test "$(index_status e-one) $(fingerprint e-one)" == "open $e_one"
  check "every feature back to its saved state" test "$(double_state)" == "$before"
  check "each put back" log_has es-fail "ILM: back to RUNNING"
  es DELETE /e-one >/dev/null
}

test_es_features_put_back_on_sigterm() {
  double_set '{"ilm":"RUNNING","slm":"RUNNING","watcher":"started","ml_upgrade_mode":false,"fail":[]}'
  local before
  before=$(double_state)
  es DELETE /e-big >/dev/null
  run_fs_job es-term "DP_DB_PORT=${DOUBLE_PORT}" RESTORE_INDICES=e-big &
  local job=$!
  if wait_for_log es-term "restore of es-snap started" 60; then
    sleep 1
    # The job's own process is timeout(1), the child of the background subshell; it passes
    # SIGTERM on to the job as the kubelet's would reach it.
    local timeout_pid
    timeout_pid=$(ps -o pid= --ppid "$job" | head -n1 | tr -d ' ')
    [[ -n $timeout_pid ]] && kill -TERM "$timeout_pid"
  else
    ERRORS+=("the restore never started")
  fi
  wait "$job" || true
  check "the job ends as terminated" log_has es-term "restore es-snap FAILED \\(exit 143\\)"
  check "every feature back to its saved state" test "$(double_state)" == "$before"
  es GET '/_cluster/health/e-big?wait_for_status=yellow&timeout=120s' >/dev/null || true
}

test_es_sigterm_during_a_held_put_back_is_bounded() {
  # The engine holds the call that puts ILM back (the last one, as features go back in reverse)
  # when SIGTERM comes: the signal is handled at once and the clean-up ends within EXIT_GRACE,
  # the held call cut off, ILM named to put back by hand.
  double_set '{"ilm":"RUNNING","slm":"RUNNING","watcher":"started","ml_upgrade_mode":false,"fail":[],"hold":{"ilm_start":60}}'
  local waited=0 t0 took rc=0 starts
  # The double's call list is the whole run's: this test's ilm_start is the one after these.
  starts=$(double_calls | tr ' ' '\n' | grep -c '^ilm_start$' || true)
  start_fs_job es-heldterm "DP_DB_PORT=${DOUBLE_PORT}" RESTORE_INDICES=e-one RESTORE_CONFLICT_MODE=delete \
    EXIT_GRACE=6 EXIT_CALL_TIMEOUT=3
  until (($(double_calls | tr ' ' '\n' | grep -c '^ilm_start$' || true) > starts)) || ! kill -0 "$FS_JOB_PID" 2>/dev/null ||
    ((waited > 600)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  sleep 0.5
  t0=$(date +%s%N)
  kill -TERM "$FS_JOB_PID"
  wait "$FS_JOB_PID" || rc=$?
  took=$((($(date +%s%N) - t0) / 1000000))
  double_set '{"hold":{},"ilm":"RUNNING"}'
  say "     restore_fs_job.sh (es-heldterm) exit ${rc} ${took} ms after SIGTERM; log ${OUT}/es-heldterm.log"
  check "the held call was reached" log_has es-heldterm "restore of es-snap started"
  check "the clean-up ended within EXIT_GRACE (6 s; took ${took} ms)" test "$took" -lt 7500
  check "said so from the signal on" log_has es-heldterm "stopped by a signal: the clean-up ends within 6s \\(EXIT_GRACE\\)"
  check "naming ILM to put back by hand" log_has es-heldterm "WARNING: ILM: could not be put back to RUNNING \\(no answer: .*\\): do it by hand"
  check "the job ends as terminated" log_has es-heldterm "restore es-snap FAILED \\(exit 143\\)"
  # The signal came inside a call whose answer the job reads into a variable: the exit's own
  # lines still reach the log (its second round of put-backs).
  check "the exit's own lines reach the log" test "$(grep -c 'ML upgrade mode: back to upgrade_mode=false' "${OUT}/es-heldterm.log")" -eq 2
  check "and no shell notice of the call the job stopped" log_lacks es-heldterm "User defined signal|Terminated|Killed"
  es DELETE /e-one >/dev/null || true
}

test_es_pause_answered_late_is_put_back() {
  # The engine applies a pause but answers too late (the job's call times out): the job stops,
  # and its exit puts that feature back too.
  double_set '{"ilm":"RUNNING","slm":"STOPPED","watcher":"stopped","ml_upgrade_mode":true,"fail":[],"hold":{"ilm_stop":8}}'
  run_fs_job es-latepause "DP_DB_PORT=${DOUBLE_PORT}" RESTORE_INDICES=e-one ES_VERIFY_TIMEOUT=3
  double_set '{"hold":{}}'
  check "the job fails at the pause" log_has es-latepause "ERROR: pausing ILM: no answer"
  check "its exit puts ILM back" log_has es-latepause "ILM: back to RUNNING"
  check "ILM runs" test "$(double_state | jq -r .ilm)" == RUNNING
}

test_es_feature_put_back_failure_fails_the_job() {
  double_set '{"ilm":"RUNNING","slm":"STOPPED","watcher":"stopped","ml_upgrade_mode":true,"fail":["ilm_start"]}'
  run_fs_job es-resume-fail "DP_DB_PORT=${DOUBLE_PORT}" RESTORE_INDICES=e-one
  double_set '{"fail":[]}'
  check "the job fails" test "$JOB_RC" -ne 0
  check "naming the feature and what to do" log_has es-resume-fail "WARNING: ILM: could not be put back to RUNNING \\(HTTP 500: .*\\): do it by hand"
  check "though the restore itself was done" log_has es-resume-fail "ERROR: restore of es-snap done, but a paused feature could not be put back"
  check "e-one back" test "$(fingerprint e-one)" == "${SNAP_FP[e-one]}"
}

# ====================================================================================

# Version rules, without a cluster: restore.sh's own function on a table.
test_version_rules() {
  local dist target snap expect got
  while IFS='|' read -r dist target snap expect; do
    got=$(
      # shellcheck disable=SC1091
      source "${JOBS_DIR}/restore.sh"
      # shellcheck disable=SC2034 # read by version_refusal
      ENGINE_DISTRIBUTION=$dist ENGINE_VERSION=$target
      version_refusal "$snap"
    )
    if [[ $expect == ok ]]; then
      check "${dist} ${target} restores ${snap}" test -z "$got"
    else
      check "${dist} ${target} refuses ${snap} (${got:-no refusal})" test -n "$got"
      [[ -z $got || $got == *"$expect"* ]] || ERRORS+=("${dist} ${target}/${snap}: '${got}' lacks '${expect}'")
    fi
  done <<'EOF'
elasticsearch|8.19.21|8.19.9-8.19.21|ok
elasticsearch|8.19.21|7.17.3|ok
elasticsearch|9.1.0|8.18.0|ok
elasticsearch|8.10.0|8.11.0|newer than this cluster
elasticsearch|8.19.21|6.8.23|restores snapshots of Elasticsearch 7 and 8 only
elasticsearch|8.19.21|2.19.1|taken by OpenSearch
opensearch|3.6.0|2.19.1|ok
opensearch|3.6.0|3.6.0|ok
opensearch|3.6.0|3.7.0|newer than this cluster
opensearch|3.6.0|1.3.0|restores snapshots of OpenSearch 2 and 3 only
opensearch|3.6.0|7.10.2|not of Elasticsearch 7.10.2
opensearch|2.19.1|7.10.2|ok
opensearch|2.19.1|7.17.0|up to 7.10.2
opensearch|1.3.0|6.8.0|ok
opensearch|2.19.1|6.8.0|does not restore snapshots of Elasticsearch 6.8.0
EOF
}

test_no_secret_in_any_output() {
  local secrets="${PRIVATE}/secrets.txt" logs leaks
  logs=$(find "$OUT" -type f -name '*.log' | wc -l)
  check "the secrets file has the 4 values" test "$(wc -l <"$secrets")" -eq 4
  check "captured output exists (${logs} files)" test "$logs" -ge 20
  # -l prints only the names of the files that hold a secret, never the secret.
  leaks=$(grep -r -F -l -f "$secrets" "$OUT" || true)
  check "no S3 key or password in any captured output${leaks:+ (found in: ${leaks//$'\n'/ })}" test -z "$leaks"
}

main() {
  trap on_exit EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  declare -gA SNAP_FP=()
  rm -rf "$OUT" "$PRIVATE"
  install -d -m 0755 "$OUT"
  install -d -m 0700 "$PRIVATE"
  local t0=$SECONDS

  run_test test_version_rules

  say "starting the local cluster (3 OpenSearch nodes, agents, versitygw)"
  start_cluster
  say "loading data and taking the two backups ($((SECONDS - t0))s)"
  setup_cluster_data || {
    say "setting up the data failed"
    exit 2
  }
  run_test test_conflicts_fail_by_default
  run_test test_close_mode_overwrites_only_the_conflict
  run_test test_close_mode_cannot_close_a_data_stream
  run_test test_delete_mode_deletes_only_what_collides
  run_test test_delete_mode_trial_refused_deletes_nothing
  run_test test_delete_mode_alias_refusal_restores_without_aliases
  run_test test_delete_mode_keeps_a_data_stream_restored_in_part
  run_test test_delete_mode_refuses_a_data_stream_rolled_over_since
  run_test test_rename_restores_beside_the_originals
  run_test test_upstream_layout_restores
  run_test test_global_state_and_names_in_batches
  run_test test_missing_snapshot_changes_nothing
  run_test test_bad_options_fail_before_any_call
  run_test test_unreachable_while_waiting_then_back
  run_test test_unreachable_too_long_says_unknown
  run_test test_restore_deadline_leaves_it_to_the_engine
  run_test test_sigterm_while_restoring_leaves_it_to_the_engine

  say "starting the Elasticsearch node and the declared test double ($((SECONDS - t0))s)"
  start_es
  setup_es_data || {
    say "setting up the Elasticsearch data failed"
    exit 2
  }
  run_test test_es_feature_states_default_none
  run_test test_es_feature_state_restored_when_chosen
  run_test test_es_feature_state_and_system_index_refused
  run_test test_es_single_node_keeps_replicas_yellow
  run_test test_es_features_paused_and_put_back
  run_test test_es_features_put_back_when_the_restore_fails
  run_test test_es_features_put_back_on_sigterm
  run_test test_es_sigterm_during_a_held_put_back_is_bounded
  run_test test_es_pause_answered_late_is_put_back
  run_test test_es_feature_put_back_failure_fails_the_job
  run_test test_no_secret_in_any_output

  [[ $FAILED -eq 0 ]] || say "failed: ${FAILED_NAMES[*]}"
  say "took $((SECONDS - t0))s"
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [[ $FAILED -eq 0 ]]
}

main "$@"

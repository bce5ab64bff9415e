#!/usr/bin/env bash
# shellcheck disable=SC2016 # the jq programs are in single quotes on purpose
# End-to-end tests of backup.sh on a real Elasticsearch node, for what the OpenSearch cluster
# of test_jobs.sh cannot show: feature states (Elasticsearch 7.12+ only). The cached 8.19.21
# integ-test distribution has no S3 module, so the job's own functions run from its options to
# its backup info against a shared-filesystem repository (path.repo) that the test registers;
# the S3 steps (keystores, reload, S3 repository) are test_jobs.sh's. One node, started once
# (tests/e2e/lib/restore_es_node.sh) on BACKUP_ES_ADDR (127.0.0.95), stopped at the end.
#
# Ends with 'N passed, M failed'; exits non-zero when a test failed. Usage: as root,
# tests/e2e/test_backup_es.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/env.sh disable=SC1091
source "${HERE}/lib/env.sh"
RESTORE_ES_ADDR=${BACKUP_ES_ADDR:-127.0.0.95}
RESTORE_ES_DIR=${BACKUP_ES_DIR:-${E2E_WORK}-backup-es}
# shellcheck source=lib/restore_es_node.sh disable=SC1091
source "${HERE}/lib/restore_es_node.sh"

JOBS_DIR="${E2E_ROOT}/addons/elasticsearch/dataprotection"
OUT="${RESTORE_ES_DIR}-out"
REPO=fsb
RUN_ID=$(date -u +%H%M%S)
ES_STARTED=false
PASSED=0
FAILED=0
ERRORS=()

say() { printf '[test_backup_es] %s\n' "$*"; }

check() {
  local what=$1
  shift
  "$@" || ERRORS+=("$what")
}

run_test() {
  local name=$1 t0=$SECONDS e
  ERRORS=()
  say "RUN  ${name}"
  "$name" || ERRORS+=("the test stopped early (status $?)")
  if [[ ${#ERRORS[@]} -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    say "PASS ${name} ($((SECONDS - t0))s)"
  else
    FAILED=$((FAILED + 1))
    say "FAIL ${name} ($((SECONDS - t0))s)"
    for e in "${ERRORS[@]}"; do say "     - ${e}"; done
  fi
}

on_exit() {
  local rc=$?
  set +e
  [[ $ES_STARTED != true ]] || restore_es_stop
  exit "$rc"
}

# es METHOD PATH [CURL ARGS...]
es() {
  local method=$1 path=$2
  shift 2
  curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 120 --request "$method" \
    --header 'Content-Type: application/json' "$@" --url "${RESTORE_ES_URL}${path}"
}

# The job's own steps, sourced from backup.sh, on the test's shared-filesystem repository
# (run in a subshell: the job's EXIT trap reports and cleans up as in a real run).
fs_backup_job() {
  # shellcheck source=../../addons/elasticsearch/dataprotection/backup.sh disable=SC1091
  source "${JOBS_DIR}/backup.sh"
  job_init backup
  validate_backup_options
  load_job_env
  write_auth_config
  # The integ-test distribution answers no GET /: the version comes from the node's info.
  es_ok "node info" GET '/_nodes/_local?filter_path=nodes.*.version'
  ENGINE_DISTRIBUTION=elasticsearch
  ENGINE_VERSION=$(jq -r '[.nodes[].version][0]' "$ES_REPLY")
  log "cluster: ${ENGINE_DISTRIBUTION} ${ENGINE_VERSION}"
  job_preflight
  # Registered by the test, not by this job: the job must leave it. (Globals of common.sh.)
  # shellcheck disable=SC2034
  REPOSITORY=$REPO REPOSITORY_REGISTERED=false S3_BUCKET='(shared filesystem)' REPO_BASE_PATH=$REPO
  start_snapshot
  [[ $SNAPSHOT_DONE == true ]] || follow_snapshot
  write_backup_info
  job_done
}

# run_job TAG VAR=VALUE...: the job with a DataProtection job's environment; JOB_RC.
run_job() {
  local tag=$1 kv
  shift
  JOB_RC=0
  (
    export DP_DB_HOST=$RESTORE_ES_ADDR DP_DB_PORT=$RESTORE_ES_PORT DP_DB_USER='' DP_DB_PASSWORD=''
    export KB_NAMESPACE=e2e KB_CLUSTER_NAME=es POLL_INTERVAL=1 DP_BACKUP_INFO_FILE="${OUT}/${tag}.info"
    for kv in "$@"; do export "${kv?}"; done
    export DP_BACKUP_BASE_PATH="/fs/${DP_BACKUP_NAME}"
    fs_backup_job
  ) >"${OUT}/${tag}.log" 2>&1 || JOB_RC=$?
  say "     backup (${tag}) exit ${JOB_RC}; log ${OUT}/${tag}.log"
}

log_has() { grep -E -q -- "$2" "${OUT}/$1.log"; }

# jq_true ARG_JSON FILTER JSON: FILTER (which sees ARG_JSON as $arg) holds for JSON.
jq_true() { jq -e --argjson arg "$1" "$2" <<<"$3" >/dev/null; }

# snapshot NAME: the snapshot's info, straight from the node.
snapshot() { es GET "/_snapshot/${REPO}/$1" | jq -c '.snapshots[0]'; }

test_default_takes_every_feature_state() {
  local name="es-default-${RUN_ID}"
  run_job default "DP_BACKUP_NAME=${name}" BACKUP_INDICES=e-a
  check "exit 0" test "$JOB_RC" -eq 0
  check "by default the snapshot holds the tasks feature state (the .tasks system index)" \
    jq_true '"tasks"' '[.feature_states[].feature_name] | index($arg) != null' "$(snapshot "$name")"
}

test_feature_states_none_and_indices() {
  local name="es-none-${RUN_ID}" info
  run_job none "DP_BACKUP_NAME=${name}" BACKUP_FEATURE_STATES=none BACKUP_INDICES=e-a
  check "exit 0" test "$JOB_RC" -eq 0
  check "the request names the feature states" log_has none "snapshot ${name} started \\(indices e-a, global state true, partial false, feature states none\\)"
  info=$(snapshot "$name")
  check "the snapshot holds only e-a" test "$(jq -c '.indices' <<<"$info")" == '["e-a"]'
  check "and no feature state" test "$(jq -c '.feature_states' <<<"$info")" == '[]'
  check "SUCCESS" test "$(jq -r '.state' <<<"$info")" == SUCCESS
  check "the backup info names the snapshot" jq_true "\"$name\"" '.extras[0].snapshot == $arg and .extras[0].state == "SUCCESS"' "$(cat "${OUT}/none.info")"
  check "the test's repository is left registered" es GET "/_snapshot/${REPO}" --output /dev/null
}

test_named_feature_states() {
  # The node's own feature states, by name, as the Backup parameter lists them.
  local name="es-named-${RUN_ID}" features info
  features=$(es GET /_features | jq -r '[.features[].name] | sort | join(",")')
  check "the node lists its feature states" test -n "$features"
  run_job named "DP_BACKUP_NAME=${name}" "BACKUP_FEATURE_STATES=${features}"
  check "exit 0" test "$JOB_RC" -eq 0
  check "the request names them all" log_has named "feature states ${features}\\)"
  info=$(snapshot "$name")
  check "SUCCESS" test "$(jq -r '.state' <<<"$info")" == SUCCESS
  check "the tasks feature state is in the snapshot" \
    jq_true '"tasks"' '[.feature_states[].feature_name] | index($arg) != null' "$info"
  check "the snapshot's feature states are among those asked for" \
    jq_true "$(jq -n --arg f "$features" '$f')" '[.feature_states[].feature_name] - ($arg | split(",")) == []' "$info"
}

test_global_state_off_and_rerun() {
  local name="es-global-${RUN_ID}"
  run_job global "DP_BACKUP_NAME=${name}" BACKUP_INCLUDE_GLOBAL_STATE=false
  check "exit 0" test "$JOB_RC" -eq 0
  check "the snapshot has no global state" test "$(snapshot "$name" | jq -r '.include_global_state')" == false
  run_job global-rerun "DP_BACKUP_NAME=${name}" BACKUP_INCLUDE_GLOBAL_STATE=false
  check "a rerun exits 0" test "$JOB_RC" -eq 0
  check "taking the earlier snapshot as its result" log_has global-rerun "already completed \\(SUCCESS\\) by an earlier attempt of this Backup"
  check "the same snapshot" test "$(jq -r '.extras[0].uuid' "${OUT}/global-rerun.info")" == "$(jq -r '.extras[0].uuid' "${OUT}/global.info")"
}

# store_a_task_result: an asynchronous force-merge, whose result the node stores in its
# .tasks system index (the tasks feature state), so that there is a feature state to take.
store_a_task_result() {
  local task waited=0
  task=$(es POST '/e-b/_forcemerge?wait_for_completion=false' | jq -r '.task')
  until es GET "/_tasks/${task}" 2>/dev/null | jq -e ".completed == true" >/dev/null; do
    ((waited < 60)) || return 1
    sleep 0.5
    waited=$((waited + 1))
  done
  es POST /.tasks/_refresh --output /dev/null 2>/dev/null || true
}

main() {
  trap on_exit EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  say "starting Elasticsearch ${E2E_ELASTICSEARCH_VERSION} on ${RESTORE_ES_ADDR} (path.repo)"
  ES_STARTED=true
  restore_es_start || {
    say "the node did not start"
    exit 2
  }
  install -d -m 0755 "$OUT"
  es PUT "/_snapshot/${REPO}" --data-binary "$(jq -n --arg l "${RESTORE_ES_REPO_DIR}/${REPO}" '{type: "fs", settings: {location: $l}}')" >/dev/null
  es PUT /e-a --data-binary '{"settings":{"number_of_shards":1,"number_of_replicas":0}}' >/dev/null
  es PUT /e-b --data-binary '{"settings":{"number_of_shards":1,"number_of_replicas":0}}' >/dev/null
  es POST '/e-a/_doc?refresh=true' --data-binary '{"n":1}' >/dev/null
  es POST '/e-b/_doc?refresh=true' --data-binary '{"n":2}' >/dev/null
  store_a_task_result || {
    say "no task result was stored in .tasks"
    exit 2
  }

  run_test test_default_takes_every_feature_state
  run_test test_feature_states_none_and_indices
  run_test test_named_feature_states
  run_test test_global_state_off_and_rerun

  restore_es_stop
  ES_STARTED=false
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [[ $FAILED -eq 0 ]]
}

main "$@"

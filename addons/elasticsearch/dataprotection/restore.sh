#!/usr/bin/env bash
# KubeBlocks DataProtection restore job of the Elasticsearch/OpenSearch addon.
#
# Steps, one log line each (and one line per node where nodes are concerned):
#   1.-2. as backup.sh: the BackupRepo's keys into every node's keystore through the agents,
#      all in parallel, then POST /_nodes/reload_secure_settings, every node checked.
#   3. PUT _snapshot/kb-<backup>: the Backup's own path as a read-only S3 repository.
#   4. GET _snapshot/kb-<backup>/<DP_BACKUP_NAME>: the snapshot must exist and be SUCCESS,
#      before anything in the cluster changes.
#   5. POST .../_restore of RESTORE_INDICES (default '*,-.*': the dot-prefixed internal indices
#      a new cluster makes itself are left out), waiting for completion within RESTORE_TIMEOUT,
#      then until every restored index has all its primaries active.
#   The repository is unregistered on exit.
#
# Environment: DP_DB_HOST, DP_DB_PORT (9200), DP_DB_USER, DP_DB_PASSWORD (empty: no auth),
# DP_BACKUP_NAME, DP_BACKUP_BASE_PATH, KB_NAMESPACE; DATASAFED_CONF
# (/etc/datasafed/datasafed.conf); ES_SCHEME (http), ES_CACERT; AGENT_SCHEME (http),
# AGENT_PORT (8080); timeouts in seconds: AGENT_CONNECT_TIMEOUT (5), AGENT_TIMEOUT (30),
# ES_CONNECT_TIMEOUT (10), ES_TIMEOUT (60), ES_VERIFY_TIMEOUT (120), RESTORE_TIMEOUT (21600);
# POLL_INTERVAL (5), PROGRESS_INTERVAL (30); RESTORE_INDICES, RESTORE_INCLUDE_GLOBAL_STATE
# (false), RESTORE_INCLUDE_ALIASES (true), MAX_RESTORE_BYTES_PER_SEC.
set -euo pipefail
# Never traced, even under `bash -x` or an exported SHELLOPTS: a trace would print the secrets
# the job handles.
{ set +x; } 2>/dev/null

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh disable=SC1091
source "${SCRIPT_DIR}/common.sh"

# Seconds the restore may take, from its start until every restored primary is active.
RESTORE_TIMEOUT=${RESTORE_TIMEOUT:-21600}
# Which indices to restore (engine multi-target syntax). The default leaves out
# dot-prefixed internal indices, which a new cluster creates itself.
RESTORE_INDICES=${RESTORE_INDICES:-*,-.*}
RESTORE_INCLUDE_GLOBAL_STATE=${RESTORE_INCLUDE_GLOBAL_STATE:-false}
RESTORE_INCLUDE_ALIASES=${RESTORE_INCLUDE_ALIASES:-true}

# Stops the restore request (curl, in the background) if the job ends early; the engine
# goes on with the restore.
job_cleanup() {
  if [[ -n ${RESTORE_PID:-} ]] && kill -0 "$RESTORE_PID" 2>/dev/null; then
    kill "$RESTORE_PID" 2>/dev/null
    wait "$RESTORE_PID" 2>/dev/null
  fi
  return 0
}

# Refuses, before the cluster changes, a snapshot that is missing or not SUCCESS.
check_snapshot() {
  if ! snapshot_info; then
    if [[ -n $HTTP_ERROR ]]; then
      die "reading snapshot ${SNAPSHOT_NAME}: no answer: ${HTTP_ERROR}"
    fi
    die "reading snapshot ${SNAPSHOT_NAME}: HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")"
  fi
  case $SNAPSHOT_STATE in
    MISSING)
      die "snapshot ${SNAPSHOT_NAME} does not exist in bucket ${S3_BUCKET} at ${REPO_BASE_PATH}: nothing restored" ;;
    SUCCESS) ;;
    *)
      die "snapshot ${SNAPSHOT_NAME} is ${SNAPSHOT_STATE}, not SUCCESS: nothing restored" ;;
  esac
  log "snapshot ${SNAPSHOT_NAME}: SUCCESS, $(jq -r '.snapshots[0] |
      "\(.indices | length) indices, \(.shards.total // "?") shards, taken \(.start_time // "?") by version \(.version // "?")"' \
    "$WORK_DIR/snapshot.json")"
}

# Starts the restore request, waiting for completion, as a background curl (RESTORE_PID).
start_restore_request() {
  local -a CURL_ARGS
  curl_args "$WORK_DIR/restore.out" POST "$WORK_DIR/restore-request.json" "$ES_CONNECT_TIMEOUT" "$RESTORE_TIMEOUT"
  curl "${CURL_ARGS[@]}" --url "${ES_URL}/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}/_restore?wait_for_completion=true" \
    >"$WORK_DIR/restore.status" 2>"$WORK_DIR/restore.out.err" &
  RESTORE_PID=$!
}

# Prints how many shards are recovering from the snapshot.
report_restore_progress() {
  es_call GET '/_cat/recovery?active_only=true&format=json&h=index,shard,type,stage,bytes_percent' && [[ $HTTP_STATUS == 200 ]] || return 0
  log "restore in progress: $(jq -r '[.[] | select(.type == "snapshot")] | "\(length) shard(s) recovering from the snapshot"' "$ES_REPLY") ($((SECONDS - RESTORE_START))s)"
}

# Starts the restore and waits for the engine to finish it.
run_restore() {
  local include_global include_aliases
  include_global=$(parse_bool "$RESTORE_INCLUDE_GLOBAL_STATE") ||
    die "RESTORE_INCLUDE_GLOBAL_STATE '${RESTORE_INCLUDE_GLOBAL_STATE}' is not a boolean"
  include_aliases=$(parse_bool "$RESTORE_INCLUDE_ALIASES") ||
    die "RESTORE_INCLUDE_ALIASES '${RESTORE_INCLUDE_ALIASES}' is not a boolean"
  jq -n --arg indices "$RESTORE_INDICES" --argjson global "$include_global" --argjson aliases "$include_aliases" \
    '{indices: $indices, include_global_state: $global, include_aliases: $aliases}' >"$WORK_DIR/restore-request.json"

  RESTORE_START=$SECONDS
  log "restore of ${SNAPSHOT_NAME} started (indices '${RESTORE_INDICES}', global state ${include_global})"
  start_restore_request
  local last_report=$SECONDS
  while kill -0 "$RESTORE_PID" 2>/dev/null; do
    sleep 1
    if ((SECONDS - last_report >= PROGRESS_INTERVAL)); then
      report_restore_progress
      last_report=$SECONDS
    fi
  done
  local rc=0 status
  wait "$RESTORE_PID" || rc=$?
  RESTORE_PID=''
  status=$(cat "$WORK_DIR/restore.status")
  if [[ $rc == 28 ]]; then
    die "restore of ${SNAPSHOT_NAME} still running after the deadline of ${RESTORE_TIMEOUT}s (RESTORE_TIMEOUT)"
  elif [[ $rc != 0 ]]; then
    die "restore of ${SNAPSHOT_NAME}: no answer from ${ES_URL}: $(one_line <"$WORK_DIR/restore.out.err")"
  elif [[ $status != 200 ]]; then
    die "restore of ${SNAPSHOT_NAME}: engine answered HTTP ${status}: $(engine_error "$WORK_DIR/restore.out")"
  fi
  local failed total
  failed=$(jq -r '.snapshot.shards.failed // 0' "$WORK_DIR/restore.out")
  total=$(jq -r '.snapshot.shards.total // 0' "$WORK_DIR/restore.out")
  jq -r '.snapshot.indices // [] | .[]' "$WORK_DIR/restore.out" >"$WORK_DIR/restored-indices.txt"
  [[ $failed == 0 ]] || die "restore of ${SNAPSHOT_NAME}: ${failed} of ${total} shards failed"
  log "restore of ${SNAPSHOT_NAME}: $(wc -l <"$WORK_DIR/restored-indices.txt") indices, ${total} shards restored in $((SECONDS - RESTORE_START))s"
}

# Waits, within the deadline, until every restored index has all its primaries active.
wait_for_primaries() {
  local deadline=$((RESTORE_START + RESTORE_TIMEOUT)) pending
  [[ -s $WORK_DIR/restored-indices.txt ]] || {
    log "no index restored"
    return 0
  }
  while true; do
    if es_call GET '/_cluster/health?level=indices&filter_path=indices.*.active_primary_shards,indices.*.number_of_shards' &&
      [[ $HTTP_STATUS == 200 ]]; then
      pending=$(jq -r --rawfile names "$WORK_DIR/restored-indices.txt" '
          (.indices // {}) as $h
          | [$names | split("\n")[] | select(. != "")
             | select(($h[.] // null) == null or $h[.].active_primary_shards < $h[.].number_of_shards)]
          | if length == 0 then "" else "\(length) index(es) with inactive primaries: \(.[:5] | join(", "))" end' "$ES_REPLY")
      if [[ -z $pending ]]; then
        log "every restored primary shard is active"
        return 0
      fi
    else
      pending="cluster health unreadable (HTTP ${HTTP_STATUS}${HTTP_ERROR:+: $HTTP_ERROR})"
    fi
    ((SECONDS < deadline)) || die "restore of ${SNAPSHOT_NAME}: deadline of ${RESTORE_TIMEOUT}s reached: ${pending}"
    log "waiting: ${pending}"
    sleep "$POLL_INTERVAL"
  done
}

main() {
  job_init restore
  [[ $RESTORE_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "RESTORE_TIMEOUT '${RESTORE_TIMEOUT}' is not a positive number"
  prepare_job
  register_repository true
  check_snapshot
  run_restore
  wait_for_primaries
  job_done
}

main "$@"

#!/usr/bin/env bash
# KubeBlocks DataProtection backup job (ActionSet backupData) of the Elasticsearch/OpenSearch
# addon: one consistent S3 snapshot of the whole cluster, with no manual keystore step.
#
# Steps, one log line each (and one line per node where nodes are concerned):
#   1. GET /_nodes/http; every node's agent (at the node's ip, port AGENT_PORT) gets, all in
#      parallel, POST /keystore with the BackupRepo's keys under this Backup's own S3 client
#      (kb_<backup>_<hash>); any failed node stops the job, named with its reason.
#   2. POST /_nodes/reload_secure_settings; every node's entry is checked.
#   3. PUT _snapshot/kb-<backup>: an S3 repository at the Backup's own path (BackupRepo prefix
#      + DP_BACKUP_BASE_PATH), verified; a failed verification stops with the engine's cause.
#   4. PUT _snapshot/kb-<backup>/<DP_BACKUP_NAME>, followed until SUCCESS (PARTIAL, FAILED,
#      INCOMPATIBLE, a missing snapshot or BACKUP_TIMEOUT fail; the deadline aborts it).
#   5. DP_BACKUP_INFO_FILE gets {totalSize, timeRange, extras}; any failure touches
#      ${DP_BACKUP_INFO_FILE}.exit instead. The repository is unregistered on exit (its data
#      stays in the bucket, where deleting the Backup removes it).
#
# Environment: DP_DB_HOST, DP_DB_PORT (9200), DP_DB_USER, DP_DB_PASSWORD (empty: no auth),
# DP_BACKUP_NAME, DP_BACKUP_BASE_PATH, DP_BACKUP_INFO_FILE, KB_NAMESPACE, KB_CLUSTER_NAME;
# DATASAFED_CONF (/etc/datasafed/datasafed.conf); ES_SCHEME (http), ES_CACERT; AGENT_SCHEME
# (http), AGENT_PORT (8080); timeouts in seconds: AGENT_CONNECT_TIMEOUT (5), AGENT_TIMEOUT (30),
# ES_CONNECT_TIMEOUT (10), ES_TIMEOUT (60), ES_VERIFY_TIMEOUT (120), BACKUP_TIMEOUT (21600);
# POLL_INTERVAL (5), PROGRESS_INTERVAL (30), MAX_POLL_ERRORS (5); MAX_SNAPSHOT_BYTES_PER_SEC
# (the repository's throttle, engine default when unset).
set -euo pipefail
# Never traced, even under `bash -x` or an exported SHELLOPTS: a trace would print the secrets
# the job handles.
{ set +x; } 2>/dev/null

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh disable=SC1091
source "${SCRIPT_DIR}/common.sh"

# Seconds the snapshot may take before the job gives up and aborts it.
BACKUP_TIMEOUT=${BACKUP_TIMEOUT:-21600}
# Consecutive failed status reads tolerated while following the snapshot.
MAX_POLL_ERRORS=${MAX_POLL_ERRORS:-5}

# Starts the snapshot, or takes over the one an earlier attempt of this Backup left.
start_snapshot() {
  snapshot_info || die "reading snapshot ${SNAPSHOT_NAME}: $(read_failure)"
  case $SNAPSHOT_STATE in
    MISSING) ;;
    IN_PROGRESS | STARTED)
      log "snapshot ${SNAPSHOT_NAME} is already running (an earlier attempt of this Backup): following it"
      return 0 ;;
    SUCCESS)
      log "snapshot ${SNAPSHOT_NAME} was already completed by an earlier attempt of this Backup"
      return 0 ;;
    *)
      log "snapshot ${SNAPSHOT_NAME} left by an earlier attempt is ${SNAPSHOT_STATE}: deleting it"
      es_ok "deletion of the earlier snapshot ${SNAPSHOT_NAME}" DELETE "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}" '' "$ES_VERIFY_TIMEOUT" ;;
  esac

  local body="$WORK_DIR/snapshot-request.json"
  jq -n --arg backup "$BACKUP_NAME" --arg ns "$NAMESPACE" --arg cluster "${KB_CLUSTER_NAME:-}" \
    '{include_global_state: true,
      metadata: {taken_by: "kubeblocks", backup: $backup, namespace: $ns, cluster: $cluster}}' >"$body"
  es_ok "start of snapshot ${SNAPSHOT_NAME}" PUT "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}?wait_for_completion=false" "$body"
  log "snapshot ${SNAPSHOT_NAME} started"
}

# The cause of the last failed read, for messages.
read_failure() {
  if [[ -n $HTTP_ERROR ]]; then
    printf 'no answer: %s' "$HTTP_ERROR"
  else
    printf 'HTTP %s: %s' "$HTTP_STATUS" "$(engine_error "$ES_REPLY")"
  fi
}

# Prints the snapshot's progress when it changed or PROGRESS_INTERVAL passed.
report_progress() {
  local now=$SECONDS progress
  es_call GET "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}/_status" && [[ $HTTP_STATUS == 200 ]] || return 0
  progress=$(jq -r '.snapshots[0] // {} |
      "\(.shards_stats.done // 0)/\(.shards_stats.total // 0) shards done, " +
      "\(((.stats.processed.size_in_bytes // 0) / 1048576 * 10 | floor) / 10) of " +
      "\(((.stats.total.size_in_bytes // 0) / 1048576 * 10 | floor) / 10) MiB"' "$ES_REPLY")
  if [[ $progress != "${LAST_PROGRESS:-}" ]] || ((now - LAST_REPORT >= PROGRESS_INTERVAL)); then
    log "snapshot ${SNAPSHOT_NAME}: IN_PROGRESS, ${progress} ($((now - FOLLOW_START))s)"
    LAST_PROGRESS=$progress
    LAST_REPORT=$now
  fi
}

# Aborts the running snapshot (deadline reached); its files stay under the Backup's path.
abort_snapshot() {
  if es_call DELETE "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}" '' "$ES_VERIFY_TIMEOUT" && [[ $HTTP_STATUS == 2* ]]; then
    log "snapshot ${SNAPSHOT_NAME} aborted"
  else
    warn "could not abort snapshot ${SNAPSHOT_NAME}: $(read_failure)"
  fi
}

# Why a snapshot ended badly: its reason and its first shard failures.
snapshot_failure() {
  jq -r '.snapshots[0] |
      [(.reason // empty),
       ((.failures // [])[:3][] | "\(.index)[\(.shard_id)] on node \(.node_id // "?"): \(.reason // .status // "?")")]
      | if length == 0 then "no reason given" else join("; ") end' "$WORK_DIR/snapshot.json"
}

# Follows the snapshot until it ends, under BACKUP_TIMEOUT.
follow_snapshot() {
  FOLLOW_START=$SECONDS
  LAST_REPORT=$SECONDS
  LAST_PROGRESS=''
  local deadline=$((SECONDS + BACKUP_TIMEOUT)) errors=0
  while true; do
    if ! snapshot_info; then
      errors=$((errors + 1))
      warn "reading snapshot ${SNAPSHOT_NAME} (${errors}/${MAX_POLL_ERRORS}): $(read_failure)"
      ((errors < MAX_POLL_ERRORS)) || die "snapshot ${SNAPSHOT_NAME}: status unreadable ${errors} times in a row"
    else
      errors=0
      case $SNAPSHOT_STATE in
        SUCCESS)
          log "snapshot ${SNAPSHOT_NAME}: SUCCESS after $((SECONDS - FOLLOW_START))s"
          return 0 ;;
        MISSING)
          die "snapshot ${SNAPSHOT_NAME} no longer exists in repository ${REPOSITORY}" ;;
        PARTIAL | FAILED | INCOMPATIBLE)
          die "snapshot ${SNAPSHOT_NAME} ended ${SNAPSHOT_STATE}: $(snapshot_failure)" ;;
        IN_PROGRESS | STARTED)
          report_progress ;;
        *)
          die "snapshot ${SNAPSHOT_NAME} is in unknown state '${SNAPSHOT_STATE}'" ;;
      esac
    fi
    if ((SECONDS >= deadline)); then
      abort_snapshot
      die "snapshot ${SNAPSHOT_NAME} still running after the deadline of ${BACKUP_TIMEOUT}s (BACKUP_TIMEOUT)"
    fi
    sleep "$POLL_INTERVAL"
  done
}

# Writes the Backup status fragment KubeBlocks merges: totalSize, timeRange, extras.
write_backup_info() {
  local size=0 fragment="$WORK_DIR/backup-info.json"
  if es_call GET "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}/_status" '' "$ES_VERIFY_TIMEOUT" && [[ $HTTP_STATUS == 200 ]]; then
    size=$(jq -r '.snapshots[0].stats | (.total.size_in_bytes // .total_size_in_bytes // .incremental.size_in_bytes // 0)' "$ES_REPLY")
  else
    warn "snapshot size unknown: $(read_failure)"
  fi
  jq --arg size "$size" --arg engine "$ENGINE_DISTRIBUTION" --arg version "$ENGINE_VERSION" \
    --arg repository "$REPOSITORY" --arg bucket "$S3_BUCKET" --arg base_path "$REPO_BASE_PATH" '
      .snapshots[0] as $s
      | {totalSize: $size,
         timeRange: {start: ($s.start_time_in_millis / 1000 | floor | todate),
                     end: (($s.end_time_in_millis + 999) / 1000 | floor | todate)},
         extras: [{snapshot: $s.snapshot, uuid: $s.uuid,
                   indices: ($s.indices | length | tostring),
                   shards: ($s.shards.total // 0 | tostring),
                   engine: $engine, version: ($s.version // $version),
                   repository: $repository, bucket: $bucket, basePath: $base_path}]}' \
    "$WORK_DIR/snapshot.json" >"$fragment"
  if [[ -n ${DP_BACKUP_INFO_FILE:-} ]]; then
    cp "$fragment" "${DP_BACKUP_INFO_FILE}.tmp"
    mv -f "${DP_BACKUP_INFO_FILE}.tmp" "$DP_BACKUP_INFO_FILE"
    log "backup info written to ${DP_BACKUP_INFO_FILE}: $(jq -c . "$fragment")"
  else
    warn "DP_BACKUP_INFO_FILE is not set; backup info: $(jq -c . "$fragment")"
  fi
}

main() {
  job_init backup
  [[ $BACKUP_TIMEOUT =~ ^[0-9]+$ ]] || die "BACKUP_TIMEOUT '${BACKUP_TIMEOUT}' is not a whole number"
  [[ $MAX_POLL_ERRORS =~ ^[1-9][0-9]*$ ]] || die "MAX_POLL_ERRORS '${MAX_POLL_ERRORS}' is not a positive number"
  prepare_job
  register_repository false
  start_snapshot
  follow_snapshot
  write_backup_info
  job_done
}

main "$@"

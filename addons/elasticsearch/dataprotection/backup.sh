#!/usr/bin/env bash
# KubeBlocks DataProtection backup job (ActionSet backupData) of the Elasticsearch/OpenSearch
# addon: one consistent S3 snapshot of the whole cluster, with no manual keystore step.
#
# Steps, one log line each (and one line per node where nodes are concerned):
#   0. The Backup's options (below) are checked before anything else; a bad one stops the job
#      naming it. GET / tells the engine; feature_states needs Elasticsearch 7.12 or newer.
#   1. A repository of this Backup's registered already is an earlier attempt's, which may
#      still be ending (its pod deleted while the Job started the next): the job waits up to
#      EARLIER_ATTEMPT_WAIT for it to go, since that attempt's exit removes the keys and then
#      the repository; one that stays is taken over.
#      GET /_nodes/http; every node's agent (at the node's ip, port AGENT_PORT), at most
#      AGENT_PARALLELISM at a time and each node within AGENT_NODE_DEADLINE: GET /ready first
#      (any failure stops the job with nothing written; it also tells whether the keystore has
#      a password), then POST /keystore with the BackupRepo's keys under this Backup's own S3
#      client of this attempt (kb_<backup>_<hash>_<attempt>): wrong cluster credentials or a wrong keystore password
#      fail there, naming the node; what other nodes wrote is removed on exit.
#      Refused connections, timeouts and 503s are retried (AGENT_ATTEMPTS); a 4xx or 500 is not.
#      A BackupRepo with env_auth = true and no keys skips this step (client 'default').
#   2. Reload: when any keystore has a password, every node reloads through its own agent
#      ("reload": true: the engines take the password only for the local node); otherwise one
#      POST /_nodes/reload_secure_settings, every node's entry checked.
#   3. PUT _snapshot/kb-<backup>: an S3 repository at the Backup's own path (BackupRepo prefix
#      + DP_BACKUP_BASE_PATH), verified once, by POST .../_verify, which must list every
#      master-eligible and data node (proof that each holds working keys). A repository of that name with other
#      settings, which this job did not register, is left as it is and the job stops.
#   4. PUT _snapshot/kb-<backup>/<DP_BACKUP_NAME>, followed until it ends, polling fast at
#      first and backing off to POLL_INTERVAL, a progress line every PROGRESS_INTERVAL. A
#      snapshot of that name left by an earlier attempt: SUCCESS is taken as the result,
#      IN_PROGRESS is followed (and taken anew, once, should that attempt abort it), FAILED, PARTIAL (unless allowed) or INCOMPATIBLE stop the job
#      saying so, and it is left in place. BACKUP_TIMEOUT aborts the snapshot, and so does a
#      signal (the pod deleted; one that has ended by then is kept): a snapshot no job follows
#      would go on without its S3 client;
#      when the abort does not end in time, the repository and the client are left to it.
#      A snapshot that holds less than was asked fails the job: a BACKUP_INDICES that matched
#      nothing, a closed index the engine left out (unless BACKUP_ALLOW_PARTIAL).
#   5. DP_BACKUP_INFO_FILE gets {totalSize, timeRange, extras}; any failure touches
#      ${DP_BACKUP_INFO_FILE}.exit instead. On every exit the repository is unregistered (its
#      data stays in the bucket, where deleting the Backup removes it) and the job's S3 client
#      is removed from every keystore; at an exit no signal started, the keys an earlier
#      attempt killed outright left are removed too (collect_earlier_attempts).
#
# Environment: DP_DB_HOST, DP_DB_PORT (9200), DP_DB_USER, DP_DB_PASSWORD (empty: no auth),
# DP_BACKUP_NAME, DP_BACKUP_BASE_PATH, DP_BACKUP_INFO_FILE, KB_NAMESPACE, KB_CLUSTER_NAME;
# DATASAFED_CONF (/etc/datasafed/datasafed.conf); ES_SCHEME (http), ES_CACERT; AGENT_SCHEME
# (http), AGENT_HOST_SUFFIX (https: agents by node name), AGENT_PORT (8080), AGENT_PARALLELISM
# (32), AGENT_ATTEMPTS (3); seconds:
# AGENT_CONNECT_TIMEOUT (5), AGENT_TIMEOUT (30, per call), AGENT_NODE_DEADLINE (60, per node
# and step, retries included), ES_CONNECT_TIMEOUT (10), ES_TIMEOUT (60), ES_VERIFY_TIMEOUT
# (120), POLL_INTERVAL (5, the slowest poll), PROGRESS_INTERVAL (10), MAX_POLL_ERRORS (5);
# after SIGTERM: EXIT_GRACE (25, the whole clean-up), EXIT_CALL_TIMEOUT (10, each of its calls);
# EARLIER_ATTEMPT_WAIT (40, for an earlier attempt's repository to go).
#
# The Backup's options (ActionSet parameters, each an environment variable of its name):
#   BACKUP_INDICES                 indices and data streams, comma-separated patterns (all)
#   BACKUP_INCLUDE_GLOBAL_STATE    true|false (true)
#   BACKUP_FEATURE_STATES          feature states, comma-separated, or 'none' (Elasticsearch
#                                  7.12+ only; the engine's default: all)
#   BACKUP_ALLOW_PARTIAL           true|false (false): a snapshot missing shards ends PARTIAL
#                                  and the job succeeds with a warning instead of failing
#   BACKUP_TIMEOUT                 seconds the snapshot may take (21600)
#   BACKUP_SERVER_SIDE_ENCRYPTION  true|false (the engine's default, false): SSE-S3 (AES256)
#   BACKUP_STORAGE_CLASS           standard|reduced_redundancy|standard_ia|onezone_ia|
#                                  intelligent_tiering
#   BACKUP_CANNED_ACL              private|public-read|public-read-write|authenticated-read|
#                                  log-delivery-write|bucket-owner-read|bucket-owner-full-control
#   MAX_SNAPSHOT_BYTES_PER_SEC     the repository's snapshot throttle per node, e.g. 200mb
set -euo pipefail
# Never traced, even under `bash -x` or an exported SHELLOPTS: a trace would print the secrets
# the job handles.
{ set +x; } 2>/dev/null

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh disable=SC1091
source "${SCRIPT_DIR}/common.sh"

BACKUP_TIMEOUT=${BACKUP_TIMEOUT:-21600}
SNAPSHOT_STATE=''
SNAPSHOT_STARTED=false
SNAPSHOT_TAKEN_OVER=false
SNAPSHOT_ENDED=false
MAX_POLL_ERRORS=${MAX_POLL_ERRORS:-5}
PROGRESS_INTERVAL=${PROGRESS_INTERVAL:-10}
BACKUP_INDICES=${BACKUP_INDICES:-}
BACKUP_INCLUDE_GLOBAL_STATE=${BACKUP_INCLUDE_GLOBAL_STATE:-true}
BACKUP_FEATURE_STATES=${BACKUP_FEATURE_STATES:-}
BACKUP_ALLOW_PARTIAL=${BACKUP_ALLOW_PARTIAL:-false}
BACKUP_SERVER_SIDE_ENCRYPTION=${BACKUP_SERVER_SIDE_ENCRYPTION:-}
BACKUP_STORAGE_CLASS=${BACKUP_STORAGE_CLASS:-}
BACKUP_CANNED_ACL=${BACKUP_CANNED_ACL:-}
MAX_SNAPSHOT_BYTES_PER_SEC=${MAX_SNAPSHOT_BYTES_PER_SEC:-}

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------

# option_bool NAME: NAME's value as true|false, or stops naming the option.
option_bool() {
  local value
  value=$(parse_bool "${!1}") || die "option $1 '${!1}' is not true or false"
  printf -v "$1" '%s' "$value"
}

# option_list NAME REGEX WHAT: a comma-separated list whose every item matches REGEX.
option_list() {
  local name=$1 regex=$2 what=$3 item
  local -a items
  [[ ${!name} != *,,* && ${!name} != ,* && ${!name} != *, ]] ||
    die "option ${name} '${!name}' has an empty item: ${what}, comma-separated"
  IFS=, read -r -a items <<<"${!name}"
  for item in "${items[@]}"; do
    [[ $item =~ $regex ]] || die "option ${name}: '${item}' is not ${what}"
  done
}

# option_one_of NAME VALUE...: NAME is empty or one of the VALUEs.
option_one_of() {
  local name=$1 v
  shift
  [[ -n ${!name} ]] || return 0
  for v in "$@"; do
    [[ ${!name} == "$v" ]] && return 0
  done
  die "option ${name} '${!name}' is not one of: $*"
}

# Checks every option before the cluster is contacted; sets REPOSITORY_EXTRA_SETTINGS.
validate_backup_options() {
  [[ $BACKUP_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "option BACKUP_TIMEOUT '${BACKUP_TIMEOUT}' is not a positive number of seconds"
  [[ $MAX_POLL_ERRORS =~ ^[1-9][0-9]*$ ]] || die "MAX_POLL_ERRORS '${MAX_POLL_ERRORS}' is not a positive number"
  option_bool BACKUP_INCLUDE_GLOBAL_STATE
  option_bool BACKUP_ALLOW_PARTIAL
  [[ -z $BACKUP_SERVER_SIDE_ENCRYPTION ]] || option_bool BACKUP_SERVER_SIDE_ENCRYPTION
  # Index and data stream names and patterns: no blanks, none of \ / ? " < > | # (the
  # engines' forbidden characters), a leading '-' excludes.
  [[ -z $BACKUP_INDICES ]] ||
    option_list BACKUP_INDICES '^-?[^][:space:]\\/?"<>|#,[]+$' 'an index or data stream name or pattern'
  [[ -z $BACKUP_FEATURE_STATES ]] ||
    option_list BACKUP_FEATURE_STATES '^[A-Za-z0-9_.-]+$' 'a feature state name (or none)'
  option_one_of BACKUP_STORAGE_CLASS standard reduced_redundancy standard_ia onezone_ia intelligent_tiering
  option_one_of BACKUP_CANNED_ACL private public-read public-read-write authenticated-read \
    log-delivery-write bucket-owner-read bucket-owner-full-control
  [[ -z $MAX_SNAPSHOT_BYTES_PER_SEC || ${MAX_SNAPSHOT_BYTES_PER_SEC,,} =~ ^[0-9]+(\.[0-9]+)?(b|kb|mb|gb|tb|pb)?$ ]] ||
    die "option MAX_SNAPSHOT_BYTES_PER_SEC '${MAX_SNAPSHOT_BYTES_PER_SEC}' is not a byte rate such as 200mb"
  # shellcheck disable=SC2034 # read by register_repository (common.sh)
  REPOSITORY_EXTRA_SETTINGS='{}'
  [[ -z $BACKUP_SERVER_SIDE_ENCRYPTION$BACKUP_STORAGE_CLASS$BACKUP_CANNED_ACL ]] && return 0
  # shellcheck disable=SC2034
  REPOSITORY_EXTRA_SETTINGS=$(jq -cn --arg sse "$BACKUP_SERVER_SIDE_ENCRYPTION" \
    --arg class "$BACKUP_STORAGE_CLASS" --arg acl "$BACKUP_CANNED_ACL" '
      (if $sse != "" then {server_side_encryption: ($sse == "true")} else {} end)
      + (if $class != "" then {storage_class: $class} else {} end)
      + (if $acl != "" then {canned_acl: $acl} else {} end)')
}

# version_at_least VERSION MAJOR MINOR
version_at_least() {
  local major minor
  IFS=. read -r major minor _ <<<"$1"
  [[ $major =~ ^[0-9]+$ && ${minor:-0} =~ ^[0-9]+$ ]] || return 1
  ((major > $2 || (major == $2 && ${minor:-0} >= $3)))
}

# Called by prepare_job once the engine is known, before any node changes: the options the
# engine cannot honour.
job_preflight() {
  [[ -n $BACKUP_FEATURE_STATES ]] || return 0
  if [[ $ENGINE_DISTRIBUTION != elasticsearch ]] || ! version_at_least "$ENGINE_VERSION" 7 12; then
    die "option BACKUP_FEATURE_STATES needs Elasticsearch 7.12 or newer; this cluster runs ${ENGINE_DISTRIBUTION} ${ENGINE_VERSION} (leave it empty: system indices then travel with the indices and the global state)"
  fi
}

# ---------------------------------------------------------------------------
# The snapshot
# ---------------------------------------------------------------------------

# Whether a snapshot's final state counts as done.
state_accepted() {
  [[ $1 == SUCCESS || ($1 == PARTIAL && $BACKUP_ALLOW_PARTIAL == true) ]]
}

# Starts the snapshot, or takes over the one an earlier attempt of this Backup left. Sets
# SNAPSHOT_DONE when that one had already ended well. Another attempt that started the same
# snapshot between this one's read and its start (two pods of the Job at once) is followed.
start_snapshot() {
  SNAPSHOT_DONE=false
  take_over_snapshot && return 0
  local body="$WORK_DIR/snapshot-request.json"
  jq -n --arg backup "$BACKUP_NAME" --arg ns "$NAMESPACE" --arg cluster "${KB_CLUSTER_NAME:-}" \
    --arg indices "$BACKUP_INDICES" --arg features "$BACKUP_FEATURE_STATES" \
    --argjson global "$BACKUP_INCLUDE_GLOBAL_STATE" --argjson partial "$BACKUP_ALLOW_PARTIAL" \
    --arg uid "$(backup_uid)" \
    '{include_global_state: $global, partial: $partial,
      metadata: ({taken_by: "kubeblocks", backup: $backup, namespace: $ns, cluster: $cluster}
        + (if $uid != "" then {backup_uid: $uid} else {} end))}
     + (if $indices != "" then {indices: $indices} else {} end)
     + (if $features != "" then {feature_states: ($features | split(","))} else {} end)' >"$body"
  local step="start of snapshot ${SNAPSHOT_NAME}" try
  for try in 1 2 3; do
    # Until an answer comes, the engine may have started it (job_cleanup looks).
    SNAPSHOT_START_IN_FLIGHT=true
    es_call PUT "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}?wait_for_completion=false" "$body" ||
      die "${step}: no answer from ${ES_URL}: ${HTTP_ERROR}"
    # Answered: started (followed from here), or refused; an unsure refusal stays in flight
    # (job_cleanup looks).
    [[ $HTTP_STATUS != 2* ]] || SNAPSHOT_STARTED=true
    start_answer_unsure || SNAPSHOT_START_IN_FLIGHT=false
    if [[ $HTTP_STATUS == 400 ]] && jq -e '.error.type == "invalid_snapshot_name_exception"
        and (.error.reason | test("same name (is )?already (in-progress|exists)"))' "$ES_REPLY" >/dev/null 2>&1; then
      log "snapshot ${SNAPSHOT_NAME} was started by another attempt of this Backup at the same moment"
      take_over_snapshot && return 0
      # Gone meanwhile (an earlier attempt's abort, waited out): the request again.
      ((try == 3)) || continue
      die "${step}: the engine says it exists, but it cannot be read: $(read_failure)"
    fi
    # Registered again under the request (another attempt's registration at the same moment):
    # the engine asks for another try, which may find that attempt's snapshot started.
    if ((try < 3)) && [[ $HTTP_STATUS == 500 ]] && jq -e '.error.type == "repository_exception"
        and (.error.reason | test("has been changed, try again"))' "$ES_REPLY" >/dev/null 2>&1; then
      warn "${step}: the engine says repository ${REPOSITORY} was registered again under it (another attempt of this Backup?): trying again"
      sleep_ms $((500 + 10#$(od -An -N1 -tu1 /dev/urandom | tr -d ' ') * 4))
      take_over_snapshot && return 0
      continue
    fi
    break
  done
  [[ $HTTP_STATUS == 2* ]] || die "${step}: engine answered HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")"
  log "snapshot ${SNAPSHOT_NAME} started (indices ${BACKUP_INDICES:-all}, global state ${BACKUP_INCLUDE_GLOBAL_STATE}, partial ${BACKUP_ALLOW_PARTIAL}${BACKUP_FEATURE_STATES:+, feature states $BACKUP_FEATURE_STATES})"
}

# start_answer_unsure: whether the answer to the snapshot's start leaves open that the engine
# started it: a proxy's 502/504, a 503, a cluster-state update not acknowledged.
start_answer_unsure() {
  [[ $HTTP_STATUS == 50[234] ]] || { [[ $HTTP_STATUS == 5* ]] &&
    jq -e '.error.type // "" | test("failed_to_commit|process_cluster_event_timeout|timeout")' "$ES_REPLY" >/dev/null 2>&1; }
}

# backup_uid: the first 8 hex digits of the Backup's UID, from its pod's name (HOSTNAME), which
# KubeBlocks derives from the Job's '<prefix>-<backup>-<uid8>' (when that fits 63 characters);
# empty when the name does not say.
backup_uid() {
  local pod=${HOSTNAME:-} tail
  tail=${pod##*"-${BACKUP_NAME}-"}
  [[ $pod == *"-${BACKUP_NAME}-"* && $tail =~ ^([0-9a-f]{8})-[a-z0-9]{5}$ ]] && printf '%s' "${BASH_REMATCH[1]}"
  return 0
}

# take_over_snapshot: the snapshot of this Backup's name that is there already: one running is
# followed, one that ended well is the result, one that ended otherwise stops the job; one
# taken for another Backup of this name (deleted, its data kept, and made again) stops it too.
# Returns 1 when there is none.
take_over_snapshot() {
  snapshot_info || die "reading snapshot ${SNAPSHOT_NAME}: $(read_failure)"
  if [[ $SNAPSHOT_STATE != MISSING ]]; then
    local theirs ours
    ours=$(backup_uid)
    theirs=$(jq -r '.snapshots[0].metadata.backup_uid // ""' "$WORK_DIR/snapshot.json" 2>/dev/null || true)
    [[ -n $ours ]] ||
      log "snapshot ${SNAPSHOT_NAME}: whether it was taken for this Backup or for an earlier one of the same name is not checked: the pod's name (HOSTNAME ${HOSTNAME:-unset}) does not carry the Backup's UID (a Job's pod name keeps 58 characters before its random suffix, so Backup names of more than about 36 characters lose it)"
    [[ -z $ours || -z $theirs || $ours == "$theirs" ]] ||
      die "snapshot ${SNAPSHOT_NAME} at this Backup's path was taken for another Backup of the same name (UID ${theirs}..., this one's ${ours}...: deleted with its data kept, and made again?): it is left in place; back up under another name, or delete that snapshot first"
  fi
  case $SNAPSHOT_STATE in
    MISSING) return 1 ;;
    IN_PROGRESS | STARTED)
      log "snapshot ${SNAPSHOT_NAME} is already running (an earlier attempt of this Backup): following it"
      SNAPSHOT_STARTED=true
      SNAPSHOT_TAKEN_OVER=true
      return 0 ;;
    *)
      if snapshot_being_deleted; then
        # An earlier attempt's abort still being carried out: once it is gone, a new one.
        log "snapshot ${SNAPSHOT_NAME}, left by an earlier attempt, is being deleted (aborted): waiting up to ${ES_VERIFY_TIMEOUT}s for its deletion to end"
        local until=$((SECONDS + ES_VERIFY_TIMEOUT))
        while snapshot_being_deleted && ((SECONDS < until)); do
          sleep_s 1
          snapshot_info || die "reading snapshot ${SNAPSHOT_NAME}: $(read_failure)"
        done
        ! snapshot_being_deleted ||
          die "snapshot ${SNAPSHOT_NAME}, left by an earlier attempt, is still being deleted after ${ES_VERIFY_TIMEOUT}s (the engine cannot delete its files? $(snapshot_failure)): it is left in place; back up again once GET _snapshot/${REPOSITORY}/${SNAPSHOT_NAME} no longer lists it"
        [[ $SNAPSHOT_STATE != MISSING ]] || return 1
        # It became something else (another attempt's new snapshot): judged as such, once.
        take_over_snapshot
        return
      fi
      if state_accepted "$SNAPSHOT_STATE"; then
        log "snapshot ${SNAPSHOT_NAME} was already completed (${SNAPSHOT_STATE}) by an earlier attempt of this Backup: taking it as the result"
        SNAPSHOT_DONE=true
        return 0
      fi
      die "snapshot ${SNAPSHOT_NAME} left by an earlier attempt of this Backup ended ${SNAPSHOT_STATE}: $(snapshot_failure); it is left in place (delete the Backup, or the snapshot, and back up again)" ;;
  esac
  return 1
}

# The cause of the last failed read, for messages.
read_failure() {
  if [[ -n $HTTP_ERROR ]]; then
    printf 'no answer: %s' "$HTTP_ERROR"
  else
    printf 'HTTP %s: %s' "$HTTP_STATUS" "$(engine_error "$ES_REPLY")"
  fi
}

# One progress line: shards done of total and bytes, from the snapshot's _status.
report_progress() {
  local progress
  es_call GET "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}/_status" && [[ $HTTP_STATUS == 200 ]] || return 0
  progress=$(jq -r '.snapshots[0] // {} |
      "\(.shards_stats.done // 0)/\(.shards_stats.total // 0) shards done, " +
      "\(((.stats.processed.size_in_bytes // 0) / 1048576 * 10 | floor) / 10) of " +
      "\(((.stats.total.size_in_bytes // 0) / 1048576 * 10 | floor) / 10) MiB"' "$ES_REPLY")
  log "snapshot ${SNAPSHOT_NAME}: IN_PROGRESS, ${progress} ($((SECONDS - FOLLOW_START))s)"
}

# snapshot_being_deleted: the snapshot last read is FAILED by an abort, which the engine shows
# until it has deleted it (and the deletion needs the repository and its client).
snapshot_being_deleted() {
  [[ $SNAPSHOT_STATE == FAILED ]] &&
    jq -e '.snapshots[0].reason // "" | test("aborted"; "i")' "$WORK_DIR/snapshot.json" >/dev/null 2>&1
}

# abort_running_snapshot WHY: aborts the job's snapshot (its files are deleted), unless it has
# ended or is gone: one that has ended is kept (returns 2, as for one gone), for the job or a
# retry to judge. When the abort
# fails, or the snapshot may still start or is being deleted, the repository and the client
# are left to the engine (returns 1): removing the keys would strand that work.
abort_running_snapshot() {
  local why=$1
  if snapshot_info; then
    if [[ $SNAPSHOT_STATE == MISSING ]]; then
      if [[ ${SNAPSHOT_START_IN_FLIGHT:-false} == true ]]; then
        warn "the start of snapshot ${SNAPSHOT_NAME} had no answer when ${why}, and the engine does not list it: it may still start"
        keep_for_the_engine
        return 1
      fi
      log "snapshot ${SNAPSHOT_NAME}: not in the repository when ${why}, nothing to abort"
      return 2
    fi
    if snapshot_being_deleted; then
      log "snapshot ${SNAPSHOT_NAME} is being deleted (aborted) when ${why}"
      keep_for_the_engine
      return 1
    fi
    if [[ $SNAPSHOT_STATE != IN_PROGRESS && $SNAPSHOT_STATE != STARTED ]]; then
      log "snapshot ${SNAPSHOT_NAME} had ended ${SNAPSHOT_STATE} when ${why}: it is kept, not aborted (a retry of this Backup takes it as it finds it)"
      return 2
    fi
  fi
  if es_call DELETE "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}" '' "$ES_VERIFY_TIMEOUT" && [[ $HTTP_STATUS == 2* ]]; then
    log "snapshot ${SNAPSHOT_NAME} aborted (${why})"
    return 0
  fi
  warn "could not abort snapshot ${SNAPSHOT_NAME}: $(read_failure)"
  keep_for_the_engine
  return 1
}

# Why a snapshot ended badly: its reason and its first shard failures.
snapshot_failure() {
  jq -r '.snapshots[0] |
      [(.reason // empty),
       ((.failures // [])[:3][] | "\(.index)[\(.shard_id)] on node \(.node_id // "?"): \(.reason // .status // "?")")]
      | if length == 0 then "no reason given" else join("; ") end' "$WORK_DIR/snapshot.json"
}

# judge_state: returns 0 when the snapshot has ended well, 1 while it runs; stops the job
# when it ended otherwise.
judge_state() {
  case $SNAPSHOT_STATE in
    IN_PROGRESS | STARTED) return 1 ;;
    MISSING)
      # The earlier attempt whose snapshot this job took over aborted it as it stopped: the
      # Backup is taken anew, once.
      if [[ ${SNAPSHOT_TAKEN_OVER:-false} == true ]]; then
        SNAPSHOT_TAKEN_OVER=false ABORT_SEEN_AT=''
        log "snapshot ${SNAPSHOT_NAME}, taken over from an earlier attempt, is gone (that attempt aborted it as it stopped): taking it again"
        start_snapshot
        return 1
      fi
      die "snapshot ${SNAPSHOT_NAME} no longer exists in repository ${REPOSITORY}" ;;
    FAILED)
      # An abort shows as FAILED ("aborted by deletion") until the deletion ends: one the
      # earlier attempt sent as it stopped is waited out (ES_VERIFY_TIMEOUT), then the Backup
      # is taken anew as above.
      if [[ ${SNAPSHOT_TAKEN_OVER:-false} == true ]] && snapshot_being_deleted; then
        if [[ -z ${ABORT_SEEN_AT:-} ]]; then
          ABORT_SEEN_AT=$SECONDS
          log "snapshot ${SNAPSHOT_NAME}, taken over from an earlier attempt, was aborted ($(snapshot_failure)): waiting for its deletion to end, then taking it again"
        fi
        ((SECONDS - ABORT_SEEN_AT >= ES_VERIFY_TIMEOUT)) || return 1
      fi ;;
    SUCCESS | PARTIAL | INCOMPATIBLE) ;;
    *) die "snapshot ${SNAPSHOT_NAME} is in unknown state '${SNAPSHOT_STATE}'" ;;
  esac
  state_accepted "$SNAPSHOT_STATE" || die "snapshot ${SNAPSHOT_NAME} ended ${SNAPSHOT_STATE}: $(snapshot_failure)"
  if [[ $SNAPSHOT_STATE == PARTIAL ]]; then
    warn "snapshot ${SNAPSHOT_NAME} ended PARTIAL (allowed by BACKUP_ALLOW_PARTIAL): $(snapshot_failure)"
  fi
  log "snapshot ${SNAPSHOT_NAME}: ${SNAPSHOT_STATE} after $((SECONDS - FOLLOW_START))s"
}

# repository_gone_under_the_job: after a failed read, stops the job when the engine says the
# job's repository is not registered: another attempt of this Backup that followed the same
# snapshot ended first (and unregistered it), or someone did by hand. Nothing is left to the
# engine then: the snapshot goes on, or has ended, without the job's repository.
repository_gone_under_the_job() {
  [[ ${HTTP_STATUS:-} == 404 && -z ${HTTP_ERROR:-} ]] &&
    jq -e '.error.type == "repository_missing_exception"' "$ES_REPLY" >/dev/null 2>&1 || return 0
  # shellcheck disable=SC2034 # read by the exit (common.sh): nothing to unregister
  REPOSITORY_REGISTERED=false
  die "repository ${REPOSITORY} was unregistered while this job followed snapshot ${SNAPSHOT_NAME}: another attempt of this Backup that followed the same snapshot ended first (its result is the Backup's), or it was done by hand; the snapshot's final state cannot be read here (a retry of this Backup reads it)"
}

# Follows the snapshot until it ends, under BACKUP_TIMEOUT: polls every 0.1 s for the first
# half second (a small cluster's snapshot is done by then, and a read is cheap), then twice as
# long each time up to POLL_INTERVAL; a progress line every PROGRESS_INTERVAL, on its own
# clock. Never returns without the snapshot's final state.
follow_snapshot() {
  FOLLOW_START=$SECONDS
  local deadline=$((SECONDS + BACKUP_TIMEOUT)) errors=0 pause=100 fast=5 max_pause=$((POLL_INTERVAL * 1000))
  local next_report=$(($(now_ms) + PROGRESS_INTERVAL * 1000)) now wait_ms
  ((max_pause >= 100)) || max_pause=100
  while true; do
    if ! snapshot_info; then
      repository_gone_under_the_job
      errors=$((errors + 1))
      warn "reading snapshot ${SNAPSHOT_NAME} (${errors}/${MAX_POLL_ERRORS}): $(read_failure)"
      ((errors < MAX_POLL_ERRORS)) || {
        keep_for_the_engine
        die "snapshot ${SNAPSHOT_NAME}: status unreadable ${errors} times in a row; its final state is unknown (the snapshot may still run: a retry of this Backup follows it)"
      }
    else
      errors=0
      judge_state && return 0
    fi
    if ((SECONDS >= deadline)); then
      # The engine answers the abort once every shard has stopped: a throttled upload may
      # take a while, so the job says what it waits for.
      log "snapshot ${SNAPSHOT_NAME}: the deadline of ${BACKUP_TIMEOUT}s (BACKUP_TIMEOUT) is reached: aborting it"
      local aborted=0
      abort_running_snapshot "the deadline was reached" || aborted=$?
      # Ended meanwhile: judged as any end is (one gone is not taken again past the deadline).
      if ((aborted == 2)); then
        [[ $SNAPSHOT_STATE != MISSING ]] ||
          die "snapshot ${SNAPSHOT_NAME} no longer exists in repository ${REPOSITORY} at the deadline of ${BACKUP_TIMEOUT}s (BACKUP_TIMEOUT)"
        judge_state && return 0
      fi
      die "snapshot ${SNAPSHOT_NAME} still running after the deadline of ${BACKUP_TIMEOUT}s (BACKUP_TIMEOUT)"
    fi
    now=$(now_ms)
    if ((now >= next_report)); then
      report_progress
      next_report=$((now + PROGRESS_INTERVAL * 1000))
    fi
    wait_ms=$pause
    ((next_report - now >= wait_ms)) || wait_ms=$((next_report - now))
    ((wait_ms >= 50)) || wait_ms=50
    sleep_ms "$wait_ms"
    if ((fast > 0)); then
      fast=$((fast - 1))
    else
      pause=$((pause * 2))
    fi
    ((pause <= max_pause)) || pause=$max_pause
  done
}

# check_coverage: a snapshot that ended SUCCESS may still lack what was asked for: it says so
# instead of reporting a backup that is not there. A selection (BACKUP_INDICES) that matched
# no index fails; a closed index the selection takes (or, without one, any closed index) that
# the snapshot left out fails too (an engine may skip closed indices without a word).
check_coverage() {
  local taken missing
  taken=$(jq -r '.snapshots[0].indices // [] | length' "$WORK_DIR/snapshot.json")
  if [[ -n $BACKUP_INDICES && $taken == 0 ]]; then
    local whose="BACKUP_INDICES '${BACKUP_INDICES}' matched none"
    [[ ${SNAPSHOT_DONE:-false} != true && ${SNAPSHOT_TAKEN_OVER:-false} != true ]] ||
      whose="an earlier attempt of this Backup took it, and that attempt's selection matched none"
    die "snapshot ${SNAPSHOT_NAME} holds no index: ${whose} (the snapshot stays at this Backup's path, and a retry of this Backup takes it as it is: fix the selection and back up under a new Backup name)"
  fi
  # The engine resolves the selection (patterns, exclusions, aliases, _all) as its snapshot
  # did: the closed indices among what it names.
  local selection
  selection=$(jq -rn --arg s "${BACKUP_INDICES:-_all}" '$s | @uri')
  if ! es_call GET "/_cluster/state/metadata/${selection}?expand_wildcards=all&ignore_unavailable=true&allow_no_indices=true&filter_path=metadata.indices.*.state" ||
    [[ $HTTP_STATUS != 200 ]]; then
    warn "could not list the closed indices of the selection to check that the snapshot holds them: $(read_failure)"
    return 0
  fi
  missing=$(jq -r --slurpfile snap "$WORK_DIR/snapshot.json" '
      ($snap[0].snapshots[0].indices // []) as $taken
      | [.metadata.indices // {} | to_entries[] | select(.value.state == "close") | .key
         | select(startswith(".") | not)
         | select(. as $i | $taken | index($i) | not)] | sort | join(", ")' "$ES_REPLY")
  [[ -z $missing ]] || [[ $BACKUP_ALLOW_PARTIAL == true ]] ||
    die "snapshot ${SNAPSHOT_NAME} left out closed index(es) ${missing}: the engine does not snapshot them; open them (POST <index>/_open) or leave them out (BACKUP_INDICES with a pattern, then -<index>: '*,-<index>'), then back up again (BACKUP_ALLOW_PARTIAL=true accepts the snapshot without them)"
  [[ -z $missing ]] || warn "snapshot ${SNAPSHOT_NAME} left out closed index(es) ${missing} (allowed by BACKUP_ALLOW_PARTIAL)"
}

# A backup stopped by a signal while its snapshot runs: the snapshot, which no job will follow,
# is aborted (it would otherwise go on without the S3 client the exit removes, and block the
# repository and its indices until someone aborts it); if that fails, the repository and the
# client are left to it, saying how to remove them.
job_cleanup() {
  local rc=$1
  # A start with no answer (a signal, or none came) may have started the snapshot: it is
  # looked for, on any exit.
  if [[ ${SNAPSHOT_START_IN_FLIGHT:-false} == true ]]; then
    abort_running_snapshot "the job ended" || true
    return 0
  fi
  ((rc == 143 || rc == 130 || rc == 129 || rc == 131)) || return 0
  [[ ${SNAPSHOT_STARTED:-false} == true && ${SNAPSHOT_ENDED:-false} != true ]] || return 0
  # The snapshot may have ended since the job last read it: a finished one is kept.
  abort_running_snapshot "the job was stopped" || true
}

# Writes the Backup status fragment KubeBlocks merges: totalSize, timeRange, extras.
write_backup_info() {
  local fragment="$WORK_DIR/backup-info.json" status="$WORK_DIR/no-status.json" try
  for try in 1 2 3; do
    if es_call GET "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}/_status" '' "$ES_VERIFY_TIMEOUT" && [[ $HTTP_STATUS == 200 ]]; then
      status=$ES_REPLY
      break
    fi
    ((try == 3)) || sleep_s 1
  done
  if [[ $status != "$ES_REPLY" ]]; then
    # No size rather than a size of 0, which would read as an empty backup.
    warn "snapshot size unknown (totalSize left out of the backup info): $(read_failure)"
    printf '{}\n' >"$status"
  fi
  # One jq run (compact, so the log line is the file): the size from _status, the rest from
  # the snapshot's own answer.
  jq -c --slurpfile status "$status" --arg engine "$ENGINE_DISTRIBUTION" --arg version "$ENGINE_VERSION" \
    --arg repository "$REPOSITORY" --arg bucket "$S3_BUCKET" --arg base_path "$REPO_BASE_PATH" '
      .snapshots[0] as $s
      | ($status[0].snapshots[0].stats // {}) as $stats
      | (if ($stats | length) == 0 then {}
         else {totalSize: ($stats | .total.size_in_bytes // .total_size_in_bytes // .incremental.size_in_bytes // 0 | tostring)} end)
      + {timeRange: {start: ($s.start_time_in_millis / 1000 | floor | todate),
                     end: (($s.end_time_in_millis + 999) / 1000 | floor | todate)},
         extras: [{snapshot: $s.snapshot, uuid: $s.uuid, state: $s.state,
                   indices: ($s.indices | length | tostring),
                   shards: ($s.shards.total // 0 | tostring),
                   failedShards: ($s.shards.failed // 0 | tostring),
                   engine: $engine, version: ($s.version // $version),
                   repository: $repository, bucket: $bucket, basePath: $base_path}]}' \
    "$WORK_DIR/snapshot.json" >"$fragment"
  if [[ -n ${DP_BACKUP_INFO_FILE:-} ]]; then
    cp "$fragment" "${DP_BACKUP_INFO_FILE}.tmp"
    mv -f "${DP_BACKUP_INFO_FILE}.tmp" "$DP_BACKUP_INFO_FILE"
    log "backup info written to ${DP_BACKUP_INFO_FILE}: $(<"$fragment")"
  else
    warn "DP_BACKUP_INFO_FILE is not set; backup info: $(<"$fragment")"
  fi
}

main() {
  job_init backup
  validate_backup_options
  prepare_job
  register_repository false true
  start_snapshot
  [[ $SNAPSHOT_DONE == true ]] || follow_snapshot
  SNAPSHOT_ENDED=true
  check_coverage
  write_backup_info
  job_done
}

# Run as a job; sourced (by the script tests) it only defines the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi

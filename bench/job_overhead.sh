#!/usr/bin/env bash
# Benchmark 4: the jobs' own overhead on the demo's local cluster.
#
# Starts its own copy of the demo cluster (tests/e2e/cluster.sh: three OpenSearch nodes, one
# agent each, a signature-checking S3 server) on 127.0.0.111-113, S3 on port 7073, work dir
# /tmp/es-bench (so it never meets the default cluster), loads sample data (3 indices, 3
# shards and 1 replica each), then per round runs backup.sh and restore.sh with the
# environment a KubeBlocks job gets, as tests/e2e/demo.sh does, and computes
#   backup overhead   = backup.sh's wall time - the snapshot's own duration, start_time to
#                       end_time (ms) as the engine reports it (GET _snapshot, read through a
#                       read-only repository of the bench's own at the Backup's path)
#   restore overhead  = restore.sh's wall time - the restore's duration: the first SNAPSHOT
#                       shard recovery's start to the last one's stop in GET <indices>/_recovery
# Every job log line is kept with its time since the job started ($BENCH_OUT/job-logs/), to
# say where the rest goes.
#
# Output: $BENCH_OUT/job_overhead.tsv (with each job's 1-minute load average when it started:
# the host's other load shows in every step). Environment: BENCH_JOB_REPS (rounds; 5; the
# report's medians leave out round 1, the first jobs after the cluster started, cold JITs),
# BENCH_JOB_DOCS (documents per index; 4000), AGENT_BIN; the jobs' own variables
# (POLL_INTERVAL, ...) pass through to them.
set -euo pipefail

export E2E_NODE_ADDRS_LIST="${BENCH_JOB_NODES:-127.0.0.111 127.0.0.112 127.0.0.113}"
export E2E_S3_PORT="${BENCH_JOB_S3_PORT:-7073}"
export E2E_WORK="${BENCH_JOB_WORK:-/tmp/es-bench}"
BENCH_NAME="job-overhead"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPS="${BENCH_JOB_REPS:-5}"
DOCS="${BENCH_JOB_DOCS:-4000}"
JOBS_DIR="$BENCH_ROOT/addons/elasticsearch/dataprotection"
INDICES=(bench-products bench-orders bench-events)
NAMESPACE=bench
POLICY_PREFIX=bench-cluster-elasticsearch-backup-policy
READ_REPO=bench-read
READ_CLIENT=benchread
CLUSTER_STARTED=false

cleanup() {
  local rc=$?
  set +e
  rm -f "${CURL_AUTH:-}" "${AGENT_AUTH:-}"
  if [[ $CLUSTER_STARTED == true ]]; then
    bench_log "stopping the bench cluster"
    bash "$BENCH_ROOT/tests/e2e/cluster.sh" stop >/dev/null 2>&1
  fi
  exit "$rc"
}

# The cluster's and the agents' credentials into 0600 curl configs (never on a command line).
write_auth() {
  local user pass
  user="$(sed -n 's/^ELASTIC_USERNAME=//p' "$E2E_AGENT_CREDENTIALS")"
  pass="$(sed -n 's/^ELASTIC_PASSWORD=//p' "$E2E_AGENT_CREDENTIALS")"
  CURL_AUTH="$WORK/auth.curlrc"
  (umask 077 && printf 'header = "Authorization: Basic %s"\n' "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" >"$CURL_AUTH")
  AGENT_AUTH="$CURL_AUTH"
}

# es METHOD PATH [CURL ARGS...]: a request to the cluster; fails on HTTP errors.
es() {
  local method=$1 path=$2
  shift 2
  curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 120 \
    --config "$CURL_AUTH" --request "$method" --header "Content-Type: ${CONTENT_TYPE:-application/json}" \
    "$@" --url "${E2E_ES_URL}${path}"
}

load_data() {
  local index
  for index in "${INDICES[@]}"; do
    es PUT "/$index" --data-binary '{"settings":{"number_of_shards":3,"number_of_replicas":1}}' >/dev/null
    awk -v ix="$index" -v n="$DOCS" 'BEGIN { for (i = 1; i <= n; i++) {
        printf "{\"index\":{\"_index\":\"%s\",\"_id\":\"%d\"}}\n", ix, i
        printf "{\"seq\":%d,\"name\":\"%s %d\",\"price\":%.2f,\"text\":\"row %d of %s, %d\"}\n", i, ix, i, (i * 37 % 10000) / 100, i, ix, i * 7919 } }' \
      >"$WORK/$index.ndjson"
    [[ "$(CONTENT_TYPE=application/x-ndjson es POST /_bulk --data-binary "@$WORK/$index.ndjson" | jq -r .errors)" == false ]] ||
      bench_die "bulk load into $index reported errors"
  done
  es POST "/$(IFS=,; echo "${INDICES[*]}")/_refresh" >/dev/null
  es GET '/_cluster/health?wait_for_status=green&timeout=60s' >/dev/null
  bench_log "loaded $((DOCS * ${#INDICES[@]})) documents into ${#INDICES[@]} indices"
}

# read_repository: a read-only repository of the bench's own, with its own S3 client (the S3
# root keys, written through the agents), from which the snapshots' own times are read after
# each job has removed its repository and its keys.
read_repository() {
  local ak sk n
  ak="$(sed -n 's/^S3_ACCESS_KEY=//p' "$E2E_S3_CREDENTIALS")"
  sk="$(sed -n 's/^S3_SECRET_KEY=//p' "$E2E_S3_CREDENTIALS")"
  (umask 077 && BENCH_AK=$ak BENCH_SK=$sk jq -n --arg c "$READ_CLIENT" \
    '{access_key_id: env.BENCH_AK, secret_access_key: env.BENCH_SK, client: $c}' >"$WORK/read-body.json")
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 60 --config "$AGENT_AUTH" \
      --header 'Content-Type: application/json' --data-binary "@$WORK/read-body.json" --output /dev/null \
      "http://$(e2e_node_addr "$n"):$E2E_AGENT_PORT/keystore"
  done
  es POST /_nodes/reload_secure_settings >/dev/null
}

# snapshot_ms BUCKET BASE_PATH SNAPSHOT: the snapshot's start_time_in_millis and
# end_time_in_millis, read through the bench's repository at BASE_PATH.
snapshot_ms() {
  e2e_s3_repo_settings "$2" "$READ_CLIENT" | jq --arg b "$1" '{type: "s3", settings: (. + {bucket: $b, readonly: true})}' \
    >"$WORK/read-repo.json"
  es PUT "/_snapshot/$READ_REPO" --data-binary "@$WORK/read-repo.json" >/dev/null
  es GET "/_snapshot/$READ_REPO/$3" | jq -r '.snapshots[0] | "\(.start_time_in_millis) \(.end_time_in_millis) \(.state)"'
  es DELETE "/_snapshot/$READ_REPO" >/dev/null
}

# run_job SCRIPT BACKUP LOG: the job with a KubeBlocks job's environment (secrets exported,
# never on a command line); every output line prefixed with its ms since the start. Prints
# the wall ms.
run_job() {
  local script=$1 backup=$2 log=$3 user pass t0 rc
  user="$(sed -n 's/^ELASTIC_USERNAME=//p' "$E2E_AGENT_CREDENTIALS")"
  pass="$(sed -n 's/^ELASTIC_PASSWORD=//p' "$E2E_AGENT_CREDENTIALS")"
  rm -f "$WORK/backup.info" "$WORK/backup.info.exit"
  t0="$(now_us)"
  set +e
  (
    export DP_DB_HOST="${E2E_NODE_ADDRS[0]}" DP_DB_PORT="$E2E_HTTP_PORT"
    export DP_DB_USER="$user" DP_DB_PASSWORD="$pass"
    export DP_BACKUP_NAME="$backup"
    export DP_BACKUP_BASE_PATH="/${NAMESPACE}/${POLICY_PREFIX}/${backup}"
    export DP_BACKUP_INFO_FILE="$WORK/backup.info"
    export DP_TARGET_POD_NAME=node-1 KB_NAMESPACE="$NAMESPACE" KB_CLUSTER_NAME="$E2E_CLUSTER_NAME"
    export DATASAFED_CONF="$E2E_DATASAFED_CONF"
    # A restore Job's pod name, as KubeBlocks gives it: it tells the job its Restore.
    [[ $script != restore.sh ]] || export HOSTNAME="restore-post-ready-0b1e2c3d-${backup}-0-0-bench"
    bash "$JOBS_DIR/$script" 2>&1
  ) | while IFS= read -r line; do
    printf '%9.3f %s\n' "$(awk -v a="$t0" -v b="${EPOCHREALTIME/./}" 'BEGIN { print (b - a) / 1e6 }')" "$line"
  done >"$log"
  rc=${PIPESTATUS[0]}
  set -e
  chmod 0644 "$log"
  local wall
  wall="$(elapsed_ms "$t0")"
  ((rc == 0)) || bench_die "$script failed (exit $rc); its log: $log (last lines: $(tail -n 3 "$log" | tr '\n' ' '))"
  printf '%s\n' "$wall"
}

# restore_ms: first start and last stop (ms) of the SNAPSHOT recoveries of the indices.
restore_ms() {
  es GET "/$(IFS=,; echo "${INDICES[*]}")/_recovery" |
    jq -r '[.[].shards[] | select(.type == "SNAPSHOT")] as $s
      | if ($s | length) == 0 then "none"
        else "\([$s[].start_time_in_millis] | min) \([$s[].stop_time_in_millis] | max) \($s | length)" end'
}

# Milestones of each job's log: a pattern of its line, and what happened since the previous one.
readonly BACKUP_MILESTONES=(
  "nodes: [0-9]|start, GET /, GET /_nodes/http"
  "agents ready on all|GET /ready on every agent"
  "written on all|POST /keystore on every agent"
  "secure settings reloaded on all|reload of secure settings"
  "registered and verified|PUT _snapshot/<repo>?verify=false, POST _snapshot/<repo>/_verify"
  "verified by all|the nodes that verified it checked"
  "snapshot .* started|PUT _snapshot/<repo>/<snapshot>"
  ": SUCCESS after|following the snapshot (the engine's snapshot time is in here)"
  "done in [0-9]|snapshot status, Backup status fragment"
  "unregistered \(its data|exit: DELETE /keystore (with reload) on every agent, unregister"
  "earlier attempts: |exit: earlier attempts' leftovers looked for (GET _snapshot, GET /keystore on every agent)"
)
readonly RESTORE_MILESTONES=(
  "nodes: [0-9]|start, GET /, GET /_nodes/http"
  "agents ready on all|GET /ready on every agent"
  "written on all|POST /keystore on every agent"
  "secure settings reloaded on all|reload of secure settings"
  "registered and verified|PUT _snapshot/<repo>?verify=true (read-only)"
  "conflicts: |pre-flight: snapshot, version, contents, plan, conflicts"
  "restore of .* started|features paused, POST _restore"
  "every restored primary shard is active|waiting for the primaries (the engine's restore time is in here)"
  "done in [0-9]|recoveries checked, indices reported"
  "unregistered \(its data|exit: DELETE /keystore (with reload) on every agent, unregister"
  "earlier attempts: |exit: earlier attempts' leftovers looked for (GET _snapshot, GET /keystore on every agent)"
)

# phases ROUND JOB LOG MILESTONE...: one job_phases.tsv line per milestone, with the ms since
# the previous one (the log's first column is seconds since the job started).
phases() {
  local r=$1 job=$2 log=$3 prev=0 m t
  shift 3
  for m in "$@"; do
    t="$(grep -E -m 1 -- "${m%%|*}" "$log" | awk '{ print $1 * 1000 }')" ||
      true
    [[ -n $t ]] || continue
    printf '%s\t%s\t%s\t%s\n' "$r" "$job" "${m#*|}" "$(awk -v a="$prev" -v b="$t" 'BEGIN { printf "%.0f", b - a }')" >>"$PHASES"
    prev=$t
  done
}

round() {
  local r=$1 backup wall start end state bucket base rwall rstart rstop shards count load rload
  backup="bench-$r-$(date -u +%Y%m%d%H%M%S)"
  load=$(cut -d' ' -f1 /proc/loadavg)
  wall="$(run_job backup.sh "$backup" "$LOGS/backup-$r.log")"
  [[ ! -e "$WORK/backup.info.exit" ]] || bench_die "backup.sh left backup.info.exit"
  bucket="$(jq -r '.extras[0].bucket' "$WORK/backup.info")"
  base="$(jq -r '.extras[0].basePath' "$WORK/backup.info")"
  read -r start end state <<<"$(snapshot_ms "$bucket" "$base" "$backup")"
  [[ $state == SUCCESS ]] || bench_die "snapshot $backup is $state"
  es DELETE "/$(IFS=,; echo "${INDICES[*]}")" >/dev/null
  rload=$(cut -d' ' -f1 /proc/loadavg)
  rwall="$(run_job restore.sh "$backup" "$LOGS/restore-$r.log")"
  read -r rstart rstop shards <<<"$(restore_ms)"
  [[ $rstart != none ]] || bench_die "no SNAPSHOT recovery in _recovery after restore.sh"
  for ix in "${INDICES[@]}"; do
    count="$(es GET "/$ix/_count" | jq -r .count)"
    [[ $count == "$DOCS" ]] || bench_die "$ix has $count documents after the restore, not $DOCS"
  done
  printf '%s\tbackup\t%s\t%s\t%s\t-\t%s\n' "$r" "$wall" "$((end - start))" \
    "$(awk -v w="$wall" -v d=$((end - start)) 'BEGIN { printf "%.3f", w - d }')" "$load" >>"$OUT"
  printf '%s\trestore\t%s\t%s\t%s\t%s\t%s\n' "$r" "$rwall" "$((rstop - rstart))" \
    "$(awk -v w="$rwall" -v d=$((rstop - rstart)) 'BEGIN { printf "%.3f", w - d }')" "$shards" "$rload" >>"$OUT"
  phases "$r" backup "$LOGS/backup-$r.log" "${BACKUP_MILESTONES[@]}"
  phases "$r" restore "$LOGS/restore-$r.log" "${RESTORE_MILESTONES[@]}"
  bench_log "round $r: backup.sh $wall ms, snapshot $((end - start)) ms; restore.sh $rwall ms, restore $((rstop - rstart)) ms ($shards shards)"
  es GET '/_cluster/health?wait_for_status=green&timeout=60s' >/dev/null
}

main() {
  require_root
  install_packages
  [[ -x "$AGENT_BIN" ]] || bench_die "no agent binary at $AGENT_BIN (make agent)"
  mkdir -p "$BENCH_OUT"
  OUT="$BENCH_OUT/job_overhead.tsv"
  LOGS="$BENCH_OUT/job-logs"
  rm -rf "$LOGS"
  mkdir -p "$LOGS"
  printf 'round\tjob\twall_ms\tengine_ms\toverhead_ms\tshards\tload\n' >"$OUT"
  PHASES="$BENCH_OUT/job_phases.tsv"
  printf 'round\tjob\tphase\tms\n' >"$PHASES"
  trap cleanup EXIT
  CLUSTER_STARTED=true
  bench_log "starting the bench cluster on ${E2E_NODE_ADDRS[*]} (S3 on $E2E_S3_PORT, work dir $E2E_WORK)"
  AGENT_BIN="$AGENT_BIN" bash "$BENCH_ROOT/tests/e2e/cluster.sh" start >/dev/null
  WORK="$E2E_WORK/bench"
  install -d -m 0700 "$WORK"
  write_auth
  load_data
  read_repository
  local r
  for ((r = 1; r <= REPS; r++)); do round "$r"; done
  column -t "$OUT" >&2
}

main "$@"

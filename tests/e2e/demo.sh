#!/usr/bin/env bash
# The demo behind `make demo` (which installs the dependencies and builds the agent first):
# a local three-node OpenSearch cluster with one keystore agent per node and an S3 server,
# sample data, then the addon's backup job exactly as the ActionSet runs it, the snapshot's
# objects in the bucket, the indices deleted, the restore job, and a check that every index
# came back with the same document count and content checksum.
#
# Exits 0 only when the data came back identical. Stops everything it started, also on
# failure. Usage: tests/e2e/demo.sh   (as root; AGENT_BIN defaults to build/agent/es-agent)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/env.sh disable=SC1091
source "${HERE}/lib/env.sh"

JOBS_DIR="${E2E_ROOT}/addons/elasticsearch/dataprotection"
AGENT_BIN=${AGENT_BIN:-${E2E_ROOT}/build/agent/es-agent}
DEMO_DIR="${E2E_WORK}/demo"
BACKUP_NAME="demo-full-$(date -u +%Y%m%d%H%M%S)"
NAMESPACE=demo
POLICY_PREFIX=demo-cluster-elasticsearch-backup-policy
# Replicas of the sample indices: 1, or 0 for a one-node cluster (tests/e2e/test_ipv6.sh).
DEMO_REPLICAS=${DEMO_REPLICAS:-1}
[[ $DEMO_REPLICAS =~ ^[0-9]$ ]] || {
  echo "DEMO_REPLICAS must be 0-9" >&2
  exit 2
}

# Sample data: index name and number of documents (12,000 in all).
declare -A DOC_COUNTS=([demo-products]=2500 [demo-orders]=6000 [demo-events]=3500)
INDICES=(demo-products demo-orders demo-events)

CLUSTER_STARTED=false
STEP_NAMES=()
STEP_TIMES=()
declare -A BEFORE_COUNT BEFORE_SUM AFTER_COUNT AFTER_SUM

say() { printf '[demo] %s\n' "$*"; }
die() {
  printf '[demo] ERROR: %s\n' "$*" >&2
  exit 1
}

# step TITLE FUNCTION: runs FUNCTION, records how long it took.
step() {
  local title=$1 t0=$SECONDS
  say "==> ${title}"
  "$2"
  STEP_NAMES+=("$title")
  STEP_TIMES+=("$((SECONDS - t0))")
}

on_exit() {
  local rc=$?
  set +e
  rm -f "${CURL_AUTH:-}"
  if [[ $CLUSTER_STARTED == true ]]; then
    say "stopping the local cluster"
    bash "${HERE}/cluster.sh" stop >/dev/null 2>&1
  fi
  if [[ $rc -ne 0 ]]; then
    say "FAILED (exit ${rc})"
  fi
  exit "$rc"
}

# --- engine requests (credentials through a 0600 curl config, never argv) -------------

write_curl_auth() {
  CURL_AUTH="${DEMO_DIR}/auth.curlrc"
  local user pass
  user=$(sed -n 's/^ELASTIC_USERNAME=//p' "$E2E_AGENT_CREDENTIALS")
  pass=$(sed -n 's/^ELASTIC_PASSWORD=//p' "$E2E_AGENT_CREDENTIALS")
  (
    umask 077
    printf 'header = "Authorization: Basic %s"\n' "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" >"$CURL_AUTH"
  )
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

# --- steps ---------------------------------------------------------------------

start_cluster() {
  [[ -x $AGENT_BIN ]] || die "agent binary ${AGENT_BIN} missing: build it first (make agent)"
  CLUSTER_STARTED=true
  AGENT_BIN=$AGENT_BIN bash "${HERE}/cluster.sh" start
  install -d -m 0700 "$DEMO_DIR"
  write_curl_auth
}

# make_docs INDEX COUNT: bulk NDJSON of deterministic sample documents.
make_docs() {
  awk -v index_name="$1" -v count="$2" 'BEGIN {
    split("red green blue amber violet", colours, " ")
    for (i = 1; i <= count; i++) {
      printf "{\"index\":{\"_index\":\"%s\",\"_id\":\"%s-%06d\"}}\n", index_name, index_name, i
      printf "{\"seq\":%d,\"name\":\"%s item %d\",\"colour\":\"%s\",\"price\":%.2f,", i, index_name, i, colours[i % 5 + 1], (i * 37 % 10000) / 100
      printf "\"created\":\"2024-%02d-%02dT%02d:%02d:00Z\",\"tags\":[\"t%d\",\"t%d\"],", i % 12 + 1, i % 28 + 1, i % 24, i % 60, i % 7, i % 11
      printf "\"text\":\"document %d of %s: lorem ipsum dolor sit amet %d\"}\n", i, index_name, i * 7919
    }
  }'
}

# bulk FILE: POST /_bulk with FILE, tried three times: a busy node may drop the connection
# (every document has its id, so a second try writes the same documents).
bulk() {
  local try rc=0 out
  for try in 1 2 3; do
    if out=$(CONTENT_TYPE=application/x-ndjson es POST /_bulk --data-binary "@$1"); then
      printf '%s\n' "$out"
      return 0
    else
      rc=$?
    fi
    say "bulk load to ${E2E_ES_URL}: curl exit ${rc} (try ${try} of 3)" >&2
    sleep "$try"
  done
  die "bulk load to ${E2E_ES_URL} failed 3 times (curl exit ${rc}); the nodes' logs stay in ${E2E_WORK}/node-*/logs/ until the next start"
}

load_data() {
  local index total=0 errors
  for index in "${INDICES[@]}"; do
    es PUT "/${index}" --data-binary "$(jq -cn --argjson r "$DEMO_REPLICAS" '{settings: {number_of_shards: 3, number_of_replicas: $r}}')" >/dev/null
    make_docs "$index" "${DOC_COUNTS[$index]}" >"${DEMO_DIR}/${index}.ndjson"
    split -l 4000 "${DEMO_DIR}/${index}.ndjson" "${DEMO_DIR}/${index}.part."
    local part
    for part in "${DEMO_DIR}/${index}".part.*; do
      errors=$(bulk "$part" | jq -r '.errors')
      [[ $errors == false ]] || die "bulk load into ${index} reported errors"
    done
    rm -f "${DEMO_DIR}/${index}".part.* "${DEMO_DIR}/${index}.ndjson"
    total=$((total + DOC_COUNTS[$index]))
  done
  es POST "/$(IFS=,; echo "${INDICES[*]}")/_refresh" >/dev/null
  es GET '/_cluster/health?wait_for_status=green&timeout=60s' >/dev/null
  say "loaded ${total} documents into ${#INDICES[@]} indices: $(es GET "/_cat/indices/demo-*?h=index,docs.count,pri,rep&s=index" | tr '\n' ';')"
}

# fingerprint INDEX: '<count> <sha256>' over every document (id and source, keys sorted),
# read with the scroll API and sorted by _id.
fingerprint() {
  local index=$1 count scroll_id page="${DEMO_DIR}/page.json" lines="${DEMO_DIR}/docs.txt"
  count=$(es GET "/${index}/_count" | jq -r '.count')
  : >"$lines"
  es POST "/${index}/_search?scroll=2m" --data-binary '{"size":1000,"sort":["_doc"]}' >"$page"
  while true; do
    jq -cS '.hits.hits[] | [._id, ._source]' "$page" >>"$lines"
    [[ $(jq '.hits.hits | length' "$page") -gt 0 ]] || break
    scroll_id=$(jq -r '._scroll_id' "$page")
    jq -n --arg id "$scroll_id" '{scroll: "2m", scroll_id: $id}' |
      es POST /_search/scroll --data-binary @- >"$page"
  done
  jq -n --arg id "$(jq -r '._scroll_id' "$page")" '{scroll_id: $id}' |
    es DELETE /_search/scroll --data-binary @- >/dev/null || true
  [[ $(wc -l <"$lines") -eq $count ]] || die "${index}: scroll returned $(wc -l <"$lines") documents, _count says ${count}"
  printf '%s %s' "$count" "$(LC_ALL=C sort "$lines" | sha256sum | cut -c1-64)"
  rm -f "$page" "$lines"
}

fingerprint_before() {
  local index fp
  for index in "${INDICES[@]}"; do
    fp=$(fingerprint "$index")
    BEFORE_COUNT[$index]=${fp%% *}
    BEFORE_SUM[$index]=${fp#* }
    say "${index}: ${BEFORE_COUNT[$index]} documents, sha256 ${BEFORE_SUM[$index]:0:16}..."
  done
}

# run_job SCRIPT: the job as the ActionSet runs it, with the environment a KubeBlocks
# DataProtection job gets (secrets exported, never on a command line).
run_job() {
  local script=$1 user pass
  user=$(sed -n 's/^ELASTIC_USERNAME=//p' "$E2E_AGENT_CREDENTIALS")
  pass=$(sed -n 's/^ELASTIC_PASSWORD=//p' "$E2E_AGENT_CREDENTIALS")
  (
    export DP_DB_HOST="${E2E_NODE_ADDRS[0]}" DP_DB_PORT="$E2E_HTTP_PORT"
    export DP_DB_USER="$user" DP_DB_PASSWORD="$pass"
    export DP_BACKUP_NAME="$BACKUP_NAME"
    export DP_BACKUP_BASE_PATH="/${NAMESPACE}/${POLICY_PREFIX}/${BACKUP_NAME}"
    export DP_BACKUP_INFO_FILE="${DEMO_DIR}/backup.info"
    export DP_TARGET_POD_NAME=node-1 KB_NAMESPACE="$NAMESPACE" KB_CLUSTER_NAME="$E2E_CLUSTER_NAME"
    export DATASAFED_CONF="$E2E_DATASAFED_CONF"
    # A restore Job's pod is named after its Restore's UID, which tells the job its Restore.
    if [[ $script == restore.sh ]]; then
      HOSTNAME="restore-post-ready-$(printf '%s' "$BACKUP_NAME" | sha256sum | cut -c1-8)-${BACKUP_NAME}-0-0-demo1"
      export HOSTNAME
    fi
    bash "${JOBS_DIR}/${script}"
  )
}

run_backup() {
  local t0=$SECONDS
  run_job backup.sh || die "backup.sh failed"
  BACKUP_SECONDS=$((SECONDS - t0))
  [[ ! -e ${DEMO_DIR}/backup.info.exit ]] || die "backup.sh left ${DEMO_DIR}/backup.info.exit"
  say "Backup status fragment: $(jq -c . "${DEMO_DIR}/backup.info")"
}

show_bucket() {
  local prefix="${NAMESPACE}/${POLICY_PREFIX}/${BACKUP_NAME}/" listing="${DEMO_DIR}/listing.xml"
  e2e_s3_curl --output "$listing" \
    "${E2E_S3_ENDPOINT}/${E2E_BUCKET}?list-type=2&max-keys=1000&prefix=${prefix//\//%2F}" ||
    die "listing the bucket failed"
  grep -q '<IsTruncated>false</IsTruncated>' "$listing" || say "(listing truncated at 1000 objects)"
  # One Key and one Size per object, in the same order: pair them.
  paste <(grep -o '<Key>[^<]*</Key>' "$listing" | sed -e 's/<Key>//' -e 's/<\/Key>//') \
    <(grep -o '<Size>[0-9]*</Size>' "$listing" | tr -dc '0-9\n') >"${DEMO_DIR}/objects.tsv"
  local count total shards
  count=$(wc -l <"${DEMO_DIR}/objects.tsv")
  total=$(awk -F'\t' '{s += $2} END {print s + 0}' "${DEMO_DIR}/objects.tsv")
  say "bucket ${E2E_BUCKET}, prefix ${prefix} (signed ListObjectsV2): ${count} objects, ${total} bytes"
  # Per folder: how many objects and bytes.
  awk -F'\t' -v prefix="$prefix" '{
      key = substr($1, length(prefix) + 1)
      dir = key; sub(/[^\/]*$/, "", dir)
      if (dir == "") dir = "./"
      n[dir]++; b[dir] += $2
    } END { for (d in n) printf "    %-58s %4d objects %9d bytes\n", d, n[d], b[d] }' \
    "${DEMO_DIR}/objects.tsv" | sort
  shards=$(grep -c '/indices/[^/]*/[0-9]*/__' "${DEMO_DIR}/objects.tsv" || true)
  [[ $count -gt 0 ]] || die "no object under ${prefix} in the bucket"
  [[ $shards -gt 0 ]] ||
    die "no shard data under ${prefix}: the snapshot's files are not all under the Backup's path"
}

delete_indices() {
  es DELETE "/$(IFS=,; echo "${INDICES[*]}")" >/dev/null
  say "deleted; indices left matching demo-*: $(es GET '/_cat/indices/demo-*?h=index' | wc -l)"
}

run_restore() {
  local t0=$SECONDS
  run_job restore.sh || die "restore.sh failed"
  RESTORE_SECONDS=$((SECONDS - t0))
}

compare() {
  local index fp bad=0
  for index in "${INDICES[@]}"; do
    fp=$(fingerprint "$index")
    AFTER_COUNT[$index]=${fp%% *}
    AFTER_SUM[$index]=${fp#* }
    if [[ $fp == "${BEFORE_COUNT[$index]} ${BEFORE_SUM[$index]}" ]]; then
      say "${index}: ${AFTER_COUNT[$index]} documents, checksum identical"
    else
      say "${index}: MISMATCH: before ${BEFORE_COUNT[$index]} ${BEFORE_SUM[$index]:0:16}, after ${AFTER_COUNT[$index]} ${AFTER_SUM[$index]:0:16}"
      bad=1
    fi
  done
  [[ $bad -eq 0 ]] || die "restored data differs from the original"
}

summary() {
  local i total=0
  printf '\n%-44s %8s\n' "step" "seconds"
  for i in "${!STEP_NAMES[@]}"; do
    printf '%-44s %8s\n' "${STEP_NAMES[$i]}" "${STEP_TIMES[$i]}"
    total=$((total + STEP_TIMES[i]))
  done
  printf '%-44s %8s\n' "total" "$total"
  printf '\nbackup.sh %ss, restore.sh %ss; %d indices, %d documents restored identical\n' \
    "$BACKUP_SECONDS" "$RESTORE_SECONDS" "${#INDICES[@]}" \
    "$((AFTER_COUNT[demo-products] + AFTER_COUNT[demo-orders] + AFTER_COUNT[demo-events]))"
}

main() {
  trap on_exit EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  step "start cluster (${E2E_NODE_COUNT} node(s), agents, S3)" start_cluster
  step "load sample data (_bulk)" load_data
  step "fingerprint indices" fingerprint_before
  step "backup.sh (${BACKUP_NAME})" run_backup
  step "list the snapshot's objects in the bucket" show_bucket
  step "delete the indices" delete_indices
  step "restore.sh" run_restore
  step "compare counts and checksums" compare
  summary
  say "OK: every index came back identical"
}

main "$@"

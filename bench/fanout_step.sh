#!/usr/bin/env bash
# One measurement of benchmark 2: the backup job's credential step, through the job's own
# functions (addons/elasticsearch/dataprotection/common.sh, sourced, not copied), across the
# agents listed in NODES_FILE (the declared seam: the list is given, not read from a
# cluster's GET /_nodes/http).
#
#   parallel     set_keystores: the job's fan-out, AGENT_PARALLELISM agents at a time (the
#                job's default, 32, unless set), with its checks of every answer
#   sequential   the same request body and the same per-node worker (write_node), one node
#                after the other, then the same result collection
#
# Usage: fanout_step.sh parallel|sequential NODES_FILE LOG
# Prints "WALL_MS JOB_CPU_MS": the step's wall time, and the CPU time of the job's side (this
# shell and every process it waited for: subshells, curl, jq). Fails when any node failed.
set -euo pipefail

MODE=$1
NODES_FILE=$2
STEP_LOG=$3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=addons/elasticsearch/dataprotection/common.sh
source "$HERE/../addons/elasticsearch/dataprotection/common.sh"

# self_ticks: this shell's CPU time and that of its waited-for children, in clock ticks.
self_ticks() {
  local stat
  stat="$(<"/proc/$$/stat")"
  stat="${stat##*) }"
  awk '{ print $12 + $13 + $14 + $15 }' <<<"$stat"
}

setup() {
  # The job's own environment reader supplies the defaults (ports, timeouts, parallelism,
  # attempts) and the names it derives from the Backup.
  DP_DB_HOST=127.0.0.1 DP_BACKUP_NAME=bench-fanout DP_BACKUP_BASE_PATH=/bench load_job_env
  umask 077
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/es-bench-fanout.XXXXXX")"
  AGENT_DIR="$WORK_DIR/agents"
  mkdir "$AGENT_DIR"
  trap 'rm -rf -- "$WORK_DIR"' EXIT
  write_auth_config
  cp "$NODES_FILE" "$WORK_DIR/nodes.tsv"
  NODE_COUNT=$(wc -l <"$WORK_DIR/nodes.tsv")
  # Fresh keys every time, so that every write changes the file.
  S3_ACCESS_KEY="AKIA$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F')"
  S3_SECRET_KEY="$(head -c 30 /dev/urandom | base64 -w0)"
  S3_SESSION_TOKEN=""
  SECRET_VALUES+=("$S3_ACCESS_KEY" "$S3_SECRET_KEY")
  RELOAD_MODE=cluster
}

sequential() {
  write_agent_body
  local i=0 id name host rest
  while IFS=$'\t' read -r id name host rest; do
    write_node "$i" "$host" </dev/null
    i=$((i + 1))
  done <"$WORK_DIR/nodes.tsv"
  collect_results write.result
  ((${#FAILURES[@]} == 0)) || die "keystore update failed on ${#FAILURES[@]} of ${NODE_COUNT} node(s): $(failure_summary)"
}

main() {
  setup
  local t0 t1 c0 c1
  c0="$(self_ticks)"
  t0="${EPOCHREALTIME/./}"
  case $MODE in
    parallel) set_keystores >>"$STEP_LOG" ;;
    sequential) sequential >>"$STEP_LOG" ;;
    *) die "mode must be parallel or sequential, not $MODE" ;;
  esac
  t1="${EPOCHREALTIME/./}"
  c1="$(self_ticks)"
  awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.3f %.1f\n", t / 1000, c * 1000 / hz }'
}

main

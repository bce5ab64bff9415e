#!/usr/bin/env bash
# Benchmark 3: the agent's resident memory, idle and after 10,000 requests, and its size.
#
# One agent (Elasticsearch 7.17.29: keystore format 4, 10,000 PBKDF2 iterations, so that many
# writes fit in the time; the iteration count changes CPU time, not memory) on 127.0.1.1:8080.
# VmRSS, VmHWM (the peak), RssAnon and Threads from /proc/<pid>/status: idle (2 s after its
# first /health), then after BENCH_MEM_REQUESTS requests from BENCH_MEM_CLIENTS curl processes
# at once, each keeping its connection: a tenth POST /keystore (alternating bodies, so that
# each changes the file), the rest GET /health, /ready (503 here: no node), /keystore and
# /metrics in equal parts. Every answer's status is checked. Then the binary's size, and its
# size stripped of symbols.
#
# Output: $BENCH_OUT/memory.tsv. Environment: BENCH_MEM_REQUESTS (10000), BENCH_MEM_CLIENTS (4).
set -euo pipefail

BENCH_NAME=memory
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS="${BENCH_MEM_REQUESTS:-10000}"
CLIENTS="${BENCH_MEM_CLIENTS:-4}"
readonly ADDR=127.0.1.1
WORK="$BENCH_WORK/memory"
AGENT_PID=""

cleanup() {
  if [[ -n "$AGENT_PID" ]]; then stop_agents "$AGENT_PID"; fi
}

# curl_block KIND INDEX: one request of a curl config file (options, then `next`).
curl_block() {
  local base="http://$ADDR:$BENCH_AGENT_PORT"
  case $1 in
    post)
      printf 'url = "%s/keystore"\nheader = "Content-Type: application/json"\ndata-binary = "@%s/body-%d.json"\n' \
        "$base" "$WORK" $(($2 % 2))
      ;;
    health | ready | metrics) printf 'url = "%s/%s"\n' "$base" "$1" ;;
    keystore) printf 'url = "%s/keystore"\n' "$base" ;;
  esac
  printf 'output = "/dev/null"\nwrite-out = "%s %%{http_code}\\n"\nnext\n' "$1"
}

# write_configs: CLIENTS curl config files sharing REQUESTS requests, kinds interleaved.
write_configs() {
  local kinds=(post health ready keystore metrics health ready keystore metrics post) i c
  for ((c = 0; c < CLIENTS; c++)); do : >"$WORK/client-$c.curlrc"; done
  # One POST in ten, the other nine spread over the four reads.
  for ((i = 0; i < REQUESTS; i++)); do
    local k=${kinds[$((i % 10))]}
    ((i % 10 == 9)) && k=health
    curl_block "$k" "$i" >>"$WORK/client-$((i % CLIENTS)).curlrc"
  done
  # A `next` with no request after it is an error.
  for ((c = 0; c < CLIENTS; c++)); do sed -i '$d' "$WORK/client-$c.curlrc"; done
}

snapshot() { # LABEL: one memory line
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$(status_kib "$AGENT_PID" VmRSS)" "$(status_kib "$AGENT_PID" VmHWM)" \
    "$(status_kib "$AGENT_PID" RssAnon)" "$(awk '$1 == "Threads:" { print $2 }' "/proc/$AGENT_PID/status")" >>"$OUT"
}

main() {
  require_root
  install_packages
  e2e_ensure_user
  [[ -x "$AGENT_BIN" ]] || bench_die "no agent binary at $AGENT_BIN (make agent)"
  mkdir -p "$BENCH_OUT"
  rm -rf "$WORK"
  mkdir -p "$WORK"
  chmod 0755 "$WORK"
  OUT="$BENCH_OUT/memory.tsv"
  printf 'state\tvm_rss_kib\tvm_hwm_kib\trss_anon_kib\tthreads\n' >"$OUT"
  trap cleanup EXIT
  new_config_dir "$WORK/config"
  write_body "$WORK/body-0.json" bench
  write_body "$WORK/body-1.json" bench
  write_configs
  AGENT_PID="$(start_agent "$ADDR" "$WORK/config" elasticsearch 7.17.29 "$WORK/agent.log")"
  sleep 2
  snapshot idle
  bench_log "idle: VmRSS $(status_kib "$AGENT_PID" VmRSS) KiB; sending $REQUESTS requests from $CLIENTS clients"
  local c t0 pids=()
  t0="$(now_us)"
  for ((c = 0; c < CLIENTS; c++)); do
    curl --silent --show-error --connect-timeout 2 --max-time 600 --config "$WORK/client-$c.curlrc" \
      >"$WORK/client-$c.codes" 2>"$WORK/client-$c.err" &
    pids+=("$!")
  done
  for c in "${pids[@]}"; do wait "$c" || bench_die "a client failed: $(cat "$WORK"/client-*.err)"; done
  local seconds
  seconds="$(awk -v ms="$(elapsed_ms "$t0")" 'BEGIN { printf "%.1f", ms / 1000 }')"
  # /ready answers 503 (no node behind this agent); everything else must be 200.
  local total bad
  total="$(cat "$WORK"/client-*.codes | wc -l)"
  bad="$(cat "$WORK"/client-*.codes | awk '!(($1 == "ready" && $2 == 503) || ($1 != "ready" && $2 == 200))' | wc -l)"
  ((total == REQUESTS && bad == 0)) ||
    bench_die "$total answers of $REQUESTS, $bad unexpected: $(cat "$WORK"/client-*.codes | sort | uniq -c | tr '\n' ';')"
  sleep 2
  snapshot "after_$REQUESTS"
  bench_log "after $REQUESTS requests in ${seconds} s: VmRSS $(status_kib "$AGENT_PID" VmRSS) KiB, peak VmHWM $(status_kib "$AGENT_PID" VmHWM) KiB"
  local writes
  writes="$(curl --silent --fail --connect-timeout 2 --max-time 10 "http://$ADDR:$BENCH_AGENT_PORT/metrics" |
    awk '$1 ~ /^es_agent_keystore_changes_total\{operation="write",result="ok"\}$/ { print $2 }')"
  stop_agents "$AGENT_PID"
  AGENT_PID=""
  strip --strip-all -o "$WORK/es-agent.stripped" "$AGENT_BIN"
  {
    printf 'requests\t%s\t%s\t%s\t%s\n' "$REQUESTS" "$CLIENTS" "$seconds" "${writes:-0}"
    printf 'binary_bytes\t%s\t%s\t-\t-\n' "$(stat -c %s "$AGENT_BIN")" "$(stat -c %s "$WORK/es-agent.stripped")"
  } >>"$OUT"
  column -t "$OUT" >&2
  rm -rf "$WORK"
}

main "$@"

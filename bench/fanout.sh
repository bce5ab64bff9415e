#!/usr/bin/env bash
# Benchmark 2: the credential step's fan-out across 1, 8, 32 and 128 agents.
#
# Starts the largest count of agents (Elasticsearch 8.19.21, keystore format 7: 210,000
# PBKDF2 iterations, the dearest write) on 127.0.1.1-127.0.1.N, port 8080, each with its own
# config directory, as the engine's user. For each count and round it runs the job's own
# credential step (bench/fanout_step.sh) in parallel (the job's fan-out) and sequentially,
# and reads the agents' CPU time (utime + stime from /proc/<pid>/stat) around each run.
# Target: parallel wall time within 1.5 x (agents' CPU time / cores + one node's time), with
# one node's time the 1-agent parallel run's median.
#
# Output: $BENCH_OUT/fanout.tsv (every run), $BENCH_OUT/fanout_summary.tsv (medians),
# bench/fanout.png (gnuplot: time against the node count, parallel and sequential).
# Environment: BENCH_FANOUT_SIZES ("1 8 32 128"), BENCH_FANOUT_REPS (rounds; 3),
# BENCH_FANOUT_VERSION (8.19.21), AGENT_PARALLELISM (the job's default), BENCH_PLOT (the PNG).
set -euo pipefail

BENCH_NAME=fanout
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES="${BENCH_FANOUT_SIZES:-1 8 32 128}"
REPS="${BENCH_FANOUT_REPS:-3}"
VERSION="${BENCH_FANOUT_VERSION:-8.19.21}"
PLOT="${BENCH_PLOT:-$BENCH_DIR/fanout.png}"
WORK="$BENCH_WORK/fanout"
PIDS=()

cleanup() {
  if ((${#PIDS[@]} > 0)); then stop_agents "${PIDS[@]}"; fi
}

largest() { tr ' ' '\n' <<<"$SIZES" | sort -n | tail -n 1; }

start_all() {
  local n=$1 i
  bench_log "starting $n agents on 127.0.1.1-127.0.1.$n:$BENCH_AGENT_PORT (elasticsearch $VERSION)"
  for ((i = 1; i <= n; i++)); do
    new_config_dir "$WORK/agent-$i"
    PIDS+=("$(start_agent "$(bench_addr "$i")" "$WORK/agent-$i" elasticsearch "$VERSION" "$WORK/agent-$i.log")")
    printf 'node-%d\tnode-%d\t%s\ttrue\n' "$i" "$i" "$(bench_addr "$i")" >>"$WORK/nodes-all.tsv"
  done
}

agents_ticks() { # N: CPU ticks of the first N agents together
  local i sum=0
  for ((i = 0; i < $1; i++)); do sum=$((sum + $(cpu_ticks "${PIDS[$i]}"))); done
  printf '%s\n' "$sum"
}

# measure N MODE ROUND: one run, one line of fanout.tsv.
measure() {
  local n=$1 mode=$2 round=$3 c0 c1 out wall job_cpu
  head -n "$n" "$WORK/nodes-all.tsv" >"$WORK/nodes-$n.tsv"
  c0="$(agents_ticks "$n")"
  out="$(bash "$BENCH_DIR/fanout_step.sh" "$mode" "$WORK/nodes-$n.tsv" "$WORK/step.log")" ||
    bench_die "the $mode credential step across $n agents failed (log: $WORK/step.log)"
  c1="$(agents_ticks "$n")"
  read -r wall job_cpu <<<"$out"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$mode" "$round" "$wall" "$(ticks_ms $((c1 - c0)))" "$job_cpu" >>"$RUNS"
  bench_log "$n agents, $mode, round $round: $wall ms (agents' CPU $(ticks_ms $((c1 - c0))) ms, job's CPU $job_cpu ms)"
}

# column_median N MODE COLUMN: the median of a fanout.tsv column over the rounds.
column_median() {
  awk -F'\t' -v n="$1" -v m="$2" -v c="$3" 'NR > 1 && $1 == n && $2 == m { print $c }' "$RUNS" >"$WORK/col"
  median "$WORK/col"
}

summarize() {
  local n one par seq cpu job bound
  one="$(column_median "$(tr ' ' '\n' <<<"$SIZES" | sort -n | head -n 1)" parallel 4)"
  printf 'nodes\tparallel_ms\tsequential_ms\tagents_cpu_ms\tjob_cpu_ms\tcores\tone_node_ms\tbound_ms\twall_over_bound\tspeedup\tparallel_minus_cpu_share_ms\tcores_used\n' >"$SUMMARY"
  for n in $SIZES; do
    par="$(column_median "$n" parallel 4)"
    seq="$(column_median "$n" sequential 4)"
    cpu="$(column_median "$n" parallel 5)"
    job="$(column_median "$n" parallel 6)"
    bound="$(awk -v c="$cpu" -v k="$CORES" -v o="$one" 'BEGIN { printf "%.3f", 1.5 * (c / k + o) }')"
    # cores_used: (agents' + job's CPU) / wall, what the run actually got of the shared cores.
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$par" "$seq" "$cpu" "$job" "$CORES" "$one" \
      "$bound" "$(ratio "$par" "$bound")" "$(ratio "$seq" "$par")" \
      "$(awk -v p="$par" -v c="$cpu" -v k="$CORES" 'BEGIN { printf "%.3f", p - c / k }')" \
      "$(awk -v p="$par" -v c="$cpu" -v j="$job" 'BEGIN { printf "%.2f", (c + j) / p }')" >>"$SUMMARY"
  done
}

plot() {
  awk -F'\t' 'NR > 1 { printf "%s %.3f %.3f %.3f %.3f\n", $1, $2 / 1000, $3 / 1000, $8 / 1000, ($4 / $6 + $7) / 1000 }' \
    "$SUMMARY" >"$WORK/plot.dat"
  gnuplot <<EOF
set terminal pngcairo size 900,560 noenhanced font ",11"
set output "$PLOT"
set title "Credential step (POST /keystore on every agent, format 7) on $CORES shared cores, medians of $REPS rounds"
set xlabel "agents (nodes)"
set ylabel "wall time, s"
set logscale xy 2
set xrange [0.8:$(largest).0 * 1.3]
set key top left
set grid
set xtics ($(tr ' ' '\n' <<<"$SIZES" | awk '{ printf "%s\"%s\" %s", (NR > 1 ? ", " : ""), $1, $1 }'))
plot "$WORK/plot.dat" using 1:3 with linespoints lw 2 pt 7 title "sequential loop", \
     "$WORK/plot.dat" using 1:2 with linespoints lw 2 pt 5 title "parallel fan-out (the job)", \
     "$WORK/plot.dat" using 1:5 with lines dt 2 lw 1 title "agents' CPU / cores + one node", \
     "$WORK/plot.dat" using 1:4 with lines dt 3 lw 2 title "target: 1.5 x that"
EOF
  bench_log "plot: $PLOT"
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
  RUNS="$BENCH_OUT/fanout.tsv"
  SUMMARY="$BENCH_OUT/fanout_summary.tsv"
  trap cleanup EXIT
  local max round n
  max="$(largest)"
  start_all "$max"
  bench_log "warm-up: every keystore created by one parallel step"
  head -n "$max" "$WORK/nodes-all.tsv" >"$WORK/nodes-$max.tsv"
  bash "$BENCH_DIR/fanout_step.sh" parallel "$WORK/nodes-$max.tsv" "$WORK/step.log" >/dev/null ||
    bench_die "warm-up failed (log: $WORK/step.log)"
  printf 'nodes\tmode\tround\twall_ms\tagents_cpu_ms\tjob_cpu_ms\n' >"$RUNS"
  for ((round = 1; round <= REPS; round++)); do
    for n in $SIZES; do
      # Alternating the order per round spreads any drift of the machine's load over both.
      if ((round % 2)); then
        measure "$n" parallel "$round"
        measure "$n" sequential "$round"
      else
        measure "$n" sequential "$round"
        measure "$n" parallel "$round"
      fi
    done
  done
  summarize
  column -t "$SUMMARY" >&2
  plot
}

main "$@"

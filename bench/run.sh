#!/usr/bin/env bash
# `make bench`: every benchmark in order, then bench/RESULTS.md from what they measured.
#
#   1 keystore_write.sh  one node's credential write: agent vs the engine's keystore tool
#   2 fanout.sh          the job's credential step across 1-128 agents, parallel vs sequential
#   3 memory.sh          the agent's resident memory and binary size
#   4 job_overhead.sh    backup.sh / restore.sh wall time minus the engine's own time
#
# As root (agents and engines run as the engine's user). About 10 minutes on 2 shared cores
# with the defaults below; each benchmark's repetitions are environment variables (see each
# script's header). BENCH_ONLY="fanout memory" runs a subset (RESULTS.md is then written from
# the new output and whatever an earlier run left in $BENCH_OUT). Raw results: bench/out/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export AGENT_BIN="${AGENT_BIN:-$ROOT/build/agent/es-agent}"
export BENCH_OUT="${BENCH_OUT:-$HERE/out}"
# The repetition counts, exported so that the commands recorded below are complete.
export BENCH_TOOL_REPS="${BENCH_TOOL_REPS:-3}"
export BENCH_AGENT_WRITES="${BENCH_AGENT_WRITES:-30}"
export BENCH_KDF_REPS="${BENCH_KDF_REPS:-5}"
export BENCH_FANOUT_REPS="${BENCH_FANOUT_REPS:-3}"
export BENCH_FANOUT_SIZES="${BENCH_FANOUT_SIZES:-1 8 32 128}"
export BENCH_MEM_REQUESTS="${BENCH_MEM_REQUESTS:-10000}"
export BENCH_JOB_REPS="${BENCH_JOB_REPS:-5}"
BENCH_ONLY="${BENCH_ONLY:-keystore_write fanout memory job_overhead}"

declare -A KNOBS=(
  [keystore_write]="BENCH_TOOL_REPS BENCH_AGENT_WRITES BENCH_KDF_REPS"
  [fanout]="BENCH_FANOUT_REPS BENCH_FANOUT_SIZES"
  [memory]="BENCH_MEM_REQUESTS"
  [job_overhead]="BENCH_JOB_REPS"
)

log() { printf '[bench] %s\n' "$*" >&2; }

hardware() {
  {
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'commit\t%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu\t%s\n' "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
    printf 'memory\t%s\n' "$(free -h | awk '$1 == "Mem:" { print $2 }')"
    printf 'kernel\t%s\n' "$(uname -sr)"
    printf 'openssl\t%s\n' "$(openssl version 2>/dev/null || echo unknown)"
    printf 'agent\t%s\n' "$("$AGENT_BIN" --version 2>/dev/null || echo unknown)"
    printf 'agent_binary\t%s, sha256 %s\n' "$AGENT_BIN" "$(sha256sum "$AGENT_BIN" | cut -c1-16)"
    printf 'load_before\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$BENCH_OUT/hardware.tsv"
}

main() {
  [[ "$(id -u)" -eq 0 ]] || {
    log "run as root"
    exit 1
  }
  [[ -x "$AGENT_BIN" ]] || {
    log "no agent binary at $AGENT_BIN (make agent)"
    exit 1
  }
  mkdir -p "$BENCH_OUT"
  hardware
  local name knob cmd t0 started load0 commands="$BENCH_OUT/commands.tsv"
  [[ -f "$commands" ]] || printf 'benchmark\tcommand\tstarted\tseconds\tload\n' >"$commands"
  for name in $BENCH_ONLY; do
    [[ -n "${KNOBS[$name]:-}" ]] || {
      log "unknown benchmark $name (one of: ${!KNOBS[*]})"
      exit 1
    }
    cmd=""
    for knob in ${KNOBS[$name]}; do cmd+="$knob=\"${!knob}\" "; done
    cmd+="bash bench/$name.sh"
    log "== $name: $cmd"
    t0=$SECONDS
    started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    load0="$(cut -d' ' -f1 /proc/loadavg)"
    bash "$HERE/$name.sh"
    # One line per benchmark: the latest run's, with the 1-minute load average around it.
    awk -F'\t' -v n="$name" '$1 != n' "$commands" >"$commands.tmp"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$cmd" "$started" "$((SECONDS - t0))" \
      "$load0 -> $(cut -d' ' -f1 /proc/loadavg)" >>"$commands.tmp"
    mv -f "$commands.tmp" "$commands"
  done
  printf 'load_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$BENCH_OUT/hardware.tsv"
  bash "$HERE/report.sh"
  log "results: $HERE/RESULTS.md"
}

main "$@"

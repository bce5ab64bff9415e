#!/usr/bin/env bash
# Helpers the benchmarks share: places, logging, clocks, statistics over samples, agents
# started as the engine's user on the bench's own loopback range, their CPU and memory.
#
# Sourced, never run. Changes no shell option. Every agent a benchmark starts listens on
# 127.0.1.1-127.0.1.128, port 8080 (BENCH_AGENT_PORT), and only there.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=tests/e2e/lib/env.sh
source "$BENCH_ROOT/tests/e2e/lib/env.sh"

AGENT_BIN="${AGENT_BIN:-$BENCH_ROOT/build/agent/es-agent}"
BENCH_WORK="${BENCH_WORK:-/tmp/es-bench-work}"
BENCH_OUT="${BENCH_OUT:-$BENCH_DIR/out}"
BENCH_AGENT_PORT="${BENCH_AGENT_PORT:-8080}"
BENCH_JDK17="${BENCH_JDK17:-/usr/lib/jvm/java-17-openjdk-amd64}"
BENCH_JDK21="${BENCH_JDK21:-$(e2e_find_java 21 || true)}"
BENCH_CACHE="${BENCH_CACHE:-$BENCH_ROOT/.cache/bench}"
# Debian's Python (its hashlib is the system OpenSSL, the same release the agent links).
BENCH_PYTHON="${BENCH_PYTHON:-/usr/bin/python3}"
CLK_TCK="$(getconf CLK_TCK)"
# shellcheck disable=SC2034 # read by the benchmarks that source this file
CORES="$(nproc)"

bench_log() { printf '[bench %s] %s\n' "${BENCH_NAME:-}" "$*" >&2; }
bench_die() {
  printf '[bench %s] ERROR: %s\n' "${BENCH_NAME:-}" "$*" >&2
  exit 1
}

# bench_addr I: the I-th address of the bench's range (1..128).
bench_addr() {
  (($1 >= 1 && $1 <= 128)) || bench_die "agent index $1 is outside 127.0.1.1-127.0.1.128"
  printf '127.0.1.%d\n' "$1"
}

# install_packages: the Debian packages the benchmarks call, each only if its command is
# missing (one apt-get update), as tests/e2e/lib/deps.sh does.
install_packages() {
  local -A pkg_for=([curl]=curl [jq]=jq [gnuplot]=gnuplot-nox [setpriv]=util-linux
    [strip]=binutils [useradd]=passwd [mvn]=maven [unzip]=unzip)
  local cmd missing=()
  for cmd in "${!pkg_for[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${pkg_for[$cmd]}")
  done
  [[ -x "$BENCH_PYTHON" ]] || missing+=(python3)
  [[ -x "$BENCH_JDK17/bin/javac" ]] || missing+=(openjdk-17-jdk-headless)
  ((${#missing[@]} > 0)) || return 0
  [[ "$(id -u)" -eq 0 ]] || bench_die "missing ${missing[*]}; run as root to install them"
  bench_log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

require_root() {
  [[ "$(id -u)" -eq 0 ]] || bench_die "run as root (agents and engine tools run as $E2E_USER via setpriv)"
}

# --- clocks and statistics -------------------------------------------------------------------

# now_us: wall clock in microseconds.
now_us() { printf '%s\n' "${EPOCHREALTIME/./}"; }

# elapsed_ms START_US: milliseconds since START_US, three decimals.
elapsed_ms() {
  local end
  end="$(now_us)"
  awk -v a="$1" -v b="$end" 'BEGIN { printf "%.3f\n", (b - a) / 1000 }'
}

# stats FILE: "n p50 p99 min max" over the numbers in FILE, one a line. p50 is the median
# (mean of the middle two for an even count); p99 is the nearest-rank 99th percentile, which
# is the maximum for fewer than 100 samples.
stats() {
  sort -g "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "0 nan nan nan nan"; exit }
    med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    r = int(0.99 * NR); if (r < 0.99 * NR) r++; if (r < 1) r = 1
    printf "%d %.3f %.3f %.3f %.3f\n", NR, med, v[r], v[1], v[NR] }'
}

# median FILE: the median of the numbers in FILE.
median() { stats "$1" | awk '{ print $2 }'; }

# ratio A B: A / B with two decimals ("nan" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.2f\n", a / b }'; }

# --- processes -------------------------------------------------------------------------------

# cpu_ticks PID: user + system CPU time of PID, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
cpu_ticks() {
  local stat
  stat="$(<"/proc/$1/stat")"
  stat="${stat##*) }"
  awk '{ print $12 + $13 }' <<<"$stat"
}

# ticks_ms TICKS: clock ticks as milliseconds.
ticks_ms() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f\n", t * 1000 / hz }'; }

# status_kib PID FIELD: a field of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...) in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# --- agents ----------------------------------------------------------------------------------

# new_config_dir DIR: an empty directory the engine's user owns (the agent refuses to replace
# a keystore owned by anyone else).
new_config_dir() {
  rm -rf "$1"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$1"
}

# start_agent ADDR CONFIG_DIR ENGINE VERSION LOG: one agent as the engine's user, without
# credentials (--auth-mode none) and without a node (--allow-without-s3-repository, node
# address 127.0.0.1:1 where nothing listens); prints its pid once it answers /health.
start_agent() {
  local addr=$1 conf=$2 engine=$3 version=$4 log=$5 pid _
  : >"$log"
  chown "$E2E_USER:" "$log"
  setsid "${E2E_AS_ESNODE[@]}" "$AGENT_BIN" serve --listen-address "$addr" \
    --port "$BENCH_AGENT_PORT" --config-dir "$conf" --auth-mode none \
    --allow-without-s3-repository --engine "$engine" --engine-version "$version" \
    --node-address 127.0.0.1:1 </dev/null >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    if curl --silent --fail --output /dev/null --connect-timeout 1 --max-time 2 \
      "http://$addr:$BENCH_AGENT_PORT/health"; then
      printf '%s\n' "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 5 "$log" >&2
  kill "$pid" 2>/dev/null || true
  bench_die "agent on $addr:$BENCH_AGENT_PORT did not answer /health (log: $log)"
}

# stop_agents PID...: SIGTERM (the agent ends its requests and exits 0), then reaped.
stop_agents() {
  local pid
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# write_body FILE CLIENT: a POST /keystore body with fresh random keys (built by jq from its
# environment, never on a command line); 0600.
write_body() {
  local ak sk
  ak="AKIA$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F')"
  sk="$(head -c 30 /dev/urandom | base64 -w0)"
  (umask 077 && BENCH_AK=$ak BENCH_SK=$sk jq -n --arg client "$2" \
    '{access_key_id: env.BENCH_AK, secret_access_key: env.BENCH_SK, client: $client}' >"$1")
}

# post_keystore ADDR BODY OUT: POST /keystore; prints curl's time_total in ms; fails unless
# the answer is 200 and says the file changed.
post_keystore() {
  local t
  t="$(curl --silent --show-error --fail-with-body --connect-timeout 2 --max-time 60 \
    --header 'Content-Type: application/json' --data-binary "@$2" --output "$3" \
    --write-out '%{time_total}' "http://$1:$BENCH_AGENT_PORT/keystore")" ||
    bench_die "POST /keystore on $1 failed: $(head -c 300 "$3")"
  jq -e '.changed == true' "$3" >/dev/null || bench_die "POST /keystore on $1 changed nothing: $(head -c 300 "$3")"
  awk -v t="$t" 'BEGIN { printf "%.3f\n", t * 1000 }'
}

# --- keystore files --------------------------------------------------------------------------

# keystore_salt FILE ENGINE: the salt's bytes as hex (64 bytes after the two length ints that
# follow the header; the header is 4 + 1 + name + 4 + 1 bytes).
keystore_salt() {
  local name_len=22
  [[ $2 == opensearch ]] && name_len=19
  od -An -v -tx1 -j $((4 + 1 + name_len + 4 + 1 + 8)) -N 64 "$1" | tr -d ' \n'
}

#!/usr/bin/env bash
# Benchmark 1: one node's credential write, per keystore format version.
#
# The same change (s3.client.bench.access_key and .secret_key set to fresh values) on the same
# keystore (made by the engine's own code: keystore.seed only, no password), three ways, in
# interleaved rounds so that the machine's noise hits all of them alike:
#   agent    POST /keystore on the native agent (curl's time_total; a warm agent)
#   tool x2  two `<engine>-keystore add --force --stdin NAME` runs, one per setting (what the
#            upstream design's agent does)
#   tool x1  one `<engine>-keystore add --force NAME NAME` run, values on stdin (batched)
# For a release whose keystore tool is not published, the same two ways through
# bench/WrapperTool.java over that release's own KeyStoreWrapper, labelled "program".
# And the floor: one PBKDF2-HMAC-SHA512 derivation with the format's iterations and key size,
# in-process, natively (Debian's Python hashlib: the system OpenSSL, the release the agent
# links statically) and in Java (JCE, what the tools use); the agent's CPU time per write
# divided by one native derivation's CPU time estimates how many derivations a write does.
#
# Output: $BENCH_OUT/keystore_write.tsv (one line per case and method) and
# $BENCH_OUT/keystore_floor.tsv (one line per case).
# Environment: BENCH_KS_CASES (below), BENCH_TOOL_REPS (rounds, each one tool run of each
# kind; 3), BENCH_AGENT_WRITES (agent writes per case, spread over the rounds; 30),
# BENCH_KDF_REPS (native derivations per round; 5), BENCH_JAVA_KDF_REPS (3), AGENT_BIN.
set -euo pipefail

BENCH_NAME="keystore-write"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# FORMAT ENGINE VERSION KIND: KIND "tool" runs the release's own bin/<engine>-keystore,
# "program" bench/WrapperTool.java over the release's KeyStoreWrapper (no tool published:
# Elasticsearch publishes integ-test-zips for some releases only, none for 7.0.x or 8.14-8.17).
# The last case runs the program where the tool exists too (8.19.21): how the stand-in compares.
BENCH_KS_CASES="${BENCH_KS_CASES:-3:elasticsearch:7.0.1:program 4:elasticsearch:7.17.29:tool 5:elasticsearch:8.13.4:tool 6:elasticsearch:8.17.10:program 7:elasticsearch:8.19.21:tool 7:elasticsearch:8.19.21:program}"
TOOL_REPS="${BENCH_TOOL_REPS:-3}"
AGENT_WRITES="${BENCH_AGENT_WRITES:-30}"
KDF_REPS="${BENCH_KDF_REPS:-5}"
JAVA_KDF_REPS="${BENCH_JAVA_KDF_REPS:-3}"
readonly NAMES=(s3.client.bench.access_key s3.client.bench.secret_key)
readonly ADDR=127.0.1.1
WORK="$BENCH_WORK/keystore-write"
CLASSES="$BENCH_CACHE/classes"
AGENT_PID=""
ENGINE_LOG=/dev/null

cleanup() {
  if [[ -n "$AGENT_PID" ]]; then stop_agents "$AGENT_PID"; fi
}

iterations_of() { if (($1 >= 6)); then echo 210000; else echo 10000; fi; } # FORMAT
key_bits_of() { if (($1 >= 7)); then echo 256; else echo 128; fi; }       # FORMAT

# java_for ENGINE VERSION: Elasticsearch 8.18+ tools and 9.x, OpenSearch 3.x want Java 21+;
# the rest run on Debian's 17.
java_for() {
  local major="${2%%.*}" rest="${2#*.}"
  local minor="${rest%%.*}"
  if [[ $1 == opensearch ]] && ((major >= 3)); then
    echo "$BENCH_JDK21"
  elif [[ $1 == elasticsearch ]] && ((major >= 9 || (major == 8 && minor >= 18))); then
    echo "$BENCH_JDK21"
  else
    echo "$BENCH_JDK17"
  fi
}

# tool_home ENGINE VERSION: the unpacked distribution whose bin/<engine>-keystore is run.
tool_home() {
  local d
  for d in "$E2E_CACHE/$1-$2" "$E2E_TOOL_HOMES/$1-$2" "$BENCH_ROOT/.cache/compat/dist/$1-$2"; do
    if [[ -x "$d/bin/$1-keystore" ]]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

classpath_file() { printf '%s/.cache/compat/maven/%s-%s/classpath.txt\n' "$BENCH_ROOT" "$1" "$2"; }

# ensure_inputs: every case's tool or jars. They come from the repository's own fetchers:
# tests/e2e/lib/deps.sh (the e2e engines and tools) and tests/compat/run.sh for the releases
# named (which resolves their jars and integ-test-zips from Maven Central, then checks them).
ensure_inputs() {
  local spec format engine version kind compat_only=() compat_cli=() deps=false
  for spec in $BENCH_KS_CASES; do
    IFS=: read -r format engine version kind <<<"$spec"
    if [[ $kind == tool ]] && ! tool_home "$engine" "$version" >/dev/null; then
      case "$engine-$version" in
        "elasticsearch-$E2E_ELASTICSEARCH_VERSION" | "opensearch-$E2E_OPENSEARCH_VERSION") deps=true ;;
        *)
          compat_only+=("$engine-$version")
          compat_cli+=("$engine-$version")
          ;;
      esac
    elif [[ $kind == program && ! -s "$(classpath_file "$engine" "$version")" ]]; then
      compat_only+=("$engine-$version")
    fi
  done
  if [[ $deps == true ]]; then bash "$BENCH_ROOT/tests/e2e/lib/deps.sh"; fi
  if ((${#compat_only[@]} > 0)); then
    bench_log "fetching ${compat_only[*]} through tests/compat/run.sh"
    COMPAT_ONLY="${compat_only[*]}" COMPAT_CLI="${compat_cli[*]}" COMPAT_DOC="" AGENT_BIN="$AGENT_BIN" \
      bash "$BENCH_ROOT/tests/compat/run.sh" >&2
  fi
  mkdir -p "$CLASSES"
  if [[ ! -f "$CLASSES/WrapperTool.class" || "$BENCH_DIR/WrapperTool.java" -nt "$CLASSES/WrapperTool.class" ]]; then
    "$BENCH_JDK17/bin/javac" --release 17 -Xlint:all -Werror -d "$CLASSES" "$BENCH_DIR/WrapperTool.java"
  fi
}

# engine_run ENGINE VERSION KIND CONF ARGS...: the engine's code on CONF as the engine's user,
# standard input passed through (the values). KIND tool: ARGS go to bin/<engine>-keystore;
# program: to WrapperTool (its first ARG the command).
engine_run() {
  local engine=$1 version=$2 kind=$3 conf=$4 jdk
  shift 4
  jdk="$(java_for "$engine" "$version")"
  if [[ $kind == tool ]]; then
    LC_ALL=C.UTF-8 ES_PATH_CONF="$conf" OPENSEARCH_PATH_CONF="$conf" JAVA_HOME="$jdk" \
      ES_JAVA_HOME="$jdk" OPENSEARCH_JAVA_HOME="$jdk" \
      "${E2E_AS_ESNODE[@]}" "$(tool_home "$engine" "$version")/bin/$engine-keystore" "$@" 2>>"$ENGINE_LOG"
  else
    local cmd=$1
    shift
    # The tools' own launcher options: a small serial-GC heap.
    "${E2E_AS_ESNODE[@]}" "$jdk/bin/java" -Xms4m -Xmx64m -XX:+UseSerialGC \
      -cp "$CLASSES:$(cat "$(classpath_file "$engine" "$version")")" WrapperTool "$cmd" "$conf" "$@" 2>>"$ENGINE_LOG"
  fi
}

# values N: N fresh random values, one a line (standard input of a tool run).
values() { head -c $((24 * $1)) /dev/urandom | base64 -w 24 | head -n "$1"; }

# tool_change ENGINE VERSION KIND CONF MODE: the credential change through the engine's code;
# MODE two (one run per setting, `--stdin`) or one (one batched run). Prints the wall ms.
tool_change() {
  local engine=$1 version=$2 kind=$3 conf=$4 mode=$5 t0 name
  t0="$(now_us)"
  if [[ $mode == two ]]; then
    for name in "${NAMES[@]}"; do
      if [[ $kind == tool ]]; then
        values 1 | engine_run "$engine" "$version" tool "$conf" add --force --stdin -- "$name" >/dev/null
      else
        values 1 | engine_run "$engine" "$version" program "$conf" add "$name" >/dev/null
      fi
    done
  elif [[ $kind == tool ]]; then
    values 2 | engine_run "$engine" "$version" tool "$conf" add --force -- "${NAMES[@]}" >/dev/null
  else
    values 2 | engine_run "$engine" "$version" program "$conf" add "${NAMES[@]}" >/dev/null
  fi
  elapsed_ms "$t0"
}

# native_kdf ITERATIONS KEY_BITS COUNT WALL_FILE CPU_FILE: COUNT derivations in one Python
# process, each one's wall and CPU ms appended to the files.
native_kdf() {
  "$BENCH_PYTHON" "$BENCH_DIR/pbkdf2_floor.py" "$1" "$(($2 / 8))" "$3" |
    while read -r wall cpu; do
      printf '%s\n' "$wall" >>"$4"
      printf '%s\n' "$cpu" >>"$5"
    done
}

# metric_sum_count ADDR: "sum count" of es_agent_keystore_change_duration_seconds.
metric_sum_count() {
  curl --silent --fail --connect-timeout 2 --max-time 10 "http://$ADDR:$BENCH_AGENT_PORT/metrics" |
    awk '$1 == "es_agent_keystore_change_duration_seconds_sum" { s = $2 }
         $1 == "es_agent_keystore_change_duration_seconds_count" { c = $2 }
         END { print s + 0, c + 0 }'
}

format_of_file() { # FILE ENGINE: the header's format version
  local name_len=22
  [[ $2 == opensearch ]] && name_len=19
  od -An -tu1 -j $((4 + 1 + name_len)) -N 4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'
}

# check_names ENGINE VERSION KIND CONF: the engine's own code lists both settings.
check_names() {
  local listed name
  listed="$(engine_run "$1" "$2" "$3" "$4" list 2>/dev/null)"
  for name in "${NAMES[@]}" keystore.seed; do
    grep -qx -- "$name" <<<"$listed" || bench_die "$1 $2 ($3): $name missing from the list of $4"
  done
}

run_case() {
  local format=$1 engine=$2 version=$3 kind=$4 label dir file iters bits r i
  label="format $format, $engine $version ($kind)"
  dir="$WORK/$format-$engine-$version-$kind"
  iters="$(iterations_of "$format")"
  bits="$(key_bits_of "$format")"
  file="$engine.keystore"
  ENGINE_LOG="$dir/engine.log"
  bench_log "$label: $iters iterations, AES-$bits"
  new_config_dir "$dir/origin"
  : >"$ENGINE_LOG"
  engine_run "$engine" "$version" "$kind" "$dir/origin" create </dev/null >/dev/null
  [[ "$(format_of_file "$dir/origin/$file" "$engine")" == "$format" ]] ||
    bench_die "$label: the engine's code wrote format $(format_of_file "$dir/origin/$file" "$engine"), not $format"
  local m
  for m in agent two one; do
    new_config_dir "$dir/$m"
    install -o "$E2E_USER" -g "$E2E_USER" -m 0660 "$dir/origin/$file" "$dir/$m/$file"
  done
  : >"$dir/agent.ms"
  : >"$dir/two.ms"
  : >"$dir/one.ms"
  : >"$dir/kdf.wall"
  : >"$dir/kdf.cpu"

  AGENT_PID="$(start_agent "$ADDR" "$dir/agent" "$engine" "$version" "$dir/agent.log")"
  write_body "$dir/body.json" bench
  post_keystore "$ADDR" "$dir/body.json" "$dir/reply.json" >/dev/null # warm-up: adds the client
  local salt_before cpu0 cpu1 metrics0 metrics1 per_round=$(((AGENT_WRITES + TOOL_REPS - 1) / TOOL_REPS)) done=0
  salt_before="$(keystore_salt "$dir/agent/$file" "$engine")"
  local two_salt_changed=true one_salt_changed=true salt
  metrics0="$(metric_sum_count)"
  cpu0="$(cpu_ticks "$AGENT_PID")"
  for ((r = 1; r <= TOOL_REPS; r++)); do
    for ((i = 0; i < per_round && done < AGENT_WRITES; i++)); do
      write_body "$dir/body.json" bench
      post_keystore "$ADDR" "$dir/body.json" "$dir/reply.json" >>"$dir/agent.ms"
      done=$((done + 1))
    done
    salt="$(keystore_salt "$dir/two/$file" "$engine")"
    tool_change "$engine" "$version" "$kind" "$dir/two" two >>"$dir/two.ms"
    [[ "$(keystore_salt "$dir/two/$file" "$engine")" != "$salt" ]] || two_salt_changed=false
    salt="$(keystore_salt "$dir/one/$file" "$engine")"
    tool_change "$engine" "$version" "$kind" "$dir/one" one >>"$dir/one.ms"
    [[ "$(keystore_salt "$dir/one/$file" "$engine")" != "$salt" ]] || one_salt_changed=false
    native_kdf "$iters" "$bits" "$KDF_REPS" "$dir/kdf.wall" "$dir/kdf.cpu"
  done
  cpu1="$(cpu_ticks "$AGENT_PID")"
  metrics1="$(metric_sum_count)"
  jq -e --argjson f "$format" '.format_version == $f' "$dir/reply.json" >/dev/null ||
    bench_die "$label: the agent answered format $(jq -r .format_version "$dir/reply.json")"
  local salt_kept=true
  [[ "$(keystore_salt "$dir/agent/$file" "$engine")" == "$salt_before" ]] || salt_kept=false
  stop_agents "$AGENT_PID"
  AGENT_PID=""
  # The engine's own code reads what each way left: both settings and the seed.
  check_names "$engine" "$version" "$kind" "$dir/agent"
  check_names "$engine" "$version" "$kind" "$dir/two"
  check_names "$engine" "$version" "$kind" "$dir/one"

  "${E2E_AS_ESNODE[@]}" "$BENCH_JDK17/bin/java" -Xms4m -Xmx64m -XX:+UseSerialGC -cp "$CLASSES" \
    WrapperTool kdf "$iters" "$bits" "$JAVA_KDF_REPS" >"$dir/java-kdf.ms"

  local a two one kw kmin kc jk cpu_per_write in_agent
  a="$(stats "$dir/agent.ms")"
  two="$(stats "$dir/two.ms")"
  one="$(stats "$dir/one.ms")"
  kw="$(median "$dir/kdf.wall")"
  kmin="$(stats "$dir/kdf.wall" | awk '{ print $4 }')"
  kc="$(median "$dir/kdf.cpu")"
  jk="$(median "$dir/java-kdf.ms")"
  cpu_per_write="$(awk -v t=$((cpu1 - cpu0)) -v n="$done" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", t * 1000 / hz / n }')"
  in_agent="$(awk -v a="$metrics0" -v b="$metrics1" 'BEGIN { split(a, x, " "); split(b, y, " ");
    if (y[2] > x[2]) printf "%.3f", (y[1] - x[1]) * 1000 / (y[2] - x[2]); else print "nan" }')"
  {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$format" "$engine" "$version" "$kind" agent "${a// /$'\t'}"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$format" "$engine" "$version" "$kind" two "${two// /$'\t'}"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$format" "$engine" "$version" "$kind" one "${one// /$'\t'}"
  } >>"$OUT"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$format" "$engine" "$version" "$kind" \
    "$iters" "$bits" "$kw" "$kc" "$jk" "$cpu_per_write" "$in_agent" "$salt_kept" \
    "$two_salt_changed/$one_salt_changed" "$kmin" >>"$FLOOR"
  bench_log "$label: agent p50 $(awk '{ print $2 }' <<<"$a") ms, tool x2 p50 $(awk '{ print $2 }' <<<"$two") ms, x1 $(awk '{ print $2 }' <<<"$one") ms; PBKDF2 $kw ms (Java $jk ms)"
}

main() {
  require_root
  install_packages
  e2e_ensure_user
  [[ -x "$AGENT_BIN" ]] || bench_die "no agent binary at $AGENT_BIN (make agent)"
  ensure_inputs
  mkdir -p "$BENCH_OUT"
  rm -rf "$WORK"
  mkdir -p "$WORK"
  chmod 0755 "$WORK"
  cd "$WORK" # the engine's user runs the tools here
  OUT="$BENCH_OUT/keystore_write.tsv"
  FLOOR="$BENCH_OUT/keystore_floor.tsv"
  printf 'format\tengine\tversion\tkind\tmethod\tn\tp50_ms\tp99_ms\tmin_ms\tmax_ms\n' >"$OUT"
  printf 'format\tengine\tversion\tkind\titerations\tkey_bits\tkdf_native_ms\tkdf_native_cpu_ms\tkdf_java_ms\tagent_cpu_ms_per_write\tagent_in_process_ms\tagent_salt_kept\ttool_salt_changed_two/one\tkdf_native_min_ms\n' >"$FLOOR"
  trap cleanup EXIT
  local spec format engine version kind
  for spec in $BENCH_KS_CASES; do
    IFS=: read -r format engine version kind <<<"$spec"
    run_case "$format" "$engine" "$version" "$kind"
  done
  cd /
  rm -rf "$WORK"
}

main "$@"

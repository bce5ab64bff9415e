#!/usr/bin/env bash
# Keystore compatibility suite: the agent against each engine version's own keystore code.
#
# For every Elasticsearch / OpenSearch release in VERSIONS it resolves that release's server jar
# (KeyStoreWrapper) and the few jars it needs from Maven Central, starts ONE checker JVM
# (tests/compat/Checker.java; commands in on stdin, verdicts out) and checks, without and with
# a keystore password:
#   agent → engine   the agent creates a keystore (format of --engine-version) and writes 50
#                    entries; the engine's code lists exactly those names and returns every
#                    value byte for byte (ASCII, non-ASCII, a 4 KiB value).
#   engine → agent   the engine's code creates a keystore (keystore.seed, bootstrap.password, a
#                    file entry, others); the agent updates S3 settings; the engine's code reads
#                    every old entry unchanged and the new ones; the agent kept the file's format
#                    version and hasPassword flag.
#   format           the format version the engine writes for a new keystore equals the one the
#                    agent writes for that --engine-version (and what shared/docs/keystore-format.md says).
# Prints the matrix, writes it into docs/compatibility.md (full runs only) and exits non-zero if
# any cell fails. Last line: "compat: N passed, M failed".
#
# Environment: COMPAT_CACHE (default <repo>/.cache/compat), COMPAT_M2 (Maven local repository,
# default $COMPAT_CACHE/m2), AGENT_BIN, COMPAT_JDK17, COMPAT_JDK21 (a JDK >= 21 for ES 9.x and
# OpenSearch 3.x), COMPAT_ONLY="elasticsearch-8.19.21 opensearch-3.9.0" (a subset; the doc is
# then not rewritten), COMPAT_DOC (where to write the doc; "" = do not write), COMPAT_CLI (see
# below), COMPAT_JOBS (releases checked at a time, default 2), COMPAT_KEEP=1 (keep the work
# directory, with the logs and keystores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly COMPAT_DIR="$ROOT/tests/compat"
readonly CACHE="${COMPAT_CACHE:-$ROOT/.cache/compat}"
readonly M2="${COMPAT_M2:-$CACHE/m2}"
readonly MVN_DIR="$CACHE/maven"
readonly CLASSES="$CACHE/classes"
readonly AGENT_BIN="${AGENT_BIN:-$ROOT/build/agent/es-agent}"
readonly DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Releases whose integ-test-zip (published for some releases only) supplies the engine's own
# keystore CLI for the "engine writes" step and for listing names; "" = KeyStoreWrapper only.
# Every release of VERSIONS with a published zip: 6.8.0 6.8.23 7.6.2 7.7.0 7.10.2 7.17.29 8.0.0
# 8.13.4 8.18.0 8.19.21 (none of ES 9.x; of OpenSearch only 2.19.6 and 3.6.0, not the latest).
# The default: the newest 6.x and 7.x, and 8.13.4 (format 5); tests/e2e/test_es_keystore.sh
# already runs the 8.19.21 tool against the agent.
readonly COMPAT_CLI="${COMPAT_CLI-elasticsearch-6.8.23 elasticsearch-7.17.29 elasticsearch-8.13.4}"
COMPAT_DOC="${COMPAT_DOC-$ROOT/docs/compatibility.md}"

# engine version format-per-shared/docs/keystore-format.md
# Each line of a release family, plus the releases on both sides of every format boundary:
# 6.7|6.8 (3|4), 7.0|7.1 (3|4), 7.17|8.0 (4|5), 8.13|8.14 (5|6), 8.17|8.18 (6|7).
readonly VERSIONS=(
  "elasticsearch 6.7.2 3"
  "elasticsearch 6.8.0 4"
  "elasticsearch 6.8.23 4"
  "elasticsearch 7.0.1 3"
  "elasticsearch 7.1.0 4"
  "elasticsearch 7.6.2 4"
  "elasticsearch 7.7.0 4"
  "elasticsearch 7.10.2 4"
  "elasticsearch 7.17.29 4"
  "elasticsearch 8.0.0 5"
  "elasticsearch 8.13.4 5"
  "elasticsearch 8.14.0 6"
  "elasticsearch 8.17.10 6"
  "elasticsearch 8.18.0 7"
  "elasticsearch 8.19.21 7"
  "elasticsearch 9.0.0 7"
  "elasticsearch 9.5.3 7"
  "opensearch 1.3.20 4"
  "opensearch 2.19.7 4"
  "opensearch 3.9.0 4"
)

# Artifacts the server POMs name that KeyStoreWrapper never touches (kept out of the download),
# and artifacts they name that were never published (elasticsearch-preallocate, -lz4,
# -plugin-classloader, ...). Excluding an artifact a release does not have is harmless.
readonly EXCLUDE=(
  "org.apache.lucene:lucene-analyzers-common" "org.apache.lucene:lucene-analysis-common"
  "org.apache.lucene:lucene-facet" "org.apache.lucene:lucene-grouping"
  "org.apache.lucene:lucene-highlighter" "org.apache.lucene:lucene-join"
  "org.apache.lucene:lucene-memory" "org.apache.lucene:lucene-misc"
  "org.apache.lucene:lucene-queries" "org.apache.lucene:lucene-queryparser"
  "org.apache.lucene:lucene-sandbox" "org.apache.lucene:lucene-spatial"
  "org.apache.lucene:lucene-spatial-extras" "org.apache.lucene:lucene-spatial3d"
  "org.apache.lucene:lucene-suggest"
  "org.elasticsearch:elasticsearch-preallocate" "org.elasticsearch:elasticsearch-plugin-classloader"
  "org.elasticsearch:elasticsearch-lz4" "org.elasticsearch:elasticsearch-geo"
  "org.elasticsearch:elasticsearch-grok" "org.elasticsearch:elasticsearch-tdigest"
  "org.elasticsearch:elasticsearch-simdvec" "org.elasticsearch:elasticsearch-entitlement"
  "org.elasticsearch:elasticsearch-native" "org.elasticsearch:elasticsearch-secure-sm"
  "org.elasticsearch:elasticsearch-user-agent-api" "org.elasticsearch:elasticsearch-ip-location-api"
  "org.elasticsearch:elasticsearch-exponential-histogram" "org.elasticsearch:jna"
  "org.elasticsearch.plugin:*"
  "org.opensearch:opensearch-geo" "org.opensearch:opensearch-secure-sm"
  "org.opensearch:opensearch-task-commons" "org.opensearch:opensearch-arrow-spi"
  "org.opensearch:opensearch-compress" "org.opensearch:opensearch-concurrent-queue"
  "org.opensearch:opensearch-telemetry" "org.opensearch:opensearch-plugin-classloader"
  "org.opensearch:opensearch-preallocate"
  "org.apache.logging.log4j:log4j-core" "org.apache.logging.log4j:log4j-1.2-api"
  "org.apache.logging.log4j:log4j-jul"
  "com.carrotsearch:*" "joda-time:*" "com.tdunning:*" "org.hdrhistogram:*"
  "org.locationtech.spatial4j:*" "org.locationtech.jts:*" "co.elastic.logging:*"
  "net.java.dev.jna:*" "com.jcraft:*" "io.projectreactor:*" "org.reactivestreams:*"
  "com.google.protobuf:*" "jakarta.annotation:*" "org.roaringbitmap:*" "org.jspecify:*"
  "com.google.errorprone:*" "org.jruby.joni:*" "org.jruby.jcodings:*"
)

PASSED=0
FAILED=0
WORK=""
AGENT_PID=""
JVM_PID=""
AGENT_ADDR=""
AGENT_PORT=0
declare -A CELL=() NOTE=() QUIRK=() JDK_USED=() TOOL=() ENGINE_FORMAT=() AGENT_FORMAT=()
REASONS=()

log() { printf '[compat] %s\n' "$*" >&2; }
die() {
  printf '[compat] ERROR: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  stop_jobs
  if [[ -n "$WORK" && -z "${COMPAT_KEEP:-}" ]]; then rm -rf "$WORK"; fi
}

# --- what the suite needs ------------------------------------------------------------------

install_packages() {
  local -A pkg_for=([curl]=curl [jq]=jq [mvn]=maven [unzip]=unzip [base64]=coreutils [od]=coreutils)
  local cmd missing=()
  for cmd in "${!pkg_for[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${pkg_for[$cmd]}")
  done
  [[ -x "$JDK17/bin/javac" ]] || missing+=(openjdk-17-jdk-headless)
  if ((${#missing[@]} > 0)); then
    [[ "$(id -u)" -eq 0 ]] || die "missing ${missing[*]}; run as root to install them"
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# java_major HOME: the feature version of the JDK in HOME, from its release file.
java_major() {
  sed -n 's/^JAVA_VERSION="\{0,1\}\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null
}

# find_jdk MIN: a JDK home whose Java is at least MIN (Temurin 25 first, then any).
find_jdk() {
  local home ver
  for home in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [[ -x "$home/bin/java" && -f "$home/release" ]] || continue
    ver="$(java_major "$home")"
    if [[ "$ver" =~ ^[0-9]+$ ]] && ((ver >= $1)); then
      printf '%s\n' "$home"
      return 0
    fi
  done
  return 1
}

jdk_label() { # "Temurin 25.0.3" / "Debian 17.0.15"
  local impl ver
  impl="$(sed -n 's/^IMPLEMENTOR="\(.*\)"/\1/p' "$1/release")"
  ver="$(sed -n 's/^JAVA_VERSION="\(.*\)"/\1/p' "$1/release")"
  case "$impl" in "Eclipse Adoptium") impl=Temurin ;; esac
  printf '%s %s\n' "$impl" "$ver"
}

jdk_for() { # ENGINE VERSION
  if needs_java21 "$1" "$2"; then printf '%s\n' "$JDK21"; else printf '%s\n' "$JDK17"; fi
}

needs_java21() { # ENGINE VERSION: ES 9.x and OpenSearch 3.x are compiled for Java 21
  local major="${2%%.*}"
  if [[ "$1" == elasticsearch ]]; then ((major >= 9)); else ((major >= 3)); fi
}

has_passwords() { # ENGINE VERSION: password-protected keystores exist from ES 7.7 and in OpenSearch
  local major="${2%%.*}" rest minor
  rest="${2#*.}"
  minor="${rest%%.*}"
  [[ "$1" == opensearch ]] || ((major > 7 || (major == 7 && minor >= 7)))
}

wait_for_agent_binary() {
  local _
  for _ in $(seq 24); do
    [[ -x "$AGENT_BIN" ]] && return 0
    log "waiting for $AGENT_BIN (being rebuilt?)"
    sleep 5
  done
  die "no agent binary at $AGENT_BIN (make agent)"
}

compile_checker() {
  if [[ ! -f "$CLASSES/Checker.class" || "$COMPAT_DIR/Checker.java" -nt "$CLASSES/Checker.class" ]]; then
    mkdir -p "$CLASSES"
    "$JDK17/bin/javac" --release 17 -Xlint:all -Werror -d "$CLASSES" "$COMPAT_DIR/Checker.java"
  fi
}

# --- Maven: one module per release, all resolved by one `mvn` run --------------------------

module_of() { printf '%s-%s\n' "$1" "$2"; }

write_if_changed() { # FILE: stdin into FILE unless FILE already holds exactly that
  local tmp
  tmp="$(mktemp "$1.XXXXXX")"
  cat >"$tmp"
  if [[ -f "$1" ]] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

module_pom() { # ENGINE VERSION
  local group ex
  group="org.$1"
  printf '<?xml version="1.0" encoding="UTF-8"?>\n'
  printf '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
  printf '  <groupId>compat</groupId><artifactId>%s</artifactId><version>1</version><packaging>pom</packaging>\n' \
    "$(module_of "$1" "$2")"
  printf '  <dependencies><dependency>\n    <groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version>\n' \
    "$group" "$1" "$2"
  printf '    <exclusions>\n'
  for ex in "${EXCLUDE[@]}"; do
    printf '      <exclusion><groupId>%s</groupId><artifactId>%s</artifactId></exclusion>\n' "${ex%%:*}" "${ex#*:}"
  done
  printf '    </exclusions>\n  </dependency></dependencies>\n</project>\n'
}

zip_pom() { # ENGINE VERSION: the integ-test-zip distribution, for its keystore CLI
  printf '<?xml version="1.0" encoding="UTF-8"?>\n'
  printf '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
  printf '  <groupId>compat</groupId><artifactId>zip-%s</artifactId><version>1</version><packaging>pom</packaging>\n' \
    "$(module_of "$1" "$2")"
  printf '  <dependencies><dependency>\n    <groupId>org.%s.distribution.integ-test-zip</groupId>' "$1"
  printf '<artifactId>%s</artifactId><version>%s</version><type>zip</type>\n' "$1" "$2"
  printf '  </dependency></dependencies>\n</project>\n'
}

uses_cli() { [[ " $COMPAT_CLI " == *" $(module_of "$1" "$2") "* ]]; } # ENGINE VERSION

classpath_ready() { # MODULE: its classpath file is newer than its pom and every jar exists
  local dir="$MVN_DIR/$1" jar
  [[ -s "$dir/classpath.txt" && "$dir/classpath.txt" -nt "$dir/pom.xml" ]] || return 1
  while IFS= read -r -d: jar; do
    [[ -f "$jar" ]] || return 1
  done < <(cat "$dir/classpath.txt" && printf ':')
}

resolve_classpaths() {
  local spec engine version _ module modules=() stale=false
  mkdir -p "$MVN_DIR"
  for spec in "${SELECTED[@]}"; do
    read -r engine version _ <<<"$spec"
    module="$(module_of "$engine" "$version")"
    modules+=("$module")
    mkdir -p "$MVN_DIR/$module"
    module_pom "$engine" "$version" | write_if_changed "$MVN_DIR/$module/pom.xml"
    classpath_ready "$module" || stale=true
    if uses_cli "$engine" "$version"; then
      modules+=("zip-$module")
      mkdir -p "$MVN_DIR/zip-$module"
      zip_pom "$engine" "$version" | write_if_changed "$MVN_DIR/zip-$module/pom.xml"
      classpath_ready "zip-$module" || stale=true
    fi
  done
  [[ "$stale" == true ]] || return 0
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
    printf '  <groupId>compat</groupId><artifactId>all</artifactId><version>1</version><packaging>pom</packaging>\n'
    printf '  <modules>\n'
    printf '    <module>%s</module>\n' "${modules[@]}"
    printf '  </modules>\n</project>\n'
  } | write_if_changed "$MVN_DIR/pom.xml"
  log "resolving ${#modules[@]} releases' jars from Maven Central (into $M2)"
  if ! mvn -B -q -T 4 -f "$MVN_DIR/pom.xml" -Dmaven.repo.local="$M2" \
    "$DEPENDENCY_PLUGIN:build-classpath" -Dmdep.outputFile=classpath.txt -Dmdep.includeScope=runtime \
    >"$MVN_DIR/mvn.log" 2>&1; then
    tail -n 30 "$MVN_DIR/mvn.log" >&2
    die "Maven could not resolve the jars (log: $MVN_DIR/mvn.log)"
  fi
}

# unpack_distributions: each CLI release's integ-test-zip, unpacked once into $CACHE/dist.
unpack_distributions() {
  local spec engine version _ module zip
  for spec in "${SELECTED[@]}"; do
    read -r engine version _ <<<"$spec"
    uses_cli "$engine" "$version" || continue
    module="$(module_of "$engine" "$version")"
    [[ -f "$CACHE/dist/$module/.unpacked" ]] && continue
    zip="$(cat "$MVN_DIR/zip-$module/classpath.txt")"
    log "unpacking $(basename "$zip")"
    rm -rf "$CACHE/dist/$module"
    mkdir -p "$CACHE/dist"
    unzip -q -o "$zip" -d "$CACHE/dist"
    [[ -x "$CACHE/dist/$module/bin/$engine-keystore" ]] || die "no bin/$engine-keystore in $zip"
    touch "$CACHE/dist/$module/.unpacked"
  done
}

# tool ENGINE VERSION CONFIG_DIR ARGS...: the release's own keystore CLI on CONFIG_DIR, stdin
# passed through, output in TOOL_OUT (its log in the release's work dir). Elasticsearch before
# 7.12 and the OpenSearch tools read JAVA_HOME, later Elasticsearch ES_JAVA_HOME; the C.UTF-8
# locale makes the 8.x tools decode stdin (passwords, values) as UTF-8.
tool() {
  local engine="$1" version="$2" conf="$3" module jdk rc=0
  shift 3
  module="$(module_of "$engine" "$version")"
  jdk="$(jdk_for "$engine" "$version")"
  TOOL_OUT="$(LC_ALL=C.UTF-8 ES_PATH_CONF="$conf" OPENSEARCH_PATH_CONF="$conf" JAVA_HOME="$jdk" \
    ES_JAVA_HOME="$jdk" OPENSEARCH_JAVA_HOME="$jdk" "$CACHE/dist/$module/bin/$engine-keystore" "$@" \
    2>>"$WORK/$module/tool.log")" || rc=$?
  printf '$ %s-keystore %s -> %s\n%s\n' "$engine" "$*" "$rc" "$TOOL_OUT" >>"$WORK/$module/tool.log"
  return "$rc"
}

# --- the checker JVM -------------------------------------------------------------------------

start_checker() { # ENGINE VERSION JDK_HOME: fails (with CHECKER_ERROR set) if it does not start
  local module cp line
  module="$(module_of "$1" "$2")"
  cp="$CLASSES:$(cat "$MVN_DIR/$module/classpath.txt")"
  coproc CHECKER {
    exec "$3/bin/java" -Xms32m -Xmx256m -XX:+UseSerialGC \
      -cp "$cp" Checker 2>>"$WORK/$module/checker.log"
  }
  JVM_PID="$CHECKER_PID" # bash unsets CHECKER_PID when the coprocess ends
  if IFS= read -r -t 120 line <&"${CHECKER[0]}" && [[ "$line" == ready$'\t'* ]]; then
    log "$module: ${line#ready$'\t'}"
    return 0
  fi
  CHECKER_ERROR="checker did not start: ${line:-$(tail -n 1 "$WORK/$module/checker.log" 2>/dev/null)}"
  stop_checker
  return 1
}

stop_checker() {
  if [[ -n "$JVM_PID" ]]; then
    { printf 'quit\n' >&"${CHECKER[1]}"; } 2>/dev/null || true
    local _
    for _ in $(seq 20); do
      kill -0 "$JVM_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$JVM_PID" 2>/dev/null || true
    wait "$JVM_PID" 2>/dev/null || true
    JVM_PID=""
  fi
}

# checker CMD ARGS...: one command; VERDICT holds the detail. Succeeds iff the verdict is ok.
checker() {
  local IFS=$'\t' line
  VERDICT="checker is not running"
  if [[ -z "$JVM_PID" ]] || ! kill -0 "$JVM_PID" 2>/dev/null; then return 1; fi
  printf '%s\n' "$*" >&"${CHECKER[1]}"
  if ! IFS= read -r -t 600 line <&"${CHECKER[0]}"; then
    VERDICT="no verdict from the checker"
    return 1
  fi
  VERDICT="${line#*$'\t'}"
  [[ "$line" == ok$'\t'* ]]
}

# --- the agent -------------------------------------------------------------------------------

# start_agent ENGINE VERSION CONFIG_DIR [PASSWORD_FILE]: on the job's address and the next free
# port (three tries); waits for /health.
start_agent() {
  local try _
  for try in 1 2 3; do
    AGENT_PORT=$((AGENT_PORT + 1))
    local args=(serve --listen-address "$AGENT_ADDR" --port "$AGENT_PORT" --config-dir "$3"
      --engine "$1" --engine-version "$2" --node-address 127.0.0.1:1
      --allow-without-s3-repository) # no node here to ask for its S3 module
    if [[ -n "${4:-}" ]]; then args+=(--keystore-password-file "$4"); fi
    [[ -x "$AGENT_BIN" ]] || sleep 30 # being rebuilt
    ELASTIC_USERNAME=compat ELASTIC_PASSWORD="$AUTH_PASSWORD" "$AGENT_BIN" "${args[@]}" \
      >>"$JOB_DIR/agent.log" 2>&1 &
    AGENT_PID=$!
    for _ in $(seq 100); do
      if curl --silent --fail-with-body --connect-timeout 1 --max-time 2 \
        "http://$AGENT_ADDR:$AGENT_PORT/health" >/dev/null 2>&1; then
        return 0
      fi
      kill -0 "$AGENT_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_agent
    log "  agent did not start on $AGENT_ADDR:$AGENT_PORT (try $try): $(tail -n 1 "$JOB_DIR/agent.log")"
  done
  return 1
}

stop_agent() {
  if [[ -n "$AGENT_PID" ]]; then
    kill "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
  fi
}

# post BODY_FILE: POST /keystore; the reply is in REPLY_JSON. Body and credentials travel in
# files, never on a command line.
post() {
  REPLY_JSON="$(curl --silent --show-error --fail-with-body --connect-timeout 2 --max-time 60 \
    --config "$WORK/curl-auth.conf" -H 'Content-Type: application/json' --data-binary "@$1" \
    "http://$AGENT_ADDR:$AGENT_PORT/keystore" 2>>"$JOB_DIR/curl.log")"
}

reply_error() { jq -r '.error.code + ": " + .error.message' <<<"$REPLY_JSON" 2>/dev/null || printf 'no JSON reply'; }

# --- keystore files --------------------------------------------------------------------------

keystore_file() { printf '%s/%s.keystore\n' "$2" "$1"; } # ENGINE DIR

header_int() { # FILE OFFSET: big-endian int32
  od -An -tu1 -j"$2" -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}'
}

# header FILE: HDR_FORMAT and HDR_PASSWORD from the codec header (name length at byte 4).
header() {
  local n
  n="$(od -An -tu1 -j4 -N1 "$1" | tr -d ' ')"
  HDR_FORMAT="$(header_int "$1" $((5 + n)))"
  HDR_PASSWORD="$(od -An -tu1 -j$((9 + n)) -N1 "$1" | tr -d ' ')"
}

# --- test values (generated per run, kept in 0600 files) -------------------------------------

random_ascii() { # N: N printable ASCII characters (space, quotes and backslash included)
  local s=""
  while ((${#s} < $1)); do
    s+="$(head -c $(($1 * 3)) /dev/urandom | LC_ALL=C tr -dc '[:print:]')"
  done
  printf '%s' "${s:0:$1}"
}

value() { printf '%s/values/%s\n' "$WORK" "$1"; }

new_value() { # NAME GENERATOR...: writes the value file
  "${@:2}" >"$(value "$1")"
}

entry_line() { # TYPE NAME VALUE_NAME
  printf '%s\t%s\t%s\n' "$1" "$2" "$(base64 -w0 <"$(value "$3")")"
}

# body FILE CLIENT ACCESS SECRET [TOKEN]: a POST /keystore body built from value files.
body() {
  if [[ -n "${5:-}" ]]; then
    jq -n --arg client "$2" --rawfile a "$(value "$3")" --rawfile s "$(value "$4")" \
      --rawfile t "$(value "$5")" \
      '{client: $client, access_key_id: $a, secret_access_key: $s, session_token: $t}' >"$1"
  else
    jq -n --arg client "$2" --rawfile a "$(value "$3")" --rawfile s "$(value "$4")" \
      '{client: $client, access_key_id: $a, secret_access_key: $s}' >"$1"
  fi
}

make_test_data() {
  local i c umask_before
  umask_before="$(umask)"
  mkdir -m 0700 "$WORK/values" "$WORK/bodies"
  umask 077
  AUTH_PASSWORD="$(random_ascii 24 | tr -dc 'A-Za-z0-9')x"
  printf 'user = "compat:%s"\n' "$AUTH_PASSWORD" >"$WORK/curl-auth.conf"
  # The keystore password, non-ASCII, with the one trailing newline the agent and checker strip.
  { random_ascii 16 | tr -dc 'A-Za-z0-9'; printf 'pässwörd€𝄞\n'; } >"$WORK/password"
  printf 'wrong-password\n' >"$WORK/wrong-password"
  : >"$WORK/no-password"
  new_value nonascii printf 'Zürich-€-𝄞-ключ-%s' "$(random_ascii 8 | tr -dc 'A-Za-z0-9')"
  new_value big random_ascii 4096

  # agent → engine: clients c00..c16. c00 carries the non-ASCII secret and the 4 KiB token;
  # c15 and c16 have no token (c16 is first written with one, which the agent must remove).
  # 15 x 3 + 2 x 2 settings + keystore.seed = 50 entries.
  : >"$WORK/agent.expected"
  for i in $(seq 0 16); do
    c="$(printf 'c%02d' "$i")"
    new_value "$c.a" random_ascii 20
    new_value "$c.s" random_ascii 40
    if ((i == 0)); then
      cp "$(value nonascii)" "$(value "$c.s")"
      cp "$(value big)" "$(value "$c.t")"
    elif ((i < 15 || i == 16)); then
      new_value "$c.t" random_ascii 300
    fi
    if ((i < 15)); then
      body "$WORK/bodies/agent-$c.json" "$c" "$c.a" "$c.s" "$c.t"
    else
      [[ "$i" -eq 16 ]] && body "$WORK/bodies/agent-$c-token.json" "$c" "$c.a" "$c.s" "$c.t"
      body "$WORK/bodies/agent-$c.json" "$c" "$c.a" "$c.s"
    fi
    entry_line string "s3.client.$c.access_key" "$c.a" >>"$WORK/agent.expected"
    entry_line string "s3.client.$c.secret_key" "$c.s" >>"$WORK/agent.expected"
    if ((i < 15)); then
      entry_line string "s3.client.$c.session_token" "$c.t" >>"$WORK/agent.expected"
    fi
  done
  printf 'seed\tkeystore.seed\t\n' >>"$WORK/agent.expected"
  printf '%s\n' "$WORK"/bodies/agent-c*.json | LC_ALL=C sort >"$WORK/agent.bodies" # c16-token, then c16

  # engine → agent: what the engine's code writes first (keystore.seed comes from create()).
  new_value bootstrap random_ascii 20
  new_value file head -c 4096 /dev/urandom
  new_value old.a random_ascii 20
  new_value old.s random_ascii 40
  new_value old.t random_ascii 300
  new_value keep.a random_ascii 20
  new_value keep.s random_ascii 40
  {
    entry_line string bootstrap.password bootstrap
    entry_line file engine.file file
    entry_line string engine.nonascii nonascii
    entry_line string s3.client.default.access_key old.a
    entry_line string s3.client.default.secret_key old.s
    entry_line string s3.client.default.session_token old.t
    entry_line string s3.client.keep.access_key keep.a
    entry_line string s3.client.keep.secret_key keep.s
  } >"$WORK/engine.entries"
  # ... then the agent writes: client default again without a token (the stale one must go),
  # and client kb with a non-ASCII secret and a 4 KiB token.
  new_value new.a random_ascii 20
  new_value new.s random_ascii 40
  new_value kb.a random_ascii 20
  body "$WORK/bodies/engine-default.json" default new.a new.s
  body "$WORK/bodies/engine-kb.json" kb kb.a nonascii big
  {
    entry_line string s3.client.default.access_key new.a
    entry_line string s3.client.default.secret_key new.s
    entry_line string s3.client.kb.access_key kb.a
    entry_line string s3.client.kb.secret_key nonascii
    entry_line string s3.client.kb.session_token big
  } >"$WORK/engine.added"
  umask "$umask_before"
}

# --- the cells -------------------------------------------------------------------------------

# fail_cell REASON: records why the cell failed, stops the agent; always fails, so that
# `check || fail_cell "why" || return 1` reads as one line.
fail_cell() {
  CELL_REASON="$1"
  stop_agent
  return 1
}

# password_line PW: the keystore password as the first line of a CLI's stdin, if there is one.
password_line() { if [[ "$1" == 1 ]]; then cat "$WORK/password"; fi; }

entry_value() { # ENTRIES_FILE NAME: the raw value bytes
  awk -F'\t' -v n="$2" '$2 == n {print $3}' "$1" | base64 -d
}

# cli_create ENGINE VERSION DIR PW: the release's CLI creates the keystore of engine.entries.
cli_create() {
  local engine="$1" version="$2" dir="$3" pw="$4" type name _ names=()
  if [[ "$pw" == 1 ]]; then
    cat "$WORK/password" "$WORK/password" | tool "$engine" "$version" "$dir" create -p >/dev/null ||
      fail_cell "$engine-keystore create -p failed" || return 1
  else
    tool "$engine" "$version" "$dir" create </dev/null >/dev/null || fail_cell "$engine-keystore create failed" || return 1
  fi
  while IFS=$'\t' read -r type name _; do
    if [[ "$type" == string ]]; then names+=("$name"); fi
  done <"$WORK/engine.entries"
  if [[ "$engine" == elasticsearch && "${version%%.*}" -lt 7 ]]; then # 6.x adds one setting per call
    for name in "${names[@]}"; do
      { password_line "$pw" && entry_value "$WORK/engine.entries" "$name" && printf '\n'; } |
        tool "$engine" "$version" "$dir" add -x "$name" >/dev/null ||
        fail_cell "$engine-keystore add $name failed" || return 1
    done
  else
    {
      password_line "$pw"
      for name in "${names[@]}"; do
        entry_value "$WORK/engine.entries" "$name"
        printf '\n'
      done
    } | tool "$engine" "$version" "$dir" add -x "${names[@]}" >/dev/null ||
      fail_cell "$engine-keystore add failed" || return 1
  fi
  entry_value "$WORK/engine.entries" engine.file >"$dir.file"
  password_line "$pw" | tool "$engine" "$version" "$dir" add-file engine.file "$dir.file" >/dev/null ||
    fail_cell "$engine-keystore add-file failed" || return 1
}

# cli_lists ENGINE VERSION DIR PW EXPECTED_FILE: `list` shows exactly the expected names.
cli_lists() {
  local want
  # Not in a pipeline: tool sets TOOL_OUT, which a pipeline's subshell would lose.
  tool "$1" "$2" "$3" list < <(password_line "$4") || fail_cell "$1-keystore list failed" || return 1
  want="$(cut -f2 "$5" | LC_ALL=C sort | paste -sd' ')"
  [[ "$(LC_ALL=C sort <<<"$TOOL_OUT" | paste -sd' ')" == "$want" ]] ||
    fail_cell "$1-keystore list shows other names than expected" || return 1
}

# control ENGINE VERSION DIR: the checker must notice a changed value and a missing name.
control() {
  local dir="$3"
  awk -F'\t' -v OFS='\t' '$2 == "s3.client.c01.access_key" {$3 = "Y2hhbmdlZA=="} {print}' \
    "$WORK/agent.expected" >"$dir.changed"
  grep -v $'\ts3\\.client\\.c01\\.secret_key\t' "$WORK/agent.expected" >"$dir.missing"
  if checker check "$dir" "$WORK/no-password" "$dir.changed" || [[ "$VERDICT" != "values differ: "* ]]; then
    fail_cell "control: the checker did not notice a changed value ($VERDICT)" || return 1
  fi
  if checker check "$dir" "$WORK/no-password" "$dir.missing" || [[ "$VERDICT" != "names differ: "* ]]; then
    fail_cell "control: the checker did not notice an extra name ($VERDICT)" || return 1
  fi
}

# agent_writes ENGINE VERSION PW(0|1): agent creates and fills a keystore, the engine reads it.
agent_writes() {
  local engine="$1" version="$2" pw="$3" dir file pwfile="" body first=true n=0
  dir="$WORK/$(module_of "$1" "$2")/agent-$pw"
  mkdir -p "$dir"
  file="$(keystore_file "$engine" "$dir")"
  if [[ "$pw" == 1 ]]; then pwfile="$WORK/password"; fi
  start_agent "$engine" "$version" "$dir" "$pwfile" || fail_cell "agent did not start" || return 1
  while IFS= read -r body; do
    if ! post "$body"; then
      fail_cell "POST $(basename "$body" .json) refused: $(reply_error)" || return 1
    fi
    n=$((n + 1))
    if [[ "$first" == true ]]; then
      [[ "$(jq -r .created <<<"$REPLY_JSON")" == true ]] ||
        fail_cell "first POST did not report created=true" || return 1
      AGENT_FORMAT["$engine $version $pw"]="$(jq -r .format_version <<<"$REPLY_JSON")"
      first=false
    fi
  done <"$WORK/agent.bodies"
  stop_agent
  [[ -f "$file" ]] || fail_cell "no $file after $n POSTs" || return 1
  header "$file"
  [[ "$HDR_FORMAT" == "${AGENT_FORMAT["$engine $version $pw"]}" ]] ||
    fail_cell "header says format $HDR_FORMAT, the agent's reply ${AGENT_FORMAT["$engine $version $pw"]}" || return 1
  [[ "$HDR_PASSWORD" == "$pw" ]] || fail_cell "hasPassword byte is $HDR_PASSWORD" || return 1
  checker check "$dir" "${pwfile:-$WORK/no-password}" "$WORK/agent.expected" ||
    fail_cell "engine: $VERDICT" || return 1
  CELL_DETAIL="$VERDICT"
  if [[ "$pw" == 1 ]]; then
    checker refuses "$dir" "$WORK/no-password" || fail_cell "engine: without the password: $VERDICT" || return 1
  else
    control "$engine" "$version" "$dir" || return 1
  fi
  if uses_cli "$engine" "$version"; then
    cli_lists "$engine" "$version" "$dir" "$pw" "$WORK/agent.expected" || return 1
  fi
}

# other_release ENGINE FORMAT: a release whose new keystores do not have FORMAT (OpenSearch's
# all have 4: another release).
other_release() {
  if [[ "$1" == opensearch ]]; then
    printf '1.3.20\n'
  elif [[ "$2" == 7 ]]; then
    printf '7.17.29\n'
  else
    printf '9.5.3\n'
  fi
}

# engine_writes ENGINE VERSION PW(0|1): the engine creates a keystore, the agent updates it,
# the engine reads it again.
engine_writes() {
  local engine="$1" version="$2" pw="$3" dir file pwfile agent_pwfile="" sum format_before b
  dir="$WORK/$(module_of "$1" "$2")/engine-$pw"
  mkdir -p "$dir"
  file="$(keystore_file "$engine" "$dir")"
  pwfile="$WORK/no-password"
  if [[ "$pw" == 1 ]]; then
    pwfile="$WORK/password"
    agent_pwfile="$pwfile"
  fi
  if uses_cli "$engine" "$version"; then
    cli_create "$engine" "$version" "$dir" "$pw" || return 1
  else
    checker create "$dir" "$pwfile" "$WORK/engine.entries" || fail_cell "engine create: $VERDICT" || return 1
  fi
  header "$file"
  ENGINE_FORMAT["$engine $version $pw"]="$HDR_FORMAT"
  format_before="$HDR_FORMAT"
  [[ "$HDR_PASSWORD" == "$pw" ]] || fail_cell "the engine wrote hasPassword=$HDR_PASSWORD" || return 1
  checker export "$dir" "$pwfile" "$dir.before" || fail_cell "engine export: $VERDICT" || return 1

  if [[ "$pw" == 1 ]]; then # a wrong password: refused, file untouched
    sum="$(sha256sum "$file")"
    start_agent "$engine" "$version" "$dir" "$WORK/wrong-password" || fail_cell "agent did not start" || return 1
    if post "$WORK/bodies/engine-default.json"; then
      fail_cell "agent accepted a wrong keystore password" || return 1
    fi
    stop_agent
    [[ "$(jq -r .error.code <<<"$REPLY_JSON")" == KEYSTORE_PASSWORD_INCORRECT ]] ||
      fail_cell "wrong password: $(reply_error)" || return 1
    [[ "$(sha256sum "$file")" == "$sum" ]] || fail_cell "wrong password: the file changed" || return 1
  fi

  # The first write by an agent told this release, the second by one told a release whose new
  # keystores have another format: either way the file keeps the format the engine wrote.
  local agent_version
  for b in engine-default engine-kb; do
    agent_version="$version"
    if [[ "$b" == engine-kb ]]; then agent_version="$(other_release "$engine" "$format_before")"; fi
    start_agent "$engine" "$agent_version" "$dir" "$agent_pwfile" || fail_cell "agent did not start" || return 1
    post "$WORK/bodies/$b.json" || fail_cell "POST $b (agent for $agent_version) refused: $(reply_error)" || return 1
    [[ "$(jq -r '"\(.created) \(.format_version)"' <<<"$REPLY_JSON")" == "false $format_before" ]] ||
      fail_cell "POST $b (agent for $agent_version): created/format_version $(jq -r '"\(.created)/\(.format_version)"' <<<"$REPLY_JSON")" ||
      return 1
    stop_agent
  done
  header "$file"
  [[ "$HDR_FORMAT" == "$format_before" ]] ||
    fail_cell "the agent changed the format from $format_before to $HDR_FORMAT" || return 1
  [[ "$HDR_PASSWORD" == "$pw" ]] || fail_cell "the agent changed hasPassword to $HDR_PASSWORD" || return 1
  { grep -v $'\ts3\\.client\\.default\\.' "$dir.before" || true; cat "$WORK/engine.added"; } >"$dir.expected"
  checker check "$dir" "$pwfile" "$dir.expected" || fail_cell "engine: $VERDICT" || return 1
  CELL_DETAIL="$VERDICT"
  if uses_cli "$engine" "$version"; then
    cli_lists "$engine" "$version" "$dir" "$pw" "$dir.expected" || return 1
  fi
}

# A release runs in a job of its own (a background subshell); it reports to the main shell
# through its result file, one tab-separated line per fact: "cell KEY RESULT REASON" or
# "set MAP KEY VALUE".
emit() {
  local IFS=$'\t' fields=("$@")
  fields=("${fields[@]//$'\t'/ }")
  printf '%s\n' "${fields[*]//$'\n'/ }" >>"$RESULT"
}

record() { # KEY RESULT(pass|fail|n/a) [REASON]
  CELL["$1"]="$2"
  emit cell "$1" "$2" "${3:-}"
}

setv() { # MAP KEY VALUE
  emit set "$@"
}

# collect MODULE ENGINE VERSION: the job's results into the main shell's tables; a cell the job
# did not report (it died) fails.
collect() {
  local kind a b c key
  while IFS=$'\t' read -r kind a b c; do
    if [[ "$kind" == cell ]]; then
      CELL["$a"]="$b"
      case "$b" in
        pass) PASSED=$((PASSED + 1)) ;;
        fail)
          FAILED=$((FAILED + 1))
          REASONS+=("$a: $c")
          ;;
      esac
    elif [[ "$kind" == set ]]; then
      case "$a" in
        JDK_USED) JDK_USED["$b"]="$c" ;;
        TOOL) TOOL["$b"]="$c" ;;
        NOTE) NOTE["$b"]="$c" ;;
        QUIRK) QUIRK["$b"]="$c" ;;
        ENGINE_FORMAT) ENGINE_FORMAT["$b"]="$c" ;;
        AGENT_FORMAT) AGENT_FORMAT["$b"]="$c" ;;
      esac
    fi
  done < <(cat "$WORK/$1/result" 2>/dev/null || true)
  for c in format agent-0 agent-1 engine-0 engine-1; do
    key="$2 $3 $c"
    if [[ -z "${CELL["$key"]:-}" ]]; then
      CELL["$key"]=fail
      FAILED=$((FAILED + 1))
      REASONS+=("$key: the job ended before this cell (log above)")
    fi
  done
}

run_version() { # ENGINE VERSION DOC_FORMAT
  local engine="$1" version="$2" doc="$3" module jdk key pw cell t0
  t0=$(date +%s)
  module="$(module_of "$engine" "$version")"
  mkdir -p "$WORK/$module"
  jdk="$(jdk_for "$engine" "$version")"
  setv JDK_USED "$engine $version" "$(jdk_label "$jdk")"
  if uses_cli "$engine" "$version"; then
    setv TOOL "$engine $version" "CLI $engine-keystore + KeyStoreWrapper"
  else
    setv TOOL "$engine $version" KeyStoreWrapper
  fi
  AGENT_ADDR="127.0.0.$((40 + VERSION_INDEX))"
  log "$engine $version (JDK $(jdk_label "$jdk"))"
  if ! start_checker "$engine" "$version" "$jdk"; then
    for cell in format agent-0 agent-1 engine-0 engine-1; do
      if [[ "$cell" == *-1 ]] && ! has_passwords "$engine" "$version"; then
        record "$engine $version $cell" n/a
      else
        record "$engine $version $cell" fail "$CHECKER_ERROR"
      fi
    done
    return 0
  fi
  for pw in 0 1; do
    if [[ "$pw" == 1 ]] && ! has_passwords "$engine" "$version"; then
      record "$engine $version agent-1" n/a
      record "$engine $version engine-1" n/a
      continue
    fi
    for cell in agent engine; do
      key="$engine $version $cell-$pw"
      CELL_REASON=""
      if "${cell}_writes" "$engine" "$version" "$pw"; then
        record "$key" pass
        log "  ok   $cell-$pw: $CELL_DETAIL"
        if [[ "$CELL_DETAIL" == *"quirk: "* ]]; then setv QUIRK "$engine $version" "${CELL_DETAIL#*quirk: }"; fi
      else
        record "$key" fail "$CELL_REASON"
        log "  FAIL $cell-$pw: $CELL_REASON"
      fi
    done
  done
  stop_checker
  format_cell "$engine" "$version" "$doc"
  log "  $engine $version took $(($(date +%s) - t0)) s"
}

# format_cell: the engine's new keystore and the agent's new keystore have the same format.
format_cell() {
  local engine="$1" version="$2" doc="$3" e a pw seen_e="" seen_a="" reason=""
  for pw in 0 1; do
    e="${ENGINE_FORMAT["$engine $version $pw"]:-}"
    a="${AGENT_FORMAT["$engine $version $pw"]:-}"
    if [[ -n "$e" ]]; then
      [[ -z "$seen_e" || "$seen_e" == "$e" ]] || reason="the engine wrote $seen_e and $e"
      seen_e="$e"
    fi
    if [[ -n "$a" ]]; then
      [[ -z "$seen_a" || "$seen_a" == "$a" ]] || reason="the agent wrote $seen_a and $a"
      seen_a="$a"
    fi
  done
  setv ENGINE_FORMAT "$engine $version" "${seen_e:-?}"
  setv AGENT_FORMAT "$engine $version" "${seen_a:-?}"
  if [[ -z "$seen_e" || -z "$seen_a" ]]; then
    local who=agent
    if [[ -z "$seen_e" ]]; then who=engine; fi
    reason="${reason:-no new keystore from the $who}"
  elif [[ "$seen_e" != "$seen_a" ]]; then
    reason="the engine writes format $seen_e, the agent $seen_a"
  fi
  if [[ -n "$seen_e" && "$seen_e" != "$doc" ]]; then
    setv NOTE "$engine $version" "shared/docs/keystore-format.md says $doc, the engine writes $seen_e"
  fi
  if [[ -z "$reason" ]]; then record "$engine $version format" pass; else record "$engine $version format" fail "$reason"; fi
  log "  ${CELL["$engine $version format"]} format: engine $seen_e, agent $seen_a, doc $doc"
}

# --- jobs: COMPAT_JOBS releases at a time ----------------------------------------------------

declare -A JOB_MODULE=() JOB_SPEC=()

start_job() { # ENGINE VERSION DOC INDEX
  local module
  module="$(module_of "$1" "$2")"
  mkdir -p "$WORK/$module"
  (
    trap 'stop_agent; stop_checker' EXIT
    trap 'exit 143' TERM INT
    VERSION_INDEX="$4"
    JOB_DIR="$WORK/$module"
    RESULT="$JOB_DIR/result"
    run_version "$1" "$2" "$3"
  ) >"$WORK/$module/run.log" 2>&1 &
  JOB_MODULE[$!]="$module"
  JOB_SPEC[$!]="$1 $2"
}

wait_job() { # waits for any job, prints its log, collects its results
  local pid="" rc=0 engine version
  wait -n -p pid "${!JOB_MODULE[@]}" || rc=$?
  [[ -n "$pid" ]] || return 0
  cat "$WORK/${JOB_MODULE[$pid]}/run.log" >&2
  if ((rc != 0)); then log "${JOB_SPEC[$pid]}: the job exited with $rc"; fi
  read -r engine version <<<"${JOB_SPEC[$pid]}"
  collect "${JOB_MODULE[$pid]}" "$engine" "$version"
  unset "JOB_MODULE[$pid]" "JOB_SPEC[$pid]"
}

stop_jobs() {
  local pid
  for pid in "${!JOB_MODULE[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${!JOB_MODULE[@]}"; do wait "$pid" 2>/dev/null || true; done
  JOB_MODULE=()
}

# --- the matrix ------------------------------------------------------------------------------

mark() { # KEY
  case "${CELL["$1"]:-}" in
    pass) printf 'pass' ;;
    fail) printf '**FAIL**' ;;
    n/a) printf 'n/a' ;;
    *) printf '?' ;;
  esac
}

matrix() {
  local spec engine version doc k f
  printf '| engine | version | JDK | engine code used | new keystore format: engine / agent (doc) | agent → engine, no password | agent → engine, password | engine → agent → engine, no password | engine → agent → engine, password |\n'
  printf '|---|---|---|---|---|---|---|---|---|\n'
  for spec in "${SELECTED[@]}"; do
    read -r engine version doc <<<"$spec"
    k="$engine $version"
    f="${ENGINE_FORMAT["$k"]:-?} / ${AGENT_FORMAT["$k"]:-?} ($doc)"
    printf '| %s | %s | %s | %s | %s %s | %s | %s | %s | %s |\n' "$engine" "$version" "${JDK_USED["$k"]:-?}" \
      "${TOOL["$k"]:-?}" "$(mark "$k format")" "$f" "$(mark "$k agent-0")" "$(mark "$k agent-1")" \
      "$(mark "$k engine-0")" "$(mark "$k engine-1")"
  done
}

write_doc() {
  local spec engine version doc k findings=() quirks=() formats=() clis=()
  for spec in "${SELECTED[@]}"; do
    read -r engine version doc <<<"$spec"
    k="$engine $version"
    formats+=("$engine $version → ${ENGINE_FORMAT["$k"]:-?}")
    if uses_cli "$engine" "$version"; then clis+=("$engine $version"); fi
    if [[ -n "${NOTE["$k"]:-}" ]]; then findings+=("- $engine $version: ${NOTE["$k"]}."); fi
    if [[ -n "${QUIRK["$k"]:-}" ]]; then quirks+=("- $engine $version: ${QUIRK["$k"]}."); fi
  done
  {
    cat <<'EOF'
# Keystore compatibility

<!-- Generated by tests/compat/run.sh (`make compat`); edit the script, not this file. -->

The agent writes the engines' secure-settings keystore (`elasticsearch.keystore`,
`opensearch.keystore`) natively, without a JVM. This page is the evidence that what it writes is
what each engine release's own keystore code reads, and that it leaves what the engine wrote
intact. `tests/compat/run.sh` produces it from the engines' own code, fetched from Maven Central
during the run; every keystore file it checks is made during the run, by the agent or by the
engine, from test values generated for that run.

## What each cell checks

Per release, one long-lived checker JVM (`tests/compat/Checker.java`; commands in on standard
input, one verdict per command out; values and passwords only in files) calls that release's own
`KeyStoreWrapper` (`org.elasticsearch.common.settings` / `org.opensearch.common.settings`, from
the `org.elasticsearch:elasticsearch` / `org.opensearch:opensearch` server jar) through
reflection, with the JDK shown. The agent (`build/agent/es-agent serve`) runs as the same user,
one process per step, with `--engine`, `--engine-version` and, for the password cells,
`--keystore-password-file`.

- **new keystore format**: the format version in the header of a keystore that the engine's code
  creates (`create()` + `save()`, or the CLI's `create`) equals the one in the header of the
  keystore the agent creates for `--engine-version <release>` (and in its reply), with and
  without a password. In brackets: what `shared/docs/keystore-format.md` predicts.
- **agent → engine**: the agent creates a keystore and writes 17 S3 clients, 50 entries with
  `keystore.seed`: random printable ASCII (quotes and backslash included), a non-ASCII value
  (`Zürich-€-𝄞-ключ-…`), a 4096-byte session token, and one client first written with a session
  token and then without (the stale token must be gone). The engine's code loads and decrypts
  the file and lists exactly the expected names; every value is compared byte for byte both as
  the stored bytes (`getFile`, where the format allows it for string entries) and as the string
  the engine's settings get (`getString`); the agent's `keystore.seed` must be 20 characters of
  the engines' seed alphabet; the header's format and hasPassword byte are checked. Controls: the
  checker must report a changed value and an unexpected name as failures.
- **engine → agent → engine**: the engine's code creates a keystore: `keystore.seed` (from
  `create()`), `bootstrap.password`, a 4 KiB binary file entry (`setFile` / `add-file`), a
  non-ASCII string, S3 client `default` with a session token and client `keep`. The agent then
  writes client `default` again without a session token (agent told this release) and a new
  client `kb` with a non-ASCII secret and a 4 KiB token (agent told a release whose new
  keystores have another format: 9.5.3, or 7.17.29 for format 7). The engine's code then reads
  every entry it wrote unchanged, byte for byte (seed included), client `default`'s new values
  and no token, and client `kb`; the agent replied `created: false` with the file's format
  both times, and kept the file's format version and hasPassword byte.
- **password** columns: the same with a non-ASCII keystore password; in addition the engine's
  code must refuse the agent's file without the password, and an agent given a wrong password
  must answer 409 `KEYSTORE_PASSWORD_INCORRECT` and leave the engine's file unchanged.
  Password-protected keystores exist from Elasticsearch 7.7 and in every OpenSearch release;
  for earlier releases these cells are "n/a".

**engine code used**: "KeyStoreWrapper" means the checker did everything; "CLI … +
KeyStoreWrapper" means the release's own keystore tool from its integ-test-zip created the
engine's keystore (`create` / `create -p`, `add --stdin`, `add-file`) and listed the names
(`list`) after each write, while the values were read through `KeyStoreWrapper` (`show` exists
only from 7.16 and not in OpenSearch).

## Matrix

EOF
    matrix
    printf '\n%s cells passed, %s failed (n/a cells not counted).\n\n' "$PASSED" "$FAILED"
    cat <<'EOF'
## The release → format mapping

`shared/docs/keystore-format.md` infers part of its release → format table from changelog comments and
merge dates. The format each release's own code writes for a new keystore, as measured here:
EOF
    printf '%s.\n\n' "$(printf '%s, ' "${formats[@]}" | sed 's/, $//')"
    if ((${#findings[@]} == 0)); then
      # shellcheck disable=SC2016 # backquotes are Markdown
      echo 'Every release tested writes the format that `shared/docs/keystore-format.md` predicts, so no place
was found where its mapping is wrong. In particular 6.8 already writes 4 while 7.0 still writes 3;
7.1.0 writes 4; 8.0.0 writes 5 (little-endian lengths) up to 8.13; 8.14.0 writes 6 up to 8.17;
8.18.0, 8.19 and 9.x write 7; OpenSearch 1.x to 3.x write 4 (big-endian, as in Elasticsearch 7).
Releases between those tested (e.g. 6.3–6.6) are covered by the table, not measured.'
    else
      printf 'Where the prediction proved wrong:\n\n'
      printf '%s\n' "${findings[@]}"
    fi
    if ((${#quirks[@]} > 0)); then
      cat <<'EOF'

## Engine behaviour found on the way

In these releases `KeyStoreWrapper.getString` returns the UTF-8 decoder's whole buffer
(`new SecureString(charBuffer.array())`), so a value with non-ASCII characters comes back with
trailing U+0000 characters. The stored bytes are right (`getFile` returns them exactly) and the
engine does the same to values it set itself, so the cells pass: the checker accepts a
`getString` difference only if it equals the engine's own `setString`/`getString` round trip of
that value. S3 credentials are ASCII in practice; a non-ASCII secure setting is unusable on
these releases whoever writes it.

EOF
      printf '%s\n' "${quirks[@]}"
    fi
    cat <<'EOF'

## Releases, JDKs and jars

One representative (latest) patch release of each line, plus the releases on both sides of
every format boundary: 6.7 | 6.8 (3 | 4), 7.0 | 7.1 (3 | 4), 7.17 | 8.0 (4 | 5), 8.13 | 8.14
(5 | 6), 8.17 | 8.18 (6 | 7). Elasticsearch 9.x and OpenSearch 3.x are compiled for Java 21 and
run on the Temurin 25 JDK; every other release (6.7 and 6.8 included) runs on the Debian JDK 17,
which needed no `--add-opens`. The checker needs only the server jar and what its keystore
classes link to (Lucene core and backward codecs, the engine's core, CLI, x-content and logging
jars, log4j-api); `tests/compat/run.sh` resolves them with one Maven run (one module per release,
the rest of each server POM excluded, including artifacts that were never published such as
`elasticsearch-preallocate`, `elasticsearch-plugin-classloader`, `elasticsearch-lz4`).

The CLI tools used: `bin/elasticsearch-keystore` of
EOF
    printf '%s' "$(printf '%s, ' "${clis[@]}" | sed 's/, $//')"
    cat <<'EOF'
 (integ-test-zip, Maven Central; all ran on JDK 17, which Elasticsearch before 7.12 finds
in `JAVA_HOME` and later releases in `ES_JAVA_HOME`). The zip is published for some releases
only: for none of 9.x, and for OpenSearch only 2.19.6 and 3.6.0 among those near the tested
ones; `COMPAT_CLI` selects others (every tested release with a zip: 6.8.0, 6.8.23, 7.6.2, 7.7.0,
7.10.2, 7.17.29, 8.0.0, 8.13.4, 8.18.0, 8.19.21). The 8.19.21 tool is also exercised against the
agent by `tests/e2e/test_es_keystore.sh`.

Run it with `make compat` or `bash tests/compat/run.sh` (as root or any user; the agent and
the engine's code run as that user).
EOF
  } >"$COMPAT_DOC"
}

# --- main ------------------------------------------------------------------------------------

main() {
  local spec engine version doc start t0
  start=$(date +%s)
  JDK17="${COMPAT_JDK17:-/usr/lib/jvm/java-17-openjdk-amd64}"
  install_packages
  JDK21="${COMPAT_JDK21:-$(find_jdk 21 || true)}"
  [[ -n "$JDK21" ]] || die "no JDK >= 21 for Elasticsearch 9.x / OpenSearch 3.x (set COMPAT_JDK21)"
  unset AGENT_LISTEN_ADDRESS AGENT_PORT AGENT_CONFIG_DIR AGENT_ENGINE AGENT_ENGINE_VERSION \
    AGENT_NODE_ADDRESS AGENT_KEYSTORE_PASSWORD_FILE AGENT_THREADS
  AGENT_PORT=19400

  SELECTED=()
  for spec in "${VERSIONS[@]}"; do
    read -r engine version doc <<<"$spec"
    if [[ -z "${COMPAT_ONLY:-}" || " $COMPAT_ONLY " == *" $engine-$version "* ]]; then
      SELECTED+=("$spec")
    fi
  done
  ((${#SELECTED[@]} > 0)) || die "COMPAT_ONLY selects no release"

  mkdir -p "$CACHE"
  WORK="$(mktemp -d /tmp/compat.XXXXXX)"
  trap cleanup EXIT
  wait_for_agent_binary
  compile_checker
  t0=$(date +%s)
  resolve_classpaths
  unpack_distributions
  log "jars ready in $(($(date +%s) - t0)) s"
  make_test_data

  local index=0 jobs="${COMPAT_JOBS:-2}"
  for spec in "${SELECTED[@]}"; do
    read -r engine version doc <<<"$spec"
    index=$((index + 1))
    while ((${#JOB_MODULE[@]} >= jobs)); do wait_job; done
    start_job "$engine" "$version" "$doc" "$index"
  done
  while ((${#JOB_MODULE[@]} > 0)); do wait_job; done

  echo
  matrix
  echo
  if ((${#REASONS[@]} > 0)); then
    echo "Failures:"
    printf '  %s\n' "${REASONS[@]}"
    echo
  fi
  local k
  for k in "${!NOTE[@]}"; do echo "mapping: $k: ${NOTE["$k"]}"; done
  if [[ -n "$COMPAT_DOC" && -z "${COMPAT_ONLY:-}" ]]; then
    mkdir -p "$(dirname "$COMPAT_DOC")"
    write_doc
    log "wrote $COMPAT_DOC"
  fi
  log "done in $(($(date +%s) - start)) s"
  echo "compat: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"

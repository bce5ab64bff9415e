#!/usr/bin/env bash
# Local stand-in cluster of real components, for the demo and the e2e tests:
#   versitygw (S3, SigV4-checked) on 127.0.0.1:${E2E_S3_PORT:-7070}
#   three OpenSearch nodes on 127.0.0.11-13 (http 9200, transport 9300)
#   optionally one agent per node ($AGENT_BIN) on 127.0.0.1N:8080
# Usage: tests/e2e/cluster.sh start|stop|status
# Run tests/e2e/lib/deps.sh first. Work dir: ${E2E_WORK:-/tmp/es-e2e}.
set -euo pipefail

# shellcheck source=tests/e2e/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

START_TIMEOUT="${E2E_START_TIMEOUT:-180}"
AGENT_TIMEOUT="${E2E_AGENT_TIMEOUT:-20}"
STOP_TIMEOUT="${E2E_STOP_TIMEOUT:-30}"
S3_TIMEOUT="${E2E_S3_TIMEOUT:-20}"
PID_DIR="$E2E_WORK/run"
WORK_MARKER="$E2E_WORK/.e2e-work"
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

log() { printf '[cluster] %s\n' "$*" >&2; }
die() {
  printf '[cluster] ERROR: %s\n' "$*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start|stop|status" >&2
  exit 2
}

require_root() {
  [[ "$(id -u)" -eq 0 ]] || die "run as root (the engines run as $E2E_USER via setpriv)"
}

# --- small utilities -----------------------------------------------------------

# random_hex BYTES: BYTES random bytes as lowercase hex (no external argv leak).
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# http_code URL: the HTTP status of GET URL, 000 when nothing answers.
http_code() {
  curl --silent --fail --output /dev/null --write-out '%{http_code}' \
    --connect-timeout 2 --max-time 5 "$1" || true
}

# port_busy ADDR PORT: something already listens there.
port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Every component is started as `setsid <as esnode> CMD &`: from this
# non-interactive shell setsid does not fork, so $! is CMD's pid (setpriv, env
# and bin/opensearch all exec) and leads its own process group.

# --- pid files: line 1 = pid, line 2 = a string its command line must contain ---

write_pid() { printf '%s\n%s\n' "$2" "$3" >"$PID_DIR/$1.pid"; }

# pid_of NAME: print the pid recorded for NAME if that process still runs
# and is still the one we started (guards against pid reuse).
pid_of() {
  local file="$PID_DIR/$1.pid" pid marker
  [[ -f "$file" ]] || return 1
  { read -r pid && read -r marker; } <"$file" || return 1
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

running() { pid_of "$1" >/dev/null; }

# alive NAME: the recorded process still exists. What the start-up waits ask: just after the
# fork (setsid, setpriv and env exec one after the other) its command line is not yet the
# program's, which `running` would take for a process that is gone.
alive() {
  local pid
  pid=$(sed -n 1p "$PID_DIR/$1.pid" 2>/dev/null) && [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}
pid_value() { pid_of "$1" && sed -n 1p "$PID_DIR/$1.pid"; }

# kill_target PID: "-PID" (its whole process group) when PID leads its own
# group, as everything started through `setsid` does, else "PID". The group
# also holds the short-lived helper JVMs that bin/opensearch runs before its
# `exec java`.
kill_target() {
  local pgid
  pgid="$(ps -o pgid= -p "$1" 2>/dev/null | tr -d ' ')"
  if [[ "$pgid" == "$1" ]]; then
    printf -- '-%s\n' "$1"
  else
    printf '%s\n' "$1"
  fi
}

# stop_all NAME...: TERM each running one, wait up to STOP_TIMEOUT for all,
# KILL what is left; drop the pid files.
stop_all() {
  local name pid target targets=() waited=0
  for name in "$@"; do
    if pid="$(pid_value "$name")"; then
      log "stopping $name (pid $pid)"
      target="$(kill_target "$pid")"
      kill -TERM -- "$target" 2>/dev/null || true
      targets+=("$target")
    fi
  done
  for target in "${targets[@]}"; do
    while kill -0 -- "$target" 2>/dev/null && ((waited < STOP_TIMEOUT * 2)); do
      sleep 0.5
      waited=$((waited + 1))
    done
    if kill -0 -- "$target" 2>/dev/null; then
      log "$target did not stop in ${STOP_TIMEOUT}s, killing it"
      kill -KILL -- "$target" 2>/dev/null || true
    fi
  done
  for name in "$@"; do rm -f "$PID_DIR/$name.pid"; done
}

# --- work dir --------------------------------------------------------------

# reset_work_dir: wipe E2E_WORK, but only if it is ours (marker) or empty.
reset_work_dir() {
  case "$E2E_WORK" in
    "" | / | /tmp | /root | /home | "$HOME") die "refusing to use E2E_WORK=$E2E_WORK" ;;
  esac
  if [[ -e "$E2E_WORK" && ! -f "$WORK_MARKER" ]] && [[ -n "$(ls -A "$E2E_WORK" 2>/dev/null)" ]]; then
    die "$E2E_WORK exists and is not an e2e work dir (no $WORK_MARKER); remove it yourself"
  fi
  rm -rf "$E2E_WORK"
  install -d -m 0755 "$E2E_WORK"
  touch "$WORK_MARKER"
  install -d -m 0755 "$PID_DIR"
  # credentials files inside are 0600 root; esnode only needs to traverse s3/
  install -d -m 0755 "$E2E_WORK/s3" "$E2E_WORK/agent"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0755 "$E2E_FS_REPO_DIR"
}

check_installed() {
  [[ -x "$E2E_VERSITYGW_BIN" && -x "$OPENSEARCH_HOME/bin/opensearch" ]] ||
    die "components missing in $E2E_CACHE: run tests/e2e/lib/deps.sh first"
  [[ -n "$OPENSEARCH_JAVA_HOME" ]] || die "no JDK found for OpenSearch $E2E_OPENSEARCH_VERSION"
}

check_ports_free() {
  local n addr
  port_busy 127.0.0.1 "$E2E_S3_PORT" && die "127.0.0.1:$E2E_S3_PORT is already in use"
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    addr="$(e2e_node_addr "$n")"
    port_busy "$addr" "$E2E_HTTP_PORT" && die "$addr:$E2E_HTTP_PORT is already in use"
    port_busy "$addr" "$E2E_TRANSPORT_PORT" && die "$addr:$E2E_TRANSPORT_PORT is already in use"
  done
  return 0
}

# --- S3 server ---------------------------------------------------------------

write_s3_credentials() {
  local ak sk
  ak="$(random_hex 10 | tr 'a-f' 'A-F')"
  sk="$(random_hex 20)"
  (
    umask 077
    printf 'S3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\n' "$ak" "$sk" >"$E2E_S3_CREDENTIALS"
  )
}

# read_s3_credentials: sets S3_ACCESS_KEY / S3_SECRET_KEY in this shell.
read_s3_credentials() {
  S3_ACCESS_KEY="$(sed -n 's/^S3_ACCESS_KEY=//p' "$E2E_S3_CREDENTIALS")"
  S3_SECRET_KEY="$(sed -n 's/^S3_SECRET_KEY=//p' "$E2E_S3_CREDENTIALS")"
}

# The rclone config KubeBlocks renders from its "minio" StorageProvider
# (datasafedConfigTemplate), plus force_path_style from "s3-compatible".
write_datasafed_conf() {
  read_s3_credentials
  (
    umask 077
    cat >"$E2E_DATASAFED_CONF" <<EOF
[storage]
type = s3
provider = Minio
env_auth = false
access_key_id = $S3_ACCESS_KEY
secret_access_key = $S3_SECRET_KEY
region = $E2E_S3_REGION
endpoint = $E2E_S3_ENDPOINT
root = $E2E_BUCKET
no_check_certificate = false
no_check_bucket = false
chunk_size = 50Mi
force_path_style = true
EOF
  )
}

# xattrs_supported DIR: can DIR hold user extended attributes (versitygw's
# default metadata store)? Otherwise it keeps metadata in a sidecar dir.
xattrs_supported() {
  local probe="$1/.xattr-probe"
  command -v setfattr >/dev/null || return 1
  touch "$probe"
  if setfattr -n user.e2e -v 1 "$probe" 2>/dev/null; then
    rm -f "$probe"
    return 0
  fi
  rm -f "$probe"
  return 1
}

start_s3() {
  local data="$E2E_S3_DATA_DIR" meta=() log_file="$E2E_WORK/s3/versitygw.log"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$data"
  if [[ "${E2E_S3_SIDECAR:-auto}" == 1 ]] || ! xattrs_supported "$data"; then
    install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$E2E_WORK/s3/meta"
    meta=(--sidecar "$E2E_WORK/s3/meta")
  fi
  write_s3_credentials
  read_s3_credentials
  touch "$log_file"
  chown "$E2E_USER:" "$log_file"
  # The root credentials reach versitygw through its environment only.
  ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
    setsid "${E2E_AS_ESNODE[@]}" "$E2E_VERSITYGW_BIN" --port "127.0.0.1:$E2E_S3_PORT" --region "$E2E_S3_REGION" \
    --quiet posix "${meta[@]}" "$data" </dev/null >"$log_file" 2>&1 &
  write_pid versitygw "$!" "$E2E_VERSITYGW_BIN"
  unset S3_ACCESS_KEY S3_SECRET_KEY
  wait_for_s3
  log "versitygw on $E2E_S3_ENDPOINT (metadata: ${meta[*]:-xattrs})"
}

wait_for_s3() {
  local deadline=$((SECONDS + S3_TIMEOUT))
  while [[ "$(http_code "$E2E_S3_ENDPOINT/")" == 000 ]]; do
    if ! alive versitygw || ((SECONDS >= deadline)); then
      tail -n 20 "$E2E_WORK/s3/versitygw.log" >&2 || true
      die "versitygw did not come up on $E2E_S3_ENDPOINT"
    fi
    sleep 0.3
  done
}

# create_bucket: a SigV4-signed PUT; the secret reaches curl via its stdin config.
create_bucket() {
  local body code
  body="$(mktemp)"
  read_s3_credentials
  code="$(printf 'user = "%s:%s"\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" |
    curl --silent --show-error --fail-with-body --connect-timeout 5 --max-time 30 --config - \
      --aws-sigv4 "aws:amz:$E2E_S3_REGION:s3" -H "x-amz-content-sha256: $EMPTY_SHA256" \
      -X PUT --output "$body" --write-out '%{http_code}' "$E2E_S3_ENDPOINT/$E2E_BUCKET")" || true
  unset S3_ACCESS_KEY S3_SECRET_KEY
  if [[ "$code" != 200 ]]; then
    cat "$body" >&2
    rm -f "$body"
    die "creating bucket $E2E_BUCKET failed (HTTP $code)"
  fi
  rm -f "$body"
  log "bucket $E2E_BUCKET created"
}

# --- OpenSearch nodes ------------------------------------------------------------

yaml_list() {
  local out="" item
  for item in "$@"; do out+="${out:+, }\"$item\""; done
  printf '[%s]' "$out"
}

write_node_yml() {
  local n="$1" dir="$2" seeds=() names=() i
  for ((i = 1; i <= E2E_NODE_COUNT; i++)); do
    seeds+=("$(e2e_host_port "$(e2e_node_addr "$i")" "$E2E_TRANSPORT_PORT")")
    names+=("node-$i")
  done
  cat >"$dir/config/opensearch.yml" <<EOF
# Generated by tests/e2e/cluster.sh for node-$n.
cluster.name: $E2E_CLUSTER_NAME
node.name: node-$n
network.host: "$(e2e_node_addr "$n")"
http.port: $E2E_HTTP_PORT
transport.port: $E2E_TRANSPORT_PORT
discovery.seed_hosts: $(yaml_list "${seeds[@]}")
cluster.initial_cluster_manager_nodes: $(yaml_list "${names[@]}")
path.data: $dir/data
path.logs: $dir/logs
path.repo: ["$E2E_FS_REPO_DIR"]
# A production node's snapshot pool has up to 5 threads (half its cores); two cores give one,
# and a throttled restore's downloads would then hold every other repository call. With 4, the
# tests' two throttled restores (4 shards) still held the next registration 56-105 s.
thread_pool.snapshot.max: 8
# CI disks can be nearly full; do not let watermarks block allocation.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
}

# jvm.options writes GC logs, heap dumps and error files relative to the
# (shared, read-only) OPENSEARCH_HOME: point them at the node's own dirs.
patch_jvm_options() {
  local dir="$1"
  sed -i \
    -e "s#file=logs/gc.log#file=$dir/logs/gc.log#" \
    -e "s#-Xloggc:logs/gc.log#-Xloggc:$dir/logs/gc.log#" \
    -e "s#HeapDumpPath=data#HeapDumpPath=$dir/data#" \
    -e "s#ErrorFile=logs/#ErrorFile=$dir/logs/#" \
    "$dir/config/jvm.options"
}

prepare_node() {
  local n="$1" dir
  dir="$(e2e_node_dir "$n")"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$dir" "$dir/data" "$dir/logs" "$dir/tmp"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$dir/config"
  cp -r "$OPENSEARCH_HOME/config/." "$dir/config/"
  write_node_yml "$n" "$dir"
  patch_jvm_options "$dir"
  chown -R "$E2E_USER:$E2E_USER" "$dir"
}

start_node() {
  local n="$1" dir
  dir="$(e2e_node_dir "$n")"
  OPENSEARCH_PATH_CONF="$dir/config" OPENSEARCH_TMPDIR="$dir/tmp" \
    OPENSEARCH_JAVA_HOME="$OPENSEARCH_JAVA_HOME" \
    OPENSEARCH_JAVA_OPTS="-Xms$E2E_HEAP -Xmx$E2E_HEAP $E2E_EXTRA_JAVA_OPTS" \
    setsid "${E2E_AS_ESNODE[@]}" "$OPENSEARCH_HOME/bin/opensearch" </dev/null >"$dir/stdout.log" 2>&1 &
  # bin/opensearch is a bash script that ends in `exec java`: the pid stays,
  # and both command lines name OPENSEARCH_HOME.
  write_pid "node-$n" "$!" "$OPENSEARCH_HOME/"
}

node_log_tail() {
  local n="$1" dir
  dir="$(e2e_node_dir "$n")"
  echo "---- node-$n: tail of $dir/logs/$E2E_CLUSTER_NAME.log" >&2
  tail -n 40 "$dir/logs/$E2E_CLUSTER_NAME.log" >&2 2>/dev/null || true
  echo "---- node-$n: tail of $dir/stdout.log" >&2
  tail -n 20 "$dir/stdout.log" >&2 || true
}

# failing_node: the first node that is dead or does not answer http.
failing_node() {
  local n
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    running "node-$n" || {
      echo "$n"
      return
    }
  done
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    [[ "$(http_code "$(e2e_node_url "$n")/")" == 200 ]] || {
      echo "$n"
      return
    }
  done
  echo 1
}

wait_for_green() {
  local deadline=$((SECONDS + START_TIMEOUT)) n
  local url="$E2E_ES_URL/_cluster/health?wait_for_nodes=$E2E_NODE_COUNT&wait_for_status=green&timeout=5s"
  while ! curl --silent --fail --connect-timeout 2 --max-time 10 --output /dev/null "$url"; do
    for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
      if ! alive "node-$n"; then
        node_log_tail "$n"
        die "node-$n exited during start"
      fi
    done
    if ((SECONDS >= deadline)); then
      n="$(failing_node)"
      node_log_tail "$n"
      die "cluster not green with $E2E_NODE_COUNT nodes after ${START_TIMEOUT}s (see node-$n above)"
    fi
    sleep 2
  done
}

start_nodes() {
  local n t0=$SECONDS
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    prepare_node "$n"
  done
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    start_node "$n"
  done
  log "waiting for $E2E_NODE_COUNT nodes and green health (up to ${START_TIMEOUT}s)"
  wait_for_green
  log "OpenSearch $E2E_OPENSEARCH_VERSION cluster green in $((SECONDS - t0))s at $E2E_ES_URL"
}

# --- agents ------------------------------------------------------------------

agent_wanted() { [[ -n "${AGENT_BIN:-}" && -x "${AGENT_BIN:-}" ]]; }

write_agent_credentials() {
  local password
  password="$(random_hex 16)"
  (
    umask 077
    printf 'ELASTIC_USERNAME=%s\nELASTIC_PASSWORD=%s\n' elastic "$password" >"$E2E_AGENT_CREDENTIALS"
  )
}

start_agent() {
  local n="$1" dir addr user pass
  dir="$(e2e_node_dir "$n")"
  addr="$(e2e_node_addr "$n")"
  user="$(sed -n 's/^ELASTIC_USERNAME=//p' "$E2E_AGENT_CREDENTIALS")"
  pass="$(sed -n 's/^ELASTIC_PASSWORD=//p' "$E2E_AGENT_CREDENTIALS")"
  touch "$dir/agent.log"
  chown "$E2E_USER:" "$dir/agent.log"
  ELASTIC_USERNAME="$user" ELASTIC_PASSWORD="$pass" \
    setsid "${E2E_AS_ESNODE[@]}" "$AGENT_BIN" serve --listen-address "$addr" --port "$E2E_AGENT_PORT" \
    --config-dir "$dir/config" --engine opensearch --node-address "$(e2e_host_port "$addr" "$E2E_HTTP_PORT")" \
    </dev/null >"$dir/agent.log" 2>&1 &
  write_pid "agent-$n" "$!" "--config-dir $dir/config"
}

wait_for_agent() {
  local n="$1" url deadline=$((SECONDS + AGENT_TIMEOUT))
  url="http://$(e2e_host_port "$(e2e_node_addr "$n")" "$E2E_AGENT_PORT")/health"
  while [[ "$(http_code "$url")" != 200 ]]; do
    if ! alive "agent-$n" || ((SECONDS >= deadline)); then
      echo "---- agent-$n: tail of $(e2e_node_dir "$n")/agent.log" >&2
      tail -n 30 "$(e2e_node_dir "$n")/agent.log" >&2 || true
      die "agent-$n not healthy at $url within ${AGENT_TIMEOUT}s"
    fi
    sleep 0.5
  done
}

start_agents() {
  local n
  if ! agent_wanted; then
    log "agents: skipped (AGENT_BIN not set or not executable)"
    return 0
  fi
  write_agent_credentials
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    start_agent "$n"
  done
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    wait_for_agent "$n"
  done
  log "agents healthy on port $E2E_AGENT_PORT ($AGENT_BIN)"
}

# --- commands ------------------------------------------------------------------

cmd_stop() {
  local n agents=() nodes=()
  [[ -d "$PID_DIR" ]] || return 0
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    agents+=("agent-$n")
    nodes+=("node-$n")
  done
  stop_all "${agents[@]}"
  stop_all "${nodes[@]}"
  stop_all versitygw
  # The credentials were made for this run alone; the logs stay for reading.
  rm -f "$E2E_S3_CREDENTIALS" "$E2E_DATASAFED_CONF" "$E2E_AGENT_CREDENTIALS"
}

# on_start_failure: a failed start stops whatever it started; logs stay.
on_start_failure() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)); then
    log "start failed: stopping what was started (logs kept under $E2E_WORK)"
    cmd_stop || true
  fi
  exit "$rc"
}

cmd_start() {
  local t0=$SECONDS
  require_root
  check_installed
  cmd_stop
  check_ports_free
  e2e_ensure_user
  reset_work_dir
  trap on_start_failure EXIT
  start_s3
  create_bucket
  write_datasafed_conf
  start_nodes
  start_agents
  trap - EXIT
  log "started in $((SECONDS - t0))s; work dir $E2E_WORK"
  cmd_status
}

status_line() { printf '%-10s %-8s %s\n' "$1" "$2" "$3"; }

cmd_status() {
  local n ok=0 state health
  if running versitygw; then
    status_line versitygw up "$E2E_S3_ENDPOINT bucket=$E2E_BUCKET"
  else
    status_line versitygw down "$E2E_S3_ENDPOINT"
    ok=1
  fi
  for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
    state=down
    running "node-$n" && [[ "$(http_code "$(e2e_node_url "$n")/")" == 200 ]] && state=up
    [[ "$state" == up ]] || ok=1
    status_line "node-$n" "$state" "$(e2e_node_url "$n") $(e2e_node_dir "$n")"
  done
  if [[ -f "$PID_DIR/agent-1.pid" ]] || agent_wanted; then
    for ((n = 1; n <= E2E_NODE_COUNT; n++)); do
      state=down
      running "agent-$n" && state=up
      [[ "$state" == up ]] || ok=1
      status_line "agent-$n" "$state" "http://$(e2e_host_port "$(e2e_node_addr "$n")" "$E2E_AGENT_PORT")"
    done
  fi
  health="$(curl --silent --fail --connect-timeout 2 --max-time 5 "$E2E_ES_URL/_cluster/health" |
    jq -r '"\(.status) nodes=\(.number_of_nodes)"' 2>/dev/null || true)"
  status_line cluster "${health:-unreachable}" "opensearch $E2E_OPENSEARCH_VERSION s3-plugin=$(e2e_has_s3_plugin && echo yes || echo no)"
  return "$ok"
}

main() {
  case "${1:-}" in
    start) cmd_start ;;
    stop)
      require_root
      cmd_stop
      ;;
    status) cmd_status ;;
    *) usage ;;
  esac
}

main "$@"

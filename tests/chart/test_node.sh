#!/usr/bin/env bash
# Real Elasticsearch nodes started from the chart's own config and start-up: helm renders a
# major's ComponentDefinition and its templates; kbrender stands in for KubeBlocks (the vars of
# one pod, the config and script templates, the container's env) and for the kubelet ($(VAR)
# expansion, the downward API); then prepare-config.sh (and on 7.x install-plugins.sh) and
# entrypoint.sh run as they would in the pod, as the engine's user, and start Elasticsearch (the
# integ-test distributions in .cache/e2e). 8.x (8.19.21), on 127.0.0.51, one pod after the other:
# without TLS; with TLS (certificates from a test CA, as KubeBlocks' issuer would make them) and
# a keystore password, restarted once. 7.x (7.17.29) and 9.x (9.2.0), the same two pods (not
# restarted), beside them on 127.0.0.52 and .53 (the start-up cases, which start no node, in the
# 9.x lane; each lane's lines are printed when it is done). The agent, when built, runs from its
# container's env against each node's keystore; on the 8.x pod without TLS a second time from
# the render with agent.keystoreBackend cli: install-agent's command copies it into the
# agent-bin volume and the copy writes through the engine's own elasticsearch-keystore.
#
# 7.x's repository-s3 plugin cannot be installed here (elasticsearch-plugin downloads it from
# Elastic's site; it is not on Maven Central): install-plugins.sh runs in its container's env
# with a declared stand-in for the tool's download-and-install step only, the real tool is run
# in the same env, and the 7.x node starts without the plugin (the agent is told
# --allow-without-s3-repository, as for every pod here: no node here has an S3 module).
#
# Stand-ins, each named where it is made: the node binds the pod's IP instead of 0.0.0.0 (a
# pod has a network namespace of its own; this host is shared), the volumes are directories
# (the config volume is reached through ES_PATH_CONF, the TLS and password mounts through their
# scripts' path variables), the JVM is the host's (the image bundles one: Java 17 for 7.x, 21+
# for 9.x), the heap is fixed.
# KEEP_WORK=1 keeps the pods' directories (their path is printed) for a look after a failure.
# Ends with 'N passed, M failed'; exits non-zero when a check failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/e2e/lib/env.sh
source "$ROOT/tests/e2e/lib/env.sh"

readonly CHART=$ROOT/addons/elasticsearch
readonly BIN=${CHART_CACHE:-$ROOT/.cache/chart}/bin
# The pod IP: the 8.x pods' (one after the other); the 7.x and 9.x pods run beside them, each
# on its own (run_beside).
TEST_IP=127.0.0.51
readonly TEST_IP_BY_MAJOR=([7]=127.0.0.52 [9]=127.0.0.53)
readonly TEST_HTTP_PORT=9200
readonly TEST_AGENT_PORT=8080
readonly TEST_CLUSTER=es-test
readonly TEST_POD=es-test-elasticsearch-0
readonly TEST_FQDN=$TEST_POD.es-test-elasticsearch-headless.default.svc.cluster.local
# Not readonly: make passes it in the environment, and container_exec unsets every variable.
AGENT_BIN=${AGENT_BIN:-$ROOT/build/agent/es-agent}
# Elasticsearch 7.17 runs on Java 17 (not on 25); 9.x needs 21 or newer.
readonly JAVA17_HOME=${CHART_NODE_JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
PASSED=0
FAILED=0
WORK=""
NODE_PID=""
AGENT_PID=""

pass() {
  PASSED=$((PASSED + 1))
  printf 'ok   %s\n' "$1"
}
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL %s\n' "$1"
}
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# stop_process PID: SIGTERM to the process group PID leads (run_container starts each one in a
# session of its own: the node's launcher and its server JVM go together), SIGKILL after 30 s.
stop_process() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for ((i = 0; i < 60; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

BESIDE_PIDS=()
BESIDE_NAMES=()

cleanup() {
  local pid
  for pid in "${BESIDE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BESIDE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_process "$AGENT_PID"
  stop_process "$NODE_PID"
  if [[ -n $WORK && -z ${KEEP_WORK:-} ]]; then rm -rf -- "$WORK"; fi
}

# run_beside NAME IP FUNCTION ARGS...: FUNCTION in a background subshell whose pod IP is IP (the
# nodes start at the same time as the 8.x ones: on two busy cores a start is mostly waiting);
# its lines go to WORK/NAME.log, its counts to WORK/NAME.counts. It stops its own processes.
run_beside() {
  local name=$1
  beside_body "$@" >"$WORK/$name.log" 2>&1 &
  BESIDE_PIDS+=("$!")
  BESIDE_NAMES+=("$name")
}

# beside_body NAME IP FUNCTION ARGS...: run_beside's background part (a subshell: what it sets
# is its own).
beside_body() {
  BESIDE_COUNTS=$WORK/$1.counts TEST_IP=$2 PASSED=0 FAILED=0 NODE_PID="" AGENT_PID="" BESIDE_PIDS=()
  shift 2
  trap 'exit 143' TERM
  trap 'stop_process "$AGENT_PID"; stop_process "$NODE_PID"
    printf "%d %d\n" "$PASSED" "$FAILED" >"$BESIDE_COUNTS"' EXIT
  "$@"
}

# finish_beside: waits for every run_beside, prints its lines and adds its counts.
finish_beside() {
  local i rc counts
  for i in "${!BESIDE_PIDS[@]}"; do
    rc=0
    wait "${BESIDE_PIDS[$i]}" || rc=$?
    cat "$WORK/${BESIDE_NAMES[$i]}.log"
    read -ra counts <"$WORK/${BESIDE_NAMES[$i]}.counts"
    PASSED=$((PASSED + counts[0]))
    FAILED=$((FAILED + counts[1]))
    ((rc == 0)) || fail "${BESIDE_NAMES[$i]}: its test stopped early (exit $rc)"
  done
  BESIDE_PIDS=()
}

random_secret() { openssl rand -hex 16; }

# --- the majors: each pod's release, its distribution and its Java ---------------------------

# major_release MAJOR: the Elasticsearch release of that major that deps.sh fetches.
major_release() {
  local release
  for release in "elasticsearch:$E2E_ELASTICSEARCH_VERSION" $E2E_TOOL_RELEASES $E2E_NODE_RELEASES; do
    if [[ $release == elasticsearch:$1.* ]]; then
      printf '%s\n' "${release#*:}"
      return 0
    fi
  done
  echo "no Elasticsearch $1.x in E2E_ELASTICSEARCH_VERSION, E2E_TOOL_RELEASES, E2E_NODE_RELEASES" >&2
  return 1
}

# major_home MAJOR: its integ-test distribution (the image's /usr/share/elasticsearch).
major_home() {
  if [[ $1 == "${E2E_ELASTICSEARCH_VERSION%%.*}" ]]; then
    printf '%s\n' "$ES_HOME"
  else
    printf '%s\n' "$E2E_TOOL_HOMES/elasticsearch-$(major_release "$1")"
  fi
}

# major_java MAJOR: the JDK its node and tools run on here.
major_java() {
  case $1 in
    7) printf '%s\n' "$JAVA17_HOME" ;;
    8) printf '%s\n' "$ES_JAVA_HOME" ;;
    *) e2e_find_java 21 ;;
  esac
}

# What GET /_nodes/_local must say (the integ-test distribution has no GET /: rest-root module).
node_is_the_pod() {
  printf '%s' '.cluster_name == "'"$TEST_CLUSTER"'" and ([.nodes[].name] == ["'"$TEST_POD"'"])
    and ([.nodes[].version] == ["'"$1"'"])'
}

bound_to_pod_ip() {
  printf '%s' '[.nodes[] | .http.bound_address, .transport.bound_address] ==
    [["'"$TEST_IP:$TEST_HTTP_PORT"'"], ["'"$TEST_IP"':9300"]]'
}

# --- the stand-in for KubeBlocks: render, then kbrender ------------------------------------

# render_pod DIR TLS(true|false) MAJOR HELM_ARGS...: that major's ComponentDefinition, for a
# Cluster whose serviceVersion is the release run here: DIR/pod/files/<volume>/...,
# DIR/pod/env/<container>.
render_pod() {
  local dir=$1 tls=$2 major=$3 release
  shift 3
  release=$(major_release "$major")
  mkdir -p "$dir"
  "$BIN/helm" template es "$CHART" --namespace default --show-only "templates/cmpd-$major.yaml" \
    --show-only templates/configmaps.yaml "$@" >"$dir/rendered.yaml"
  # What KubeBlocks knows of the pod: the Cluster, the component, the account's Secret.
  jq -n --arg cluster "$TEST_CLUSTER" --arg pod "$TEST_POD" --arg ip "$TEST_IP" --argjson tls "$tls" \
    --arg release "$release" --rawfile password "$dir/elastic-password" \
    '{clusterName: $cluster, namespace: "default", component: "elasticsearch", replicas: 1,
      serviceVersion: $release, clusterDomain: "cluster.local", tlsEnabled: $tls,
      credentials: {elastic: {username: "elastic", password: ($password | rtrimstr("\n"))}},
      podName: $pod, podIP: $ip}' >"$dir/facts.json"
  chmod 0600 "$dir/facts.json"
  "$BIN/kbrender" -rendered "$dir/rendered.yaml" -facts "$dir/facts.json" -out "$dir/pod" >/dev/null
}

# container_exec DIR CONTAINER OVERRIDES_FILE COMMAND...: becomes COMMAND, as the engine's user,
# with exactly the container's environment (kbrender's), then the stand-ins' overrides
# (NAME=value lines). Values are exported by the shell, never put on a command line. In a
# session of its own, whose id is the process's. Run it in a subshell: `container_exec ... &`.
container_exec() {
  local dir=$1 name=$2 overrides=$3 v kv
  shift 3
  for v in $(compgen -e); do unset "$v"; done
  while IFS= read -r -d '' kv; do export "${kv?}"; done <"$dir/pod/env/$name"
  while IFS= read -r kv; do [[ -z $kv ]] || export "${kv?}"; done <"$overrides"
  export PATH=/usr/local/bin:/usr/bin:/bin
  exec setsid "${E2E_AS_ESNODE[@]}" "$@"
}

# run_container DIR CONTAINER OVERRIDES_FILE COMMAND...: the same, in the foreground.
run_container() { (container_exec "$@"); }

# --- the pod's directories -------------------------------------------------------------------

# make_pod_dirs DIR MAJOR: the image (a copy of the major's distribution: the tests write into
# its data directory as the pod writes into its data volume) and the volumes.
make_pod_dirs() {
  local dir=$1 major=$2
  mkdir -p "$dir/image" "$dir/volumes/config"
  cp -a "$(major_home "$major")/." "$dir/image/"
  rm -f "$dir/image/.e2e-installed"
  mkdir -p "$dir/image/data" "$dir/image/logs" "$dir/image/plugins"
  # The volumes the engine's user writes (fsGroup in the pod; 7.x's plugins volume too); the
  # image stays root's.
  chown -R "$E2E_USER:$E2E_USER" "$dir/image/data" "$dir/image/logs" "$dir/volumes"
  [[ $major != 7 ]] || chown "$E2E_USER:$E2E_USER" "$dir/image/plugins"
  chmod 0750 "$dir/volumes/config"
}

# path_overrides DIR MAJOR: the stand-ins for the image's paths and JDK, in every container
# started from the engine's image: its home, the config volume's mount (ES_PATH_CONF).
path_overrides() {
  local dir=$1 major=$2
  printf '%s\n' "ES_HOME=$dir/image" "ES_PATH_CONF=$dir/volumes/config" "ES_JAVA_HOME=$(major_java "$major")"
}

# node_overrides DIR MAJOR: the path stand-ins, and the node's: where prepare-config finds its
# volumes, the pod's own network namespace (bind its IP), the container's memory (heap).
node_overrides() {
  local dir=$1 major=$2
  path_overrides "$dir" "$major"
  printf '%s\n' "CONFIG_DIR=$dir/volumes/config" "TEMPLATE_DIR=$dir/pod/files/es-config" \
    "ES_NETWORK_HOST=$TEST_IP" "ES_JAVA_OPTS=-Xms512m -Xmx512m $E2E_EXTRA_JAVA_OPTS"
}

# make_tls DIR: what KubeBlocks' issuer puts in the TLS Secret: ca.pem, cert.pem (the pod's
# DNS name; and its IP, which the local clients use), key.pem; mode 0440, the engine's group.
make_tls() {
  local dir=$1/tls
  mkdir -p "$dir"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 \
      -subj "/CN=kbrender test CA" &&
      openssl req -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.csr" \
        -subj "/CN=$TEST_POD" &&
      printf 'subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$TEST_FQDN" "$TEST_IP" >"$dir/ext" &&
      openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -out "$dir/cert.pem" -days 2 -extfile "$dir/ext"
  } >"$dir/openssl.out" 2>&1 || {
    cat "$dir/openssl.out" >&2
    return 1
  }
  rm -f "$dir/ca.key" "$dir/cert.csr" "$dir/ext" "$dir/ca.srl" "$dir/openssl.out"
  chgrp "$E2E_USER" "$dir"/*.pem
  chmod 0440 "$dir"/*.pem
}

# --- talking to the node ---------------------------------------------------------------------

# node_curl DIR SCHEME [USER:PASSWORD-FILE|-] PATH [CURL ARGS...]: the body on stdout; status in
# DIR/status. Credentials go to curl in a config on stdin.
node_curl() {
  local dir=$1 scheme=$2 auth=$3 path=$4
  shift 4
  local tls=()
  [[ $scheme == https ]] && tls=(--cacert "$dir/tls/ca.pem")
  {
    if [[ $auth != - ]]; then
      printf 'user = "%s:%s"\n' "${auth%%:*}" "$(cat "${auth#*:}")"
    fi
  } | curl -sS -K - --connect-timeout 5 --max-time 30 "${tls[@]}" -o "$dir/body" -w '%{http_code}' \
    "$@" "$scheme://$TEST_IP:$TEST_HTTP_PORT$path" >"$dir/status" 2>"$dir/curl.err" || true
  cat "$dir/body" 2>/dev/null || true
}

status_is() { [[ $(cat "$1/status") == "$2" ]]; }

wait_for_node() {
  local dir=$1 scheme=$2 auth=$3 i
  for ((i = 0; i < 180; i++)); do
    if ! kill -0 "$NODE_PID" 2>/dev/null; then
      echo "node exited; its output:" >&2
      tail -n 30 "$dir/node.out" >&2
      return 1
    fi
    node_curl "$dir" "$scheme" "$auth" "/_cluster/health?wait_for_status=green&timeout=1s" >/dev/null
    status_is "$dir" 200 && return 0
    sleep 1
  done
  tail -n 30 "$dir/node.out" >&2
  return 1
}

# start_node DIR: prepare-config, then the entrypoint, in the background.
start_node() {
  local dir=$1
  run_container "$dir" prepare-config "$dir/overrides" "$dir/pod/files/scripts/prepare-config.sh" \
    >"$dir/prepare.out" 2>&1
  container_exec "$dir" elasticsearch "$dir/overrides" "$dir/pod/files/scripts/entrypoint.sh" \
    >"$dir/node.out" 2>&1 &
  NODE_PID=$!
}

# keystore_tool DIR ARGS...: the engine's keystore tool as an operator runs it in the engine
# container (its env: elasticsearch.yml's placeholders resolve), the password (if any) on stdin.
keystore_tool() {
  local dir=$1 input=/dev/null
  shift
  [[ ! -f $dir/keystore-password/password ]] || input=$dir/keystore-password/password
  run_container "$dir" elasticsearch "$dir/overrides" "$dir/image/bin/elasticsearch-keystore" "$@" <"$input"
}

keystore_list() { keystore_tool "$1" list; }

# keystore_has_password DIR: the tool's has-passwd (its warnings, 7.x's no-jdk one, in a file).
keystore_has_password() { keystore_tool "$1" has-passwd --silent 2>"$1/has-passwd.err"; }

has_name() { grep -qx -- "$2" <<<"$1"; }

# lacks_secrets FILE SECRET...: none of the secrets appears in the file.
lacks_secrets() {
  local file=$1 secret
  shift
  for secret in "$@"; do
    if grep -qF -- "$secret" "$file"; then return 1; fi
  done
}

json_is() { # json_is FILE JQ_FILTER: the file is one JSON value and the filter yields true
  jq -e -s "length == 1 and (.[0] | $2)" "$1" >/dev/null 2>&1
}

# --- the agent, from its container's env ------------------------------------------------------

# agent_overrides DIR: the agent's stand-ins (the pod's loopback is the node's address here).
agent_overrides() {
  local dir=$1
  cat "$dir/overrides"
  printf '%s\n' "AGENT_LISTEN_ADDRESS=$TEST_IP" "AGENT_NODE_ADDRESS=$TEST_IP:$TEST_HTTP_PORT" \
    "AGENT_CONFIG_DIR=$dir/volumes/config" \
    "AGENT_ALLOW_WITHOUT_S3_REPOSITORY=true"
  if [[ -f $dir/keystore-password/password ]]; then
    printf '%s\n' "AGENT_KEYSTORE_PASSWORD_FILE=$dir/keystore-password/password"
  fi
  if [[ -d $dir/tls ]]; then
    printf '%s\n' "AGENT_NODE_CA_FILE=$dir/tls/ca.pem"
  fi
}

# agent_health DIR [ENV_DIR COMMAND...]: the liveness probe's command (AGENT_BIN health) in the
# agent container's env (ENV_DIR's render, DIR's by default); its word, "ok", kept in
# DIR/health.out.
agent_health() {
  local dir=$1 env_dir=${2:-$1}
  shift $(($# < 2 ? $# : 2))
  (($# > 0)) || set -- "$AGENT_BIN" health
  run_container "$env_dir" agent "$dir/agent-overrides" "$@" >"$dir/health.out"
}

agent_curl() { # agent_curl DIR METHOD PATH [BODY_FILE]: with the elastic account's credentials
  local dir=$1 method=$2 path=$3 body=${4:-}
  local data=()
  [[ -z $body ]] || data=(--data-binary "@$body" -H 'Content-Type: application/json')
  printf 'user = "elastic:%s"\n' "$(cat "$dir/elastic-password")" |
    curl -sS -K - --connect-timeout 5 --max-time 30 -X "$method" "${data[@]}" -o "$dir/agent-body" \
      -w '%{http_code}' "http://$TEST_IP:$TEST_AGENT_PORT$path" >"$dir/agent-status" 2>"$dir/agent-curl.err" || true
}

# test_agent DIR LABEL [ENV_DIR]: the agent against DIR's node and volumes, started with the agent
# container's env of ENV_DIR's render (DIR's by default) and its overrides (DIR/agent-overrides,
# ENV_DIR/agent-extra-overrides), by the command in ENV_DIR/agent.command and the probe in
# ENV_DIR/probe.command (one word a line; by default AGENT_BIN serve and AGENT_BIN health).
test_agent() {
  local dir=$1 label=$2 env_dir=${3:-$1} i serve=("$AGENT_BIN" serve) health=("$AGENT_BIN" health)
  if [[ ! -x $AGENT_BIN ]]; then
    echo "note: $AGENT_BIN is not built (make agent): the agent part of $label skipped"
    return 0
  fi
  [[ ! -f $env_dir/agent.command ]] || mapfile -t serve <"$env_dir/agent.command"
  [[ ! -f $env_dir/probe.command ]] || mapfile -t health <"$env_dir/probe.command"
  agent_overrides "$dir" >"$dir/agent-overrides"
  [[ ! -f $env_dir/agent-extra-overrides ]] || cat "$env_dir/agent-extra-overrides" >>"$dir/agent-overrides"
  container_exec "$env_dir" agent "$dir/agent-overrides" "${serve[@]}" >"$dir/agent.out" 2>&1 &
  AGENT_PID=$!
  # Up to 60 s: the cli backend runs the engine's tool once before it listens (a JVM start).
  for ((i = 0; i < 300; i++)); do
    curl -sf --max-time 2 "http://$TEST_IP:$TEST_AGENT_PORT/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  check "$label: the agent, started from its container's env, answers /health" \
    curl -sf --max-time 2 "http://$TEST_IP:$TEST_AGENT_PORT/health" -o /dev/null
  check "$label: its liveness probe (es-agent health, in the same env) says alive" \
    agent_health "$dir" "$env_dir" "${health[@]}"
  local key secret
  key=$(random_secret)
  secret=$(random_secret)
  jq -n --arg k "$key" --arg s "$secret" '{access_key_id: $k, secret_access_key: $s, client: "kbtest"}' \
    >"$dir/keystore-request.json"
  chmod 0600 "$dir/keystore-request.json"
  agent_curl "$dir" POST /keystore "$dir/keystore-request.json"
  check "$label: POST /keystore with the elastic account's credentials writes the node's keystore" \
    [ "$(cat "$dir/agent-status")" = 200 ]
  local names ok=false
  names=$(keystore_list "$dir" 2>/dev/null || true)
  if has_name "$names" s3.client.kbtest.access_key && has_name "$names" s3.client.kbtest.secret_key &&
    has_name "$names" keystore.seed; then ok=true; fi
  check "$label: the engine's tool lists the agent's entries beside the entrypoint's" "$ok"
  agent_curl "$dir" DELETE "/keystore?client=kbtest"
  names=$(keystore_list "$dir" 2>/dev/null || true)
  ok=false
  if [[ $(cat "$dir/agent-status") == 200 ]] && ! has_name "$names" s3.client.kbtest.access_key &&
    has_name "$names" keystore.seed; then ok=true; fi
  check "$label: DELETE /keystore removes them again" "$ok"
  check "$label: no secret in the agent's log" \
    lacks_secrets "$dir/agent.out" "$key" "$secret" "$(cat "$dir/elastic-password")"
  stop_process "$AGENT_PID"
  AGENT_PID=""
}

# --- the two pods ------------------------------------------------------------------------------

# test_plain_pod MAJOR: a pod of that major's ComponentDefinition, without TLS.
test_plain_pod() {
  local major=$1 dir=$WORK/plain-$1 label="$1.x pod without TLS" release
  release=$(major_release "$major")
  mkdir -p "$dir"
  random_secret >"$dir/elastic-password"
  render_pod "$dir" false "$major"
  make_pod_dirs "$dir" "$major"
  node_overrides "$dir" "$major" >"$dir/overrides"
  [[ $major != 7 ]] || test_install_plugins "$dir" "$label"
  start_node "$dir"
  check "$label: the node starts from the rendered config and entrypoint and turns green" \
    wait_for_node "$dir" http -
  node_curl "$dir" http - /_nodes/_local >"$dir/root.json"
  check "$label: without credentials (security off without TLS): cluster es-test, node $TEST_POD, $release" \
    json_is "$dir/root.json" "$(node_is_the_pod "$release")"
  node_curl "$dir" http - /_nodes/_local/http,transport >"$dir/nodes.json"
  check "$label: the node publishes the pod IP (where the jobs reach its agent)" \
    json_is "$dir/nodes.json" '[.nodes[].ip] == ["'"$TEST_IP"'"]'
  check "$label: the node binds only the pod IP (ES_NETWORK_HOST reaches elasticsearch.yml)" \
    json_is "$dir/nodes.json" "$(bound_to_pod_ip)"
  node_curl "$dir" http - "/_nodes/_local/settings?flat_settings=true" >"$dir/settings.json"
  # One replica: discovery as for many (no single-node discovery type, which a node refuses
  # to start with while the voting configuration lists others), its own name the initial master.
  check "$label: rendered settings in force (no seeds, itself the initial master, no mmap, security off)" \
    json_is "$dir/settings.json" '.nodes[].settings | (has("discovery.type") | not) and
      (.["discovery.seed_hosts"] // []) == [] and .["cluster.initial_master_nodes"] == ["'"$TEST_POD"'"] and
      .["node.store.allow_mmap"] == "false" and .["xpack.security.enabled"] == "false"'
  local names ok=false
  names=$(keystore_list "$dir" 2>/dev/null || true)
  if has_name "$names" keystore.seed && ! has_name "$names" bootstrap.password; then ok=true; fi
  check "$label: the entrypoint created a keystore without a password, no bootstrap.password" "$ok"
  check "$label: elasticsearch.yml holds no placeholder once the node runs" \
    lacks_secrets "$dir/volumes/config/elasticsearch.yml" "\${"
  # As the agent's cli backend runs it: nothing of the container's environment.
  ok=false
  names=$(env -i PATH=/usr/bin:/bin ES_PATH_CONF="$dir/volumes/config" ES_JAVA_HOME="$(major_java "$major")" \
    "${E2E_AS_ESNODE[@]}" "$dir/image/bin/elasticsearch-keystore" list </dev/null 2>&1 || true)
  has_name "$names" keystore.seed && ok=true
  check "$label: the engine's keystore tool works in an empty environment (the agent's cli backend)" "$ok"
  test_agent "$dir" "$label"
  [[ $major != 8 ]] || test_cli_agent "$dir" "$label"
  stop_process "$NODE_PID"
  NODE_PID=""
}

# rendered_command RENDERED CONTAINER WHAT SUBSTITUTIONS...: a container's (or init container's)
# command in a rendered ComponentDefinition, one word a line, WHAT being command or probe (its
# liveness probe's); each SUBSTITUTION FROM=TO replaces a leading path (a stand-in).
rendered_command() {
  /usr/bin/python3 - "$@" <<'EOF_PY'
import sys, yaml
rendered, name, what, subs = sys.argv[1], sys.argv[2], sys.argv[3], [a.split("=", 1) for a in sys.argv[4:]]
cmpd = next(d for d in yaml.safe_load_all(open(rendered)) if d and d["kind"] == "ComponentDefinition")
rt = cmpd["spec"]["runtime"]
c = next(c for c in rt.get("initContainers", []) + rt["containers"] if c["name"] == name)
words = c["livenessProbe"]["exec"]["command"] if what == "probe" else c["command"]
for w in words:
    for old, new in subs:
        if w == old or w.startswith(old + "/"):
            w = new + w[len(old):]
    print(w)
EOF_PY
}

# env_value ENV_FILE NAME: a variable of a container's env as kbrender wrote it (NUL-separated).
env_value() { tr '\0' '\n' <"$1" | sed -n "s/^$2=//p"; }

# test_cli_agent DIR LABEL: agent.keystoreBackend cli, on DIR's running node. The pod rendered
# with it; install-agent's command (the agent image's es-agent: AGENT_BIN here) copies the agent
# into the agent-bin volume (a directory here), as the engine's user; then the agent container's
# command runs that copy, whose cli backend runs the image's own elasticsearch-keystore from
# AGENT_ENGINE_HOME (the image's home: DIR/image here, on the host's JDK: the integ-test
# distribution bundles none), and its probe the same copy.
test_cli_agent() {
  local dir=$1 label="$2, cli keystore backend" cli=$1/cli bin_dir=$1/volumes/agent-bin
  [[ -x $AGENT_BIN ]] || return 0
  mkdir -p "$cli" "$bin_dir"
  chown "$E2E_USER:$E2E_USER" "$bin_dir"
  cp "$dir/elastic-password" "$cli/"
  render_pod "$cli" false 8 --set agent.keystoreBackend=cli
  local subs=(/mnt/agent-bin="$bin_dir" /usr/local/bin/es-agent="$AGENT_BIN") install=() serve=()
  mapfile -t install < <(rendered_command "$cli/rendered.yaml" install-agent command "${subs[@]}")
  rendered_command "$cli/rendered.yaml" agent command "${subs[@]}" >"$cli/agent.command"
  rendered_command "$cli/rendered.yaml" agent probe "${subs[@]}" >"$cli/probe.command"
  : >"$cli/no-overrides"
  check "$label: install-agent's command, as the engine's user, copies es-agent into agent-bin (${install[*]})" \
    run_container "$cli" install-agent "$cli/no-overrides" "${install[@]}" >"$cli/install.out" 2>&1
  check "$label: the copy is the agent's binary, mode 0755, and the agent's command and probe run it" \
    copy_is_run "$bin_dir/es-agent" "$cli"
  check "$label: the agent is told the image's own home (AGENT_ENGINE_HOME=/usr/share/elasticsearch)" \
    [ "$(env_value "$cli/pod/env/agent" AGENT_ENGINE_HOME)" = /usr/share/elasticsearch ]
  # Without the stand-in for the image's home (absent here), the copy refuses to start: the
  # container's env does choose the cli backend, which needs that home.
  agent_overrides "$dir" >"$cli/home-missing-overrides"
  local rc=0 ok=false
  mapfile -t serve <"$cli/agent.command"
  run_container "$cli" agent "$cli/home-missing-overrides" "${serve[@]}" >"$cli/home-missing.out" 2>&1 || rc=$?
  if ((rc == 2)) && grep -qF -- "--keystore-backend cli needs --engine-home" "$cli/home-missing.out"; then ok=true; fi
  check "$label: without the image's home the agent refuses to start (exit 2: the cli backend needs it)" "$ok"
  printf '%s\n' "AGENT_ENGINE_HOME=$dir/image" "AGENT_ENGINE_JAVA_HOME=$(major_java 8)" >"$cli/agent-extra-overrides"
  test_agent "$dir" "$label" "$cli"
}

# copy_is_run COPY ENV_DIR: COPY is AGENT_BIN byte for byte, mode 0755, and the first word of
# ENV_DIR's agent command and probe.
copy_is_run() {
  cmp -s "$AGENT_BIN" "$1" && [[ $(stat -c %a "$1") == 755 ]] &&
    [[ $(head -n 1 "$2/agent.command") == "$1" && $(head -n 1 "$2/probe.command") == "$1" ]]
}

# test_install_plugins DIR LABEL: 7.x's install-plugins init container, between prepare-config
# and the node, as in the pod. Its overrides are only the image's paths: what
# elasticsearch.yml's placeholders need must come from the container's own env.
test_install_plugins() {
  local dir=$1 label=$2 tool=$1/image/bin/elasticsearch-plugin
  path_overrides "$dir" 7 >"$dir/plugin-overrides"
  run_container "$dir" prepare-config "$dir/overrides" "$dir/pod/files/scripts/prepare-config.sh" \
    >"$dir/prepare.out" 2>&1
  check "$label: install-plugins is told to install repository-s3 (the chart's default source)" \
    grep -qzx 'PLUGINS=repository-s3' "$dir/pod/env/install-plugins"
  check "$label: the engine's plugin tool runs in install-plugins' env on the prepared config volume" \
    plugin_tool_lists_nothing "$dir" "$tool"
  # The declared stand-in: the tool's install would download repository-s3 from Elastic's site,
  # which this machine cannot reach (and Maven Central does not carry it). It records what it
  # was asked; every other command goes to the real tool.
  echo "note: $label: repository-s3 is not installed here (no download from Elastic's site);" \
    "install-plugins.sh runs with a stand-in for elasticsearch-plugin install only"
  mv "$tool" "$tool.real"
  cat >"$tool" <<'STUB'
#!/usr/bin/env bash
# Stand-in for `elasticsearch-plugin install` (the test cannot download plugins): records its
# arguments, installs nothing. Every other command is the real tool's.
if [[ ${1:-} == install ]]; then
  printf '%s\n' "$*" >"$PLUGIN_STUB_OUT"
  exit 0
fi
exec "$0.real" "$@"
STUB
  chmod 0755 "$tool"
  : >"$dir/plugin-stub.out"
  chown "$E2E_USER" "$dir/plugin-stub.out"
  printf 'PLUGIN_STUB_OUT=%s\n' "$dir/plugin-stub.out" >>"$dir/plugin-overrides"
  local rc=0
  run_container "$dir" install-plugins "$dir/plugin-overrides" "$dir/pod/files/scripts/install-plugins.sh" \
    >"$dir/install-plugins.out" 2>&1 || rc=$?
  mv -f "$tool.real" "$tool"
  check "$label: install-plugins.sh asks the tool for repository-s3, in batch mode, and succeeds" \
    [ "$rc:$(cat "$dir/plugin-stub.out")" = "0:install --batch repository-s3" ]
}

# plugin_tool_lists_nothing DIR TOOL: elasticsearch-plugin list, as the install-plugins
# container runs it, exits 0 and names no plugin.
plugin_tool_lists_nothing() {
  local dir=$1 tool=$2
  if run_container "$dir" install-plugins "$dir/plugin-overrides" "$tool" list >"$dir/plugin-list.out" 2>&1 &&
    ! grep -v '^warning: ' "$dir/plugin-list.out" | grep -q .; then
    return 0
  fi
  sed 's/^/  /' "$dir/plugin-list.out" >&2
  return 1
}

# member_exec DIR ACTION OVERRIDES_FILE: becomes the rendered lifecycle action's command as
# kb-agent runs it: exactly the environment kbrender wrote for it (the action's parameters, then
# kb-agent's container env), then the overrides, as an unprivileged user; the engine
# container's scripts volume (/mnt/scripts, which kb-agent mounts) is the pod's rendered scripts.
member_exec() {
  local dir=$1 name=$2 overrides=$3 v kv arg argv=()
  for v in $(compgen -e); do unset "$v"; done
  while IFS= read -r -d '' kv; do export "${kv?}"; done <"$dir/pod/actions/$name/env"
  while IFS= read -r kv; do [[ -z $kv ]] || export "${kv?}"; done <"$overrides"
  export PATH=/usr/local/bin:/usr/bin:/bin
  while IFS= read -r -d '' arg; do
    argv+=("${arg/#\/mnt\/scripts\//$dir/pod/files/scripts/}")
  done <"$dir/pod/actions/$name/command"
  exec timeout --kill-after=5 60 "${E2E_AS_ESNODE[@]}" "${argv[@]}"
}

# exclusions_are DIR AUTH ALLOCATION VOTING: the persistent allocation exclusion and the voting
# exclusions' names (comma-separated) are these.
exclusions_are() {
  local dir=$1 auth=$2
  node_curl "$dir" https "$auth" '/_cluster/settings?flat_settings=true' >"$dir/cluster-settings.json"
  node_curl "$dir" https "$auth" \
    '/_cluster/state/metadata?filter_path=metadata.cluster_coordination.voting_config_exclusions' >"$dir/voting.json"
  [[ $(jq -r '.persistent["cluster.routing.allocation.exclude._name"] // ""' "$dir/cluster-settings.json") == "$3" &&
    $(jq -r '[.metadata.cluster_coordination.voting_config_exclusions // [] | .[].node_name] | join(",")' \
      "$dir/voting.json") == "$4" ]]
}

# test_member_tls DIR LABEL AUTH: config/member.sh (memberLeave, memberJoin) over https with the
# elastic account, in the env kb-agent gives, on this one-node cluster of the major: the leave
# of a pod not in the cluster (ordinal 5, as after it was stopped: nothing to drain) excludes
# its name from allocation, the existing exclusion kept, and from voting; its join takes both
# back; with a wrong password the leave fails, naming the node's 401. Stand-ins: MEMBER_ES_URL
# is the pod's IP (its FQDN does not resolve here), TLS_CA_FILE the test CA's file.
test_member_tls() {
  local dir=$1 label=$2 auth=$3 gone=$TEST_CLUSTER-elasticsearch-5 rc
  local fqdn=$gone.${TEST_FQDN#*.}
  printf '%s\n' "MEMBER_ES_URL=https://$TEST_IP:$TEST_HTTP_PORT" "TLS_CA_FILE=$dir/tls/ca.pem" \
    "KB_LEAVE_MEMBER_POD_NAME=$gone" "KB_LEAVE_MEMBER_POD_FQDN=$fqdn" \
    "KB_JOIN_MEMBER_POD_NAME=$gone" "KB_JOIN_MEMBER_POD_FQDN=$fqdn" >"$dir/member-overrides"
  node_curl "$dir" https "$auth" /_cluster/settings -X PUT -H 'Content-Type: application/json' \
    --data-binary '{"persistent": {"cluster.routing.allocation.exclude._name": "es-test-retired"}}' >/dev/null
  rc=0
  (member_exec "$dir" memberLeave "$dir/member-overrides") >"$dir/member-leave.out" 2>&1 || rc=$?
  check "$label: memberLeave (https, the elastic account) of $gone, not in the cluster, exits 0" [ "$rc" = 0 ]
  check "$label: ... its name added to the allocation exclusion (the existing kept) and to the voting exclusions" \
    exclusions_are "$dir" "$auth" "es-test-retired,$gone" "$gone"
  rc=0
  (member_exec "$dir" memberJoin "$dir/member-overrides") >"$dir/member-join.out" 2>&1 || rc=$?
  check "$label: memberJoin of $gone exits 0" [ "$rc" = 0 ]
  check "$label: ... its name out of both exclusions, the existing allocation exclusion kept" \
    exclusions_are "$dir" "$auth" "es-test-retired" ""
  cp "$dir/member-overrides" "$dir/member-overrides-wrong"
  echo "ELASTIC_PASSWORD=wrong-$RANDOM" >>"$dir/member-overrides-wrong"
  rc=0
  (member_exec "$dir" memberLeave "$dir/member-overrides-wrong") >"$dir/member-wrong.out" 2>&1 || rc=$?
  check "$label: memberLeave with a wrong password exits non-zero, naming the node's 401" \
    failed_saying "$rc" "returned error: 401" "$dir/member-wrong.out"
  cat "$dir/member-leave.out" "$dir/member-join.out" "$dir/member-wrong.out" >"$dir/member-all.out"
  check "$label: no secret in the actions' output" lacks_secrets "$dir/member-all.out" "$(cat "$dir/elastic-password")"
}

# failed_saying RC TEXT FILE: RC is not 0 and FILE holds TEXT.
failed_saying() { [[ $1 != 0 ]] && grep -qF -- "$2" "$3"; }

# test_tls_pod MAJOR RESTART(true|false): a pod of that major's ComponentDefinition with TLS and
# a keystore password; restarted once when RESTART. (On 7.x install-plugins is not run again:
# the plain pod shows it, and the node does not depend on it.)
test_tls_pod() {
  local major=$1 restart=$2 dir=$WORK/tls-$1 label="$1.x pod with TLS and a keystore password"
  mkdir -p "$dir/keystore-password"
  random_secret >"$dir/elastic-password"
  # The one keystore-password Secret, as its volume would show it (0440, the engine's group).
  random_secret >"$dir/keystore-password/password"
  chgrp "$E2E_USER" "$dir/keystore-password/password"
  chmod 0440 "$dir/keystore-password/password"
  render_pod "$dir" true "$major" --set keystore.passwordSecret=es-keystore-password
  make_pod_dirs "$dir" "$major"
  make_tls "$dir"
  {
    node_overrides "$dir" "$major"
    printf '%s\n' "TLS_DIR=$dir/tls" "ES_KEYSTORE_PASSWORD_FILE=$dir/keystore-password/password"
  } >"$dir/overrides"
  check "$label: the pod's env says where the keystore password is" \
    grep -qz '^ES_KEYSTORE_PASSWORD_FILE=/etc/elasticsearch/keystore-password/password$' "$dir/pod/env/elasticsearch"
  local auth="elastic:$dir/elastic-password"
  start_node "$dir"
  check "$label: the node starts (security and TLS on) and turns green" wait_for_node "$dir" https "$auth"
  node_curl "$dir" https "$auth" /_nodes/_local >"$dir/root.json"
  check "$label: over https with the elastic account (bootstrap.password from the entrypoint)" \
    json_is "$dir/root.json" "$(node_is_the_pod "$(major_release "$major")")"
  node_curl "$dir" https - /_nodes/_local >/dev/null
  check "$label: without credentials: 401" status_is "$dir" 401
  printf 'wrong\n' >"$dir/wrong-password"
  node_curl "$dir" https "elastic:$dir/wrong-password" /_nodes/_local >/dev/null
  check "$label: with a wrong password: 401" status_is "$dir" 401
  node_curl "$dir" http - /_nodes/_local >/dev/null
  check "$label: plain http is refused" [ "$(cat "$dir/status")" != 200 ]
  node_curl "$dir" https "$auth" /_nodes/_local/http,transport >"$dir/nodes.json"
  check "$label: the node binds only the pod IP" json_is "$dir/nodes.json" "$(bound_to_pod_ip)"
  node_curl "$dir" https "$auth" /_ssl/certificates >"$dir/certificates.json"
  check "$label: the node's certificates are the copies in config/tls of the mounted ones" \
    json_is "$dir/certificates.json" '([.[].path] | unique) == ["tls/ca.pem", "tls/cert.pem"] and
      ([.[] | select(.path == "tls/cert.pem") | .subject_dn] | unique) == ["CN='"$TEST_POD"'"]'
  check "$label: the keystore has the configured password (the engine's tool says so)" \
    keystore_has_password "$dir"
  local names ok=false
  names=$(keystore_list "$dir" 2>/dev/null || true)
  if has_name "$names" keystore.seed && has_name "$names" bootstrap.password; then ok=true; fi
  check "$label: keystore.seed and bootstrap.password in it" "$ok"
  test_agent "$dir" "$label"
  test_member_tls "$dir" "$label" "$auth"
  if [[ $restart == true ]]; then
    # A restart of the pod's containers: the keystore is kept, not created again.
    stop_process "$NODE_PID"
    local digest
    digest=$(sha256sum "$dir/volumes/config/elasticsearch.keystore" | cut -d' ' -f1)
    start_node "$dir"
    check "$label: after a restart the node comes back" wait_for_node "$dir" https "$auth"
    check "$label: the restart kept the keystore as it was" \
      [ "$(sha256sum "$dir/volumes/config/elasticsearch.keystore" | cut -d' ' -f1)" = "$digest" ]
  fi
  check "$label: no secret in the containers' output" lacks_secrets "$dir/prepare.out" \
    "$(cat "$dir/elastic-password")" "$(cat "$dir/keystore-password/password")"
  check "$label: no secret in the node's output" lacks_secrets "$dir/node.out" \
    "$(cat "$dir/elastic-password")" "$(cat "$dir/keystore-password/password")"
  stop_process "$NODE_PID"
  NODE_PID=""
}

# The entrypoint's and prepare-config's refusals and the keystore cases a node start does not
# reach, with a stand-in for the node process only (it records what the entrypoint hands it on
# standard input); the keystore work before it is the engine's real tool.
test_startup_cases() {
  local dir=$WORK/cases label="start-up"
  mkdir -p "$dir/keystore-password"
  random_secret >"$dir/elastic-password"
  random_secret >"$dir/keystore-password/password"
  chgrp "$E2E_USER" "$dir/keystore-password/password"
  chmod 0440 "$dir/keystore-password/password"
  render_pod "$dir" false 8 --set keystore.passwordSecret=es-keystore-password
  make_pod_dirs "$dir" 8
  cat >"$dir/image/bin/elasticsearch" <<'STUB'
#!/usr/bin/env bash
# Stand-in for the node: the SHA-256 of the first line it is given.
IFS= read -r line || true
printf '%s' "$line" | sha256sum | cut -d' ' -f1 >"$STUB_OUT"
STUB
  chmod 0755 "$dir/image/bin/elasticsearch"
  : >"$dir/stub.out"
  chown "$E2E_USER" "$dir/stub.out"
  printf '%s\n' "ES_HOME=$dir/image" "ES_PATH_CONF=$dir/volumes/config" "CONFIG_DIR=$dir/volumes/config" \
    "TEMPLATE_DIR=$dir/pod/files/es-config" "ES_NETWORK_HOST=$TEST_IP" "ES_JAVA_HOME=$ES_JAVA_HOME" \
    "ES_KEYSTORE_PASSWORD_FILE=$dir/keystore-password/password" "STUB_OUT=$dir/stub.out" >"$dir/overrides"
  local entrypoint=$dir/pod/files/scripts/entrypoint.sh

  check "$label: entrypoint without prepare-config: refused, saying so" \
    refused_with "$dir" "elasticsearch.yml is missing (did prepare-config run?)" "$entrypoint"
  mkdir -p "$dir/empty-template"
  printf 'TEMPLATE_DIR=%s\n' "$dir/empty-template" | cat "$dir/overrides" - >"$dir/overrides-empty"
  check "$label: prepare-config without the rendered template: refused, saying so" \
    refused_with "$dir" "elasticsearch.yml is missing or empty (the component's config template)" \
    "$dir/pod/files/scripts/prepare-config.sh" -- "$dir/overrides-empty"
  run_container "$dir" prepare-config "$dir/overrides" "$dir/pod/files/scripts/prepare-config.sh" >/dev/null

  # A keystore without a password (as an image may bring one), and a password configured.
  run_container "$dir" elasticsearch "$dir/overrides" "$dir/image/bin/elasticsearch-keystore" create \
    </dev/null >/dev/null 2>&1
  run_container "$dir" elasticsearch "$dir/overrides" "$entrypoint" >"$dir/entrypoint.out" 2>&1 || true
  check "$label: an existing keystore without a password gets the configured one" \
    keystore_has_password "$dir"
  local names ok=false
  names=$(keystore_list "$dir" 2>/dev/null || true)
  has_name "$names" keystore.seed && ok=true
  check "$label: ... and keeps its entries (keystore.seed)" "$ok"
  check "$label: the node is handed the keystore password on standard input" \
    [ "$(cat "$dir/stub.out")" = "$(tr -d '\n' <"$dir/keystore-password/password" | sha256sum | cut -d' ' -f1)" ]
  check "$label: no secret in the entrypoint's output" lacks_secrets "$dir/entrypoint.out" \
    "$(cat "$dir/keystore-password/password")" "$(cat "$dir/elastic-password")"

  printf 'ES_KEYSTORE_PASSWORD_FILE=\n' | cat "$dir/overrides" - >"$dir/overrides-nopw"
  check "$label: a keystore with a password and none configured: refused, saying so" \
    refused_with "$dir" "has a password, but no keystore password is configured" "$entrypoint" -- "$dir/overrides-nopw"
  printf 'one\ntwo\n' >"$dir/two-lines"
  chown "$E2E_USER" "$dir/two-lines"
  printf 'ES_KEYSTORE_PASSWORD_FILE=%s\n' "$dir/two-lines" | cat "$dir/overrides" - >"$dir/overrides-two"
  check "$label: a password file of two lines: refused, saying so" \
    refused_with "$dir" "holds more than one line" "$entrypoint" -- "$dir/overrides-two"
  printf 'ES_KEYSTORE_PASSWORD_FILE=%s\n' "$dir/no-such-file" | cat "$dir/overrides" - >"$dir/overrides-missing"
  check "$label: a missing password file: refused, saying so" \
    refused_with "$dir" "is missing or unreadable" "$entrypoint" -- "$dir/overrides-missing"
  # The entrypoint wrote the values into the file: the rendered one again, as at a pod's start.
  run_container "$dir" prepare-config "$dir/overrides" "$dir/pod/files/scripts/prepare-config.sh" >/dev/null
  printf 'POD_IP=\n' | cat "$dir/overrides" - >"$dir/overrides-noip"
  check "$label: a placeholder whose variable is unset: refused, naming it" \
    refused_with "$dir" "elasticsearch.yml needs \${POD_IP}, which is not set" "$entrypoint" -- "$dir/overrides-noip"
  mkdir -p "$dir/half-tls"
  printf 'x\n' >"$dir/half-tls/ca.pem"
  printf 'x\n' >"$dir/half-tls/cert.pem"
  printf '%s\n' "TLS_ENABLED=true" "TLS_DIR=$dir/half-tls" | cat "$dir/overrides" - >"$dir/overrides-tls"
  check "$label: TLS on without key.pem: refused, naming the file" \
    refused_with "$dir" "TLS is on but $dir/half-tls/key.pem is missing or empty" "$entrypoint" -- "$dir/overrides-tls"
}

# refused_with DIR MESSAGE SCRIPT [-- OVERRIDES]: the script, in the engine container, exits
# non-zero with MESSAGE in its error output and does not reach the node.
refused_with() {
  local dir=$1 message=$2 script=$3 overrides=$1/overrides
  [[ ${4:-} != -- ]] || overrides=$5
  : >"$dir/stub.out"
  if run_container "$dir" elasticsearch "$overrides" "$script" >"$dir/refused.out" 2>&1; then
    return 1
  fi
  grep -qF -- "$message" "$dir/refused.out" && [[ ! -s $dir/stub.out ]]
}

# The three-node render (not started here: test_cluster.sh starts the three pods as a cluster):
# seeds and first masters.
test_three_node_render() {
  local dir=$WORK/three
  mkdir -p "$dir"
  random_secret >"$dir/elastic-password"
  render_pod "$dir" false 8
  jq '.replicas = 3' "$dir/facts.json" >"$dir/facts3.json"
  "$BIN/kbrender" -rendered "$dir/rendered.yaml" -facts "$dir/facts3.json" -out "$dir/pod3" >/dev/null
  /usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' \
    "$dir/pod3/files/es-config/elasticsearch.yml" >"$dir/three.json"
  check "3 replicas: discovery seeds are the three pods' DNS names, first masters their names" \
    json_is "$dir/three.json" '(.["discovery.seed_hosts"] | length) == 3 and
      .["discovery.seed_hosts"][2] == "es-test-elasticsearch-2.es-test-elasticsearch-headless.default.svc.cluster.local" and
      .["cluster.initial_master_nodes"] == ["es-test-elasticsearch-0","es-test-elasticsearch-1","es-test-elasticsearch-2"] and
      (has("discovery.type") | not)'
}

# test_other_major MAJOR [start-up]: the 7.x or 9.x pods, one after the other (beside the 8.x
# ones), after the start-up cases when asked (they need no IP: the 9.x lane has the fewest starts).
test_other_major() {
  local started=$SECONDS
  [[ ${2:-} != start-up ]] || test_startup_cases
  test_plain_pod "$1"
  test_tls_pod "$1" false
  echo "note: the $1.x lane took $((SECONDS - started)) s"
}

# major_can_run MAJOR: its distribution and its Java are here; otherwise a note says why its
# pod is not started.
major_can_run() {
  local home java
  home=$(major_home "$1") || return 1
  java=$(major_java "$1" || true)
  if [[ ! -x $home/bin/elasticsearch ]]; then
    echo "note: $home is missing (bash tests/e2e/lib/deps.sh fetches it): the $1.x pod is skipped"
    return 1
  fi
  if [[ ! -x $java/bin/java ]]; then
    echo "note: no JDK for Elasticsearch $1.x (${java:-none found}): the $1.x pod is skipped"
    return 1
  fi
}

main() {
  [[ $(id -u) -eq 0 ]] || {
    echo "run as root (the node runs as the $E2E_USER user)" >&2
    exit 2
  }
  if [[ ! -x $ES_HOME/bin/elasticsearch ]]; then
    echo "note: $ES_HOME is missing (make e2e-deps fetches it): the node test is skipped"
    echo "0 passed, 0 failed"
    return 0
  fi
  [[ -n $ES_JAVA_HOME ]] || {
    echo "no JDK 17+ under /usr/lib/jvm" >&2
    exit 2
  }
  bash "$ROOT/tests/chart/install-tools.sh"
  e2e_ensure_user
  WORK=$(mktemp -d /tmp/chart-node.XXXXXX)
  chmod 0755 "$WORK"
  [[ -z ${KEEP_WORK:-} ]] || echo "note: the pods' directories stay in $WORK"
  trap cleanup EXIT
  local started=$SECONDS
  if major_can_run 7; then run_beside 7.x "${TEST_IP_BY_MAJOR[7]}" test_other_major 7; fi
  if major_can_run 9; then
    run_beside 9.x "${TEST_IP_BY_MAJOR[9]}" test_other_major 9 start-up
  else
    test_startup_cases
  fi
  test_three_node_render
  test_plain_pod 8
  test_tls_pod 8 true
  echo "note: the 8.x lane took $((SECONDS - started)) s"
  finish_beside
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  ((FAILED == 0))
}

main "$@"

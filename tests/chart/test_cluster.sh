#!/usr/bin/env bash
# A 3-node Elasticsearch 8.x cluster started from the chart's own config and start-up, as
# test_node.sh starts one node: helm renders the 8.x ComponentDefinition and its templates;
# kbrender stands in for KubeBlocks (the vars of each of a 3-replica component's pods, the
# config and script templates, the containers' env) and for the kubelet; then prepare-config.sh
# and entrypoint.sh run as the engine's user and start the integ-test distribution (8.19.21).
# What it proves on real nodes: the rendered multi-node settings (discovery.seed_hosts from the
# pods' FQDNs, cluster.initial_master_nodes from their names) form one green cluster of the
# three pods with an elected master, and a pod started again has its first-start-only
# initial-masters block dropped by the entrypoint and rejoins the same cluster. Then the
# ComponentDefinition's memberLeave and memberJoin (config/member.sh), each run as kb-agent runs
# it in the member's pod: a leave that cannot drain fails within its bound naming the index; the
# leave of the elected master drains it, keeps an existing exclusion, takes it out of the voting
# configuration; again, it changes nothing; the node stopped, the other two stay green with every
# document; the node back, its join takes it out of both exclusions.
#
# Stand-ins, each named where it is made: each pod's IP is a loopback address (127.0.0.131,
# .132, .133), which the node binds instead of 0.0.0.0 (a pod has a network namespace of its
# own; this host is shared); the headless Service's DNS names are lines in /etc/hosts, in a
# marked block that is removed at every exit (the test refuses to run when such a block is
# there already: another run's, or a killed one's, to be removed by hand); the volumes are
# directories; the JVM is the host's; the heap is 512m.
#
# CHART_CLUSTER_NEGATIVE=no-hosts: the negative control. The names are not put in /etc/hosts,
# so the seeds do not resolve: the nodes must not form a cluster (within
# CHART_CLUSTER_FORM_TIMEOUT, 60 s then), and the test must fail.
# KEEP_WORK=1 keeps the pods' directories (their path is printed) for a look after a failure.
# Ends with 'N passed, M failed'; exits non-zero when a check failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/e2e/lib/env.sh
source "$ROOT/tests/e2e/lib/env.sh"

readonly CHART=$ROOT/addons/elasticsearch
readonly BIN=${CHART_CACHE:-$ROOT/.cache/chart}/bin
readonly POD_IPS=(127.0.0.131 127.0.0.132 127.0.0.133)
readonly HTTP_PORT=9200
readonly TRANSPORT_PORT=9300
readonly TEST_CLUSTER=es-test
readonly COMPONENT=$TEST_CLUSTER-elasticsearch
readonly HEADLESS=$COMPONENT-headless.default.svc.cluster.local
readonly NEGATIVE=${CHART_CLUSTER_NEGATIVE:-}
# On two busy cores three JVMs starting at once take one to three minutes to form a cluster.
if [[ $NEGATIVE == no-hosts ]]; then
  readonly FORM_TIMEOUT=${CHART_CLUSTER_FORM_TIMEOUT:-60}
else
  readonly FORM_TIMEOUT=${CHART_CLUSTER_FORM_TIMEOUT:-300}
fi
readonly HOSTS_FILE=/etc/hosts
# The block's markers carry this run's pid: the clean-up removes its own block and no other.
readonly HOSTS_MARK="es-addon tests/chart/test_cluster.sh"
readonly HOSTS_BEGIN="# BEGIN $HOSTS_MARK (pid $$): the chart cluster test's pod names, removed at its exit"
readonly HOSTS_END="# END $HOSTS_MARK (pid $$)"
PASSED=0
FAILED=0
WORK=""
HOSTS_ADDED=false
NODE_PIDS=("" "" "")

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
not() { ! "$@"; }

pod_name() { printf '%s-%d\n' "$COMPONENT" "$1"; }
pod_fqdn() { printf '%s.%s\n' "$(pod_name "$1")" "$HEADLESS"; }
pod_dir() { printf '%s/pod-%d\n' "$WORK" "$1"; }

# JSON arrays of the three pods' names, FQDNs and IPs, in ordinal order.
pods_json() { # pods_json name|fqdn|ip
  local i
  for i in 0 1 2; do
    case $1 in
      name) pod_name "$i" ;;
      fqdn) pod_fqdn "$i" ;;
      ip) printf '%s\n' "${POD_IPS[$i]}" ;;
    esac
  done | jq -R . | jq -cs .
}

# --- processes: only the nodes this run started ------------------------------------------------

# stop_nodes INDEX...: SIGTERM to each node's process group (container_exec starts each in a
# session of its own: the launcher and its server JVM go together), SIGKILL after 30 s.
stop_nodes() {
  local i pid pids=() n
  for i in "$@"; do
    pid=${NODE_PIDS[$i]}
    [[ -n $pid ]] || continue
    kill -TERM -- "-$pid" 2>/dev/null && pids+=("$pid")
    NODE_PIDS[i]=""
  done
  for ((n = 0; n < 60 && ${#pids[@]} > 0; n++)); do
    for i in "${!pids[@]}"; do kill -0 -- "-${pids[$i]}" 2>/dev/null || unset 'pids[i]'; done
    ((${#pids[@]} == 0)) || sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

cleanup() {
  stop_nodes 0 1 2
  hosts_remove
  if [[ -n $WORK && -z ${KEEP_WORK:-} ]]; then rm -rf -- "$WORK"; fi
}

# --- the headless Service's DNS names: a block in /etc/hosts --------------------------------

# with_hosts_lock COMMAND...: under an flock on /etc/hosts (another careful editor waits).
# The file is rewritten in place, never replaced: it may be a bind mount.
with_hosts_lock() {
  local fd
  exec {fd}<"$HOSTS_FILE"
  flock -w 10 "$fd" || {
    exec {fd}<&-
    echo "could not lock $HOSTS_FILE" >&2
    return 1
  }
  local rc=0
  "$@" || rc=$?
  exec {fd}<&-
  return "$rc"
}

hosts_has_any_block() { grep -qF "# BEGIN $HOSTS_MARK " "$HOSTS_FILE"; }

hosts_append() {
  local i last=""
  # A file without a final newline would glue the block's first line to its last.
  [[ ! -s $HOSTS_FILE ]] || last=$(tail -c1 "$HOSTS_FILE" | od -An -c | tr -d ' ')
  {
    [[ -z $last || $last == '\n' ]] || echo
    printf '%s\n' "$HOSTS_BEGIN"
    for i in 0 1 2; do printf '%s %s\n' "${POD_IPS[$i]}" "$(pod_fqdn "$i")"; done
    printf '%s\n' "$HOSTS_END"
  } >>"$HOSTS_FILE"
}

hosts_strip_own() {
  local kept
  kept=$(awk -v b="$HOSTS_BEGIN" -v e="$HOSTS_END" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' "$HOSTS_FILE")
  printf '%s\n' "$kept" >"$HOSTS_FILE"
}

# hosts_add: the three FQDNs to the pods' IPs, as the cluster's DNS would answer them.
hosts_add() {
  HOSTS_ADDED=true
  with_hosts_lock hosts_append
}

# hosts_remove: this run's block only, when it added one.
hosts_remove() {
  [[ $HOSTS_ADDED == true ]] || return 0
  if grep -qxF -- "$HOSTS_BEGIN" "$HOSTS_FILE"; then with_hosts_lock hosts_strip_own; fi
  HOSTS_ADDED=false
}

# fqdns_resolve_to_pods: getent (the resolver the JVM's lookups go through) maps each FQDN to
# its pod's IP.
fqdns_resolve_to_pods() {
  local i
  for i in 0 1 2; do
    [[ $(getent ahostsv4 "$(pod_fqdn "$i")" | awk 'NR == 1 {print $1}') == "${POD_IPS[$i]}" ]] || return 1
  done
}

fqdn_resolves() { getent hosts "$(pod_fqdn "$1")" >/dev/null; }

# refuse_unless_free: no stale block, no other source for the names, no one on the addresses.
refuse_unless_free() {
  local i ip
  if hosts_has_any_block; then
    echo "$HOSTS_FILE holds a block of this test already (another run's, or one that was killed):" >&2
    grep -F "$HOSTS_MARK" "$HOSTS_FILE" >&2
    echo "remove it by hand once no other run is going; nothing was changed" >&2
    exit 2
  fi
  for i in 0 1 2; do
    if fqdn_resolves "$i"; then
      echo "$(pod_fqdn "$i") resolves already (not from this test's block): refusing" >&2
      exit 2
    fi
  done
  for ip in "${POD_IPS[@]}"; do
    if ss -Hltn "src $ip" | grep -q .; then
      echo "something listens on $ip already: refusing" >&2
      ss -Hltn "src $ip" >&2
      exit 2
    fi
  done
}

# --- the stand-in for KubeBlocks: render, then kbrender per pod --------------------------------

# render_pods: the 8.x ComponentDefinition for a Cluster of 3 replicas; KubeBlocks renders the
# config per component and the env per pod: POD_DIR/pod/files/<volume>/..., POD_DIR/pod/env/<container>.
render_pods() {
  local i dir
  "$BIN/helm" template es "$CHART" --namespace default --show-only templates/cmpd-8.yaml \
    --show-only templates/configmaps.yaml >"$WORK/rendered.yaml"
  openssl rand -hex 16 >"$WORK/elastic-password"
  for i in 0 1 2; do
    dir=$(pod_dir "$i")
    mkdir -p "$dir"
    # What KubeBlocks knows of the pod: the Cluster, the component, the account's Secret.
    jq -n --arg cluster "$TEST_CLUSTER" --arg pod "$(pod_name "$i")" --arg ip "${POD_IPS[$i]}" \
      --arg release "$E2E_ELASTICSEARCH_VERSION" --rawfile password "$WORK/elastic-password" \
      '{clusterName: $cluster, namespace: "default", component: "elasticsearch", replicas: 3,
        serviceVersion: $release, clusterDomain: "cluster.local", tlsEnabled: false,
        credentials: {elastic: {username: "elastic", password: ($password | rtrimstr("\n"))}},
        podName: $pod, podIP: $ip}' >"$dir/facts.json"
    chmod 0600 "$dir/facts.json"
    "$BIN/kbrender" -rendered "$WORK/rendered.yaml" -facts "$dir/facts.json" -out "$dir/pod" >/dev/null
  done
}

# yaml_json FILE: the YAML file as JSON (Debian's Python with PyYAML, as install-tools sets up).
yaml_json() {
  /usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$1"
}

# seeds_are_the_pods FILE: elasticsearch.yml's seeds are the three FQDNs, its initial masters
# the three pod names, and it is not single-node.
seeds_are_the_pods() {
  yaml_json "$1" | jq -e --argjson fqdns "$(pods_json fqdn)" --argjson names "$(pods_json name)" \
    '.["discovery.seed_hosts"] == $fqdns and .["cluster.initial_master_nodes"] == $names and
      (has("discovery.type") | not)' >/dev/null
}

same_files() { cmp -s "$1" "$2" && cmp -s "$1" "$3"; }

# --- the pods' directories and containers ------------------------------------------------------

# make_pod_dirs INDEX: the image (a copy of the distribution: the node writes its data
# directory as the pod writes its data volume) and the config volume.
make_pod_dirs() {
  local dir
  dir=$(pod_dir "$1")
  mkdir -p "$dir/image" "$dir/volumes/config"
  cp -a "$ES_HOME/." "$dir/image/"
  rm -f "$dir/image/.e2e-installed"
  rm -rf "$dir/image/data" "$dir/image/logs"
  mkdir -p "$dir/image/data" "$dir/image/logs"
  # The volumes the engine's user writes (fsGroup in the pod); the image stays root's.
  chown -R "$E2E_USER:$E2E_USER" "$dir/image/data" "$dir/image/logs" "$dir/volumes"
  chmod 0750 "$dir/volumes/config"
  # The stand-ins, in every container from the engine's image: the image's paths and JDK, where
  # prepare-config finds its volumes, the pod's own network namespace (bind its IP), the heap.
  printf '%s\n' "ES_HOME=$dir/image" "ES_PATH_CONF=$dir/volumes/config" "ES_JAVA_HOME=$ES_JAVA_HOME" \
    "CONFIG_DIR=$dir/volumes/config" "TEMPLATE_DIR=$dir/pod/files/es-config" \
    "ES_NETWORK_HOST=${POD_IPS[$1]}" "ES_JAVA_OPTS=-Xms512m -Xmx512m $E2E_EXTRA_JAVA_OPTS" >"$dir/overrides"
}

# container_exec DIR CONTAINER COMMAND...: becomes COMMAND, as the engine's user, with exactly
# the container's environment (kbrender's), then the stand-ins' overrides. In a session of its
# own, whose id is the process's. Run it in a subshell: `container_exec ... &`.
container_exec() {
  local dir=$1 name=$2 v kv
  shift 2
  for v in $(compgen -e); do unset "$v"; done
  while IFS= read -r -d '' kv; do export "${kv?}"; done <"$dir/pod/env/$name"
  while IFS= read -r kv; do [[ -z $kv ]] || export "${kv?}"; done <"$dir/overrides"
  export PATH=/usr/local/bin:/usr/bin:/bin
  exec setsid "${E2E_AS_ESNODE[@]}" "$@"
}

# start_node INDEX: the pod's start: prepare-config (its init container), then the entrypoint,
# in the background. Each start's output is kept apart (start-N.out).
start_node() {
  local i=$1 dir n
  dir=$(pod_dir "$i")
  n=$(find "$dir" -maxdepth 1 -name 'start-*.out' | wc -l)
  (container_exec "$dir" prepare-config "$dir/pod/files/scripts/prepare-config.sh") >"$dir/prepare.out" 2>&1
  container_exec "$dir" elasticsearch "$dir/pod/files/scripts/entrypoint.sh" >"$dir/start-$((n + 1)).out" 2>&1 &
  NODE_PIDS[i]=$!
}

last_start_out() { find "$(pod_dir "$1")" -maxdepth 1 -name 'start-*.out' | sort | tail -n 1; }

# --- talking to the nodes ----------------------------------------------------------------------

# node_curl INDEX PATH: GET from that pod's own address; the body on stdout, the status in
# POD_DIR/status.
node_curl() {
  local dir
  dir=$(pod_dir "$1")
  curl -sS --connect-timeout 3 --max-time 20 -o "$dir/body" -w '%{http_code}' \
    "http://${POD_IPS[$1]}:$HTTP_PORT$2" >"$dir/status" 2>"$dir/curl.err" || true
  cat "$dir/body" 2>/dev/null || true
}

status_is() { [[ $(cat "$(pod_dir "$1")/status") == "$2" ]]; }

# green_with INDEX NODES: the node's answer is a green cluster es-test of NODES nodes.
green_with() {
  local health
  health=$(node_curl "$1" "/_cluster/health?wait_for_status=green&wait_for_nodes=$2&timeout=1s")
  status_is "$1" 200 &&
    jq -e --arg c "$TEST_CLUSTER" --argjson n "$2" \
      '.cluster_name == $c and .status == "green" and .number_of_nodes == $n and .timed_out == false' \
      <<<"$health" >/dev/null 2>&1
}

# wait_for_green SECONDS NODES INDEX...: each listed node says green with NODES nodes; false
# when one exits or the time is up (then each node's last lines).
wait_for_green() {
  local timeout=$1 nodes=$2 i ok
  local deadline=$((SECONDS + timeout))
  shift 2
  while ((SECONDS < deadline)); do
    ok=true
    for i in "$@"; do
      if [[ -z ${NODE_PIDS[$i]} ]] || ! kill -0 "${NODE_PIDS[$i]}" 2>/dev/null; then
        echo "$(pod_name "$i") exited; its output:" >&2
        tail -n 20 "$(last_start_out "$i")" >&2
        return 1
      fi
      green_with "$i" "$nodes" || ok=false
    done
    [[ $ok == false ]] || return 0
    sleep 1
  done
  for i in "$@"; do
    echo "$(pod_name "$i"): no green cluster of $nodes nodes in $timeout s; its last answer: HTTP" \
      "$(cat "$(pod_dir "$i")/status") $(head -c 200 "$(pod_dir "$i")/body" 2>/dev/null)" >&2
    echo "  its last warning: $(grep -F '][WARN ]' "$(last_start_out "$i")" | tail -n 1 | cut -c1-300)" >&2
  done
  return 1
}

# lists_the_pods INDEX: GET /_cat/nodes from that pod's address names the three pods at their
# IPs, one of them the elected master (*).
lists_the_pods() {
  node_curl "$1" '/_cat/nodes?format=json&h=name,ip,master' >"$(pod_dir "$1")/cat-nodes.json"
  status_is "$1" 200 &&
    jq -e --argjson names "$(pods_json name)" --argjson ips "$(pods_json ip)" \
      '([.[].name] | sort) == $names and ([.[].ip] | sort) == $ips and
        ([.[] | select(.master == "*")] | length) == 1' "$(pod_dir "$1")/cat-nodes.json" >/dev/null
}

# master_of INDEX: the elected master's name, as that node sees it (empty when none).
master_of() {
  local body
  body=$(node_curl "$1" '/_cat/master?format=json')
  if status_is "$1" 200; then jq -r '.[0].node // empty' <<<"$body" 2>/dev/null || true; fi
}

# one_master_among_pods: the three nodes name the same master, and it is one of the pods.
one_master_among_pods() {
  local masters
  masters=$(for i in 0 1 2; do master_of "$i"; done | sort -u)
  [[ $(wc -l <<<"$masters") == 1 ]] && jq -e --arg m "$masters" --argjson names "$(pods_json name)" \
    'any($names[]; . == $m)' <<<null >/dev/null
}

# cluster_uuid INDEX: the cluster's UUID in that node's own cluster state.
cluster_uuid() {
  node_curl "$1" '/_cluster/state/metadata?local=true&filter_path=metadata.cluster_uuid' |
    jq -r '.metadata.cluster_uuid // empty' 2>/dev/null || true
}

# one_cluster_uuid [UUID]: the three nodes hold one committed cluster UUID (that one, if given).
one_cluster_uuid() {
  local uuids
  uuids=$(for i in 0 1 2; do cluster_uuid "$i"; done | sort -u)
  [[ $(wc -l <<<"$uuids") == 1 && -n $uuids && $uuids != _na_ ]] && [[ -z ${1:-} || $uuids == "$1" ]]
}

# settings_in_force INDEX: the node's own flat settings (discovery, initial masters, binding).
settings_in_force() {
  node_curl "$1" '/_nodes/_local/settings,http,transport?flat_settings=true' >"$(pod_dir "$1")/settings.json"
}

# runs_the_fqdn_seeds INDEX: the node runs with the FQDNs as its seeds and the pod names as
# its initial masters, binds only its pod IP and publishes it.
runs_the_fqdn_seeds() {
  local ip=${POD_IPS[$1]}
  settings_in_force "$1"
  jq -e --argjson fqdns "$(pods_json fqdn)" --argjson names "$(pods_json name)" \
    --arg http "$ip:$HTTP_PORT" --arg transport "$ip:$TRANSPORT_PORT" --arg ip "$ip" \
    '.nodes[] | .settings["discovery.seed_hosts"] == $fqdns and
      .settings["cluster.initial_master_nodes"] == $names and .ip == $ip and
      .http.bound_address == [$http] and .transport.bound_address == [$transport]' \
    "$(pod_dir "$1")/settings.json" >/dev/null
}

# runs_without_initial_masters INDEX: the node runs with the FQDN seeds and no initial masters.
runs_without_initial_masters() {
  settings_in_force "$1"
  jq -e --argjson fqdns "$(pods_json fqdn)" \
    '.nodes[] | .settings["discovery.seed_hosts"] == $fqdns and
      (.settings | has("cluster.initial_master_nodes") | not)' "$(pod_dir "$1")/settings.json" >/dev/null
}

# config_has_initial_masters INDEX: the pod's elasticsearch.yml (its config volume) still holds
# the initial-masters block, with its markers.
config_has_initial_masters() {
  local file
  file=$(pod_dir "$1")/volumes/config/elasticsearch.yml
  grep -qx '# INITIAL_MASTER_NODES_BEGIN' "$file" && grep -qx 'cluster.initial_master_nodes:' "$file"
}

config_lacks_initial_masters() {
  local file
  file=$(pod_dir "$1")/volumes/config/elasticsearch.yml
  ! grep -q 'INITIAL_MASTER_NODES\|cluster.initial_master_nodes' "$file" &&
    grep -qx 'discovery.seed_hosts:' "$file"
}

# is_another_pod NAME OLD: NAME is one of the pods, and not OLD.
is_another_pod() { [[ $1 != "$2" ]] && index_of_pod "$1" >/dev/null; }

index_of_pod() { # index_of_pod NAME
  local i
  for i in 0 1 2; do [[ $(pod_name "$i") != "$1" ]] || { printf '%d\n' "$i"; return 0; }; done
  return 1
}

# --- the test ----------------------------------------------------------------------------------

# test_render: the three pods' config and env, and the checks' own negative control.
test_render() {
  local d0 d1 d2
  render_pods
  d0=$(pod_dir 0)/pod/files/es-config/elasticsearch.yml
  d1=$(pod_dir 1)/pod/files/es-config/elasticsearch.yml
  d2=$(pod_dir 2)/pod/files/es-config/elasticsearch.yml
  check "render: the three pods get one elasticsearch.yml (KubeBlocks renders it per component)" \
    same_files "$d0" "$d1" "$d2"
  check "render: seeds are the three pods' FQDNs, initial masters their names, not single-node" \
    seeds_are_the_pods "$d0"
  # The seed check must be able to fail: one seed in another namespace.
  sed 's/es-test-elasticsearch-2\.es-test-elasticsearch-headless\.default\./&x/' "$d0" >"$WORK/wrong-seeds.yml"
  check "render: negative control: the seed check rejects an elasticsearch.yml with one wrong seed" \
    not seeds_are_the_pods "$WORK/wrong-seeds.yml"
  local i ok=true
  for i in 0 1 2; do
    grep -qzx "POD_NAME=$(pod_name "$i")" "$(pod_dir "$i")/pod/env/elasticsearch" &&
      grep -qzx "POD_IP=${POD_IPS[$i]}" "$(pod_dir "$i")/pod/env/elasticsearch" || ok=false
  done
  check "render: each pod's engine container has its own POD_NAME and POD_IP" "$ok"
}

# test_first_start: the three pods started at once, as the InstanceSet starts them.
test_first_start() {
  local i
  if [[ $NEGATIVE == no-hosts ]]; then
    echo "note: negative control: the pods' names are NOT put in $HOSTS_FILE; the cluster must not form"
  else
    hosts_add
  fi
  check "the three FQDNs resolve to the pods' IPs (the block in $HOSTS_FILE)" fqdns_resolve_to_pods
  for i in 0 1 2; do make_pod_dirs "$i"; done
  for i in 0 1 2; do start_node "$i"; done
  local started=$SECONDS
  if ! wait_for_green "$FORM_TIMEOUT" 3 0 1 2; then
    fail "the three nodes form a green cluster of 3 within $FORM_TIMEOUT s"
    return 1
  fi
  pass "the three nodes form a green cluster of 3 (in $((SECONDS - started)) s)"
  for i in 0 1 2; do
    check "$(pod_name "$i") (asked at ${POD_IPS[$i]}): _cat/nodes lists the three pods at their IPs, one master" \
      lists_the_pods "$i"
  done
  check "the three nodes name one elected master, one of the pods" one_master_among_pods
  check "the three nodes hold one cluster UUID (one cluster, not three)" one_cluster_uuid
  for i in 0 1 2; do
    check "$(pod_name "$i"): runs with the FQDN seeds and the pod names as initial masters, bound to its IP" \
      runs_the_fqdn_seeds "$i"
  done
  for i in 0 1 2; do
    check "$(pod_name "$i"): its elasticsearch.yml keeps the initial-masters block at the first start" \
      config_has_initial_masters "$i"
  done
}

# test_restart: the elected master's pod started again (init container, then the entrypoint).
test_restart() {
  local master m other uuid
  master=$(master_of 0)
  m=$(index_of_pod "$master") || {
    fail "restart: the elected master ($master) is one of the pods"
    return 1
  }
  other=$(((m + 1) % 3))
  uuid=$(cluster_uuid 0)
  stop_nodes "$m"
  local deadline=$((SECONDS + 90)) newmaster=""
  while ((SECONDS < deadline)); do
    newmaster=$(master_of "$other")
    [[ -z $newmaster || $newmaster == "$master" ]] || break
    sleep 1
  done
  check "restart: with $master stopped, the other two elect a new master (${newmaster:-none})" \
    is_another_pod "$newmaster" "$master"
  start_node "$m"
  local started=$SECONDS
  check "restart: $master starts again and the cluster is green with 3 nodes" \
    wait_for_green 180 3 0 1 2
  echo "note: the restarted node rejoined in $((SECONDS - started)) s"
  check "restart: the entrypoint says it dropped cluster.initial_master_nodes" \
    grep -qF "cluster.initial_master_nodes dropped" "$(last_start_out "$m")"
  check "restart: $master's elasticsearch.yml has no initial-masters block, still the FQDN seeds" \
    config_lacks_initial_masters "$m"
  check "restart: $master runs without cluster.initial_master_nodes, with the FQDN seeds" \
    runs_without_initial_masters "$m"
  check "restart: $master rejoined the same cluster (its UUID unchanged on all three)" \
    one_cluster_uuid "$uuid"
  check "restart: $(pod_name "$other") lists the three pods again" lists_the_pods "$other"
}

# --- the membership actions, run as kb-agent runs them -----------------------------------------

# es_req INDEX METHOD PATH [BODY [CONTENT_TYPE]]: the test's own request to that pod's node
# (security is off without TLS); the answer on stdout; fails unless it is 2xx.
es_req() {
  local args=(--silent --show-error --fail-with-body --connect-timeout 3 --max-time 60
    --request "$2" --url "http://${POD_IPS[$1]}:$HTTP_PORT$3")
  [[ -z ${4:-} ]] || args+=(--header "Content-Type: ${5:-application/json}" --data-binary "$4")
  curl "${args[@]}"
}

# action_exec DIR ACTION [NAME=VALUE...]: becomes the rendered action's command as kb-agent runs
# it in that pod: exactly the environment kbrender wrote for it (the action's parameters, then
# kb-agent's container env), then the given overrides, as an unprivileged user. The stand-in:
# the engine container's scripts volume (/mnt/scripts, which kb-agent mounts through
# exec.container) is the pod's rendered scripts directory. Run it in a subshell.
action_exec() {
  local dir=$1 name=$2 v kv arg argv=()
  shift 2
  for v in $(compgen -e); do unset "$v"; done
  while IFS= read -r -d '' kv; do export "${kv?}"; done <"$dir/pod/actions/$name/env"
  for kv in "$@"; do export "${kv?}"; done
  export PATH=/usr/local/bin:/usr/bin:/bin
  while IFS= read -r -d '' arg; do
    argv+=("${arg/#\/mnt\/scripts\//$dir/pod/files/scripts/}")
  done <"$dir/pod/actions/$name/command"
  # kb-agent kills an action after its timeoutSeconds (at most 60).
  exec timeout --kill-after=5 60 "${E2E_AS_ESNODE[@]}" "${argv[@]}"
}

# run_action INDEX ACTION [NAME=VALUE...]: the action in pod INDEX, waited for. Sets ACTION_RC,
# ACTION_SECONDS and ACTION_OUT (its stdout in ACTION_OUT.out, stderr in ACTION_OUT.err).
ACTION_RUNS=0
run_action() {
  local i=$1 name=$2 dir start
  shift 2
  dir=$(pod_dir "$i")
  ACTION_RUNS=$((ACTION_RUNS + 1))
  ACTION_OUT=$dir/$name-$ACTION_RUNS
  start=$SECONDS
  ACTION_RC=0
  (action_exec "$dir" "$name" "$@") >"$ACTION_OUT.out" 2>"$ACTION_OUT.err" || ACTION_RC=$?
  ACTION_SECONDS=$((SECONDS - start))
  echo "note: $name in $(pod_name "$i"): exit $ACTION_RC in $ACTION_SECONDS s: $(cat "$ACTION_OUT.out" "$ACTION_OUT.err" | tail -n 1 | cut -c1-400)"
}

rc_is() { [[ $ACTION_RC == "$1" ]]; }
# action_said REGEX...: the last action's output matches every one.
action_said() {
  local re
  for re in "$@"; do grep -qE -- "$re" "$ACTION_OUT.out" "$ACTION_OUT.err" || return 1; done
}

# allocation_exclusion INDEX: the persistent cluster.routing.allocation.exclude._name ("" if none).
allocation_exclusion() {
  es_req "$1" GET '/_cluster/settings?flat_settings=true' |
    jq -r '.persistent["cluster.routing.allocation.exclude._name"] // ""'
}

# voting_exclusion_names INDEX: the voting configuration exclusions' names, comma-separated.
voting_exclusion_names() {
  es_req "$1" GET '/_cluster/state/metadata?filter_path=metadata.cluster_coordination.voting_config_exclusions' |
    jq -r '[.metadata.cluster_coordination.voting_config_exclusions // [] | .[].node_name] | join(",")'
}

# in_voting_config INDEX NAME: the node of that name is in the last committed voting configuration.
in_voting_config() {
  local id
  id=$(es_req "$1" GET "/_nodes/$2?filter_path=nodes.*.name" | jq -r '.nodes // {} | keys[0] // empty')
  [[ -n $id ]] && es_req "$1" GET '/_cluster/state/metadata?filter_path=metadata.cluster_coordination.last_committed_config' |
    jq -e --arg id "$id" '.metadata.cluster_coordination.last_committed_config | index([$id]) != null' >/dev/null
}

# shard_nodes INDEX [INDEX_PATTERN]: the names of the nodes holding shard copies, sorted, unique.
shard_nodes() {
  es_req "$1" GET "/_cat/shards/${2:-}?format=json&h=node" |
    jq -r '[.[].node // empty | split(" ")[0]] | unique | .[]'
}

holds_no_shard() { ! shard_nodes "$1" | grep -qxF -- "$2"; }
holds_shards_of() { [[ $(shard_nodes "$1" "$2" | paste -sd,) == "$3" ]]; }

# no_red_index INDEX: the cluster and every index green or yellow.
no_red_index() {
  es_req "$1" GET '/_cluster/health?level=indices' |
    jq -e '.status != "red" and all(.indices[]; .status != "red")' >/dev/null
}

doc_count_is() { [[ $(es_req "$1" GET "/$2/_count" | jq -r .count) == "$3" ]]; }

wait_until() { # wait_until SECONDS COMMAND...: the command succeeds within SECONDS
  local deadline=$((SECONDS + $1))
  shift
  until "$@" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# test_member_actions: KubeBlocks' memberLeave and memberJoin (config/member.sh), rendered and
# run with the env kb-agent gives, on the three real nodes: first a leave that cannot drain,
# then a leave of the elected master, its stop, and its return.
test_member_actions() {
  local x y others=() i docs=300 retired=es-test-retired started=$SECONDS
  x=$(index_of_pod "$(master_of 0)") || {
    fail "member: the elected master is one of the pods"
    return 1
  }
  y=$(((x + 1) % 3))
  for i in 0 1 2; do [[ $i == "$x" ]] || others+=("$i"); done
  local X Y
  X=$(pod_name "$x")
  Y=$(pod_name "$y")
  # An index with shard copies on every node, its documents, and an exclusion of another name
  # already in place (an operator's, to be kept).
  es_req 0 PUT /leave-docs '{"settings": {"number_of_shards": 3, "number_of_replicas": 1}}' >/dev/null
  # Each document carries 200 random hex digits: the shards hold data that takes time to move
  # once recoveries are throttled (below).
  es_req 0 POST '/leave-docs/_bulk?refresh=true' \
    "$(openssl rand -hex $((docs * 100)) | fold -w 200 | jq -Rc '{index: {}}, {pad: .}')"$'\n' \
    application/x-ndjson >/dev/null
  es_req 0 PUT /_cluster/settings '{"persistent": {"cluster.routing.allocation.exclude._name": "'"$retired"'"}}' >/dev/null
  check "member: leave-docs (3 shards, 1 replica, $docs documents) is green with copies on all three nodes" \
    wait_until 60 holds_shards_of 0 leave-docs "$(pods_json name | jq -r 'join(",")')"

  # A scale-in to 0 replicas (COMPONENT_REPLICAS is the new count): every pod leaves, nothing
  # is changed.
  run_action "$y" memberLeave COMPONENT_REPLICAS=0
  check "member: a leave of $Y in a scale-in to 0 exits 0, excluding nothing" \
    [ "$ACTION_RC:$(allocation_exclusion 0):$(voting_exclusion_names 0)" = "0:$retired:" ]

  # A leave that cannot drain: an index pinned to the node.
  es_req 0 PUT /leave-pinned '{"settings": {"number_of_shards": 1, "number_of_replicas": 0,
    "index.routing.allocation.require._name": "'"$Y"'"}}' >/dev/null
  wait_until 60 holds_shards_of 0 leave-pinned "$Y" || true
  run_action "$y" memberLeave MEMBER_ACTION_TIMEOUT=20 MEMBER_VOTING_RESERVE=5
  check "member: a leave of $Y that cannot drain (leave-pinned requires it) exits non-zero" not rc_is 0
  check "member: ... within its bound (MEMBER_ACTION_TIMEOUT=20 s; took $ACTION_SECONDS s)" \
    [ "$ACTION_SECONDS" -le 25 ]
  check "member: ... naming the count of shard copies left and the index leave-pinned" \
    action_said "[0-9]+ shard copies are still on $Y after [0-9]+ s, of indices: .*leave-pinned"
  check "member: ... $Y is excluded from allocation beside the existing exclusion" \
    [ "$(allocation_exclusion 0)" = "$retired,$Y" ]
  check "member: ... and, not drained, not excluded from voting" [ -z "$(voting_exclusion_names 0)" ]
  es_req 0 DELETE /leave-pinned >/dev/null
  # The scale-in given up: a join of the same name (as after a scale-out) takes it back.
  run_action "$y" memberJoin
  check "member: a join of $Y exits 0" rc_is 0
  check "member: ... and takes $Y out of the allocation exclusion, the existing one kept" \
    [ "$(allocation_exclusion 0)" = "$retired" ]
  check "member: the cluster is green with 3 nodes again" wait_for_green 120 3 0 1 2

  # The leave of the elected master, as a scale-in calls it. Recoveries throttled to 10 KiB/s:
  # its copies take seconds to move, longer than the voting step, so that a leave that did not
  # wait for them would leave some behind.
  es_req 0 PUT /_cluster/settings '{"persistent": {"indices.recovery.max_bytes_per_sec": "10kb"}}' >/dev/null
  run_action "$x" memberLeave
  check "member: the leave of $X (the elected master) exits 0" rc_is 0
  check "member: ... $X holds no shard copy at its exit" holds_no_shard "${others[0]}" "$X"
  check "member: ... it waited for copies to move" action_said "waiting: [0-9]+ shard copies still on $X"
  es_req "${others[0]}" PUT /_cluster/settings '{"persistent": {"indices.recovery.max_bytes_per_sec": null}}' >/dev/null
  check "member: ... no index is red" no_red_index "${others[0]}"
  check "member: ... leave-docs still has its $docs documents" doc_count_is "${others[0]}" leave-docs "$docs"
  check "member: ... $X is added to the allocation exclusion, the existing one kept" \
    [ "$(allocation_exclusion "${others[0]}")" = "$retired,$X" ]
  check "member: ... $X is in the voting configuration exclusions" \
    [ "$(voting_exclusion_names "${others[0]}")" = "$X" ]
  check "member: ... $X is out of the voting configuration" not in_voting_config "${others[0]}" "$X"
  check "member: ... another pod is the elected master" is_another_pod "$(master_of "${others[0]}")" "$X"
  run_action "$x" memberLeave
  check "member: the same leave again (KubeBlocks calls again) exits 0" rc_is 0
  check "member: ... changing nothing: one allocation exclusion of $X, one voting exclusion" \
    [ "$(allocation_exclusion "${others[0]}"):$(voting_exclusion_names "${others[0]}")" = "$retired,$X:$X" ]
  check "member: ... and says so" action_said "allocation exclusion: nothing to change" "is excluded already"

  # The pod removed: the other two stay green, nothing lost.
  stop_nodes "$x"
  check "member: with $X stopped, the other two are green with 2 nodes" wait_for_green 120 2 "${others[@]}"
  check "member: ... leave-docs still has its $docs documents" doc_count_is "${others[0]}" leave-docs "$docs"
  run_action "$x" memberLeave
  check "member: the leave again with $X gone (reached through the other pods) exits 0" rc_is 0
  check "member: ... finding $X out of the cluster, through another pod" \
    action_said "$X is not in the cluster" \
    "reaching the cluster at http://($(pod_name "${others[0]}")|$(pod_name "${others[1]}"))\\."
  # A primary whose only copy would be on the gone pod's volume (red): the leave waits.
  es_req "${others[0]}" PUT "/leave-red?wait_for_active_shards=0" "{\"settings\": {\"number_of_shards\": 1, \"number_of_replicas\": 0,
    \"index.routing.allocation.require._name\": \"$X\"}}" >/dev/null
  run_action "$x" memberLeave
  check "member: with $X gone and a primary unassigned (red), its leave exits non-zero" rc_is 1
  check "member: ... saying the cluster is red and what the scale-in would delete" \
    action_said "$X is not in the cluster and the cluster is red: an unassigned primary's only copy may be on $X's volume"
  es_req "${others[0]}" DELETE /leave-red >/dev/null

  # A pod of that name again (a scale-out; its data kept, so its node id, which the voting
  # exclusion names): memberJoin takes it out of both exclusions.
  start_node "$x"
  check "member: $X starts again and the cluster is green with 3 nodes" wait_for_green 180 3 0 1 2
  run_action "$x" memberJoin
  check "member: the join of $X exits 0" rc_is 0
  check "member: ... $X is out of the allocation exclusion, the existing one kept" \
    [ "$(allocation_exclusion 0)" = "$retired" ]
  check "member: ... and out of the voting exclusions" [ -z "$(voting_exclusion_names 0)" ]
  check "member: ... $X is back in the voting configuration" wait_until 60 in_voting_config 0 "$X"
  es_req 0 PUT /join-spread '{"settings": {"number_of_shards": 3, "number_of_replicas": 0,
    "index.routing.allocation.total_shards_per_node": 1}}' >/dev/null
  check "member: ... $X takes shards again (an index of 3 shards, one per node, is green)" \
    wait_until 60 holds_shards_of 0 join-spread "$(pods_json name | jq -r 'join(",")')"
  echo "note: the membership actions' tests took $((SECONDS - started)) s"
}

# render_pod_replicas INDEX REPLICAS: what KubeBlocks renders for that pod once the component
# has REPLICAS (a scale): its files and env, its actions' env.
render_pod_replicas() {
  local dir
  dir=$(pod_dir "$1")
  jq --argjson r "$2" '.replicas = $r' "$dir/facts.json" >"$dir/facts.new"
  chmod 0600 "$dir/facts.new"
  mv -f "$dir/facts.new" "$dir/facts.json"
  "$BIN/kbrender" -rendered "$WORK/rendered.yaml" -facts "$dir/facts.json" -out "$dir/pod" >/dev/null
}

# one_node_config FILE: elasticsearch.yml of one replica: no seeds, the pod itself the initial
# master, no discovery.type.
one_node_config() {
  yaml_json "$1" | jq -e --arg pod "$(pod_name 0)" '.["discovery.seed_hosts"] == [] and
    .["cluster.initial_master_nodes"] == [$pod] and (has("discovery.type") | not)' >/dev/null
}

# wait_exit INDEX SECONDS: the pod's node process has exited within SECONDS.
wait_exit() {
  local pid=${NODE_PIDS[$1]} deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
  NODE_PIDS[$1]=""
}

# voters_are INDEX NAMES: the last committed voting configuration is exactly those nodes' ids.
voters_are() {
  local ids
  ids=$(es_req "$1" GET '/_nodes?filter_path=nodes.*.name' |
    jq -c --argjson names "$2" '[.nodes | to_entries[] | select(.value.name as $n | $names | index([$n])) | .key] | sort')
  es_req "$1" GET '/_cluster/state/metadata?filter_path=metadata.cluster_coordination.last_committed_config' |
    jq -e --argjson ids "$ids" '(.metadata.cluster_coordination.last_committed_config | sort) == $ids' >/dev/null
}

# test_scale_to_one: the component scaled from 3 replicas to 1 as KubeBlocks 1.0.2 goes about
# it: the config is re-rendered for one replica (no seeds), memberLeave of pods 1 and 2 runs,
# and once both have succeeded one update of the workload removes the two pods and restarts
# pod 0 on the new config (a leave that fails stops the reconcile before it). First a negative
# control: the render before this chart's fix, discovery.type single-node, on pod 0 restarted
# while its voting configuration lists the others.
test_scale_to_one() {
  local started=$SECONDS dir0 fqdn0 j
  dir0=$(pod_dir 0)
  fqdn0=$(pod_fqdn 0)
  # What the README asks before a scale-in below replicas + 1 nodes.
  es_req 0 DELETE /join-spread >/dev/null
  es_req 0 PUT /leave-docs/_settings '{"index": {"number_of_replicas": 0}}' >/dev/null
  render_pod_replicas 0 1
  check "scale to 1: $(pod_name 0)'s re-rendered elasticsearch.yml has no seeds, itself the initial master" \
    one_node_config "$dir0/pod/files/es-config/elasticsearch.yml"
  cp "$dir0/pod/files/es-config/elasticsearch.yml" "$WORK/one-replica.yml"
  stop_nodes 0
  sed -e 's/^discovery.seed_hosts: \[\]$/discovery.type: single-node/' \
    -e '/^# INITIAL_MASTER_NODES_BEGIN$/,/^# INITIAL_MASTER_NODES_END$/d' "$WORK/one-replica.yml" \
    >"$dir0/pod/files/es-config/elasticsearch.yml"
  start_node 0
  local what="scale to 1: negative control: with discovery.type single-node the node exits, its voting configuration listing the others"
  if wait_exit 0 180; then pass "$what"; else
    fail "$what"
    stop_nodes 0
  fi
  check "scale to 1: ... saying it does not have quorum in the voting configuration" \
    grep -q "does not have quorum in voting configuration" "$(last_start_out 0)"
  # Until the workload is updated the pod runs on the config it started with.
  render_pod_replicas 0 3
  start_node 0
  check "scale to 1: $(pod_name 0) back on its 3-replica config (green, 3 nodes)" wait_for_green 180 3 0 1 2
  for j in 2 1; do
    # KubeBlocks gives the action the component's vars as they are now: one replica.
    run_action "$j" memberLeave COMPONENT_REPLICAS=1 "COMPONENT_POD_NAMES=$(pod_name 0)" "COMPONENT_POD_FQDNS=$fqdn0"
    check "scale to 1: the leave of $(pod_name "$j") exits 0" rc_is 0
  done
  check "scale to 1: the voting configuration is $(pod_name 0) alone" voters_are 0 "[\"$(pod_name 0)\"]"
  check "scale to 1: $(pod_name 0) holds every shard copy" holds_shards_of 0 "" "$(pod_name 0)"
  # The workload's update: pods 1 and 2 removed, pod 0 restarted on the one-replica config.
  stop_nodes 1 2 0
  render_pod_replicas 0 1
  start_node 0
  check "scale to 1: $(pod_name 0) restarted alone on the one-replica config elects itself (green, 1 node)" \
    wait_for_green 180 1 0
  check "scale to 1: ... leave-docs has its 300 documents" \
    doc_count_is 0 leave-docs 300
  check "scale to 1: ... it runs with no seeds, no initial masters, no discovery.type, its own master" runs_alone 0
  echo "note: the scale to one took $((SECONDS - started)) s"
}

# runs_alone INDEX: the node's settings: an empty seed list, no initial masters, no discovery.type;
# it is the elected master.
runs_alone() {
  settings_in_force "$1"
  jq -e '.nodes[].settings | (.["discovery.seed_hosts"] // []) == [] and
    (has("cluster.initial_master_nodes") | not) and (has("discovery.type") | not)' \
    "$(pod_dir "$1")/settings.json" >/dev/null && [[ $(master_of "$1") == "$(pod_name "$1")" ]]
}

main() {
  [[ $(id -u) -eq 0 ]] || {
    echo "run as root (the nodes run as the $E2E_USER user; the test edits $HOSTS_FILE)" >&2
    exit 2
  }
  if [[ ! -x $ES_HOME/bin/elasticsearch ]]; then
    echo "note: $ES_HOME is missing (make e2e-deps fetches it): the cluster test is skipped"
    echo "0 passed, 0 failed"
    return 0
  fi
  [[ -n $ES_JAVA_HOME ]] || {
    echo "no JDK 17+ under /usr/lib/jvm" >&2
    exit 2
  }
  case $NEGATIVE in '' | no-hosts) ;; *)
    echo "CHART_CLUSTER_NEGATIVE is '' or no-hosts, not '$NEGATIVE'" >&2
    exit 2
    ;;
  esac
  refuse_unless_free
  bash "$ROOT/tests/chart/install-tools.sh"
  e2e_ensure_user
  # The clean-up runs on every exit; a signal becomes an exit.
  trap cleanup EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK=$(mktemp -d /tmp/chart-cluster.XXXXXX)
  chmod 0755 "$WORK"
  [[ -z ${KEEP_WORK:-} ]] || echo "note: the pods' directories stay in $WORK"
  local started=$SECONDS
  test_render
  if test_first_start; then
    test_restart
    test_member_actions
    test_scale_to_one
  fi
  echo "note: the cluster test took $((SECONDS - started)) s"
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  ((FAILED == 0))
}

main "$@"

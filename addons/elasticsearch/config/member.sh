#!/usr/bin/env bash
# KubeBlocks' memberLeave and memberJoin actions. kb-agent runs them in the pod of the member
# that leaves or joins, in the dataprotection image (bash, curl, jq), with the component's vars
# in its environment (ES_SCHEME, TLS_CA_FILE, ELASTIC_USERNAME, ELASTIC_PASSWORD,
# COMPONENT_POD_FQDNS) and the action's own variables.
#
#   member.sh leave   before a scale-in deletes pod KB_LEAVE_MEMBER_POD_NAME: its node is
#                     excluded from shard allocation (added to cluster.routing.allocation.
#                     exclude._name, what is there already kept), its shards are waited for
#                     until none is left on it, then, when it is master-eligible (or no longer
#                     in the cluster), it is added to the voting configuration exclusions.
#   member.sh join    after a scale-out adds pod KB_JOIN_MEMBER_POD_NAME: a node of that name
#                     that left before (a scale-in, then a scale-out again) is taken out of
#                     both exclusions, so that it gets shards and votes again.
#
# Both are idempotent: KubeBlocks calls the action again after a non-zero exit (and calls
# memberLeave of every leaving pod again until all succeed), and a run that finds its work done
# changes nothing. Every run ends within MEMBER_ACTION_TIMEOUT seconds (50; kb-agent kills an
# action after 60): a drain not done by then exits 1 with the count and the indices of the
# shard copies still on the node, and the next call waits on.
#
# The node is reached at the member's own FQDN (which its certificate names, with TLS), then at
# the other pods' (COMPONENT_POD_FQDNS) when it does not answer; ES_PORT (9200). MEMBER_ES_URL,
# when set, is the one address instead (scheme://host:port).
set -euo pipefail
# Never traced: the elastic password passes through this shell.
{ set +x; } 2>/dev/null

readonly MODE=${1:-}
ES_URL=""
NODE=""

log() { printf 'member %s %s: %s\n' "$MODE" "$NODE" "$*"; }
die() {
  printf 'member %s %s: ERROR: %s\n' "$MODE" "$NODE" "$*" >&2
  exit 1
}

readonly TIMEOUT=${MEMBER_ACTION_TIMEOUT:-50}
# Kept for the voting exclusion once the drain is done: POST waits until the node is out of the
# voting configuration (a new master elected, when it was the master).
readonly VOTING_RESERVE=${MEMBER_VOTING_RESERVE:-15}
if ! [[ $TIMEOUT =~ ^[0-9]+$ && $VOTING_RESERVE =~ ^[0-9]+$ ]] || ((TIMEOUT <= VOTING_RESERVE)); then
  die "MEMBER_ACTION_TIMEOUT ($TIMEOUT) must be a number of seconds above MEMBER_VOTING_RESERVE ($VOTING_RESERVE)"
fi
readonly POLL_SECONDS=2
readonly STARTED=$SECONDS
readonly DEADLINE=$((STARTED + TIMEOUT))

remaining() { echo $((DEADLINE - SECONDS)); }

# curl's config on its standard input: the credentials as a header (no character of the
# password needs escaping there) and the CA; never in the arguments.
curl_config() {
  if [[ -n ${ELASTIC_PASSWORD:-} ]]; then
    printf 'header = "Authorization: Basic %s"\n' \
      "$(printf '%s:%s' "${ELASTIC_USERNAME:-elastic}" "$ELASTIC_PASSWORD" | base64 -w0)"
  fi
  if [[ -n ${TLS_CA_FILE:-} ]]; then
    local escaped=${TLS_CA_FILE//\\/\\\\}
    printf 'cacert = "%s"\n' "${escaped//\"/\\\"}"
  fi
}

# es METHOD PATH [BODY]: one request to ES_URL, bounded by the run's deadline; the answer on
# stdout. Fails (the answer or curl's message in ES_ERROR) unless the answer is 2xx.
ES_ERROR=""
es() {
  local method=$1 path=$2 body=${3-} left out rc=0
  left=$(remaining)
  ((left > 0)) || die "no time left (MEMBER_ACTION_TIMEOUT=${TIMEOUT}s) before $method $path"
  ((left <= 20)) || left=20
  local args=(--silent --show-error --fail-with-body --connect-timeout "$((left < 5 ? left : 5))"
    --max-time "$left" --config - --request "$method" --url "$ES_URL$path")
  [[ -z $body ]] || args+=(--header 'Content-Type: application/json' --data-binary "$body")
  out=$(curl_config | curl "${args[@]}" 2>&1) || rc=$?
  if ((rc != 0)); then
    ES_ERROR=$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-400)
    return "$rc"
  fi
  printf '%s' "$out"
}

# es_ok STEP METHOD PATH [BODY]: es, or the run stops naming the step and the reason.
es_ok() {
  local step=$1
  shift
  es "$@" || die "$step: $1 $ES_URL$2 failed: $ES_ERROR"
}

# connect MEMBER_FQDN: ES_URL is the first of the member's own address and the other pods'
# whose node answers with an elected master (the cluster settings need one).
connect() {
  local host hosts=() others=() tried=() urls=() url
  [[ -z $1 ]] || hosts+=("$1")
  IFS=, read -ra others <<<"${COMPONENT_POD_FQDNS:-}"
  hosts+=("${others[@]}")
  for host in "${hosts[@]}"; do
    [[ -n $host ]] || continue
    [[ $host != *:* ]] || host="[$host]"
    urls+=("${ES_SCHEME:-http}://$host:${ES_PORT:-9200}")
  done
  [[ -z ${MEMBER_ES_URL:-} ]] || urls=("${MEMBER_ES_URL%/}")
  [[ ${#urls[@]} -gt 0 ]] || die "no address to reach the cluster at (no member FQDN, no COMPONENT_POD_FQDNS)"
  for url in "${urls[@]}"; do
    ES_URL=$url
    if es GET '/_cluster/health?master_timeout=5s&timeout=5s' >/dev/null; then
      log "reaching the cluster at $ES_URL"
      return 0
    fi
    tried+=("$ES_URL: $ES_ERROR")
  done
  die "no node of the cluster answers with an elected master: $(printf '%s; ' "${tried[@]}")"
}

# nodes_json: the cluster's nodes, {id: {name, roles}}. GET _nodes lists only the nodes that
# answered: with one that did not, a node "not in the cluster" may be in it still, so the
# action stops (KubeBlocks calls it again).
nodes_json() {
  local answer
  answer=$(es_ok "list the nodes" GET '/_nodes?filter_path=_nodes,nodes.*.name,nodes.*.roles')
  if ! jq -e '(._nodes.failed // 0) == 0' <<<"$answer" >/dev/null; then
    die "$(jq -r '._nodes.failed' <<<"$answer") node(s) did not answer GET _nodes: which nodes are in the cluster is unknown; KubeBlocks calls this again"
  fi
  jq -c '.nodes // {}' <<<"$answer"
}

# check_absent_node_loses_nothing: a node not in the cluster holds no assigned copy, but its
# volume, which the scale-in deletes, may hold the only copy of a primary the cluster lacks
# (an index without replicas): while any primary is unassigned (red), the leave waits.
check_absent_node_loses_nothing() {
  local status
  status=$(es_ok "read the cluster's health" GET '/_cluster/health' | jq -r '.status')
  [[ $status != red ]] ||
    die "$NODE is not in the cluster and the cluster is red: an unassigned primary's only copy may be on $NODE's volume, which the scale-in deletes; bring the node back or settle the red indices (KubeBlocks calls this again)"
}

# voting_exclusions_path NAMES TIMEOUT: the request that adds NAMES; Elasticsearch before 7.8
# takes them in the path only.
voting_exclusions_path() {
  local version=${ELASTICSEARCH_VERSION:-} major minor
  IFS=. read -r major minor _ <<<"$version"
  if [[ $major == 7 && $minor =~ ^[0-9]+$ ]] && ((minor < 8)); then
    printf '/_cluster/voting_config_exclusions/%s?timeout=%s' "$1" "$2"
  else
    printf '/_cluster/voting_config_exclusions?node_names=%s&timeout=%s' "$1" "$2"
  fi
}

# The exclusion list of one settings scope ("persistent" or "transient") as a JSON array, from
# GET _cluster/settings?flat_settings=true: the value is a comma-separated string.
# shellcheck disable=SC2016 # jq's variables
readonly JQ_EXCLUDED='(.[$scope]["cluster.routing.allocation.exclude._name"] // "")
  | split(",") | map(sub("^\\s+"; "") | sub("\\s+$"; "")) | map(select(. != ""))'

# set_allocation_exclusion add|remove: the node's name added to (or removed from) every scope
# that holds an exclusion list, persistent always; the other names kept as they are.
set_allocation_exclusion() {
  local op=$1 settings body
  settings=$(es_ok "read the cluster settings" GET '/_cluster/settings?flat_settings=true&filter_path=persistent,transient')
  [[ -n $settings ]] || settings='{}'
  body=$(jq -c --arg name "$NODE" --arg op "$op" '
    . as $s
    | [ "persistent", "transient" ]
    | map(. as $scope
        | ($s | '"$JQ_EXCLUDED"') as $old
        | (if $op == "add" then (if ($old | index([$name])) then $old else $old + [$name] end)
           else ($old | map(select(. != $name))) end) as $new
        # A transient list overrides the persistent one: it gets the change as well.
        | select($new != $old and ($scope == "persistent" or ($s[$scope] // {} | has("cluster.routing.allocation.exclude._name"))))
        | {key: $scope, value: {"cluster.routing.allocation.exclude._name":
            (if $new == [] then null else ($new | join(",")) end)}})
    | from_entries' <<<"$settings")
  if [[ $body == '{}' ]]; then
    log "allocation exclusion: nothing to change ($(jq -r --arg scope persistent "$JQ_EXCLUDED"' | join(",")' <<<"$settings" | sed 's/^$/none/'))"
    return 0
  fi
  es_ok "$op $NODE in cluster.routing.allocation.exclude._name" PUT /_cluster/settings "$body" >/dev/null
  log "allocation exclusion: $op $NODE: $(jq -c . <<<"$body")"
}

# shards_on NODE_IDS_JSON: the shard copies on those nodes (or relocating to them), as
# [{index, shard, primary, state}].
shards_on() {
  es_ok "read the routing table" GET '/_cluster/state/routing_table?filter_path=routing_table.indices.*.shards.*' |
    jq -c --argjson ids "$1" '
      [ (.routing_table.indices // {}) | to_entries[] | .key as $index
        | .value.shards | to_entries[] | .value[] | . as $copy
        | select(any($ids[]; . == $copy.node or . == $copy.relocating_node))
        | {index: $index, shard: .shard, primary: .primary, state: .state} ]'
}

# why_stuck SHARD_JSON: the allocator's word on why that copy does not move off the node.
why_stuck() {
  local body
  body=$(jq -c --arg node "$NODE" '{index, shard, primary, current_node: $node}' <<<"$1")
  es POST /_cluster/allocation/explain "$body" 2>/dev/null |
    jq -r '[(.node_allocation_decisions // [])[] | .node_name as $n | (.deciders // [])[]
             | select(.decision == "NO") | "not to \($n): \(.explanation)"][0:2]
           | join("; ")' 2>/dev/null | cut -c1-600 || true
}

# drain NODE_IDS_JSON: waits (until the voting step's reserve) for no shard copy to be left on
# the node; otherwise exits 1 with what is left.
drain() {
  local ids=$1 shards count
  while :; do
    shards=$(shards_on "$ids")
    count=$(jq length <<<"$shards")
    if ((count == 0)); then
      log "drained: no shard copy on $NODE"
      return 0
    fi
    if (($(remaining) - POLL_SECONDS <= VOTING_RESERVE)); then
      local indices why
      indices=$(jq -r '[.[].index] | unique | join(", ")' <<<"$shards")
      why=$(why_stuck "$(jq -c '.[0]' <<<"$shards")")
      die "$count shard copies are still on $NODE after $((SECONDS - STARTED)) s, of indices: $indices${why:+ (first one: $why)}; it stays excluded from allocation and KubeBlocks calls this again"
    fi
    log "waiting: $count shard copies still on $NODE ($(jq -r '[.[].index] | unique | join(", ")' <<<"$shards" | cut -c1-200))"
    sleep "$POLL_SECONDS"
  done
}

# voting_exclusions: [{node_id, node_name}] of the cluster state.
voting_exclusions() {
  es_ok "read the voting configuration exclusions" GET \
    '/_cluster/state/metadata?filter_path=metadata.cluster_coordination.voting_config_exclusions' |
    jq -c '.metadata.cluster_coordination.voting_config_exclusions // []'
}

# exclude_from_voting NODES_JSON IDS_JSON: the node joins the voting exclusions. An entry counts
# when it names the node's id (or its name, with no id, or while the node is not in the
# cluster): one of an earlier node of that name (another id: new data) excludes nothing now.
# The list holds at most cluster.max_voting_config_exclusions (10): when every node in it has
# left the cluster, it is cleared first (DELETE waits for that removal, so it clears nothing else).
exclude_from_voting() {
  local nodes=$1 ids=$2 exclusions left
  exclusions=$(voting_exclusions)
  if jq -e --arg name "$NODE" --argjson ids "$ids" 'any(.[]; . as $x
      | ($ids | any(.[]; . == $x.node_id))
        or ($x.node_name == $name and ($x.node_id == "_absent_" or $ids == [])))' <<<"$exclusions" >/dev/null; then
    log "voting exclusion: $NODE is excluded already"
    return 0
  fi
  if jq -e --argjson nodes "$nodes" 'length > 0 and all(.[]; . as $x
      | ($nodes | has($x.node_id) or any(.[]; .name == $x.node_name)) | not)' <<<"$exclusions" >/dev/null; then
    es_ok "clear the exclusions of nodes that have left" DELETE \
      '/_cluster/voting_config_exclusions?wait_for_removal=true' >/dev/null
    log "voting exclusions of nodes that have left cleared: $(jq -r '[.[].node_name] | join(",")' <<<"$exclusions")"
  fi
  # The node's own wait, under the request's (es: at most 20 s, within the run's deadline).
  left=$(($(remaining) - 3))
  ((left > 0)) || die "no time left for the voting exclusion of $NODE; KubeBlocks calls this again"
  ((left <= 17)) || left=17
  es_ok "add $NODE to the voting configuration exclusions" POST \
    "$(voting_exclusions_path "$NODE" "${left}s")" >/dev/null
  log "voting exclusion: $NODE added (it is out of the voting configuration)"
}

# include_in_voting NODES_JSON: the node's voting exclusion dropped. There is no API for one
# entry: the list is cleared and the entries of other nodes still in the cluster (leaving ones)
# are added again; those of nodes that have left are dropped.
include_in_voting() {
  local nodes=$1 exclusions keep
  exclusions=$(voting_exclusions)
  if ! jq -e --arg name "$NODE" 'any(.[]; .node_name == $name)' <<<"$exclusions" >/dev/null; then
    log "voting exclusion: $NODE is not excluded"
    return 0
  fi
  keep=$(jq -r --arg name "$NODE" --argjson nodes "$nodes" \
    '[.[] | select(.node_name != $name) | .node_name as $n
      | select(any($nodes[]; .name == $n))] | join(",")' <<<"$exclusions")
  es_ok "clear the voting configuration exclusions" DELETE \
    '/_cluster/voting_config_exclusions?wait_for_removal=false' >/dev/null
  if [[ -n $keep ]]; then
    es_ok "exclude $keep from voting again" POST \
      "$(voting_exclusions_path "$keep" "$(($(remaining) > 12 ? 10 : 1))s")" >/dev/null
  fi
  log "voting exclusion: $NODE dropped${keep:+ (kept: $keep)}"
}

leave() {
  NODE=${KB_LEAVE_MEMBER_POD_NAME:-}
  check_name
  # A scale-in to 0 (KubeBlocks then keeps the volumes) leaves every pod: the last node's shards
  # have nowhere to go, and no cluster is left to keep a quorum for.
  if [[ ${COMPONENT_REPLICAS:-} == 0 ]]; then
    log "the component is scaled to 0 replicas (its volumes kept): nothing to drain or exclude"
    return 0
  fi
  connect "${KB_LEAVE_MEMBER_POD_FQDN:-}"
  local nodes ids master_eligible
  nodes=$(nodes_json)
  ids=$(jq -c --arg name "$NODE" '[to_entries[] | select(.value.name == $name) | .key]' <<<"$nodes")
  set_allocation_exclusion add
  if [[ $ids == '[]' ]]; then
    # Not in the cluster (stopped, or gone): no assigned copy is on it.
    check_absent_node_loses_nothing
    log "$NODE is not in the cluster (and no primary is unassigned): nothing to drain"
    master_eligible=unknown
  else
    drain "$ids"
    master_eligible=$(jq -r --arg name "$NODE" \
      '[.[] | select(.name == $name) | .roles // [] | index("master") != null] | any' <<<"$nodes")
  fi
  # A node not in the cluster may still be in the voting configuration: excluded as well.
  if [[ $master_eligible == false ]]; then
    log "voting exclusion: $NODE is not master-eligible"
  else
    exclude_from_voting "$nodes" "$ids"
  fi
  log "done: $NODE can be removed"
}

join() {
  NODE=${KB_JOIN_MEMBER_POD_NAME:-}
  check_name
  connect "${KB_JOIN_MEMBER_POD_FQDN:-}"
  local nodes
  nodes=$(nodes_json)
  set_allocation_exclusion remove
  include_in_voting "$nodes"
  log "done: $NODE is not excluded from allocation or voting"
}

# A pod name (a DNS label): no comma, wildcard or character that would change the list or URL.
check_name() {
  [[ -n $NODE ]] || die "the member's pod name (KB_LEAVE_MEMBER_POD_NAME or KB_JOIN_MEMBER_POD_NAME) is not set"
  [[ $NODE =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || die "'$NODE' is not a pod name"
  if [[ -n ${TLS_CA_FILE:-} && ! -r $TLS_CA_FILE ]]; then
    die "TLS_CA_FILE $TLS_CA_FILE is not a readable file (the TLS volume's ca.pem)"
  fi
}

case $MODE in
  leave) leave ;;
  join) join ;;
  *) die "usage: member.sh leave|join" ;;
esac

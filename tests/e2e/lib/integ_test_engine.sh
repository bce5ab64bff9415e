#!/usr/bin/env bash
# detect_engine_from_nodes: the engine and its version from the local node's info, as the
# jobs' detect_engine reads them from GET /, which the Elasticsearch integ-test distribution
# does not serve (its rest-root module is not included). Sourced after the jobs' scripts.

# shellcheck disable=SC2034 # ENGINE_*, CLUSTER_NAME are read by the jobs' functions
detect_engine_from_nodes() {
  es_ok "node info (GET /_nodes/_local)" GET '/_nodes/_local?filter_path=nodes.*.version,nodes.*.build_flavor,cluster_name'
  ENGINE_DISTRIBUTION=elasticsearch
  ENGINE_VERSION=$(jq -r '[.nodes[].version][0] // "unknown"' "$ES_REPLY")
  CLUSTER_NAME=$(jq -r '.cluster_name // "unknown"' "$ES_REPLY")
  log "cluster ${CLUSTER_NAME}: ${ENGINE_DISTRIBUTION} ${ENGINE_VERSION}"
}

#!/usr/bin/env bash
# Builds the multi-platform container image of the backup and restore jobs (Dockerfile here),
# which KubeBlocks' kb-agent container of every pod runs from too (memberLeave, memberJoin).
#   ./build.sh image       build the image for PLATFORMS with docker buildx (no push)
#   ./build.sh push        build the image for PLATFORMS and push it
# Image variables, as for the agent's build.sh: REGISTRY (default none: Docker Hub),
# IMAGE_REPOSITORY (default apecloud/elasticsearch-dataprotection, as in the chart's
# values.yaml), IMAGE_TAG (default the project's version, the agent's in agent/CMakeLists.txt,
# which both image tags of values.yaml follow), PLATFORMS (default linux/amd64,linux/arm64).
# DRY_RUN=1 prints the docker command instead of running it.
set -euo pipefail

JOBS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly JOBS_DIR
readonly AGENT_DIR="${JOBS_DIR}/../agent"
readonly PLATFORMS="${PLATFORMS:-linux/amd64,linux/arm64}"

version() {
  sed -n 's/^project(es_agent VERSION \([0-9.]*\).*/\1/p' "${AGENT_DIR}/CMakeLists.txt"
}

image_ref() {
  local repository="${IMAGE_REPOSITORY:-apecloud/elasticsearch-dataprotection}"
  echo "${REGISTRY:+${REGISTRY%/}/}${repository}:${IMAGE_TAG:-$(version)}"
}

# docker buildx build for every platform in PLATFORMS. Without a push, a multi-platform result
# stays in the builder's cache (the classic image store holds one platform only); a
# single-platform build is loaded into the local image store.
buildx() {
  local mode="$1" ref
  ref="$(image_ref)"
  local cmd=(docker buildx build --platform "${PLATFORMS}" --tag "${ref}"
             --file "${JOBS_DIR}/Dockerfile")
  if [[ "${mode}" == push ]]; then
    cmd+=(--push)
  elif [[ "${PLATFORMS}" != *,* ]]; then
    cmd+=(--load)
  fi
  # The build context is this folder; the Dockerfile copies nothing from it (the ActionSet
  # carries the scripts).
  cmd+=("${JOBS_DIR}")
  if [[ "${DRY_RUN:-0}" == 1 ]]; then
    printf '%q ' "${cmd[@]}"
    echo
    return 0
  fi
  docker buildx version >/dev/null 2>&1 \
    || { echo "no docker buildx here: images are built where Docker with buildx runs" >&2; exit 1; }
  "${cmd[@]}"
  echo "${ref}"
}

usage() {
  echo "usage: $0 image|push" \
    "(image variables: REGISTRY IMAGE_REPOSITORY IMAGE_TAG PLATFORMS DRY_RUN)" >&2
  exit 2
}

main() {
  (($# == 1)) || usage
  case "$1" in
    image) buildx build ;;
    push) buildx push ;;
    *) usage ;;
  esac
}

main "$@"

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
# shellcheck source-path=SCRIPTDIR source=../../../tools/buildx-image.sh
source "${JOBS_DIR}/../../../tools/buildx-image.sh"

version() {
  sed -n 's/^project(es_agent VERSION \([0-9.]*\).*/\1/p' "${AGENT_DIR}/CMakeLists.txt"
}

# The image: the build context is this folder; the Dockerfile copies nothing from it (the
# ActionSet carries the scripts).
buildx() {
  buildx_image "$1" "$(image_ref apecloud/elasticsearch-dataprotection "$(version)")" "${JOBS_DIR}/Dockerfile" "${JOBS_DIR}"
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

#!/usr/bin/env bash
# Builds es-agent, its unit tests, or its container image.
#   ./build.sh            build the static binary and the tests into BUILD_DIR (Release)
#   ./build.sh test       build, then run the unit tests (ctest)
#   ./build.sh image [T]  build the container image T (default apecloud/elasticsearch-agent:VERSION)
#   ./build.sh push [T]   build the image and push it
set -euo pipefail

AGENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${AGENT_DIR}/../../.." && pwd)"
readonly AGENT_DIR REPO_ROOT
readonly BUILD_DIR="${BUILD_DIR:-${REPO_ROOT}/build/agent}"
readonly BUILD_TYPE="${BUILD_TYPE:-Release}"

version() {
  sed -n 's/^project(es_agent VERSION \([0-9.]*\).*/\1/p' "${AGENT_DIR}/CMakeLists.txt"
}

build() {
  local generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S "${AGENT_DIR}" -B "${BUILD_DIR}" "${generator[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" >/dev/null
  cmake --build "${BUILD_DIR}" --parallel "$(nproc)"
  echo "built ${BUILD_DIR}/es-agent ($(du -h "${BUILD_DIR}/es-agent" | cut -f1), $(file -b "${BUILD_DIR}/es-agent" | cut -d, -f1-2))"
}

run_tests() {
  build
  ctest --test-dir "${BUILD_DIR}" --output-on-failure
}

image() {
  local tag="${1:-apecloud/elasticsearch-agent:$(version)}"
  # The build context is the agent folder alone: the Dockerfile builds from source inside.
  docker build -t "${tag}" -f "${AGENT_DIR}/Dockerfile" "${AGENT_DIR}"
  echo "${tag}"
}

main() {
  case "${1:-build}" in
    build) build ;;
    test) run_tests ;;
    image) image "${2:-}" ;;
    push) docker push "$(image "${2:-}" | tail -n 1)" ;;
    *) echo "usage: $0 [build|test|image [TAG]|push [TAG]]" >&2; exit 2 ;;
  esac
}

main "$@"

#!/usr/bin/env bash
# Builds es-agent, its unit tests, an arm64 cross build, or its multi-platform container image.
#   ./build.sh             build the static binary and the tests into BUILD_DIR (Release)
#   ./build.sh test        build, then run the unit tests (ctest)
#   ./build.sh cross       cross-build for linux/arm64 into CROSS_BUILD_DIR (Debian's cross
#                          toolchain, cmake/aarch64-linux-gnu.cmake; tools/install-cross-deps.sh)
#   ./build.sh cross-test  cross-build, then run the unit tests under qemu-user
#   ./build.sh cross-bin   cross-build es-agent alone (no tests) into CROSS_BIN_DIR, for the
#                          arm64 smoke test (tests/scripts/test_arm64_binary.sh)
#   ./build.sh image       build the image for PLATFORMS with docker buildx (no push)
#   ./build.sh push        build the image for PLATFORMS and push it
# Image variables: REGISTRY (default none: Docker Hub), IMAGE_REPOSITORY (default
# apecloud/elasticsearch-agent, as in the chart's values.yaml), IMAGE_TAG (default the
# project's version), PLATFORMS (default linux/amd64,linux/arm64). DRY_RUN=1 prints the
# docker command instead of running it.
set -euo pipefail

AGENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${AGENT_DIR}/../../.." && pwd)"
readonly AGENT_DIR REPO_ROOT
readonly BUILD_DIR="${BUILD_DIR:-${REPO_ROOT}/build/agent}"
readonly CROSS_BUILD_DIR="${CROSS_BUILD_DIR:-${REPO_ROOT}/build/agent-arm64}"
readonly CROSS_BIN_DIR="${CROSS_BIN_DIR:-${REPO_ROOT}/build/agent-arm64-bin}"
readonly BUILD_TYPE="${BUILD_TYPE:-Release}"
readonly BUILD_JOBS="${BUILD_JOBS:-$(nproc)}"
readonly PLATFORMS="${PLATFORMS:-linux/amd64,linux/arm64}"
# shellcheck source-path=SCRIPTDIR source=../../../tools/buildx-image.sh
source "${REPO_ROOT}/tools/buildx-image.sh"

# Unit tests left out under qemu-user (a ctest regex; QEMU_EXCLUDED_TESTS overrides it):
# - Process.*: start the es-agent binary as a child. A process under qemu-user can exec host
#   binaries only, unless the kernel has qemu registered in binfmt_misc, which a build machine
#   or container need not have. es_agent_reports_version runs the arm64 binary instead.
# - Subprocess.MissingProgramIsASpawnError: glibc's posix_spawn reports a failed exec through
#   memory it shares with the child (CLONE_VM|CLONE_VFORK); qemu-user runs the child as a
#   plain fork, so the error is lost and the child exits 127 instead.
# - Engines/RealTool.*, Engines/ElasticsearchTool.*: run the engines' keystore tools, i.e. the
#   host's x86 Java beside an arm64 agent, a pairing no deployment has. They pass under qemu
#   but add minutes and test the tools, not the arm64 build; the agent's side of running a
#   tool (spawn, pipes, timeouts, scrubbing) is covered under qemu by Subprocess.* and
#   FakeTool.*, and the tools themselves by the native run.
readonly QEMU_EXCLUDED_TESTS="${QEMU_EXCLUDED_TESTS:-^(Process[.]|Subprocess[.]MissingProgramIsASpawnError$|Engines/(RealTool|ElasticsearchTool)[.])}"

version() {
  sed -n 's/^project(es_agent VERSION \([0-9.]*\).*/\1/p' "${AGENT_DIR}/CMakeLists.txt"
}

configure_and_build() {
  local dir="$1"
  shift
  local generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S "${AGENT_DIR}" -B "${dir}" "${generator[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" "$@" \
    >/dev/null
  cmake --build "${dir}" --parallel "${BUILD_JOBS}"
  echo "built ${dir}/es-agent ($(du -h "${dir}/es-agent" | cut -f1), $(file -b "${dir}/es-agent" | cut -d, -f1-2))"
}

build() {
  configure_and_build "${BUILD_DIR}"
}

run_tests() {
  build
  ctest --test-dir "${BUILD_DIR}" --output-on-failure
}

# cross_build [DIR [CMAKE FLAGS...]]: the arm64 build, into CROSS_BUILD_DIR by default.
cross_build() {
  local dir="${1:-${CROSS_BUILD_DIR}}"
  (($# == 0)) || shift
  command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 \
    || { echo "no aarch64-linux-gnu-g++: run tools/install-cross-deps.sh" >&2; exit 1; }
  configure_and_build "${dir}" \
    -DCMAKE_TOOLCHAIN_FILE="${AGENT_DIR}/cmake/aarch64-linux-gnu.cmake" "$@"
}

run_cross_tests() {
  cross_build
  command -v qemu-aarch64 >/dev/null 2>&1 \
    || { echo "no qemu-aarch64: run tools/install-cross-deps.sh" >&2; exit 1; }
  echo "under qemu-user; left out (reasons in build.sh): ${QEMU_EXCLUDED_TESTS}"
  ctest --test-dir "${CROSS_BUILD_DIR}" --output-on-failure --exclude-regex "${QEMU_EXCLUDED_TESTS}"
}

# The image: the build context is the agent folder alone (the Dockerfile builds from source
# inside).
buildx() {
  buildx_image "$1" "$(image_ref apecloud/elasticsearch-agent "$(version)")" "${AGENT_DIR}/Dockerfile" "${AGENT_DIR}"
}

usage() {
  echo "usage: $0 [build|test|cross|cross-test|cross-bin|image|push]" \
    "(image variables: REGISTRY IMAGE_REPOSITORY IMAGE_TAG PLATFORMS DRY_RUN)" >&2
  exit 2
}

main() {
  (($# <= 1)) || usage
  case "${1:-build}" in
    build) build ;;
    test) run_tests ;;
    cross) cross_build ;;
    cross-test) run_cross_tests ;;
    cross-bin) cross_build "${CROSS_BIN_DIR}" -DAGENT_BUILD_TESTS=OFF ;;
    image) buildx build ;;
    push) buildx push ;;
    *) usage ;;
  esac
}

main "$@"

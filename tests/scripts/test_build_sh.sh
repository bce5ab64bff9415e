#!/usr/bin/env bash
# Tests of addons/elasticsearch/agent/build.sh that need no Docker: its argument handling and
# the docker buildx commands it would run (DRY_RUN=1 prints them), for the default image and
# for REGISTRY, IMAGE_REPOSITORY, IMAGE_TAG and PLATFORMS; the default tag is the chart's.
# Ends with 'N passed, M failed'; exits non-zero on a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT
readonly BUILD_SH="${ROOT}/addons/elasticsearch/agent/build.sh"
readonly AGENT_DIR="${ROOT}/addons/elasticsearch/agent"

PASSED=0
FAILED=0

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
  if [[ $2 == "$3" ]]; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n  expected: [%s]\n  actual:   [%s]\n' "$1" "$2" "$3"
  fi
}

# dry VAR=VALUE... -- ARGS...: build.sh's printed command, with the image variables cleared
# first so that the caller's environment does not leak in.
dry() {
  local vars=()
  while [[ $1 != -- ]]; do
    vars+=("$1")
    shift
  done
  shift
  env -u REGISTRY -u IMAGE_REPOSITORY -u IMAGE_TAG -u PLATFORMS DRY_RUN=1 "${vars[@]}" \
    bash "${BUILD_SH}" "$@"
}

# exit_code ARGS...: build.sh's exit status (stdout and stderr dropped).
exit_code() {
  local rc=0
  DRY_RUN=1 bash "${BUILD_SH}" "$@" >/dev/null 2>&1 || rc=$?
  echo "${rc}"
}

chart_agent_tag() {
  /usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["image"]["agent"]["tag"])' \
    "${ROOT}/addons/elasticsearch/values.yaml"
}

test_default_image() {
  local tag
  tag=$(chart_agent_tag)
  expect_eq "image: both platforms, the chart's repository and tag, no push, no load" \
    "docker buildx build --platform linux/amd64\\,linux/arm64 --tag apecloud/elasticsearch-agent:${tag} --file ${AGENT_DIR}/Dockerfile ${AGENT_DIR} " \
    "$(dry -- image)"
}

test_push_with_registry_and_tag() {
  expect_eq "push: registry (a trailing slash is dropped), repository and tag from the variables" \
    "docker buildx build --platform linux/amd64\\,linux/arm64 --tag registry.example.com:5000/team/agent:1.2.3-rc1 --file ${AGENT_DIR}/Dockerfile --push ${AGENT_DIR} " \
    "$(dry REGISTRY=registry.example.com:5000/ IMAGE_REPOSITORY=team/agent IMAGE_TAG=1.2.3-rc1 -- push)"
}

test_single_platform_is_loaded() {
  expect_eq "image for one platform: loaded into the local image store" \
    "docker buildx build --platform linux/arm64 --tag r.example/apecloud/elasticsearch-agent:t --file ${AGENT_DIR}/Dockerfile --load ${AGENT_DIR} " \
    "$(dry REGISTRY=r.example IMAGE_TAG=t PLATFORMS=linux/arm64 -- image)"
  expect_eq "push for one platform: pushed, not loaded" \
    "docker buildx build --platform linux/amd64 --tag apecloud/elasticsearch-agent:t --file ${AGENT_DIR}/Dockerfile --push ${AGENT_DIR} " \
    "$(dry IMAGE_TAG=t PLATFORMS=linux/amd64 -- push)"
}

test_bad_arguments() {
  expect_eq "an unknown command exits 2" 2 "$(exit_code frobnicate)"
  expect_eq "an extra argument exits 2 (the tag is a variable now)" 2 "$(exit_code image my/tag:1)"
  expect_eq "the usage names the commands" 1 \
    "$(bash "${BUILD_SH}" frobnicate 2>&1 >/dev/null | grep -c 'build|test|cross|cross-test|cross-bin|image|push')"
}

test_no_buildx() {
  if docker buildx version >/dev/null 2>&1; then
    echo "skipped: docker buildx is installed here, so build.sh would really build"
    return 0
  fi
  local out rc=0
  out=$(env -u DRY_RUN bash "${BUILD_SH}" image 2>&1) || rc=$?
  expect_eq "without docker buildx, image exits 1" 1 "${rc}"
  expect_eq "and says so" "no docker buildx here: images are built where Docker with buildx runs" "${out}"
}

main() {
  test_default_image
  test_push_with_registry_and_tag
  test_single_platform_is_loaded
  test_bad_arguments
  test_no_buildx
  echo "build.sh: ${PASSED} passed, ${FAILED} failed"
  ((FAILED == 0))
}

main "$@"

#!/usr/bin/env bash
# Tests of the image build scripts that need no Docker, addons/elasticsearch/agent/build.sh
# (the agent's image) and addons/elasticsearch/dataprotection/build.sh (the jobs'): their
# argument handling and the docker buildx commands they would run (DRY_RUN=1 prints them), for
# the default image and for REGISTRY, IMAGE_REPOSITORY, IMAGE_TAG and PLATFORMS; the default
# repository and tag are the chart's.
# Ends with 'N passed, M failed'; exits non-zero on a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT
readonly BUILD_SH="${ROOT}/addons/elasticsearch/agent/build.sh"
readonly AGENT_DIR="${ROOT}/addons/elasticsearch/agent"
readonly JOBS_BUILD_SH="${ROOT}/addons/elasticsearch/dataprotection/build.sh"
readonly JOBS_DIR="${ROOT}/addons/elasticsearch/dataprotection"

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
# first so that the caller's environment does not leak in. SCRIPT (default the agent's
# build.sh) names the script.
dry() {
  local script="${SCRIPT:-${BUILD_SH}}" vars=()
  while [[ $1 != -- ]]; do
    vars+=("$1")
    shift
  done
  shift
  env -u REGISTRY -u IMAGE_REPOSITORY -u IMAGE_TAG -u PLATFORMS DRY_RUN=1 "${vars[@]}" \
    bash "${script}" "$@"
}

# exit_code ARGS...: the script's exit status (stdout and stderr dropped); SCRIPT as for dry.
exit_code() {
  local rc=0
  DRY_RUN=1 bash "${SCRIPT:-${BUILD_SH}}" "$@" >/dev/null 2>&1 || rc=$?
  echo "${rc}"
}

# chart_image KEY FIELD: values.yaml's image.KEY.FIELD (KEY agent or dataprotection).
chart_image() {
  /usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["image"][sys.argv[2]][sys.argv[3]])' \
    "${ROOT}/addons/elasticsearch/values.yaml" "$1" "$2"
}

chart_agent_tag() {
  chart_image agent tag
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
  local script out rc
  for script in "${BUILD_SH}" "${JOBS_BUILD_SH}"; do
    rc=0
    out=$(env -u DRY_RUN bash "${script}" image 2>&1) || rc=$?
    expect_eq "${script#"${ROOT}/"}: without docker buildx, image exits 1" 1 "${rc}"
    expect_eq "${script#"${ROOT}/"}: and says so" \
      "no docker buildx here: images are built where Docker with buildx runs" "${out}"
  done
}

# Image variables docker would refuse, and a DRY_RUN other than 0 or 1 (which would run the
# real build), stop both scripts naming the variable, before any docker command.
test_bad_image_variables() {
  local script case out rc
  for script in "${BUILD_SH}" "${JOBS_BUILD_SH}"; do
    for case in "DRY_RUN=true|DRY_RUN 'true' is not 0 or 1" "REGISTRY=Bad Registry|REGISTRY 'Bad Registry'" \
      "IMAGE_REPOSITORY=Team/Jobs|IMAGE_REPOSITORY 'Team/Jobs'" "IMAGE_TAG=bad:x|IMAGE_TAG 'bad:x'" \
      "PLATFORMS=linux/amd64,|PLATFORMS 'linux/amd64,'"; do
      rc=0
      out=$(env -u REGISTRY -u IMAGE_REPOSITORY -u IMAGE_TAG -u PLATFORMS DRY_RUN=1 "${case%%|*}" \
        bash "${script}" push 2>&1) || rc=$?
      expect_eq "${script#"${ROOT}/"}: ${case%%|*} exits 2, naming it" "2 1" \
        "${rc} $(grep -c -F -- "${case#*|}" <<<"${out}")"
    done
  done
}

# The jobs' image (dataprotection/build.sh): the same variables and conventions.
test_jobs_default_image() {
  local repository tag
  repository=$(chart_image dataprotection repository)
  tag=$(chart_image dataprotection tag)
  expect_eq "jobs image: both platforms, the chart's repository and tag, no push, no load" \
    "docker buildx build --platform linux/amd64\\,linux/arm64 --tag ${repository}:${tag} --file ${JOBS_DIR}/Dockerfile ${JOBS_DIR} " \
    "$(SCRIPT="${JOBS_BUILD_SH}" dry -- image)"
}

test_jobs_push_with_registry_and_tag() {
  expect_eq "jobs push: registry (a trailing slash is dropped), repository and tag from the variables" \
    "docker buildx build --platform linux/amd64\\,linux/arm64 --tag registry.example.com:5000/team/jobs:1.2.3-rc1 --file ${JOBS_DIR}/Dockerfile --push ${JOBS_DIR} " \
    "$(SCRIPT="${JOBS_BUILD_SH}" dry REGISTRY=registry.example.com:5000/ IMAGE_REPOSITORY=team/jobs IMAGE_TAG=1.2.3-rc1 -- push)"
}

test_jobs_single_platform_is_loaded() {
  expect_eq "jobs image for one platform: loaded into the local image store" \
    "docker buildx build --platform linux/arm64 --tag r.example/apecloud/elasticsearch-dataprotection:t --file ${JOBS_DIR}/Dockerfile --load ${JOBS_DIR} " \
    "$(SCRIPT="${JOBS_BUILD_SH}" dry REGISTRY=r.example IMAGE_TAG=t PLATFORMS=linux/arm64 -- image)"
  expect_eq "jobs push for one platform: pushed, not loaded" \
    "docker buildx build --platform linux/amd64 --tag apecloud/elasticsearch-dataprotection:t --file ${JOBS_DIR}/Dockerfile --push ${JOBS_DIR} " \
    "$(SCRIPT="${JOBS_BUILD_SH}" dry IMAGE_TAG=t PLATFORMS=linux/amd64 -- push)"
}

test_jobs_bad_arguments() {
  local SCRIPT="${JOBS_BUILD_SH}"
  expect_eq "jobs: no command exits 2 (there is nothing to build but the image)" 2 "$(exit_code)"
  expect_eq "jobs: an unknown command exits 2" 2 "$(exit_code build)"
  expect_eq "jobs: an extra argument exits 2" 2 "$(exit_code image my/tag:1)"
  expect_eq "jobs: the usage names the commands" 1 \
    "$(bash "${JOBS_BUILD_SH}" frobnicate 2>&1 >/dev/null | grep -c 'usage: .* image|push ')"
}

main() {
  test_default_image
  test_push_with_registry_and_tag
  test_single_platform_is_loaded
  test_bad_arguments
  test_jobs_default_image
  test_jobs_push_with_registry_and_tag
  test_jobs_single_platform_is_loaded
  test_jobs_bad_arguments
  test_bad_image_variables
  test_no_buildx
  echo "build.sh: ${PASSED} passed, ${FAILED} failed"
  ((FAILED == 0))
}

main "$@"

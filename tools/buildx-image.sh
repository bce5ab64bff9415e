#!/usr/bin/env bash
# buildx_image, for the images' build.sh scripts (sourced): one multi-platform image built
# with docker buildx, pushed or not; DRY_RUN=1 prints the docker command instead.

# check_image_variables: a value docker would refuse, or a DRY_RUN that is not 0 or 1 (which
# would otherwise run the real build), stops here naming it.
check_image_variables() {
  local bad=''
  [[ ${DRY_RUN:-0} == 0 || ${DRY_RUN:-0} == 1 ]] || bad="DRY_RUN '${DRY_RUN}' is not 0 or 1"
  [[ -z ${REGISTRY:-} || ${REGISTRY} =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*/?$ ]] ||
    bad="REGISTRY '${REGISTRY}' is not a registry host with an optional path, e.g. registry.example.com/search"
  [[ -z ${IMAGE_REPOSITORY:-} || ${IMAGE_REPOSITORY} =~ ^[a-z0-9._-]+(/[a-z0-9._-]+)*/?$ ]] ||
    bad="IMAGE_REPOSITORY '${IMAGE_REPOSITORY}' is not a repository path (lower case, / between parts)"
  [[ -z ${IMAGE_TAG:-} || ${IMAGE_TAG} =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
    bad="IMAGE_TAG '${IMAGE_TAG}' is not a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
  [[ ${PLATFORMS} =~ ^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?(,[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?)*$ ]] ||
    bad="PLATFORMS '${PLATFORMS}' is not a comma-separated list of os/arch"
  [[ -z $bad ]] || { echo "$bad" >&2; exit 2; }
}

# image_ref DEFAULT_REPOSITORY VERSION: REGISTRY/IMAGE_REPOSITORY:IMAGE_TAG, each variable
# falling back to the default given (no registry: Docker Hub).
image_ref() {
  local repository="${IMAGE_REPOSITORY:-$1}"
  echo "${REGISTRY:+${REGISTRY%/}/}${repository}:${IMAGE_TAG:-$2}"
}

# buildx_image MODE(build|push) REF DOCKERFILE CONTEXT: docker buildx build for every platform
# in PLATFORMS. Without a push, a multi-platform result stays in the builder's cache (the
# classic image store holds one platform only); a single-platform build is loaded into the
# local image store.
buildx_image() {
  local mode="$1" ref="$2" dockerfile="$3" context="$4"
  check_image_variables
  local cmd=(docker buildx build --platform "${PLATFORMS}" --tag "${ref}" --file "${dockerfile}")
  if [[ "${mode}" == push ]]; then
    cmd+=(--push)
  elif [[ "${PLATFORMS}" != *,* ]]; then
    cmd+=(--load)
  fi
  cmd+=("${context}")
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

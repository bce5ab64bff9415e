#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing the agent and the scripts
# needs. Idempotent: runs apt-get only when a package is missing. Needs root (or sudo).
set -euo pipefail

readonly PACKAGES=(
  cmake ninja-build g++ make pkg-config file
  libboost-dev libssl-dev zlib1g-dev nlohmann-json3-dev libgtest-dev
  clang-format clang-14 libclang-rt-14-dev shellcheck jq curl ca-certificates unzip procps util-linux
  openssl python3 python3-yaml python3-prometheus-client
)

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

main() {
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    echo "build dependencies: all installed"
    return 0
  fi
  local sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  echo "build dependencies: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

main "$@"

#!/usr/bin/env bash
# Installs, from Debian's packages, what cross-building the agent for linux/arm64 and running
# its tests under qemu-user needs. Idempotent: adds dpkg's arm64 architecture and runs apt-get
# only when something is missing. Needs root (or sudo). The host's build dependencies (cmake,
# Boost and nlohmann-json headers, which are the same on every architecture) come from
# tools/install-build-deps.sh.
set -euo pipefail

readonly FOREIGN_ARCH=arm64
# The cross compiler and its C library, qemu-aarch64, and the arm64 builds of the libraries
# the agent links (multiarch packages: they must match the host's versions, so apt may
# upgrade the host's copies too).
readonly PACKAGES=(
  g++-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu qemu-user file
  libssl-dev:arm64 zlib1g-dev:arm64 libgtest-dev:arm64
)

SUDO=()
[[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
readonly SUDO

has_foreign_arch() {
  dpkg --print-foreign-architectures | grep -qx "${FOREIGN_ARCH}"
}

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

main() {
  local missing
  mapfile -t missing < <(missing_packages)
  if has_foreign_arch && ((${#missing[@]} == 0)); then
    echo "cross dependencies: all installed"
    return 0
  fi
  if ! has_foreign_arch; then
    echo "cross dependencies: adding dpkg architecture ${FOREIGN_ARCH}"
    "${SUDO[@]}" dpkg --add-architecture "${FOREIGN_ARCH}"
  fi
  echo "cross dependencies: installing ${missing[*]}"
  # Always refresh: the arm64 package lists exist only after an update. Another apt run on
  # the machine (a parallel install) is waited for rather than failed on.
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

main "$@"

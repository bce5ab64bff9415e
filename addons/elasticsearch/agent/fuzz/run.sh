#!/usr/bin/env bash
# Builds the fuzzers with clang (ASan + UBSan) and runs each for FUZZ_SECONDS (default 60)
# on a seed corpus: keystores written by the agent's own writer and, when ../shared is
# present, the engines' own files. Exits non-zero on any crash; a crashing input is kept in
# build/fuzz/crashes/ to be turned into a unit test.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${FUZZ_DIR}/../../../.." && pwd)"
BUILD="${REPO_ROOT}/build/fuzz"
SHARED_KEYSTORES="${REPO_ROOT}/../shared/testdata/keystore"
readonly FUZZ_DIR REPO_ROOT BUILD SHARED_KEYSTORES
readonly SECONDS_EACH="${FUZZ_SECONDS:-60}"

build() {
  CXX="${FUZZ_CXX:-clang++-14}" cmake -S "$FUZZ_DIR" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$BUILD" >/dev/null
}

seed() {
  rm -rf "$BUILD/corpus"
  "$BUILD/make_seeds" "$BUILD/corpus/envelope" "$BUILD/corpus/entries"
  if [[ -d "$SHARED_KEYSTORES" ]]; then
    find "$SHARED_KEYSTORES" -name '*.keystore' -exec cp {} "$BUILD/corpus/envelope/" \;
  else
    echo "fuzz: $SHARED_KEYSTORES is absent: seeding with the agent's own files only"
  fi
}

fuzz() { # fuzz TARGET
  local target="$1"
  mkdir -p "$BUILD/crashes/$target"
  echo "fuzz: $target for ${SECONDS_EACH}s"
  if ! "$BUILD/$target" -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$BUILD/crashes/$target/" "$BUILD/corpus/${target%_fuzz}" \
    >"$BUILD/$target.log" 2>&1; then
    tail -n 40 "$BUILD/$target.log"
    echo "fuzz: $target FAILED; the input is in $BUILD/crashes/$target/"
    return 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$BUILD/$target.log" | tr '\n' ' '
  echo
}

main() {
  build
  seed
  local failed=0 passed=0 target
  for target in envelope_fuzz entries_fuzz; do
    if fuzz "$target"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done
  echo "fuzz: $passed passed, $failed failed"
  ((failed == 0))
}

main "$@"

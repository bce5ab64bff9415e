#!/usr/bin/env bash
# Differential test of the restore job's rename (optional: skipped without java): random
# RESTORE_RENAME_PATTERN/REPLACEMENT pairs (RenameFuzz.java gen), those check_rename_subset
# takes renamed over a set of names by Java's replaceAll (what the engine does) and by the
# job's own jq replace_all (what its plan says, the definitions read from restore.sh); every
# name must come out the same. Usage: test_rename_fuzz.sh [SEED] [COUNT] (default 1 300, some 30 s).
# Ends with 'N passed, M failed'; exits non-zero on a difference.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="${ROOT}/tests/scripts"
SEED=${1:-1} COUNT=${2:-300}
# RenameFuzz.java runs as a source file: a JDK 11 or later (its jdk.compiler module).
if ! command -v java >/dev/null || ! java --list-modules 2>/dev/null | grep -q '^jdk\.compiler@'; then
  echo "no JDK (java with jdk.compiler) found: the differential test of the rename is skipped"
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf -- "$TMP"' EXIT
# shellcheck disable=SC2016 # names, not expansions
NAMES=(a ab b-a aa-b r-alpha logs-b abc.d a.b-c é-ab 'x[ab]' 'a{2}' 'b]' '[a' 'a$b' aaa 'a/b' 'a&b'
  'c(x)' 'z\y' 'éé-ú1' 'a..b' '1-2-3' 'ab-ba.ab')

java "${HERE}/RenameFuzz.java" gen "$SEED" "$COUNT" >"$TMP/pats.tsv"
# The pairs the job takes (its validity check, then check_rename_subset), each over NAMES.
(
  # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
  source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
  while IFS=$'\t' read -r p r; do
    jq -n --arg re "$p" '"x" | test($re)' >/dev/null 2>&1 || continue
    (RESTORE_RENAME_PATTERN=$p RESTORE_RENAME_REPLACEMENT=$r check_rename_subset) >/dev/null 2>&1 || continue
    for n in "${NAMES[@]}"; do printf '%s\t%s\t%s\n' "$p" "$r" "$n"; done
  done <"$TMP/pats.tsv" >"$TMP/cases.tsv"
)
java "${HERE}/RenameFuzz.java" apply <"$TMP/cases.tsv" >"$TMP/java.out"
# The plan's rename: restore.sh's jq definitions, from 'def expand' to before 'def rename'.
# shellcheck disable=SC2016 # sed programs
defs=$(sed -n '/^ *def expand(\$m)/,/^ *def rename:/p' "${ROOT}/addons/elasticsearch/dataprotection/restore.sh" | sed '$d')
if [[ $defs != *'def replace_all('* ]]; then
  echo "FAIL: no def replace_all in restore.sh"
  echo "0 passed, 1 failed"
  exit 1
fi
# shellcheck disable=SC2016 # a jq program
prog="${defs}"' split("\t") as $p | $p[2] | try replace_all($p[0]; $p[1]) catch "ERR"'
if ! (jq -R -r "$prog" <"$TMP/cases.tsv" >"$TMP/jq.out") 2>/dev/null; then
  # jq aborted on a case: one at a time, to name it.
  : >"$TMP/jq.out"
  while IFS= read -r l; do
    (jq -R -r "$prog" <<<"$l" 2>/dev/null) >>"$TMP/jq.out" || echo "JQ-ABORTED" >>"$TMP/jq.out"
  done <"$TMP/cases.tsv"
fi
paste "$TMP/cases.tsv" "$TMP/java.out" "$TMP/jq.out" | awk -F'\t' '$4 != $5' >"$TMP/diffs.tsv"
cases=$(wc -l <"$TMP/cases.tsv")
failed=$(wc -l <"$TMP/diffs.tsv")
printf 'seed %s: %d patterns generated, %d taken; %d renames (%d change the name)\n' "$SEED" \
  "$(wc -l <"$TMP/pats.tsv")" "$(cut -f1,2 "$TMP/cases.tsv" | sort -u | wc -l)" "$cases" \
  "$(paste "$TMP/cases.tsv" "$TMP/java.out" | awk -F'\t' '$3 != $4' | wc -l)"
while IFS=$'\t' read -r p r n j q; do
  printf "FAIL: '%s' -> '%s' on %s: Java %s, the plan %s\n" "$p" "$r" "$n" "$j" "$q"
done < <(head -20 "$TMP/diffs.tsv")
printf '%d passed, %d failed\n' "$((cases - failed))" "$failed"
[[ $failed -eq 0 ]]

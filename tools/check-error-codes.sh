#!/usr/bin/env bash
# Fails when docs/security.md and the agent's source disagree on the error codes: every code
# the source can produce must have a row there, and every row must name a code that exists.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/addons/elasticsearch/agent/src"
doc="$root/docs/security.md"

# Upper-case string literals, minus environment variables' names and other words that are
# not codes (HTTP methods, algorithm names, mkstemp's template).
source_codes() {
  grep -rhoE '"[A-Z][A-Z0-9_]{3,}"' "$src" | tr -d '"' |
    grep -vE '^(AGENT_|ELASTIC_|FIELD_$)' |
    grep -vxE 'DELETE|POST|HEAD|FILE|STRING|PBKDF2|XXXXXX' | sort -u
}

# shellcheck disable=SC2016 # the backquotes are Markdown, not shell
# Codes named in the first column of a table row, or in the internal-codes sentence.
documented_codes() {
  {
    grep -oE '^\| `[A-Z][A-Z0-9_]+` \|' "$doc" | grep -oE '[A-Z][A-Z0-9_]+'
    grep -E '^Internal codes' -A2 "$doc" | grep -oE '`[A-Z][A-Z0-9_]+`' | tr -d '`'
  } | sort -u
}

missing="$(comm -23 <(source_codes) <(documented_codes))"
stale="$(comm -13 <(source_codes) <(documented_codes))"
status=0
if [[ -n "$missing" ]]; then
  printf 'check-error-codes: in the source but not in docs/security.md:\n%s\n' "$missing" >&2
  status=1
fi
if [[ -n "$stale" ]]; then
  printf 'check-error-codes: in docs/security.md but not in the source:\n%s\n' "$stale" >&2
  status=1
fi
((status == 0)) && echo "check-error-codes: $(source_codes | wc -l) codes, all documented"
exit "$status"

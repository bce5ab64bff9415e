#!/usr/bin/env bash
# KubeBlocks DataProtection restore job (ActionSet restore, postReady) of the
# Elasticsearch/OpenSearch addon: puts one Backup's snapshot back into a running cluster,
# changing nothing until every check has passed, and never deleting what it was not told to.
#
# Steps, one log line each (and one line per node, index or conflict where those matter):
#   0. The options are checked first (a bad one stops the job before any call).
#   1.-3. as backup.sh: an earlier attempt's repository waited for (EARLIER_ATTEMPT_WAIT),
#      the BackupRepo's keys into every node's keystore through the agents,
#      the reload, then the Backup's own path as a read-only repository kb-<backup>-<scope>-r<attempt>. When the
#      snapshot is not there, the upstream addon's layout is tried (its repository's base_path
#      is two directories above the Backup's path).
#   4. Pre-flight, read-only: the snapshot exists and is SUCCESS; the cluster's version can
#      restore it; what it holds (indices, data streams, feature states, global state); what
#      will be restored under which name; and each name that collides with an index, data
#      stream or alias the cluster holds. By default any collision stops the job here, listing
#      every one (RESTORE_CONFLICT_MODE chooses otherwise: rename, close or delete).
#   5. Cluster features that act on indices by themselves are paused, their state saved first
#      (Elasticsearch: ILM, SLM, watcher, ML upgrade mode; OpenSearch: ISM), and put back to
#      the saved state on every exit path, failure included.
#   6. The conflict mode's one change (close or delete exactly the colliding indices), then
#      POST _restore (wait_for_completion=false). Before the delete mode deletes, the restore
#      is tried under temporary names, so an engine refusal comes while nothing is deleted.
#   7. Done when every restored primary is active (_cluster/health/<indices>, each read held by
#      the engine until they are, up to POLL_INTERVAL) and _recovery shows each primary recovered from the snapshot,
#      within RESTORE_TIMEOUT; an index whose replicas cannot be placed (too few data nodes)
#      ends yellow with a warning. The repository is unregistered on exit; at an exit no signal
#      started, what an earlier attempt of the same Restore (HOSTNAME, the pod's name, says
#      which) killed outright left is collected too (collect_earlier_attempts).
#
# Environment: DP_DB_HOST, DP_DB_PORT (9200), DP_DB_USER, DP_DB_PASSWORD (empty: no auth),
# DP_BACKUP_NAME, DP_BACKUP_BASE_PATH, KB_NAMESPACE; DATASAFED_CONF
# (/etc/datasafed/datasafed.conf); ES_SCHEME (http), ES_CACERT; AGENT_SCHEME (http),
# AGENT_HOST_SUFFIX, AGENT_PORT (8080); timeouts in seconds: AGENT_CONNECT_TIMEOUT (5), AGENT_TIMEOUT (30),
# ES_CONNECT_TIMEOUT (10), ES_TIMEOUT (60), ES_VERIFY_TIMEOUT (120), RESTORE_TIMEOUT (21600),
# RESTORE_UNREACHABLE_TIMEOUT (300); POLL_INTERVAL (5), PROGRESS_INTERVAL (30); NAMES_PER_REQUEST
# (40, index names in one request's URL); after SIGTERM:
# EXIT_GRACE (25, the whole clean-up), EXIT_CALL_TIMEOUT (10, each of its calls);
# EARLIER_ATTEMPT_WAIT (40).
# Options (also the Restore's parameters): RESTORE_INDICES ('*,-.*'), RESTORE_CONFLICT_MODE
# (fail | rename | close | delete), RESTORE_RENAME_PATTERN, RESTORE_RENAME_REPLACEMENT,
# RESTORE_FEATURE_STATES (none | all | names), RESTORE_INCLUDE_GLOBAL_STATE (false),
# RESTORE_INCLUDE_ALIASES (true), RESTORE_REPLICAS (keep the snapshot's),
# MAX_RESTORE_BYTES_PER_SEC, RESTORE_LAYOUT (auto | own | upstream). docs/restore.md says
# what each does.
set -euo pipefail
# Never traced, even under `bash -x` or an exported SHELLOPTS: a trace would print the secrets
# the job handles.
{ set +x; } 2>/dev/null

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh disable=SC1091
source "${SCRIPT_DIR}/common.sh"

# Seconds the restore may take, from its start until every restored primary is active.
RESTORE_TIMEOUT=${RESTORE_TIMEOUT:-21600}
# Seconds in a row the cluster may leave the job's status reads unanswered while it waits.
RESTORE_UNREACHABLE_TIMEOUT=${RESTORE_UNREACHABLE_TIMEOUT:-300}
# Which indices to restore (engine multi-target syntax). The default leaves out
# dot-prefixed internal indices, which a new cluster creates itself.
RESTORE_INDICES=${RESTORE_INDICES:-*,-.*}
RESTORE_INCLUDE_GLOBAL_STATE=${RESTORE_INCLUDE_GLOBAL_STATE:-false}
RESTORE_INCLUDE_ALIASES=${RESTORE_INCLUDE_ALIASES:-true}
RESTORE_CONFLICT_MODE=${RESTORE_CONFLICT_MODE:-fail}
RESTORE_RENAME_PATTERN=${RESTORE_RENAME_PATTERN:-}
RESTORE_RENAME_REPLACEMENT=${RESTORE_RENAME_REPLACEMENT:-}
RESTORE_FEATURE_STATES=${RESTORE_FEATURE_STATES:-none}
RESTORE_REPLICAS=${RESTORE_REPLICAS:-}
RESTORE_LAYOUT=${RESTORE_LAYOUT:-auto}
MAX_RESTORE_BYTES_PER_SEC=${MAX_RESTORE_BYTES_PER_SEC:-}
# Index names per request where names go into the URL (the engines cap a request line at 4 KiB).
NAMES_PER_REQUEST=${NAMES_PER_REQUEST:-40}
BATCH_URL_BYTES=3000

# Features paused by this job, 'name<TAB>saved state' per line, put back in reverse order.
PAUSED_FEATURES=()
# Indices this job closed (close mode), reopened should the restore not start.
CLOSED_BY_JOB=()
RESTORE_STARTED=false
RESTORE_IN_FLIGHT=false
RESTORE_PRIMARIES_DONE=false

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------

# Checks every option before the job touches anything; sets INCLUDE_GLOBAL, INCLUDE_ALIASES.
validate_restore_options() {
  [[ $RESTORE_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "RESTORE_TIMEOUT '${RESTORE_TIMEOUT}' is not a positive number of seconds"
  [[ $RESTORE_UNREACHABLE_TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
    die "RESTORE_UNREACHABLE_TIMEOUT '${RESTORE_UNREACHABLE_TIMEOUT}' is not a positive number of seconds"
  [[ $NAMES_PER_REQUEST =~ ^[1-9][0-9]*$ ]] || die "NAMES_PER_REQUEST '${NAMES_PER_REQUEST}' is not a positive number"
  INCLUDE_GLOBAL=$(parse_bool "$RESTORE_INCLUDE_GLOBAL_STATE") ||
    die "RESTORE_INCLUDE_GLOBAL_STATE '${RESTORE_INCLUDE_GLOBAL_STATE}' is not a boolean"
  INCLUDE_ALIASES=$(parse_bool "$RESTORE_INCLUDE_ALIASES") ||
    die "RESTORE_INCLUDE_ALIASES '${RESTORE_INCLUDE_ALIASES}' is not a boolean"
  if [[ -n $RESTORE_RENAME_PATTERN && $INCLUDE_ALIASES == true ]]; then
    # The snapshot's aliases would then name the renamed indices and the existing ones both
    # (searches through them count twice, writes find no write index).
    INCLUDE_ALIASES=false
    log "aliases: not restored, since the indices are renamed (the snapshot's aliases would also name the renamed copies)"
  fi
  [[ -n ${RESTORE_INDICES//[[:space:],]/} ]] || die "RESTORE_INDICES is empty: name the indices to restore"
  [[ $RESTORE_INDICES != *[[:space:]]* ]] || die "RESTORE_INDICES '${RESTORE_INDICES}' holds blanks: separate patterns with commas only"
  case $RESTORE_CONFLICT_MODE in
    fail | close | delete | rename) ;;
    *) die "RESTORE_CONFLICT_MODE '${RESTORE_CONFLICT_MODE}' is not one of fail, rename, close, delete" ;;
  esac
  if [[ $RESTORE_CONFLICT_MODE == rename && -z $RESTORE_RENAME_PATTERN ]]; then
    die "RESTORE_CONFLICT_MODE rename needs RESTORE_RENAME_PATTERN (and RESTORE_RENAME_REPLACEMENT)"
  fi
  # Closing or deleting what a rename's names collide with would act on the plan's reading of
  # the pattern, which only the engine's own restore confirms, after the change.
  if [[ -n $RESTORE_RENAME_PATTERN && ($RESTORE_CONFLICT_MODE == close || $RESTORE_CONFLICT_MODE == delete) ]]; then
    die "RESTORE_RENAME_PATTERN with RESTORE_CONFLICT_MODE ${RESTORE_CONFLICT_MODE}: a rename goes with mode rename (or fail), to names that are free"
  fi
  if [[ -n $RESTORE_RENAME_PATTERN ]]; then
    [[ -n $RESTORE_RENAME_REPLACEMENT ]] || die "RESTORE_RENAME_PATTERN is set but RESTORE_RENAME_REPLACEMENT is empty"
    jq -n --arg re "$RESTORE_RENAME_PATTERN" '"x" | test($re)' >/dev/null 2>&1 ||
      die "RESTORE_RENAME_PATTERN '${RESTORE_RENAME_PATTERN}' is not a valid regular expression"
    check_rename_subset
  elif [[ -n $RESTORE_RENAME_REPLACEMENT ]]; then
    die "RESTORE_RENAME_REPLACEMENT is set but RESTORE_RENAME_PATTERN is empty"
  fi
  [[ $RESTORE_FEATURE_STATES =~ ^[A-Za-z0-9_.,-]+$ ]] ||
    die "RESTORE_FEATURE_STATES '${RESTORE_FEATURE_STATES}' is not 'none', 'all' or a comma-separated list of feature names"
  if [[ -n $RESTORE_REPLICAS && ! $RESTORE_REPLICAS =~ ^(0|[1-9][0-9]{0,2})$ ]]; then
    die "RESTORE_REPLICAS '${RESTORE_REPLICAS}' is not a whole number of replicas (0-999)"
  fi
  if [[ -n $MAX_RESTORE_BYTES_PER_SEC && ! ${MAX_RESTORE_BYTES_PER_SEC,,} =~ ^[0-9]+(\.[0-9]+)?(b|kb|mb|gb|tb|pb)?$ ]]; then
    die "MAX_RESTORE_BYTES_PER_SEC '${MAX_RESTORE_BYTES_PER_SEC}' is not a byte rate such as 200mb"
  fi
  case $RESTORE_LAYOUT in
    auto | own | upstream) ;;
    *) die "RESTORE_LAYOUT '${RESTORE_LAYOUT}' is not one of auto, own, upstream" ;;
  esac
}

# check_rename_subset: the pre-flight plans the rename with jq's regular expressions (jq 1.6,
# Oniguruma), the engine applies Java's replaceAll; where the two read a pattern differently
# the plan would be wrong (a conflict unseen, the wrong index overwritten). So the pattern is
# parsed against a whitelist of what both read alike (rename_pattern_parse), its capturing
# groups counted there (at most 9: Java reads $12 as group 12 when there are 12), and a
# pattern matching the empty string is refused; a replacement may hold $0-$9 only up to the
# pattern's groups and no other $ or \ (Java refuses a reference to a group the pattern lacks).
check_rename_subset() {
  local re=$RESTORE_RENAME_PATTERN rep=$RESTORE_RENAME_REPLACEMENT groups rc=0
  rename_pattern_parse
  groups=$RX_GROUPS
  ((groups <= 9)) ||
    die "RESTORE_RENAME_PATTERN '${re}' has ${groups} capturing groups, more than the 9 a replacement can name (\$1-\$9; Java would read \$12 as group 12): make the others (?:...)"
  jq -n -e --arg re "$re" '"" | test($re)' >/dev/null 2>&1 || rc=$?
  # Java and jq 1.6 place empty matches differently ('$' -> '-copy' gives r-a-copy in Java,
  # r-a-copy-copy-copy in jq).
  ((rc != 0)) ||
    die "RESTORE_RENAME_PATTERN '${re}' allows a match of the empty string, which the engine's Java regular expressions and this job's plan place differently: match one character at least (e.g. ^(.+)\$)"
  ((rc == 1)) ||
    die "RESTORE_RENAME_PATTERN '${re}': this job's jq could not test it (exit ${rc}): choose a simpler pattern"
  [[ $rep != *"\\"* ]] ||
    die "RESTORE_RENAME_REPLACEMENT '${rep}' has a backslash, which Java's replaceAll reads as an escape: leave it out"
  local rest=$rep n
  while [[ $rest == *'$'* ]]; do
    rest=${rest#*'$'}
    [[ $rest =~ ^[0-9] ]] ||
      die "RESTORE_RENAME_REPLACEMENT '${rep}' has a \$ that is not a group reference \$0-\$9: the engine refuses it"
    n=${rest:0:1}
    ((n <= groups)) ||
      die "RESTORE_RENAME_REPLACEMENT '${rep}' refers to group ${n}, but RESTORE_RENAME_PATTERN has ${groups}: the engine refuses it"
    rest=${rest:1}
  done
}

# The punctuation a backslash may escape, inside a [...] set and out of it.
RX_PUNCT='\.*+?^$|()[]{}/-'

# rename_refuse WHAT: stops, naming the construct of RESTORE_RENAME_PATTERN, at RX_AT, that the
# whitelist does not take.
rename_refuse() {
  die "RESTORE_RENAME_PATTERN '${RESTORE_RENAME_PATTERN}' has $1 (at '${RX_RE:RX_AT}'), which the engine's Java regular expressions and this job's plan may read differently: only plain characters, ., escaped punctuation (\\. \\- ...), flat [...] or [^...] sets of characters, ranges a-z and escaped punctuation, groups (...) and (?:...), |, ^, \$ and one quantifier * + ? {n} {n,} {n,m} (lazy with ?) on a character, set or group are taken (e.g. ^(.+)\$)"
}

# rename_pattern_parse: reads RESTORE_RENAME_PATTERN by the whitelist, stopping at what it does
# not take; sets RX_GROUPS to its capturing groups. One byte at a time (LC_ALL=C): a character
# beyond ASCII is a plain one whatever its bytes. For each sequence (the pattern, a group's
# alternative) it tracks whether what precedes the last item can match the empty string
# (seq_null), whether an earlier alternative can (alts_null), the last item's kind and whether
# it can (last_null); for a group, whether it holds a capturing group (last_holds). A quantified
# group that can match the empty string is refused (Java and jq repeat an empty match
# differently, and jq 1.6 can crash on it), and one holding a capturing group (Java keeps what
# that captured in an iteration it gave up: '(?:.(.))+.' on abcd gives $1 d in Java, b in jq).
rename_pattern_parse() {
  local LC_ALL=C
  RX_RE=$RESTORE_RENAME_PATTERN RX_AT=0 RX_GROUPS=0
  local c kind=none seq_null=1 alts_null=0 last_null=1 last_holds=0 group_null groups_in len
  local -a outer=()
  while ((RX_AT < ${#RX_RE})); do
    c=${RX_RE:RX_AT:1}
    case $c in
      '*' | '+' | '?' | '{')
        rename_quantifier "$kind" "$last_null" "$last_holds"
        ((RX_MIN > 0)) || last_null=1
        kind=quantified
        continue ;;
      '}') rename_refuse "a } that closes no quantifier {n,m}" ;;
      ']') rename_refuse "a ] that closes no [...] set" ;;
    esac
    # Any other item: what preceded it joins the sequence.
    seq_null=$((seq_null && last_null))
    case $c in
      "\\") rename_escape ;;
      '[') rename_set ;;
      '(')
        if [[ ${RX_RE:RX_AT+1:1} == '?' ]]; then
          [[ ${RX_RE:RX_AT+2:1} == ':' ]] || rename_refuse "a (? construct other than (?:"
          len=3
        else
          RX_GROUPS=$((RX_GROUPS + 1)) len=1
        fi
        outer+=("$seq_null $alts_null $RX_AT $RX_GROUPS")
        seq_null=1 alts_null=0 last_null=1 kind=none RX_AT=$((RX_AT + len))
        continue ;;
      ')')
        ((${#outer[@]} > 0)) || rename_refuse "a ) that closes no group"
        group_null=$((alts_null || (seq_null && last_null)))
        read -r seq_null alts_null _ groups_in <<<"${outer[-1]}"
        unset 'outer[-1]'
        last_holds=$((RX_GROUPS > groups_in))
        last_null=$group_null kind=group RX_AT=$((RX_AT + 1))
        continue ;;
      '|')
        alts_null=$((alts_null || seq_null))
        seq_null=1 last_null=1 kind=none RX_AT=$((RX_AT + 1))
        continue ;;
      '^' | '$')
        last_null=1 kind=anchor RX_AT=$((RX_AT + 1))
        continue ;;
      *) RX_AT=$((RX_AT + 1)) ;; # a plain character or .
    esac
    last_null=0 kind=atom
  done
  ((${#outer[@]} == 0)) || read -r _ _ RX_AT _ <<<"${outer[-1]}"
  ((${#outer[@]} == 0)) || rename_refuse "a ( that is not closed"
}

# rename_quantifier KIND LAST_NULL LAST_HOLDS: reads the quantifier at RX_AT (and a lazy ?
# after it) on an item of KIND (a group: that can match the empty string, that holds a
# capturing group, when 1); sets RX_MIN to its least count.
rename_quantifier() {
  local at=$RX_AT q='^\{([0-9]{1,3})(,([0-9]{0,3}))?\}' len=1
  case ${RX_RE:RX_AT:1} in
    '*' | '?') RX_MIN=0 ;;
    '+') RX_MIN=1 ;;
    '{')
      [[ ${RX_RE:RX_AT} =~ $q ]] ||
        rename_refuse "a { that is not a quantifier {n}, {n,} or {n,m} (n and m of at most 3 digits)"
      RX_MIN=$((10#${BASH_REMATCH[1]})) len=${#BASH_REMATCH[0]}
      if [[ -n ${BASH_REMATCH[3]} ]] && ((10#${BASH_REMATCH[3]} < RX_MIN)); then
        rename_refuse "a quantifier {n,m} with m below n"
      fi ;;
  esac
  case $1 in
    none) rename_refuse "a quantifier at the start of the pattern, a group or an alternative" ;;
    anchor) rename_refuse "a quantifier on an anchor ^ or \$" ;;
    quantified)
      [[ ${RX_RE:RX_AT:1} != '+' ]] || rename_refuse "a possessive quantifier (a + after a quantifier)"
      rename_refuse "a quantifier on a quantifier" ;;
    group)
      (($2 == 0)) || rename_refuse "a quantifier on a group that can match the empty string"
      (($3 == 0)) || rename_refuse "a quantifier on a group that holds a capturing group" ;;
  esac
  RX_AT=$((at + len))
  [[ ${RX_RE:RX_AT:1} != '?' ]] || RX_AT=$((RX_AT + 1))
}

# rename_escape: reads the backslash escape at RX_AT, of punctuation only (\d \w \s are Unicode
# classes in jq and ASCII ones in Java; \p, \Q and the like Java's own).
rename_escape() {
  local x=${RX_RE:RX_AT+1:1}
  [[ -n $x && $RX_PUNCT == *"$x"* ]] ||
    rename_refuse "a backslash escape other than of punctuation (\\X, X one of ${RX_PUNCT})"
  RX_AT=$((RX_AT + 2))
}

# rename_set: reads the [...] or [^...] set at RX_AT: characters, ranges a-z of plain
# characters and escaped punctuation; no [ inside (a nested set or a POSIX class), no &&
# (Java's intersection), no ] first, a - only first, last or in a range.
rename_set() {
  local start=$RX_AT members=0 c
  RX_AT=$((RX_AT + 1))
  [[ ${RX_RE:RX_AT:1} != '^' ]] || RX_AT=$((RX_AT + 1))
  [[ ${RX_RE:RX_AT:1} != ']' ]] || rename_refuse "a ] first in a [...] set (or an empty set): escape it, \\]"
  while :; do
    c=${RX_RE:RX_AT:1}
    case $c in
      '') RX_AT=$start && rename_refuse "a [ that is not closed" ;;
      ']') RX_AT=$((RX_AT + 1)) && return 0 ;;
      '-')
        ((members == 0)) || [[ ${RX_RE:RX_AT+1:1} == ']' ]] ||
          rename_refuse "a - in a [...] set that is neither first, last nor in a range a-z"
        RX_AT=$((RX_AT + 1)) ;;
      "\\") rename_escape ;;
      *)
        rename_set_char
        if [[ ${RX_RE:RX_AT:1} == '-' && ${RX_RE:RX_AT+1:1} != ']' ]]; then
          c=${RX_RE:RX_AT+1:1}
          [[ -n $c && $c != '-' && $c != "\\" ]] ||
            rename_refuse "a range in a [...] set that does not end in a plain character"
          RX_AT=$((RX_AT + 1))
          rename_set_char
        fi ;;
    esac
    members=$((members + 1))
  done
}

# rename_set_char: reads the plain character at RX_AT in a [...] set.
rename_set_char() {
  case ${RX_RE:RX_AT:1} in
    '[') rename_refuse "a [ inside a [...] set (a nested set or a POSIX class)" ;;
    '&') [[ ${RX_RE:RX_AT+1:1} != '&' ]] || rename_refuse "&& in a [...] set (an intersection in Java)" ;;
  esac
  RX_AT=$((RX_AT + 1))
}

# ---------------------------------------------------------------------------
# Finding the snapshot
# ---------------------------------------------------------------------------

# The base_path of a Backup made by the upstream addon's full-backup method: its repository
# sits two directories above the Backup's path (/<ns>/<cluster>-<uid>), under the root's prefix.
upstream_base_path() {
  local parent
  parent=$(normalize_path "$DP_BACKUP_BASE_PATH")
  parent=$(dirname "$(dirname "/$parent")")
  repository_base_path "$S3_PREFIX" "$parent"
}

# Registers the repository at the Backup's path, or where the upstream addon kept it, as
# RESTORE_LAYOUT says; with 'auto' the upstream place is tried when the snapshot is not at
# the Backup's own path.
locate_snapshot() {
  if [[ $RESTORE_LAYOUT == upstream ]]; then
    REPO_BASE_PATH=$(upstream_base_path)
    log "layout upstream: the repository of the upstream addon, base_path ${REPO_BASE_PATH}"
  fi
  register_repository true
  read_snapshot
  [[ $SNAPSHOT_STATE == MISSING && $RESTORE_LAYOUT == auto ]] || return 0
  local own=$REPO_BASE_PATH upstream
  upstream=$(upstream_base_path)
  [[ -n $upstream && $upstream != "$own" ]] || return 0
  log "snapshot ${SNAPSHOT_NAME} is not at ${own}: trying the upstream addon's layout, base_path ${upstream}"
  REPO_BASE_PATH=$upstream
  register_repository true
  read_snapshot
  if [[ $SNAPSHOT_STATE == MISSING ]]; then
    REPO_BASE_PATH=$own
    SNAPSHOT_WHERE=$own
    SNAPSHOT_ALSO=" (nor at ${upstream}, where the upstream addon keeps it)"
  else
    log "snapshot ${SNAPSHOT_NAME} found in the upstream addon's layout"
  fi
}

# Reads the snapshot into $WORK_DIR/snapshot.json and SNAPSHOT_STATE; stops when no usable
# answer came.
read_snapshot() {
  SNAPSHOT_WHERE=$REPO_BASE_PATH
  if ! snapshot_info; then
    if [[ -n $HTTP_ERROR ]]; then
      die "reading snapshot ${SNAPSHOT_NAME}: no answer: ${HTTP_ERROR}"
    fi
    die "reading snapshot ${SNAPSHOT_NAME}: HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")"
  fi
}

# ---------------------------------------------------------------------------
# Pre-flight (read-only)
# ---------------------------------------------------------------------------

# Refuses a snapshot that is missing or not SUCCESS, and prints what it holds.
check_snapshot() {
  case $SNAPSHOT_STATE in
    MISSING)
      die "snapshot ${SNAPSHOT_NAME} does not exist in bucket ${S3_BUCKET:-?} at ${SNAPSHOT_WHERE}: nothing restored${SNAPSHOT_ALSO:-}" ;;
    SUCCESS) ;;
    *)
      die "snapshot ${SNAPSHOT_NAME} is ${SNAPSHOT_STATE}, not SUCCESS: nothing restored" ;;
  esac
  local summary contents
  { IFS= read -r summary && IFS= read -r contents; } <<<"$(jq -r '.snapshots[0] |
      "\(.indices | length) indices, \(.shards.total // "?") shards, taken \(.start_time // "?") by version \(.version // "?")",
      "data streams: \((.data_streams // []) | if length == 0 then "none" else join(", ") end); " +
      "feature states: \((.feature_states // []) | map(.feature_name) | if length == 0 then "none" else join(", ") end); " +
      "global state: \(if .include_global_state == true then "included" elif .include_global_state == false then "not included" else "unknown" end)"' \
    "$WORK_DIR/snapshot.json")"
  log "snapshot ${SNAPSHOT_NAME}: SUCCESS, ${summary}"
  log "snapshot contents: ${contents}"
}

# version_parts X.Y.Z[-...]: prints 'X Y Z' (missing parts are 0).
version_parts() {
  local v=${1%%-*} major minor patch
  IFS=. read -r major minor patch _ <<<"$v"
  major=${major//[^0-9]/} minor=${minor//[^0-9]/} patch=${patch//[^0-9]/}
  printf '%d %d %d' "$((10#${major:-0}))" "$((10#${minor:-0}))" "$((10#${patch:-0}))"
}

# version_le A B: A <= B, both X.Y.Z.
version_le() {
  local a b
  read -r -a a <<<"$(version_parts "$1")"
  read -r -a b <<<"$(version_parts "$2")"
  ((a[0] < b[0] || (a[0] == b[0] && (a[1] < b[1] || (a[1] == b[1] && a[2] <= b[2])))))
}

# Whether a cluster of ENGINE_DISTRIBUTION ENGINE_VERSION can read a snapshot made by
# version $1; prints the reason when it cannot. Elasticsearch restores snapshots of its own
# and the previous major; OpenSearch 1 and 2 those of Elasticsearch up to 7.10.2 (1 also
# 6.x), OpenSearch 3 those of OpenSearch 2 and 3; no engine restores a newer one.
version_refusal() {
  local snap=$1 snap_major target_major
  read -r snap_major _ <<<"$(version_parts "$snap")"
  read -r target_major _ <<<"$(version_parts "$ENGINE_VERSION")"
  if [[ $ENGINE_DISTRIBUTION == opensearch ]]; then
    if ((snap_major >= 5)); then
      # Taken by Elasticsearch.
      if ((target_major >= 3)); then
        printf 'OpenSearch %s restores snapshots of OpenSearch 2 and 3 only, not of Elasticsearch %s' "$ENGINE_VERSION" "$snap"
      elif ! version_le "$snap" 7.10.2; then
        printf 'OpenSearch restores snapshots of Elasticsearch up to 7.10.2, not %s' "$snap"
      elif ((snap_major < (target_major == 1 ? 6 : 7))); then
        printf 'OpenSearch %s does not restore snapshots of Elasticsearch %s' "$ENGINE_VERSION" "$snap"
      fi
    elif ! version_le "$snap" "$ENGINE_VERSION"; then
      printf 'the snapshot was taken by OpenSearch %s, newer than this cluster (%s)' "$snap" "$ENGINE_VERSION"
    elif ((target_major - snap_major > 1)); then
      printf 'OpenSearch %s restores snapshots of OpenSearch %d and %d only, not %s' \
        "$ENGINE_VERSION" "$((target_major - 1))" "$target_major" "$snap"
    fi
    return 0
  fi
  if ((snap_major < 5)); then
    printf 'the snapshot says version %s: taken by OpenSearch (or an Elasticsearch before 5), which Elasticsearch %s cannot restore' "$snap" "$ENGINE_VERSION"
  elif ! version_le "$snap" "$ENGINE_VERSION"; then
    printf 'the snapshot was taken by Elasticsearch %s, newer than this cluster (%s)' "$snap" "$ENGINE_VERSION"
  elif ((target_major - snap_major > 1)); then
    printf 'Elasticsearch %s restores snapshots of Elasticsearch %d and %d only, not %s' \
      "$ENGINE_VERSION" "$((target_major - 1))" "$target_major" "$snap"
  fi
  return 0
}

# Stops the job when the cluster cannot restore the snapshot's version. Elasticsearch 8.19+
# reports a range of releases ('8.19.9-8.19.21'): its first one is the oldest that wrote it.
check_version() {
  local snap reason
  snap=$(jq -r '.snapshots[0].version // ""' "$WORK_DIR/snapshot.json")
  if [[ ! $snap =~ ^[0-9]+\.[0-9]+ ]]; then
    warn "snapshot ${SNAPSHOT_NAME} names no version ('${snap}'): the version check is left to the engine"
    return 0
  fi
  reason=$(version_refusal "$snap")
  [[ -z $reason ]] || die "snapshot ${SNAPSHOT_NAME} cannot be restored here: ${reason}: nothing restored"
  log "version: snapshot ${snap}, cluster ${ENGINE_DISTRIBUTION} ${ENGINE_VERSION}: restorable"
}

# Whether this engine restores system indices through feature states (Elasticsearch 7.12+).
has_feature_states() {
  [[ $ENGINE_DISTRIBUTION == elasticsearch ]] && version_le 7.12.0 "$ENGINE_VERSION"
}

# Resolves RESTORE_FEATURE_STATES against the snapshot into $WORK_DIR/features.json (the
# names to send; [] for none).
select_feature_states() {
  local available
  if ! has_feature_states; then
    [[ ${RESTORE_FEATURE_STATES,,} == none ]] ||
      die "RESTORE_FEATURE_STATES '${RESTORE_FEATURE_STATES}': feature states exist on Elasticsearch 7.12 and later only; on ${ENGINE_DISTRIBUTION} ${ENGINE_VERSION} system indices travel with the indices (name them in RESTORE_INDICES) or the global state"
    printf '[]' >"$WORK_DIR/features.json"
    return 0
  fi
  available=$(jq -c '[.snapshots[0].feature_states // [] | .[].feature_name]' "$WORK_DIR/snapshot.json")
  jq -n --arg wanted "$RESTORE_FEATURE_STATES" --argjson available "$available" '
      ($wanted | ascii_downcase) as $w
      | if $w == "none" then []
        elif $w == "all" then $available
        else $wanted | split(",") | map(select(. != "")) | unique end' >"$WORK_DIR/features.json"
  local missing
  missing=$(jq -r --argjson available "$available" '[.[] | select(. as $f | $available | index($f) | not)] | join(", ")' "$WORK_DIR/features.json")
  [[ -z $missing ]] || die "RESTORE_FEATURE_STATES names feature state(s) not in snapshot ${SNAPSHOT_NAME}: ${missing} (it has: $(jq -r 'if length == 0 then "none" else join(", ") end' <<<"$available"))"
  if [[ $(jq -r 'index("security") != null' "$WORK_DIR/features.json") == true ]]; then
    warn "feature state 'security' replaces the cluster's users, roles and API keys with the snapshot's, the credentials of this job included"
  fi
  log "feature states to restore: $(jq -r 'if length == 0 then "none (RESTORE_FEATURE_STATES=none)" else join(", ") end' "$WORK_DIR/features.json")"
}

# Builds $WORK_DIR/plan.json: every snapshot index and data stream RESTORE_INDICES selects,
# with the name it will have here. Follows the engines' selection: comma-separated names and
# '*' patterns, a '-' excludes what matched before it (or, first, from everything), an exact
# name that the snapshot lacks is an error; a selected data stream brings its backing indices;
# system indices of a feature state come back only through their feature state; the rename
# is Java's replaceAll ($1..$9 for groups), on a backing index after its '.ds-' prefix.
# Elasticsearch's ILM and searchable snapshots put prefixes before a backing index's '.ds-'
# (shrink-<4 chars>-, restored-, partial-, downsample-<interval>-): such an index still
# belongs to its data stream.
ILM_BACKING_PREFIX='((shrink|restored|partial|downsample)-([a-z0-9]+-)?)*'
plan_restore() {
  # jq 1.6 aborts (exit 134) on some patterns the whitelist may still let through: a sentence.
  local renamed=''
  [[ -z $RESTORE_RENAME_PATTERN ]] ||
    renamed=" renamed by RESTORE_RENAME_PATTERN '${RESTORE_RENAME_PATTERN}' (jq 1.6 fails on some patterns: choose a simpler one)"
  jq --arg expr "$RESTORE_INDICES" --arg re "$RESTORE_RENAME_PATTERN" --arg rep "$RESTORE_RENAME_REPLACEMENT" \
    --arg ilm_prefix "$ILM_BACKING_PREFIX" --argjson system_by_feature "$(has_feature_states && echo true || echo false)" \
    --argjson es_dates "$([[ $ENGINE_DISTRIBUTION == elasticsearch ]] && echo true || echo false)" "${JQ_GLOB_RE}"'
    def expand($m): gsub("\\$(?<n>[0-9])"; (.n | tonumber) as $n
        | if $n == 0 then $m.string else ($m.captures[$n - 1].string // "") end);
    def replace_all($re; $rep): . as $s
        | reduce (match($re; "g")) as $m ({out: "", pos: 0};
            if $m.length == 0 and $m.offset < .pos then . else
            .out += $s[.pos:$m.offset] + ($rep | expand($m)) | .pos = $m.offset + $m.length end)
        | .out + $s[.pos:];
    def rename: if $re == "" then . else replace_all($re; $rep) end;
    # .ds-<stream>-<generation>, and on Elasticsearch 7.11+ .ds-<stream>-<yyyy.MM.dd>-<generation>.
    def backing($ds; $dated): test("\\A" + $ilm_prefix + "\\.(ds|fs)-" + ($ds | glob_re | ltrimstr("\\A") | rtrimstr("\\z"))
        + "-" + (if $dated then "[0-9]{4}\\.[0-9]{2}\\.[0-9]{2}-" else "" end) + "[0-9]{6}\\z");
    def longest_fit($streams; $dated): . as $n | [$streams[] | select(. as $d | $n | backing($d; $dated))] | max_by(length);
    # The data stream of the snapshot a backing index belongs to, null for none. Of the streams
    # whose names it fits, the longest (.ds-a-000001 fits a, but is a-000001 when OpenSearch
    # holds both); on Elasticsearch, whose names carry a date (7.11+), a fit with the date
    # first (.ds-a-2024.01.01-000001 is then a, not a-2024.01.01), one without it (a stream
    # made before 7.11) after.
    def owner($streams): (if $es_dates then longest_fit($streams; true) else null end) // longest_fit($streams; false);
    .snapshots[0] as $s
    | ($s.indices // []) as $indices
    | ($s.data_streams // []) as $streams
    | ([$s.feature_states // [] | .[].indices[]] | unique) as $system
    | ($indices + $streams | unique) as $names
    | ($expr | split(",") | map(select(. != ""))) as $terms
    | reduce range(0; $terms | length) as $i ({sel: [], missing: [], explicit_system: []};
        $terms[$i] as $t
        | if ($names | index($t)) != null then .sel += [$t]
            | if ($system | index($t)) != null and $system_by_feature then .explicit_system += [$t] else . end
          elif ($t | startswith("-")) then
            ($t[1:]) as $p
            | (if $i == 0 then .sel = [$names[] | select(. as $n | ($system | index($n)) == null or ($system_by_feature | not))] else . end)
            | .sel |= map(select(test($p | glob_re) | not))
          elif ($t | contains("*")) then
            .sel += [$names[] | select(test($t | glob_re))
                     | select(. as $n | ($system | index($n)) == null or ($system_by_feature | not))]
          else .missing += [$t] end)
    | (.sel | unique) as $sel
    | ($streams | map(select(. as $d | $sel | index($d)))) as $sel_streams
    | ([$sel[] | select(. as $n | $indices | index($n))]
       + [$indices[] | select(owner($streams) as $o | $o != null and ($sel_streams | index($o)))]
       | unique) as $sel_indices
    | {missing: .missing, explicit_system: .explicit_system,
       indices: [$sel_indices[]
         | (owner($streams) as $o | if $o != null and ($sel_streams | index($o)) then $o else null end) as $of
         | {source: ., stream: $of,
            target: (if $re != "" and $of != null then .[0:4] + (.[4:] | rename) else rename end)}],
       data_streams: [$sel_streams[] | {source: ., target: rename}],
       system: [$s.feature_states // [] | .[] | {feature: .feature_name, indices: .indices}]}' \
    "$WORK_DIR/snapshot.json" >"$WORK_DIR/plan.json" ||
    die "planning the restore: jq stopped (exit $?) on the snapshot's names${renamed}: nothing restored"

  # What the plan says, from one jq run (fields split at US, 0x1f): what the snapshot lacks,
  # system indices named outright, renamed names that are invalid or taken twice, the line
  # to log, how much is selected, and what the snapshot holds (for the message).
  local fields missing system bad dup line selected holds
  fields=$(jq -r --slurpfile features "$WORK_DIR/features.json" --slurpfile snapshot "$WORK_DIR/snapshot.json" '
      [(.missing | join(", ")), (.explicit_system | join(", ")),
       ([.indices[], .data_streams[] | .target
         | select(test("^[^-_+][^A-Z\\\\/*?\"<>| ,#:]*$") | not)] | unique | join(", ")),
       ([.indices[].target] | group_by(.) | map(select(length > 1) | .[0]) | join(", ")),
       ("to restore: \(.indices | length) index(es), \(.data_streams | length) data stream(s)" +
        (if ([.indices[] | select(.source != .target)] | length) > 0
         then ", renamed: " + ([.indices[], .data_streams[] | select(.source != .target) | "\(.source) -> \(.target)"][:10] | join(", "))
         else "" end)),
       ((.indices | length) + (.data_streams | length) + ($features[0] | length)),
       ($snapshot[0].snapshots[0].indices // [] | .[:10] | join(", "))]
      | map(tostring | gsub("[\u001f\n]"; " ")) | join("\u001f")' "$WORK_DIR/plan.json")
  IFS=$'\x1f' read -r missing system bad dup line selected holds <<<"$fields"
  # The job's lists of names (conflicts, deletes, the watch list) are a name a line: a name
  # holding a line break would be read as two, which may be other indices.
  local broken
  broken=$(jq -r '[.indices[], .data_streams[] | .source | select(test("[\n\r]")) | tojson][:5] | join(", ")' "$WORK_DIR/plan.json")
  [[ -z $broken ]] ||
    die "RESTORE_INDICES selects name(s) holding a line break, ${broken}, which this job cannot carry through its lists of names: leave them out (a -<pattern> in RESTORE_INDICES): nothing restored"
  # Java's '.' matches no line terminator, jq's does: with such a name the engine's rename
  # would differ from the plan's.
  if [[ -n $RESTORE_RENAME_PATTERN ]] &&
    jq -e '[.indices[], .data_streams[] | .source | select(test("[\n\r\u0085\u2028\u2029]"))] | length > 0' \
      "$WORK_DIR/plan.json" >/dev/null; then
    die "RESTORE_RENAME_PATTERN: a selected name holds a line break character, which the engine's rename reads otherwise than this job's plan: leave it out of RESTORE_INDICES: nothing restored"
  fi
  # The engines rename a backing index after its '.ds-' prefix; one with a prefix before that
  # follows rules no engine documents: the plan cannot say its new name.
  local prefixed
  [[ -z $RESTORE_RENAME_PATTERN ]] || prefixed=$(jq -r '[.indices[] | select(.stream != null)
      | select(.source | test("^\\.(ds|fs)-") | not) | "\(.source) (of \(.stream))"][:10] | join(", ")' "$WORK_DIR/plan.json")
  [[ -z ${prefixed:-} ]] ||
    die "RESTORE_RENAME_PATTERN: backing index(es) that ILM or a searchable snapshot renamed, ${prefixed}, would be renamed by rules this job cannot foresee: restore their data stream without a rename, or leave it out of RESTORE_INDICES: nothing restored"
  [[ -z $missing ]] || die "RESTORE_INDICES names what snapshot ${SNAPSHOT_NAME} does not hold: ${missing}: nothing restored"
  [[ -z $system ]] ||
    die "RESTORE_INDICES names system indices (${system}): on ${ENGINE_DISTRIBUTION} ${ENGINE_VERSION} they come back only with their feature state (RESTORE_FEATURE_STATES): nothing restored"
  # Renamed names must be valid index names, and distinct.
  [[ -z $bad ]] || die "the rename gives invalid index name(s): ${bad} (lower case, no \\ / * ? \" < > | , # : or blank, not starting with - _ +): nothing restored"
  [[ -z $dup ]] || die "the rename gives two indices the same name: ${dup}: nothing restored"
  log "$line"
  ((selected > 0)) || [[ $INCLUDE_GLOBAL == true ]] ||
    die "RESTORE_INDICES '${RESTORE_INDICES}' selects nothing in snapshot ${SNAPSHOT_NAME} (it holds: ${holds}): nothing restored"
}

# OpenSearch (seen on 3.6.0) fails a restore of the global state that leaves out a data stream
# of the snapshot (a NullPointerException, HTTP 500) only once the restore is asked for: after
# a delete or close mode has changed the cluster. Refused here, before any change.
check_global_state_streams() {
  [[ $INCLUDE_GLOBAL == true && $ENGINE_DISTRIBUTION == opensearch ]] || return 0
  local left_out
  left_out=$(jq -r --slurpfile plan "$WORK_DIR/plan.json" '
      [(.snapshots[0].data_streams // [])[] | select(. as $d | [$plan[0].data_streams[].source] | index($d) | not)]
      | join(", ")' "$WORK_DIR/snapshot.json")
  [[ -z $left_out ]] ||
    die "RESTORE_INCLUDE_GLOBAL_STATE=true with data stream(s) of the snapshot left out (${left_out}): OpenSearch fails such a restore; add them to RESTORE_INDICES, or restore without the global state: nothing restored"
}

# What the cluster holds: $WORK_DIR/existing.json {indices: {name: open|close},
# aliases: [names], data_streams: {name: [backing indices]}}.
read_existing() {
  es_ok "listing the cluster's indices" GET '/_cat/indices?format=json&h=index,status&expand_wildcards=all'
  mv -f "$ES_REPLY" "$WORK_DIR/cat-indices.json"
  es_ok "listing the cluster's aliases" GET '/_cat/aliases?format=json&h=alias&expand_wildcards=all'
  mv -f "$ES_REPLY" "$WORK_DIR/cat-aliases.json"
  # Elasticsearch hides some data streams unless asked; OpenSearch refuses the parameter.
  local streams_path=/_data_stream
  [[ $ENGINE_DISTRIBUTION == opensearch ]] || streams_path+='?expand_wildcards=all'
  if es_call GET "$streams_path" && [[ $HTTP_STATUS == 200 ]]; then
    mv -f "$ES_REPLY" "$WORK_DIR/data-streams.json"
  else
    printf '{}' >"$WORK_DIR/data-streams.json"
  fi
  jq -n --slurpfile i "$WORK_DIR/cat-indices.json" --slurpfile a "$WORK_DIR/cat-aliases.json" \
    --slurpfile d "$WORK_DIR/data-streams.json" '
      {indices: ($i[0] | map({(.index): .status}) | add // {}),
       aliases: ([$a[0][].alias] | unique),
       data_streams: ([$d[0].data_streams[]? | {(.name): [.indices[]?.index_name]}] | add // {})}' \
    >"$WORK_DIR/existing.json"
}

# $WORK_DIR/conflicts.json: one entry per name of the plan the cluster already holds, with
# what holds it: {name, kind (open index|closed index|alias|data stream|index of data
# stream D), stream (when the name belongs to an existing data stream)}.
find_conflicts() {
  read_existing
  jq -c --slurpfile e "$WORK_DIR/existing.json" '
    $e[0] as $x
    | ([$x.data_streams | to_entries[] | .key as $d | .value[] | {(.): $d}] | add // {}) as $owner
    | [(.indices[] | (.source != .target) as $renamed | .target | . as $n
        | if ($owner[$n] // null) != null then {name: $n, kind: "index of data stream \($owner[$n])", stream: $owner[$n]}
          elif ($x.indices[$n] // null) == "open" then {name: $n, kind: "open index"}
          elif ($x.indices[$n] // null) != null then {name: $n, kind: "closed index"}
          elif ($x.aliases | index($n)) != null then {name: $n, kind: "alias"}
          elif ($x.data_streams[$n] // null) != null then {name: $n, kind: "data stream", stream: $n}
          else empty end | .renamed = $renamed),
       (.data_streams[] | (.source != .target) as $renamed | .target | . as $n
        | if ($x.data_streams[$n] // null) != null then {name: $n, kind: "data stream", stream: $n}
          elif ($x.indices[$n] // null) != null then {name: $n, kind: "\(if $x.indices[$n] == "open" then "open" else "closed" end) index"}
          elif ($x.aliases | index($n)) != null then {name: $n, kind: "alias"}
          else empty end | .renamed = $renamed)]
    | unique_by(.name)' "$WORK_DIR/plan.json" >"$WORK_DIR/conflicts.json"
}

# conflict_list [JQ_SELECT]: 'name (kind), ...' of the conflicts the filter keeps.
conflict_list() {
  jq -r "[.[] | select(${1:-true}) | \"\\(.name) (\\(.kind))\"] | join(\", \")" "$WORK_DIR/conflicts.json"
}

# Decides, before any change, whether the conflict mode can settle every conflict; stops
# with the full list otherwise.
check_conflicts() {
  local count
  # The common case without a jq run: find_conflicts writes [] compactly when there is none.
  if [[ $(<"$WORK_DIR/conflicts.json") == "[]" ]]; then
    count=0
  else
    count=$(jq 'length' "$WORK_DIR/conflicts.json")
  fi
  if [[ $count == 0 ]]; then
    log "conflicts: none (no restored name exists in the cluster)"
    return 0
  fi
  case $RESTORE_CONFLICT_MODE in
    fail | rename)
      local hint
      capture hint restoring_hint
      if [[ -n ${RESTORE_RENAME_PATTERN:-} ]]; then
        local kept
        kept=$(conflict_list '.renamed == false')
        [[ -n $kept ]] ||
          die "${count} renamed name(s) already exist in the cluster: $(conflict_list). Nothing was changed. Choose another RESTORE_RENAME_REPLACEMENT, or leave them out of RESTORE_INDICES${hint}"
        die "${count} name(s) to restore already exist in the cluster: $(conflict_list). Nothing was changed. RESTORE_RENAME_PATTERN does not rename ${kept}: widen the pattern to them, or leave them out of RESTORE_INDICES$([[ -z $(conflict_list '.renamed') ]] || printf '%s' '; for the renamed ones choose another RESTORE_RENAME_REPLACEMENT')${hint}"
      fi
      local ways="rename (with RESTORE_RENAME_PATTERN and RESTORE_RENAME_REPLACEMENT), close (the existing indices are closed and overwritten) or delete (the existing ones are deleted first)"
      if [[ -n $(conflict_list '.kind == "alias"') ]]; then
        ways="rename (with RESTORE_RENAME_PATTERN and RESTORE_RENAME_REPLACEMENT: an alias of other indices is settled by nothing else)"
      elif [[ -n $(conflict_list '.kind != "open index" and .kind != "closed index"') ]]; then
        ways="rename (with RESTORE_RENAME_PATTERN and RESTORE_RENAME_REPLACEMENT), delete (the existing ones are deleted first; close settles indices only)"
      fi
      die "${count} name(s) to restore already exist in the cluster: $(conflict_list). Nothing was changed. Choose RESTORE_CONFLICT_MODE=${ways}, or leave them out of RESTORE_INDICES${hint}" ;;
    close)
      local unclosable
      unclosable=$(conflict_list '.kind != "open index" and .kind != "closed index"')
      [[ -z $unclosable ]] ||
        die "RESTORE_CONFLICT_MODE close cannot settle: ${unclosable} (only an index can be closed; a data stream or alias needs rename or delete). Nothing was changed" ;;
    delete)
      local alias partial
      alias=$(conflict_list '.kind == "alias"')
      [[ -z $alias ]] ||
        die "RESTORE_CONFLICT_MODE delete does not remove aliases of other indices: ${alias}: rename instead. Nothing was changed"
      # A backing index is deleted only with its data stream, so only when the restore
      # brings that data stream back whole.
      partial=$(jq -r --slurpfile p "$WORK_DIR/plan.json" '[$p[0].data_streams[].target] as $t
          | [.[] | select(.stream != null and .kind != "data stream" and (.stream as $s | $t | index($s) | not))
             | "\(.name) (of data stream \(.stream))"] | join(", ")' "$WORK_DIR/conflicts.json")
      [[ -z $partial ]] ||
        die "RESTORE_CONFLICT_MODE delete would delete whole data streams of which only backing indices are restored: ${partial}: restore the data stream itself, or rename. Nothing was changed"
      # A colliding data stream goes with all its backing indices: those written after the
      # snapshot (a rollover since) would be lost, and nothing brings them back.
      local newer
      newer=$(jq -r --slurpfile e "$WORK_DIR/existing.json" --slurpfile p "$WORK_DIR/plan.json" '
          [$p[0].indices[].source] as $restored
          | [.[] | select(.stream != null) | .stream] | unique
          | [.[] | . as $d | [$e[0].data_streams[$d][]? | select(. as $i | $restored | index($i) | not)]
             | select(length > 0) | "\($d): \(.[:5] | join(", "))"] | join("; ")' "$WORK_DIR/conflicts.json")
      [[ -z $newer ]] ||
        die "RESTORE_CONFLICT_MODE delete would delete data stream backing indices that snapshot ${SNAPSHOT_NAME} does not hold (${newer}): their documents would be lost; rename instead, or remove them yourself first. Nothing was changed" ;;
  esac
  log "conflicts (${count}, settled by mode ${RESTORE_CONFLICT_MODE}): $(conflict_list)"
}

# ---------------------------------------------------------------------------
# Features that act on indices by themselves: paused during the restore
# ---------------------------------------------------------------------------

# LOOK_ONLY=true: the pause functions below only note, in FOUND_PAUSED, what is paused
# already, and change nothing (look_for_paused_features).
LOOK_ONLY=false

# pause_feature NAME STATUS_PATH JQ_STATE PAUSED_STATES PAUSE_METHOD PAUSE_PATH: reads the
# state; when the feature is present and not already paused, pauses it and records the
# saved state. A feature the cluster lacks (any non-2xx answer to its status) is skipped.
pause_feature() {
  local name=$1 status_path=$2 state_filter=$3 paused=$4 method=$5 path=$6 state
  if ! es_call GET "$status_path"; then
    [[ $LOOK_ONLY != true ]] || return 0
    die "reading the state of ${name}: no answer from ${ES_URL}: ${HTTP_ERROR}"
  fi
  if [[ $HTTP_STATUS != 2* ]]; then
    [[ $LOOK_ONLY == true ]] || log "${name}: not available here (HTTP ${HTTP_STATUS}): nothing to pause"
    return 0
  fi
  state=$(jq -r "$state_filter" "$ES_REPLY")
  if [[ " $paused " == *" $state "* ]]; then
    FOUND_PAUSED+=("$name")
    [[ $LOOK_ONLY == true ]] || log "${name}: ${state} already: left as it is"
    return 0
  fi
  [[ $LOOK_ONLY != true ]] || return 0
  # Saved before the call: a pause whose answer never comes may still take effect, and every
  # exit puts it back (putting back what did not pause changes nothing).
  PAUSED_FEATURES+=("${name}"$'\t'"${state}")
  send_pause "pausing ${name}" "$method" "$path" ''
  log "${name}: was ${state}, paused for the restore"
}

# send_pause STEP METHOD PATH BODY: the pause of the feature last saved in PAUSED_FEATURES;
# stops the job unless the engine accepts it. A refusal of the request itself (400, 403, 404,
# 405) changed nothing: that feature is then not put back (which the engine would refuse too).
# Without an answer, or with another status (a 408 or 429 may come after the engine wrote the
# change, as Elasticsearch's upgrade mode does on an unacknowledged update), it may have paused.
send_pause() {
  local step=$1
  es_call "$2" "$3" "$4" "$ES_VERIFY_TIMEOUT" || die "${step}: no answer from ${ES_URL}: ${HTTP_ERROR}"
  [[ $HTTP_STATUS != 2* ]] || return 0
  [[ ! $HTTP_STATUS =~ ^40[0345]$ ]] || unset 'PAUSED_FEATURES[-1]'
  die "${step}: engine answered HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")"
}

# The ISM switch of OpenSearch's index-management plugin, when installed: the setting is
# saved as found (persistent or transient, or absent) and set false where it takes effect.
pause_ism() {
  if [[ $LOOK_ONLY == true ]]; then
    es_call GET '/_cat/plugins?format=json&h=component' && [[ $HTTP_STATUS == 200 ]] || return 0
  else
    es_ok "listing plugins" GET '/_cat/plugins?format=json&h=component'
  fi
  jq -e 'any(.[]; .component == "opensearch-index-management")' "$ES_REPLY" >/dev/null || {
    [[ $LOOK_ONLY == true ]] || log "ISM: plugin opensearch-index-management not installed: nothing to pause"
    return 0
  }
  if [[ $LOOK_ONLY == true ]]; then
    es_call GET '/_cluster/settings?flat_settings=true' && [[ $HTTP_STATUS == 200 ]] || return 0
  else
    es_ok "reading the ISM setting" GET '/_cluster/settings?flat_settings=true'
  fi
  local key=plugins.index_state_management.enabled scope saved
  if [[ $(jq -r --arg k "$key" '.transient[$k] // empty' "$ES_REPLY") != '' ]]; then
    scope=transient
  else
    scope=persistent
  fi
  saved=$(jq -c --arg k "$key" --arg s "$scope" '.[$s][$k] // null' "$ES_REPLY")
  if [[ $saved == '"false"' || $saved == false ]]; then
    FOUND_PAUSED+=(ISM)
    [[ $LOOK_ONLY == true ]] || log "ISM: disabled already (${scope} ${key}=false): left as it is"
    return 0
  fi
  [[ $LOOK_ONLY != true ]] || return 0
  jq -n --arg k "$key" --arg s "$scope" '{($s): {($k): false}}' >"$WORK_DIR/ism-pause.json"
  PAUSED_FEATURES+=("ISM"$'\t'"${scope}=${saved}")
  send_pause "pausing ISM" PUT /_cluster/settings "$WORK_DIR/ism-pause.json"
  log "ISM: was ${scope} ${key}=${saved}, set false for the restore"
}

# look_for_paused_features: FOUND_PAUSED, read only, for an attempt that stopped before it
# came to pause anything (a conflict, say) and found an earlier attempt's repository: that
# attempt may have paused them (the collection's warning, common.sh). A failed read says nothing.
look_for_paused_features() {
  [[ ${FEATURES_LOOKED:-false} != true && -n ${ENGINE_DISTRIBUTION:-} ]] || return 0
  LOOK_ONLY=true
  pause_features
  LOOK_ONLY=false
}

# Pauses what this engine has; each feature's state is saved before it changes.
pause_features() {
  [[ $LOOK_ONLY == true ]] || FEATURES_LOOKED=true
  if [[ $ENGINE_DISTRIBUTION == opensearch ]]; then
    pause_ism
    return 0
  fi
  pause_feature ILM /_ilm/status '.operation_mode' 'STOPPING STOPPED' POST /_ilm/stop
  pause_feature SLM /_slm/status '.operation_mode' 'STOPPING STOPPED' POST /_slm/stop
  pause_feature watcher /_watcher/stats \
    '[.stats[]?.watcher_state] | if any(. == "started" or . == "starting") then "started" else (.[0] // "stopped") end' \
    'stopped stopping' POST /_watcher/_stop
  pause_feature 'ML upgrade mode' /_ml/info '"upgrade_mode=\(.upgrade_mode // false)"' 'upgrade_mode=true' \
    POST '/_ml/set_upgrade_mode?enabled=true&timeout=10m'
}

# resume_one NAME SAVED: puts one feature back to its saved state; prints the failure.
resume_one() {
  local name=$1 saved=$2 method=POST path body=''
  case $name in
    ILM) path=/_ilm/start ;;
    SLM) path=/_slm/start ;;
    watcher) path=/_watcher/_start ;;
    'ML upgrade mode') path='/_ml/set_upgrade_mode?enabled=false&timeout=10m' ;;
    ISM)
      method=PUT path=/_cluster/settings body="$WORK_DIR/ism-resume.json"
      jq -n --arg k plugins.index_state_management.enabled --arg scope "${saved%%=*}" --argjson v "${saved#*=}" \
        '{($scope): {($k): $v}}' >"$body" ;;
  esac
  if ! es_call "$method" "$path" "$body" "$ES_VERIFY_TIMEOUT"; then
    printf 'no answer: %s' "$HTTP_ERROR"
    return 1
  fi
  if [[ $HTTP_STATUS != 2* ]]; then
    printf 'HTTP %s: %s' "$HTTP_STATUS" "$(engine_error "$ES_REPLY")"
    return 1
  fi
}

# Puts every paused feature back, last paused first; returns 1 when one could not be.
resume_features() {
  local i entry name saved why rc=0
  for ((i = ${#PAUSED_FEATURES[@]} - 1; i >= 0; i--)); do
    entry=${PAUSED_FEATURES[$i]}
    name=${entry%%$'\t'*}
    saved=${entry#*$'\t'}
    if capture why resume_one "$name" "$saved"; then
      log "${name}: back to ${saved}"
    else
      warn "${name}: could not be put back to ${saved} (${why}): do it by hand"
      rc=1
    fi
  done
  PAUSED_FEATURES=()
  return "$rc"
}

# ---------------------------------------------------------------------------
# The one change of the conflict mode
# ---------------------------------------------------------------------------

# uri_names NAMES: comma-separated index names as one URL path segment: each name
# percent-encoded, the commas kept. An index may be called "x%2a", which the engine would
# otherwise decode to the pattern x* (and delete or close every x... index).
uri_names() {
  local LC_ALL=C in=$1 out='' c i
  for ((i = 0; i < ${#in}; i++)); do
    c=${in:i:1}
    case $c in
      [A-Za-z0-9._,-]) out+=$c ;;
      *)
        printf -v c '%02X' "'$c"
        out+="%${c: -2}" ;;
    esac
  done
  printf '%s' "$out"
}

# names_in_batches FILE: the names (one a line) as comma-joined batches, one a line: at most
# NAMES_PER_REQUEST names, and at most BATCH_URL_BYTES (3000) bytes once percent-encoded, since
# the engines refuse a request line over 4 KiB (HTTP 400, too_long_http_line_exception).
names_in_batches() {
  local LC_ALL=C name plain batch='' count=0 size=0 cost
  while IFS= read -r name; do
    [[ -n $name ]] || continue
    # uri_names keeps these bytes and writes every other one as %XX.
    plain=${name//[^A-Za-z0-9._-]/}
    cost=$((${#plain} + 3 * (${#name} - ${#plain})))
    if ((count > 0 && (count >= NAMES_PER_REQUEST || size + 1 + cost > BATCH_URL_BYTES))); then
      printf '%s\n' "$batch"
      batch='' count=0 size=0
    fi
    size=$((size + cost + (count > 0 ? 1 : 0)))
    batch+=${batch:+,}$name
    count=$((count + 1))
  done <"$1"
  [[ -z $batch ]] || printf '%s\n' "$batch"
}

# Closes the open indices that collide (close mode); the names are kept to reopen them
# should the restore not start.
close_conflicts() {
  jq -r '.[] | select(.kind == "open index") | .name' "$WORK_DIR/conflicts.json" >"$WORK_DIR/to-close.txt"
  [[ -s $WORK_DIR/to-close.txt ]] || return 0
  local batch
  while IFS= read -r batch; do
    # Recorded before the call: one cut off by a signal may still close them (reopening an
    # open index is harmless).
    local name names
    IFS=, read -r -a names <<<"$batch"
    for name in "${names[@]}"; do CLOSED_BY_JOB+=("$name"); done
    es_ok "closing ${batch}" POST "/$(uri_names "$batch")/_close?expand_wildcards=all" '' "$ES_VERIFY_TIMEOUT"
    log "closed: ${batch} (the restore overwrites it)"
  done < <(names_in_batches "$WORK_DIR/to-close.txt")
}

# Reopens what close_conflicts closed, when the restore did not start.
reopen_closed() {
  [[ ${#CLOSED_BY_JOB[@]} -gt 0 && $RESTORE_STARTED == false ]] || return 0
  printf '%s\n' "${CLOSED_BY_JOB[@]}" >"$WORK_DIR/to-reopen.txt"
  local batch
  while IFS= read -r batch; do
    if es_call POST "/$(uri_names "$batch")/_open?expand_wildcards=all" '' "$ES_VERIFY_TIMEOUT" && [[ $HTTP_STATUS == 2* ]]; then
      log "reopened ${batch}: the restore did not start"
    else
      warn "could not reopen ${batch} (HTTP ${HTTP_STATUS}${HTTP_ERROR:+: $HTTP_ERROR}): open it by hand"
    fi
  done < <(names_in_batches "$WORK_DIR/to-reopen.txt")
  CLOSED_BY_JOB=()
}

# Deletes exactly what collides (delete mode): the colliding indices by name and the
# colliding data streams, never a pattern.
delete_conflicts() {
  log "delete mode: deleting what collides; a write to one of these names (or an alias of it) between the delete and the restore creates an index the restore then cannot replace: writers should be stopped"
  jq -r '[.[] | select(.stream != null) | .stream] | unique | .[]' "$WORK_DIR/conflicts.json" >"$WORK_DIR/to-delete-streams.txt"
  jq -r '.[] | select(.stream == null and (.kind == "open index" or .kind == "closed index")) | .name' \
    "$WORK_DIR/conflicts.json" >"$WORK_DIR/to-delete.txt"
  local batch
  while IFS= read -r batch; do
    delete_batch "$batch" "/_data_stream/$(uri_names "$batch")" "deleted data stream(s): ${batch}"
  done < <(names_in_batches "$WORK_DIR/to-delete-streams.txt")
  while IFS= read -r batch; do
    delete_batch "$batch" "/$(uri_names "$batch")?expand_wildcards=all" "deleted: ${batch} (RESTORE_CONFLICT_MODE=delete)"
  done < <(names_in_batches "$WORK_DIR/to-delete.txt")
}

# delete_batch NAMES PATH LOG_LINE: one delete of the delete mode; NAMES are DELETING while
# it is in flight (a signal may cut it off after the engine got it), DELETED_BY_JOB after.
delete_batch() {
  [[ -n $1 ]] || return 0
  DELETING=$1
  # No answer: whether the engine deleted them is unknown, and DELETING says so at the exit.
  es_call DELETE "$2" '' "$ES_VERIFY_TIMEOUT" || die "deleting ${1}: no answer from ${ES_URL}: ${HTTP_ERROR}"
  DELETING=''
  [[ $HTTP_STATUS == 2* ]] || die "deleting ${1}: engine answered HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY") (not deleted)"
  DELETED_BY_JOB+="${DELETED_BY_JOB:+,}${1}"
  log "$3"
}

apply_conflict_mode() {
  [[ $(jq 'length' "$WORK_DIR/conflicts.json") -gt 0 ]] || return 0
  case $RESTORE_CONFLICT_MODE in
    close) close_conflicts ;;
    delete) delete_conflicts ;;
  esac
}

# ---------------------------------------------------------------------------
# The delete mode's trial
# ---------------------------------------------------------------------------

# trial_restore: before the delete mode deletes, the same restore is asked for under names of
# the job's own (kb-trial-<scope><attempt>-<name>: the rename '^' -> prefix matches every name), so
# the engine checks now what the pre-flight cannot (the shard limit, the names it takes): a
# refusal stops the job with nothing deleted. The trial leaves the snapshot's aliases out:
# with them its indices would join live aliases (and take writes as a write index) until
# deleted. The aliases are the engine's to check at the restore itself (start_restore).
# Accepted, the trial's indices are deleted at once (that stops their restore).
trial_restore() {
  [[ $RESTORE_CONFLICT_MODE == delete && $(jq 'length' "$WORK_DIR/conflicts.json") -gt 0 ]] || return 0
  local started=$SECONDS
  TRIAL_PREFIX="$(trial_scope_prefix)${ATTEMPT_ID}-"
  write_trial_request
  log "delete mode: the restore is tried first under temporary names (${TRIAL_PREFIX}<name>, without aliases), before anything is deleted"
  TRIAL_PENDING=true
  if ! request_restore "$WORK_DIR/trial-request.json"; then
    local cause=$HTTP_ERROR
    remove_trial 3 || true
    die "delete mode: the trial restore under temporary names got no answer from ${ES_URL}: ${cause}. Nothing was deleted"
  fi
  if [[ $HTTP_STATUS != 2* ]]; then
    local refusal
    refusal="HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")$(trial_hint)"
    # An engine that answered 5xx may still apply the request: what it made is removed.
    remove_trial 1 || true
    die "delete mode: the engine refused the restore (tried under temporary names first): ${refusal}. Nothing was deleted"
  fi
  remove_trial 1 || die "delete mode: the trial's indices (${TRIAL_PREFIX}*) could not all be deleted (see above): delete them by hand. Nothing of the cluster's own was deleted"
  log "delete mode: the engine accepted the restore under temporary names, the trial's indices are deleted ($((SECONDS - started))s)"
}

# restoring_hint: for a conflict message, the conflicting indices the engine is still restoring
# from another of this Backup's restore repositories (kb-<backup>-<scope>-r<attempt>: an earlier
# attempt of this Restore, or another Restore's, whose restore goes on), which explain the conflict.
restoring_hint() {
  es_call GET '/_cluster/state/routing_table?filter_path=routing_table.indices.*.shards.*.recovery_source.repository,routing_table.indices.*.shards.*.index' &&
    [[ $HTTP_STATUS == 200 ]] || return 0
  local found
  found=$(jq -r --slurpfile c "$WORK_DIR/conflicts.json" --arg repo "$(repository_name "$BACKUP_NAME")" \
    --arg own "$REPOSITORY" "${JQ_RESTORE_REPOSITORY}"'
      [$c[0][].name] as $names
      | [.routing_table.indices // {} | .[].shards[][]
         | select((.recovery_source.repository // "") as $r | ($r | restore_repository($repo)) and $r != $own)
         | select(.index as $i | $names | index($i)) | "\(.index) (from \(.recovery_source.repository))"]
      | unique | .[:5] | join(", ")' "$ES_REPLY" 2>/dev/null) || return 0
  [[ -z $found ]] ||
    printf '%s' ". Still being restored from another restore repository of this Backup (an earlier attempt of this Restore whose job stopped, or another Restore): ${found}: the engine finishes it (GET _cat/shards); once they are green, their data is back"
}

# trial_scope_prefix: 'kb-trial-' and the hash of this job's scope (CLIENT_BASE's), which every
# attempt's trial prefix starts with, the attempt's id after it: so the next attempt of the same
# Restore finds what a killed one's trial left (job_collect).
trial_scope_prefix() {
  printf 'kb-trial-%s' "${CLIENT_BASE: -8}"
}

# job_collect: called by collect_earlier_attempts before the earlier attempts' repositories
# go: a trial an earlier attempt of this Restore was killed in left its indices (restoring
# from that attempt's repository, or restored since): deleted, as that attempt would have.
job_collect() {
  local own=${TRIAL_PREFIX:-} pending=${TRIAL_PENDING:-false}
  TRIAL_PREFIX=$(trial_scope_prefix) TRIAL_PENDING=true
  # Exactly an attempt's trial names: the scope's hash, an attempt's 6 hex digits, '-'.
  TRIAL_NAME_RE="^${TRIAL_PREFIX}[0-9a-f]{6}-"
  trial_names || {
    TRIAL_PREFIX=$own TRIAL_PENDING=$pending TRIAL_NAME_RE=''
    return 0
  }
  if [[ -s $WORK_DIR/trial-left.txt ]]; then
    # A live attempt deletes its own trial within seconds of the engine's answer: what is still
    # there after TRIAL_LEFT_WAIT seconds (10) is a stopped attempt's.
    local patience=${TRIAL_LEFT_WAIT:-10}
    [[ $patience =~ ^[0-9]+$ ]] || patience=10
    within_the_grace_period patience
    log "earlier attempts: trial indices of this Restore found ($(paste -sd, "$WORK_DIR/trial-left.txt" | cut -c1-300)): those still there in ${patience}s are deleted"
    # Only the attempts seen now: a trial that starts during the wait is a live attempt's.
    TRIAL_NAME_RE="^${TRIAL_PREFIX}($(sed -E "s/^(\.ds-)?${TRIAL_PREFIX}([0-9a-f]{6})-.*/\2/" "$WORK_DIR/trial-left.txt" | sort -u | paste -sd'|'))-"
    sleep_s "$patience"
    [[ -n ${FAN_OUT_STOP:-} ]] || remove_trial 3 || true
  fi
  TRIAL_PREFIX=$own TRIAL_PENDING=$pending TRIAL_NAME_RE=''
}

# write_trial_request: the restore request under the names TRIAL_PREFIX<name> (the rename
# '^' -> prefix matches every name), without aliases, global state or feature states; the
# replicas as the restore's (the shard limit counts them).
write_trial_request() {
  jq -c --arg p "$TRIAL_PREFIX" '
    del(.rename_pattern, .rename_replacement)
    | .include_global_state = false | .include_aliases = false
    | if has("feature_states") then .feature_states = ["none"] else . end
    | .rename_pattern = "^" | .rename_replacement = $p' \
    "$WORK_DIR/restore-request.json" >"$WORK_DIR/trial-request.json"
}

# trial_hint: the way out when the trial itself is what the engine refused: its prefix made a
# name too long, or its shards, counted beside those of the indices a delete would free, pass
# the cluster's shard limit.
trial_hint() {
  if grep -q 'too long' "$ES_REPLY"; then
    printf '%s' " (the trial's prefix of ${#TRIAL_PREFIX} bytes made a name too long: RESTORE_CONFLICT_MODE=close, or rename, needs no trial)"
  elif grep -q -i 'shards' "$ES_REPLY"; then
    printf '%s' " (the trial's shards count beside those of the indices the delete would free, so the restore alone might fit: raise cluster.max_shards_per_node for the restore, or use RESTORE_CONFLICT_MODE=close, which needs no trial)"
  fi
}

# remove_trial ROUNDS: deletes every index and data stream under the trial's prefix, listed
# from the engine (a request still in flight may create them after a first look: up to ROUNDS
# looks, a second apart, until one finds nothing). Returns 1, saying why, when some are left
# or the cluster did not answer (then at once: the rest of the clean-up needs the time).
remove_trial() {
  [[ ${TRIAL_PENDING:-false} == true ]] || return 0
  local rounds=$1 round batch deleted=false
  for ((round = 1; round <= rounds; round++)); do
    ((round == 1)) || sleep_s 1
    trial_names || return 1
    deleted=false
    [[ -s $WORK_DIR/trial-left.txt ]] || continue
    while IFS= read -r batch; do
      if ! es_call DELETE "/${batch}" '' "$ES_VERIFY_TIMEOUT"; then
        warn "the trial's ${TRIAL_PREFIX}* not deleted: no answer from ${ES_URL}: ${HTTP_ERROR}: delete them by hand"
        return 1
      fi
      [[ $HTTP_STATUS == 2* || $HTTP_STATUS == 404 ]] ||
        warn "could not delete the trial's ${batch} (HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY"))"
    done <"$WORK_DIR/trial-deletes.txt"
    deleted=true
  done
  # After deletes, one more look says whether they took.
  if [[ $deleted == true ]]; then
    trial_names || return 1
  fi
  TRIAL_PENDING=false
  [[ ! -s $WORK_DIR/trial-left.txt ]] && return 0
  warn "left by the trial, to delete by hand: $(paste -sd, "$WORK_DIR/trial-left.txt")"
  return 1
}

# JQ_TRIAL_NAME: jq's 'trial_name': a name under the prefix $p (a data stream's backing index
# '.ds-' before it), of the shape $re too when that is given.
# shellcheck disable=SC2016 # jq's variables, not the shell's
JQ_TRIAL_NAME='def trial_name: ltrimstr(".ds-") as $n | ($n | startswith($p)) and ($re == "" or ($n | test($re)));'

# trial_names: the data streams and indices under the trial's prefix, one a line in
# $WORK_DIR/trial-left.txt, and the requests that delete them (URL paths, names encoded,
# data streams first) in trial-deletes.txt. Returns 1 when the cluster did not answer.
trial_names() {
  local p=$TRIAL_PREFIX
  : >"$WORK_DIR/trial-left.txt"
  : >"$WORK_DIR/trial-deletes.txt"
  if ! es_call GET "/_data_stream/${p}*" '' "$ES_VERIFY_TIMEOUT"; then
    warn "the trial's ${p}* not deleted: no answer from ${ES_URL}: ${HTTP_ERROR}: delete them by hand"
    return 1
  fi
  # A distribution without data streams answers 4xx: none then.
  # Only names under the prefix: a pattern also resolves aliases, whose indices are not the
  # trial's (a user's alias may start with the prefix).
  if [[ $HTTP_STATUS == 2* ]]; then
    jq -r --arg p "$p" --arg re "${TRIAL_NAME_RE:-}" "${JQ_TRIAL_NAME}"'.data_streams[]?.name | select(trial_name)' "$ES_REPLY" >>"$WORK_DIR/trial-left.txt"
  fi
  local batch
  while IFS= read -r batch; do
    printf '_data_stream/%s\n' "$(uri_names "$batch")" >>"$WORK_DIR/trial-deletes.txt"
  done < <(names_in_batches "$WORK_DIR/trial-left.txt")
  if ! es_call GET "/_cat/indices/${p}*,.ds-${p}*?h=index&expand_wildcards=all&format=json" '' "$ES_VERIFY_TIMEOUT" ||
    [[ $HTTP_STATUS != 2* ]]; then
    warn "the trial's ${p}* not deleted: listing them failed (HTTP ${HTTP_STATUS}${HTTP_ERROR:+: $HTTP_ERROR}): delete them by hand"
    return 1
  fi
  jq -r --arg p "$p" --arg re "${TRIAL_NAME_RE:-}" "${JQ_TRIAL_NAME}"'.[].index | select(trial_name)' "$ES_REPLY" >"$WORK_DIR/trial-indices.txt"
  cat "$WORK_DIR/trial-indices.txt" >>"$WORK_DIR/trial-left.txt"
  while IFS= read -r batch; do
    printf '%s?ignore_unavailable=true\n' "$(uri_names "$batch")" >>"$WORK_DIR/trial-deletes.txt"
  done < <(names_in_batches "$WORK_DIR/trial-indices.txt")
}

# ---------------------------------------------------------------------------
# The restore and its end
# ---------------------------------------------------------------------------

# The restore request: the planned names (data streams by name, their backing indices come
# along), the rename, feature states where the engine has them, replicas override.
write_restore_request() {
  local out
  out=$(jq -nr --slurpfile plan "$WORK_DIR/plan.json" --slurpfile features "$WORK_DIR/features.json" \
    --argjson global "$INCLUDE_GLOBAL" --argjson aliases "$INCLUDE_ALIASES" \
    --arg re "$RESTORE_RENAME_PATTERN" --arg rep "$RESTORE_RENAME_REPLACEMENT" \
    --arg replicas "$RESTORE_REPLICAS" --argjson feature_states "$(has_feature_states && echo true || echo false)" '
    $plan[0] as $p
    | ([$p.data_streams[].source] + [$p.indices[] | select(.stream == null) | .source] | unique) as $names
    | {indices: (if ($names | length) == 0 then "-*" else $names | join(",") end),
       include_global_state: $global, include_aliases: $aliases}
    + (if $re != "" then {rename_pattern: $re, rename_replacement: $rep} else {} end)
    + (if $feature_states then {feature_states: (if ($features[0] | length) == 0 then ["none"] else $features[0] end)} else {} end)
    + (if $replicas != "" then {index_settings: {"index.number_of_replicas": ($replicas | tonumber)}} else {} end)
    | tojson, .indices')
  # Line 1 the request (tojson has no raw newline), line 2 its indices, for the log.
  printf '%s\n' "${out%%$'\n'*}" >"$WORK_DIR/restore-request.json"
  RESTORE_REQUEST_INDICES=${out#*$'\n'}
}

# The names "done" waits for: the restored indices under their new names and the feature
# states' system indices.
write_watch_list() {
  jq -r --slurpfile f "$WORK_DIR/features.json" '
      [.indices[].target] + [.system[] | select(.feature as $n | $f[0] | index($n)) | .indices[]]
      | unique | .[]' "$WORK_DIR/plan.json" >"$WORK_DIR/watch.txt"
}

# request_restore BODY_FILE: POST _restore of the snapshot (not waiting for its end); as es_call.
request_restore() {
  es_call POST "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}/_restore?wait_for_completion=false" "$1" "$ES_VERIFY_TIMEOUT"
}

start_restore() {
  local aliases=$INCLUDE_ALIASES
  RESTORE_START=$SECONDS
  # Until an answer comes, whether the engine takes the request is unknown (job_cleanup).
  RESTORE_IN_FLIGHT=true
  request_restore "$WORK_DIR/restore-request.json" || {
    keep_for_the_engine
    die "restore of ${SNAPSHOT_NAME}: no answer from ${ES_URL}: ${HTTP_ERROR} (whether it started is unknown: see GET _recovery)"
  }
  if [[ $HTTP_STATUS != 2* && -n ${DELETED_BY_JOB:-} && $INCLUDE_ALIASES == true ]] &&
    engine_error "$ES_REPLY" | grep -q -i 'alias'; then
    # After the delete mode's deletions, a refusal is most likely the snapshot's aliases (the
    # one check the trial leaves to this request): the indices come back without them, and
    # the job fails at its end saying so.
    ALIASES_REFUSED="HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")"
    warn "the engine refused the restore with the snapshot's aliases (${ALIASES_REFUSED}); ${DELETED_BY_JOB} deleted already: restoring without the aliases"
    jq -c '.include_aliases = false' "$WORK_DIR/restore-request.json" >"$WORK_DIR/restore-request-no-aliases.json"
    aliases=false
    request_restore "$WORK_DIR/restore-request-no-aliases.json" || {
      keep_for_the_engine
      die "restore of ${SNAPSHOT_NAME} without aliases: no answer from ${ES_URL}: ${HTTP_ERROR} (whether it started is unknown: see GET _recovery)"
    }
  fi
  # Started, then no longer in flight, in that order: a signal between the two must not find
  # the restore neither started nor in flight (its exit would reopen what it closed for it).
  [[ $HTTP_STATUS != 2* ]] || RESTORE_STARTED=true
  RESTORE_IN_FLIGHT=false
  if [[ $HTTP_STATUS != 2* ]]; then
    # The cluster may change between the trial and this request: the message then says
    # what is gone and where it is.
    local deleted=''
    [[ -z ${DELETED_BY_JOB:-} ]] ||
      deleted="; deleted before the engine refused: ${DELETED_BY_JOB} (snapshot ${SNAPSHOT_NAME} holds them: restore them again)"
    die "restore of ${SNAPSHOT_NAME}: engine answered HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")${deleted}"
  fi
  CLOSED_BY_JOB=()
  log "restore of ${SNAPSHOT_NAME} started (indices '${RESTORE_REQUEST_INDICES}', global state ${INCLUDE_GLOBAL}, aliases ${aliases}${RESTORE_REPLICAS:+, replicas ${RESTORE_REPLICAS}})"
  check_restored_names
}

# check_restored_names: the engine creates every index of a restore it accepts at once; one
# the plan expects but the cluster lacks means the engine named it otherwise (a rename read
# differently), so the wait would never end: the job stops saying so.
check_restored_names() {
  local try missing=''
  for try in 1 2 3 4 5; do
    ((try == 1)) || sleep_s 1
    if ! es_call GET '/_cat/indices?h=index&format=json&expand_wildcards=all' '' "$ES_VERIFY_TIMEOUT" ||
      [[ $HTTP_STATUS != 2* ]]; then
      continue
    fi
    missing=$(jq -r --rawfile w "$WORK_DIR/watch.txt" '[.[].index] as $have
        | [$w | split("\n")[] | select(. != "" and (. as $n | $have | index($n) | not))] | .[:10] | join(", ")' "$ES_REPLY") ||
      missing=''
    [[ -n $missing ]] || return 0
  done
  [[ -n $missing ]] || return 0
  die "restore of ${SNAPSHOT_NAME}: the cluster holds no index ${missing} although the engine accepted the restore: it named them otherwise than this job's plan (GET _cat/indices shows what it restored)"
}

# health_pending BATCH SECONDS SHARDS: sets PENDING to the indices of BATCH whose primaries
# are not all active (empty when every one is), PENDING_PRIMARIES to how many active shards
# those indices will have once their primaries are (their active shards now, plus the
# primaries still missing) and PENDING_ACTIVE to their active shards now. The engine holds the
# read up to SECONDS until the batch is yellow and has SHARDS active shards (0: unknown yet):
# the engines call a restoring index yellow at once, so the shard count is what makes the read
# return as soon as the restore is done, or as soon as a shard more is active (a replica of a
# restored primary counts too: progress all the same). Returns 1 when the cluster gave no
# usable answer (HTTP_STATUS, HTTP_ERROR say why).
health_pending() {
  local batch=$1 wait=$2 shards=$3 active=''
  PENDING='' PENDING_PRIMARIES=0 PENDING_ACTIVE=0
  ((shards == 0)) || active="&wait_for_active_shards=${shards}"
  HEALTH_READS=$((HEALTH_READS + 1))
  es_call GET "/_cluster/health/$(uri_names "$batch")?wait_for_status=yellow${active}&timeout=${wait}s&level=indices&expand_wildcards=all" \
    '' "$((wait + ES_TIMEOUT))" || return 1
  [[ $HTTP_STATUS == 200 || $HTTP_STATUS == 408 ]] || return 1
  read -r PENDING_PRIMARIES PENDING_ACTIVE PENDING < <(jq -r --arg batch "$batch" '(.indices // {}) as $h
      | [$batch | split(",")[] | select(($h[.] // null) == null or $h[.].status == "red"
          or $h[.].active_primary_shards < $h[.].number_of_shards)]
      | (map($h[.] // {} | (.active_shards // 0) + (.number_of_shards // 0) - (.active_primary_shards // 0)) | add // 0) as $target
      | "\($target) \(map($h[.].active_shards // 0) | add // 0) \(join(","))"' "$ES_REPLY") || return 1
}

# report_recovery PENDING: prints how the restore advances: shards recovering from the
# snapshot, bytes; with none recovering, what holds the pending primaries (PENDING: names,
# comma-separated), so that a wait that no longer advances says why.
report_recovery() {
  es_call GET '/_recovery?active_only=true' && [[ $HTTP_STATUS == 200 ]] || return 0
  if ! jq -e '[.[].shards[] | select(.type == "SNAPSHOT")] | length > 0' "$ES_REPLY" >/dev/null; then
    local reasons
    capture reasons unassigned_reasons "$(cut -d, -f1-40 <<<"$1")"
    log "restore in progress: no shard recovering from the snapshot now; inactive primaries: ${reasons:-none listed} ($((SECONDS - RESTORE_START))s)"
    return 0
  fi
  log "restore in progress: $(jq -r '[.[].shards[] | select(.type == "SNAPSHOT")] as $s
      | ($s | map(.index.size.total_in_bytes // 0) | add // 0) as $total
      | ($s | map(.index.size.recovered_in_bytes // 0) | add // 0) as $done
      | "\($s | length) shard(s) recovering from the snapshot, \(($done / 1048576 * 10 | floor) / 10) of \(($total / 1048576 * 10 | floor) / 10) MiB"' "$ES_REPLY") ($((SECONDS - RESTORE_START))s)"
}

# unassigned_reasons NAMES: 'index[shard]: reason' for the named indices' unassigned primaries.
unassigned_reasons() {
  # OpenSearch refuses expand_wildcards on _cat/shards (400); its hidden indices are listed
  # by name all the same.
  local expand='&expand_wildcards=all'
  [[ $ENGINE_DISTRIBUTION != opensearch ]] || expand=''
  es_call GET "/_cat/shards/$(uri_names "$1")?format=json&h=index,shard,prirep,state,unassigned.reason${expand}" &&
    [[ $HTTP_STATUS == 200 ]] || return 0
  jq -r '[.[] | select(.prirep == "p" and .state != "STARTED")
      | "\(.index)[\(.shard)] \(.state)\(if .["unassigned.reason"] then " (" + .["unassigned.reason"] + ")" else "" end)"][:10] | join(", ")' "$ES_REPLY"
}

# Waits until every watched index has all its primaries active, within RESTORE_TIMEOUT: each
# read is held by the engine until its batch's primaries are active (health_pending) or up to
# POLL_INTERVAL; one that returns sooner (replicas count as active shards too) is followed by
# a pause, 0.25 s first, then twice as long each time up to POLL_INTERVAL. The first round,
# which learns how many primaries there are, is followed by none. Reads that get no
# answer are retried for RESTORE_UNREACHABLE_TIMEOUT seconds.
wait_for_primaries() {
  local deadline=$((RESTORE_START + RESTORE_TIMEOUT)) last_report=$SECONDS unreachable_since=''
  local pause=250 max_pause=$((POLL_INTERVAL * 1000)) round_ms last_pending='' last_active=''
  ((max_pause >= 250)) || max_pause=250
  HEALTH_READS=0
  if [[ ! -s $WORK_DIR/watch.txt ]]; then
    log "no index to wait for (global state only)"
    return 0
  fi
  # Each line: a batch of names, and how many active shards to wait for (0 until a read tells).
  names_in_batches "$WORK_DIR/watch.txt" | sed 's/$/\t0/' >"$WORK_DIR/pending-batches.txt"
  while [[ -s $WORK_DIR/pending-batches.txt ]]; do
    local batch primaries all_pending='' failed=false server_wait cause='' round_start round_active=0
    round_start=$(now_ms)
    # The engine holds a read of a red index up to POLL_INTERVAL seconds (1-30).
    server_wait=$((POLL_INTERVAL < 1 ? 1 : (POLL_INTERVAL > 30 ? 30 : POLL_INTERVAL)))
    : >"$WORK_DIR/still-pending.txt"
    # Only the round's first read is held: K batches held one after the other would make a
    # round last K x POLL_INTERVAL.
    local hold=$server_wait counted=true
    while IFS=$'\t' read -r batch primaries; do
      [[ $primaries != 0 ]] || counted=false
      if health_pending "$batch" "$hold" "$primaries"; then
        [[ -z $PENDING ]] || {
          printf '%s\t%s\n' "$PENDING" "$PENDING_PRIMARIES" >>"$WORK_DIR/still-pending.txt"
          all_pending+="${all_pending:+,}${PENDING}"
          round_active=$((round_active + PENDING_ACTIVE))
        }
      else
        # An answer that refuses the read itself (not a timeout, not overload) will not change.
        if [[ -z $HTTP_ERROR && $HTTP_STATUS == 4* && $HTTP_STATUS != 408 && $HTTP_STATUS != 429 ]]; then
          die "restore of ${SNAPSHOT_NAME}: the engine refused the health read of ${batch%%,*}...: HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY") (the engine goes on restoring: see GET _cat/recovery)"
        fi
        failed=true
        cause=${HTTP_ERROR:-HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")}
        printf '%s\t%s\n' "$batch" "$primaries" >>"$WORK_DIR/still-pending.txt"
      fi
      hold=0
    done <"$WORK_DIR/pending-batches.txt"
    mv "$WORK_DIR/still-pending.txt" "$WORK_DIR/pending-batches.txt"
    if [[ $failed == true ]]; then
      unreachable_since=${unreachable_since:-$SECONDS}
      # job_cleanup leaves the repository and the S3 client to the engine (a started restore).
      ((SECONDS - unreachable_since < RESTORE_UNREACHABLE_TIMEOUT)) ||
        die "restore of ${SNAPSHOT_NAME}: the cluster did not answer for ${RESTORE_UNREACHABLE_TIMEOUT}s (RESTORE_UNREACHABLE_TIMEOUT) while the restore ran: its outcome is unknown; the engine goes on with it (see GET _cat/recovery)"
      warn "cluster health unreadable while waiting (${cause}): retrying for up to ${RESTORE_UNREACHABLE_TIMEOUT}s"
      sleep_s "$POLL_INTERVAL"
      continue
    fi
    if [[ -n $unreachable_since ]]; then
      log "the cluster answers again (after $((SECONDS - unreachable_since))s)"
      unreachable_since=''
    fi
    [[ -s $WORK_DIR/pending-batches.txt ]] || break
    if ((SECONDS >= deadline)); then
      local first reasons
      first=$(cut -d, -f1-40 <<<"$all_pending")
      capture reasons unassigned_reasons "$first"
      die "restore of ${SNAPSHOT_NAME}: deadline of ${RESTORE_TIMEOUT}s (RESTORE_TIMEOUT) reached with inactive primaries: ${reasons:-of ${first} (their states could not be read: GET _cat/shards)} (the engine goes on restoring)"
    fi
    if ((SECONDS - last_report >= PROGRESS_INTERVAL)); then
      report_recovery "$all_pending"
      last_report=$SECONDS
    fi
    # A round that did not know every batch's primaries was not held: the next one, which
    # knows them, follows at once and is.
    [[ $counted == true ]] || continue
    # A read the engine let go early because a shard more became active: progress, so the
    # next read (which asks for one more again) follows at once.
    if [[ $all_pending != "${last_pending:-}" || $round_active != "${last_active:-}" ]]; then
      last_pending=$all_pending last_active=$round_active
      continue
    fi
    # The engine may have held the reads: only the rest of the pause is slept.
    round_ms=$(($(now_ms) - round_start))
    ((round_ms >= pause)) || sleep_ms "$((pause - round_ms))"
    pause=$((pause * 2))
    ((pause <= max_pause)) || pause=$max_pause
  done
  log "every restored primary shard is active ($(wc -l <"$WORK_DIR/watch.txt") index(es), $((SECONDS - RESTORE_START))s, ${HEALTH_READS} health read(s))"
}

# Confirms through _recovery that each primary of the restored indices has recovered; prints
# the bytes restored from the snapshot. Any finished recovery counts: a primary moved since
# (rebalancing after a large restore) shows its move (PEER), not SNAPSHOT, and each name is one
# the restore created (check_restored_names).
check_recoveries() {
  local batch missing='' bytes=0 b m
  while IFS= read -r batch; do
    es_ok "reading the recoveries" GET "/$(uri_names "$batch")/_recovery?expand_wildcards=all"
    read -r b m <<<"$(jq -r --arg batch "$batch" '. as $r
        | "\([.[].shards[] | select(.primary and .type == "SNAPSHOT") | .index.size.recovered_in_bytes // 0] | add // 0) " +
          ([$batch | split(",")[]
            | select(([($r[.].shards // [])[] | select(.primary)]) as $p
                     | ($p | length) == 0 or ($p | any(.stage != "DONE")))] | join(", "))' "$ES_REPLY")"
    bytes=$((bytes + b))
    missing+="${m:+${missing:+, }$m}"
  done < <(names_in_batches "$WORK_DIR/watch.txt")
  [[ -z $missing ]] || die "restore of ${SNAPSHOT_NAME}: no finished primary recovery for: ${missing}"
  log "recoveries: every restored primary DONE, $((bytes / 1024)) KiB read from the snapshot"
}

# The restored indices' health; a warning for each that cannot become green here.
report_health() {
  [[ -s $WORK_DIR/watch.txt ]] || return 0
  local data_nodes=0 batch
  : >"$WORK_DIR/health.tsv"
  while IFS= read -r batch; do
    # A health read with indices still names the cluster's data nodes.
    es_ok "reading the restored indices' health" GET "/_cluster/health/$(uri_names "$batch")?level=indices&expand_wildcards=all"
    jq -r '(.number_of_data_nodes // 0) as $d
      | .indices // {} | to_entries[] | [.key, .value.status, .value.number_of_replicas, $d] | @tsv' "$ES_REPLY" >>"$WORK_DIR/health.tsv"
  done < <(names_in_batches "$WORK_DIR/watch.txt")
  local name status replicas nodes green=0 yellow=0 short=()
  while IFS=$'\t' read -r name status replicas nodes; do
    data_nodes=$nodes
    if [[ $status == green ]]; then
      green=$((green + 1))
      continue
    fi
    yellow=$((yellow + 1))
    if ((replicas >= data_nodes)); then
      short+=("${name} (${replicas} replica(s))")
    fi
  done <"$WORK_DIR/health.tsv"
  log "restored indices: ${green} green, ${yellow} yellow"
  if [[ ${#short[@]} -gt 0 ]]; then
    warn "$(printf '%s, ' "${short[@]:0:10}" | sed 's/, $//') cannot place every replica on ${data_nodes} data node(s): they stay yellow (their primaries hold all the data); RESTORE_REPLICAS=$((data_nodes > 0 ? data_nodes - 1 : 0)) lowers the replicas on restore"
  elif ((yellow > 0)); then
    log "the replicas of ${yellow} index(es) are still being copied from their primaries"
  fi
}

# ---------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------

# Runs on every exit path (through common.sh's EXIT trap): indices closed for a restore that
# never started are reopened, and every paused feature is put back. A restore that started
# and whose primaries the job did not see done (a signal, a deadline, a failed read) goes on
# in the engine: its repository and S3 client are left to it.
job_cleanup() {
  local rc=$1
  if [[ -n ${ALIASES_REFUSED:-} && $rc -ne 0 && $RESTORE_STARTED == true && ${ALIASES_REPORTED:-false} != true ]]; then
    # A failure after the retry without aliases says its own cause; this one must not be lost.
    warn "the restore of ${SNAPSHOT_NAME} was started WITHOUT the snapshot's aliases: the engine refused them (${ALIASES_REFUSED}) after ${DELETED_BY_JOB} had been deleted; add them by hand once the indices are back"
  fi
  if [[ ${TRIAL_PENDING:-false} == true ]]; then
    # A trial request cut off in flight may still be applied: looked for a few times.
    remove_trial 5 ||
      warn "a trial restore was in flight when the job stopped: delete any ${TRIAL_PREFIX}* index or data stream that appears"
  fi
  if [[ ${RESTORE_IN_FLIGHT:-false} == true && $RESTORE_STARTED != true ]]; then
    # The engine may have taken the request: what was closed for it stays closed (opening an
    # index it restores would break that restore), and the repository stays for it.
    if [[ ${#CLOSED_BY_JOB[@]} -gt 0 ]]; then
      warn "the restore request got no answer before the job stopped: whether the engine started it is unknown; closed for it, and left closed: $(printf '%s,' "${CLOSED_BY_JOB[@]}" | sed 's/,$//') (open them, POST <index>/_open, if GET _cat/recovery shows no restore of them)"
      CLOSED_BY_JOB=()
    fi
    keep_for_the_engine
  fi
  if [[ -n ${DELETED_BY_JOB:-}${DELETING:-} && $RESTORE_STARTED != true ]]; then
    warn "deleted by this job, and the restore did not start (or it is unknown whether it did): ${DELETED_BY_JOB:-none}${DELETING:+; being deleted when the job stopped: ${DELETING}}: snapshot ${SNAPSHOT_NAME} holds them: run the restore again"
  fi
  reopen_closed
  resume_features || true
  if [[ $RESTORE_STARTED == true && $RESTORE_PRIMARIES_DONE != true ]]; then
    # The job stopped before it saw every primary done; the engine may have finished since
    # (a failure after the restore, such as check_restored_names).
    local why
    if capture why repository_free "$REPOSITORY"; then
      log "no shard is restored from repository ${REPOSITORY} any more: it is unregistered, and the keys removed, as usual"
    else
      log "repository ${REPOSITORY} is left to the engine: ${why}"
      keep_for_the_engine
    fi
  fi
  return 0
}

# Everything after the repository: pre-flight, pause, the mode's change, restore, done.
restore_from_repository() {
  check_snapshot
  check_version
  select_feature_states
  plan_restore
  check_global_state_streams
  find_conflicts
  check_conflicts
  write_restore_request
  write_watch_list
  pause_features
  trial_restore
  apply_conflict_mode
  start_restore
  wait_for_primaries
  RESTORE_PRIMARIES_DONE=true
  check_recoveries
  report_health
  resume_features || die "restore of ${SNAPSHOT_NAME} done, but a paused feature could not be put back (see above)"
  [[ -z ${ALIASES_REFUSED:-} ]] || {
    ALIASES_REPORTED=true
    die "restore of ${SNAPSHOT_NAME}: the indices are back, WITHOUT the snapshot's aliases: the engine refused them (${ALIASES_REFUSED}) after ${DELETED_BY_JOB} had been deleted. Add the aliases by hand, or restore again with RESTORE_INCLUDE_ALIASES=false to accept this"
  }
}

main() {
  job_init restore
  validate_restore_options
  prepare_job
  locate_snapshot
  restore_from_repository
  job_done
}

# Run as a job; sourced (the tests of what only a shared-filesystem repository can show) it
# only defines the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi

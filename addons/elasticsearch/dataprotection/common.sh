#!/usr/bin/env bash
# shellcheck disable=SC2034 # globals set here are read by backup.sh and restore.sh
# Functions shared by backup.sh and restore.sh, the KubeBlocks DataProtection jobs of the
# Elasticsearch/OpenSearch addon: reading the job's environment and the BackupRepo's
# datasafed.conf, deriving names from the Backup, HTTP calls to the engine and to the
# keystore agents, and the steps both jobs share (credentials on every node, reload,
# repository registration).
#
# Sourced, never run. The caller sets `set -euo pipefail`, calls job_init, and exits
# through the EXIT trap that job_init installs.
#
# Secrets (S3 keys, the cluster password) never go on a command line and never reach
# the log: curl reads credentials from a 0600 config file, bodies are built by jq from
# the environment and sent from files, and every log line passes through redact.

# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

# Values that must never be printed; filled by load_s3_config and load_job_env.
SECRET_VALUES=()

# SECRET_VALUES longest first, and the values that order was made from: redaction runs for
# every log line (one per node on hundreds of nodes), so the order is kept, not redone.
REDACT_ORDER=()
REDACT_ORDER_OF=''
REDACT_ORDER_MADE=false

# Sets REDACTED to $1 with every known secret value replaced by '***', longest first, so that
# a secret that contains another is hidden whole. No process is started.
redact_into() {
  local secret
  [[ $REDACT_ORDER_MADE == true && ${SECRET_VALUES[*]} == "$REDACT_ORDER_OF" ]] || sort_secrets
  REDACTED=$1
  for secret in "${REDACT_ORDER[@]}"; do
    REDACTED=${REDACTED//"$secret"/***}
  done
}

# Fills REDACT_ORDER: the non-empty SECRET_VALUES, longest first (an insertion sort: a handful).
sort_secrets() {
  local secret i j
  REDACT_ORDER=()
  for secret in "${SECRET_VALUES[@]}"; do
    [[ -z $secret ]] || REDACT_ORDER+=("$secret")
  done
  for ((i = 1; i < ${#REDACT_ORDER[@]}; i++)); do
    secret=${REDACT_ORDER[i]}
    for ((j = i - 1; j >= 0 && ${#REDACT_ORDER[j]} < ${#secret}; j--)); do
      REDACT_ORDER[j + 1]=${REDACT_ORDER[j]}
    done
    REDACT_ORDER[j + 1]=$secret
  done
  REDACT_ORDER_OF=${SECRET_VALUES[*]}
  REDACT_ORDER_MADE=true
}

# Prints $1 redacted (see redact_into).
redact() {
  redact_into "$1"
  printf '%s' "$REDACTED"
}

# One line on standard output, with a UTC time stamp.
log() {
  redact_into "$*"
  TZ=UTC printf '%(%Y-%m-%dT%H:%M:%SZ)T %s\n' -1 "$REDACTED"
}

# One line on standard error.
warn() {
  log "WARNING: $*" >&2
}

# Prints the cause and stops the job (the EXIT trap reports and cleans up).
die() {
  log "ERROR: $*" >&2
  exit 1
}

# ---------------------------------------------------------------------------
# datasafed.conf (rclone INI)
# ---------------------------------------------------------------------------

# ini_get FILE SECTION KEY: prints the value of KEY in [SECTION] and returns 0, or
# returns 1 when the key is absent. Follows rclone's config reader: '#' and ';' start
# comment lines (not inline comments: a secret may hold '#'), the first '=' or ':'
# separates key from value, spaces around both are dropped, a value wrapped in matching
# quotes ("..." '...' `...`) loses them, a later duplicate wins.
ini_get() {
  local file=$1 section=$2 key=$3
  local line current='' found=1 value='' k prefix
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line#$'\xef\xbb\xbf'}  # a UTF-8 byte order mark, as some editors write
    _ini_trim "${line%$'\r'}"
    line=$_INI
    [[ -z $line || $line == '#'* || $line == ';'* ]] && continue
    if [[ $line == '['*']' ]]; then
      _ini_trim "${line:1:${#line}-2}"
      current=$_INI
      continue
    fi
    [[ $current == "$section" ]] || continue
    prefix=${line%%[=:]*}
    [[ ${#prefix} -lt ${#line} ]] || continue
    _ini_trim "$prefix"
    k=$_INI
    [[ $k == "$key" ]] || continue
    _ini_trim "${line:${#prefix}+1}"
    _ini_unquote "$_INI"
    value=$_INI
    found=0
  done <"$file"
  [[ $found -eq 0 ]] && printf '%s' "$value"
  return "$found"
}

# ini_has_section FILE SECTION: whether FILE declares [SECTION].
ini_has_section() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line#$'\xef\xbb\xbf'}
    _ini_trim "${line%$'\r'}"
    line=$_INI
    [[ $line == '['*']' ]] || continue
    _ini_trim "${line:1:${#line}-2}"
    [[ $_INI == "$2" ]] && return 0
  done <"$1"
  return 1
}

# Sets _INI to $1 without leading and trailing blanks.
_ini_trim() {
  _INI=$1
  _INI=${_INI#"${_INI%%[![:space:]]*}"}
  _INI=${_INI%"${_INI##*[![:space:]]}"}
}

# Sets _INI to $1 without one pair of matching surrounding quotes.
_ini_unquote() {
  local v=$1 q
  _INI=$v
  if [[ ${#v} -ge 6 && $v == '"""'*'"""' ]]; then
    _INI=${v:3:${#v}-6}
  elif [[ ${#v} -ge 2 ]]; then
    q=${v:0:1}
    if [[ ($q == '"' || $q == "'" || $q == '`') && ${v: -1} == "$q" ]]; then
      _INI=${v:1:${#v}-2}
    fi
  fi
}

# ini_value FILE SECTION KEY [DEFAULT]: the value, or DEFAULT when absent or empty.
ini_value() {
  local v
  v=$(ini_get "$1" "$2" "$3") || v=''
  [[ -n $v ]] || v=${4:-}
  printf '%s' "$v"
}

# Lower-cased true/false for an rclone boolean; returns 1 when $1 is no boolean.
parse_bool() {
  case ${1,,} in
    true | t | 1 | yes | y | on) printf 'true' ;;
    false | f | 0 | no | n | off) printf 'false' ;;
    *) return 1 ;;
  esac
}

# Whether rclone (inside datasafed, which KubeBlocks uses to read and delete a Backup's files)
# addresses this provider's buckets virtual-host style whatever force_path_style says: rclone
# starts from virtual-host style and only its path-style providers (Minio, Ceph, Other, any
# name it does not know, ...) honour force_path_style. The engine addresses the bucket as
# datasafed does. docs/backup-repositories.md has the table.
provider_virtual_host() {
  case $1 in
    AWS | Alibaba | TencentCOS | HuaweiOBS | GCS | Netease | DigitalOcean | Dreamhost | Scaleway | Wasabi | LyveCloud | RackCorp | Storj)
      return 0 ;;
    *) return 1 ;;
  esac
}

# region_from_endpoint PROVIDER ENDPOINT: the region a provider's endpoint names, as the
# StorageProvider templates build it from the region (oss-<r>.aliyuncs.com,
# cos.<r>.myqcloud.com, obs.<r>.myhuaweicloud.com, s3.<r>.amazonaws.com); empty otherwise.
region_from_endpoint() {
  local host=${2#*://}
  host=${host%%[:/]*}
  host=${host,,}
  case $1 in
    Alibaba) [[ $host =~ ^(s3\.)?oss-([a-z0-9-]+)\.aliyuncs\.com$ ]] && printf '%s' "${BASH_REMATCH[2]%-internal}" ;;
    TencentCOS) [[ $host =~ ^cos\.([a-z0-9-]+)\.myqcloud\.com$ ]] && printf '%s' "${BASH_REMATCH[1]}" ;;
    HuaweiOBS) [[ $host =~ ^obs\.([a-z0-9-]+)\.myhuaweicloud\.com$ ]] && printf '%s' "${BASH_REMATCH[1]}" ;;
    AWS) [[ $host =~ ^s3[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?$ && ${BASH_REMATCH[1]} != external-1 ]] &&
      printf '%s' "${BASH_REMATCH[1]}" ;;
  esac
  return 0
}

# aws_endpoint REGION: AWS's regional endpoint, as KubeBlocks' s3 StorageProvider derives it
# for its CSI driver when the BackupRepo names none (China regions live under .com.cn).
aws_endpoint() {
  if [[ $1 == cn-* ]]; then
    printf 'https://s3.%s.amazonaws.com.cn' "$1"
  else
    printf 'https://s3.%s.amazonaws.com' "$1"
  fi
}

# load_s3_config FILE: reads the BackupRepo's [storage] section into S3_* globals:
#   S3_PROVIDER, S3_ACCESS_KEY, S3_SECRET_KEY, S3_SESSION_TOKEN, S3_STATIC_KEYS (false for
#   env_auth without keys), S3_BUCKET, S3_PREFIX, S3_ENDPOINT (with its scheme; empty for the
#   engine's default), S3_PROTOCOL (http|https), S3_REGION and S3_REGION_SOURCE (config,
#   endpoint or default), S3_PATH_STYLE (true|false).
# Fails with a sentence naming the problem, never the value of a secret.
load_s3_config() {
  local file=$1 section=storage type root
  [[ -r $file ]] || die "BackupRepo config $file is missing or unreadable"
  ini_has_section "$file" "$section" || die "BackupRepo config $file has no [storage] section"

  type=$(ini_value "$file" "$section" type)
  [[ $type == s3 ]] ||
    die "BackupRepo storage type is '${type:-empty}': the full-backup method writes S3 snapshots and needs an S3-compatible BackupRepo (a StorageProvider of type s3: s3, minio, oss, cos, obs, gcs-s3comp, s3-compatible), not this one"

  S3_PROVIDER=$(ini_value "$file" "$section" provider Other)
  load_s3_keys "$file"

  root=$(ini_value "$file" "$section" root)
  split_root "$root"
  [[ -n $S3_BUCKET ]] || die "BackupRepo config $file has an empty root: no bucket"

  local insecure
  insecure=$(ini_value "$file" "$section" no_check_certificate false)
  if [[ $(parse_bool "$insecure" || true) == true ]]; then
    warn "BackupRepo sets no_check_certificate: the engine always verifies the endpoint's certificate (against the nodes' trusted CAs)"
  fi

  normalize_endpoint "$(ini_value "$file" "$section" endpoint)" "$(ini_value "$file" "$section" protocol)"
  load_s3_region "$file"
  load_s3_path_style "$file"
}

# load_s3_keys FILE: the static keys, or env_auth (IRSA, an instance role) when the config
# has none and says env_auth = true, as rclone reads them.
load_s3_keys() {
  local file=$1 env_auth
  S3_ACCESS_KEY=$(ini_value "$file" storage access_key_id)
  S3_SECRET_KEY=$(ini_value "$file" storage secret_access_key)
  S3_SESSION_TOKEN=$(ini_value "$file" storage session_token)
  SECRET_VALUES+=("$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_SESSION_TOKEN")
  env_auth=$(ini_value "$file" storage env_auth false)
  env_auth=$(parse_bool "$env_auth") ||
    die "BackupRepo config $file: env_auth '$(ini_value "$file" storage env_auth)' is not a boolean"
  S3_STATIC_KEYS=true
  if [[ -z $S3_ACCESS_KEY && -z $S3_SECRET_KEY && $env_auth == true ]]; then
    S3_STATIC_KEYS=false
    return 0
  fi
  [[ -n $S3_ACCESS_KEY ]] ||
    die "BackupRepo config $file lacks access_key_id (and env_auth is not true, so there are no credentials to use)"
  [[ -n $S3_SECRET_KEY ]] ||
    die "BackupRepo config $file lacks secret_access_key (and env_auth is not true, so there are no credentials to use)"
}

# load_s3_region FILE: the config's region; else the one the endpoint names; else rclone's
# default, us-east-1. An AWS BackupRepo without an endpoint gets its regional endpoint.
load_s3_region() {
  S3_REGION=$(ini_value "$1" storage region)
  S3_REGION_SOURCE=config
  if [[ -z $S3_REGION ]]; then
    S3_REGION=$(region_from_endpoint "$S3_PROVIDER" "$S3_ENDPOINT")
    S3_REGION_SOURCE=endpoint
  fi
  if [[ -z $S3_REGION ]]; then
    S3_REGION=us-east-1
    S3_REGION_SOURCE=default
  fi
  if [[ -z $S3_ENDPOINT && $S3_PROVIDER == AWS && $S3_REGION_SOURCE == config ]]; then
    S3_ENDPOINT=$(aws_endpoint "$S3_REGION")
    S3_PROTOCOL=https
  fi
}

# load_s3_path_style FILE: as rclone addresses the bucket (provider_virtual_host, else
# force_path_style, whose default is true).
load_s3_path_style() {
  local file=$1 given
  given=$(ini_value "$file" storage force_path_style)
  if [[ -n $given ]]; then
    given=$(parse_bool "$given") ||
      die "BackupRepo config $file: force_path_style '$(ini_value "$file" storage force_path_style)' is not a boolean"
  fi
  if provider_virtual_host "$S3_PROVIDER"; then
    [[ $given != true ]] ||
      warn "BackupRepo sets force_path_style = true, which rclone ignores for provider ${S3_PROVIDER}: virtual-host style, as datasafed uses"
    S3_PATH_STYLE=false
  else
    S3_PATH_STYLE=${given:-true}
  fi
}

# split_root ROOT: 'bucket/some/prefix' -> S3_BUCKET=bucket, S3_PREFIX=some/prefix.
split_root() {
  local root
  [[ /$1/ != */../* ]] || die "BackupRepo root '$1' holds '..'"
  root=$(normalize_path "$1")
  S3_BUCKET=${root%%/*}
  if [[ $root == */* ]]; then
    S3_PREFIX=${root#*/}
  else
    S3_PREFIX=''
  fi
}

# normalize_endpoint ENDPOINT [PROTOCOL]: sets S3_ENDPOINT (scheme kept or added; https
# unless PROTOCOL says http) and S3_PROTOCOL. An empty endpoint stays empty.
normalize_endpoint() {
  local endpoint=$1 protocol=${2,,}
  endpoint=${endpoint%/}
  if [[ $endpoint =~ ^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$ ]]; then
    S3_PROTOCOL=${BASH_REMATCH[1],,}
    endpoint="${S3_PROTOCOL}://${BASH_REMATCH[2]}"
  else
    [[ $protocol == http ]] && S3_PROTOCOL=http || S3_PROTOCOL=https
    [[ -n $endpoint ]] && endpoint="${S3_PROTOCOL}://${endpoint}"
  fi
  [[ $S3_PROTOCOL == http || $S3_PROTOCOL == https ]] ||
    die "S3 endpoint scheme '$S3_PROTOCOL' is not http or https"
  S3_ENDPOINT=$endpoint
}

# normalize_path PATH: no leading, trailing or doubled slashes, no '.' segments.
normalize_path() {
  local IFS=/ part out=''
  local -a parts
  read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do
    [[ -z $part || $part == . ]] && continue
    out+="${out:+/}$part"
  done
  printf '%s' "$out"
}

# repository_base_path PREFIX BACKUP_BASE_PATH: where this Backup's snapshot repository
# lives in the bucket (the BackupRepo prefix, then DP_BACKUP_BASE_PATH).
repository_base_path() {
  local prefix base
  prefix=$(normalize_path "$1")
  base=$(normalize_path "$2")
  [[ /$base/ != */../* ]] || die "backup base path '$2' holds '..'"
  printf '%s' "${prefix}${prefix:+${base:+/}}${base}"
}

# ---------------------------------------------------------------------------
# Names derived from the Backup
# ---------------------------------------------------------------------------

# Eight hex digits of SHA-256 over $1.
short_hash() {
  printf '%s' "$1" | sha256sum | cut -c1-8
}

# repository_name BACKUP: 'kb-<backup>' (a Backup name is a DNS subdomain, which the
# engines accept); longer than 64 characters it is cut and suffixed with a hash.
repository_name() {
  local name
  name=$(printf '%s' "${1,,}" | tr -c 'a-z0-9.-' '-')
  name="kb-${name}"
  if [[ ${#name} -gt 64 ]]; then
    name="${name:0:55}-$(short_hash "$1")"
  fi
  printf '%s' "$name"
}

# restore_repository_name REPOSITORY SCOPE ATTEMPT: a restore attempt's own repository,
# 'kb-<backup>-<scope>-r<attempt>' (at most 63 characters), or 'kb-<backup>-r<attempt>' for a
# restore that cannot tell its Restore. The scope is in the name because with env_auth every
# attempt's client is 'default': the name is then all that tells this Restore's repositories.
restore_repository_name() {
  local repo=$1 scope=$2 attempt=$3
  if [[ -n $scope ]]; then
    printf '%s-%s-r%s' "${repo:0:46}" "$scope" "$attempt"
  else
    printf '%s-r%s' "${repo:0:56}" "$attempt"
  fi
}

# JQ_RESTORE_REPOSITORY: jq's restore_repository($repo): whether a repository name is one of a
# restore attempt's of the Backup named $repo (repository_name), of any Restore.
# shellcheck disable=SC2016 # jq's variables, not the shell's
JQ_RESTORE_REPOSITORY='
  def restore_repository($repo):
    (startswith($repo[:46] + "-") and (.[($repo[:46] | length) + 1:] | test("^[0-9a-f]{8}-r[0-9a-f]{6}$")))
    or (startswith($repo[:56] + "-r") and (.[($repo[:56] | length) + 2:] | test("^[0-9a-f]{6}$")));
'

# JQ_GLOB_RE: jq's 'glob_re': an index pattern (* the only wildcard) as a regular expression,
# with \A and \z, not ^ and $ ($ also matches before a final line break), and a * that spans
# line breaks: as the engines match names.
# shellcheck disable=SC2016 # jq's variables, not the shell's
JQ_GLOB_RE='
    def glob_re: "\\A" + (gsub("(?<c>[.+?^${}()|\\[\\]\\\\])"; "\\\(.c)") | gsub("\\*"; "(?s:.)*")) + "\\z";
'

# client_name NAMESPACE BACKUP [RESTORE]: the S3 client name of a Backup's jobs (of one Restore
# of it, given RESTORE), to which each attempt adds its id: 'kb_<up to 20 chars of the backup
# name>_<hash of namespace/backup[/restore]>', matching [a-z0-9_-]+ and at most 32 characters
# (39 with the id), so that two Backups, or two Restores, never share a client.
client_name() {
  local ns=$1 backup=$2 restore=${3:-} slug
  slug=$(printf '%s' "${backup,,}" | tr -c 'a-z0-9' '_')
  slug=${slug:0:20}
  while [[ $slug == *_ ]]; do slug=${slug%_}; done
  printf 'kb_%s_%s' "$slug" "$(short_hash "${ns}/${backup}${restore:+/${restore}}")"
}

# JQ_ATTEMPT_CLIENT: jq's 'attempt_client(BASE)': whether a client name is one of an attempt
# of this job's scope: BASE, then '_' and the attempt's 6 hex digits (BASE alone: written
# before attempts had ids); exactly that, since another Backup's name may hold BASE.
# shellcheck disable=SC2016 # jq's variables, not the shell's
JQ_ATTEMPT_CLIENT='def attempt_client($base): . == $base or (startswith($base + "_") and (.[($base | length) + 1:] | test("^[0-9a-f]{6}$")));'

# restore_scope: which Restore a restore job serves, from its pod's name (HOSTNAME): KubeBlocks
# names a restore Job 'restore-<stage>-<first 8 hex of the Restore's UID>-<backup>-...'. Empty
# when the name does not say (the job run by hand): its attempts then cannot be told from
# another Restore's of the same Backup.
restore_scope() {
  local pod=${HOSTNAME:-}
  if [[ $pod =~ ^restore-(post-ready|postready|preparedata)-([0-9a-f]{8})- ]]; then
    printf '%s' "${BASH_REMATCH[2]}"
  fi
}

# Brackets an IPv6 address for use in a URL.
url_host() {
  local host=${1#[}
  host=${host%]}
  if [[ $host == *:* ]]; then
    printf '[%s]' "$host"
  else
    printf '%s' "$host"
  fi
}

# ---------------------------------------------------------------------------
# Job environment
# ---------------------------------------------------------------------------

# in_cluster_dns NAME: NAME ending in .svc.<domain>, as the certificates of KubeBlocks'
# issuer name it: a name short of it (<pod>.<headless service>, as KubeBlocks gives the job)
# gets .<KB_NAMESPACE>.svc.<CLUSTER_DOMAIN>; a full name, or one without KB_NAMESPACE, stays.
in_cluster_dns() {
  local name=$1
  if [[ $name != *.svc.* && $name != *.svc && -n ${KB_NAMESPACE:-} ]]; then
    name+=".${KB_NAMESPACE}.svc.${CLUSTER_DOMAIN:-cluster.local}"
  fi
  printf '%s' "$name"
}

# is_dns_name HOST: a name with a dot (<pod>.<service>...), not an address.
is_dns_name() {
  [[ $1 == *.* && $1 =~ [a-z] && $1 != *:* ]]
}

# node_host_name HOST: the name to reach the target pod by: over HTTPS the full name its
# certificate carries (in_cluster_dns); an address, or any name over HTTP, stays.
node_host_name() {
  if [[ ${ES_SCHEME:-http} == https ]] && is_dns_name "$1"; then
    in_cluster_dns "$1"
  else
    printf '%s' "$1"
  fi
}

# agent_host_suffix: over HTTPS, the DNS suffix the pods' certificates name, so that each
# agent is called by <node name>.<suffix> (KubeBlocks' issuer names *.<headless service>.
# <namespace>.svc.<domain>, never a pod's address): the target pod's name without its first
# label, completed by in_cluster_dns. Empty over HTTP or when DP_DB_HOST is an address.
agent_host_suffix() {
  [[ ${AGENT_SCHEME:-http} == https ]] && is_dns_name "${DP_DB_HOST:-}" || return 0
  in_cluster_dns "${DP_DB_HOST#*.}"
}

# Reads the DataProtection job's environment into globals and validates it.
load_job_env() {
  local n scope
  [[ -n ${DP_DB_HOST:-} ]] || die "DP_DB_HOST is not set"
  [[ -n ${DP_BACKUP_NAME:-} ]] || die "DP_BACKUP_NAME is not set"
  [[ -n ${DP_BACKUP_BASE_PATH:-} ]] || die "DP_BACKUP_BASE_PATH is not set"
  [[ $DP_BACKUP_NAME =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]] ||
    die "DP_BACKUP_NAME '$DP_BACKUP_NAME' is not a valid snapshot name (lower-case letters, digits, '-' and '.')"

  BACKUP_NAME=$DP_BACKUP_NAME
  SNAPSHOT_NAME=$DP_BACKUP_NAME
  NAMESPACE=${KB_NAMESPACE:-default}
  ES_URL="${ES_SCHEME:-http}://$(url_host "$(node_host_name "$DP_DB_HOST")"):${DP_DB_PORT:-9200}"
  DB_USER=${DP_DB_USER:-}
  DB_PASSWORD=${DP_DB_PASSWORD:-}
  # Without DataProtection's account variables, the elastic user's own (the target pod's
  # container env, which the job inherits).
  if [[ -z $DB_USER && -n ${ELASTIC_PASSWORD:-} ]]; then
    DB_USER=${ELASTIC_USERNAME:-elastic}
    DB_PASSWORD=$ELASTIC_PASSWORD
  fi
  SECRET_VALUES+=("$DB_PASSWORD")

  DATASAFED_CONF=${DATASAFED_CONF:-/etc/datasafed/datasafed.conf}
  AGENT_PORT=${AGENT_PORT:-8080}
  AGENT_SCHEME=${AGENT_SCHEME:-http}
  # Unset: derived (agent_host_suffix); set empty: the agents are called by address.
  AGENT_HOST_SUFFIX=${AGENT_HOST_SUFFIX-$(agent_host_suffix)}
  AGENT_CONNECT_TIMEOUT=${AGENT_CONNECT_TIMEOUT:-5}
  AGENT_TIMEOUT=${AGENT_TIMEOUT:-30}
  ES_CONNECT_TIMEOUT=${ES_CONNECT_TIMEOUT:-10}
  ES_TIMEOUT=${ES_TIMEOUT:-60}
  ES_VERIFY_TIMEOUT=${ES_VERIFY_TIMEOUT:-120}
  POLL_INTERVAL=${POLL_INTERVAL:-5}
  PROGRESS_INTERVAL=${PROGRESS_INTERVAL:-30}
  AGENT_PARALLELISM=${AGENT_PARALLELISM:-32}
  AGENT_NODE_DEADLINE=${AGENT_NODE_DEADLINE:-60}
  AGENT_ATTEMPTS=${AGENT_ATTEMPTS:-3}

  # Each attempt of a job (each pod of its Job) writes keys of its own, so that one attempt's
  # exit never removes the keys another is using: the Backup's client name and an attempt id.
  # A backup's repository is the Backup's (one path, one writer at a time: an attempt takes
  # over an earlier one's); a restore's, read-only, is the attempt's own.
  # From /dev/urandom: bash's $RANDOM is seeded from the time and the pid, which two pods'
  # containers started in the same second may share.
  ATTEMPT_ID=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  [[ $ATTEMPT_ID =~ ^[0-9a-f]{6}$ ]] || die "could not read 3 random bytes from /dev/urandom"
  # The attempts of one Backup's backup, or of one Restore, follow one another (a Job's pods):
  # at its end an attempt collects what the earlier ones of its scope left
  # (collect_earlier_attempts); two Restores of one Backup may run at once, so a restore's
  # scope is its Restore.
  RESTORE_SCOPE='' scope=''
  if [[ ${JOB_KIND:-} == restore ]]; then
    RESTORE_SCOPE=$(restore_scope)
    # One that cannot tell its Restore still gets clients apart from the backup's.
    scope=${RESTORE_SCOPE:-restore}
  fi
  CLIENT_BASE=$(client_name "$NAMESPACE" "$BACKUP_NAME" "$scope")
  CLIENT_PREFIX="${CLIENT_BASE}_"
  S3_CLIENT="${CLIENT_PREFIX}${ATTEMPT_ID}"
  OWN_S3_CLIENT=$S3_CLIENT
  REPOSITORY=$(repository_name "$BACKUP_NAME")
  if [[ ${JOB_KIND:-} == restore ]]; then
    REPOSITORY=$(restore_repository_name "$REPOSITORY" "$RESTORE_SCOPE" "$ATTEMPT_ID")
  fi
  TAKEN_CLIENT=''
  REPOSITORY_EXTRA_SETTINGS=${REPOSITORY_EXTRA_SETTINGS:-'{}'}
  for n in AGENT_PORT AGENT_CONNECT_TIMEOUT AGENT_TIMEOUT ES_CONNECT_TIMEOUT ES_TIMEOUT \
    ES_VERIFY_TIMEOUT POLL_INTERVAL PROGRESS_INTERVAL; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n '${!n}' is not a whole number"
  done
  for n in AGENT_PARALLELISM AGENT_NODE_DEADLINE AGENT_ATTEMPTS AGENT_TIMEOUT; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "$n '${!n}' is not a positive whole number"
  done
}

# ---------------------------------------------------------------------------
# Temporary files and the exit trap
# ---------------------------------------------------------------------------

# job_init KIND (backup|restore): private work directory, 0600 files, the EXIT trap.
job_init() {
  JOB_KIND=$1
  umask 077
  # The job's own output, for its exit: a signal's trap may run inside a function whose output
  # goes to a file (capture).
  exec {JOB_STDOUT}>&1 {JOB_STDERR}>&2
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/es-dp.XXXXXX")
  AGENT_DIR="$WORK_DIR/agents"
  mkdir "$AGENT_DIR"
  REPOSITORY_REGISTERED=false
  REPOSITORY_OWNED=false
  KEYSTORE_TOUCHED=false
  JOB_DONE=false
  trap on_exit EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  trap 'exit 129' HUP
  trap 'exit 131' QUIT
}

# Marks the job as succeeded; the EXIT trap then reports success.
job_done() {
  JOB_DONE=true
  log "${JOB_KIND} ${BACKUP_NAME} done in ${SECONDS}s"
}

# bound_for_the_grace_period: a job stopped by a signal (its pod is being deleted) has what is
# left of the pod's grace period (terminationGracePeriodSeconds, 30 s by default), not its
# usual deadlines: the whole clean-up ends within EXIT_GRACE seconds (25) of the signal
# (EXIT_DEADLINE), and each call it makes gets EXIT_CALL_TIMEOUT seconds (10) at most.
bound_for_the_grace_period() {
  SIGNALLED=true
  bound_what_follows
  warn "stopped by a signal: the clean-up ends within ${EXIT_GRACE}s (EXIT_GRACE), each of its calls within ${EXIT_CALL_LIMIT}s"
}

# bound_what_follows: what the exit does from now on ends within EXIT_GRACE seconds
# (EXIT_DEADLINE), each call within EXIT_CALL_TIMEOUT seconds (EXIT_CALL_LIMIT).
bound_what_follows() {
  local var
  EXIT_CALL_LIMIT=${EXIT_CALL_TIMEOUT:-10}
  [[ $EXIT_CALL_LIMIT =~ ^[1-9][0-9]*$ ]] || EXIT_CALL_LIMIT=10
  [[ ${EXIT_GRACE:-} =~ ^[1-9][0-9]*$ ]] || EXIT_GRACE=25
  ((EXIT_CALL_LIMIT <= EXIT_GRACE)) || EXIT_CALL_LIMIT=$EXIT_GRACE
  # What the keys and the repository keep of the grace period: one call's time, but never more
  # than half of it (a short grace period still leaves the job's own clean-up time).
  EXIT_RESERVE=$EXIT_CALL_LIMIT
  ((EXIT_RESERVE * 2 <= EXIT_GRACE)) || EXIT_RESERVE=$((EXIT_GRACE / 2))
  EXIT_DEADLINE=$((EPOCHSECONDS + EXIT_GRACE))
  for var in AGENT_NODE_DEADLINE AGENT_TIMEOUT AGENT_CONNECT_TIMEOUT ES_TIMEOUT ES_VERIFY_TIMEOUT ES_CONNECT_TIMEOUT; do
    if [[ ${!var:-} =~ ^[0-9]+$ ]] && ((${!var} > EXIT_CALL_LIMIT)); then
      printf -v "$var" '%s' "$EXIT_CALL_LIMIT"
    fi
  done
}

# calls_until: when the engine calls of a clean-up must end: EXIT_DEADLINE, or, during the
# job's own clean-up (job_cleanup), EXIT_RESERVE before it, kept for the keys and the
# repository, which follow (a slow engine would otherwise take the whole grace period).
calls_until() {
  if [[ ${IN_JOB_CLEANUP:-false} == true ]]; then
    printf '%s' "$((EXIT_DEADLINE - EXIT_RESERVE))"
  else
    printf '%s' "$EXIT_DEADLINE"
  fi
}

# within_the_grace_period VAR: lowers the seconds in VAR to what is left of the grace period
# when that is less (at least 1).
within_the_grace_period() {
  [[ -n ${EXIT_DEADLINE:-} ]] || return 0
  local left=$(($(calls_until) - EPOCHSECONDS))
  ((left < ${!1})) || return 0
  ((left >= 1)) || left=1
  printf -v "$1" '%s' "$left"
}

# out_of_clean_up_time: whether the job's own clean-up has used its share of the grace period.
out_of_clean_up_time() {
  [[ -n ${EXIT_DEADLINE:-} && ${IN_JOB_CLEANUP:-false} == true ]] && ((EPOCHSECONDS >= $(calls_until)))
}

# wait_for_agent_calls: the agent calls a stop found in flight end before the keys are
# removed (a write landing after the removal would outlive the job). After a signal they get
# until one clean-up call's time before EXIT_DEADLINE; those still running then are stopped,
# and their nodes named: a write already sent may still land there.
wait_for_agent_calls() {
  if [[ -z ${EXIT_DEADLINE:-} ]]; then
    wait 2>/dev/null
    return 0
  fi
  local until=$((EXIT_DEADLINE - EXIT_RESERVE)) running
  while running=$(jobs -rp) && [[ -n $running ]] && ((EPOCHSECONDS < until)); do
    sleep 0.1
  done
  [[ -n $running ]] || return 0
  # shellcheck disable=SC2086 # one pid a word
  kill -USR1 $running 2>/dev/null
  wait 2>/dev/null
  local cut
  cut=$(cat "$AGENT_DIR"/cut.* 2>/dev/null | paste -sd, -)
  if [[ ${SIGNALLED:-false} == true ]]; then
    warn "stopped by a signal: agent calls still running were cut off to end within the grace period${cut:+ (agents at ${cut})}; what they sent may still land there: check them with GET /keystore"
  else
    warn "the collection's ${EXIT_GRACE}s (EXIT_GRACE) ran out: agent calls still running were cut off${cut:+ (agents at ${cut})}; a later attempt collects what they left"
  fi
}

# Runs on every exit path: job cleanup hook, repository unregistration, removal of the job's
# S3 client from every keystore, temp files, the '.exit' marker of a failed backup.
on_exit() {
  local rc=$?
  set +e
  [[ -z ${JOB_STDOUT:-} ]] || exec 1>&"$JOB_STDOUT" 2>&"$JOB_STDERR"
  # A second signal (timeout(1) signals the whole process group; an operator presses Ctrl-C
  # twice) must not cut the clean-up short: it is bounded by EXIT_GRACE, SIGKILL stays.
  if ((rc == 143 || rc == 130 || rc == 129 || rc == 131)); then
    trap '' TERM INT HUP QUIT
    bound_for_the_grace_period
  else
    trap signal_during_the_exit TERM INT HUP QUIT
  fi
  # The call or pause a signal interrupted, reaped at once (a trap's shell may not notice its
  # end by itself, and would count it as a call still running).
  [[ -z ${CURL_PID:-} ]] || { kill -USR1 "$CURL_PID" 2>/dev/null; wait "$CURL_PID" 2>/dev/null; }
  [[ -z ${SLEEP_PID:-} ]] || { kill "$SLEEP_PID" 2>/dev/null; wait "$SLEEP_PID" 2>/dev/null; }
  CURL_PID='' SLEEP_PID=''
  if declare -F job_cleanup >/dev/null; then
    IN_JOB_CLEANUP=true
    job_cleanup "$rc"
    IN_JOB_CLEANUP=false
  fi
  # Agent calls still in flight (the job was stopped during a fan-out).
  wait_for_agent_calls
  if [[ ${KEEP_FOR_THE_ENGINE:-false} == true ]]; then
    leave_for_the_engine
  else
    # The keys first, the repository last: a later attempt of this Backup waits for the
    # repository to go (wait_for_earlier_attempt), and must then find the keys gone too.
    remove_keystore_client
    unregister_repository
    remove_taken_client
    collect_earlier_attempts
  fi
  rm -rf -- "$WORK_DIR"
  if [[ $rc -ne 0 || $JOB_DONE != true ]]; then
    [[ $rc -ne 0 ]] || rc=1
    if [[ ${JOB_KIND:-} == backup && -n ${DP_BACKUP_INFO_FILE:-} ]]; then
      touch "${DP_BACKUP_INFO_FILE}.exit"
    fi
    log "${JOB_KIND:-job} ${BACKUP_NAME:-${DP_BACKUP_NAME:-}} FAILED (exit $rc)" >&2
  fi
  exit "$rc"
}

# signal_during_the_exit: a signal while a normal exit cleans up (the pod deleted then): what is
# left of the clean-up, the calls in flight too, ends within the grace period, as after a
# signal. Later signals are ignored.
signal_during_the_exit() {
  trap '' TERM INT HUP QUIT
  [[ -n ${EXIT_DEADLINE:-} ]] || bound_for_the_grace_period
}

# now_ms: the time in milliseconds.
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  printf '%s' "${t:0:${#t}-3}"
}

# sleep_s SECONDS: a pause that a signal cuts short (`wait` lets its trap run at once).
sleep_s() {
  sleep "$1" &
  SLEEP_PID=$!
  wait "$SLEEP_PID" || true
  SLEEP_PID=''
}

# sleep_ms MS
sleep_ms() {
  sleep_s "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# keep_for_the_engine: the engine may still be working with the job's repository (a snapshot or
# a restore whose end the job could not see). Unregistering the repository or removing the S3
# client then would break that work, so on exit both stay and the log says how to remove them.
keep_for_the_engine() { KEEP_FOR_THE_ENGINE=true; }

leave_for_the_engine() {
  [[ ${REPOSITORY_REGISTERED:-false} == true || ${KEYSTORE_TOUCHED:-false} == true ]] || return 0
  if [[ -n ${TAKEN_CLIENT:-} && ${REPOSITORY_AS_IS:-false} == true ]]; then
    warn "repository ${REPOSITORY} still uses the S3 client ${TAKEN_CLIENT} of the earlier attempt it was taken over from: remove s3.client.${TAKEN_CLIENT}.* too once it has ended"
  elif [[ -n ${TAKEN_CLIENT:-} ]]; then
    warn "the keys of S3 client ${TAKEN_CLIENT}, of the earlier attempt whose repository this job took over, stay too (no repository uses them): remove s3.client.${TAKEN_CLIENT}.* as well, or let the next attempt of this Backup do it"
  fi
  warn "the engine may still be using repository ${REPOSITORY} and S3 client ${S3_CLIENT}: both are left in place so that it can finish; once it has ended, unregister the repository (DELETE _snapshot/${REPOSITORY}) and remove s3.client.${S3_CLIENT}.* from every node's keystore (DELETE /keystore?client=${S3_CLIENT}&reload=true on each agent)"
}

# private_file FILE: an empty file only its owner can read, whatever the umask.
private_file() {
  (umask 077 && : >"$1")
  chmod 0600 "$1"
}

# Writes the curl config that carries the cluster credentials (Basic auth as a header,
# so that no character of the password needs escaping). Empty user: no auth.
write_auth_config() {
  AUTH_CONFIG="$WORK_DIR/auth.curlrc"
  private_file "$AUTH_CONFIG"
  if [[ -n $DB_USER ]]; then
    local token
    token=$(printf '%s:%s' "$DB_USER" "$DB_PASSWORD" | base64 -w0)
    SECRET_VALUES+=("$token")
    printf 'header = "Authorization: Basic %s"\n' "$token" >"$AUTH_CONFIG"
  fi
  # A restore job gets the target pod's env after the ActionSet's, so its ES_CACERT may still
  # hold the unexpanded reference to TLS_CA_FILE (the kubelet expands only variables defined
  # before it): TLS_CA_FILE is then there itself. (No dollar-parenthesis in this file: the
  # kubelet would expand it in the job's command.)
  [[ ${ES_CACERT:-} != "\$"\(* ]] || ES_CACERT=${TLS_CA_FILE:-}
  if [[ -n ${ES_CACERT:-} ]]; then
    # The chart's ES_CACERT is the TLS volume's ca.pem, mounted from the target pod through the
    # backup method's targetVolumes: a Backup whose method lists none cannot give it.
    [[ -r $ES_CACERT ]] ||
      die "ES_CACERT ${ES_CACERT} is not a readable file: the nodes' CA is missing (in Kubernetes it comes from the target pod's TLS volume, which the Backup's method must list in targetVolumes; a Backup made by a method without it, such as the upstream addon's, cannot give it)"
    local escaped=${ES_CACERT//\\/\\\\}
    printf 'cacert = "%s"\n' "${escaped//\"/\\\"}" >>"$AUTH_CONFIG"
  fi
}

# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

# curl_args OUT METHOD BODY_FILE CONNECT_TIMEOUT MAX_TIME: sets CURL_ARGS, the options of
# one request with the cluster credentials (from the 0600 config file), its answer to OUT
# and its HTTP status to standard output ('000' when no answer came).
curl_args() {
  local out=$1 method=$2 body=$3 connect=$4 max=$5
  CURL_ARGS=(--silent --show-error --config "$AUTH_CONFIG"
    --connect-timeout "$connect" --max-time "$max"
    --request "$method" --header 'Content-Type: application/json'
    --output "$out" --write-out '%{http_code}')
  [[ -z $body ]] || CURL_ARGS+=(--data-binary "@$body")
  [[ -z ${HTTP_EXTRA_CONFIG:-} ]] || CURL_ARGS+=(--config "$HTTP_EXTRA_CONFIG")
  : >"$out"
}

# http_call OUT METHOD URL BODY_FILE CONNECT_TIMEOUT MAX_TIME: one request; the answer
# goes to OUT, curl's message to OUT.err, the HTTP status to HTTP_CODE ('000' when none came).
# Returns curl's exit code. curl runs in the background and is waited for: bash runs a
# signal's trap only between commands, but at once during `wait`, so a stopped job does not
# first sit out the call. CURL_PID names it meanwhile, for the trap to stop (with SIGUSR1:
# curl ignores the stop signals, which timeout(1) or Ctrl-C also send to the whole process
# group, so that the job alone decides which of its calls to cut short).
http_call() {
  local -a CURL_ARGS
  local rc=0
  curl_args "$1" "$2" "$4" "$5" "$6"
  (
    trap '' TERM INT HUP QUIT
    exec curl "${CURL_ARGS[@]}" --url "$3"
  ) >"$1.code" 2>"$1.err" &
  CURL_PID=$!
  # (bash's notice of a call the job stopped is noise: the job says what it stopped.)
  wait "$CURL_PID" 2>/dev/null || rc=$?
  # A trap that returns (a signal during a normal exit) cut the wait short: the call goes on
  # for one clean-up call's time from the signal, and never into the time the rest of the
  # clean-up needs (the keys, the repository).
  if ((rc > 128)); then
    if kill -0 "$CURL_PID" 2>/dev/null; then
      local stop=''
      if [[ -n ${EXIT_DEADLINE:-} ]]; then
        stop=$((EXIT_DEADLINE - EXIT_GRACE + EXIT_CALL_LIMIT))
        ((stop <= EXIT_DEADLINE - EXIT_RESERVE)) || stop=$((EXIT_DEADLINE - EXIT_RESERVE))
      fi
      while kill -0 "$CURL_PID" 2>/dev/null && { [[ -z $stop ]] || ((EPOCHSECONDS < stop)); }; do
        sleep 0.1
      done
      kill -USR1 "$CURL_PID" 2>/dev/null
    fi
    # Waited for even when it has ended (a trap may have stopped it): its status is the
    # call's, and bash prints no notice of it later.
    rc=0
    wait "$CURL_PID" 2>/dev/null || rc=$?
  fi
  CURL_PID=''
  read -r HTTP_CODE <"$1.code" || true
  [[ -n $HTTP_CODE ]] || HTTP_CODE=000
  return "$rc"
}

# capture VAR FUNCTION [ARGS...]: FUNCTION's output (trailing newlines cut) into VAR, and its
# status. FUNCTION runs in this shell, not in a $(...) subshell: a signal's trap waits for a
# subshell to end, and the grace period does not bound the calls made in one.
capture() {
  local __var=$1 __out="$WORK_DIR/capture.${#FUNCNAME[@]}" __rc=0
  shift
  "$@" >"$__out" || __rc=$?
  printf -v "$__var" '%s' "$(<"$__out")"
  return "$__rc"
}

# Standard input on one line, without trailing blanks.
one_line() {
  local text
  text=$(tr '\n' ' ')
  printf '%s' "${text%"${text##*[![:space:]]}"}"
}

# es_call METHOD PATH [BODY_FILE] [MAX_TIME]: a request to the engine. Sets HTTP_STATUS
# and ES_REPLY (the answer's file). Returns 0 when an answer came (any status), 1 when none
# did (HTTP_ERROR then holds curl's message).
es_call() {
  local method=$1 path=$2 body=${3:-} max=${4:-$ES_TIMEOUT} rc=0
  ES_REPLY="$WORK_DIR/reply.json"
  HTTP_ERROR=''
  if out_of_clean_up_time; then
    HTTP_CODE=000 HTTP_STATUS=000
    HTTP_ERROR="not sent: the grace period's last ${EXIT_RESERVE}s (EXIT_GRACE, EXIT_CALL_TIMEOUT) are kept for removing the keys and the repository"
    : >"$ES_REPLY"
    return 1
  fi
  within_the_grace_period max
  http_call "$ES_REPLY" "$method" "${ES_URL}${path}" "$body" "$ES_CONNECT_TIMEOUT" "$max" || rc=$?
  HTTP_STATUS=$HTTP_CODE
  ((rc == 0)) && return 0
  HTTP_ERROR=$(one_line <"$ES_REPLY.err")
  return 1
}

# es_ok STEP METHOD PATH [BODY_FILE] [MAX_TIME]: like es_call, but stops the job with
# the engine's cause unless the answer is 2xx; STEP names the step in the message.
es_ok() {
  local step=$1
  shift
  if ! es_call "$@"; then
    die "${step}: no answer from ${ES_URL}: ${HTTP_ERROR}"
  fi
  if [[ $HTTP_STATUS != 2* ]]; then
    die "${step}: engine answered HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")"
  fi
}

# engine_error FILE: the error in an engine answer, with its chain of causes
# ('type: reason; caused by: type: reason ...'), or the start of a non-JSON body.
engine_error() {
  local file=$1 msg
  msg=$(jq -r '
    def chain: if type == "object" then
        [((.type // "error") + ": " + (.reason // "no reason given"))] + ((.caused_by // null) | chain)
      else [] end;
    if (.error | type) == "object" then .error | chain | join("; caused by: ")
    elif .error != null then .error | tostring
    else tostring end' "$file" 2>/dev/null) || msg=$(head -c 300 "$file" | tr '\n' ' ')
  printf '%s' "${msg:-empty answer}"
}

# ---------------------------------------------------------------------------
# Steps shared by backup and restore
# ---------------------------------------------------------------------------

# Prints the job's plan: cluster, bucket, path, names (no secret among them).
log_plan() {
  log "${JOB_KIND} ${BACKUP_NAME}: cluster ${ES_URL}, repository ${REPOSITORY}, S3 client ${S3_CLIENT}"
  local source
  case ${S3_REGION_SOURCE:-config} in
    config) source='from the BackupRepo' ;;
    endpoint) source='from the endpoint' ;;
    *) source="rclone's default" ;;
  esac
  log "storage: bucket ${S3_BUCKET}, base_path ${REPO_BASE_PATH}, endpoint ${S3_ENDPOINT:-(engine default)}, region ${S3_REGION} (${source}), path-style ${S3_PATH_STYLE} (provider ${S3_PROVIDER})"
}

# Reads GET / into ENGINE_DISTRIBUTION (elasticsearch|opensearch), ENGINE_VERSION,
# CLUSTER_NAME.
detect_engine() {
  es_ok "cluster info (GET /)" GET /
  local fields
  # One jq run for the three (each run costs some 20 ms); fields split at US (0x1f), which no
  # version or name holds and which, unlike a tab, read does not merge when a field is empty.
  fields=$(jq -r '[.version.distribution // "elasticsearch", .version.number // "unknown",
      .cluster_name // "unknown"] | map(tostring | gsub("[\u001f\n]"; " ")) | join("\u001f")' "$ES_REPLY")
  IFS=$'\x1f' read -r ENGINE_DISTRIBUTION ENGINE_VERSION CLUSTER_NAME <<<"$fields"
  log "cluster ${CLUSTER_NAME}: ${ENGINE_DISTRIBUTION} ${ENGINE_VERSION}"
}

# Lists the nodes into $WORK_DIR/nodes.tsv (id, name, agent host, whether it takes part in a
# repository's verification: master-eligible and data nodes) and stops when any node failed
# to answer.
list_nodes() {
  es_ok "node listing (GET /_nodes/http)" GET '/_nodes/http'
  local out summary failed detail names
  # One jq run: a summary line (failed count, failures, node count, names; split at US), then
  # the table.
  out=$(jq -r '(.nodes // {} | to_entries | sort_by(.value.name // .key)) as $nodes
      | ([(._nodes.failed // 0),
          ([(._nodes.failures // .failures // [])[]
            | ((.node_id // "") + " " + (.reason // .caused_by.reason // "unknown") | ltrimstr(" "))]
           | join("; ")),
          ($nodes | length), ([$nodes[] | .value.name // .key] | join(","))]
         | map(tostring | gsub("[\u001f\n]"; " ")) | join("\u001f")),
        ($nodes[] |
          [.key, (.value.name // .key),
           (.value.ip // ((.value.http.publish_address // "") | sub("^[^/]*/"; "") | sub(":[0-9]+$"; ""))
            | ltrimstr("[") | rtrimstr("]")),
           (if .value.roles == null then "true"
            else .value.roles | any(test("master|cluster_manager|data")) | tostring end)]
          | @tsv)' "$ES_REPLY")
  summary=${out%%$'\n'*}
  IFS=$'\x1f' read -r failed detail NODE_COUNT names <<<"$summary"
  [[ $failed == 0 ]] || die "node listing: ${failed} node(s) did not answer${detail:+: $detail}"
  [[ $NODE_COUNT -gt 0 ]] || die "node listing: the cluster reported no node"
  printf '%s\n' "${out#*$'\n'}" >"$WORK_DIR/nodes.tsv"
  log "nodes: ${NODE_COUNT} (${names})"
  agents_by_name
}

# agents_by_name: with AGENT_HOST_SUFFIX, each agent is called by <node name>.<suffix>, so its
# certificate is checked against the name it carries, while curl connects to the address the
# node reported (one connect-to line a node in agents.curlrc; each applies to its own name
# only). AGENT_NAME_OF maps an address to that name.
declare -gA AGENT_NAME_OF=()
agents_by_name() {
  [[ -n ${AGENT_HOST_SUFFIX:-} ]] || return 0
  local id name host rest
  : >"$WORK_DIR/agents.curlrc"
  while IFS=$'\t' read -r id name host rest; do
    [[ -n $host ]] || continue
    if [[ ! $name =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]]; then
      warn "node ${name}: its name is no DNS label, so its agent is called by its address ${host}"
      continue
    fi
    AGENT_NAME_OF[$host]="${name}.${AGENT_HOST_SUFFIX}"
    printf 'connect-to = "%s:%s:%s:%s"\n' "${name}.${AGENT_HOST_SUFFIX}" "$AGENT_PORT" "$(url_host "$host")" "$AGENT_PORT" \
      >>"$WORK_DIR/agents.curlrc"
  done <"$WORK_DIR/nodes.tsv"
  HTTP_EXTRA_CONFIG="$WORK_DIR/agents.curlrc"
  log "agents: called over https by <node name>.${AGENT_HOST_SUFFIX}, the name their certificates carry, at each node's address"
}

# ---------------------------------------------------------------------------
# The agents: bounded fan-out, retries, one result per node
# ---------------------------------------------------------------------------

# Builds the agents' request bodies (0600 files) from the S3 keys, read through the
# environment of jq only: AGENT_BODY without a reload, AGENT_BODY_RELOAD with one.
write_agent_body() {
  AGENT_BODY="$WORK_DIR/agent-body.json"
  AGENT_BODY_RELOAD="$WORK_DIR/agent-body-reload.json"
  private_file "$AGENT_BODY"
  private_file "$AGENT_BODY_RELOAD"
  local bodies
  # Both bodies from one jq run, a line each; printf is a builtin, so the keys reach no
  # command line.
  bodies=$(KB_S3_AK=$S3_ACCESS_KEY KB_S3_SK=$S3_SECRET_KEY KB_S3_ST=$S3_SESSION_TOKEN \
    jq -nc --arg client "$S3_CLIENT" \
    '({access_key_id: env.KB_S3_AK, secret_access_key: env.KB_S3_SK, client: $client}
      + (if (env.KB_S3_ST // "") != "" then {session_token: env.KB_S3_ST} else {} end))
     | ., . + {reload: true}')
  printf '%s\n' "${bodies%%$'\n'*}" >"$AGENT_BODY"
  printf '%s\n' "${bodies#*$'\n'}" >"$AGENT_BODY_RELOAD"
}

# agent_url HOST PATH
agent_url() {
  local host=''
  [[ -z $1 ]] || host=${AGENT_NAME_OF[$1]:-}
  printf '%s://%s:%s%s' "$AGENT_SCHEME" "${host:-$(url_host "$1")}" "$AGENT_PORT" "$2"
}

# agent_retryable RC STATUS ANSWER: whether a failed call may be repeated without harm: no
# connection (curl 6, 7), a timeout (28), a dropped connection (52, 55, 56), or an agent that
# says it is busy (429, 503, 504, a 502 that is not the node refusing its reload). Every
# change the agent makes is idempotent, so repeating a write is safe. A 4xx or a 500 would
# answer the same again.
agent_retryable() {
  local rc=$1 status=$2 answer=$3
  case $rc in
    0) ;;
    6 | 7 | 28 | 52 | 55 | 56) return 0 ;;
    *) return 1 ;;
  esac
  case $status in
    429 | 503 | 504) return 0 ;;
    502) [[ $(jq -r '.error.code // empty' "$answer" 2>/dev/null) != NODE_RELOAD_FAILED ]] ;;
    *) return 1 ;;
  esac
}

# agent_call OUT METHOD URL BODY_FILE DEADLINE: one agent request, repeated (after 1 s, 2 s,
# ...) while agent_retryable says so, at most AGENT_ATTEMPTS times and never past DEADLINE
# (epoch seconds). The answer goes to OUT, curl's message to OUT.err; sets A_RC (curl's exit
# code), A_STATUS and A_TRIES.
agent_call() {
  local out=$1 method=$2 url=$3 body=$4 deadline=$5 left max
  A_TRIES=0
  while true; do
    A_TRIES=$((A_TRIES + 1))
    left=$((deadline - EPOCHSECONDS))
    max=$AGENT_TIMEOUT
    ((left < max)) && max=$left
    ((max >= 1)) || max=1
    A_RC=0
    http_call "$out" "$method" "$url" "$body" "$AGENT_CONNECT_TIMEOUT" "$max" || A_RC=$?
    A_STATUS=$HTTP_CODE
    agent_retryable "$A_RC" "$A_STATUS" "$out" || return 0
    ((A_TRIES < AGENT_ATTEMPTS && EPOCHSECONDS + A_TRIES < deadline)) || return 0
    sleep_s "$A_TRIES"
  done
}

# agent_failure WHAT OUT: after agent_call, prints why the call failed and returns 0, or
# returns 1 when the agent answered 2xx.
agent_failure() {
  local what=$1 out=$2 code msg tries=''
  ((A_TRIES > 1)) && tries=" after ${A_TRIES} attempts"
  if [[ $A_RC != 0 ]]; then
    printf '%s: no answer from the agent%s: %s' "$what" "$tries" "$(one_line <"$out.err")"
    return 0
  fi
  [[ $A_STATUS != 2* ]] || return 1
  code=$(jq -r '.error.code // empty' "$out" 2>/dev/null) || code=''
  msg=$(jq -r '.error.message // empty' "$out" 2>/dev/null) || msg=''
  [[ -n $msg ]] || msg=$(head -c 200 "$out" | one_line)
  if [[ $A_STATUS == 401 ]]; then
    printf '%s: agent answered 401 %s: wrong or missing cluster credentials%s' "$what" "${code:-UNAUTHORIZED}" "${msg:+ ($msg)}"
  else
    printf '%s: agent answered %s %s%s: %s' "$what" "$A_STATUS" "${code:-ERROR}" "$tries" "${msg:-no message}"
  fi
}

# fan_out WORKER: runs `WORKER INDEX HOST` for every node of nodes.tsv, AGENT_PARALLELISM at
# a time, and waits for all. A worker leaves its result in $AGENT_DIR/INDEX.<its suffix>.
fan_out() {
  local worker=$1 i=0 id name host rest
  # FAN_OUT_STOP (set by a signal's trap) starts no further call.
  while IFS=$'\t' read -r id name host rest && [[ -z ${FAN_OUT_STOP:-} ]]; do
    # The running jobs are counted, not tracked: bash's `wait -n` may return without one
    # of them having ended.
    while (($(jobs -rp | wc -l) >= AGENT_PARALLELISM)); do
      if [[ -n ${EXIT_DEADLINE:-} ]]; then
        sleep 0.1
      else
        wait -n || true
      fi
    done
    # A worker the job stops (SIGUSR1: the grace period is running out) stops its call and
    # leaves its node's name in cut.INDEX. The stop signals are the job's (a signal to the
    # whole process group reaches the workers too): its exit decides how long calls may run.
    (
      trap '' TERM INT HUP QUIT
      trap '[[ -z ${CURL_PID:-} ]] || kill -USR1 "$CURL_PID" 2>/dev/null; printf "%s\n" "$host" >"$AGENT_DIR/cut.$i"; exit 143' USR1
      "$worker" "$i" "$host"
    ) </dev/null &
    i=$((i + 1))
  done <"$WORK_DIR/nodes.tsv"
  wait || true
  # A signal during the exit cut the wait short: the calls get what is left of the grace period.
  [[ -z ${EXIT_DEADLINE:-} ]] || wait_for_agent_calls
}

# result_line FILE STATE TEXT: a worker's result, 'STATE<TAB>TEXT' on one line.
result_line() {
  printf '%s\t%s\n' "$2" "$3" >"$1"
}

# inspect_node INDEX HOST: GET /ready, which also tells from the keystore's header whether it
# has a password (GET /keystore, which decrypts, only for an agent whose /ready does not say).
# Result INDEX.inspect: 'ok<TAB>true|false' (whether the keystore has a password) or
# 'failed<TAB>why'.
inspect_node() {
  local i=$1 host=$2 out="$AGENT_DIR/$1.ready" deadline=$((EPOCHSECONDS + AGENT_NODE_DEADLINE)) why has
  agent_call "$out" GET "$(agent_url "$host" /ready)" '' "$deadline"
  if why=$(agent_failure "GET /ready" "$out"); then
    [[ $A_RC != 0 ]] || why="agent is not ready (GET /ready answered ${A_STATUS} $(jq -r '.error.code // "ERROR"' "$out" 2>/dev/null || echo ERROR)): $(jq -r '.error.message // "no message"' "$out" 2>/dev/null || echo 'no message')"
    result_line "$AGENT_DIR/$i.inspect" failed "$why"
    return 0
  fi
  # No keystore yet: no password. One whose header the agent could not read (a format only the
  # cli backend knows) or an agent that does not say: GET /keystore asks.
  has=$(jq -r '.keystore as $k | if ($k | type) != "object" or ($k | has("has_password") | not) then "unknown"
      elif $k.exists == false then false elif $k.has_password == null then "unknown"
      else $k.has_password end' "$out" 2>/dev/null || echo unknown)
  if [[ $has == true || $has == false ]]; then
    result_line "$AGENT_DIR/$i.inspect" ok "$has"
    return 0
  fi
  out="$AGENT_DIR/$i.describe"
  agent_call "$out" GET "$(agent_url "$host" /keystore)" '' "$deadline"
  if why=$(agent_failure "GET /keystore" "$out"); then
    result_line "$AGENT_DIR/$i.inspect" failed "$why"
    return 0
  fi
  result_line "$AGENT_DIR/$i.inspect" ok "$(jq -r '.has_password // false' "$out" 2>/dev/null || echo false)"
}

# write_node INDEX HOST: POST /keystore (with a reload when RELOAD_MODE is agent). Result
# INDEX.write: 'ok<TAB>keystore<TAB>sha256' or 'failed<TAB>why'.
write_node() {
  local i=$1 host=$2 out="$AGENT_DIR/$1.write" deadline=$((EPOCHSECONDS + AGENT_NODE_DEADLINE)) why body=$AGENT_BODY
  [[ $RELOAD_MODE != agent ]] || body=$AGENT_BODY_RELOAD
  agent_call "$out" POST "$(agent_url "$host" /keystore)" "$body" "$deadline"
  # A refusal (4xx but a timeout's 408 or a busy 429) comes before the agent changes anything:
  # there is nothing of this write to remove there at the end.
  if [[ $A_RC == 0 && $A_STATUS == 4* && $A_STATUS != 408 && $A_STATUS != 429 ]]; then
    printf '%s\n' "$A_STATUS" >"$AGENT_DIR/$i.refused"
  fi
  if why=$(agent_failure "POST /keystore" "$out"); then
    if [[ $(jq -r '.error.code // empty' "$out" 2>/dev/null) == NODE_RELOAD_FAILED ]]; then
      why="saved, but its node refused the reload: $(jq -r '.reload.failure // .error.message' "$out")"
    fi
    result_line "$out.result" failed "$why"
    return 0
  fi
  # One jq run per node: on hundreds of nodes every process counts.
  jq -r --arg c "$S3_CLIENT" --arg mode "$RELOAD_MODE" --arg status "$A_STATUS" '
      (.settings // []) as $s
      | if (($s | any(. == "s3.client.\($c).access_key")) and ($s | any(. == "s3.client.\($c).secret_key"))
            and (.sha256 | type == "string")) | not then
          "failed\tagent answered \($status) without the settings of client \($c)"
        elif $mode == "agent" and .reload.reloaded != true then
          "failed\tagent answered \($status) without a reload of its node"
        else "ok\t\(.keystore // "?")\t\(.sha256)" end' "$out" >"$out.result" 2>/dev/null ||
    result_line "$out.result" failed "agent answered ${A_STATUS} with a body that is not JSON"
}

# remove_node INDEX HOST: DELETE /keystore?client=<the job's>&reload=true, unless the node's
# agent refused this attempt's write. Result INDEX.remove: 'ok<TAB>removed|absent|refused' or
# 'failed<TAB>why'.
remove_node() {
  local i=$1 host=$2 out="$AGENT_DIR/$1.remove" deadline=$((EPOCHSECONDS + AGENT_NODE_DEADLINE)) why
  if [[ -n ${EXIT_DEADLINE:-} ]]; then
    ((deadline <= EXIT_DEADLINE)) || deadline=$EXIT_DEADLINE
    if ((EPOCHSECONDS >= deadline)); then
      result_line "$out.result" failed "not asked: the job's grace period (EXIT_GRACE, ${EXIT_GRACE}s) had ended"
      return 0
    fi
  fi
  if [[ $S3_CLIENT == "${OWN_S3_CLIENT:-}" && -e $AGENT_DIR/$i.refused ]]; then
    result_line "$out.result" ok refused
    return 0
  fi
  agent_call "$out" DELETE "$(agent_url "$host" "/keystore?client=${S3_CLIENT}&reload=true")" '' "$deadline"
  if why=$(agent_failure "DELETE /keystore" "$out"); then
    if [[ $(jq -r '.error.code // empty' "$out" 2>/dev/null) == NODE_RELOAD_FAILED ]]; then
      why="removed from the file, but its node refused the reload (the keys stay in its memory until the next reload): $(jq -r '.reload.failure // .error.message' "$out")"
    fi
    result_line "$out.result" failed "$why"
    return 0
  fi
  if jq -e '(.settings // []) | length > 0' "$out" >/dev/null 2>&1; then
    result_line "$out.result" ok removed
  else
    result_line "$out.result" ok absent
  fi
}

# node_label NAME HOST: 'NAME (HOST:PORT)', the agent's address.
node_label() {
  printf '%s (%s:%s)' "$1" "$(url_host "$2")" "$AGENT_PORT"
}

# collect_results SUFFIX: reads every node's INDEX.SUFFIX into RESULTS (one 'name<TAB>host
# <TAB>state<TAB>text' per node, in node order) and FAILURES (the failed nodes' sentences).
collect_results() {
  local suffix=$1 i=0 id name host rest state text
  RESULTS=()
  FAILURES=()
  while IFS=$'\t' read -r id name host rest; do
    if [[ -s $AGENT_DIR/$i.$suffix ]]; then
      IFS=$'\t' read -r state text <"$AGENT_DIR/$i.$suffix"
    else
      state=failed text='the call ended without a result'
    fi
    RESULTS+=("${name}"$'\t'"${host}"$'\t'"${state}"$'\t'"${text}")
    [[ $state == ok ]] || FAILURES+=("$(node_label "$name" "$host"): ${text}")
    i=$((i + 1))
  done <"$WORK_DIR/nodes.tsv"
}

# failure_summary: the first ten of FAILURES, '; '-joined, and how many more.
failure_summary() {
  local joined
  joined=$(printf '%s; ' "${FAILURES[@]:0:10}")
  joined=${joined%; }
  ((${#FAILURES[@]} <= 10)) || joined+="; and $((${#FAILURES[@]} - 10)) more"
  printf '%s' "$joined"
}

# Asks every agent whether it can serve and whether its keystore has a password (GET /ready;
# GET /keystore only for an agent that does not say); stops, before anything is written
# anywhere, naming each node that failed. Sets RELOAD_MODE: agent (some keystore has a
# password: every node reloads through its agent, which passes the password to its own node
# only) or cluster (one cluster-wide reload).
inspect_agents() {
  fan_out inspect_node
  collect_results inspect
  local r name host state text with_password=0
  for r in "${RESULTS[@]}"; do
    IFS=$'\t' read -r name host state text <<<"$r"
    if [[ $state != ok ]]; then
      log "node $(node_label "$name" "$host"): FAILED: ${text}" >&2
    elif [[ $text == true ]]; then
      with_password=$((with_password + 1))
    fi
  done
  ((${#FAILURES[@]} == 0)) ||
    die "agents not ready on ${#FAILURES[@]} of ${NODE_COUNT} node(s), nothing written: $(failure_summary)"
  if ((with_password > 0)); then
    RELOAD_MODE=agent
    log "agents ready on all ${NODE_COUNT} nodes; ${with_password} keystore(s) have a password: each node reloads through its agent"
  else
    RELOAD_MODE=cluster
    log "agents ready on all ${NODE_COUNT} nodes; no keystore has a password: one cluster-wide reload"
  fi
}

# Writes the job's S3 credentials into every node's keystore, AGENT_PARALLELISM agents at a
# time, each node under AGENT_NODE_DEADLINE; one line per node; stops naming every failed
# node. In agent reload mode each node has reloaded when this returns.
set_keystores() {
  write_agent_body
  KEYSTORE_TOUCHED=true
  fan_out write_node
  collect_results write.result
  local r id name host state text keystore sha i=0
  : >"$WORK_DIR/digests.tsv"
  while IFS=$'\t' read -r id _ _ _; do
    IFS=$'\t' read -r name host state text <<<"${RESULTS[$i]}"
    if [[ $state == ok ]]; then
      keystore=${text%%$'\t'*}
      sha=${text##*$'\t'}
      log "node $(node_label "$name" "$host"): ok, keystore ${keystore} sha256 ${sha}"
      printf '%s\t%s\n' "$id" "$sha" >>"$WORK_DIR/digests.tsv"
    else
      log "node $(node_label "$name" "$host"): FAILED: ${text}" >&2
    fi
    i=$((i + 1))
  done <"$WORK_DIR/nodes.tsv"
  ((${#FAILURES[@]} == 0)) ||
    die "keystore update failed on ${#FAILURES[@]} of ${NODE_COUNT} node(s): $(failure_summary)"
  log "keystore: client ${S3_CLIENT} written on all ${NODE_COUNT} nodes"
  if [[ $RELOAD_MODE == agent ]]; then
    for r in "${RESULTS[@]}"; do
      IFS=$'\t' read -r name _ <<<"$r"
      log "reload ${name}: ok (through its agent)"
    done
    log "secure settings reloaded on all ${NODE_COUNT} nodes"
  fi
}

# Removes the job's S3 client from every node's keystore (each agent reloads its node), so
# that no key outlives the job; another job's client is never touched. Called on exit, after
# any write was attempted; a node where it fails is named with what is left there.
remove_keystore_client() {
  [[ ${KEYSTORE_TOUCHED:-false} == true ]] || return 0
  KEYSTORE_TOUCHED=false
  fan_out remove_node
  collect_results remove.result
  local r name host state text removed=0
  for r in "${RESULTS[@]}"; do
    IFS=$'\t' read -r name host state text <<<"$r"
    if [[ $state != ok ]]; then
      warn "node $(node_label "$name" "$host"): client ${S3_CLIENT} NOT removed: ${text}; remove it there with: es-agent keystore remove s3.client.${S3_CLIENT}.access_key s3.client.${S3_CLIENT}.secret_key"
    elif [[ $text == removed ]]; then
      removed=$((removed + 1))
    fi
  done
  if ((${#FAILURES[@]} == 0 && removed == 0)); then
    log "keystore: client ${S3_CLIENT} was on none of the ${NODE_COUNT} nodes: nothing to remove"
  elif ((${#FAILURES[@]} == 0)); then
    log "keystore: client ${S3_CLIENT} removed from all ${NODE_COUNT} nodes (${removed} held it)"
  else
    warn "keystore: client ${S3_CLIENT} left on ${#FAILURES[@]} of ${NODE_COUNT} node(s)"
  fi
}

# remove_taken_client: once the repository this job took over from an earlier attempt is
# unregistered, that attempt's keys have no user left: removed as this job's own are.
remove_taken_client() {
  [[ -n ${TAKEN_CLIENT:-} && ${REPOSITORY_GONE:-false} == true && ${NODE_COUNT:-0} -gt 0 ]] || return 0
  local own=$S3_CLIENT
  S3_CLIENT=$TAKEN_CLIENT KEYSTORE_TOUCHED=true
  remove_keystore_client
  S3_CLIENT=$own TAKEN_CLIENT=''
}

# collect_earlier_attempts: what earlier attempts of this job's scope (this Backup's backup, or
# this Restore) left when they were killed before their exit could run (SIGKILL, a lost node):
# their repositories, unregistered unless the engine still uses them, then, on every node, the
# keys of every client of the scope that no registered repository uses. Only at an exit that no
# signal started: the scope's next attempt may be starting then.
collect_earlier_attempts() {
  # The engine known (detect_engine ran), the job's own work done and no signal come.
  [[ -z ${EXIT_DEADLINE:-} && ${KEEP_FOR_THE_ENGINE:-false} != true && -n ${ENGINE_DISTRIBUTION:-} ]] || return 0
  if [[ $JOB_KIND == restore && -z $RESTORE_SCOPE ]]; then
    log "earlier attempts of this restore are not looked for: its pod's name (HOSTNAME) does not say which Restore it serves, and another Restore of this Backup may be running"
    return 0
  fi
  # The job's own work is done: this is bounded as a signalled exit is (the pod may be
  # deleted meanwhile), and a signal stops it.
  bound_what_follows
  trap 'FAN_OUT_STOP=true; kill -USR1 $(jobs -rp) 2>/dev/null' TERM INT HUP QUIT
  if declare -F job_collect >/dev/null; then
    job_collect
  fi
  if read_repositories "what earlier attempts left is not looked for"; then
    unregister_earlier_repositories
  fi
  # Keys only where the job writes them (not with env_auth), on the nodes it knows.
  if [[ ${S3_STATIC_KEYS:-false} == true && ${NODE_COUNT:-0} -gt 0 && -z ${FAN_OUT_STOP:-} ]] &&
    read_repositories "earlier attempts' keys are not looked for"; then
    # The clients that some repository still uses (it may still run a snapshot or a restore).
    jq -r '[.[] | .settings.client // "default"] | unique[]' "$ES_REPLY" >"$WORK_DIR/clients-in-use"
    remove_earlier_keys
  fi
  trap '' TERM INT HUP QUIT
  [[ -z ${FAN_OUT_STOP:-} ]] ||
    warn "stopped by a signal: the collection of what earlier attempts left was cut short: the rest stays until an attempt of this $([[ $JOB_KIND == restore ]] && echo Restore || echo Backup) ends normally, or is removed by hand (GET _snapshot, and GET /keystore on each agent, list what is left)"
}

# This scope's repositories left by earlier attempts, and the features a restore found paused
# already at its start (by someone else, or by an earlier attempt stopped outright).
EARLIER_FOUND=()
FOUND_PAUSED=()

# unregister_earlier_repositories: of the repositories in ES_REPLY (GET _snapshot), those of
# this job's scope but its own, unless the engine still uses them.
unregister_earlier_repositories() {
  local repo use
  cp "$ES_REPLY" "$WORK_DIR/repositories.json"
  while IFS= read -r repo && [[ -z ${FAN_OUT_STOP:-} ]]; do
    this_backups_repository "$WORK_DIR/repositories.json" "$repo" || continue
    EARLIER_FOUND+=("$repo")
    if ! capture use repository_free "$repo"; then
      # A signal stopped the look (the trap cut its call): nothing is known of this one.
      [[ -z ${FAN_OUT_STOP:-} ]] || break
      EARLIER_KEPT=true
      warn "repository ${repo}, left by an earlier attempt, is kept: ${use}; its S3 client's keys stay with it (once the engine is done: DELETE _snapshot/${repo}, then the next attempt, or DELETE /keystore?client=<its client>&reload=true on each agent, removes them)"
    elif es_call DELETE "/_snapshot/${repo}" && [[ $HTTP_STATUS == 2* ]]; then
      log "repository ${repo}, left by an earlier attempt, unregistered (its data stays in the bucket)"
    elif [[ -n ${FAN_OUT_STOP:-} ]]; then
      # A signal cut the call: the engine may have unregistered it all the same.
      EARLIER_KEPT=true
      warn "unregistering repository ${repo}, left by an earlier attempt, was cut short by a signal: the engine may have done it; if GET _snapshot no longer lists it, the keys of its S3 client ($(jq -r --arg r "$repo" '.[$r].settings.client // "default"' "$WORK_DIR/repositories.json")) stay on the nodes: remove them with DELETE /keystore?client=<that client>&reload=true on each agent"
      break
    else
      EARLIER_KEPT=true
      warn "repository ${repo}, left by an earlier attempt, is kept: the engine refused to unregister it (${HTTP_ERROR:-HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")})"
    fi
  done < <(jq -r --arg own "$REPOSITORY" 'keys[] | select(. != $own)' "$WORK_DIR/repositories.json")
  # Features found paused at this attempt's start may be a stopped earlier attempt's doing: the
  # job cannot tell (nor their state before that attempt), so it says so, and changes nothing.
  # An attempt that stopped before its pause step (a conflict, say) looks for them now.
  local when='paused already when this attempt began'
  if ((${#EARLIER_FOUND[@]} > 0)) && [[ -z ${FAN_OUT_STOP:-} && ${FEATURES_LOOKED:-false} != true ]] &&
    declare -F look_for_paused_features >/dev/null; then
    look_for_paused_features
    when='paused (this attempt stopped before its pause step, and paused nothing)'
  fi
  if ((${#EARLIER_FOUND[@]} > 0 && ${#FOUND_PAUSED[@]} > 0)); then
    warn "$(paste -sd, <<<"$(printf '%s\n' "${FOUND_PAUSED[@]}")") ${when}, and an earlier attempt of this Restore left its repository ($(paste -sd, <<<"$(printf '%s\n' "${EARLIER_FOUND[@]}")")): if that attempt was stopped outright after it paused them for its restore, nothing puts them back (its log says what it paused, '<feature>: was ..., paused for the restore', and, had its exit run, '<feature>: back to ...'); then, once no restore runs, put them back by hand (docs/restore.md, 'What pauses during a restore')"
  fi
}

# remove_earlier_keys: on every node, the keys of the scope's clients that no repository uses
# (clients-in-use) and that are not this attempt's (removed already); a line a node, and one
# for them all.
remove_earlier_keys() {
  fan_out sweep_node
  [[ -z ${FAN_OUT_STOP:-} ]] || return 0
  collect_results sweep.result
  local r name host state text cleared=0
  for r in "${RESULTS[@]}"; do
    IFS=$'\t' read -r name host state text <<<"$r"
    if [[ $state != ok ]]; then
      warn "node $(node_label "$name" "$host"): earlier attempts' keys not collected: ${text}"
    elif [[ -n $text ]]; then
      log "node $(node_label "$name" "$host"): keys of earlier attempts removed: client(s) ${text}"
      cleared=$((cleared + 1))
    fi
  done
  ((${#FAILURES[@]} == 0)) || return 0
  local rest='none are left'
  [[ ${EARLIER_KEPT:-false} != true ]] || rest="only those of the repositories kept above are left"
  if ((cleared == 0)); then
    log "earlier attempts: no keys to remove on any of the ${NODE_COUNT} nodes; ${rest}"
  else
    log "earlier attempts: their keys removed from ${cleared} of the ${NODE_COUNT} nodes; ${rest}"
  fi
}

# repository_free REPO: whether the engine is done with REPO; returns 1, printing why not, when
# a snapshot runs there, or some shard is restored from it (unassigned ones too: the engine
# would unregister it under them, and they could never recover), or the answer is unclear.
repository_free() {
  local repo=$1 shards
  es_call GET "/_snapshot/${repo}/_current" || {
    printf 'whether a snapshot runs there is unknown (%s)' "$HTTP_ERROR"
    return 1
  }
  if [[ $HTTP_STATUS != 200 ]] || ! jq -e '(.snapshots // []) | length == 0' "$ES_REPLY" >/dev/null 2>&1; then
    printf 'a snapshot may still run there (GET _snapshot/%s/_current answered HTTP %s)' "$repo" "$HTTP_STATUS"
    return 1
  fi
  if ! es_call GET '/_cluster/state/routing_table?filter_path=routing_table.indices.*.shards.*.recovery_source.repository,routing_table.indices.*.shards.*.index' ||
    [[ $HTTP_STATUS != 200 ]]; then
    printf 'whether a restore from it runs is unknown (%s)' "${HTTP_ERROR:-HTTP ${HTTP_STATUS}}"
    return 1
  fi
  shards=$(jq -r --arg r "$repo" '[.routing_table.indices // {} | .[].shards[][] | select(.recovery_source.repository == $r)
      | .index] | "\(length) \(unique | .[:5] | join(","))"' "$ES_REPLY" 2>/dev/null) || shards='? (unreadable answer)'
  [[ $shards == '0 '* ]] && return 0
  printf 'shards of %s are still being restored from it (GET _cat/shards)' "${shards#* }"
  return 1
}

# read_repositories WHAT: GET _snapshot into ES_REPLY; on failure warns 'WHAT: ...why' and
# returns 1.
read_repositories() {
  if es_call GET /_snapshot && [[ $HTTP_STATUS == 200 ]]; then
    return 0
  fi
  warn "$1: reading the repositories failed (${HTTP_ERROR:-HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")})"
  return 1
}

# sweep_node INDEX HOST: GET /keystore, then DELETE /keystore (reloading the node) for each
# client of this job's scope that is neither this attempt's (removed already) nor used by a
# repository (clients-in-use). Result INDEX.sweep: 'ok<TAB>the clients removed' or 'failed
# <TAB>why'.
sweep_node() {
  local i=$1 host=$2 out="$AGENT_DIR/$1.list" deadline=$((EPOCHSECONDS + AGENT_NODE_DEADLINE)) why client removed=()
  ((deadline <= EXIT_DEADLINE)) || deadline=$EXIT_DEADLINE
  if ((EPOCHSECONDS >= deadline)); then
    result_line "$AGENT_DIR/$i.sweep.result" failed "not asked: the job's grace period (EXIT_GRACE, ${EXIT_GRACE}s) had ended"
    return 0
  fi
  agent_call "$out" GET "$(agent_url "$host" /keystore)" '' "$deadline"
  if why=$(agent_failure "GET /keystore" "$out"); then
    result_line "$AGENT_DIR/$i.sweep.result" failed "$why"
    return 0
  fi
  while IFS= read -r client; do
    out="$AGENT_DIR/$i.sweep"
    agent_call "$out" DELETE "$(agent_url "$host" "/keystore?client=${client}&reload=true")" '' "$deadline"
    if why=$(agent_failure "DELETE /keystore (client ${client})" "$out"); then
      result_line "$AGENT_DIR/$i.sweep.result" failed "${removed[*]:+removed ${removed[*]}, but }${why}"
      return 0
    fi
    removed+=("$client")
  done < <(jq -r --arg base "$CLIENT_BASE" --arg own "$S3_CLIENT" --rawfile in_use "$WORK_DIR/clients-in-use" \
    "${JQ_ATTEMPT_CLIENT}"'($in_use | split("\n")) as $used
      | [(.settings // [])[] | capture("^s3[.]client[.](?<c>[a-z0-9_-]+)[.]") | .c] | unique[]
      | select(attempt_client($base) and . != $own) | . as $c
      | select($used | any(. == $c) | not)' "$out" 2>/dev/null)
  result_line "$AGENT_DIR/$i.sweep.result" ok "${removed[*]}"
}

# judge_reloaded_digest HOST RELOADED WROTE: a node (Elasticsearch 9.3+) loaded a keystore
# whose digest is not the one its agent answered this job's write with. A later save (another
# job's, which keeps this job's entries) explains it when the file on that node is now what
# the node loaded and still holds this job's keys: its agent says (GET /keystore). Prints
# 'ok (...)' or 'FAILED: ...'.
judge_reloaded_digest() {
  local host=$1 reloaded=$2 wrote=$3 out="$WORK_DIR/digest-$1.json" now=''
  agent_call "$out" GET "$(agent_url "$host" /keystore)" '' "$((EPOCHSECONDS + AGENT_NODE_DEADLINE))"
  if ! agent_failure "GET /keystore" "$out" >/dev/null; then
    now=$(jq -r --arg c "s3.client.${S3_CLIENT}." '(.settings // []) as $s
        | if ($s | index($c + "access_key")) and ($s | index($c + "secret_key"))
          then (.sha256 // "" | ascii_downcase) else "without this job'"'"'s keys" end' "$out" 2>/dev/null || true)
  fi
  if [[ -n $now && $now == "$reloaded" ]]; then
    printf 'ok (it loaded a later save of its keystore, which keeps this job'"'"'s entries)'
  else
    printf 'FAILED: reloaded keystore digest %s differs from the one the agent wrote (%s)%s' \
      "$reloaded" "$wrote" "${now:+ and from the file as it is now (${now})}"
  fi
}

# POST /_nodes/reload_secure_settings and checks every node's entry (a node's
# reload_exception comes with HTTP 200).
reload_secure_settings() {
  es_ok "reload of secure settings" POST '/_nodes/reload_secure_settings' '' "$ES_VERIFY_TIMEOUT"
  local lines
  lines=$(jq -r --rawfile nodes "$WORK_DIR/nodes.tsv" --rawfile digests "$WORK_DIR/digests.tsv" '
      . as $r
      | ($digests | split("\n") | map(select(. != "") | split("\t") | {(.[0]): .[1]}) | add // {}) as $d
      | ($nodes | split("\n") | map(select(. != "") | split("\t")))[]
      | . as [$id, $name, $host]
      | ($r.nodes[$id] // null) as $n
      | if $n == null then [$name, $host, "FAILED: no answer from this node"]
        elif $n.reload_exception then
          [$name, $host, "FAILED: " + ($n.reload_exception | [(.type // "error") + ": " + (.reason // "")] + ([.caused_by.reason // empty]) | join("; caused by: "))]
        elif ($n.keystore_digest // "" | ascii_downcase | test("^[0-9a-f]{64}$")) and ($d[$id] // null) != null
            and ($n.keystore_digest | ascii_downcase) != ($d[$id] | ascii_downcase) then
          [$name, $host, "DIGEST " + ($n.keystore_digest | ascii_downcase) + " " + ($d[$id] | ascii_downcase)]
        else [$name, $host, "ok"] end
      | @tsv' "$ES_REPLY")
  local failures=() name host result reloaded wrote
  while IFS=$'\t' read -r name host result; do
    if [[ $result == DIGEST\ * ]]; then
      read -r _ reloaded wrote <<<"$result"
      capture result judge_reloaded_digest "$host" "$reloaded" "$wrote"
    fi
    if [[ $result == ok* ]]; then
      log "reload ${name}: ${result}"
    else
      log "reload ${name}: ${result}" >&2
      failures+=("${name}: ${result#FAILED: }")
    fi
  done <<<"$lines"
  if [[ ${#failures[@]} -gt 0 ]]; then
    local joined
    joined=$(printf '%s; ' "${failures[@]}")
    die "reload of secure settings failed on ${#failures[@]} node(s): ${joined%; }"
  fi
  log "secure settings reloaded on all ${NODE_COUNT} nodes"
}

# claim_repository BODY_FILE: makes sure the repository name is the job's to use. Absent, or
# registered by this job already: the job's. Registered with exactly these settings (left by
# an earlier attempt of this Backup): taken over. Registered otherwise, by someone else:
# never changed; the job stops.
claim_repository() {
  local body=$1
  [[ ${REPOSITORY_OWNED:-false} == true ]] && return 0
  es_call GET "/_snapshot/${REPOSITORY}" ||
    die "reading repository ${REPOSITORY}: no answer from ${ES_URL}: ${HTTP_ERROR}"
  case $HTTP_STATUS in
    404) return 0 ;;
    200) ;;
    *) die "reading repository ${REPOSITORY}: engine answered HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")" ;;
  esac
  if jq -e --arg r "$REPOSITORY" --slurpfile want "$body" '
      def norm: {type, settings: ((.settings // {}) | map_values(tostring))};
      (.[$r] | norm) == ($want[0] | norm)' "$ES_REPLY" >/dev/null; then
    log "repository ${REPOSITORY} is already registered with the same settings (an earlier attempt of this Backup): taking it over"
    return 0
  fi
  # An earlier attempt's: the same settings but its own S3 client.
  local earlier
  earlier=$(jq -r --arg r "$REPOSITORY" --arg base "$CLIENT_BASE" --slurpfile want "$body" "${JQ_ATTEMPT_CLIENT}"'
      def norm: {type, settings: ((.settings // {}) | del(.client) | map_values(tostring))};
      .[$r] | select(norm == ($want[0] | norm)) | .settings.client // ""
      | select(attempt_client($base)) ' "$ES_REPLY")
  if [[ -n $earlier ]]; then
    take_over_repository "$earlier" "$body"
    return 0
  fi
  local theirs
  theirs=$(jq -r --arg r "$REPOSITORY" '.[$r] | "type \(.type), bucket \(.settings.bucket // "?"), base_path \(.settings.base_path // "?"), client \(.settings.client // "default"), readonly \(.settings.readonly // "false")"' "$ES_REPLY")
  if this_backups_repository "$ES_REPLY"; then
    die "repository ${REPOSITORY} is registered with this Backup's bucket and path, on its S3 client or an earlier attempt's, but other settings (${theirs}; a throttle, or read-only for a restore): another job of this Backup may be using it now: it is left unchanged; run this job again once that one has ended (DELETE _snapshot/${REPOSITORY} if it is a leftover: its data stays, and the next attempt removes the keys of its S3 client from the keystores)"
  fi
  die "repository ${REPOSITORY} already exists with other settings (${theirs}), registered by someone else: it is left unchanged; unregister it (DELETE _snapshot/${REPOSITORY}, its data stays) if it is a leftover"
}

# this_backups_repository FILE [NAME]: whether the repository NAME (REPOSITORY) in FILE (GET
# _snapshot) is one of this job's scope: an S3 repository at the Backup's bucket and path, on
# an S3 client of one of its attempts (this one's included), or on client 'default' (env_auth)
# with the Backup's repository name (a backup) or a name of one of this Restore's attempts.
this_backups_repository() {
  local scoped='' own=''
  # With env_auth (client 'default') a job's repositories are told by their name: a backup's
  # is the Backup's, a restore's carry its Restore.
  if [[ ${JOB_KIND:-} == backup ]]; then
    own=$REPOSITORY
  elif [[ -n ${RESTORE_SCOPE:-} ]]; then
    scoped="$(restore_repository_name "$(repository_name "$BACKUP_NAME")" "$RESTORE_SCOPE" '')"
  fi
  jq -e --arg r "${2:-$REPOSITORY}" --arg bucket "$S3_BUCKET" --arg base_path "$REPO_BASE_PATH" \
    --arg base "$CLIENT_BASE" --arg scoped "$scoped" --arg own "$own" "${JQ_ATTEMPT_CLIENT}"'
      .[$r] | .type == "s3" and .settings.bucket == $bucket and .settings.base_path == $base_path
        and (.settings.client // "default"
          | attempt_client($base)
            or (. == "default" and ($r == $own
              or ($scoped != "" and ($r | startswith($scoped)) and ($r[($scoped | length):] | test("^[0-9a-f]{6}$"))))))' "$1" >/dev/null
}

# take_over_repository CLIENT BODY: the repository an earlier attempt of this Backup registered
# with its S3 client CLIENT. With no snapshot of it running, it is registered again with this
# job's client (BODY); with one running (the engine refuses a change then), it stays as it is,
# on CLIENT, whose keys that attempt left. Either way this job unregisters it at its end, and
# then removes CLIENT's keys too (TAKEN_CLIENT): the repository was their only user.
take_over_repository() {
  local client=$1 body=$2
  TAKEN_CLIENT=$client
  es_ok "reading the snapshots running in repository ${REPOSITORY}" GET "/_snapshot/${REPOSITORY}/_current"
  if jq -e '(.snapshots // []) | length == 0' "$ES_REPLY" >/dev/null; then
    log "repository ${REPOSITORY} is registered by an earlier attempt of this Backup (S3 client ${client}), with no snapshot running: registering it again with this job's client"
    return 0
  fi
  log "repository ${REPOSITORY} is registered by an earlier attempt of this Backup whose snapshot still runs: taking it over as it is, on that attempt's S3 client ${client}"
  jq -c --arg c "$client" '.settings.client = $c' "$body" >"$body.taken"
  mv -f "$body.taken" "$body"
  REPOSITORY_AS_IS=true
}

# register_repository READONLY(true|false) [EVERY_NODE(true|false)]: PUT _snapshot/<repo>
# (verified), after claim_repository. With EVERY_NODE, the verification is POST _verify
# instead of the PUT's own (the same check, once, and it names the nodes), and every
# master-eligible and data node of nodes.tsv must be among those that passed it.
# REPOSITORY_EXTRA_SETTINGS (a JSON object) adds settings. Stops with the engine's root cause
# when verification fails.
register_repository() {
  local readonly=$1 every_node=${2:-false} body="$WORK_DIR/repository.json" protocol='' shard_path_type=''
  if [[ $ENGINE_DISTRIBUTION == opensearch ]]; then
    # OpenSearch takes the scheme from 'protocol' (Elasticsearch from the endpoint; its
    # 'protocol' is deprecated from 8.19/9.1). OpenSearch 3.x writes shard data under
    # hashed prefixes at the bucket's root unless shard_path_type is 'fixed': keep every
    # file under the Backup's own path, so that deleting the Backup frees it all.
    protocol=$S3_PROTOCOL
    shard_path_type=fixed
  fi
  jq -n \
    --arg bucket "$S3_BUCKET" --arg base_path "$REPO_BASE_PATH" --arg client "$S3_CLIENT" \
    --arg endpoint "$S3_ENDPOINT" --arg region "$S3_REGION" --arg protocol "$protocol" \
    --arg shard_path_type "$shard_path_type" \
    --argjson path_style "$S3_PATH_STYLE" --argjson readonly "$readonly" \
    --arg max_snapshot "${MAX_SNAPSHOT_BYTES_PER_SEC:-}" --arg max_restore "${MAX_RESTORE_BYTES_PER_SEC:-}" \
    --argjson extra "${REPOSITORY_EXTRA_SETTINGS:-"{}"}" \
    '{type: "s3", settings: ({bucket: $bucket, base_path: $base_path, client: $client,
        region: $region, path_style_access: $path_style, readonly: $readonly}
      + (if $endpoint != "" then {endpoint: $endpoint} else {} end)
      + (if $protocol != "" then {protocol: $protocol} else {} end)
      + (if $shard_path_type != "" then {shard_path_type: $shard_path_type} else {} end)
      + (if $max_snapshot != "" then {max_snapshot_bytes_per_sec: $max_snapshot} else {} end)
      + (if $max_restore != "" then {max_restore_bytes_per_sec: $max_restore} else {} end)
      + $extra)}' >"$body"
  REPOSITORY_AS_IS=false
  claim_repository "$body"
  REPOSITORY_REGISTERED=true
  REPOSITORY_OWNED=true
  if [[ $REPOSITORY_AS_IS == true ]]; then
    # A verification would wait behind the running snapshot's uploads (and time out when it
    # has long to run); that snapshot's own progress is the proof that its keys work.
    log "repository ${REPOSITORY} taken over as it is, not verified again: the snapshot running there uses it"
    return 0
  fi
  local step="registration of repository ${REPOSITORY} (bucket ${S3_BUCKET}, base_path ${REPO_BASE_PATH})"
  if [[ $every_node == true ]]; then
    es_verifying "$step" PUT "/_snapshot/${REPOSITORY}?verify=false" "$body"
    es_verifying "$step" POST "/_snapshot/${REPOSITORY}/_verify" ''
  else
    es_verifying "$step" PUT "/_snapshot/${REPOSITORY}?verify=true" "$body"
  fi
  log "repository ${REPOSITORY} registered and verified ($([[ $readonly == true ]] && echo read-only || echo read-write))"
  [[ $every_node != true ]] || check_every_node_verified
}

# certificate_hint CAUSE: when an engine's error says TLS to the endpoint failed its
# certificate check, the sentence that names that cause; nothing otherwise.
certificate_hint() {
  case $1 in
    *PKIX* | *"unable to find valid certification path"* | *SSLHandshake* | *"No subject alternative"* | *CertificateException* | *"certificate_unknown"*)
      printf ' (the nodes do not trust the certificate of the S3 endpoint %s: add its CA to the JVM trust store of every node, or use an endpoint whose certificate they trust)' "${S3_ENDPOINT:-(default)}" ;;
  esac
}

# es_verifying STEP METHOD PATH BODY: an engine call that verifies a repository against the
# bucket. It is tried again, up to three times, when another job's reload closed the S3 client
# under it; any other failure dies naming STEP and the engine's cause.
es_verifying() {
  local step=$1 attempt cause
  for attempt in 1 2 3; do
    es_call "$2" "$3" "$4" "$ES_VERIFY_TIMEOUT" || die "${step}: no answer from ${ES_URL}: ${HTTP_ERROR}"
    [[ $HTTP_STATUS == 2* ]] && return 0
    cause=$(engine_error "$ES_REPLY")
    if ((attempt < 3)) && client_closed_under "$cause"; then
      warn "${step}: the engine's S3 client was closed under the verification (another job reloaded secure settings?): retrying"
      sleep_s $((attempt * 2))
      continue
    fi
    # Between the registration and its verification (a retry's wait, say), another attempt of
    # this Backup that followed the same snapshot may have ended and unregistered it.
    if [[ $HTTP_STATUS == 404 ]] && jq -e '.error.type == "repository_missing_exception"' "$ES_REPLY" >/dev/null 2>&1; then
      die "repository ${REPOSITORY} was unregistered while this job verified it: another attempt of this Backup that ended first (its result is the Backup's), or it was done by hand"
    fi
    die "${step}: engine answered HTTP ${HTTP_STATUS}: ${cause}$(certificate_hint "$cause")"
  done
}

# client_closed_under CAUSE: whether a verification failed because another job's reload of
# secure settings closed the S3 client it was using (the engine rebuilds its clients): that
# failure is worth another try.
client_closed_under() {
  [[ $1 == *"Shutting down"* || $1 == *"rejected from"* || $1 == *RejectedExecution* || $1 == *"pool shut down"* ]]
}

# check_every_node_verified: proof that every node holds working keys: the answer of POST
# _snapshot/<repo>/_verify (ES_REPLY) lists the nodes that wrote and read the bucket; every
# master-eligible and data node of nodes.tsv must be among them.
check_every_node_verified() {
  local step="verification of repository ${REPOSITORY} on every node" fields missing expected names
  fields=$(jq -r --rawfile nodes "$WORK_DIR/nodes.tsv" '
      (.nodes // {} | keys) as $verified
      | [$nodes | split("\n")[] | select(. != "") | split("\t") | select(.[3] != "false")] as $expected
      | [([$expected[] | select(.[0] as $id | $verified | index($id) | not) | .[1]] | join(", ")),
         ($expected | length), ([.nodes[]?.name] | sort | join(","))]
      | map(tostring | gsub("[\u001f\n]"; " ")) | join("\u001f")' "$ES_REPLY")
  IFS=$'\x1f' read -r missing expected names <<<"$fields"
  [[ -z $missing ]] || die "${step}: node(s) ${missing} did not verify it (the keys did not reach them, or they cannot reach the bucket)"
  log "repository ${REPOSITORY} verified by all ${expected} master-eligible and data nodes (${names})"
}

# Unregisters the job's repository (the data stays in the bucket). Called on exit.
unregister_repository() {
  [[ ${REPOSITORY_REGISTERED:-false} == true ]] || return 0
  REPOSITORY_REGISTERED=false
  if es_call DELETE "/_snapshot/${REPOSITORY}" && [[ $HTTP_STATUS == 2* || $HTTP_STATUS == 404 ]]; then
    REPOSITORY_GONE=true
    if [[ $HTTP_STATUS == 404 ]]; then
      warn "repository ${REPOSITORY} was not registered any more (unregistered by someone else while the job ran)"
    else
      log "repository ${REPOSITORY} unregistered (its data stays in the bucket)"
    fi
  elif [[ -n $HTTP_ERROR ]]; then
    warn "could not unregister repository ${REPOSITORY}: ${HTTP_ERROR}"
  else
    warn "could not unregister repository ${REPOSITORY}: HTTP ${HTTP_STATUS}: $(engine_error "$ES_REPLY")"
  fi
}

# wait_for_earlier_attempt: a job's repository registered already, with this job's bucket,
# path and client, is an earlier attempt's of the same Backup. When that attempt is still
# ending (its pod deleted, and the Job's next pod started at once) its exit would remove the
# keys and the repository under this one, so this job waits for the repository to go, up to
# EARLIER_ATTEMPT_WAIT seconds (40: beyond that attempt's EXIT_GRACE, since its exit removes
# the repository last). Still there then, it is taken as left by an attempt that did not end
# (killed; or a snapshot it could not abort), which the job takes over.
wait_for_earlier_attempt() {
  local patience=${EARLIER_ATTEMPT_WAIT:-40} until
  [[ $patience =~ ^[0-9]+$ ]] || die "EARLIER_ATTEMPT_WAIT '${patience}' is not a whole number"
  # A restore's repository is its attempt's own: nothing to wait for.
  [[ $JOB_KIND == backup ]] || return 0
  es_call GET "/_snapshot/${REPOSITORY}" && [[ $HTTP_STATUS == 200 ]] || return 0
  this_backups_repository "$ES_REPLY" || return 0
  ((patience > 0)) || return 0
  log "repository ${REPOSITORY} is registered already: an earlier attempt of this Backup may still be ending; waiting up to ${patience}s for it to go (EARLIER_ATTEMPT_WAIT)"
  until=$((SECONDS + patience))
  while ((SECONDS < until)); do
    sleep_s 1
    if es_call GET "/_snapshot/${REPOSITORY}" && [[ $HTTP_STATUS == 404 ]]; then
      log "repository ${REPOSITORY} is gone: the earlier attempt has ended"
      return 0
    fi
  done
  log "repository ${REPOSITORY} is still registered after ${patience}s: left by an attempt that did not end, or kept for a snapshot or restore the engine may still run (GET _snapshot/_status, GET _cat/recovery); this job takes it over"
}

# The preparation both jobs share, up to a registered repository.
prepare_job() {
  load_job_env
  load_s3_config "$DATASAFED_CONF"
  [[ $S3_STATIC_KEYS == true ]] || S3_CLIENT=default
  REPO_BASE_PATH=$(repository_base_path "$S3_PREFIX" "$DP_BACKUP_BASE_PATH")
  [[ -n $REPO_BASE_PATH ]] || die "DP_BACKUP_BASE_PATH '$DP_BACKUP_BASE_PATH' names no path"
  write_auth_config
  log_plan
  detect_engine
  if declare -F job_preflight >/dev/null; then
    job_preflight
  fi
  wait_for_earlier_attempt
  list_nodes
  if [[ $S3_STATIC_KEYS == false ]]; then
    log "keystore step skipped: the BackupRepo has env_auth = true and no keys (IRSA or an instance role); the repository uses S3 client 'default', i.e. the nodes' own AWS credentials"
    return 0
  fi
  inspect_agents
  set_keystores
  [[ $RELOAD_MODE == agent ]] || reload_secure_settings
}

# snapshot_info: GET _snapshot/<repo>/<snapshot>. Sets SNAPSHOT_STATE ('MISSING' on 404)
# and leaves the answer in $WORK_DIR/snapshot.json. Returns 1 when no usable answer came.
snapshot_info() {
  SNAPSHOT_STATE=''
  es_call GET "/_snapshot/${REPOSITORY}/${SNAPSHOT_NAME}" || return 1
  if [[ $HTTP_STATUS == 404 ]]; then
    # A 404 for the repository itself (unregistered under the job) says nothing of the
    # snapshot.
    ! jq -e '.error.type == "repository_missing_exception"' "$ES_REPLY" >/dev/null 2>&1 || return 1
    SNAPSHOT_STATE=MISSING
    return 0
  fi
  [[ $HTTP_STATUS == 200 ]] || return 1
  cp "$ES_REPLY" "$WORK_DIR/snapshot.json"
  SNAPSHOT_STATE=$(jq -r '.snapshots[0].state // "MISSING"' "$ES_REPLY")
}

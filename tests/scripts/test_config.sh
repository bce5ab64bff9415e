#!/usr/bin/env bash
# Unit tests, pure bash, of the configuration and naming functions the DataProtection jobs
# share (addons/elasticsearch/dataprotection/common.sh): the datasafed.conf (rclone INI)
# reader for the shapes KubeBlocks' StorageProviders render, the repository path, and the
# names derived from a Backup. Ends with 'N passed, M failed'; exits non-zero on a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../addons/elasticsearch/dataprotection/common.sh disable=SC1091
source "${ROOT}/addons/elasticsearch/dataprotection/common.sh"

PASSED=0
FAILED=0
TMP=$(mktemp -d)
trap 'rm -rf -- "$TMP"' EXIT

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
  if [[ $2 == "$3" ]]; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n  expected: [%s]\n  actual:   [%s]\n' "$1" "$2" "$3"
  fi
}

# expect_true DESCRIPTION COMMAND...
expect_true() {
  local what=$1
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$what"
  fi
}

# expect_false DESCRIPTION COMMAND...
expect_false() {
  local what=$1
  shift
  if "$@"; then
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$what"
  else
    PASSED=$((PASSED + 1))
  fi
}

# matches STRING REGEX
matches() {
  [[ $1 =~ $2 ]]
}

# conf NAME: writes standard input to $TMP/NAME and prints the path.
conf() {
  cat >"$TMP/$1"
  printf '%s' "$TMP/$1"
}

# s3_fields FILE: loads FILE in a subshell and prints the parsed fields, one per line.
s3_fields() {
  (
    load_s3_config "$1" 2>/dev/null
    printf 'bucket=%s\nprefix=%s\nendpoint=%s\nprotocol=%s\nregion=%s\npath_style=%s\nprovider=%s\nregion_source=%s\nstatic_keys=%s\n' \
      "$S3_BUCKET" "$S3_PREFIX" "$S3_ENDPOINT" "$S3_PROTOCOL" "$S3_REGION" "$S3_PATH_STYLE" "$S3_PROVIDER" \
      "$S3_REGION_SOURCE" "$S3_STATIC_KEYS"
  )
}

# field NAME FIELDS: one value out of s3_fields' output.
field() {
  local line
  while IFS= read -r line; do
    [[ $line == "$1="* ]] && printf '%s' "${line#*=}" && return 0
  done <<<"$2"
  return 1
}

# --- KubeBlocks' StorageProvider templates, rendered -----------------------------------------

# The KubeBlocks storage provider templates: ../shared beside the project root (not part of a
# clone; the tests that read them skip, saying so, when it is absent).
PROVIDERS_DIR=${PROVIDERS_DIR:-$ROOT/../shared/schemas/kubeblocks/storageproviders}

# provider_template FILE: the datasafedConfigTemplate block of a StorageProvider, with Helm's
# escaping ({{ `...` }}) undone, so what is left is the Go template KubeBlocks renders.
# shellcheck disable=SC2016 # the backquotes are Helm's escaping, matched as text
provider_template() {
  awk '
    /^  datasafedConfigTemplate: \|/ { on = 1; next }
    on && /^    / { print substr($0, 5); next }
    on && /^[[:space:]]*$/ { print ""; next }
    on { exit }' "$1" |
    sed -e 's/{{ `\({{.*}}\)` }}/\1/g'
}

# render_template PARAM=VALUE...: renders the Go template on standard input with those
# .Parameters, for the few constructs the StorageProviders use (index .Parameters, default,
# $var := / =, printf "%s", if not / hasPrefix, else, end). Any other action fails the render,
# so a new construct in a template shows up here instead of being rendered wrong.
render_template() {
  local -A params=() vars=()
  local kv line stack=(1) active=1 out
  for kv in "$@"; do params[${kv%%=*}]=${kv#*=}; done
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^[[:space:]]*\{\{-?[[:space:]]*(.*[^[:space:]])[[:space:]]*\}\}[[:space:]]*$ &&
      $line != *'}}'*'{{'* ]]; then
      _render_statement "${BASH_REMATCH[1]}" || return 1
      continue
    fi
    [[ $active == 1 ]] || continue
    out=''
    while [[ $line =~ ^([^{]*)\{\{-?[[:space:]]*([^}]*[^[:space:]}])[[:space:]]*-?\}\}(.*)$ ]]; do
      out+=${BASH_REMATCH[1]}
      line=${BASH_REMATCH[3]}
      _render_expr "${BASH_REMATCH[2]}" || return 1
      out+=$_R
    done
    printf '%s\n' "${out}${line}"
  done
}

# _render_expr EXPR: sets _R to the value of one expression.
_render_expr() {
  local e=$1
  if [[ $e =~ ^index\ \.Parameters\ \"([A-Za-z0-9]+)\"(\ \|\ default\ \"([^\"]*)\")?$ ]]; then
    _R=${params[${BASH_REMATCH[1]}]:-}
    [[ -n $_R || -z ${BASH_REMATCH[2]} ]] || _R=${BASH_REMATCH[3]}
  elif [[ $e =~ ^\(?printf\ \"([^\"]*)\"(\ \$([a-z]+))?\)?$ ]]; then
    local fmt=${BASH_REMATCH[1]}
    # shellcheck disable=SC2059 # the template's own format, one %s at most
    _R=$(printf "$fmt" "${vars[${BASH_REMATCH[3]:-none}]:-}")
  elif [[ $e =~ ^\$([a-z]+)$ ]]; then
    _R=${vars[${BASH_REMATCH[1]}]:-}
  else
    printf 'render_template: unknown expression {{ %s }}\n' "$e" >&2
    return 1
  fi
}

# _render_statement ACTION: one control action of the template.
_render_statement() {
  local a=$1
  if [[ $a =~ ^\$([a-z]+)\ :?=\ (.*)$ ]]; then
    local name=${BASH_REMATCH[1]}
    [[ $active == 1 ]] || return 0
    _render_expr "${BASH_REMATCH[2]}" || return 1
    vars[$name]=$_R
  elif [[ $a =~ ^if\ not\ \$([a-z]+)$ ]]; then
    stack+=("$active")
    [[ $active == 1 && -z ${vars[${BASH_REMATCH[1]}]:-} ]] && active=1 || active=0
  elif [[ $a =~ ^if\ hasPrefix\ \"([^\"]*)\"\ \$([a-z]+)$ ]]; then
    stack+=("$active")
    [[ $active == 1 && ${vars[${BASH_REMATCH[2]}]:-} == "${BASH_REMATCH[1]}"* ]] && active=1 || active=0
  elif [[ $a == else ]]; then
    [[ ${stack[-1]} == 1 && $active == 0 ]] && active=1 || active=0
  elif [[ $a == end ]]; then
    active=${stack[-1]}
    unset 'stack[-1]'
  else
    printf 'render_template: unknown action {{ %s }}\n' "$a" >&2
    return 1
  fi
}

# provider_conf NAME PARAM=VALUE...: the datasafed.conf KubeBlocks writes for a BackupRepo of
# StorageProvider NAME with those parameters, as a file; prints its path.
provider_conf() {
  local name=$1 f="$TMP/provider-$1-$RANDOM.conf"
  shift
  provider_template "${PROVIDERS_DIR}/${name}.yaml" | render_template "$@" >"$f" || return 1
  printf '%s' "$f"
}
# repo_settings FILE: 'bucket prefix endpoint region(source) path_style' as the job derives them
# (the columns of docs/backup-repositories.md), or the error when the config is refused.
repo_settings() {
  local out
  out=$( (
    load_s3_config "$1"
    printf '%s|%s|%s|%s(%s)|%s' "$S3_BUCKET" "${S3_PREFIX:--}" "${S3_ENDPOINT:--}" \
      "$S3_REGION" "$S3_REGION_SOURCE" "$S3_PATH_STYLE"
  ) 2>"$TMP/repo_settings.err") || out=$(cat "$TMP/repo_settings.err")
  printf '%s' "$out"
}

# provider_case DESCRIPTION EXPECTED PROVIDER PARAM=VALUE...: renders KubeBlocks' own template
# of PROVIDER with those parameters and compares the settings the job derives.
provider_case() {
  local what=$1 expected=$2 provider=$3 f
  shift 3
  if ! f=$(provider_conf "$provider" accessKeyId=AKIDEXAMPLE secretAccessKey=wJalrXUtnFEMI/K7MDENG \
    insecure=false noCheckBucket=false "$@"); then
    expect_eq "$what: the ${provider} template renders" "rendered" "render failed"
    return 0
  fi
  expect_eq "$what" "$expected" "$(repo_settings "$f")"
}

test_storage_provider_templates() {
  if [[ ! -d $PROVIDERS_DIR ]]; then
    printf 'SKIP: KubeBlocks StorageProvider templates: %s is absent (reference material of the project machines, not of a clone)\n' "$PROVIDERS_DIR"
    return 0
  fi
  # The oracle is the table in docs/backup-repositories.md:
  #   bucket|prefix|endpoint|region(source)|path_style
  provider_case "s3 (AWS), no endpoint: the region's endpoint" \
    "bkt|-|https://s3.eu-central-1.amazonaws.com|eu-central-1(config)|false" s3 bucket=bkt region=eu-central-1
  provider_case "s3 (AWS), China region: .com.cn" \
    "bkt|-|https://s3.cn-north-1.amazonaws.com.cn|cn-north-1(config)|false" s3 bucket=bkt region=cn-north-1
  provider_case "s3 (AWS), an endpoint without scheme: https" \
    "bkt|es/prod|https://bucket.vpce-0a1b.s3.us-east-2.vpce.amazonaws.com|us-east-2(config)|false" \
    s3 bucket=bkt/es/prod/ region=us-east-2 endpoint=bucket.vpce-0a1b.s3.us-east-2.vpce.amazonaws.com
  provider_case "s3 (AWS), an endpoint with http scheme kept" \
    "bkt|-|http://s3.local:9000|us-east-1(config)|false" s3 bucket=bkt region=us-east-1 endpoint=http://s3.local:9000
  provider_case "minio: endpoint with scheme, no region: us-east-1, path style" \
    "kb-backups|team-a|http://minio.minio.svc:9000|us-east-1(default)|true" \
    minio bucket=kb-backups/team-a endpoint=http://minio.minio.svc:9000
  provider_case "minio: an endpoint without scheme gets https, a region kept" \
    "kb|-|https://minio.example.com|eu-1(config)|true" minio bucket=kb endpoint=minio.example.com region=eu-1
  provider_case "oss: the endpoint from the region, the region from the endpoint" \
    "oss-bkt|-|https://oss-cn-hangzhou.aliyuncs.com|cn-hangzhou(endpoint)|false" oss bucket=oss-bkt region=cn-hangzhou
  provider_case "oss: an internal endpoint given" \
    "oss-bkt|p|https://oss-cn-shanghai-internal.aliyuncs.com|cn-shanghai(endpoint)|false" \
    oss bucket=oss-bkt/p region=cn-shanghai endpoint=oss-cn-shanghai-internal.aliyuncs.com
  provider_case "cos: the endpoint from the region, the region from the endpoint" \
    "cos-1250000000|-|https://cos.ap-guangzhou.myqcloud.com|ap-guangzhou(endpoint)|false" \
    cos bucket=cos-1250000000 region=ap-guangzhou
  provider_case "cos: a custom endpoint: no region in it, us-east-1" \
    "cos-1250000000|-|https://cos.internal.example|us-east-1(default)|false" \
    cos bucket=cos-1250000000 region=ap-guangzhou endpoint=https://cos.internal.example
  provider_case "obs: the region line, the endpoint from the region" \
    "obs-bkt|-|https://obs.cn-north-4.myhuaweicloud.com|cn-north-4(config)|false" obs bucket=obs-bkt region=cn-north-4
  provider_case "gcs-s3comp: Google's endpoint, its region kept, virtual-host" \
    "gcs-bkt|x/y|https://storage.googleapis.com|auto(config)|false" gcs-s3comp bucket=gcs-bkt/x/y region=auto
  provider_case "s3-compatible: forcePathStyle true" \
    "ceph|-|http://rgw.ceph.svc:7480|us-east-1(default)|true" \
    s3-compatible bucket=ceph endpoint=http://rgw.ceph.svc:7480 forcePathStyle=true
  provider_case "s3-compatible: forcePathStyle left at its default (false): virtual-host" \
    "b2|-|https://s3.us-west-004.backblazeb2.com|us-west-004(config)|false" \
    s3-compatible bucket=b2 endpoint=s3.us-west-004.backblazeb2.com region=us-west-004
  provider_case "s3-compatible with serviceProvider Minio, forcePathStyle true" \
    "m|-|https://minio.example.com:9443|us-east-1(default)|true" \
    s3-compatible bucket=m endpoint=minio.example.com:9443 serviceProvider=Minio forcePathStyle=true
  provider_case "s3-compatible with a virtual-host serviceProvider ignores forcePathStyle" \
    "w|-|https://s3.eu-central-1.wasabisys.com|eu-central-1(config)|false" \
    s3-compatible bucket=w endpoint=s3.eu-central-1.wasabisys.com region=eu-central-1 serviceProvider=Wasabi forcePathStyle=true
  expect_true "and says so" grep -q "force_path_style = true, which rclone ignores for provider Wasabi" "$TMP/repo_settings.err"
  local out
  out=$(repo_settings "$(conf pvc-like <<'EOF2'
[storage]
type = local
root = /backup
EOF2
)")
  expect_true "pvc (not S3): refused at once, saying what it needs" \
    grep -q "storage type is 'local': the full-backup method writes S3 snapshots and needs an S3-compatible BackupRepo" <<<"$out"
  expect_false "the pvc provider has no datasafed template: a volume, not S3" \
    grep -q datasafedConfigTemplate "${PROVIDERS_DIR}/pvc.yaml"
}

test_env_auth() {
  local out f
  f=$(conf irsa <<'EOF2'
[storage]
type = s3
provider = AWS
env_auth = true
access_key_id =
secret_access_key =
region = us-west-2
root = irsa-bucket
EOF2
)
  out=$(s3_fields "$f")
  expect_eq "env_auth without keys: no static keys" "false" "$(field static_keys "$out")"
  expect_eq "env_auth: bucket still read" "irsa-bucket" "$(field bucket "$out")"
  f=$(conf irsa-keys <<'EOF2'
[storage]
type = s3
env_auth = true
access_key_id = AKIA-GIVEN
secret_access_key = given-secret
root = b
EOF2
)
  expect_eq "env_auth with keys: the keys are used (as rclone does)" "true" "$(field static_keys "$(s3_fields "$f")")"
  f=$(conf noauth <<'EOF2'
[storage]
type = s3
env_auth = false
root = b
EOF2
)
  out=$( (load_s3_config "$f") 2>&1 || true)
  expect_true "no keys and env_auth false: refused naming both" grep -q 'lacks access_key_id (and env_auth is not true' <<<"$out"
  f=$(conf badauth <<'EOF2'
[storage]
type = s3
env_auth = sometimes
root = b
EOF2
)
  out=$( (load_s3_config "$f") 2>&1 || true)
  expect_true "env_auth not a boolean: refused" grep -q "env_auth 'sometimes' is not a boolean" <<<"$out"
}

test_ini_reader() {
  local f
  f=$(conf ini <<'EOF'
# a comment
; another comment
[other]
endpoint = http://wrong:1

[storage]
type=s3
  spaced   =   value with  inner  spaces   
tabbed	=	tab
quoted = "  quoted value  "
single = 'single'
hash = abc#def ;not a comment
equals = a=b=c
colon: http://host:9000
empty =
dup = first
dup = second
[ after ]
dup = third
EOF
)
  expect_eq "ini: key=value without spaces" "s3" "$(ini_get "$f" storage type)"
  expect_eq "ini: spaces around = and value trimmed" "value with  inner  spaces" "$(ini_get "$f" storage spaced)"
  expect_eq "ini: tabs around =" "tab" "$(ini_get "$f" storage tabbed)"
  expect_eq "ini: double quotes dropped, inner spaces kept" "  quoted value  " "$(ini_get "$f" storage quoted)"
  expect_eq "ini: single quotes dropped" "single" "$(ini_get "$f" storage single)"
  expect_eq "ini: no inline comments" "abc#def ;not a comment" "$(ini_get "$f" storage hash)"
  expect_eq "ini: value keeps later '='" "a=b=c" "$(ini_get "$f" storage equals)"
  expect_eq "ini: ':' separator" "http://host:9000" "$(ini_get "$f" storage colon)"
  expect_eq "ini: later duplicate wins" "second" "$(ini_get "$f" storage dup)"
  expect_eq "ini: section name trimmed" "third" "$(ini_get "$f" after dup)"
  expect_eq "ini: other section not mixed in" "" "$(ini_get "$f" storage endpoint || true)"
  expect_true "ini: empty value is present" ini_get "$f" storage empty
  expect_false "ini: absent key returns 1" ini_get "$f" storage nope
  expect_eq "ini_value: default for empty" "dflt" "$(ini_value "$f" storage empty dflt)"
  expect_eq "ini_value: default for absent" "dflt" "$(ini_value "$f" storage nope dflt)"
  expect_true "ini: has [storage]" ini_has_section "$f" storage
  expect_false "ini: has no [missing]" ini_has_section "$f" missing

  f=$(conf crlf < <(printf '[storage]\r\ntype = s3\r\nregion = eu-west-1\r\n'))
  expect_eq "ini: CRLF line ends" "eu-west-1" "$(ini_get "$f" storage region)"
  f=$(conf noeol < <(printf '[storage]\nregion = last-line'))
  expect_eq "ini: last line without newline" "last-line" "$(ini_get "$f" storage region)"
}

test_provider_aws() {
  # s3.yaml: endpoint left empty, region set, root = bucket.
  local out
  out=$(s3_fields "$(conf aws <<'EOF'
[storage]
type = s3
provider = AWS
env_auth = false
access_key_id = AKIAEXAMPLE
secret_access_key = aws/secret+key
region = us-west-2
endpoint =
root = my-bucket
no_check_certificate = false
no_check_bucket = false
chunk_size = 50Mi
EOF
)")
  expect_eq "aws: bucket" "my-bucket" "$(field bucket "$out")"
  expect_eq "aws: no prefix" "" "$(field prefix "$out")"
  expect_eq "aws: empty endpoint becomes the region's" "https://s3.us-west-2.amazonaws.com" "$(field endpoint "$out")"
  expect_eq "aws: protocol https" "https" "$(field protocol "$out")"
  expect_eq "aws: region" "us-west-2" "$(field region "$out")"
  expect_eq "aws: virtual-host style" "false" "$(field path_style "$out")"
}

test_provider_minio() {
  # minio.yaml: endpoint with scheme, empty region, no force_path_style key.
  local out
  out=$(s3_fields "$(conf minio <<'EOF'
[storage]
type = s3
provider = Minio
env_auth = false
access_key_id = minio
secret_access_key = minio123
region =
endpoint = http://minio.storage.svc:9000
root = backups/kb/
EOF
)")
  expect_eq "minio: bucket" "backups" "$(field bucket "$out")"
  expect_eq "minio: prefix without trailing slash" "kb" "$(field prefix "$out")"
  expect_eq "minio: endpoint keeps its scheme" "http://minio.storage.svc:9000" "$(field endpoint "$out")"
  expect_eq "minio: protocol from scheme" "http" "$(field protocol "$out")"
  expect_eq "minio: empty region defaults" "us-east-1" "$(field region "$out")"
  expect_eq "minio: path style by provider" "true" "$(field path_style "$out")"
}

test_provider_s3_compatible() {
  # s3-compatible.yaml: endpoint without scheme, force_path_style given.
  local out
  out=$(s3_fields "$(conf compat <<'EOF'
[storage]
type = s3
provider = Other
access_key_id = test-access-key
secret_access_key = test-secret-key
region = auto
endpoint = s3.example.com:8443
root = /bucket-x/team/es
force_path_style = true
EOF
)")
  expect_eq "compat: https added" "https://s3.example.com:8443" "$(field endpoint "$out")"
  expect_eq "compat: protocol https" "https" "$(field protocol "$out")"
  expect_eq "compat: leading slash of root dropped" "bucket-x" "$(field bucket "$out")"
  expect_eq "compat: prefix" "team/es" "$(field prefix "$out")"
  expect_eq "compat: force_path_style true" "true" "$(field path_style "$out")"

  out=$(s3_fields "$(conf compat2 <<'EOF'
[storage]
type = s3
provider = Other
access_key_id = test-access-key
secret_access_key = test-secret-key
endpoint = HTTP://Ceph.Local:7480/
root = b
force_path_style = false
EOF
)")
  expect_eq "compat: scheme lower-cased, trailing slash dropped" "http://Ceph.Local:7480" "$(field endpoint "$out")"
  expect_eq "compat: explicit force_path_style false wins" "false" "$(field path_style "$out")"
}

test_provider_oss_cos_obs_gcs() {
  local out
  out=$(s3_fields "$(conf oss <<'EOF'
[storage]
type = s3
provider = Alibaba
access_key_id = test-access-key
secret_access_key = test-secret-key
endpoint = oss-cn-hangzhou.aliyuncs.com
root = oss-bucket
use_already_exists = false
EOF
)")
  expect_eq "oss: https added" "https://oss-cn-hangzhou.aliyuncs.com" "$(field endpoint "$out")"
  expect_eq "oss: virtual-host style" "false" "$(field path_style "$out")"
  expect_eq "oss: no region line: the endpoint's region" "cn-hangzhou" "$(field region "$out")"
  expect_eq "oss: region source" "endpoint" "$(field region_source "$out")"

  out=$(s3_fields "$(conf cos <<'EOF'
[storage]
type = s3
provider = TencentCOS
access_key_id = test-access-key
secret_access_key = test-secret-key
endpoint = cos.ap-guangzhou.myqcloud.com
root = cos-bucket-125
EOF
)")
  expect_eq "cos: virtual-host style" "false" "$(field path_style "$out")"

  out=$(s3_fields "$(conf gcs <<'EOF'
[storage]
type = s3
provider = GCS
access_key_id = test-access-key
secret_access_key = test-secret-key
endpoint = https://storage.googleapis.com
region = auto
root = gcs-bucket/p
no_check_bucket = true
EOF
)")
  expect_eq "gcs: endpoint" "https://storage.googleapis.com" "$(field endpoint "$out")"
  expect_eq "gcs: region kept" "auto" "$(field region "$out")"
  expect_eq "gcs: prefix" "p" "$(field prefix "$out")"
}

test_config_errors() {
  local f msg
  f=$(conf nosecret <<'EOF'
[storage]
type = s3
access_key_id = AKIA-VISIBLE-ONLY-HERE
root = b
EOF
)
  msg=$( (load_s3_config "$f") 2>&1) && expect_eq "missing secret fails" "failure" "success"
  expect_true "missing secret: says what is missing" grep -q 'secret_access_key' <<<"$msg"
  expect_false "missing secret: access key not printed" grep -q "AKIA-VISIBLE" <<<"$msg"

  f=$(conf local <<'EOF'
[storage]
type = local
root = /backup
EOF
)
  msg=$( (load_s3_config "$f") 2>&1) && expect_eq "non-S3 repo fails" "failure" "success"
  expect_true "non-S3 repo: message" grep -q "storage type is 'local'" <<<"$msg"

  f=$(conf nosection <<'EOF'
[other]
type = s3
EOF
)
  msg=$( (load_s3_config "$f") 2>&1) && expect_eq "no [storage] fails" "failure" "success"
  expect_true "no [storage]: message" grep -q 'no \[storage\] section' <<<"$msg"

  f=$(conf nobucket <<'EOF'
[storage]
type = s3
access_key_id = test-access-key
secret_access_key = test-secret-key
root = /
EOF
)
  msg=$( (load_s3_config "$f") 2>&1) && expect_eq "empty root fails" "failure" "success"
  expect_true "empty root: message" grep -q 'no bucket' <<<"$msg"

  f=$(conf badbool <<'EOF'
[storage]
type = s3
access_key_id = test-access-key
secret_access_key = test-secret-key
root = b
force_path_style = maybe
EOF
)
  msg=$( (load_s3_config "$f") 2>&1) && expect_eq "bad boolean fails" "failure" "success"
  expect_true "bad boolean: message" grep -q "force_path_style 'maybe' is not a boolean" <<<"$msg"

  msg=$( (load_s3_config "$TMP/does-not-exist") 2>&1) && expect_eq "missing file fails" "failure" "success"
  expect_true "missing file: message" grep -q 'missing or unreadable' <<<"$msg"
  return 0
}

test_secrets_registered() {
  local f
  f=$(conf secrets <<'EOF'
[storage]
type = s3
access_key_id = AK-123
secret_access_key = SK/456+789
session_token = TOKEN-0
root = b
EOF
)
  load_s3_config "$f"
  expect_eq "secrets: session token read" "TOKEN-0" "$S3_SESSION_TOKEN"
  expect_eq "redact: every secret replaced" "key *** secret *** token *** end" \
    "$(redact "key AK-123 secret SK/456+789 token TOKEN-0 end")"
  # shellcheck disable=SC2034 # read by redact
  SECRET_VALUES=()
  expect_eq "redact: nothing registered, nothing changed" "AK-123" "$(redact AK-123)"
}

test_paths() {
  expect_eq "base path: prefix + DP path" "kb/ns1/policy/b1" "$(repository_base_path kb /ns1/policy/b1/)"
  expect_eq "base path: no prefix, no leading slash" "ns1/policy/b1" "$(repository_base_path '' ns1//policy/./b1)"
  expect_eq "base path: nested prefix" "a/b/ns/p/x" "$(repository_base_path /a/b/ /ns/p/x)"
  local msg
  msg=$( (repository_base_path kb /ns/../etc) 2>&1) && expect_eq "base path with .. fails" "failure" "success"
  expect_true "base path with ..: message" grep -q "holds '..'" <<<"$msg"
  expect_eq "normalize_path: slashes" "x/y" "$(normalize_path '//x///y//')"
  expect_eq "url_host: IPv4" "10.0.0.4" "$(url_host 10.0.0.4)"
  expect_eq "url_host: IPv6 bracketed" "[fd00::1]" "$(url_host fd00::1)"
  expect_eq "url_host: already bracketed" "[fd00::1]" "$(url_host '[fd00::1]')"
  expect_eq "url_host: DNS name" "es-0.es-headless.ns.svc" "$(url_host es-0.es-headless.ns.svc)"
}

test_names() {
  expect_eq "repository: kb-<backup>" "kb-backup-20240101" "$(repository_name backup-20240101)"
  local long repo client c2 c3
  long=$(printf 'b%.0s' {1..120})
  repo=$(repository_name "$long")
  expect_eq "repository: long name bounded" 64 "${#repo}"
  expect_true "repository: long name distinct" test "$repo" != "$(repository_name "${long}x")"

  client=$(client_name ns1 my-backup.2024)
  expect_true "client: matches [a-z0-9_-]+" matches "$client" '^[a-z0-9_-]+$'
  expect_eq "client: readable prefix" "kb_my_backup_2024_" "${client%????????}"
  expect_eq "client: deterministic" "$client" "$(client_name ns1 my-backup.2024)"
  c2=$(client_name ns1 my-backup.2025)
  c3=$(client_name ns2 my-backup.2024)
  expect_true "client: other backup, other client" test "$client" != "$c2"
  expect_true "client: other namespace, other client" test "$client" != "$c3"
  client=$(client_name ns "$long")
  expect_true "client: bounded length (<= 32)" test "${#client}" -le 32
  expect_true "client: long name matches [a-z0-9_-]+" matches "$client" '^[a-z0-9_-]+$'
  client=$(client_name ns "abcdefghijklmnopqrs-t")
  expect_true "client: no trailing '_' before the hash" matches "$client" '^kb_[a-z0-9]+(_[a-z0-9]+)*_[0-9a-f]{8}$'
  client=$(client_name ns1 my-backup.2024 0a1b2c3d)
  expect_true "client: a Restore's own, beside the Backup's" test "$client" != "$(client_name ns1 my-backup.2024)"
  expect_true "client: another Restore's, another client" test "$client" != "$(client_name ns1 my-backup.2024 0a1b2c3e)"
  expect_eq "client: a Restore's keeps the readable prefix" "kb_my_backup_2024_" "${client%????????}"

  expect_eq "restore scope: the Restore's UID from a post-ready pod's name" 0a1b2c3d \
    "$(HOSTNAME=restore-post-ready-0a1b2c3d-my-backup-0-0-x7k2p restore_scope)"
  expect_eq "restore scope: a prepareData pod's name" abcdef12 \
    "$(HOSTNAME=restore-preparedata-abcdef12-b-0-q1w2e restore_scope)"
  expect_eq "restore scope: a name that does not say" "" "$(HOSTNAME=es-backup-job-x7k2p restore_scope)"
  expect_eq "restore scope: no UID where it belongs" "" "$(HOSTNAME=restore-post-ready-my-backup-0-0-x7k2p restore_scope)"

  expect_true "attempt client: an attempt's" attempt_client_of kb_b_12345678 kb_b_12345678_0a1b2c
  expect_true "attempt client: one written before attempts had ids" attempt_client_of kb_b_12345678 kb_b_12345678
  expect_false "attempt client: another Backup's" attempt_client_of kb_b_12345678 kb_b_123456789
  expect_false "attempt client: another Backup's whose name holds this one's hash" \
    attempt_client_of kb_b_12345678 kb_b_12345678_y_92d3d114_4c3f53
  expect_true "client: a restore that cannot tell its Restore, apart from the backup's" \
    test "$(DP_DB_HOST=h DP_BACKUP_NAME=b1 DP_BACKUP_BASE_PATH=/p JOB_KIND=restore HOSTNAME=x bash -c 'source "$0"; load_job_env; echo "$CLIENT_BASE"' "${ROOT}/addons/elasticsearch/dataprotection/common.sh")" \
    != "$(DP_DB_HOST=h DP_BACKUP_NAME=b1 DP_BACKUP_BASE_PATH=/p JOB_KIND=backup bash -c 'source "$0"; load_job_env; echo "$CLIENT_BASE"' "${ROOT}/addons/elasticsearch/dataprotection/common.sh")"
}

test_restore_repository_names() {
  local long repo
  expect_eq "restore repository: the Restore's scope and the attempt in its name" kb-b1-0a1b2c3d-r123abc \
    "$(restore_repository_name kb-b1 0a1b2c3d 123abc)"
  expect_eq "restore repository: no scope, the attempt only" kb-b1-r123abc "$(restore_repository_name kb-b1 '' 123abc)"
  long=$(printf 'b%.0s' {1..120})
  repo=$(restore_repository_name "$(repository_name "$long")" 0a1b2c3d 123abc)
  expect_true "restore repository: a long Backup's is at most 63 characters" test "${#repo}" -le 63
  expect_true "restore repository: names of any Restore of the Backup are known" restore_repository_of kb-b1 kb-b1-0a1b2c3d-r123abc
  expect_true "restore repository: an unscoped one's too" restore_repository_of kb-b1 kb-b1-r123abc
  expect_true "restore repository: a long Backup's" restore_repository_of "$(repository_name "$long")" "$repo"
  expect_false "restore repository: not another Backup's" restore_repository_of kb-b1 kb-b12-0a1b2c3d-r123abc
  expect_false "restore repository: not the Backup's own" restore_repository_of kb-b1 kb-b1
  expect_false "restore repository: not one with more after the attempt" restore_repository_of kb-b1 kb-b1-0a1b2c3d-r123abc-x

  # GET _snapshot as the engine answers it: which repositories are this Restore's (0a1b2c3d).
  local snapshots
  snapshots=$(mktemp)
  jq -n '{
      "kb-b1-0a1b2c3d-r111111": {type: "s3", settings: {bucket: "bk", base_path: "p/b1", client: "default"}},
      "kb-b1-0a1b2c3e-r222222": {type: "s3", settings: {bucket: "bk", base_path: "p/b1", client: "default"}},
      "kb-b1-r333333": {type: "s3", settings: {bucket: "bk", base_path: "p/b1"}},
      "users-own": {type: "s3", settings: {bucket: "bk", base_path: "p/b1"}},
      "kb-b1-0a1b2c3d-r444444": {type: "s3", settings: {bucket: "bk", base_path: "p/other", client: "default"}}
    }' >"$snapshots"
  expect_true "env_auth: an earlier attempt's repository of this Restore is its own" in_scope "$snapshots" kb-b1-0a1b2c3d-r111111
  expect_false "env_auth: another Restore's is not" in_scope "$snapshots" kb-b1-0a1b2c3e-r222222
  expect_false "env_auth: an unscoped restore's is not" in_scope "$snapshots" kb-b1-r333333
  expect_false "env_auth: a user's at the same path is not" in_scope "$snapshots" users-own
  expect_false "env_auth: one of this Restore's name at another path is not" in_scope "$snapshots" kb-b1-0a1b2c3d-r444444
  jq -n '{"kb-b1": {type: "s3", settings: {bucket: "bk", base_path: "p/b1", client: "default"}},
      "kb-b1-copy": {type: "s3", settings: {bucket: "bk", base_path: "p/b1", client: "default"}}}' >"$snapshots"
  expect_true "env_auth: a backup's repository of an earlier attempt is the Backup's" backup_scope "$snapshots" kb-b1
  expect_false "env_auth: another of client 'default' at the path is not" backup_scope "$snapshots" kb-b1-copy
  expect_false "env_auth: a restore does not take the backup's for its own" in_scope "$snapshots" kb-b1
  rm -f "$snapshots"
}

# in_scope FILE NAME: this_backups_repository of a restore of Restore 0a1b2c3d of Backup b1 with
# env_auth (client 'default'), for the repositories in FILE (GET _snapshot).
in_scope() {
  BACKUP_NAME=b1 JOB_KIND=restore RESTORE_SCOPE=0a1b2c3d S3_BUCKET=bk REPO_BASE_PATH=p/b1 \
    CLIENT_BASE=kb_b1_12345678 REPOSITORY=kb-b1-0a1b2c3d-r555555 this_backups_repository "$1" "$2"
}

# backup_scope FILE NAME: this_backups_repository of a backup of Backup b1 (repository kb-b1).
backup_scope() {
  BACKUP_NAME=b1 JOB_KIND=backup RESTORE_SCOPE='' S3_BUCKET=bk REPO_BASE_PATH=p/b1 \
    CLIENT_BASE=kb_b1_12345678 REPOSITORY=kb-b1 this_backups_repository "$1" "$2"
}

# restore_repository_of REPOSITORY NAME: jq's restore_repository, as restoring_hint uses it.
restore_repository_of() {
  jq -en --arg repo "$1" --arg n "$2" "${JQ_RESTORE_REPOSITORY}"' $n | restore_repository($repo)' >/dev/null
}

# attempt_client_of BASE CLIENT: jq's attempt_client, as the jobs use it.
attempt_client_of() {
  jq -en --arg b "$1" --arg c "$2" "${JQ_ATTEMPT_CLIENT}"' $c | attempt_client($b)' >/dev/null
}

# in_use_case NAME EXPECT(0|1) CURRENT ROUTING: repository_free of 'kb-r' on the given
# answers of GET _snapshot/kb-r/_current and GET _cluster/state/routing_table (engine answers
# of OpenSearch 3.6 as recorded, the shard lists cut down).
in_use_case() {
  local name=$1 want=$2 out rc=0
  out=$(
    CURRENT=$3 ROUTING=$4
    # shellcheck disable=SC2317 # called by repository_free
    es_call() {
      HTTP_ERROR='' HTTP_STATUS=200 ES_REPLY="$TMP/in-use.json"
      case $2 in
        */_current) printf '%s' "$CURRENT" >"$ES_REPLY" ;;
        *) printf '%s' "$ROUTING" >"$ES_REPLY" ;;
      esac
    }
    repository_free kb-r
  ) || rc=$?
  expect_eq "in use: ${name}" "$want" "$rc"
  IN_USE_OUT=$out
}

test_repository_free() {
  in_use_case "nothing runs" 0 '{"snapshots":[]}' '{}'
  in_use_case "another repository's restore" 0 '{"snapshots":[]}' \
    '{"routing_table":{"indices":{"a":{"shards":{"0":[{"index":"a","recovery_source":{"repository":"kb-other"}}]}}}}}'
  in_use_case "a snapshot runs" 1 '{"snapshots":[{"snapshot":"b","state":"IN_PROGRESS"}]}' '{}'
  expect_true "in use: the snapshot said" matches "$IN_USE_OUT" '^a snapshot may still run there'
  in_use_case "shards restored from it (unassigned ones too)" 1 '{"snapshots":[]}' \
    '{"routing_table":{"indices":{"t-a":{"shards":{"0":[{"index":"t-a","recovery_source":{"repository":"kb-r"}}],"1":[{"index":"t-a","recovery_source":{"repository":"kb-r"}}]}},"u":{"shards":{"0":[{"index":"u"}]}}}}}'
  expect_eq "in use: the indices named once" "shards of t-a are still being restored from it (GET _cat/shards)" "$IN_USE_OUT"
  in_use_case "an answer that is not JSON" 1 '{"snapshots":[]}' 'not json'
}

test_job_env() {
  local out
  out=$(
    DP_DB_HOST=fd00::5 DP_DB_PORT=9201 DP_BACKUP_NAME=b1 DP_BACKUP_BASE_PATH=/ns/p/b1 KB_NAMESPACE=ns \
      DP_DB_USER=elastic DP_DB_PASSWORD=pw
    export DP_DB_HOST DP_DB_PORT DP_BACKUP_NAME DP_BACKUP_BASE_PATH KB_NAMESPACE DP_DB_USER DP_DB_PASSWORD
    load_job_env
    printf '%s|%s|%s|%s|%s' "$ES_URL" "$REPOSITORY" "$SNAPSHOT_NAME" "$DATASAFED_CONF" "${S3_CLIENT:0:6}"
  )
  expect_eq "job env: URL, names, default config path" \
    "http://[fd00::5]:9201|kb-b1|b1|/etc/datasafed/datasafed.conf|kb_b1_" "$out"
  out=$( (DP_DB_HOST=h DP_BACKUP_NAME=Bad_Name DP_BACKUP_BASE_PATH=/x load_job_env) 2>&1) &&
    expect_eq "job env: bad name fails" "failure" "success"
  expect_true "job env: bad name message" grep -q 'not a valid snapshot name' <<<"$out"
  out=$( (DP_DB_HOST='' DP_BACKUP_NAME=b DP_BACKUP_BASE_PATH=/x load_job_env) 2>&1) &&
    expect_eq "job env: no host fails" "failure" "success"
  expect_true "job env: no host message" grep -q 'DP_DB_HOST is not set' <<<"$out"
  out=$(
    DP_DB_HOST=h DP_BACKUP_NAME=b DP_BACKUP_BASE_PATH=/x DP_DB_USER='' DP_DB_PASSWORD='' ELASTIC_PASSWORD=from-pod-env
    export DP_DB_HOST DP_BACKUP_NAME DP_BACKUP_BASE_PATH DP_DB_USER DP_DB_PASSWORD ELASTIC_PASSWORD
    load_job_env
    printf '%s|%s' "$DB_USER" "$DB_PASSWORD"
  )
  expect_eq "job env: without DP_DB_USER, the elastic user's password variable" "elastic|from-pod-env" "$out"
  out=$(
    DP_DB_HOST=h DP_BACKUP_NAME=b DP_BACKUP_BASE_PATH=/x DP_DB_USER=backup DP_DB_PASSWORD=dp ELASTIC_PASSWORD=other
    export DP_DB_HOST DP_BACKUP_NAME DP_BACKUP_BASE_PATH DP_DB_USER DP_DB_PASSWORD ELASTIC_PASSWORD
    load_job_env
    printf '%s|%s' "$DB_USER" "$DB_PASSWORD"
  )
  expect_eq "job env: DP_DB_USER wins" "backup|dp" "$out"
  return 0
}

test_engine_error() {
  local f="$TMP/error.json"
  cat >"$f" <<'EOF'
{"error":{"root_cause":[{"type":"repository_verification_exception","reason":"[kb-b1] path [p] is not accessible on master node"}],
 "type":"repository_verification_exception","reason":"[kb-b1] path [p] is not accessible on master node",
 "caused_by":{"type":"i_o_exception","reason":"Unable to upload object",
   "caused_by":{"type":"s3_exception","reason":"The request signature we calculated does not match"}}},"status":500}
EOF
  expect_eq "engine_error: whole chain" \
    "repository_verification_exception: [kb-b1] path [p] is not accessible on master node; caused by: i_o_exception: Unable to upload object; caused by: s3_exception: The request signature we calculated does not match" \
    "$(engine_error "$f")"
  printf '<html>bad gateway</html>\n' >"$f"
  expect_eq "engine_error: non-JSON body" "<html>bad gateway</html> " "$(engine_error "$f")"
  printf '{"error":"old style","status":400}' >"$f"
  expect_eq "engine_error: string error" "old style" "$(engine_error "$f")"
  expect_eq "parse_bool: True" "true" "$(parse_bool True)"
  expect_eq "parse_bool: 0" "false" "$(parse_bool 0)"
  expect_false "parse_bool: junk" parse_bool maybe
}

# shellcheck disable=SC2034,SC2317 # globals read by common.sh; stubs called by it
test_request_bodies() {
  # The bodies the jobs send, built without a cluster: es_ok is replaced by a stub that
  # keeps the body.
  local f out
  f=$(conf bodies <<'EOF'
[storage]
type = s3
provider = Minio
access_key_id = body-access-key
secret_access_key = body"secret\key
session_token = body-token
endpoint = minio.local:9000
root = bkt/pre
region =
EOF
)
  out=$(
    WORK_DIR="$TMP" S3_CLIENT=kb_x_12345678 REPOSITORY=kb-x REPO_BASE_PATH=pre/ns/p/x ES_VERIFY_TIMEOUT=1
    load_s3_config "$f"
    es_call() {
      HTTP_ERROR=''
      if [[ $1 == GET ]]; then
        HTTP_STATUS=404
      else
        cp "$3" "$TMP/sent.json"
        HTTP_STATUS=200
      fi
    }
    log() { :; }
    ENGINE_DISTRIBUTION=opensearch
    register_repository false
    jq -c . "$TMP/sent.json"
    ENGINE_DISTRIBUTION=elasticsearch
    register_repository true
    jq -c . "$TMP/sent.json"
    write_agent_body
    jq -c . "$AGENT_BODY"
    stat -c %a "$AGENT_BODY"
    S3_SESSION_TOKEN=''
    write_agent_body
    jq -c 'keys' "$AGENT_BODY"
  )
  local -a lines
  mapfile -t lines <<<"$out"
  expect_eq "repository body, OpenSearch" \
    '{"type":"s3","settings":{"bucket":"bkt","base_path":"pre/ns/p/x","client":"kb_x_12345678","region":"us-east-1","path_style_access":true,"readonly":false,"endpoint":"https://minio.local:9000","protocol":"https","shard_path_type":"fixed"}}' \
    "${lines[0]:-}"
  expect_eq "repository body, Elasticsearch, read-only" \
    '{"type":"s3","settings":{"bucket":"bkt","base_path":"pre/ns/p/x","client":"kb_x_12345678","region":"us-east-1","path_style_access":true,"readonly":true,"endpoint":"https://minio.local:9000"}}' \
    "${lines[1]:-}"
  expect_eq "agent body with session token (quotes and backslashes intact)" \
    '{"access_key_id":"body-access-key","secret_access_key":"body\"secret\\key","client":"kb_x_12345678","session_token":"body-token"}' \
    "${lines[2]:-}"
  expect_eq "agent body file is private" "600" "${lines[3]:-}"
  expect_eq "agent body without session token" '["access_key_id","client","secret_access_key"]' "${lines[4]:-}"
}

# shellcheck disable=SC2034,SC2317 # globals read by common.sh; stubs called by it
test_registration_retries_only_a_closed_client() {
  # The engine's answers are recorded bodies served by an es_call stub: the cause that a
  # concurrent reload produces is retried, any other cause fails at once.
  local out
  out=$(
    WORK_DIR="$TMP" S3_CLIENT=kb_x REPOSITORY=kb-x REPO_BASE_PATH=p ES_VERIFY_TIMEOUT=1
    S3_BUCKET=b S3_ENDPOINT=http://e S3_REGION=r S3_PROTOCOL=http S3_PATH_STYLE=true
    ENGINE_DISTRIBUTION=opensearch
    CALLS=0
    es_call() {
      ES_REPLY="$TMP/verify-reply.json"
      HTTP_ERROR=''
      if [[ $1 == GET ]]; then
        HTTP_STATUS=404
        return 0
      fi
      CALLS=$((CALLS + 1))
      if ((CALLS == 1)); then
        HTTP_STATUS=500
        printf '%s' '{"error":{"type":"repository_verification_exception","reason":"[kb-x] cannot delete test data","caused_by":{"type":"sdk_client_exception","reason":"Task rejected from java.util.concurrent.ScheduledThreadPoolExecutor[Shutting down, pool size = 1]"}},"status":500}' >"$ES_REPLY"
      else
        HTTP_STATUS=200
        printf '{"acknowledged":true}' >"$ES_REPLY"
      fi
    }
    sleep() { :; }
    log() { :; }
    warn() { :; }
    register_repository false
    echo "calls=$CALLS"
  )
  expect_eq "a verification hit by another job's reload is retried, then passes" "calls=2" "$out"
  out=$( (
    WORK_DIR="$TMP" REPOSITORY=kb-x ES_VERIFY_TIMEOUT=1 ES_URL=http://e
    es_call() {
      ES_REPLY="$TMP/verify-reply.json" HTTP_ERROR='' HTTP_STATUS=404
      printf '%s' '{"error":{"type":"repository_missing_exception","reason":"[kb-x] missing"},"status":404}' >"$ES_REPLY"
    }
    es_verifying "registration of repository kb-x" POST /_snapshot/kb-x/_verify ''
  ) 2>&1 || true)
  expect_true "a repository gone before its verification: another attempt's end, said so" \
    grep -q "ERROR: repository kb-x was unregistered while this job verified it: another attempt of this Backup that ended first" <<<"$out"
  out=$( (
    WORK_DIR="$TMP" S3_CLIENT=kb_x REPOSITORY=kb-x REPO_BASE_PATH=p ES_VERIFY_TIMEOUT=1
    S3_BUCKET=b S3_ENDPOINT=http://e S3_REGION=r S3_PROTOCOL=http S3_PATH_STYLE=true
    ENGINE_DISTRIBUTION=opensearch
    es_call() {
      ES_REPLY="$TMP/verify-reply.json"
      HTTP_ERROR=''
      if [[ $1 == GET ]]; then
        HTTP_STATUS=404
        return 0
      fi
      HTTP_STATUS=500
      printf '%s' '{"error":{"type":"repository_verification_exception","reason":"[kb-x] path is not accessible on master node","caused_by":{"type":"s3_exception","reason":"SignatureDoesNotMatch"}},"status":500}' >"$ES_REPLY"
    }
    warn() { echo "retried"; }
    register_repository false
  ) 2>&1 || true)
  expect_true "any other verification failure stops the job with the engine's cause" \
    grep -q "HTTP 500: .*SignatureDoesNotMatch" <<<"$out"
  expect_false "and is not retried" grep -q retried <<<"$out"
  out=$( (
    WORK_DIR="$TMP" S3_CLIENT=kb_x REPOSITORY=kb-x REPO_BASE_PATH=p ES_VERIFY_TIMEOUT=1
    S3_BUCKET=b S3_ENDPOINT=https://s3.self-signed.example S3_REGION=r S3_PROTOCOL=https S3_PATH_STYLE=true
    ENGINE_DISTRIBUTION=elasticsearch
    es_call() {
      ES_REPLY="$TMP/verify-reply.json"
      HTTP_ERROR=''
      if [[ $1 == GET ]]; then
        HTTP_STATUS=404
        return 0
      fi
      HTTP_STATUS=500
      printf '%s' '{"error":{"type":"repository_verification_exception","reason":"[kb-x] path is not accessible on master node","caused_by":{"type":"sdk_client_exception","reason":"Unable to execute HTTP request: PKIX path building failed: unable to find valid certification path to requested target"}},"status":500}' >"$ES_REPLY"
    }
    register_repository false
  ) 2>&1 || true)
  expect_true "an endpoint certificate the nodes do not trust: that cause named" \
    grep -q "PKIX path building failed.* (the nodes do not trust the certificate of the S3 endpoint https://s3.self-signed.example: add its CA" <<<"$out"
}

# shellcheck disable=SC2034,SC2317 # globals read by common.sh; stubs called by it
test_node_answers() {
  # How the jobs read the engine's node listing and reload answers, and the agents'
  # answers, from recorded bodies: es_ok is a stub that serves the next file.
  local d="$TMP/answers" out
  mkdir -p "$d"
  cat >"$d/nodes.json" <<'EOF'
{"_nodes":{"total":3,"successful":3,"failed":0},"cluster_name":"c","nodes":{
 "idB":{"name":"es-1","ip":"10.0.0.5","roles":["ingest","ml"],"http":{"publish_address":"10.0.0.5:9200"}},
 "idA":{"name":"es-0","ip":"10.0.0.4","roles":["data_hot","master"]},
 "idC":{"name":"es-2","http":{"publish_address":"[fd00::7]:9200"}}}}
EOF
  cat >"$d/nodes-failed.json" <<'EOF'
{"_nodes":{"total":3,"successful":2,"failed":1,"failures":[{"type":"failed_node_exception","reason":"Failed node [idC]","node_id":"idC"}]},"nodes":{}}
EOF
  cat >"$d/reload.json" <<'EOF'
{"_nodes":{"total":3,"successful":2,"failed":1},"cluster_name":"c","nodes":{
 "idA":{"name":"es-0"},
 "idB":{"name":"es-1","reload_exception":{"type":"illegal_state_exception","reason":"keystore is password-protected"}}}}
EOF
  cat >"$d/reload-digest.json" <<'EOF'
{"_nodes":{"total":3,"successful":3,"failed":0},"nodes":{
 "idA":{"name":"es-0","keystore_digest":"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"},"idB":{"name":"es-1","keystore_digest":"not-hex"},"idC":{"name":"es-2","keystore_digest":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"}}}
EOF
  out=$(
    WORK_DIR="$d" NODE_COUNT=3 ES_VERIFY_TIMEOUT=1
    ANSWER=''
    es_ok() { cp "$d/$ANSWER" "$d/reply.json"; ES_REPLY="$d/reply.json"; }
    log() { printf '%s\n' "$*"; }
    ANSWER=nodes.json list_nodes >/dev/null
    cat "$d/nodes.tsv"
    printf 'idA\taaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nidB\taaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nidC\tcccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n' >"$d/digests.tsv"
    (ANSWER=reload.json reload_secure_settings) 2>&1 | grep -E '^(reload|ERROR)' || true
    # shellcheck disable=SC2030 # this subshell's own
    AGENT_SCHEME=http AGENT_PORT=8080 AGENT_NODE_DEADLINE=5
    S3_CLIENT=kb_t
    # The node's agent: the file's digest now, and whether it holds this job's keys.
    agent_call() {
      jq -n --arg sha "$AGENT_NOW" --argjson keys "${AGENT_KEYS:-true}" \
        '{sha256: $sha, settings: (if $keys then ["s3.client.kb_t.access_key", "s3.client.kb_t.secret_key"] else [] end)}' >"$1"
      A_RC=0 A_STATUS=200 A_TRIES=1
    }
    (ANSWER=reload-digest.json AGENT_NOW=ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff reload_secure_settings) 2>&1 | grep -E '^(ERROR)' || true
    (ANSWER=reload-digest.json AGENT_NOW=BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB reload_secure_settings) 2>&1 | grep -E '^reload es-[01]' | paste -sd'|' || true
    (ANSWER=reload-digest.json AGENT_NOW=BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB AGENT_KEYS=false reload_secure_settings) 2>&1 | grep -E '^(ERROR)' || true
    (ANSWER=nodes-failed.json list_nodes) 2>&1 | grep -o 'ERROR.*' || true
  )
  local -a l
  mapfile -t l <<<"$out"
  expect_eq "nodes: sorted by name, ip taken, a data node verifies" "$(printf 'idA\tes-0\t10.0.0.4\ttrue')" "${l[0]:-}"
  expect_eq "nodes: an ingest/ml node takes no part in verification" "$(printf 'idB\tes-1\t10.0.0.5\tfalse')" "${l[1]:-}"
  expect_eq "nodes: no ip, IPv6 publish address, no roles listed: verifies" "$(printf 'idC\tes-2\tfd00::7\ttrue')" "${l[2]:-}"
  expect_eq "reload: ok node" "reload es-0: ok" "${l[3]:-}"
  expect_eq "reload: reload_exception in a 200 answer" \
    "reload es-1: FAILED: illegal_state_exception: keystore is password-protected" "${l[4]:-}"
  expect_eq "reload: node missing from the answer" "reload es-2: FAILED: no answer from this node" "${l[5]:-}"
  expect_eq "reload: the job stops naming both nodes" \
    "ERROR: reload of secure settings failed on 2 node(s): es-1: illegal_state_exception: keystore is password-protected; es-2: no answer from this node" \
    "${l[6]:-}"
  expect_eq "reload: keystore digest differs from the agent's and from the file now" \
    "ERROR: reload of secure settings failed on 1 node(s): es-0: reloaded keystore digest bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb differs from the one the agent wrote (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) and from the file as it is now (ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)" \
    "${l[7]:-}"
  expect_eq "reload: a later save (another job's) is what the node loaded: ok; a digest that is no SHA-256 is not compared" \
    "reload es-0: ok (it loaded a later save of its keystore, which keeps this job's entries)|reload es-1: ok" "${l[8]:-}"
  expect_eq "reload: the file now lacks this job's keys: a failure" \
    "ERROR: reload of secure settings failed on 1 node(s): es-0: reloaded keystore digest bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb differs from the one the agent wrote (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) and from the file as it is now (without this job's keys)" \
    "${l[9]:-}"
  expect_eq "nodes: _nodes.failed stops the job" "ERROR: node listing: 1 node(s) did not answer: idC Failed node [idC]" "${l[10]:-}"
}

# fake_agents_http_call OUT METHOD URL BODY CONNECT MAX: stands in for curl with one fake
# agent per node, whose behaviour its host name says (ok, pw: keystore with a password,
# flaky: refuses the first connection of each call, down, slow: times out, notready,
# e401, e500, reloadfail; old and oldpw: an agent whose /ready does not tell has_password,
# so the job asks GET /keystore; nohdr: a keystore whose header the agent could not read;
# fresh: no keystore yet). Records every call in $FAKE/calls.log and how many calls were in
# flight at once in $FAKE/inflight.log.
# The client name the fake agents answer for (the job's S3_CLIENT in fan_out_case).
FAKE_CLIENT=kb_t_1

# shellcheck disable=SC2317 # called through http_call
fake_agents_http_call() {
  local out=$1 method=$2 url=$3 body=$4 host path kind count
  host=${url#*://}
  host=${host%%:*}
  path=/${url#*://*/}
  kind=${host%%-*}
  : >"$out"
  : >"$out.err"
  printf '%s %s %s %s\n' "$host" "$method" "$path" "${body##*/}" >>"$FAKE/calls.log"
  : >"$FAKE/active/$BASHPID"
  find "$FAKE/active" -type f | wc -l >>"$FAKE/inflight.log"
  sleep 0.05
  rm -f "$FAKE/active/$BASHPID"
  count=$(grep -c "^$host $method ${path%%\?*}" "$FAKE/calls.log" || true)
  case $kind in
    down) echo 'curl: (7) Failed to connect to host port 8080: Connection refused' >"$out.err"; printf '000'; return 7 ;;
    slow) command sleep 1; echo 'curl: (28) Operation timed out after 1000 milliseconds' >"$out.err"; printf '000'; return 28 ;;
    flaky) if ((count == 1)); then echo 'curl: (7) Failed to connect' >"$out.err"; printf '000'; return 7; fi ;;
  esac
  case $kind:$method:${path%%\?*} in
    notready:GET:/ready) printf '{"error":{"code":"KEYSTORE_CORRUPT","message":"checksum mismatch"}}' >"$out"; printf 503 ;;
    old:GET:/ready | oldpw:GET:/ready) printf '{"status":"ready"}' >"$out"; printf 200 ;;
    nohdr:GET:/ready) printf '{"status":"ready","keystore":{"exists":true,"format_version":null,"has_password":null}}' >"$out"; printf 200 ;;
    fresh:GET:/ready) printf '{"status":"ready","keystore":{"exists":false,"format_version":null,"has_password":null}}' >"$out"; printf 200 ;;
    pw:GET:/ready | reloadfail:GET:/ready) printf '{"status":"ready","keystore":{"exists":true,"format_version":5,"has_password":true}}' >"$out"; printf 200 ;;
    *:GET:/ready) printf '{"status":"ready","keystore":{"exists":true,"format_version":5,"has_password":false}}' >"$out"; printf 200 ;;
    e401:*:/keystore) printf '{"error":{"code":"UNAUTHORIZED","message":"bad credentials"}}' >"$out"; printf 401 ;;
    oldpw:GET:/keystore) printf '{"keystore":"/k","exists":true,"has_password":true}' >"$out"; printf 200 ;;
    *:GET:/keystore) printf '{"keystore":"/k","exists":true,"has_password":false}' >"$out"; printf 200 ;;
    nosettings:POST:/keystore) printf '{"settings":["s3.client.other.access_key"],"sha256":"x"}' >"$out"; printf 200 ;;
    notjson:POST:/keystore) printf '<html>proxy</html>' >"$out"; printf 200 ;;
    e500:POST:/keystore) printf '{"error":{"code":"KEYSTORE_WRITE_FAILED","message":"disk full"}}' >"$out"; printf 500 ;;
    reloadfail:POST:/keystore)
      printf '{"settings":["s3.client.%s.access_key","s3.client.%s.secret_key"],"sha256":"ab","reload":{"node":"n","reloaded":false,"failure":"keystore password incorrect"},"error":{"code":"NODE_RELOAD_FAILED","message":"the keystore was saved, but the reload failed"}}' "$FAKE_CLIENT" "$FAKE_CLIENT" >"$out"
      printf 502 ;;
    *:POST:/keystore)
      jq -c --arg c "$FAKE_CLIENT" --arg h "$host" '{keystore: "/k/\($h)", settings: ["s3.client.\($c).access_key", "s3.client.\($c).secret_key"], sha256: "sha-\($h)"}
          + (if .reload then {reload: {node: $h, reloaded: true}} else {} end)' "$body" >"$out"
      printf 200 ;;
    *:DELETE:/keystore) printf '{"settings":["s3.client.%s.access_key"],"changed":true}' "$FAKE_CLIENT" >"$out"; printf 200 ;;
    *) printf '{"error":{"code":"NOT_FOUND"}}' >"$out"; printf 404 ;;
  esac
}

# fan_out_case NODE_KINDS FUNCTION...: runs the job's agent steps against fake agents named
# NODE_KINDS (e.g. 'ok ok down'), in a subshell; prints the log and the exit status.
# shellcheck disable=SC2034,SC2317 # globals read by common.sh
fan_out_case() {
  local kinds=$1
  shift
  FAKE="$TMP/fake.$RANDOM"
  mkdir -p "$FAKE/active" "$FAKE/work/agents"
  : >"$FAKE/calls.log"
  : >"$FAKE/inflight.log"
  (
    WORK_DIR="$FAKE/work" AGENT_DIR="$FAKE/work/agents" AGENT_SCHEME=http AGENT_PORT=8080
    AGENT_CONNECT_TIMEOUT=1 AGENT_TIMEOUT=5 AGENT_PARALLELISM=${AGENT_PARALLELISM:-32}
    # shellcheck disable=SC2031 # set here, not inherited
    AGENT_NODE_DEADLINE=${AGENT_NODE_DEADLINE:-30} AGENT_ATTEMPTS=${AGENT_ATTEMPTS:-3}
    S3_CLIENT=$FAKE_CLIENT S3_ACCESS_KEY=FAKE-AK S3_SECRET_KEY=FAKE-SK S3_SESSION_TOKEN=''
    # The job's http_call sets HTTP_CODE; the fake prints it.
    http_call() {
      local rc=0
      HTTP_CODE=$(fake_agents_http_call "$@") || rc=$?
      return "$rc"
    }
    sleep() { command sleep 0.01; }
    local i=0 k
    for k in $kinds; do
      i=$((i + 1))
      printf 'id%03d\tnode-%03d\t%s-%d\n' "$i" "$i" "$k" "$i"
    done >"$WORK_DIR/nodes.tsv"
    NODE_COUNT=$i
    for k in "$@"; do "$k"; done
    echo "exit 0"
  ) >"$FAKE/out.log" 2>&1 || echo "exit $?" >>"$FAKE/out.log"
}

calls_to() {
  grep -c -E "$1" "$FAKE/calls.log" || true
}

test_agent_fan_out() {
  local kinds
  kinds=$(printf 'ok %.0s' {1..40})
  AGENT_PARALLELISM=4 fan_out_case "$kinds" inspect_agents set_keystores
  expect_true "40 nodes: every keystore written" grep -q 'keystore: client kb_t_1 written on all 40 nodes' "$FAKE/out.log"
  expect_eq "40 nodes: one POST each" 40 "$(calls_to ' POST /keystore ')"
  expect_eq "40 nodes: one line per node" 40 "$(grep -c -E 'node node-[0-9]+ \(ok-[0-9]+:8080\): ok, keystore /k/ok-[0-9]+ sha256 sha-ok-' "$FAKE/out.log")"
  expect_true "40 nodes, parallelism 4: never more than 4 calls at once" test "$(sort -n "$FAKE/inflight.log" | tail -n1)" -le 4
  expect_true "40 nodes, parallelism 4: calls do run side by side" test "$(sort -n "$FAKE/inflight.log" | tail -n1)" -ge 2
  expect_true "no password anywhere: one cluster-wide reload" grep -q 'no keystore has a password: one cluster-wide reload' "$FAKE/out.log"
  expect_eq "the written digests are kept for the reload check" 40 "$(wc -l <"$FAKE/work/digests.tsv")"

  fan_out_case "ok flaky ok" inspect_agents set_keystores
  expect_true "a refused connection is retried, then passes" grep -q 'exit 0' "$FAKE/out.log"
  expect_eq "the flaky agent's /ready was called twice" 2 "$(calls_to '^flaky-2 GET /ready')"
  expect_eq "and its POST twice" 2 "$(calls_to '^flaky-2 POST /keystore')"

  AGENT_ATTEMPTS=3 fan_out_case "ok down notready" inspect_agents set_keystores
  expect_true "unready agents stop the job before any write" \
    grep -q 'ERROR: agents not ready on 2 of 3 node(s), nothing written: node-002 (down-2:8080): GET /ready: no answer from the agent after 3 attempts: curl: (7)' "$FAKE/out.log"
  expect_true "the not-ready agent's reason" \
    grep -q 'node node-003 (notready-3:8080): FAILED: agent is not ready (GET /ready answered 503 KEYSTORE_CORRUPT): checksum mismatch' "$FAKE/out.log"
  expect_eq "nothing written anywhere" 0 "$(calls_to ' POST ')"
  expect_eq "a refused connection is tried AGENT_ATTEMPTS times" 3 "$(calls_to '^down-2 GET /ready')"
  expect_eq "/ready tells whether the keystore has a password: no GET /keystore (which decrypts)" 0 "$(calls_to ' GET /keystore')"

  fan_out_case "ok e401" inspect_agents set_keystores
  expect_true "the 401 named as a credentials problem" \
    grep -q 'ERROR: keystore update failed on 1 of 2 node(s): node-002 (e401-2:8080): POST /keystore: agent answered 401 UNAUTHORIZED: wrong or missing cluster credentials (bad credentials)' "$FAKE/out.log"
  expect_eq "a 401 is not retried" 1 "$(calls_to '^e401-2 POST /keystore')"

  fan_out_case "ok old oldpw nohdr fresh" inspect_agents
  expect_eq "an agent whose /ready does not tell (or whose keystore's header it could not read) is asked GET /keystore" "0 1 1 1 0" \
    "$(calls_to '^ok-1 GET /keystore') $(calls_to '^old-2 GET /keystore') $(calls_to '^oldpw-3 GET /keystore') $(calls_to '^nohdr-4 GET /keystore') $(calls_to '^fresh-5 GET /keystore')"
  expect_true "and its answer counts" grep -q '1 keystore(s) have a password: each node reloads through its agent' "$FAKE/out.log"

  fan_out_case "ok e500" inspect_agents set_keystores
  expect_true "a 500 on write fails the node with the agent's code" \
    grep -q 'ERROR: keystore update failed on 1 of 2 node(s): node-002 (e500-2:8080): POST /keystore: agent answered 500 KEYSTORE_WRITE_FAILED: disk full' "$FAKE/out.log"
  expect_eq "a 500 is not retried" 1 "$(calls_to '^e500-2 POST')"

  fan_out_case "nosettings notjson" inspect_agents set_keystores
  expect_true "a 200 without the job's settings is a failure" \
    grep -q 'node node-001 (nosettings-1:8080): FAILED: agent answered 200 without the settings of client kb_t_1' "$FAKE/out.log"
  expect_true "a 200 that is not JSON is a failure" \
    grep -q 'node node-002 (notjson-2:8080): FAILED: agent answered 200 with a body that is not JSON' "$FAKE/out.log"

  AGENT_NODE_DEADLINE=2 AGENT_ATTEMPTS=10 fan_out_case "slow ok" inspect_agents
  expect_true "a slow agent fails at its node's deadline" grep -q 'node-001 (slow-1:8080): GET /ready: no answer from the agent.*: curl: (28)' "$FAKE/out.log"
  expect_true "the deadline bounds the attempts (not 10)" test "$(calls_to '^slow-1 GET /ready')" -le 2

  fan_out_case "pw ok" inspect_agents set_keystores
  expect_true "a keystore with a password: every node reloads through its agent" \
    grep -q '1 keystore(s) have a password: each node reloads through its agent' "$FAKE/out.log"
  expect_eq "both POSTs asked for the reload" 2 "$(calls_to ' POST /keystore agent-body-reload.json$')"
  expect_true "reload line per node" grep -q 'reload node-002: ok (through its agent)' "$FAKE/out.log"

  fan_out_case "reloadfail ok" inspect_agents set_keystores
  expect_true "a node refusing its reload fails the job with its reason" \
    grep -q "ERROR: keystore update failed on 1 of 2 node(s): node-001 (reloadfail-1:8080): saved, but its node refused the reload: keystore password incorrect" "$FAKE/out.log"

  fan_out_case "ok down ok" remove_keystore_client
  expect_eq "nothing written: nothing to remove" 0 "$(calls_to ' DELETE ')"
  fan_out_case "ok down ok" write_agent_body set_keystore_touched remove_keystore_client
  expect_eq "removal asks every node, with the job's client and a reload" "1 3 1" \
    "$(calls_to '^ok-1 DELETE /keystore\?client=kb_t_1&reload=true ') $(calls_to '^down-2 DELETE /keystore\?client=kb_t_1&reload=true ') $(calls_to '^ok-3 DELETE /keystore\?client=kb_t_1&reload=true ')"
  expect_true "a node where removal failed is named, with what to do" \
    grep -q 'node node-002 (down-2:8080): client kb_t_1 NOT removed: DELETE /keystore: no answer from the agent after 3 attempts: .*es-agent keystore remove s3.client.kb_t_1.access_key' "$FAKE/out.log"
  expect_true "and the job says how many nodes keep it" grep -q 'client kb_t_1 left on 1 of 3 node(s)' "$FAKE/out.log"
  expect_false "no key in any line" grep -q 'FAKE-AK\|FAKE-SK' "$FAKE/out.log"
}

# shellcheck disable=SC2034,SC2317 # read by remove_keystore_client
set_keystore_touched() {
  KEYSTORE_TOUCHED=true
}

# backup_job CODE: runs CODE with backup.sh's functions loaded, in a subshell; prints what it
# printed and 'exit N'.
backup_job() {
  (
    # shellcheck source=../../addons/elasticsearch/dataprotection/backup.sh disable=SC1091
    source "${ROOT}/addons/elasticsearch/dataprotection/backup.sh"
    eval "$1"
    echo "exit 0"
  ) 2>&1 || echo "exit $?"
}

# The closed indices of the selection, as the engine resolves it (patterns, exclusions, aliases,
# _all: here its answer is given), that the snapshot (idx1, idx2) left out fail the backup.
# shellcheck disable=SC2016 # the code runs in backup_job
test_coverage_follows_the_selection() {
  local case out
  for case in 'idx1,myal*|{"idx1":"open","cl1":"close"}|cl1' '|{"idx1":"open","cl2":"close","cl1":"close",".h":"close"}|cl1, cl2' \
    'idx*,-cl1|{"idx1":"open","idx2":"open"}|ok' 'nomatch*,idx1|{"idx1":"open"}|ok'; do
    : >"$TMP/cov-calls.log"
    out=$(SEL=${case%%|*} ANSWER=$(cut -d'|' -f2 <<<"$case") backup_job 'WORK_DIR=$TMP SNAPSHOT_NAME=b BACKUP_INDICES=$SEL BACKUP_ALLOW_PARTIAL=false
      printf "{\"snapshots\":[{\"indices\":[\"idx1\",\"idx2\"]}]}" >"$WORK_DIR/snapshot.json"
      es_call() {
        ES_REPLY=$TMP/cov.json HTTP_STATUS=200 HTTP_ERROR=""
        printf "%s\n" "$2" >>"$TMP/cov-calls.log"
        jq -n --argjson a "$ANSWER" "{metadata: {indices: (\$a | map_values({state: .}))}}" >"$ES_REPLY"
      }
      check_coverage')
    local sel=${case%%|*} want=${case##*|}
    if [[ $want == ok ]]; then
      expect_true "coverage, BACKUP_INDICES '${sel}': no closed index of it left out: ok" grep -q 'exit 0$' <<<"$out"
    else
      expect_true "coverage, BACKUP_INDICES '${sel}': fails naming ${want}" \
        grep -qF "snapshot b left out closed index(es) ${want}: the engine does not snapshot them" <<<"$out"
    fi
  done
  expect_eq "coverage: the engine resolves the selection (encoded), hidden and closed included" \
    "/_cluster/state/metadata/nomatch*%2Cidx1?expand_wildcards=all&ignore_unavailable=true&allow_no_indices=true&filter_path=metadata.indices.*.state" \
    "$(cat "$TMP/cov-calls.log")"
  out=$(backup_job 'WORK_DIR=$TMP SNAPSHOT_NAME=b BACKUP_INDICES=
      printf "{\"snapshots\":[{\"indices\":[]}]}" >"$WORK_DIR/snapshot.json"
      es_call() { echo "$2"; ES_REPLY=$TMP/cov.json HTTP_STATUS=200 HTTP_ERROR=""; echo "{}" >"$ES_REPLY"; }
      check_coverage')
  expect_true "coverage: no selection is _all" grep -q '^/_cluster/state/metadata/_all?' <<<"$out"
}

# cleanup_seeing STATE SETUP RC: backup.sh's job_cleanup after exit code RC, SETUP run first,
# the engine's snapshot in STATE (MISSING: a 404); its calls go to $TMP/bk-calls.log. Prints
# what the job printed and 'kept=' whether it left the repository and client to the engine.
# shellcheck disable=SC2016 # the code runs in backup_job
cleanup_seeing() {
  : >"$TMP/bk-calls.log"
  STATE=$1 backup_job 'WORK_DIR=$TMP REPOSITORY=kb-x SNAPSHOT_NAME=x ES_VERIFY_TIMEOUT=5 '"$2"'
    es_call() {
      ES_REPLY=$TMP/bk-reply.json HTTP_STATUS=200 HTTP_ERROR=""
      echo "$1 $2" >>"$TMP/bk-calls.log"
      if [[ $1 == GET && $STATE == MISSING ]]; then
        HTTP_STATUS=404
        printf "{\"error\":{\"type\":\"snapshot_missing_exception\"},\"status\":404}" >"$ES_REPLY"
      else
        jq -n --arg s "$STATE" "{snapshots: [{state: \$s}]}" >"$ES_REPLY"
      fi
    }
    job_cleanup '"$3"'; echo "kept=${KEEP_FOR_THE_ENGINE:-false}"'
}

# A signal, or no answer, while the start of the snapshot is in flight: what the engine made of
# it is looked for; a running one is aborted, one not listed (yet) keeps the repository and
# client for it.
test_start_in_flight_is_looked_for() {
  local state out
  for state in IN_PROGRESS MISSING; do
    out=$(cleanup_seeing "$state" SNAPSHOT_START_IN_FLIGHT=true 1)
    if [[ $state == IN_PROGRESS ]]; then
      expect_eq "a start in flight that the engine took: aborted at the exit" "GET /_snapshot/kb-x/x|DELETE /_snapshot/kb-x/x" \
        "$(paste -sd'|' "$TMP/bk-calls.log")"
      expect_true "(and the keys removed as usual)" grep -q "kept=false" <<<"$out"
    else
      expect_true "a start in flight the engine does not list: it may still start, said so" \
        grep -q "the start of snapshot x had no answer when the job ended, and the engine does not list it: it may still start" <<<"$out"
      expect_true "a start in flight the engine does not list: repository and client left to it" grep -q "kept=true" <<<"$out"
    fi
  done
}

test_stopped_backup_keeps_an_ended_snapshot() {
  local out state
  for state in SUCCESS IN_PROGRESS; do
    out=$(cleanup_seeing "$state" SNAPSHOT_STARTED=true 143)
    if [[ $state == SUCCESS ]]; then
      expect_true "stopped after its snapshot ended: it is kept, saying so" \
        grep -q "snapshot x had ended SUCCESS when the job was stopped: it is kept, not aborted" <<<"$out"
      expect_eq "stopped after its snapshot ended: only read, not deleted" "GET /_snapshot/kb-x/x" "$(paste -sd'|' "$TMP/bk-calls.log")"
    else
      expect_true "stopped while its snapshot runs: aborted" grep -q "snapshot x aborted (the job was stopped)" <<<"$out"
      expect_eq "stopped while its snapshot runs: read, then deleted" "GET /_snapshot/kb-x/x|DELETE /_snapshot/kb-x/x" \
        "$(paste -sd'|' "$TMP/bk-calls.log")"
    fi
  done
}

# shellcheck disable=SC2016 # the code runs in backup_job
test_backup_options() {
  local out
  out=$(backup_job 'BACKUP_INDICES="logs-*,-logs-old,metrics" BACKUP_INCLUDE_GLOBAL_STATE=False BACKUP_ALLOW_PARTIAL=yes
    BACKUP_SERVER_SIDE_ENCRYPTION=true BACKUP_STORAGE_CLASS=standard_ia BACKUP_CANNED_ACL=bucket-owner-full-control
    MAX_SNAPSHOT_BYTES_PER_SEC=40MB
    validate_backup_options
    echo "$BACKUP_INCLUDE_GLOBAL_STATE $BACKUP_ALLOW_PARTIAL $REPOSITORY_EXTRA_SETTINGS"')
  expect_eq "options: booleans normalised, repository settings built" \
    "false true {\"server_side_encryption\":true,\"storage_class\":\"standard_ia\",\"canned_acl\":\"bucket-owner-full-control\"}
exit 0" "$out"
  local bad
  for bad in 'BACKUP_INCLUDE_GLOBAL_STATE=maybe|option BACKUP_INCLUDE_GLOBAL_STATE '"'"'maybe'"'"' is not true or false' \
    'BACKUP_ALLOW_PARTIAL=2|option BACKUP_ALLOW_PARTIAL '"'"'2'"'"' is not true or false' \
    'BACKUP_INDICES="a b"|option BACKUP_INDICES: '"'"'a b'"'"' is not an index or data stream name or pattern' \
    'BACKUP_INDICES="a,,b"|option BACKUP_INDICES '"'"'a,,b'"'"' has an empty item' \
    'BACKUP_INDICES="x/y"|option BACKUP_INDICES: '"'"'x/y'"'"' is not an index' \
    'BACKUP_FEATURE_STATES="geoip,a b"|option BACKUP_FEATURE_STATES: '"'"'a b'"'"' is not a feature state name' \
    'BACKUP_STORAGE_CLASS=glacier|option BACKUP_STORAGE_CLASS '"'"'glacier'"'"' is not one of: standard reduced_redundancy' \
    'BACKUP_CANNED_ACL=public|option BACKUP_CANNED_ACL '"'"'public'"'"' is not one of: private' \
    'BACKUP_SERVER_SIDE_ENCRYPTION=aes|option BACKUP_SERVER_SIDE_ENCRYPTION '"'"'aes'"'"' is not true or false' \
    'MAX_SNAPSHOT_BYTES_PER_SEC=fast|option MAX_SNAPSHOT_BYTES_PER_SEC '"'"'fast'"'"' is not a byte rate' \
    'BACKUP_TIMEOUT=0|option BACKUP_TIMEOUT '"'"'0'"'"' is not a positive number of seconds'; do
    out=$(backup_job "${bad%%|*}; validate_backup_options")
    expect_true "options: ${bad%%|*} refused, naming it" grep -qF "ERROR: ${bad#*|}" <<<"$out"
    expect_true "options: ${bad%%|*} stops the job" grep -q 'exit 1$' <<<"$out"
  done
  out=$(backup_job 'BACKUP_FEATURE_STATES=none ENGINE_DISTRIBUTION=opensearch ENGINE_VERSION=3.6.0; job_preflight')
  expect_true "feature states on OpenSearch: refused" grep -q 'BACKUP_FEATURE_STATES needs Elasticsearch 7.12 or newer; this cluster runs opensearch 3.6.0' <<<"$out"
  out=$(backup_job 'BACKUP_FEATURE_STATES=none ENGINE_DISTRIBUTION=elasticsearch ENGINE_VERSION=7.11.2; job_preflight')
  expect_true "feature states on Elasticsearch 7.11: refused" grep -q 'this cluster runs elasticsearch 7.11.2' <<<"$out"
  out=$(backup_job 'BACKUP_FEATURE_STATES=none ENGINE_DISTRIBUTION=elasticsearch ENGINE_VERSION=7.12.0; job_preflight')
  expect_eq "feature states on Elasticsearch 7.12: accepted" "exit 0" "$out"
}

# shellcheck disable=SC2016 # the code runs in backup_job
test_snapshot_request_and_follow() {
  local out
  # The snapshot request, from the options.
  out=$(backup_job 'WORK_DIR=$TMP BACKUP_NAME=b NAMESPACE=ns KB_CLUSTER_NAME=c REPOSITORY=kb-b SNAPSHOT_NAME=b
    BACKUP_INDICES="a*,-a-old" BACKUP_FEATURE_STATES="geoip,security" BACKUP_INCLUDE_GLOBAL_STATE=false BACKUP_ALLOW_PARTIAL=true
    snapshot_info() { SNAPSHOT_STATE=MISSING; }
    es_call() { cp "$3" "$TMP/snapshot-sent.json"; HTTP_STATUS=200 HTTP_ERROR=""; }
    log() { :; }
    start_snapshot
    jq -cS . "$TMP/snapshot-sent.json"' | sed -n 1p)
  expect_eq "snapshot request: indices, feature states, global state, partial, metadata" \
    '{"feature_states":["geoip","security"],"include_global_state":false,"indices":"a*,-a-old","metadata":{"backup":"b","cluster":"c","namespace":"ns","taken_by":"kubeblocks"},"partial":true}' "$out"

  # The Backup's UID, from its pod's name; a snapshot taken for another Backup of the name.
  expect_eq "backup uid: from a KubeBlocks backup pod's name" 0a1b2c3d \
    "$(backup_job 'BACKUP_NAME=my-b HOSTNAME=dp-backup-0-my-b-0a1b2c3d-x7k2p backup_uid' | sed "s/exit 0$//")"
  expect_eq "backup uid: a name cut at 63 characters says nothing" "" \
    "$(backup_job 'BACKUP_NAME=my-b HOSTNAME=dp-backup-0-my-b-0a1b-x7k2p backup_uid' | sed "s/exit 0$//")"
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b BACKUP_NAME=b HOSTNAME=dp-backup-0-b-0a1b2c3d-x7k2p
      snapshot_info() { SNAPSHOT_STATE=SUCCESS; printf "{\"snapshots\":[{\"metadata\":{\"backup_uid\":\"99999999\"}}]}" >"$WORK_DIR/snapshot.json"; }
      start_snapshot; echo "done=$SNAPSHOT_DONE"')
  expect_true "another Backup's snapshot of the name: refused, saying why" \
    grep -qF "snapshot b at this Backup's path was taken for another Backup of the same name (UID 99999999..., this one's 0a1b2c3d..." <<<"$out"
  expect_false "another Backup's snapshot of the name: not the result" grep -q "done=true" <<<"$out"
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b BACKUP_NAME=b HOSTNAME=dp-backup-0-b-0a1b2c3d-x7k2p
      snapshot_info() { SNAPSHOT_STATE=SUCCESS; printf "{\"snapshots\":[{\"metadata\":{\"backup_uid\":\"0a1b2c3d\"}}]}" >"$WORK_DIR/snapshot.json"; }
      log() { :; }
      start_snapshot; echo "done=$SNAPSHOT_DONE"')
  expect_true "this Backup's own earlier snapshot: the result" grep -q "done=true" <<<"$out"

  # Another attempt started it between this one's read and its request (the engine's answer
  # as OpenSearch 3.6 gives it): followed, not failed.
  out=$(backup_job 'WORK_DIR=$TMP BACKUP_NAME=b NAMESPACE=ns REPOSITORY=kb-b SNAPSHOT_NAME=b BACKUP_INCLUDE_GLOBAL_STATE=true BACKUP_ALLOW_PARTIAL=false
    N=0
    snapshot_info() { N=$((N + 1)); if ((N == 1)); then SNAPSHOT_STATE=MISSING; else SNAPSHOT_STATE=IN_PROGRESS; fi; }
    es_call() {
      HTTP_STATUS=400 HTTP_ERROR="" ES_REPLY="$TMP/start-reply.json"
      printf "%s" "{\"error\":{\"type\":\"invalid_snapshot_name_exception\",\"reason\":\"[kb-b:b] Invalid snapshot name [b], snapshot with the same name is already in-progress\"},\"status\":400}" >"$ES_REPLY"
    }
    start_snapshot; echo "started=$SNAPSHOT_STARTED taken=${SNAPSHOT_TAKEN_OVER:-false}"')
  expect_true "started at the same moment by another attempt: said" grep -qF "snapshot b was started by another attempt of this Backup at the same moment" <<<"$out"
  expect_true "started at the same moment by another attempt: followed" grep -qx "started=true taken=true" <<<"$out"

  # A snapshot left by an earlier attempt.
  local state want
  for state in 'SUCCESS|taking it as the result|exit 0' 'FAILED|ended FAILED: disk broke; it is left in place|exit 1' \
    'PARTIAL|ended PARTIAL: disk broke; it is left in place|exit 1' 'INCOMPATIBLE|ended INCOMPATIBLE|exit 1' \
    'IN_PROGRESS|already running (an earlier attempt of this Backup): following it|exit 0'; do
    out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b
      snapshot_info() { SNAPSHOT_STATE='"${state%%|*}"'; printf "{\"snapshots\":[{\"reason\":\"disk broke\"}]}" >"$WORK_DIR/snapshot.json"; }
      es_ok() { echo "STARTED A NEW ONE"; }
      es_call() { echo "CALLED $1 $2"; }
      start_snapshot')
    want=${state#*|}
    expect_true "earlier snapshot ${state%%|*}: ${want%|*}" grep -qF "${want%|*}" <<<"$out"
    expect_true "earlier snapshot ${state%%|*}: ${want##*|}" grep -q "${want##*|}$" <<<"$out"
    expect_false "earlier snapshot ${state%%|*}: neither deleted nor started again" grep -q 'STARTED A NEW ONE\|CALLED DELETE' <<<"$out"
  done
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b ES_VERIFY_TIMEOUT=30 N=0
      snapshot_info() {
        N=$((N + 1))
        if ((N < 3)); then SNAPSHOT_STATE=FAILED; else SNAPSHOT_STATE=MISSING; fi
        printf "{\"snapshots\":[{\"reason\":\"Snapshot was aborted by deletion\"}]}" >"$WORK_DIR/snapshot.json"
      }
      sleep_s() { :; }
      take_over_snapshot; echo "rc=$? reads=$N"')
  expect_true "earlier snapshot being deleted (aborted): said" \
    grep -q "snapshot b, left by an earlier attempt, is being deleted (aborted): waiting up to 30s for its deletion to end" <<<"$out"
  expect_true "earlier snapshot being deleted: once gone, none to take over (a new one is taken)" grep -q "^rc=1 reads=3$" <<<"$out"
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b ES_VERIFY_TIMEOUT=2
      snapshot_info() {
        SNAPSHOT_STATE=FAILED
        printf "{\"snapshots\":[{\"reason\":\"Snapshot was aborted by deletion\"}]}" >"$WORK_DIR/snapshot.json"
      }
      sleep_s() { sleep 0.2; }
      take_over_snapshot; echo "rc=$?"')
  expect_true "earlier snapshot never deleted: the wait ends, the job fails saying so" \
    grep -q "snapshot b, left by an earlier attempt, is still being deleted after 2s (the engine cannot delete its files?" <<<"$out"
  expect_true "(exit 1, no new snapshot)" grep -q 'exit 1$' <<<"$out"
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b BACKUP_ALLOW_PARTIAL=true
      snapshot_info() { SNAPSHOT_STATE=PARTIAL; printf "{\"snapshots\":[{\"reason\":\"one shard missing\"}]}" >"$WORK_DIR/snapshot.json"; }
      start_snapshot; echo "done=$SNAPSHOT_DONE"')
  expect_true "earlier PARTIAL snapshot with partial allowed: the result" grep -q 'done=true' <<<"$out"

  # Following: fast polls first, backing off to POLL_INTERVAL; progress on its own clock.
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b POLL_INTERVAL=2 PROGRESS_INTERVAL=1 BACKUP_TIMEOUT=60
      N=0
      snapshot_info() { N=$((N + 1)); if ((N < 13)); then SNAPSHOT_STATE=IN_PROGRESS; else SNAPSHOT_STATE=SUCCESS; fi; }
      sleep_ms() { echo "sleep $1"; FAKE_NOW=$((FAKE_NOW + $1)); }
      FAKE_NOW=1000000
      now_ms() { echo "$FAKE_NOW"; }
      report_progress() { echo "progress"; }
      follow_snapshot; echo "polls=$N"')
  expect_eq "follow: sleeps 100 ms six times, then doubling, each pause cut short by the progress clock" \
    "100 100 100 100 100 100 200 200 800 200 1000 1000" "$(grep -o '^sleep [0-9]*' <<<"$out" | cut -d' ' -f2 | paste -sd' ')"
  expect_true "follow: a progress line every PROGRESS_INTERVAL" test "$(grep -c '^progress' <<<"$out")" -ge 3
  expect_true "follow: ends at SUCCESS" grep -q 'snapshot b: SUCCESS after' <<<"$out"
  # A taken-over snapshot that its earlier attempt aborted: FAILED ("aborted by deletion")
  # while the deletion runs, then gone: taken anew, once. A FAILED of another cause fails.
  local reason
  for reason in 'Snapshot was aborted by deletion' 'disk broke'; do
    out=$(REASON=$reason backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b POLL_INTERVAL=1 PROGRESS_INTERVAL=100 BACKUP_TIMEOUT=60 ES_VERIFY_TIMEOUT=120
      SNAPSHOT_TAKEN_OVER=true N=0
      snapshot_info() {
        N=$((N + 1))
        case $N in 1 | 2) SNAPSHOT_STATE=FAILED ;; 3) SNAPSHOT_STATE=MISSING ;; *) SNAPSHOT_STATE=SUCCESS ;; esac
        jq -n --arg r "$REASON" "{snapshots: [{reason: \$r}]}" >"$WORK_DIR/snapshot.json"
      }
      start_snapshot() { echo "TAKEN AGAIN"; }
      sleep_ms() { :; }
      follow_snapshot')
    if [[ $reason == *aborted* ]]; then
      expect_true "follow: a taken-over snapshot aborted by its attempt: said" \
        grep -q "snapshot b, taken over from an earlier attempt, was aborted (Snapshot was aborted by deletion): waiting for its deletion to end, then taking it again" <<<"$out"
      expect_eq "follow: once its deletion ended, taken anew (once)" 1 "$(grep -c '^TAKEN AGAIN$' <<<"$out")"
      expect_true "follow: and that one followed to SUCCESS" grep -q 'snapshot b: SUCCESS after' <<<"$out"
    else
      expect_true "follow: a taken-over snapshot FAILED otherwise: the job fails" grep -q 'ERROR: snapshot b ended FAILED: disk broke' <<<"$out"
      expect_false "follow: not taken again" grep -q 'TAKEN AGAIN' <<<"$out"
    fi
  done
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b MAX_POLL_ERRORS=3 POLL_INTERVAL=1 PROGRESS_INTERVAL=100 BACKUP_TIMEOUT=60
      snapshot_info() { HTTP_ERROR="curl: (7) Failed to connect"; return 1; }
      sleep_ms() { :; }
      follow_snapshot')
  expect_true "follow: an unreachable cluster fails the job, never a success" grep -q 'status unreadable 3 times in a row; its final state is unknown' <<<"$out"
  # The engine's answer when the repository was unregistered under the job.
  out=$(backup_job 'WORK_DIR=$TMP REPOSITORY=kb-b SNAPSHOT_NAME=b MAX_POLL_ERRORS=3 POLL_INTERVAL=1 PROGRESS_INTERVAL=100 BACKUP_TIMEOUT=60
      REPOSITORY_REGISTERED=true
      snapshot_info() { HTTP_ERROR="" HTTP_STATUS=404 ES_REPLY=$WORK_DIR/r.json
        printf "{\"error\":{\"type\":\"repository_missing_exception\",\"reason\":\"[kb-b] missing\"},\"status\":404}" >"$ES_REPLY"; return 1; }
      keep_for_the_engine() { echo KEPT; }
      sleep_ms() { :; }
      trap "echo registered=\$REPOSITORY_REGISTERED" EXIT
      follow_snapshot')
  expect_true "follow: a repository gone under the job stops it at once, saying why" \
    grep -q 'ERROR: repository kb-b was unregistered while this job followed snapshot b: another attempt of this Backup' <<<"$out"
  expect_false "follow: and nothing is said to be left to the engine" grep -q 'KEPT\|unreadable' <<<"$out"
  expect_true "follow: nor unregistered again at the exit" grep -q 'registered=false' <<<"$out"
  expect_true "follow: exit 1" grep -q 'exit 1$' <<<"$out"
}

# shellcheck disable=SC2034,SC2317 # globals read by common.sh; stubs called by it
test_verification_on_every_node() {
  local d="$TMP/verify" out
  mkdir -p "$d"
  printf 'idA\tes-0\t10.0.0.4\ttrue\nidB\tes-1\t10.0.0.5\tfalse\nidC\tes-2\t10.0.0.6\ttrue\n' >"$d/nodes.tsv"
  : >"$d/calls.log"
  out=$( (
    WORK_DIR="$d" REPOSITORY=kb-x ES_VERIFY_TIMEOUT=1 ENGINE_DISTRIBUTION=opensearch S3_PROTOCOL=http
    S3_BUCKET=b REPO_BASE_PATH=p S3_CLIENT=c S3_ENDPOINT=http://s3 S3_REGION=r S3_PATH_STYLE=true
    # The engine: no repository yet, any PUT taken, _verify answering VERIFIED.
    es_call() {
      ES_REPLY="$d/reply.json" HTTP_ERROR=''
      printf '%s %s\n' "$1" "$2" >>"$d/calls.log"
      case $1 in
        GET) HTTP_STATUS=404; printf '{}' >"$ES_REPLY" ;;
        PUT) HTTP_STATUS=200; printf '{"acknowledged":true}' >"$ES_REPLY" ;;
        POST) HTTP_STATUS=200; printf '%s' "$VERIFIED" >"$ES_REPLY" ;;
      esac
    }
    VERIFIED='{"nodes":{"idA":{"name":"es-0"},"idC":{"name":"es-2"}}}'
    register_repository false true
    REPOSITORY_OWNED=false
    VERIFIED='{"nodes":{"idA":{"name":"es-0"}}}'
    register_repository false true
  ) 2>&1 || true)
  expect_true "verification: every master/data node listed: ok" \
    grep -q 'repository kb-x verified by all 2 master-eligible and data nodes (es-0,es-2)' <<<"$out"
  expect_true "verification: a node missing from the list stops the job, named" \
    grep -q 'ERROR: verification of repository kb-x on every node: node(s) es-2 did not verify it' <<<"$out"
  expect_eq "verification: done once, by _verify (the PUT does not verify too)" \
    "GET /_snapshot/kb-x|PUT /_snapshot/kb-x?verify=false|POST /_snapshot/kb-x/_verify" \
    "$(head -n 3 "$d/calls.log" | paste -sd'|')"
}

# shellcheck disable=SC2034 # SECRET_VALUES is read by redact
test_hostile_configs() {
  local f="$TMP/hostile.conf" out
  printf '\xef\xbb\xbf[storage]\r\ntype = s3\r\n' >"$f"
  expect_eq "a byte order mark and CRLF do not hide the section" "s3" "$(ini_get "$f" storage type)"
  out=$( (split_root "bucket/../x") 2>&1 || true)
  expect_true "a root with '..' is refused" grep -q "holds '..'" <<<"$out"
  out=$(SECRET_VALUES=(AKIA1 AKIA1SECRETPART) && redact "x AKIA1SECRETPART y AKIA1")
  expect_eq "a secret that holds another is hidden whole" "x *** y ***" "$out"
  printf '[storage]\ntype = s3\naccess_key_id = TRACEDKEY\nsecret_access_key = TRACEDSECRET\nroot = b\n' \
    >"$TMP/traced.conf"
  out=$(DP_DB_HOST=127.0.0.1 DP_DB_PORT=1 DP_DB_USER=u DP_DB_PASSWORD=TRACEDPASSWORD \
    DP_BACKUP_NAME=traced DP_BACKUP_BASE_PATH=/ns/traced DP_BACKUP_INFO_FILE="$TMP/traced.info" \
    DATASAFED_CONF="$TMP/traced.conf" ES_CONNECT_TIMEOUT=1 \
    bash -x "$ROOT/addons/elasticsearch/dataprotection/backup.sh" 2>&1 </dev/null || true)
  expect_false "bash -x prints no secret of the job" grep -q -E "TRACED(KEY|SECRET|PASSWORD)" <<<"$out"
}

# wait_case LOG NAMES_PER_REQUEST DONE_AT: restore.sh's wait_for_primaries against a stub
# engine where index a (2 primaries) is done at once and b (3 primaries) from health read
# DONE_AT on; every read's path and every pause go to LOG. Prints the job's output.
# shellcheck disable=SC2034,SC2317 # globals read by restore.sh; stubs called by it
wait_case() {
  local log=$1 names=$2 done_at=$3
  : >"$log"
  (
    # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
    source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
    WORK_DIR=$(dirname "$log") NAMES_PER_REQUEST=$names POLL_INTERVAL=3 PROGRESS_INTERVAL=1000
    RESTORE_TIMEOUT=60 RESTORE_START=$SECONDS RESTORE_UNREACHABLE_TIMEOUT=60 ES_TIMEOUT=5 SNAPSHOT_NAME=s1
    es_call() {
      printf '%s\n' "$2" >>"$log"
      ES_REPLY="$WORK_DIR/health.json" HTTP_STATUS=200 HTTP_ERROR=''
      if [[ $done_at == refused ]]; then
        HTTP_STATUS=400
        printf '%s\n' '{"error":{"type":"too_long_http_line_exception","reason":"An HTTP line is larger than 4096 bytes."}}' >"$ES_REPLY"
        return 0
      fi
      # b: one primary of three active; from the third read a replica of it is active too.
      local reads b_active=1 b_shards=1
      reads=$(grep -c health "$log")
      ((reads < 3)) || b_shards=2
      ((reads < done_at)) || b_active=3 b_shards=3
      jq -n --argjson b "$b_active" --argjson s "$b_shards" '{indices: {a: {status: "yellow", number_of_shards: 2, active_primary_shards: 2, active_shards: 2},
        b: {status: "yellow", number_of_shards: 3, active_primary_shards: $b, active_shards: $s}}}' >"$ES_REPLY"
    }
    sleep_ms() { printf 'pause %s\n' "$1" >>"$log"; }
    # A clock of the test's own, 10 ms a logged call or pause: what the rounds took does not
    # depend on how loaded the machine is.
    now_ms() { printf '%d' "$(($(wc -l <"$log") * 10))"; }
    wait_for_primaries
  ) 2>&1 || true
}

# shellcheck disable=SC2016 # awk programs
test_restore_wait_for_primaries() {
  local d="$TMP/wait" out
  mkdir -p "$d"
  printf 'a\nb\n' >"$d/watch.txt"
  # b restoring for five reads; a replica becomes active at the third.
  out=$(wait_case "$d/calls.log" 100 6)
  expect_true "wait: done when every primary is active" grep -q 'every restored primary shard is active (2 index(es), [0-9]*s, 6 health read(s))' <<<"$out"
  local held="/_cluster/health/b?wait_for_status=yellow&wait_for_active_shards=3&timeout=3s&level=indices&expand_wildcards=all"
  local held2="/_cluster/health/b?wait_for_status=yellow&wait_for_active_shards=4&timeout=3s&level=indices&expand_wildcards=all"
  expect_eq "wait: the first read asks for yellow only; later ones for the shards active once the pending primaries are (one more than now), held up to POLL_INTERVAL; a read after progress follows at once, one without pauses" \
    "/_cluster/health/a,b?wait_for_status=yellow&timeout=3s&level=indices&expand_wildcards=all|$held|$held|$held2|pause|$held2|pause|$held2" \
    "$(sed -E 's/^pause [0-9]+$/pause/' "$d/calls.log" | paste -sd'|')"
  # The rest of 0.25 s, then of 0.5 s, after what the rounds took.
  expect_true "wait: the pauses back off, each the rest after its round's read" awk '/^pause/ { n++; if ($2 != (n == 1 ? 240 : 490)) bad = 1 } END { exit bad || n != 2 }' "$d/calls.log"
  # One name a request, both done at once: only the round's first read is held.
  wait_case "$d/calls2.log" 1 1 >/dev/null
  expect_eq "wait: in a round of several requests only the first is held" \
    "/_cluster/health/a?wait_for_status=yellow&timeout=3s&level=indices&expand_wildcards=all|/_cluster/health/b?wait_for_status=yellow&timeout=0s&level=indices&expand_wildcards=all" \
    "$(grep health "$d/calls2.log" | paste -sd'|')"
}

# A health read the engine refuses (HTTP 400) stops the wait at once with the engine's cause,
# instead of counting as an unreachable cluster until RESTORE_UNREACHABLE_TIMEOUT.
test_restore_wait_stops_on_a_refused_read() {
  local d="$TMP/wait-refused" out
  mkdir -p "$d"
  printf 'a\nb\n' >"$d/watch.txt"
  out=$(wait_case "$d/calls.log" 100 refused)
  expect_true "wait: a refused health read stops the job, naming the engine's cause" \
    grep -qF "the engine refused the health read of a...: HTTP 400: too_long_http_line_exception: An HTTP line is larger than 4096 bytes." <<<"$out"
  expect_eq "wait: after one read, not retried" 1 "$(grep -c health "$d/calls.log")"
}

# Batches of names for URLs: at most NAMES_PER_REQUEST names and 3000 bytes percent-encoded.
test_names_in_batches() {
  local out
  out=$(
    # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
    source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
    f=$(mktemp)
    local i
    for ((i = 1; i <= 45; i++)); do printf 'i-%03d-%090d\n' "$i" 0; done >"$f"
    names_in_batches "$f" | awk -F, '{ printf "%d names %d bytes;", NF, length($0) }'
    # A name of 60 two-byte characters is 360 bytes once encoded: 8 fit in 3000.
    for ((i = 1; i <= 9; i++)); do printf '%s-%d\n' "$(printf 'é%.0s' {1..60})" "$i"; done >"$f"
    names_in_batches "$f" | awk -F, '{ printf "%d;", NF }'
    printf 'a\n\nb\nc\n' >"$f"
    NAMES_PER_REQUEST=2 names_in_batches "$f" | paste -sd'|'
    rm -f "$f"
  )
  expect_eq "batches: by count and by encoded size, blank lines skipped" \
    "30 names 2909 bytes;15 names 1454 bytes;8;1;a,b|c" "$out"
}

# Index names reach URL paths percent-encoded: "x%2a" stays that index, never the pattern x*.
test_index_names_in_urls() {
  local out
  out=$(
    # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
    source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
    uri_names 'x%2a,ab+c,é-1,k=v&y,plain.name_1'
  )
  expect_eq "names in a URL: each percent-encoded, commas kept" 'x%252a,ab%2Bc,%C3%A9-1,k%3Dv%26y,plain.name_1' "$out"
}

# The rename patterns both the job's plan (jq) and the engine (Java) read alike, and
# replacements that refer only to groups the pattern has.
# shellcheck disable=SC2016 # $1 and the like are the engine's, not the shell's
test_rename_subset() {
  rename_case() {
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      # shellcheck disable=SC2034 # read by check_rename_subset
      RESTORE_RENAME_PATTERN=$1 RESTORE_RENAME_REPLACEMENT=$2
      check_rename_subset
      echo "accepted"
    ) 2>&1 || true
  }
  local c
  # Accepted: a case is PATTERN|REPLACEMENT (a | of the pattern as '\|').
  for c in '^r-(.+)$|copy-$1' '(.+)|restored-$0-$1' 'logs-([0-9]+)\.([a-z]+)|l-$2-$1' '^(?:ab)-(x)$|$1' '[a-z]+|z' \
    '[(]a(b)|$1' '[a-]x|z' '[-a]x|z' '[^a\]\-]+|z' '[é-ú]+|z' 'é+-(.)|$1' '(a+){2}(b\|c)|$2' 'a{2}?b{1,3}c{2,}?|z' \
    '()a|$1' '(?:a\|b)+c|z' 'a&b|z' '(a)(b)(c)(d)(e)(f)(g)(h)(i)|$9'; do
    c=${c//'\|'/$'\x1f'}
    local re=${c%%|*}
    re=${re//$'\x1f'/|}
    expect_true "rename '${re}' -> '${c#*|}': accepted" grep -qx accepted <<<"$(rename_case "$re" "${c#*|}")"
  done
  # Refused: a case is PATTERN|REPLACEMENT|what the message must say (a | of the pattern as '\|').
  for c in '^[[:alpha:]]+$|copy-$0|a [ inside a [...] set' '\p{L}+|x|a backslash escape other than of punctuation' \
    '(?i)abc|x|a (? construct other than (?:' '(?<n>a)|x|a (? construct other than (?:' \
    '\Qa\E|x|a backslash escape other than' 'logs-(\d+)|l-$1|a backslash escape other than' \
    '^(\w+)$|copy-$1|a backslash escape other than' '$|-copy|a match of the empty string' \
    '(.*)|copy-$1|a match of the empty string' 'a*|x|a match of the empty string' \
    '(.+)|restored-$1$2|refers to group 2, but RESTORE_RENAME_PATTERN has 1' \
    '\(x\)|$1|refers to group 1, but RESTORE_RENAME_PATTERN has 0' \
    '(.+)|a$b|has a $ that is not a group reference' '(.+)|a\1|has a backslash' \
    '(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)|x$12|has 12 capturing groups, more than the 9' \
    '[a&&b]|z|has && in a [...] set' '[a-c&&[b]]|z|has && in a [...] set' '[!-&&b]|z|has && in a [...] set' \
    '[[a]b]|z|has a [ inside a [...] set' '[a[b]|z|has a [ inside a [...] set' \
    'a{1,}{2}|z|has a quantifier on a quantifier' 'a+*|z|has a quantifier on a quantifier' 'a*??|z|has a quantifier on a quantifier' \
    'a*+|z|has a possessive quantifier' 'a++|z|has a possessive quantifier' 'a?+|z|has a possessive quantifier' \
    '[(](a)|$2|refers to group 2, but RESTORE_RENAME_PATTERN has 1' '[(]x|$1|refers to group 1, but RESTORE_RENAME_PATTERN has 0' \
    '(a*)(a*){2}}*[a-]+?|$0|has a quantifier on a group that can match the empty string' \
    '(a*)(a*){2}[a-]+?|$0|has a quantifier on a group that can match the empty string' \
    '(a\|)+b|z|has a quantifier on a group that can match the empty string' \
    '(?:.(.))+.|<$1>|has a quantifier on a group that holds a capturing group' \
    '((a)b){2}|$2|has a quantifier on a group that holds a capturing group' \
    '{2}a|z|has a quantifier at the start of the pattern, a group or an alternative' \
    '(+a)|z|has a quantifier at the start' 'a\|*b|z|has a quantifier at the start' '^*a|z|has a quantifier on an anchor' \
    'a{x}|z|has a { that is not a quantifier' 'a{,2}|z|has a { that is not a quantifier' 'a{1000}|z|has a { that is not a quantifier' \
    'a{3,2}|z|with m below n' 'a}|z|has a } that closes no quantifier' 'a]|z|has a ] that closes no [...] set' \
    '[]a]|z|has a ] first in a [...] set' '[^]]|z|has a ] first in a [...] set' '[a-c-e]|z|has a - in a [...] set that is neither' \
    '[a-\]]|z|a range in a [...] set that does not end in a plain character' '(a|z|has a ( that is not closed' \
    'a)|z|has a ) that closes no group' '[ab|z|has a [ that is not closed' 'a\ b|z|a backslash escape other than'; do
    c=${c//'\|'/$'\x1f'}
    local re=${c%%|*} rest=${c#*|}
    re=${re//$'\x1f'/|}
    expect_true "rename '${re}' -> '${rest%%|*}': refused, saying ${rest#*|}" \
      grep -qF -- "${rest#*|}" <<<"$(rename_case "$re" "${rest%%|*}")"
  done
}

# TEST DOUBLE, declared as such: OpenSearch's ISM (the index-management plugin is published
# nowhere this machine reaches), as a stub of the engine's answers: its plugin list and the
# cluster settings, which PUT _cluster/settings changes as the engine does (null removes).
# shellcheck disable=SC2016,SC2030,SC2034,SC2317 # jq programs; globals read by restore.sh; stubs
test_ism_paused_and_put_back() {
  local d="$TMP/ism" out
  mkdir -p "$d"
  ism_case() {
    printf '%s' "$2" >"$d/settings.json"
    : >"$d/calls.log"
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      WORK_DIR=$d ENGINE_DISTRIBUTION=opensearch ES_VERIFY_TIMEOUT=5 PAUSED_FEATURES=()
      es_call() {
        ES_REPLY="$d/reply.json" HTTP_STATUS=200 HTTP_ERROR=''
        printf '%s %s %s\n' "$1" "${2%%\?*}" "$([[ -n ${3:-} ]] && jq -c . "$3")" >>"$d/calls.log"
        case $1:${2%%\?*} in
          GET:/_cat/plugins) jq -n --arg p "$1" '[{component: "opensearch-job-scheduler"}] + (if env.PLUGIN == "yes" then [{component: "opensearch-index-management"}] else [] end)' >"$ES_REPLY" ;;
          GET:/_cluster/settings) cp "$d/settings.json" "$ES_REPLY" ;;
          PUT:/_cluster/settings)
            if [[ -n ${PUT_STATUS:-} ]]; then
              HTTP_STATUS=$PUT_STATUS
              printf '{"error":{"type":"security_exception","reason":"no permission (test)"},"status":%s}' "$PUT_STATUS" >"$ES_REPLY"
              return 0
            fi
            jq --slurpfile b "$3" 'reduce ($b[0] | to_entries[]) as $s (.; reduce ($s.value | to_entries[]) as $kv (.;
                if $kv.value == null then del(.[$s.key][$kv.key]) else .[$s.key][$kv.key] = ($kv.value | tostring) end))' \
              "$d/settings.json" >"$d/settings.new" && mv "$d/settings.new" "$d/settings.json"
            printf '{"acknowledged":true}' >"$ES_REPLY" ;;
        esac
      }
      trap 'echo "paused=${#PAUSED_FEATURES[@]}"' EXIT
      pause_features
      jq -c . "$d/settings.json" >"$d/during.json"
      resume_features
      echo "exit 0"
    ) 2>&1 || echo "exit $?"
  }
  local k=plugins.index_state_management.enabled
  out=$(PLUGIN=yes ism_case absent '{"persistent":{},"transient":{}}')
  expect_true "ISM, setting absent: paused persistently" grep -q "ISM: was persistent ${k}=null, set false for the restore" <<<"$out"
  expect_eq "ISM, setting absent: false during the restore" "{\"persistent\":{\"${k}\":\"false\"},\"transient\":{}}" "$(cat "$d/during.json")"
  expect_eq "ISM, setting absent: removed again after it" '{"persistent":{},"transient":{}}' "$(jq -c . "$d/settings.json")"
  out=$(PLUGIN=yes ism_case transient "{\"persistent\":{\"${k}\":\"false\"},\"transient\":{\"${k}\":\"true\"}}")
  expect_true "ISM, a transient true (which wins): paused there" grep -q "ISM: was transient ${k}=\"true\", set false for the restore" <<<"$out"
  expect_eq "ISM, transient: put back as it was, the persistent value untouched" \
    "{\"persistent\":{\"${k}\":\"false\"},\"transient\":{\"${k}\":\"true\"}}" "$(jq -c . "$d/settings.json")"
  out=$(PLUGIN=yes PUT_STATUS=403 ism_case refused '{"persistent":{},"transient":{}}')
  expect_true "ISM, pause refused (403): the job stops, naming the refusal" grep -q "ERROR: pausing ISM: engine answered HTTP 403: security_exception: no permission" <<<"$out"
  expect_true "ISM, pause refused: nothing changed, so nothing to put back" grep -q "paused=0" <<<"$out"
  out=$(PLUGIN=yes PUT_STATUS=503 ism_case unclear '{"persistent":{},"transient":{}}')
  expect_true "ISM, pause answered 503: it may have taken effect, so it is put back at the exit" grep -q "paused=1" <<<"$out"
  out=$(PLUGIN=yes PUT_STATUS=429 ism_case late '{"persistent":{},"transient":{}}')
  expect_true "ISM, pause answered 429 (the change may be written before it): put back at the exit" grep -q "paused=1" <<<"$out"
  out=$(PLUGIN=yes PUT_STATUS=408 ism_case timeout '{"persistent":{},"transient":{}}')
  expect_true "ISM, pause answered 408: put back at the exit" grep -q "paused=1" <<<"$out"
  out=$(PLUGIN=yes ism_case off "{\"persistent\":{\"${k}\":\"false\"},\"transient\":{}}")
  expect_true "ISM, off already: left as it is" grep -q "ISM: disabled already (persistent ${k}=false): left as it is" <<<"$out"
  expect_eq "ISM, off already: no settings change" 0 "$(grep -c '^PUT' "$d/calls.log" || true)"
  out=$(PLUGIN=no ism_case none '{"persistent":{},"transient":{}}')
  expect_true "ISM, no plugin: nothing to pause, said so" grep -q 'ISM: plugin opensearch-index-management not installed: nothing to pause' <<<"$out"
  expect_eq "ISM, no plugin: only the plugin list read" "GET /_cat/plugins " "$(paste -sd'|' "$d/calls.log")"
}

# A look only (an attempt that stopped before its pause step): what is paused is noted, and
# nothing is changed or said.
# shellcheck disable=SC2030,SC2031,SC2034,SC2317 # the subshell's own globals; stubs called by it
test_look_for_paused_features() {
  local d="$TMP/look" out
  mkdir -p "$d"
  out=$(
    # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
    source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
    WORK_DIR=$d ENGINE_DISTRIBUTION=opensearch
    es_call() {
      ES_REPLY="$d/reply.json" HTTP_STATUS=200 HTTP_ERROR=''
      printf '%s %s\n' "$1" "${2%%\?*}" >>"$d/look.log"
      case $1:${2%%\?*} in
        GET:/_cat/plugins) printf '[{"component":"opensearch-index-management"}]' >"$ES_REPLY" ;;
        GET:/_cluster/settings) printf '{"persistent":{"%s":"false"},"transient":{}}' "plugins.index_state_management.enabled" >"$ES_REPLY" ;;
        *) HTTP_STATUS=500 ;;
      esac
    }
    : >"$d/look.log"
    look_for_paused_features
    echo "found=${FOUND_PAUSED[*]} paused=${#PAUSED_FEATURES[@]}"
    FOUND_PAUSED=()
    FEATURES_LOOKED=true
    look_for_paused_features
    echo "again=${FOUND_PAUSED[*]}"
  )
  expect_true "a look only: ISM found off" grep -q "^found=ISM paused=0$" <<<"$out"
  expect_eq "a look only: reads, and changes nothing" "GET /_cat/plugins|GET /_cluster/settings" \
    "$(paste -sd'|' "$d/look.log")"
  expect_true "a look only: says nothing of its own" test "$(grep -c 'ISM' <<<"$out")" -eq 1
  expect_true "no look once the pause step has run" grep -q "^again=$" <<<"$out"
}

# shellcheck disable=SC2030,SC2031,SC2034,SC2317 # globals read by common.sh, the subshells' own; stubs
test_grace_period_bounds_the_clean_up() {
  local out
  out=$(
    AGENT_NODE_DEADLINE=60 AGENT_TIMEOUT=30 AGENT_CONNECT_TIMEOUT=5 ES_TIMEOUT=60 ES_VERIFY_TIMEOUT=120 ES_CONNECT_TIMEOUT=10
    bound_for_the_grace_period 2>&1
    echo "$AGENT_NODE_DEADLINE $AGENT_TIMEOUT $AGENT_CONNECT_TIMEOUT $ES_TIMEOUT $ES_VERIFY_TIMEOUT $ES_CONNECT_TIMEOUT"
  )
  expect_eq "a signal: every clean-up call bounded by EXIT_CALL_TIMEOUT (10), shorter ones kept" \
    "10 10 5 10 10 10" "$(tail -n1 <<<"$out")"
  expect_true "a signal: said so" grep -q "stopped by a signal: the clean-up ends within 25s (EXIT_GRACE), each of its calls within 10s" <<<"$out"
  out=$(
    EXIT_CALL_TIMEOUT=3 AGENT_NODE_DEADLINE=60 ES_TIMEOUT=2
    bound_for_the_grace_period 2>/dev/null
    echo "$AGENT_NODE_DEADLINE $ES_TIMEOUT"
  )
  expect_eq "a signal: EXIT_CALL_TIMEOUT chooses the bound" "3 2" "$out"
  out=$(
    EXIT_GRACE=4 AGENT_NODE_DEADLINE=60
    bound_for_the_grace_period 2>/dev/null
    echo "$AGENT_NODE_DEADLINE $((EXIT_DEADLINE - EPOCHSECONDS))"
  )
  expect_eq "a signal: no call longer than EXIT_GRACE, whose end is EXIT_DEADLINE" "4 4" "$out"
  out=$(
    EXIT_GRACE=25
    bound_for_the_grace_period 2>/dev/null
    echo "$EXIT_RESERVE"
    EXIT_GRACE=8
    bound_for_the_grace_period 2>/dev/null
    echo "$EXIT_CALL_LIMIT $EXIT_RESERVE"
  )
  expect_eq "a signal: the keys and the repository keep one call's time, at most half the grace period" "10|8 4" "$(paste -sd'|' <<<"$out")"
  out=$(
    EXIT_DEADLINE=$((EPOCHSECONDS + 3)) a=60 b=2 c=60
    within_the_grace_period a
    within_the_grace_period b
    EXIT_DEADLINE=$((EPOCHSECONDS - 5))
    within_the_grace_period c
    echo "$a $b $c"
  )
  expect_eq "within the grace period: a call gets what is left of it, at least 1 s" "3 2 1" "$out"
  out=$(
    a=60
    within_the_grace_period a
    echo "$a"
  )
  expect_eq "without a signal no call is shortened" "60" "$out"
  out=$(
    EXIT_DEADLINE=$((EPOCHSECONDS + 25)) EXIT_RESERVE=10 IN_JOB_CLEANUP=true a=60
    within_the_grace_period a
    echo "$a"
  )
  expect_eq "the job's own clean-up: its calls end one call's time before the grace period does" "15" "$out"
  out=$(
    WORK_DIR=$TMP EXIT_DEADLINE=$((EPOCHSECONDS + 5)) EXIT_RESERVE=10 IN_JOB_CLEANUP=true ES_URL=http://127.0.0.1:9
    ES_TIMEOUT=60 ES_CONNECT_TIMEOUT=10
    http_call() { echo "sent"; }
    es_call GET /_ilm/status && echo "rc=0" || echo "rc=$? ${HTTP_STATUS} ${HTTP_ERROR}"
    IN_JOB_CLEANUP=false
    es_call GET /_ilm/status >/dev/null && echo "after: sent"
  )
  expect_true "the job's own clean-up out of its share: the call is not sent, saying why" \
    grep -q "^rc=1 000 not sent: the grace period's last 10s (EXIT_GRACE, EXIT_CALL_TIMEOUT) are kept for removing the keys and the repository$" <<<"$out"
  expect_false "(nothing was sent then)" grep -q "^sent$" <<<"$(head -n1 <<<"$out")"
  expect_true "the keys and the repository still get their calls" grep -q "^after: sent$" <<<"$out"
}

# signal_when PID PATTERN LOG PAUSE: once LOG has a line matching PATTERN (5 s at most) and
# PAUSE seconds more, SIGTERM to PID; sets rc (its exit code) and took (ms from the signal).
signal_when() {
  local t0
  for _ in $(seq 50); do grep -q -- "$2" "$3" 2>/dev/null && break; sleep 0.1; done
  sleep "$4"
  t0=$(date +%s%N)
  rc=0
  kill -TERM "$1"
  wait "$1" || rc=$?
  took=$((($(date +%s%N) - t0) / 1000000))
}

# A job stopped by a signal while the engine holds a call (a health read held for
# POLL_INTERVAL, a verification) runs its exit trap at once, not when the call ends: curl
# runs in the background and is waited for. The "engine" is a real TCP listener that never
# answers.
test_signal_during_a_call_is_handled_at_once() {
  local d="$TMP/signal" port took rc=0
  mkdir -p "$d"
  /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)' >"$d/port" &
  local listener=$!
  for _ in $(seq 50); do [[ -s $d/port ]] && break; sleep 0.1; done
  port=$(<"$d/port")
  bash -c '
    set -euo pipefail
    source "$1/addons/elasticsearch/dataprotection/common.sh"
    job_init backup
    AUTH_CONFIG=/dev/null ES_URL="http://127.0.0.1:$2" ES_CONNECT_TIMEOUT=2 ES_TIMEOUT=30
    log "calling"
    es_call GET /_cluster/health
    log "the call returned"' _ "$ROOT" "$port" >"$d/job.log" 2>&1 &
  signal_when "$!" calling "$d/job.log" 0.5
  expect_eq "a signal during a held call: the job exits 143" 143 "$rc"
  expect_true "a signal during a held call: the trap runs at once (${took} ms, the call had 30 s)" test "$took" -lt 3000
  expect_false "a signal during a held call: the call is not waited for" grep -q 'the call returned' "$d/job.log"
  expect_true "a signal during a held call: the job says it failed" grep -Eq 'backup .*FAILED \(exit 143\)' "$d/job.log"
  # The same for a pause between polls (POLL_INTERVAL may be 30 s).
  bash -c '
    set -euo pipefail
    source "$1/addons/elasticsearch/dataprotection/common.sh"
    job_init backup
    log "pausing"
    sleep_s 30
    log "the pause ended"' _ "$ROOT" >"$d/pause.log" 2>&1 &
  signal_when "$!" pausing "$d/pause.log" 0.3
  expect_true "a signal during a pause: handled at once, exit 143 (${took} ms, exit ${rc})" test "$took" -lt 3000 -a "$rc" -eq 143
  expect_false "a signal during a pause: the pause is not sat out" grep -q 'the pause ended' "$d/pause.log"
  # A signal while a normal exit's clean-up waits for a held call: that call gets one clean-up
  # call's time (EXIT_CALL_TIMEOUT) from the signal, and the rest of the clean-up still runs.
  bash -c '
    set -euo pipefail
    source "$1/addons/elasticsearch/dataprotection/common.sh"
    job_init backup
    AUTH_CONFIG=/dev/null ES_URL="http://127.0.0.1:$2" ES_CONNECT_TIMEOUT=2 ES_TIMEOUT=30 EXIT_GRACE=8 EXIT_CALL_TIMEOUT=2 BACKUP_NAME=b
    job_cleanup() { log "cleanup call"; es_call GET /_held || true; log "cleanup call ended"; }
    unregister_repository() { log "the rest of the clean-up runs"; }
    job_done' _ "$ROOT" "$port" >"$d/late.log" 2>&1 &
  signal_when "$!" 'cleanup call$' "$d/late.log" 0.3
  expect_eq "a signal during a normal exit's held call: the job's work stands (exit 0)" 0 "$rc"
  expect_true "a signal during a normal exit's held call: the call gets EXIT_CALL_TIMEOUT (2 s), not the grace period (8 s): ${took} ms" \
    test "$took" -ge 1000 -a "$took" -lt 5000
  expect_true "a signal during a normal exit's held call: the rest of the clean-up runs" grep -q 'the rest of the clean-up runs' "$d/late.log"
  kill "$listener" 2>/dev/null
  wait "$listener" 2>/dev/null || true
}

# shellcheck disable=SC2034 # globals read by common.sh
test_missing_ca_named() {
  local out
  out=$( (
    WORK_DIR="$TMP" DB_USER='' DB_PASSWORD='' ES_CACERT="$TMP/no-such-ca.pem"
    write_auth_config
    echo "exit 0"
  ) 2>&1 || true)
  expect_true "a CA file that is not there stops the job, naming it and where it should come from" \
    grep -q "ERROR: ES_CACERT ${TMP}/no-such-ca.pem is not a readable file: the nodes' CA is missing .*targetVolumes" <<<"$out"
  printf 'x\n' >"$TMP/ca.pem"
  out=$( (
    WORK_DIR="$TMP" DB_USER='' DB_PASSWORD='' ES_CACERT="$TMP/ca.pem"
    write_auth_config
    cat "$AUTH_CONFIG"
  ) 2>&1 || true)
  expect_eq "a readable CA goes into the curl config" "cacert = \"${TMP}/ca.pem\"" "$out"
  # A restore job: KubeBlocks puts the target pod's env after the ActionSet's, so the
  # reference reaches the job unexpanded.
  out=$( (
    # shellcheck disable=SC2016 # the kubelet's unexpanded reference, literally
    WORK_DIR="$TMP" DB_USER='' DB_PASSWORD='' ES_CACERT='$(TLS_CA_FILE)' TLS_CA_FILE="$TMP/ca.pem"
    write_auth_config
    cat "$AUTH_CONFIG"
  ) 2>&1 || true)
  expect_eq "an unexpanded \$(TLS_CA_FILE) falls back to TLS_CA_FILE" "cacert = \"${TMP}/ca.pem\"" "$out"
}

# Over HTTPS the job reaches the target pod by the full name its certificate carries.
# shellcheck disable=SC2034 # globals read by common.sh
test_node_host_name() {
  local out
  out=$(
    KB_NAMESPACE=prod CLUSTER_DOMAIN=cluster.local ES_SCHEME=https
    node_host_name es-0.es-elasticsearch-headless
    echo
    node_host_name es-0.es-elasticsearch-headless.prod.svc.cluster.local
    echo
    node_host_name 10.0.0.7
    echo
    node_host_name fd00::7
    echo
    ES_SCHEME=http node_host_name es-0.es-elasticsearch-headless
  )
  expect_eq "pod names over HTTPS get the namespace and domain; full names, addresses and HTTP stay" \
    "es-0.es-elasticsearch-headless.prod.svc.cluster.local
es-0.es-elasticsearch-headless.prod.svc.cluster.local
10.0.0.7
fd00::7
es-0.es-elasticsearch-headless" "$out"
}

# The trial's leftovers are listed by prefix, and a pattern resolves aliases too: an index
# behind an alias whose name starts with the prefix is not the trial's (the engines' _cat and
# _data_stream answers as they come, recorded on OpenSearch 3.6).
# shellcheck disable=SC2034,SC2317 # globals read by restore.sh; stubs
test_trial_names_keep_to_the_prefix() {
  # trial_names_of NAME_RE STREAMS INDICES: trial_names under kb-trial-cd758907 on those answers.
  trial_names_of() {
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      WORK_DIR=$(mktemp -d) TRIAL_PREFIX=kb-trial-cd758907 TRIAL_NAME_RE=$1 ES_VERIFY_TIMEOUT=5 STREAMS=$2 INDICES=$3
      es_call() {
        HTTP_STATUS=200 HTTP_ERROR='' ES_REPLY="$WORK_DIR/reply.json"
        case $2 in
          /_data_stream/*) printf '%s' "$STREAMS" >"$ES_REPLY" ;;
          *) printf '%s' "$INDICES" >"$ES_REPLY" ;;
        esac
      }
      trial_names
      paste -sd' ' "$WORK_DIR/trial-left.txt"
      rm -rf "$WORK_DIR"
    )
  }
  expect_eq "trial leftovers: only names under the prefix (not an alias's index, not another stream)" \
    "kb-trial-cd758907aaaaaa-logs kb-trial-cd758907aaaaaa-users .ds-kb-trial-cd758907aaaaaa-logs-000001" \
    "$(trial_names_of '' '{"data_streams":[{"name":"kb-trial-cd758907aaaaaa-logs"},{"name":"user-logs"}]}' \
      '[{"index":"precious"},{"index":"kb-trial-cd758907aaaaaa-users"},{"index":".ds-kb-trial-cd758907aaaaaa-logs-000001"}]')"
  expect_eq "trial leftovers of earlier attempts: only an attempt's trial names (not a user's index under the prefix)" \
    "kb-trial-cd758907aaaaaa-users" \
    "$(trial_names_of '^kb-trial-cd758907[0-9a-f]{6}-' '{"data_streams":[]}' \
      '[{"index":"kb-trial-cd758907-userowned"},{"index":"kb-trial-cd758907aaaaaa-users"}]')"
}

# The delete mode's trial asks for the restore's own request under its prefix: every name
# renamed, no aliases, global state or feature state, the replicas kept.
# shellcheck disable=SC2034 # globals read by restore.sh
test_trial_request() {
  local out
  out=$(
    # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
    source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
    WORK_DIR=$(mktemp -d) TRIAL_PREFIX=kb-trial-0000abcd-
    # shellcheck disable=SC2016 # a literal $1, for the engine
    printf '%s\n' '{"indices":"logs-x,a","include_global_state":true,"include_aliases":true,"rename_pattern":"^r-(.+)$","rename_replacement":"c-$1","feature_states":["tasks"],"index_settings":{"index.number_of_replicas":2}}' \
      >"$WORK_DIR/restore-request.json"
    write_trial_request
    jq -cS . "$WORK_DIR/trial-request.json"
    rm -rf "$WORK_DIR"
  )
  expect_eq "the trial request: the prefix for every name, nothing beyond the indices, the replicas kept" \
    '{"feature_states":["none"],"include_aliases":false,"include_global_state":false,"index_settings":{"index.number_of_replicas":2},"indices":"logs-x,a","rename_pattern":"^","rename_replacement":"kb-trial-0000abcd-"}' "$out"
}

# A restore started without the snapshot's aliases (the engine refused them after the delete
# mode's deletions) that then fails for another cause still says the aliases are missing; a
# retry that never started, or the job's own aliases message, does not say it twice.
# shellcheck disable=SC2034,SC2317 # globals read by restore.sh; stubs
test_alias_refusal_named_on_a_later_failure() {
  cleanup_case() {
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      SNAPSHOT_NAME=snap-1 DELETED_BY_JOB=r-al ALIASES_REFUSED='HTTP 400: alias [v] exists'
      RESTORE_STARTED=$1 ALIASES_REPORTED=$2 RESTORE_PRIMARIES_DONE=true
      reopen_closed() { :; }
      resume_features() { :; }
      job_cleanup "$3"
    ) 2>&1
  }
  expect_true "a later failure of a restore started without aliases names them" \
    grep -qF "started WITHOUT the snapshot's aliases: the engine refused them (HTTP 400: alias [v] exists) after r-al had been deleted" \
    <<<"$(cleanup_case true false 1)"
  expect_eq "the job's own aliases message is not said twice" '' "$(cleanup_case true true 1)"
  expect_eq "a retry that never started says nothing of aliases (its own message did)" 0 \
    "$(cleanup_case false false 1 | grep -c aliases)"
  expect_eq "a job that ended well says nothing" '' "$(cleanup_case true false 0)"
}

# stream_plans ENGINE SNAPSHOT_JQ SELECTION...: for each RESTORE_INDICES SELECTION, one line of
# the plan's [source, data stream] pairs, over the snapshot listing SNAPSHOT_JQ (a jq program)
# on ENGINE (opensearch 3.6.0 or elasticsearch 8.19.0).
# shellcheck disable=SC2034 # globals read by restore.sh
stream_plans() {
  (
    # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
    source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
    WORK_DIR=$(mktemp -d) ENGINE_DISTRIBUTION=$1 SNAPSHOT_NAME=s1
    ENGINE_VERSION=$([[ $1 == opensearch ]] && echo 3.6.0 || echo 8.19.0)
    RESTORE_RENAME_PATTERN='' RESTORE_RENAME_REPLACEMENT='' INCLUDE_GLOBAL=false
    # shellcheck disable=SC2317 # called by plan_restore
    log() { :; }
    printf '[]\n' >"$WORK_DIR/features.json"
    jq -n "$2" >"$WORK_DIR/snapshot.json"
    shift 2
    for RESTORE_INDICES in "$@"; do
      plan_restore && jq -c '[.indices[] | [.source, .stream]]' "$WORK_DIR/plan.json"
    done
    rm -rf "$WORK_DIR"
  )
}

# Backing indices that Elasticsearch's ILM or searchable snapshots renamed (shrink-, restored-,
# partial-, downsample- before '.ds-') belong to their data stream in the plan; a rename over
# them is refused, since the engine's rename of such a name is not the plan's to say.
# shellcheck disable=SC2034 # globals read by restore.sh
test_plan_keeps_ilm_backing_indices_with_their_stream() {
  plan_case() {
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      WORK_DIR=$(mktemp -d) ENGINE_DISTRIBUTION=elasticsearch ENGINE_VERSION=8.19.0 SNAPSHOT_NAME=s1
      RESTORE_INDICES=$1 RESTORE_RENAME_PATTERN=$2 RESTORE_RENAME_REPLACEMENT=$3 INCLUDE_GLOBAL=false
      # shellcheck disable=SC2317 # called by die
      log() { [[ $1 != ERROR:* ]] || printf '%s\n' "$*"; }
      printf '[]\n' >"$WORK_DIR/features.json"
      jq -n '{snapshots: [{indices: [".ds-logs-a-2026.01.02-000001", "shrink-x1y2-.ds-logs-a-2026.01.02-000002",
          "partial-restored-.ds-logs-a-2026.01.02-000003", "downsample-1h-.ds-logs-a-2026.01.02-000004",
          "shrink-plain", "other"], data_streams: ["logs-a"]}]}' >"$WORK_DIR/snapshot.json"
      plan_restore && jq -c '[.indices[] | [.source, .stream]]' "$WORK_DIR/plan.json"
      rm -rf "$WORK_DIR"
    ) 2>&1
  }
  expect_eq "a selected data stream brings its backing indices, those ILM renamed too" \
    '[[".ds-logs-a-2026.01.02-000001","logs-a"],["downsample-1h-.ds-logs-a-2026.01.02-000004","logs-a"],["partial-restored-.ds-logs-a-2026.01.02-000003","logs-a"],["shrink-x1y2-.ds-logs-a-2026.01.02-000002","logs-a"]]' \
    "$(plan_case logs-a '' '')"
  expect_eq "an index merely named like ILM's is no backing index" '[["shrink-plain",null]]' "$(plan_case shrink-plain '' '')"
  # Streams dsa and dsa-2026.01.02 (both allowed): a backing index is the longer one's.
  local two dated
  two=$(stream_plans opensearch '{snapshots: [{indices: [".ds-dsa-000001", ".ds-dsa-2026.01.02-000001"], data_streams: ["dsa", "dsa-2026.01.02"]}]}' \
    dsa dsa-2026.01.02 '*')
  # Elasticsearch 7.11+ dates its backing indices: .ds-a-2024.01.01-000001 is then a's.
  dated=$(stream_plans elasticsearch '{snapshots: [{indices: [".ds-a-2024.01.01-000001", ".ds-a-2024.01.01-2024.03.05-000001", ".ds-a-000009"], data_streams: ["a", "a-2024.01.01"]}]}' \
    a a-2024.01.01)
  expect_eq "on Elasticsearch a dated fit comes first, one without the date (a stream older than 7.11) after" \
    '[[".ds-a-000009","a"],[".ds-a-2024.01.01-000001","a"]]
[[".ds-a-2024.01.01-2024.03.05-000001","a-2024.01.01"]]' "$dated"
  expect_eq "of two streams whose names overlap, each backing index is its own stream's" \
    '[[".ds-dsa-000001","dsa"]]
[[".ds-dsa-2026.01.02-000001","dsa-2026.01.02"]]
[[".ds-dsa-000001","dsa"],[".ds-dsa-2026.01.02-000001","dsa-2026.01.02"]]' "$two"
  # shellcheck disable=SC2016 # $1 is the engine's
  expect_true "a rename over ILM-renamed backing indices is refused, naming them" \
    grep -qF 'backing index(es) that ILM or a searchable snapshot renamed, downsample-1h-.ds-logs-a-2026.01.02-000004 (of logs-a)' \
    <<<"$(plan_case logs-a '^(.+)$' 'c-$1')"
  # jq 1.6 aborts on this pattern (which check_rename_subset refuses before): a sentence, no crash.
  # shellcheck disable=SC2016 # $0 is the engine's
  expect_true "a pattern jq 1.6 aborts on stops the plan with a sentence" \
    grep -qF "planning the restore: jq stopped (exit 134) on the snapshot's names renamed by RESTORE_RENAME_PATTERN '(a*)(a*){2}[a-]+?'" \
    <<<"$(plan_case shrink-plain '(a*)(a*){2}[a-]+?' '$0' 2>&1)"
}

# A selected name holding a line break is refused before any change: the job's lists carry a
# name a line, and "x<LF>r-keep" would be read as x and r-keep, other indices (a trial clean-up
# once deleted r-keep that way). Left out by a pattern, the rest restores.
# shellcheck disable=SC2034 # globals read by restore.sh
test_plan_refuses_names_with_line_breaks() {
  lb_case() {
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      WORK_DIR=$(mktemp -d) ENGINE_DISTRIBUTION=opensearch ENGINE_VERSION=3.6.0 SNAPSHOT_NAME=s1
      RESTORE_INDICES=$1 RESTORE_RENAME_PATTERN='' RESTORE_RENAME_REPLACEMENT='' INCLUDE_GLOBAL=false
      # shellcheck disable=SC2317 # called by die
      log() { [[ $1 != ERROR:* ]] || printf '%s\n' "$*"; }
      printf '[]\n' >"$WORK_DIR/features.json"
      jq -n '{snapshots: [{indices: ["x\nr-keep", "r-alpha"], data_streams: []}]}' >"$WORK_DIR/snapshot.json"
      plan_restore && jq -c '[.indices[].source]' "$WORK_DIR/plan.json"
      rm -rf "$WORK_DIR"
    ) 2>&1
  }
  expect_true "a selected name with a line break is refused, named escaped" \
    grep -qF 'RESTORE_INDICES selects name(s) holding a line break, "x\nr-keep", which this job cannot carry' <<<"$(lb_case '*,-.*')"
  expect_eq "left out by a pattern, the rest is planned" '["r-alpha"]' "$(lb_case '*,-.*,-x*')"
}

# Stopped while the restore request had no answer yet (close mode): whether the engine took it
# is unknown, so the indices closed for it are not reopened (that would break a restore the
# engine took), the job says so and leaves the repository to the engine. Answered with a
# refusal, they are reopened.
# shellcheck disable=SC2034,SC2317 # globals read by restore.sh; stubs
test_in_flight_restore_leaves_closed_indices_closed() {
  in_flight_case() {
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      WORK_DIR=$(mktemp -d) SNAPSHOT_NAME=snap-1 RESTORE_IN_FLIGHT=$1 CLOSED_BY_JOB=(big other) ES_VERIFY_TIMEOUT=5
      es_call() { printf 'call %s %s\n' "$1" "$2"; HTTP_STATUS=200 HTTP_ERROR=''; }
      keep_for_the_engine() { echo "kept for the engine"; }
      resume_features() { :; }
      job_cleanup 143
      rm -rf "$WORK_DIR"
    ) 2>&1
  }
  local out
  out=$(in_flight_case true)
  expect_true "in flight: says the outcome is unknown, naming what stays closed" \
    grep -qF "whether the engine started it is unknown; closed for it, and left closed: big,other" <<<"$out"
  expect_eq "in flight: nothing reopened" 0 "$(grep -c '^call POST .*_open' <<<"$out")"
  expect_true "in flight: the repository and client left to the engine" grep -qx "kept for the engine" <<<"$out"
  out=$(in_flight_case false)
  expect_true "refused: what was closed is reopened" grep -qF "call POST /big,other/_open" <<<"$out"
}

# A restore that started, and whose primaries the job did not see done, keeps its repository
# and client for the engine only while some shard is still restored from it (a failure after
# the engine had finished, or one that came after the restore had stopped, cleans up as usual).
# shellcheck disable=SC2034,SC2317 # globals read by restore.sh; stubs
test_started_restore_kept_only_while_in_use() {
  started_case() {
    (
      # shellcheck source=../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
      source "${ROOT}/addons/elasticsearch/dataprotection/restore.sh"
      WORK_DIR=$(mktemp -d) SNAPSHOT_NAME=snap-1 REPOSITORY=kb-snap-1-r0a1b2c RESTORE_STARTED=true RESTORE_PRIMARIES_DONE=false
      ROUTING=$1
      es_call() {
        HTTP_STATUS=200 HTTP_ERROR='' ES_REPLY="$WORK_DIR/reply.json"
        case $2 in
          */_current) printf '{"snapshots":[]}' >"$ES_REPLY" ;;
          *) printf '%s' "$ROUTING" >"$ES_REPLY" ;;
        esac
      }
      keep_for_the_engine() { echo "kept for the engine"; }
      resume_features() { :; }
      log() { printf '%s\n' "$*"; }
      job_cleanup 1
      rm -rf "$WORK_DIR"
    ) 2>&1
  }
  local out
  out=$(started_case '{"routing_table":{"indices":{"r":{"shards":{"0":[{"index":"r","recovery_source":{"repository":"kb-snap-1-r0a1b2c"}}]}}}}}')
  expect_true "still restoring: the repository and client left to the engine" grep -qx "kept for the engine" <<<"$out"
  expect_true "still restoring: the log says why" grep -qF "repository kb-snap-1-r0a1b2c is left to the engine: shards of r are still being restored from it" <<<"$out"
  out=$(started_case '{"routing_table":{"indices":{"r":{"shards":{"0":[{"index":"r"}]}}}}}')
  expect_false "done since: nothing kept" grep -qx "kept for the engine" <<<"$out"
  expect_true "done since: the log says the usual clean-up follows" grep -qF "no shard is restored from repository kb-snap-1-r0a1b2c any more" <<<"$out"
}

# Over HTTPS each agent is called by <node name>.<the target pod's suffix>, at its address.
# shellcheck disable=SC2034 # globals read by common.sh
test_agent_host_suffix() {
  local out
  out=$(
    KB_NAMESPACE=prod AGENT_SCHEME=https
    DP_DB_HOST=es-0.es-headless agent_host_suffix
    echo '|'
    DP_DB_HOST=es-0.es-headless.prod.svc.k8s.example CLUSTER_DOMAIN=x agent_host_suffix
    echo '|'
    DP_DB_HOST=10.0.0.7 agent_host_suffix
    echo '|'
    DP_DB_HOST=fd00::7 agent_host_suffix
    echo '|'
    AGENT_SCHEME=http DP_DB_HOST=es-0.es-headless agent_host_suffix
    echo '|'
  )
  expect_eq "the pod's suffix, completed; none for an address or over HTTP" \
    "es-headless.prod.svc.cluster.local|
es-headless.prod.svc.k8s.example|
|
|
|" "$out"
  out=$(
    WORK_DIR=$(mktemp -d) AGENT_PORT=8080 AGENT_SCHEME=https AGENT_HOST_SUFFIX=es-headless.prod.svc.cluster.local
    # shellcheck disable=SC2317 # called by agents_by_name
    log() { :; }
    # shellcheck disable=SC2317 # called by agents_by_name
    warn() { printf 'warn: %s\n' "$*"; }
    printf 'id1\tes-0\t10.0.0.7\ttrue\nid2\tes-1\tfd00::8\ttrue\nid3\tEs_2\t10.0.0.9\ttrue\n' >"$WORK_DIR/nodes.tsv"
    agents_by_name
    agent_url 10.0.0.7 /ready
    echo
    agent_url fd00::8 /ready
    echo
    agent_url 10.0.0.9 /ready
    echo
    cat "$HTTP_EXTRA_CONFIG"
    rm -rf "$WORK_DIR"
  )
  expect_eq "agents by name, connected to their addresses; a name that is no DNS label by address" \
    "warn: node Es_2: its name is no DNS label, so its agent is called by its address 10.0.0.9
https://es-0.es-headless.prod.svc.cluster.local:8080/ready
https://es-1.es-headless.prod.svc.cluster.local:8080/ready
https://10.0.0.9:8080/ready
connect-to = \"es-0.es-headless.prod.svc.cluster.local:8080:10.0.0.7:8080\"
connect-to = \"es-1.es-headless.prod.svc.cluster.local:8080:[fd00::8]:8080\"" "$out"
}

main() {
  local t
  for t in test_ini_reader test_provider_aws test_provider_minio test_provider_s3_compatible \
    test_provider_oss_cos_obs_gcs test_storage_provider_templates test_env_auth test_config_errors test_secrets_registered test_paths test_names test_restore_repository_names test_repository_free \
    test_job_env test_engine_error test_request_bodies test_registration_retries_only_a_closed_client \
    test_node_answers test_agent_fan_out test_verification_on_every_node test_restore_wait_for_primaries test_restore_wait_stops_on_a_refused_read test_names_in_batches test_index_names_in_urls test_rename_subset test_ism_paused_and_put_back test_look_for_paused_features test_grace_period_bounds_the_clean_up test_signal_during_a_call_is_handled_at_once test_missing_ca_named test_node_host_name test_agent_host_suffix test_trial_request test_alias_refusal_named_on_a_later_failure test_plan_keeps_ilm_backing_indices_with_their_stream test_plan_refuses_names_with_line_breaks test_in_flight_restore_leaves_closed_indices_closed test_started_restore_kept_only_while_in_use test_trial_names_keep_to_the_prefix test_backup_options test_stopped_backup_keeps_an_ended_snapshot test_coverage_follows_the_selection test_start_in_flight_is_looked_for test_snapshot_request_and_follow test_hostile_configs; do
    "$t"
  done
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [[ $FAILED -eq 0 ]]
}

main "$@"

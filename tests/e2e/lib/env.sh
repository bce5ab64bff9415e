#!/usr/bin/env bash
# Shared settings and helpers for the local e2e cluster.
#
# Source it (do not run it):  source tests/e2e/lib/env.sh
# It only sets variables and defines functions; it changes no shell options,
# so it is safe to source from scripts with or without `set -euo pipefail`.
# Every value can be overridden by exporting it before sourcing.

# --- where things live -------------------------------------------------------
E2E_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_ROOT="$(cd "$E2E_LIB_DIR/../../.." && pwd)"
E2E_CACHE="${E2E_CACHE:-$E2E_ROOT/.cache/e2e}"
E2E_WORK="${E2E_WORK:-/tmp/es-e2e}"
export E2E_ROOT E2E_CACHE E2E_WORK

# --- pinned component versions (all from the registries this machine reaches) --
# OpenSearch: 3.6.0 is the newest release published on Maven Central both as an
# integ-test-zip and as org.opensearch.plugin:repository-s3 (the plugin jar is
# published only from 3.1.0; 2.19.x has no S3 plugin there, see README).
E2E_OPENSEARCH_VERSION="${E2E_OPENSEARCH_VERSION:-3.6.0}"
E2E_ELASTICSEARCH_VERSION="${E2E_ELASTICSEARCH_VERSION:-8.19.21}"
E2E_VERSITYGW_VERSION="${E2E_VERSITYGW_VERSION:-v1.7.0}"
E2E_MVN_DEPENDENCY_PLUGIN="${E2E_MVN_DEPENDENCY_PLUGIN:-3.8.1}"
export E2E_OPENSEARCH_VERSION E2E_ELASTICSEARCH_VERSION E2E_VERSITYGW_VERSION

E2E_OPENSEARCH_MAJOR="${E2E_OPENSEARCH_VERSION%%.*}"

# --- installed components ---------------------------------------------------
# Always derived from the cache and the versions (an OPENSEARCH_HOME inherited
# from an earlier `source` with other versions must not leak in).
OPENSEARCH_HOME="$E2E_CACHE/opensearch-$E2E_OPENSEARCH_VERSION"
ES_HOME="$E2E_CACHE/elasticsearch-$E2E_ELASTICSEARCH_VERSION"
E2E_VERSITYGW_BIN="${E2E_VERSITYGW_BIN:-$E2E_CACHE/bin/versitygw}"
E2E_S3_PLUGIN_DIR="$OPENSEARCH_HOME/plugins/repository-s3"
export OPENSEARCH_HOME ES_HOME E2E_VERSITYGW_BIN

# Older engine releases whose keystore tools the agent's cli backend is also tested against
# (tests/compat/cli_tools.sh): engine:version, unpacked under $E2E_TOOL_HOMES/<engine>-<version>.
E2E_TOOL_RELEASES="${E2E_TOOL_RELEASES:-elasticsearch:7.17.29 opensearch:2.19.4 opensearch:1.3.20}"
# Releases only the chart's node test starts (tests/chart/test_node.sh: 9.x needs Java 21, which
# cli_tools.sh's Java 17 runs cannot give), fetched and unpacked beside them.
E2E_NODE_RELEASES="${E2E_NODE_RELEASES:-elasticsearch:9.2.0}"
E2E_TOOL_HOMES="$E2E_CACHE/tools"
export E2E_TOOL_RELEASES E2E_NODE_RELEASES E2E_TOOL_HOMES

# e2e_find_java MIN_MAJOR: print a JAVA_HOME whose Java is at least MIN_MAJOR
# (read from the JDK's `release` file, no JVM started). Prefers the Temurin 25
# JDK, then the system default, then any JDK under /usr/lib/jvm.
e2e_find_java() {
  local min="$1" home ver
  for home in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/default-java /usr/lib/jvm/*; do
    [[ -x "$home/bin/java" && -f "$home/release" ]] || continue
    ver="$(sed -n 's/^JAVA_VERSION="\{0,1\}\([0-9]*\).*/\1/p' "$home/release")"
    [[ "$ver" =~ ^[0-9]+$ ]] || continue
    if ((ver >= min)); then
      printf '%s\n' "$home"
      return 0
    fi
  done
  return 1
}

# OpenSearch 3.x needs Java 21+; 2.x needs a JDK that still has the Security
# Manager (17 or 21), so it gets the Debian default JDK 17. Override with
# E2E_OPENSEARCH_JAVA_HOME / E2E_ES_JAVA_HOME.
if [[ -n "${E2E_OPENSEARCH_JAVA_HOME:-}" ]]; then
  OPENSEARCH_JAVA_HOME="$E2E_OPENSEARCH_JAVA_HOME"
elif ((E2E_OPENSEARCH_MAJOR >= 3)); then
  OPENSEARCH_JAVA_HOME="$(e2e_find_java 21 || true)"
elif [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
  OPENSEARCH_JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
else
  OPENSEARCH_JAVA_HOME="$(e2e_find_java 17 || true)"
fi
# Elasticsearch 8.19 tools run on 17+ (9.x would need 21+). Prefer Temurin 25.
ES_JAVA_HOME="${E2E_ES_JAVA_HOME:-$(e2e_find_java 21 || e2e_find_java 17 || true)}"
export OPENSEARCH_JAVA_HOME ES_JAVA_HOME

# --- the local cluster --------------------------------------------------------
E2E_USER="${E2E_USER:-esnode}"
E2E_USER_HOME="${E2E_USER_HOME:-/var/lib/$E2E_USER}"
E2E_CLUSTER_NAME="${E2E_CLUSTER_NAME:-e2e}"
# E2E_NODE_ADDRS_LIST (space-separated) lets a second suite run its own cluster
# beside the default one (with its own E2E_WORK and E2E_S3_PORT).
read -ra E2E_NODE_ADDRS <<<"${E2E_NODE_ADDRS_LIST:-127.0.0.11 127.0.0.12 127.0.0.13}"
E2E_NODE_COUNT="${#E2E_NODE_ADDRS[@]}"
E2E_HTTP_PORT=9200
E2E_TRANSPORT_PORT=9300
E2E_AGENT_PORT="${E2E_AGENT_PORT:-8080}"
E2E_HEAP="${E2E_HEAP:-512m}"
# Extra node JVM options. C1-only JIT roughly halves the time to green on two
# busy cores (measured 80 s -> 43 s); set to "" for the stock JIT.
E2E_EXTRA_JAVA_OPTS="${E2E_EXTRA_JAVA_OPTS--XX:TieredStopAtLevel=1}"
# e2e_host_port ADDR PORT: ADDR:PORT, an IPv6 address in brackets.
e2e_host_port() { if [[ $1 == *:* ]]; then printf '[%s]:%s\n' "$1" "$2"; else printf '%s:%s\n' "$1" "$2"; fi; }
E2E_ES_URL="http://$(e2e_host_port "${E2E_NODE_ADDRS[0]}" "$E2E_HTTP_PORT")"
E2E_FS_REPO_DIR="$E2E_WORK/fsrepo"
export E2E_HEAP E2E_EXTRA_JAVA_OPTS E2E_USER E2E_USER_HOME E2E_CLUSTER_NAME E2E_NODE_COUNT E2E_HTTP_PORT E2E_TRANSPORT_PORT E2E_AGENT_PORT E2E_ES_URL E2E_FS_REPO_DIR

E2E_S3_PORT="${E2E_S3_PORT:-7070}"
E2E_S3_ENDPOINT="http://127.0.0.1:$E2E_S3_PORT"
E2E_S3_REGION="${E2E_S3_REGION:-us-east-1}"
E2E_BUCKET="${E2E_BUCKET:-es-backups}"
E2E_S3_DATA_DIR="$E2E_WORK/s3/data"
E2E_S3_CREDENTIALS="$E2E_WORK/s3/credentials.env"
E2E_DATASAFED_CONF="$E2E_WORK/s3/datasafed.conf"
E2E_AGENT_CREDENTIALS="$E2E_WORK/agent/credentials.env"
export E2E_S3_PORT E2E_S3_ENDPOINT E2E_S3_REGION E2E_BUCKET E2E_S3_DATA_DIR
export E2E_S3_CREDENTIALS E2E_DATASAFED_CONF E2E_AGENT_CREDENTIALS

# e2e_node_addr N / e2e_node_dir N / e2e_node_url N (N = 1..E2E_NODE_COUNT)
e2e_node_addr() { printf '%s\n' "${E2E_NODE_ADDRS[$(($1 - 1))]}"; }
e2e_node_dir() { printf '%s\n' "$E2E_WORK/node-$1"; }
e2e_node_url() { printf 'http://%s\n' "$(e2e_host_port "$(e2e_node_addr "$1")" "$E2E_HTTP_PORT")"; }

# True when the installed OpenSearch carries the assembled repository-s3 plugin.
e2e_has_s3_plugin() { [[ -f "$E2E_S3_PLUGIN_DIR/plugin-descriptor.properties" ]]; }

# --- helpers ----------------------------------------------------------------
# E2E_AS_ESNODE: argv prefix that runs a command as the unprivileged user
# (root only). setpriv and env exec, so `"${E2E_AS_ESNODE[@]}" cmd &` leaves
# the command's own pid in $!. The environment is kept; HOME/USER are the user's.
E2E_AS_ESNODE=(setpriv "--reuid=$E2E_USER" "--regid=$E2E_USER" --init-groups
  env "HOME=$E2E_USER_HOME" "USER=$E2E_USER" "LOGNAME=$E2E_USER")

# as_esnode CMD [ARGS...]: run CMD as the unprivileged user. The caller's
# environment is kept (so `VAR=x as_esnode cmd` passes VAR). Secrets must
# travel by environment or stdin, never by ARGS.
as_esnode() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "${E2E_AS_ESNODE[@]}" "$@"
  elif [[ "$(id -un)" == "$E2E_USER" ]]; then
    "$@"
  else
    echo "as_esnode: must run as root or $E2E_USER" >&2
    return 1
  fi
}

# e2e_ensure_user: create the unprivileged system user if missing (uid < 1000).
e2e_ensure_user() {
  if ! getent passwd "$E2E_USER" >/dev/null; then
    useradd --system --user-group --home-dir "$E2E_USER_HOME" --create-home \
      --shell /usr/sbin/nologin "$E2E_USER"
  fi
  if [[ ! -d "$E2E_USER_HOME" ]]; then
    install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$E2E_USER_HOME"
  fi
}

# e2e_keystore N ARGS...: bin/opensearch-keystore on node N's config dir, as
# the node user (e.g. `printf %s "$v" | e2e_keystore 1 add --stdin --force NAME`).
e2e_keystore() {
  local n="$1"
  shift
  OPENSEARCH_PATH_CONF="$(e2e_node_dir "$n")/config" OPENSEARCH_JAVA_HOME="$OPENSEARCH_JAVA_HOME" \
    as_esnode "$OPENSEARCH_HOME/bin/opensearch-keystore" "$@"
}

# e2e_es_keystore CONFIG_DIR ARGS...: Elasticsearch's bin/elasticsearch-keystore
# on CONFIG_DIR (no Elasticsearch node runs; this only edits the file).
e2e_es_keystore() {
  local conf="$1"
  shift
  ES_PATH_CONF="$conf" ES_JAVA_HOME="$ES_JAVA_HOME" "$ES_HOME/bin/elasticsearch-keystore" "$@"
}

# e2e_s3_repo_settings BASE_PATH CLIENT: JSON settings for an S3 repository
# that reaches the local S3 server (the settings the backup job passes).
e2e_s3_repo_settings() {
  jq -n --arg bucket "$E2E_BUCKET" --arg base "$1" --arg client "$2" \
    --arg endpoint "$E2E_S3_ENDPOINT" --arg region "$E2E_S3_REGION" \
    '{bucket: $bucket, base_path: $base, client: $client, endpoint: $endpoint,
      region: $region, protocol: "http", path_style_access: true,
      shard_path_type: "fixed"}'
}

# e2e_s3_curl [CURL ARGS...] URL: an S3 request signed (SigV4) with the local
# S3 root credentials. The secret goes to curl through its config on stdin.
# Percent-encode '/' in query values (prefix=a%2Fb%2F): curl signs the query
# as written and the server rejects a raw '/' there.
e2e_s3_curl() {
  local ak sk
  ak="$(sed -n 's/^S3_ACCESS_KEY=//p' "$E2E_S3_CREDENTIALS")"
  sk="$(sed -n 's/^S3_SECRET_KEY=//p' "$E2E_S3_CREDENTIALS")"
  printf 'user = "%s:%s"\n' "$ak" "$sk" |
    curl --silent --show-error --connect-timeout 5 --max-time 60 --fail-with-body \
      --aws-sigv4 "aws:amz:$E2E_S3_REGION:s3" --config - \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

#!/usr/bin/env bash
# Install/fetch everything the local e2e cluster needs, idempotently, into
# ${E2E_CACHE:-<repo>/.cache/e2e}:
#   - Debian packages the scripts use (only when missing; one apt-get update)
#   - versitygw (S3 server), built with `go install` from the Go module proxy
#   - OpenSearch integ-test-zip + its repository-s3 plugin (Maven Central)
#   - Elasticsearch integ-test-zip, for bin/elasticsearch-keystore (Maven Central)
#   - other releases' integ-test-zips (E2E_TOOL_RELEASES, E2E_NODE_RELEASES), for the cli
#     backend's tests and the chart's node test
# Usage: bash tests/e2e/lib/deps.sh
set -euo pipefail

# shellcheck source=tests/e2e/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

MVN_DIR="$E2E_CACHE/maven"
MVN_REPO="$MVN_DIR/repository"
ARTIFACTS_DIR="$MVN_DIR/artifacts"
LOG_DIR="$E2E_CACHE/logs"
VERSITYGW_STAMP="$E2E_CACHE/bin/.versitygw-$E2E_VERSITYGW_VERSION"
INSTALLED_STAMP=".e2e-installed"
S3_PLUGIN_CLASS="org.opensearch.repositories.s3.S3RepositoryPlugin"
APT_UPDATED=false
BUILD_PID=""

log() { printf '[deps] %s\n' "$*" >&2; }
die() {
  printf '[deps] ERROR: %s\n' "$*" >&2
  exit 1
}

require_root() {
  [[ "$(id -u)" -eq 0 ]] || die "run as root (installs packages and creates the $E2E_USER user)"
}

# The S3 plugin is on Maven Central only from OpenSearch 3.1.0 on.
want_s3_plugin() { ((E2E_OPENSEARCH_MAJOR >= 3)); }

apt_install() {
  if [[ "$APT_UPDATED" == false ]]; then
    log "apt-get update"
    apt-get update -qq
    APT_UPDATED=true
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# install_packages: the tools the scripts call, each only if its command is missing.
install_packages() {
  local -A pkg_for=(
    [curl]=curl [jq]=jq [unzip]=unzip [setpriv]=util-linux [useradd]=passwd
    [setfattr]=attr [ps]=procps
  )
  local cmd missing=()
  for cmd in "${!pkg_for[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${pkg_for[$cmd]}")
  done
  # Debian's Java 17, whatever other Java is on PATH: Elasticsearch 7.x and OpenSearch 1.x/2.x
  # tools run on it (cli_tools.sh, the crash test, the chart's 7.x node).
  if [[ ! -d /usr/lib/jvm/java-17-openjdk-amd64 ]]; then
    missing+=(openjdk-17-jdk-headless)
  fi
  command -v mvn >/dev/null || missing+=(maven)
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
  if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
  fi
}

# find_go: print the go binary (PATH, then the usual /usr/local/go).
find_go() {
  if command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '%s\n' /usr/local/go/bin/go
  else
    return 1
  fi
}

have_versitygw() { [[ -x "$E2E_VERSITYGW_BIN" && -f "$VERSITYGW_STAMP" ]]; }

# start_versitygw_build: `go install` in the background (it overlaps the Maven
# downloads); sets BUILD_PID. Go >= 1.21 fetches a newer toolchain
# from the module proxy by itself if versitygw's go.mod asks for one.
start_versitygw_build() {
  local go_bin
  go_bin="$(find_go)" || die "no Go toolchain found (need Go >= 1.21 on PATH or in /usr/local/go)"
  mkdir -p "$E2E_CACHE/bin" "$LOG_DIR"
  GOBIN="$E2E_CACHE/bin" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" \
    "$go_bin" install -ldflags='-s -w' \
    "github.com/versity/versitygw/cmd/versitygw@$E2E_VERSITYGW_VERSION" \
    >"$LOG_DIR/versitygw-build.log" 2>&1 &
  BUILD_PID="$!"
}

# stop_build_on_exit: a failing run must not leave `go install` running.
stop_build_on_exit() {
  if [[ -n "$BUILD_PID" ]] && kill -0 "$BUILD_PID" 2>/dev/null; then
    kill "$BUILD_PID" 2>/dev/null || true
  fi
}

finish_versitygw_build() {
  if ! wait "$BUILD_PID"; then
    tail -n 30 "$LOG_DIR/versitygw-build.log" >&2
    die "go install versitygw@$E2E_VERSITYGW_VERSION failed (log: $LOG_DIR/versitygw-build.log)"
  fi
  "$E2E_VERSITYGW_BIN" --help >/dev/null || die "built versitygw does not run"
  rm -f "$E2E_CACHE"/bin/.versitygw-*
  touch "$VERSITYGW_STAMP"
}

# drop_downloads: once unpacked, the distribution zips (about 270 MB) are not
# needed again; keep the rest of the local Maven repository (plugins, jars).
drop_downloads() {
  rm -rf "$ARTIFACTS_DIR" "$MVN_REPO/org/opensearch/distribution" \
    "$MVN_REPO/org/elasticsearch/distribution"
}

installed() { [[ -f "$1/$INSTALLED_STAMP" ]]; }

need_maven() {
  installed "$OPENSEARCH_HOME" || return 0
  installed "$ES_HOME" || return 0
  if want_s3_plugin && ! installed "$E2E_S3_PLUGIN_DIR"; then
    return 0
  fi
  return 1
}

# write_pom: a throwaway pom whose runtime dependencies are exactly what is
# still missing. repository-s3's POM already excludes every transitive
# dependency, so copy-dependencies yields the plugin jar plus its declared
# runtime jars.
write_pom() {
  local deps=""
  if ! installed "$OPENSEARCH_HOME"; then
    deps+="<dependency><groupId>org.opensearch.distribution.integ-test-zip</groupId><artifactId>opensearch</artifactId><version>$E2E_OPENSEARCH_VERSION</version><type>zip</type></dependency>"
  fi
  if ! installed "$ES_HOME"; then
    deps+="<dependency><groupId>org.elasticsearch.distribution.integ-test-zip</groupId><artifactId>elasticsearch</artifactId><version>$E2E_ELASTICSEARCH_VERSION</version><type>zip</type></dependency>"
  fi
  if want_s3_plugin && ! installed "$E2E_S3_PLUGIN_DIR"; then
    deps+="<dependency><groupId>org.opensearch.plugin</groupId><artifactId>repository-s3</artifactId><version>$E2E_OPENSEARCH_VERSION</version></dependency>"
  fi
  mkdir -p "$MVN_DIR"
  cat >"$MVN_DIR/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.e2e</groupId>
  <artifactId>e2e-deps</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    $deps
  </dependencies>
</project>
EOF
}

fetch_maven_artifacts() {
  write_pom
  rm -rf "$ARTIFACTS_DIR"
  mkdir -p "$ARTIFACTS_DIR" "$LOG_DIR"
  log "resolving missing Maven artifacts (OpenSearch $E2E_OPENSEARCH_VERSION, Elasticsearch $E2E_ELASTICSEARCH_VERSION)"
  if ! mvn -B -q -f "$MVN_DIR/pom.xml" -Dmaven.repo.local="$MVN_REPO" \
    "org.apache.maven.plugins:maven-dependency-plugin:$E2E_MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$ARTIFACTS_DIR" >"$LOG_DIR/maven.log" 2>&1; then
    tail -n 30 "$LOG_DIR/maven.log" >&2
    die "Maven resolution failed (log: $LOG_DIR/maven.log)"
  fi
}

# The integ-test-zip of an engine release: its Maven group.
tool_group() { printf 'org.%s.distribution.integ-test-zip\n' "$1"; }

# missing_tool_releases: the E2E_TOOL_RELEASES and E2E_NODE_RELEASES not unpacked yet, one
# engine:version a line.
missing_tool_releases() {
  local release
  for release in $E2E_TOOL_RELEASES $E2E_NODE_RELEASES; do
    installed "$E2E_TOOL_HOMES/${release/:/-}" || printf '%s\n' "$release"
  done
}

# fetch_tool_releases: the older releases' zips in one Maven run (dependency:copy takes several
# versions of one artifact, which a pom's dependencies cannot), then unpacked.
fetch_tool_releases() {
  local releases release items="" engine version dir="$MVN_DIR/tools"
  mapfile -t releases < <(missing_tool_releases)
  ((${#releases[@]} > 0)) || return 0
  for release in "${releases[@]}"; do
    engine=${release%%:*} version=${release#*:}
    items+="<artifactItem><groupId>$(tool_group "$engine")</groupId><artifactId>$engine</artifactId><version>$version</version><type>zip</type></artifactItem>"
  done
  mkdir -p "$dir" "$LOG_DIR" "$E2E_TOOL_HOMES"
  cat >"$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.e2e</groupId>
  <artifactId>e2e-tool-releases</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>$E2E_MVN_DEPENDENCY_PLUGIN</version>
    <configuration><outputDirectory>$dir/zips</outputDirectory><artifactItems>$items</artifactItems></configuration>
  </plugin></plugins></build>
</project>
POM
  log "resolving other engine releases (cli backend tests, chart node test): ${releases[*]}"
  if ! mvn -B -q -f "$dir/pom.xml" -Dmaven.repo.local="$MVN_REPO" \
    "org.apache.maven.plugins:maven-dependency-plugin:$E2E_MVN_DEPENDENCY_PLUGIN:copy" \
    >"$LOG_DIR/maven-tools.log" 2>&1; then
    tail -n 30 "$LOG_DIR/maven-tools.log" >&2
    die "Maven resolution of ${releases[*]} failed (log: $LOG_DIR/maven-tools.log)"
  fi
  for release in "${releases[@]}"; do
    engine=${release%%:*} version=${release#*:}
    unpack_zip "$dir/zips/$engine-$version.zip" "$E2E_TOOL_HOMES/$engine-$version"
  done
  rm -rf "$dir/zips"
}

# unpack_zip ZIP DEST: unzip into DEST atomically (via a temp dir), stamp it.
unpack_zip() {
  local zip="$1" dest="$2" tmp top
  [[ -f "$zip" ]] || die "missing $zip"
  tmp="$(mktemp -d "$E2E_CACHE/.unpack.XXXXXX")"
  unzip -q "$zip" -d "$tmp"
  top="$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  [[ -n "$top" ]] || die "unexpected layout in $zip"
  rm -rf "$dest"
  mv "$top" "$dest"
  rmdir "$tmp"
  chmod -R go+rX,go-w "$dest"
  touch "$dest/$INSTALLED_STAMP"
}

# jar_artifact NAME.jar: artifactId part of a Maven-named jar (drop -<version>).
jar_artifact() {
  local base="${1%.jar}"
  printf '%s\n' "${base%-[0-9]*}"
}

# server_ships ARTIFACT: the distribution's lib/ already has that artifact.
# Such jars must not be in the plugin (OpenSearch's jar-hell check rejects
# duplicate classes between a plugin and the server class path).
server_ships() {
  local jar
  for jar in "$OPENSEARCH_HOME"/lib/*.jar; do
    [[ "$(jar_artifact "$(basename "$jar")")" == "$1" ]] && return 0
  done
  return 1
}

write_plugin_descriptor() {
  local dir="$1" java_version=11
  ((E2E_OPENSEARCH_MAJOR >= 3)) && java_version=21
  cat >"$dir/plugin-descriptor.properties" <<EOF
# Assembled by tests/e2e/lib/deps.sh from Maven Central artifacts.
description=The S3 repository plugin adds S3 repositories
version=$E2E_OPENSEARCH_VERSION
name=repository-s3
classname=$S3_PLUGIN_CLASS
java.version=$java_version
opensearch.version=$E2E_OPENSEARCH_VERSION
custom.foldername=
extended.plugins=
has.native.controller=false
EOF
}

# The permissions the AWS SDK v2 client needs inside OpenSearch's sandbox
# (on 3.x enforced by OpenSearch's Java agent: sockets and files).
write_plugin_policy() {
  cat >"$1/plugin-security.policy" <<'EOF'
// Written by tests/e2e/lib/deps.sh for the locally assembled repository-s3.
grant {
  // talk to the S3 endpoint (and resolve its name)
  permission java.net.SocketPermission "*", "connect,resolve";
  permission java.net.NetPermission "getProxySelector";
  // the SDK and Jackson use reflection and their own class loaders
  permission java.lang.RuntimePermission "accessDeclaredMembers";
  permission java.lang.RuntimePermission "getClassLoader";
  permission java.lang.RuntimePermission "setContextClassLoader";
  permission java.lang.reflect.ReflectPermission "suppressAccessChecks";
  // the SDK reads aws.* system properties and AWS_* environment variables
  permission java.util.PropertyPermission "*", "read";
  permission java.lang.RuntimePermission "getenv.*";
  // optional shared AWS config/credentials files (absent here)
  permission java.io.FilePermission "${user.home}${/}.aws${/}-", "read";
};
EOF
}

install_s3_plugin() {
  local dir="$E2E_S3_PLUGIN_DIR" tmp jar name count=0 skipped=()
  local plugin_jar="$ARTIFACTS_DIR/repository-s3-$E2E_OPENSEARCH_VERSION.jar"
  [[ -f "$plugin_jar" ]] || die "missing $plugin_jar"
  unzip -l "$plugin_jar" "${S3_PLUGIN_CLASS//.//}.class" >/dev/null ||
    die "$plugin_jar has no $S3_PLUGIN_CLASS"
  tmp="$(mktemp -d "$E2E_CACHE/.plugin.XXXXXX")"
  for jar in "$ARTIFACTS_DIR"/*.jar; do
    name="$(basename "$jar")"
    if server_ships "$(jar_artifact "$name")"; then
      skipped+=("$name")
      continue
    fi
    cp "$jar" "$tmp/"
    count=$((count + 1))
  done
  write_plugin_descriptor "$tmp"
  write_plugin_policy "$tmp"
  chmod 0755 "$tmp"
  chmod 0644 "$tmp"/*
  rm -rf "$dir"
  mv "$tmp" "$dir"
  touch "$dir/$INSTALLED_STAMP"
  log "repository-s3: $count jars; left out (server ships them): ${skipped[*]:-none}"
}

install_opensearch() {
  installed "$OPENSEARCH_HOME" && return 0
  log "unpacking OpenSearch $E2E_OPENSEARCH_VERSION"
  unpack_zip "$ARTIFACTS_DIR/opensearch-$E2E_OPENSEARCH_VERSION.zip" "$OPENSEARCH_HOME"
}

install_elasticsearch() {
  installed "$ES_HOME" && return 0
  log "unpacking Elasticsearch $E2E_ELASTICSEARCH_VERSION"
  unpack_zip "$ARTIFACTS_DIR/elasticsearch-$E2E_ELASTICSEARCH_VERSION.zip" "$ES_HOME"
  check_es_keystore_tool
}

# check_es_keystore_tool: create/add/list on a scratch keystore (first install only).
check_es_keystore_tool() {
  local conf
  conf="$(mktemp -d)"
  cp -r "$ES_HOME/config/." "$conf/"
  e2e_es_keystore "$conf" create >/dev/null 2>&1 || die "elasticsearch-keystore create failed (ES_JAVA_HOME=$ES_JAVA_HOME)"
  printf 'x' | e2e_es_keystore "$conf" add --stdin e2e.check >/dev/null 2>&1 || die "elasticsearch-keystore add failed"
  e2e_es_keystore "$conf" list 2>/dev/null | grep -qx e2e.check || die "elasticsearch-keystore list failed"
  rm -rf "$conf"
}

check_java() {
  [[ -n "$OPENSEARCH_JAVA_HOME" && -x "$OPENSEARCH_JAVA_HOME/bin/java" ]] ||
    die "no suitable JDK for OpenSearch $E2E_OPENSEARCH_VERSION (3.x needs Java 21+, e.g. /usr/lib/jvm/temurin-25-jdk-amd64)"
  [[ -n "$ES_JAVA_HOME" && -x "$ES_JAVA_HOME/bin/java" ]] || die "no JDK 17+ for the Elasticsearch keystore tool"
}

update_gitignore() {
  local file="$E2E_ROOT/.gitignore" entry
  for entry in .cache/ build/; do
    if [[ ! -f "$file" ]] || ! grep -qxF "$entry" "$file"; then
      printf '%s\n' "$entry" >>"$file"
    fi
  done
}

report() {
  local s3_line="not available for $E2E_OPENSEARCH_VERSION on Maven Central; snapshots use the fs repository (path.repo)"
  if e2e_has_s3_plugin; then
    s3_line="$E2E_OPENSEARCH_VERSION $E2E_S3_PLUGIN_DIR"
  fi
  printf 'versitygw      %s %s\n' "$E2E_VERSITYGW_VERSION" "$E2E_VERSITYGW_BIN"
  printf 'opensearch     %s %s (java %s)\n' "$E2E_OPENSEARCH_VERSION" "$OPENSEARCH_HOME" "$OPENSEARCH_JAVA_HOME"
  printf 'repository-s3  %s\n' "$s3_line"
  printf 'elasticsearch  %s %s (keystore tool only; java %s)\n' "$E2E_ELASTICSEARCH_VERSION" "$ES_HOME" "$ES_JAVA_HOME"
  printf 'tool releases  %s %s under %s\n' "$E2E_TOOL_RELEASES" "$E2E_NODE_RELEASES" "$E2E_TOOL_HOMES"
}

main() {
  require_root
  install_packages
  # A JDK may have just been installed: let env.sh look for it again.
  # shellcheck source=tests/e2e/lib/env.sh
  source "$E2E_LIB_DIR/env.sh"
  check_java
  mkdir -p "$E2E_CACHE"
  rm -rf "$E2E_CACHE"/.unpack.* "$E2E_CACHE"/.plugin.*
  update_gitignore
  e2e_ensure_user

  trap stop_build_on_exit EXIT
  have_versitygw || start_versitygw_build
  if need_maven; then
    fetch_maven_artifacts
    install_opensearch
    if want_s3_plugin && ! installed "$E2E_S3_PLUGIN_DIR"; then
      install_s3_plugin
    fi
    install_elasticsearch
  fi
  fetch_tool_releases
  drop_downloads
  [[ -z "$BUILD_PID" ]] || finish_versitygw_build
  BUILD_PID=""
  report
}

main "$@"

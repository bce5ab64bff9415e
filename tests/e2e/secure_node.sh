#!/usr/bin/env bash
# Two single-node Elasticsearch clusters for the agent's security tests (real nodes, no mocks):
#   secure  127.0.0.31:9200  security on, HTTPS with a certificate for a pod DNS name only,
#                            password-protected keystore holding bootstrap.password
#   plain   127.0.0.32:9200  security off, plain HTTP
# On the secure node: file-realm users agent-admin (role with the `manage` cluster privilege)
# and agent-monitor (`monitor` only), an API key and an OAuth2 token of each (a trial license,
# made by the node itself, allows tokens), and elastic with its bootstrap password.
# Usage: tests/e2e/secure_node.sh start|stop|status   (as root; the nodes run as esnode)
# Source it to get the layout (SECURE_* variables) without running anything.
# Every secret is random per start, lives in a 0600 file under $SECURE_SECRETS and reaches
# curl through a config file or stdin, never argv or output; `stop` deletes them.

# shellcheck source=tests/e2e/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

SECURE_WORK="${E2E_SECURE_WORK:-/tmp/es-secure}"
SECURE_LOCK="${E2E_SECURE_LOCK:-/tmp/es-secure.lock}"
SECURE_ADDR=127.0.0.31
PLAIN_ADDR=127.0.0.32
SECURE_HTTP_PORT=9200
SECURE_TRANSPORT_PORT=9300
# The only name in the node certificate: a client that connects by number must verify by name.
SECURE_SERVER_NAME="es-0.es-headless.demo.svc.cluster.local"
SECURE_NODE_DIR="$SECURE_WORK/secure"
PLAIN_NODE_DIR="$SECURE_WORK/plain"
SECURE_CONF="$SECURE_NODE_DIR/config"
PLAIN_CONF="$PLAIN_NODE_DIR/config"
SECURE_TLS="$SECURE_WORK/tls"
SECURE_CA="$SECURE_TLS/ca.pem"
# A second CA with the same subject: a client that trusts only it must refuse the node.
SECURE_OTHER_CA="$SECURE_TLS/other-ca.pem"
SECURE_SECRETS="$SECURE_WORK/secrets"
SECURE_KEYSTORE_PASSWORD_FILE="$SECURE_SECRETS/keystore-password"
# username + password files of agent-admin, for the agent's --credentials-dir
SECURE_CREDENTIALS_DIR="$SECURE_SECRETS/credentials"
SECURE_URL="https://$SECURE_SERVER_NAME:$SECURE_HTTP_PORT"
PLAIN_URL="http://$PLAIN_ADDR:$SECURE_HTTP_PORT"
SECURE_START_TIMEOUT="${E2E_SECURE_START_TIMEOUT:-240}"
SECURE_STOP_TIMEOUT="${E2E_SECURE_STOP_TIMEOUT:-30}"
SECURE_PID_DIR="$SECURE_WORK/run"
SECURE_MARKER="$SECURE_WORK/.es-secure-work"
# The layout, for scripts that source this file.
export SECURE_WORK SECURE_ADDR PLAIN_ADDR SECURE_HTTP_PORT SECURE_SERVER_NAME SECURE_NODE_DIR \
  PLAIN_NODE_DIR SECURE_CONF PLAIN_CONF SECURE_TLS SECURE_CA SECURE_OTHER_CA SECURE_SECRETS \
  SECURE_KEYSTORE_PASSWORD_FILE SECURE_CREDENTIALS_DIR SECURE_URL PLAIN_URL

# secure_curl [CURL ARGS...] PATH: a request to the secure node by its certificate's name
# (resolved to 127.0.0.31 by curl itself), trusting only the test CA. Pass credentials with
# `--config FILE`; add --fail-with-body or --write-out as the caller needs.
secure_curl() {
  local path="${*: -1}"
  curl --silent --show-error --connect-timeout 5 --max-time 60 --cacert "$SECURE_CA" \
    --resolve "$SECURE_SERVER_NAME:$SECURE_HTTP_PORT:$SECURE_ADDR" "${@:1:$#-1}" \
    --url "$SECURE_URL$path"
}

# secure_auth_config USER [basic|api-key|bearer]: the curl config file that authenticates as USER.
secure_auth_config() { printf '%s/%s.%s.curl\n' "$SECURE_SECRETS" "$1" "${2:-basic}"; }

# secure_es_keystore ARGS...: the engine's own keystore tool on the secure node's config, as
# esnode. A protected keystore reads its password from the first line of standard input.
secure_es_keystore() {
  ES_PATH_CONF="$SECURE_CONF" ES_JAVA_HOME="$ES_JAVA_HOME" as_esnode "$ES_HOME/bin/elasticsearch-keystore" "$@"
}

log() { printf '[secure_node] %s\n' "$*" >&2; }
die() {
  printf '[secure_node] ERROR: %s\n' "$*" >&2
  exit 1
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# port_busy ADDR PORT: something already listens there.
port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# secret_file NAME: a new, empty 0600 file of esnode's under the secrets dir (path printed).
secret_file() {
  local file="$SECURE_SECRETS/$1"
  install -o "$E2E_USER" -g "$E2E_USER" -m 0600 /dev/null "$file"
  printf '%s\n' "$file"
}

# --- pid files: line 1 the pid, line 2 a string its command line contains -------------

write_pid() { printf '%s\n%s\n' "$2" "$3" >"$SECURE_PID_DIR/$1.pid"; }

# node_pid NAME: the recorded pid if that process still runs and is still ours.
node_pid() {
  local file="$SECURE_PID_DIR/$1.pid" pid marker
  [[ -f "$file" ]] || return 1
  { read -r pid && read -r marker; } <"$file" || return 1
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
  printf '%s\n' "$pid"
}

# stop_node NAME: TERM its process group (the CLI JVM and the server JVM it forks), wait,
# then KILL what is left.
stop_node() {
  local name="$1" pid waited=0
  if pid="$(node_pid "$name")"; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    while kill -0 -- "-$pid" 2>/dev/null && ((waited < SECURE_STOP_TIMEOUT * 4)); do
      sleep 0.25
      waited=$((waited + 1))
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
      log "$name did not stop in ${SECURE_STOP_TIMEOUT}s, killing it"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$SECURE_PID_DIR/$name.pid"
}

# --- certificates (openssl CLI) --------------------------------------------------------

# new_ca NAME: a self-signed CA (NAME.pem, NAME.key) with the one test subject.
new_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/O=es-agent e2e/CN=es-secure test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$SECURE_TLS/$1.key" -out "$SECURE_TLS/$1.pem" 2>/dev/null
}

# new_leaf NAME SUBJECT_ALT_NAME EXTENDED_KEY_USAGE: a key and a certificate signed by the CA.
new_leaf() {
  local name="$1" san="$2" eku="$3"
  openssl req -new -newkey rsa:2048 -nodes -subj "/O=es-agent e2e/CN=$name" \
    -keyout "$SECURE_TLS/$name.key" -out "$SECURE_TLS/$name.csr" 2>/dev/null
  openssl x509 -req -in "$SECURE_TLS/$name.csr" -CA "$SECURE_CA" -CAkey "$SECURE_TLS/ca.key" \
    -CAcreateserial -days 3 -out "$SECURE_TLS/$name.pem" -extfile <(
      printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\n' "$san"
      printf 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' "$eku"
    ) 2>/dev/null
  rm -f "$SECURE_TLS/$name.csr"
}

# make_certificates: the CA, the node's certificate (its pod DNS name only), a certificate
# for the agent's own HTTPS (name and 127.0.0.31), one with the headless service's wildcard
# name alone, a client certificate, and a second CA.
make_certificates() {
  install -d -m 0755 "$SECURE_TLS"
  new_ca ca
  new_ca other-ca
  new_leaf node "DNS:$SECURE_SERVER_NAME" serverAuth
  new_leaf agent "DNS:$SECURE_SERVER_NAME,IP:$SECURE_ADDR" serverAuth
  # As KubeBlocks' issuer makes them: the headless service's names, no address.
  new_leaf agent-by-name "DNS:*.${SECURE_SERVER_NAME#*.}" serverAuth
  new_leaf client "DNS:backup-job.demo.svc.cluster.local" clientAuth
  rm -f "$SECURE_TLS/ca.srl" "$SECURE_TLS/other-ca.key"
  chmod 0644 "$SECURE_TLS"/*.pem
  chmod 0600 "$SECURE_TLS"/*.key
  # The node and the agent (both esnode) read their keys; the CA key stays root's.
  chown "$E2E_USER:$E2E_USER" "$SECURE_TLS/agent.key" "$SECURE_TLS/agent-by-name.key" "$SECURE_TLS/client.key"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$SECURE_CONF/certs"
  install -o "$E2E_USER" -g "$E2E_USER" -m 0644 "$SECURE_TLS/node.pem" "$SECURE_CA" "$SECURE_CONF/certs/"
  install -o "$E2E_USER" -g "$E2E_USER" -m 0600 "$SECURE_TLS/node.key" "$SECURE_CONF/certs/"
  rm -f "$SECURE_TLS/node.key"
}

# --- a stand-in for three analysis components ------------------------------------------------
# The .security index (native users, API keys) analyses e-mail addresses with three components
# of the analysis-common module, pattern_capture, uax_url_email and unique, which this
# distribution lacks and no reachable registry publishes. Without them the node cannot create
# the index, so it has no API keys. A plugin compiled here from Lucene's own classes supplies
# the three; the secure node runs from a hard-linked copy of ES_HOME that holds it. Only the
# e-mail field of .security goes through it; nothing under test does. `unique` is Lucene's
# RemoveDuplicatesTokenFilter (same-position duplicates), narrower than the module's.
SECURE_HOME="$SECURE_WORK/home"
ANALYSIS_PLUGIN=e2e-security-analysis

write_analysis_plugin_source() {
  cat >"$1/SecurityIndexAnalysis.java" <<'EOF'
package e2e.securityanalysis;

import java.util.Map;
import java.util.regex.Pattern;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.AbstractTokenizerFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

/** Stand-in for the analysis-common components the .security index mapping names. */
public final class SecurityIndexAnalysis extends Plugin implements AnalysisPlugin {
  @Override
  public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
    return Map.of("pattern_capture", (index, env, name, settings) -> {
      boolean preserve = settings.getAsBoolean("preserve_original", true);
      Pattern[] patterns =
          settings.getAsList("patterns").stream().map(Pattern::compile).toArray(Pattern[]::new);
      return new AbstractTokenFilterFactory(name, settings) {
        @Override
        public TokenStream create(TokenStream in) {
          return new PatternCaptureGroupTokenFilter(in, preserve, patterns);
        }
      };
    }, "unique", (index, env, name, settings) -> new AbstractTokenFilterFactory(name, settings) {
      @Override
      public TokenStream create(TokenStream in) {
        return new RemoveDuplicatesTokenFilter(in);
      }
    });
  }

  @Override
  public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
    return Map.of("uax_url_email", (index, env, name, settings) ->
        new AbstractTokenizerFactory(index, settings, name) {
          @Override
          public Tokenizer create() {
            return new UAX29URLEmailTokenizer();
          }
        });
  }
}
EOF
}

# make_secure_home: the copy of ES_HOME (hard links, no space) with the plugin in plugins/.
make_secure_home() {
  local build="$SECURE_WORK/plugin-build" dir="$SECURE_HOME/plugins/$ANALYSIS_PLUGIN"
  cp -al "$ES_HOME" "$SECURE_HOME"
  install -d "$build/src" "$build/classes" "$dir"
  write_analysis_plugin_source "$build/src"
  "$ES_JAVA_HOME/bin/javac" -nowarn --release 17 -cp "$ES_HOME/lib/*" -d "$build/classes" \
    "$build/src/SecurityIndexAnalysis.java" >"$build/javac.log" 2>&1 ||
    die "the analysis stand-in did not compile (see $build/javac.log)"
  "$ES_JAVA_HOME/bin/jar" --create --file "$dir/$ANALYSIS_PLUGIN.jar" -C "$build/classes" .
  cat >"$dir/plugin-descriptor.properties" <<EOF
description=stand-in for pattern_capture, uax_url_email and unique (tests/e2e/secure_node.sh)
version=1.0.0
name=$ANALYSIS_PLUGIN
classname=e2e.securityanalysis.SecurityIndexAnalysis
java.version=17
elasticsearch.version=$E2E_ELASTICSEARCH_VERSION
EOF
  chmod -R go+rX "$dir"
}

# --- nodes -----------------------------------------------------------------------------

# prepare_node DIR ADDR NAME: the node's own copy of the distribution's config.
prepare_node() {
  local dir="$1" addr="$2" name="$3"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0750 "$dir" "$dir/config" "$dir/data" "$dir/logs" "$dir/tmp"
  cp -r "$ES_HOME/config/." "$dir/config/"
  cat >"$dir/config/elasticsearch.yml" <<EOF
# Generated by tests/e2e/secure_node.sh.
cluster.name: $name
node.name: $name
network.host: $addr
http.port: $SECURE_HTTP_PORT
transport.port: $SECURE_TRANSPORT_PORT
discovery.type: single-node
path.data: $dir/data
path.logs: $dir/logs
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  chown -R "$E2E_USER:$E2E_USER" "$dir"
}

write_secure_settings() {
  cat >>"$SECURE_CONF/elasticsearch.yml" <<EOF
xpack.security.enabled: true
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.certificate: certs/node.pem
xpack.security.http.ssl.key: certs/node.key
xpack.security.http.ssl.certificate_authorities: [certs/ca.pem]
xpack.security.transport.ssl.enabled: false
xpack.security.authc.api_key.enabled: true
xpack.security.authc.token.enabled: true
# the test's bearer token must outlive a whole run (default 20m; 1h is the maximum)
xpack.security.authc.token.timeout: 1h
EOF
}

write_plain_settings() {
  printf 'xpack.security.enabled: false\n' >>"$PLAIN_CONF/elasticsearch.yml"
}

# make_keystore: the secure node's keystore, protected by a random password, holding the
# elastic user's random bootstrap password. Both values travel on the tool's stdin.
make_keystore() {
  local keystore_password elastic_password
  keystore_password="$(random_hex 16)"
  elastic_password="$(random_hex 16)"
  printf '%s' "$keystore_password" >"$(secret_file keystore-password)"
  printf '%s' "$elastic_password" >"$(secret_file elastic.password)"
  printf '%s\n%s\n' "$keystore_password" "$keystore_password" | secure_es_keystore create -p >/dev/null 2>"$SECURE_WORK/keystore-tool.log"
  printf '%s\n%s\n' "$keystore_password" "$elastic_password" |
    secure_es_keystore add --stdin bootstrap.password >/dev/null 2>>"$SECURE_WORK/keystore-tool.log"
}

# start_node NAME HOME DIR [PASSWORD_FILE]: HOME/bin/elasticsearch as esnode in its own
# process group.
# A protected keystore's password goes to the CLI on stdin, which is how 8.x reads it
# (KeyStoreLoader prompts "Enter password for the elasticsearch keystore" on its terminal);
# KEYSTORE_PASSWORD_FILE is only a feature of the Docker image's entrypoint.
start_node() {
  local name="$1" home="$2" dir="$3" stdin="${4:-/dev/null}"
  ES_PATH_CONF="$dir/config" ES_TMPDIR="$dir/tmp" ES_JAVA_HOME="$ES_JAVA_HOME" \
    ES_JAVA_OPTS="-Xms$E2E_HEAP -Xmx$E2E_HEAP $E2E_EXTRA_JAVA_OPTS" \
    setsid "${E2E_AS_ESNODE[@]}" "$home/bin/elasticsearch" <"$stdin" >"$dir/stdout.log" 2>&1 {SECURE_LOCK_FD}>&- &
  # setsid does not fork here and setpriv/env/the launcher script exec: $! is the CLI JVM,
  # leader of a group that also holds the server JVM; both command lines name HOME.
  write_pid "$name" "$!" "$home/"
}

node_log_tail() {
  local dir="$1"
  echo "---- tail of $dir/stdout.log" >&2
  tail -n 30 "$dir/stdout.log" >&2 2>/dev/null || true
}

# wait_until NAME DIR COMMAND...: until COMMAND succeeds, while the node runs.
wait_until() {
  local name="$1" dir="$2" deadline=$((SECONDS + SECURE_START_TIMEOUT))
  shift 2
  until "$@"; do
    if ! node_pid "$name" >/dev/null; then
      node_log_tail "$dir"
      die "$name exited during start"
    fi
    if ((SECONDS >= deadline)); then
      node_log_tail "$dir"
      die "$name did not come up in ${SECURE_START_TIMEOUT}s"
    fi
    sleep 1
  done
}

secure_up() {
  secure_curl --fail --output /dev/null --max-time 10 --config "$(secure_auth_config elastic)" \
    '/_cluster/health?wait_for_status=yellow&timeout=5s' 2>/dev/null
}

plain_up() {
  curl --silent --fail --output /dev/null --connect-timeout 2 --max-time 10 \
    "$PLAIN_URL/_cluster/health?wait_for_status=yellow&timeout=5s"
}

# --- users, roles, API key, token --------------------------------------------------------

# as_elastic METHOD PATH: a request with elastic's credentials, the JSON body on stdin
# (it may carry a password); prints the answer, fails on an HTTP error.
as_elastic() {
  secure_curl --fail-with-body --config "$(secure_auth_config elastic)" --request "$1" \
    --header 'Content-Type: application/json' --data-binary @- "$2"
}

write_basic_config() { # write_basic_config USER: the curl config for USER's password
  local user="$1" password
  password="$(<"$SECURE_SECRETS/$user.password")"
  printf 'user = "%s:%s"\n' "$user" "$password" >"$(secret_file "$user.basic.curl")"
}

write_header_config() { # write_header_config USER KIND SCHEME: Authorization: SCHEME <file>
  local user="$1" kind="$2" scheme="$3" value
  value="$(<"$SECURE_SECRETS/$user.$kind")"
  printf 'header = "Authorization: %s %s"\n' "$scheme" "$value" >"$(secret_file "$user.$kind.curl")"
}

# write_file_realm: the two roles in roles.yml and the two users in the file realm (their
# random passwords reach elasticsearch-users on stdin). File-based because this distribution
# has no analysis-common module, without which the .security index cannot be created.
write_file_realm() {
  local user role
  printf 'agent_manage:\n  cluster: [manage]\nagent_monitor:\n  cluster: [monitor]\n' >>"$SECURE_CONF/roles.yml"
  for user in agent-admin:agent_manage agent-monitor:agent_monitor; do
    role="${user#*:}"
    user="${user%%:*}"
    random_hex 16 >"$(secret_file "$user.password")"
    printf '%s\n%s\n' "$(<"$SECURE_SECRETS/$user.password")" "$(<"$SECURE_SECRETS/$user.password")" |
      ES_PATH_CONF="$SECURE_CONF" ES_JAVA_HOME="$ES_JAVA_HOME" as_esnode "$ES_HOME/bin/elasticsearch-users" \
        useradd "$user" -r "$role" >>"$SECURE_WORK/keystore-tool.log" 2>&1
    write_basic_config "$user"
  done
}

# grant_api_key USER: an API key owned by USER (granted by elastic with USER's password, so
# USER needs no API key privilege); its "encoded" form is what goes after "ApiKey ". API keys
# live in the .security index, which this distribution cannot create (its mapping's "email"
# analyzer needs the analysis-common module): then there is no key file, and the tests say so.
grant_api_key() {
  local user="$1" answer
  if ! answer="$(PASSWORD="$(<"$SECURE_SECRETS/$user.password")" jq -n --arg user "$user" \
    '{grant_type: "password", username: $user, password: env.PASSWORD, api_key: {name: "e2e-\($user)"}}' |
    as_elastic POST /_security/api_key/grant 2>/dev/null)"; then
    log "no API key for $user: $(jq -r '.error.reason // "no answer"' <<<"$answer" 2>/dev/null)"
    return 0
  fi
  jq -r '.encoded' <<<"$answer" >"$(secret_file "$user.api-key")"
  write_header_config "$user" api-key ApiKey
}

# start_trial: OAuth2 tokens need more than the basic license; the trial is generated by the
# node itself (no download) and lasts 30 days, longer than any run.
start_trial() {
  secure_curl --fail-with-body --config "$(secure_auth_config elastic)" --request POST \
    '/_license/start_trial?acknowledge=true' |
    jq -e '.trial_was_started == true or (.error_message // "" | test("already"))' >/dev/null ||
    die "the trial license did not start"
}

# oauth2_token USER: an access token for USER (password grant).
oauth2_token() {
  local user="$1" answer
  answer="$(PASSWORD="$(<"$SECURE_SECRETS/$user.password")" jq -n --arg user "$user" \
    '{grant_type: "password", username: $user, password: env.PASSWORD}' |
    as_elastic POST /_security/oauth2/token)" || die "no OAuth2 token for $user"
  jq -r '.access_token' <<<"$answer" >"$(secret_file "$user.bearer")"
  write_header_config "$user" bearer Bearer
}

create_principals() {
  start_trial
  grant_api_key agent-admin
  grant_api_key agent-monitor
  oauth2_token agent-admin
  oauth2_token agent-monitor
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0700 "$SECURE_CREDENTIALS_DIR"
  install -o "$E2E_USER" -g "$E2E_USER" -m 0600 /dev/null "$SECURE_CREDENTIALS_DIR/username"
  install -o "$E2E_USER" -g "$E2E_USER" -m 0600 /dev/null "$SECURE_CREDENTIALS_DIR/password"
  printf 'agent-admin' >"$SECURE_CREDENTIALS_DIR/username"
  cat "$SECURE_SECRETS/agent-admin.password" >"$SECURE_CREDENTIALS_DIR/password"
}

# --- commands ----------------------------------------------------------------------------

require_root() {
  [[ "$(id -u)" -eq 0 ]] || die "run as root (the nodes run as $E2E_USER via setpriv)"
}

# reset_work_dir: wipe SECURE_WORK, only if it is ours (marker) or empty.
reset_work_dir() {
  case "$SECURE_WORK" in
    "" | / | /tmp | /root | /home) die "refusing to use SECURE_WORK=$SECURE_WORK" ;;
  esac
  if [[ -e "$SECURE_WORK" && ! -f "$SECURE_MARKER" ]] && [[ -n "$(ls -A "$SECURE_WORK" 2>/dev/null)" ]]; then
    die "$SECURE_WORK exists and is not ours (no $SECURE_MARKER); remove it yourself"
  fi
  rm -rf "$SECURE_WORK"
  install -d -m 0755 "$SECURE_WORK" "$SECURE_PID_DIR"
  touch "$SECURE_MARKER"
  install -d -o "$E2E_USER" -g "$E2E_USER" -m 0700 "$SECURE_SECRETS"
}

both_running() { node_pid secure >/dev/null && node_pid plain >/dev/null && secure_up && plain_up; }

check_ports_free() {
  local addr port
  for addr in "$SECURE_ADDR" "$PLAIN_ADDR"; do
    for port in "$SECURE_HTTP_PORT" "$SECURE_TRANSPORT_PORT"; do
      if port_busy "$addr" "$port"; then die "$addr:$port is already in use"; fi
    done
  done
}

# locked COMMAND...: COMMAND under the lock that serialises start and stop.
# The nodes must not inherit the lock's descriptor (start_node closes SECURE_LOCK_FD).
locked() {
  exec {SECURE_LOCK_FD}>"$SECURE_LOCK"
  flock -w 600 "$SECURE_LOCK_FD" || die "could not take $SECURE_LOCK within 600s"
  "$@"
  exec {SECURE_LOCK_FD}>&-
}

on_start_failure() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)); then
    log "start failed: stopping what was started (logs kept under $SECURE_WORK)"
    do_stop || true
  fi
  exit "$rc"
}

do_start() {
  local t0=$SECONDS
  if [[ -f "$SECURE_MARKER" ]] && both_running; then
    log "already running (work dir $SECURE_WORK)"
    return 0
  fi
  [[ -x "$ES_HOME/bin/elasticsearch" ]] || die "no Elasticsearch at $ES_HOME: run tests/e2e/lib/deps.sh"
  [[ -n "$ES_JAVA_HOME" ]] || die "no JDK 17+ for Elasticsearch"
  do_stop
  check_ports_free
  e2e_ensure_user
  reset_work_dir
  trap on_start_failure EXIT
  prepare_node "$SECURE_NODE_DIR" "$SECURE_ADDR" es-secure
  prepare_node "$PLAIN_NODE_DIR" "$PLAIN_ADDR" es-plain
  write_secure_settings
  write_plain_settings
  make_certificates
  make_keystore
  write_basic_config elastic
  write_file_realm
  make_secure_home
  start_node secure "$SECURE_HOME" "$SECURE_NODE_DIR" "$SECURE_KEYSTORE_PASSWORD_FILE"
  start_node plain "$ES_HOME" "$PLAIN_NODE_DIR"
  wait_until secure "$SECURE_NODE_DIR" secure_up
  wait_until plain "$PLAIN_NODE_DIR" plain_up
  log "nodes up in $((SECONDS - t0))s"
  create_principals
  trap - EXIT
  log "started in $((SECONDS - t0))s: $SECURE_URL (at $SECURE_ADDR), $PLAIN_URL; work dir $SECURE_WORK"
}

do_stop() {
  stop_node secure
  stop_node plain
  # The secrets were made for this run alone; the logs stay for reading.
  rm -rf "$SECURE_SECRETS" "$SECURE_TLS"/*.key "$SECURE_CONF/certs/node.key"
}

cmd_status() {
  local ok=0
  if node_pid secure >/dev/null && secure_up; then
    printf '%-7s up   %s (at %s) %s\n' secure "$SECURE_URL" "$SECURE_ADDR" "$SECURE_NODE_DIR"
  else
    printf '%-7s down %s\n' secure "$SECURE_URL"
    ok=1
  fi
  if node_pid plain >/dev/null && plain_up; then
    printf '%-7s up   %s %s\n' plain "$PLAIN_URL" "$PLAIN_NODE_DIR"
  else
    printf '%-7s down %s\n' plain "$PLAIN_URL"
    ok=1
  fi
  return "$ok"
}

main() {
  set -euo pipefail
  case "${1:-}" in
    start)
      require_root
      locked do_start
      ;;
    stop)
      require_root
      locked do_stop
      ;;
    status) cmd_status ;;
    *)
      echo "usage: $0 start|stop|status" >&2
      exit 2
      ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi

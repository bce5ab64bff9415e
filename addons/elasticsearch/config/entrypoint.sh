#!/usr/bin/env bash
# Start-up of the engine container: elasticsearch.yml's ${NAME} placeholders (the pod's name,
# IP, bind address) are replaced by their values from the environment, so that the engine's
# tools read the file in any environment (the agent's cli backend runs the keystore tool with a
# clean one); with TLS on, the certificates KubeBlocks mounted are copied into the config dir
# (the engine reads only there); the keystore is made ready (created, with
# the keystore password when one is configured, and holding the elastic user's bootstrap
# password when security is on); the first-start-only discovery block is dropped once the node
# has joined a cluster; then the node runs, its keystore password on standard input.
#
# Environment: ES_HOME (/usr/share/elasticsearch), ES_PATH_CONF ($ES_HOME/config),
# ES_KEYSTORE_PASSWORD_FILE (none), TLS_ENABLED, TLS_DIR (/etc/pki/tls), ELASTIC_PASSWORD.
set -euo pipefail
# Never traced: the keystore and elastic passwords pass through this shell's variables.
{ set +x; } 2>/dev/null

ES_HOME=${ES_HOME:-/usr/share/elasticsearch}
CONFIG_DIR=${ES_PATH_CONF:-$ES_HOME/config}
TLS_DIR=${TLS_DIR:-/etc/pki/tls}
KEYSTORE=$CONFIG_DIR/elasticsearch.keystore
KEYSTORE_PASSWORD=""

log() { printf 'entrypoint: %s\n' "$*"; }
die() {
  printf 'entrypoint: ERROR: %s\n' "$*" >&2
  exit 1
}

security_on() { [[ ${TLS_ENABLED:-false} == true ]]; }

keystore_tool() { "$ES_HOME/bin/elasticsearch-keystore" "$@"; }

# The password file as the agent reads it: its bytes, less one trailing newline; empty means
# no password.
read_keystore_password() {
  local file=${ES_KEYSTORE_PASSWORD_FILE:-} content
  [[ -n $file ]] || return 0
  [[ -r $file ]] || die "keystore password file $file is missing or unreadable"
  content=$(
    cat -- "$file"
    printf x
  )
  content=${content%x}
  content=${content%$'\n'}
  [[ $content != *$'\n'* ]] || die "keystore password file $file holds more than one line"
  KEYSTORE_PASSWORD=$content
}

# The placeholders of the rendered elasticsearch.yml, each replaced by its variable's value.
resolve_placeholders() {
  local file=$CONFIG_DIR/elasticsearch.yml text name value
  text=$(
    cat -- "$file"
    printf x
  )
  text=${text%x}
  while [[ $text =~ \$\{([A-Za-z_][A-Za-z0-9_]*)\} ]]; do
    name=${BASH_REMATCH[1]}
    [[ -n ${!name:-} ]] || die "elasticsearch.yml needs \${$name}, which is not set in the container's environment"
    value=${!name}
    [[ $value != *"\${"* ]] || die "$name holds a placeholder itself: '$value'"
    text=${text//"\${$name}"/"$value"}
  done
  printf '%s' "$text" >"$CONFIG_DIR/.elasticsearch.yml.new"
  chmod 0640 "$CONFIG_DIR/.elasticsearch.yml.new"
  mv -f "$CONFIG_DIR/.elasticsearch.yml.new" "$file"
}

copy_tls_files() {
  security_on || return 0
  local f
  mkdir -p "$CONFIG_DIR/tls"
  for f in ca.pem cert.pem key.pem; do
    [[ -s $TLS_DIR/$f ]] || die "TLS is on but $TLS_DIR/$f is missing or empty"
    cp "$TLS_DIR/$f" "$CONFIG_DIR/tls/.$f.new"
    chmod 0600 "$CONFIG_DIR/tls/.$f.new"
    mv -f "$CONFIG_DIR/tls/.$f.new" "$CONFIG_DIR/tls/$f"
  done
  log "TLS certificates copied into $CONFIG_DIR/tls"
}

# Whether the keystore has a password: asked once it is ready, the tool's answer kept.
KEYSTORE_HAS_PASSWORD=false
keystore_protected() { keystore_tool has-passwd --silent </dev/null; }

# keystore_stdin LINE...: standard input for the tool, the keystore password first if it has one.
keystore_stdin() {
  if [[ $KEYSTORE_HAS_PASSWORD == true ]]; then
    printf '%s\n' "$KEYSTORE_PASSWORD" "$@"
  elif (($# > 0)); then
    printf '%s\n' "$@"
  fi
}

ensure_keystore() {
  if [[ ! -f $KEYSTORE ]]; then
    if [[ -n $KEYSTORE_PASSWORD ]]; then
      printf '%s\n%s\n' "$KEYSTORE_PASSWORD" "$KEYSTORE_PASSWORD" | keystore_tool create -p >/dev/null
      log "keystore created, with the keystore password"
    else
      keystore_tool create </dev/null >/dev/null
      log "keystore created, without a password"
    fi
  elif [[ -n $KEYSTORE_PASSWORD ]] && ! keystore_protected; then
    # An unprotected keystore (the image's, or one from before the password was configured):
    # the tool asks for the new password twice.
    printf '%s\n%s\n' "$KEYSTORE_PASSWORD" "$KEYSTORE_PASSWORD" | keystore_tool passwd >/dev/null
    log "keystore password set on the existing keystore"
  fi
  if keystore_protected; then
    KEYSTORE_HAS_PASSWORD=true
    [[ -n $KEYSTORE_PASSWORD ]] ||
      die "the keystore $KEYSTORE has a password, but no keystore password is configured"
  fi
}

# With security on, the elastic user's password is bootstrap.password until the security index
# holds one.
ensure_bootstrap_password() {
  security_on || return 0
  [[ -n ${ELASTIC_PASSWORD:-} ]] || die "security is on but ELASTIC_PASSWORD (the elastic account) is empty"
  local names
  names=$(keystore_stdin | keystore_tool list)
  if grep -qx 'bootstrap.password' <<<"$names"; then
    return 0
  fi
  # The value as the answer to the tool's prompt, not with --stdin (-x): Elasticsearch 7's tool,
  # after a keystore password line, stores an empty value from --stdin and still exits 0.
  keystore_stdin "$ELASTIC_PASSWORD" | keystore_tool add --force bootstrap.password >/dev/null
  log "bootstrap.password added to the keystore"
}

# cluster.initial_master_nodes is for a cluster's very first election only: a node that has
# state on its data path must not be given it again.
drop_initial_master_nodes() {
  local data=$ES_HOME/data
  if [[ -d $data/_state || -d $data/nodes ]]; then
    sed -i '/^# INITIAL_MASTER_NODES_BEGIN$/,/^# INITIAL_MASTER_NODES_END$/d' "$CONFIG_DIR/elasticsearch.yml"
    log "node has joined a cluster before: cluster.initial_master_nodes dropped"
  fi
}

start_node() {
  local cmd=("$ES_HOME/bin/elasticsearch")
  [[ -x /bin/tini ]] && cmd=(/bin/tini -s -- "${cmd[@]}")
  log "starting Elasticsearch ${ELASTICSEARCH_VERSION:-} as $(id -un 2>/dev/null || id -u)"
  # The password reaches the node through a pipe: never a file, an argument or the environment.
  exec "${cmd[@]}" < <(keystore_stdin)
}

main() {
  [[ -f $CONFIG_DIR/elasticsearch.yml ]] || die "$CONFIG_DIR/elasticsearch.yml is missing (did prepare-config run?)"
  resolve_placeholders
  read_keystore_password
  copy_tls_files
  ensure_keystore
  ensure_bootstrap_password
  drop_initial_master_nodes
  start_node
}

main "$@"

#!/usr/bin/env bash
# Init container of Elasticsearch 7.x pods: installs the plugins in PLUGINS (comma-separated
# sources for elasticsearch-plugin install: a plugin's name, or the URL of its zip) into the
# pod's plugins volume. repository-s3, which S3 snapshots need on 7.x, is the default. A plugin
# already there (from an earlier start of the pod) is left as it is.
set -euo pipefail

ES_HOME=${ES_HOME:-/usr/share/elasticsearch}
PLUGINS=${PLUGINS:-repository-s3}

log() { printf 'install-plugins: %s\n' "$*"; }
die() {
  printf 'install-plugins: ERROR: %s\n' "$*" >&2
  exit 1
}

# plugin_name SOURCE: repository-s3 for repository-s3, .../repository-s3-7.17.29.zip, ...
plugin_name() {
  local name=${1##*/}
  name=${name%.zip}
  printf '%s\n' "${name%%-[0-9]*}"
}

install_plugin() {
  local source=$1 name
  name=$(plugin_name "$source")
  [[ $name =~ ^[a-z][a-z0-9_-]*$ ]] || die "cannot tell the plugin's name from '$source'"
  if [[ -d $ES_HOME/plugins/$name ]]; then
    log "$name is already installed"
    return 0
  fi
  log "installing $name from $source"
  "$ES_HOME/bin/elasticsearch-plugin" install --batch "$source" ||
    die "elasticsearch-plugin could not install $name from $source"
}

main() {
  local sources source
  IFS=',' read -ra sources <<<"$PLUGINS"
  for source in "${sources[@]}"; do
    source=${source// /}
    [[ -z $source ]] || install_plugin "$source"
  done
  log "plugins: $(find "$ES_HOME/plugins" -mindepth 1 -maxdepth 1 -printf '%f ')"
}

main "$@"

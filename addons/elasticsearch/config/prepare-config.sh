#!/usr/bin/env bash
# Init container of every Elasticsearch pod: fills the config volume (which the engine and the
# agent share; mounted at /mnt/config here) with the image's default config files, then puts in
# the elasticsearch.yml that KubeBlocks rendered for the component. What an earlier start of
# the pod left there, the keystore above all, is kept.
set -euo pipefail

ES_HOME=${ES_HOME:-/usr/share/elasticsearch}
CONFIG_DIR=${CONFIG_DIR:-/mnt/config}
TEMPLATE_DIR=${TEMPLATE_DIR:-/mnt/config-template}

log() { printf 'prepare-config: %s\n' "$*"; }
die() {
  printf 'prepare-config: ERROR: %s\n' "$*" >&2
  exit 1
}

# The image's defaults (jvm.options, log4j2.properties, ...), without overwriting anything.
copy_defaults() {
  [[ -d $ES_HOME/config ]] || die "$ES_HOME/config does not exist: is this the Elasticsearch image?"
  [[ -d $CONFIG_DIR && -w $CONFIG_DIR ]] || die "the config volume $CONFIG_DIR is missing or not writable"
  cp -Rn "$ES_HOME/config/." "$CONFIG_DIR/"
}

# The rendered elasticsearch.yml replaces the image's, atomically.
install_rendered_config() {
  local rendered=$TEMPLATE_DIR/elasticsearch.yml
  [[ -s $rendered ]] || die "$rendered is missing or empty (the component's config template)"
  cp "$rendered" "$CONFIG_DIR/.elasticsearch.yml.new"
  chmod 0640 "$CONFIG_DIR/.elasticsearch.yml.new"
  mv -f "$CONFIG_DIR/.elasticsearch.yml.new" "$CONFIG_DIR/elasticsearch.yml"
}

main() {
  copy_defaults
  install_rendered_config
  log "config volume ready: $(find "$CONFIG_DIR" -maxdepth 1 -mindepth 1 -printf '%f ' | sort)"
}

main "$@"

#!/usr/bin/env bash
# The addon chart, validated without a cluster: helm lint; helm template of the whole chart and
# of each Elasticsearch major's ComponentDefinition; every rendered object checked by
# kubeconform in strict mode against JSON Schemas made from the KubeBlocks CRDs at v1.0.2 (from
# the Go module) and at a recent main (../shared/schemas/kubeblocks/main, skipped when absent),
# core kinds against Kubernetes' own definitions; a broken copy must fail the same checks; then
# the assertions of check_rendered.py (which also runs the ActionSet's job commands with bash),
# hadolint on the Dockerfiles and shellcheck on the chart's scripts.
# Ends with 'N passed, M failed'; exits non-zero when a check failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHART=$ROOT/addons/elasticsearch
HERE=$ROOT/tests/chart
CACHE=${CHART_CACHE:-$ROOT/.cache/chart}
BIN=$CACHE/bin
SHARED_MAIN=$ROOT/../shared/schemas/kubeblocks/main
PYTHON=/usr/bin/python3
PASSED=0
FAILED=0
TMP=$(mktemp -d)
trap 'rm -rf -- "$TMP"' EXIT

pass() {
  PASSED=$((PASSED + 1))
  printf 'ok   %s\n' "$1"
}
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL %s\n' "$1"
  [[ -z ${2:-} ]] || sed 's/^/     /' "$2" | tail -n 20
}

# expect WHAT COMMAND...: the command succeeds; its output is shown when it does not.
expect() {
  local what=$1
  shift
  if "$@" >"$TMP/out" 2>&1; then pass "$what"; else fail "$what" "$TMP/out"; fi
}

# expect_failure WHAT COMMAND...: the command fails (a negative control).
expect_failure() {
  local what=$1
  shift
  if "$@" >"$TMP/out" 2>&1; then fail "$what (it passed)" "$TMP/out"; else pass "$what"; fi
}

helm() { "$BIN/helm" "$@"; }

render() {
  local out=$1
  shift
  helm template es "$CHART" --namespace default "$@" >"$out"
}

make_schemas() {
  "$PYTHON" "$HERE/crd2schema.py" crds "$TMP/schemas/v1.0.2" "$CACHE"/crds/v1.0.2/*.yaml >/dev/null
  "$PYTHON" "$HERE/crd2schema.py" core "$TMP/schemas/core" "$CACHE"/k8s/swagger-*.json \
    io.k8s.api.core.v1.ConfigMap io.k8s.api.core.v1.Secret io.k8s.api.networking.v1.NetworkPolicy >/dev/null
  SCHEMA_SETS=(v1.0.2)
  if [[ -d $SHARED_MAIN ]]; then
    "$PYTHON" "$HERE/crd2schema.py" crds "$TMP/schemas/main" "$SHARED_MAIN"/*.yaml >/dev/null
    SCHEMA_SETS+=(main)
  else
    echo "note: $SHARED_MAIN is absent (../shared is not part of a clone): validation against KubeBlocks main skipped"
  fi
}

# kubeconform_strict SET FILE...: every object validated, none skipped (an object without a
# schema is an error, not a skip).
kubeconform_strict() {
  local set=$1
  shift
  "$BIN/kubeconform" -strict -summary \
    -schema-location "$TMP/schemas/$set/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
    -schema-location "$TMP/schemas/core/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" "$@"
}

# A copy of the default render with a misspelled field in the agent container, one in the
# client Service's spec, an unknown field in the NetworkPolicy, and no compDefs in the
# BackupPolicyTemplate (required in main's schema).
make_broken_copy() {
  "$PYTHON" - "$TMP/default.yaml" "$TMP/broken-agent.yaml" "$TMP/broken-policy.yaml" "$TMP/broken-bpt.yaml" \
    "$TMP/broken-service.yaml" <<'EOF'
import copy, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cmpd = next(d for d in docs if d["kind"] == "ComponentDefinition")
service = copy.deepcopy(cmpd)
service["spec"]["services"][0]["spec"]["prots"] = service["spec"]["services"][0]["spec"].pop("ports")
yaml.safe_dump(service, open(sys.argv[5], "w"))
next(c for c in cmpd["spec"]["runtime"]["containers"] if c["name"] == "agent")["livenesProbe"] = {}
policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
policy["spec"]["ingres"] = []
bpt = next(d for d in docs if d["kind"] == "BackupPolicyTemplate")
del bpt["spec"]["compDefs"]
for path, doc in zip(sys.argv[2:], (cmpd, policy, bpt)):
    yaml.safe_dump(doc, open(path, "w"))
EOF
}

test_helm() {
  expect "helm lint (default values)" helm lint --strict "$CHART"
  expect "helm lint (every option on)" helm lint --strict "$CHART" -f "$HERE/values-full.yaml"
  expect "helm template (default values)" render "$TMP/default.yaml"
  expect "helm template (every option on)" render "$TMP/full.yaml" -f "$HERE/values-full.yaml"
  expect "helm template (no NetworkPolicy)" render "$TMP/no-policy.yaml" --set networkPolicy.enabled=false
  refused "an upstream release outside its major" \
    "lists 7.7.1, which is not a 8.x release" --set 'upstream.releases.8={7.7.1}'
  refused "an upstream release that is not X.Y.Z" "'/upstream/releases/8/0'" --set 'upstream.releases.8={8.x}'
  refused "an upstream ComponentDefinition that cannot run here (a role-split one)" \
    "lists elasticsearch-master-8-1.0.1: only elasticsearch-<7|8|9>-<version>" \
    --set 'upstream.componentDefinitions={elasticsearch-master-8-1.0.1}'
  local major
  for major in 7 8 9; do
    expect "helm template of the Elasticsearch $major.x ComponentDefinition" \
      render "$TMP/cmpd-$major.yaml" --show-only "templates/cmpd-$major.yaml"
    expect "helm template of the Elasticsearch $major.x ComponentDefinition (every option on)" \
      render "$TMP/cmpd-$major-full.yaml" --show-only "templates/cmpd-$major.yaml" -f "$HERE/values-full.yaml"
  done
}

# refused WHAT TEXT HELM-ARGS...: helm template fails with these values, and its message holds
# TEXT (the value's path in the schema's message, or the value's name in a template's fail).
refused() {
  local what=$1 text=$2
  shift 2
  if render "$TMP/bad.yaml" "$@" >"$TMP/out" 2>&1; then
    fail "refused: $what (it rendered)"
  elif grep -qF -- "$text" "$TMP/out"; then
    pass "refused: $what, naming $text"
  else
    fail "refused: $what, but the message does not name $text" "$TMP/out"
  fi
}

# values FILE YAML: a small values file for a case --set cannot write (a number where a string
# belongs, a nested map).
values() {
  printf '%s\n' "$2" >"$TMP/$1"
  printf '%s\n' "$TMP/$1"
}

# values.schema.json and templates/validate.yaml: each wrong value below, one at a time, stops
# the render with a message naming it; values that look unusual but are right render.
test_values() {
  refused "an unknown agent.authMode" "'/agent/authMode': value must be one of 'static', 'passthrough', 'none'" \
    --set agent.authMode=token
  refused "an unknown agent.keystoreBackend" "'/agent/keystoreBackend'" --set agent.keystoreBackend=java
  refused "an unknown agent.logLevel" "'/agent/logLevel'" --set agent.logLevel=verbose
  refused "an unknown agent.tls.clientAuth" "'/agent/tls/clientAuth'" --set agent.tls.clientAuth=optional
  refused "agent.tls.clientAuth require without agent.tls.enabled" "'/agent/tls/clientAuth': value must be 'none'" \
    --set agent.tls.clientAuth=require
  refused "agent.threads 0" "'/agent/threads': minimum" --set agent.threads=0
  refused "agent.threads 65 (the agent takes 1-64)" "'/agent/threads': maximum" --set agent.threads=65
  refused "agent.maxConnections 0" "'/agent/maxConnections': minimum" --set agent.maxConnections=0
  refused "agent.port 80 (non-root, no capabilities)" "'/agent/port': minimum" --set agent.port=80
  refused "agent.port 70000" "'/agent/port': maximum" --set agent.port=70000
  refused "agent.port as a string" "'/agent/port': got string, want integer" --set-string agent.port=8080
  refused "exporter.port 443" "'/exporter/port': minimum" --set exporter.port=443
  refused "agent.port 9200, the node's http port" "agent.port 9200 is also the node's http port" --set agent.port=9200
  refused "exporter.port 9300, the node's transport port" "exporter.port 9300 is also the node's transport port" \
    --set exporter.port=9300
  refused "agent.port 3501, KubeBlocks' kb-agent port" "agent.port 3501 is also KubeBlocks' kb-agent port" --set agent.port=3501
  refused "exporter.port equal to agent.port" "exporter.port 8080 is also agent.port" --set exporter.port=8080
  refused "elasticsearch.uid 0 (runAsNonRoot)" "'/elasticsearch/uid': minimum: got 0, want 1" --set elasticsearch.uid=0
  refused "elasticsearch.uid above Kubernetes' range" "'/elasticsearch/uid': maximum" --set elasticsearch.uid=3000000000
  refused "elasticsearch.javaOpts a number" "'/elasticsearch/javaOpts': got number, want string" --set elasticsearch.javaOpts=1
  refused "elasticsearch.extraConfig setting cluster.name, which the chart sets" \
    "elasticsearch.extraConfig sets cluster.name, but the chart's elasticsearch.yml sets cluster.name" \
    --set 'elasticsearch.extraConfig.cluster\.name=x'
  refused "elasticsearch.extraConfig nesting xpack.security.enabled" \
    "elasticsearch.extraConfig sets xpack.security.enabled, but the chart's elasticsearch.yml sets xpack.security.enabled" \
    -f "$(values extra-nested.yaml $'elasticsearch:\n  extraConfig:\n    xpack:\n      security:\n        enabled: true')"
  refused "elasticsearch.extraConfig setting a parent of a chart setting" \
    "elasticsearch.extraConfig sets discovery, but the chart's elasticsearch.yml sets discovery." \
    --set elasticsearch.extraConfig.discovery=x
  refused "image.pullPolicy Sometimes" "'/image/pullPolicy'" --set image.pullPolicy=Sometimes
  refused "image.agent.tag a number (YAML's 1.10)" "'/image/agent/tag': got number, want string" \
    -f "$(values tag-number.yaml $'image:\n  agent:\n    tag: 1.10')"
  refused "image.agent.tag empty" "'/image/agent/tag'" --set image.agent.tag=
  refused "image.agent.repository in upper case" "'/image/agent/repository'" --set image.agent.repository=Apecloud/Agent
  refused "image.registry with a scheme" "'/image/registry'" --set image.registry=https://docker.io
  refused "image.elasticsearch.tag (the releases are the tags)" "'/image/elasticsearch': additional properties 'tag'" \
    --set image.elasticsearch.tag=8.1.0
  refused "a misspelled agent value" "'/agent': additional properties 'authmode'" --set agent.authmode=none
  refused "a misspelled top-level value" "additional properties 'networkpolicy'" --set networkpolicy.enabled=false
  refused "a release not X.Y.Z" "'/versions/8/0'" --set 'versions.8={8.19}'
  refused "a release outside its major" "'/versions/8/0'" --set 'versions.8={9.1.0}'
  refused "a major the chart does not ship" "'/versions': additional properties '6'" --set 'versions.6={6.8.23}'
  refused "a major without releases" "'/versions': missing property '7'" --set versions.7=null
  refused "a release listed twice" "'/versions/9': items at 0 and 1 are equal" --set 'versions.9={9.5.3,9.5.3}'
  refused "clusterDomain in upper case" "'/clusterDomain'" --set clusterDomain=Cluster.Local
  refused "keystore.passwordSecret not a Secret's name" "'/keystore/passwordSecret'" --set keystore.passwordSecret=My_Secret
  refused "keystore.passwordKey empty" "'/keystore/passwordKey'" --set keystore.passwordKey=
  refused "plugins.repositoryS3.source another plugin" "'/plugins/repositoryS3/source'" \
    --set plugins.repositoryS3.source=analysis-icu
  refused "plugins.image.repository without a tag" "'/plugins/image/tag'" --set plugins.image.repository=search/plugins
  refused "networkPolicy.enabled a string" "'/networkPolicy/enabled': got string, want boolean" --set networkPolicy.enabled=yes
  refused "networkPolicy.namespaces not a namespace's name" "'/networkPolicy/namespaces/0'" --set 'networkPolicy.namespaces={Search}'
  refused "networkPolicy.namespaces listing one twice" "'/networkPolicy/namespaces'" --set 'networkPolicy.namespaces={a,a}'
  refused "backup.backoffLimit 11" "'/backup/backoffLimit': maximum" --set backup.backoffLimit=11
  refused "backup.schedule.cronExpression with seconds" "'/backup/schedule/cronExpression'" \
    --set 'backup.schedule.cronExpression=0 0 18 * * *'
  refused "backup.schedule.retentionPeriod 7days" "'/backup/schedule/retentionPeriod'" --set backup.schedule.retentionPeriod=7days
  refused "backup.extraEnv name not a shell variable" "'/backup/extraEnv/0/name'" --set 'backup.extraEnv[0].name=ES-VERIFY'
  refused "backup.extraEnv value a number" "'/backup/extraEnv/0/value': got number, want string" \
    --set 'backup.extraEnv[0].name=ES_VERIFY_TIMEOUT,backup.extraEnv[0].value=300'
  refused "backup.extraEnv setting AGENT_PORT" "backup.extraEnv[0] sets AGENT_PORT" --set 'backup.extraEnv[0].name=AGENT_PORT'
  refused "backup.extraEnv setting a DP_ variable" "backup.extraEnv[0] sets DP_DB_HOST" --set 'backup.extraEnv[0].name=DP_DB_HOST'
  refused "backup.extraEnv naming one twice" "backup.extraEnv[1] sets A, which backup.extraEnv[0] sets already" \
    --set 'backup.extraEnv[0].name=A,backup.extraEnv[1].name=A'
  refused "backup.extraEnv with value and valueFrom" "backup.extraEnv[0] (A) has both value and valueFrom" \
    -f "$(values env-both.yaml $'backup:\n  extraEnv:\n    - name: A\n      value: x\n      valueFrom:\n        fieldRef:\n          fieldPath: metadata.name')"
  refused "agent.resources memory 64MB" "'/agent/resources/limits/memory'" --set agent.resources.limits.memory=64MB
  refused "agent.resources requests above limits" \
    "agent.resources.requests.memory 128Mi is more than agent.resources.limits.memory 64Mi" \
    --set agent.resources.requests.memory=128Mi
  refused "exporter.resources requests above limits, in other units" \
    "exporter.resources.requests.cpu 0.3 is more than exporter.resources.limits.cpu 200m" --set exporter.resources.requests.cpu=0.3
  refused "agent.cliBackendResources requests above limits, by one byte" \
    "agent.cliBackendResources.requests.memory 268435457 is more than agent.cliBackendResources.limits.memory 256Mi" \
    --set agent.cliBackendResources.requests.memory=268435457
  refused "agent.resources without requests" "'/agent/resources': missing property 'requests'" --set agent.resources.requests=null
  refused "a misspelled exporter.resources key" "'/exporter/resources/limits': additional properties 'memroy'" \
    --set exporter.resources.limits.memroy=1Gi
  refused "agent.livenessProbe with a handler" "'/agent/livenessProbe': additional properties 'httpGet'" \
    --set agent.livenessProbe.httpGet.path=/health
  if helm lint --strict "$CHART" --set agent.authMode=token >"$TMP/out" 2>&1; then
    fail "helm lint --strict passes an unknown agent.authMode"
  elif grep -qF "'/agent/authMode'" "$TMP/out"; then
    pass "helm lint --strict refuses an unknown agent.authMode, naming it"
  else
    fail "helm lint --strict's message does not name agent.authMode" "$TMP/out"
  fi
  # As a dependency of another chart, Helm hands it `global` (the schema must admit it) and
  # still checks its values.
  mkdir -p "$TMP/parent/charts"
  cp -R "$CHART" "$TMP/parent/charts/elasticsearch"
  printf 'apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n  - name: elasticsearch\n    version: "%s"\n' \
    "$(sed -n 's/^version: //p' "$CHART/Chart.yaml")" >"$TMP/parent/Chart.yaml"
  printf 'global:\n  shared: 1\n' >"$TMP/parent/values.yaml"
  expect "as a dependency of another chart (Helm hands it global) it renders" \
    helm template es "$TMP/parent" --namespace default
  if helm template es "$TMP/parent" --namespace default --set elasticsearch.agent.logLevel=loud >"$TMP/out" 2>&1; then
    fail "as a dependency it passes an unknown agent.logLevel"
  elif grep -qF "'/agent/logLevel'" "$TMP/out"; then
    pass "as a dependency it refuses an unknown agent.logLevel, naming it"
  else
    fail "as a dependency its message does not name agent.logLevel" "$TMP/out"
  fi
  # $(ELASTICSEARCH_VERSION) is for the kubelet, not this shell.
  # shellcheck disable=SC2016
  expect "right but unusual values render (registry with port and path, @daily, 30d12h, cpu 0.5, requests = limits, a mirror URL)" \
    render "$TMP/good.yaml" --set 'image.registry=registry.example.com:5000/mirror,image.agent.registry=,agent.resources.limits.cpu=0.5' \
    --set 'agent.resources.requests.memory=67108864,agent.resources.requests.cpu=0.5' \
    --set 'backup.schedule.cronExpression=@daily,backup.schedule.retentionPeriod=30d12h,agent.port=1024,exporter.port=65535' \
    --set 'plugins.repositoryS3.source=https://mirror.example/es/repository-s3-$(ELASTICSEARCH_VERSION).zip' \
    --set 'elasticsearch.extraConfig.xpack\.ml\.enabled=false,backup.extraEnv[0].name=ES_VERIFY_TIMEOUT' \
    --set-string 'backup.extraEnv[0].value=300'
}

test_kubeconform() {
  local set
  make_broken_copy
  for set in "${SCHEMA_SETS[@]}"; do
    expect "kubeconform -strict, KubeBlocks $set: every rendered object" \
      kubeconform_strict "$set" "$TMP/default.yaml" "$TMP/full.yaml" "$TMP/no-policy.yaml" \
      "$TMP"/cmpd-[789].yaml "$TMP"/cmpd-[789]-full.yaml
    expect "kubeconform -strict, KubeBlocks $set: the examples" kubeconform_strict "$set" "$CHART"/examples/*.yaml
    expect_failure "kubeconform -strict, KubeBlocks $set, refuses a misspelled agent field" \
      kubeconform_strict "$set" "$TMP/broken-agent.yaml"
    expect_failure "kubeconform -strict, KubeBlocks $set, refuses an unknown NetworkPolicy field" \
      kubeconform_strict "$set" "$TMP/broken-policy.yaml"
    expect_failure "kubeconform -strict, KubeBlocks $set, refuses a misspelled client Service field" \
      kubeconform_strict "$set" "$TMP/broken-service.yaml"
  done
  if [[ " ${SCHEMA_SETS[*]} " == *" main "* ]]; then
    expect_failure "kubeconform -strict, KubeBlocks main, requires the BackupPolicyTemplate's compDefs" \
      kubeconform_strict main "$TMP/broken-bpt.yaml"
  fi
}

test_rendered() {
  if "$PYTHON" "$HERE/check_rendered.py" "$CHART" "$TMP/default.yaml" "$TMP/full.yaml" \
    "$TMP/no-policy.yaml" "$TMP/jobs" >"$TMP/checks" 2>&1; then
    :
  fi
  grep -E '^(ok|FAIL) ' "$TMP/checks" || true
  local summary
  summary=$(tail -n 1 "$TMP/checks")
  if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    PASSED=$((PASSED + BASH_REMATCH[1]))
    FAILED=$((FAILED + BASH_REMATCH[2]))
  else
    fail "check_rendered.py did not finish" "$TMP/checks"
  fi
}

# What `helm install` prints (templates/NOTES.txt, which `helm template` leaves out): rendered
# here through a copy of the chart that holds it as a file and renders it with tpl.
notes() {
  local copy="$TMP/notes-chart"
  if [[ ! -d $copy ]]; then
    cp -r "$CHART" "$copy"
    mkdir -p "$copy/notes"
    mv "$copy/templates/NOTES.txt" "$copy/notes/NOTES.txt"
    printf '%s\n' 'notes: {{ tpl (.Files.Get "notes/NOTES.txt") . | toJson }}' >"$copy/templates/zz-notes.yaml"
  fi
  helm template es "$copy" --namespace kb-system --show-only templates/zz-notes.yaml "$@" |
    "$PYTHON" -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["notes"])'
}

# notes_say WHAT TEXT HELM-ARGS...: the notes rendered with these values hold TEXT.
notes_say() {
  local what=$1 text=$2
  shift 2
  if notes "$@" >"$TMP/notes.txt" 2>&1 && grep -qF -- "$text" "$TMP/notes.txt"; then
    pass "install notes: $what"
  else
    fail "install notes: $what (no \"$text\")" "$TMP/notes.txt"
  fi
}

test_notes() {
  notes_say "say the NetworkPolicy's namespace (the release's by default)" "exists in: kb-system."
  notes_say "warn that other namespaces are not covered" "in its own namespace: in any other, both ports of a cluster's pods are reachable from every pod"
  notes_say "keep the other values in the upgrade it suggests" "helm upgrade ... --reuse-values --set-json"
  notes_say "list the namespaces given" "exists in: demo, prod." --set-json 'networkPolicy.namespaces=["demo","prod"]'
  notes_say "say when there is no NetworkPolicy" "networkPolicy.enabled is false" --set networkPolicy.enabled=false
  notes_say "say when the agents ask for no credentials either" "(and agent.authMode is none: the agents ask for no credentials)" \
    --set networkPolicy.enabled=false --set agent.authMode=none
}

# The packaged chart (what `helm install` of a .tgz gets): .helmignore keeps the job scripts and
# config/, and the ActionSet rendered from the package embeds the same bytes.
test_package() {
  expect "helm package" helm package "$CHART" --destination "$TMP/package"
  local tgz f missing=""
  tgz=$(find "$TMP/package" -name 'elasticsearch-*.tgz' | head -n 1)
  [[ -n $tgz ]] || return 0
  tar -tzf "$tgz" >"$TMP/package.list"
  for f in dataprotection/common.sh dataprotection/backup.sh dataprotection/restore.sh \
    config/elasticsearch.yml.tpl config/prepare-config.sh config/entrypoint.sh config/install-plugins.sh; do
    grep -qx "elasticsearch/$f" "$TMP/package.list" || missing+=" $f"
  done
  if [[ -z $missing ]]; then pass "the package holds the job scripts and config/"; else fail "the package lacks:$missing"; fi
  if grep -q '^elasticsearch/agent/' "$TMP/package.list"; then
    fail "the package holds the agent's sources"
  else
    pass "the package leaves the agent's sources out"
  fi
  if grep -qx -e 'elasticsearch/dataprotection/Dockerfile' -e 'elasticsearch/dataprotection/build.sh' "$TMP/package.list"; then
    fail "the package holds the job image's build files"
  else
    pass "the package leaves the job image's build files (Dockerfile, build.sh) out"
  fi
  helm template es "$tgz" --namespace default --show-only templates/actionset.yaml >"$TMP/package-actionset.yaml"
  helm template es "$CHART" --namespace default --show-only templates/actionset.yaml >"$TMP/dir-actionset.yaml"
  if cmp -s "$TMP/package-actionset.yaml" "$TMP/dir-actionset.yaml"; then
    pass "the ActionSets rendered from the package equal those from the directory"
  else
    fail "the ActionSets rendered from the package differ from those from the directory"
  fi
}

# Every release values.yaml offers (values.versions and values.upstream.releases) is a
# published Elasticsearch release: Maven Central holds its org.elasticsearch:elasticsearch POM
# (the registry this machine reaches; the images' registry it does not). Skipped, saying so,
# when Maven Central cannot be reached.
test_versions_are_releases() {
  local central=https://repo1.maven.org/maven2/org/elasticsearch/elasticsearch version code
  if ! curl --silent --fail --output /dev/null --connect-timeout 10 --max-time 30 "$central/maven-metadata.xml"; then
    printf 'skip every values.yaml release is published: Maven Central unreachable\n'
    return 0
  fi
  while read -r version; do
    code=$(curl --silent --output /dev/null --write-out '%{http_code}' --connect-timeout 10 --max-time 30 \
      "$central/$version/elasticsearch-$version.pom") || code=000
    if [[ $code == 200 ]]; then
      pass "release $version of values.yaml is published (Maven Central)"
    else
      fail "release $version of values.yaml is not a published Elasticsearch release (Maven Central answered $code)"
    fi
  done < <("$PYTHON" -c 'import sys, yaml
values = yaml.safe_load(open(sys.argv[1]))
for lists in (values["versions"], values["upstream"]["releases"]):
    for major, releases in lists.items():
        for r in releases:
            print(r)' "$CHART/values.yaml")
  # The negative control: a release that does not exist is told apart.
  code=$(curl --silent --output /dev/null --write-out '%{http_code}' --connect-timeout 10 --max-time 30 \
    "$central/9.99.0/elasticsearch-9.99.0.pom") || code=000
  if [[ $code == 404 ]]; then pass "an unpublished release (9.99.0) is told apart"; else fail "9.99.0 answered $code, not 404"; fi
}

# install-plugins.sh's own logic, with a stand-in for the image's elasticsearch-plugin (no 7.x
# plugin zip is published where this machine can fetch it): the sources it installs, the names
# it derives, a plugin already there, a source it cannot name.
test_install_plugins() {
  local home=$TMP/plugins-home script=$CHART/config/install-plugins.sh
  mkdir -p "$home/bin" "$home/plugins/analysis-icu"
  cat >"$home/bin/elasticsearch-plugin" <<'STUB'
#!/usr/bin/env bash
# Stand-in for the engine's elasticsearch-plugin: records its arguments, makes the plugin's dir.
printf '%s\n' "$*" >>"$(dirname "$0")/calls"
name=${3##*/}
name=${name%.zip}
mkdir -p "$(dirname "$0")/../plugins/${name%%-[0-9]*}"
STUB
  chmod +x "$home/bin/elasticsearch-plugin"
  expect "install-plugins.sh installs repository-s3 by name and a zip by URL, skips one already there" \
    env ES_HOME="$home" PLUGINS="repository-s3, file:///mnt/plugin-zips/mapper-size-7.17.29.zip,analysis-icu" \
    bash "$script"
  local want=$'install --batch repository-s3\ninstall --batch file:///mnt/plugin-zips/mapper-size-7.17.29.zip'
  if [[ $(cat "$home/bin/calls" 2>/dev/null) == "$want" ]]; then
    pass "install-plugins.sh ran elasticsearch-plugin install --batch for exactly the missing two"
  else
    fail "install-plugins.sh called: $(tr '\n' ';' <"$home/bin/calls" 2>/dev/null)"
  fi
  expect_failure "install-plugins.sh refuses a source it cannot name" \
    env ES_HOME="$home" PLUGINS="https://mirror.example/0.zip" bash "$script"
  if grep -qF "cannot tell the plugin's name from 'https://mirror.example/0.zip'" "$TMP/out"; then
    pass "install-plugins.sh says which source it cannot name"
  else
    fail "install-plugins.sh's message for an unnamed source" "$TMP/out"
  fi
}

# DL3008 (pin apt package versions) is left out: Debian replaces a package's version in its
# archive with each point release and security fix, so a pinned version stops installing; the
# base image's tag pins the release instead.
hadolint() { "$BIN/hadolint" --ignore DL3008 "$@"; }

test_linters() {
  expect "hadolint: the agent's Dockerfile" hadolint "$CHART/agent/Dockerfile"
  expect "hadolint: the jobs' Dockerfile" hadolint "$CHART/dataprotection/Dockerfile"
  expect "shellcheck -S warning: the chart's scripts" \
    shellcheck -x -S warning "$CHART"/config/*.sh "$CHART"/dataprotection/*.sh "$HERE"/*.sh
}

main() {
  bash "$HERE/install-tools.sh"
  make_schemas
  test_helm
  test_values
  test_kubeconform
  test_rendered
  test_notes
  test_package
  test_versions_are_releases
  test_install_plugins
  test_linters
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  ((FAILED == 0))
}

main "$@"

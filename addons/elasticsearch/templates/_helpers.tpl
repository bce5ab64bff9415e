{{/*
Shared parts of the addon's objects. The three ComponentDefinitions (cmpd-7/8/9.yaml) differ
only in their major; everything else is defined here.
*/}}

{{- define "elasticsearch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "elasticsearch.annotations" -}}
helm.sh/resource-policy: keep
kubeblocks.io/crd-api-version: apps.kubeblocks.io/v1
{{- end }}

{{/* The label KubeBlocks puts on every pod of this addon's components (spec.labels). */}}
{{- define "elasticsearch.podLabelKey" -}}
elasticsearch.kubeblocks.io/addon
{{- end }}

{{/*
ComponentDefinition name of a major: elasticsearch-<major>-<chart version>, the upstream addon's
scheme, so that its patterns (^elasticsearch-<major>-, and a Cluster's elasticsearch-<major>)
match ours; or .name, an upstream name taken over (values.upstream.componentDefinitions).
*/}}
{{- define "elasticsearch.cmpdName" -}}
{{- .name | default (printf "elasticsearch-%s-%s" .major .root.Chart.Version) -}}
{{- end }}

{{/*
The upstream ComponentDefinitions to take over, as "<name>=<major>" lines: every name of
values.upstream.componentDefinitions but this chart's own, each checked to be
elasticsearch-<major>-<version> of a major this chart ships.
*/}}
{{- define "elasticsearch.upstreamCmpds" -}}
{{- $own := list -}}
{{- range $major := list "7" "8" "9" -}}
{{- $own = append $own (include "elasticsearch.cmpdName" (dict "major" $major "root" $)) -}}
{{- end -}}
{{- range $name := .Values.upstream.componentDefinitions | default list | uniq -}}
{{- if not (regexMatch "^elasticsearch-[789]-[0-9][0-9a-z.-]*$" $name) -}}
{{- fail (printf "values.upstream.componentDefinitions lists %s: only elasticsearch-<7|8|9>-<version> can run on this chart's ComponentDefinitions (one component of nodes with every role)" $name) -}}
{{- end -}}
{{- if not (has $name $own) }}
{{ $name }}={{ substr 14 15 $name }}
{{- end -}}
{{- end -}}
{{- end }}

{{/* Matches the ComponentDefinitions of one major, of any chart version. */}}
{{- define "elasticsearch.cmpdRegex" -}}
^elasticsearch-{{ .major }}-
{{- end }}

{{/* Matches the ComponentDefinitions of every major this chart ships. */}}
{{- define "elasticsearch.cmpdRegexAll" -}}
^elasticsearch-[789]-
{{- end }}

{{- define "elasticsearch.configTemplateName" -}}
elasticsearch-config-tpl-{{ .Chart.Version }}
{{- end }}

{{- define "elasticsearch.scriptsTemplateName" -}}
elasticsearch-scripts-tpl-{{ .Chart.Version }}
{{- end }}

{{/* <registry>/<repository>:<tag> of one image of values.image; dict "image" "tag" "root". */}}
{{- define "elasticsearch.image" -}}
{{- $registry := .image.registry | default .root.Values.image.registry -}}
{{- $tag := .tag | default .image.tag -}}
{{- if not .image.repository }}{{ fail "an image in values.yaml has no repository" }}{{ end -}}
{{- if not $tag }}{{ fail (printf "image %s has no tag" .image.repository) }}{{ end -}}
{{- if $registry }}{{ $registry }}/{{ end }}{{ .image.repository }}:{{ $tag }}
{{- end }}

{{/* The default (first) release of a major; dict "major" "root". */}}
{{- define "elasticsearch.defaultRelease" -}}
{{- $releases := index .root.Values.versions .major | default list -}}
{{- if not $releases }}{{ fail (printf "values.versions has no release for major %s" .major) }}{{ end -}}
{{- first $releases -}}
{{- end }}

{{- define "elasticsearch.engineImage" -}}
{{- include "elasticsearch.image" (dict "image" .root.Values.image.elasticsearch "tag" (include "elasticsearch.defaultRelease" .) "root" .root) -}}
{{- end }}

{{/* The agent's own image (values.image.agent): the static es-agent alone; takes the root. */}}
{{- define "elasticsearch.agentImage" -}}
{{- include "elasticsearch.image" (dict "image" .Values.image.agent "root" .) -}}
{{- end }}

{{/*
The image the agent container runs; dict "major" "root": its own, or with the cli keystore
backend the engine's, whose keystore tool needs the image's bash, glibc and JDK.
*/}}
{{- define "elasticsearch.agentContainerImage" -}}
{{- if eq .root.Values.agent.keystoreBackend "cli" -}}
{{- include "elasticsearch.engineImage" . -}}
{{- else -}}
{{- include "elasticsearch.agentImage" .root -}}
{{- end -}}
{{- end }}

{{/* Engine paths inside the official images. */}}
{{- define "elasticsearch.home" -}}
/usr/share/elasticsearch
{{- end }}

{{- define "elasticsearch.keystorePasswordDir" -}}
/etc/elasticsearch/keystore-password
{{- end }}

{{/* Where the install-agent init container puts es-agent for the cli backend (agent-bin). */}}
{{- define "elasticsearch.agentBinDir" -}}
/mnt/agent-bin
{{- end }}

{{/*
The es-agent the agent container runs, the root given: the agent image's own, or with the cli
backend the copy install-agent made in the agent-bin volume.
*/}}
{{- define "elasticsearch.agentBinary" -}}
{{- if eq .Values.agent.keystoreBackend "cli" -}}
{{ include "elasticsearch.agentBinDir" . }}/es-agent
{{- else -}}
/usr/local/bin/es-agent
{{- end -}}
{{- end }}

{{/*
securityContext of every container started from the engine's image: its own user, nothing
else allowed.
*/}}
{{- define "elasticsearch.engineSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.elasticsearch.uid }}
runAsGroup: {{ .Values.elasticsearch.uid }}
capabilities:
  drop:
    - ALL
{{- end }}

{{/* The keystore password Secret, mounted read-only where it is needed. */}}
{{- define "elasticsearch.keystorePasswordMount" -}}
{{- if .Values.keystore.passwordSecret -}}
- name: keystore-password
  mountPath: {{ include "elasticsearch.keystorePasswordDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
The ComponentDefinition's vars. KubeBlocks resolves them when a Cluster is created, puts them
at the front of every container's env (credentials as secretKeyRef, never inline) and gives the
non-credential ones to the config and script templates.
*/}}
{{- define "elasticsearch.vars" -}}
- name: CLUSTER_NAME
  valueFrom:
    clusterVarRef:
      clusterName: Required
- name: CLUSTER_NAMESPACE
  valueFrom:
    clusterVarRef:
      namespace: Required
- name: CLUSTER_DOMAIN
  value: {{ .root.Values.clusterDomain | quote }}
# The component's full name (<cluster>-<component>): its headless Service is <name>-headless.
- name: COMPONENT_NAME
  valueFrom:
    componentVarRef:
      optional: false
      componentName: Required
- name: COMPONENT_REPLICAS
  valueFrom:
    componentVarRef:
      optional: false
      replicas: Required
# Comma-separated, in ordinal order: the nodes' names and the seeds of discovery.
- name: COMPONENT_POD_NAMES
  valueFrom:
    componentVarRef:
      optional: false
      podNames: Required
- name: COMPONENT_POD_FQDNS
  valueFrom:
    componentVarRef:
      optional: false
      podFQDNs: Required
- name: ELASTICSEARCH_VERSION
  valueFrom:
    componentVarRef:
      optional: false
      serviceVersion: Required
- name: ELASTICSEARCH_MAJOR
  value: {{ .major | quote }}
- name: ELASTIC_USERNAME
  valueFrom:
    credentialVarRef:
      name: elastic
      optional: false
      username: Required
- name: ELASTIC_PASSWORD
  valueFrom:
    credentialVarRef:
      name: elastic
      optional: false
      password: Required
# "true" when the Cluster turns TLS on for the component; absent otherwise.
- name: TLS_ENABLED
  valueFrom:
    tlsVarRef:
      enabled: Optional
# The scheme of the node's HTTP port and the TLS files, empty without TLS (an empty value is
# the same as none for the agent and the jobs).
- name: ES_SCHEME
  expression: {{ `{{ if eq (index . "TLS_ENABLED" | default "false") "true" }}https{{ else }}http{{ end }}` | quote }}
- name: TLS_CA_FILE
  expression: {{ `{{ if eq (index . "TLS_ENABLED" | default "false") "true" }}/etc/pki/tls/ca.pem{{ end }}` | quote }}
- name: TLS_CERT_FILE
  expression: {{ `{{ if eq (index . "TLS_ENABLED" | default "false") "true" }}/etc/pki/tls/cert.pem{{ end }}` | quote }}
- name: TLS_KEY_FILE
  expression: {{ `{{ if eq (index . "TLS_ENABLED" | default "false") "true" }}/etc/pki/tls/key.pem{{ end }}` | quote }}
{{- end }}

{{/*
The client Service: KubeBlocks creates it for every component as <cluster>-<component>-http
(ClusterIP unless the Cluster's componentSpecs[].services sets another type), the name the
upstream addon's clients use too. Only the node's HTTP port: the transport port is the nodes'
own, the exporter is scraped per pod, and the agent's port is for the jobs alone (they call
each node's agent at its IP).
*/}}
{{- define "elasticsearch.services" -}}
- name: http
  serviceName: http
  spec:
    ports:
      - name: http
        port: 9200
        targetPort: http
        protocol: TCP
{{- end }}

{{/* The pod's own identity, from the downward API. */}}
{{- define "elasticsearch.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      apiVersion: v1
      fieldPath: metadata.name
- name: POD_IP
  valueFrom:
    fieldRef:
      apiVersion: v1
      fieldPath: status.podIP
- name: POD_FQDN
  value: $(POD_NAME).$(COMPONENT_NAME)-headless.$(CLUSTER_NAMESPACE).svc.$(CLUSTER_DOMAIN)
{{- end }}

{{/*
What the ${NAME} placeholders of the rendered elasticsearch.yml need: every container that runs
an engine tool on the config volume before entrypoint.sh has written their values in (the node's
own, and 7.x's install-plugins: elasticsearch-plugin reads elasticsearch.yml and stops at a
placeholder it cannot resolve).
*/}}
{{- define "elasticsearch.placeholderEnv" -}}
{{ include "elasticsearch.podEnv" . }}
# The address the node binds (elasticsearch.yml's network.host): every interface of the pod.
- name: ES_NETWORK_HOST
  value: 0.0.0.0
{{- end }}

{{/* The engine container: the node itself. */}}
{{- define "elasticsearch.engineContainer" -}}
{{- $root := .root -}}
- name: elasticsearch
  image: {{ include "elasticsearch.engineImage" . }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - /mnt/scripts/entrypoint.sh
  env:
    {{- include "elasticsearch.placeholderEnv" . | nindent 4 }}
    - name: ES_JAVA_OPTS
      value: {{ $root.Values.elasticsearch.javaOpts | quote }}
    {{- if $root.Values.keystore.passwordSecret }}
    - name: ES_KEYSTORE_PASSWORD_FILE
      value: {{ include "elasticsearch.keystorePasswordDir" $root }}/password
    {{- end }}
  ports:
    - name: http
      containerPort: 9200
      protocol: TCP
    - name: transport
      containerPort: 9300
      protocol: TCP
  # Ready once the node serves HTTP; discovery needs the peers' DNS names before that.
  readinessProbe:
    tcpSocket:
      port: http
    initialDelaySeconds: 10
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 3
  securityContext:
    {{- include "elasticsearch.engineSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: {{ include "elasticsearch.home" . }}/config
    - name: data
      mountPath: {{ include "elasticsearch.home" . }}/data
    - name: logs
      mountPath: {{ include "elasticsearch.home" . }}/logs
    {{- if eq .major "7" }}
    - name: plugins
      mountPath: {{ include "elasticsearch.home" . }}/plugins
    {{- end }}
    - name: tmp
      mountPath: /tmp
    - name: scripts
      mountPath: /mnt/scripts
      readOnly: true
    {{- with include "elasticsearch.keystorePasswordMount" $root }}{{ . | nindent 4 }}{{ end }}
{{- end }}

{{/* The metrics exporter. */}}
{{- define "elasticsearch.exporterContainer" -}}
{{- $root := .root -}}
- name: exporter
  image: {{ include "elasticsearch.image" (dict "image" $root.Values.image.exporter "root" $root) }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - /bin/elasticsearch_exporter
    # By the pod's DNS name, which the node's certificate carries when TLS is on.
    - --es.uri=$(ES_SCHEME)://$(POD_FQDN):9200
    - --es.ca=$(TLS_CA_FILE)
    - --web.listen-address=:{{ $root.Values.exporter.port }}
  env:
    {{- include "elasticsearch.podEnv" . | nindent 4 }}
    # The exporter reads its node credentials from these (never from a flag).
    - name: ES_USERNAME
      value: $(ELASTIC_USERNAME)
    - name: ES_PASSWORD
      value: $(ELASTIC_PASSWORD)
  ports:
    - name: metrics
      containerPort: {{ $root.Values.exporter.port }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: metrics
    initialDelaySeconds: 5
    periodSeconds: 10
    timeoutSeconds: 5
  resources:
    {{- toYaml $root.Values.exporter.resources | nindent 4 }}
  securityContext:
    allowPrivilegeEscalation: false
    privileged: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: 65534
    capabilities:
      drop:
        - ALL
{{- end }}

{{/*
The agent: writes the S3 credentials the jobs send into the node's keystore (the config
volume, shared with the engine). Its own small image, no JVM (with the cli backend, the
engine's image, running the copy install-agent made); the engine's user; liveness on /health
and no readiness probe; never the data volume.
*/}}
{{- define "elasticsearch.agentContainer" -}}
{{- $root := .root -}}
{{- $agent := $root.Values.agent -}}
- name: agent
  image: {{ include "elasticsearch.agentContainerImage" . }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - {{ include "elasticsearch.agentBinary" $root }}
    - serve
  env:
    {{- include "elasticsearch.podEnv" . | nindent 4 }}
    - name: AGENT_PORT
      value: {{ $agent.port | quote }}
    - name: AGENT_CONFIG_DIR
      value: {{ include "elasticsearch.home" . }}/config
    - name: AGENT_ENGINE
      value: elasticsearch
    - name: AGENT_ENGINE_VERSION
      value: $(ELASTICSEARCH_VERSION)
    - name: AGENT_NODE_ADDRESS
      value: 127.0.0.1:9200
    - name: AGENT_NODE_SCHEME
      value: $(ES_SCHEME)
    - name: AGENT_NODE_CA_FILE
      value: $(TLS_CA_FILE)
    - name: AGENT_NODE_SERVER_NAME
      value: $(POD_FQDN)
    # ELASTIC_USERNAME and ELASTIC_PASSWORD (the elastic account's Secret) come from the vars.
    - name: AGENT_AUTH_MODE
      value: {{ $agent.authMode | quote }}
    - name: AGENT_KEYSTORE_BACKEND
      value: {{ $agent.keystoreBackend | quote }}
    {{- if eq $agent.keystoreBackend "cli" }}
    # The engine's own home in its image, which the agent container runs.
    - name: AGENT_ENGINE_HOME
      value: {{ include "elasticsearch.home" . }}
    {{- end }}
    {{- if $root.Values.keystore.passwordSecret }}
    - name: AGENT_KEYSTORE_PASSWORD_FILE
      value: {{ include "elasticsearch.keystorePasswordDir" $root }}/password
    {{- end }}
    {{- if $agent.tls.enabled }}
    - name: AGENT_TLS_CERT_FILE
      value: $(TLS_CERT_FILE)
    - name: AGENT_TLS_KEY_FILE
      value: $(TLS_KEY_FILE)
    - name: AGENT_TLS_CA_FILE
      value: $(TLS_CA_FILE)
    - name: AGENT_TLS_CLIENT_AUTH
      value: {{ $agent.tls.clientAuth | quote }}
    {{- end }}
    - name: AGENT_THREADS
      value: {{ $agent.threads | quote }}
    - name: AGENT_MAX_CONNECTIONS
      value: {{ $agent.maxConnections | quote }}
    - name: AGENT_LOG_LEVEL
      value: {{ $agent.logLevel | quote }}
  ports:
    - name: agent
      containerPort: {{ $agent.port }}
      protocol: TCP
  # An exec probe: `es-agent health` reads this container's env, so it follows the agent's TLS
  # and client-certificate settings (a kubelet httpGet can show no client certificate).
  livenessProbe:
    exec:
      command:
        - {{ include "elasticsearch.agentBinary" $root }}
        - health
    {{- toYaml $agent.livenessProbe | nindent 4 }}
  resources:
    {{- toYaml (ternary $agent.cliBackendResources $agent.resources (eq $agent.keystoreBackend "cli")) | nindent 4 }}
  securityContext:
    {{- include "elasticsearch.engineSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: {{ include "elasticsearch.home" . }}/config
    {{- with include "elasticsearch.keystorePasswordMount" $root }}{{ . | nindent 4 }}{{ end }}
    {{- if eq $agent.keystoreBackend "cli" }}
    - name: agent-bin
      mountPath: {{ include "elasticsearch.agentBinDir" $root }}
      readOnly: true
    # The engine's keystore tool is a JVM: java.io.tmpdir is /tmp, which the read-only root
    # filesystem would leave unwritable. No ES_TMPDIR: only the node reads it (7.x's
    # bin/elasticsearch, 8.x's server-cli), and the agent gives the tool PATH, its JDK and the
    # config directory only (cli_keystore.cc, ToolEnvironment).
    - name: agent-tmp
      mountPath: /tmp
    {{- end }}
{{- end }}

{{/* Init containers: the config volume filled, 7.x's S3 plugin, the agent's binary for cli. */}}
{{- define "elasticsearch.initContainers" -}}
{{- $root := .root -}}
- name: prepare-config
  image: {{ include "elasticsearch.engineImage" . }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - /mnt/scripts/prepare-config.sh
  securityContext:
    {{- include "elasticsearch.engineSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /mnt/config
    - name: es-config
      mountPath: /mnt/config-template
      readOnly: true
    - name: scripts
      mountPath: /mnt/scripts
      readOnly: true
{{- if eq .major "7" }}
{{- if $root.Values.plugins.image.repository }}
- name: copy-plugin-zips
  image: {{ include "elasticsearch.image" (dict "image" $root.Values.plugins.image "root" $root) }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - /bin/sh
    - -c
    - cp -R /plugins/. /mnt/plugin-zips/
  securityContext:
    {{- include "elasticsearch.engineSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: plugin-zips
      mountPath: /mnt/plugin-zips
{{- end }}
# Elasticsearch 7.x: repository-s3 is a plugin (a bundled module from 8.0).
- name: install-plugins
  image: {{ include "elasticsearch.engineImage" . }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - /mnt/scripts/install-plugins.sh
  env:
    {{- include "elasticsearch.placeholderEnv" . | nindent 4 }}
    - name: PLUGINS
      value: {{ $root.Values.plugins.repositoryS3.source | quote }}
  securityContext:
    {{- include "elasticsearch.engineSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: {{ include "elasticsearch.home" . }}/config
    - name: plugins
      mountPath: {{ include "elasticsearch.home" . }}/plugins
    - name: tmp
      mountPath: /tmp
    - name: scripts
      mountPath: /mnt/scripts
      readOnly: true
    {{- if $root.Values.plugins.image.repository }}
    - name: plugin-zips
      mountPath: /mnt/plugin-zips
      readOnly: true
    {{- end }}
{{- end }}
{{- if eq $root.Values.agent.keystoreBackend "cli" }}
# The cli keystore backend runs the agent in the engine's image, where the engine's own tool
# finds bash, glibc and its JDK: the static es-agent copies itself from its own image (which
# has no cp) into the agent-bin volume; the agent container runs that copy.
- name: install-agent
  image: {{ include "elasticsearch.agentImage" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - /usr/local/bin/es-agent
    - install
    - {{ include "elasticsearch.agentBinary" $root }}
  securityContext:
    {{- include "elasticsearch.engineSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: agent-bin
      mountPath: {{ include "elasticsearch.agentBinDir" $root }}
{{- end }}
{{- end }}

{{/* The pod's own volumes (data comes from the Cluster's volumeClaimTemplates). */}}
{{- define "elasticsearch.volumes" -}}
{{- $root := .root -}}
- name: config
  emptyDir: {}
- name: logs
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if eq .major "7" }}
- name: plugins
  emptyDir: {}
{{- if $root.Values.plugins.image.repository }}
- name: plugin-zips
  emptyDir: {}
{{- end }}
{{- end }}
{{- if eq $root.Values.agent.keystoreBackend "cli" }}
- name: agent-bin
  emptyDir: {}
# The agent container's /tmp (the cli backend's JVM), apart from the node's.
- name: agent-tmp
  emptyDir: {}
{{- end }}
{{- if $root.Values.keystore.passwordSecret }}
- name: keystore-password
  secret:
    secretName: {{ $root.Values.keystore.passwordSecret }}
    optional: false
    # 0440: the engine's group (fsGroup) reads it.
    defaultMode: 288
    items:
      - key: {{ $root.Values.keystore.passwordKey }}
        path: password
{{- end }}
{{- end }}

{{/*
A membership action (memberLeave, memberJoin) of config/member.sh; dict "mode" "root". kb-agent
runs it in the pod of the member that leaves or joins, in the dataprotection image (bash, curl,
jq: the engine's images have no jq), with the engine container's volume mounts (the scripts;
the TLS volume is in every container) and the component's vars (the elastic account, the
scheme, the CA). kb-agent kills an action after at most 60 s; the script ends before that.
*/}}
{{- define "elasticsearch.memberAction" -}}
exec:
  image: {{ include "elasticsearch.image" (dict "image" .root.Values.image.dataprotection "root" .root) }}
  container: elasticsearch
  command:
    - /bin/bash
    - /mnt/scripts/member.sh
    - {{ .mode }}
  env:
    - name: MEMBER_ACTION_TIMEOUT
      value: "50"
timeoutSeconds: 60
{{- end }}

{{/* The body of a ComponentDefinition; dict "major" "root". */}}
{{- define "elasticsearch.cmpdSpec" -}}
{{- $root := .root -}}
provider: kubeblocks
description: Elasticsearch {{ .major }}.x with a keystore agent on every node, for one-step S3 backups.
serviceKind: elasticsearch
serviceVersion: {{ include "elasticsearch.defaultRelease" . }}
updateStrategy: Parallel
podManagementPolicy: Parallel
podUpgradePolicy: ReCreate
labels:
  {{ include "elasticsearch.podLabelKey" . }}: "true"
exporter:
  containerName: exporter
  scrapePath: /metrics
  scrapePort: metrics
services:
  {{- include "elasticsearch.services" . | nindent 2 }}
# Mounted by KubeBlocks in every container when a Cluster turns TLS on. 0440 with the pod's
# fsGroup: the engine and the agent (both the engine's user) read the files.
tls:
  volumeName: tls
  mountPath: /etc/pki/tls
  caFile: ca.pem
  certFile: cert.pem
  keyFile: key.pem
  defaultMode: 288
configs:
  # The upstream addon's name for it: a Cluster made by that addon may name it (configs[].name).
  - name: es-cm
    template: {{ include "elasticsearch.configTemplateName" $root }}
    namespace: {{ $root.Release.Namespace }}
    volumeName: es-config
    restartOnFileChange: true
scripts:
  - name: elasticsearch-scripts
    template: {{ include "elasticsearch.scriptsTemplateName" $root }}
    namespace: {{ $root.Release.Namespace }}
    volumeName: scripts
    # 0555: executable by the engine's user.
    defaultMode: 365
volumes:
  - name: data
    needSnapshot: false
systemAccounts:
  - name: elastic
    initAccount: true
vars:
  {{- include "elasticsearch.vars" . | nindent 2 }}
# Scale-in drains the leaving node and takes it out of the voting configuration first;
# scale-out takes a node of a name that left before out of both exclusions (config/member.sh).
lifecycleActions:
  memberLeave:
    {{- include "elasticsearch.memberAction" (dict "mode" "leave" "root" $root) | nindent 4 }}
  memberJoin:
    {{- include "elasticsearch.memberAction" (dict "mode" "join" "root" $root) | nindent 4 }}
runtime:
  securityContext:
    fsGroup: {{ $root.Values.elasticsearch.uid }}
  initContainers:
    {{- include "elasticsearch.initContainers" . | nindent 4 }}
  containers:
    {{- include "elasticsearch.engineContainer" . | nindent 4 }}
    {{- include "elasticsearch.exporterContainer" . | nindent 4 }}
    {{- include "elasticsearch.agentContainer" . | nindent 4 }}
  volumes:
    {{- include "elasticsearch.volumes" . | nindent 4 }}
{{- end }}

{{/* A whole ComponentDefinition; dict "major" "root". */}}
{{- define "elasticsearch.cmpd" -}}
apiVersion: apps.kubeblocks.io/v1
kind: ComponentDefinition
metadata:
  name: {{ include "elasticsearch.cmpdName" . }}
  labels:
    {{- include "elasticsearch.labels" .root | nindent 4 }}
  annotations:
    {{- include "elasticsearch.annotations" .root | nindent 4 }}
    # Values baked into the spec (images, the agent's settings, the keystore password's Secret)
    # change with a `helm upgrade` under the same name: without this KubeBlocks would call the
    # changed definition immutable and stop serving it.
    apps.kubeblocks.io/skip-immutable-check: "true"
spec:
  {{- include "elasticsearch.cmpdSpec" . | nindent 2 }}
{{- end }}

{{/*
A job's command: bash writes the chart's dataprotection scripts (common.sh and the job's own,
byte for byte, each an argument of its own: Linux takes at most 128 KiB in one argument) into
a private directory, then runs the job's script, which sources common.sh from beside itself.
*/}}
{{- define "elasticsearch.jobCommand" -}}
- bash
- -c
- |
  set -euo pipefail
  dir=$(mktemp -d)
  printf '%s' "$1" >"$dir/common.sh"
  printf '%s' "$2" >"$dir/$0"
  exec bash "$dir/$0"
- {{ .script }}
- |
{{ .root.Files.Get "dataprotection/common.sh" | indent 2 }}
- |
{{ .root.Files.Get (printf "dataprotection/%s" .script) | indent 2 }}
{{- end }}

{{- /*
The node's elasticsearch.yml. KubeBlocks renders it per component as a Go template (sprig
functions, missing keys are errors) over the ComponentDefinition's vars; a ${NAME} placeholder,
for what differs from pod to pod, is left for entrypoint.sh, which writes in the value of the
engine container's NAME at start.
*/ -}}
{{- $replicas := .COMPONENT_REPLICAS | atoi -}}
{{- $tls := eq (index . "TLS_ENABLED" | default "false") "true" -}}
# Rendered by KubeBlocks for component {{ .COMPONENT_NAME }} of cluster {{ .CLUSTER_NAME }} in
# namespace {{ .CLUSTER_NAMESPACE }} (Elasticsearch {{ .ELASTICSEARCH_VERSION }}).
cluster.name: {{ .CLUSTER_NAME | quote }}
node.name: ${POD_NAME}

# 0.0.0.0: every interface of the pod's own network namespace.
network.host: ${ES_NETWORK_HOST}
# The pod's IP: what GET /_nodes/http reports as each node's ip, where the jobs reach its agent.
network.publish_host: ${POD_IP}
http.port: 9200
transport.port: 9300

# The official images' kernels are not tuned for mmap (vm.max_map_count); niofs needs nothing.
node.store.allow_mmap: false

{{- if eq $replicas 1 }}
discovery.type: single-node
{{- else }}
discovery.seed_hosts:
{{- range splitList "," .COMPONENT_POD_FQDNS }}
  - {{ . | quote }}
{{- end }}
# Only for the cluster's first start: entrypoint.sh drops this block once the node has joined.
# INITIAL_MASTER_NODES_BEGIN
cluster.initial_master_nodes:
{{- range splitList "," .COMPONENT_POD_NAMES }}
  - {{ . | quote }}
{{- end }}
# INITIAL_MASTER_NODES_END
{{- end }}

{{- if $tls }}
# TLS is on for this component: security on, with the certificates KubeBlocks mounts at
# /etc/pki/tls, copied into config/tls by entrypoint.sh (the engine reads only its config dir).
xpack.security.enabled: true
xpack.security.transport.ssl.enabled: true
xpack.security.transport.ssl.verification_mode: certificate
xpack.security.transport.ssl.key: tls/key.pem
xpack.security.transport.ssl.certificate: tls/cert.pem
xpack.security.transport.ssl.certificate_authorities: ["tls/ca.pem"]
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.key: tls/key.pem
xpack.security.http.ssl.certificate: tls/cert.pem
xpack.security.http.ssl.certificate_authorities: ["tls/ca.pem"]
{{- else }}
# TLS is off for this component: without transport TLS a multi-node cluster cannot run
# security, so it is off (turn TLS on in the Cluster for authentication and encryption).
xpack.security.enabled: false
{{- end }}

{{- /*
The node's elasticsearch.yml. KubeBlocks renders it per component as a Go template (sprig
functions, missing keys are errors) over the ComponentDefinition's vars; a ${NAME} placeholder,
for what differs from pod to pod, is left for entrypoint.sh, which writes in the value of the
engine container's NAME at start.
*/ -}}
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

{{- /*
Discovery at every replica count, one included: never discovery.type single-node, with which a
node refuses to start while its cluster state's voting configuration lists other nodes (a
scale-in to one whose node restarts before the others have left) and takes no other node (a
scale-out from one). A lone node elects itself from cluster.initial_master_nodes (its own name)
at the first start, then from its voting configuration, which memberLeave has shrunk to it when
a scale-in left it alone. Its seed list is empty (a one-node cluster with seeds warns that it
is set to discover others; the empty list still meets the discovery bootstrap check).
*/}}
{{- if eq (.COMPONENT_REPLICAS | atoi) 1 }}
discovery.seed_hosts: []
{{- else }}
discovery.seed_hosts:
{{- range splitList "," .COMPONENT_POD_FQDNS }}
  - {{ . | quote }}
{{- end }}
{{- end }}
# Only for the cluster's first start: entrypoint.sh drops this block once the node has joined.
# INITIAL_MASTER_NODES_BEGIN
cluster.initial_master_nodes:
{{- range splitList "," .COMPONENT_POD_NAMES }}
  - {{ . | quote }}
{{- end }}
# INITIAL_MASTER_NODES_END

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

#!/usr/bin/env python3
"""Assertions on the chart's rendered objects (helm template output), one check per line of
output, ending with 'N passed, M failed'; exit status 1 when a check failed.

  check_rendered.py CHART_DIR DEFAULT.yaml FULL.yaml NO_POLICY.yaml WORK_DIR

DEFAULT is rendered with the chart's values; FULL with every optional part on (keystore
password Secret, cli backend, agent TLS, plugin image, two policy namespaces, extra config and
job env: tests/chart/values-full.yaml); NO_POLICY with networkPolicy.enabled=false. WORK_DIR is
scratch space for the job-script runs.
"""
import json
import os
import re
import subprocess
import sys

import yaml

PASSED = 0
FAILED = 0
CHART_DIR = ""


def check(what, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok   {what}")
    else:
        FAILED += 1
        print(f"FAIL {what}" + (f": {detail}" if detail else ""))


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def container(spec, name, init=False):
    pool = spec["runtime"].get("initContainers" if init else "containers") or []
    found = [c for c in pool if c["name"] == name]
    return found[0] if found else None


def env_of(c):
    return {e["name"]: e for e in c.get("env") or []}


def mounts_of(c):
    return {m["name"]: m for m in c.get("volumeMounts") or []}


def image_of(values, image, tag=None):
    registry = image.get("registry") or values["image"]["registry"]
    return f"{registry}/{image['repository']}:{tag or image['tag']}"


def agent_binary_in_image(chart):
    """Where the agent's Dockerfile puts es-agent: the path of its ENTRYPOINT."""
    dockerfile = open(os.path.join(chart, "agent", "Dockerfile"), encoding="utf-8").read()
    m = re.search(r'^ENTRYPOINT \["([^"]+)"\]', dockerfile, re.M)
    return m.group(1) if m else None


def is_cli(values):
    return values["agent"]["keystoreBackend"] == "cli"


def release_images(values, release, containers):
    """The image each container of a release runs: the engine's tagged with the release, but
    the exporter's and the agent's own (with the cli backend the agent runs in the engine's
    image and install-agent in its own)."""
    engine = image_of(values, values["image"]["elasticsearch"], release)
    agent = image_of(values, values["image"]["agent"])
    own = {"exporter": image_of(values, values["image"]["exporter"]), "install-agent": agent,
           "agent": engine if is_cli(values) else agent}
    if values["plugins"]["image"].get("repository"):
        own["copy-plugin-zips"] = image_of(values, values["plugins"]["image"])
    return {c: own.get(c, engine) for c in containers}


def allowed_images(values):
    """Every image reference values.yaml can produce."""
    images = {image_of(values, values["image"][k]) for k in ("exporter", "agent", "dataprotection")}
    for major in ("7", "8", "9"):
        images |= {image_of(values, values["image"]["elasticsearch"], r) for r in releases_of(values, major)}
    if values["plugins"]["image"].get("repository"):
        images.add(image_of(values, values["plugins"]["image"]))
    return images


def releases_of(values, major):
    """The releases the ComponentVersion gives a major: values.versions, then the upstream
    addon's (values.upstream.releases), each once."""
    out = []
    for r in (values["versions"].get(major) or []) + ((values.get("upstream") or {}).get("releases") or {}).get(major, []):
        if r not in out:
            out.append(r)
    return out


def adopted_cmpds(values, chart_version):
    """values.upstream.componentDefinitions less this chart's own names: name -> major."""
    own = {f"elasticsearch-{m}-{chart_version}" for m in ("7", "8", "9")}
    names = (values.get("upstream") or {}).get("componentDefinitions") or []
    return {n: n.split("-")[1] for n in names if n not in own}


def kb_name_matched(name, pattern):
    """KubeBlocks 1.0.2's PrefixOrRegexMatched (pkg/controller/component/utils.go): a prefix, or
    a pattern with regex metacharacters that matches."""
    if name.startswith(pattern):
        return True
    if re.escape(pattern) == pattern:
        return False
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def all_images(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "image" and isinstance(v, str):
                yield v
            elif k == "images" and isinstance(v, dict):
                yield from v.values()
            else:
                yield from all_images(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_images(v)


# --- values.yaml ------------------------------------------------------------------------------

# Standard fields whose meaning their documented parent gives.
SELF_EXPLAINED = {"registry", "repository", "tag", "requests", "limits", "cpu", "memory",
                  "initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold"}


def check_values_documented(chart):
    """Every key in values.yaml has a comment line right above it, or is a standard field
    (SELF_EXPLAINED, a major's release list) of a documented parent."""
    lines = open(os.path.join(chart, "values.yaml"), encoding="utf-8").read().splitlines()
    documented = {}  # indentation -> whether the latest key at that level is documented
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r'^( *)("?[A-Za-z0-9_.-]+"?):', line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2).strip('"')
        parent_ok = documented.get(indent - 2, True) if indent else True
        commented = i > 0 and lines[i - 1].lstrip().startswith("#")
        ok = commented or (parent_ok and (key in SELF_EXPLAINED or key.isdigit()))
        documented[indent] = ok
        if not ok:
            undocumented.append(f"line {i + 1}: {key}")
    check("values.yaml: every value is documented", not undocumented, "; ".join(undocumented))


# Values whose keys are the user's own: elasticsearch.yml settings, a Kubernetes valueFrom.
SCHEMA_OPEN = {"elasticsearch.extraConfig", "backup.extraEnv[].valueFrom"}


def resolve(schema, node):
    """The node with its local $ref (#/definitions/...) followed."""
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"non-local $ref {ref}")
        node = schema
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def check_schema_covers_values(chart, extra_values):
    """values.schema.json has a typed schema for every value of values.yaml (and of the test's
    values-full.yaml, which sets lists values.yaml leaves empty), and every object of them
    admits no unknown key but the SCHEMA_OPEN ones."""
    schema = json.load(open(os.path.join(chart, "values.schema.json"), encoding="utf-8"))
    check("values.schema.json: JSON Schema draft-07, as Helm reads it",
          schema.get("$schema") == "http://json-schema.org/draft-07/schema#", str(schema.get("$schema")))
    untyped, uncovered, open_objects = [], [], []

    def typed(node):
        node = resolve(schema, node)
        if "type" in node or "const" in node or "enum" in node:
            return True
        return "anyOf" in node and all(typed(n) for n in node["anyOf"])

    def walk(value, node, path):
        node = resolve(schema, node)
        if not typed(node):
            untyped.append(path or "(top)")
        if isinstance(value, dict):
            if path in SCHEMA_OPEN:
                return
            if node.get("additionalProperties") is not False:
                open_objects.append(path or "(top)")
            props = node.get("properties") or {}
            for k, v in value.items():
                sub = f"{path}.{k}" if path else k
                if k in props:
                    walk(v, props[k], sub)
                else:
                    uncovered.append(sub)
        elif isinstance(value, list):
            items = node.get("items")
            for v in value:
                if items is None:
                    uncovered.append(f"{path}[]")
                else:
                    walk(v, items, f"{path}[]")

    for values in [yaml.safe_load(open(os.path.join(chart, "values.yaml"), encoding="utf-8"))] + extra_values:
        walk(values, schema, "")
    check("values.schema.json: every value of values.yaml (and values-full.yaml) has a schema",
          not uncovered, "; ".join(sorted(set(uncovered))))
    check("values.schema.json: every value's schema says its type", not untyped, "; ".join(sorted(set(untyped))))
    check(f"values.schema.json: every object admits no unknown key but {sorted(SCHEMA_OPEN)}",
          not open_objects, "; ".join(sorted(set(open_objects))))


def check_schema_matches_agent(chart):
    """The schema's enums and ranges of agent.* are what the agent's option parsing accepts
    (agent/src/app/options.cc): a value the schema passes starts the agent."""
    schema = json.load(open(os.path.join(chart, "values.schema.json"), encoding="utf-8"))
    agent = schema["properties"]["agent"]["properties"]
    source = open(os.path.join(chart, "agent", "src", "app", "options.cc"), encoding="utf-8").read()

    def accepted(flag):
        m = re.search(r'"' + re.escape(flag) + r' must be ([a-z, ]+?) or ([a-z]+), got', source)
        return m.group(1).split(", ") + [m.group(2)] if m else None

    for value, flag in (("authMode", "--auth-mode"), ("keystoreBackend", "--keystore-backend"),
                        ("logLevel", "--log-level")):
        check(f"values.schema.json: agent.{value}'s enum is what the agent takes for {flag}",
              accepted(flag) is not None and sorted(agent[value]["enum"]) == sorted(accepted(flag)),
              f"{agent[value].get('enum')} vs {accepted(flag)}")
    client_auth = agent["tls"]["properties"]["clientAuth"]["enum"]
    check("values.schema.json: agent.tls.clientAuth's enum is what the agent takes for --tls-client-auth",
          sorted(client_auth) == sorted(accepted("--tls-client-auth") or []), f"{client_auth}")

    def int_range(flag):
        m = re.search(r'ParseInt<\w+>\("' + re.escape(flag) + r'", value, (\d+), (\d+)\)', source)
        return (int(m.group(1)), int(m.group(2))) if m else None

    for value, flag in (("threads", "--threads"), ("maxConnections", "--max-connections")):
        check(f"values.schema.json: agent.{value}'s range is the agent's for {flag}",
              (agent[value].get("minimum"), agent[value].get("maximum")) == int_range(flag),
              f"{agent[value]} vs {int_range(flag)}")
    port = resolve(schema, agent["port"])
    lo, hi = int_range("--port") or (None, None)
    check("values.schema.json: agent.port lies within the agent's --port range",
          lo is not None and port.get("minimum", 0) >= lo and port.get("maximum") == hi, f"{port} vs {lo}-{hi}")


# --- ComponentDefinitions ---------------------------------------------------------------------

def service_targets(spec):
    """(service, port name, target container, container port number) of every port of the
    ComponentDefinition's services; a targetPort name is looked up in the pod's containers."""
    by_name = {p["name"]: (c["name"], p["containerPort"])
               for c in spec["runtime"]["containers"] for p in c.get("ports") or []}
    by_number = {p["containerPort"]: (c["name"], p["containerPort"])
                 for c in spec["runtime"]["containers"] for p in c.get("ports") or []}
    out = []
    for svc in spec.get("services") or []:
        for p in (svc.get("spec") or {}).get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            found = by_name.get(target) if isinstance(target, str) else by_number.get(target, (None, target))
            out.append((svc.get("name"), p.get("port"), *(found or (None, None))))
    return out


def check_cmpds(docs, values, chart_version, variant):
    rendered = [d["metadata"]["name"] for d in by_kind(docs, "ComponentDefinition")]
    cmpds = {d["metadata"]["name"]: d for d in by_kind(docs, "ComponentDefinition")}
    expected = {f"elasticsearch-{m}-{chart_version}": m for m in ("7", "8", "9")}
    adopted = adopted_cmpds(values, chart_version)
    check(f"[{variant}] one ComponentDefinition per major 7, 8, 9, and one per upstream name taken over "
          f"{sorted(adopted)}", set(cmpds) == set(expected) | set(adopted) and len(rendered) == len(cmpds),
          str(sorted(rendered)))
    for name, major in adopted.items():
        own = cmpds.get(f"elasticsearch-{major}-{chart_version}")
        check(f"[{variant}] {name} (upstream, taken over): this chart's {major}.x spec and annotations",
              name in cmpds and own is not None and cmpds[name]["spec"] == own["spec"]
              and cmpds[name]["metadata"].get("annotations") == own["metadata"].get("annotations"))
    uid = values["elasticsearch"]["uid"]
    agent_values = values["agent"]
    password_secret = values["keystore"]["passwordSecret"]
    for name, major in expected.items():
        if name not in cmpds:
            continue
        spec = cmpds[name]["spec"]
        tag = f"[{variant}] {name}"
        annotations = cmpds[name]["metadata"].get("annotations") or {}
        check(f"{tag}: a helm upgrade that changes values keeps it served (skip-immutable-check)",
              annotations.get("apps.kubeblocks.io/skip-immutable-check") == "true", str(annotations))
        check(f"{tag}: serviceVersion is the major's first release",
              spec["serviceVersion"] == values["versions"][major][0], spec["serviceVersion"])
        names = [c["name"] for c in spec["runtime"]["containers"]]
        check(f"{tag}: containers elasticsearch, exporter, agent", names == ["elasticsearch", "exporter", "agent"],
              str(names))
        agent = container(spec, "agent")
        engine = container(spec, "elasticsearch")
        if not agent or not engine:
            continue
        cli = is_cli(values)
        own_binary = agent_binary_in_image(CHART_DIR)
        binary = "/mnt/agent-bin/es-agent" if cli else own_binary
        if cli:
            check(f"{tag}: cli backend: the agent container runs the engine's image (serviceVersion's)",
                  agent.get("image") == image_of(values, values["image"]["elasticsearch"], spec["serviceVersion"])
                  == engine.get("image"), agent.get("image"))
        else:
            check(f"{tag}: agent image from values", agent.get("image") == image_of(values, values["image"]["agent"]),
                  agent.get("image"))
        check(f"{tag}: agent runs {binary} serve", own_binary and agent.get("command") == [binary, "serve"],
              str(agent.get("command")))
        ports = agent.get("ports") or []
        check(f"{tag}: agent port named agent = {agent_values['port']}",
              [(p["name"], p["containerPort"]) for p in ports] == [("agent", agent_values["port"])], str(ports))
        check(f"{tag}: agent has no readiness probe", "readinessProbe" not in agent and "startupProbe" not in agent)
        probe = agent.get("livenessProbe") or {}
        check(f"{tag}: agent liveness is the exec probe {binary} health (its env decides HTTP or HTTPS)",
              (probe.get("exec") or {}).get("command") == [binary, "health"]
              and "httpGet" not in probe, str(probe))
        res = agent.get("resources") or {}
        check(f"{tag}: agent has cpu and memory requests and limits",
              all(set(res.get(k, {})) >= {"cpu", "memory"} for k in ("requests", "limits")), str(res))
        wanted = agent_values["cliBackendResources" if agent_values["keystoreBackend"] == "cli" else "resources"]
        check(f"{tag}: agent resources are the {agent_values['keystoreBackend']} backend's", res == wanted, str(res))
        sc = agent.get("securityContext") or {}
        check(f"{tag}: agent runs as non-root uid {uid}, read-only root, no capabilities, no escalation",
              sc.get("runAsNonRoot") is True and sc.get("runAsUser") == uid
              and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
              and (sc.get("capabilities") or {}).get("drop") == ["ALL"], str(sc))
        env = env_of(agent)
        mounts = mounts_of(agent)
        engine_mounts = mounts_of(engine)
        config_dir = env.get("AGENT_CONFIG_DIR", {}).get("value")
        check(f"{tag}: agent's config volume is the engine's, writable, at AGENT_CONFIG_DIR",
              "config" in mounts and not mounts["config"].get("readOnly")
              and mounts["config"]["mountPath"] == config_dir == engine_mounts.get("config", {}).get("mountPath"),
              f"{mounts.get('config')} {config_dir}")
        check(f"{tag}: agent never mounts the data volume",
              "data" not in mounts and "data" in engine_mounts)
        expected_mounts = {"config"}
        if password_secret:
            expected_mounts.add("keystore-password")
        if cli:
            expected_mounts |= {"agent-bin", "agent-tmp"}
        check(f"{tag}: agent mounts exactly {sorted(expected_mounts)}", set(mounts) == expected_mounts,
              str(sorted(mounts)))
        check(f"{tag}: agent's read-only mounts are read-only",
              all(mounts.get(m, {}).get("readOnly") is True for m in expected_mounts - {"config", "agent-tmp"}))
        want_env = {
            "AGENT_PORT": str(agent_values["port"]), "AGENT_ENGINE": "elasticsearch",
            "AGENT_ENGINE_VERSION": "$(ELASTICSEARCH_VERSION)", "AGENT_NODE_ADDRESS": "127.0.0.1:9200",
            "AGENT_AUTH_MODE": agent_values["authMode"], "AGENT_KEYSTORE_BACKEND": agent_values["keystoreBackend"],
            "AGENT_NODE_SCHEME": "$(ES_SCHEME)", "AGENT_NODE_CA_FILE": "$(TLS_CA_FILE)",
            "AGENT_NODE_SERVER_NAME": "$(POD_FQDN)", "AGENT_LOG_LEVEL": agent_values["logLevel"],
        }
        if agent_values["tls"]["enabled"]:
            want_env.update({"AGENT_TLS_CERT_FILE": "$(TLS_CERT_FILE)", "AGENT_TLS_KEY_FILE": "$(TLS_KEY_FILE)",
                             "AGENT_TLS_CA_FILE": "$(TLS_CA_FILE)",
                             "AGENT_TLS_CLIENT_AUTH": agent_values["tls"]["clientAuth"]})
        wrong = {k: env.get(k, {}).get("value") for k, v in want_env.items() if env.get(k, {}).get("value") != v}
        check(f"{tag}: agent env", not wrong, str(wrong))
        check(f"{tag}: agent TLS env only with agent.tls.enabled",
              agent_values["tls"]["enabled"] or not any(k.startswith("AGENT_TLS_") for k in env))
        engine_home = os.path.dirname(engine_mounts.get("config", {}).get("mountPath", ""))
        check(f"{tag}: AGENT_ENGINE_HOME only with the cli backend: the engine's own home in its image "
              f"({engine_home}), under no volume",
              ("AGENT_ENGINE_HOME" in env) == cli
              and ("AGENT_ENGINE_HOME" not in env
                   or (env["AGENT_ENGINE_HOME"].get("value") == engine_home == "/usr/share/elasticsearch"
                       and not any(m["mountPath"] in (engine_home, engine_home + "/bin", engine_home + "/jdk")
                                   for m in mounts.values()))),
              str(env.get("AGENT_ENGINE_HOME")))
        check_agent_binary(spec, values, agent, binary, own_binary, tag)
        vars_ = {v["name"]: v for v in spec.get("vars") or []}
        check(f"{tag}: ELASTIC_USERNAME/PASSWORD are the elastic account's credential vars",
              all((vars_.get(n, {}).get("valueFrom") or {}).get("credentialVarRef", {}).get("name") == "elastic"
                  for n in ("ELASTIC_USERNAME", "ELASTIC_PASSWORD")))
        # One keystore-password Secret for both the node and the agent.
        if password_secret:
            vol = [v for v in spec["runtime"]["volumes"] if v["name"] == "keystore-password"]
            engine_env = env_of(engine)
            path = f"{engine_mounts.get('keystore-password', {}).get('mountPath')}/password"
            check(f"{tag}: one Secret {password_secret} gives the keystore password to node and agent",
                  len(vol) == 1 and vol[0]["secret"]["secretName"] == password_secret
                  and vol[0]["secret"]["items"] == [{"key": values["keystore"]["passwordKey"], "path": "password"}]
                  and env.get("AGENT_KEYSTORE_PASSWORD_FILE", {}).get("value") == path
                  and engine_env.get("ES_KEYSTORE_PASSWORD_FILE", {}).get("value") == path
                  and mounts["keystore-password"]["mountPath"] == engine_mounts["keystore-password"]["mountPath"])
        else:
            check(f"{tag}: no keystore password anywhere without keystore.passwordSecret",
                  "AGENT_KEYSTORE_PASSWORD_FILE" not in env and "ES_KEYSTORE_PASSWORD_FILE" not in env_of(engine)
                  and not [v for v in spec["runtime"]["volumes"] if v["name"] == "keystore-password"])
        tls = spec.get("tls") or {}
        check(f"{tag}: TLS files at /etc/pki/tls (cert.pem, key.pem, ca.pem), mode 0440, group = fsGroup {uid}",
              tls.get("mountPath") == "/etc/pki/tls" and tls.get("defaultMode") == 0o440
              and (tls.get("certFile"), tls.get("keyFile"), tls.get("caFile")) == ("cert.pem", "key.pem", "ca.pem")
              and spec["runtime"].get("securityContext", {}).get("fsGroup") == uid, str(tls))
        plugins_init = container(spec, "install-plugins", init=True)
        if major == "7":
            check(f"{tag}: 7.x installs repository-s3 in an init container into the plugins volume",
                  plugins_init is not None
                  and env_of(plugins_init).get("PLUGINS", {}).get("value") == values["plugins"]["repositoryS3"]["source"]
                  and "repository-s3" in values["plugins"]["repositoryS3"]["source"]
                  and mounts_of(plugins_init).get("plugins", {}).get("mountPath") == engine_mounts.get("plugins", {}).get("mountPath"))
        else:
            check(f"{tag}: {major}.x installs no plugin (repository-s3 is a bundled module)",
                  plugins_init is None and "plugins" not in engine_mounts)
        # entrypoint.sh replaces elasticsearch.yml's ${NAME} placeholders by the engine
        # container's variables: each must be there.
        template = open(os.path.join(CHART_DIR, "config", "elasticsearch.yml.tpl"), encoding="utf-8").read()
        template = re.sub(r"\{\{-? */\*.*?\*/ *-?\}\}", "", template, flags=re.S)
        template = "\n".join(l for l in template.splitlines() if not l.lstrip().startswith("#"))
        placeholders = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", template))
        var_names = set(vars_)
        users = [engine]
        missing = {c["name"]: sorted(placeholders - var_names - set(env_of(c))) for c in users}
        check(f"{tag}: elasticsearch.yml's placeholders {sorted(placeholders)} are in the env of "
              f"{[c['name'] for c in users]}", placeholders and not any(missing.values()), str(missing))
        check_member_actions(spec, values, engine_mounts, tag)
        labels = spec.get("labels") or {}
        check(f"{tag}: pods carry the addon's label", labels.get("elasticsearch.kubeblocks.io/addon") == "true")
        # KubeBlocks names a component Service <cluster>-<component>-<serviceName> (and skips
        # one that would be the headless Service's name).
        services = spec.get("services") or []
        check(f"{tag}: one client Service, http, which KubeBlocks names <cluster>-<component>-http",
              [(v.get("name"), v.get("serviceName")) for v in services] == [("http", "http")], str(services))
        check(f"{tag}: the client Service is created with every component (one, not per pod; no role needed)",
              all(not v.get("disableAutoProvision") and not v.get("podService") and not v.get("roleSelector")
                  and (v.get("spec") or {}).get("type", "ClusterIP") == "ClusterIP"
                  and not (v.get("spec") or {}).get("selector") for v in services) and services, str(services))
        targets = service_targets(spec)
        check(f"{tag}: the client Service's one port is 9200, to the elasticsearch container's http port 9200",
              targets == [("http", 9200, "elasticsearch", 9200)], str(targets))
        check(f"{tag}: the client Service reaches neither the agent port {agent_values['port']} nor the exporter's or transport",
              targets and not any(t[2] != "elasticsearch" or t[3] in (agent_values["port"], values["exporter"]["port"], 9300)
                                  for t in targets), str(targets))
        for init in spec["runtime"].get("initContainers") or []:
            sc = init.get("securityContext") or {}
            check(f"{tag}: init container {init['name']} runs as uid {uid}, no capabilities",
                  sc.get("runAsUser") == uid and sc.get("runAsNonRoot") is True
                  and (sc.get("capabilities") or {}).get("drop") == ["ALL"])
    return cmpds


def check_agent_binary(spec, values, agent, binary, own_binary, tag):
    """With the cli backend, install-agent copies es-agent from the agent's image into the
    agent-bin emptyDir, which the agent mounts read-only where its command and probe find it;
    nothing of the engine's home is copied. With the native backend, none of that."""
    install = container(spec, "install-agent", init=True)
    volumes = {v["name"]: v for v in spec["runtime"].get("volumes") or []}
    inits = [c["name"] for c in spec["runtime"].get("initContainers") or []]
    check(f"{tag}: no copy-engine-home init container, no engine-home volume",
          "copy-engine-home" not in inits and "engine-home" not in volumes, str(inits))
    if not is_cli(values):
        check(f"{tag}: native backend: no install-agent init container, no agent-bin or agent-tmp volume",
              install is None and "agent-bin" not in volumes and "agent-tmp" not in volumes, str(inits))
        return
    # The engine's keystore tool is a JVM (java.io.tmpdir /tmp) in a read-only root filesystem.
    tmp_mount = mounts_of(agent).get("agent-tmp", {})
    check(f"{tag}: cli backend: the agent mounts the agent-tmp emptyDir writable at /tmp, the node's tmp not",
          tmp_mount.get("mountPath") == "/tmp" and not tmp_mount.get("readOnly")
          and volumes.get("agent-tmp", {}).get("emptyDir") == {} and "tmp" not in mounts_of(agent),
          f"{tmp_mount} {volumes.get('agent-tmp')}")
    check(f"{tag}: cli backend: only the agent mounts agent-tmp",
          [c["name"] for c in (spec["runtime"].get("initContainers") or []) + spec["runtime"]["containers"]
           if "agent-tmp" in mounts_of(c)] == ["agent"])
    check(f"{tag}: cli backend: an install-agent init container", install is not None, str(inits))
    if install is None:
        return
    bin_dir = os.path.dirname(binary)
    check(f"{tag}: install-agent runs the agent's own image", install.get("image") == image_of(values, values["image"]["agent"]),
          install.get("image"))
    check(f"{tag}: install-agent runs {own_binary} install {binary}",
          install.get("command") == [own_binary, "install", binary] and "args" not in install,
          str(install.get("command")))
    install_mounts = mounts_of(install)
    check(f"{tag}: install-agent writes the agent-bin volume at {bin_dir}, and mounts nothing else",
          set(install_mounts) == {"agent-bin"} and install_mounts["agent-bin"]["mountPath"] == bin_dir
          and not install_mounts["agent-bin"].get("readOnly"), str(install_mounts))
    agent_mount = mounts_of(agent).get("agent-bin", {})
    check(f"{tag}: the agent mounts agent-bin read-only at {bin_dir}",
          agent_mount.get("mountPath") == bin_dir and agent_mount.get("readOnly") is True, str(agent_mount))
    check(f"{tag}: agent-bin is an emptyDir", volumes.get("agent-bin", {}).get("emptyDir") == {},
          str(volumes.get("agent-bin")))


def check_member_actions(spec, values, engine_mounts, tag):
    """memberLeave and memberJoin: config/member.sh leave|join from the scripts volume the engine
    container mounts, in the dataprotection image (kb-agent allows one exec image for all
    actions), ending before kb-agent's kill (timeoutSeconds, at most 60)."""
    actions = spec.get("lifecycleActions") or {}
    check(f"{tag}: lifecycleActions are memberLeave and memberJoin", set(actions) == {"memberLeave", "memberJoin"},
          str(sorted(actions)))
    scripts_dir = engine_mounts.get("scripts", {}).get("mountPath")
    for name, mode in (("memberLeave", "leave"), ("memberJoin", "join")):
        action = actions.get(name) or {}
        exec_ = action.get("exec") or {}
        env = {e["name"]: e.get("value") for e in exec_.get("env") or []}
        timeout = action.get("timeoutSeconds", 0)
        check(f"{tag}: {name} runs bash {scripts_dir}/member.sh {mode} beside the engine container's mounts",
              exec_.get("command") == ["/bin/bash", f"{scripts_dir}/member.sh", mode]
              and exec_.get("container") == "elasticsearch" and not exec_.get("args")
              and os.path.exists(os.path.join(CHART_DIR, "config", "member.sh")), str(exec_))
        check(f"{tag}: {name} in the dataprotection image (bash, curl, jq)",
              exec_.get("image") == image_of(values, values["image"]["dataprotection"]), exec_.get("image"))
        check(f"{tag}: {name} ends (MEMBER_ACTION_TIMEOUT) before kb-agent kills it (timeoutSeconds <= 60)",
              isinstance(timeout, int) and 0 < timeout <= 60
              and env.get("MEMBER_ACTION_TIMEOUT", "").isdigit() and int(env["MEMBER_ACTION_TIMEOUT"]) + 5 <= timeout,
              f"timeoutSeconds={timeout} env={env}")
        check(f"{tag}: {name} targets the member's own pod (no selector), no precondition",
              not action.get("targetPodSelector") and not exec_.get("targetPodSelector")
              and "preCondition" not in action)


def check_no_inline_secrets(docs, variant):
    """No env of any container or job holds a literal secret: a variable whose name says it is
    a secret is a $(reference), a file path or empty, and its value comes from a Secret."""
    suspicious = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", re.I)
    bad = []

    def walk(node, where):
        if isinstance(node, dict):
            if "name" in node and ("value" in node or "valueFrom" in node) and isinstance(node.get("name"), str):
                value = node.get("value")
                if suspicious.search(node["name"]) and isinstance(value, str) and value:
                    if not re.fullmatch(r"(\$\([A-Z_]+\))+|/[\w./-]+", value):
                        bad.append(f"{where}: {node['name']}")
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    for d in docs:
        walk(d, f"{d['kind']}/{d['metadata']['name']}")
    check(f"[{variant}] no secret value inline in any env", not bad, "; ".join(bad))


def check_images(docs, values, variant):
    allowed = allowed_images(values)
    found = set()
    for d in docs:
        found |= set(all_images(d))
    check(f"[{variant}] every image reference resolves to values.yaml", found and found <= allowed,
          str(sorted(found - allowed)))


def check_componentversion(docs, values, cmpds, variant):
    cvs = by_kind(docs, "ComponentVersion")
    check(f"[{variant}] one ComponentVersion", len(cvs) == 1)
    if not cvs:
        return
    spec = cvs[0]["spec"]
    releases = {r["name"]: r for r in spec["releases"]}
    every = [r for m in ("7", "8", "9") for r in releases_of(values, m)]
    check(f"[{variant}] ComponentVersion lists every release of values.versions and values.upstream.releases, once",
          sorted(releases) == sorted(every) and len(spec["releases"]) == len(every))
    for name, cmpd in cmpds.items():
        rules = [r for r in spec["compatibilityRules"] if any(kb_name_matched(name, p) for p in r["compDefs"])]
        major = name.split("-")[1]
        check(f"[{variant}] {name}: one compatibility rule, with the major's releases",
              len(rules) == 1 and rules[0]["releases"] == releases_of(values, major))
        rt = cmpd["spec"]["runtime"]
        containers = [c["name"] for c in (rt.get("initContainers") or []) + rt["containers"]]
        for release in releases_of(values, major):
            images = releases.get(release, {}).get("images", {})
            # KubeBlocks 1.0.2 fails a Cluster whose serviceVersion is not the cmpd's own when a
            # container has no image in the release (component_version.go, checkNMergeImages).
            missing = [c for c in containers if c not in images]
            check(f"[{variant}] release {release}: every container and init container of {name} has an image",
                  not missing, f"none for {missing}")
            wanted = release_images(values, release, containers)
            check(f"[{variant}] release {release}: an image for each container of {name}, the engine's tagged {release}"
                  + (" (the agent's too: cli backend; install-agent the agent's own)" if is_cli(values) else ""),
                  images == wanted, f"{images} vs {wanted}")


# --- The upstream addon's names ---------------------------------------------------------------
# What a KubeBlocks cluster holds from the upstream addon (github.com/apecloud/kubeblocks-addons,
# addons/elasticsearch) and this chart must keep resolving after a helm upgrade of its release.
# Read from that repository's sources at the commits named (README, "Upgrading from the
# upstream addon"); upstream changed them over time, so these are the union of those versions.
UPSTREAM_COMPONENT_VERSION = "elasticsearch"  # templates/cmpv.yaml @ 49544789, cmpv-es.yaml @ bcd2baba, 0d2bcb5d
# Releases of its ComponentVersion per major: 7.7.1, 7.8.1, 7.10.1, 8.1.3, 8.8.2 (cmpv-es.yaml
# @ bcd2baba86dc4d522c0364dcaac217cc36effc91), 8.9.1 and 8.15.5 added (@ 0d2bcb5dd47ab74b6e5e4fcddf942318cdb85ad1,
# which also has 6.8.23: no 6.x here).
UPSTREAM_RELEASES = {"7": ["7.7.1", "7.8.1", "7.10.1"], "8": ["8.1.3", "8.8.2", "8.9.1", "8.15.5"]}
# Its compatibility rules' patterns per major (cmpv-es.yaml, _helpers.tpl @ 0cc8195209180c30dcf21f3f9d8bfa6bc4f17951:
# elasticsearch<major>.cmpdRegexPattern), its cmpd names elasticsearch-<major>-<chart version>
# (elasticsearch<major>.cmpdName there), and what its README's Clusters name (README.md
# @ 0c5e7eef8ae3f2b37dcd5682e452c44a7bb023fb: componentDef: elasticsearch-8, configs es-cm).
UPSTREAM_PATTERNS = {"7": ["^elasticsearch-7-", "elasticsearch-7"], "8": ["^elasticsearch-8-", "elasticsearch-8"]}
UPSTREAM_BPT_PATTERN = "^elasticsearch-"  # backuppolicytemplate.yaml @ 0a637ada (elasticsearch.cmpdRegexPattern)
UPSTREAM_CONFIG = "es-cm"  # cmpd-es-8.yaml @ 112f74e31085fe0a8ead88fc8764290b3a6ecb81: configs[0].name
# actionset.yaml and backuppolicytemplate.yaml @ 0a637ada165771f9d7a04a6d9be0c246038b0d2a.
UPSTREAM_ACTIONSET = "elasticsearch-physical-br"
UPSTREAM_BPT = "elasticsearch-backup-policy-template"
# The engine image of each release: <registry, default docker.io>/<image.repository>:<release>,
# repository "elasticsearch" (_helpers.tpl elasticsearch-<release>.image; values.yaml
# @ 0484870839e5fa50b0720fac8770a3d96601566f).
UPSTREAM_IMAGE = "docker.io/elasticsearch:{}"


def docker_hub_reference(ref):
    """docker.io/library/x and docker.io/x name the same official image."""
    return ref.replace("docker.io/library/", "docker.io/", 1)


def check_upstream(docs, values, cmpds, chart_version, variant):
    cvs = by_kind(docs, "ComponentVersion")
    check(f"[{variant}] the ComponentVersion has the upstream addon's name {UPSTREAM_COMPONENT_VERSION}",
          [c["metadata"]["name"] for c in cvs] == [UPSTREAM_COMPONENT_VERSION])
    if not cvs:
        return
    spec = cvs[0]["spec"]
    releases = {r["name"]: r for r in spec["releases"]}
    for major, upstream in UPSTREAM_RELEASES.items():
        own = f"elasticsearch-{major}-{chart_version}"
        for pattern in UPSTREAM_PATTERNS[major]:
            check(f"[{variant}] {own} matches the upstream pattern {pattern!r} (as KubeBlocks matches names)",
                  own in cmpds and kb_name_matched(own, pattern))
        for release in upstream:
            rel = releases.get(release) or {}
            rules = [r for r in spec["compatibilityRules"] if release in r["releases"]]
            served_by = sorted(n for n in cmpds if any(kb_name_matched(n, p) for r in rules for p in r["compDefs"]))
            check(f"[{variant}] upstream release {release}: a release here, in a rule matching this chart's "
                  f"{major}.x ComponentDefinitions only",
                  rel.get("serviceVersion") == release and own in served_by
                  and all(n.split("-")[1] == major for n in served_by), f"{rel.get('serviceVersion')} {served_by}")
            image = (rel.get("images") or {}).get("elasticsearch", "")
            if not values["image"]["elasticsearch"].get("registry") and values["image"]["registry"] == "docker.io":
                check(f"[{variant}] upstream release {release}: the engine image upstream ran ({UPSTREAM_IMAGE.format(release)})",
                      docker_hub_reference(image) == UPSTREAM_IMAGE.format(release), image)
    for name, major in adopted_cmpds(values, chart_version).items():
        rules = [r for r in spec["compatibilityRules"] if any(kb_name_matched(name, p) for p in r["compDefs"])]
        check(f"[{variant}] {name} (upstream, taken over): its major's rule, with every upstream {major}.x release",
              len(rules) == 1 and set(UPSTREAM_RELEASES.get(major, [])) <= set(rules[0]["releases"]))
    check(f"[{variant}] every ComponentDefinition matches the upstream BackupPolicyTemplate's pattern "
          f"{UPSTREAM_BPT_PATTERN!r}", cmpds and all(kb_name_matched(n, UPSTREAM_BPT_PATTERN) for n in cmpds))
    configs = {n: [c["name"] for c in d["spec"].get("configs") or []] for n, d in cmpds.items()}
    check(f"[{variant}] every ComponentDefinition's config template is named {UPSTREAM_CONFIG!r}, as upstream's "
          "(a Cluster's configs[].name)", configs and all(c == [UPSTREAM_CONFIG] for c in configs.values()),
          str(configs))
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    check(f"[{variant}] the upstream ActionSet {UPSTREAM_ACTIONSET} and BackupPolicyTemplate {UPSTREAM_BPT} are here",
          {("ActionSet", UPSTREAM_ACTIONSET), ("BackupPolicyTemplate", UPSTREAM_BPT)} <= names)


# --- DataProtection ---------------------------------------------------------------------------

def job_commands(actionset):
    backup = actionset["spec"]["backup"]["backupData"]
    restores = [a["job"] for a in actionset["spec"]["restore"]["postReady"] if "job" in a]
    return {"backup.sh": backup, "restore.sh": restores[0] if restores else None}


def kubelet_expansion_is_identity(text):
    """The kubelet replaces $(NAME) for names in the job's env and $$ by $: the command must
    have neither an upper-case $(NAME) (every env name here is upper case) nor $$."""
    return "$$" not in text and not re.search(r"\$\([A-Z_][A-Z0-9_]*\)", text)


def run_job_command(command, script_dir, work):
    """Runs the rendered command as the job would, without any DP_ input: it must write the
    scripts, run the job's one, which fails on the missing DP_DB_HOST."""
    os.makedirs(work, exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "TMPDIR": work}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    written = [os.path.join(work, d) for d in os.listdir(work)]
    return result, written


def check_actionsets(docs, values, chart, work, variant):
    sets = {d["metadata"]["name"]: d for d in by_kind(docs, "ActionSet")}
    check(f"[{variant}] ActionSets elasticsearch-physical-backup and elasticsearch-physical-br",
          set(sets) == {"elasticsearch-physical-backup", "elasticsearch-physical-br"}, str(sorted(sets)))
    if len(sets) != 2:
        return
    a, b = sets["elasticsearch-physical-backup"], sets["elasticsearch-physical-br"]
    check(f"[{variant}] both ActionSets have the same spec", a["spec"] == b["spec"])
    spec = a["spec"]
    env = {e["name"]: e.get("value") for e in spec.get("env") or []}
    check(f"[{variant}] jobs are told the agents' port and scheme",
          env.get("AGENT_PORT") == str(values["agent"]["port"])
          and env.get("AGENT_SCHEME") == ("https" if values["agent"]["tls"]["enabled"] else "http"), str(env))
    for extra in values["backup"]["extraEnv"]:
        check(f"[{variant}] backup.extraEnv {extra['name']} reaches the jobs", env.get(extra["name"]) == extra["value"])
    props = set(spec["parametersSchema"]["openAPIV3Schema"]["properties"])
    declared = set(spec["backup"].get("withParameters") or []) | set(spec["restore"].get("withParameters") or [])
    check(f"[{variant}] every parameter in withParameters has a schema, and every schema a use",
          declared == props, f"{sorted(declared ^ props)}")
    sources = {n: open(os.path.join(chart, "dataprotection", n), "rb").read()
               for n in ("common.sh", "backup.sh", "restore.sh")}
    for script, job in job_commands(a).items():
        check(f"[{variant}] {script} job runs in the job image",
              job is not None and job["image"] == image_of(values, values["image"]["dataprotection"]))
        if job is None:
            continue
        command = job["command"]
        # bash -c LOADER NAME COMMON_SH SCRIPT: each script an argument of its own.
        args = dict(zip(("common.sh", script), command[4:6]))
        check(f"[{variant}] {script} job: bash -c, a loader, then the script's name and the two scripts",
              command[:2] == ["bash", "-c"] and len(command) == 6 and command[3] == script, str(command[:4]))
        check(f"[{variant}] {script} job embeds common.sh and {script} byte for byte",
              set(args) == {"common.sh", script} and all(args[n].encode() == sources[n] for n in args))
        for name, text in args.items():
            # Linux refuses one argument of more than 128 KiB (MAX_ARG_STRLEN) with E2BIG: the
            # job would not start. Kept under 120 KiB, to notice while there is some room.
            size = len(text.encode())
            check(f"[{variant}] {script} job's argument {name} is {size} bytes, under 120 KiB of the kernel's 128 KiB",
                  size < 120 * 1024)
        check(f"[{variant}] {script} job's command is unchanged by the kubelet's $(VAR) expansion",
              all(kubelet_expansion_is_identity(text) for text in command))
        result, written = run_job_command(command, chart, os.path.join(work, f"{variant}-{script}"))
        files_ok = len(written) == 1 and all(
            open(os.path.join(written[0], n), "rb").read() == sources[n] for n in ("common.sh", script))
        check(f"[{variant}] {script} job, run by bash: scripts written byte for byte",
              files_ok, f"{written} {result.stderr[-300:]}")
        check(f"[{variant}] {script} job, run by bash: the job's script runs (and fails for lack of DP_DB_HOST)",
              result.returncode == 1 and "DP_DB_HOST is not set" in result.stderr, result.stderr[-300:])
    check_restore_parameters(spec, sources["restore.sh"].decode(), variant)
    check_backup_parameters(spec, sources["backup.sh"].decode(), variant)
    check(f"[{variant}] backup runs on the target's node (it mounts the target's TLS volume)",
          spec["backup"]["backupData"].get("runOnTargetPodNode") is True)
    restore_job = job_commands(a)["restore.sh"] or {}
    check(f"[{variant}] restore runs on a target's node too (KubeBlocks mounts the Backup's targetVolumes only then)",
          restore_job.get("runOnTargetPodNode") is True)
    names = " ".join(sets) + " " + " ".join(d["metadata"]["name"] for d in docs)
    check(f"[{variant}] no setup-keystore or unified-backup object",
          "setup-keystore" not in names and "unified" not in names)


def check_restore_parameters(spec, restore_sh, variant):
    """Every option restore.sh reads (RESTORE_*=${RESTORE_*:-default}, MAX_RESTORE_BYTES_PER_SEC) is
    a Restore parameter with a schema, and the enums are the values restore.sh accepts."""
    options = set(re.findall(r"^((?:RESTORE|MAX_RESTORE)_[A-Z_]+)=\$\{\1:-", restore_sh, re.M))
    declared = set(spec["restore"].get("withParameters") or [])
    check(f"[{variant}] every option restore.sh reads is a Restore parameter",
          options and options <= declared, f"missing: {sorted(options - declared)}")
    props = spec["parametersSchema"]["openAPIV3Schema"]["properties"]
    kinds = {n: props.get(n, {}).get("type") for n in declared}
    check(f"[{variant}] Restore parameters have types KubeBlocks 1.0.2 documents (string, number, integer, array;"
          " not boolean, whose value would reach the job as written, 1 or True too)",
          all(t in ("string", "number", "integer", "array") for t in kinds.values()), str(kinds))
    for flag in ("RESTORE_INCLUDE_GLOBAL_STATE", "RESTORE_INCLUDE_ALIASES"):
        check(f"[{variant}] {flag} is \"true\" or \"false\", as restore.sh parses it",
              props.get(flag, {}).get("enum") == ["true", "false"] and f'parse_bool "${flag}"' in restore_sh)
    check(f"[{variant}] RESTORE_CONFLICT_MODE: fail, rename, close, delete",
          props.get("RESTORE_CONFLICT_MODE", {}).get("enum") == ["fail", "rename", "close", "delete"]
          and "fail | close | delete | rename) ;;" in restore_sh)
    check(f"[{variant}] RESTORE_LAYOUT: auto, own, upstream",
          props.get("RESTORE_LAYOUT", {}).get("enum") == ["auto", "own", "upstream"]
          and "auto | own | upstream) ;;" in restore_sh)
    check(f"[{variant}] RESTORE_REPLICAS is a whole number 0-999, as restore.sh checks",
          props.get("RESTORE_REPLICAS", {}).get("type") == "integer"
          and props["RESTORE_REPLICAS"].get("minimum") == 0 and props["RESTORE_REPLICAS"].get("maximum") == 999)
    check(f"[{variant}] the restore never deletes by default: RESTORE_CONFLICT_MODE defaults to fail",
          "RESTORE_CONFLICT_MODE=${RESTORE_CONFLICT_MODE:-fail}" in restore_sh)


def check_backup_parameters(spec, backup_sh, variant):
    """Every option backup.sh reads (BACKUP_*=${BACKUP_*:-...}, MAX_SNAPSHOT_BYTES_PER_SEC) is a
    Backup parameter, of a type KubeBlocks 1.0.2 documents, and the enums are what backup.sh accepts."""
    options = set(re.findall(r"^((?:BACKUP|MAX_SNAPSHOT)_[A-Z_]+)=\$\{\1:-", backup_sh, re.M))
    declared = spec["backup"].get("withParameters") or []
    check(f"[{variant}] every option backup.sh reads is a Backup parameter, and only those",
          options and options == set(declared), f"{sorted(options ^ set(declared))}")
    props = spec["parametersSchema"]["openAPIV3Schema"]["properties"]
    kinds = {n: props.get(n, {}).get("type") for n in declared}
    check(f"[{variant}] Backup parameters have types KubeBlocks 1.0.2 documents (string, number, integer, array;"
          " not boolean, whose value would reach the job as written, 1 or True too)",
          all(t in ("string", "number", "integer", "array") for t in kinds.values()), str(kinds))
    for flag in ("BACKUP_INCLUDE_GLOBAL_STATE", "BACKUP_ALLOW_PARTIAL", "BACKUP_SERVER_SIDE_ENCRYPTION"):
        check(f"[{variant}] {flag}: the string \"true\" or \"false\", read by option_bool",
              props.get(flag, {}).get("enum") == ["true", "false"] and f"option_bool {flag}" in backup_sh)
    for name in ("BACKUP_STORAGE_CLASS", "BACKUP_CANNED_ACL"):
        accepted = re.search(r"option_one_of " + name + r" ((?:[a-z_-]+ |\\\n\s*)*[a-z_-]+)$", backup_sh, re.M)
        values = accepted.group(1).replace("\\", " ").split() if accepted else None
        check(f"[{variant}] {name}: the schema's enum is what backup.sh accepts",
              props.get(name, {}).get("enum") == values, f"{props.get(name, {}).get('enum')} vs {values}")
    pattern = props.get("BACKUP_INDICES", {}).get("pattern", "")
    check(f"[{variant}] BACKUP_INDICES: patterns and exclusions pass, blanks and empty items do not",
          pattern and all(bool(re.fullmatch(pattern, v)) == ok for v, ok in
                          (("logs-*", True), ("a,-a-old,b*", True), ("a b", False), ("a,,b", False), ("x/y", False))))
    check(f"[{variant}] allow partial is off by default", "BACKUP_ALLOW_PARTIAL=${BACKUP_ALLOW_PARTIAL:-false}" in backup_sh)


def check_bpt(docs, cmpds, variant):
    bpts = by_kind(docs, "BackupPolicyTemplate")
    check(f"[{variant}] one BackupPolicyTemplate", len(bpts) == 1)
    if not bpts:
        return
    spec = bpts[0]["spec"]
    check(f"[{variant}] BackupPolicyTemplate compDefs match every ComponentDefinition",
          all(any(re.search(p, n) for p in spec.get("compDefs") or []) for n in cmpds) and cmpds)
    methods = spec["backupMethods"]
    check(f"[{variant}] the only backup method is full-backup, with elasticsearch-physical-backup",
          [(m["name"], m.get("actionSetName")) for m in methods] == [("full-backup", "elasticsearch-physical-backup")])
    target = methods[0].get("target") or {}
    port = target.get("containerPort") or {}
    check(f"[{variant}] full-backup target: role set and empty, strategy Any, the elastic account",
          "role" in target and target["role"] == "" and target.get("strategy") == "Any"
          and target.get("account") == "elastic", str(target))
    has_port = all(any(p["name"] == port.get("portName") for p in
                       (container(c["spec"], port.get("containerName")) or {}).get("ports", []))
                   for c in cmpds.values())
    check(f"[{variant}] full-backup target port is the http port of the elasticsearch container",
          port == {"containerName": "elasticsearch", "portName": "http"} and has_port, str(port))
    mounts = (methods[0].get("targetVolumes") or {}).get("volumeMounts") or []
    tls_ok = all(any(m["name"] == (c["spec"].get("tls") or {}).get("volumeName")
                     and m["mountPath"] == (c["spec"].get("tls") or {}).get("mountPath") for m in mounts)
                 for c in cmpds.values())
    check(f"[{variant}] full-backup mounts the ComponentDefinitions' TLS volume where the nodes have it, for both jobs",
          tls_ok and cmpds, str(mounts))
    schedules = spec.get("schedules") or []
    check(f"[{variant}] one default schedule, of full-backup, disabled",
          len(schedules) == 1 and schedules[0]["backupMethod"] == "full-backup" and schedules[0]["enabled"] is False)


# --- NetworkPolicy ----------------------------------------------------------------------------

def selector_matches(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        present = e["key"] in labels
        if e["operator"] == "Exists" and not present:
            return False
        if e["operator"] == "DoesNotExist" and present:
            return False
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
        if e["operator"] == "NotIn" and labels.get(e["key"]) in e["values"]:
            return False
    return True


def admits(policy, port, source):
    """Whether the policy lets TCP traffic from source (a dict: namespace, labels, or ip for a
    peer outside the cluster) reach port on a selected pod, as Kubernetes evaluates it."""
    if "Ingress" not in policy["spec"].get("policyTypes", ["Ingress"]):
        return True
    for rule in policy["spec"].get("ingress") or []:
        ports = rule.get("ports")
        if ports and not any(p.get("protocol", "TCP") == "TCP" and p.get("port") == port for p in ports):
            continue
        peers = rule.get("from")
        if not peers:
            return True
        for peer in peers:
            if "ipBlock" in peer:
                continue
            if "ip" in source:
                continue
            same_namespace = source["namespace"] == policy["metadata"]["namespace"]
            if "namespaceSelector" not in peer and not same_namespace:
                continue
            # Kubernetes labels every namespace with its name.
            namespace_labels = {"kubernetes.io/metadata.name": source["namespace"]}
            if "namespaceSelector" in peer and not selector_matches(peer["namespaceSelector"], namespace_labels):
                continue
            if "podSelector" in peer and not selector_matches(peer["podSelector"], source["labels"]):
                continue
            return True
    return False


def check_networkpolicy(docs, values, cmpds, variant, release_namespace="default"):
    policies = by_kind(docs, "NetworkPolicy")
    if not values["networkPolicy"]["enabled"]:
        check(f"[{variant}] networkPolicy.enabled=false: no NetworkPolicy", not policies)
        return
    namespaces = values["networkPolicy"]["namespaces"] or [release_namespace]
    check(f"[{variant}] one NetworkPolicy per namespace {namespaces}",
          sorted(p["metadata"]["namespace"] for p in policies) == sorted(namespaces))
    pod_labels = [c["spec"].get("labels") or {} for c in cmpds.values()]
    agent_port = values["agent"]["port"]
    for p in policies:
        ns = p["metadata"]["namespace"]
        tag = f"[{variant}] NetworkPolicy in {ns}"
        check(f"{tag} selects the addon's pods",
              pod_labels and all(selector_matches(p["spec"]["podSelector"], l) for l in pod_labels))
        backup_job = {"namespace": ns, "labels": {"dataprotection.kubeblocks.io/backup-name": "b1",
                                                  "app.kubernetes.io/managed-by": "kubeblocks-dataprotection"}}
        restore_job = {"namespace": ns, "labels": {"dataprotection.kubeblocks.io/restore": "r1"}}
        other_pod = {"namespace": ns, "labels": {"app": "client"}}
        peer_node = {"namespace": ns, "labels": pod_labels[0] if pod_labels else {}}
        foreign_job = {"namespace": ns + "-other", "labels": {"dataprotection.kubeblocks.io/backup-name": "b1"}}
        outside = {"ip": "203.0.113.7"}
        check(f"{tag}: agent port {agent_port} admits backup and restore job pods",
              admits(p, agent_port, backup_job) and admits(p, agent_port, restore_job))
        check(f"{tag}: agent port {agent_port} refuses other pods, peer nodes, other namespaces, outside",
              not any(admits(p, agent_port, s) for s in (other_pod, peer_node, foreign_job, outside)))
        client_ports = sorted({t[3] for c in cmpds.values() for t in service_targets(c["spec"])})
        check(f"{tag}: the client Service's target ports {client_ports} are open to every source",
              client_ports and all(admits(p, port, s) for port in client_ports
                                   for s in (backup_job, other_pod, peer_node, foreign_job, outside)))
        for port in (9200, 9300, values["exporter"]["port"]):
            check(f"{tag}: port {port} stays open to every source",
                  all(admits(p, port, s) for s in (backup_job, other_pod, peer_node, foreign_job, outside)))
        kb_ns = values["networkPolicy"]["kubeblocksNamespace"]
        controller = {"namespace": kb_ns, "labels": {"app.kubernetes.io/name": "kubeblocks"}}
        check(f"{tag}: kb-agent port 3501 admits KubeBlocks' namespace {kb_ns}", admits(p, 3501, controller))
        check(f"{tag}: kb-agent port 3501 refuses the cluster's namespace, job pods, peer nodes, outside",
              not any(admits(p, 3501, s) for s in (other_pod, backup_job, peer_node, foreign_job, outside)))
        check(f"{tag}: the agent port {agent_port} refuses KubeBlocks' namespace",
              not admits(p, agent_port, controller))


def check_configmaps(docs, chart, values, variant):
    maps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    scripts = [m for n, m in maps.items() if n.startswith("elasticsearch-scripts-tpl-")]
    config = [m for n, m in maps.items() if n.startswith("elasticsearch-config-tpl-")]
    check(f"[{variant}] one scripts and one config template ConfigMap", len(scripts) == 1 and len(config) == 1)
    if scripts:
        want = {n: open(os.path.join(chart, "config", n), encoding="utf-8").read()
                for n in ("prepare-config.sh", "entrypoint.sh", "install-plugins.sh", "member.sh")}
        check(f"[{variant}] scripts ConfigMap holds config/*.sh byte for byte", scripts[0]["data"] == want)
    if config:
        text = config[0]["data"]["elasticsearch.yml"]
        template = open(os.path.join(chart, "config", "elasticsearch.yml.tpl"), encoding="utf-8").read()
        check(f"[{variant}] config ConfigMap starts with config/elasticsearch.yml.tpl", text.startswith(template))
        extra = values["elasticsearch"]["extraConfig"]
        if extra:
            tail = yaml.safe_load(text[len(template):])
            check(f"[{variant}] elasticsearch.extraConfig appended to elasticsearch.yml", tail == extra, str(tail))


def merged_values(chart, overrides):
    values = yaml.safe_load(open(os.path.join(chart, "values.yaml"), encoding="utf-8"))

    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v

    for o in overrides:
        merge(values, o)
    return values


def main(argv):
    if len(argv) != 6:
        sys.exit(__doc__)
    global CHART_DIR
    chart, default_file, full_file, no_policy_file, work = argv[1:]
    CHART_DIR = chart
    chart_version = yaml.safe_load(open(os.path.join(chart, "Chart.yaml")))["version"]
    full_overrides = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "values-full.yaml")))
    variants = [
        ("default", default_file, merged_values(chart, [])),
        ("full", full_file, merged_values(chart, [full_overrides])),
        ("no-policy", no_policy_file, merged_values(chart, [{"networkPolicy": {"enabled": False}}])),
    ]
    check_values_documented(chart)
    check_schema_covers_values(chart, [full_overrides])
    check_schema_matches_agent(chart)
    for variant, path, values in variants:
        docs = load(path)
        cmpds = check_cmpds(docs, values, chart_version, variant)
        check_no_inline_secrets(docs, variant)
        check_images(docs, values, variant)
        check_componentversion(docs, values, cmpds, variant)
        check_upstream(docs, values, cmpds, chart_version, variant)
        check_actionsets(docs, values, chart, work, variant)
        check_bpt(docs, cmpds, variant)
        check_networkpolicy(docs, values, cmpds, variant)
        check_configmaps(docs, chart, values, variant)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main(sys.argv)

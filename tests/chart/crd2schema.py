#!/usr/bin/env python3
"""Turns CustomResourceDefinitions and Kubernetes' own OpenAPI definitions into the standalone
JSON Schema files kubeconform reads, one per kind and version: <kind>_<version>.json (kind in
lower case), made strict: an object that lists its properties admits no others unless the
schema says it keeps unknown fields.

  crd2schema.py crds OUT_DIR CRD.yaml...          every served version of every CRD
  crd2schema.py core OUT_DIR SWAGGER.json KIND... core kinds, e.g. io.k8s.api.core.v1.ConfigMap
"""
import json
import os
import sys

import yaml

# The OpenAPI keywords Kubernetes uses that JSON Schema (draft 4+) has too; extensions and
# metadata-only keywords are dropped.
KEEP = {
    "type", "properties", "items", "required", "enum", "format", "pattern", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems",
    "maxItems", "uniqueItems", "minProperties", "maxProperties", "additionalProperties",
    "description", "default", "anyOf", "oneOf", "allOf", "not", "multipleOf",
}


def fail(message):
    sys.stderr.write(f"crd2schema: ERROR: {message}\n")
    sys.exit(1)


def strict(node):
    """A copy of an OpenAPI v3 (structural) schema node as strict JSON Schema."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = strict(value)
        elif key in KEEP:
            out[key] = strict(value) if isinstance(value, (dict, list)) else value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("format", None)
        out.pop("anyOf", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    keeps_unknown = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
        "x-kubernetes-embedded-resource")
    if "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


def write(out_dir, kind, version, schema):
    path = os.path.join(out_dir, f"{kind.lower()}_{version}.json")
    if os.path.exists(path):
        fail(f"two schemas for {kind} {version}: {path} already written")
    schema = dict(schema)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(schema, f, indent=1, sort_keys=True)
    return path


def from_crds(out_dir, files):
    written = 0
    for file in files:
        with open(file, encoding="utf-8") as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    if not version.get("served", True):
                        continue
                    schema = version.get("schema", {}).get("openAPIV3Schema")
                    if not schema:
                        fail(f"{file}: {kind} {version['name']} has no openAPIV3Schema")
                    write(out_dir, kind, version["name"], strict(schema))
                    written += 1
    if not written:
        fail(f"no CRD versions found in {' '.join(files)}")
    return written


def resolve(definitions, node, seen=()):
    """Inlines every $ref of a swagger 2.0 definition (core kinds have no cycles)."""
    if isinstance(node, list):
        return [resolve(definitions, n, seen) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            fail(f"recursive definition {name}")
        return resolve(definitions, definitions[name], seen + (name,))
    out = {k: resolve(definitions, v, seen) for k, v in node.items()}
    if out.get("format") == "int-or-string":
        out = {"oneOf": [{"type": "string"}, {"type": "integer"}],
               "description": out.get("description", "")}
    return out


def from_swagger(out_dir, swagger_file, kinds):
    with open(swagger_file, encoding="utf-8") as f:
        definitions = json.load(f)["definitions"]
    for name in kinds:
        if name not in definitions:
            fail(f"{swagger_file} has no definition {name}")
        definition = definitions[name]
        gvk = definition["x-kubernetes-group-version-kind"][0]
        write(out_dir, gvk["kind"], gvk["version"], strict(resolve(definitions, definition)))
    return len(kinds)


def main(argv):
    if len(argv) < 4 or argv[1] not in ("crds", "core"):
        fail(__doc__.strip())
    mode, out_dir = argv[1], argv[2]
    os.makedirs(out_dir, exist_ok=True)
    if mode == "crds":
        count = from_crds(out_dir, argv[3:])
    else:
        count = from_swagger(out_dir, argv[3], argv[4:])
    print(f"crd2schema: {count} schemas written to {out_dir}")


if __name__ == "__main__":
    main(sys.argv)

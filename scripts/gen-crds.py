#!/usr/bin/env python3
"""Writes deploy/kubernetes/crds/*.yaml: the CustomResourceDefinitions of KubeArmor's three
policy kinds (security.kubearmor.com/v1), with OpenAPI v3 schemas written from
../shared/POLICY.md (enums, required fields, patterns). Structural schemas (apiextensions.k8s.io/v1) cannot
forbid unknown fields (the API server prunes them): `corral validate` names those. Run it
after changing the format;
tests/kubernetes/crd_schema_test.py checks policies against the files it writes."""
import json
import pathlib

ACTION = {"type": "string", "description": "Allow, Audit or Block (any case); missing: Block",
          "pattern": "^([Aa][Ll][Ll][Oo][Ww]|[Aa][Uu][Dd][Ii][Tt]|[Bb][Ll][Oo][Cc][Kk])$"}
SEVERITY = {"type": "integer", "minimum": 1, "maximum": 10}
COMMON = {"severity": SEVERITY, "tags": {"type": "array", "items": {"type": "string"}},
          "message": {"type": "string"}, "action": ACTION}
FILE_PATH = {"type": "string", "pattern": "^/.*[^/]$"}
DIR_PATH = {"type": "string", "pattern": "^/$|^/.*/$"}
FROM_SOURCE = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["path"],
    "properties": {"path": FILE_PATH}}}


def rules(fields, required_one_of=None, required=None):
    item = {"type": "object", "properties": {**fields, **COMMON}}
    if required:
        item["required"] = required
    if required_one_of:
        item["oneOf"] = [{"required": [f]} for f in required_one_of]
    return {"type": "array", "minItems": 1, "items": item}


def section(lists):
    return {"type": "object", "minProperties": 1, "properties": {**lists, **COMMON}}


BOOL = {"type": "boolean"}
PROCESS = section({
    "matchPaths": rules({"path": FILE_PATH, "execname": {"type": "string", "pattern": "^[^/]+$"},
                         "ownerOnly": BOOL, "fromSource": FROM_SOURCE, "pts": BOOL,
                         "allowedArgs": {"type": "array", "items": {"type": "string"}}},
                        required_one_of=["path", "execname"]),
    "matchDirectories": rules({"dir": DIR_PATH, "recursive": BOOL, "ownerOnly": BOOL,
                               "fromSource": FROM_SOURCE, "pts": BOOL}, required=["dir"]),
    "matchPatterns": rules({"pattern": {"type": "string", "minLength": 1}, "ownerOnly": BOOL},
                           required=["pattern"]),
})
FILE = section({
    "matchPaths": rules({"path": FILE_PATH, "readOnly": BOOL, "ownerOnly": BOOL,
                         "fromSource": FROM_SOURCE, "pts": BOOL}, required=["path"]),
    "matchDirectories": rules({"dir": DIR_PATH, "recursive": BOOL, "readOnly": BOOL,
                               "ownerOnly": BOOL, "fromSource": FROM_SOURCE, "pts": BOOL},
                              required=["dir"]),
    "matchPatterns": rules({"pattern": {"type": "string", "minLength": 1}, "readOnly": BOOL,
                            "ownerOnly": BOOL}, required=["pattern"]),
})
# Names are checked by `corral validate` (KubeArmor's protocol names, comma lists, and the
# capability list); the schema keeps to their shape.
NETWORK = section({"matchProtocols": rules(
    {"protocol": {"type": "string", "pattern": "^[A-Za-z0-9]+( *, *[A-Za-z0-9]+)*$"},
     "fromSource": FROM_SOURCE}, required=["protocol"])})
CAPABILITIES = section({"matchCapabilities": rules(
    {"capability": {"type": "string", "pattern": "^[A-Za-z_0-9]+( *, *[A-Za-z_0-9]+)*$"},
     "fromSource": FROM_SOURCE}, required=["capability"])})

LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
EXPRESSIONS = {"type": "array", "items": {
    "type": "object", "required": ["key", "operator"],
    "properties": {"key": {"type": "string", "enum": ["label", "namespace"]},
                   "operator": {"type": "string", "enum": ["In", "NotIn"]},
                   "values": {"type": "array", "items": {"type": "string"}}}}}
SELECTOR = {"type": "object",
            "properties": {"matchLabels": LABELS, "matchExpressions": EXPRESSIONS}}
NODE_SELECTOR = {"type": "object", "properties": {"matchLabels": LABELS}}


def spec(selector_key, selector):
    return {"type": "object",
            "properties": {selector_key: selector, "process": PROCESS, "file": FILE,
                           "network": NETWORK, "capabilities": CAPABILITIES, **COMMON}}


KINDS = [
    ("KubeArmorPolicy", "kubearmorpolicies", "kubearmorpolicy", "ksp", "Namespaced",
     spec("selector", SELECTOR)),
    ("KubeArmorClusterPolicy", "kubearmorclusterpolicies", "kubearmorclusterpolicy", "csp",
     "Cluster", spec("selector", SELECTOR)),
    ("KubeArmorHostPolicy", "kubearmorhostpolicies", "kubearmorhostpolicy", "hsp", "Cluster",
     spec("nodeSelector", NODE_SELECTOR)),
]


def crd(kind, plural, singular, short, scope, spec_schema):
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.security.kubearmor.com"},
        "spec": {
            "group": "security.kubearmor.com", "scope": scope,
            "names": {"kind": kind, "listKind": kind + "List", "plural": plural,
                      "singular": singular, "shortNames": [short]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "additionalPrinterColumns": [
                    {"name": "Action", "type": "string", "jsonPath": ".spec.action",
                     "priority": 10},
                    {"name": "Severity", "type": "integer", "jsonPath": ".spec.severity",
                     "priority": 10},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object", "required": ["spec"],
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "metadata": {"type": "object"}, "spec": spec_schema}}}}]}}


def main():
    out = pathlib.Path(__file__).resolve().parent.parent / "deploy/kubernetes/crds"
    out.mkdir(parents=True, exist_ok=True)
    for k in KINDS:
        # JSON is YAML: kubectl reads these files as they are.
        path = out / f"{k[1]}.yaml"
        path.write_text("# Written by scripts/gen-crds.py from ../shared/POLICY.md; do not edit.\n"
                        + json.dumps(crd(*k), indent=2) + "\n")
        print(path)


if __name__ == "__main__":
    main()

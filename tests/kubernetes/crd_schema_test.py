#!/usr/bin/env python3
"""The CRDs' schemas (deploy/kubernetes/crds, scripts/gen-crds.py) against the policies the
project knows: every policy in examples/ and the conformance table passes; every policy the
table marks invalid (`expect: {invalid: FIELD}`, the field `corral validate` names) is
refused by the schema on that same field, except where a structural schema cannot say it
(KNOWN_GAPS, each with the reason): then `corral validate` is what refuses it."""
import pathlib
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The table's invalid cases the schema cannot refuse, and why. The API server stores such
# objects; the agent refuses them with `corral validate`'s diagnostics. A gap not listed
# here fails the test.
KNOWN_GAPS = {
    "invalid-unknown-protocol-in-list": "protocol names are checked against KubeArmor's list "
                                        "by the agent (the schema checks their shape)",
    "invalid-unknown-capability": "capability names likewise",
    "invalid-unknown-field": "structural schemas cannot forbid unknown fields: the API server "
                             "prunes them",
    "invalid-section-without-rules": "a section holding only inherited fields (action, "
                                     "severity) and no rule list",
    "invalid-host-capability-without-from-source": "fromSource is required only on a host "
                                                   "policy's rules: the agent's check",
    "allowed-args-only-on-process-paths": "the same field name is allowed elsewhere in the "
                                          "section: pruned by the API server, refused by the agent",
    "lock-invalid-value-rejected": "a CRD schema cannot constrain metadata.annotations: the "
                                   "agent refuses the policy (a PolicyInvalid Event)",
    "lock-duplicate-annotation-rejected": "the API server's JSON has one value per key; the "
                                          "agent refuses a YAML file that gives one twice",
}


def schemas():
    out = {}
    for f in sorted((ROOT / "deploy/kubernetes/crds").glob("*.yaml")):
        crd = yaml.safe_load(f.read_text())
        out[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return out


def errors(schema, doc):
    v = jsonschema.Draft7Validator(schema)
    return [(".".join(str(p) for p in e.absolute_path), e.message) for e in v.iter_errors(doc)]


def dotted(field):
    # corral's paths: spec.process.matchPaths[1].path -> spec.process.matchPaths.1.path
    return field.replace("[", ".").replace("]", "")


def main():
    s = schemas()
    failures = []
    checked = refused = gaps = 0
    texts = [(f.name, f.read_text()) for f in sorted((ROOT / "examples").glob("*.yaml"))]
    table = yaml.safe_load((ROOT / "tests/conformance/cases.yaml").read_text())
    invalid = {}
    for case in table["cases"]:
        field = (case.get("expect") or {}).get("invalid")
        for name in case.get("policies", []):
            if field is not None:
                invalid.setdefault(name, []).append((case["name"], field))
    for name, text in table["policies"].items():
        if name not in invalid:
            texts.append(("cases.yaml:" + name, text))
    for where, text in texts:
        for doc in yaml.safe_load_all(text):
            if not isinstance(doc, dict) or doc.get("kind") not in s:
                continue
            checked += 1
            errs = errors(s[doc["kind"]], doc)
            if errs:
                failures.append(f"{where}: a valid policy is refused by the schema: {errs}")
    for name, expected in invalid.items():
        try:
            docs = [d for d in yaml.safe_load_all(table["policies"][name]) if isinstance(d, dict)]
        except yaml.YAMLError:
            gaps += 1  # not even YAML: kubectl refuses it before the schema
            continue
        for case, field in expected:
            found = []
            for doc in docs:
                if doc.get("kind") in s:
                    found += errors(s[doc["kind"]], doc)
            want = dotted(field)
            if any(path == want or path.startswith(want + ".") or want.startswith(path + ".")
                   and path.count(".") >= 1 for path, _ in found):
                refused += 1
            elif not found and case in KNOWN_GAPS:
                gaps += 1
                print(f"gap: {case}: {field}: {KNOWN_GAPS[case]}")
            elif not found:
                failures.append(f"{case}: corral names {field}; the schema lets it through "
                                "(fix the schema, or list the case in KNOWN_GAPS with why)")
            else:
                failures.append(f"{case}: corral names {field}, the schema {found}")
    print(f"{checked} valid policies pass the schema; {refused} invalid ones are refused on "
          f"corral validate's field; {gaps} are the agent's checks alone (KNOWN_GAPS)")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Translates the agent's DaemonSet (deploy/kubernetes/daemonset.yaml) into `ctr run` flags,
setting for setting, for tests/runtime/agent_image_test.sh: what the kubelet and the CRI
plugin would ask of runc for that pod on this node.

Every field of the pod template is either translated or named here as not applying (with
why); anything else fails, so that a setting added to the DaemonSet cannot go untested.

Prints one JSON object: image, ctr (flags for `ctr run`), args, labels, probes (exec
commands), caps (CAP_ names), cap_mask (hex, as /proc/<pid>/status shows CapEff), and
unavailable: the DaemonSet's capabilities outside --bounding, left out (runc cannot grant a
capability the runtime does not have: the container would not start).
"""
import argparse
import json
import os
import re
import stat
import sys

import yaml

POD_SPEC_IGNORED = {
    "serviceAccountName": "the agent does not call the Kubernetes API yet",
    "tolerations": "scheduling",
}
CONTAINER_IGNORED = {
    "imagePullPolicy": "the image is imported, never pulled",
    "ports": "declarative; the agent listens in the container's own network namespace",
}


class Untranslated(Exception):
    pass


def fail(msg):
    raise Untranslated(msg)


def cap_numbers(header):
    """CAP_NAME -> bit, from linux/capability.h."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", text, re.M)}


def milli_cpu(v):
    s = str(v)
    return int(s[:-1]) if s.endswith("m") else int(float(s) * 1000)


def memory_bytes(v):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 10**3, "M": 10**6, "G": 10**9}
    s = str(v)
    for suffix, mult in units.items():
        if s.endswith(suffix):
            return int(s[: -len(suffix)]) * mult
    return int(s)


def check_host_path(path, kind):
    """The hostPath type check the kubelet makes before it starts the pod."""
    if kind in ("DirectoryOrCreate",):
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    try:
        st = os.stat(path)
    except OSError as e:
        fail(f"hostPath {path}: {e.strerror}")
    want = {"Directory": stat.S_ISDIR, "Socket": stat.S_ISSOCK, "File": stat.S_ISREG}.get(kind)
    if kind and want is None:
        fail(f"hostPath type {kind} is not translated")
    if want and not want(st.st_mode):
        fail(f"hostPath {path} is not a {kind}")


def translate(ds, opts):
    if ds.get("kind") != "DaemonSet":
        fail("not a DaemonSet")
    template = ds["spec"]["template"]
    meta, pod = template.get("metadata", {}), template["spec"]
    ctr = []
    known_pod = {"hostPID", "containers", "volumes"} | set(POD_SPEC_IGNORED)
    for key in pod:
        if key not in known_pod:
            fail(f"spec.template.spec.{key} is not translated (teach daemonset_to_ctr.py)")
    if pod.get("hostPID"):
        ctr += ["--with-ns", f"pid:{opts.host_pid_ns}"]
    if len(pod["containers"]) != 1:
        fail("one container expected")
    c = pod["containers"][0]
    known = {"name", "image", "args", "env", "securityContext", "readinessProbe",
             "livenessProbe", "resources", "volumeMounts"} | set(CONTAINER_IGNORED)
    for key in c:
        if key not in known:
            fail(f"containers[0].{key} is not translated (teach daemonset_to_ctr.py)")

    # AppArmor: this annotation, or none at all; ctr applies no profile unless asked.
    for k, v in meta.get("annotations", {}).items():
        if k.startswith("container.apparmor.security.beta.kubernetes.io/") and v != "unconfined":
            fail(f"AppArmor profile {v} is not translated")

    sc = c.get("securityContext", {})
    known_sc = {"privileged", "allowPrivilegeEscalation", "capabilities", "seccompProfile"}
    for key in sc:
        if key not in known_sc:
            fail(f"securityContext.{key} is not translated")
    if sc.get("privileged"):
        ctr.append("--privileged")
    # allowPrivilegeEscalation: false is the OCI spec's noNewPrivileges, ctr's default.
    if sc.get("allowPrivilegeEscalation", True):
        ctr.append("--allow-new-privs")
    # Unconfined is no seccomp filter: ctr installs one only with --seccomp.
    seccomp = sc.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if seccomp == "RuntimeDefault":
        ctr.append("--seccomp")
    elif seccomp != "Unconfined":
        fail(f"seccompProfile {seccomp} is not translated")

    numbers = cap_numbers(opts.capability_h)
    caps_conf = sc.get("capabilities", {})
    add = ["CAP_" + n for n in caps_conf.get("add", [])]
    drop = caps_conf.get("drop", [])
    for n in add:
        if n not in numbers:
            fail(f"unknown capability {n}")
    defaults = [x for x in opts.default_caps.split(",") if x]
    bounding = int(opts.bounding, 16)
    unavailable = [n for n in add if not bounding & (1 << numbers[n])]
    add = [n for n in add if n not in unavailable]
    if drop == ["ALL"]:
        keep = add
        dropped = [x for x in defaults if x not in add]
    else:
        dropped = ["CAP_" + n for n in drop]
        keep = sorted(set(defaults + add) - set(dropped))
    for n in dropped:
        ctr += ["--cap-drop", n]
    for n in add:
        ctr += ["--cap-add", n]
    mask = 0
    for n in keep:
        mask |= 1 << numbers[n]

    for e in c.get("env", []):
        if "value" in e:
            ctr += ["--env", f"{e['name']}={e['value']}"]
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            ctr += ["--env", f"{e['name']}={opts.node}"]
        else:
            fail(f"env {e['name']} is not translated")

    res = c.get("resources", {})
    if "memory" in res.get("limits", {}):
        ctr += ["--memory-limit", str(memory_bytes(res["limits"]["memory"]))]
    if "cpu" in res.get("limits", {}):
        fail("a CPU limit is not translated")
    if "cpu" in res.get("requests", {}):  # the kubelet's MilliCPUToShares
        ctr += ["--cpu-shares", str(max(2, milli_cpu(res["requests"]["cpu"]) * 1024 // 1000))]

    # hostPath volumes, mounted as the CRI plugin mounts them: rbind, rprivate, ro if asked.
    # The host paths the test replaces by its own; the rest must be kernel interfaces.
    mapped = dict(m.split("=", 1) for m in opts.map)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        if set(m) - {"name", "mountPath", "readOnly"}:
            fail(f"volumeMounts {m['name']}: {sorted(set(m) - {'name', 'mountPath', 'readOnly'})}"
                 " not translated")
        v = volumes.get(m["name"]) or fail(f"no volume {m['name']}")
        if "hostPath" not in v:
            fail(f"volume {m['name']} is not a hostPath")
        path = v["hostPath"]["path"]
        host = mapped.get(path)
        if host is None:
            if not path.startswith("/sys/"):
                fail(f"hostPath {path} has no test stand-in (pass --map {path}=DIR)")
            host = path
        check_host_path(host, v["hostPath"].get("type", ""))
        mode = "ro" if m.get("readOnly") else "rw"
        ctr += ["--mount", f"type=bind,src={host},dst={m['mountPath']},options=rbind:rprivate:{mode}"]

    labels = dict(meta.get("labels", {}))
    labels.update({
        "io.kubernetes.pod.namespace": ds["metadata"].get("namespace", "default"),
        "io.kubernetes.pod.name": f"{ds['metadata']['name']}-{opts.node}",
        "io.kubernetes.container.name": c["name"],
    })
    for k, v in labels.items():
        ctr += ["--label", f"{k}={v}"]

    probes = [c[p]["exec"]["command"] for p in ("readinessProbe", "livenessProbe") if p in c]
    return {
        "image": c["image"],
        "ctr": ctr,
        "args": c.get("args", []),
        "caps": keep,
        "cap_mask": f"{mask:016x}",
        "unavailable": unavailable,
        "probes": probes,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("daemonset")
    ap.add_argument("--node", required=True, help="the node's name (spec.nodeName)")
    ap.add_argument("--map", action="append", default=[], metavar="HOSTPATH=TESTPATH")
    ap.add_argument("--default-caps", required=True,
                    help="the capabilities ctr gives a container (comma-separated CAP_ names)")
    ap.add_argument("--bounding", default="ffffffffffffffff",
                    help="the runtime's capability bounding set (hex, CapBnd)")
    ap.add_argument("--host-pid-ns", default="/proc/1/ns/pid",
                    help="the node's pid namespace, for hostPID")
    ap.add_argument("--capability-h", default="/usr/include/linux/capability.h")
    opts = ap.parse_args()
    with open(opts.daemonset, encoding="utf-8") as f:
        ds = yaml.safe_load(f)
    try:
        print(json.dumps(translate(ds, opts)))
    except (Untranslated, KeyError) as e:
        print(f"daemonset_to_ctr.py: {opts.daemonset}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`corral probe -o json` against docs/probe.schema.json, and its claims against checks made
independently of corral (issue 9).

  probe_json_test.py CORRAL schema   validates the JSON as this user, and, when root, as an
                                     unprivileged user too (every root check 'needs root')
  probe_json_test.py CORRAL facts    (root) the probe's claims against the test's own tries:
                                     the LSM list read through securityfs in a private mount
                                     namespace, a BPF LSM program loaded with a raw bpf(2)
                                     call, a fanotify group with a FAN_OPEN_PERM inode mark, a
                                     cgroup/sock_create program attached to a scratch cgroup

Nothing here hard-codes what the kernel allows: each claim is compared with the test's own
result on the same machine. Exit 77 (skip) with a reason when the mode cannot run."""
import ctypes
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs/probe.schema.json").read_text())
NO_AGENT = "/nonexistent/corral-probe-test.sock"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def probe(corral, *extra, user=None):
    cmd = [corral, "probe", "-o", "json", "--socket", NO_AGENT, *extra]
    if user is not None:
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
    check(out.returncode == 0, f"{' '.join(cmd)} exits 0 (stderr: {out.stderr.strip()!r})")
    return json.loads(out.stdout)


def validate(doc, label):
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc), key=str)
    for e in errors:
        print(f"     {label}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    check(not errors, f"{label}: valid against docs/probe.schema.json")


def consistent(doc, label):
    """What the schema cannot say: the picks follow from the checks."""
    c, a = doc["checks"], doc["auto"]
    works = {k: v["result"] == "works" for k, v in c.items()}
    for cat in ("process", "file"):
        if works["fanotify_perm"]:
            check(a[cat]["enforcer"] == "fanotify" and a[cat]["coverage"] == "enforced",
                  f"{label}: {cat} enforced by fanotify (fanotify permission events work)")
        else:
            check(a[cat]["enforcer"] != "fanotify", f"{label}: {cat} not claimed by fanotify")
    check((a["network"]["enforcer"] == "cgroup-bpf") == works["cgroup_bpf"],
          f"{label}: network by cgroup-bpf exactly when cgroup BPF works")
    caps = a["capabilities"]
    if works["bpf_lsm"]:
        want = ("bpf-lsm", "enforced")
    elif works["fmod_ret"]:
        want = ("fmod_ret security_capable", "enforced")
    elif works["tp_btf_cap"]:
        want = ("tp_btf cap_capable (audit only)", "audited only")
    elif works["kprobe"]:
        want = ("kprobe cap_capable (audit only)", "audited only")
    elif c["bpf_lsm"]["result"] == "needs root":
        want = ("unknown", "unknown")
    else:
        want = ("none", "unsupported")
    check((caps["enforcer"], caps["coverage"]) == want,
          f"{label}: capabilities pick {caps['enforcer']!r}/{caps['coverage']!r} is {want}")


# ---- independent tries ------------------------------------------------------------------------
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                               ctypes.c_char_p]
SYS_BPF = 321  # x86_64
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_TYPE_CGROUP_SOCK, BPF_PROG_TYPE_LSM = 9, 29
BPF_CGROUP_INET_SOCK_CREATE, BPF_LSM_MAC = 2, 27


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    fd = libc.syscall(SYS_BPF, cmd, buf, len(attr))
    return fd, (ctypes.get_errno() if fd < 0 else 0)


def prog_load(prog_type, attach_type=0, btf_id=0, ret=0):
    """fd or -1, errno: "r0 = ret; exit" (struct bpf_insn: u8 code, u8 regs, s16 off, s32 imm)."""
    insns = struct.pack("<BBhi", 0xb7, 0, 0, ret) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = bytearray(128)  # union bpf_attr, BPF_PROG_LOAD's fields at their offsets
    struct.pack_into("<IIQQ", attr, 0, prog_type, 2, ctypes.addressof(insn_buf),
                     ctypes.addressof(lic))
    struct.pack_into("<I", attr, 68, attach_type)
    struct.pack_into("<I", attr, 108, btf_id)
    return bpf(BPF_PROG_LOAD, attr)


def btf_func_id(name):
    out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
                         capture_output=True, text=True, check=True).stdout
    needle = f"] FUNC '{name}' "
    for line in out.splitlines():
        if needle in line:
            return int(line[1:line.index("]")])
    return None


def own_lsm_list():
    f = pathlib.Path("/sys/kernel/security/lsm")
    if f.exists():
        return f.read_text().strip().split(",")
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                          "mount -t securityfs securityfs /sys/kernel/security && "
                          "cat /sys/kernel/security/lsm"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split(",")


def own_lsm_load():
    btf_id = btf_func_id("bpf_lsm_file_open")
    if btf_id is None:
        return None
    fd, err = prog_load(BPF_PROG_TYPE_LSM, BPF_LSM_MAC, btf_id)
    if fd >= 0:
        os.close(fd)
    return err


def own_fanotify():
    fd = libc.fanotify_init(0x4 | 0x1, os.O_RDONLY)  # FAN_CLASS_CONTENT | FAN_CLOEXEC
    if fd < 0:
        return ctypes.get_errno()
    d = tempfile.mkdtemp(prefix="corral-probe-test.")
    try:
        # FAN_MARK_ADD, FAN_OPEN_PERM; an inode mark on our own empty directory, never opened.
        rc = libc.fanotify_mark(fd, 0x1, 0x10000, -100, d.encode())
        return 0 if rc == 0 else ctypes.get_errno()
    finally:
        os.close(fd)
        os.rmdir(d)


def own_cgroup(cgroup2):
    path = os.path.join(cgroup2, f"corral-probe-test-{os.getpid()}")
    os.mkdir(path)
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fd, err = prog_load(BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, 0, 1)
            if fd < 0:
                return err
            attr = bytearray(struct.pack("<IIII", dfd, fd, BPF_CGROUP_INET_SOCK_CREATE, 0))
            rc, err = bpf(BPF_PROG_ATTACH, attr)
            if rc == 0:
                bpf(BPF_PROG_DETACH, attr)
            os.close(fd)
            return err
        finally:
            os.close(dfd)
    finally:
        os.rmdir(path)


def own_cgroup2_mount():
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        if post.split()[0] == "cgroup2":
            return pre.split()[4]
    return None


def facts(corral):
    doc = probe(corral)
    validate(doc, "root")
    consistent(doc, "root")
    c = doc["checks"]
    for k, v in c.items():
        if v["result"] == "works":
            check(v["errno"] == 0 and v["error"] is None, f"{k} works and reports no error")

    lsm = own_lsm_list()
    check(doc["lsm"]["active"] == lsm, f"active LSMs {doc['lsm']['active']} == test's own {lsm}")
    check(bool(doc["lsm"]["source"]), f"LSM list source said: {doc['lsm']['source']!r}")

    cg = own_cgroup2_mount()
    check(doc["kernel"]["cgroup2"] == cg, f"cgroup v2 mount {doc['kernel']['cgroup2']} == {cg}")

    err = own_lsm_load()
    if err is None:
        check(c["bpf_lsm"]["result"] == "fails", "no bpf_lsm_file_open in BTF: bpf_lsm fails")
    elif err == 0:
        check(c["bpf_lsm"]["result"] == "works" or c["bpf_lsm"]["stage"] == "attach",
              "test loaded an LSM program: the probe's load worked too")
    else:
        check(c["bpf_lsm"]["result"] == "fails" and c["bpf_lsm"]["stage"] == "load" and
              c["bpf_lsm"]["errno"] == err,
              f"LSM load fails with errno {err} for the test; the probe says "
              f"{c['bpf_lsm']['stage']}: {c['bpf_lsm']['error']}")
        if "bpf" in lsm:
            check(any("bpf is in the active LSM list" in n for n in doc["notes"]),
                  "a note says bpf is listed but its programs cannot be used")

    err = own_fanotify()
    check((err == 0) == (c["fanotify_perm"]["result"] == "works"),
          f"fanotify permission mark: test errno {err}, probe {c['fanotify_perm']['result']}")

    if cg:
        err = own_cgroup(cg)
        check((err == 0) == (c["cgroup_bpf"]["result"] == "works"),
              f"cgroup/sock_create attach: test errno {err}, probe {c['cgroup_bpf']['result']}")
    # The probe left nothing behind.
    left = [p for p in pathlib.Path(cg or "/nonexistent").glob("corral-probe-scratch-*")]
    check(not left, f"no scratch cgroup left behind ({left})")

    full = probe(corral, "--full", "--containerd-socket", "/nonexistent/containerd.sock")
    validate(full, "root --full")
    check({"tp_btf", "ringbuf"} <= set(full["checks"]), "--full adds tp_btf and ringbuf")
    given = [s for s in full["runtime_sockets"] if s["given"]]
    check(len(given) == 1 and not given[0]["found"], "--containerd-socket is listed, not found")
    print("machine:", {k: (v["result"], v["error"]) for k, v in full["checks"].items()})


def schema(corral):
    doc = probe(corral)
    validate(doc, "as uid %d" % os.getuid())
    consistent(doc, "as uid %d" % os.getuid())
    check(doc["agent"]["running"] is False and "not running" in doc["agent"]["error"],
          "no agent at the socket: agent.running is false and says why")
    if os.getuid() == 0 and shutil.which("setpriv"):
        user = probe(corral, user="65534")  # nobody, nogroup
        validate(user, "as nobody")
        consistent(user, "as nobody")
        check(user["root"] is False, "as nobody: root is false")
        check(all(v["result"] == "needs root" for v in user["checks"].values()),
              "as nobody: every check says 'needs root'")
        check(all(p["coverage"] == "unknown" for p in user["auto"].values()),
              "as nobody: no pick is claimed")


def main():
    corral, mode = os.path.abspath(sys.argv[1]), sys.argv[2]
    if mode == "facts":
        if os.getuid() != 0:
            print("SKIP: probe.json_facts needs root (the probe's tries and the test's own)")
            return 77
        for tool in ("bpftool", "unshare"):
            if not shutil.which(tool):
                print(f"SKIP: {tool} is not installed (scripts/setup.sh)")
                return 77
        facts(corral)
    else:
        schema(corral)
    if failures:
        print(f"{len(failures)} failed")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

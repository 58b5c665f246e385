#!/usr/bin/env bash
# The agent from its image, run as deploy/kubernetes/daemonset.yaml runs it (issue 8): the
# image built by scripts/build-image.sh and imported with `ctr images import` into the test's
# private containerd; the agent's container started with exactly the DaemonSet's settings
# (daemonset_to_ctr.py: hostPID, only the listed capabilities, no seccomp, its hostPath
# mounts, its args, env and memory limit), with the host paths that are the node's replaced
# by the test's own (containerd's socket, the state and run dirs). Then the seed's pod
# (nginx, labelled as in the seed) and its Listing 2 through the agent's socket, and one
# check for each capability and mount, so that the test fails when one is missing:
#   SYS_ADMIN        fanotify: `chroot` denied (EPERM), alerted, in `corral logs`
#   SYS_PTRACE       the workload's /proc/<pid>/root: it is enforced at all
#   SYS_CHROOT       the canary: enforcement proven (not NOT ENFORCED)
#   SYS_ADMIN also   the exec backstop (bpf(), tp_btf): on; `ld.so /usr/sbin/chroot` killed (137)
#   cgroup mount     the backstop knows the workload by its cgroup: an exec in a new mount
#                    namespace (whose mounts no mark sees) is killed
#   DAC_READ_SEARCH  an allowed program under a directory only its owner (uid 1000) may
#                    search runs (the image-only rule stats each directory on the way)
#   SYS_RESOURCE     the open-files limit raised above the container's 1024
#   containerd socket, run dir   workloads listed; the host's CLI reaches the agent
#   state dir        a new agent container (a rollout) has the policies back
#   KILL             the new agent, started with --test-delay-created-ms (its one flag that is
#                    not the DaemonSet's), kills a container's init running as uid 1000 that
#                    the policy denies and that ran before the agent enforced it
#   cgroup namespace on a cgroup v2-only node the CRI gives the agent's container a cgroup
#                    namespace of its own; the agent joins containerd's (SYS_ADMIN, hostPID).
#                    Emulated: the agent's container in the cgroup namespace of a holder process
#                    in a sub-cgroup of the v2 hierarchy. With --test-no-host-cgroupns (the
#                    agent stays in it) the exec in a new mount namespace runs (the emulation
#                    reproduces the hole); as shipped, it is killed
# The DaemonSet's readiness and liveness probes run in the agent's container.
#
# Usage: agent_image_test.sh BIN_DIR [DAEMONSET]   (BIN_DIR holds corral and corrald; DAEMONSET
#        defaults to deploy/kubernetes/daemonset.yaml: pass an edited copy to see it fail)
# Exit 77 (ctest SKIP_RETURN_CODE) with the reason when the machine cannot run it.
# shellcheck disable=SC2016 # single-quoted commands are expanded by the container's shell
set -euo pipefail

bin_dir=${1:?usage: $0 BIN_DIR [DAEMONSET]}
here=$(cd "$(dirname "$0")" && pwd)
src_dir=$(cd "$here/../.." && pwd)
daemonset=${2:-$src_dir/deploy/kubernetes/daemonset.yaml}

skip() {
  echo "SKIP: runtime.agent_image: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (it starts containerd, runs containers and the agent)"
for b in containerd ctr runc containerd-shim-runc-v2 jq timeout tar gzip sha256sum python3 \
  nginx curl nsenter setpriv dash; do
  command -v "$b" >/dev/null || skip "$b is not installed (run scripts/setup.sh)"
done
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (run scripts/setup.sh)"
[[ -f /usr/include/linux/capability.h ]] || skip "linux/capability.h is missing (linux-libc-dev)"
if [[ ! -x $bin_dir/corral || ! -x $bin_dir/corrald ]]; then
  echo "FAIL: runtime.agent_image: $bin_dir/corral or corrald is missing (build them)" >&2
  exit 1
fi

export CORRAL_RT_BIN=$bin_dir
# Kubernetes' containers live in containerd namespace k8s.io, their pod in the CRI labels.
CORRAL_RT_NS=k8s.io
# shellcheck source=tests/runtime/lib.sh
source "$here/lib.sh"

tmp=
agent=         # the agent's container id, while it runs
agent_log=     # its output (ctr's log file)
agent_ctr=()   # ctr flags for the agent's container beyond the DaemonSet's
cgns_holder=   # the pid holding a cgroup namespace for the agent's container (step 7)
cgns_cgroup=   # its sub-cgroup
cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)); then
    if [[ -n $agent_log && -f $agent_log ]]; then
      echo "--- the agent's output (tail) ---" >&2
      grep -v ' DBG ' "$agent_log" | tail -n 30 >&2
    fi
    local c
    for c in "${CORRAL_RT_CONTAINERS[@]}"; do
      [[ $c == "$agent" ]] && continue
      echo "--- container $c: task status '$(corral_rt_task_status "$c")' ---" >&2
    done
  fi
  stop_agent
  stop_cgns_holder
  (exit "$rc")
  corral_rt_cleanup # the other containers, the fd holder if it outlived the agent, containerd
  exit "$rc"
}
trap cleanup EXIT

fail() { corral_rt_die "runtime.agent_image: $*"; }
pass() { echo "PASS: $*"; }
corral() { corral_rt_corral "$@"; }

# ---- helpers (as in agent_e2e_test.sh) -------------------------------------------------------

# run_in ID CMD...: runs CMD in container ID; sets RC and OUT (stdout + stderr).
run_in() {
  RC=0
  corral_rt_exec "$@" >"$tmp/run.out" 2>&1 || RC=$?
  OUT=$(<"$tmp/run.out")
}
# expect_run RC TEXT ID CMD...: CMD exits with RC and prints TEXT. WHY (set for the call) says
# what a failure means.
expect_run() {
  local want_rc=$1 want=$2
  shift 2
  run_in "$@"
  [[ $RC == "$want_rc" && $OUT == *"$want"* ]] ||
    fail "'$*' exited $RC printing '$OUT'; want $want_rc and '$want'${WHY:+ ($WHY)}"
}
alerts() { corral logs --json --container "$1"; }
alert_count() { alerts "$1" | wc -l; }
# await_alert ID SINCE RESOURCE: the first alert of ID newer than its SINCE-th for RESOURCE.
await_alert() {
  local i
  for ((i = 0; i < 100; i++)); do
    ALERT=$(alerts "$1" | tail -n +"$(($2 + 1))" | jq -c --arg r "$3" 'select(.Resource == $r)' | head -n 1)
    [[ -n $ALERT ]] && return 0
    sleep 0.1
  done
  fail "no alert for $3 from $1; newest: $(alerts "$1" | tail -n 3)"
}
check_alert() {
  local kv have
  for kv; do
    have=$(jq -r --arg k "${kv%%=*}" 'if has($k) then .[$k] | tostring else "<missing>" end' <<<"$ALERT")
    [[ $have == "${kv#*=}" ]] || fail "alert field ${kv%%=*} is '$have', want '${kv#*=}' (alert: $ALERT)"
  done
}
workload_field() {
  corral get workloads -o json | jq -r --arg id "$1" --arg f "$2" \
    '.workloads[]? | select(.id == $id) | .[$f] | if type == "array" then join(",") else tostring end'
}
_is_listed() { [[ -n $(workload_field "$1" id) ]]; }
_is_proven() { [[ $(workload_field "$1" enforcement) == enforced ]]; }
_answers() { corral get status; }

# ---- the agent's container -------------------------------------------------------------------

# start_agent ID [EXTRA-ARG...]: the agent's container from the image, with the DaemonSet's
# settings ($tmp/ctr.json); returns once the agent answers on the run dir's socket.
start_agent() {
  local id=$1 flags args entry
  shift
  mapfile -t flags < <(jq -r '.ctr[]' "$tmp/ctr.json")
  mapfile -t args < <(jq -r '.args[]' "$tmp/ctr.json")
  # The kubelet keeps the image's Entrypoint and passes `args` as its Cmd; `ctr run IMAGE ID
  # ARGS` replaces both, so the Entrypoint goes first.
  mapfile -t entry < <(jq -r '.config.Entrypoint[]' "$tmp/image-config.json")
  agent=$id
  agent_log=$CORRAL_RT_CONTAINERD_DIR/logs/$id.log
  CORRAL_RT_CONTAINERS+=("$id")
  CORRAL_RT_CONTAINER_NS[$id]=$CORRAL_RT_NS
  corral_rt_ctr run -d --log-uri "file://$agent_log" "${flags[@]}" "${agent_ctr[@]}" "$image_ref" "$id" \
    "${entry[@]}" "${args[@]}" "$@" >/dev/null || fail "ctr run of the agent's image failed"
  corral_rt_wait_for 20 _answers ||
    fail "the agent in container $id does not answer on $CORRAL_SOCKET within 20 s" \
      "(task: $(corral_rt_task_status "$id"); the run dir mount /run/corral?)"
  CORRAL_RT_PIDS[$id]=$(corral_rt_pid "$id")
}

# stop_agent: as the kubelet stops a pod: SIGTERM, then SIGKILL; the container is deleted (a
# new pod starts from the image again). With hostPID the shim kills every process left in the
# container's cgroup (the fd holder too); corral_rt_cleanup kills a holder that outlived it.
stop_agent() {
  [[ -n $agent ]] || return 0
  corral_rt_ctr task kill -s SIGTERM "$agent" >/dev/null 2>&1
  corral_rt_wait_for 10 _corral_rt_task_gone_or_stopped "$agent" ||
    corral_rt_log "the agent ignored SIGTERM for 10 s"
  corral_rt_kill "$agent"
  agent=
}

# stop_cgns_holder: the process holding the agent's cgroup namespace (step 7), then its
# sub-cgroup (removable once the holder is reaped).
stop_cgns_holder() {
  if [[ -n $cgns_holder ]]; then
    kill -KILL "$cgns_holder" 2>/dev/null || true
    wait "$cgns_holder" 2>/dev/null || true # 137
    cgns_holder=
  fi
  [[ -n $cgns_cgroup && -d $cgns_cgroup ]] || return 0
  corral_rt_wait_for 5 rmdir "$cgns_cgroup" || corral_rt_log "cannot remove cgroup $cgns_cgroup"
  cgns_cgroup=
}

# caps_of PID: CapEff, CapPrm and CapBnd of a process, as /proc/PID/status shows them.
caps_of() { awk '/^Cap(Eff|Prm|Bnd):/ {printf "%s %s ", $1, $2}' "/proc/$1/status"; }

# ---- the test --------------------------------------------------------------------------------

start=$SECONDS
corral_rt_mktemp tmp
node=test-node-$$ # spec.nodeName: not this host's name, to see which one alerts carry

# 1. The image, named as the DaemonSet names it.
image=$(python3 -c 'import sys, yaml
print(yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]["image"])' "$daemonset")
t0=$SECONDS
bash "$src_dir/scripts/build-image.sh" --bin-dir "$bin_dir" --output "$tmp/image.tar" --tag "$image" >"$tmp/build-image.out" ||
  fail "scripts/build-image.sh failed: $(cat "$tmp/build-image.out")"
image_ref=$(awk '/^wrote / {for (i = 1; i < NF; i++) if ($i == "image") {sub(",", "", $(i + 1)); print $(i + 1)}}' "$tmp/build-image.out")
[[ -n $image_ref ]] || fail "build-image.sh did not say what it wrote: $(cat "$tmp/build-image.out")"
sed 's/^/  /' "$tmp/build-image.out"
pass "image $image_ref built in $((SECONDS - t0)) s"

manifest=$(tar -xOf "$tmp/image.tar" index.json | jq -r '.manifests[0].digest')
config=$(tar -xOf "$tmp/image.tar" "blobs/sha256/${manifest#sha256:}" | jq -r '.config.digest')
tar -xOf "$tmp/image.tar" "blobs/sha256/${config#sha256:}" >"$tmp/image-config.json"

# 2. A private containerd; the image imported as `ctr images import` would on a node.
corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
corral_rt_ctr images import "$tmp/image.tar" >/dev/null || fail "ctr images import refused the image"
corral_rt_ctr images ls -q | grep -qxF "$image_ref" ||
  fail "the import did not name the image $image_ref: $(corral_rt_ctr images ls -q)"
pass "ctr images import named it $image_ref"

# 3. The DaemonSet as ctr flags. The node's paths are the test's: containerd's socket, the
# state dir (/var/lib/corral) and the run dir (/run/corral, where the host's CLI connects).
CORRAL_RT_CORRALD_DIR=$tmp/agent # lib.sh stops an fd holder left in $CORRAL_RT_CORRALD_DIR/state
state_dir=$tmp/agent/state
run_dir=$tmp/agent/run
mkdir -p "$state_dir" "$run_dir"
export CORRAL_SOCKET=$run_dir/corral.sock
ctr_caps=$(ctr oci spec | jq -r '.process.capabilities.bounding | join(",")')
# hostPID: the pid namespace of the node's runtime (/proc/1 may be out of reach here). A
# capability the runtime lacks (its bounding set) cannot be granted: runc would refuse to
# start the container. Such a one is left out, and said so.
python3 "$here/daemonset_to_ctr.py" "$daemonset" --node "$node" --default-caps "$ctr_caps" \
  --host-pid-ns "/proc/$CORRAL_RT_CONTAINERD_PID/ns/pid" \
  --bounding "$(awk '/^CapBnd:/ {print $2}' "/proc/$CORRAL_RT_CONTAINERD_PID/status")" \
  --map "/run/containerd/containerd.sock=$CORRAL_RT_ADDRESS" --map "/var/lib/corral=$state_dir" \
  --map "/run/corral=$run_dir" >"$tmp/ctr.json" || fail "cannot translate $daemonset"
[[ $(jq -r .image "$tmp/ctr.json") == "$image" ]] || fail "daemonset_to_ctr.py read another image"
unavailable=$(jq -r '.unavailable | join(" ")' "$tmp/ctr.json")
if [[ -n $unavailable ]]; then
  echo "SKIP (part): $unavailable: not in this machine's capability bounding set (its root lacks" \
    "it, so no container here can have it); the agent runs without it, and its check is not made"
fi
corral_rt_log "ctr run $(jq -r '.ctr | join(" ")' "$tmp/ctr.json") $image_ref ... $(jq -r '.args | join(" ")' "$tmp/ctr.json")"

# 4. The agent's container, and what runc made of it: exactly the listed capabilities, no
# new privileges, no seccomp filter, the host's pid namespace.
start_agent "corrald-$$"
pid=${CORRAL_RT_PIDS[$agent]}
want_mask=$(jq -r .cap_mask "$tmp/ctr.json")
[[ $(caps_of "$pid") == "CapPrm: $want_mask CapEff: $want_mask CapBnd: $want_mask " ]] ||
  fail "the agent's capabilities are $(caps_of "$pid"), want $want_mask ($(jq -r '.caps | join(" ")' "$tmp/ctr.json"))"
[[ $(awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status") == 1 ]] || fail "no_new_privs is not set"
[[ $(awk '/^Seccomp:/ {print $2}' "/proc/$pid/status") == 0 ]] || fail "a seccomp filter is set"
[[ $(readlink "/proc/$pid/ns/pid") == "$(readlink /proc/self/ns/pid)" ]] ||
  fail "pid $pid's pid namespace is $(readlink "/proc/$pid/ns/pid"), not the node's: hostPID"
[[ $(readlink "/proc/$pid/exe") == /usr/bin/corrald ]] || fail "the agent is not the image's corrald"
# ("in ... already" here; "joined" where the runtime gives a container a cgroup namespace: step 7)
grep -q "containerd's cgroup namespace (pid $CORRAL_RT_CONTAINERD_PID, " "$agent_log" ||
  fail "the agent does not say it is in containerd's cgroup namespace: $(grep -m1 'cgroup namespace' "$agent_log")"
status=$(corral get status -o json)
[[ $(jq -r .enforcer <<<"$status") == fanotify && $(jq -r .counters.exec_backstop <<<"$status") == on ]] ||
  fail "the agent runs with enforcer '$(jq -r .enforcer <<<"$status")', exec backstop" \
    "'$(jq -r .counters.exec_backstop <<<"$status")': $(grep -m1 -E 'no enforcer|backstop' "$agent_log")"
pass "agent container $agent (pid $pid): capabilities $want_mask exactly, no_new_privs, no seccomp," \
  "hostPID; enforcer fanotify with the exec backstop"
while read -r probe; do
  mapfile -t cmd < <(jq -r '.[]' <<<"$probe")
  WHY="the DaemonSet's probe" expect_run 0 "" "$agent" "${cmd[@]}"
done < <(jq -c '.probes[]' "$tmp/ctr.json")
pass "the DaemonSet's probes pass in the agent's container ($(jq -r '.probes | length' "$tmp/ctr.json"))"

# 5. The seed's pod: nginx labelled app=nginx in namespace default (CRI labels), and a pod of
# a uid-1000 app whose programs are in a directory only it may search.
corral_rt_build_nginx_rootfs "$tmp/nginx"
corral_rt_build_rootfs "$tmp/tools" bash dash sleep id setpriv unshare
mkdir -p "$tmp/tools/home/app/bin"
cp "$tmp/tools/usr/bin/id" "$tmp/tools/home/app/bin/app-id"
cp "$tmp/tools/usr/bin/unshare" "$tmp/tools/home/app/bin/unshare"
chown -R 1000:1000 "$tmp/tools/home/app"
chmod 0700 "$tmp/tools/home/app"
pod_labels() { printf '%s\n' io.kubernetes.pod.namespace=default "io.kubernetes.pod.name=$1" "io.kubernetes.container.name=$1" "app=$1"; }
nginx=nginx-$$ tools=tools-$$
mapfile -t labels < <(pod_labels nginx)
corral_rt_run "$nginx" "$tmp/nginx" "${labels[@]}" -- /usr/sbin/nginx
mapfile -t labels < <(pod_labels tools)
corral_rt_run "$tools" "$tmp/tools" "${labels[@]}" -- sleep 1000000
corral_rt_wait_for 10 corral_rt_http "$nginx" || fail "nginx does not answer"
corral_rt_wait_for 10 _is_listed "$nginx" ||
  fail "the agent does not list $nginx after 10 s (containerd's socket mount?): $(corral get workloads)"
[[ $(workload_field "$nginx" namespace) == default ]] ||
  fail "$nginx is in namespace '$(workload_field "$nginx" namespace)', want default (its CRI labels)"

corral annotate ns default kubearmor-file-posture=block --overwrite >/dev/null ||
  fail "corral annotate failed"
out=$(corral apply -f "$src_dir/examples/seed-only-allow-nginx-exec.yaml" 2>&1) ||
  fail "corral apply of Listing 2 failed (a container's /proc/<pid>: SYS_PTRACE?): $out"
[[ $out == *"KubeArmorPolicy/only-allow-nginx-exec configured"* ]] || fail "corral apply printed: $out"
cat >"$tmp/tools.yaml" <<'YAML'
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: only-allow-app-programs
  namespace: default
spec:
  selector:
    matchLabels:
      app: tools
  process:
    matchPaths:
    - path: /bin/bash
    matchDirectories:
    - dir: /home/app/
      recursive: true
  action: Allow
YAML
out=$(corral apply -f "$tmp/tools.yaml" 2>&1) || fail "corral apply failed: $out"
for c in "$nginx" "$tools"; do
  [[ $(workload_field "$c" enforcer) == fanotify ]] ||
    fail "$c is not enforced (fanotify needs SYS_ADMIN, /proc/<pid>/root SYS_PTRACE): $(corral get workloads -o wide)"
  corral_rt_wait_for 5 _is_proven "$c" ||
    fail "$c is not proven enforced (the canary chroots: SYS_CHROOT): $(corral get workloads -o wide)"
done
[[ $(corral_rt_http "$nginx") == "hello from nginx" ]] || fail "nginx stopped serving after apply"
pass "seed: posture block and Listing 2 applied through the agent's socket; enforced and proven"

m=$(alert_count "$nginx")
expect_run 126 "bash: line 1: /usr/sbin/chroot: Operation not permitted" "$nginx" bash -c chroot
await_alert "$nginx" "$m" /usr/sbin/chroot
check_alert PolicyName=DefaultPosture Action=Block Operation=Process Result="Permission denied" \
  NamespaceName=default PodName=nginx ContainerName=nginx Enforcer=fanotify HostName="$node"
expect_run 0 "ok" "$nginx" bash -c 'echo ok'
out=$(corral logs -n default) || fail "corral logs failed"
[[ $out == *"PolicyName: DefaultPosture"* && $out == *"Resource: /usr/sbin/chroot"* &&
  $out == *"Result: Permission denied"* ]] || fail "corral logs -n default does not show the chroot alert: $out"
pass "seed: bash -c chroot denied (126, EPERM), alerted (HostName $node), in corral logs; bash runs"

m=$(alert_count "$nginx")
WHY="the exec backstop kills a direct ld.so exec where it knows the workload's cgroup: the cgroup mount" \
  expect_run 0 "rc=137" "$nginx" bash -c '/lib64/ld-linux-x86-64.so.2 /usr/sbin/chroot; echo rc=$?'
await_alert "$nginx" "$m" /usr/lib64/ld-linux-x86-64.so.2
check_alert Action=Block Data="bpf=sched_process_exec signal=SIGKILL argv=/lib64/ld-linux-x86-64.so.2 /usr/sbin/chroot"
pass "exec backstop: 'ld.so /usr/sbin/chroot' killed (137), alerted"

WHY="allowed, under /home/app (0700, uid 1000): the agent needs DAC_READ_SEARCH to check its directories" \
  expect_run 0 "uid=0(root)" "$tools" bash -c /home/app/bin/app-id
expect_run 126 "Operation not permitted" "$tools" bash -c id
pass "an allowed program in a directory only uid 1000 may search runs; others are denied"
# A new user and mount namespace has copies of the mounts, without the marks: only the
# backstop's check by cgroup sees the exec of id there.
m=$(alert_count "$tools")
mntns_exec=(bash -c '/home/app/bin/unshare -Urm /usr/bin/id; echo rc=$?')
WHY="an exec in a new mount namespace: the backstop knows the workload only by its cgroup (the cgroup mount)" \
  expect_run 0 "rc=137" "$tools" "${mntns_exec[@]}"
[[ $OUT != *uid=* ]] || fail "id ran in a new mount namespace: $OUT"
await_alert "$tools" "$m" /usr/bin/id
check_alert Action=Block Result="Permission denied"
[[ $(jq -r .Data <<<"$ALERT") == *"exec not judged by the permission path"* ]] || fail "alert: $ALERT"
pass "an exec in a new mount namespace, where no mark is, killed by the backstop (137), alerted"

files=$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")
if [[ " $unavailable " == *" CAP_SYS_RESOURCE "* ]]; then
  grep -q 'cannot raise it' "$agent_log" || fail "the agent does not say it could not raise its limits"
  echo "SKIP (part): the open-files limit stays at $files without CAP_SYS_RESOURCE (the agent says so)"
else
  ((files > 1024)) ||
    fail "the agent's open-files limit is $files: not raised above the container's 1024 (SYS_RESOURCE)"
  pass "the agent raised its open-files limit to $files"
fi

# 6. A rollout: the agent's pod replaced by a new one from the image. The policies come back
# from the state dir. --test-delay-created-ms makes the new agent late for a new container,
# so that its init ran before the rules: the agent kills it, as uid 1000 (CAP_KILL).
stop_agent
holder=$(cat "$state_dir/fd-holder.sock.pid" 2>/dev/null || true)
[[ -z $holder || $(cat "/proc/$holder/comm" 2>/dev/null) != corrald ]] ||
  fail "the fd holder (pid $holder) outlived its agent's container"
start_agent "corrald-$$-2" --test-delay-created-ms 2000
out=$(corral get policies) || fail "corral get policies failed"
[[ $out == *only-allow-nginx-exec* && $out == *only-allow-app-programs* ]] ||
  fail "the new agent lost the policies (the state dir mount): $out"
corral_rt_wait_for 10 _is_proven "$nginx" || fail "$nginx is not enforced again: $(corral get workloads -o wide)"
expect_run 126 "Operation not permitted" "$nginx" bash -c chroot
pass "a new agent container has the policies back from the state dir and enforces them"

late=late-$$
mapfile -t labels < <(pod_labels tools)
m=$(corral logs --json | wc -l)
CORRAL_RT_CONTAINERS+=("$late")
CORRAL_RT_CONTAINER_NS[$late]=$CORRAL_RT_NS
corral_rt_ctr run -d --rootfs "${labels[@]/#/--label=}" "$tmp/tools" "$late" /usr/bin/setpriv \
  --reuid=1000 --regid=1000 --clear-groups /usr/bin/dash -c 'while :; do /usr/bin/sleep 1; done' >/dev/null
corral_rt_wait_for 10 _corral_rt_task_gone_or_stopped "$late" ||
  fail "$late's init (dash, denied, uid 1000) still runs 10 s after its start (KILL?): $(grep "$late" "$agent_log" | tail -n 3)"
ALERT=$(corral logs --json | tail -n +"$((m + 1))" | jq -c --arg c "$late" 'select(.ContainerID == $c and .Resource == "/usr/bin/dash")' | head -n 1)
[[ -n $ALERT ]] || fail "no alert for $late's dash"
[[ $(jq -r .Data <<<"$ALERT") == *"ran before its rules were in force"*"signal=SIGKILL"* ]] ||
  fail "the alert does not say it was killed: $ALERT"
pass "a denied init that ran before the agent enforced it is killed, as uid 1000"
stop_agent

# 7. A cgroup v2-only node: there the CRI gives a container that is not privileged a cgroup
# namespace of its own, rooted at its cgroup, in which the agent reads other containers'
# cgroups as /../<path>. Emulated (ctr gives none on a hybrid host): the agent's container
# joins the cgroup namespace of a holder process in a new sub-cgroup of the v2 hierarchy.
cgroup2=$(awk '{for (i = 7; i < NF; i++) if ($i == "-") {if ($(i + 1) == "cgroup2") print $5; break}}' \
  /proc/self/mountinfo | head -n 1)
if [[ -z $cgroup2 ]]; then
  echo "SKIP (part): no cgroup v2 hierarchy is mounted: the agent in a cgroup namespace of its own is not checked"
else
  cgns_cgroup=$cgroup2/corral-cgns-$$
  mkdir "$cgns_cgroup" || fail "cannot create cgroup $cgns_cgroup"
  bash -c 'echo $$ >"$1/cgroup.procs" && exec unshare --cgroup sleep 1000000' cgns-holder "$cgns_cgroup" &
  cgns_holder=$!
  _holds_cgroupns() { [[ $(readlink "/proc/$cgns_holder/ns/cgroup") != "$(readlink /proc/self/ns/cgroup)" ]]; }
  corral_rt_wait_for 5 _holds_cgroupns || fail "no new cgroup namespace in $cgns_cgroup (unshare --cgroup)"
  cgns=$(readlink "/proc/$cgns_holder/ns/cgroup")
  agent_ctr=(--with-ns "cgroup:/proc/$cgns_holder/ns/cgroup")

  # Without the fix: the emulation must reproduce the hole, or this step proves nothing.
  start_agent "corrald-$$-3" --test-no-host-cgroupns
  pid=${CORRAL_RT_PIDS[$agent]}
  [[ $(readlink "/proc/$pid/ns/cgroup") == "$cgns" ]] ||
    fail "the agent's container is in $(readlink "/proc/$pid/ns/cgroup"), not the holder's $cgns"
  corral_rt_wait_for 10 _is_proven "$tools" || fail "$tools is not enforced: $(corral get workloads -o wide)"
  run_in "$tools" "${mntns_exec[@]}"
  [[ $RC == 0 && $OUT == *uid=* && $OUT == *rc=0* ]] ||
    fail "in its own cgroup namespace the agent stopped an exec in a new mount namespace ($RC: $OUT):" \
      "the test no longer emulates the cgroup v2-only node"
  why=$(grep -m1 "exec backstop: $tools not listed: " "$agent_log") ||
    fail "the agent does not say why the backstop does not list $tools"
  [[ $why == *"cannot stat its cgroup $cgroup2/../"* ]] || fail "the agent says: $why"
  pass "cgroup namespace of its own, not left (--test-no-host-cgroupns): '${why#*not listed: }';" \
    "an exec in a new mount namespace runs"
  stop_agent

  # As shipped: the agent joins containerd's cgroup namespace before anything else.
  start_agent "corrald-$$-4"
  pid=${CORRAL_RT_PIDS[$agent]}
  grep -q "joined containerd's cgroup namespace (pid $CORRAL_RT_CONTAINERD_PID, " "$agent_log" ||
    fail "the agent does not say it joined containerd's cgroup namespace: $(grep -m1 'cgroup namespace' "$agent_log")"
  [[ $(readlink "/proc/$pid/ns/cgroup") == "$(readlink "/proc/$CORRAL_RT_CONTAINERD_PID/ns/cgroup")" ]] ||
    fail "the agent is in $(readlink "/proc/$pid/ns/cgroup"), not containerd's cgroup namespace"
  corral_rt_wait_for 10 _is_proven "$tools" || fail "$tools is not enforced: $(corral get workloads -o wide)"
  m=$(alert_count "$tools")
  WHY="the agent joined the node's cgroup namespace: the backstop knows the workload by its cgroup" \
    expect_run 0 "rc=137" "$tools" "${mntns_exec[@]}"
  [[ $OUT != *uid=* ]] || fail "id ran in a new mount namespace: $OUT"
  await_alert "$tools" "$m" /usr/bin/id
  check_alert Action=Block Result="Permission denied"
  ! grep -q "not listed" "$agent_log" || fail "the backstop does not list a workload: $(grep -m1 'not listed' "$agent_log")"
  pass "cgroup namespace of its own: the agent joins containerd's; an exec in a new mount namespace is killed (137), alerted"
  stop_agent
  stop_cgns_holder
fi
echo "runtime.agent_image: all passed ($((SECONDS - start)) s)"

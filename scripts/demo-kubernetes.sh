#!/usr/bin/env bash
# The seed's containment procedure (C-P-02) in Kubernetes mode, with the seed's own kubectl
# commands: the policy and the posture go to the API server, and the agent on the node
# enforces them. No kube-apiserver can run on this machine: the API server is the protocol-
# faithful stand-in in ../shared/kube-standin, and the kubelet is simulated (a pod object
# with spec.nodeName, and its sandbox and app containers in containerd namespace k8s.io with
# the CRI plugin's labels). kubectl, the agent, containerd, nginx and the kernel's denial are
# real. Cleans up everything it started, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ((EUID != 0)); then
  echo "scripts/demo-kubernetes.sh needs root (containerd, fanotify, BPF): run it as root or with sudo" >&2
  exit 1
fi
src_dir=$PWD
if [[ ! -f $src_dir/../shared/kube-standin/kube-standin.py ]]; then
  echo "scripts/demo-kubernetes.sh: the Kubernetes API stand-in is not at ../shared/kube-standin" >&2
  exit 1
fi
command -v kubectl >/dev/null || {
  echo "scripts/demo-kubernetes.sh: kubectl is not on PATH (the machine image ships it)" >&2
  exit 1
}
echo "installing the Debian packages Corral needs (scripts/setup.sh)..."
bash scripts/setup.sh >/dev/null
bash scripts/build.sh --progress

export CORRAL_RT_BIN=$src_dir/build/bin
source tests/runtime/lib.sh
source tests/runtime/kube_lib.sh
bg_pids=()
trap kube_cleanup EXIT
fail() { corral_rt_die "$*"; }
CORRAL_RT_NS=k8s.io
policy=examples/seed-only-allow-nginx-exec.yaml
corral=("$CORRAL_RT_BIN/corral")

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
  printf '$ %s\n' "$*"
  "$@"
}

corral_rt_mktemp tmp
step "Start the Kubernetes API (stand-in), containerd, and the agent as the DaemonSet runs it"
start_standin
printf '$ kubectl apply -f deploy/kubernetes/crds/\n'
k apply -f deploy/kubernetes/crds/
corral_rt_start_containerd "$tmp/containerd"
start_kube_agent
_connected() { "${corral[@]}" get status -o json | jq -e '.kubernetes.state == "connected"'; }
corral_rt_wait_for 10 _connected || fail "the agent did not connect to the API"
show "${corral[@]}" get status

step "A pod web-1 (label app=nginx) is scheduled on this node ($KUBE_NODE)"
corral_rt_build_nginx_rootfs "$tmp/nginx"
kube_pod web-1 "$KUBE_NODE" app=nginx
c=$POD_CID
corral_rt_wait_for 10 corral_rt_http "$c" || fail "nginx does not answer"
printf 'nginx answers: %s' "$(corral_rt_http "$c")"
printf '$ kubectl get pods -o wide\n'
k get pods -o wide

step "Seed step: apply Listing 2 (only nginx and bash may run)"
cat "$policy"
printf '$ kubectl apply -f %s\n' "$policy"
k apply -f "$policy"

step "Seed step: set the namespace's default posture to block"
printf '$ kubectl annotate ns default kubearmor-file-posture=block --overwrite\n'
k annotate ns default kubearmor-file-posture=block --overwrite
_blocked() { [[ $("${corral[@]}" get workloads -o json | jq -r '.workloads[0].file_posture') == block ]]; }
corral_rt_wait_for 5 _blocked || fail "the posture did not reach the agent"
show "${corral[@]}" get policies -o wide
show "${corral[@]}" get workloads -n default

step "Seed step: try an unauthorized program in the pod: bash -c chroot"
set +e
corral_rt_exec "$c" bash -c chroot
rc=$?
set -e
echo "exit code: $rc"
[[ $rc -eq 126 ]] || corral_rt_die "chroot was not denied (exit $rc)"
printf 'nginx still answers: %s' "$(corral_rt_http "$c")"

step "Seed step: the central log of violations"
sleep 0.5
show "${corral[@]}" logs -n default

step "Lift the containment: kubectl delete -f"
printf '$ kubectl delete -f %s\n' "$policy"
k delete -f "$policy"
_lifted() { [[ $("${corral[@]}" get policies 2>&1) == "No policies applied"* ]]; }
corral_rt_wait_for 5 _lifted || fail "the delete did not reach the agent"
set +e
corral_rt_exec "$c" bash -c chroot
rc=$?
set -e
echo "exit code: $rc (chroot runs again and asks for its operand)"
[[ $rc -eq 125 ]] || corral_rt_die "chroot is still denied after the delete (exit $rc)"

step "Clean up"

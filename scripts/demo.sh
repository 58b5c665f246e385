#!/usr/bin/env bash
# The README's main job: the seed's containment procedure (C-P-02) end to end on this
# machine, with a real containerd, a real nginx container and the kernel denying the exec.
# Cleans up everything it started, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ((EUID != 0)); then
  echo "scripts/demo.sh needs root (containerd, fanotify, BPF): run it as root or with sudo" >&2
  exit 1
fi
echo "installing the Debian packages Corral needs (scripts/setup.sh)..."
bash scripts/setup.sh >/dev/null
bash scripts/build.sh --progress

source tests/runtime/lib.sh
trap corral_rt_cleanup EXIT
CORRAL_RT_NS=default # the seed's pod runs in namespace "default"
policy=examples/seed-only-allow-nginx-exec.yaml
corral=(build/bin/corral)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# try_chroot: `bash -c chroot` in the nginx container; its exit code in $rc.
try_chroot() {
  rc=0
  corral_rt_exec nginx bash -c chroot || rc=$?
  echo "exit code: $rc"
}
show() {
  printf '$ %s\n' "$*"
  "$@"
}

corral_rt_mktemp dir
step "Start containerd and the Corral agent"
corral_rt_start_containerd "$dir/containerd"
corral_rt_start_corrald "$dir/agent"
show "${corral[@]}" get status

step "Run an nginx container labelled app=nginx (rootfs from Debian's nginx and bash)"
corral_rt_build_nginx_rootfs "$dir/nginx"
corral_rt_run nginx "$dir/nginx" app=nginx -- /usr/sbin/nginx
corral_rt_wait_for 10 corral_rt_http nginx || corral_rt_die "nginx does not answer"
printf 'nginx answers: %s' "$(corral_rt_http nginx)"

step "Find what the workload runs (the seed's 'ps aux' step, from the system monitor)"
show "${corral[@]}" profile -n default --container nginx --once
show "${corral[@]}" discover nginx -n default
echo "(corral contain nginx -n default does the rest in one command; the seed's steps follow)"

step "Seed step: set the namespace's default posture to block"
show "${corral[@]}" annotate ns default kubearmor-file-posture=block --overwrite

step "Seed step: apply Listing 2 (only nginx and bash may run)"
cat "$policy"
show "${corral[@]}" apply -f "$policy"
show "${corral[@]}" get workloads -o wide

step "nginx keeps serving"
printf 'HTTP GET / -> %s' "$(corral_rt_http nginx)"

step "Seed step: try an unauthorized program: bash -c chroot"
try_chroot
[[ $rc -eq 126 ]] || corral_rt_die "chroot was not denied (exit $rc)"

step "Seed step: the central log of violations"
show "${corral[@]}" logs -n default
show "${corral[@]}" logs -n default --json --limit 1

step "Beyond the seed: lock the containment, so that no other policy can widen it"
show "${corral[@]}" apply -f examples/seed-only-allow-nginx-exec-locked.yaml
cat >"$dir/allow-chroot.yaml" <<'YAML'
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: allow-chroot
spec:
  selector:
    matchLabels:
      app: nginx
  process:
    matchPaths:
    - path: /usr/sbin/chroot
  action: Allow
YAML
show "${corral[@]}" apply -f "$dir/allow-chroot.yaml"
try_chroot
[[ $rc -eq 126 ]] || corral_rt_die "a second policy widened the locked containment (exit $rc)"

step "Every change is an alert and a hash-chained entry of the change log"
show "${corral[@]}" get history
show "${corral[@]}" verify

step "Clean up"

#!/usr/bin/env bash
# The README's main job: the seed's procedure (C-P-02) on the Listing 2 policy.
# Until the node agent exists, it validates the policy and explains the verdicts the seed
# expects, offline, with `corral explain`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
bash scripts/build.sh >/dev/null
corral=build/bin/corral
policy=examples/seed-only-allow-nginx-exec.yaml

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "Validate the seed's Listing 2 policy"
$corral validate -f "$policy"
for posture in block audit; do
  for exe in /usr/sbin/nginx /bin/bash /usr/sbin/chroot; do
    step "kubearmor-file-posture=$posture: exec $exe in a pod labelled app=nginx"
    $corral explain -f "$policy" --labels app=nginx \
      --ns-annotation "kubearmor-file-posture=$posture" --exec "$exe"
  done
done
step "Opening a file (the policy allows / recursively)"
$corral explain -f "$policy" --labels app=nginx --ns-annotation kubearmor-file-posture=block \
  --open /etc/nginx/nginx.conf

#!/usr/bin/env bash
# The CRDs (deploy/kubernetes/crds) through the real kubectl against ../shared/kube-standin
# (a stand-in for kube-apiserver: none can run on these machines): they are accepted, the
# seed's Listing 2 is stored through `kubectl apply`, `kubectl get ksp` lists it, and a
# policy with severity 11 is refused by the API server naming spec.severity (422). Then the
# whole deployment (`kubectl apply -k deploy/kubernetes`) is accepted as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
standin=$root/../shared/kube-standin/kube-standin.py
for b in kubectl python3 openssl; do
  command -v "$b" >/dev/null || { echo "SKIP: $b is not installed"; exit 77; }
done
[[ -f $standin ]] || { echo "SKIP: $standin is missing"; exit 77; }
t=$(mktemp -d /tmp/corral-crd.XXXXXX)
api=
cleanup() {
  set +e
  [[ -n $api ]] && kill "$api" 2>/dev/null && wait "$api" 2>/dev/null
  rm -rf "$t"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$t/api.log" >&2; exit 1; }

python3 "$standin" --state-dir "$t/api" >"$t/api.log" 2>&1 &
api=$!
for _ in $(seq 100); do [[ -s $t/api/address ]] && break; sleep 0.1; done
[[ -s $t/api/address ]] || fail "the stand-in did not start"
k() { kubectl --kubeconfig "$t/api/kubeconfig" --cache-dir "$t/cache" "$@"; }

k apply -f "$root/deploy/kubernetes/crds/" >"$t/out" 2>&1 || fail "CRDs refused: $(cat "$t/out")"
[[ $(grep -c created "$t/out") == 3 ]] || fail "not three CRDs: $(cat "$t/out")"
k apply -f "$root/examples/seed-only-allow-nginx-exec.yaml" >"$t/out" 2>&1 ||
  fail "Listing 2 refused: $(cat "$t/out")"
k get ksp -n default -o name | grep -qx 'kubearmorpolicy.security.kubearmor.com/only-allow-nginx-exec' ||
  fail "kubectl get ksp does not list it: $(k get ksp -A 2>&1)"
sed 's/^  name: only-allow-nginx-exec/  name: severity-eleven/; s/^spec:/spec:\n  severity: 11/' \
  "$root/examples/seed-only-allow-nginx-exec.yaml" >"$t/bad.yaml"
if k apply -f "$t/bad.yaml" >"$t/out" 2>&1; then fail "severity 11 was stored: $(cat "$t/out")"; fi
grep -q 'spec.severity' "$t/out" || fail "the refusal does not name spec.severity: $(cat "$t/out")"
echo "PASS: the CRDs load through kubectl; Listing 2 is stored; severity 11 is refused on spec.severity"

k apply -k "$root/deploy/kubernetes" >"$t/out" 2>&1 || fail "kubectl apply -k refused: $(cat "$t/out")"
k get daemonset corrald -n corral-system -o jsonpath='{.spec.template.spec.hostPID}' | grep -qx true ||
  fail "no DaemonSet corrald with hostPID in corral-system"
# Least privilege: read-only on what the agent reads, create/patch on events, nothing else.
rules=$(k get clusterrole corrald -o jsonpath='{range .rules[*]}{.resources}{" "}{.verbs}{"\n"}{end}')
[[ $(grep -c . <<<"$rules") == 3 && $(grep -c '"get","list","watch"' <<<"$rules") == 2 &&
  $(grep -c '"create","patch"' <<<"$rules") == 1 ]] || fail "the ClusterRole grants more: $rules"
echo "PASS: kubectl apply -k deploy/kubernetes: namespace, service account, least-privilege RBAC, DaemonSet"

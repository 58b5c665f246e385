#!/usr/bin/env bash
# Kubernetes mode figures (issue 8), against the API stand-in (../shared/kube-standin) with
# real kubectl, containerd, containers and enforcement:
#
#   sudo bash bench/kube_bench.sh              # all: latency sync rest
#   sudo bash bench/kube_bench.sh latency      # `kubectl apply` returning -> rule in the kernel
#   sudo bash bench/kube_bench.sh sync         # 1,000 policies, 5,000 pods (50 here): time, RSS
#   sudo bash bench/kube_bench.sh rest         # API requests per minute at rest
#
# latency: after `kubectl apply` of a policy change returns, the pod's rules fingerprint in
# force (`corral get workloads -o json`, which answers only after the enforcer took the new
# rules) is polled until it changes: median and p99 of CORRAL_BENCH_APPLIES (default 40); a
# poll costs about 10 ms, which the figure includes. The baseline in the same run is the
# same poll loop's cost when nothing changes (one poll).
# sync: the agent starts (fresh state) with everything in place; time until the API is
# synced, 1,000 policies are loaded and the 50 pods of this node are enforced; the agent's
# peak RSS (VmHWM). The baseline in the same run: the same start with --kubernetes off.
# Not a test: it asserts nothing; it prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
src_dir=$PWD
export CORRAL_RT_BIN=${CORRAL_RT_BIN:-$src_dir/build/bin}
source tests/runtime/lib.sh
source tests/runtime/kube_lib.sh
bg_pids=()
trap kube_cleanup EXIT
fail() { corral_rt_die "$*"; }
what=("$@")
((${#what[@]})) || what=(latency sync rest)
corral=("$CORRAL_RT_BIN/corral")
CORRAL_RT_NS=k8s.io
now_ms() { date +%s%3N; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
p99() { sort -g | awk '{v[NR]=$1} END {i=int(NR*0.99+0.999); if (i<1) i=1; if (i>NR) i=NR; print v[i]}'; }
fingerprint() { "${corral[@]}" get workloads -o json | jq -r --arg id "$1" '.workloads[] | select(.id == $id) | .rules_fingerprint'; }
status_json() { "${corral[@]}" get status -o json; }

corral_rt_mktemp tmp
start_standin
k apply -f deploy/kubernetes/crds/ >/dev/null
corral_rt_start_containerd "$tmp/containerd"
corral_rt_build_nginx_rootfs "$tmp/nginx"

block_policy() { # NAME APP PATH
  cat <<YAML
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: $1
  namespace: default
spec:
  selector:
    matchLabels:
      app: $2
  process:
    matchPaths:
    - path: $3
  action: Block
YAML
}

for w in "${what[@]}"; do
  case $w in
  latency)
    start_kube_agent
    kube_pod lat-0 "$KUBE_NODE" app=lat
    k annotate ns default kubearmor-file-posture=block --overwrite >/dev/null
    block_policy lat app-none /usr/bin/none | k apply -f - >/dev/null
    n=${CORRAL_BENCH_APPLIES:-40}
    : >"$tmp/lat" && : >"$tmp/base" && : >"$tmp/kubectl"
    for ((i = 0; i < n; i++)); do
      corral_rt_wait_for 5 test -n "$(fingerprint "$POD_CID")" || true
      before=$(fingerprint "$POD_CID")
      t0=$(now_ms)
      fingerprint "$POD_CID" >/dev/null
      echo $(($(now_ms) - t0)) >>"$tmp/base"
      block_policy lat lat "/usr/bin/blocked$i" >"$tmp/p.yaml"
      t0=$(now_ms)
      k apply -f "$tmp/p.yaml" >/dev/null
      t1=$(now_ms)
      while [[ $(fingerprint "$POD_CID") == "$before" ]]; do
        (($(now_ms) - t1 < 10000)) || fail "apply $i never reached the kernel"
      done
      t2=$(now_ms)
      echo $((t1 - t0)) >>"$tmp/kubectl"
      echo $((t2 - t1)) >>"$tmp/lat"
    done
    printf 'kube latency: kubectl apply returning -> rule in the kernel: median %s ms, p99 %s ms (%d applies; one poll alone: median %s ms; kubectl apply itself: median %s ms)\n' \
      "$(median <"$tmp/lat")" "$(p99 <"$tmp/lat")" "$n" "$(median <"$tmp/base")" "$(median <"$tmp/kubectl")"
    corral_rt_stop_corrald TERM
    ;;
  sync)
    npol=${CORRAL_BENCH_POLICIES:-1000} npods=${CORRAL_BENCH_PODS:-5000} here=${CORRAL_BENCH_LOCAL_PODS:-50}
    echo "kube sync: storing $npol policies and $((npods - here)) pods of other nodes in the stand-in..."
    python3 - "$npol" "$((npods - here))" "$here" >"$tmp/bulk.json" <<'PY'
import json, sys
npol, nother, here = map(int, sys.argv[1:])
items = []
for i in range(npol):
    app = f"svc-{i}" if i < here else f"other-{i}"
    items.append({"apiVersion": "security.kubearmor.com/v1", "kind": "KubeArmorPolicy",
                  "metadata": {"name": f"p-{i}", "namespace": "default" if i < here else f"ns-{i % 20}"},
                  "spec": {"selector": {"matchLabels": {"app": app}},
                           "process": {"matchPaths": [{"path": f"/usr/bin/blocked-{i}"}]},
                           "file": {"matchDirectories": [{"dir": f"/secret-{i}/", "recursive": True}]},
                           "action": "Block"}})
for i in range(nother):
    items.append({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": f"other-{i}", "namespace": f"ns-{i % 20}", "labels": {"app": f"other-{i % 1000}"}},
                  "spec": {"nodeName": f"node-{i % 100 + 1}", "containers": [{"name": "c", "image": "x"}]},
                  "status": {"phase": "Running"}})
print(json.dumps({"kind": "List", "items": items}))
PY
    admin apply "$tmp/bulk.json" >/dev/null
    echo "kube sync: starting $here pods on this node (a sandbox and an app container each)..."
    cids=()
    for ((i = 0; i < here; i++)); do
      kube_pod "svc-$i" "$KUBE_NODE" "app=svc-$i"
      cids+=("$POD_CID")
    done
    runs=${CORRAL_BENCH_RUNS:-3}
    : >"$tmp/sync" && : >"$tmp/rss" && : >"$tmp/sync0"
    for ((r = 0; r < runs; r++)); do
      # Baseline: the same agent without Kubernetes mode, until the workloads are listed.
      rm -rf "$tmp/agent"
      t0=$(now_ms)
      corral_rt_start_corrald "$tmp/agent" --kubernetes off
      until (($(status_json | jq '.workloads') >= here)); do sleep 0.02; done
      echo $(($(now_ms) - t0)) >>"$tmp/sync0"
      corral_rt_stop_corrald TERM
      rm -rf "$tmp/agent"
      t0=$(now_ms)
      start_kube_agent
      until status_json | jq -e --argjson p "$npol" --argjson n "$here" \
        '.kubernetes.state == "connected" and .policies >= $p and .kubernetes.pods >= $n and .enforced >= $n' >/dev/null; do
        sleep 0.02
      done
      echo $(($(now_ms) - t0)) >>"$tmp/sync"
      awk '/VmHWM/ {print $2}' "/proc/$CORRAL_RT_CORRALD_PID/status" >>"$tmp/rss"
      corral_rt_stop_corrald TERM
    done
    printf 'kube sync: %d policies, %d pods (%d on this node, enforced): start to enforced: median %s ms (agent without Kubernetes, same start: %s ms); peak RSS median %s MiB\n' \
      "$npol" "$npods" "$here" "$(median <"$tmp/sync")" "$(median <"$tmp/sync0")" \
      "$(median <"$tmp/rss" | awk '{printf "%.1f", $1/1024}')"
    ;;
  rest)
    start_kube_agent
    corral_rt_wait_for 15 sh -c "'${corral[0]}' get status -o json | jq -e '.kubernetes.state == \"connected\"'" ||
      fail "not connected"
    secs=${CORRAL_BENCH_REST_SECONDS:-60}
    t0=$(date +%s.%N)
    sleep "$secs"
    admin requests | jq --argjson t0 "$t0" '[.items[] | select(.time > $t0 and (.user | test("agent")))]' >"$tmp/req.json"
    printf 'kube rest: %s API requests by the agent in %s s at rest (%s)\n' "$(jq length "$tmp/req.json")" "$secs" \
      "$(jq -r '[.[] | .verb] | group_by(.) | map("\(.[0]) \(length)") | join(", ")' "$tmp/req.json")"
    corral_rt_stop_corrald TERM
    ;;
  *) fail "unknown figure $w (latency, sync or rest)" ;;
  esac
done

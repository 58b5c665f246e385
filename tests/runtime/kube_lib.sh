# shellcheck shell=bash
# Kubernetes mode on one machine, for the kube_* runtime cases (kube_cases.sh) and
# scripts/demo-kubernetes.sh. No kube-apiserver runs here: the API server is
# ../shared/kube-standin, and the kubelet is simulated. A pod is an object stored in the
# stand-in (spec.nodeName, containerStatuses) plus, in containerd namespace k8s.io, a sandbox
# container and an app container carrying the labels the CRI plugin sets. kubectl, the
# agent's API client, containerd, the containers and the enforcement are real.
#
# Needs tests/runtime/lib.sh, and from its caller: $tmp (a temp dir), $src_dir (the repo),
# the array bg_pids (pids its cleanup kills) and a function fail MESSAGE.
# shellcheck disable=SC2154 # tmp, src_dir, bg_pids: the caller's

standin=$src_dir/../shared/kube-standin/kube-standin.py
KUBE_NODE="node-a"

# k ARGS...: the real kubectl against the test's stand-in (its own discovery cache).
k() { kubectl --kubeconfig "$tmp/api/kubeconfig" --cache-dir "$tmp/kcache" "$@"; }
admin() { python3 "$standin" admin --state-dir "$tmp/api" "$@"; }

# start_standin: the API stand-in with this node and another one; waits for its address.
start_standin() {
  mkdir -p "$tmp/api"
  python3 "$standin" --state-dir "$tmp/api" --persist --node "$KUBE_NODE" --node node-b \
    --bookmark-interval 5 >"$tmp/api.log" 2>&1 &
  STANDIN_PID=$!
  bg_pids+=("$STANDIN_PID")
  corral_rt_wait_for 20 test -s "$tmp/api/address" || fail "the stand-in did not start: $(tail -5 "$tmp/api.log")"
}
stop_standin() {
  kill -TERM "$STANDIN_PID" 2>/dev/null
  wait "$STANDIN_PID" 2>/dev/null || true
}

# start_kube_agent [FLAGS...]: the agent as the DaemonSet runs it: in-cluster configuration
# (the service host/port variables and the service-account directory), NODE_NAME. With
# KUBE_VIA_KUBECONFIG=1: from the stand-in's kubeconfig instead, --node-name.
start_kube_agent() {
  if ((${KUBE_VIA_KUBECONFIG:-0})); then
    corral_rt_start_corrald "$tmp/agent" --kubeconfig "$tmp/api/kubeconfig" --node-name "$KUBE_NODE" "$@"
    return
  fi
  local host port
  host=$(sed -n 's/^KUBERNETES_SERVICE_HOST=//p' "$tmp/api/env")
  port=$(sed -n 's/^KUBERNETES_SERVICE_PORT=//p' "$tmp/api/env")
  KUBERNETES_SERVICE_HOST=$host KUBERNETES_SERVICE_PORT=$port NODE_NAME=$KUBE_NODE \
    corral_rt_start_corrald "$tmp/agent" --serviceaccount-dir "$tmp/api/serviceaccount" "$@"
}

hex_id() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# kube_pod NAME NODE [KEY=VALUE...]: a pod as a kubelet leaves it: the pod object (labels,
# spec.nodeName, containerStatuses) in the stand-in, and on this node its sandbox and its
# app container "nginx" (running nginx) in containerd namespace k8s.io with the CRI plugin's
# labels. Sets POD_UID and POD_CID (the app container's 64-hex id). The app container's
# image is $tmp/nginx (corral_rt_build_nginx_rootfs); the sandbox's, a pause-like sleep.
kube_pod() {
  local name=$1 node=$2 kv labels_json='{}' sandbox
  shift 2
  for kv; do labels_json=$(jq -c --arg k "${kv%%=*}" --arg v "${kv#*=}" '. + {($k): $v}' <<<"$labels_json"); done
  POD_CID=$(hex_id)
  sandbox=$(hex_id)
  jq -n --arg name "$name" --arg node "$node" --arg cid "$POD_CID" --argjson labels "$labels_json" '{
    apiVersion: "v1", kind: "Pod",
    metadata: {name: $name, namespace: "default", labels: $labels},
    spec: {nodeName: $node, containers: [{name: "nginx", image: "nginx:corral-test"}]},
    status: {phase: "Running", containerStatuses: [{name: "nginx", ready: true, started: true,
      restartCount: 0, image: "nginx:corral-test", imageID: "", containerID: ("containerd://" + $cid),
      state: {running: {}}}]}}' >"$tmp/pod-$name.json"
  admin apply "$tmp/pod-$name.json" >/dev/null || fail "cannot store pod $name"
  POD_UID=$(k get pod "$name" -o jsonpath='{.metadata.uid}')
  [[ -n $POD_UID ]] || fail "pod $name has no uid"
  [[ $node == "$KUBE_NODE" ]] || return 0
  local cri=(io.kubernetes.pod.name="$name" io.kubernetes.pod.namespace=default
    io.kubernetes.pod.uid="$POD_UID")
  [[ -d $tmp/pause ]] || corral_rt_build_rootfs "$tmp/pause" sleep
  # The CRI plugin copies the pod's labels onto the sandbox container only.
  corral_rt_run "$sandbox" "$tmp/pause" "$@" "${cri[@]}" io.cri-containerd.kind=sandbox \
    -- sleep 1000000
  corral_rt_run "$POD_CID" "$tmp/nginx" "${cri[@]}" io.kubernetes.container.name=nginx \
    io.cri-containerd.kind=container -- /usr/sbin/nginx
}


# kube_cleanup: an EXIT trap for scripts (demo, bench) using this file: stops the processes
# in bg_pids (the stand-in), then corral_rt_cleanup.
kube_cleanup() {
  local rc=$? p
  set +e
  for p in "${bg_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  (exit "$rc")
  corral_rt_cleanup
}

# shellcheck shell=bash
# Kubernetes mode (issue 8): cases of agent_e2e_test.sh (sourced by it, sharing its helpers),
# ctest runtime.e2e.kube_*. What is real and what is simulated:
# - real: kubectl, the agent's HTTP/TLS client and watches, containerd, the containers,
#   fanotify enforcement;
# - simulated: the API server is ../shared/kube-standin (no kube-apiserver runs here), and
#   the kubelet: a pod is an object stored in the stand-in with spec.nodeName and
#   containerStatuses, plus, in containerd namespace k8s.io, a sandbox container and an app
#   container carrying the labels the CRI plugin sets.
# shellcheck disable=SC2154 # tmp, bg_pids, src_dir, RC, OUT: set by agent_e2e_test.sh

# shellcheck source=tests/runtime/kube_lib.sh
source "$src_dir/tests/runtime/kube_lib.sh"

# expect_k RC TEXT ARGS...: kubectl ARGS exits RC and prints TEXT.
expect_k() {
  local want_rc=$1 want=$2
  shift 2
  RC=0
  OUT=$(k "$@" 2>&1) || RC=$?
  [[ $RC == "$want_rc" ]] || fail "kubectl $* exited $RC, want $want_rc ($OUT)"
  [[ $OUT == *"$want"* ]] || fail "kubectl $* printed '$OUT', want '$want'"
}

kube_skip_unless_ready() {
  local b
  for b in kubectl python3 nginx curl nsenter; do
    command -v "$b" >/dev/null || skip "$b is not installed (scripts/setup.sh; kubectl ships with the machine image)"
  done
  [[ -f $standin ]] || skip "the kube stand-in is not at $standin"
}

# kube_setup: containerd, the stand-in with KubeArmor's CRDs, the agent in Kubernetes mode,
# and the nginx image (nginx, bash, chroot).
kube_setup() {
  kube_skip_unless_ready
  # shellcheck disable=SC2034 # read by lib.sh
  CORRAL_RT_NS=k8s.io # where the CRI plugin puts a pod's containers
  corral_rt_mktemp tmp
  corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
  start_standin
  expect_k 0 "created" apply -f "$src_dir/deploy/kubernetes/crds/"
  start_kube_agent
  corral_rt_build_nginx_rootfs "$tmp/nginx"
  corral_rt_wait_for 10 _kube_connected || fail "the agent is not connected: $(corral get status)"
}
_kube_connected() { corral get status -o json | jq -e '.kubernetes.state == "connected"'; }

# kube_alert_since CID N RESOURCE: waits for an alert of container CID after its N-th.
kube_alerts() { corral logs --json | jq -c --arg id "$1" 'select(.ContainerID == $id)'; }
kube_alert_count() { kube_alerts "$1" | wc -l; }
await_kube_alert() {
  local i
  for ((i = 0; i < 100; i++)); do
    ALERT=$(kube_alerts "$1" | tail -n +"$(($2 + 1))" | jq -c --arg r "$3" 'select(.Resource == $r)' | head -n 1)
    [[ -n $ALERT ]] && return 0
    sleep 0.1
  done
  fail "no alert for $3 from $1 (after #$2); newest: $(kube_alerts "$1" | tail -n 2)"
}

# chroot_denied CID / chroot_runs CID: `bash -c chroot` is denied (126, EPERM), or runs
# (chroot itself then complains of its missing operand: 125).
chroot_denied() { run_in "$1" bash -c chroot && false || [[ $RC == 126 && $OUT == *"Operation not permitted"* ]]; }
chroot_runs() { run_in "$1" bash -c chroot && false || [[ $RC == 125 && $OUT == *"missing operand"* ]]; }
await_chroot_denied() { corral_rt_wait_for "${2:-5}" chroot_denied "$1" || fail "chroot is not denied in $1: $OUT ($RC)"; }
await_chroot_runs() { corral_rt_wait_for "${2:-5}" chroot_runs "$1" || fail "chroot is still denied in $1: $OUT ($RC)"; }

seed_policy=$src_dir/examples/seed-only-allow-nginx-exec.yaml

# ---- the seed's procedure with the seed's own commands ----------------------------------------
case_kube_seed() {
  kube_setup
  kube_pod web-1 "$KUBE_NODE" app=nginx
  local c=$POD_CID m
  corral_rt_wait_for 10 corral_rt_http "$c" || fail "nginx does not answer"
  await_listed "$c"
  [[ $(corral get workloads -o json | jq -r --arg id "$c" '.workloads[] | select(.id == $id) | .labels.app') == nginx ]] ||
    fail "the pod's labels are not the workload's: $(corral get workloads -o json)"
  # A pod on another node, with the same labels: never this agent's business.
  kube_pod web-other node-b app=nginx

  # The seed's commands, verbatim.
  expect_k 0 "created" apply -f "$seed_policy"
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  corral_rt_wait_for 5 _is_proven "$c" || fail "$c is not proven enforced: $(corral get workloads -o wide)"
  [[ $(workload_field "$c" policies) == only-allow-nginx-exec ]] || fail "policies of $c"
  [[ $(workload_field "$c" file_posture) == block ]] || fail "posture of $c"
  expect_cli 0 "kubernetes" get policies
  m=$(kube_alert_count "$c")
  expect_run 126 "$(denied_exec /usr/sbin/chroot)" "$c" bash -c chroot
  expect_run 0 "ok" "$c" bash -c 'echo ok'
  [[ $(corral_rt_http "$c") == "hello from nginx" ]] || fail "nginx stopped serving"
  await_kube_alert "$c" "$m" /usr/sbin/chroot
  check_alert NamespaceName=default PodName=web-1 Labels=app=nginx ContainerName=nginx \
    ContainerID="$c" HostName="$KUBE_NODE" PolicyName=DefaultPosture Action=Block Enforcer=fanotify
  expect_cli 0 "PodName: web-1" logs -n default
  expect_cli 0 "" get status --ready
  pass "kube seed: kubectl apply + annotate enforce on the node; chroot denied with the pod's identity"
  [[ $(corral get status -o json | jq -r '.kubernetes.pods') == 1 ]] ||
    fail "the agent knows pods of another node: $(corral get status)"
  admin requests | grep -q 'fieldSelector=spec.nodeName%3Dnode-a\|fieldSelector=spec.nodeName=node-a' ||
    fail "pods are not watched for this node only"
  pass "a pod of another node is not watched"

  # The CLI is not a second source in this mode.
  expect_cli 1 "kubectl apply -f" apply -f "$seed_policy"
  expect_cli 1 "kubectl annotate ns default" annotate ns default kubearmor-file-posture=audit --overwrite
  expect_cli 1 "kubectl delete" delete -f "$seed_policy"
  pass "corral apply/annotate/delete refuse, naming kubectl"

  # Another namespace's or another label's policy does not touch the pod.
  expect_k 0 "created" create ns other
  sed 's/name: only-allow-nginx-exec/name: in-other-ns/; /^metadata:/a\  namespace: other' "$seed_policy" >"$tmp/other-ns.yaml"
  sed 's/name: only-allow-nginx-exec/name: other-label/; s/app: nginx/app: apache/' "$seed_policy" >"$tmp/other-label.yaml"
  expect_k 0 "created" apply -f "$tmp/other-ns.yaml" -f "$tmp/other-label.yaml"
  sleep 0.5
  [[ $(workload_field "$c" policies) == only-allow-nginx-exec ]] ||
    fail "another namespace's or label's policy selected $c: $(workload_field "$c" policies)"

  expect_k 0 "deleted" delete -f "$seed_policy"
  corral_rt_wait_for 5 _no_policies "$c" || fail "kubectl delete did not lift: $(corral get workloads)"
  expect_run 125 "missing operand" "$c" bash -c chroot
  pass "kube seed: kubectl delete -f lifts (chroot runs again); others' policies never touch it"
}
_no_policies() { [[ -z $(workload_field "$1" policies) ]]; }

# ---- pods and namespaces change -------------------------------------------------------------
case_kube_pods() {
  KUBE_VIA_KUBECONFIG=1 # this case reaches the API through a kubeconfig
  kube_setup
  expect_cli 0 "kubeconfig $tmp/api/kubeconfig" get status
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  # Applied before the pod exists: enforced on its very first exec.
  expect_k 0 "created" apply -f "$seed_policy"
  sleep 0.5
  kube_pod web-2 "$KUBE_NODE" app=nginx
  local c=$POD_CID m
  m=$(kube_alert_count "$c")
  expect_run 126 "$(denied_exec /usr/sbin/chroot)" "$c" bash -c chroot
  await_kube_alert "$c" "$m" /usr/sbin/chroot
  pass "a policy applied before the pod starts is enforced on its first exec"

  # The pod is relabelled: the policy no longer selects it.
  expect_k 0 "labeled" label pod web-2 app=apache --overwrite
  corral_rt_wait_for 5 _no_policies "$c" || fail "relabelled pod still selected: $(corral get workloads)"
  await_chroot_runs "$c"
  expect_k 0 "labeled" label pod web-2 app=nginx --overwrite
  await_chroot_denied "$c"
  pass "a pod label change re-selects policies"

  # The namespace's posture changes: audit lets chroot run, block denies it again.
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=audit --overwrite
  await_chroot_runs "$c"
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  await_chroot_denied "$c"
  pass "a namespace annotation change applies"
}

# ---- invalid policy objects -------------------------------------------------------------------
case_kube_invalid() {
  kube_setup
  kube_pod web-3 "$KUBE_NODE" app=nginx
  local c=$POD_CID uid gen
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  expect_k 0 "created" apply -f "$seed_policy"
  await_chroot_denied "$c"
  # The CRD's schema refuses severity 11 through kubectl...
  sed 's/name: only-allow-nginx-exec/name: too-severe/; s/^spec:/spec:\n  severity: 11/' "$seed_policy" >"$tmp/bad.yaml"
  sed -i 's/app: nginx/app: other/' "$tmp/bad.yaml"
  expect_k 1 "spec.severity" apply -f "$tmp/bad.yaml"
  # ...but an object stored before the schema existed reaches the agent: it applies nothing
  # of it and reports it once, as a Warning Event on the policy.
  python3 -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$tmp/bad.yaml" |
    jq '.metadata.namespace = "default"' >"$tmp/bad.json"
  admin apply "$tmp/bad.json" >/dev/null || fail "cannot store the invalid policy"
  uid=$(k get ksp too-severe -o jsonpath='{.metadata.uid}')
  gen=$(k get ksp too-severe -o jsonpath='{.metadata.generation}')
  corral_rt_wait_for 10 _has_event "corral-policyinvalid-$uid-$gen" ||
    fail "no PolicyInvalid Event: $(k get events -A -o json | jq -c '.items[] | [.metadata.name, .reason]')"
  local ev
  ev=$(k get event "corral-policyinvalid-$uid-$gen" -o json)
  jq -e '.type == "Warning" and .reason == "PolicyInvalid" and .involvedObject.kind == "KubeArmorPolicy"
    and .involvedObject.name == "too-severe" and .involvedObject.namespace == "default"' <<<"$ev" >/dev/null ||
    fail "the Event is not as specified: $ev"
  [[ $(jq -r .message <<<"$ev") == *"spec.severity"* ]] || fail "the Event does not carry the diagnostic: $ev"
  corral get policies | grep -q too-severe && fail "the invalid policy was applied"
  await_chroot_denied "$c"
  # A relist (history compacted) reports it no second time: still exactly one Event.
  admin compact >/dev/null
  admin close-watches >/dev/null
  sleep 2
  [[ $(k get events -o json | jq '[.items[] | select(.reason == "PolicyInvalid")] | length') == 1 ]] ||
    fail "more than one Event for one generation"
  pass "an invalid policy object: one Warning Event with the diagnostic, nothing applied, others carry on"

  # A rule this node does not enforce (capabilities: audited only where no LSM hook loads)
  # is said on the policy, per node, as the apply output says it in standalone mode.
  cat >"$tmp/caps.yaml" <<'YAML'
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: no-chown
  namespace: default
spec:
  selector:
    matchLabels:
      app: nginx
  capabilities:
    matchCapabilities:
    - capability: chown
  action: Block
YAML
  expect_k 0 "created" apply -f "$tmp/caps.yaml"
  uid=$(k get ksp no-chown -o jsonpath='{.metadata.uid}')
  local level
  level=$(corral probe -o json | jq -r '.auto.capabilities.coverage')
  if [[ $level == enforced ]]; then
    sleep 2
    _has_event "corral-notenforced-$uid-1-$KUBE_NODE" && fail "an Event says an enforced rule is not enforced"
  else
    corral_rt_wait_for 10 _has_event "corral-notenforced-$uid-1-$KUBE_NODE" ||
      fail "no RulesNotEnforced Event for no-chown: $(k get events -o json | jq -c '.items[] | [.metadata.name, .reason]')"
    ev=$(k get event "corral-notenforced-$uid-1-$KUBE_NODE" -o json)
    [[ $(jq -r .reason <<<"$ev") == RulesNotEnforced && $(jq -r .message <<<"$ev") == *"spec.capabilities.matchCapabilities[0] (Block chown): NOT ENFORCED on this node"* ]] ||
      fail "the RulesNotEnforced Event is not as specified: $ev"
  fi
  pass "a rule the node does not enforce ($level) is reported on the policy as an Event"
}
_has_event() { k get event "$1" >/dev/null 2>&1; }

# ---- watch faults ---------------------------------------------------------------------------
# Each fault: enforcement never lifted while it lasts; a change made during it is applied
# within 3 s after it ends.
case_kube_faults() {
  kube_setup
  kube_pod web-4 "$KUBE_NODE" app=nginx
  local c=$POD_CID t
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  expect_k 0 "created" apply -f "$seed_policy"
  await_chroot_denied "$c"

  # Streams closed cleanly, then mid-stream: watches resume, no relist needed.
  local relists restarts
  relists=$(_kube_field relists)
  restarts=$(_kube_field watch_restarts)
  admin close-watches >/dev/null
  admin close-watches '{"hard":true}' >/dev/null
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=audit --overwrite
  await_chroot_runs "$c" 3
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  await_chroot_denied "$c" 3
  (($(_kube_field watch_restarts) >= restarts + 10)) || fail "watches were not re-opened: $(corral get status)"
  (($(_kube_field relists) == relists)) || fail "a closed watch made the agent relist: $(corral get status)"
  pass "fault: watches closed (clean and hard) resume from their resourceVersion (no relist); changes applied"

  # History compacted: 410 Expired → relist; a policy deleted meanwhile is lifted, one added
  # is enforced.
  sed 's/name: only-allow-nginx-exec/name: block-dash/; s/app: nginx/app: nginx/' "$seed_policy" >"$tmp/second.yaml"
  admin faults '{"failNext": 1000, "code": 503, "pathContains": "watch", "retryAfterSeconds": 1}' >/dev/null
  admin close-watches '{"hard":true}' >/dev/null
  expect_k 0 "deleted" delete -f "$seed_policy"
  expect_k 0 "created" apply -f "$tmp/second.yaml"
  admin compact >/dev/null
  t=$SECONDS
  admin faults '{}' >/dev/null
  corral_rt_wait_for 4 _policies_are "$c" block-dash ||
    fail "after 410 the policies are $(workload_field "$c" policies), want block-dash"
  ((SECONDS - t <= 3)) || fail "the relist took $((SECONDS - t)) s"
  (($(_kube_field relists) > relists)) || fail "no relist after 410: $(corral get status)"
  pass "fault: history compacted (410): relisted, the deleted policy lifted, the added one enforced"

  # 500 and 429 bursts (429 with Retry-After 1) on every request: nothing lifted meanwhile.
  admin faults '{"failNext": 30, "code": 500}' >/dev/null
  admin close-watches >/dev/null
  await_chroot_denied "$c"
  admin faults '{"failNext": 30, "code": 429, "retryAfterSeconds": 1}' >/dev/null
  admin close-watches '{"hard":true}' >/dev/null
  await_chroot_denied "$c"
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=audit --overwrite
  admin faults '{}' >/dev/null
  t=$SECONDS
  await_chroot_runs "$c" 4
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  await_chroot_denied "$c" 4
  pass "fault: 500 and 429 bursts: enforcement kept, changes applied after"

  # The API down 10 s: enforcement kept, status says unreachable; a change made during the
  # outage (stored in the stand-in's persisted state) is applied within 3 s after it ends.
  admin outage 10 >/dev/null
  sleep 1
  corral_rt_wait_for 5 _kube_state unreachable || fail "status: $(corral get status)"
  expect_cli 0 "Kubernetes API:     unreachable" get status
  chroot_denied "$c" || fail "enforcement lifted during the outage: $OUT"
  sleep 8
  corral_rt_wait_for 10 k get ns default || fail "the stand-in did not come back"
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=audit --overwrite
  t=$SECONDS
  await_chroot_runs "$c" 3
  corral_rt_wait_for 3 _kube_state connected || fail "not reconnected: $(corral get status)"
  pass "fault: API down 10 s: enforcement kept, unreachable shown, the change applied within 3 s"
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  await_chroot_denied "$c" 3

  # The agent restarts while the API is down: the last known state is enforced at once.
  admin outage 15 >/dev/null
  sleep 0.5
  corral_rt_stop_corrald TERM
  start_kube_agent
  await_chroot_denied "$c" 3
  [[ $(corral get policies | grep -c 'kubernetes') -ge 1 ]] || fail "no cached policies: $(corral get policies)"
  expect_cli 0 "unreachable" get status
  expect_cli 1 "has not synced with the Kubernetes API" get status --ready
  pass "fault: agent restarted while the API is down enforces its last known state at once (not Ready)"
}
_policies_are() { [[ $(workload_field "$1" policies) == "$2" ]]; }
_kube_field() { corral get status -o json | jq -r ".kubernetes.$1 // 0"; }
_kube_state() { [[ $(corral get status -o json | jq -r .kubernetes.state) == "$1" ]]; }

# corral contain in Kubernetes mode (issue 10): the policy and the namespace annotation are
# written through the API (a kubeconfig), as kubectl would; --undo restores the objects.
case_kube_contain() {
  kube_setup
  kube_pod web-1 "$KUBE_NODE" app=nginx
  local c=$POD_CID out before_ns
  corral_rt_wait_for 10 corral_rt_http "$c" || fail "nginx does not answer"
  await_listed "$c"
  expect_run 0 "ok" "$c" bash -c 'echo ok'
  before_ns=$(k get ns default -o json | jq -S -c '.metadata.annotations // {}')
  out=$(corral contain web-1 -n default --observe 2s --yes --kubeconfig "$tmp/api/kubeconfig" 2>&1) ||
    fail "contain failed: $out"
  [[ $out == *"is contained"* ]] || fail "contain: $out"
  k get ksp -n default corral-contain-nginx -o json |
    jq -e '.metadata.annotations["corral.io/contained-workload"] == "default/nginx" and
      (.metadata.annotations["kubearmor-policy"] == null) and .spec.selector.matchLabels.app == "nginx"' >/dev/null ||
    fail "the policy in the API: $(k get ksp -n default -o yaml)"
  [[ $(k get ns default -o json | jq -r '.metadata.annotations["kubearmor-file-posture"]') == block ]] ||
    fail "namespace default: $(k get ns default -o yaml)"
  corral_rt_wait_for 5 _is_proven "$c" || fail "$c is not proven enforced: $(corral get workloads -o wide)"
  expect_run 126 "$(denied_exec /usr/sbin/chroot)" "$c" bash -c chroot
  [[ $(corral_rt_http "$c") == "hello from nginx" ]] || fail "nginx stopped serving"
  pass "kube contain: KubeArmorPolicy and namespace annotation written through the API; chroot denied, nginx serves"

  expect_cli 0 "undone" contain --undo web-1 -n default --kubeconfig "$tmp/api/kubeconfig"
  [[ $(k get ksp -n default -o json | jq '.items | length') == 0 ]] || fail "policies left: $(k get ksp -A)"
  [[ $(k get ns default -o json | jq -S -c '.metadata.annotations // {}') == "$before_ns" ]] ||
    fail "namespace annotations after undo: $(k get ns default -o json | jq -c .metadata.annotations)"
  expect_run 0 "ok" "$c" bash -c '/usr/sbin/chroot --version >/dev/null && echo ok'
  pass "kube contain --undo: the API's objects as before; chroot runs again"
}

# Locked policies and the change log (issue 12), sourced by agent_e2e_test.sh.
# shellcheck shell=bash

# changes: the agent's PolicyChange alerts, oldest first, one JSON object a line.
changes() { corral logs --json | jq -c 'select(.Type == "PolicyChange")'; }
_has_changes() { (($(changes | wc -l) >= $1)); }
# expect_change N FIELD=VALUE...: the N-th PolicyChange alert exists (within 10 s) and has
# these fields; sets ALERT to it.
expect_change() {
  local n=$1
  shift
  corral_rt_wait_for 10 _has_changes "$n" || fail "no PolicyChange alert #$n: $(changes)"
  ALERT=$(changes | sed -n "${n}p")
  check_alert Type=PolicyChange Operation=Policy "$@"
}
# expect_message TEXT: ALERT's Message contains TEXT.
expect_message() {
  [[ $(jq -r .Message <<<"$ALERT") == *"$1"* ]] || fail "alert message lacks '$1': $ALERT"
}
has_atag() { jq -e --arg t "$1" '.ATags | index($t)' <<<"$ALERT" >/dev/null; }

# The seed's Listing 2 with corral.dev/lock: "true" (examples/), checked to differ from the
# plain one only by the annotation.
locked_seed() {
  cp "$src_dir/examples/seed-only-allow-nginx-exec-locked.yaml" "$1"
  diff <(grep -v '^#' "$1" | grep -v 'annotations:\|corral.dev/lock') \
    "$src_dir/examples/seed-only-allow-nginx-exec.yaml" >/dev/null ||
    fail "the locked example is not Listing 2 plus the lock"
}

# ---- a locked Listing 2 cannot be widened by another policy; a Block still narrows it --------
case_lock() {
  CORRAL_RT_NS=default # Listing 2 has no namespace
  corral_rt_mktemp tmp
  corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
  corral_rt_start_corrald "$tmp/agent"
  corral_rt_build_rootfs "$tmp/rootfs" bash sleep chroot
  local c=lock-$$ me
  me="local uid 0 (user $(id -un)) (corral"
  corral_rt_run "$c" "$tmp/rootfs" app=nginx -- sleep 1000000
  await_listed "$c"

  expect_cli 0 "namespace/default annotated" annotate ns default kubearmor-file-posture=block
  expect_change 1 Resource=Namespace//default Action=Added Severity=5 \
    Source="$me annotate)" NamespaceName=default
  expect_message "annotations set: kubearmor-file-posture=block"
  locked_seed "$tmp/locked.yaml"
  expect_cli 0 "KubeArmorPolicy/only-allow-nginx-exec configured" apply -f "$tmp/locked.yaml"
  expect_change 2 Resource=KubeArmorPolicy/default/only-allow-nginx-exec Action=Added Severity=5 \
    Source="$me apply)" PolicyName=corral-policy-change
  expect_message "permits: "
  expect_message "Allow process path /bin/bash"
  expect_message "lock added"
  await_enforced "$c"
  local m
  m=$(alert_count "$c")
  expect_run 126 "$(denied_exec /usr/sbin/chroot)" "$c" bash -c chroot
  expect_alert "$c" "$m" /usr/sbin/chroot PolicyName=DefaultPosture Action=Block
  pass "lock: Listing 2 locked, posture block: chroot denied"

  # A second policy allowing chroot for the same labels: ignored for the locked workload,
  # and said so by apply and by its PolicyChange alert.
  block_policy "$tmp/allow-chroot.yaml" allow-chroot nginx /usr/sbin/chroot Allow
  local ignored="KubeArmorPolicy/allow-chroot spec.process.matchPaths[0] (Allow /usr/sbin/chroot)"
  expect_cli 0 "$ignored is ignored where the locked policy only-allow-nginx-exec denies" \
    apply -f "$tmp/allow-chroot.yaml"
  expect_change 3 Resource=KubeArmorPolicy/default/allow-chroot Action=Added Severity=5
  expect_message "ignored by a lock: $ignored"
  m=$(alert_count "$c")
  expect_run 126 "$(denied_exec /usr/sbin/chroot)" "$c" bash -c chroot
  expect_alert "$c" "$m" /usr/sbin/chroot PolicyName=DefaultPosture Action=Block \
    Result="Permission denied"
  expect_run 0 "ok" "$c" bash -c 'echo ok'
  # The same file again changes nothing and records nothing.
  expect_cli 0 "KubeArmorPolicy/allow-chroot unchanged" apply -f "$tmp/allow-chroot.yaml"
  pass "lock: a policy allowing chroot is ignored (apply output and its alert name the rule)"

  # A Block rule of an unlocked policy still narrows the locked workload.
  expect_run 0 "s" "$c" bash -c 'echo s >/tmp/secret; read -r l </tmp/secret; echo $l'
  policy "$tmp/block-secret.yaml" <<YAML
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: block-secret
  namespace: default
spec:
  selector:
    matchLabels:
      app: nginx
  file:
    matchPaths:
    - path: /tmp/secret
  action: Block
YAML
  expect_cli 0 "KubeArmorPolicy/block-secret configured" apply -f "$tmp/block-secret.yaml"
  expect_change 4 Resource=KubeArmorPolicy/default/block-secret Action=Added Severity=5
  expect_message "forbids: Block file path /tmp/secret"
  expect_run 1 "$(denied_open /tmp/secret)" "$c" bash -c 'read -r l </tmp/secret'
  pass "lock: an unlocked Block rule still narrows the locked workload"

  # Lifting the lock (the operator may): Listing 2 as it is, unlocked. The second policy now
  # lets chroot run, as it always did; the change is alerted at severity 10.
  expect_cli 0 "KubeArmorPolicy/only-allow-nginx-exec configured" \
    apply -f "$src_dir/examples/seed-only-allow-nginx-exec.yaml"
  expect_change 5 Resource=KubeArmorPolicy/default/only-allow-nginx-exec Action=Modified \
    Severity=10
  expect_message "LOCK LIFTED"
  expect_message "widens what a workload may run"
  has_atag CORRAL_LOCK || fail "the lift's alert lacks ATag CORRAL_LOCK: $ALERT"
  has_atag CORRAL_WIDENS_EXEC || fail "the lift's alert lacks ATag CORRAL_WIDENS_EXEC: $ALERT"
  expect_run 125 "chroot: missing operand" "$c" bash -c chroot
  pass "lock: without the lock the second policy lets chroot run (severity-10 alert)"

  # A namespace posture turned to audit widens what runs: severity 10. A delete: one alert.
  expect_cli 0 "annotated" annotate ns default kubearmor-file-posture=audit --overwrite
  expect_change 6 Resource=Namespace//default Action=Modified Severity=10
  expect_message "kubearmor-file-posture=audit"
  expect_cli 0 "deleted" delete -f "$tmp/allow-chroot.yaml"
  expect_change 7 Resource=KubeArmorPolicy/default/allow-chroot Action=Deleted Severity=5 \
    Source="$me delete)"
  expect_message "no longer permits: Allow process path /usr/sbin/chroot"
  sleep 1
  (($(changes | wc -l) == 7)) || fail "want exactly 7 PolicyChange alerts: $(changes)"
  # Shown by default: the text form of corral logs.
  expect_cli 0 "Resource: KubeArmorPolicy/default/allow-chroot" logs
  pass "lock: every apply, delete and annotate made exactly one PolicyChange alert"
}

# ---- the change log: in order, hash-chained; tampering makes verify fail and the agent alert --
case_history() {
  setup
  local c=hist-$$ state
  state=$tmp/agent/state
  corral_rt_run "$c" "$tmp/rootfs" app=hist -- sleep 1000000
  await_listed "$c"
  block_policy "$tmp/a.yaml" hist-a hist /usr/bin/id
  block_policy "$tmp/b.yaml" hist-b hist /usr/bin/ls
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-file-posture=block
  expect_cli 0 "configured" apply -f "$tmp/a.yaml"
  expect_cli 0 "configured" apply -f "$tmp/b.yaml"
  block_policy "$tmp/a.yaml" hist-a hist /usr/bin/cat
  expect_cli 0 "configured" apply -f "$tmp/a.yaml"
  expect_cli 0 "deleted" delete -f "$tmp/b.yaml"
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-file-posture-
  local want got
  want="Added Namespace//$CORRAL_RT_NS
Added KubeArmorPolicy/$CORRAL_RT_NS/hist-a
Added KubeArmorPolicy/$CORRAL_RT_NS/hist-b
Modified KubeArmorPolicy/$CORRAL_RT_NS/hist-a
Deleted KubeArmorPolicy/$CORRAL_RT_NS/hist-b
Deleted Namespace//$CORRAL_RT_NS"
  got=$(corral get history -o json | jq -r '.entries[] | "\(.action) \(.object)"')
  [[ $got == "$want" ]] || fail "corral get history: got
$got
want
$want"
  [[ $(corral get history -o json | jq -r '[.entries[].seq] | join(",")') == 1,2,3,4,5,6 ]] ||
    fail "history seqs are not 1..6: $(corral get history -o json)"
  # Its digest is the stored file's.
  local digest file
  file=$(corral get history -o json | jq -r '.entries[3].file')
  digest=$(corral get history -o json | jq -r '.entries[3].digest')
  [[ $(sha256sum "$state/$file" | cut -d' ' -f1) == "$digest" ]] ||
    fail "entry 4's digest is not sha256 of $file"
  expect_cli 0 "Modified" get history -n "$CORRAL_RT_NS"
  [[ $OUT == *"KubeArmorPolicy/$CORRAL_RT_NS/hist-a"* && $OUT == *"local uid 0"* ]] ||
    fail "get history text: $OUT"
  expect_cli 0 "change log intact: 6 entries" verify
  pass "history: six changes listed in order, chained, digests of the stored files"

  # Behind the agent's back, each alteration makes `corral verify` fail naming what, and the
  # agent, restarted on it, alert at severity 10 while it keeps enforcing; then it is undone.
  local log=$state/history.jsonl kind what n=0
  cp "$log" "$tmp/log.good"
  cp "$state/$file" "$tmp/file.good"
  for kind in edit-entry delete-entry reorder-entries edit-file remove-file; do
    case $kind in
    edit-entry) sed -i '3s/hist-b/hist-x/' "$log" && what="entry 3" ;;
    delete-entry) sed -i '3d' "$log" && what="entry 4" ;;
    reorder-entries) sed -i '3{h;d};4G' "$log" && what="an entry was removed or reordered" ;;
    edit-file) printf '# edited\n' >>"$state/$file" && what="$file: edited behind the agent's back" ;;
    remove-file) rm "$state/$file" && what="$file: missing" ;;
    esac
    expect_cli 1 "$what" verify
    corral_rt_stop_corrald
    corral_rt_start_corrald "$tmp/agent"
    n=$((n + 1))
    corral_rt_wait_for 10 _has_tamper_alerts "$n" ||
      fail "$kind: no alert for the altered change log after the restart: $(changes)"
    ALERT=$(changes | jq -c 'select(.PolicyName == "corral-change-log")' | tail -n 1)
    check_alert Severity=10 Action=Verify Result=Failed
    expect_message "$what"
    # What is stored is enforced (a removed policy file is, of course, no longer there).
    if [[ $kind != remove-file ]]; then
      corral_rt_wait_for 10 _is_enforced "$c" || fail "$kind: $c not enforced after the restart"
      expect_run 126 "$(denied_exec /usr/bin/cat)" "$c" bash -c cat
    fi
    cp "$tmp/log.good" "$log"
    cp "$tmp/file.good" "$state/$file"
    pass "history: $kind: verify fails ($what), the restarted agent alerts and keeps enforcing"
  done
  expect_cli 0 "intact" verify
  corral_rt_stop_corrald
  corral_rt_start_corrald "$tmp/agent"
  corral_rt_wait_for 10 _is_enforced "$c" || fail "$c not enforced after the last restart"
  _has_tamper_alerts $((n + 1)) && fail "an intact change log was alerted: $(changes)"
  grep -q "change log: entry 3" "$tmp/agent/corrald.log" || fail "the agent did not log a problem"
  pass "history: put back, verify passes and a restart alerts nothing"

  # An alteration an operator has reviewed is accepted into the log, by them, at severity 10.
  printf '# reviewed\n' >>"$state/$file"
  expect_cli 1 "edited behind the agent's back" verify
  expect_cli 0 "accepted the stored state as found: 1 entries" verify --accept
  expect_cli 0 "change log intact: 7 entries" verify
  [[ $(corral get history -o json | jq -r '.entries[6] | "\(.action) \(.severity) \(.source)"') == \
    "Modified 10 local uid 0 (user $(id -un)) (corral verify --accept)" ]] ||
    fail "the acceptance is not the log's 7th entry: $(corral get history -o json | jq -c '.entries[6]')"
  ALERT=$(changes | tail -n 1)
  check_alert Resource=ChangeLog//history.jsonl Severity=10
  # A deleted log is not rebuilt silently: the restarted agent alerts, verify keeps failing
  # until someone accepts what is stored.
  rm "$log"
  corral_rt_stop_corrald
  corral_rt_start_corrald "$tmp/agent"
  corral_rt_wait_for 10 _has_tamper_alerts $((n + 1)) || fail "a deleted change log was not alerted"
  ALERT=$(changes | jq -c 'select(.PolicyName == "corral-change-log")' | tail -n 1)
  expect_message "history.jsonl: missing"
  expect_cli 1 "no history entry" verify
  expect_cli 0 "accepted the stored state as found: 1 entries" verify --accept
  expect_cli 0 "change log intact: 1 entries" verify
  pass "history: verify --accept records reviewed alterations (severity 10); a deleted log stays failed until accepted"
}
_has_tamper_alerts() {
  (($(changes | jq -c 'select(.PolicyName == "corral-change-log")' | wc -l) >= $1))
}

# ---- the same through kubectl against the API stand-in ---------------------------------------
case_kube_lock() {
  kube_setup
  kube_pod web-1 "$KUBE_NODE" app=nginx
  local c=$POD_CID
  await_listed "$c"
  expect_k 0 "annotated" annotate ns default kubearmor-file-posture=block --overwrite
  expect_change 1 Resource=Namespace//default Action=Added Severity=5
  [[ $(jq -r .Source <<<"$ALERT") == "kubernetes: manager "*", resourceVersion "[0-9]* ]] ||
    fail "a change from the API names no manager and resourceVersion: $ALERT"
  locked_seed "$tmp/locked.yaml"
  expect_k 0 "created" apply -f "$tmp/locked.yaml"
  expect_change 2 Resource=KubeArmorPolicy/default/only-allow-nginx-exec Action=Added Severity=5
  expect_message "lock added"
  await_chroot_denied "$c"

  block_policy "$tmp/allow-chroot.yaml" allow-chroot nginx /usr/sbin/chroot Allow
  sed -i 's/^  namespace: .*/  namespace: default/' "$tmp/allow-chroot.yaml"
  expect_k 0 "created" apply -f "$tmp/allow-chroot.yaml"
  local ignored="KubeArmorPolicy/allow-chroot spec.process.matchPaths[0] (Allow /usr/sbin/chroot)"
  expect_change 3 Resource=KubeArmorPolicy/default/allow-chroot Action=Added Severity=5
  expect_message "ignored by a lock: $ignored"
  corral_rt_wait_for 5 _lock_event "$ignored" ||
    fail "no RulesIgnoredByLock Event naming the rule: $(k get events -n default -o json)"
  sleep 0.5
  chroot_denied "$c" || fail "chroot runs in the locked pod: $OUT ($RC)"
  pass "kube lock: a policy allowing chroot is ignored (alert and Event name the rule)"

  expect_k 0 "configured" apply -f "$seed_policy"
  expect_change 4 Resource=KubeArmorPolicy/default/only-allow-nginx-exec Action=Modified \
    Severity=10
  expect_message "LOCK LIFTED"
  await_chroot_runs "$c"
  expect_k 0 "deleted" delete -f "$tmp/allow-chroot.yaml"
  expect_change 5 Resource=KubeArmorPolicy/default/allow-chroot Action=Deleted
  [[ $(jq -r .Source <<<"$ALERT") == "kubernetes: deleted through the API"* ]] ||
    fail "a delete through the API is not said so: $ALERT"
  sleep 1
  (($(changes | wc -l) == 5)) || fail "want exactly 5 PolicyChange alerts: $(changes)"
  [[ $(corral get history -o json | jq '.entries | length') == 5 ]] ||
    fail "want 5 history entries: $(corral get history)"
  expect_cli 0 "intact" verify
  pass "kube lock: every kubectl apply/delete/annotate made exactly one PolicyChange alert"
}
_lock_event() {
  k get events -n default -o json |
    jq -e --arg r "$1" '.items[] | select(.reason == "RulesIgnoredByLock" and (.message | contains($r)))' >/dev/null
}

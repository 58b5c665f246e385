# shellcheck shell=bash
# The system monitor's cases (issue 10): visibility logs, corral profile, discover and contain.
# Sourced by agent_e2e_test.sh (its helpers: setup, expect_run, expect_cli, await_listed...).

# system_logs ID: container ID's visibility logs, one JSON object a line.
system_logs() { corral logs --json --logFilter system --container "$1"; }

# await_log ID SINCE RESOURCE [PROCESS]: waits up to 10 s for a visibility log of ID, newer
# than its SINCE-th, whose Resource is RESOURCE (and ProcessName PROCESS); sets ALERT to it
# (check_alert reads it).
await_log() {
  local i
  for ((i = 0; i < 100; i++)); do
    ALERT=$(system_logs "$1" | tail -n +"$(($2 + 1))" |
      jq -c --arg r "$3" --arg p "${4:-}" 'select(.Resource == $r and ($p == "" or .ProcessName == $p))' | head -n 1)
    [[ -n $ALERT ]] && return 0
    sleep 0.1
  done
  fail "no visibility log for $3 from $1 (after #$2); newest: $(system_logs "$1" | tail -n 3)"
}

# profile_count ID PROGRAM: how often `corral profile` saw container ID run PROGRAM.
profile_count() {
  corral profile --json --container "$1" |
    jq -r --arg p "$2" '[.workloads[0].processes[] | select(.name == $p) | .count] | add // 0'
}

# agent_state: the policies (without times) and the test namespace's annotations, to compare.
agent_state() {
  corral get policies -o json | jq -S -c '[.policies[]? | del(.applied)]'
  corral profile --json | jq -S -c '[.workloads[] | {namespace, namespaceAnnotations}] | unique'
}

case_visibility() {
  setup
  local a=vis-$$ b=quiet-$$ m n
  corral_rt_run "$a" "$tmp/rootfs" app=vis -- sleep 1000000
  await_listed "$a"
  # Not asked: no logs.
  expect_run 0 "uid=0(root)" "$a" bash -c /usr/bin/id
  sleep 0.5
  n=$(system_logs "$a" | wc -l)
  ((n == 0)) || fail "visibility logs without kubearmor-visibility: $(system_logs "$a" | head -n 3)"
  [[ $(profile_count "$a" /usr/bin/id) == 1 ]] ||
    fail "profile: want /usr/bin/id once: $(corral profile --once --container "$a")"
  pass "visibility: no logs unless asked; the profile counts the exec"

  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-visibility=process
  m=$(system_logs "$a" | wc -l)
  expect_run 0 "uid=0(root)" "$a" bash -c "/usr/bin/id; true"
  await_log "$a" "$m" /usr/bin/id
  check_alert Type=ContainerLog Operation=Process ProcessName=/usr/bin/id \
    ParentProcessName=/usr/bin/bash Source="/usr/bin/bash -c /usr/bin/id; true" \
    ContainerName="$a" ContainerID="$a" NamespaceName="$CORRAL_RT_NS" Labels=app=vis \
    Result=Passed Data=syscall=SYS_EXECVE
  [[ $(jq -r '.HostPID > 0 and .HostPPID > 0 and .PID > 1' <<<"$ALERT") == true ]] ||
    fail "pids of the log: $ALERT"
  # Arguments, and a process started by a shell that exits at once (forked, reparented).
  m=$(system_logs "$a" | wc -l)
  expect_run 0 "" "$a" bash -c '( /usr/bin/ls /etc & ); exit 0'
  await_log "$a" "$m" "/usr/bin/ls /etc"
  check_alert ProcessName=/usr/bin/ls ParentProcessName=/usr/bin/bash
  pass "visibility process: ContainerLog with workload, parent, source and arguments"

  # Files and network, when asked: the opens and connects of the workload, in logs and in
  # its profile.
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-visibility=process,file,network --overwrite
  m=$(system_logs "$a" | wc -l)
  expect_run 0 "rc=1" "$a" bash -c '/usr/bin/cat /etc/passwd >/dev/null; (echo >/dev/tcp/127.0.0.1/1) 2>/dev/null; echo rc=$?'
  # (runc's exec opens /etc/passwd in the container too: that is its own log.)
  await_log "$a" "$m" /etc/passwd /usr/bin/cat
  check_alert Operation=File ParentProcessName=/usr/bin/bash Data="syscall=SYS_OPEN flags=O_RDONLY" Result=Passed
  await_log "$a" "$m" "domain=AF_INET type=SOCK_STREAM protocol=6 remoteaddr=127.0.0.1:1"
  check_alert Operation=Network ProcessName=/usr/bin/bash Data=syscall=SYS_CONNECT Result="Connection refused"
  corral profile --json --container "$a" |
    jq -e '.workloads[0] | (.files | map(.name) | index("/etc/passwd")) != null and
      (.network | map(.name) | index("tcp connect 127.0.0.1:1")) != null' >/dev/null ||
    fail "profile lacks the open or the connect: $(corral profile --once --container "$a")"
  pass "visibility file,network: File and Network logs with process and result; in the profile"

  # Another container of the namespace is seen too; a pod-less container of another
  # namespace is not (its namespace has no annotation).
  CORRAL_RT_NS=other-$$ corral_rt_run "$b" "$tmp/rootfs" app=quiet -- sleep 1000000
  await_listed "$b"
  expect_run 0 "uid=0(root)" "$b" bash -c /usr/bin/id
  sleep 0.5
  n=$(system_logs "$b" | wc -l)
  ((n == 0)) || fail "logs of $b, whose namespace has no visibility: $(system_logs "$b" | head -n 2)"
  # Turned off again: no more logs.
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-visibility=none --overwrite
  m=$(system_logs "$a" | wc -l)
  expect_run 0 "uid=0(root)" "$a" bash -c /usr/bin/id
  sleep 0.5
  n=$(system_logs "$a" | wc -l)
  ((n == m)) || fail "logs after kubearmor-visibility=none: $(system_logs "$a" | tail -n 2)"
  expect_cli 0 "Visibility logs:" get status
  pass "visibility: only the annotated namespace, and off again with none"
}

# discover on the seed's nginx, started before the agent: the policy validates, and with
# posture block nginx keeps serving while chroot, cat and a copied binary are denied.
case_discover_nginx() {
  local b
  for b in nginx curl nsenter; do
    command -v "$b" >/dev/null || skip "$b is not installed (Debian packages nginx, curl, util-linux)"
  done
  corral_rt_mktemp tmp
  corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
  corral_rt_build_nginx_rootfs "$tmp/nginx"
  cp /usr/bin/cat "$tmp/nginx/usr/bin/cat" 2>/dev/null || true
  local c=nginx-$$
  corral_rt_run "$c" "$tmp/nginx" app=nginx -- /usr/sbin/nginx
  corral_rt_wait_for 10 corral_rt_http "$c" || fail "nginx does not answer"
  corral_rt_start_corrald "$tmp/agent" # after nginx: its processes are only in /proc
  await_listed "$c"
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-visibility=process,file,network
  corral_rt_http "$c" >/dev/null
  expect_run 0 "ok" "$c" bash -c 'echo ok'

  corral discover "$c" >"$tmp/discovered.yaml" 2>"$tmp/discover.err" ||
    fail "discover failed: $(cat "$tmp/discover.err")"
  grep -q 'path: "/usr/sbin/nginx" # running now' "$tmp/discovered.yaml" ||
    fail "nginx (started before the agent) is not in the policy: $(cat "$tmp/discovered.yaml")"
  grep -q 'path: "/usr/bin/bash" # ran 1 time' "$tmp/discovered.yaml" ||
    fail "bash is not in the policy with where it came from: $(cat "$tmp/discovered.yaml")"
  grep -q '"app": "nginx"' "$tmp/discovered.yaml" || fail "selector: $(cat "$tmp/discovered.yaml")"
  ! grep -q 'chroot\|/cat' "$tmp/discovered.yaml" || fail "never ran, yet allowed: $(cat "$tmp/discovered.yaml")"
  expect_cli 0 "" validate -f "$tmp/discovered.yaml"
  corral discover "$c" -o json | jq -e '.spec.process.matchPaths | length >= 2' >/dev/null ||
    fail "discover -o json"
  pass "discover: nginx (running since before the agent) and bash, with where each came from; validates"

  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-file-posture=block
  expect_cli 0 "configured" apply -f "$tmp/discovered.yaml"
  corral_rt_wait_for 5 _is_proven "$c" || fail "$c is not proven enforced"
  local i
  for i in 1 2 3; do
    [[ $(corral_rt_http "$c") == "hello from nginx" ]] || fail "nginx stopped serving (request $i)"
  done
  expect_run 126 "$(denied_exec /usr/sbin/chroot)" "$c" bash -c chroot
  expect_run 126 "$(denied_exec /usr/bin/cat)" "$c" bash -c '/usr/bin/cat /etc/hostname'
  cp "$tmp/nginx/usr/bin/bash" "$tmp/nginx/tmp/sh-copy"
  expect_run 126 "$(denied_exec /tmp/sh-copy)" "$c" bash -c '/tmp/sh-copy -c true'
  expect_run 0 "ok" "$c" bash -c 'echo ok'
  [[ $(corral_rt_http "$c") == "hello from nginx" ]] || fail "nginx stopped serving"
  pass "discover: with posture block nginx serves; chroot, cat and a copied bash are denied"

  expect_cli 1 "no running workload named nope" discover nope
  expect_cli 1 "--since 5x: not a duration" discover "$c" --since 5x
  pass "discover: an unknown workload and a bad --since are clear errors"
}

# contain: the shell loop keeps running, a new binary is denied, --undo restores exactly.
case_contain() {
  setup
  local c=loop-$$ before after out
  corral_rt_run "$c" "$tmp/rootfs" app=loop -- bash -c 'while :; do sleep 0.2; done'
  await_listed "$c"
  # What was there before: another policy and a namespace annotation of the user's.
  policy "$tmp/other.yaml" <<YAML
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: users-own
  namespace: $CORRAL_RT_NS
spec:
  selector:
    matchLabels:
      app: elsewhere
  process:
    matchPaths:
    - path: /usr/bin/id
  action: Block
YAML
  expect_cli 0 "configured" apply -f "$tmp/other.yaml"
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-network-posture=audit
  # The attacker's program, written into the workload and running when contain starts: left
  # out of the allow-list (not from the image), never killed, never started again.
  cp "$tmp/rootfs/usr/bin/sleep" "$tmp/rootfs/tmp/dropped"
  expect_run 0 "started" "$c" bash -c '/tmp/dropped 1000 </dev/null >/dev/null 2>&1 & echo started'
  sleep 1 # a few loop rounds for the monitor
  before=$(agent_state)

  # Observe: what would be denied is shown, and runs (dry run).
  (sleep 2 && corral_rt_exec "$c" bash -c '/usr/bin/cat /etc/hostname >/dev/null') &
  bg_pids+=($!)
  out=$(corral contain "$c" --observe 5s --yes 2>&1) || fail "contain failed: $out"
  [[ $out == *"would deny: Process /usr/bin/cat"* ]] || fail "contain did not show the would-be denial: $out"
  [[ $out == *"is contained"* ]] || fail "contain: $out"
  [[ $out == *"left out: /tmp/dropped (created or changed after the workload started"* ]] ||
    fail "contain did not leave the dropped program out: $out"
  local loop_pid=${CORRAL_RT_PIDS[$c]}
  kill -0 "$loop_pid" || fail "the shell loop was killed"
  local n1 n2
  n1=$(profile_count "$c" /usr/bin/sleep)
  sleep 1
  n2=$(profile_count "$c" /usr/bin/sleep)
  ((n2 > n1)) || fail "the loop's sleep does not run any more ($n1, then $n2)"
  expect_run 126 "$(denied_exec /usr/bin/cat)" "$c" bash -c '/usr/bin/cat /etc/hostname'
  expect_run 126 "$(denied_exec /usr/bin/ls)" "$c" bash -c '/usr/bin/ls /'
  expect_run 126 "$(denied_exec /tmp/dropped)" "$c" bash -c '/tmp/dropped 1'
  pgrep -f '^/tmp/dropped 1000' >/dev/null || fail "the running dropped program was killed"
  [[ $(workload_field "$c" file_posture) == block ]] || fail "posture after contain"
  pass "contain: the running loop keeps running (sleep still starts), cat and ls are denied"

  expect_cli 1 "already contained" contain "$c" --yes --observe 1s
  expect_cli 0 "undone" contain --undo "$c"
  after=$(agent_state)
  [[ $before == "$after" ]] || fail "--undo did not restore the state: before $before after $after"
  expect_run 0 "ok" "$c" bash -c '/usr/bin/cat /dev/null && echo ok'
  expect_cli 1 "is not contained" contain --undo "$c"
  pass "contain --undo: policies and annotations exactly as before; cat runs again"
}

# contain's bad input: nothing changes; the workload exiting or the agent restarting in the
# middle leaves the state before or after, never half.
case_contain_faults() {
  setup
  local c=cf-$$ keep=keep-$$ before out pid
  corral_rt_run "$c" "$tmp/rootfs" app=cf -- bash -c 'while :; do sleep 0.2; done'
  # (Another workload of the namespace: agent_state reads the namespace's annotations by it.)
  corral_rt_run "$keep" "$tmp/rootfs" app=keep -- sleep 1000000
  await_listed "$c"
  await_listed "$keep"
  before=$(agent_state)
  expect_cli 1 "no running workload named nope" contain nope --yes
  expect_cli 1 "--observe 0: the observe window must be longer than 0" contain "$c" --observe 0 --yes
  expect_cli 1 "--observe 5q: not a duration" contain "$c" --observe 5q --yes
  expect_cli 1 "no terminal to confirm" contain "$c" --observe 1s </dev/null
  [[ $(agent_state) == "$before" ]] || fail "bad input changed the state"
  pass "contain: unknown workload, --observe 0 or bad, no terminal: clear errors, nothing changed"

  # The agent restarts in the middle: contain waits for it and finishes (after).
  corral contain "$c" --observe 8s --yes >"$tmp/contain.out" 2>&1 &
  pid=$!
  bg_pids+=("$pid")
  sleep 3
  corral_rt_stop_corrald KILL
  corral_rt_start_corrald "$tmp/agent"
  wait "$pid" || fail "contain across an agent restart failed: $(cat "$tmp/contain.out")"
  grep -q "is contained" "$tmp/contain.out" || fail "contain: $(cat "$tmp/contain.out")"
  await_enforced "$c"
  expect_run 126 "$(denied_exec /usr/bin/cat)" "$c" bash -c '/usr/bin/cat /etc/hostname'
  [[ $(corral get policies -o json | jq '[.policies[] | select(.dry_run)] | length') == 0 ]] ||
    fail "a policy is left in dry run: $(corral get policies -o json)"
  expect_cli 0 "undone" contain --undo "$c"
  [[ $(agent_state) == "$before" ]] || fail "state after undo: $(agent_state)"
  pass "contain: the agent restarted in the middle; contain waited and blocked (after), undo restores"

  # The workload exits during contain: the previous state comes back (before).
  corral contain "$c" --observe 20s --yes >"$tmp/contain.out" 2>&1 &
  pid=$!
  bg_pids+=("$pid")
  sleep 3
  corral_rt_kill "$c"
  local rc=0
  wait "$pid" || rc=$?
  ((rc == 1)) || fail "contain of an exiting workload: rc $rc: $(cat "$tmp/contain.out")"
  grep -q "exited during contain; the previous state is restored" "$tmp/contain.out" ||
    fail "contain: $(cat "$tmp/contain.out")"
  [[ $(agent_state) == "$before" ]] ||
    fail "state after the workload exited during contain: $(agent_state), before: $before"
  pass "contain: the workload exited in the middle; the previous state is restored (before)"
}

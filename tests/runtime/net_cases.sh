# shellcheck shell=bash
# Issue 9, network rules (enforce/cgroupnet, bpf/cgroupnet.bpf.c): sourced by
# agent_e2e_test.sh, whose helpers they use. Every socket is made inside the container's own
# network namespace (ctr gives each container one) and used over its loopback only.
# shellcheck disable=SC2016 # single-quoted commands are expanded by the container's shell
# shellcheck disable=SC2154 # tmp, bin_dir, bg_pids, OUT, ERR, ALERT: set by agent_e2e_test.sh

# net_setup: containerd, the agent and a rootfs with bash and net_probe
# (/usr/bin/net_probe).
net_setup() {
  [[ -x $bin_dir/net_probe ]] || fail "$bin_dir/net_probe is missing (build the net_probe target)"
  corral_rt_mktemp tmp
  corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
  corral_rt_start_corrald "$tmp/agent"
  corral_rt_build_rootfs "$tmp/rootfs" bash sleep cp rm cat touch unshare "$bin_dir/net_probe"
  cp "$bin_dir/net_probe" "$tmp/rootfs/usr/bin/net_probe"
}

# net_policy FILE NAME APP ACTION PROTOCOL [FROMSOURCE]: one network rule for app=APP.
net_policy() {
  local from=
  [[ -n ${6:-} ]] && from=$'\n      fromSource:\n      - path: '$6
  policy "$1" <<YAML
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: $2
  namespace: $CORRAL_RT_NS
spec:
  severity: 6
  tags: [net, T1095]
  message: $2 says no
  selector:
    matchLabels:
      app: $3
  network:
    matchProtocols:
    - protocol: $5$from
  action: $4
YAML
}

# expect_net_alert ID SINCE RESOURCE FIELD=VALUE...: an alert of the network enforcer.
expect_net_alert() {
  local id=$1
  await_alert "$1" "$2" "$3"
  shift 3
  check_alert Enforcer=cgroup-bpf Operation=Network ContainerName="$id" ContainerID="$id" "$@"
}

denied_socket() { printf '%s: socket: Operation not permitted' "$1"; }
raw_icmp='domain=AF_INET type=SOCK_RAW protocol=1'
raw_udp='domain=AF_INET type=SOCK_RAW protocol=17'
tcp4='domain=AF_INET type=SOCK_STREAM protocol=6'
udp4='domain=AF_INET type=SOCK_DGRAM protocol=17'

# cgroup_of ID: the v2 cgroup directory of container ID's init.
cgroup_of() {
  local mnt
  mnt=$(awk '$9 == "cgroup2" && $4 == "/" {print $5; exit}' /proc/self/mountinfo)
  printf '%s%s' "$mnt" "$(sed -n 's/^0:://p' "/proc/${CORRAL_RT_PIDS[$1]}/cgroup")"
}
# sock_programs ID: how many corral_sock programs are attached to container ID's cgroup.
sock_programs() {
  local out
  out=$(bpftool -j cgroup show "$(cgroup_of "$1")" 2>/dev/null) || true
  jq '[.[]? | select(.attach_type == "cgroup_inet_sock_create" and .name == "corral_sock")] | length' \
    <<<"${out:-[]}"
}
_no_sock_program() { [[ $(sock_programs "$1") == 0 ]]; }

# ---- protocol rules: Block raw/icmp/udp, tcp passes, two workloads, delete lifts ------------
case_net_protocols() {
  net_setup
  local c=net-$$ other=neto-$$ m
  corral_rt_run "$c" "$tmp/rootfs" app=net -- sleep 1000000
  corral_rt_run "$other" "$tmp/rootfs" app=neto -- sleep 1000000
  await_listed "$c"
  await_listed "$other"
  expect_run 0 ok "$c" net_probe raw-icmp # CAP_NET_RAW: raw sockets work before the policy

  net_policy "$tmp/raw.yaml" block-raw net Block raw
  expect_cli 0 "KubeArmorPolicy/block-raw configured" apply -f "$tmp/raw.yaml"
  [[ $OUT$ERR != *"NOT ENFORCED"* ]] || fail "apply says the network rule is not enforced: $OUT $ERR"
  [[ $(workload_field "$c" sections) == *"network=enforced"* ]] ||
    fail "sections of $c: $(corral get workloads -o wide)"
  expect_cli 0 "network=enforced" get workloads -o wide
  [[ $(sock_programs "$c") == 1 ]] || fail "$(sock_programs "$c") socket programs on $c's cgroup"
  m=$(alert_count "$c")
  expect_run 1 "$(denied_socket raw-icmp)" "$c" net_probe raw-icmp
  expect_net_alert "$c" "$m" "$raw_icmp" PolicyName=block-raw Action=Block \
    Result="Permission denied" Severity=6 Tags=net,T1095 Message="block-raw says no" \
    NamespaceName="$CORRAL_RT_NS" Labels=app=net Type=MatchedPolicy ProcessName=/usr/bin/net_probe
  jq -e '.HostPID > 0 and .PID > 0 and (.Source | startswith("/usr/bin/net_probe raw-icmp"))' \
    <<<"$ALERT" >/dev/null || fail "alert's HostPID/PID/Source: $ALERT"
  expect_run 1 "$(denied_socket raw-udp)" "$c" net_probe raw-udp
  expect_net_alert "$c" "$m" "$raw_udp" PolicyName=block-raw Action=Block
  m=$(alert_count "$c")
  expect_run 0 ok "$c" net_probe tcp
  expect_run 0 ok "$c" net_probe udp
  expect_run 0 ok "$c" bash -c ': 3<>/dev/tcp/127.0.0.1/1 || :; net_probe tcp6 && echo fine'
  expect_run 0 ok "$other" net_probe raw-icmp
  expect_no_alert "$c" "$m" "$tcp4"
  # Attacker: a user + network namespace of its own (root there, with CAP_NET_RAW) is still
  # in the workload's cgroup; io_uring and the like create sockets through the same hook.
  expect_run 1 "$(denied_socket raw-icmp)" "$c" unshare -Urn net_probe raw-icmp
  pass "Block raw: raw sockets (icmp, udp) denied with EPERM and alerted; tcp, udp pass; others unaffected"

  # A second policy on the same workload (udp), and another one on the other workload (icmp).
  net_policy "$tmp/udp.yaml" block-udp net Block udp
  net_policy "$tmp/icmp.yaml" block-icmp neto Block icmp
  expect_cli 0 "configured" apply -f "$tmp/udp.yaml"
  expect_cli 0 "configured" apply -f "$tmp/icmp.yaml"
  m=$(alert_count "$c")
  expect_run 1 "$(denied_socket udp)" "$c" net_probe udp
  expect_net_alert "$c" "$m" "$udp4" PolicyName=block-udp Action=Block Result="Permission denied"
  expect_run 1 "$(denied_socket raw-icmp)" "$c" net_probe raw-icmp
  expect_run 0 ok "$c" net_probe tcp
  m=$(alert_count "$other")
  expect_run 1 "$(denied_socket raw-icmp)" "$other" net_probe raw-icmp
  expect_net_alert "$other" "$m" "$raw_icmp" PolicyName=block-icmp Action=Block
  expect_run 0 ok "$other" net_probe raw-udp # raw, but not icmp: not this policy's
  expect_run 0 ok "$other" net_probe udp
  pass "udp Block list; two workloads with different network policies do not interfere"

  expect_cli 0 "deleted" delete -f "$tmp/raw.yaml"
  expect_run 0 ok "$c" net_probe raw-udp
  expect_run 1 "$(denied_socket udp)" "$c" net_probe udp
  expect_cli 0 "deleted" delete -f "$tmp/udp.yaml"
  expect_run 0 ok "$c" net_probe udp
  corral_rt_wait_for 5 _no_sock_program "$c" ||
    fail "the socket program stays on $c's cgroup after its last network rule went"
  expect_run 1 "$(denied_socket raw-icmp)" "$other" net_probe raw-icmp
  pass "corral delete lifts each rule; the program leaves the cgroup with the last one"
}

# ---- fromSource under network posture block --------------------------------------------------
case_net_fromsource() {
  net_setup
  local c=netfs-$$ m
  # A bash started long before the policy (its exec was never seen by the tracepoint): it
  # connects whenever /tmp/go appears.
  corral_rt_run "$c" "$tmp/rootfs" app=netfs -- /usr/bin/bash -c \
    'while :; do sleep 0.2; if [[ -e /tmp/go ]]; then rm -f /tmp/go; { : 3<>/dev/tcp/127.0.0.1/1; } 2>>/tmp/out; echo done >>/tmp/out; fi; done'
  await_listed "$c"
  expect_cli 0 "namespace/$CORRAL_RT_NS annotated" annotate ns "$CORRAL_RT_NS" \
    kubearmor-network-posture=block --overwrite
  net_policy "$tmp/p.yaml" tcp-from-bash netfs Allow tcp /usr/bin/bash
  expect_cli 0 "KubeArmorPolicy/tcp-from-bash configured" apply -f "$tmp/p.yaml"
  [[ $(workload_field "$c" sections) == *"network=enforced"* ]] || fail "sections of $c"

  m=$(alert_count "$c")
  # bash's socket passes (the connection is then refused: nothing listens on port 1).
  expect_run 1 "connect: Connection refused" "$c" bash -c ': 3<>/dev/tcp/127.0.0.1/1'
  expect_run 1 "connect: Connection refused" "$c" bash -c '( : 3<>/dev/tcp/127.0.0.1/1 )'
  # Another program is denied, and so is bash's socket for anything but tcp.
  expect_run 1 "$(denied_socket tcp)" "$c" net_probe tcp
  expect_net_alert "$c" "$m" "$tcp4" PolicyName=DefaultPosture Action=Block \
    Result="Permission denied" ProcessName=/usr/bin/net_probe
  expect_run 1 "$(denied_socket udp)" "$c" net_probe udp
  # Attacker: a copy of bash is not bash (another file), nor is bash exec'ing another program.
  expect_run 1 "socket: Operation not permitted" "$c" bash -c 'cp /usr/bin/bash /tmp/b && /tmp/b -c ": 3<>/dev/tcp/127.0.0.1/1"'
  expect_run 1 "$(denied_socket tcp)" "$c" bash -c 'exec net_probe tcp'
  # The bash that ran before the policy is known as bash (seeded from /proc/<pid>/exe).
  run_in "$c" bash -c 'touch /tmp/go'
  corral_rt_wait_for 5 bash -c "[[ \$(cat '$tmp/rootfs/tmp/out' 2>/dev/null) == *done* ]]" ||
    fail "the init bash did not try"
  [[ $(<"$tmp/rootfs/tmp/out") == *"Connection refused"* ]] ||
    fail "the bash that ran before the policy could not make its socket: $(<"$tmp/rootfs/tmp/out")"
  pass "tcp Allow fromSource /usr/bin/bash under posture block: bash (also forked, also from" \
    "before the policy) connects; net_probe, a copy of bash, bash exec'ing another program are denied"
}

# ---- posture audit, Audit rules, dry run --------------------------------------------------------
case_net_posture_dryrun() {
  net_setup
  local c=netau-$$ m
  corral_rt_run "$c" "$tmp/rootfs" app=netau -- sleep 1000000
  await_listed "$c"
  net_policy "$tmp/p.yaml" allow-tcp netau Allow tcp
  expect_cli 0 "configured" apply -f "$tmp/p.yaml"
  m=$(alert_count "$c")
  expect_run 0 ok "$c" net_probe udp # default network posture: audit
  expect_net_alert "$c" "$m" "$udp4" PolicyName=DefaultPosture Action=Audit Result=Passed
  expect_run 0 ok "$c" net_probe tcp
  expect_no_alert "$c" "$m" "$tcp4"
  pass "posture audit: an unlisted protocol passes and alerts (DefaultPosture/Audit); listed is silent"

  net_policy "$tmp/a.yaml" audit-raw netau Audit raw
  expect_cli 0 "configured" apply -f "$tmp/a.yaml"
  m=$(alert_count "$c")
  expect_run 0 ok "$c" net_probe raw-udp
  expect_net_alert "$c" "$m" "$raw_udp" PolicyName=audit-raw Action=Audit Result=Passed
  pass "Audit rule: passes and alerts"

  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-network-posture=block --overwrite
  m=$(alert_count "$c")
  expect_run 1 "$(denied_socket udp)" "$c" net_probe udp
  expect_net_alert "$c" "$m" "$udp4" PolicyName=DefaultPosture Action=Block Result="Permission denied"
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-policy=audited --overwrite
  m=$(alert_count "$c")
  expect_run 0 ok "$c" net_probe udp
  expect_net_alert "$c" "$m" "$udp4" PolicyName=DefaultPosture Action="Audit (Block)" Result=Passed
  pass "posture block denies; dry run (kubearmor-policy=audited) passes with Audit (Block)"
}

# ---- agent SIGKILL + restart: no window, no duplicate ---------------------------------------
case_net_restart() {
  net_setup
  local c=netrs-$$ m loop
  corral_rt_run "$c" "$tmp/rootfs" app=netrs -- sleep 1000000
  await_listed "$c"
  net_policy "$tmp/p.yaml" block-tcp netrs Block tcp
  net_policy "$tmp/b.yaml" bash-no-udp netrs Block udp /usr/bin/bash
  expect_cli 0 "configured" apply -f "$tmp/p.yaml"
  expect_cli 0 "configured" apply -f "$tmp/b.yaml"
  expect_run 1 "$(denied_socket tcp)" "$c" net_probe tcp
  expect_run 1 "socket: Operation not permitted" "$c" bash -c ': >/dev/udp/127.0.0.1/9'
  expect_run 0 ok "$c" net_probe udp
  # Sockets tried every millisecond while the agent is killed and restarted.
  corral_rt_exec "$c" net_probe loop tcp 8 >"$tmp/loop.out" 2>&1 &
  loop=$!
  bg_pids+=("$loop")
  sleep 1
  m=$(alert_count "$c")
  corral_rt_stop_corrald KILL
  sleep 1
  [[ $(sock_programs "$c") == 1 ]] || fail "the socket program left with the agent"
  # Denied while no agent runs: still denied, and alerted once the agent is back.
  expect_run 1 "socket: Operation not permitted" "$c" bash -c ': >/dev/udp/127.0.0.1/9'
  corral_rt_start_corrald "$tmp/agent"
  wait "$loop" || fail "a tcp socket was made while the agent restarted: $(<"$tmp/loop.out")"
  [[ $(<"$tmp/loop.out") =~ ^passed\ 0\ of\ ([0-9]+) && ${BASH_REMATCH[1]} -gt 1000 ]] ||
    fail "the loop did not run: $(<"$tmp/loop.out")"
  [[ $(sock_programs "$c") == 1 ]] || fail "$(sock_programs "$c") socket programs after the restart"
  expect_net_alert "$c" "$m" "$udp4" PolicyName=bash-no-udp Action=Block Result="Permission denied"
  grep -q "took over the socket program .*and its tracepoints from the fd holder" \
    "$tmp/agent/corrald.log" || fail "the agent did not adopt: $(grep cgroup-bpf "$tmp/agent/corrald.log")"
  # fromSource across the restart: bash's udp still denied, other programs' not.
  expect_run 1 "socket: Operation not permitted" "$c" bash -c ': >/dev/udp/127.0.0.1/9'
  expect_run 0 ok "$c" net_probe udp
  m=$(alert_count "$c")
  expect_run 1 "$(denied_socket tcp)" "$c" net_probe tcp
  expect_net_alert "$c" "$m" "$tcp4" PolicyName=block-tcp Action=Block
  pass "agent SIGKILL + restart: no tcp socket in $(sed 's/passed 0 of //' "$tmp/loop.out") tries;" \
    "one program on the cgroup, adopted with its tracepoints (fromSource holds); alerts flow"

  # The adopted tables follow policy changes, and a stop on purpose ends enforcement.
  net_policy "$tmp/q.yaml" block-udp netrs Block udp
  expect_cli 0 "configured" apply -f "$tmp/q.yaml"
  expect_cli 0 "deleted" delete -f "$tmp/b.yaml"
  expect_run 1 "$(denied_socket udp)" "$c" net_probe udp
  expect_cli 0 "deleted" delete -f "$tmp/p.yaml"
  expect_run 0 ok "$c" net_probe tcp
  corral_rt_stop_corrald TERM
  [[ $(sock_programs "$c") == 0 ]] || fail "the socket program stays after the agent stopped"
  expect_run 0 ok "$c" net_probe udp
  pass "after the restart policy changes apply; SIGTERM detaches"
}

#!/usr/bin/env bash
# Whole-process benchmarks of enforcement with real containers (issue #3's figures). Each
# figure is a ratio against a baseline measured in the same run on the same container with
# the agent stopped, alternating, median of CORRAL_BENCH_RUNS (default 5) runs.
#
#   sudo bash bench/runtime_bench.sh            # all figures
#   sudo bash bench/runtime_bench.sh exec open  # some of: exec open cold apply rss start window
#                                               # net scale bigpolicy (not in the default set)
#   (net: CORRAL_BENCH_NET_PROBE, default $CORRAL_RT_BIN/net_probe)
#
# Not a test: it asserts nothing about durations; it prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/runtime/lib.sh
trap corral_rt_cleanup EXIT

runs=${CORRAL_BENCH_RUNS:-5}
loops=${CORRAL_BENCH_LOOPS:-2000}
# An open costs ~5 us: 2000 of them (10 ms) are too few to tell 5% from noise.
open_loops=${CORRAL_BENCH_OPEN_LOOPS:-20000}
what=("$@")
((${#what[@]})) || what=(exec open cold apply start rss window)
corral=("$CORRAL_RT_BIN/corral")

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
# In-container timing with bash's own clock, so that ctr's overhead is not measured.
in_bash() { corral_rt_exec "${bench_ctr:-bench}" bash -c "s=\$EPOCHREALTIME; $1; e=\$EPOCHREALTIME; echo \$(( (\${e/./}-\${s/./}) ))"; }

corral_rt_mktemp dir
corral_rt_start_containerd "$dir/containerd"
corral_rt_build_rootfs "$dir/rootfs" bash /usr/bin/true cat sleep chroot
mkdir -p "$dir/rootfs/opt/cold"
for ((i = 0; i < 200; i++)); do cp "$dir/rootfs/usr/bin/true" "$dir/rootfs/opt/cold/true$i"; done
corral_rt_run bench "$dir/rootfs" app=bench -- sleep 1000000

cat >"$dir/policy.yaml" <<'YAML'
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: bench-allow
  namespace: corral-test
spec:
  selector:
    matchLabels:
      app: bench
  process:
    matchPaths:
    - path: /usr/bin/bash
    - path: /usr/bin/true
    - path: /usr/bin/sleep
    matchDirectories:
    - dir: /opt/cold/
  file:
    matchDirectories:
    - dir: /
      recursive: true
  action: Allow
YAML

first=1
# Starts the agent; the first time, applies the policy and the block posture (later starts
# restore both from the agent's state). Returns once the container is enforced.
agent_up() {
  corral_rt_stop_corrald TERM # one agent at a time
  # CORRAL_BENCH_AGENT_FLAGS: more agent flags, e.g. "--monitor off" to take the system
  # monitor's share out of a figure.
  # shellcheck disable=SC2086 # word splitting wanted
  corral_rt_start_corrald "$dir/agent" "$@" ${CORRAL_BENCH_AGENT_FLAGS:-}
  if ((first)); then
    "${corral[@]}" annotate ns corral-test kubearmor-file-posture=block >/dev/null
    "${corral[@]}" apply -f "$dir/policy.yaml" >/dev/null
    first=0
  fi
  corral_rt_wait_for 10 bash -c "'${corral[0]}' get workloads | grep -q fanotify" ||
    corral_rt_die "the bench container is not enforced"
}
agent_down() { corral_rt_stop_corrald TERM; }
setup_agent() {
  agent_up "$@"
  if [[ ${bench_ctr:-} == netbench ]]; then
    corral_rt_wait_for 10 bash -c "'${corral[0]}' get workloads -o wide | grep netbench | grep -q network=enforced" ||
      corral_rt_die "the netbench container's network rules are not enforced"
  fi
}

# alternate LABEL CMD: median time of CMD without and with enforcement, and their ratio.
alternate() {
  local label=$1 cmd=$2 base=() enf=() r
  for ((r = 0; r < runs; r++)); do
    agent_down
    # net: the baseline is warmed too (the agent's stop leaves the machine busy a moment).
    [[ ${bench_ctr:-} == netbench ]] && in_bash "$cmd" >/dev/null
    base+=("$(in_bash "$cmd")")
    setup_agent
    in_bash "$cmd" >/dev/null # warm: the first round trips fill the kernel cache
    enf+=("$(in_bash "$cmd")")
  done
  local b e
  b=$(printf '%s\n' "${base[@]}" | median)
  e=$(printf '%s\n' "${enf[@]}" | median)
  printf '%-46s baseline %9.0f us  enforced %9.0f us  ratio %s\n' "$label" "$b" "$e" "$(ratio "$e" "$b")"
}

# alternate_cpu LABEL CMD: like alternate, with the CPU time (user + system) CMD's processes
# used instead of the wall time: on a loaded machine (other builds) the wall time is mostly
# the scheduler's; the socket program runs in the caller's system time.
in_cpu() {
  corral_rt_exec "${bench_ctr:-bench}" bash -c "$1; times" | tail -n 1 |
    awk '{t = 0; for (i = 1; i <= 2; i++) {split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2]} printf "%.0f\n", t * 1e6}'
}
alternate_cpu() {
  local label=$1 cmd=$2 base=() enf=() r b e
  for ((r = 0; r < runs; r++)); do
    agent_down
    in_cpu "$cmd" >/dev/null
    base+=("$(in_cpu "$cmd")")
    setup_agent
    in_cpu "$cmd" >/dev/null
    enf+=("$(in_cpu "$cmd")")
  done
  b=$(printf '%s\n' "${base[@]}" | median)
  e=$(printf '%s\n' "${enf[@]}" | median)
  printf '%-46s baseline %9.0f us  enforced %9.0f us  ratio %s (CPU)\n' "$label" "$b" "$e" "$(ratio "$e" "$b")"
}
# The agent is SIGKILLed and restarted at once (as systemd's Restart=always would) while a
# loop in the container tries a denied exec again and again; any success is a hole.
window_after_kill() {
  local label=$1
  shift
  corral_rt_stop_corrald TERM
  agent_up "$@"
  corral_rt_exec bench bash -c 'end=$((${EPOCHREALTIME/./}+4000000)); ok=0; no=0; first=; last=;
    while ((${EPOCHREALTIME/./} < end)); do
      if /usr/sbin/chroot --version >/dev/null 2>&1; then ok=$((ok+1)); t=${EPOCHREALTIME/./}; first=${first:-$t}; last=$t; else no=$((no+1)); fi
    done; echo "$ok $no $first $last" >/tmp/window' &
  local loop=$!
  sleep 1
  local killed back ok no t_first t_last
  killed=$(date +%s%N)
  corral_rt_stop_corrald KILL
  agent_up "$@"
  back=$(date +%s%N)
  wait "$loop"
  read -r ok no t_first t_last < <(corral_rt_exec bench bash -c 'read -r l </tmp/window; echo $l')
  printf '%-46s %s us down, %d execs passed unenforced, %d denied; %s\n' \
    "SIGKILL + restart, $label" $(((back - killed) / 1000)) "$ok" "$no" \
    "$([[ $ok -gt 0 ]] && echo "unenforced window $((t_last - t_first)) us" || echo "no unenforced window")"
}

for w in "${what[@]}"; do
  case $w in
  exec) alternate "exec loop: $loops x /usr/bin/true" "for ((i=0;i<$loops;i++)); do /usr/bin/true; done" ;;
  open) alternate "open loop: $open_loops x open(/etc/passwd)" "for ((i=0;i<$open_loops;i++)); do : </etc/passwd; done" ;;
  cold)
    # 200 distinct binaries, each exec'd once right after enforcement starts: every one is a
    # round trip to the agent (nothing cached yet).
    base=() enf=()
    for ((r = 0; r < runs; r++)); do
      agent_down
      base+=("$(in_bash 'for f in /opt/cold/*; do $f; done')")
      setup_agent
      enf+=("$(in_bash 'for f in /opt/cold/*; do $f; done')")
    done
    b=$(printf '%s\n' "${base[@]}" | median)
    e=$(printf '%s\n' "${enf[@]}" | median)
    printf '%-46s %.1f us per exec (baseline %.1f us, enforced %.1f us)\n' \
      "first exec of a new binary (cold, 200 binaries)" "$(awk -v a="$e" -v b="$b" 'BEGIN{print (a-b)/200}')" \
      "$(awk -v b="$b" 'BEGIN{print b/200}')" "$(awk -v a="$e" 'BEGIN{print a/200}')"
    ;;
  apply)
    # From `corral apply` starting to its return, the rules are in the kernel (the agent
    # places the marks before it answers); then the denied exec is checked right away.
    setup_agent
    times=()
    for ((r = 0; r < runs; r++)); do
      sed "s/bench-allow/bench-allow-$r/" "$dir/policy.yaml" >"$dir/p$r.yaml"
      s=$(date +%s%N)
      "${corral[@]}" apply -f "$dir/p$r.yaml" >/dev/null
      e=$(date +%s%N)
      times+=($(((e - s) / 1000)))
      if corral_rt_exec bench /usr/sbin/chroot --version >/dev/null 2>&1; then
        echo "apply: chroot was NOT denied right after apply returned" >&2
      fi
    done
    printf '%-46s %s us (median of %d)\n' "corral apply -> enforced in the kernel" \
      "$(printf '%s\n' "${times[@]}" | median)" "$runs"
    ;;
  start)
    # Containers whose first command execs a denied binary at once: how often is the policy
    # in the kernel before that first exec (marks placed on containerd's /tasks/create)?
    setup_agent
    n=${CORRAL_BENCH_STARTS:-20} denied=0
    for ((i = 0; i < n; i++)); do
      corral_rt_run "start$i-$$" "$dir/rootfs" app=bench -- bash -c '/usr/sbin/chroot --version >/dev/null 2>&1; echo $? >/tmp/first; sleep 100000'
      corral_rt_wait_for 5 corral_rt_exec "start$i-$$" bash -c 'read -r x </tmp/first'
      rc=$(corral_rt_exec "start$i-$$" bash -c 'read -r x </tmp/first; echo $x')
      [[ $rc == 126 ]] && denied=$((denied + 1))
      corral_rt_kill "start$i-$$"
    done
    printf '%-46s %d of %d containers\n' "first exec denied (policy applied before start)" "$denied" "$n"
    ;;
  rss)
    setup_agent
    n=${CORRAL_BENCH_CONTAINERS:-50}
    for ((i = 0; i < n; i++)); do corral_rt_run "rss$i-$$" "$dir/rootfs" app=bench -- sleep 1000000; done
    corral_rt_wait_for 30 bash -c "test \$('${corral[0]}' get workloads | grep -c fanotify) -ge $n"
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$CORRAL_RT_CORRALD_PID/status")
    printf '%-46s %d KiB (%s MiB) with %s enforced containers\n' "agent RSS" "$rss" \
      "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')" "$("${corral[@]}" get status -o json | jq .enforced)"
    for ((i = 0; i < n; i++)); do corral_rt_kill "rss$i-$$"; done
    ;;
  scale)
    # Many enforced containers (issue 13): RSS at half and all of them, how long until every
    # one is enforced, `apply` of a changed policy to all, and the exec loop ratio then.
    n=${CORRAL_BENCH_SCALE:-500}
    setup_agent
    enforced() { "${corral[@]}" get status -o json | jq -r '.enforced // 0'; }
    all_enforced() { (($(enforced) >= $1)); }
    rss_line() {
      local rss
      rss=$(awk '/VmRSS/ {print $2}' "/proc/$CORRAL_RT_CORRALD_PID/status")
      printf '%-46s %.1f MiB with %s enforced containers\n' "agent RSS" \
        "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$(enforced)"
    }
    killed=0 # by the start race (README, known gaps): the exec backstop kills an entrypoint
    for half in 1 2; do
      s=$(date +%s%N)
      CORRAL_RT_STOPPED=0
      CORRAL_RT_STOPPED_OK=1 corral_rt_run_many "scale$half-" $((n / 2)) "$dir/rootfs" app=bench -- sleep 1000000
      killed=$((killed + CORRAL_RT_STOPPED))
      corral_rt_wait_for 120 all_enforced $((half * n / 2 + 1 - killed)) ||
        corral_rt_die "only $(enforced) of $((half * n / 2 + 1 - killed)) containers are enforced"
      printf '%-46s %.1f s (containerd start included); %d killed at start\n' \
        "start $((n / 2)) containers -> enforced" \
        "$(awk -v a="$s" -v b="$(date +%s%N)" 'BEGIN{print (b-a)/1e9}')" "$CORRAL_RT_STOPPED"
      rss_line
    done
    times=()
    for ((r = 0; r < runs; r++)); do
      sed "s/bench-allow/bench-scale-$r/; s|/usr/bin/sleep|/usr/bin/sleep\n    - path: /opt/cold/true$r|" \
        "$dir/policy.yaml" >"$dir/s$r.yaml"
      s=$(date +%s%N)
      "${corral[@]}" apply -f "$dir/s$r.yaml" >/dev/null
      times+=($((($(date +%s%N) - s) / 1000)))
    done
    printf '%-46s %s us (median of %d)\n' "corral apply -> $((n + 1 - killed)) workloads in the kernel" \
      "$(printf '%s\n' "${times[@]}" | median)" "$runs"
    rss_line
    alternate "exec loop, $((n + 1 - killed)) enforced: $loops x true" "for ((i=0;i<$loops;i++)); do /usr/bin/true; done"
    corral_rt_kill_many scale
    ;;
  bigpolicy)
    # A 100,000-rule policy (bench/bigpolicy.awk; CORRAL_BENCH_RULES) selecting the enforced
    # container: `corral apply` wall time (parse, validate, store, compile, held-rules file,
    # group build), and the agent's RSS before, after apply and after `corral delete`.
    setup_agent
    rules=${CORRAL_BENCH_RULES:-100000}
    awk -v rules="$rules" -v name=bigpolicy -v label=bench -f bench/bigpolicy.awk >"$dir/big.yaml"
    rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$CORRAL_RT_CORRALD_PID/status"; }
    mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
    sleep 1
    before=$(rss_kib)
    times=() dtimes=() applied=() deleted=()
    for ((r = 0; r < runs; r++)); do
      s=$(date +%s%N)
      if ! "${corral[@]}" apply -f "$dir/big.yaml" >"$dir/apply.out" 2>&1; then
        echo "bigpolicy: apply failed: $(tail -c 300 "$dir/apply.out")" >&2
        break
      fi
      e=$(date +%s%N)
      times+=($(((e - s) / 1000)))
      if (((e - s) > 3000000000)); then
        echo "bigpolicy: apply $r took $(((e - s) / 1000000)) ms; the agent's log ends:" >&2
        tail -n 5 "$CORRAL_RT_CORRALD_DIR/corrald.log" >&2
      fi
      corral_rt_exec bench /usr/bin/true || echo "bigpolicy: an allowed exec failed under the policy" >&2
      if corral_rt_exec bench /usr/sbin/chroot --version >/dev/null 2>&1; then
        echo "bigpolicy: chroot was NOT denied under the policy" >&2
      fi
      applied+=("$(rss_kib)")
      s=$(date +%s%N)
      "${corral[@]}" delete KubeArmorPolicy bigpolicy -n corral-test >/dev/null
      e=$(date +%s%N)
      dtimes+=($(((e - s) / 1000)))
      sleep 0.5
      deleted+=("$(rss_kib)")
    done
    if ((${#times[@]})); then
      a=$(printf '%s
' "${applied[@]}" | median)
      d=$(printf '%s
' "${deleted[@]}" | median)
      printf '%-46s %s ms (median of %d; delete %s ms)
' "corral apply of $rules rules -> enforced"         "$(($(printf '%s
' "${times[@]}" | median | cut -d. -f1) / 1000))" "${#times[@]}"         "$(($(printf '%s
' "${dtimes[@]}" | median | cut -d. -f1) / 1000))"
      printf '%-46s before %s MiB, applied %s MiB (x%s), deleted %s MiB (x%s); peak %s MiB
'         "agent RSS with $rules rules" "$(mib "$before")" "$(mib "$a")" "$(ratio "$a" "$before")"         "$(mib "$d")" "$(ratio "$d" "$before")"         "$(mib "$(awk '/VmHWM/ {print $2}' "/proc/$CORRAL_RT_CORRALD_PID/status")")"
      echo "  per run: apply us ${times[*]}; RSS KiB applied ${applied[*]}; deleted ${deleted[*]}"
    fi
    ;;
  window)
    window_after_kill "with the fd holder"
    window_after_kill "without the fd holder" --fd-hold-seconds 0
    ;;
  net)
    # Issue 9: a container whose only rules are network rules (cgroup/sock_create program on
    # its cgroup, exec/fork/exit tracepoints for fromSource) against the agent stopped (the
    # program detached). Each connect and each datagram uses a new socket, so every one runs
    # the socket program; the exec loop measures the tracepoints.
    probe=$(realpath "${CORRAL_BENCH_NET_PROBE:-$CORRAL_RT_BIN/net_probe}")
    [[ -x $probe ]] || corral_rt_die "net: $probe is missing (build the net_probe target)"
    net_loops=${CORRAL_BENCH_NET_LOOPS:-20000}
    corral_rt_build_rootfs "$dir/netrootfs" bash /usr/bin/true sleep "$probe"
    cp "$probe" "$dir/netrootfs/usr/bin/net_probe"
    corral_rt_run netbench "$dir/netrootfs" app=netbench -- sleep 1000000
    cat >"$dir/net-policy.yaml" <<'YAML'
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: bench-net
  namespace: corral-test
spec:
  selector:
    matchLabels:
      app: netbench
  network:
    matchProtocols:
    - protocol: raw
    - protocol: icmp
    - protocol: sctp
  action: Block
YAML
    setup_agent
    "${corral[@]}" apply -f "$dir/net-policy.yaml" >/dev/null
    corral_rt_wait_for 10 bash -c "'${corral[0]}' get workloads -o wide | grep netbench | grep -q network=enforced" ||
      corral_rt_die "the netbench container's network rules are not enforced"
    bench_ctr=netbench
    alternate "tcp connect: $net_loops x (new socket each)" "net_probe bench-tcp $net_loops >/dev/null"
    alternate "udp send: $net_loops x (new socket each)" "net_probe bench-udp $net_loops >/dev/null"
    alternate "udp send: $((net_loops * 5)) x (one socket)" "net_probe bench-udp1 $((net_loops * 5)) >/dev/null"
    alternate "exec loop: $loops x /usr/bin/true (net rules)" "for ((i=0;i<$loops;i++)); do /usr/bin/true; done"
    alternate_cpu "tcp connect: $net_loops x (new socket each)" "net_probe bench-tcp $net_loops >/dev/null"
    alternate_cpu "udp send: $net_loops x (new socket each)" "net_probe bench-udp $net_loops >/dev/null"
    alternate_cpu "udp send: $((net_loops * 5)) x (one socket)" "net_probe bench-udp1 $((net_loops * 5)) >/dev/null"
    alternate_cpu "exec loop: $loops x /usr/bin/true (net rules)" "for ((i=0;i<$loops;i++)); do /usr/bin/true; done"
    # The programs' own cost per run, free of the machine's load: the kernel's BPF run-time
    # statistics (BPF_ENABLE_STATS, on only while this holds its fd).
    setup_agent
    python3 - "$CORRAL_RT_ADDRESS" "$CORRAL_RT_NS" "$net_loops" "$loops" <<'PY'
import ctypes, json, os, subprocess, sys
address, ns, n, loops = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
stats = ctypes.c_uint32(0)  # BPF_STATS_RUN_TIME
fd = ctypes.CDLL(None, use_errno=True).syscall(321, 32, ctypes.byref(stats), 4)  # bpf(2), BPF_ENABLE_STATS
if fd < 0:
    sys.exit("BPF_ENABLE_STATS: errno %d" % ctypes.get_errno())
for i, cmd in enumerate((["net_probe", "bench-tcp", n], ["net_probe", "bench-udp", n],
                         ["bash", "-c", "for ((i=0;i<%d;i++)); do /usr/bin/true; done" % loops])):
    subprocess.run(["ctr", "--address", address, "-n", ns, "task", "exec", "--exec-id",
                    "stats-%d-%d" % (os.getpid(), i), "netbench"] + cmd, capture_output=True)
for p in json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                                   text=True).stdout):
    if p.get("name", "") in ("corral_sock", "corral_net_exec", "corral_net_fork",
                             "corral_net_exit") and p.get("run_cnt"):
        print("%-46s %9d runs, %6.0f ns each" % ("BPF program " + p["name"], p["run_cnt"],
                                                 p["run_time_ns"] / p["run_cnt"]))
os.close(fd)
PY
    bench_ctr=
    ;;
  *) echo "unknown figure $w" >&2 ;;
  esac
done

#!/usr/bin/env bash
# The system monitor's figures (issue 10), with real containers and the real agent:
#
#   sudo bash bench/monitor_bench.sh            # all: exec pipeline latency
#   sudo bash bench/monitor_bench.sh exec       # some of them
#
# exec:     an exec loop in a container, the agent running with the monitor on (and the
#           workload's process visibility logs on) against the agent with --monitor off,
#           alternating, median of CORRAL_BENCH_RUNS (default 5) runs: a ratio.
# pipeline: a container opening a file in a tight loop with kubearmor-visibility file, for
#           CORRAL_BENCH_SECONDS (default 5): monitor events delivered per second and dropped;
#           meanwhile another container's denied execs (CORRAL_BENCH_DENIALS, default 200):
#           every one must be in `corral logs` (zero lost alerts).
# latency:  an exec in a container with process visibility → its ContainerLog read by
#           `corral logs --follow` (CORRAL_BENCH_SAMPLES, default 50): median and p99.
#
# Not a test: it asserts nothing about durations; it prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/runtime/lib.sh
bg=()
cleanup() {
  local p
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  corral_rt_cleanup
}
trap cleanup EXIT

runs=${CORRAL_BENCH_RUNS:-5}
loops=${CORRAL_BENCH_LOOPS:-2000}
what=("$@")
((${#what[@]})) || what=(exec pipeline latency)
corral=("$CORRAL_RT_BIN/corral")

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
p99() { sort -g | awk '{v[NR]=$1} END {i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; print v[i]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
in_bash() { corral_rt_exec "$1" bash -c "s=\$EPOCHREALTIME; $2; e=\$EPOCHREALTIME; echo \$(( (\${e/./}-\${s/./}) ))"; }
# status_counter NAME: a counter of `corral get status -o json`.
status_counter() { "${corral[@]}" get status -o json | jq -r --arg k "$1" '.counters[$k] // ""'; }
# monitor_kind FIELD KIND: from "fork 1, exec 2, ..." the number of KIND.
monitor_kind() { status_counter "$1" | tr ',' '\n' | awk -v k="$2" '$1 == k {print $2}'; }

dir=
corral_rt_mktemp dir
corral_rt_start_containerd "$dir/containerd"
open_loop=$(realpath "$CORRAL_RT_BIN/open_loop")
[[ -x $open_loop ]] || corral_rt_die "$open_loop is missing (build the open_loop target)"
corral_rt_build_rootfs "$dir/rootfs" bash /usr/bin/true cat sleep chroot "$open_loop"
cp "$open_loop" "$dir/rootfs/usr/bin/open_loop"
corral_rt_run mon "$dir/rootfs" app=mon -- sleep 1000000

agent() { # agent FLAGS...: (re)starts the agent, returns once the container is listed
  corral_rt_stop_corrald TERM
  corral_rt_start_corrald "$dir/agent" "$@"
  corral_rt_wait_for 10 bash -c "'${corral[0]}' get workloads | grep -q mon" ||
    corral_rt_die "the container is not listed"
}

for w in "${what[@]}"; do
  case $w in
  exec)
    cmd="for ((i=0;i<$loops;i++)); do /usr/bin/true; done"
    off=() on=() vis=()
    for ((r = 0; r < runs; r++)); do
      agent --monitor off
      in_bash mon "$cmd" >/dev/null
      off+=("$(in_bash mon "$cmd")")
      agent --monitor auto
      in_bash mon "$cmd" >/dev/null
      on+=("$(in_bash mon "$cmd")")
      agent --monitor auto --visibility process
      in_bash mon "$cmd" >/dev/null
      vis+=("$(in_bash mon "$cmd")")
    done
    b=$(printf '%s\n' "${off[@]}" | median)
    e=$(printf '%s\n' "${on[@]}" | median)
    v=$(printf '%s\n' "${vis[@]}" | median)
    printf '%-52s monitor off %9.0f us  on %9.0f us  ratio %s\n' \
      "exec loop: $loops x /usr/bin/true" "$b" "$e" "$(ratio "$e" "$b")"
    printf '%-52s monitor off %9.0f us  on %9.0f us  ratio %s\n' \
      "exec loop: $loops x /usr/bin/true, process logs" "$b" "$v" "$(ratio "$v" "$b")"
    ;;
  pipeline)
    seconds=${CORRAL_BENCH_SECONDS:-5}
    denials=${CORRAL_BENCH_DENIALS:-200}
    corral_rt_run denied "$dir/rootfs" app=denied -- sleep 1000000
    agent --monitor auto
    "${corral[@]}" annotate ns corral-test kubearmor-visibility=process,file --overwrite >/dev/null
    cat >"$dir/deny.yaml" <<'YAML'
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: deny-chroot
  namespace: corral-test
spec:
  selector:
    matchLabels:
      app: denied
  process:
    matchPaths:
    - path: /usr/sbin/chroot
  action: Block
YAML
    "${corral[@]}" apply -f "$dir/deny.yaml" >/dev/null
    corral_rt_wait_for 10 bash -c "'${corral[0]}' get workloads | grep denied | grep -q fanotify" ||
      corral_rt_die "the denied container is not enforced"
    files0=$(monitor_kind monitor_events file)
    drop0=$(monitor_kind monitor_dropped file)
    [[ -n $files0 ]] || corral_rt_die "the agent's monitor reports no file events (status: $(status_counter monitor_events))"
    alerts0=$("${corral[@]}" logs --json --container denied | wc -l)
    # An opener in a tight loop of opens of one file for the window (bench/open_loop.cpp).
    corral_rt_exec mon /usr/bin/open_loop /etc/passwd "$seconds" >"$dir/opens" &
    bg+=($!)
    corral_rt_exec denied bash -c "for ((i=0;i<$denials;i++)); do /usr/sbin/chroot 2>/dev/null; done; true"
    wait "${bg[@]}" 2>/dev/null || true
    bg=()
    sleep 1 # the ring buffer's last events
    files=$(($(monitor_kind monitor_events file) - files0))
    dropped=$(($(monitor_kind monitor_dropped file) - drop0))
    alerts=$(($("${corral[@]}" logs --json --container denied | wc -l) - alerts0))
    logs=$("${corral[@]}" get status -o json | jq -r '.logs')
    opens=$(cat "$dir/opens")
    awk -v n="$files" -v o="$opens" -v d="$dropped" -v s="$seconds" -v a="$alerts" -v want="$denials" -v l="$logs" \
      'BEGIN {printf "monitor pipeline: %d opens, %d file events in %d s = %.0f events/s delivered, %d dropped; %d visibility logs published; alerts %d of %d denied execs\n", o, n, s, n / s, d, l, a, want}'
    "${corral[@]}" annotate ns corral-test kubearmor-visibility- >/dev/null
    ;;
  latency)
    samples=${CORRAL_BENCH_SAMPLES:-50}
    agent --monitor auto --visibility process
    "${corral[@]}" logs --follow --json --logFilter system --container mon |
      while IFS= read -r line; do echo "$EPOCHREALTIME $line"; done >"$dir/follow.out" &
    bg+=($!)
    sleep 1
    for ((i = 0; i < samples; i++)); do
      corral_rt_exec mon bash -c "echo \$EPOCHREALTIME; exec /usr/bin/true marker-$i" >>"$dir/sent.out"
      sleep 0.05
    done
    sleep 1
    lat=()
    mapfile -t sent <"$dir/sent.out"
    for ((i = 0; i < samples; i++)); do
      got=$(grep -F "\"Resource\":\"/usr/bin/true marker-$i\"" "$dir/follow.out" | head -n 1 | cut -d' ' -f1)
      [[ -n $got ]] || { echo "exec $i: no log" >&2; continue; }
      lat+=("$(awk -v a="$got" -v b="${sent[$i]}" 'BEGIN {printf "%.0f", (a - b) * 1e6}')")
    done
    printf 'exec -> corral logs --follow: %d of %d seen, median %s us, p99 %s us\n' "${#lat[@]}" "$samples" \
      "$(printf '%s\n' "${lat[@]}" | median)" "$(printf '%s\n' "${lat[@]}" | p99)"
    ;;
  *) corral_rt_die "unknown figure $w (exec, pipeline, latency)" ;;
  esac
done

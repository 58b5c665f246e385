#!/usr/bin/env bash
# Events on the network (issue 11): figures with real containers, the real agent and relay.
#
#   sudo bash bench/relay_bench.sh                 # both
#   sudo bash bench/relay_bench.sh throughput      # one
#
# throughput: a container opens a file an Audit policy names in a tight loop for
#             CORRAL_BENCH_SECONDS (default 5): one alert per open, from the agent through
#             corral-relay to `corral logs --grpc --json`. Alerts/s delivered to the client and
#             how many the agent published that the client never got (the loss).
# slow:       an exec loop in a container with process visibility logs streamed on the agent's
#             --grpc-listen, without a client, against with a client that reads nothing (its
#             output is a pipe nobody reads: the stream stalls), alternating, median of
#             CORRAL_BENCH_RUNS (default 5): the enforcement path's ratio.
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
((${#what[@]})) || what=(throughput slow)
corral=("$CORRAL_RT_BIN/corral")

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
in_bash() { corral_rt_exec "$1" bash -c "s=\$EPOCHREALTIME; $2; e=\$EPOCHREALTIME; echo \$(( (\${e/./}-\${s/./}) ))"; }
port_of() { sed -n 's/.* (port \([0-9]*\)[,)].*/\1/p' "$1" | tail -n 1; }

dir=
corral_rt_mktemp dir
corral_rt_start_containerd "$dir/containerd"
open_loop=$(realpath "$CORRAL_RT_BIN/open_loop")
[[ -x $open_loop ]] || corral_rt_die "$open_loop is missing (build the open_loop target)"
corral_rt_build_rootfs "$dir/rootfs" bash /usr/bin/true sleep "$open_loop"
cp "$open_loop" "$dir/rootfs/usr/bin/open_loop"
corral_rt_run mon "$dir/rootfs" app=mon -- sleep 1000000

agent() { # agent FLAGS...: (re)starts the agent, returns once the container is listed
  corral_rt_stop_corrald TERM
  [[ ! -f $dir/agent/corrald.log ]] || : >"$dir/agent/corrald.log"
  corral_rt_start_corrald "$dir/agent" "$@"
  corral_rt_wait_for 10 bash -c "'${corral[0]}' get workloads | grep -q mon" ||
    corral_rt_die "the container is not listed"
}

for w in "${what[@]}"; do
  case $w in
  throughput)
    seconds=${CORRAL_BENCH_SECONDS:-5}
    agent --grpc-listen 127.0.0.1:0 --monitor off --ring-size 100000
    aport=$(port_of "$dir/agent/corrald.log")
    cat >"$dir/audit.yaml" <<'YAML'
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: audit-passwd
  namespace: corral-test
spec:
  selector:
    matchLabels:
      app: mon
  file:
    matchPaths:
    - path: /etc/passwd
  action: Audit
YAML
    "${corral[@]}" apply -f "$dir/audit.yaml" >/dev/null
    "$CORRAL_RT_BIN/corral-relay" --agent "127.0.0.1:$aport" --listen 127.0.0.1:0 --ring-size 100000 \
      >"$dir/relay.log" 2>&1 &
    bg+=($!)
    corral_rt_wait_for 10 grep -q "(port" "$dir/relay.log" || corral_rt_die "relay: $(cat "$dir/relay.log")"
    rport=$(port_of "$dir/relay.log")
    "${corral[@]}" logs --grpc "127.0.0.1:$rport" --json >"$dir/client.out" 2>"$dir/client.err" &
    bg+=($!)
    sleep 2
    a0=$("${corral[@]}" get status -o json | jq -r '.alerts // 0')
    start=$EPOCHREALTIME
    corral_rt_exec mon /usr/bin/open_loop /etc/passwd "$seconds" >"$dir/opens"
    a1=$("${corral[@]}" get status -o json | jq -r '.alerts // 0')
    published=$((a1 - a0))
    # Until the client has them all, or has had nothing new for 3 s.
    last=-1 same=0 end=$EPOCHREALTIME
    while ((same < 30)); do
      n=$(grep -c '"audit-passwd"' "$dir/client.out" || true)
      ((n >= published)) && { end=$EPOCHREALTIME; break; }
      if ((n == last)); then same=$((same + 1)); else same=0 last=$n end=$EPOCHREALTIME; fi
      sleep 0.1
    done
    got=$(grep -c '"audit-passwd"' "$dir/client.out" || true)
    distinct=$(jq -r 'select(.PolicyName == "audit-passwd") | .HostPID' "$dir/client.out" | wc -l)
    awk -v p="$published" -v g="$got" -v s="$start" -v e="$end" -v o="$(cat "$dir/opens")" \
      'BEGIN {printf "agent -> relay -> corral logs --grpc: %d opens, %d alerts published, %d delivered in %.1f s = %.0f alerts/s, %d lost\n", o, p, g, e - s, g / (e - s), p - g}'
    grep -h "dropped" "$dir/relay.log" "$dir/client.err" | tail -n 3 || true
    kill "${bg[@]}" 2>/dev/null || true
    bg=()
    "${corral[@]}" delete audit-passwd -n corral-test >/dev/null 2>&1 || true
    ;;
  slow)
    cmd="for ((i=0;i<$loops;i++)); do /usr/bin/true; done"
    none=() slow=()
    for ((r = 0; r < runs; r++)); do
      agent --grpc-listen 127.0.0.1:0 --visibility process
      in_bash mon "$cmd" >/dev/null
      none+=("$(in_bash mon "$cmd")")
      agent --grpc-listen 127.0.0.1:0 --visibility process
      port=$(port_of "$dir/agent/corrald.log")
      mkfifo "$dir/stall.$r"
      "${corral[@]}" logs --grpc "127.0.0.1:$port" --logFilter all --json >"$dir/stall.$r" 2>/dev/null &
      bg+=($!)
      exec {stall}<>"$dir/stall.$r" # held open, never read: the client blocks, its stream stalls
      sleep 1
      in_bash mon "$cmd" >/dev/null
      slow+=("$(in_bash mon "$cmd")")
      kill "${bg[@]}" 2>/dev/null || true
      bg=()
      exec {stall}>&-
    done
    b=$(printf '%s\n' "${none[@]}" | median)
    e=$(printf '%s\n' "${slow[@]}" | median)
    printf '%-58s no client %9.0f us  stalled client %9.0f us  ratio %s\n' \
      "exec loop: $loops x /usr/bin/true, process logs streamed" "$b" "$e" "$(ratio "$e" "$b")"
    ;;
  *) corral_rt_die "unknown figure $w (throughput, slow)" ;;
  esac
done

#!/usr/bin/env bash
# Runtime test of the containerd workload source (src/workload/containerd) against a private
# containerd: initial listing, events, exits, a containerd crash + restart, and stop().
# Usage: containerd_source_test.sh PATH/TO/containerd_source_probe
# Exit 77 (ctest SKIP_RETURN_CODE) when the machine cannot run it.
set -euo pipefail

probe=${1:?usage: $0 containerd_source_probe}
skip() {
  echo "SKIP: containerd_source_test: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (it starts containerd and runs containers)"
for b in containerd ctr runc containerd-shim-runc-v2; do
  command -v "$b" >/dev/null || skip "$b is not installed (run scripts/setup.sh)"
done

# shellcheck source=tests/runtime/lib.sh
source "$(dirname "$0")/lib.sh"

probe_pid=
probe_out=
events_pid=
cleanup() {
  local rc=$?
  local p
  for p in $probe_pid $events_pid; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if ((rc != 0)) && [[ -n $probe_out && -f $probe_out ]]; then
    echo "--- probe output ($probe_out) ---" >&2
    cat "$probe_out" >&2
    if [[ -n $CORRAL_RT_CONTAINERD_DIR ]]; then
      echo "--- containerd log, warnings and errors ---" >&2
      grep -v 'level=info' "$CORRAL_RT_CONTAINERD_DIR/containerd.log" | tail -n 30 >&2 || true
    fi
  fi
  corral_rt_cleanup
  exit "$rc"
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { corral_rt_die "$*"; }

# The probe's lines matching an extended regex, and waiting for them.
lines() { grep -E -- "$1" "$probe_out" || true; }
count() { lines "$1" | wc -l; }
await() { # await REGEX [SECONDS] [MIN_COUNT]: prints the MIN_COUNT-th matching line
  local re=$1 timeout=${2:-10} n=${3:-1}
  corral_rt_wait_for "$timeout" _has "$re" "$n" || fail "no line matching /$re/ (x$n) after ${timeout}s"
  lines "$re" | sed -n "${n}p"
}
_has() { (($(count "$1") >= $2)); }
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
ts() { awk '{print $2}' <<<"$1"; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

start_probe() { # start_probe SOCKET OUTFILE
  "$probe" "$1" >"$2" 2>&1 &
  probe_pid=$!
  probe_out=$2
}
stop_probe() { # sets stop_ms to what the probe's stop() took (not in $(...): wait needs a child)
  kill -TERM "$probe_pid"
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$probe_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$probe_pid" 2>/dev/null && fail "the probe did not exit within 5 s of SIGTERM"
  local rc=0
  wait "$probe_pid" || rc=$?
  probe_pid=
  ((rc == 0)) || fail "the probe exited with status $rc"
  stop_ms=$(lines '^STOPPED' | awk '{print $2}')
  [[ -n $stop_ms ]] || fail "the probe printed no STOPPED line"
}

tmp=
corral_rt_mktemp tmp
corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
corral_rt_build_rootfs "$tmp/rootfs" sh sleep date
sock=$CORRAL_RT_ADDRESS
ns=$CORRAL_RT_NS
sfx=$$

# --- 1. containers running before the source starts are listed -----------------------------
a=wl-a-$sfx
b=wl-b-$sfx
corral_rt_run "$a" "$tmp/rootfs" app=alpha tier=web -- sleep 1000
corral_rt_run "$b" "$tmp/rootfs" io.kubernetes.pod.namespace=prod io.kubernetes.pod.name=web-0 \
  io.kubernetes.container.name=nginx app=web -- sleep 1000
pid_a=$(corral_rt_pid "$a")
pid_b=$(corral_rt_pid "$b")

start_probe "$sock" "$tmp/probe.out"
line=$(await "^UPSERT .* id=$a ")
[[ $(field "$line" ns) == "$ns" ]] || fail "$a: namespace $(field "$line" ns), want $ns"
[[ $(field "$line" rtns) == "$ns" ]] || fail "$a: runtime namespace $(field "$line" rtns)"
[[ $(field "$line" name) == "$a" ]] || fail "$a: name $(field "$line" name), want the id"
[[ -z $(field "$line" pod) ]] || fail "$a: pod $(field "$line" pod), want none"
[[ $(field "$line" pid) == "$pid_a" ]] || fail "$a: pid $(field "$line" pid), want $pid_a"
[[ $(field "$line" labels) == "app=alpha,tier=web" ]] || fail "$a: labels $(field "$line" labels)"
[[ $(field "$line" root) == "/proc/$pid_a/root" ]] || fail "$a: root $(field "$line" root)"
[[ $(field "$line" mntns) == "$(stat -L -c %i "/proc/$pid_a/ns/mnt")" ]] || fail "$a: mntns"
[[ $(field "$line" pidns) == "$(stat -L -c %i "/proc/$pid_a/ns/pid")" ]] || fail "$a: pidns"
[[ $(field "$line" mntns) != "$(stat -L -c %i /proc/self/ns/mnt)" ]] || fail "$a: host mntns"
# On cgroup2, a cgroup's id is its directory's inode number (kernfs node id).
cg=$(sed -n 's/^0:://p' "/proc/$pid_a/cgroup")
cg_mount=$(findmnt -t cgroup2 -n -o TARGET | head -n1)
if [[ $cg != / && -n $cg && -n $cg_mount ]]; then
  [[ $(field "$line" cgroup) == "$(stat -c %i "$cg_mount$cg")" ]] ||
    fail "$a: cgroup id $(field "$line" cgroup), want the inode of $cg_mount$cg"
fi
pass "listed $a: labels, namespace, pid $pid_a, namespaces, cgroup id $(field "$line" cgroup)"

line=$(await "^UPSERT .* id=$b ")
[[ $(field "$line" ns) == prod ]] || fail "$b: namespace $(field "$line" ns), want prod"
[[ $(field "$line" pod) == web-0 ]] || fail "$b: pod $(field "$line" pod), want web-0"
[[ $(field "$line" name) == nginx ]] || fail "$b: name $(field "$line" name), want nginx"
[[ $(field "$line" pid) == "$pid_b" ]] || fail "$b: pid $(field "$line" pid), want $pid_b"
pass "listed $b as Kubernetes pod prod/web-0 container nginx"
await '^LOG .* synced with .*: 2 running workloads' >/dev/null

# --- 2. containers started later are reported from events; exits remove them ---------------
# Latency is measured against containerd's own timestamps (`ctr events`) and against the
# moment the container's first program ran (it writes the time into its /tmp).
corral_rt_ctr events >"$tmp/events.out" 2>/dev/null &
events_pid=$!
event_ns() { # event_ns TOPIC CONTAINER: containerd's timestamp of that event, in unix ns
  local stamp
  corral_rt_wait_for 5 grep -q " $1 {\"container_id\":\"$2\"" "$tmp/events.out" || return 0
  stamp=$(grep -m1 " $1 {\"container_id\":\"$2\"" "$tmp/events.out" | awk '{print $1, $2, $3}')
  date -d "$stamp" +%s%N
}
sleep 0.2 # ctr events subscribes
latencies=()
for i in 1 2 3 4 5; do
  c=wl-c$i-$sfx
  t0=$(date +%s%N)
  corral_rt_run "$c" "$tmp/rootfs" app=gamma run="$i" -- \
    sh -c 'date +%s%N >/tmp/started; exec sleep 1000'
  line=$(await "^UPSERT .* id=$c ")
  pid_c=$(corral_rt_pid "$c")
  [[ $(field "$line" pid) == "$pid_c" ]] || fail "$c: pid $(field "$line" pid), want $pid_c"
  [[ $(field "$line" labels) == "app=gamma,run=$i" ]] || fail "$c: labels $(field "$line" labels)"
  corral_rt_wait_for 5 test -s "/proc/$pid_c/root/tmp/started" || fail "$c did not start"
  started=$(cat "/proc/$pid_c/root/tmp/started")
  created=$(event_ns /tasks/create "$c")
  start=$(event_ns /tasks/start "$c")
  [[ -n $created && -n $start ]] || fail "ctr events did not show $c's create and start"
  lat=$(ms_between "$created" "$(ts "$line")")
  latencies+=("$lat")
  echo "latency: $c upsert $lat ms after containerd's /tasks/create;" \
    "$(ms_between "$start" "$(ts "$line")") ms after /tasks/start;" \
    "$(ms_between "$started" "$(ts "$line")") ms after its first program ran;" \
    "$(ms_between "$t0" "$(ts "$line")") ms after 'ctr run' began (negative: before)"
  # Kill the task only: /tasks/exit alone must remove the workload.
  corral_rt_ctr task kill -s SIGKILL "$c"
  await "^REMOVE .* id=$c\$" >/dev/null
  corral_rt_kill "$c"
done
pass "5 containers started after the source reported from events, removed on exit" \
  "(upsert after /tasks/create: ${latencies[*]} ms)"

d=wl-d-$sfx # exits on its own shortly after starting
corral_rt_ctr run -d --rootfs --env PATH=/usr/bin "$tmp/rootfs" "$d" sleep 0.3
CORRAL_RT_CONTAINERS+=("$d")
await "^UPSERT .* id=$d " >/dev/null
await "^REMOVE .* id=$d\$" >/dev/null
corral_rt_kill "$d"
pass "a container that exits by itself is removed"

# --- 3. containerd crashes and restarts: reconnect and resync ----------------------------------
corral_rt_stop_containerd KILL
await '^LOG .*event stream ended' 5 >/dev/null
# While containerd is down, $a's process dies; $b keeps running under its shim.
kill -KILL "$pid_a"
sleep 1 # let the source retry a few times against the dead socket
corral_rt_start_containerd "$tmp/containerd" || fail "cannot restart containerd"
t_restart=$(date +%s%N)
line=$(await '^LOG .* synced with ' 10 2)
echo "resync $(ms_between "$t_restart" "$(ts "$line")") ms after containerd answered again"
await "^REMOVE .* id=$a\$" 5 >/dev/null
(($(count "^REMOVE .* id=$b\$") == 0)) || fail "$b was removed though it kept running"
(($(count "^UPSERT .* id=$b ") == 1)) || fail "$b was reported again though nothing changed"
pass "after a containerd crash: reconnected, $a (died meanwhile) removed, $b kept"

e=wl-e-$sfx
corral_rt_run "$e" "$tmp/rootfs" app=epsilon -- sleep 1000
await "^UPSERT .* id=$e " >/dev/null
pass "events flow again after the restart ($e reported)"

# --- 4. stop() is prompt, connected or not -------------------------------------------------
# Not a timing benchmark: 2 s is far above the expected few ms and only catches a stop()
# that waits for a call, a stream or a backoff to end by itself.
prompt() { awk -v ms="$1" 'BEGIN { exit !(ms < 2000) }' || fail "stop() took $1 ms"; }
stop_probe
streaming_ms=$stop_ms
prompt "$streaming_ms"

start_probe "$tmp/no-such-containerd.sock" "$tmp/probe-down.out"
await '^LOG .*reconnecting' 5 >/dev/null
sleep 0.3 # inside its backoff sleep now
stop_probe
prompt "$stop_ms"
pass "stop() returns promptly: ${streaming_ms} ms while streaming, $stop_ms ms while reconnecting"
echo "containerd_source_test: all passed"

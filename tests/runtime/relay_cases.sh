# shellcheck shell=bash
# corral-relay (issue 11): sourced by agent_e2e_test.sh.

# node_start I: agent I ("node-I") in the network namespace the test made for it, serving
# its events on 10.213.I.2:32767; its state and events file under $tmp/nI (kept: a restart).
node_start() {
  local i=$1 d=$tmp/n$1
  mkdir -p "$d"
  nsenter --net="/run/netns/${netns[i - 1]}" "$CORRAL_RT_BIN/corrald" \
    --containerd-socket "$CORRAL_RT_ADDRESS" --api-socket "$d/corral.sock" --state-dir "$d/state" \
    --events-file "$d/events.jsonl" --node-name "node-$i" --grpc-listen "10.213.$i.2:32767" \
    --monitor off --network-enforcer off --exec-backstop off >>"$d/corrald.log" 2>&1 &
  node_pid[i]=$!
  bg_pids+=("$!")
  corral_rt_wait_for 15 env CORRAL_SOCKET="$d/corral.sock" "$CORRAL_RT_BIN/corral" get status >/dev/null ||
    fail "agent $i did not start: $(tail -n 5 "$d/corrald.log")"
}
node_stop() { kill -TERM "${node_pid[$1]}" && wait "${node_pid[$1]}" 2>/dev/null || true; }

relay_start() { # relay_start LISTEN
  "$CORRAL_RT_BIN/corral-relay" --listen "$1" --agent 10.213.1.2:32767 \
    --agents-file "$tmp/agents" --json-file "$tmp/relay.jsonl" \
    --otlp-endpoint "http://127.0.0.1:$(<"$tmp/otlp.port")" >>"$tmp/relay.log" 2>&1 &
  relay_pid=$!
  bg_pids+=("$!")
}
relay_stop() { kill -TERM "$relay_pid" && wait "$relay_pid" 2>/dev/null || true; }

# round N: the container runs /usr/bin/id N times; each agent audits every one (HostPID is
# the key: each run a new process).
round() { expect_run 0 "" "$c" bash -c "for i in \$(seq $1); do /usr/bin/id >/dev/null; done"; }
# got: alerts the client printed, and how many distinct (node, pid) among them.
got() { jq -r 'select(.PolicyName == "relay-audit") | "\(.HostName) \(.HostPID)"' "$tmp/client.out"; }
have() { (($(got | wc -l) >= $1)); }

# Three agents in network namespaces of the test's, one relay, one `corral logs --grpc`:
# every alert from every node arrives exactly once, across a relay restart (alerts made
# while it was down come from the agents' buffers) and an agent restart (alerts it made
# before, while the relay was down, come from its events file).
case_relay_multinode() {
  command -v nsenter >/dev/null && command -v ip >/dev/null || skip "needs ip and nsenter"
  corral_rt_mktemp tmp
  corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
  corral_rt_build_rootfs "$tmp/rootfs" bash seq id sleep
  local i c=relay-$$ port n=10
  declare -ga node_pid=()
  for i in 1 2 3; do
    netns+=("corral-relay-$$-$i")
    ip netns add "${netns[i - 1]}" || fail "ip netns add"
    ip link add "crl$$$i" type veth peer name eth0 netns "${netns[i - 1]}" || fail "veth"
    ip -n "${netns[i - 1]}" addr add "10.213.$i.2/24" dev eth0
    ip -n "${netns[i - 1]}" link set eth0 up
    ip -n "${netns[i - 1]}" link set lo up
    ip addr add "10.213.$i.1/24" dev "crl$$$i"
    ip link set "crl$$$i" up
  done
  corral_rt_run "$c" "$tmp/rootfs" app=relay -- sleep 1000000
  block_policy "$tmp/p.yaml" relay-audit relay /usr/bin/id Audit
  for i in 1 2 3; do
    node_start "$i"
    corral_rt_wait_for 10 env CORRAL_SOCKET="$tmp/n$i/corral.sock" "$CORRAL_RT_BIN/corral" get workloads |
      grep -q "$c" || true
    CORRAL_SOCKET="$tmp/n$i/corral.sock" "$CORRAL_RT_BIN/corral" apply -f "$tmp/p.yaml" >/dev/null ||
      fail "apply on agent $i"
  done
  /usr/bin/python3 "$here/otlp_receiver.py" "$tmp/otlp.port" "$tmp/otlp.requests" 2>"$tmp/otlp.err" &
  bg_pids+=("$!")
  corral_rt_wait_for 10 test -s "$tmp/otlp.port" || fail "the OTLP receiver did not start: $(cat "$tmp/otlp.err")"
  printf '# agents 2 and 3\n10.213.2.2:32767\n10.213.3.2:32767\n' >"$tmp/agents"
  relay_start 127.0.0.1:0
  corral_rt_wait_for 10 grep -q "(port [0-9]*)" "$tmp/relay.log" || fail "relay: $(cat "$tmp/relay.log")"
  port=$(sed -n 's/.* (port \([0-9]*\)).*/\1/p' "$tmp/relay.log" | head -n 1)
  "$CORRAL_RT_BIN/corral" logs --grpc "127.0.0.1:$port" --json >"$tmp/client.out" 2>"$tmp/client.err" &
  bg_pids+=("$!")
  sleep 2 # the relay follows its agents, the client its relay

  round "$n"
  corral_rt_wait_for 20 have $((3 * n)) || fail "round 1: $(got | wc -l) of $((3 * n)) alerts: $(cat "$tmp/client.err" "$tmp/relay.log")"
  pass "relay: $((3 * n)) alerts of three agents in network namespaces reach corral logs --grpc through the relay"

  relay_stop
  round "$n" # buffered by the agents only
  relay_start "127.0.0.1:$port"
  corral_rt_wait_for 30 have $((6 * n)) || fail "after the relay's restart: $(got | wc -l) of $((6 * n)): $(tail -n 5 "$tmp/relay.log")"
  pass "relay: restarted, it brings what the agents buffered meanwhile; the client resumed"

  node_stop 2
  node_start 2
  round "$n"
  relay_stop
  round "$n" # while no relay runs...
  node_stop 2
  node_start 2 # ...and agent 2 restarts: its alerts of the round only in its events file
  relay_start "127.0.0.1:$port"
  corral_rt_wait_for 30 have $((12 * n)) || fail "after the agent's restart: $(got | wc -l) of $((12 * n)): $(tail -n 5 "$tmp/relay.log")"
  sleep 2 # anything repeated would come now
  local total uniq
  total=$(got | wc -l)
  uniq=$(got | sort -u | wc -l)
  ((total == 12 * n && uniq == 12 * n)) || fail "want $((12 * n)) alerts exactly once, got $total ($uniq distinct)"
  for i in 1 2 3; do
    (($(got | grep -c "^node-$i ") == 4 * n)) || fail "node-$i: $(got | grep -c "^node-$i ") alerts, want $((4 * n))"
  done
  (($(jq -r 'select(.PolicyName == "relay-audit") | "\(.HostName) \(.HostPID)"' "$tmp/relay.jsonl" | sort -u | wc -l) == 12 * n)) ||
    fail "the relay's --json-file lacks alerts"
  pass "relay: $((12 * n)) alerts from three agents exactly once across relay and agent restarts (agent 2's from its events file)"
  relay_stop # flushes its OTLP batch
  local otlp
  otlp=$(jq -r 'select(.status == 200) | .body.resourceLogs[].scopeLogs[].logRecords[] |
      [.attributes[] | {(.key): (.value.stringValue // .value.intValue)}] | add |
      select(.PolicyName == "relay-audit") | "\(.HostName) \(.HostPID)"' "$tmp/otlp.requests" | sort -u | wc -l)
  ((otlp == 12 * n)) || fail "the relay's OTLP export: $otlp of $((12 * n)) alerts at the receiver"
  pass "relay: its OTLP export delivered every merged alert to the receiver"
  for i in 1 2 3; do node_stop "$i"; done
}

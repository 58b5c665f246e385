# shellcheck shell=bash
# corrald --metrics-listen (issue 11): Prometheus metrics over HTTP. Sourced by
# agent_e2e_test.sh.

# metrics_port: the port the agent serves its metrics on (from its log).
metrics_port() {
  sed -n 's/.*serving metrics .* (port \([0-9]*\)).*/\1/p' "$tmp/agent/corrald.log" | tail -n 1
}

# scrape PORT FILE: GET /metrics into FILE; fails on another status or Content-Type.
scrape() {
  local code type
  code=$(curl -sS --max-time 5 -o "$2" -D "$tmp/headers" -w '%{http_code}' "http://127.0.0.1:$1/metrics") ||
    fail "curl http://127.0.0.1:$1/metrics failed"
  [[ $code == 200 ]] || fail "GET /metrics answered $code: $(head -c 300 "$2")"
  type=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' "$tmp/headers" | tr -d '\r')
  [[ $type == "text/plain; version=0.0.4; charset=utf-8" ]] || fail "GET /metrics Content-Type is '$type'"
}

# The scrape is parsed by Prometheus' own Python parser (Debian's python3-prometheus-client,
# tests/runtime/metrics_check.py): the events counter of a denied exec rises with each denial,
# the decision latency histogram is well formed and counts the decisions, the gauges say what
# was applied.
case_metrics_prometheus() {
  local py=/usr/bin/python3 c=metrics-$$ port first second
  "$py" -c 'import prometheus_client.parser' 2>/dev/null ||
    skip "python3-prometheus-client is not installed (scripts/setup.sh installs it)"
  command -v curl >/dev/null || skip "curl is not installed"
  setup --metrics-listen 127.0.0.1:0 --visibility process
  port=$(metrics_port)
  [[ -n $port ]] || fail "the agent does not say where it serves metrics: $(tail -n 5 "$tmp/agent/corrald.log")"
  corral_rt_run "$c" "$tmp/rootfs" app=metrics -- sleep 1000000
  await_listed "$c"
  block_policy "$tmp/p.yaml" metrics-block metrics /usr/bin/id
  expect_cli 0 "configured" apply -f "$tmp/p.yaml"
  await_enforced "$c"

  expect_run 126 "$(denied_exec /usr/bin/id)" "$c" bash -c /usr/bin/id
  expect_alert "$c" 0 /usr/bin/id Action=Block Operation=Process Type=MatchedPolicy
  scrape "$port" "$tmp/m1.txt"
  first=$("$py" "$here/metrics_check.py" "$tmp/m1.txt" MatchedPolicy Process Block \
    corral_workloads=1 corral_workloads_enforced=1 corral_policies=1 \
    'corral_permission_events_answered>=1' 'corral_permission_events_denied>=1' 2>&1) ||
    fail "the first scrape: $first (scrape: $(grep -v '^#' "$tmp/m1.txt" | head -n 40))"
  ((first >= 1)) || fail "events counter of the denial is $first, want >= 1"
  pass "metrics: the denial is counted (corral_events_total{MatchedPolicy,Process,Block} $first), the latency histogram is cumulative with +Inf = count > 0, workloads 1, enforced 1, policies 1"

  local n0
  n0=$(alert_count "$c")
  expect_run 126 "$(denied_exec /usr/bin/id)" "$c" bash -c /usr/bin/id
  expect_alert "$c" "$n0" /usr/bin/id Action=Block
  scrape "$port" "$tmp/m2.txt"
  second=$("$py" "$here/metrics_check.py" "$tmp/m2.txt" MatchedPolicy Process Block 2>&1) ||
    fail "the second scrape: $second"
  ((second > first)) || fail "events counter did not rise with another denial: $first, then $second"
  # The visibility logs (the monitor's path into the hub) are counted too, where it runs.
  if ! grep -q "running without the system monitor" "$tmp/agent/corrald.log"; then
    grep -q '^corral_events_total{type="ContainerLog",operation="Process",' "$tmp/m2.txt" ||
      fail "no ContainerLog Process events counted: $(grep '^corral_events_total' "$tmp/m2.txt")"
    grep -q '^corral_monitor_dropped_total{kind="exec"} ' "$tmp/m2.txt" ||
      fail "no monitor drops family: $(grep -c . "$tmp/m2.txt") lines"
  fi
  [[ $(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/other") == 404 ]] ||
    fail "GET /other is not 404"
  pass "metrics: another denial raises the counter ($first -> $second); visibility logs counted; other paths 404"

  # Bad values: a clear error, and a port another process holds is not shared (SO_REUSEPORT).
  local out rc=0
  out=$(timeout 20 "$CORRAL_RT_BIN/corrald" --metrics-listen 127.0.0.1:http --enforcer none \
    --containerd-socket "$tmp/no-containerd.sock" --api-socket "$tmp/bad.sock" \
    --state-dir "$tmp/bad-state" 2>&1) || rc=$?
  [[ $rc == 1 && $out == *"--metrics-listen 127.0.0.1:http: port \"http\" is not a number"*"hint"* ]] ||
    fail "a bad port: exit $rc, $out"
  rc=0
  out=$(timeout 30 "$CORRAL_RT_BIN/corrald" --metrics-listen "127.0.0.1:$port" --enforcer none \
    --network-enforcer off --monitor off --kubernetes off --fd-hold-seconds 0 \
    --containerd-socket "$tmp/no-containerd.sock" --api-socket "$tmp/bad.sock" \
    --state-dir "$tmp/bad-state" 2>&1) || rc=$?
  [[ $rc == 1 && $out == *"--metrics-listen 127.0.0.1:$port: cannot listen there"* ]] ||
    fail "a port in use: exit $rc, $out"
  pass "metrics: a bad port and a port in use are refused with a clear error"
}

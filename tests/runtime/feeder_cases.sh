# shellcheck shell=bash
# KubeArmor's event API on the network (issue 11): sourced by agent_e2e_test.sh.

# feeder_port: the port the agent's feeder.LogService listens on (from its log).
feeder_port() {
  sed -n 's/.*serving feeder.LogService .* (port \([0-9]*\)[,)].*/\1/p' "$tmp/agent/corrald.log" | tail -n 1
}

# A client generated from the project's proto in a second language (Python, Debian's
# python3-grpcio and python3-grpc-tools) reads alerts and logs: KubeArmor's wire format.
case_feeder_python() {
  local py=/usr/bin/python3
  "$py" -c 'import grpc, grpc_tools' 2>/dev/null ||
    skip "python3-grpcio and python3-grpc-tools are not installed (scripts/setup.sh installs them)"
  setup --grpc-listen 127.0.0.1:0 --visibility process
  local c=feed-$$ port pid
  port=$(feeder_port)
  [[ -n $port ]] || fail "the agent does not say where feeder.LogService listens: $(tail -n 5 "$tmp/agent/corrald.log")"
  mkdir -p "$tmp/py"
  "$py" -m grpc_tools.protoc -I"$src_dir/proto/api" --python_out="$tmp/py" --grpc_python_out="$tmp/py" \
    "$src_dir/proto/api/kubearmor.proto" || fail "grpc_tools.protoc failed"
  corral_rt_run "$c" "$tmp/rootfs" app=feed -- sleep 1000000
  await_listed "$c"
  block_policy "$tmp/p.yaml" feed-block feed /usr/bin/id
  # Before the clients start: its PolicyChange alert is not the one they wait for.
  expect_cli 0 "configured" apply -f "$tmp/p.yaml"

  "$py" "$here/feeder_client.py" "$tmp/py" "127.0.0.1:$port" alerts 1 20 >"$tmp/alerts.out" 2>&1 &
  pid=$!
  bg_pids+=("$pid")
  corral_rt_wait_for 10 grep -q ready "$tmp/alerts.out" || fail "the Python client: $(cat "$tmp/alerts.out")"
  # And corral's own client over the network (corral logs --grpc), with a filter.
  timeout 20 "$CORRAL_RT_BIN/corral" logs --grpc "127.0.0.1:$port" --json --limit 1 --container "$c" \
    --operation Process >"$tmp/cli-grpc.out" 2>&1 &
  local cli_pid=$!
  bg_pids+=("$cli_pid")
  sleep 1 # their streams open
  expect_run 126 "$(denied_exec /usr/bin/id)" "$c" bash -c /usr/bin/id
  wait "$pid" || fail "the Python client got no alert: $(cat "$tmp/alerts.out")"
  wait "$cli_pid" || fail "corral logs --grpc: $(cat "$tmp/cli-grpc.out")"
  ALERT=$(grep -v '^ready$' "$tmp/alerts.out" | head -n 1)
  check_alert PolicyName=feed-block Action=Block Operation=Process Resource=/usr/bin/id \
    ContainerID="$c" Result="Permission denied" Enforcer=fanotify Type=MatchedPolicy \
    ProcessName=/usr/bin/id ParentProcessName=/usr/bin/bash
  pass "feeder: a Python client generated from kubearmor.proto reads the alert (KubeArmor's field numbers, HealthCheck, grpc.health.v1)"

  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-visibility=process
  "$py" "$here/feeder_client.py" "$tmp/py" "127.0.0.1:$port" logs 1 20 >"$tmp/logs.out" 2>&1 &
  pid=$!
  bg_pids+=("$pid")
  corral_rt_wait_for 10 grep -q ready "$tmp/logs.out" || fail "the Python client: $(cat "$tmp/logs.out")"
  sleep 1
  expect_run 0 "" "$c" bash -c '/usr/bin/ls /'
  wait "$pid" || fail "the Python client got no log: $(cat "$tmp/logs.out")"
  ALERT=$(grep -v '^ready$' "$tmp/logs.out" | head -n 1)
  check_alert Type=ContainerLog Operation=Process ContainerID="$c"
  pass "feeder: WatchLogs (filter system) streams the visibility logs"
  ALERT=$(head -n 1 "$tmp/cli-grpc.out")
  check_alert PolicyName=feed-block Resource=/usr/bin/id ContainerID="$c" Action=Block
  expect_cli 1 "is an agent started with --grpc-listen" logs --grpc 127.0.0.1:1 --limit 1
  pass "feeder: corral logs --grpc reads the alert over the network, with its filters; nothing there: a clear error"
}

# mTLS: with --grpc-tls-ca the agent refuses a client without a certificate (during the
# handshake), and serves one whose certificate its CA signed.
case_feeder_mtls() {
  command -v openssl >/dev/null || skip "openssl is not installed (scripts/setup.sh installs it)"
  corral_rt_mktemp tmp
  local pki=$tmp/pki
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=corral-test-ca \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null || fail "openssl: CA"
  local who
  for who in server client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$pki/$who.key" \
      -out "$pki/$who.csr" 2>/dev/null || fail "openssl: $who key"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$pki/$who.ext"
    openssl x509 -req -in "$pki/$who.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 1 -extfile "$pki/$who.ext" -out "$pki/$who.crt" 2>/dev/null || fail "openssl: $who cert"
  done
  corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
  corral_rt_start_corrald "$tmp/agent" --grpc-listen 127.0.0.1:0 --grpc-tls-cert "$pki/server.crt" \
    --grpc-tls-key "$pki/server.key" --grpc-tls-ca "$pki/ca.crt"
  corral_rt_build_rootfs "$tmp/rootfs" bash sleep id
  local c=mtls-$$ port
  port=$(feeder_port)
  [[ -n $port ]] || fail "no feeder port: $(tail -n 3 "$tmp/agent/corrald.log")"
  grep -q "mTLS: clients need a certificate" "$tmp/agent/corrald.log" || fail "the agent does not say it requires client certificates"
  expect_cli 1 "is an agent started with --grpc-listen" logs --grpc "127.0.0.1:$port" --tls-ca "$pki/ca.crt" --limit 1
  expect_cli 1 "" logs --grpc "127.0.0.1:$port" --limit 1 # plaintext to a TLS server
  pass "mTLS: a client without a certificate (and a plaintext one) is refused"
  corral_rt_run "$c" "$tmp/rootfs" app=mtls -- sleep 1000000
  await_listed "$c"
  block_policy "$tmp/p.yaml" mtls-block mtls /usr/bin/id
  expect_cli 0 "configured" apply -f "$tmp/p.yaml"
  timeout 20 "$CORRAL_RT_BIN/corral" logs --grpc "localhost:$port" --tls-ca "$pki/ca.crt" \
    --tls-cert "$pki/client.crt" --tls-key "$pki/client.key" --json --limit 1 >"$tmp/out" 2>&1 &
  local pid=$!
  bg_pids+=("$pid")
  sleep 1
  expect_run 126 "$(denied_exec /usr/bin/id)" "$c" bash -c /usr/bin/id
  wait "$pid" || fail "corral logs with a client certificate: $(cat "$tmp/out")"
  ALERT=$(head -n 1 "$tmp/out")
  check_alert PolicyName=mtls-block Resource=/usr/bin/id Action=Block
  pass "mTLS: a client with a certificate the CA signed reads the alert"
}

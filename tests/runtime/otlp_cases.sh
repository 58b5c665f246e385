# shellcheck shell=bash
# Events as OTLP/HTTP log records (issue 11): sourced by agent_e2e_test.sh.

# otlp_arrived N: the receiver accepted (200) at least N records of policy otlp-block.
otlp_arrived() {
  local n
  n=$(jq -c 'select(.status == 200) | .body.resourceLogs[].scopeLogs[].logRecords[].attributes[]
    | select(.key == "PolicyName" and .value.stringValue == "otlp-block")' "$rx/requests.jsonl" | wc -l)
  ((n >= $1))
}

# otlp_log_arrived ID: the receiver accepted a process log (Type ContainerLog, INFO) of
# container ID, under a resource naming the container.
otlp_log_arrived() {
  jq -e --arg c "$1" 'select(.status == 200) | .body.resourceLogs[]
    | select(any(.resource.attributes[]; .key == "container.id" and .value.stringValue == $c))
    | .scopeLogs[].logRecords[] | select(.severityNumber == 9 and .severityText == "INFO")
    | .attributes | select(any(.[]; .key == "Type" and .value.stringValue == "ContainerLog"))
    | select(any(.[]; .key == "Operation" and .value.stringValue == "Process"))' \
    "$rx/requests.jsonl" >/dev/null
}

# otlp_counter NAME: the agent's otlp_NAME counter in `corral get status`.
otlp_counter() { corral get status -o json | jq -r --arg k "otlp_$1" '.counters[$k] // "absent"'; }

# A local OTLP/HTTP receiver (Python's http.server on loopback) answers the first request 503,
# then 200: the agent's denials arrive there exactly once, in OTLP's JSON encoding, with the
# fields `corral logs --json` shows; visibility logs too. A wrong endpoint stops corrald
# before it starts anything.
case_otlp() {
  local py=/usr/bin/python3 c=otlp-$$ rx port i rc bad
  [[ -x $py ]] || skip "$py is not installed"
  corral_rt_mktemp rx # the receiver's (setup makes $tmp)
  mkdir -p "$rx/bad"

  # Refused before anything starts (no socket, no state dir); flags that keep a broken
  # build from enforcing anything.
  for bad in "ftp://x|the scheme is ftp, OTLP/HTTP needs http or https" "not a url|not a URL"; do
    rc=0
    timeout 10 "$CORRAL_RT_BIN/corrald" --enforcer none --monitor off --network-enforcer off \
      --fd-hold-seconds 0 --api-socket "$rx/bad/corral.sock" --state-dir "$rx/bad/state" \
      --containerd-socket "$rx/bad/none.sock" --otlp-endpoint "${bad%%|*}" >"$rx/bad/out" 2>&1 || rc=$?
    ((rc == 1)) || fail "corrald --otlp-endpoint '${bad%%|*}' exited $rc, want 1: $(cat "$rx/bad/out")"
    grep -qF -- "--otlp-endpoint ${bad%%|*}: ${bad#*|} (hint: " "$rx/bad/out" ||
      fail "corrald --otlp-endpoint '${bad%%|*}' printed: $(cat "$rx/bad/out")"
    [[ ! -e $rx/bad/corral.sock && ! -e $rx/bad/state ]] || fail "corrald did something before refusing '${bad%%|*}'"
  done
  pass "otlp: a wrong --otlp-endpoint stops corrald at once with what, why and a hint"

  "$py" "$here/otlp_receiver.py" "$rx/port" "$rx/requests.jsonl" 2>"$rx/err" &
  bg_pids+=("$!")
  corral_rt_wait_for 10 test -s "$rx/port" || fail "the OTLP receiver did not start: $(cat "$rx/err")"
  port=$(<"$rx/port")
  : >>"$rx/requests.jsonl"
  setup --otlp-endpoint "http://127.0.0.1:$port"
  grep -q "exporting events as OTLP log records to http://127.0.0.1:$port/v1/logs" "$tmp/agent/corrald.log" ||
    fail "the agent does not say where it exports: $(tail -n 5 "$tmp/agent/corrald.log")"
  corral_rt_run "$c" "$tmp/rootfs" app=otlp -- sleep 1000000
  await_listed "$c"
  block_policy "$tmp/p.yaml" otlp-block otlp /usr/bin/id
  expect_cli 0 "configured" apply -f "$tmp/p.yaml"
  await_enforced "$c"
  for i in 1 2 3; do
    expect_run 126 "$(denied_exec /usr/bin/id)" "$c" bash -c /usr/bin/id
    await_alert "$c" "$((i - 1))" /usr/bin/id
    sleep 0.4
  done
  alerts "$c" | jq -c 'select(.PolicyName == "otlp-block")' >"$tmp/alerts.jsonl"
  (($(wc -l <"$tmp/alerts.jsonl") == 3)) || fail "want 3 alerts: $(cat "$tmp/alerts.jsonl")"
  ALERT=$(head -n 1 "$tmp/alerts.jsonl")
  check_alert PolicyName=otlp-block Action=Block Operation=Process Resource=/usr/bin/id \
    Result="Permission denied" ContainerID="$c"
  # The first batch is answered 503 and sent again (Retry-After: 1).
  corral_rt_wait_for 20 otlp_arrived 3 ||
    fail "the receiver did not get the 3 denials: $(cut -c1-300 "$rx/requests.jsonl")"
  [[ $(otlp_counter exported) -ge 3 && $(otlp_counter retries) -ge 1 &&
    $(otlp_counter failed_requests) -ge 1 && $(otlp_counter dropped) == 0 ]] ||
    fail "corral get status: $(corral get status -o json | jq -c '.counters')"
  # Visibility logs go too (INFO), with their workload as the resource.
  expect_cli 0 "annotated" annotate ns "$CORRAL_RT_NS" kubearmor-visibility=process
  expect_run 0 "" "$c" bash -c '/usr/bin/ls /'
  corral_rt_wait_for 20 otlp_log_arrived "$c" ||
    fail "no ContainerLog record of $c at the receiver: $(tail -c 600 "$rx/requests.jsonl")"
  # Stopped before the final check: a batch sent twice would be there too.
  corral_rt_stop_corrald TERM
  grep -q "OTLP export to http://127.0.0.1:$port/v1/logs: [0-9]* exported, 0 dropped" "$tmp/agent/corrald.log" ||
    fail "no export counts at shutdown: $(tail -n 5 "$tmp/agent/corrald.log")"
  "$py" "$here/otlp_check.py" "$rx/requests.jsonl" "$tmp/alerts.jsonl" >"$tmp/check.out" 2>&1 ||
    fail "$(cat "$tmp/check.out")"
  pass "otlp: each denial arrived once at /v1/logs despite a 503, as application/json in OTLP's encoding, with the alert's fields and workload ($(cat "$tmp/check.out"))"
}

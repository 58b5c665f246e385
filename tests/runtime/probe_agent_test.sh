#!/usr/bin/env bash
# `corral probe` with a running agent (issue 9): a private containerd, the agent, one
# container with a policy. The probe must show the agent's version and postures, the
# container with its policy and the agent's per-section view, and find containerd's socket
# given with --containerd-socket — in its JSON and its text form.
#
# Usage: probe_agent_test.sh BIN_DIR     (BIN_DIR holds corral and corrald)
# Exit 77 (ctest SKIP_RETURN_CODE) with the reason when the machine cannot run it.
set -euo pipefail

bin_dir=${1:?usage: $0 BIN_DIR}
here=$(cd "$(dirname "$0")" && pwd)
skip() {
  echo "SKIP: runtime.probe_agent: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (it starts containerd, runs a container and the agent)"
for b in containerd ctr runc containerd-shim-runc-v2 jq; do
  command -v "$b" >/dev/null || skip "$b is not installed (run scripts/setup.sh)"
done

export CORRAL_RT_BIN=$bin_dir
CORRAL_RT_NS=corral-probe
# shellcheck source=tests/runtime/lib.sh
source "$here/lib.sh"
trap corral_rt_cleanup EXIT
fail() { corral_rt_die "runtime.probe_agent: $*"; }
corral() { corral_rt_corral "$@"; }

tmp=
corral_rt_mktemp tmp
corral_rt_start_containerd "$tmp/containerd" || fail "cannot start containerd"
corral_rt_start_corrald "$tmp/agent"
corral_rt_build_rootfs "$tmp/rootfs" sh sleep id
c=probe-web-$$
corral_rt_run "$c" "$tmp/rootfs" app=probe-web -- sleep 1000000
cat >"$tmp/p.yaml" <<YAML
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: probe-block-id
  namespace: $CORRAL_RT_NS
spec:
  selector:
    matchLabels:
      app: probe-web
  process:
    matchPaths:
    - path: /usr/bin/id
  action: Block
YAML
listed() { corral get workloads -o json | jq -e --arg id "$c" '.workloads[]? | select(.id == $id)'; }
corral_rt_wait_for 10 listed || fail "$c is not listed: $(corral get workloads)"
corral apply -f "$tmp/p.yaml" >/dev/null
has_policy() {
  corral get workloads -o json |
    jq -e --arg id "$c" '.workloads[] | select(.id == $id) | .policies == ["probe-block-id"]'
}
corral_rt_wait_for 10 has_policy || fail "the policy did not reach $c: $(corral get workloads)"

version=$(corral get status -o json | jq -r .version)
json=$(corral probe -o json --containerd-socket "$CORRAL_RT_ADDRESS")
jq -e --arg v "$version" '.agent.running == true and .agent.error == null and .agent.version == $v' \
  <<<"$json" >/dev/null || fail "probe's agent: $(jq .agent <<<"$json")"
jq -e '.agent.postures | .file != "" and .network != "" and .capabilities != ""' <<<"$json" \
  >/dev/null || fail "probe's agent postures: $(jq .agent.postures <<<"$json")"
w=$(jq -c --arg id "$c" '.agent.workloads[] | select(.id == $id)' <<<"$json")
[[ -n $w ]] || fail "probe does not list $c: $(jq .agent.workloads <<<"$json")"
jq -e --arg ns "$CORRAL_RT_NS" '.namespace == $ns and .policies == ["probe-block-id"] and
  (.sections | index("process=enforced")) != null' <<<"$w" >/dev/null ||
  fail "probe's row for $c: $w"
jq -e --arg s "$CORRAL_RT_ADDRESS" \
  '[.runtime_sockets[] | select(.given and .path == $s and .found and .reachable)] | length == 1' \
  <<<"$json" >/dev/null || fail "containerd at $CORRAL_RT_ADDRESS not reachable: $(jq .runtime_sockets <<<"$json")"
printf '%s\n' "$json" >"$tmp/probe.json"
python3 -c 'import json, sys, jsonschema
jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))' \
  "$here/../../docs/probe.schema.json" "$tmp/probe.json" || fail "probe -o json does not match its schema"
echo "PASS: probe -o json: agent $version, $c with probe-block-id, containerd reachable"

text=$(corral probe --containerd-socket "$CORRAL_RT_ADDRESS")
printf '%s\n' "$text"
[[ $text == *"Version"*"$version"* ]] || fail "text: no agent version $version: $text"
row=$(grep -E "^  $CORRAL_RT_NS +$c +probe-block-id " <<<"$text") ||
  fail "text: no row '$CORRAL_RT_NS $c probe-block-id': $text"
[[ $row == *"process=enforced"* ]] || fail "text: row without sections: $row"
echo "PASS: probe text: agent $version and the row: $row"

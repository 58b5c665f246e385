#!/usr/bin/env bash
# `corral probe`'s text form: its sections, one line per mechanism, ✓/✗ on a terminal and
# plain ASCII ([ok]/[--]/[??]) when piped, and 'needs root' per check for a user.
#
# Usage: probe_text_test.sh CORRAL
set -euo pipefail

corral=$(realpath "${1:?usage: $0 CORRAL}")
no_agent=/nonexistent/corral-probe-test.sock
fails=0
fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}
ok() { echo "ok   $*"; }

# Piped: no byte outside ASCII, and the ASCII marks.
out=$("$corral" probe --socket "$no_agent")
for section in "corral probe on " "Kernel" "Active LSMs" "BTF" "cgroup v2" \
  "Mechanisms (tried for real)" "Container runtimes" "What corrald --enforcer auto enforces here" \
  "CATEGORY" "Agent ($no_agent)"; do
  if [[ $out == *"$section"* ]]; then ok "section '$section'"; else fail "no '$section' in: $out"; fi
done
for title in "BPF programs" "fanotify permission events" "cgroup BPF" "BPF LSM programs" \
  "fmod_ret security_capable" "tp_btf cap_capable" "kprobe cap_capable"; do
  if grep -qE "^  \[(ok|--|\?\?)\] +$title " <<<"$out"; then
    ok "a marked line for '$title'"
  else
    fail "no '[ok]/[--]/[??] $title' line"
  fi
done
for cat in process file network capabilities; do
  grep -qE "^  \[(ok|--|~~|\?\?)\] +$cat " <<<"$out" || fail "no pick line for $cat"
done
if LC_ALL=C grep -q '[^[:print:][:space:]]' <<<"$out"; then
  fail "piped output holds non-ASCII bytes: $(LC_ALL=C grep -n '[^[:print:][:space:]]' <<<"$out")"
else
  ok "piped output is plain ASCII"
fi
if [[ $out == *"not running (no socket at $no_agent)"* ]]; then
  ok "no agent: said so"
else
  fail "no agent: not said"
fi
if [[ $(id -u) == 0 ]]; then
  if [[ $out == *"(as root)"* && $out == *"[ok]"* ]]; then
    ok "as root: some mechanism works"
  else
    fail "as root: no [ok] mark"
  fi
fi

# On a terminal (script(1) gives the probe a pty): the symbols, no ASCII marks.
if command -v script >/dev/null; then
  tty_out=$(script -qec "$(printf '%q ' "$corral" probe --socket "$no_agent")" /dev/null)
  if [[ $tty_out == *"✓"* || $tty_out == *"?"* ]] && [[ $tty_out != *"[ok]"* && $tty_out != *"[--]"* ]]; then
    ok "terminal: ✓/✗ marks, no ASCII ones"
  else
    fail "terminal output lacks the symbols: $tty_out"
  fi
else
  echo "SKIPPED PART: script(1) is not installed (util-linux): terminal output not checked"
fi

# As a user: every check says 'needs root', the command still succeeds.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  user_out=$(cd / && setpriv --reuid 65534 --regid 65534 --clear-groups \
    "$corral" probe --socket "$no_agent")
  n=$(sed -n '/^Mechanisms/,/^Container runtimes/p' <<<"$user_out" |
    grep -cE '^  \[\?\?\] .* needs root$' || true)
  if [[ $n == 7 && $user_out == *"(not root)"* ]]; then
    ok "as nobody: says not root, and 7 checks say needs root"
  else
    fail "as nobody: $n checks say needs root, want 7: $user_out"
  fi
fi

if ((fails > 0)); then
  echo "$fails failed"
  exit 1
fi
echo PASS

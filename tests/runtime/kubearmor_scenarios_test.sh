#!/usr/bin/env bash
# KubeArmor's own policy tests on Corral (issue 14): the process and file steps of the
# multiubuntu and github scenarios (tests/k8s_env/scenarios/*/cmd*) and of the ginkgo ksp
# tests (tests/k8s_env/ksp/ksp_test.go) in KubeArmor's repository, re-written as data:
#   kubearmor/steps.txt          one scenario per KubeArmor test: its policy and its steps
#   kubearmor/policies/ID.yaml   the scenario's policy, written for this harness
# run against real containerd containers, the real agent (fanotify) and the real CLI.
#
# The five containers stand in for KubeArmor's multiubuntu pods (labels group and container,
# namespace multiubuntu, file posture block as its ksp tests expect) and share one image laid
# out like theirs (kubearmor/ubuntu-w-utils, Ubuntu 18.04: no merged /usr, so /bin/cat is a
# file and /usr/bin/env another) built from Debian's binaries, with KubeArmor's users and
# files (user1 and its files, /credentials, /secret.txt, /readwrite, /home/user1/hello).
#
# Each step runs `bash -c CMD` in its container as KubeArmor's tests do (kubectl exec) and
# asserts the exit status (pass: 0; deny: non-zero with "Operation not permitted", the EPERM
# fanotify answers, or the program's own "Error!") and the alert's PolicyName, Severity,
# Action, Result, Operation and Resource — or that no alert names the resource.
#
# Usage: kubearmor_scenarios_test.sh BIN_DIR HELPERS_DIR [SCENARIO...]
#   HELPERS_DIR holds ka_readwrite and ka_hello (the image's /readwrite and hello).
# Exit 77 (ctest SKIP_RETURN_CODE) with the reason when the machine cannot run it.
set -euo pipefail

bin_dir=${1:?usage: $0 BIN_DIR HELPERS_DIR [SCENARIO...]}
helpers=${2:?usage: $0 BIN_DIR HELPERS_DIR [SCENARIO...]}
shift 2
only=("$@")
here=$(cd "$(dirname "$0")" && pwd)
data=$here/kubearmor

skip() {
  echo "SKIP: runtime.kubearmor_scenarios: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (it starts containerd, runs containers and the agent)"
for b in containerd ctr runc containerd-shim-runc-v2 jq timeout ldconfig script su; do
  command -v "$b" >/dev/null || skip "$b is not installed (run scripts/setup.sh)"
done
[[ -x $bin_dir/corral && -x $bin_dir/corrald ]] || {
  echo "FAIL: $bin_dir/corral or corrald is missing (build them)" >&2
  exit 1
}

export CORRAL_RT_BIN=$bin_dir
CORRAL_RT_NS=multiubuntu
# shellcheck source=tests/runtime/lib.sh
source "$here/lib.sh"

tmp=
failures=()
cleanup() {
  local rc=$?
  set +e # errexit would end the trap at `(exit 1)` below and leave the containers running
  if ((rc != 0)) && [[ -n $CORRAL_RT_CORRALD_DIR && -f $CORRAL_RT_CORRALD_DIR/corrald.log ]]; then
    echo "--- corrald log (tail) ---" >&2
    grep -v ' DBG ' "$CORRAL_RT_CORRALD_DIR/corrald.log" | tail -n 30 >&2 || true
  fi
  (exit "$rc")
  corral_rt_cleanup
  exit "$rc"
}
trap cleanup EXIT

corral() { corral_rt_corral "$@"; }
log() { printf '%s\n' "$*"; }

# ---- the image --------------------------------------------------------------------------------

# Where each program lives in KubeArmor's test image (Ubuntu 18.04), from Debian's binaries.
declare -A kPrograms=(
  [/bin/bash]=bash [/bin/dash]=dash [/bin/cat]=cat [/bin/ls]=ls [/bin/sleep]=sleep
  [/bin/su]=su [/bin/hostname]=hostname [/bin/uname]=uname [/bin/touch]=touch
  [/usr/bin/env]=env [/usr/bin/whoami]=whoami [/usr/bin/head]=head [/usr/bin/apt]=apt
  [/usr/bin/id]=id [/sbin/route]=route
)

# copy_program SRC DST ROOTFS: the program at DST and its libraries where Ubuntu 18.04 has
# them (/lib/x86_64-linux-gnu, the loader at /lib64), whatever the host's layout.
copy_program() {
  local src=$1 dst=$2 rootfs=$3 lib
  mkdir -p "$rootfs$(dirname "$dst")"
  cp -L "$src" "$rootfs$dst"
  while read -r lib; do
    case $lib in
    */ld-linux*) [[ -e $rootfs/lib64/${lib##*/} ]] || cp -L "$lib" "$rootfs/lib64/" ;;
    *) [[ -e $rootfs/lib/x86_64-linux-gnu/${lib##*/} ]] || cp -L "$lib" "$rootfs/lib/x86_64-linux-gnu/" ;;
    esac
  done < <(ldd "$src" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
}

# build_image ROOTFS: KubeArmor's multiubuntu image, as far as its process and file tests see
# it (its Dockerfile: users, files, owners), from this host's binaries.
build_image() {
  local r=$1 dst src lib
  mkdir -p "$r"/{bin,sbin,lib/x86_64-linux-gnu/security,lib64,usr/bin,etc/pam.d,proc,dev,sys} \
    "$r"/{run,root,tmp,credentials/keys,home/user1/dir1}
  chmod 1777 "$r/tmp"
  for dst in "${!kPrograms[@]}"; do
    src=$(command -v "${kPrograms[$dst]}") || corral_rt_die "${kPrograms[$dst]} is not installed"
    copy_program "$src" "$dst" "$r"
  done
  copy_program "$helpers/ka_readwrite" /readwrite "$r"
  copy_program "$helpers/ka_hello" /hello "$r"
  # The ksp allowedArgs test execs python3.6; a stand-in program answers for it (the rule's
  # arguments are not enforced, which is what the step shows).
  copy_program "$helpers/ka_hello" /usr/bin/python3.6 "$r"
  # su authenticates root through PAM: pam_rootok lets root become user1 without a password.
  for lib in pam_rootok.so pam_permit.so; do
    cp -L "/usr/lib/x86_64-linux-gnu/security/$lib" "$r/lib/x86_64-linux-gnu/security/"
  done
  for f in su su-l other; do
    printf 'auth sufficient pam_rootok.so\nauth required pam_permit.so\n%s\n%s\n%s\n' \
      'account required pam_permit.so' 'session required pam_permit.so' \
      'password required pam_permit.so' >"$r/etc/pam.d/$f"
  done
  printf 'root:x:0:0:root:/root:/bin/bash\nuser1:x:1000:1000::/home/user1:/bin/bash\n' >"$r/etc/passwd"
  printf 'root:x:0:\nuser1:x:1000:\n' >"$r/etc/group"
  # shellcheck disable=SC2016 # a literal crypt(3) field
  printf 'root:*:19000:0:99999:7:::\nuser1:$6$k14$notarealhash:19000:0:99999:7:::\n' >"$r/etc/shadow"
  printf 'root:*::\nuser1:!::\n' >"$r/etc/gshadow"
  chmod 0640 "$r/etc/shadow" "$r/etc/gshadow"
  printf 'passwd: files\ngroup: files\nshadow: files\n' >"$r/etc/nsswitch.conf"
  printf '/bin/sh\n/bin/bash\n/bin/dash\n' >"$r/etc/shells"
  printf '127.0.0.1 localhost\n' >"$r/etc/hosts"
  echo ubuntu-w-utils >"$r/etc/hostname"
  printf '/lib/x86_64-linux-gnu\n' >"$r/etc/ld.so.conf"
  ldconfig -r "$r" # /etc/ld.so.cache, as every Ubuntu image has one
  ln -s dash "$r/bin/sh"
  # A symlinked directory, as merged-/usr images have (/bin -> usr/bin): for the step that
  # shows Corral's symlink-proof matching.
  mkdir -p "$r/usr/local" && ln -s ../bin "$r/usr/local/bin"
  echo "secret file" >"$r/secret.txt"
  echo "plain file" >"$r/plain.txt"
  echo "password file" >"$r/credentials/password"
  echo "token file" >"$r/credentials/token"
  echo "cert file" >"$r/credentials/keys/cert.ca"
  echo "key file" >"$r/credentials/keys/priv.key"
  mkdir -p "$r/etc/apt/apt.conf.d" "$r/var/lib/dpkg"
  : >"$r/var/lib/dpkg/status" # apt finds its packaging system
  echo "# root's bashrc" >"$r/root/.bashrc"
  cp "$r/hello" "$r/home/user1/hello"
  cp "$r/readwrite" "$r/home/user1/readwrite"
  echo "secret file user1" >"$r/home/user1/secret_data1.txt"
  echo "key file 1" >"$r/home/user1/dir1/key1.txt"
  echo "other file" >"$r/home/user1/otherfile.txt"
  echo "# user1's profile" >"$r/home/user1/.profile"
  echo "# user1's bashrc" >"$r/home/user1/.bashrc"
  chown -R 1000:1000 "$r/home/user1"
}

# ---- steps ------------------------------------------------------------------------------------

declare -A cid=()      # ubuntu-N -> container id
passed=0 skipped=0

alerts() { corral logs --json --container "$1"; }
alert_count() { alerts "$1" | wc -l; }

# run_step CONTAINER COMMAND [WANT]: runs `bash -c COMMAND` there (a terminal when COMMAND
# starts with "@tty "); sets RC and OUT. A passing command whose output should hold WANT and
# is empty is run again (ctr exec loses a short process's output now and then under load;
# see agent_e2e_test.sh); only reads expect an output.
run_step() {
  local c=${cid[$1]} cmd=$2 want=${3:-} try
  for try in 1 2 3; do
    RC=0
    if [[ $cmd == "@tty "* ]]; then
      # ctr exec -t needs a terminal of its own: script(1) gives it one.
      script -qec "$(printf '%q ' ctr --address "$CORRAL_RT_ADDRESS" --namespace \
        "$CORRAL_RT_NS" task exec -t --fifo-dir "$CORRAL_RT_CONTAINERD_DIR/fifo" \
        --exec-id "tty-$$-$RANDOM" "$c" bash -c "${cmd#@tty }")" /dev/null \
        </dev/null >"$tmp/step.out" 2>&1 || RC=$?
    else
      corral_rt_exec "$c" bash -c "$cmd" </dev/null >"$tmp/step.out" 2>&1 || RC=$?
    fi
    OUT=$(tr -d '\r' <"$tmp/step.out")
    [[ -z $OUT && $RC == 0 && -n $want && $try -lt 3 ]] || break
  done
}

# find_alert CONTAINER SINCE RESOURCE: the first alert after the SINCE-th naming RESOURCE,
# waiting up to 5 s; empty when there is none.
find_alert() {
  local i a
  for ((i = 0; i < 50; i++)); do
    a=$(alerts "${cid[$1]}" | tail -n +"$(($2 + 1))" |
      jq -c --arg r "$3" 'select(.Resource == $r)' | head -n 1 || true)
    [[ -n $a ]] && break
    sleep 0.1
  done
  printf '%s' "$a"
}

# field ALERT NAME: a field of the alert ("" when left out, as Corral leaves out empty ones).
field() { jq -r --arg k "$2" '.[$k] // "" | tostring' <<<"$1"; }

# check_step ID CONTAINER COMMAND EXPECT ALERT: one step; appends to failures on a mismatch.
check_step() {
  local id=$1 box=$2 cmd=$3 expect=$4 want=$5 since problem=""
  since=$(alert_count "${cid[$box]}")
  local verdict=${expect%% *} text=""
  [[ $expect == *" "* ]] && text=${expect#* }
  run_step "$box" "$cmd" "$text"
  case $verdict in
  pass)
    ((RC == 0)) || problem="exited $RC, want 0"
    [[ -z $text || $OUT == *"$text"* ]] || problem+=" output lacks '$text'"
    ;;
  ran) # not denied, whatever the program then says (KubeArmor: MatchRegexp(".*"))
    [[ ! $OUT =~ Operation\ not\ permitted ]] || problem="denied"
    [[ -z $text || $OUT == *"$text"* ]] || problem+=" output lacks '$text'"
    ;;
  deny)
    ((RC != 0)) || problem="exited 0, want a denial"
    [[ $OUT =~ Operation\ not\ permitted|Permission\ denied|Error! ]] ||
      problem+=" output shows no denial"
    ;;
  *) corral_rt_die "step $id: unknown expectation '$expect'" ;;
  esac
  local -a w
  read -r -a w <<<"$want"
  if [[ ${w[0]} == none ]]; then
    # No alert for it: alerts come in event order, so one for a later access would show it.
    sleep 0.3
    local a
    a=$(alerts "${cid[$box]}" | tail -n +"$((since + 1))" |
      jq -c --arg r "${w[1]}" 'select(.Resource == $r)' | head -n 1 || true)
    [[ -z $a ]] || problem+=" unexpected alert: $a"
  elif [[ ${w[0]} != - ]]; then
    local op=${w[0]} resource=${w[1]} policy=${w[2]} severity=${w[3]} action=${w[4]} a
    [[ $severity == - ]] && severity=""
    a=$(find_alert "$box" "$since" "$resource")
    if [[ -z $a ]]; then
      problem+=" no alert for $resource"
    else
      local result=Passed
      [[ $verdict == deny ]] && result="Permission denied"
      local k v
      for kv in "PolicyName=$policy" "Severity=$severity" "Action=$action" "Result=$result" \
        "Operation=$op" "Resource=$resource"; do
        k=${kv%%=*} v=${kv#*=}
        [[ $(field "$a" "$k") == "$v" ]] || problem+=" $k is '$(field "$a" "$k")', want '$v'"
      done
    fi
  fi
  if [[ -n $problem ]]; then
    failures+=("$id [$box] bash -c '$cmd':$problem (output: ${OUT:0:200})")
    log "FAIL  $id [$box] $cmd:$problem"
  else
    passed=$((passed + 1))
    log "ok    $id [$box] $cmd"
  fi
}

wanted() {
  ((${#only[@]} == 0)) && return 0
  local s
  for s in "${only[@]}"; do [[ $1 == "$s" ]] && return 0; done
  return 1
}

# run_scenarios FILE: reads the steps file (format: see its header).
run_scenarios() {
  local line id="" applied="" n=0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%$'\r'}
    [[ -z ${line// /} || $line == \#* ]] && continue
    case $line in
    "scenario "*)
      [[ -n $applied ]] && corral delete -f "$applied" >/dev/null
      applied=""
      read -r _ id _ <<<"$line"
      wanted "$id" || { id=""; continue; }
      n=$((n + 1))
      [[ -f $data/policies/$id.yaml ]] || corral_rt_die "scenario $id: no policies/$id.yaml"
      # @RUNC@: the runtime's path on this host (a fromSource rule for runc init).
      applied=$tmp/policy-$id.yaml
      sed "s|@RUNC@|$(command -v runc)|g" "$data/policies/$id.yaml" >"$applied"
      corral apply -f "$applied" >"$tmp/apply.out" 2>&1 ||
        corral_rt_die "scenario $id: corral apply failed: $(<"$tmp/apply.out")"
      log "--- $line"
      ;;
    "skip "*)
      read -r _ id _ <<<"$line"
      wanted "$id" && { log "SKIP  ${line#skip }"; skipped=$((skipped + 1)); }
      id=""
      ;;
    "note "*) [[ -n $id ]] && log "      (${line#note })" ;;
    "  step "* | "step "*)
      [[ -n $id ]] || continue
      local rest=${line#*step } f
      IFS='|' read -r -a f <<<"$rest"
      ((${#f[@]} == 4)) || corral_rt_die "bad step line: $line"
      for i in 0 1 2 3; do f[i]=$(sed -e 's/^ *//' -e 's/ *$//' <<<"${f[i]}"); done
      check_step "$id" "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}"
      ;;
    *) corral_rt_die "bad line in steps file: $line" ;;
    esac
  done <"$1"
  [[ -n $applied ]] && corral delete -f "$applied" >/dev/null
  log "scenarios run: $n"
}

# ---- main -------------------------------------------------------------------------------------

corral_rt_mktemp tmp
corral_rt_start_containerd "$tmp/containerd" || corral_rt_die "cannot start containerd"
corral_rt_start_corrald "$tmp/agent"
build_image "$tmp/rootfs"
for n in 1 2 3 4 5; do
  group="group-1"
  ((n >= 4)) && group="group-2"
  cid[ubuntu-$n]=ubuntu-$n-$$
  corral_rt_run "ubuntu-$n-$$" "$tmp/rootfs" "group=$group" "container=ubuntu-$n" -- /bin/sleep 1000000
  # The service account token, which the kubelet mounts at start under the container's own
  # /run (a tmpfs of the runtime's): written there through the container's root.
  sa=/proc/${CORRAL_RT_PIDS[ubuntu-$n-$$]}/root/run/secrets/kubernetes.io/serviceaccount
  mkdir -p "$sa" && echo "service account token" >"$sa/token"
done
corral annotate ns multiubuntu kubearmor-file-posture=block --overwrite >/dev/null
for n in 1 2 3 4 5; do
  corral_rt_wait_for 10 bash -c "$(printf '%q ' "$bin_dir/corral" get workloads -o json) | grep -q ubuntu-$n-$$" ||
    corral_rt_die "ubuntu-$n is not listed by the agent"
done

run_scenarios "$data/steps.txt"

# What issue 14 found under file allow-lists: start-up reads (the loader, libraries, runc's
# user lookup and Go runtime) denied, and runc's process named "/". None may be alerted.
for n in 1 2 3 4 5; do
  bad=$(alerts "${cid[ubuntu-$n]}" | jq -c 'select((.PolicyName == "DefaultPosture" and (.Resource | test(
    "^/etc/(ld\\.so\\.cache|passwd|group|nsswitch\\.conf)$|/hpage_pmd_size$|\\.so(\\.[^/]*)?$")))
    or .ProcessName == "/")' | head -n 3 || true)
  [[ -z $bad ]] || failures+=("ubuntu-$n: start-up read alerted or runc named '/': $bad")
done
log "steps passed: $passed, failed: ${#failures[@]}, skipped tests: $skipped"
if ((${#failures[@]})); then
  printf 'FAILED: %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "PASS: runtime.kubearmor_scenarios"

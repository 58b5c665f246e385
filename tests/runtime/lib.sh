# shellcheck shell=bash
# Harness for Corral's runtime tests and demo: a private containerd and containers built from
# host binaries (TESTING.md "Real components, started by the tests themselves").
#
#   source tests/runtime/lib.sh
#   trap corral_rt_cleanup EXIT
#   corral_rt_mktemp dir
#   corral_rt_start_containerd "$dir/containerd"
#   corral_rt_build_rootfs "$dir/rootfs" sh sleep cat id
#   corral_rt_run web "$dir/rootfs" app=web tier=front -- sleep 1000
#   corral_rt_exec web id -u
#
# Safety (TESTING.md): everything started here is remembered by pid or container id and only
# that is stopped; nothing is ever killed by name. Call corral_rt_cleanup from a trap.
#
# Functions that start or stop something must run in the test's main shell (not in $(...)):
# they record state in variables, and `wait` only sees the shell's own children. The
# read-only ones (corral_rt_pid, corral_rt_task_status) are meant for $(...).

CORRAL_RT_NS=${CORRAL_RT_NS:-corral-test} # containerd namespace of the test's containers
CORRAL_RT_ADDRESS=${CORRAL_RT_ADDRESS:-}  # gRPC socket of the running private containerd
CORRAL_RT_CONTAINERD_DIR=${CORRAL_RT_CONTAINERD_DIR:-}
CORRAL_RT_CONTAINERD_PID=${CORRAL_RT_CONTAINERD_PID:-}
CORRAL_RT_CONTAINERS=()
declare -A CORRAL_RT_PIDS=()          # container id -> host pid of its init process, as started
declare -A CORRAL_RT_CONTAINER_NS=() # container id -> containerd namespace it was started in
CORRAL_RT_TMPDIRS=()
CORRAL_RT_EXEC_SEQ=0

corral_rt_log() { printf '[rt %(%T)T] %s\n' -1 "$*" >&2; }
corral_rt_die() {
  corral_rt_log "FAIL: $*"
  exit 1
}

# corral_rt_mktemp VAR: sets VAR to a new temp dir that corral_rt_cleanup removes.
corral_rt_mktemp() {
  local _corral_rt_new # a name the caller's VAR cannot be shadowed by
  _corral_rt_new=$(mktemp -d /tmp/corral-rt.XXXXXX) || corral_rt_die "mktemp failed"
  _corral_rt_register_dir "$_corral_rt_new"
  printf -v "$1" '%s' "$_corral_rt_new"
}

# corral_rt_wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds; fails after SECONDS.
corral_rt_wait_for() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# corral_rt_ctr ARGS...: ctr against the private containerd, in the test namespace.
corral_rt_ctr() {
  [[ -n $CORRAL_RT_ADDRESS ]] || corral_rt_die "corral_rt_ctr: no containerd started"
  ctr --address "$CORRAL_RT_ADDRESS" --namespace "$CORRAL_RT_NS" "$@"
}

# Containers remember the namespace they were started in (CORRAL_RT_NS may be switched
# between corral_rt_run calls); the functions taking a container ID use that namespace.
_corral_rt_ns_of() { printf '%s' "${CORRAL_RT_CONTAINER_NS[$1]:-$CORRAL_RT_NS}"; }

# corral_rt_start_containerd DIR: starts containerd with its root, state, socket and log under
# DIR (created if needed; reusing a DIR restarts the same containerd, its containers included).
# Returns 1 (after printing the log's tail) when containerd does not come up within 10 s.
corral_rt_start_containerd() {
  local dir=$1
  [[ -n $dir ]] || corral_rt_die "corral_rt_start_containerd: DIR missing"
  if [[ -n $CORRAL_RT_CONTAINERD_PID ]] && kill -0 "$CORRAL_RT_CONTAINERD_PID" 2>/dev/null; then
    corral_rt_log "corral_rt_start_containerd: containerd $CORRAL_RT_CONTAINERD_PID still runs"
    return 1
  fi
  mkdir -p "$dir/root" "$dir/state" "$dir/fifo" "$dir/logs"
  dir=$(cd "$dir" && pwd)
  _corral_rt_register_dir "$dir"
  # Only what the tests use: no CRI (it would want CNI and pull images), no snapshotters
  # that probe for btrfs/zfs/devmapper, no tracing. Containers run with --rootfs.
  cat >"$dir/config.toml" <<EOF
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
EOF
  CORRAL_RT_CONTAINERD_DIR=$dir
  CORRAL_RT_ADDRESS=$dir/containerd.sock
  containerd --config "$dir/config.toml" --root "$dir/root" --state "$dir/state" \
    --address "$CORRAL_RT_ADDRESS" >>"$dir/containerd.log" 2>&1 &
  CORRAL_RT_CONTAINERD_PID=$!
  local i
  for ((i = 0; i < 200; i++)); do
    if ctr --address "$CORRAL_RT_ADDRESS" version >/dev/null 2>&1; then
      corral_rt_log "containerd pid $CORRAL_RT_CONTAINERD_PID answers on $CORRAL_RT_ADDRESS"
      return 0
    fi
    if ! kill -0 "$CORRAL_RT_CONTAINERD_PID" 2>/dev/null; then
      wait "$CORRAL_RT_CONTAINERD_PID" 2>/dev/null
      CORRAL_RT_CONTAINERD_PID=
      tail -n 20 "$dir/containerd.log" >&2
      corral_rt_log "containerd exited at start (log: $dir/containerd.log)"
      return 1
    fi
    sleep 0.05
  done
  tail -n 20 "$dir/containerd.log" >&2
  corral_rt_log "containerd did not answer within 10 s (log: $dir/containerd.log)"
  corral_rt_stop_containerd KILL
  return 1
}

# corral_rt_stop_containerd [SIGNAL]: stops the containerd this harness started (SIGTERM by
# default; SIGKILL to simulate a crash). Its containers keep running under their shims.
corral_rt_stop_containerd() {
  local sig=${1:-TERM} pid=$CORRAL_RT_CONTAINERD_PID i
  [[ -n $pid ]] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    corral_rt_log "containerd $pid ignored SIG$sig for 5 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  CORRAL_RT_CONTAINERD_PID=
  corral_rt_log "containerd $pid stopped (SIG$sig)"
}

_corral_rt_register_dir() {
  local d
  for d in "${CORRAL_RT_TMPDIRS[@]}"; do [[ $d == "$1" ]] && return 0; done
  CORRAL_RT_TMPDIRS+=("$1")
}

# _corral_rt_copy_file SRC ROOTFS: copies SRC (symlinks followed) into ROOTFS at the path it
# has in a merged-/usr image: /bin, /sbin, /lib, /lib64 are all under usr/.
_corral_rt_copy_file() {
  local src=$1 rootfs=$2 dst
  case $src in
  /usr/*) dst=$rootfs$src ;;
  /bin/* | /sbin/* | /lib/* | /lib64/*) dst=$rootfs/usr$src ;;
  *) dst=$rootfs$src ;;
  esac
  [[ -e $dst ]] && return 0
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
}

# corral_rt_build_rootfs DIR BIN...: a merged-/usr root filesystem holding each BIN (a name
# looked up in PATH, or a path) and the libraries ldd lists for it, a passwd/group with root
# and app (uid/gid 1000), and the mount points runc needs.
corral_rt_build_rootfs() {
  local rootfs=$1
  shift
  [[ -n $rootfs ]] || corral_rt_die "corral_rt_build_rootfs: DIR missing"
  mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64} "$rootfs"/{etc,proc,dev,sys,run,root,home/app,tmp,var/tmp}
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  local l
  for l in bin sbin lib lib64; do [[ -L $rootfs/$l ]] || ln -s "usr/$l" "$rootfs/$l"; done
  printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\napp:x:1000:\n' >"$rootfs/etc/group"
  chown 1000:1000 "$rootfs/home/app"
  local bin path lib
  for bin in "$@"; do
    path=$(command -v "$bin") || corral_rt_die "corral_rt_build_rootfs: $bin not found"
    [[ $path == /* ]] || corral_rt_die "corral_rt_build_rootfs: $bin is not a file ($path)"
    _corral_rt_copy_file "$path" "$rootfs"
    # ldd prints "name => /path (addr)" for libraries and "/path (addr)" for the loader.
    while read -r lib; do
      _corral_rt_copy_file "$lib" "$rootfs"
    done < <(ldd "$path" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  done
}

# corral_rt_add_files ROOTFS PATH...: copies host files or directories into ROOTFS at the
# same paths (e.g. /etc/nginx for an nginx image), merged-/usr like corral_rt_build_rootfs.
corral_rt_add_files() {
  local rootfs=$1 path
  shift
  for path in "$@"; do
    if [[ -d $path ]]; then
      mkdir -p "$rootfs$path"
      cp -a "$path/." "$rootfs$path/"
    else
      _corral_rt_copy_file "$path" "$rootfs" || corral_rt_die "cannot copy $path"
    fi
  done
}

# corral_rt_run ID ROOTFS [KEY=VALUE...] [--CTR-OPTION=VALUE...] -- CMD...: starts container
# ID (in the background, output to $CORRAL_RT_CONTAINERD_DIR/logs/ID.log) with these container
# labels (and `ctr run` options, e.g. --cap-add=CAP_SYS_ADMIN); returns once its task runs.
corral_rt_run() {
  local id=$1 rootfs=$2
  shift 2
  local args=()
  while (($#)) && [[ $1 != -- ]]; do
    if [[ $1 == --* ]]; then args+=("$1"); else args+=(--label "$1"); fi
    shift
  done
  [[ ${1:-} == -- ]] || corral_rt_die "corral_rt_run: missing -- before the command"
  shift
  (($#)) || corral_rt_die "corral_rt_run: missing command"
  rootfs=$(cd "$rootfs" && pwd)
  CORRAL_RT_CONTAINERS+=("$id")
  CORRAL_RT_CONTAINER_NS[$id]=$CORRAL_RT_NS
  # --rootfs has no image config to take PATH from; execs inherit the init process's env.
  corral_rt_ctr run -d --rootfs --log-uri "file://$CORRAL_RT_CONTAINERD_DIR/logs/$id.log" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "${args[@]}" "$rootfs" "$id" "$@" ||
    corral_rt_die "ctr run $id failed"
  corral_rt_wait_for 10 _corral_rt_task_is "$id" RUNNING ||
    corral_rt_die "container $id is not running 10 s after ctr run" \
      "(task status: $(corral_rt_task_status "$id"); log: $(tail -c 300 \
        "$CORRAL_RT_CONTAINERD_DIR/logs/$id.log" 2>/dev/null))"
  CORRAL_RT_PIDS[$id]=$(corral_rt_pid "$id")
}

# corral_rt_run_many PREFIX N ROOTFS [KEY=VALUE...] -- CMD...: starts containers PREFIX0 ..
# PREFIX<N-1> like corral_rt_run, 8 \`ctr run\` at a time; returns once every task runs.
corral_rt_run_many() {
  local prefix=$1 n=$2 rootfs=$3
  shift 3
  local args=()
  while (($#)) && [[ $1 != -- ]]; do
    args+=(--label "$1")
    shift
  done
  [[ ${1:-} == -- ]] || corral_rt_die "corral_rt_run_many: missing -- before the command"
  shift
  rootfs=$(cd "$rootfs" && pwd)
  local i id
  for ((i = 0; i < n; i++)); do printf '%s%d\n' "$prefix" "$i"; done | xargs -P 8 -I{} ctr --address "$CORRAL_RT_ADDRESS" --namespace "$CORRAL_RT_NS" run -d \
    --rootfs --log-uri "file://$CORRAL_RT_CONTAINERD_DIR/logs/{}.log" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "${args[@]}" "$rootfs" {} "$@" >/dev/null ||
    corral_rt_die "ctr run of $prefix* failed"
  for ((i = 0; i < n; i++)); do
    CORRAL_RT_CONTAINERS+=("$prefix$i")
    CORRAL_RT_CONTAINER_NS[$prefix$i]=$CORRAL_RT_NS
  done
  local listed running deadline=$((SECONDS + 30 + n / 10))
  while :; do
    listed=$(corral_rt_ctr task ls 2>/dev/null)
    running=$(awk -v p="$prefix" 'index($1, p) == 1 && $3 == "RUNNING" {n++} END {print n+0}' <<<"$listed")
    ((running >= n)) && break
    # CORRAL_RT_STOPPED_OK=1: containers that stopped (killed at start) are counted in
    # CORRAL_RT_STOPPED instead of failing.
    CORRAL_RT_STOPPED=$(awk -v p="$prefix" 'index($1, p) == 1 && $3 == "STOPPED" {n++} END {print n+0}' <<<"$listed")
    ((${CORRAL_RT_STOPPED_OK:-0} && running + CORRAL_RT_STOPPED >= n)) && break
    if ((SECONDS >= deadline)); then
      awk -v p="$prefix" 'index($1, p) == 1 && $3 != "RUNNING"' <<<"$listed" | head -5 >&2
      corral_rt_die "only $running of $n containers $prefix* run"
    fi
    sleep 0.2
  done
  while read -r id pid _; do
    [[ $id == "$prefix"* ]] && CORRAL_RT_PIDS[$id]=$pid
  done <<<"$listed"
}

# corral_rt_task_status ID / corral_rt_pid ID: the task's status (RUNNING, STOPPED...) and
# the host pid of its init process, as `ctr task ls` shows them.
corral_rt_task_status() {
  CORRAL_RT_NS=$(_corral_rt_ns_of "$1") corral_rt_ctr task ls 2>/dev/null |
    awk -v id="$1" '$1 == id {print $3}'
}
corral_rt_pid() {
  CORRAL_RT_NS=$(_corral_rt_ns_of "$1") corral_rt_ctr task ls 2>/dev/null |
    awk -v id="$1" '$1 == id {print $2}'
}
_corral_rt_task_is() { [[ $(corral_rt_task_status "$1") == "$2" ]]; }

# corral_rt_exec [--user U] ID CMD...: runs CMD in container ID in the foreground, passing its
# output through; returns its exit status. Gives up after CORRAL_RT_EXEC_TIMEOUT seconds
# (default 60; exit status 124), so that a hung exec fails the test instead of outliving it.
corral_rt_exec() {
  local user=()
  if [[ $1 == --user ]]; then
    user=(--user "$2")
    shift 2
  fi
  local id=$1
  shift
  [[ -n $CORRAL_RT_ADDRESS ]] || corral_rt_die "corral_rt_exec: no containerd started"
  CORRAL_RT_EXEC_SEQ=$((CORRAL_RT_EXEC_SEQ + 1))
  # $RANDOM too: a call in $(...) cannot advance the parent's sequence number.
  # --foreground: ctr stays in the shell's process group (it may read a terminal).
  timeout --foreground -k 5 "${CORRAL_RT_EXEC_TIMEOUT:-60}" \
    ctr --address "$CORRAL_RT_ADDRESS" --namespace "$(_corral_rt_ns_of "$id")" task exec \
    "${user[@]}" --fifo-dir "$CORRAL_RT_CONTAINERD_DIR/fifo" \
    --exec-id "exec-$$-$CORRAL_RT_EXEC_SEQ-$RANDOM" "$id" "$@"
}

# corral_rt_kill ID: SIGKILLs container ID's task, waits for it to stop, deletes the task and
# the container.
corral_rt_kill() {
  local id=$1 ns
  ns=$(_corral_rt_ns_of "$id")
  local CORRAL_RT_NS=$ns # this container's namespace, for every ctr call below
  corral_rt_ctr task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  corral_rt_wait_for 10 _corral_rt_task_gone_or_stopped "$id" ||
    corral_rt_log "container $id did not stop within 10 s"
  corral_rt_ctr task delete -f "$id" >/dev/null 2>&1 || true
  corral_rt_ctr container delete "$id" >/dev/null 2>&1 || true
  local kept=() c
  for c in "${CORRAL_RT_CONTAINERS[@]}"; do [[ $c == "$id" ]] || kept+=("$c"); done
  CORRAL_RT_CONTAINERS=("${kept[@]}")
  unset "CORRAL_RT_PIDS[$id]" "CORRAL_RT_CONTAINER_NS[$id]"
}
# corral_rt_kill_many [PREFIX]: corral_rt_kill for every container of the current namespace
# this harness started (whose id starts with PREFIX), 8 in parallel (for hundreds of them).
corral_rt_kill_many() {
  local prefix=${1:-} c ids=() kept=()
  for c in "${CORRAL_RT_CONTAINERS[@]}"; do
    [[ $(_corral_rt_ns_of "$c") == "$CORRAL_RT_NS" && $c == "$prefix"* ]] && ids+=("$c")
  done
  ((${#ids[@]})) || return 0
  local ctr=(ctr --address "$CORRAL_RT_ADDRESS" --namespace "$CORRAL_RT_NS")
  printf '%s\n' "${ids[@]}" | xargs -P 8 -I{} "${ctr[@]}" task kill -s SIGKILL {} >/dev/null 2>&1 || true
  corral_rt_wait_for 30 _corral_rt_none_running "$prefix" ||
    corral_rt_log "containers still run 30 s after SIGKILL"
  printf '%s\n' "${ids[@]}" | xargs -P 8 -n 16 "${ctr[@]}" task delete -f >/dev/null 2>&1 || true
  printf '%s\n' "${ids[@]}" | xargs -P 8 -n 16 "${ctr[@]}" container delete >/dev/null 2>&1 || true
  local left
  left=$(corral_rt_ctr container ls -q 2>/dev/null)
  for c in "${CORRAL_RT_CONTAINERS[@]}"; do
    if [[ $(_corral_rt_ns_of "$c") == "$CORRAL_RT_NS" && $c == "$prefix"* ]] &&
      ! grep -qxF -- "$c" <<<"$left"; then
      unset "CORRAL_RT_PIDS[$c]" "CORRAL_RT_CONTAINER_NS[$c]"
    else
      kept+=("$c")
    fi
  done
  CORRAL_RT_CONTAINERS=("${kept[@]}")
}
_corral_rt_none_running() {
  ! corral_rt_ctr task ls 2>/dev/null | awk -v p="$1" 'index($1, p) == 1 && $3 == "RUNNING"' | grep -q .
}
_corral_rt_task_gone_or_stopped() {
  local s
  s=$(corral_rt_task_status "$1")
  [[ -z $s || $s == STOPPED ]]
}

# corral_rt_cleanup: removes every container this harness started, stops its containerd and
# deletes its temp dirs. Idempotent; safe from `trap corral_rt_cleanup EXIT`.
corral_rt_cleanup() {
  local rc=$?
  local c
  # Everything below runs whatever fails: a cleanup cut short leaves containers running.
  set +e
  corral_rt_stop_corrald TERM
  corral_rt_stop_fd_holder
  if ((${#CORRAL_RT_CONTAINERS[@]})) && [[ -n $CORRAL_RT_CONTAINERD_DIR ]]; then
    # The containers' shims only exit when containerd deletes their tasks: bring back a
    # containerd the test stopped so that nothing is left running.
    if [[ -z $CORRAL_RT_CONTAINERD_PID ]] || ! kill -0 "$CORRAL_RT_CONTAINERD_PID" 2>/dev/null; then
      CORRAL_RT_CONTAINERD_PID=
      if ! corral_rt_start_containerd "$CORRAL_RT_CONTAINERD_DIR"; then
        # Last resort: kill the init processes we started (their shims stay behind).
        for c in "${CORRAL_RT_CONTAINERS[@]}"; do
          [[ -n ${CORRAL_RT_PIDS[$c]:-} ]] && kill -KILL "${CORRAL_RT_PIDS[$c]}" 2>/dev/null
          corral_rt_log "containerd is gone: killed container $c's pid ${CORRAL_RT_PIDS[$c]:-?}"
        done
        CORRAL_RT_CONTAINERS=()
      fi
    fi
    if ((${#CORRAL_RT_CONTAINERS[@]} > 8)); then corral_rt_kill_many; fi
    for c in "${CORRAL_RT_CONTAINERS[@]}"; do corral_rt_kill "$c"; done
  fi
  CORRAL_RT_CONTAINERS=()
  corral_rt_stop_containerd TERM
  local d
  for d in "${CORRAL_RT_TMPDIRS[@]}"; do
    [[ -d $d ]] || continue
    # --one-file-system: never descend into something mounted under the dir.
    rm -rf --one-file-system "$d" 2>/dev/null || corral_rt_log "cannot remove $d"
  done
  CORRAL_RT_TMPDIRS=()
  return "$rc"
}

# ---- the agent -------------------------------------------------------------------------------

CORRAL_RT_BIN=${CORRAL_RT_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bin}
CORRAL_RT_CORRALD_PID=
CORRAL_RT_CORRALD_DIR=

# corral_rt_corral ARGS...: the corral CLI against the agent this harness started.
corral_rt_corral() { "$CORRAL_RT_BIN/corral" "$@"; }

# corral_rt_start_corrald DIR [FLAGS...]: starts corrald on the private containerd with its
# socket, state and events file under DIR (reusing DIR keeps its state: a restart); exports
# CORRAL_SOCKET and returns once the API answers.
corral_rt_start_corrald() {
  local dir=$1
  shift
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  _corral_rt_register_dir "$dir"
  CORRAL_RT_CORRALD_DIR=$dir
  export CORRAL_SOCKET=$dir/corral.sock
  "$CORRAL_RT_BIN/corrald" --containerd-socket "$CORRAL_RT_ADDRESS" --api-socket "$CORRAL_SOCKET" \
    --state-dir "$dir/state" --events-file "$dir/events.jsonl" "$@" >>"$dir/corrald.log" 2>&1 &
  CORRAL_RT_CORRALD_PID=$!
  if ! corral_rt_wait_for 15 corral_rt_corral get status; then
    tail -n 20 "$dir/corrald.log" >&2
    corral_rt_die "corrald did not answer within 15 s (log: $dir/corrald.log)"
  fi
  corral_rt_log "corrald pid $CORRAL_RT_CORRALD_PID answers on $CORRAL_SOCKET"
}

# corral_rt_stop_corrald [SIGNAL]: stops the agent this harness started (KILL: a crash).
corral_rt_stop_corrald() {
  local sig=${1:-TERM} pid=$CORRAL_RT_CORRALD_PID
  [[ -n $pid ]] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  CORRAL_RT_CORRALD_PID=
}

# corral_rt_stop_fd_holder: ends the agent's fd holder (`corrald fd-holder`, which outlives a
# SIGKILLed agent on purpose), by the pid it recorded.
corral_rt_stop_fd_holder() {
  local f=$CORRAL_RT_CORRALD_DIR/state/fd-holder.sock.pid pid
  [[ -n $CORRAL_RT_CORRALD_DIR && -f $f ]] || return 0
  read -r pid <"$f" || return 0
  if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == corrald ]]; then kill -TERM "$pid" 2>/dev/null; fi
  rm -f "$f"
}

# corral_rt_build_nginx_rootfs DIR: an nginx image from Debian's nginx and bash (merged /usr),
# serving "hello from nginx" on 127.0.0.1:8080 inside the container's network namespace.
corral_rt_build_nginx_rootfs() {
  local rootfs=$1
  corral_rt_build_rootfs "$rootfs" /usr/sbin/nginx bash chroot
  mkdir -p "$rootfs"/etc/nginx "$rootfs"/var/{log,lib}/nginx "$rootfs"/run
  cp /etc/nginx/mime.types "$rootfs/etc/nginx/"
  printf 'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >>"$rootfs/etc/passwd"
  printf 'www-data:x:33:\nnogroup:x:65534:\n' >>"$rootfs/etc/group"
  cat >"$rootfs/etc/nginx/nginx.conf" <<'CONF'
daemon off;
worker_processes 1;
error_log stderr;
pid /run/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 127.0.0.1:8080;
    location / { default_type text/plain; return 200 "hello from nginx\n"; }
  }
}
CONF
}

# corral_rt_http ID: GET / from container ID's nginx, from the host, inside the container's
# network namespace (the test's own namespace: nothing leaves the machine).
corral_rt_http() {
  nsenter -t "${CORRAL_RT_PIDS[$1]}" -n curl -s --max-time 5 http://127.0.0.1:8080/
}

// SPDX-License-Identifier: GPL-2.0
/* The system monitor (issue 10): every process start, exec and exit on the node, and the file
 * opens and network calls (connect, bind, accept) of the workloads whose visibility asks for
 * them, as events of one ring buffer (bpf/shared/monitor.h). tp_btf programs: they run in the
 * task's context, after the fact, and never delay or change what they see. What the ring
 * buffer cannot take is counted per kind in `dropped`. */
// clang-format off
#include "vmlinux.h" // first: the kernel's types, which the libbpf headers use
// clang-format on
#include "shared/monitor.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CORRAL_MONITOR_KINDS);
  __type(key, __u32);
  __type(value, __u64);
} dropped SEC(".maps");

static __always_inline void count_drop(__u32 kind) {
  __u64* n = bpf_map_lookup_elem(&dropped, &kind);
  if (n) *n += 1;
}

/* `p` is a BTF pointer (a tp_btf argument, or bpf_get_current_task_btf()): its fields are read
 * with plain loads, which the compiler relocates as BPF_CORE_READ's do (vmlinux.h marks every
 * type preserve_access_index) and the verifier guards against faults, without BPF_CORE_READ's
 * helper call per field. This runs for every reported event: in bench/monitor_bench (with
 * kernel.bpf_stats_enabled) sys_exit's average over the open/close loop went from ~360 ns
 * with BPF_CORE_READ here to ~120-200 ns. */
static __always_inline void fill(struct corral_monitor_task* e, struct task_struct* p, __u32 kind) {
  e->kind = kind;
  e->tgid = p->tgid;
  e->pid = p->pid;
  e->ppid = p->real_parent->tgid;
  e->uid = p->real_cred->uid.val;
  e->cgroup = p->cgroups->dfl_cgrp->kn->id;
  e->mntns = p->nsproxy->mnt_ns->ns.inum;
  e->time_ns = bpf_ktime_get_boot_ns();
  /* The pid and pid namespace the task sees itself in: the last level of its struct pid
   * (a variable index: read with a helper). */
  struct pid* pid = p->thread_pid;
  const unsigned int level = pid->level;
  struct upid upid = {};
  bpf_core_read(&upid, sizeof(upid), &pid->numbers[level]);
  e->nspid = upid.nr;
  e->pidns = BPF_CORE_READ(upid.ns, ns.inum);
  e->exit_code = 0;
  e->pad = 0;
  __builtin_memcpy(e->comm, p->comm, sizeof(e->comm));
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(monitor_fork, struct task_struct* parent, struct task_struct* child) {
  /* A new thread of the same process is not a process start. */
  if (BPF_CORE_READ(child, tgid) == BPF_CORE_READ(parent, tgid)) return 0;
  struct corral_monitor_task* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count_drop(CORRAL_MONITOR_FORK);
    return 0;
  }
  fill(e, child, CORRAL_MONITOR_FORK);
  /* The child's real_parent is set already; its nsproxy is its parent's until it unshares. */
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(monitor_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  struct corral_monitor_exec* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count_drop(CORRAL_MONITOR_EXEC);
    return 0;
  }
  fill(&e->task, p, CORRAL_MONITOR_EXEC);
  const char* filename = BPF_CORE_READ(bprm, filename);
  long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), filename);
  e->path_len = n > 0 ? n : 0;
  /* argv as the new image sees it: NUL-separated strings between arg_start and arg_end. */
  struct mm_struct* mm = BPF_CORE_READ(p, mm);
  const unsigned long start = BPF_CORE_READ(mm, arg_start);
  const unsigned long end = BPF_CORE_READ(mm, arg_end);
  unsigned long len = end > start ? end - start : 0;
  if (len > CORRAL_MONITOR_ARGS_MAX - 1)
    len = CORRAL_MONITOR_ARGS_MAX - 1; /* bounded for the verifier */
  len &= CORRAL_MONITOR_ARGS_MAX - 1;
  e->args_len = 0;
  if (len > 0 && bpf_probe_read_user(e->args, len, (void*)start) == 0) e->args_len = len;
  /* The controlling terminal is the session's, kept in signal_struct (NULL when none). */
  e->tty[0] = '\0';
  struct tty_struct* tty = BPF_CORE_READ(p, signal, tty);
  if (tty) BPF_CORE_READ_STR_INTO(&e->tty, tty, name);
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(monitor_exit, struct task_struct* p) {
  /* The process ends with its group leader; other threads' exits are not process exits. */
  if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid)) return 0;
  struct corral_monitor_task* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count_drop(CORRAL_MONITOR_EXIT);
    return 0;
  }
  fill(e, p, CORRAL_MONITOR_EXIT);
  e->exit_code = BPF_CORE_READ(p, exit_code);
  bpf_ringbuf_submit(e, 0);
  return 0;
}

/* ---- File and network visibility ------------------------------------------------------
 * Only for tasks whose cgroup v2 id is in `visible`. The hooks are the raw syscall
 * tracepoints sys_enter/sys_exit as tp_btf (BTF only: the per-syscall tracepoints need
 * tracefs to look up their ids, and it is often not mounted; kprobes, fentry and LSM
 * programs do not load on every kernel we run on). They run for every system call on the
 * node, so userspace attaches them only while `visible` has an entry, and each first
 * compares the syscall number (a register) before the one map lookup that a task outside
 * the visible workloads costs.
 *
 * Not seen: opens and socket calls made through io_uring (no system call; the io_uring
 * opcodes would need their own hooks), 32-bit (ia32) system calls (other numbers, and
 * socketcall(2); skipped, see in_compat()), sendto/sendmsg with an address (UDP without
 * connect), and the file handle calls (open_by_handle_at). A path is read from the
 * caller's memory when the call returns: another thread of the caller may have changed it
 * since the kernel read it (good enough for visibility, not for enforcement). */

/* x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define NR_OPEN 2
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_BIND 49
#define NR_CREAT 85
#define NR_OPENAT 257
#define NR_ACCEPT4 288
#define NR_OPENAT2 437

/* include/uapi/asm-generic/fcntl.h, include/uapi/linux/stat.h, include/linux/socket.h */
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
/* arch/x86/include/asm/thread_info.h: the task is in a 32-bit system call. */
#define TS_COMPAT 0x0002
/* include/linux/errno.h: the kernel-internal "restart" codes a call interrupted by a signal
 * returns to the exit path; user space sees EINTR or the call runs again. */
#define ERESTARTSYS 512
#define ERESTART_RESTARTBLOCK 516
#define EINTR 4

/* cgroup v2 id -> enum corral_monitor_visible mask. Sized for the containers of one node
 * (the kubelet's default is 110 pods); userspace reports a full map as an error. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u32);
} visible SEC(".maps");

/* What sys_enter saw of a call that sys_exit reports; nr 0 when none is under way. */
struct pending_call {
  __u64 path; /* file: the caller's path pointer */
  __u32 nr;   /* the system call */
  __u32 flags;
  __s32 fd;
  __u32 pad;
  struct corral_monitor_sockaddr addr; /* connect, bind: the address passed */
};

/* Per thread: a thread is in one system call at a time. Task local storage rather than a
 * hash keyed by thread id: it is made on a thread's first reported call, found without
 * hashing, and freed with the thread, so it needs no size and leaves nothing behind when a
 * call's exit is not seen (the programs were detached meanwhile). */
struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct pending_call);
} pending SEC(".maps");

static __always_inline __u32 kind_of(long nr) {
  switch (nr) {
  case NR_OPEN:
  case NR_CREAT:
  case NR_OPENAT:
  case NR_OPENAT2: return CORRAL_MONITOR_FILE;
  case NR_CONNECT:
  case NR_BIND:
  case NR_ACCEPT:
  case NR_ACCEPT4: return CORRAL_MONITOR_NETWORK;
  default: return 0;
  }
}

static __always_inline __u32 visible_mask(void) {
  __u64 cgroup = bpf_get_current_cgroup_id();
  __u32* mask = bpf_map_lookup_elem(&visible, &cgroup);
  return mask ? *mask : 0;
}

/* An ia32 system call reaches the same tracepoint with its own numbers (42 is pipe there). */
static __always_inline bool in_compat(void) {
  return bpf_get_current_task_btf()->thread_info.status & TS_COMPAT;
}

/* The address as connect/bind were given it; `len` is theirs (addrlen). */
static __always_inline void read_sockaddr(struct corral_monitor_sockaddr* a, const void* uaddr,
                                          unsigned long len) {
  __u16 family = 0;
  if (!uaddr || len < sizeof(family) || bpf_probe_read_user(&family, sizeof(family), uaddr)) return;
  a->family = family;
  if (family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    struct sockaddr_in in = {};
    if (bpf_probe_read_user(&in, sizeof(in), uaddr)) return;
    a->port = bpf_ntohs(in.sin_port);
    __builtin_memcpy(a->addr, &in.sin_addr, 4);
    a->len = 4;
  } else if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 in6 = {};
    if (bpf_probe_read_user(&in6, sizeof(in6), uaddr)) return;
    a->port = bpf_ntohs(in6.sin6_port);
    __builtin_memcpy(a->addr, &in6.sin6_addr, 16);
    a->len = 16;
  } else if (family == AF_UNIX && len > sizeof(family)) {
    unsigned long n = len - sizeof(family);
    if (n > CORRAL_MONITOR_ADDR_MAX) n = CORRAL_MONITOR_ADDR_MAX;
    if (bpf_probe_read_user(a->addr, n & 127, (const char*)uaddr + sizeof(family))) return;
    a->len = n;
  }
}

/* `regs` is a BTF pointer: its registers are plain loads (PT_REGS_PARM*_SYSCALL), as in fill(). */
SEC("tp_btf/sys_enter")
int BPF_PROG(monitor_sys_enter, struct pt_regs* regs, long nr) {
  const __u32 kind = kind_of(nr);
  if (!kind) return 0;
  const __u32 mask = visible_mask();
  if (!(mask & (kind == CORRAL_MONITOR_FILE ? CORRAL_MONITOR_VISIBLE_FILE
                                            : CORRAL_MONITOR_VISIBLE_NETWORK)))
    return 0;
  if (in_compat()) return 0;
  struct pending_call* c =
      bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!c) {
    count_drop(kind);
    return 0;
  }
  c->nr = nr;
  c->fd = -1;
  switch (nr) {
  case NR_OPEN:
    c->path = PT_REGS_PARM1_SYSCALL(regs);
    c->flags = PT_REGS_PARM2_SYSCALL(regs);
    break;
  case NR_CREAT: /* creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode) */
    c->path = PT_REGS_PARM1_SYSCALL(regs);
    c->flags = O_CREAT | O_WRONLY | O_TRUNC;
    break;
  case NR_OPENAT:
    c->path = PT_REGS_PARM2_SYSCALL(regs);
    c->flags = PT_REGS_PARM3_SYSCALL(regs);
    break;
  case NR_OPENAT2: {
    c->path = PT_REGS_PARM2_SYSCALL(regs);
    struct open_how* how = (struct open_how*)PT_REGS_PARM3_SYSCALL(regs);
    __u64 flags = 0;
    bpf_probe_read_user(&flags, sizeof(flags), &how->flags);
    c->flags = flags;
    break;
  }
  case NR_CONNECT:
  case NR_BIND:
    c->fd = PT_REGS_PARM1_SYSCALL(regs);
    __builtin_memset(&c->addr, 0, sizeof(c->addr));
    read_sockaddr(&c->addr, (const void*)PT_REGS_PARM2_SYSCALL(regs), PT_REGS_PARM3_SYSCALL(regs));
    break;
  default: /* accept, accept4: the peer is read from the new socket at exit */
    c->fd = PT_REGS_PARM1_SYSCALL(regs);
    __builtin_memset(&c->addr, 0, sizeof(c->addr));
    break;
  }
  return 0;
}

/* The socket behind one of the current task's fds, or NULL (not a socket, or no such fd). */
static __always_inline struct sock* sock_of(int fd) {
  if (fd < 0) return NULL;
  struct task_struct* t = (struct task_struct*)bpf_get_current_task();
  struct fdtable* fdt = BPF_CORE_READ(t, files, fdt);
  if ((unsigned int)fd >= BPF_CORE_READ(fdt, max_fds)) return NULL;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* f = NULL;
  if (bpf_core_read(&f, sizeof(f), &fds[fd]) || !f) return NULL;
  /* A socket's file is on sockfs with an S_IFSOCK inode; its private_data is the socket. */
  if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK) return NULL;
  struct socket* sock = BPF_CORE_READ(f, private_data);
  return BPF_CORE_READ(sock, sk);
}

/* An accepted connection's peer, from its socket (whether or not the caller asked for it). */
static __always_inline void read_peer(struct corral_monitor_sockaddr* a, struct sock* sk,
                                      __u16 family) {
  a->family = family;
  a->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == AF_INET) {
    __be32 ip = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(a->addr, &ip, 4);
    a->len = 4;
  } else if (family == AF_INET6) {
    BPF_CORE_READ_INTO(&a->addr, sk, __sk_common.skc_v6_daddr);
    a->len = 16;
  } else {
    a->port = 0; /* AF_UNIX peers are mostly unnamed: the family alone */
  }
}

static __always_inline void emit_file(const struct pending_call* c, long ret) {
  struct corral_monitor_file* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count_drop(CORRAL_MONITOR_FILE);
    return;
  }
  fill(&e->task, bpf_get_current_task_btf(), CORRAL_MONITOR_FILE);
  e->result = ret;
  e->flags = c->flags;
  e->pad = 0;
  const long n = bpf_probe_read_user_str(e->path, sizeof(e->path), (const void*)c->path);
  e->path_len = n > 0 ? n : 0;
  bpf_ringbuf_submit(e, 0);
}

static __always_inline void emit_net(const struct pending_call* c, long ret) {
  struct corral_monitor_net* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count_drop(CORRAL_MONITOR_NETWORK);
    return;
  }
  fill(&e->task, bpf_get_current_task_btf(), CORRAL_MONITOR_NETWORK);
  const bool accept = c->nr == NR_ACCEPT || c->nr == NR_ACCEPT4;
  e->op = accept ? CORRAL_MONITOR_ACCEPT
                 : (c->nr == NR_CONNECT ? CORRAL_MONITOR_CONNECT : CORRAL_MONITOR_BIND);
  e->result = ret;
  e->fd = accept && ret >= 0 ? (__s32)ret : c->fd;
  e->pad = 0;
  e->sock_family = e->sock_type = e->sock_protocol = 0;
  __builtin_memcpy(&e->addr, &c->addr, sizeof(e->addr));
  struct sock* sk = sock_of(e->fd);
  if (sk) {
    e->sock_family = BPF_CORE_READ(sk, __sk_common.skc_family);
    e->sock_type = BPF_CORE_READ(sk, sk_type);
    e->sock_protocol = BPF_CORE_READ(sk, sk_protocol);
    if (accept && ret >= 0) read_peer(&e->addr, sk, e->sock_family);
  }
  bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(monitor_sys_exit, struct pt_regs* regs, long ret) {
  const long nr = regs->orig_ax; /* the number the call entered with */
  const __u32 kind = kind_of(nr);
  if (!kind) return 0;
  /* No second visibility check: a call is reported whatever `visible` says now (it was
   * visible when the call began). */
  struct pending_call* c = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
  if (!c || c->nr != nr) return 0;
  if (ret <= -ERESTARTSYS && ret >= -ERESTART_RESTARTBLOCK) ret = -EINTR;
  if (kind == CORRAL_MONITOR_FILE)
    emit_file(c, ret);
  else
    emit_net(c, ret);
  c->nr = 0;
  return 0;
}

// SPDX-License-Identifier: GPL-2.0
/* cgroup/sock_create: network protocol rules (DESIGN.md "Enforcement backends", cgroup-net).
 *
 * Attached (BPF_F_ALLOW_MULTI, legacy attach: it stays attached while the cgroup lives,
 * whatever happens to the agent) to each enforced workload's cgroup v2; runs in the context
 * of the task calling socket(), before the fd exists. Returning 0 makes socket() fail with
 * EPERM (net/ipv4/af_inet.c inet_create -> BPF_CGROUP_RUN_PROG_INET_SOCK).
 *
 * The verdict comes from a table user space computed with decide() for each set of protocol
 * names and acting program; the acting program (fromSource) is kept per process by the
 * exec/fork/exit tracepoints below: no user-space round trip on the socket path. */
// clang-format off
#include "vmlinux.h"
// clang-format on
#include "shared/cgroupnet.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define SOCK_SEQPACKET 5
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define IPPROTO_SCTP 132
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPTCP 262
/* cgroup levels searched above the current one: room for cgroups a workload creates below
 * its own (k8s puts containers at level 4-5). */
#define MAX_CGROUP_LEVELS 24

/* Enforced workloads by cgroup id: one per container with network rules. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct corral_net_workload);
} net_workloads SEC(".maps");

/* Verdicts: at most 8 name sets occur (tcp, udp, icmp, icmpv6, sctp, raw, raw+icmp,
 * raw+icmpv6, other) per (workload, fromSource program + 1), two generations while a change
 * is written; 65536 covers 1000 workloads with a few fromSource programs each. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct corral_net_key);
  __type(value, struct corral_net_verdict);
} net_verdicts SEC(".maps");

/* Executables fromSource rules name (all workloads): id > 0. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct corral_net_exe);
  __type(value, __u16);
} net_exes SEC(".maps");

/* Processes (host tgid) whose image is one of `net_exes`: the program's id. Only such
 * processes have an entry, so this holds the running instances of named programs. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u16);
} net_tasks SEC(".maps");

/* Alerts: 256 KiB of 40-byte reports; never blocks (bpf_ringbuf_reserve fails instead). */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} net_events SEC(".maps");

/* [0]: reports lost to a full ring buffer; [1]: tasks not recorded (net_tasks full). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} net_counters SEC(".maps");

static __always_inline void count(__u32 i) {
  __u64* c = bpf_map_lookup_elem(&net_counters, &i);
  if (c) __sync_fetch_and_add(c, 1);
}

/* The policy names a socket answers to (docs/policy.md "Network rules"). */
static __always_inline __u16 names_of(__u32 family, __u32 type, __u32 protocol) {
  if (family != AF_INET && family != AF_INET6) return 0;
  __u16 n = 0;
  if (type == SOCK_RAW) n |= CORRAL_NET_RAW;
  if (family == AF_INET && protocol == IPPROTO_ICMP && (type == SOCK_RAW || type == SOCK_DGRAM))
    n |= CORRAL_NET_ICMP;
  if (family == AF_INET6 && protocol == IPPROTO_ICMPV6 && (type == SOCK_RAW || type == SOCK_DGRAM))
    n |= CORRAL_NET_ICMPV6;
  if (type == SOCK_STREAM && (protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP))
    n |= CORRAL_NET_TCP;
  if (type == SOCK_DGRAM && (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE))
    n |= CORRAL_NET_UDP;
  if ((type == SOCK_STREAM || type == SOCK_SEQPACKET) && protocol == IPPROTO_SCTP)
    n |= CORRAL_NET_SCTP;
  return n ? n : CORRAL_NET_OTHER;
}

/* The enforced workload of the current task: its own cgroup, or the nearest ancestor that
 * is one (a workload may create cgroups below its own; the program runs there too). */
static __always_inline struct corral_net_workload* workload_of(__u64* cgroup) {
  __u64 id = bpf_get_current_cgroup_id();
  struct corral_net_workload* w = bpf_map_lookup_elem(&net_workloads, &id);
  if (w) {
    *cgroup = id;
    return w;
  }
  struct corral_net_workload* found = 0;
  for (int level = 0; level < MAX_CGROUP_LEVELS; level++) {
    id = bpf_get_current_ancestor_cgroup_id(level);
    if (id == 0) break;
    w = bpf_map_lookup_elem(&net_workloads, &id);
    if (w) {
      found = w;
      *cgroup = id;
    }
  }
  return found;
}

SEC("cgroup/sock_create")
int corral_sock(struct bpf_sock* sk) {
  const __u32 family = sk->family, type = sk->type, protocol = sk->protocol;
  const __u16 names = names_of(family, type, protocol);
  if (names == 0) return 1; /* not a network socket (unix, netlink, ...) */
  __u64 cgroup = 0;
  struct corral_net_workload* w = workload_of(&cgroup);
  if (!w) return 1; /* attached, but the workload is being released */
  const __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  __u16* src = bpf_map_lookup_elem(&net_tasks, &tgid);
  struct corral_net_key key = {
      .cgroup = cgroup, .gen = w->gen, .names = names, .source = src ? *src : 0};
  struct corral_net_verdict* v = bpf_map_lookup_elem(&net_verdicts, &key);
  if (!v && key.source != 0) {
    key.source = 0;
    v = bpf_map_lookup_elem(&net_verdicts, &key);
  }
  if (!v) {
    /* Never in practice (user space writes every name set). The lookup also keeps
     * `net_exes` referenced by this program, which outlives the agent: a restarted agent
     * takes it over with the others and keeps the program ids it holds. */
    struct corral_net_exe none = {};
    if (bpf_map_lookup_elem(&net_exes, &none)) count(1);
  }
  const __u32 allow = v ? v->allow : w->missing_allow;
  if (v && v->alert) {
    struct corral_net_event* e = bpf_ringbuf_reserve(&net_events, sizeof(*e), 0);
    if (e) {
      e->cgroup = cgroup;
      e->gen = key.gen;
      e->names = names;
      e->source = key.source;
      e->tgid = tgid;
      e->tid = (__u32)pid_tgid;
      e->family = family;
      e->type = type;
      e->protocol = protocol;
      e->allow = allow;
      bpf_ringbuf_submit(e, 0);
    } else {
      count(0);
    }
  }
  return allow ? 1 : 0;
}

/* The acting program of each process, for fromSource: set at exec from the new image's
 * (dev, ino), inherited at fork, dropped at exit. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(corral_net_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  struct inode* inode = BPF_CORE_READ(bprm, file, f_inode);
  struct corral_net_exe exe = {.dev = BPF_CORE_READ(inode, i_sb, s_dev),
                               .ino = BPF_CORE_READ(inode, i_ino)};
  __u32 tgid = BPF_CORE_READ(p, tgid);
  __u16* id = bpf_map_lookup_elem(&net_exes, &exe);
  if (id) {
    if (bpf_map_update_elem(&net_tasks, &tgid, id, BPF_ANY) != 0) count(1);
  } else {
    bpf_map_delete_elem(&net_tasks, &tgid);
  }
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(corral_net_fork, struct task_struct* parent, struct task_struct* child) {
  __u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
  if (ptgid == ctgid) return 0; /* a thread */
  __u16* id = bpf_map_lookup_elem(&net_tasks, &ptgid);
  if (id) {
    __u16 v = *id;
    if (bpf_map_update_elem(&net_tasks, &ctgid, &v, BPF_ANY) != 0) count(1);
  }
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(corral_net_exit, struct task_struct* p) {
  __u32 pid = BPF_CORE_READ(p, pid), tgid = BPF_CORE_READ(p, tgid);
  if (pid == tgid) bpf_map_delete_elem(&net_tasks, &tgid);
  return 0;
}

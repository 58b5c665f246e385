// SPDX-License-Identifier: GPL-2.0
/* Capability rules (src/enforce/capabilities/capability_enforcer.h says which program the
 * loader picks, strongest first):
 *   cap_lsm      lsm/capable                 enforce: -EPERM fails the check
 *   cap_fmod_ret fmod_ret/security_capable   enforce: -EPERM fails the check
 *   cap_tp       tp_btf/cap_capable          audit: report each use (ret == 0), and with
 *                                            the operator's opt-in SIGKILL the user of a
 *                                            blocked capability (the syscall completes)
 * Only tasks of enforced workloads (by cgroup v2 id) and only their own (subjective)
 * credentials count: a check about another task's credentials is no use by current.
 * The kernel's noaudit probes (CAP_OPT_NOAUDIT: "would it have the capability?", e.g. every
 * private writable mmap asks for CAP_SYS_ADMIN) are not uses: never reported, never a
 * reason to kill. The tracepoint does not carry `opts`, so cap_tp tells them by the calling
 * function (the ranges user space found in /proc/kallsyms). */
// clang-format off
#include "vmlinux.h" // first: the kernel's types, which the libbpf headers use
// clang-format on
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "shared/capabilities.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define EPERM 1
#define CAP_OPT_NOAUDIT 0x2  /* include/linux/security.h: BIT(1) */
#define MAX_CGROUP_LEVELS 24 /* as the exec backstop: k8s nests containers 4-5 deep */
#define STACK_DEPTH 8

/* Set by the loader before load. */
const volatile __u32 kill_blocked = 0;
/* [start, end) of cap_capable, and of the functions whose checks are noaudit probes. */
const volatile __u64 cap_capable_range[2] = {};
const volatile __u64 noaudit_ranges[CORRAL_CAP_NOAUDIT_FUNCS][2] = {};

/* One entry per enforced workload that has capability rules. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, struct corral_cap_workload);
} workloads SEC(".maps");

/* fromSource verdicts: a few programs per rule; 16384 covers 1000 workloads with room. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct corral_cap_source);
  __type(value, __u32);
} sources SEC(".maps");

/* Last report per (workload, process, capability); LRU: old ones make room. */
struct rate_key {
  __u64 cgroup;
  __u32 tgid;
  __u32 cap;
};
struct rate_value {
  __u64 last_ns;
  __u32 suppressed;
  __u32 pad;
};
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct rate_key);
  __type(value, struct rate_value);
} reported SEC(".maps");

/* 256 KiB: ~500 reports in flight; a full buffer drops (counted), never blocks. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CORRAL_CAP_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 i) {
  __u64* c = bpf_map_lookup_elem(&counters, &i);
  if (c) *c += 1;
}

static __always_inline __u64 workload_of(struct corral_cap_workload** w) {
  for (int level = 1; level < MAX_CGROUP_LEVELS; level++) {
    __u64 id = bpf_get_current_ancestor_cgroup_id(level);
    if (id == 0) break;
    *w = bpf_map_lookup_elem(&workloads, &id);
    if (*w) return id;
  }
  return 0;
}

static __always_inline int in_range(__u64 a, __u64 start, __u64 end) {
  return start != 0 && a >= start && a < end;
}

/* Whether the cap_capable call being traced came from a noaudit caller: the frame after
 * cap_capable (its caller) or the one after that (security_capable's caller). */
static __always_inline int noaudit_caller(void* ctx) {
  __u64 stack[STACK_DEPTH] = {};
  if (cap_capable_range[0] == 0) return 0; /* no symbols: every check counts */
  if (bpf_get_stack(ctx, stack, sizeof(stack), 0) <= 0) return 0;
  int at = -1;
  for (int i = 0; i < 5; i++) {
    if (in_range(stack[i], cap_capable_range[0], cap_capable_range[1])) {
      at = i;
      break;
    }
  }
  if (at < 0) return 0;
  for (int d = 1; d <= 2; d++) {
    const int i = at + d;
    if (i >= STACK_DEPTH) break;
    const __u64 a = stack[i & (STACK_DEPTH - 1)];
    for (int f = 0; f < CORRAL_CAP_NOAUDIT_FUNCS; f++)
      if (in_range(a, noaudit_ranges[f][0], noaudit_ranges[f][1])) return 1;
  }
  return 0;
}

/* The file's path inside its mount, leaf first: the mount's root ends the walk. */
static __always_inline void exe_parts(char parts[CORRAL_CAP_PARTS][CORRAL_CAP_PART_MAX],
                                      __u32* nparts, __u32* deeper, struct file* file) {
  struct dentry* d = BPF_CORE_READ(file, f_path.dentry);
  struct dentry* root = BPF_CORE_READ(file, f_path.mnt, mnt_root);
  *nparts = 0;
  *deeper = 0;
  for (int i = 0; i < CORRAL_CAP_PARTS; i++) {
    struct dentry* parent = BPF_CORE_READ(d, d_parent);
    if (d == root || parent == d) return;
    bpf_probe_read_kernel_str(parts[i], CORRAL_CAP_PART_MAX, BPF_CORE_READ(d, d_name.name));
    *nparts = i + 1;
    d = parent;
  }
  *deeper = d != root && BPF_CORE_READ(d, d_parent) != d;
}

/* The verdict for capability `cap` of the current task, or NONE when it is no workload's. */
static __always_inline __u32 verdict(int cap, __u64* cgroup, struct file** exe, __u64* dev,
                                     __u64* ino) {
  struct corral_cap_workload* w = 0;
  if (cap < 0 || cap >= CORRAL_CAP_MAX) return CORRAL_CAP_NONE;
  *cgroup = workload_of(&w);
  if (!w) return CORRAL_CAP_NONE;
  struct task_struct* t = bpf_get_current_task_btf();
  __u32 action = w->action[cap & (CORRAL_CAP_MAX - 1)];
  const int sourced = (w->sourced & (1ULL << cap)) != 0;
  if (action == CORRAL_CAP_NONE && !sourced) return action; /* the common case: no reads */
  *exe = BPF_CORE_READ(t, mm, exe_file);
  *dev = BPF_CORE_READ(*exe, f_inode, i_sb, s_dev);
  *ino = BPF_CORE_READ(*exe, f_inode, i_ino);
  if (sourced) {
    struct corral_cap_source k = {*cgroup, *dev, *ino, (__u32)cap, 0};
    __u32* s = bpf_map_lookup_elem(&sources, &k);
    if (s) action = *s;
  }
  return action;
}

/* Reports one use (rate-limited); kills first when asked to. */
static __always_inline void report(__u64 cgroup, int cap, __u32 action, __u32 denied,
                                   struct file* exe, __u64 dev, __u64 ino) {
  struct task_struct* t = bpf_get_current_task_btf();
  __u32 killed = 0;
  if (action == CORRAL_CAP_BLOCK && kill_blocked && !denied) {
    killed = bpf_send_signal(SIGKILL) == 0 ? 1 : 2;
    count(killed == 1 ? CORRAL_CAP_KILLED : CORRAL_CAP_KILL_FAILED);
  }
  const __u64 now = bpf_ktime_get_ns();
  struct rate_key rk = {cgroup, t->tgid, (__u32)cap};
  struct rate_value* rv = bpf_map_lookup_elem(&reported, &rk);
  __u32 suppressed = 0;
  if (rv) {
    if (now - rv->last_ns < CORRAL_CAP_REPORT_INTERVAL_NS) {
      __sync_fetch_and_add(&rv->suppressed, 1);
      count(CORRAL_CAP_SUPPRESSED);
      return;
    }
    suppressed = rv->suppressed;
  }
  struct rate_value fresh = {now, 0, 0};
  bpf_map_update_elem(&reported, &rk, &fresh, BPF_ANY);
  struct corral_cap_event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count(CORRAL_CAP_DROPPED);
    return;
  }
  e->cgroup = cgroup;
  e->dev = dev;
  e->ino = ino;
  e->cap = cap;
  e->action = action;
  e->killed = killed;
  e->denied = denied;
  e->suppressed = suppressed;
  e->host_pid = t->tgid;
  e->host_ppid = BPF_CORE_READ(t, real_parent, tgid);
  const unsigned int level = BPF_CORE_READ(t, thread_pid, level);
  e->pid = BPF_CORE_READ(t, thread_pid, numbers[level].nr);
  struct pid* parent_pid = BPF_CORE_READ(t, real_parent, thread_pid);
  const unsigned int parent_level = BPF_CORE_READ(parent_pid, level);
  const void* pid_ns = BPF_CORE_READ(t, thread_pid, numbers[level].ns);
  e->ppid = 0;
  if (parent_level >= level && BPF_CORE_READ(parent_pid, numbers[level].ns) == pid_ns)
    e->ppid = BPF_CORE_READ(parent_pid, numbers[level].nr);
  e->uid = BPF_CORE_READ(t, cred, uid.val);
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  e->nparts = 0;
  e->deeper = 0;
  if (exe) exe_parts(e->parts, &e->nparts, &e->deeper, exe);
  /* The parent's program too: a short-lived parent is gone when user space reads this. */
  e->npparts = 0;
  e->pdeeper = 0;
  struct file* pexe = BPF_CORE_READ(t, real_parent, mm, exe_file);
  if (e->ppid != 0 && pexe) exe_parts(e->pparts, &e->npparts, &e->pdeeper, pexe);
  const unsigned long start = BPF_CORE_READ(t, mm, arg_start);
  const unsigned long end = BPF_CORE_READ(t, mm, arg_end);
  __u64 size = end > start ? end - start : 0;
  if (size >= CORRAL_CAP_ARGS_MAX) size = CORRAL_CAP_ARGS_MAX - 1;
  size &= CORRAL_CAP_ARGS_MAX - 1; /* a bound the verifier can see */
  e->args_size = 0;
  if (size > 0 && bpf_probe_read_user(e->args, size, (const void*)start) == 0)
    e->args_size = (__u32)size;
  bpf_ringbuf_submit(e, 0);
  count(CORRAL_CAP_REPORTED);
}

static __always_inline int own_cred(const struct cred* cred) {
  struct task_struct* t = bpf_get_current_task_btf();
  return cred == t->cred;
}

/* Enforcing hooks: run before (fmod_ret) or after the capability LSM granted (lsm). */
static __always_inline int enforce(const struct cred* cred, int cap, unsigned int opts) {
  __u64 cgroup = 0, dev = 0, ino = 0;
  struct file* exe = 0;
  if (!own_cred(cred)) return 0;
  const __u32 action = verdict(cap, &cgroup, &exe, &dev, &ino);
  if (action == CORRAL_CAP_NONE) return 0;
  const int deny = action == CORRAL_CAP_BLOCK;
  if (deny) count(CORRAL_CAP_DENIED);
  if (opts & CAP_OPT_NOAUDIT)
    count(CORRAL_CAP_NOAUDIT);
  else
    report(cgroup, cap, action, deny, exe, dev, ino);
  return deny ? -EPERM : 0;
}

SEC("lsm/capable")
int BPF_PROG(cap_lsm, const struct cred* cred, struct user_namespace* ns, int cap,
             unsigned int opts, int ret) {
  if (ret != 0) return ret;
  return enforce(cred, cap, opts);
}

SEC("fmod_ret/security_capable")
int BPF_PROG(cap_fmod_ret, const struct cred* cred, struct user_namespace* ns, int cap,
             unsigned int opts) {
  return enforce(cred, cap, opts);
}

SEC("tp_btf/cap_capable")
int BPF_PROG(cap_tp, const struct cred* cred, struct user_namespace* target_ns,
             const struct user_namespace* capable_ns, int cap, int ret) {
  __u64 cgroup = 0, dev = 0, ino = 0;
  struct file* exe = 0;
  if (ret != 0 || !own_cred(cred)) return 0; /* not granted: nothing was used */
  const __u32 action = verdict(cap, &cgroup, &exe, &dev, &ino);
  if (action == CORRAL_CAP_NONE) return 0;
  if (noaudit_caller(ctx)) {
    count(CORRAL_CAP_NOAUDIT);
    return 0;
  }
  report(cgroup, cap, action, 0, exe, dev, ino);
  return 0;
}

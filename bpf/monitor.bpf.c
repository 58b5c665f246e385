// SPDX-License-Identifier: GPL-2.0
/* The system monitor (issue 10): every process start, exec and exit on the node as events of
 * one ring buffer (bpf/shared/monitor.h). tp_btf programs: they run in the task's context,
 * after the fact, and never delay or change what they see. What the ring buffer cannot take
 * is counted per kind in `dropped`. */
// clang-format off
#include "vmlinux.h" // first: the kernel's types, which the libbpf headers use
// clang-format on
#include "shared/monitor.h"

#include <bpf/bpf_core_read.h>
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

static __always_inline void fill(struct corral_monitor_task* e, struct task_struct* p, __u32 kind) {
  e->kind = kind;
  e->tgid = BPF_CORE_READ(p, tgid);
  e->ppid = BPF_CORE_READ(p, real_parent, tgid);
  e->uid = BPF_CORE_READ(p, real_cred, uid.val);
  e->cgroup = BPF_CORE_READ(p, cgroups, dfl_cgrp, kn, id);
  e->mntns = BPF_CORE_READ(p, nsproxy, mnt_ns, ns.inum);
  e->time_ns = bpf_ktime_get_boot_ns();
  /* The pid and pid namespace the task sees itself in: the last level of its struct pid. */
  struct pid* pid = BPF_CORE_READ(p, thread_pid);
  const unsigned int level = BPF_CORE_READ(pid, level);
  struct upid upid = {};
  bpf_core_read(&upid, sizeof(upid), &pid->numbers[level]);
  e->nspid = upid.nr;
  e->pidns = BPF_CORE_READ(upid.ns, ns.inum);
  e->exit_code = 0;
  BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
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

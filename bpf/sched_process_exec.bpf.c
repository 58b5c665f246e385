// SPDX-License-Identifier: GPL-2.0
/* tp_btf/sched_process_exec: the exec backstop (DESIGN.md "Enforcement backends").
 *
 * Runs after an exec passed every permission check and replaced the image, before the new
 * image's first instruction. A file listed in `backstop_files` for the task's mount
 * namespace must not be the exec's own file there (the fanotify backend caches such files,
 * typically ld.so, because they may be loaded as ELF interpreters): BLOCK kills the task
 * with SIGKILL (it never runs; its parent sees signal 9), AUDIT lets it run; both report.
 *
 * At this tracepoint bprm->file is the image that runs: the binary for an ELF exec (its
 * interpreter is opened apart, never bprm->file), ld.so for `ld.so prog`, the #!
 * interpreter for a script. So an allowed dynamic binary never matches here. */
// clang-format off
#include "vmlinux.h" // first: the kernel's types, which the libbpf headers use
// clang-format on
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "shared/exec_backstop.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define MNT_INTERNAL 0x4000 /* include/linux/mount.h: a kern_mount (shmem for memfd, ...) */

/* Interpreters of cached binaries, per workload: a few per workload (ld.so, and the
 * 32-bit one); 4096 covers 1000 workloads with room. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct corral_backstop_key);
  __type(value, struct corral_backstop_rule);
} files SEC(".maps");

/* Workloads' verdicts for files on internal mounts: one per enforced workload. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, struct corral_backstop_namespace);
} namespaces SEC(".maps");

/* Reports: 256 KiB holds ~500 events; a full buffer drops (counted), never blocks. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* [0] kills, [1] audits, [2] reports dropped (ring buffer full), [3] kills that failed */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 i) {
  __u64* c = bpf_map_lookup_elem(&counters, &i);
  if (c) *c += 1;
}

static __always_inline void report(struct task_struct* p, const struct corral_backstop_key* key,
                                   __u32 action, __u32 kind, const char* path) {
  if (action == CORRAL_BACKSTOP_BLOCK) {
    count(bpf_send_signal(SIGKILL) == 0 ? 0 : 3);
  } else {
    count(1);
  }
  struct corral_backstop_event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count(2);
    return;
  }
  e->key = *key;
  e->action = action;
  e->kind = kind;
  e->host_pid = BPF_CORE_READ(p, tgid);
  e->host_ppid = BPF_CORE_READ(p, real_parent, tgid);
  /* pid as seen in the task's own pid namespace (the deepest level) */
  const unsigned int level = BPF_CORE_READ(p, thread_pid, level);
  e->pid = BPF_CORE_READ(p, thread_pid, numbers[level].nr);
  /* the parent's pid in that namespace, if it lives there (not the runtime's shim) */
  struct pid* parent_pid = BPF_CORE_READ(p, real_parent, thread_pid);
  const unsigned int parent_level = BPF_CORE_READ(parent_pid, level);
  const void* pid_ns = BPF_CORE_READ(p, thread_pid, numbers[level].ns);
  e->ppid = 0;
  if (parent_level >= level && BPF_CORE_READ(parent_pid, numbers[level].ns) == pid_ns)
    e->ppid = BPF_CORE_READ(parent_pid, numbers[level].nr);
  e->uid = BPF_CORE_READ(p, cred, uid.val);
  bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
  const unsigned long start = BPF_CORE_READ(p, mm, arg_start);
  const unsigned long end = BPF_CORE_READ(p, mm, arg_end);
  __u64 size = end > start ? end - start : 0;
  if (size >= CORRAL_BACKSTOP_ARGS_MAX) size = CORRAL_BACKSTOP_ARGS_MAX - 1;
  size &= CORRAL_BACKSTOP_ARGS_MAX - 1; /* a bound the verifier can see */
  e->args_size = 0;
  if (size > 0 && bpf_probe_read_user(e->args, size, (const void*)start) == 0)
    e->args_size = (__u32)size;
  bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(backstop_exec, struct task_struct* p, pid_t old_pid, struct linux_binprm* bprm) {
  struct corral_backstop_key key = {};
  struct file* file = BPF_CORE_READ(bprm, file);
  struct inode* inode = BPF_CORE_READ(file, f_inode);
  key.ino = BPF_CORE_READ(inode, i_ino);
  key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
  /* A listed file's ignore mark silences the exec event on the mounts of the namespace it
   * was listed for, whoever runs the exec: the namespace of the mount the exec went through
   * decides (a task elsewhere may reach those mounts through /proc/<pid>/root or an fd),
   * then the task's own. An internal mount's namespace reads as 0. */
  struct vfsmount* vfsmnt = BPF_CORE_READ(file, f_path.mnt);
  struct mount* mount = (struct mount*)((char*)vfsmnt - bpf_core_field_offset(struct mount, mnt));
  const __u64 task_ns = BPF_CORE_READ(p, nsproxy, mnt_ns, ns.inum);
  key.mnt_ns = BPF_CORE_READ(mount, mnt_ns, ns.inum);
  const struct corral_backstop_rule* rule = key.mnt_ns != 0 ? bpf_map_lookup_elem(&files, &key) : 0;
  if (!rule && key.mnt_ns != task_ns) {
    key.mnt_ns = task_ns;
    rule = bpf_map_lookup_elem(&files, &key);
  }
  if (rule) {
    report(p, &key, rule->action, CORRAL_BACKSTOP_GUARDED, rule->path);
    return 0;
  }
  key.mnt_ns = task_ns;
  const int mnt_flags = BPF_CORE_READ(file, f_path.mnt, mnt_flags);
  if (!(mnt_flags & MNT_INTERNAL)) return 0;
  const struct corral_backstop_namespace* ns = bpf_map_lookup_elem(&namespaces, &key.mnt_ns);
  if (!ns || !ns->unmarked) return 0;
  const unsigned char* name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
  report(p, &key, ns->unmarked, CORRAL_BACKSTOP_UNMARKED, (const char*)name);
  return 0;
}

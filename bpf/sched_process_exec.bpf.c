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
#define FS_OPEN_EXEC_PERM 0x00040000 /* include/linux/fsnotify_backend.h */
#define PROT_READ 0x1
#define PROT_EXEC 0x4
#define READ_IMPLIES_EXEC 0x0400000 /* include/uapi/linux/personality.h */
/* cgroup v2 levels searched for an enforced workload: k8s puts containers at level 4-5;
 * the rest is room for cgroups a workload creates below its own. */
#define MAX_CGROUP_LEVELS 24

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

/* Enforced workloads by cgroup id: one per container. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, struct corral_backstop_workload);
} workloads SEC(".maps");

/* Files the permission path approved, per workload: every distinct binary, script and
 * interpreter a workload runs (a few dozen each is typical); 65536 entries of 40 bytes. A
 * full map fails the approval, so the exec is denied, never let through. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct corral_backstop_file);
  __type(value, struct corral_backstop_approved);
} approved SEC(".maps");

/* Processes and files already reported by the mapping check under Audit, so that each page
 * fault of the same file is not reported again. LRU: old ones make room. */
struct corral_backstop_seen {
  __u32 tgid;
  __u32 pad;
  __u64 dev;
  __u64 ino;
};
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, struct corral_backstop_seen);
  __type(value, __u8);
} mapped_seen SEC(".maps");

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

/* Kernels before 6.6 keep ctime as one timespec64; 6.6 renamed it; 6.7+ splits it. */
struct inode___v61 {
  struct timespec64 i_ctime;
} __attribute__((preserve_access_index));
struct inode___v66 {
  struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

static __always_inline void inode_ctime(struct inode* inode, __s64* sec, __u32* nsec) {
  if (bpf_core_field_exists(inode->i_ctime_sec)) {
    *sec = BPF_CORE_READ(inode, i_ctime_sec);
    /* the top bits carry flags (multigrain timestamps: I_CTIME_QUERIED) */
    *nsec = BPF_CORE_READ(inode, i_ctime_nsec) & 0x3fffffff;
  } else if (bpf_core_field_exists(((struct inode___v66*)inode)->__i_ctime)) {
    *sec = BPF_CORE_READ((struct inode___v66*)inode, __i_ctime.tv_sec);
    *nsec = BPF_CORE_READ((struct inode___v66*)inode, __i_ctime.tv_nsec);
  } else {
    *sec = BPF_CORE_READ((struct inode___v61*)inode, i_ctime.tv_sec);
    *nsec = BPF_CORE_READ((struct inode___v61*)inode, i_ctime.tv_nsec);
  }
}

/* The enforced workload of the current task: the shallowest of its cgroup's ancestors (or
 * itself) listed in `workloads`. 0 when none. */
static __always_inline __u64 workload_of(const struct corral_backstop_workload** w) {
  for (int level = 1; level < MAX_CGROUP_LEVELS; level++) {
    __u64 id = bpf_get_current_ancestor_cgroup_id(level);
    if (id == 0) break;
    *w = bpf_map_lookup_elem(&workloads, &id);
    if (*w) return id;
  }
  return 0;
}

/* The file's path inside its mount, leaf first: the mount's root ends the walk (the
 * container's root for its root filesystem). */
static __always_inline void path_parts(struct corral_backstop_event* e, struct file* file) {
  struct dentry* d = BPF_CORE_READ(file, f_path.dentry);
  struct dentry* root = BPF_CORE_READ(file, f_path.mnt, mnt_root);
  e->nparts = 0;
  e->deeper = 0;
  for (int i = 0; i < CORRAL_BACKSTOP_PARTS; i++) {
    struct dentry* parent = BPF_CORE_READ(d, d_parent);
    if (d == root || parent == d) return;
    bpf_probe_read_kernel_str(e->parts[i], CORRAL_BACKSTOP_PART_MAX, BPF_CORE_READ(d, d_name.name));
    e->nparts = i + 1;
    d = parent;
  }
  e->deeper = d != root && BPF_CORE_READ(d, d_parent) != d;
}

static __always_inline void report(struct task_struct* p, const struct corral_backstop_key* key,
                                   __u32 action, __u32 kind, const char* path, __u64 cgroup,
                                   struct file* file) {
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
  e->cgroup = cgroup;
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
  e->nparts = 0;
  e->deeper = 0;
  if (file) path_parts(e, file);
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

/* Whether `inode` is a file the permission path approved for workload `cgroup` as one of
 * `kinds`, unchanged since (same ctime). *changed tells an approval voided by a change. */
static __always_inline bool is_approved(__u64 cgroup, struct inode* inode, __u64 dev, __u64 ino,
                                        __u32 kinds, bool* changed) {
  struct corral_backstop_file f = {.cgroup = cgroup, .dev = dev, .ino = ino};
  const struct corral_backstop_approved* a = bpf_map_lookup_elem(&approved, &f);
  *changed = false;
  if (!a || !(a->kinds & kinds)) return false;
  __s64 sec = 0;
  __u32 nsec = 0;
  inode_ctime(inode, &sec, &nsec);
  *changed = sec != a->ctime_sec || nsec != a->ctime_nsec;
  return !*changed;
}

/* The file mapped at an address, for mprotect and the exec's first instruction (bpf_find_vma's
 * callback). */
struct vma_file {
  struct file* file;
};
static long vma_file_of(struct task_struct* task, struct vm_area_struct* vma, void* ctx) {
  ((struct vma_file*)ctx)->file = BPF_CORE_READ(vma, vm_file);
  return 0;
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
    report(p, &key, rule->action, CORRAL_BACKSTOP_GUARDED, rule->path, 0, 0);
    return 0;
  }
  key.mnt_ns = task_ns;
  const unsigned char* name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
  const int mnt_flags = BPF_CORE_READ(file, f_path.mnt, mnt_flags);
  if (mnt_flags & MNT_INTERNAL) {
    const struct corral_backstop_namespace* ns = bpf_map_lookup_elem(&namespaces, &key.mnt_ns);
    if (ns && ns->unmarked) {
      report(p, &key, ns->unmarked, CORRAL_BACKSTOP_UNMARKED, (const char*)name, 0, 0);
      return 0;
    }
  }
  /* Every exec of an enforced workload's task, in whatever mount or user namespace, through
   * whatever mount: its image must be a file the permission path approved. For a script,
   * the image here is its interpreter (binfmt_script swapped bprm->file and changed
   * bprm->interp), which may then be one approved as an interpreter. */
  const struct corral_backstop_workload* w = 0;
  const __u64 cgroup = workload_of(&w);
  if (!cgroup || !w->unapproved) return 0;
  /* An approval as an interpreter counts only through a mount carrying an exec-permission
   * mark: there the interpreter's own event was judged with the script's (a script on an
   * unmarked mount, in a namespace of the attacker's, has none). */
  const bool via_interp = BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename);
  const bool marked = BPF_CORE_READ(mount, mnt_fsnotify_mask) & FS_OPEN_EXEC_PERM;
  const __u32 kinds = CORRAL_APPROVED_EXEC | (via_interp && marked ? CORRAL_APPROVED_INTERP : 0);
  bool changed = false;
  if (!is_approved(cgroup, inode, key.dev, key.ino, kinds, &changed)) {
    report(p, &key, w->unapproved, changed ? CORRAL_BACKSTOP_CHANGED : CORRAL_BACKSTOP_UNAPPROVED,
           (const char*)name, cgroup, file);
    return 0;
  }
  /* The code that runs first: the ELF interpreter the kernel mapped itself (no exec of its
   * own, no mmap syscall) — one planted by a bind mount where no mark sees it must be one
   * approved as an interpreter. Found by the new image's entry point. Approvals of
   * interpreters are also listed with dev 0, because the mapping may hold the file under
   * its backing filesystem (overlayfs): inode number and ctime are the same there. */
  struct vma_file first = {};
  struct pt_regs* regs = (struct pt_regs*)bpf_task_pt_regs(p);
  if (bpf_find_vma(p, BPF_CORE_READ(regs, ip), vma_file_of, &first, 0) != 0 || !first.file ||
      first.file == file)
    return 0;
  struct file* interp_file = first.file; /* a plain local: CO-RE reads start from it */
  struct inode* interp = BPF_CORE_READ(interp_file, f_inode);
  const __u64 ino = BPF_CORE_READ(interp, i_ino);
  __s64 sec = 0, own_sec = 0;
  __u32 nsec = 0, own_nsec = 0;
  inode_ctime(interp, &sec, &nsec);
  inode_ctime(inode, &own_sec, &own_nsec);
  if (ino == key.ino && sec == own_sec && nsec == own_nsec) return 0; /* the exec's own file */
  if (is_approved(cgroup, interp, 0, ino, CORRAL_APPROVED_INTERP, &changed)) return 0;
  key.dev = BPF_CORE_READ(interp, i_sb, s_dev);
  key.ino = ino;
  report(p, &key, w->unapproved, changed ? CORRAL_BACKSTOP_CHANGED : CORRAL_BACKSTOP_UNAPPROVED,
         "(ELF interpreter)", cgroup, interp_file);
  return 0;
}

/* An executable mapping of `file` by the current task. Under an allow-list, code may come
 * only from files the image shipped (inode changed before the workload started) or that the
 * permission path approved as they are: a library written into the workload and loaded with
 * LD_PRELOAD, dlopen or bash's `enable -f` is killed before its code runs (see
 * backstop_fault). */
static __always_inline int check_mapping(__u64 cgroup, const struct corral_backstop_workload* w,
                                         struct file* file) {
  if (!file) return 0;
  struct inode* inode = BPF_CORE_READ(file, f_inode);
  __s64 sec = 0;
  __u32 nsec = 0;
  inode_ctime(inode, &sec, &nsec);
  if ((__u64)sec * 1000000000ULL + nsec <= w->start_ns) return 0;
  struct corral_backstop_key key = {};
  key.ino = BPF_CORE_READ(inode, i_ino);
  key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
  bool changed = false;
  if (is_approved(cgroup, inode, key.dev, key.ino, CORRAL_APPROVED_EXEC | CORRAL_APPROVED_INTERP,
                  &changed))
    return 0;
  struct task_struct* p = bpf_get_current_task_btf();
  /* Reported once per process and file: under Audit every page of it faults. */
  struct corral_backstop_seen seen = {.tgid = p->tgid, .dev = key.dev, .ino = key.ino};
  const __u8 one = 1;
  if (w->mapped == CORRAL_BACKSTOP_AUDIT &&
      bpf_map_update_elem(&mapped_seen, &seen, &one, BPF_NOEXIST) != 0)
    return 0;
  key.mnt_ns = BPF_CORE_READ(p, nsproxy, mnt_ns, ns.inum);
  const unsigned char* name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
  report(p, &key, w->mapped, CORRAL_BACKSTOP_MAPPED, (const char*)name, cgroup, file);
  return 0;
}

#define VM_EXEC 0x4

/* [0]: the earliest start (CLOCK_REALTIME ns) of the workloads with a mapping rule, 0 when
 * there are none (userspace keeps it: ExecBackstop::set_workload). A file older than it is
 * every such workload's image: the common fault costs one lookup. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} mapped_since SEC(".maps");

/* Open-coded VMA iterator (kernel 6.7+ kfuncs). */
extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma* it, struct task_struct* task,
                                 __u64 addr) __ksym;
extern struct vm_area_struct* bpf_iter_task_vma_next(struct bpf_iter_task_vma* it) __ksym;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma* it) __ksym;

/* This kernel has no kprobes (CONFIG_KPROBES off) and loading LSM programs fails, so a
 * mapping is judged where its pages come in: the page cache's tracepoints fire for every
 * file-backed page fault — the one that would bring the first page of code in, and the read
 * faults that map the neighbouring pages too (fault-around), whose code would then run
 * without a fault of its own — before the faulting instruction executes (the SIGKILL is
 * taken on the way back to user space). A fault on a file newer than the workload's start is
 * a violation when the process maps that file executable anywhere: every way to make a file
 * mapping executable ends here (mmap or mprotect with PROT_EXEC, pkey_mprotect,
 * READ_IMPLIES_EXEC, shmat(SHM_EXEC)), and the common fault, on an older file, costs one
 * lookup and a ctime. (A sys_enter program slowed every syscall of the host by ~200 ns; a
 * page_fault_user one every fault.) Pages made present without a fault (MAP_POPULATE,
 * mlock) need code running already. */
static __always_inline int check_file_fault(struct address_space* mapping) {
  const __u32 zero = 0;
  const __u64* since = bpf_map_lookup_elem(&mapped_since, &zero);
  if (!since || *since == 0) return 0;
  struct inode* host = BPF_CORE_READ(mapping, host);
  __s64 sec = 0;
  __u32 nsec = 0;
  inode_ctime(host, &sec, &nsec);
  if ((__u64)sec * 1000000000ULL + nsec <= *since) return 0;
  const struct corral_backstop_workload* w = 0;
  const __u64 cgroup = workload_of(&w);
  if (!cgroup || !w->mapped) return 0;
  struct task_struct* p = bpf_get_current_task_btf();
  struct file* exe = BPF_CORE_READ(p, mm, exe_file);
  struct file* found = 0;
  struct bpf_iter_task_vma it;
  struct vm_area_struct* vma;
  bpf_iter_task_vma_new(&it, p, 0);
  while ((vma = bpf_iter_task_vma_next(&it))) {
    struct file* f = vma->vm_file;
    if (f && (vma->vm_flags & VM_EXEC) && f != exe && BPF_CORE_READ(f, f_mapping) == mapping) {
      found = f;
      break;
    }
  }
  bpf_iter_task_vma_destroy(&it);
  /* The program's own file was judged by its exec (sched_process_exec above). */
  return found ? check_mapping(cgroup, w, found) : 0;
}

SEC("tp_btf/mm_filemap_fault")
int BPF_PROG(backstop_filemap_fault, struct address_space* mapping, unsigned long index) {
  return check_file_fault(mapping);
}

SEC("tp_btf/mm_filemap_map_pages")
int BPF_PROG(backstop_filemap_map_pages, struct address_space* mapping, unsigned long start,
             unsigned long last) {
  return check_file_fault(mapping);
}

/* The exec backstop's kernel/user contract: included by bpf/sched_process_exec.bpf.c and by
 * src/enforce/backstop. Plain C types only (the BPF side has no libc).
 *
 * A file listed here for a mount namespace may be loaded by the kernel as the ELF
 * interpreter of another program (it is then not the exec's file), but must never be the
 * image an exec of that namespace ends with: running ld.so directly loads any program with
 * plain opens and mmaps, which no exec permission check sees.
 *
 * A mount namespace listed in `namespaces` also has a verdict for execs of files on the
 * kernel's internal mounts (memfd_create, then execveat or /proc/self/fd/N): no fanotify
 * mount mark can see them, so without this an allow-list could be bypassed by writing a
 * program into memory. */
#ifndef CORRAL_BPF_SHARED_EXEC_BACKSTOP_H
#define CORRAL_BPF_SHARED_EXEC_BACKSTOP_H

#define CORRAL_BACKSTOP_PATH_MAX 128
#define CORRAL_BACKSTOP_ARGS_MAX 256

enum corral_backstop_action {
  CORRAL_BACKSTOP_AUDIT = 1, /* report the exec */
  CORRAL_BACKSTOP_BLOCK = 2, /* SIGKILL before the new image's first instruction, report */
};

struct corral_backstop_key {
  __u64 mnt_ns; /* inode number of the task's mount namespace */
  __u64 dev;    /* the file's superblock s_dev, kernel encoding (major << 20 | minor) */
  __u64 ino;
};

struct corral_backstop_rule {
  __u32 action; /* enum corral_backstop_action */
  __u32 reserved;
  char path[CORRAL_BACKSTOP_PATH_MAX]; /* inside the workload: what alerts name */
};

struct corral_backstop_namespace {
  __u32 unmarked; /* enum corral_backstop_action for execs of files on internal mounts */
  __u32 reserved;
};

enum corral_backstop_kind {
  CORRAL_BACKSTOP_GUARDED = 0,  /* a listed file (key) */
  CORRAL_BACKSTOP_UNMARKED = 1, /* a file on an internal mount; path is its dentry's name */
};

struct corral_backstop_event {
  struct corral_backstop_key key;
  __u32 action;
  __u32 host_pid;
  __u32 host_ppid;
  __u32 pid; /* in the task's own pid namespace */
  __u32 ppid;
  __u32 uid;
  char path[CORRAL_BACKSTOP_PATH_MAX];
  char args[CORRAL_BACKSTOP_ARGS_MAX]; /* the new image's argv, NUL-separated, truncated */
  __u32 args_size;
  __u32 kind; /* enum corral_backstop_kind */
};

#endif

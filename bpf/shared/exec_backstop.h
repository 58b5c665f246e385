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
#define CORRAL_BACKSTOP_PARTS 8     /* path components of a reported file, leaf first */
#define CORRAL_BACKSTOP_PART_MAX 48 /* bytes per component, NUL included (truncated) */

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
  CORRAL_BACKSTOP_GUARDED = 0,    /* a listed file (key) */
  CORRAL_BACKSTOP_UNMARKED = 1,   /* a file on an internal mount; path is its dentry's name */
  CORRAL_BACKSTOP_UNAPPROVED = 2, /* an exec the permission path did not judge and allow */
  CORRAL_BACKSTOP_CHANGED = 3,    /* allowed once, then renamed, linked or rewritten */
  CORRAL_BACKSTOP_MAPPED = 4,     /* an executable mapping of a file not the image's own */
};

/* The workloads the backstop judges, by cgroup v2 id: a task cannot leave its container's
 * cgroup, whatever mount or user namespace it creates. Every exec of a task in such a
 * cgroup (or below it) must end with a file the permission path approved for it, and under
 * an allow-list every executable file mapping must be of a file the image shipped (its
 * inode changed before the workload started) or approved. */
struct corral_backstop_workload {
  __u32 unapproved; /* enum corral_backstop_action for an exec not approved; 0: none */
  __u32 mapped;     /* ... for an executable mapping of a new file; 0: none */
  __u64 start_ns;   /* the workload's start, CLOCK_REALTIME ns: a later ctime is "new" */
};

/* A file the permission path allowed for a workload, as it was then (its ctime): a rename,
 * link, chmod or write since changes the ctime and voids the approval. */
struct corral_backstop_file {
  __u64 cgroup; /* the workload's cgroup id */
  __u64 dev;    /* superblock s_dev, kernel encoding */
  __u64 ino;
};

enum corral_backstop_approval {
  CORRAL_APPROVED_EXEC = 1,   /* may be an exec's own image */
  CORRAL_APPROVED_INTERP = 2, /* may be loaded as the interpreter of an approved exec */
};

struct corral_backstop_approved {
  __s64 ctime_sec;
  __u32 ctime_nsec;
  __u32 kinds; /* enum corral_backstop_approval bits */
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
  __u32 kind;   /* enum corral_backstop_kind */
  __u64 cgroup; /* the workload's cgroup id (kinds UNAPPROVED, CHANGED, MAPPED), else 0 */
  /* Kinds UNAPPROVED, CHANGED, MAPPED: the file's path inside its mount, leaf first, as
   * dentry names (`path` holds the leaf); `deeper`: more components above these. */
  char parts[CORRAL_BACKSTOP_PARTS][CORRAL_BACKSTOP_PART_MAX];
  __u32 nparts;
  __u32 deeper;
};

#endif

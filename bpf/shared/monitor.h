/* The system monitor's kernel/user contract (issue 10): included by bpf/monitor.bpf.c and by
 * src/monitor. Plain C types only (the BPF side has no libc).
 *
 * Every process start (fork of a new process, not a thread), exec and exit on the node, as
 * one ring buffer of events; what the ring buffer cannot take is counted per kind. */
#ifndef CORRAL_BPF_SHARED_MONITOR_H
#define CORRAL_BPF_SHARED_MONITOR_H

#define CORRAL_MONITOR_COMM 16
#define CORRAL_MONITOR_PATH_MAX 256
#define CORRAL_MONITOR_ARGS_MAX 512

enum corral_monitor_kind {
  CORRAL_MONITOR_FORK = 1, /* a new process (tgid), its parent's tgid in ppid */
  CORRAL_MONITOR_EXEC = 2, /* an exec that replaced the image (corral_monitor_exec) */
  CORRAL_MONITOR_EXIT = 3, /* the whole process exited (its group leader) */
  CORRAL_MONITOR_KINDS = 4,
};

/* Every event starts so. */
struct corral_monitor_task {
  __u32 kind;      /* enum corral_monitor_kind */
  __u32 tgid;      /* host pid of the process */
  __u32 ppid;      /* host pid of its parent (real_parent's tgid) */
  __u32 uid;       /* real uid, in the initial user namespace */
  __u64 cgroup;    /* cgroup v2 id */
  __u64 pidns;     /* inode of its pid namespace */
  __u64 mntns;     /* inode of its mount namespace */
  __u64 time_ns;   /* bpf_ktime_get_boot_ns() */
  __u32 nspid;     /* pid inside its own pid namespace */
  __s32 exit_code; /* EXIT: the wait status (code << 8 | signal) */
  char comm[CORRAL_MONITOR_COMM];
};

struct corral_monitor_exec {
  struct corral_monitor_task task;
  __u32 path_len;                     /* bytes of path used, NUL included */
  __u32 args_len;                     /* bytes of args used: NUL-separated argv, truncated */
  char path[CORRAL_MONITOR_PATH_MAX]; /* the file as exec was given it (bprm->filename) */
  char args[CORRAL_MONITOR_ARGS_MAX];
};

#endif

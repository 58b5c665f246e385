/* The capability backend's kernel/user contract: included by bpf/cap_capable.bpf.c and by
 * src/enforce/capabilities. Plain C types only (the BPF side has no libc).
 *
 * User space precomputes, with policy::decide(), what each enforced workload's rules say
 * about each capability (CORRAL_CAP_*), once for any program and once per fromSource
 * program (by the executable's device and inode); the kernel side only looks verdicts up. */
#ifndef CORRAL_BPF_SHARED_CAPABILITIES_H
#define CORRAL_BPF_SHARED_CAPABILITIES_H

#define CORRAL_CAP_MAX 64  /* capability numbers 0..63 (Linux 6.18 has 0..40) */
#define CORRAL_CAP_PARTS 8 /* path components of the acting program, leaf first */
#define CORRAL_CAP_PART_MAX 48
#define CORRAL_CAP_ARGS_MAX 256 /* argv bytes reported, NUL-separated, truncated */
#define CORRAL_CAP_NOAUDIT_FUNCS 8
/* A (workload, process, capability) is reported at most once per interval; the uses in
 * between are counted in the next report (`suppressed`). */
#define CORRAL_CAP_REPORT_INTERVAL_NS 1000000000ULL

enum corral_cap_action {
  CORRAL_CAP_NONE = 0,   /* allowed, no alert */
  CORRAL_CAP_REPORT = 1, /* allowed and alerted (Audit, posture audit, dry run) */
  CORRAL_CAP_BLOCK = 2,  /* denied by the rules: fail the check, or kill (opt-in), and alert */
};

/* Enforced workloads by cgroup v2 id (their own cgroup; tasks below it count too). */
struct corral_cap_workload {
  __u8 action[CORRAL_CAP_MAX]; /* enum corral_cap_action, by capability number */
  __u64 sourced;               /* bit n: capability n has fromSource verdicts in `sources` */
};

/* A fromSource program's verdict: the workload, the executable (superblock s_dev in the
 * kernel's encoding, inode), the capability. */
struct corral_cap_source {
  __u64 cgroup;
  __u64 dev;
  __u64 ino;
  __u32 cap;
  __u32 pad;
};

enum corral_cap_counter {
  CORRAL_CAP_REPORTED = 0,   /* reports written */
  CORRAL_CAP_SUPPRESSED = 1, /* uses not reported on their own (burst within the interval) */
  CORRAL_CAP_DROPPED = 2,    /* reports lost: ring buffer full */
  CORRAL_CAP_KILLED = 3,     /* processes sent SIGKILL */
  CORRAL_CAP_KILL_FAILED = 4,
  CORRAL_CAP_NOAUDIT = 5, /* the kernel's noaudit probes skipped */
  CORRAL_CAP_DENIED = 6,  /* checks failed by the program (enforcing mechanisms) */
  CORRAL_CAP_COUNTERS = 7,
};

struct corral_cap_event {
  __u64 cgroup; /* the workload's */
  __u64 dev;    /* the acting executable */
  __u64 ino;
  __u32 cap;
  __u32 action;     /* enum corral_cap_action */
  __u32 killed;     /* 1: SIGKILL sent, 2: sending it failed */
  __u32 denied;     /* the program failed the check (-EPERM) */
  __u32 suppressed; /* uses since the previous report of this (workload, process, cap) */
  __u32 host_pid;
  __u32 host_ppid;
  __u32 pid; /* in the task's own pid namespace */
  __u32 ppid;
  __u32 uid;
  char comm[16];
  /* The executable's path inside its mount, leaf first; `deeper`: more components above. */
  char parts[CORRAL_CAP_PARTS][CORRAL_CAP_PART_MAX];
  __u32 nparts;
  __u32 deeper;
  /* The same for the parent's executable, when the parent is in the task's pid namespace. */
  char pparts[CORRAL_CAP_PARTS][CORRAL_CAP_PART_MAX];
  __u32 npparts;
  __u32 pdeeper;
  char args[CORRAL_CAP_ARGS_MAX]; /* the process's argv (it may be gone when this is read) */
  __u32 args_size;
  __u32 pad;
};

#endif

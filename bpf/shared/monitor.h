/* The system monitor's kernel/user contract (issue 10): included by bpf/monitor.bpf.c and by
 * src/monitor. Plain C types only (the BPF side has no libc).
 *
 * Every process start (fork of a new process, not a thread), exec and exit on the node, and
 * for the workloads whose visibility asks for it (the `visible` map: cgroup v2 id -> mask)
 * their file opens and network calls, as one ring buffer of events; what the ring buffer
 * cannot take is counted per kind. */
#ifndef CORRAL_BPF_SHARED_MONITOR_H
#define CORRAL_BPF_SHARED_MONITOR_H

#define CORRAL_MONITOR_COMM 16
#define CORRAL_MONITOR_PATH_MAX 256
#define CORRAL_MONITOR_ARGS_MAX 512
#define CORRAL_MONITOR_TTY 32       /* tty_struct.name is 64; "pts123" needs 7 */
#define CORRAL_MONITOR_ADDR_MAX 108 /* sizeof(sockaddr_un.sun_path), the longest address kept */

enum corral_monitor_kind {
  CORRAL_MONITOR_FORK = 1,    /* a new process (tgid), its parent's tgid in ppid */
  CORRAL_MONITOR_EXEC = 2,    /* an exec that replaced the image (corral_monitor_exec) */
  CORRAL_MONITOR_EXIT = 3,    /* the whole process exited (its group leader) */
  CORRAL_MONITOR_FILE = 4,    /* a visible workload opened a file (corral_monitor_file) */
  CORRAL_MONITOR_NETWORK = 5, /* a visible workload's connect/bind/accept (corral_monitor_net) */
  CORRAL_MONITOR_KINDS = 6,
};

/* The `visible` map's value: what to report of a cgroup's tasks. */
enum corral_monitor_visible {
  CORRAL_MONITOR_VISIBLE_FILE = 1,
  CORRAL_MONITOR_VISIBLE_NETWORK = 2,
};

/* Every event starts so. */
struct corral_monitor_task {
  __u32 kind;      /* enum corral_monitor_kind */
  __u32 tgid;      /* host pid of the process */
  __u32 pid;       /* host pid of the thread (the tgid for FORK, EXEC and EXIT) */
  __u32 ppid;      /* host pid of its parent (real_parent's tgid) */
  __u32 uid;       /* real uid, in the initial user namespace */
  __u32 nspid;     /* pid inside its own pid namespace */
  __u64 cgroup;    /* cgroup v2 id */
  __u64 pidns;     /* inode of its pid namespace */
  __u64 mntns;     /* inode of its mount namespace */
  __u64 time_ns;   /* bpf_ktime_get_boot_ns() */
  __s32 exit_code; /* EXIT: the wait status (code << 8 | signal) */
  __u32 pad;
  char comm[CORRAL_MONITOR_COMM];
};

struct corral_monitor_exec {
  struct corral_monitor_task task;
  __u32 path_len;                     /* bytes of path used, NUL included */
  __u32 args_len;                     /* bytes of args used: NUL-separated argv, truncated */
  char path[CORRAL_MONITOR_PATH_MAX]; /* the file as exec was given it (bprm->filename) */
  char args[CORRAL_MONITOR_ARGS_MAX];
  char tty[CORRAL_MONITOR_TTY]; /* controlling terminal (signal->tty->name), "" when none */
};

/* open, creat, openat, openat2: reported when the call returns. */
struct corral_monitor_file {
  struct corral_monitor_task task;
  __s32 result;   /* the new fd, or -errno */
  __u32 flags;    /* open flags (O_*) as the caller passed them; creat: O_CREAT|O_WRONLY|O_TRUNC */
  __u32 path_len; /* bytes of path used, NUL included; 0 when it could not be read */
  __u32 pad;
  char path[CORRAL_MONITOR_PATH_MAX]; /* as the caller named it (relative to its cwd or dirfd) */
};

enum corral_monitor_net_op {
  CORRAL_MONITOR_CONNECT = 1,
  CORRAL_MONITOR_BIND = 2,
  CORRAL_MONITOR_ACCEPT = 3, /* accept and accept4 */
};

/* A socket address: the one passed to connect/bind, or an accepted connection's peer. */
struct corral_monitor_sockaddr {
  __u16 family; /* AF_*; 0 when none was read */
  __u16 port;   /* AF_INET, AF_INET6: host byte order */
  __u32 len;    /* bytes of addr used */
  /* AF_INET: 4 address bytes; AF_INET6: 16; AF_UNIX: sun_path as given (abstract: leading
   * NUL), not NUL-terminated. */
  __u8 addr[CORRAL_MONITOR_ADDR_MAX];
};

struct corral_monitor_net {
  struct corral_monitor_task task;
  __u32 op;     /* enum corral_monitor_net_op */
  __s32 result; /* 0 or the accepted fd, or -errno */
  __s32 fd;     /* the socket: connect/bind's, accept's new one (the listener's on failure) */
  /* The socket as the kernel has it (sk_family, sk_type, sk_protocol); 0 when fd is none. */
  __u16 sock_family;
  __u16 sock_type;
  __u16 sock_protocol;
  __u16 pad;
  struct corral_monitor_sockaddr addr;
};

#endif

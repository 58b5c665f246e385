/* The network enforcer's kernel/user contract: included by bpf/cgroupnet.bpf.c and by
 * src/enforce/cgroupnet. Plain C types only (the BPF side has no libc).
 *
 * A socket's protocol names (docs/policy.md "Network rules"): the kernel program turns
 * (family, type, protocol) into a set of names, user space precomputes the verdict of every
 * set with decide() (one verdict per name, deny wins), so no precedence lives in BPF. */
#ifndef CORRAL_BPF_SHARED_CGROUPNET_H
#define CORRAL_BPF_SHARED_CGROUPNET_H

enum corral_net_name {
  CORRAL_NET_TCP = 1 << 0,    /* SOCK_STREAM, IPPROTO_TCP or IPPROTO_MPTCP */
  CORRAL_NET_UDP = 1 << 1,    /* SOCK_DGRAM, IPPROTO_UDP or IPPROTO_UDPLITE */
  CORRAL_NET_ICMP = 1 << 2,   /* AF_INET, IPPROTO_ICMP (ping socket or raw) */
  CORRAL_NET_ICMPV6 = 1 << 3, /* AF_INET6, IPPROTO_ICMPV6 (ping socket or raw) */
  CORRAL_NET_RAW = 1 << 4,    /* SOCK_RAW, any protocol */
  CORRAL_NET_SCTP = 1 << 5,   /* IPPROTO_SCTP */
  CORRAL_NET_OTHER = 1 << 6,  /* an inet socket of none of the above: only `all` names it */
};

/* The verdicts a workload's sockets get, by name set and acting program, for one generation
 * of its rules: a policy change writes the next generation's entries, then flips the
 * workload's `gen`, then deletes the old ones, so a socket sees one table or the other. */
struct corral_net_key {
  __u64 cgroup; /* the workload's cgroup v2 id */
  __u32 gen;
  __u16 names;  /* enum corral_net_name bits */
  __u16 source; /* the acting executable's id (corral_net_exe), 0: any other program */
};

struct corral_net_verdict {
  __u8 allow;
  __u8 alert;
  __u16 reserved;
  __u32 reserved2;
};

struct corral_net_workload {
  __u32 gen;
  __u32 missing_allow; /* verdict when no entry exists (never, unless a map was full) */
};

/* An executable a fromSource rule names, as the kernel sees the exec's file. */
struct corral_net_exe {
  __u64 dev; /* superblock s_dev, kernel encoding (major << 20 | minor) */
  __u64 ino;
};

struct corral_net_event {
  __u64 cgroup;
  __u32 gen;
  __u16 names;
  __u16 source;
  __u32 tgid; /* host pid of the acting process */
  __u32 tid;
  __u32 family;
  __u32 type;
  __u32 protocol;
  __u32 allow;
};

#endif

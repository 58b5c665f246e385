#include "enforce/fanotify/canary.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fd.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"

namespace corral::enforce::fanotify {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "the canary's seccomp filter needs this architecture's AUDIT_ARCH"
#endif

// Shells most images have, for an init whose program is not reachable inside its root
// (a runtime's helper, or a test sandbox's init forked from the test binary).
constexpr std::array<const char*, 5> kFallbacks{"/bin/sh", "/usr/bin/sh", "/bin/busybox",
                                                "/bin/bash", "/usr/bin/true"};

// The canary's child exits with the execve's errno, offset so that it cannot be confused
// with a program's own exit code (the program never runs past its first system call).
constexpr int kExitBase = 64;
// ... and with these when it could not get ready to exec.
constexpr int kExitUnconfined = 3; // no chroot into the workload's root, or no seccomp filter
constexpr int kExitAbandoned = 4;  // its parent thread, or the agent's go, is gone

struct ChildPlan {
  const char* root; // /proc/<pid>/root
  const char* path; // inside it
  char* const* argv;
  char* const* envp;
  const sock_fprog* seccomp;
  long parent;
  int go_read, go_write;
};

// A system call that returns -errno instead of setting errno (which is the agent thread's
// in the canary's child).
long raw_syscall3(long nr, long a, long b, long c) {
#if defined(__x86_64__)
  long ret = 0;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
#else
  const long ret = ::syscall(nr, a, b, c);
  return ret < 0 ? -errno : ret;
#endif
}

[[noreturn]] void leave(int code) {
  ::syscall(SYS_exit_group, code);
  __builtin_unreachable();
}

// The canary after clone, in a copy of a multithreaded process: raw system calls only,
// through syscall(2), which neither libc state nor a sanitizer's interceptors get between.
[[noreturn]] void canary_child(const ChildPlan& c) {
  // errno belongs to the agent's thread here (CLONE_VM): the exec's error is read from the
  // raw return value instead.
  if (::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 ||
      ::syscall(SYS_getppid) != c.parent)
    leave(kExitAbandoned);
  if (::syscall(SYS_chroot, c.root) != 0 || ::syscall(SYS_chdir, "/") != 0) leave(kExitUnconfined);
  char byte = 0;
  ::syscall(SYS_close, c.go_write);
  if (::syscall(SYS_read, c.go_read, &byte, 1) != 1) leave(kExitAbandoned);
  if (::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      ::syscall(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, c.seccomp, 0, 0) != 0)
    leave(kExitUnconfined);
  const long r = raw_syscall3(SYS_execve, reinterpret_cast<long>(c.path),
                              reinterpret_cast<long>(c.argv), reinterpret_cast<long>(c.envp));
  leave(kExitBase + static_cast<int>(-r));
}

std::optional<FileId> executable_id(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0)
    return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

std::optional<FileId> executable_in_root(int root_fd, const std::string& path) {
  auto fd = open_in_root(root_fd, path);
  return fd ? executable_id(fd->get()) : std::nullopt;
}

} // namespace

std::vector<std::string> canary_targets(int pid, const std::string& root_prefix) {
  constexpr size_t kMax = 2;
  std::vector<std::string> out;
  std::vector<FileId> ids; // one canary per file (/bin/sh and /usr/bin/sh may be one)
  auto root = open_root(pid);
  if (!root) return out;
  const std::string exe_link = "/proc/" + std::to_string(pid) + "/exe";
  struct stat st {};
  const auto exe = read_link(exe_link);
  if (exe && ::stat(exe_link.c_str(), &st) == 0) {
    // Only where the path leads to the very file the init runs (not a host path that a
    // runtime's helper or a deleted file shows).
    const std::string inside = strip_root(*exe, root_prefix);
    const auto id =
        inside.starts_with('/') ? executable_in_root(root->get(), inside) : std::nullopt;
    if (id && *id == FileId{st.st_dev, st.st_ino}) {
      out.push_back(inside);
      ids.push_back(*id);
    }
  }
  for (const char* f : kFallbacks) {
    if (out.size() >= kMax) break;
    const auto id = executable_in_root(root->get(), f);
    if (!id || std::find(ids.begin(), ids.end(), *id) != ids.end()) continue;
    out.emplace_back(f);
    ids.push_back(*id);
  }
  return out;
}

// What the canary's child reads after clone. It shares the agent's memory (CLONE_VM: a
// fork copied the page tables of the whole agent for every canary, the largest cost of
// building hundreds of groups), so all of it lives here, owned by the Canary until the child
// is reaped — never on a stack frame that returns before the child execs.
struct Canary::ChildMemory {
  std::string root, path;
  std::array<char*, 2> argv{};
  std::array<char*, 1> envp{nullptr};
  std::array<sock_filter, 9> filter{};
  sock_fprog prog{};
  ChildPlan plan{};
  std::vector<char> stack = std::vector<char>(64 * 1024);
};

Canary::Canary(pid_t pid, std::string path) : pid_(pid), path_(std::move(path)) {}

Result<std::unique_ptr<Canary>> Canary::spawn(int pid, const std::string& path) {
  // Everything the child needs is made here: after clone it may only make system calls.
  auto m = std::make_unique<ChildMemory>();
  m->root = "/proc/" + std::to_string(pid) + "/root";
  m->path = path;
  m->argv = {m->path.data(), nullptr};
  m->filter = {{
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execve, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  }};
  m->prog = sock_fprog{static_cast<unsigned short>(m->filter.size()), m->filter.data()};
  // The child waits for a byte on this pipe before it execs: the enforcer must know its pid
  // before its event can be read.
  std::array<int, 2> go{-1, -1};
  if (::pipe2(go.data(), O_CLOEXEC) != 0) return errno_error("pipe for the canary");
  const Fd go_read(go[0]);
  Fd go_write(go[1]);
  m->plan = ChildPlan{m->root.c_str(), m->path.c_str(), m->argv.data(), m->envp.data(),
                      &m->prog,        ::getpid(),      go[0],          go[1]};

  // CLONE_VM without CLONE_FILES/CLONE_FS: its own fd table and root (chroot stays its own),
  // no atfork handlers (gRPC and others register some), and no copy of the agent's memory.
  const auto child_main = [](void* plan) -> int { canary_child(*static_cast<ChildPlan*>(plan)); };
  const int child =
      ::clone(child_main, m->stack.data() + m->stack.size(), CLONE_VM | SIGCHLD, &m->plan);
  if (child < 0) return errno_error("clone the canary");
  std::unique_ptr<Canary> c(new Canary(static_cast<pid_t>(child), path));
  c->go_ = std::move(go_write);
  c->memory_ = std::move(m);
  return c;
}

void Canary::release() {
  const char byte = 1;
  (void)!::write(go_.get(), &byte, 1);
  go_.reset();
}

Canary::~Canary() {
  if (status_) return;
  ::kill(pid_, SIGKILL); // our own child, not reaped yet: the pid is still ours
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

bool Canary::ended() {
  if (status_) return true;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) status_ = status;
  return status_.has_value();
}

bool Canary::wait_until_blocked(std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  const std::string wchan = "/proc/" + std::to_string(pid_) + "/wchan";
  do {
    if (ended()) return false;
    // fanotify_get_response (fs/notify/fanotify/fanotify.c) is where a task waits for the
    // verdict of its permission event.
    const auto w = read_proc_file(wchan, 128);
    if (w && w->find("fanotify") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string Canary::outcome() const {
  if (!status_) return "it did not end";
  const int s = *status_;
  if (WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS)
    return "its exec ran (no permission event stopped it; its seccomp filter killed it)";
  if (WIFSIGNALED(s)) return std::string("it was killed by ") + ::strsignal(WTERMSIG(s));
  if (WIFEXITED(s) && WEXITSTATUS(s) > kExitBase) {
    return std::string("its exec failed: ") + std::strerror(WEXITSTATUS(s) - kExitBase) +
           " (no event of this workload's group)";
  }
  if (WIFEXITED(s) && WEXITSTATUS(s) == kExitUnconfined)
    return "it could not chroot into the workload's root or install its seccomp filter";
  if (WIFEXITED(s) && WEXITSTATUS(s) == kExitAbandoned) return "it was abandoned before its exec";
  return "it exited with " + std::to_string(WIFEXITED(s) ? WEXITSTATUS(s) : -1);
}

} // namespace corral::enforce::fanotify

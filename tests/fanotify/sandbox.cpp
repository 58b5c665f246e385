#include "sandbox.h"

#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace corral::testing {
namespace {

constexpr uint32_t kOpRun = 1;
constexpr uint32_t kOpLoop = 2;
constexpr size_t kMaxMessage = 64 * 1024;
constexpr size_t kMaxOutput = kMaxMessage - 64;
constexpr int kReplyTimeoutMs = 120 * 1000;

struct RequestHeader {
  uint32_t op;
  uint32_t arg; // uid (run) or count (loop)
};
struct ResponseHeader {
  int32_t exit_code;
  int32_t signal;
  int32_t exec_errno;
  uint64_t nanos;
};
// Setup reports from the sandbox's processes to the test, over a pipe.
struct Report {
  int32_t kind; // kInitPid, kReady or kFailed
  int32_t value;
  char what[56];
};
constexpr int32_t kInitPid = 1, kReady = 2, kFailed = 3;

char* const kEnv[] = {const_cast<char*>("PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"),
                      const_cast<char*>("HOME=/"), nullptr};

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

[[noreturn]] void fail(int report_fd, const char* what) {
  Report r{kFailed, errno, {}};
  std::snprintf(r.what, sizeof r.what, "%s", what);
  (void)!write(report_fd, &r, sizeof r);
  _exit(1);
}

// Where a host file goes in a merged-/usr tree: its directory canonicalised, its own name
// kept (/bin/sh -> /usr/bin/sh, a copy of dash).
std::string merged_usr_path(const std::string& host_path) {
  const std::filesystem::path p(host_path);
  std::error_code ec;
  const auto dir = std::filesystem::canonical(p.parent_path(), ec);
  return (ec ? p.parent_path() : dir).string() + "/" + p.filename().string();
}

std::vector<std::string> ldd_libraries(const std::string& program) {
  std::vector<std::string> libs;
  FILE* f = ::popen(("ldd " + program + " 2>/dev/null").c_str(), "r");
  if (f == nullptr) return libs;
  std::array<char, 1024> line{};
  while (std::fgets(line.data(), line.size(), f) != nullptr) {
    const std::string s(line.data());
    const size_t arrow = s.find("=> /");
    const size_t start = arrow != std::string::npos ? arrow + 3 : s.find_first_not_of(" \t");
    if (start == std::string::npos || s[start] != '/') continue;
    libs.push_back(s.substr(start, s.find_first_of(" \t\n", start) - start));
  }
  ::pclose(f);
  return libs;
}

struct Plan {
  std::map<std::string, std::string> copies; // path inside -> host source
  std::vector<SandboxFile> files;
};

bool copy_file(const std::string& src, const std::string& dst) {
  const Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!in || ::fstat(in.get(), &st) != 0) return false;
  const Fd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777));
  if (!out) return false;
  std::array<char, 65536> buf{};
  for (;;) {
    const ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) return false;
    if (n == 0) return true;
    if (::write(out.get(), buf.data(), static_cast<size_t>(n)) != n) return false;
  }
}

void make_dirs(const std::string& path) {
  std::string cur;
  for (const auto& part : std::filesystem::path(path)) {
    if (part == "/") continue;
    cur += "/" + part.string();
    ::mkdir(cur.c_str(), 0755);
  }
}

// In the new mount namespace: the tree, with /data on a second tmpfs.
void populate(const std::string& root, const Plan& plan, int report_fd) {
  for (const char* d : {"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/local/bin",
                        "/proc", "/etc", "/data"})
    make_dirs(root + d);
  ::mkdir((root + "/tmp").c_str(), 01777);
  for (const auto& [link, target] : std::map<std::string, std::string>{{"/bin", "usr/bin"},
                                                                       {"/sbin", "usr/sbin"},
                                                                       {"/lib", "usr/lib"},
                                                                       {"/lib64", "usr/lib64"}})
    if (::symlink(target.c_str(), (root + link).c_str()) != 0) fail(report_fd, "symlink");
  for (const auto& [inside, host] : plan.copies) {
    make_dirs(std::filesystem::path(root + inside).parent_path().string());
    if (!copy_file(host, root + inside)) fail(report_fd, "copy a program");
  }
  if (::mount("tmpfs", (root + "/data").c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=16m") != 0)
    fail(report_fd, "mount /data");
  for (const auto& f : plan.files) {
    make_dirs(std::filesystem::path(root + f.path).parent_path().string());
    const Fd out(::open((root + f.path).c_str(), O_WRONLY | O_CREAT | O_TRUNC, f.mode));
    if (!out || ::write(out.get(), f.content.data(), f.content.size()) !=
                    static_cast<ssize_t>(f.content.size()))
      fail(report_fd, "write a file");
    ::fchmod(out.get(), f.mode);
  }
}

ResponseHeader run_one(char* const* argv, uint32_t uid, std::string& output) {
  ResponseHeader h{-1, 0, 0, 0};
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    h.exec_errno = errno;
    return h;
  }
  const uint64_t t0 = now_ns();
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    if (uid != 0 && (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0))
      _exit(125);
    ::execve(argv[0], argv, kEnv);
    const int e = errno;
    (void)!::write(err[1], &e, sizeof e);
    _exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  std::array<char, 4096> buf{};
  for (ssize_t n; (n = ::read(out[0], buf.data(), buf.size())) > 0;) {
    if (output.size() < kMaxOutput)
      output.append(buf.data(), std::min(static_cast<size_t>(n), kMaxOutput - output.size()));
  }
  int e = 0;
  if (::read(err[0], &e, sizeof e) == sizeof e) h.exec_errno = e;
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  if (child > 0 && ::waitpid(child, &status, 0) == child) {
    h.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    h.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  h.nanos = now_ns() - t0;
  return h;
}

ResponseHeader run_loop(char* const* argv, uint32_t n) {
  ResponseHeader h{0, 0, 0, 0};
  const uint64_t t0 = now_ns();
  for (uint32_t i = 0; i < n; ++i) {
    pid_t child = 0;
    if (const int r = ::posix_spawn(&child, argv[0], nullptr, nullptr, argv, kEnv); r != 0) {
      h.exec_errno = r;
      h.exit_code = -1;
      break;
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      h.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      h.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      break;
    }
  }
  h.nanos = now_ns() - t0;
  return h;
}

// Pid 1 of the sandbox: enter the root, then run what the test asks, until it hangs up.
[[noreturn]] void init_main(const std::string& root, bool pivot, int control, int report_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (pivot) {
    // pivot_root(".", ".") then detaching the old root: the idiom of pivot_root(2).
    if (::chdir(root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
        ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0)
      fail(report_fd, "pivot_root");
  } else if (::chroot(root.c_str()) != 0 || ::chdir("/") != 0) {
    fail(report_fd, "chroot");
  }
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    fail(report_fd, "mount /proc");
  const Report ready{kReady, 0, {}};
  (void)!::write(report_fd, &ready, sizeof ready);
  ::close(report_fd);
  std::vector<char> msg(kMaxMessage);
  for (;;) {
    const ssize_t n = ::recv(control, msg.data(), msg.size(), 0);
    if (n <= static_cast<ssize_t>(sizeof(RequestHeader))) _exit(0); // the test hung up
    RequestHeader req{};
    std::memcpy(&req, msg.data(), sizeof req);
    std::vector<char*> argv;
    for (ssize_t i = sizeof req; i < n; i += static_cast<ssize_t>(std::strlen(&msg[i])) + 1)
      argv.push_back(&msg[i]);
    argv.push_back(nullptr);
    std::string output;
    const ResponseHeader h =
        req.op == kOpLoop ? run_loop(argv.data(), req.arg) : run_one(argv.data(), req.arg, output);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    } // orphans of the sandbox are ours to reap
    std::string reply(reinterpret_cast<const char*>(&h), sizeof h);
    reply += output;
    if (::send(control, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) _exit(0);
  }
}

bool single_threaded() {
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return false;
  int n = 0;
  while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n == 1;
}

} // namespace

std::string process_policy(const std::string& name, const std::vector<std::string>& paths,
                           const std::string& action) {
  std::string yaml = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\n"
                     "metadata:\n  name: " +
                     name +
                     "\nspec:\n  selector:\n    matchLabels:\n      app: sandbox\n"
                     "  process:\n    matchPaths:\n";
  for (const auto& p : paths) yaml += "    - path: " + p + "\n";
  return yaml + "  action: " + action + "\n";
}

std::string process_policy(const std::string& name, const std::string& path,
                           const std::string& action) {
  return process_policy(name, std::vector<std::string>{path}, action);
}

// A new cgroup v2 for one sandbox, as a container runtime gives each container: the exec
// backstop knows workloads by cgroup. "" when there is no cgroup v2 hierarchy.
static std::string make_cgroup() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    const auto dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    static int n = 0;
    const std::string dir =
        mount_point + "/corral-sandbox-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
    return ::mkdir(dir.c_str(), 0755) == 0 ? dir : "";
  }
  return "";
}

Result<std::unique_ptr<Sandbox>> Sandbox::make(const SandboxOptions& options) {
  if (!single_threaded())
    return Error{"Sandbox::make needs a single-threaded process (it forks the sandbox init)",
                 "create the sandbox before any enforcer", 0};
  Plan plan;
  for (const auto& program : options.programs) {
    plan.copies[merged_usr_path(program)] = program;
    for (const auto& lib : ldd_libraries(program)) plan.copies[merged_usr_path(lib)] = lib;
  }
  plan.files = options.files;

  std::unique_ptr<Sandbox> s(new Sandbox());
  std::array<char, 64> tmpl{};
  std::snprintf(tmpl.data(), tmpl.size(), "/tmp/corral-sandbox-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return errno_error("mkdtemp");
  s->mount_point_ = tmpl.data();
  int sv[2], report[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return errno_error("socketpair");
  if (::pipe2(report, O_CLOEXEC) != 0) return errno_error("pipe2");
  s->control_.reset(sv[0]);
  const std::string root = s->mount_point_;
  s->cgroup_ = options.own_cgroup ? make_cgroup() : "";
  const std::string procs = s->cgroup_.empty() ? "" : s->cgroup_ + "/cgroup.procs";
  s->outer_pid_ = ::fork();
  if (s->outer_pid_ < 0) return errno_error("fork");
  if (s->outer_pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(report[0]);
    if (!procs.empty()) {
      const int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) fail(report[1], "join the sandbox's cgroup");
      ::close(fd);
    }
    if (::unshare(CLONE_NEWNS) != 0) fail(report[1], "unshare(CLONE_NEWNS)");
    // Private: nothing mounted below propagates to the host, and nothing from it here.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      fail(report[1], "make mounts private");
    if (::mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=0755") != 0)
      fail(report[1], "mount the root tmpfs");
    const std::string tree = root + options.chroot_subdir;
    if (!options.chroot_subdir.empty()) make_dirs(tree);
    populate(tree, plan, report[1]);
    if (::unshare(CLONE_NEWPID) != 0) fail(report[1], "unshare(CLONE_NEWPID)");
    const pid_t init = ::fork();
    if (init == 0) init_main(tree, options.pivot_root, sv[1], report[1]);
    const Report r{init > 0 ? kInitPid : kFailed, init > 0 ? init : errno, "fork init"};
    (void)!::write(report[1], &r, sizeof r);
    int status = 0;
    ::waitpid(init, &status, 0);
    _exit(0);
  }
  ::close(sv[1]);
  ::close(report[1]);
  const Fd reports(report[0]);
  for (int got = 0; got < 2;) {
    Report r{};
    if (::read(reports.get(), &r, sizeof r) != sizeof r)
      return Error{"the sandbox exited during setup", "", 0};
    if (r.kind == kFailed)
      return Error{std::string("sandbox setup: ") + r.what + ": " + std::strerror(r.value), "",
                   r.value};
    if (r.kind == kInitPid) s->init_pid_ = r.value;
    ++got;
  }
  return s;
}

Sandbox::~Sandbox() {
  control_.reset();
  if (init_pid_ > 0) ::kill(init_pid_, SIGKILL); // pid 1: takes the whole pid namespace
  if (outer_pid_ > 0) {
    // The outer child reaps init and exits; killed only if it does not (init would then
    // be left for pid 1 to reap).
    int i = 0;
    for (; i < 500 && ::waitpid(outer_pid_, nullptr, WNOHANG) == 0; ++i) ::usleep(10000);
    if (i == 500) {
      ::kill(outer_pid_, SIGKILL);
      ::waitpid(outer_pid_, nullptr, 0);
    }
  }
  for (int i = 0; !cgroup_.empty() && i < 100 && ::rmdir(cgroup_.c_str()) != 0 && errno == EBUSY;
       ++i)
    ::usleep(10000);
  // The tmpfs lived only in the sandbox's mount namespace; the host dir is empty.
  for (int i = 0; i < 50 && ::rmdir(mount_point_.c_str()) != 0 && errno == EBUSY; ++i)
    ::usleep(20000);
}

workload::Workload Sandbox::workload(const std::string& id) const {
  workload::Workload w;
  w.id = id;
  w.name = id;
  w.namespace_name = "default";
  w.labels = {{"app", "sandbox"}};
  w.image = "corral-test/sandbox:latest";
  w.runtime = "test";
  w.init_pid = init_pid_;
  w.root_path = "/proc/" + std::to_string(init_pid_) + "/root";
  return w;
}

Result<RunResult> Sandbox::run(const std::vector<std::string>& argv, uint32_t uid) {
  return request(kOpRun, uid, argv);
}

Result<RunResult> Sandbox::loop(const std::vector<std::string>& argv, int n) {
  return request(kOpLoop, static_cast<uint32_t>(n), argv);
}

Result<RunResult> Sandbox::request(uint32_t op, uint32_t arg,
                                   const std::vector<std::string>& argv) {
  const RequestHeader h{op, arg};
  std::string msg(reinterpret_cast<const char*>(&h), sizeof h);
  for (const auto& a : argv) msg.append(a.c_str(), a.size() + 1);
  if (::send(control_.get(), msg.data(), msg.size(), MSG_NOSIGNAL) < 0)
    return errno_error("send to the sandbox");
  pollfd p{control_.get(), POLLIN, 0};
  if (::poll(&p, 1, kReplyTimeoutMs) != 1) return Error{"the sandbox did not answer", "", 0};
  std::vector<char> buf(kMaxMessage + sizeof(ResponseHeader));
  const ssize_t n = ::recv(control_.get(), buf.data(), buf.size(), 0);
  if (n < static_cast<ssize_t>(sizeof(ResponseHeader))) return Error{"the sandbox hung up", "", 0};
  ResponseHeader r{};
  std::memcpy(&r, buf.data(), sizeof r);
  RunResult out{r.exit_code, r.signal, r.exec_errno, r.nanos, {}};
  out.output.assign(buf.data() + sizeof r, static_cast<size_t>(n) - sizeof r);
  return out;
}

bool running_as_root_or_explain(const char* test) {
  if (::geteuid() == 0) return true;
  std::cout << "SKIP " << test
            << ": needs root (fanotify permission events and namespaces need "
               "CAP_SYS_ADMIN); run the root tier as root\n";
  return false;
}

} // namespace corral::testing

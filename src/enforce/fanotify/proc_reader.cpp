#include "enforce/fanotify/proc_reader.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fd.h"
#include "core/strings.h"

namespace corral::enforce::fanotify {
namespace {

std::string proc_path(int pid, std::string_view leaf) {
  return "/proc/" + std::to_string(pid) + "/" + std::string(leaf);
}

uint32_t to_u32(std::string_view s) {
  return static_cast<uint32_t>(std::strtoul(s.data(), nullptr, 10));
}

// The flags of an openat2() call: the first field of the caller's struct open_how.
std::optional<uint64_t> openat2_flags(int tid, uint64_t how_addr) {
  const Fd mem(::open(proc_path(tid, "mem").c_str(), O_RDONLY | O_CLOEXEC));
  uint64_t flags = 0;
  if (!mem || ::pread(mem.get(), &flags, sizeof flags, static_cast<off_t>(how_addr)) !=
                  static_cast<ssize_t>(sizeof flags))
    return std::nullopt;
  return flags;
}

OpenMode mode_of(uint64_t flags) {
  const bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_APPEND | O_TRUNC | O_CREAT));
  return writes ? OpenMode::Write : OpenMode::Read;
}

} // namespace

std::optional<std::string> read_proc_file(const std::string& path, size_t cap) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  // Grown as the file turns out longer: `cap` is a bound (a mountinfo may be allowed
  // megabytes), not what a read costs (zeroing it for every group built showed in profiles).
  std::string out(std::min<size_t>(cap, 4096), '\0');
  size_t len = 0;
  while (len < cap) {
    if (len == out.size()) out.resize(std::min(cap, out.size() * 4));
    const ssize_t n = ::read(fd.get(), out.data() + len, out.size() - len);
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  out.resize(len);
  return out;
}

std::optional<std::string> read_link(const std::string& path) {
  std::array<char, 4096> buf{};
  const ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0 || static_cast<size_t>(n) == buf.size()) return std::nullopt;
  return std::string(buf.data(), static_cast<size_t>(n));
}

std::string strip_root(std::string_view path, std::string_view root_prefix) {
  if (root_prefix.empty() || root_prefix == "/") return std::string(path);
  if (path.size() > root_prefix.size() && path.starts_with(root_prefix) &&
      path[root_prefix.size()] == '/')
    return std::string(path.substr(root_prefix.size()));
  return std::string(path);
}

std::optional<std::string> read_program(int pid) {
  auto exe = read_link(proc_path(pid, "exe"));
  if (!exe || *exe != "/") return exe;
  const auto st = read_status(pid);
  if (!st || st->ppid <= 0) return exe;
  struct stat self {};
  struct stat parent {};
  if (::stat(proc_path(pid, "exe").c_str(), &self) != 0 ||
      ::stat(proc_path(st->ppid, "exe").c_str(), &parent) != 0 || self.st_dev != parent.st_dev ||
      self.st_ino != parent.st_ino)
    return exe;
  const auto named = read_link(proc_path(st->ppid, "exe"));
  return named && *named != "/" ? named : exe;
}

std::optional<ProcStatus> read_status(int tid) {
  const auto text = read_proc_file(proc_path(tid, "status"), 8192);
  if (!text) return std::nullopt;
  ProcStatus st;
  bool have_uid = false;
  for (const auto& line : split(*text, '\n')) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string_view key(line.data(), colon);
    const auto fields = split(trim(std::string_view(line).substr(colon + 1)), '\t');
    if (fields.empty()) continue;
    if (key == "Tgid")
      st.tgid = std::atoi(fields[0].c_str());
    else if (key == "PPid")
      st.ppid = std::atoi(fields[0].c_str());
    else if (key == "Uid" && fields.size() >= 4) {
      st.uid = to_u32(fields[0]);
      st.fsuid = to_u32(fields[3]);
      have_uid = true;
    } else if (key == "NSpid") {
      st.ns_pid = std::atoi(fields.back().c_str());
      st.ns_depth = static_cast<int>(fields.size());
    }
  }
  if (!have_uid || st.tgid == 0) return std::nullopt;
  return st;
}

std::string read_args(int pid) {
  auto text = read_proc_file(proc_path(pid, "cmdline"), 4096);
  if (!text) return {};
  const size_t argv0_end = text->find('\0');
  if (argv0_end == std::string::npos) return {};
  std::string args = text->substr(argv0_end + 1);
  while (!args.empty() && args.back() == '\0') args.pop_back();
  std::replace(args.begin(), args.end(), '\0', ' ');
  return args;
}

std::string read_tty(int pid) {
  const auto text = read_proc_file(proc_path(pid, "stat"), 1024);
  if (!text) return {};
  // Field 7 (tty_nr) is the 5th after the command name, which ends at the last ')'.
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos) return {};
  const auto fields = split(trim(std::string_view(*text).substr(paren + 1)), ' ');
  if (fields.size() < 5) return {};
  const unsigned long nr = std::strtoul(fields[4].c_str(), nullptr, 10);
  const unsigned long major = (nr >> 8) & 0xfff;
  const unsigned long minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return "pts" + std::to_string((major - 136) * 256 + minor);
  if (major == 4 && minor < 64) return "tty" + std::to_string(minor);
  if (major == 4) return "ttyS" + std::to_string(minor - 64);
  return {};
}

namespace {

// fanotify queues a permission event and wakes the reader before the task parks in
// fanotify_get_response(), so the first look at it may find it still running (syscall
// shows "running", the stack unwinder sees nothing). Looks again for up to ~2 ms.
template <class Parked>
std::optional<std::string> read_parked(int tid, std::string_view leaf, size_t cap, Parked parked) {
  constexpr int kTries = 40;
  for (int i = 0;; ++i) {
    auto text = read_proc_file(proc_path(tid, leaf), cap);
    if (!text || parked(*text) || i == kTries) return text;
    if (i < 4) {
      sched_yield();
    } else {
      usleep(50);
    }
  }
}

// "<nr> <arg1> ... <arg6> <sp> <pc>" while blocked in a syscall (fs/proc/base.c
// proc_pid_syscall), split; "running" or "-1 <sp> <pc>" otherwise.
std::vector<std::string> blocked_syscall(int tid) {
  const auto text = read_parked(tid, "syscall", 256,
                                [](const std::string& t) { return !t.starts_with("running"); });
  return text ? split(trim(*text), ' ') : std::vector<std::string>{};
}

} // namespace

bool blocked_in_exec(int tid) {
  const auto fields = blocked_syscall(tid);
  if (fields.size() < 7) return false;
  const long nr = std::strtol(fields[0].c_str(), nullptr, 10);
  return nr == SYS_execve || nr == SYS_execveat;
}

OpenMode blocked_open_mode(int tid) {
  const auto fields = blocked_syscall(tid);
  if (fields.size() < 7) return OpenMode::Unknown;
  const long nr = std::strtol(fields[0].c_str(), nullptr, 10);
  std::array<uint64_t, 6> arg{};
  for (size_t i = 0; i < arg.size(); ++i)
    arg[i] = std::strtoull(fields[i + 1].c_str(), nullptr, 16);
  switch (nr) {
#ifdef SYS_open
  case SYS_open: return mode_of(arg[1]);
#endif
#ifdef SYS_creat
  case SYS_creat: return OpenMode::Write;
#endif
  case SYS_openat:
  case SYS_open_by_handle_at: return mode_of(arg[2]);
  case SYS_openat2: {
    const auto flags = openat2_flags(tid, arg[2]);
    return flags ? mode_of(*flags) : OpenMode::Unknown;
  }
  case SYS_execve:
  case SYS_execveat: return OpenMode::Read; // the exec's file, its interpreter
  default: return OpenMode::Unknown;        // io_uring, a 32-bit task's numbers, ...
  }
}

std::optional<InterpreterLoad> opening_interpreter(int tid) {
  // Parked: the unwinder sees the notification path (fsnotify() -> fanotify_handle_event ->
  // fanotify_get_response, the last often inlined); a task still running shows nothing.
  const auto parked = [](const std::string& t) {
    return t.find("fsnotify") != std::string::npos || t.find("fanotify") != std::string::npos;
  };
  const auto stack = read_parked(tid, "stack", 8192, parked);
  if (!stack || !parked(*stack)) return std::nullopt;
  for (const std::string_view handler : {"] load_elf_binary+", "] load_compat_elf_binary+"}) {
    if (stack->find(handler) != std::string::npos) return InterpreterLoad::Elf;
  }
  for (const std::string_view handler : {"] load_script+", "] load_misc_binary+"}) {
    if (stack->find(handler) != std::string::npos) return InterpreterLoad::Other;
  }
  return InterpreterLoad::None;
}

bool kernel_stacks_readable() {
  const auto stack = read_proc_file("/proc/self/stack", 4096);
  return stack && stack->find("] ") != std::string::npos;
}

} // namespace corral::enforce::fanotify

#include "agent/kernel_limits.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <sys/resource.h>

namespace corral::agent {
namespace {

constexpr const char* kGroups = "/proc/sys/fs/fanotify/max_user_groups";
constexpr const char* kMarks = "/proc/sys/fs/fanotify/max_user_marks";
constexpr const char* kNrOpen = "/proc/sys/fs/nr_open";

uint64_t read_number(const char* path) {
  std::ifstream in(path);
  uint64_t v = 0;
  in >> v;
  return in ? v : 0;
}

void raise_sysctl(const char* path, uint64_t want, std::vector<std::string>& problems) {
  const uint64_t now = read_number(path);
  if (want == 0 || now >= want) return;
  std::ofstream out(path);
  out << want;
  out.flush();
  if (!out || read_number(path) < want) {
    problems.push_back(std::string(path) + " is " + std::to_string(now) + ", cannot raise it to " +
                       std::to_string(want) + ": " + std::strerror(errno) +
                       " (a read-only /proc/sys in the agent's container? run it privileged, or "
                       "set it on the node)");
  }
}

uint64_t open_files_now() {
  rlimit r{};
  return ::getrlimit(RLIMIT_NOFILE, &r) == 0 ? r.rlim_cur : 0;
}

} // namespace

KernelLimits read_kernel_limits() {
  return KernelLimits{read_number(kGroups), read_number(kMarks), open_files_now(), {}};
}

KernelLimits raise_kernel_limits(const LimitWants& want) {
  std::vector<std::string> problems;
  raise_sysctl(kGroups, want.fanotify_groups, problems);
  raise_sysctl(kMarks, want.fanotify_marks, problems);
  if (rlimit r{};
      want.open_files > 0 && ::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < want.open_files) {
    // Root may raise the hard limit too (CAP_SYS_RESOURCE), up to fs.nr_open.
    const uint64_t cap = read_number(kNrOpen);
    rlimit next{want.open_files, std::max<rlim_t>(r.rlim_max, want.open_files)};
    if (cap > 0) next.rlim_max = std::min<rlim_t>(next.rlim_max, cap);
    next.rlim_cur = std::min(next.rlim_cur, next.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &next) != 0) {
      next = rlimit{r.rlim_max, r.rlim_max};
      (void)::setrlimit(RLIMIT_NOFILE, &next);
    }
    if (open_files_now() < want.open_files) {
      problems.push_back("open files (RLIMIT_NOFILE) is " + std::to_string(open_files_now()) +
                         ", cannot raise it to " + std::to_string(want.open_files) + ": " +
                         std::strerror(errno));
    }
  }
  auto out = read_kernel_limits();
  out.problems = std::move(problems);
  return out;
}

} // namespace corral::agent

// The kernel limits the fanotify enforcer depends on, raised at start so that every workload
// of a busy node can be enforced (issue 13): fanotify groups per user (one per enforced
// workload, two while its rules change; stock default 128), fanotify marks per user (a mount
// mark per mount of each workload plus its cached allows, the ignore marks), and open files
// (the agent and its fd holder keep one fd per group). Only ever raised, never lowered.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace corral::agent {

struct KernelLimits {
  uint64_t fanotify_groups = 0;      // /proc/sys/fs/fanotify/max_user_groups, after raising
  uint64_t fanotify_marks = 0;       // /proc/sys/fs/fanotify/max_user_marks
  uint64_t open_files = 0;           // RLIMIT_NOFILE (soft)
  std::vector<std::string> problems; // what could not be raised, and why
};

struct LimitWants {
  uint64_t fanotify_groups = 0; // 0: leave as is
  uint64_t fanotify_marks = 0;
  uint64_t open_files = 0;
};

// Raises each limit below its want to the want; reads them back.
KernelLimits raise_kernel_limits(const LimitWants& want);
// The limits as they are now (for `corral get status`).
KernelLimits read_kernel_limits();

} // namespace corral::agent

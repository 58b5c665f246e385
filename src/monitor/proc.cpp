#include "monitor/proc.h"

#include <cstdio>

#include <sys/stat.h>

#include "proc/proc.h"

namespace corral::monitor {
namespace {

uint64_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

} // namespace

std::string args_of(const char* data, size_t len) {
  std::string out(data, len);
  while (!out.empty() && out.back() == '\0') out.pop_back();
  for (char& c : out) c = c == '\0' ? ' ' : c;
  return out;
}

std::optional<Process> from_proc(int tgid) {
  const std::string stat = proc::read_proc_file(proc::proc_path(tgid, "stat")).value_or("");
  const auto open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 4 > stat.size())
    return std::nullopt;
  Process p;
  p.tgid = tgid;
  p.comm = stat.substr(open + 1, close - open - 1);
  // After ") ": state, ppid, pgrp, session, tty_nr (proc(5)).
  unsigned tty_nr = 0;
  if (std::sscanf(stat.c_str() + close + 2, "%*c %d %*d %*d %u", &p.ppid, &tty_nr) == 2)
    p.tty = proc::tty_name(tty_nr);
  p.forked_by = p.ppid; // as far as /proc can tell
  if (const auto st = proc::read_status(tgid)) {
    p.uid = st->uid;
    p.nspid = st->ns_pid;
  }
  const std::string cmdline =
      proc::read_proc_file(proc::proc_path(tgid, "cmdline"), 1 << 20).value_or("");
  p.args = args_of(cmdline.data(), cmdline.size());
  p.exe = proc::read_link(proc::proc_path(tgid, "exe")).value_or("");
  p.pidns = inode_of(proc::proc_path(tgid, "ns/pid"));
  p.mntns = inode_of(proc::proc_path(tgid, "ns/mnt"));
  // The cgroup v2 id is the inode of the process's cgroup directory; /proc only names the
  // directory relative to an unknown mount, so it stays 0 until the process's first event.
  return p;
}

} // namespace corral::monitor

#include "monitor/proc.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <sys/stat.h>

#include "proc/proc.h"

namespace corral::monitor {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

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
  const std::string dir = "/proc/" + std::to_string(tgid);
  const std::string stat = read_file(dir + "/stat");
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
  const std::string status = read_file(dir + "/status");
  if (const auto u = status.find("\nUid:\t"); u != std::string::npos)
    p.uid = static_cast<uint32_t>(std::strtoul(status.c_str() + u + 6, nullptr, 10));
  if (const auto n = status.find("\nNSpid:\t"); n != std::string::npos) {
    const auto end = status.find('\n', n + 1);
    const auto last = status.rfind('\t', end);
    p.nspid = std::atoi(status.c_str() + last + 1);
  }
  const std::string cmdline = read_file(dir + "/cmdline");
  p.args = args_of(cmdline.data(), cmdline.size());
  std::error_code ec;
  p.exe = std::filesystem::read_symlink(dir + "/exe", ec).string();
  p.pidns = inode_of(dir + "/ns/pid");
  p.mntns = inode_of(dir + "/ns/mnt");
  // The cgroup v2 id is the inode of the process's cgroup directory; /proc only names the
  // directory relative to an unknown mount, so it stays 0 until the process's first event.
  return p;
}

} // namespace corral::monitor

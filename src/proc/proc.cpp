#include "proc/proc.h"

#include <algorithm>
#include <cstdlib>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fd.h"
#include "core/strings.h"

namespace corral::proc {
namespace {

uint32_t to_u32(std::string_view s) {
  return static_cast<uint32_t>(std::strtoul(s.data(), nullptr, 10));
}

} // namespace

std::string proc_path(int pid, std::string_view leaf) {
  return "/proc/" + std::to_string(pid) + "/" + std::string(leaf);
}

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
  return tty_name(static_cast<unsigned>(std::strtoul(fields[4].c_str(), nullptr, 10)));
}

std::string tty_name(unsigned tty_nr) {
  // proc(5): tty_nr has the minor in bits 31-20 and 7-0, the major in bits 15-8.
  const unsigned major = (tty_nr >> 8) & 0xfff;
  const unsigned minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
  // Documentation/admin-guide/devices.txt: 136-143 are the Unix98 pty slaves (/dev/pts/N,
  // "ptsN" in the kernel); 4 holds the virtual consoles (1-63) and the serial ports (64-).
  if (major >= 136 && major <= 143) return "pts" + std::to_string((major - 136) * 256 + minor);
  if (major == 4 && minor > 0 && minor < 64) return "tty" + std::to_string(minor);
  if (major == 4 && minor >= 64) return "ttyS" + std::to_string(minor - 64);
  return {};
}

} // namespace corral::proc

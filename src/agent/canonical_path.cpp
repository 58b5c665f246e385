#include "agent/canonical_path.h"

#include <cerrno>
#include <climits>
#include <deque>
#include <vector>

#include <unistd.h>

#include "core/strings.h"

namespace corral::agent {

std::optional<std::string> resolve_in_root(const std::string& root, const std::string& path) {
  constexpr int kMaxLinks = 40; // the kernel's MAXSYMLINKS
  std::deque<std::string> todo;
  for (auto& c : split(path, '/')) todo.push_back(std::move(c));
  std::vector<std::string> done;
  int links = 0;
  char target[PATH_MAX];
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(std::move(c));
    const std::string host = root + "/" + join(done, "/");
    const ssize_t n = ::readlink(host.c_str(), target, sizeof target);
    if (n < 0) {
      if (errno == EINVAL) continue; // exists, not a symlink
      return std::nullopt;
    }
    if (++links > kMaxLinks) return std::nullopt;
    done.pop_back();
    const std::string_view link(target, static_cast<size_t>(n));
    if (!link.empty() && link[0] == '/') done.clear();
    auto parts = split(link, '/');
    todo.insert(todo.begin(), parts.begin(), parts.end());
  }
  return "/" + join(done, "/");
}

} // namespace corral::agent

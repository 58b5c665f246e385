#include "agent/canonical_path.h"

#include <cerrno>
#include <climits>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "core/strings.h"

namespace corral::agent {
namespace {

// What readlink said of one host path: its target, or the errno (EINVAL: not a link).
struct Link {
  int error = 0;
  std::string target;
};

Link read_link(const std::string& host) {
  char target[PATH_MAX];
  const ssize_t n = ::readlink(host.c_str(), target, sizeof target);
  if (n < 0) return Link{errno, {}};
  return Link{0, std::string(target, static_cast<size_t>(n))};
}

std::optional<std::string> resolve(const std::string& root, const std::string& path,
                                   const std::function<Link(const std::string&)>& link_of) {
  constexpr int kMaxLinks = 40; // the kernel's MAXSYMLINKS
  std::deque<std::string> todo;
  for (auto& c : split(path, '/')) todo.push_back(std::move(c));
  std::vector<std::string> done;
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(std::move(c));
    const Link link = link_of(root + "/" + join(done, "/"));
    if (link.error == EINVAL) continue; // exists, not a symlink
    if (link.error != 0) return std::nullopt;
    if (++links > kMaxLinks) return std::nullopt;
    done.pop_back();
    if (!link.target.empty() && link.target[0] == '/') done.clear();
    auto parts = split(link.target, '/');
    todo.insert(todo.begin(), parts.begin(), parts.end());
  }
  return "/" + join(done, "/");
}

} // namespace

std::optional<std::string> resolve_in_root(const std::string& root, const std::string& path) {
  return resolve(root, path, read_link);
}

policy::PathResolver caching_resolver(std::string root) {
  auto links = std::make_shared<std::unordered_map<std::string, Link>>();
  const std::function<Link(const std::string&)> link_of = [links](const std::string& host) {
    const auto it = links->find(host);
    if (it != links->end()) return it->second;
    return links->emplace(host, read_link(host)).first->second;
  };
  return [root = std::move(root), link_of](const std::string& path) {
    return resolve(root, path, link_of);
  };
}

} // namespace corral::agent

#include "agent/canonical_path.h"

#include <cerrno>
#include <climits>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <sys/stat.h>
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

namespace {

// The memory of one compile's resolutions: readlink results by host path, and the canonical
// form of each directory met (nullopt: missing).
class CachingResolver {
public:
  CachingResolver(std::string root, uint64_t links_not_after_ns)
      : root_(std::move(root)), not_after_ns_(links_not_after_ns) {}

  std::optional<std::string> resolve(const std::string& path) {
    const size_t slash = path.rfind('/');
    // The common path (absolute, no ".", ".." or "//"): its directory's canonical form,
    // remembered, and one look at its last component.
    if (slash == std::string::npos || path[0] != '/' || path.find("//") != std::string::npos ||
        path.find("/./") != std::string::npos || path.find("/../") != std::string::npos ||
        path.ends_with("/.") || path.ends_with("/..") || slash + 1 == path.size())
      return slow(path);
    const std::string dir = path.substr(0, slash);
    std::optional<std::string> canonical_dir;
    if (dir.empty()) {
      canonical_dir = "";
    } else if (const auto it = dirs_.find(dir); it != dirs_.end()) {
      canonical_dir = it->second;
    } else {
      canonical_dir = resolve(dir);
      dirs_.emplace(dir, canonical_dir);
    }
    if (!canonical_dir) return std::nullopt;
    std::string out = *canonical_dir + path.substr(slash);
    const Link& l = link_of(root_ + out);
    if (l.error == EINVAL) return out; // exists, not a symlink
    if (l.error != 0) return std::nullopt;
    return slow(path); // the last component is a symlink
  }

private:
  std::optional<std::string> slow(const std::string& path) {
    return corral::agent::resolve(root_, path,
                                  [this](const std::string& host) { return link_of(host); });
  }
  const Link& link_of(const std::string& host) {
    const auto it = links_.find(host);
    if (it != links_.end()) return it->second;
    Link l = read_link(host);
    // A symlink made after the workload started is not the image's: a rule is not moved
    // through it (`ln -sf /usr/sbin/chroot /usr/bin/bash` must not turn an Allow of /bin/bash
    // into one of chroot). Read as a plain entry, the rule keeps its literal path.
    struct stat st {};
    if (l.error == 0 && not_after_ns_ != 0 && ::lstat(host.c_str(), &st) == 0 &&
        static_cast<uint64_t>(st.st_ctim.tv_sec) * 1000000000ULL +
                static_cast<uint64_t>(st.st_ctim.tv_nsec) >
            not_after_ns_)
      l = Link{EINVAL, {}};
    return links_.emplace(host, std::move(l)).first->second;
  }

  std::string root_;
  uint64_t not_after_ns_;
  std::unordered_map<std::string, Link> links_;
  std::unordered_map<std::string, std::optional<std::string>> dirs_;
};

} // namespace

policy::PathResolver caching_resolver(std::string root, uint64_t links_not_after_ns) {
  auto r = std::make_shared<CachingResolver>(std::move(root), links_not_after_ns);
  return [r](const std::string& path) { return r->resolve(path); };
}

} // namespace corral::agent

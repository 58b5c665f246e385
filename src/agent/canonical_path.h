// Canonical paths inside a workload's root (DESIGN.md "Canonical paths"): a rule naming
// /bin/bash must match an exec of /usr/bin/bash in a merged-/usr image.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "policy/ruleset.h"

namespace corral::agent {

// Resolves `path` inside `root` (e.g. /proc/<pid>/root), following symlinks as if `root`
// were '/': absolute link targets restart at `root`, '..' never climbs above it. Uses only
// readlink (no open), so it never triggers a fanotify permission event. nullopt when the
// path does not exist or has too many links.
std::optional<std::string> resolve_in_root(const std::string& root, const std::string& path);

// resolve_in_root for the paths of one compile, each readlink done once: the rules of a
// large policy share their directories (100,000 rules cost ~250,000 readlinks through
// /proc/<pid>/root without it, most of a second). For one compile only: the workload's
// files change. With `links_not_after_ns` (the workload's start, CLOCK_REALTIME ns), a
// symlink whose ctime is later is not followed: the workload made it, the image did not.
policy::PathResolver caching_resolver(std::string root, uint64_t links_not_after_ns = 0);

} // namespace corral::agent

// Reading history.jsonl back, and checking it and the stored files against each other
// (the writer is history.cpp).
#include <cerrno>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "agent/history.h"

namespace corral::agent {
namespace fs = std::filesystem;
namespace {

using nlohmann::json;

// Enough to see what went wrong without burying it; the rest is counted.
constexpr size_t kMaxProblems = 20;

class Problems {
public:
  void add(std::string problem) {
    if (list_.size() < kMaxProblems) {
      list_.push_back(std::move(problem));
    } else {
      ++more_;
    }
  }
  std::vector<std::string> take() {
    if (more_ > 0) list_.push_back("… and " + std::to_string(more_) + " more");
    return std::move(list_);
  }

private:
  std::vector<std::string> list_;
  size_t more_ = 0;
};

struct Line {
  size_t number; // 1-based
  std::string_view text;
  bool torn; // the last line, without its '\n'
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? text.size() : nl;
    lines.push_back({lines.size() + 1, text.substr(pos, end - pos), nl == std::string_view::npos});
    pos = end + 1;
  }
  return lines;
}

// The whole file; a missing one is an Error with err == ENOENT.
Result<std::string> read_whole(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string label(const HistoryEntry& e, size_t line) {
  return "entry " + std::to_string(e.seq) + " (line " + std::to_string(line) + ", " + e.action +
         " " + e.object + ")";
}

std::string short_hash(const std::string& h) {
  return h.substr(0, 12) + "…";
}

struct Placed {
  HistoryEntry entry;
  size_t line = 0;
};

// The first thing wrong with one parsed line given the valid entry before it (none for the
// first), or "". The hash comes first: an edited entry is reported as edited, not as a
// follow-on link or seq error.
std::string check_entry(std::string_view text, const Placed& at, const Placed* before) {
  const HistoryEntry& e = at.entry;
  json j = json::parse(text);
  j.erase("hash");
  if (sha256_hex(j.dump()) != e.hash) {
    return label(e, at.line) + ": its content was edited (hash does not match)";
  }
  const std::string where = "entry " + std::to_string(e.seq) + " (line " + std::to_string(at.line);
  if (before == nullptr && e.prev != std::string(64, '0')) {
    return where + "): its prev is not the chain's start: entries before it were removed";
  }
  if (before != nullptr && e.prev != before->entry.hash) {
    return where + "): its prev is not the hash of entry " + std::to_string(before->entry.seq) +
           " (line " + std::to_string(before->line) +
           ") before it: an entry was removed or reordered";
  }
  const uint64_t want = before == nullptr ? 1 : before->entry.seq + 1;
  if (e.seq != want) return where + "): seq should be " + std::to_string(want);
  if (auto why = entry_problem(e); !why.empty()) return label(e, at.line) + ": " + why;
  return "";
}

// Checks every line in order; fills `last` with the last well-formed entry about each file.
void check_chain(std::string_view text, VerifyReport& report, Problems& problems,
                 std::map<std::string, Placed>& last) {
  std::optional<Placed> before;
  for (const Line& line : split_lines(text)) {
    ++report.entries;
    const std::string where = "line " + std::to_string(line.number);
    if (line.torn) {
      problems.add(where + ": torn (no newline at its end): an append was interrupted; the "
                           "agent drops it when it next opens the history");
      continue;
    }
    auto e = parse_history_line(line.text);
    if (!e) {
      problems.add(where + ": not a valid entry (" + e.error().message + ")");
      continue;
    }
    const Placed at{*e, line.number};
    if (auto problem = check_entry(line.text, at, before ? &*before : nullptr); !problem.empty()) {
      problems.add(std::move(problem));
    }
    if (entry_problem(at.entry).empty()) last[at.entry.file] = at;
    before = at;
  }
}

// policies/*.yaml and namespaces/*.json, as paths relative to the state dir; nothing else
// in the state dir (temporary *.tmp files included) is the history's business.
std::set<std::string> stored_files(const std::string& state_dir) {
  std::set<std::string> files;
  for (const auto& [dir, ext] :
       {std::pair<const char*, const char*>{"policies", ".yaml"}, {"namespaces", ".json"}}) {
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(fs::path(state_dir) / dir, ec)) {
      if (f.is_regular_file(ec) && f.path().extension() == ext) {
        files.insert(std::string(dir) + "/" + f.path().filename().string());
      }
    }
  }
  return files;
}

// The one problem of a stored file (or of its absence), or "".
std::string check_file(const std::string& state_dir, const std::string& file, bool exists,
                       const Placed* last) {
  if (last == nullptr) return file + ": no history entry (added behind the agent's back)";
  const std::string said = label(last->entry, last->line);
  if (last->entry.action == "Deleted") {
    return exists ? file + ": exists, but " + said + " says it was deleted" : "";
  }
  if (!exists) return file + ": missing, " + said + " says it exists";
  auto text = read_whole(state_dir + "/" + file);
  if (!text) return file + ": " + text.error().message;
  const std::string digest = sha256_hex(*text);
  if (digest == last->entry.digest) return "";
  return file + ": edited behind the agent's back (digest " + short_hash(digest) + " ≠ entry " +
         std::to_string(last->entry.seq) + "'s " + short_hash(last->entry.digest) + ")";
}

} // namespace

Result<std::vector<HistoryEntry>> read_history(const std::string& state_dir) {
  const std::string path = state_dir + "/" + std::string(kHistoryFile);
  auto text = read_whole(path);
  if (!text) {
    if (text.error().err == ENOENT) return std::vector<HistoryEntry>{};
    return text.error();
  }
  std::vector<HistoryEntry> entries;
  for (const Line& line : split_lines(*text)) {
    if (line.torn) continue; // as History::open() drops it
    auto e = parse_history_line(line.text);
    if (!e) {
      return Error{path + " line " + std::to_string(line.number) +
                       ": not a valid entry: " + e.error().message,
                   "restore it from a backup, or move it aside to start a new history"};
    }
    entries.push_back(std::move(*e));
  }
  return entries;
}

VerifyReport verify_history(const std::string& state_dir) {
  VerifyReport report;
  Problems problems;
  std::map<std::string, Placed> last;
  auto text = read_whole(state_dir + "/" + std::string(kHistoryFile));
  if (text) check_chain(*text, report, problems, last);
  const auto on_disk = stored_files(state_dir);
  if (!text && (text.error().err != ENOENT || !on_disk.empty())) {
    problems.add(text.error().err == ENOENT
                     ? std::string(kHistoryFile) + ": missing, but the state dir holds " +
                           std::to_string(on_disk.size()) + " stored files"
                     : text.error().message);
  }
  std::set<std::string> files = on_disk;
  for (const auto& [file, _] : last) files.insert(file);
  for (const auto& file : files) {
    const bool exists = on_disk.contains(file);
    if (exists) ++report.files;
    const auto it = last.find(file);
    auto problem = check_file(state_dir, file, exists, it == last.end() ? nullptr : &it->second);
    if (!problem.empty()) problems.add(std::move(problem));
  }
  report.problems = problems.take();
  return report;
}

} // namespace corral::agent

#include "agent/held_rules.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fd.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"
#include "enforce/fanotify/workload_facts.h"
#include "policy/parser.h"

namespace corral::agent {
namespace {

std::string file_of(const std::string& dir, const std::string& id) {
  std::string name = id;
  for (auto& c : name) {
    if (c == '/' || c == '\0') c = '_';
  }
  return dir + "/" + name + ".json";
}

// `text` as a JSON string. nlohmann's dump checks and escapes byte by byte, ~10 MB/s: the
// YAML of a 100,000-rule policy (5.5 MB) cost half a second of every apply. The parser
// accepted the text, so it is valid UTF-8, which JSON carries as it is.
void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  size_t done = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text, done, i - done);
    done = i + 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    }
  }
  out.append(text, done);
  out += '"';
}

policy::Posture posture_of(const std::string& s) {
  return s == "block" ? policy::Posture::Block : policy::Posture::Audit;
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// Written in place: a new inode per write (temp file + rename) made ext4 hunt for free
// inodes on every apply. A write cut short by a crash leaves JSON that does not parse (or a
// valid one followed by the old tail, which the parser refuses too): the holder then
// answers that workload with its undecidable verdict, as for a missing file.
// Not O_TRUNC: ext4 flushes a file truncated to zero when it is closed (auto_da_alloc).
bool write_file(const std::string& path, const std::string& text) {
  const Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  return fd &&
         ::pwrite(fd.get(), text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()) &&
         ::ftruncate(fd.get(), static_cast<off_t>(text.size())) == 0;
}

bool same_source(const std::vector<policy::PolicyPtr>& a, const std::vector<policy::PolicyPtr>& b) {
  return a == b || std::equal(a.begin(), a.end(), b.begin(), b.end(),
                              [](const auto& x, const auto& y) { return x->source == y->source; });
}

} // namespace

HeldRulesStore::HeldRulesStore(std::string dir, std::function<void(const std::string&)> log)
    : dir_(std::move(dir)), log_(std::move(log)) {}

void HeldRulesStore::save(const workload::Workload& w, const policy::RuleSet& rules) {
  std::lock_guard lock(mu_);
  ::mkdir(dir_.c_str(), 0700);
  // The rules file: shared by every workload whose rules come from the same sources and
  // settings (a fingerprint is a hash: equal ones are compared, never trusted).
  const auto& s = rules.settings();
  std::string file;
  auto [lo, hi] = by_fingerprint_.equal_range(rules.fingerprint());
  for (auto it = lo; it != hi; ++it) {
    if (same_source(it->second.policies, rules.policies()) && it->second.settings == s)
      file = it->second.file;
  }
  if (file.empty()) {
    nlohmann::json j;
    j["postures"] = {{"file", std::string(to_string(s.postures.file))},
                     {"network", std::string(to_string(s.postures.network))},
                     {"capabilities", std::string(to_string(s.postures.capabilities))}};
    j["dry_run"] = s.dry_run;
    j["image_only"] = s.image_only;
    // The policies' texts are added after the rest (the object ends in '}').
    std::string text = j.dump();
    text.pop_back();
    text += ",\"policies\":[";
    for (const auto& p : rules.policies()) {
      if (text.back() != '[') text += ',';
      append_json_string(text, p->source);
    }
    text += "]}\n";
    file = "rules-" + rules.fingerprint() + "-" + std::to_string(++next_) + ".json";
    if (!write_file(dir_ + "/" + file, text)) {
      if (log_)
        log_("cannot write " + dir_ + "/" + file + ": the fd holder would answer " + w.id +
             " with undecidable verdicts");
      return;
    }
    by_fingerprint_.emplace(rules.fingerprint(), Shared{rules.policies(), s, file, 0});
  }
  nlohmann::json j;
  j["id"] = w.id;
  j["pid"] = w.init_pid;
  j["name"] = w.name;
  j["namespace"] = w.namespace_name;
  j["labels"] = w.labels;
  j["annotations"] = w.annotations;
  j["rules"] = file;
  if (!write_file(file_of(dir_, w.id), j.dump() + "\n")) {
    if (log_)
      log_("cannot write " + file_of(dir_, w.id) + ": the fd holder would answer " + w.id +
           " with undecidable verdicts");
    return;
  }
  auto& slot = file_of_workload_[w.id];
  if (slot == file) return;
  const std::string before = slot;
  slot = file;
  for (auto& [fp, shared] : by_fingerprint_) {
    if (shared.file == file) ++shared.users;
  }
  if (!before.empty()) release_file_locked(before);
}

void HeldRulesStore::release_file_locked(const std::string& file) {
  for (auto it = by_fingerprint_.begin(); it != by_fingerprint_.end(); ++it) {
    if (it->second.file != file) continue;
    if (--it->second.users == 0) {
      ::unlink((dir_ + "/" + file).c_str());
      by_fingerprint_.erase(it);
    }
    return;
  }
}

void HeldRulesStore::drop(const std::string& id) {
  std::lock_guard lock(mu_);
  ::unlink(file_of(dir_, id).c_str());
  const auto it = file_of_workload_.find(id);
  if (it == file_of_workload_.end()) return;
  const std::string file = it->second;
  file_of_workload_.erase(it);
  release_file_locked(file);
}

void HeldRulesStore::sweep() {
  std::lock_guard lock(mu_);
  std::set<std::string> named;
  std::vector<std::string> rules_files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("rules-")) {
      rules_files.push_back(name);
      continue;
    }
    std::ifstream in(e.path());
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("rules") && j["rules"].is_string())
      named.insert(j["rules"].get<std::string>());
  }
  for (const auto& f : rules_files) {
    if (!named.contains(f)) ::unlink((dir_ + "/" + f).c_str());
  }
}

std::optional<HeldRules> load_held_rules(const std::string& dir, const std::string& id) {
  const auto found = read_json(file_of(dir, id));
  if (!found) return std::nullopt;
  const auto& j = *found;
  try {
    const int pid = j.at("pid").get<int>();
    const auto root = enforce::fanotify::read_link("/proc/" + std::to_string(pid) + "/root");
    if (pid <= 0 || !root) return std::nullopt;
    policy::Workload w;
    w.name = j.at("name").get<std::string>();
    w.namespace_name = j.at("namespace").get<std::string>();
    w.labels = j.at("labels").get<policy::Labels>();
    w.annotations = j.at("annotations").get<policy::Labels>();
    // A rules file name of our own making, never a path.
    const auto file = j.at("rules").get<std::string>();
    if (!file.starts_with("rules-") || file.find('/') != std::string::npos) return std::nullopt;
    const auto shared = read_json(dir + "/" + file);
    if (!shared) return std::nullopt;
    const auto& r = *shared;
    policy::Settings s;
    s.postures.file = posture_of(r.at("postures").at("file").get<std::string>());
    s.postures.network = posture_of(r.at("postures").at("network").get<std::string>());
    s.postures.capabilities = posture_of(r.at("postures").at("capabilities").get<std::string>());
    s.dry_run = r.at("dry_run").get<bool>();
    s.image_only = r.value("image_only", true);
    std::vector<policy::PolicyPtr> policies;
    for (const auto& src : r.at("policies")) {
      auto parsed = policy::parse_policies(src.get<std::string>(), "held-rules");
      if (!parsed.ok()) return std::nullopt;
      policies.insert(policies.end(), parsed.policies.begin(), parsed.policies.end());
    }
    std::string why;
    return HeldRules{policy::compile(policies, w, s, enforce::fanotify::root_resolver(pid)), *root,
                     pid, enforce::fanotify::workload_cgroup_id(pid, &why).value_or(0),
                     enforce::fanotify::process_start_ns(pid).value_or(0)};
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

} // namespace corral::agent

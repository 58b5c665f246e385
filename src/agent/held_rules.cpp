#include "agent/held_rules.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

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

} // namespace

void save_held_rules(const std::string& dir, const workload::Workload& w,
                     const policy::RuleSet& rules,
                     const std::function<void(const std::string&)>& log) {
  nlohmann::json j;
  j["id"] = w.id;
  j["pid"] = w.init_pid;
  j["name"] = w.name;
  j["namespace"] = w.namespace_name;
  j["labels"] = w.labels;
  j["annotations"] = w.annotations;
  const auto& s = rules.settings();
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
  ::mkdir(dir.c_str(), 0700);
  const std::string path = file_of(dir, w.id);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.good()) {
      if (log)
        log("cannot write " + tmp + ": the fd holder would answer with undecidable verdicts");
      return;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0 && log) log("cannot rename " + tmp);
}

void drop_held_rules(const std::string& dir, const std::string& id) {
  ::unlink(file_of(dir, id).c_str());
}

std::optional<HeldRules> load_held_rules(const std::string& dir, const std::string& id) {
  std::ifstream in(file_of(dir, id));
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    const int pid = j.at("pid").get<int>();
    const auto root = enforce::fanotify::read_link("/proc/" + std::to_string(pid) + "/root");
    if (pid <= 0 || !root) return std::nullopt;
    policy::Workload w;
    w.name = j.at("name").get<std::string>();
    w.namespace_name = j.at("namespace").get<std::string>();
    w.labels = j.at("labels").get<policy::Labels>();
    w.annotations = j.at("annotations").get<policy::Labels>();
    policy::Settings s;
    s.postures.file = posture_of(j.at("postures").at("file").get<std::string>());
    s.postures.network = posture_of(j.at("postures").at("network").get<std::string>());
    s.postures.capabilities = posture_of(j.at("postures").at("capabilities").get<std::string>());
    s.dry_run = j.at("dry_run").get<bool>();
    s.image_only = j.value("image_only", true);
    std::vector<policy::PolicyPtr> policies;
    for (const auto& src : j.at("policies")) {
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

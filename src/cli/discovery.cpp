#include "cli/discovery.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <iostream>
#include <set>
#include <vector>

#include "cli/client.h"

namespace corral::cli {
namespace {

// Labels the runtime sets on every container: they select nothing the user means.
bool runtime_label(const std::string& key) {
  for (const char* prefix : {"io.kubernetes.", "io.cri-containerd.", "io.containerd.", "nerdctl/",
                             "org.opencontainers."}) {
    if (key.starts_with(prefix)) return true;
  }
  return false;
}

std::string clock_time(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string seen_note(const api::SeenItem& s, const char* verb) {
  if (s.count() == 0)
    return std::string(verb == nullptr ? "running" : verb) + " now (read from /proc)";
  return std::string(verb == nullptr ? "ran" : verb) + " " + std::to_string(s.count()) +
         (s.count() == 1 ? " time" : " times") + ", last " + clock_time(s.last());
}

// The directory a file's rule names: its parent, with per-process and per-terminal
// directories folded (/proc/123/ → /proc/, /dev/pts/3 → /dev/pts/).
std::string rule_dir(const std::string& path) {
  if (path.starts_with("/proc/")) return "/proc/";
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "/" : path.substr(0, slash + 1);
}

struct Rule {
  std::string value;
  std::string note;
};

struct Model {
  std::string name, namespace_name;
  std::vector<std::pair<std::string, std::string>> labels;
  std::map<std::string, std::string> annotations;
  std::vector<Rule> processes, dirs, protocols;
  std::vector<std::string> notes; // comments at the top
};

Result<Model> model_of(const api::WorkloadProfile& p, const DiscoveredPolicy& d) {
  const auto& w = p.workload();
  Model m;
  m.name = d.name;
  m.namespace_name = w.namespace_();
  m.annotations = d.annotations;
  if (d.dry_run) m.annotations["kubearmor-policy"] = "audited";
  for (const auto& [k, v] : w.labels()) {
    if (!runtime_label(k)) m.labels.emplace_back(k, v);
  }
  std::sort(m.labels.begin(), m.labels.end());
  if (m.labels.empty()) {
    return Error{"workload " + w.name() +
                     " has no labels a policy could select it by (only the "
                     "runtime's own)",
                 "label its pod or container, e.g. app=" + w.name(), 0};
  }
  m.notes.push_back("Discovered by corral from what workload " + w.name() + " (" +
                    w.id().substr(0, 12) + ", namespace " + w.namespace_() + ") ran since " +
                    clock_time(p.since()) + ".");
  for (const auto& s : p.processes()) {
    if (!s.name().starts_with("/")) continue;
    if (s.changed()) { // written after the start: the attacker's, or an update; never allowed
      m.notes.push_back("Left out: " + s.name() + " (" + seen_note(s, nullptr) +
                        "): created or changed after the workload started, not from its image.");
      continue;
    }
    m.processes.push_back({s.name(), seen_note(s, nullptr)});
  }
  if (m.processes.empty()) {
    return Error{"nothing was seen to run in workload " + w.name(),
                 "is the system monitor running (corral get status)? Is the workload running?", 0};
  }
  if (p.files_recorded()) {
    std::map<std::string, std::pair<uint64_t, std::string>> dirs; // dir -> opens, an example
    for (const auto& s : p.files()) {
      if (!s.name().starts_with("/")) continue;
      auto& [n, example] = dirs[rule_dir(s.name())];
      n += std::max<uint64_t>(1, s.count());
      if (example.empty()) example = s.name();
    }
    // A directory inside one already allowed (recursively) adds nothing.
    std::string kept;
    for (const auto& [dir, info] : dirs) {
      if (!kept.empty() && dir.starts_with(kept)) continue;
      kept = dir;
      m.dirs.push_back({dir, std::to_string(info.first) + (info.first == 1 ? " open" : " opens") +
                                 ", e.g. " + info.second});
    }
  } else {
    m.notes.push_back("No file rules: file opens were not recorded (annotate "
                      "kubearmor-visibility=process,file,network to record them), so file "
                      "access stays as it is.");
  }
  if (p.network_recorded()) {
    std::map<std::string, std::string> protocols;
    for (const auto& s : p.network()) {
      if (s.protocol().empty()) continue;
      auto& note = protocols[s.protocol()];
      if (note.size() < 120) note += (note.empty() ? "" : "; ") + s.name();
    }
    for (const auto& [proto, note] : protocols) m.protocols.push_back({proto, note});
    if (protocols.empty()) {
      m.notes.push_back("No network rules: no network use was recorded.");
    }
  } else {
    m.notes.push_back("No network rules: network use was not recorded (kubearmor-visibility "
                      "network), so the network stays as it is.");
  }
  return m;
}

std::string yaml_string(const std::string& s) {
  return nlohmann::json(s).dump();
}

} // namespace

Result<int64_t> parse_duration(const std::string& text, const std::string& flag) {
  int64_t total = 0;
  size_t i = 0;
  const Error bad{flag + " " + text + ": not a duration",
                  "a number with a unit: 30s, 10m, 1h30m, 2d", 0};
  if (text.empty()) return bad;
  if (text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 9)
    return std::stoll(text); // a bare number: seconds
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])) != 0) ++j;
    if (j == i || j == text.size() || j - i > 9) return bad;
    const int64_t n = std::stoll(text.substr(i, j - i));
    switch (text[j]) {
    case 's': total += n; break;
    case 'm': total += n * 60; break;
    case 'h': total += n * 3600; break;
    case 'd': total += n * 86400; break;
    default: return bad;
    }
    i = j + 1;
  }
  return total;
}

std::optional<api::ProfileReply> read_profiles(api::Agent::Stub& stub, const ProfileQuery& q,
                                               const char* command, const std::string& socket) {
  api::ProfileRequest req;
  req.set_namespace_(q.namespace_name);
  req.set_pod(q.pod);
  req.set_container(q.container);
  req.set_running(q.running);
  req.set_since(q.since);
  api::ProfileReply reply;
  const auto status = stub.Profile(unary_context().get(), req, &reply);
  if (!status.ok()) {
    report(status, command, socket);
    return std::nullopt;
  }
  return reply;
}

Result<api::WorkloadProfile> pick_workload(const api::ProfileReply& reply, const std::string& name,
                                           const std::string& namespace_name) {
  std::vector<const api::WorkloadProfile*> found;
  std::string known;
  for (const auto& p : reply.workloads()) {
    const auto& w = p.workload();
    known += (known.empty() ? "" : ", ") + w.namespace_() + "/" + w.name();
    if (!namespace_name.empty() && w.namespace_() != namespace_name) continue;
    if (w.name() == name || (!w.pod().empty() && w.pod() == name) ||
        (name.size() >= 12 && w.id().starts_with(name)))
      found.push_back(&p);
  }
  const std::string where = namespace_name.empty() ? "" : " in namespace " + namespace_name;
  if (found.empty()) {
    return Error{"no running workload named " + name + where,
                 known.empty() ? "the agent knows no running workload (corral get workloads)"
                               : "running now: " + known,
                 0};
  }
  if (found.size() > 1) {
    std::string ids;
    for (const auto* p : found)
      ids += (ids.empty() ? "" : ", ") + p->workload().namespace_() + "/" + p->workload().name() +
             " (" + p->workload().id().substr(0, 12) + ")";
    return Error{name + where + " names " + std::to_string(found.size()) + " workloads: " + ids,
                 "name one by its container id, or add -n NAMESPACE", 0};
  }
  if (!reply.monitor()) {
    return Error{"the agent runs without the system monitor: it has not seen what " + name +
                     " runs",
                 "start corrald with --monitor auto on a kernel with BTF (corral probe)", 0};
  }
  return *found.front();
}

std::string discovered_name(const api::WorkloadProfile& p, const std::string& prefix) {
  std::string n = prefix;
  for (const char c : p.workload().name()) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    n += (std::isalnum(static_cast<unsigned char>(l)) != 0 || l == '-' || l == '.') ? l : '-';
  }
  if (n.size() > 63) n.resize(63);
  while (!n.empty() && (n.back() == '-' || n.back() == '.')) n.pop_back();
  return n;
}

Result<std::string> policy_yaml(const api::WorkloadProfile& p, const DiscoveredPolicy& d) {
  auto m = model_of(p, d);
  if (!m) return m.error();
  std::string y;
  for (const auto& n : m->notes) y += "# " + n + "\n";
  y += "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n";
  y +=
      "  name: " + yaml_string(m->name) + "\n  namespace: " + yaml_string(m->namespace_name) + "\n";
  if (!m->annotations.empty()) {
    y += "  annotations:\n";
    for (const auto& [k, v] : m->annotations)
      y += "    " + yaml_string(k) + ": " + yaml_string(v) + "\n";
  }
  y += "spec:\n  selector:\n    matchLabels:\n";
  for (const auto& [k, v] : m->labels)
    y += "      " + yaml_string(k) + ": " + yaml_string(v) + "\n";
  y += "  process:\n    matchPaths:\n";
  for (const auto& r : m->processes)
    y += "    - path: " + yaml_string(r.value) + " # " + r.note + "\n";
  if (!m->dirs.empty()) {
    y += "  file:\n    matchDirectories:\n";
    for (const auto& r : m->dirs) {
      y += "    - dir: " + yaml_string(r.value) + " # " + r.note + "\n      recursive: true\n";
    }
  }
  if (!m->protocols.empty()) {
    y += "  network:\n    matchProtocols:\n";
    for (const auto& r : m->protocols) y += "    - protocol: " + r.value + " # " + r.note + "\n";
  }
  y += "  action: Allow\n";
  return y;
}

Result<nlohmann::ordered_json> policy_json(const api::WorkloadProfile& p,
                                           const DiscoveredPolicy& d) {
  auto m = model_of(p, d);
  if (!m) return m.error();
  nlohmann::ordered_json j;
  j["apiVersion"] = "security.kubearmor.com/v1";
  j["kind"] = "KubeArmorPolicy";
  j["metadata"]["name"] = m->name;
  j["metadata"]["namespace"] = m->namespace_name;
  for (const auto& [k, v] : m->annotations) j["metadata"]["annotations"][k] = v;
  for (const auto& [k, v] : m->labels) j["spec"]["selector"]["matchLabels"][k] = v;
  for (const auto& r : m->processes)
    j["spec"]["process"]["matchPaths"].push_back({{"path", r.value}});
  for (const auto& r : m->dirs)
    j["spec"]["file"]["matchDirectories"].push_back({{"dir", r.value}, {"recursive", true}});
  for (const auto& r : m->protocols)
    j["spec"]["network"]["matchProtocols"].push_back({{"protocol", r.value}});
  j["spec"]["action"] = "Allow";
  return j;
}

} // namespace corral::cli

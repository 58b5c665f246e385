// `corral probe`'s text form: sections, aligned columns, and marks that read at a glance on
// a terminal (✓ ✗) and stay plain ASCII ([ok] [--]) in pipes, files and logs.
#include <set>
#include <sstream>

#include "cli/probe_view.h"
#include "core/strings.h"

namespace corral::cli {
namespace {

enum class Mark { Ok, Bad, Partial, Unknown, Absent };

struct Style {
  bool fancy;
  [[nodiscard]] std::string mark(Mark m) const {
    switch (m) {
    case Mark::Ok: return fancy ? "✓" : "[ok]";
    case Mark::Bad: return fancy ? "✗" : "[--]";
    case Mark::Partial: return fancy ? "◐" : "[~~]";
    case Mark::Unknown: return fancy ? "?" : "[??]";
    case Mark::Absent: return fancy ? "·" : "[  ]";
    }
    return "?";
  }
};

// Display width of UTF-8 text: code points, not bytes (the marks are 3 bytes wide).
size_t width(const std::string& s) {
  size_t n = 0;
  for (const unsigned char ch : s) n += (ch & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

std::string pad(const std::string& s, size_t w) {
  return s + std::string(w > width(s) ? w - width(s) : 1, ' ');
}

// Rows in columns as wide as their widest cell; the last column is not padded.
void table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows) {
    w.resize(std::max(w.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], width(r[i]) + 2);
  }
  for (const auto& r : rows) {
    std::string line = "  ";
    for (size_t i = 0; i < r.size(); ++i) line += i + 1 < r.size() ? pad(r[i], w[i]) : r[i];
    out << line << "\n";
  }
}

Mark of(probe::Check::Result r) {
  switch (r) {
  case probe::Check::Result::Works: return Mark::Ok;
  case probe::Check::Result::Fails: return Mark::Bad;
  default: return Mark::Unknown;
  }
}

Mark of_coverage(const std::string& c) {
  if (c == "enforced") return Mark::Ok;
  if (c == "audited only") return Mark::Partial;
  if (c == "unsupported") return Mark::Bad;
  return Mark::Unknown;
}

void kernel(std::ostream& out, const probe::Report& r, const Style& s) {
  const auto& k = r.kernel;
  out << "Kernel\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"Release", k.release + " (" + k.machine + ")"});
  if (k.lsm.active.empty()) {
    rows.push_back({"Active LSMs", s.mark(Mark::Unknown) + " unknown: " + k.lsm.error});
  } else {
    rows.push_back({"Active LSMs", join(k.lsm.active, ",")});
    rows.push_back({"", "read from " + k.lsm.source});
  }
  rows.push_back({"BTF", k.btf.empty() ? s.mark(Mark::Bad) + " none (/sys/kernel/btf/vmlinux)"
                                       : s.mark(Mark::Ok) + " " + k.btf});
  rows.push_back(
      {"cgroup v2", k.cgroup2.empty()
                        ? s.mark(Mark::Bad) + " not mounted"
                        : s.mark(Mark::Ok) + " " + k.cgroup2 +
                              (k.cgroup_hybrid ? " (hybrid: cgroup v1 mounted too)" : "")});
  table(out, rows);
}

void mechanisms(std::ostream& out, const probe::Report& r, bool full, const Style& s) {
  out << "\nMechanisms (tried for real)\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : r.checks) {
    rows.push_back({s.mark(of(c.result)), c.title, c.message});
    if (full && !c.what.empty()) rows.push_back({"", "", "tried: " + c.what});
  }
  table(out, rows);
}

void runtimes(std::ostream& out, const probe::Report& r, bool full, const Style& s) {
  out << "\nContainer runtimes\n";
  std::vector<std::vector<std::string>> rows;
  std::set<std::string> found;
  for (const auto& x : r.sockets) {
    if (x.found) found.insert(x.runtime);
  }
  std::set<std::string> shown;
  for (const auto& x : r.sockets) {
    const bool show = full || x.found || x.given || !found.contains(x.runtime);
    if (!show || (!full && !x.found && !x.given && !shown.insert(x.runtime).second)) continue;
    if (x.reachable)
      rows.push_back({s.mark(Mark::Ok), x.runtime, x.path});
    else if (x.found || x.given)
      rows.push_back({s.mark(Mark::Bad), x.runtime, x.path + ": " + x.error});
    else
      rows.push_back(
          {s.mark(Mark::Absent), x.runtime, "not found (" + x.path + (full ? "" : ", ...") + ")"});
  }
  table(out, rows);
}

void picks(std::ostream& out, const probe::Report& r, const Style& s) {
  out << "\nWhat corrald --enforcer auto enforces here\n";
  std::vector<std::vector<std::string>> rows{{"", "CATEGORY", "ENFORCER", "COVERAGE", "WHY"}};
  for (const auto& p : r.picks) {
    rows.push_back({s.mark(of_coverage(p.coverage)), p.category, p.enforcer, p.coverage, p.reason});
  }
  table(out, rows);
  if (!r.notes.empty()) out << "\nNotes\n";
  for (const auto& n : r.notes) out << "  - " << n << "\n";
}

void agent(std::ostream& out, const AgentView& a, bool full, const Style& s) {
  out << "\nAgent (" << a.socket << ")\n";
  if (!a.running) {
    out << "  " << s.mark(Mark::Absent) << " " << a.error << "\n";
    return;
  }
  const auto& st = a.status;
  table(out, {{"Version", st.version()},
              {"Enforcer", st.enforcer()},
              {"Default postures", "file=" + st.default_file_posture() +
                                       " network=" + st.default_network_posture() +
                                       " capabilities=" + st.default_capabilities_posture()},
              {"Policies", std::to_string(st.policies())}});
  std::vector<std::vector<std::string>> rows{
      {"NAMESPACE", "NAME", "POLICIES", "POSTURES (file/network/caps)", "SECTIONS", "ENFORCEMENT"}};
  int hidden = 0;
  for (const auto& w : a.workloads.workloads()) {
    if (!full && w.policies().empty()) {
      ++hidden;
      continue;
    }
    std::vector<std::string> pol(w.policies().begin(), w.policies().end());
    std::vector<std::string> sec(w.sections().begin(), w.sections().end());
    const std::string name = w.pod().empty() ? w.name() : w.pod() + "/" + w.name();
    rows.push_back({w.namespace_(), name, pol.empty() ? "-" : join(pol, ","),
                    w.file_posture() + "/" + w.network_posture() + "/" + w.capabilities_posture(),
                    sec.empty() ? "-" : join(sec, ","),
                    w.enforcement().empty() ? "-" : w.enforcement()});
  }
  out << "\n";
  if (rows.size() > 1)
    table(out, rows);
  else
    out << "  No workload has a policy\n";
  if (hidden > 0) {
    out << "  (" << hidden << " more workload" << (hidden == 1 ? "" : "s")
        << " without policies: corral probe --full lists them)\n";
  }
}

} // namespace

std::string to_text(const ProbeView& v, bool full, bool fancy) {
  const Style s{fancy};
  std::ostringstream out;
  out << "corral probe on " << v.host << (v.report.root ? " (as root)" : " (not root)") << "\n\n";
  kernel(out, v.report, s);
  mechanisms(out, v.report, full, s);
  runtimes(out, v.report, full, s);
  picks(out, v.report, s);
  agent(out, v.agent, full, s);
  return out.str();
}

} // namespace corral::cli

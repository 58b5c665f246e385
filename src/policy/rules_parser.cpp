#include "policy/rules_parser.h"

#include <algorithm>
#include <array>

#include "core/strings.h"
#include "policy/names.h"

namespace corral::policy {
namespace {

constexpr std::array<std::string_view, 3> kActions = {"Allow", "Audit", "Block"};
constexpr size_t kCompatPathBytes = 200; // KubeArmor's CRD limit; Corral has none

// What a rule may inherit from its section and spec.
struct Inherited {
  int severity = 1;
  Shared<std::vector<std::string>> tags;
  Shared<std::string> message;
  Action action = Action::Block;
};

std::vector<std::string_view> with_common(std::vector<std::string_view> fields) {
  for (const auto f : {"severity", "tags", "message", "action"}) fields.emplace_back(f);
  return fields;
}

// One list of a section (e.g. process.matchPaths) and the fields its entries may have.
struct ListSpec {
  Category category;
  std::string_view name;
  std::vector<std::string_view> fields;       // besides severity, tags, message, action
  std::vector<std::string_view> entry_fields; // all of them (built once, not per rule)
};

const std::vector<ListSpec>& list_specs() {
  static const std::vector<ListSpec> kSpecs = [] {
    std::vector<ListSpec> specs = {
        {Category::Process,
         "matchPaths",
         {"path", "execname", "ownerOnly", "fromSource", "pts", "allowedArgs"},
         {}},
        {Category::Process,
         "matchDirectories",
         {"dir", "recursive", "ownerOnly", "fromSource", "pts"},
         {}},
        {Category::Process, "matchPatterns", {"pattern", "ownerOnly"}, {}},
        {Category::File, "matchPaths", {"path", "readOnly", "ownerOnly", "fromSource", "pts"}, {}},
        {Category::File,
         "matchDirectories",
         {"dir", "recursive", "readOnly", "ownerOnly", "fromSource", "pts"},
         {}},
        {Category::File, "matchPatterns", {"pattern", "readOnly", "ownerOnly"}, {}},
        {Category::Network, "matchProtocols", {"protocol", "fromSource"}, {}},
        {Category::Capabilities, "matchCapabilities", {"capability", "fromSource"}, {}},
    };
    for (auto& spec : specs) spec.entry_fields = with_common(spec.fields);
    return specs;
  }();
  return kSpecs;
}

class RulesParser {
public:
  RulesParser(YamlReader& r, Policy& p) : r_(r), p_(p) {}

  void parse(const YamlNode& spec) {
    for (const auto unsupported : {"syscalls", "apparmor", "selinux"}) {
      if (spec[unsupported].defined()) {
        r_.error(spec[unsupported], std::string("spec.") + unsupported, "not supported by Corral",
                 "remove it; see POLICY.md for the supported sections");
      }
    }
    const Inherited base = inherited(spec, "spec", Inherited{});
    p_.rules.reserve(p_.rules.size() + entries(spec));
    bool any = false;
    for (const auto category :
         {Category::Process, Category::File, Category::Network, Category::Capabilities}) {
      const std::string name(section_name(category));
      const YamlNode& section = spec[name];
      if (!section.defined()) continue;
      any = true;
      parse_section(category, section, "spec." + name, base);
    }
    if (!any) {
      r_.error(spec, "spec", "the policy has no rules",
               "add a process, file, network or capabilities section");
    }
  }

private:
  // The entries of every rule list: a rule each, but for comma lists of names. Reserving
  // them spares a large policy the moves and the unused half of a vector grown by doubling.
  static size_t entries(const YamlNode& spec) {
    size_t n = 0;
    for (const auto& list : list_specs()) {
      const YamlNode l = spec[section_name(list.category)][list.name];
      if (l.is_sequence()) n += l.size();
    }
    return n;
  }

  Inherited inherited(const YamlNode& n, const std::string& field, const Inherited& parent) {
    Inherited out = parent;
    if (const YamlNode& s = n["severity"]; s.defined()) {
      if (auto v = r_.integer(s, field + ".severity")) {
        if (*v < 1 || *v > 10) {
          r_.error(s, field + ".severity", "severity " + std::to_string(*v) + " is out of range",
                   "an integer from 1 to 10");
        }
        out.severity = *v;
      }
    }
    if (const YamlNode& t = n["tags"]; t.defined()) {
      if (auto v = r_.strings(t, field + ".tags")) out.tags = std::move(*v);
    }
    if (const YamlNode& m = n["message"]; m.defined()) {
      if (auto v = r_.string(m, field + ".message")) out.message = std::move(*v);
    }
    if (const YamlNode& a = n["action"]; a.defined()) {
      if (auto v = r_.choice(a, field + ".action", kActions)) {
        out.action =
            static_cast<Action>(std::find(kActions.begin(), kActions.end(), *v) - kActions.begin());
      }
    }
    return out;
  }

  void parse_section(Category category, const YamlNode& section, const std::string& field,
                     const Inherited& base) {
    std::vector<std::string_view> fields;
    for (const auto& spec : list_specs()) {
      if (spec.category == category) fields.push_back(spec.name);
    }
    if (section.is_null()) {
      r_.error(section, field, "section has no rules", "add one of " + list_of(fields));
      return;
    }
    if (!r_.expect_map(section, field, with_common(fields))) return;
    const Inherited defaults = inherited(section, field, base);
    size_t rules = 0;
    for (const auto& spec : list_specs()) {
      const YamlNode& list = section[std::string(spec.name)];
      if (spec.category != category || !list.defined()) continue;
      const std::string list_field = field + "." + std::string(spec.name);
      if (!r_.expect_seq(list, list_field)) continue;
      for (size_t i = 0; i < list.size(); ++i) {
        parse_rule(spec, list[i], list_field + "[" + std::to_string(i) + "]", defaults);
        ++rules;
      }
    }
    if (rules == 0) {
      r_.error(section, field, "section has no rules", "add one of " + list_of(fields));
    }
  }

  void parse_rule(const ListSpec& spec, const YamlNode& n, const std::string& field,
                  const Inherited& defaults) {
    if (!r_.expect_map(n, field, spec.entry_fields)) return;
    Inherited own = inherited(n, field, defaults);
    Rule rule;
    rule.category = spec.category;
    rule.severity = own.severity;
    rule.tags = std::move(own.tags);
    rule.message = std::move(own.message);
    rule.action = own.action;
    const auto [line, column] = r_.position(n);
    rule.origin = Origin{r_.shared_file(), line, column, field};
    rule.recursive = flag(n, field, "recursive");
    rule.owner_only = flag(n, field, "ownerOnly");
    rule.read_only = flag(n, field, "readOnly");
    // KubeArmor: `pts: false` restricts the rule to processes on a terminal; true is the
    // default (no restriction).
    if (const YamlNode pts = n["pts"]; pts.defined())
      rule.pts_only = !r_.boolean(pts, field + ".pts").value_or(true);
    if (const YamlNode args = n["allowedArgs"]; args.defined()) {
      if (auto v = r_.strings(args, field + ".allowedArgs")) rule.allowed_args = std::move(*v);
      r_.warning(args, field + ".allowedArgs",
                 "not enforced yet: Corral's backends do not see an exec's arguments, so the "
                 "rule applies to every exec of the path whatever its arguments (" +
                     std::string(rule.action == Action::Allow ? "all are allowed"
                                                              : "all are judged by it") +
                     ")");
    }
    // For host policies fromSource is required on network and capability rules; an empty
    // list would silently mean "every program", so it does not count.
    const bool needs_source =
        p_.kind == Kind::HostPolicy &&
        (spec.category == Category::Network || spec.category == Category::Capabilities);
    const YamlNode& fs = n["fromSource"];
    if (fs.defined()) rule.from_source = from_source(fs, field + ".fromSource");
    if (needs_source && !fs.defined()) {
      r_.error(n, field + ".fromSource",
               "required on network and capability rules of a KubeArmorHostPolicy",
               "name the programs the rule applies to");
    } else if (needs_source && fs.is_sequence() && fs.size() == 0) {
      r_.error(fs, field + ".fromSource",
               "must not be empty on network and capability rules of a KubeArmorHostPolicy",
               "name the programs the rule applies to");
    }
    auto all = targets(spec, n, field);
    for (size_t i = 0; i < all.size(); ++i) {
      if (!r_.spend(copy_cost(rule, all[i].second))) return;
      // The last target takes the rule itself: one rule per entry is the common case.
      Rule r = i + 1 < all.size() ? rule : std::move(rule);
      r.target = all[i].first;
      r.value = std::move(all[i].second);
      p_.rules.push_back(std::move(r));
    }
  }

  // Every rule holds its own copy of what it inherits, so a long spec-level tag list or
  // message times many rules would cost memory quadratic in the input without this charge.
  static size_t copy_cost(const Rule& r, const std::string& value) {
    constexpr size_t kBytesPerUnit = 16;
    size_t bytes = value.size() + r.message.size();
    for (const auto& t : r.tags) bytes += t.size();
    for (const auto& f : r.from_source) bytes += f.size();
    return 1 + r.tags.size() + r.from_source.size() + bytes / kBytesPerUnit;
  }

  bool flag(const YamlNode& n, const std::string& field, const char* name) {
    const YamlNode& v = n[name];
    return v.defined() && r_.boolean(v, field + "." + name).value_or(false);
  }

  std::vector<std::string> from_source(const YamlNode& fs, const std::string& field) {
    std::vector<std::string> out;
    if (!r_.expect_seq(fs, field)) return out;
    static constexpr std::array<std::string_view, 1> kFields = {"path"};
    for (size_t i = 0; i < fs.size(); ++i) {
      const std::string f = field + "[" + std::to_string(i) + "]";
      if (!r_.expect_map(fs[i], f, kFields)) continue;
      if (!fs[i]["path"].defined()) {
        r_.error(fs[i], f + ".path", "missing required field",
                 "the acting program, e.g. /bin/bash");
      } else if (auto p = file_path(fs[i]["path"], f + ".path")) {
        out.push_back(std::move(*p));
      }
    }
    return out;
  }

  // The rule's target(s): one, or several for comma lists of protocols and capabilities.
  std::vector<std::pair<Target, std::string>> targets(const ListSpec& spec, const YamlNode& n,
                                                      const std::string& field) {
    std::vector<std::pair<Target, std::string>> out;
    const auto present = [&](const char* name) { return n[name].defined(); };
    const std::string list(spec.name);
    if (list == "matchPaths") {
      const bool has_exec = spec.category == Category::Process && present("execname");
      if (present("path") == has_exec) {
        r_.error(n, field, has_exec ? "path and execname are exclusive" : "missing required field",
                 spec.category == Category::Process ? "give path or execname" : "give path");
      } else if (has_exec) {
        if (auto v = execname(n["execname"], field + ".execname"))
          out.emplace_back(Target::ExecName, *v);
      } else if (auto v = file_path(n["path"], field + ".path")) {
        out.emplace_back(Target::Path, *v);
      }
    } else if (list == "matchDirectories") {
      if (!present("dir")) {
        r_.error(n, field + ".dir", "missing required field", "a directory ending in '/'");
      } else if (auto v = dir(n["dir"], field + ".dir")) {
        out.emplace_back(Target::Dir, *v);
      }
    } else if (list == "matchPatterns") {
      if (!present("pattern")) {
        r_.error(n, field + ".pattern", "missing required field", "a glob, e.g. /tmp/*.sh");
      } else if (auto v = pattern(n["pattern"], field + ".pattern")) {
        out.emplace_back(Target::Pattern, *v);
      }
    } else {
      const bool proto = spec.category == Category::Network;
      const char* key = proto ? "protocol" : "capability";
      if (!present(key)) {
        r_.error(n, field + "." + key, "missing required field");
      } else {
        for (auto& v : names(n[key], field + "." + key, proto)) {
          out.emplace_back(proto ? Target::Protocol : Target::Capability, std::move(v));
        }
      }
    }
    return out;
  }

  std::optional<std::string> absolute(const YamlNode& n, const std::string& field) {
    auto v = r_.string(n, field);
    if (!v) return std::nullopt;
    if (v->empty() || (*v)[0] != '/') {
      r_.error(n, field, quote(*v) + " is not an absolute path", "start it with '/'");
      return std::nullopt;
    }
    if (v->size() > kCompatPathBytes) {
      r_.warning(n, field, "longer than 200 bytes; KubeArmor would reject this policy");
    }
    return v;
  }

  std::optional<std::string> file_path(const YamlNode& n, const std::string& field) {
    auto v = absolute(n, field);
    if (v && v->back() == '/') {
      r_.error(n, field, quote(*v) + " ends in '/', which names a directory",
               "use matchDirectories with dir: " + quote(*v));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> dir(const YamlNode& n, const std::string& field) {
    auto v = absolute(n, field);
    if (v && v->back() != '/') {
      r_.error(n, field, "a directory must end in '/'", "dir: " + quote(*v + "/"));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> pattern(const YamlNode& n, const std::string& field) {
    auto v = absolute(n, field);
    if (!v || balanced_classes(*v)) return v;
    r_.error(n, field, "unbalanced '[' ']' in pattern " + quote(*v), "e.g. /tmp/[a-z]*.sh");
    return std::nullopt;
  }

  // Whether every '[' opens a class that a ']' closes, read as glob_match reads classes:
  // a ']' right after '[', '[!' or '[^' is a member, not the end. glob_match relies on
  // this; a stray ']' is refused as a likely typo.
  static bool balanced_classes(std::string_view p) {
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i] == ']') return false;
      if (p[i] != '[') continue;
      size_t j = i + 1;
      if (j < p.size() && (p[j] == '!' || p[j] == '^')) ++j;
      if (j < p.size() && p[j] == ']') ++j;
      i = p.find(']', j);
      if (i == std::string_view::npos) return false;
    }
    return true;
  }

  std::optional<std::string> execname(const YamlNode& n, const std::string& field) {
    auto v = r_.string(n, field);
    if (v && (v->empty() || v->find('/') != std::string::npos)) {
      r_.error(n, field, "an execname is a file name without '/'", "e.g. execname: bash");
      return std::nullopt;
    }
    return v;
  }

  std::vector<std::string> names(const YamlNode& n, const std::string& field, bool protocol) {
    std::vector<std::string> out;
    const auto v = r_.string(n, field);
    if (!v) return out;
    const std::string what = protocol ? "protocol" : "capability";
    for (const auto& item : split(*v, ',')) {
      if (trim(item).empty()) {
        r_.error(n, field, "empty " + what + " name in " + quote(*v),
                 "separate names with single commas, e.g. tcp,udp");
        continue;
      }
      auto norm = protocol ? normalize_protocol(item) : normalize_capability(item);
      if (norm) {
        out.push_back(std::move(*norm));
        continue;
      }
      const auto valid = protocol ? protocol_names() : capability_names();
      const std::string near = nearest(trim(item), valid);
      r_.error(n, field, "unknown " + what + " " + quote(trim(item)),
               near.empty() ? "valid: " + list_of(valid) : "did you mean '" + near + "'?");
    }
    return out;
  }

  YamlReader& r_;
  Policy& p_;
};

} // namespace

void parse_rules(YamlReader& r, const YamlNode& spec, Policy& p) {
  RulesParser(r, p).parse(spec);
}

} // namespace corral::policy

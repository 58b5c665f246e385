#include "policy/selector.h"

#include <algorithm>

#include "core/strings.h"

namespace corral::policy {
namespace {

bool has_label(const Labels& labels, std::string_view key_value) {
  const size_t eq = key_value.find('=');
  if (eq == std::string_view::npos) return false;
  const auto it = labels.find(std::string(key_value.substr(0, eq)));
  return it != labels.end() && it->second == key_value.substr(eq + 1);
}

bool matches(const Expression& e, const Workload& w) {
  const bool any = std::any_of(e.values.begin(), e.values.end(), [&](const std::string& v) {
    return e.key == "namespace" ? v == w.namespace_name : has_label(w.labels, v);
  });
  return any == e.in;
}

bool labels_match(const Labels& wanted, const Labels& have) {
  return std::all_of(wanted.begin(), wanted.end(), [&](const auto& kv) {
    const auto it = have.find(kv.first);
    return it != have.end() && it->second == kv.second;
  });
}

bool node_matches(const Labels& wanted, const Labels& node) {
  return std::all_of(wanted.begin(), wanted.end(), [&](const auto& kv) {
    // KubeArmor: `kubearmor.io/hostname: "*"` selects every node.
    if (kv.first == "kubearmor.io/hostname" && kv.second == "*") return true;
    const auto it = node.find(kv.first);
    return it != node.end() && it->second == kv.second;
  });
}

} // namespace

bool selects(const Policy& p, const Workload& w) {
  if (p.kind == Kind::HostPolicy)
    return w.host && node_matches(p.selector.match_labels, w.node_labels);
  if (w.host) return false;
  if (p.kind == Kind::Policy && p.namespace_name != w.namespace_name) return false;
  return labels_match(p.selector.match_labels, w.labels) &&
         std::all_of(p.selector.match_expressions.begin(), p.selector.match_expressions.end(),
                     [&](const Expression& e) { return matches(e, w); });
}

std::string_view to_string(Posture p) {
  return p == Posture::Block ? "block" : "audit";
}

Posture posture_for(const Postures& p, Category c) {
  if (c == Category::Network) return p.network;
  return c == Category::Capabilities ? p.capabilities : p.file;
}

bool locked_by_any(const std::vector<std::shared_ptr<const Policy>>& policies, const Workload& w) {
  return std::any_of(policies.begin(), policies.end(),
                     [&w](const auto& p) { return p->locked && selects(*p, w); });
}

Settings resolve_settings(const Postures& global, const Labels& namespace_annotations,
                          const Labels& pod_annotations, std::vector<std::string>* warnings) {
  Settings s{global, false};
  const std::pair<const char*, Posture*> keys[] = {
      {"kubearmor-file-posture", &s.postures.file},
      {"kubearmor-network-posture", &s.postures.network},
      {"kubearmor-capabilities-posture", &s.postures.capabilities}};
  for (const auto& [key, posture] : keys) {
    const auto it = namespace_annotations.find(key);
    if (it == namespace_annotations.end()) continue;
    const std::string v = to_lower(it->second);
    if (v == "block" || v == "audit") {
      *posture = v == "block" ? Posture::Block : Posture::Audit;
    } else if (warnings != nullptr) {
      warnings->push_back(std::string("ignored invalid annotation ") + key + "=" + it->second +
                          " (valid: audit, block)");
    }
  }
  for (const Labels* annotations : {&namespace_annotations, &pod_annotations}) {
    const auto it = annotations->find("kubearmor-policy");
    if (it != annotations->end() && to_lower(it->second) == "audited") s.dry_run = true;
    const auto image = annotations->find(kImageOnlyAnnotation);
    if (image == annotations->end()) continue;
    const std::string v = to_lower(image->second);
    if (v == "true" || v == "false") {
      s.image_only = v == "true";
    } else if (warnings != nullptr) {
      warnings->push_back(std::string("ignored invalid annotation ") + kImageOnlyAnnotation + "=" +
                          image->second + " (valid: true, false)");
    }
  }
  return s;
}

} // namespace corral::policy

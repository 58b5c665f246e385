// Which policies select a workload, and the settings (postures, dry run) that apply to it.
#pragma once

#include <string>
#include <vector>

#include "policy/model.h"

namespace corral::policy {

// What the policy engine knows of a workload (a container, a pod, or the host).
struct Workload {
  std::string name;
  std::string namespace_name = "default";
  Labels labels;
  Labels annotations; // the pod's annotations (kubearmor-policy=audited)
  bool host = false;  // the node itself: only KubeArmorHostPolicy selects it
  Labels node_labels; // for host policies
};

bool selects(const Policy& p, const Workload& w);
// Whether a locked policy (corral.dev/lock) of `policies` selects `w`. Its pod's annotations
// then weaken nothing — no dry run, no exec-image-only=false — so callers hand them to
// resolve_settings() only when this is false (docs/policy.md "Locked policies").
bool locked_by_any(const std::vector<std::shared_ptr<const Policy>>& policies, const Workload& w);

enum class Posture { Audit, Block };
std::string_view to_string(Posture p);

struct Postures {
  Posture file = Posture::Audit; // also governs process rules
  Posture network = Posture::Audit;
  Posture capabilities = Posture::Audit;
  bool operator==(const Postures&) const = default;
};

// The posture group of a category: process and file share the file posture.
Posture posture_for(const Postures& p, Category c);

struct Settings {
  Postures postures;
  bool dry_run = false; // kubearmor-policy=audited: every deny becomes "Audit (Block)"
  // Corral's image-only rule (README "Threat model"): an allowed path is honoured only for
  // the file the image shipped there, not one created, changed or moved into place after
  // the workload started. Off with the namespace or pod annotation
  // corral.io/exec-image-only=false, for workloads that update their own binaries.
  bool image_only = true;
  bool operator==(const Settings&) const = default;
};

constexpr const char* kImageOnlyAnnotation = "corral.io/exec-image-only";

// The global defaults overridden by namespace annotations (kubearmor-*-posture) and by
// kubearmor-policy=audited on the namespace or the pod. Invalid values are ignored and
// described in `warnings`.
Settings resolve_settings(const Postures& global, const Labels& namespace_annotations,
                          const Labels& pod_annotations, std::vector<std::string>* warnings);

} // namespace corral::policy

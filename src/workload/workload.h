// The identity of a workload (a container, a pod's container, or the host), as DESIGN.md
// "Workload identity" lists it, and how the policy engine sees it.
#pragma once

#include <cstdint>
#include <string>

#include "events/alert.h"
#include "policy/selector.h"

namespace corral::workload {

struct Workload {
  std::string id;             // container id (full)
  std::string name;           // container name: io.kubernetes.container.name, else the id
  std::string namespace_name; // io.kubernetes.pod.namespace, else the containerd namespace
  std::string pod;            // io.kubernetes.pod.name, or ""
  policy::Labels labels;      // the container's labels
  policy::Labels annotations; // pod annotations when known
  std::string image;
  std::string runtime = "containerd";
  std::string runtime_namespace; // containerd namespace
  int init_pid = 0;              // host pid of the task's init process; 0 = not running
  // Reported as just created (containerd's /tasks/create): its init was the runtime's,
  // waiting to run the workload's program, when the runtime said so. An enforcer that comes
  // later than the start judges the program that ran meanwhile.
  bool fresh = false;
  std::string root_path; // /proc/<init_pid>/root
  uint64_t cgroup_id = 0;
  uint64_t pidns_inode = 0;
  uint64_t mntns_inode = 0;

  // Its labels as an event's Labels field: "k=v,k=v".
  [[nodiscard]] std::string labels_text() const {
    std::string out;
    for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
    return out;
  }

  // An event's fields that name this workload; `labels_field` is labels_text(), which callers
  // stamping many events compute once.
  void identify(events::Alert& a, std::string labels_field) const {
    a.namespace_name = namespace_name;
    a.pod_name = pod;
    a.labels = std::move(labels_field);
    a.container_id = id;
    a.container_name = name;
    a.container_image = image;
  }

  [[nodiscard]] policy::Workload policy_view() const {
    policy::Workload w;
    w.name = name;
    w.namespace_name = namespace_name;
    w.labels = labels;
    w.annotations = annotations;
    return w;
  }
};

} // namespace corral::workload

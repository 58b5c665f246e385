#include "workload/containerd/containerd_mapping.h"

namespace corral::workload {
namespace {

std::string label_or(const policy::Labels& labels, const char* key, const std::string& fallback) {
  const auto it = labels.find(key);
  return it != labels.end() && !it->second.empty() ? it->second : fallback;
}

} // namespace

Workload to_workload(const std::string& ns, const ContainerInfo& c, int pid) {
  Workload w;
  w.id = c.id;
  w.name = label_or(c.labels, kContainerNameLabel, c.id);
  w.namespace_name = label_or(c.labels, kPodNamespaceLabel, ns);
  w.pod = label_or(c.labels, kPodNameLabel, "");
  w.labels = c.labels;
  w.image = c.image;
  w.runtime = "containerd";
  w.runtime_namespace = ns;
  w.init_pid = pid;
  return w;
}

bool same_workload(const Workload& a, const Workload& b) {
  return a.id == b.id && a.init_pid == b.init_pid && a.name == b.name &&
         a.namespace_name == b.namespace_name && a.pod == b.pod && a.labels == b.labels &&
         a.image == b.image && a.runtime_namespace == b.runtime_namespace &&
         a.mntns_inode == b.mntns_inode && a.pidns_inode == b.pidns_inode &&
         a.cgroup_id == b.cgroup_id;
}

} // namespace corral::workload

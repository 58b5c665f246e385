// How a containerd container and its task become a Workload (DESIGN.md "Workload sources").
// Pure functions, no gRPC: the source fills ContainerInfo from containerd's API.
#pragma once

#include <string>

#include "policy/model.h"
#include "workload/workload.h"

namespace corral::workload {

// The labels Kubernetes (the CRI plugin) puts on the containers of a pod.
inline constexpr const char* kPodNamespaceLabel = "io.kubernetes.pod.namespace";
inline constexpr const char* kPodNameLabel = "io.kubernetes.pod.name";
inline constexpr const char* kContainerNameLabel = "io.kubernetes.container.name";

// What containerd's Containers service tells about one container.
struct ContainerInfo {
  std::string id;
  std::string image;
  policy::Labels labels;
};

// The workload of container c in containerd namespace ns whose task's init process is pid.
// Kubernetes pods (namespace k8s.io) take their namespace, pod and container name from the
// CRI labels; plain containers use their containerd namespace and their id. The /proc
// fields are left for fill_process_identity().
Workload to_workload(const std::string& ns, const ContainerInfo& c, int pid);

// True when a and b would look the same to the policy engine and the enforcers: a resync
// reports only workloads that are new or changed.
bool same_workload(const Workload& a, const Workload& b);

} // namespace corral::workload

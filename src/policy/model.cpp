#include "policy/model.h"

namespace corral::policy {

std::string_view to_string(Kind k) {
  switch (k) {
  case Kind::Policy: return "KubeArmorPolicy";
  case Kind::ClusterPolicy: return "KubeArmorClusterPolicy";
  case Kind::HostPolicy: return "KubeArmorHostPolicy";
  }
  return "?";
}

std::string_view to_string(Action a) {
  switch (a) {
  case Action::Allow: return "Allow";
  case Action::Audit: return "Audit";
  case Action::Block: return "Block";
  }
  return "?";
}

std::string_view to_string(Category c) {
  switch (c) {
  case Category::Process: return "Process";
  case Category::File: return "File";
  case Category::Network: return "Network";
  case Category::Capabilities: return "Capabilities";
  }
  return "?";
}

std::string_view section_name(Category c) {
  switch (c) {
  case Category::Process: return "process";
  case Category::File: return "file";
  case Category::Network: return "network";
  case Category::Capabilities: return "capabilities";
  }
  return "?";
}

std::string Policy::key() const {
  std::string out(to_string(kind));
  out += '/';
  if (kind == Kind::Policy) out += namespace_name + '/';
  return out + name;
}

} // namespace corral::policy

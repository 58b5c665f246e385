// The agent's standalone state (DESIGN.md "Standalone state"): applied policies and
// namespace annotations, one file each under the state dir, each written atomically
// (temporary file, fsync, rename, fsync of the directory), reloaded at start.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "policy/model.h"

namespace corral::agent {

// First line of a stored policy file: "# corral-policy: <Policy::key()>".
constexpr std::string_view kKeyPrefix = "# corral-policy: ";

struct StoredState {
  std::vector<std::pair<std::string, std::string>> policies; // (file, YAML text)
  std::map<std::string, policy::Labels> namespaces;          // namespace -> annotations
};

class StateStore {
public:
  static Result<std::unique_ptr<StateStore>> make(const std::string& dir);

  Result<StoredState> load() const;
  Result<void> put_policy(const policy::Policy& p);
  Result<void> delete_policy(const policy::Policy& p);
  // Empty annotations remove the namespace's file.
  Result<void> put_namespace(const std::string& ns, const policy::Labels& annotations);

  [[nodiscard]] const std::string& dir() const { return dir_; }
  // Where each object is stored, relative to the dir, and the exact text stored there (what
  // the change log's digests are taken of, agent/history.h).
  [[nodiscard]] static std::string policy_file(const policy::Policy& p);
  [[nodiscard]] static std::string policy_text(const policy::Policy& p);
  [[nodiscard]] static std::string namespace_file(const std::string& ns);
  [[nodiscard]] static std::string namespace_text(const std::string& ns,
                                                  const policy::Labels& annotations);

private:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  [[nodiscard]] Result<void> remove(const std::string& file) const;
  static Result<void> write_atomically(const std::string& path, const std::string& text);

  std::string dir_;
};

} // namespace corral::agent

// The fixture of the fanotify root tests: one sandbox for the whole binary (it must be
// forked while the process has one thread), a fresh enforcer per test, alerts collected.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "enforce/fanotify/fanotify_enforcer.h"
#include "policy/selector.h"
#include "sandbox.h"

namespace corral::testing {

// Starts the enforcer with the exec backstop, or skips where this kernel cannot run it.
#define CORRAL_START_BACKSTOP()                                                                    \
  start([](auto& o) { o.exec_backstop = true; });                                                  \
  if (!enforcer_->exec_backstop()) GTEST_SKIP() << "the exec backstop cannot load here"

// The programs and files every test's sandbox holds.
SandboxOptions default_sandbox();

class FanotifyTest : public ::testing::Test {
public:
  static Sandbox& sandbox() { return *sandbox_; }
  static const workload::Workload& workload();

protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // Starts the enforcer (alerts go to alerts()); `tweak` may change the options.
  void start(const std::function<void(enforce::FanotifyEnforcer::Options&)>& tweak = nullptr);
  // Compiles `yaml` for the sandbox (paths resolved in its root) and enforces it.
  void enforce(const std::string& yaml, policy::Posture file_posture = policy::Posture::Audit);
  std::shared_ptr<const policy::RuleSet> compile(const std::string& yaml,
                                                 policy::Posture file_posture) const;

  RunResult run(const std::vector<std::string>& argv, uint32_t uid = 0);
  RunResult loop(const std::vector<std::string>& argv, int n);
  enforce::Counters counters() const { return enforcer_->counters(); }

  // The first alert whose Resource is `resource`, waiting up to 2 s (alerts are sent
  // after the kernel is answered, so they may trail the command's exit).
  std::optional<events::Alert> alert_for(const std::string& resource);
  std::vector<events::Alert> alerts();
  std::vector<std::string> logs(); // the enforcer's operational messages
  // Polls `condition` for up to 2 s: for what the event thread does after answering.
  static bool eventually(const std::function<bool()>& condition);

  std::unique_ptr<enforce::FanotifyEnforcer> enforcer_;
  bool image_only_ = true; // policy::Settings::image_only for compile()

private:
  static std::unique_ptr<Sandbox> sandbox_;
  static std::string setup_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<events::Alert> alerts_;
  std::vector<std::string> logs_;
};

// The attacker's tools for the containment tests: files of the running sandbox reached from
// the host through /proc/<init>/root, as the attacker's own writes would be.
std::string host_path(const std::string& inside);
std::string read_host(const std::string& path);
enum class Plant {
  InPlace, // the file's contents replaced (the same inode when it exists)
  NewFile  // a new inode (an existing file is unlinked first)
};
void plant(const std::string& inside, const std::string& content, mode_t mode = 0755,
           Plant how = Plant::InPlace);
bool killed(const RunResult& r); // SIGKILLed (by the exec backstop)
// An allow-list's programs: the shell, true, and the attacker's static helper.
inline const std::vector<std::string> kShell = {"/bin/bash", "/bin/true", CORRAL_ATTACKER};

} // namespace corral::testing

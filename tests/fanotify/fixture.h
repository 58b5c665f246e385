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

// The programs and files every test's sandbox holds.
SandboxOptions default_sandbox();

class FanotifyTest : public ::testing::Test {
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

  static Sandbox& sandbox() { return *sandbox_; }
  static const workload::Workload& workload();

  std::unique_ptr<enforce::FanotifyEnforcer> enforcer_;

private:
  static std::unique_ptr<Sandbox> sandbox_;
  static std::string setup_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<events::Alert> alerts_;
  std::vector<std::string> logs_;
};

} // namespace corral::testing

#include "fixture.h"

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enforce/fanotify/root_fs.h"
#include "policy/parser.h"

namespace corral::testing {

std::unique_ptr<Sandbox> FanotifyTest::sandbox_;
std::string FanotifyTest::setup_error_;

SandboxOptions default_sandbox() {
  SandboxOptions o;
  o.programs = {"/usr/bin/true", "/usr/bin/bash",   "/bin/sh",      "/usr/sbin/chroot",
                "/usr/bin/cat",  "/usr/bin/sleep",  "/usr/bin/env", "/usr/bin/echo",
                "/usr/bin/yes",  CORRAL_MEMFD_EXEC, CORRAL_ATTACKER};
  o.files = {{"/usr/local/bin/hello.sh", "#!/bin/sh\necho hello\n", 0755},
             {"/data/ro.txt", "read me\n", 0666},
             {"/data/secret.txt", "secret\n", 0644},
             {"/data/owned.txt", "root's\n", 0644},
             {"/opt/app/tool", "#!/bin/sh\necho tool\n", 0755},
             {"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0644},
             {"/etc/group", "root:x:0:\n", 0644},
             {"/usr/lib/x86_64-linux-gnu/secret.conf", "lib secret\n", 0644}};
  return o;
}

void FanotifyTest::SetUpTestSuite() {
  auto s = Sandbox::make(default_sandbox());
  if (!s) {
    setup_error_ = s.error().to_string();
    return;
  }
  sandbox_ = std::move(*s);
}

void FanotifyTest::TearDownTestSuite() {
  sandbox_.reset();
}

void FanotifyTest::SetUp() {
  ASSERT_TRUE(sandbox_) << "cannot create the sandbox: " << setup_error_;
}

void FanotifyTest::TearDown() {
  // Closing the groups releases anything still pending (fanotify_release allows it).
  enforcer_.reset();
}

const workload::Workload& FanotifyTest::workload() {
  static const workload::Workload w = sandbox_->workload("sandbox-0123456789abcdef");
  return w;
}

void FanotifyTest::start(const std::function<void(enforce::FanotifyEnforcer::Options&)>& tweak) {
  enforce::FanotifyEnforcer::Options o;
  o.sink = [this](events::Alert&& a) {
    std::lock_guard lock(mu_);
    alerts_.push_back(std::move(a));
    cv_.notify_all();
  };
  o.log = [this](const std::string& m) {
    std::cerr << "enforcer: " << m << "\n";
    std::lock_guard lock(mu_);
    logs_.push_back(m);
  };
  if (tweak) tweak(o);
  auto e = enforce::FanotifyEnforcer::make(std::move(o));
  ASSERT_TRUE(e) << e.error().to_string();
  enforcer_ = std::move(*e);
}

std::shared_ptr<const policy::RuleSet> FanotifyTest::compile(const std::string& yaml,
                                                             policy::Posture file_posture) const {
  const auto parsed = policy::parse_policies(yaml, "test.yaml");
  for (const auto& d : parsed.diagnostics) ADD_FAILURE() << d.to_string();
  policy::Settings settings;
  settings.postures.file = file_posture;
  settings.image_only = image_only_;
  return policy::compile(parsed.policies, workload().policy_view(), settings,
                         enforce::fanotify::root_resolver(sandbox_->init_pid()));
}

void FanotifyTest::enforce(const std::string& yaml, policy::Posture file_posture) {
  if (!enforcer_) start();
  ASSERT_TRUE(enforcer_);
  const auto r = enforcer_->enforce(workload(), compile(yaml, file_posture));
  ASSERT_TRUE(r) << r.error().to_string();
}

RunResult FanotifyTest::run(const std::vector<std::string>& argv, uint32_t uid) {
  auto r = sandbox_->run(argv, uid);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : RunResult{};
}

RunResult FanotifyTest::loop(const std::vector<std::string>& argv, int n) {
  auto r = sandbox_->loop(argv, n);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : RunResult{};
}

std::optional<events::Alert> FanotifyTest::alert_for(const std::string& resource) {
  std::unique_lock lock(mu_);
  std::optional<events::Alert> found;
  cv_.wait_for(lock, std::chrono::seconds(2), [&] {
    for (const auto& a : alerts_) {
      if (a.resource == resource) {
        found = a;
        return true;
      }
    }
    return false;
  });
  return found;
}

bool FanotifyTest::eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::vector<std::string> FanotifyTest::logs() {
  std::lock_guard lock(mu_);
  return logs_;
}

std::vector<events::Alert> FanotifyTest::alerts() {
  std::lock_guard lock(mu_);
  return alerts_;
}

std::string host_path(const std::string& inside) {
  return "/proc/" + std::to_string(FanotifyTest::sandbox().init_pid()) + "/root" + inside;
}

std::string read_host(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void plant(const std::string& inside, const std::string& content, mode_t mode, Plant how) {
  if (how == Plant::NewFile) ::unlink(host_path(inside).c_str());
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (how == Plant::NewFile ? O_EXCL : O_TRUNC);
  const int fd = ::open(host_path(inside).c_str(), flags, mode);
  ASSERT_GE(fd, 0) << inside << ": " << strerror(errno);
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::fchmod(fd, mode);
  ::close(fd);
}

bool killed(const RunResult& r) {
  return r.signal == SIGKILL;
}

} // namespace corral::testing

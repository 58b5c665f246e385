// The exec backstop with the fanotify backend: ld.so cached under an allow-list, a direct
// exec of it killed (Block) or reported (Audit) in this workload only, entries following
// the rules.
#include <csignal>
#include <cstdlib>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

namespace corral::testing {
namespace {

constexpr const char* kLdSo = "/lib64/ld-linux-x86-64.so.2";
constexpr const char* kLdSoCanonical = "/usr/lib64/ld-linux-x86-64.so.2";

// The shared sandbox lives as long as the FanotifyTest suite, so these are FanotifyTests.

// An allowed dynamic exec, until both it and its interpreter are cached.
#define CORRAL_WARM_UP()                                                                           \
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);                                                      \
  ASSERT_TRUE(eventually([&] { return counters().cached >= 2; })) << counters().cached

TEST_F(FanotifyTest, BackstopUnderAnAllowListTheInterpreterIsCachedAndADirectExecKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  CORRAL_WARM_UP();
  const auto before = counters();
  const auto r = loop({"/bin/true"}, 1000);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.exec_errno, 0);
  EXPECT_EQ(counters().events, before.events); // no round trip at all any more
  // ld.so run directly passes fanotify (cached) and dies before its first instruction.
  const auto direct = run({kLdSo, "/usr/sbin/chroot", "--version"});
  EXPECT_EQ(direct.exec_errno, 0);
  EXPECT_EQ(direct.signal, SIGKILL);
  EXPECT_EQ(direct.output, "");
  EXPECT_TRUE(eventually([&] { return counters().backstop_kills == before.backstop_kills + 1; }));
  const auto a = alert_for(kLdSoCanonical);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "DefaultPosture");
  EXPECT_EQ(a->action, "Block");
  EXPECT_EQ(a->result, "Permission denied");
  EXPECT_EQ(a->operation, "Process");
  EXPECT_EQ(a->enforcer, "fanotify");
  EXPECT_NE(a->data.find("bpf=sched_process_exec signal=SIGKILL"), std::string::npos) << a->data;
  EXPECT_NE(a->data.find("/usr/sbin/chroot --version"), std::string::npos) << a->data;
  EXPECT_GT(a->host_pid, 0);
  // Everything else keeps its verdicts.
  EXPECT_EQ(run({"/usr/sbin/chroot", "--version"}).exec_errno, EPERM);
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0);
}

TEST_F(FanotifyTest, BackstopOnlyThisWorkloadsMountNamespaceIsGuarded) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  CORRAL_WARM_UP();
  // The host (this test's own mount namespace) runs ld.so directly as before.
  const std::string cmd = std::string(kLdSo) + " /bin/true";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(FanotifyTest, BackstopAuditPostureReportsADirectExecAndLetsItRun) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Audit);
  CORRAL_WARM_UP();
  const auto direct = run({kLdSo, "/usr/bin/true"});
  EXPECT_EQ(direct.exit_code, 0);
  EXPECT_EQ(direct.signal, 0);
  const auto a = alert_for(kLdSoCanonical);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, "Passed");
  EXPECT_EQ(a->action, "Audit");
  EXPECT_EQ(a->data.find("SIGKILL"), std::string::npos) << a->data;
  EXPECT_TRUE(eventually([&] { return counters().backstop_audits >= 1; }));
}

TEST_F(FanotifyTest, BackstopNewRulesAllowingTheInterpreterLiftTheEntry) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  CORRAL_WARM_UP();
  enforce(
      process_policy("allow-true-and-ldso", std::vector<std::string>{"/bin/true", kLdSo}, "Allow"),
      policy::Posture::Block);
  const auto direct = run({kLdSo, "/usr/bin/true"});
  EXPECT_EQ(direct.exit_code, 0);
  EXPECT_EQ(direct.signal, 0);
}

TEST_F(FanotifyTest, BackstopReleasingTheWorkloadLiftsTheEntry) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  CORRAL_WARM_UP();
  enforcer_->release(workload().id);
  const auto direct = run({kLdSo, "/usr/bin/true"});
  EXPECT_EQ(direct.exit_code, 0);
  EXPECT_EQ(direct.signal, 0);
}

TEST_F(FanotifyTest, BackstopScriptInterpretersAreNotGuardedAndStayDeniedWithEperm) {
  // "#!" interpreters become the exec's image, so the backstop cannot tell their legitimate
  // use from a direct exec: they keep asking, and a direct exec is denied by fanotify.
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-script",
                         std::vector<std::string>{"/bin/true", "/usr/local/bin/hello.sh"}, "Allow"),
          policy::Posture::Block);
  CORRAL_WARM_UP();
  for (int i = 0; i < 3; ++i) {
    const auto script = run({"/usr/local/bin/hello.sh"});
    EXPECT_EQ(script.exit_code, 0) << script.output;
    EXPECT_EQ(script.output, "hello\n");
  }
  EXPECT_EQ(run({"/bin/sh", "-c", "true"}).exec_errno, EPERM);
}

TEST_F(FanotifyTest, BackstopKillsAProgramRunFromMemoryUnderAnAllowList) {
  // memfd_create + execveat: the file is on the kernel's internal shmem mount, which no
  // fanotify mark of the workload covers.
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-helper", std::vector<std::string>{"/bin/true", CORRAL_MEMFD_EXEC},
                         "Allow"),
          policy::Posture::Block);
  EXPECT_EQ(run({CORRAL_MEMFD_EXEC, "hello"}).output, "hello from memory\n");
  const auto r = run({CORRAL_MEMFD_EXEC});
  EXPECT_EQ(r.signal, SIGKILL) << r.output;
  EXPECT_EQ(r.output, "");
  const auto a = alert_for("/memfd:payload (deleted)");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->policy_name, "DefaultPosture");
  EXPECT_EQ(a->action, "Block");
  EXPECT_EQ(a->result, "Permission denied");
  EXPECT_NE(a->data.find("signal=SIGKILL"), std::string::npos) << a->data;
}

TEST_F(FanotifyTest, BackstopLetsAProgramRunFromMemoryWhereThePolicyDoes) {
  // A block-list: execs that match no rule are allowed, from memory too; one the
  // permission path never saw is reported (nothing can tell whether it was a blocked file).
  CORRAL_START_BACKSTOP();
  enforce(process_policy("block-chroot", "/usr/sbin/chroot", "Block"));
  const auto r = run({CORRAL_MEMFD_EXEC});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "hello from memory\n");
  EXPECT_TRUE(eventually([&] { return counters().backstop_audits == 1; }));
  // Posture audit under an allow-list: it runs and is reported.
  enforce(process_policy("allow-helper", std::vector<std::string>{"/bin/true", CORRAL_MEMFD_EXEC},
                         "Allow"),
          policy::Posture::Audit);
  EXPECT_EQ(run({CORRAL_MEMFD_EXEC}).output, "hello from memory\n");
  const auto a = alert_for("/memfd:payload (deleted)");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, "Passed");
  EXPECT_EQ(a->action, "Audit");
  // Released: nothing is judged.
  enforcer_->release(workload().id);
  EXPECT_EQ(run({CORRAL_MEMFD_EXEC}).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return counters().backstop_audits == 2; }));
}

TEST_F(FanotifyTest, BackstopAScriptInMemoryGetsItsInterpreterJudgedAlone) {
  // The script in the memfd raises no event, so nothing names /bin/sh as its interpreter:
  // /bin/sh is judged on its own path (not allowed), although an allowed script uses it.
  CORRAL_START_BACKSTOP();
  enforce(process_policy(
              "allow-script",
              std::vector<std::string>{"/bin/true", "/usr/local/bin/hello.sh", CORRAL_MEMFD_EXEC},
              "Allow"),
          policy::Posture::Block);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run({"/usr/local/bin/hello.sh"}).output, "hello\n");
  const auto r = run({CORRAL_MEMFD_EXEC, "script"});
  EXPECT_EQ(r.exit_code, 127) << r.output;
  EXPECT_EQ(r.output, "execveat: Operation not permitted\n");
}

TEST_F(FanotifyTest, BackstopGuardsTheWorkloadsMountsFromAnyNamespace) {
  // The ignore mark silences ld.so's exec on the workload's mounts whoever execs it: a
  // process of another mount namespace reaching them (here through /proc/<pid>/root) must
  // meet the backstop too.
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  CORRAL_WARM_UP();
  const std::string ldso =
      "/proc/" + std::to_string(sandbox().init_pid()) + "/root/usr/lib64/ld-linux-x86-64.so.2";
  const pid_t child = ::fork();
  if (child == 0) {
    char* const args[] = {const_cast<char*>(ldso.c_str()), const_cast<char*>("--version"), nullptr};
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execv(args[0], args);
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST_F(FanotifyTest, BackstopARestartedEnforcerTakesOverTheKeptBackstop) {
  int kept = -1;
  enforcer_.reset();
  start([&](auto& o) {
    o.exec_backstop = true;
    o.on_group = [&](const std::string& id, int fd, const std::string&) {
      if (id == enforce::FanotifyEnforcer::kBackstopId) kept = ::dup(fd);
    };
  });
  if (!enforcer_->exec_backstop()) GTEST_SKIP() << "the exec backstop cannot load here";
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  CORRAL_WARM_UP();
  ASSERT_EQ(run({kLdSo, "/usr/bin/true"}).signal, SIGKILL);
  ASSERT_GE(kept, 0);
  const auto kills = counters().backstop_kills;
  enforcer_.reset(); // the kept link holds the program and its maps
  start([&](auto& o) {
    o.exec_backstop = true;
    o.kept_backstop = Fd(kept);
  });
  ASSERT_TRUE(enforcer_->exec_backstop());
  for (const auto& l : logs()) EXPECT_EQ(l.find("cannot take over"), std::string::npos) << l;
  EXPECT_EQ(counters().backstop_kills, kills); // the same maps
}

TEST_F(FanotifyTest, BackstopKeptGroupsAreNotReusedWithoutTheirBackstop) {
  // A kept group caches ld.so, guarded only by the kept backstop's entry. A restarted
  // enforcer that cannot take that backstop over must not reuse the group as it is.
  Fd kept_group;
  std::string kept_meta;
  enforcer_.reset();
  start([&](auto& o) {
    o.exec_backstop = true;
    o.on_group = [&](const std::string& id, int fd, const std::string& meta) {
      if (id == workload().id) {
        kept_group = Fd(::dup(fd));
        kept_meta = meta;
      }
    };
  });
  if (!enforcer_->exec_backstop()) GTEST_SKIP() << "the exec backstop cannot load here";
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  CORRAL_WARM_UP();
  ASSERT_TRUE(kept_group);
  enforcer_.reset(); // its backstop goes with it: nobody kept the link
  start([&](auto& o) {
    o.exec_backstop = true;
    o.kept_backstop = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); // not a BPF link
  });
  ASSERT_TRUE(enforcer_->exec_backstop()); // a fresh one
  bool logged = false;
  for (const auto& l : logs())
    logged |= l.find("cannot take over the kept one") != std::string::npos;
  EXPECT_TRUE(logged);
  enforcer_->adopt(workload().id, std::move(kept_group), kept_meta);
  enforce(process_policy("allow-true", "/bin/true", "Allow"), policy::Posture::Block);
  // A new group judges the direct exec: denied by fanotify (reusing the kept one would have
  // let it run: its ld.so is cached and the fresh backstop has no entry for it).
  EXPECT_EQ(run({kLdSo, "/usr/bin/true"}).exec_errno, EPERM);
}

} // namespace
} // namespace corral::testing

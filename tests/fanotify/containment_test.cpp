// Issue 7: an attacker with a root shell inside the workload, running only what an
// allow-list permits (bash), writing files and calling any syscall the container allows.
// Each test is one of the walks around enforcement that worked before, with variants, and
// fails if that hole reopens. Files are planted from the host through /proc/<pid>/root, as
// the attacker's `printf > file` would, after the workload started.
#include <csignal>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enforce/fanotify/group.h"
#include "fixture.h"

namespace corral::testing {
using policy::Posture;

// Class 1: code loaded into an allowed process.
TEST_F(FanotifyTest, ContainmentALibraryWrittenAfterStartIsKilledWhenMappedExecutable) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  plant("/tmp/evil.so", read_host(CORRAL_EVIL_SO));
  // LD_PRELOAD into an allowed program: killed before the constructor runs.
  auto r = run({"/bin/bash", "-c", "LD_PRELOAD=/tmp/evil.so /bin/true; echo rc=$?"});
  EXPECT_EQ(r.output.find("pwned"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rc=137"), std::string::npos) << r.output;
  // bash's `enable -f` dlopens it into the allowed shell itself.
  r = run({"/bin/bash", "-c", "enable -f /tmp/evil.so pwned; echo survived"});
  EXPECT_TRUE(killed(r)) << r.output;
  EXPECT_EQ(r.output.find("pwned"), std::string::npos) << r.output;
  // Other loaders: a plain mmap, and a readable mapping made executable later.
  EXPECT_TRUE(killed(run({CORRAL_ATTACKER, "map", "/tmp/evil.so"})));
  EXPECT_TRUE(killed(run({CORRAL_ATTACKER, "mprotect", "/tmp/evil.so"})));
  EXPECT_TRUE(killed(run({CORRAL_ATTACKER, "pkey", "/tmp/evil.so"})));
  EXPECT_TRUE(killed(run({CORRAL_ATTACKER, "personality", "/tmp/evil.so"})));
  EXPECT_EQ(run({CORRAL_ATTACKER, "personality", "/usr/bin/true"}).output, "mapped\n");
  // The image's own files keep mapping: its programs and libraries work.
  EXPECT_EQ(run({CORRAL_ATTACKER, "map", "/usr/bin/true"}).output, "mapped\n");
  EXPECT_EQ(run({CORRAL_ATTACKER, "mprotect", "/usr/bin/true"}).output, "mprotected\n");
  EXPECT_EQ(run({"/bin/bash", "-c", "/bin/true && echo ok"}).output, "ok\n");
  const auto a = alert_for("/tmp/evil.so");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, "Permission denied");
  EXPECT_NE(a->data.find("signal=SIGKILL"), std::string::npos) << a->data;
  EXPECT_NE(a->data.find("not the image's own"), std::string::npos) << a->data;
}

TEST_F(FanotifyTest, ContainmentALibraryWrittenAfterStartRunsUnderAuditAndBlockLists) {
  CORRAL_START_BACKSTOP();
  plant("/tmp/evil2.so", read_host(CORRAL_EVIL_SO));
  // Posture audit: it runs, and is reported.
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Audit);
  auto r = run({"/bin/bash", "-c", "LD_PRELOAD=/tmp/evil2.so /bin/true; echo rc=$?"});
  EXPECT_NE(r.output.find("pwned\nrc=0"), std::string::npos) << r.output;
  const auto a = alert_for("/tmp/evil2.so");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->action, "Audit");
  EXPECT_EQ(a->result, "Passed");
  // A block-list promises nothing about other code: it runs.
  enforce(process_policy("block-chroot", "/usr/sbin/chroot", "Block"), Posture::Block);
  r = run({"/bin/bash", "-c", "LD_PRELOAD=/tmp/evil2.so /bin/true; echo rc=$?"});
  EXPECT_NE(r.output.find("pwned\nrc=0"), std::string::npos) << r.output;
}

// Class 2: new mount namespaces, and mounts added after enforcement started.
TEST_F(FanotifyTest, ContainmentANewUserAndMountNamespaceDoesNotEscape) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0); // judged and approved once
  // The namespace's copies of the mounts carry no marks: no permission event at all.
  auto r = run({CORRAL_ATTACKER, "unshare", "/usr/sbin/chroot", "--version"});
  EXPECT_TRUE(killed(r)) << r.output;
  EXPECT_EQ(r.output.find("chroot (GNU"), std::string::npos) << r.output;
  // What the permission path approved still runs there.
  EXPECT_EQ(run({CORRAL_ATTACKER, "unshare", "/usr/bin/true"}).exit_code, 0);
  const auto a = alert_for("/usr/sbin/chroot");
  ASSERT_TRUE(a);
  EXPECT_NE(a->data.find("not judged by the permission path"), std::string::npos) << a->data;
}

TEST_F(FanotifyTest, ContainmentAMountAddedAfterEnforcementDoesNotEscape) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  // A privileged container mounts a tmpfs (no mark on it) and runs a copy of a static
  // program from there (a dynamic one would still meet its marked ld.so).
  const auto r = run({CORRAL_ATTACKER, "mount-exec", CORRAL_MEMFD_EXEC, "hello"});
  EXPECT_TRUE(killed(r)) << r.output;
  EXPECT_EQ(r.output.find("hello from memory"), std::string::npos) << r.output;
}

// Class 3: an error on the way to a verdict.
TEST_F(FanotifyTest, ContainmentAPathLongerThanPathMaxIsJudgedNotAllowedOnError) {
  image_only_ = false; // this test is about the path, not about new files
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", {"/bin/bash", "/bin/true", "/usr/bin/yes"}, "Allow"),
          Posture::Block);
  // 20 levels of 240 characters: the path of anything at the bottom exceeds PATH_MAX, so
  // readlink of the event's fd fails (ENAMETOOLONG).
  const std::string name(240, 'd');
  std::string cds, dir = "/tmp/deep";
  ASSERT_EQ(::mkdir(host_path(dir).c_str(), 0755), 0);
  int fd = ::open(host_path(dir).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(::mkdirat(fd, name.c_str(), 0755), 0);
    const int next = ::openat(fd, name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    fd = next;
    cds += "cd " + name + "; ";
  }
  // A copy of an allowed program (another file), and a link of an allowed one (the same).
  const std::string copy = read_host(host_path("/usr/bin/true"));
  const int out = ::openat(fd, "t", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
  ASSERT_EQ(::write(out, copy.data(), copy.size()), static_cast<ssize_t>(copy.size()));
  ::close(out);
  ASSERT_EQ(::linkat(AT_FDCWD, host_path("/usr/bin/yes").c_str(), fd, "same", 0), 0);
  ::close(fd);
  const auto r = run({"/bin/bash", "-c",
                      "cd /tmp/deep; " + cds + "./t; echo rc=$?; ./same --version; echo rc=$?"});
  EXPECT_NE(r.output.find("rc=126\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("yes (GNU coreutils)"), std::string::npos) << r.output;
  const auto a = alert_for(enforce::fanotify::kUndecidablePath);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, "Permission denied");
  EXPECT_NE(a->data.find("could not judge"), std::string::npos) << a->data;
  EXPECT_GE(counters().errors_denied, 1U);
}

// Class 4: the cache follows the inode, the verdict the path.
TEST_F(FanotifyTest, ContainmentACachedBinaryRenamedOrRewrittenLosesItsAllow) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", {"/bin/bash", "/bin/true", "/usr/bin/sleep", "/bin/echo"},
                         "Allow"),
          Posture::Block);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(run({"/usr/bin/sleep", "0"}).exit_code, 0);
    ASSERT_EQ(run({"/bin/echo", "hi"}).exit_code, 0);
  }
  ASSERT_TRUE(eventually([&] { return counters().cached >= 3; }));
  // Renamed to a path the policy does not list: its ignore mark follows it.
  ASSERT_EQ(::rename(host_path("/usr/bin/sleep").c_str(), host_path("/tmp/s").c_str()), 0);
  auto r = run({"/tmp/s", "0"});
  EXPECT_TRUE(killed(r) || r.exec_errno == EPERM) << r.exit_code;
  // Rewritten in place with another program's code.
  plant("/usr/bin/echo", read_host(host_path("/usr/sbin/chroot")));
  r = run({"/bin/echo", "--version"});
  EXPECT_EQ(r.exec_errno, EPERM) << r.output;
  EXPECT_EQ(r.output.find("chroot"), std::string::npos) << r.output;
}

// Class 5: other code at an allowed path.
TEST_F(FanotifyTest, ContainmentAnotherProgramMovedOverAnAllowedPathIsNotTheImages) {
  CORRAL_START_BACKSTOP();
  const auto policy =
      process_policy("allow-env", {"/bin/bash", "/bin/true", "/usr/bin/env"}, "Allow");
  enforce(policy, Posture::Block);
  plant("/tmp/x", read_host(host_path("/usr/sbin/chroot")));
  ASSERT_EQ(::rename(host_path("/tmp/x").c_str(), host_path("/usr/bin/env").c_str()), 0);
  auto r = run({"/bin/bash", "-c", "/usr/bin/env --version; echo rc=$?"});
  EXPECT_NE(r.output.find("/usr/bin/env: Operation not permitted"), std::string::npos) << r.output;
  const auto a = alert_for("/usr/bin/env");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, "Permission denied");
  EXPECT_NE(a->data.find("after the workload started"), std::string::npos) << a->data;
  // Posture audit reports it and lets it run.
  enforce(policy, Posture::Audit);
  r = run({"/usr/bin/env", "--version"});
  EXPECT_NE(r.output.find("chroot (GNU"), std::string::npos) << r.output;
  // corral.io/exec-image-only=false: the path alone decides, as in KubeArmor.
  image_only_ = false;
  enforce(policy, Posture::Block);
  r = run({"/usr/bin/env", "--version"});
  EXPECT_NE(r.output.find("chroot (GNU"), std::string::npos) << r.output;
}

TEST_F(FanotifyTest, ContainmentADirectoryReplacedUnderAnAllowedPathIsNotTheImages) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-tool", {"/bin/bash", "/bin/true", "/opt/app/tool"}, "Allow"),
          Posture::Block);
  ASSERT_EQ(run({"/opt/app/tool"}).output, "tool\n");
  ASSERT_EQ(::rename(host_path("/opt/app").c_str(), host_path("/opt/app.orig").c_str()), 0);
  ASSERT_EQ(::mkdir(host_path("/opt/app").c_str(), 0755), 0);
  plant("/opt/app/tool", "#!/bin/sh\necho evil\n");
  const auto r = run({"/opt/app/tool"});
  EXPECT_EQ(r.exec_errno, EPERM) << r.output;
  EXPECT_EQ(r.output.find("evil"), std::string::npos) << r.output;
  ::unlink(host_path("/opt/app/tool").c_str());
  ::rmdir(host_path("/opt/app").c_str());
  ::rename(host_path("/opt/app.orig").c_str(), host_path("/opt/app").c_str());
}

} // namespace corral::testing

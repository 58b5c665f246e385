// An attacker's review of the containment (issue 7's promise): a root shell inside the
// workload, running only what the allow-list permits, with the static `attacker` helper
// standing in for "any syscall the container permits". Each test passes when Corral holds
// (EPERM, or SIGKILL before the first instruction). The cases marked "Was a hole" walked
// around enforcement, silently, when the review was made; each comment says how and why, and
// "Closed:" what closes it now.
// Files are planted from the host through /proc/<pid>/root, as the attacker's writes would
// be, after the workload started. Whatever a test renames or rewrites in the shared sandbox
// it restores.
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

namespace corral::testing {
namespace {

using policy::Posture;

// Renames `from` to `to` inside the sandbox, and back when it goes out of scope.
class Moved {
public:
  Moved(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {
    ok_ = ::rename(host_path(from_).c_str(), host_path(to_).c_str()) == 0;
  }
  ~Moved() {
    if (ok_) ::rename(host_path(to_).c_str(), host_path(from_).c_str());
  }
  Moved(const Moved&) = delete;
  Moved& operator=(const Moved&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

private:
  std::string from_, to_;
  bool ok_ = false;
};

// Writes `content` over the start of the file at `inside` (zeroing the rest) through a shared
// writable mapping, not write(2); the file keeps its size. Returns the file's ctime before
// and after, in ns.
std::pair<int64_t, int64_t> rewrite_through_mapping(const std::string& inside,
                                                    const std::string& content) {
  const int fd = ::open(host_path(inside).c_str(), O_RDWR | O_CLOEXEC);
  EXPECT_GE(fd, 0) << strerror(errno);
  struct stat before {};
  ::fstat(fd, &before);
  const auto size = static_cast<size_t>(before.st_size);
  EXPECT_LE(content.size(), size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  EXPECT_NE(p, MAP_FAILED) << strerror(errno);
  if (p != MAP_FAILED && content.size() <= size) {
    std::memset(p, 0, size);
    std::memcpy(p, content.data(), content.size());
    ::msync(p, size, MS_SYNC);
    ::munmap(p, size);
  }
  struct stat after {};
  ::fstat(fd, &after);
  ::close(fd);
  const auto ns = [](const struct stat& st) {
    return int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  };
  return {ns(before), ns(after)};
}

} // namespace

// Held: an O_PATH fd (execveat with AT_EMPTY_PATH) or another task's /proc/<pid>/root reach
// the same, marked mount: the exec is judged on the file's own path.
TEST_F(FanotifyTest, AttackReviewAnExecThroughAnOPathFdOrProcRootIsJudged) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  auto r = run({CORRAL_ATTACKER, "execveat", "/usr/sbin/chroot", "--version"});
  EXPECT_EQ(r.output, "execveat: Operation not permitted\n");
  r = run({"/proc/1/root/usr/sbin/chroot", "--version"});
  EXPECT_EQ(r.exec_errno, EPERM) << r.output;
  r = run({"/bin/bash", "-c", "exec 3</usr/sbin/chroot; /proc/self/fd/3 --version; echo rc=$?"});
  EXPECT_EQ(r.output.find("chroot (GNU"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rc=126"), std::string::npos) << r.output;
}

// Held: in a new user + mount namespace (no marks), a library written after the start and
// bind-mounted over libc: its code never runs (ld.so gives up on its missing symbols before
// any constructor, or the first page fault in its code kills the process).
TEST_F(FanotifyTest, AttackReviewALibraryBindMountedOverLibcInANewNamespaceIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);
  plant("/tmp/review-evil.so", read_host(CORRAL_EVIL_SO), 0755, Plant::NewFile);
  const auto r = run({CORRAL_ATTACKER, "unshare-bind", "/tmp/review-evil.so",
                      "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/true"});
  EXPECT_TRUE(killed(r) || r.exit_code != 0) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("pwned"), std::string::npos) << r.output;
  ::unlink(host_path("/tmp/review-evil.so").c_str());
}

// Held: in a new user + mount namespace, an image program the policy does not allow,
// bind-mounted over an allowed and approved path: the exec's file is chroot's inode, which
// nothing approved.
TEST_F(FanotifyTest, AttackReviewAnImageProgramBindMountedOverAnAllowedPathIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);
  const auto r = run({CORRAL_ATTACKER, "unshare-bind", "/usr/sbin/chroot", "/usr/bin/true",
                      "/usr/bin/true", "--version"});
  EXPECT_TRUE(killed(r)) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("chroot (GNU"), std::string::npos) << r.output;
}

// Held: a new cgroup namespace and a cgroup2 mount of its own let the attacker create a
// child cgroup and move into it, but never above the workload's cgroup, which the backstop
// finds among the task's ancestors.
TEST_F(FanotifyTest, AttackReviewACgroupOfItsOwnDoesNotLeaveTheWorkload) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  const auto r =
      run({CORRAL_ATTACKER, "cgroup-exec", "/tmp/review-cg", "/usr/sbin/chroot", "--version"});
  EXPECT_TRUE(killed(r)) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("chroot (GNU"), std::string::npos) << r.output;
  // Remove the child cgroup (from the host: the sandbox's cgroup must be empty of children
  // when it is removed) and the mount point.
  std::string line;
  std::ifstream cg("/proc/" + std::to_string(sandbox().init_pid()) + "/cgroup");
  while (std::getline(cg, line) && line.rfind("0::", 0) != 0) {
  }
  if (line.rfind("0::", 0) == 0) {
    for (const char* m : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"})
      ::rmdir((m + line.substr(3) + "/escape").c_str());
  }
  ::rmdir(host_path("/tmp/review-cg").c_str());
}

// Held: the backstop's SIGKILL reaches the init of a pid namespace of the attacker's own
// (SIGNAL_UNKILLABLE ignores only signals sent from inside that namespace): a program
// run from memory (no mark sees it) as pid 1 there is still killed.
TEST_F(FanotifyTest, AttackReviewAProgramRunAsInitOfANewPidNamespaceIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell",
                         std::vector<std::string>{"/bin/bash", "/bin/true", CORRAL_ATTACKER,
                                                  CORRAL_MEMFD_EXEC},
                         "Allow"),
          Posture::Block);
  const auto r = run({CORRAL_ATTACKER, "pidns-exec", CORRAL_MEMFD_EXEC});
  EXPECT_EQ(r.output, "child: signal 9\n");
}

// Held (bash alone): an exec of an allowed script that fails after its permission event
// (the file is opened before the arguments are copied: E2BIG) leaves its interpreter
// "expected" for that thread; with `shopt -s execfail` the same thread then execs the
// interpreter directly with commands of its own. The kernel stack shows no binary format
// handler opening it, so it is judged on its own path (and approved only as an
// interpreter in the backstop, so it would be killed there too).
TEST_F(FanotifyTest, AttackReviewAFailedScriptExecDoesNotLendItsInterpreter) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-script",
                         std::vector<std::string>{"/bin/bash", "/bin/true", CORRAL_ATTACKER,
                                                  "/usr/local/bin/hello.sh"},
                         "Allow"),
          Posture::Block);
  ASSERT_EQ(run({"/usr/local/bin/hello.sh"}).output, "hello\n");
  const auto r = run({"/bin/bash", "-c",
                      "shopt -s execfail; big=$(printf '%200000s' x); "
                      "exec /usr/local/bin/hello.sh \"$big\"; echo \"e2big rc=$?\"; "
                      "exec /bin/sh -c 'echo pwned'; echo \"sh rc=$?\""});
  EXPECT_NE(r.output.find("e2big rc=126"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("pwned"), std::string::npos) << r.output;
  EXPECT_TRUE(killed(r) || r.output.find("sh rc=126") != std::string::npos) << r.output;
}

// Was a hole (ELF interpreter never judged outside the marks). In a new user + mount namespace the
// attacker bind-mounts a program of their own over /lib64/ld-linux-x86-64.so.2 and runs an
// allowed, approved binary (/usr/bin/true). The kernel opens the PT_INTERP path in the
// task's mount namespace (no marks there: no fanotify event) and maps it itself
// (binfmt_elf's elf_map, no mmap syscall: a syscall check never sees it); the exec
// backstop checks only bprm->file, which is the approved /usr/bin/true. The attacker's
// interpreter runs: arbitrary code, no alert. A privileged container can do the same with a
// bind mount in its own namespace (the new mount carries no mark either).
// Closed: at sched_process_exec the backstop also judges the file whose code runs first: the VMA
// holding the new task's user IP (task_pt_regs(p)->ip; bpf_find_vma gives its vm_file) must be the
// approved exec itself or a file approved as CORRAL_APPROVED_INTERP, unchanged since (ctime);
// otherwise kill, alert "interpreter not judged".
TEST_F(FanotifyTest, AttackReviewAnInterpreterBindMountedInANewNamespaceIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0); // approved, with its interpreter
  plant("/tmp/review-interp", read_host(CORRAL_EVIL_INTERP), 0755, Plant::NewFile);
  const auto r = run({CORRAL_ATTACKER, "unshare-bind", "/tmp/review-interp",
                      "/usr/lib64/ld-linux-x86-64.so.2", "/usr/bin/true"});
  EXPECT_TRUE(killed(r)) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("pwned"), std::string::npos) << r.output;
  ::unlink(host_path("/tmp/review-interp").c_str());
  EXPECT_TRUE(eventually([&] { return !alerts().empty(); })) << "no alert at all";
}

// The same hole without a new namespace, in a privileged container: a bind mount over
// ld.so in the workload's own mount namespace is a mount no mark covers. (Unmounted again
// by the attacker helper; the test checks that the sandbox's ld.so is back.)
TEST_F(FanotifyTest, AttackReviewAnInterpreterBindMountedByAPrivilegedWorkloadIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);
  plant("/tmp/review-interp2", read_host(CORRAL_EVIL_INTERP), 0755, Plant::NewFile);
  const auto r = run({CORRAL_ATTACKER, "bind-exec", "/tmp/review-interp2",
                      "/usr/lib64/ld-linux-x86-64.so.2", "/usr/bin/true"});
  EXPECT_EQ(r.output.find("pwned"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("child: signal 9"), std::string::npos) << r.output;
  EXPECT_EQ(run({"/bin/true"}).exit_code, 0); // ld.so is the image's again
  ::unlink(host_path("/tmp/review-interp2").c_str());
  EXPECT_TRUE(eventually([&] { return !alerts().empty(); })) << "no alert at all";
}

// Was a hole (ld.so approved as an interpreter, run as a "#!" interpreter). After any dynamic exec,
// ld.so is approved for the workload as CORRAL_APPROVED_INTERP. In a new user + mount
// namespace (no marks, and the `files` entry guarding ld.so is keyed by the workload's mount
// namespace, which the copies are not in), a script "#!/lib64/ld-linux-x86-64.so.2
// /usr/sbin/chroot" makes binfmt_script swap bprm->file to ld.so and change bprm->interp:
// the backstop then accepts an INTERP approval, and ld.so loads and runs chroot, an image
// program the policy does not allow (any image program runs this way; chroot's own mmaps
// pass, its file is the image's).
// Closed: an INTERP approval means "named by an exec the permission path judged", which holds
// only where the permission path sees the interpreter's open: accept CORRAL_APPROVED_INTERP
// at sched_process_exec only when bprm->file was reached through a mount carrying the
// workload's exec permission mark (struct mount's mnt_fsnotify_mask has FS_OPEN_EXEC_PERM;
// "#!" interpreters are never cached, so such an open raised an event that checked the
// naming script); through any other mount require CORRAL_APPROVED_EXEC. (Keying the ld.so
// `files` guard by cgroup would close the ld.so case only, not the /bin/sh one below.)
TEST_F(FanotifyTest, AttackReviewAScriptRunByTheElfInterpreterInANewNamespaceIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0); // ld.so approved as its interpreter
  plant("/tmp/review-script", "#!/lib64/ld-linux-x86-64.so.2 /usr/sbin/chroot\n", 0755,
        Plant::NewFile);
  const auto r = run({CORRAL_ATTACKER, "unshare", "/tmp/review-script"});
  EXPECT_TRUE(killed(r)) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("chroot:"), std::string::npos) << r.output;
  ::unlink(host_path("/tmp/review-script").c_str());
  EXPECT_TRUE(eventually([&] { return !alerts().empty(); })) << "no alert at all";
}

// The same hole with a "#!" interpreter approved only as one: /bin/sh, approved as the
// interpreter of the allowed /usr/local/bin/hello.sh, runs any script of the attacker's from a
// new user + mount namespace (the script itself raises no event there). Same fix.
TEST_F(FanotifyTest, AttackReviewAScriptOfTheAttackersRunByAnApprovedInterpreterIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-script",
                         std::vector<std::string>{"/bin/bash", "/bin/true", CORRAL_ATTACKER,
                                                  "/usr/local/bin/hello.sh"},
                         "Allow"),
          Posture::Block);
  ASSERT_EQ(run({"/usr/local/bin/hello.sh"}).output, "hello\n"); // /bin/sh approved for it
  plant("/tmp/review-sh", "#!/bin/sh\necho pwned by sh\n", 0755, Plant::NewFile);
  const auto r = run({CORRAL_ATTACKER, "unshare", "/tmp/review-sh"});
  EXPECT_TRUE(killed(r)) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("pwned"), std::string::npos) << r.output;
  ::unlink(host_path("/tmp/review-sh").c_str());
  EXPECT_TRUE(eventually([&] { return !alerts().empty(); })) << "no alert at all";
}

// Held: ld.so run directly in a new user + mount namespace, where no mark and no `files`
// entry (keyed by the workload's mount namespace) sees it: approved only as an interpreter,
// it is not an approved exec.
TEST_F(FanotifyTest, AttackReviewTheElfInterpreterRunDirectlyInANewNamespaceIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  ASSERT_EQ(run({"/bin/true"}).exit_code, 0);
  const auto r = run(
      {CORRAL_ATTACKER, "unshare", "/lib64/ld-linux-x86-64.so.2", "/usr/sbin/chroot", "--version"});
  EXPECT_TRUE(killed(r)) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("chroot (GNU"), std::string::npos) << r.output;
}

// Was a hole (image-only rule: a directory rename moves files without changing their ctime). The
// policy allows a directory (matchDirectories /opt/app/, recursive). The attacker renames
// the image's /usr/sbin into it: the directory's ctime changes, not its files'. chroot now
// sits at /opt/app/sbin/chroot, an allowed path, and its inode is the image's (ctime before
// the start): allowed and approved. The same works with matchPaths wherever the image holds
// another program of the allowed file's name in another directory.
// Closed (Group::moved_in): the image-only rule cannot rest on the file's ctime alone for a path
// decision. Either record at enforce time the (dev, ino) of the image's files at the allowed paths
// and under the allowed directories and allow a path only for those identities, or also require
// every directory on the path from the workload's root to have a ctime before the start (a rename
// of any of them makes the path "moved in"; it also denies allowed files in a directory the
// workload itself writes to after the start: fail-closed, to document).
TEST_F(FanotifyTest, AttackReviewAnImageDirectoryMovedIntoAnAllowedDirectoryIsDenied) {
  CORRAL_START_BACKSTOP();
  enforce(R"(apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: allow-app-dir
spec:
  selector:
    matchLabels:
      app: sandbox
  process:
    matchPaths:
    - path: /bin/bash
    - path: /bin/true
    - path: )" +
              std::string(CORRAL_ATTACKER) +
              R"(
    matchDirectories:
    - dir: /opt/app/
      recursive: true
  action:
    Allow
)",
          Posture::Block);
  ASSERT_EQ(run({"/opt/app/tool"}).output, "tool\n");
  const Moved moved("/usr/sbin", "/opt/app/sbin");
  ASSERT_TRUE(moved.ok()) << strerror(errno);
  const auto r = run({"/opt/app/sbin/chroot", "--version"});
  EXPECT_EQ(r.exec_errno, EPERM) << r.output;
  EXPECT_EQ(r.output.find("chroot (GNU"), std::string::npos) << r.output;
  EXPECT_TRUE(eventually([&] { return !alerts().empty(); })) << "no alert at all";
}

// Held: contents rewritten through a shared writable mapping instead of write(2). No
// fsnotify event is raised (the ignore mark stays), but the first write fault updates the
// ctime (fault_dirty_shared_page calls file_update_time where the filesystem has no
// page_mkwrite, as on tmpfs): the approval no longer matches and the exec is killed. If a
// filesystem ever let a mapping change contents without the ctime, this test would fail.
// The target is the test-only memfd_exec (its tests run before this file's): its contents
// are put back, its ctime stays new.
TEST_F(FanotifyTest, AttackReviewAnAllowedBinaryRewrittenThroughASharedMappingIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-helper",
                         std::vector<std::string>{"/bin/bash", "/bin/true", CORRAL_ATTACKER,
                                                  CORRAL_MEMFD_EXEC},
                         "Allow"),
          Posture::Block);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(run({CORRAL_MEMFD_EXEC, "hello"}).exit_code, 0);
  const std::string original = read_host(host_path(CORRAL_MEMFD_EXEC));
  const auto [before, after] =
      rewrite_through_mapping(CORRAL_MEMFD_EXEC, read_host(host_path("/usr/bin/true")));
  const auto r = run({CORRAL_MEMFD_EXEC, "--version"});
  rewrite_through_mapping(CORRAL_MEMFD_EXEC, original); // its contents back (the same way)
  EXPECT_NE(before, after) << "a mapping changed the contents, not the ctime";
  EXPECT_TRUE(killed(r) || r.exec_errno == EPERM) << r.exit_code << " " << r.output;
  EXPECT_EQ(r.output.find("true (GNU"), std::string::npos) << r.output;
}

// Was a hole (mprotect judged by the first VMA of its range). The sys_enter check looks up the VMA
// at mprotect's start address only (bpf_find_vma); one mprotect over an image file's
// mapping followed by a new file's mapping makes both executable, and only the first is
// checked. (It needs code running already, which anonymous executable memory also gives,
// so this matters for loaders more than for shellcode.)
// Closed: executable mappings are now judged at their page faults (tp_btf/mm_filemap_*),
// each page in its own mapping, however it became executable.
TEST_F(FanotifyTest, AttackReviewAnMprotectSpanningANewFileIsKilled) {
  CORRAL_START_BACKSTOP();
  enforce(process_policy("allow-shell", kShell, "Allow"), Posture::Block);
  plant("/tmp/review-evil2.so", read_host(CORRAL_EVIL_SO), 0755, Plant::NewFile);
  const auto r = run({CORRAL_ATTACKER, "mprotect-span", "/usr/bin/true", "/tmp/review-evil2.so"});
  EXPECT_TRUE(killed(r)) << r.exit_code << " " << r.output;
  EXPECT_NE(r.output, "mprotected\n");
  ::unlink(host_path("/tmp/review-evil2.so").c_str());
  EXPECT_TRUE(eventually([&] { return !alerts().empty(); })) << "no alert at all";
}

} // namespace corral::testing

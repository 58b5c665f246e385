// The fanotify backend's pure parts: mountinfo, interpreters, paths. No root needed.
#include <cstdio>
#include <string>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/fd.h"
#include "enforce/fanotify/exec_header.h"
#include "enforce/fanotify/journal.h"
#include "enforce/fanotify/mounts.h"
#include "enforce/fanotify/proc_reader.h"

namespace corral::enforce::fanotify {
namespace {

// What one agent records survives it (the file is all the next agent has) and is handed
// over once: the next agent's open clears the slots but keeps the fd bound.
TEST(Journal, TheNextAgentReadsWhatWasInHand) {
  char dir[] = "/tmp/corral-journal-unit-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/j";
  {
    auto j = Journal::open(path, nullptr);
    ASSERT_TRUE(j) << j.error().to_string();
    (*j)->record(0, "wl-a", 7, 100, 0x1000);
    (*j)->note_path(0, "/usr/bin/true");
    (*j)->record(17, "wl-b", 9, 101, 0x10000);
    (*j)->record(3, "wl-a", 8, 102, 0x1000);
    (*j)->clear(3); // answered
    (*j)->saw_fd(42);
    (*j)->saw_fd(12); // the bound only grows
  }                   // the agent dies: its mapping goes, the file stays
  const auto seen = Journal::read(path);
  EXPECT_EQ(seen.max_fd, 42);
  Leftovers left;
  auto next = Journal::open(path, &left);
  ASSERT_TRUE(next);
  EXPECT_EQ(left.max_fd, 42);
  ASSERT_EQ(left.by_workload.size(), 2U);
  ASSERT_EQ(left.by_workload["wl-a"].size(), 1U);
  EXPECT_EQ(left.by_workload["wl-a"][0].fd, 7);
  EXPECT_EQ(left.by_workload["wl-a"][0].tid, 100);
  EXPECT_EQ(left.by_workload["wl-a"][0].path, "/usr/bin/true");
  ASSERT_EQ(left.by_workload["wl-b"].size(), 1U);
  EXPECT_EQ(left.by_workload["wl-b"][0].path, ""); // not read yet: judged as undecidable
  EXPECT_EQ(left.by_workload["wl-b"][0].mask, 0x10000U);
  const auto again = Journal::read(path);
  EXPECT_TRUE(again.by_workload.empty());
  EXPECT_EQ(again.max_fd, 42);
  next->reset();
  std::remove(path.c_str());
  ::rmdir(dir);
}

TEST(Journal, AMissingOrForeignFileLeavesNothing) {
  EXPECT_TRUE(Journal::read("/nonexistent/j").by_workload.empty());
  EXPECT_EQ(Journal::read("/proc/self/status").max_fd, -1);
}

TEST(Mountinfo, ParsesIdsMountPointsAndTypes) {
  const auto m =
      parse_mountinfo("63 42 0:39 / / rw,relatime - tmpfs tmpfs rw,size=65536k\n"
                      "70 63 254:1 /srv /data\\040dir rw shared:1 master:2 - ext4 /dev/vda rw\n"
                      "44 63 0:40 / /proc rw,relatime - proc proc rw\n"
                      "garbage\n");
  ASSERT_EQ(m.size(), 3U);
  EXPECT_EQ(m[0].id, 63);
  EXPECT_EQ(m[0].mount_point, "/");
  EXPECT_EQ(m[0].fstype, "tmpfs");
  EXPECT_EQ(m[1].mount_point, "/data dir");
  EXPECT_EQ(m[1].fstype, "ext4");
  EXPECT_EQ(m[2].fstype, "proc");
  // The superblock's device, which the exec backstop keys files by.
  EXPECT_EQ(m[0].dev, makedev(0, 39));
  EXPECT_EQ(m[1].dev, makedev(254, 1));
}

TEST(Mountinfo, MountDevOfAnOpenFileMatchesItsStat) {
  // What the exec backstop relies on for an ordinary filesystem: mountinfo's major:minor of
  // the file's mount is the st_dev that stat reports.
  const Fd fd(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  const auto mount = mount_id_of(fd.get());
  ASSERT_TRUE(mount);
  const auto dev = mount_dev(::getpid(), *mount);
  ASSERT_TRUE(dev);
  EXPECT_EQ(*dev, st.st_dev);
  EXPECT_FALSE(mount_dev(::getpid(), -1));
}

Fd temp_file(const std::string& content) {
  char path[] = "/tmp/corral-unit-XXXXXX";
  Fd fd(::mkstemp(path));
  ::unlink(path);
  EXPECT_EQ(::write(fd.get(), content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  return fd;
}

TEST(Interpreter, OfADynamicElfIsItsPtInterp) {
  const Fd fd(::open("/usr/bin/true", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  const auto interp = interpreter_of(fd.get());
  ASSERT_TRUE(interp);
  EXPECT_TRUE(interp->find("ld-linux") != std::string::npos) << *interp;
}

TEST(Interpreter, OfAScriptIsItsShebang) {
  EXPECT_EQ(interpreter_of(temp_file("#!/bin/sh\necho hi\n").get()), "/bin/sh");
  EXPECT_EQ(interpreter_of(temp_file("#! /usr/bin/env python3\n").get()), "/usr/bin/env");
  EXPECT_EQ(interpreter_of(temp_file("#!/bin/sh").get()), "/bin/sh"); // no newline: EOF ends it
  EXPECT_EQ(interpreter_of(temp_file("#!" + std::string(300, 'a')).get()), std::nullopt);
  EXPECT_EQ(interpreter_of(temp_file("#!   \n").get()), std::nullopt);
}

TEST(Interpreter, NoneForOtherFiles) {
  EXPECT_EQ(interpreter_of(temp_file("plain text file\n").get()), std::nullopt);
  EXPECT_EQ(interpreter_of(temp_file("\x7f"
                                     "ELF")
                               .get()),
            std::nullopt); // truncated
  EXPECT_EQ(interpreter_of(-1), std::nullopt);
}

TEST(Paths, StripRootRemovesAHostPrefixOnly) {
  EXPECT_EQ(strip_root("/usr/bin/true", "/"), "/usr/bin/true");
  EXPECT_EQ(strip_root("/tmp/r/usr/bin/true", "/tmp/r"), "/usr/bin/true");
  EXPECT_EQ(strip_root("/tmp/rx/usr/bin/true", "/tmp/r"), "/tmp/rx/usr/bin/true");
  EXPECT_EQ(strip_root("/tmp/r", "/tmp/r"), "/tmp/r");
}

TEST(Proc, ReadsOwnStatus) {
  const auto st = read_status(::getpid());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->tgid, ::getpid());
  EXPECT_EQ(st->uid, ::getuid());
  EXPECT_GE(st->ns_depth, 1);
}

} // namespace
} // namespace corral::enforce::fanotify

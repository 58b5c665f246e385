// A static test program playing the attacker inside a workload (issue 7's classes), with
// only syscalls the container permits. Static, so it runs in the sandbox without libraries,
// and it is part of the image (copied in before the workload starts).
//   attacker map FILE        mmap FILE with PROT_READ|PROT_EXEC, print "mapped"
//   attacker mprotect FILE   mmap FILE readable, then mprotect it PROT_EXEC, print "mprotected"
//   attacker pkey FILE       the same with pkey_mprotect
//   attacker personality FILE  READ_IMPLIES_EXEC, then mmap FILE readable, print "mapped"
//   attacker unshare PROG..  unshare(CLONE_NEWUSER|CLONE_NEWNS), then exec PROG: marks absent
//   attacker mount-exec SRC ARGS..  mount a new tmpfs on /mnt, copy SRC there, exec the copy
//   attacker unshare-bind SRC DST PROG..  unshare(CLONE_NEWUSER|CLONE_NEWNS), bind-mount SRC
//                            over DST in that namespace, then exec PROG
//   attacker cgroup-exec DIR PROG..  unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWCGROUP), mount
//                            cgroup2 on DIR, move into a new child cgroup DIR/escape, exec PROG
//   attacker pidns-exec PROG..  unshare(CLONE_NEWUSER|CLONE_NEWPID), fork: the child, pid 1
//                            of the new pid namespace, execs PROG; print how it ended
//   attacker bind-exec SRC DST PROG..  bind-mount SRC over DST here (a privileged container),
//                            run PROG in a child, unmount DST, print how the child ended
//   attacker execveat FILE ARGS..  open FILE O_PATH, execveat(fd, "", AT_EMPTY_PATH)
//   attacker mprotect-span OLD NEW  map OLD then NEW readable, next to each other, and make
//                            both executable with one mprotect starting in OLD
// Exit 127 with the errno printed when a step fails.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// Brings the pages of a mapping in, as running (or reading) its code would: the backstop
// judges an executable mapping at its first page fault.
void touch(const void* p, size_t len) {
  for (size_t i = 0; i < len; i += 4096) (void)*(static_cast<const volatile char*>(p) + i);
}

int fail(const char* what) {
  std::printf("%s: %s\n", what, std::strerror(errno));
  return 127;
}

// op: map (PROT_EXEC at once), mprotect / pkey (readable, then made executable), personality
// (READ_IMPLIES_EXEC, then a readable mapping: executable all the same).
int map(const std::string& op, const char* file) {
  const int fd = ::open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("open");
  if (op == "personality" && ::personality(READ_IMPLIES_EXEC) < 0) return fail("personality");
  const bool later = op == "mprotect" || op == "pkey";
  const int prot = op == "map" ? PROT_READ | PROT_EXEC : PROT_READ;
  void* p = ::mmap(nullptr, 4096, prot, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return fail("mmap");
  if (op == "mprotect" && ::mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) return fail("mprotect");
  if (op == "pkey" && ::syscall(SYS_pkey_mprotect, p, 4096, PROT_READ | PROT_EXEC, -1) != 0)
    return fail("pkey_mprotect");
  touch(p, 4096);
  std::printf("%s\n", later ? "mprotected" : "mapped");
  return 0;
}

int copy(const char* src, const char* dst) {
  const int in = ::open(src, O_RDONLY | O_CLOEXEC);
  const int out = ::open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  struct stat st {};
  if (in < 0 || out < 0 || ::fstat(in, &st) != 0) return fail("open for copy");
  off_t off = 0;
  if (::sendfile(out, in, &off, static_cast<size_t>(st.st_size)) != st.st_size)
    return fail("sendfile");
  ::close(out);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string op = argv[1];
  if (op == "map" || op == "mprotect" || op == "pkey" || op == "personality")
    return map(op, argv[2]);
  if (op == "unshare") {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return fail("unshare");
    ::execv(argv[2], argv + 2);
    return fail("execv");
  }
  if (op == "mount-exec") {
    ::mkdir("/mnt", 0755);
    if (::mount("tmpfs", "/mnt", "tmpfs", 0, "size=64m") != 0) return fail("mount");
    if (const int r = copy(argv[2], "/mnt/prog"); r != 0) return r;
    argv[2] = const_cast<char*>("/mnt/prog");
    ::execv(argv[2], argv + 2);
    return fail("execv");
  }
  if (op == "unshare-bind" && argc >= 5) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return fail("unshare");
    if (::mount(argv[2], argv[3], nullptr, MS_BIND, nullptr) != 0) return fail("mount");
    ::execv(argv[4], argv + 4);
    return fail("execv");
  }
  if (op == "cgroup-exec" && argc >= 4) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) != 0) return fail("unshare");
    ::mkdir(argv[2], 0755);
    if (::mount("none", argv[2], "cgroup2", 0, nullptr) != 0) return fail("mount cgroup2");
    const std::string child = std::string(argv[2]) + "/escape";
    if (::mkdir(child.c_str(), 0755) != 0) return fail("mkdir cgroup");
    const int fd = ::open((child + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) return fail("join the cgroup");
    ::close(fd);
    ::execv(argv[3], argv + 3);
    return fail("execv");
  }
  if (op == "pidns-exec" || (op == "bind-exec" && argc >= 5)) {
    const bool bind = op == "bind-exec";
    if (!bind && ::unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0) return fail("unshare");
    if (bind && ::mount(argv[2], argv[3], nullptr, MS_BIND, nullptr) != 0) return fail("mount");
    std::fflush(stdout);
    const pid_t child = ::fork();
    if (child == 0) {
      char** prog = argv + (bind ? 4 : 2);
      ::execv(prog[0], prog);
      _exit(fail("execv"));
    }
    int status = 0;
    const pid_t waited = ::waitpid(child, &status, 0);
    if (bind && ::umount2(argv[3], MNT_DETACH) != 0) return fail("umount");
    if (child < 0 || waited != child) return fail("fork");
    if (WIFSIGNALED(status))
      std::printf("child: signal %d\n", WTERMSIG(status));
    else
      std::printf("child: exit %d\n", WEXITSTATUS(status));
    return 0;
  }
  if (op == "execveat") {
    const int fd = ::open(argv[2], O_PATH | O_CLOEXEC);
    if (fd < 0) return fail("open");
    char* const env[] = {nullptr};
    ::syscall(SYS_execveat, fd, "", argv + 2, env, AT_EMPTY_PATH);
    return fail("execveat");
  }
  if (op == "mprotect-span" && argc >= 4) {
    const int old_fd = ::open(argv[2], O_RDONLY | O_CLOEXEC);
    const int new_fd = ::open(argv[3], O_RDONLY | O_CLOEXEC);
    if (old_fd < 0 || new_fd < 0) return fail("open");
    // Two pages reserved, then each file mapped readable into one of them.
    char* p =
        static_cast<char*>(::mmap(nullptr, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return fail("mmap");
    if (::mmap(p, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, old_fd, 0) == MAP_FAILED ||
        ::mmap(p + 4096, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, new_fd, 0) == MAP_FAILED)
      return fail("mmap fixed");
    if (::mprotect(p, 8192, PROT_READ | PROT_EXEC) != 0) return fail("mprotect");
    touch(p, 8192);
    std::printf("mprotected\n");
    return 0;
  }
  return 2;
}

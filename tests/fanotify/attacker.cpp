// A static test program playing the attacker inside a workload (issue 7's classes), with
// only syscalls the container permits. Static, so it runs in the sandbox without libraries,
// and it is part of the image (copied in before the workload starts).
//   attacker map FILE        mmap FILE with PROT_READ|PROT_EXEC, print "mapped"
//   attacker mprotect FILE   mmap FILE readable, then mprotect it PROT_EXEC, print "mprotected"
//   attacker pkey FILE       the same with pkey_mprotect
//   attacker personality FILE  READ_IMPLIES_EXEC, then mmap FILE readable, print "mapped"
//   attacker unshare PROG..  unshare(CLONE_NEWUSER|CLONE_NEWNS), then exec PROG: marks absent
//   attacker mount-exec SRC ARGS..  mount a new tmpfs on /mnt, copy SRC there, exec the copy
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
#include <unistd.h>

namespace {

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
  return 2;
}

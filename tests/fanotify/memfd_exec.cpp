// A static test program for the exec backstop: `memfd_exec hello` prints "hello from memory";
// `memfd_exec` copies itself into a memfd and execs that copy with "hello" (execveat with
// AT_EMPTY_PATH), which is how a program written into memory is run without any file on a
// mount a fanotify mark could see; `memfd_exec script` does the same with a "#!/bin/sh"
// script. Static, so no ELF interpreter takes part. Exit 127 with the errno when the exec
// fails.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "hello") == 0) {
    std::puts("hello from memory");
    return 0;
  }
  const int mem = ::memfd_create("payload", 0);
  if (mem < 0) return 126;
  if (argc > 1 && std::strcmp(argv[1], "script") == 0) {
    const char script[] = "#!/bin/sh\necho hello from a script in memory\n";
    if (::write(mem, script, sizeof script - 1) != sizeof script - 1) return 126;
  } else {
    const int self = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (self < 0 || ::fstat(self, &st) != 0) return 126;
    off_t off = 0;
    if (::sendfile(mem, self, &off, static_cast<size_t>(st.st_size)) != st.st_size) return 126;
  }
  char hello[] = "hello";
  char* const args[] = {argv[0], hello, nullptr};
  char* const env[] = {nullptr};
  ::syscall(SYS_execveat, mem, "", args, env, AT_EMPTY_PATH);
  std::printf("execveat: %s\n", std::strerror(errno));
  return 127;
}

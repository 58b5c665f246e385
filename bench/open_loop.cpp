// open_loop PATH SECONDS: opens and closes PATH as fast as it can for SECONDS and prints how
// many opens it made. bench/monitor_bench.sh runs it inside a container whose file opens the
// system monitor reports, to drive the agent's event pipeline harder than a shell can.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <fcntl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: open_loop PATH SECONDS\n");
    return 2;
  }
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[2]));
  long n = 0;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 1000; ++i, ++n) {
      const int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
      if (fd >= 0) ::close(fd);
    }
  }
  std::printf("%ld\n", n);
  return 0;
}

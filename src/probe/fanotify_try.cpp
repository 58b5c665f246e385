// The fanotify try: a permission event raised, read and answered for real, on a file the
// probe creates in a fresh temp directory. An inode mark on that one file (never a mount
// or filesystem mark: TESTING.md's safety rules), so no other process can ever wait on it.
#include <cerrno>
#include <cstdlib>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "core/fd.h"
#include "probe/internal.h"

namespace corral::probe {
namespace {

// The scratch directory and its one file, removed on every path.
struct ScratchFile {
  std::string dir, file;
  ~ScratchFile() {
    if (!file.empty()) ::unlink(file.c_str());
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
};

// Waits up to 2 s for the open's permission event and allows it. Returns 0, or an errno.
int answer_one(int group, pid_t self, bool& seen) {
  pollfd p{.fd = group, .events = POLLIN, .revents = 0};
  const int n = ::poll(&p, 1, 2000);
  if (n <= 0) return n == 0 ? ETIMEDOUT : errno;
  alignas(fanotify_event_metadata) char buf[4096];
  const ssize_t len = ::read(group, buf, sizeof buf);
  if (len < 0) return errno;
  auto* m = reinterpret_cast<fanotify_event_metadata*>(buf);
  for (ssize_t left = len; FAN_EVENT_OK(m, left); m = FAN_EVENT_NEXT(m, left)) {
    if (m->fd < 0) continue;
    // Every permission event is answered, ours or not (none other can come: the mark is
    // on our own file).
    fanotify_response r{.fd = m->fd, .response = FAN_ALLOW};
    const bool written = ::write(group, &r, sizeof r) == sizeof r;
    ::close(m->fd);
    if (!written) return errno;
    if ((m->mask & FAN_OPEN_PERM) != 0 && m->pid == self) seen = true;
  }
  return 0;
}

} // namespace

Check try_fanotify() {
  Check c{.id = "fanotify_perm",
          .title = "fanotify permission events",
          .what = "fanotify_init(FAN_CLASS_CONTENT), an inode mark with FAN_OPEN_PERM | "
                  "FAN_OPEN_EXEC_PERM on a file in a fresh temp directory, open it, answer "
                  "the event"};
  ScratchFile s;
  char tmpl[] = "/tmp/corral-probe.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return failed(std::move(c), "mkdtemp", errno);
  s.dir = tmpl;
  {
    const Fd f(::open((s.dir + "/file").c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
    if (!f) return failed(std::move(c), "create a scratch file", errno);
    s.file = s.dir + "/file";
  }
  Fd group(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
                           O_RDONLY | O_CLOEXEC | O_LARGEFILE));
  if (!group) return failed(std::move(c), "fanotify_init", errno);
  if (::fanotify_mark(group.get(), FAN_MARK_ADD, FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM, AT_FDCWD,
                      s.file.c_str()) != 0) {
    return failed(std::move(c), "fanotify_mark", errno);
  }
  // The open blocks until answered; it runs on its own thread. Should the answer fail,
  // closing the group (group's destructor, before the join) lets the kernel allow it.
  int open_err = 0;
  std::thread opener([&] {
    const Fd f(::open(s.file.c_str(), O_RDONLY | O_CLOEXEC));
    open_err = f ? 0 : errno;
  });
  bool seen = false;
  const int err = answer_one(group.get(), ::getpid(), seen);
  if (err != 0) {
    group.reset();
    opener.join();
    return failed(std::move(c), "read the permission event", err);
  }
  opener.join();
  if (open_err != 0) return failed(std::move(c), "open the marked file after FAN_ALLOW", open_err);
  if (!seen) return failed(std::move(c), "receive FAN_OPEN_PERM for our open", ENOMSG);
  return worked(std::move(c), "FAN_OPEN_PERM raised by our open, read and allowed");
}

} // namespace corral::probe

#include "agent/fd_holder.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/held_rules.h"
#include "enforce/fanotify/fanotify_enforcer.h"
#include "enforce/fanotify/journal.h"
#include "enforce/fanotify/mounts.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"
#include "enforce/fanotify/workload_facts.h"
#include "policy/decide.h"

namespace corral::agent {
namespace {

constexpr size_t kMaxMessage = 4096;

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) {
    return Error{"socket path too long: " + path, "use a shorter --state-dir"};
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// One SOCK_SEQPACKET message with at most one fd attached.
bool send_message(int sock, const std::string& msg, int fd) {
  iovec iov{const_cast<char*>(msg.data()), msg.size()};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    h.msg_control = control;
    h.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return ::sendmsg(sock, &h, MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size());
}

// Receives one message; *fd gets an attached descriptor (or stays invalid). false on EOF.
bool receive_message(int sock, std::string* msg, Fd* fd) {
  char buf[kMaxMessage];
  iovec iov{buf, sizeof buf};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
  if (n <= 0) return false;
  msg->assign(buf, static_cast<size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(c), sizeof received);
      fd->reset(received);
    }
  }
  return true;
}

Result<Fd> connect_to(const std::string& path) {
  auto a = address(path);
  if (!a) return a.error();
  Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s) return errno_error("socket");
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&*a), sizeof *a) != 0) {
    return errno_error("connect " + path);
  }
  // The holder serves one agent at a time: a second agent on the same state dir must not
  // wait for it forever.
  const timeval bound{2, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
  return s;
}

struct Held {
  std::string meta;
  Fd fd;
  std::optional<HeldRules> rules; // loaded when the holder starts answering
};

// Serves one connected agent until it disconnects (true) or says QUIT (false).
bool serve_agent(int client, std::map<std::string, Held>& held) {
  std::string msg;
  Fd fd;
  while (receive_message(client, &msg, &fd)) {
    std::istringstream in(msg);
    std::string verb, id, meta;
    in >> verb >> id;
    std::getline(in >> std::ws, meta);
    if (verb == "PUT" && fd) {
      held[id] = Held{meta, std::move(fd), std::nullopt};
    } else if (verb == "DEL") {
      held.erase(id);
    } else if (verb == "TAKE") {
      for (const auto& [key, h] : held)
        send_message(client, "FD " + key + " " + h.meta, h.fd.get());
      send_message(client, "END", -1);
    } else if (verb == "QUIT") {
      return false;
    }
    fd.reset();
  }
  return true;
}

// The group's verdict for what cannot be judged, from its meta's "undecidable=<exec><file>"
// (a: allow, d: deny); deny when the meta does not say (fail closed).
bool undecidable_allow(const std::string& meta, bool exec) {
  const auto at = meta.find("undecidable=");
  if (at == std::string::npos) return false;
  const size_t i = at + std::string_view("undecidable=").size() + (exec ? 0 : 1);
  return i < meta.size() && meta[i] == 'a';
}

// Whether the workload a group enforces still runs: its init pid is the meta's first word.
bool alive(const Held& h) {
  const int pid = std::atoi(h.meta.c_str());
  return pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH;
}

bool is_group(const std::string& id) {
  // Not BPF links: the exec backstop's, the network enforcer's (enforce/cgroupnet).
  return !id.starts_with(enforce::FanotifyEnforcer::kBackstopId) && !id.starts_with("cgroupnet/");
}

// The holder's verdict: decide() with the group's last rules on the event's path, or the
// group's undecidable verdict when there are no rules, no path, or rules that need what
// only the agent reads (the subject, the open mode).
bool verdict(const Held& h, uint64_t mask, const std::string& path) {
  const bool exec = (mask & FAN_OPEN_EXEC_PERM) != 0;
  const auto c = exec ? policy::Category::Process : policy::Category::File;
  if (!h.rules || path.empty() || h.rules->rules->traits(c).subject_dependent())
    return undecidable_allow(h.meta, exec);
  // The holder knows neither the open mode nor the file's age: no implicit start-up set.
  policy::Access access{c, path, {}, false, true};
  access.shipped = false;
  return policy::decide(*h.rules->rules, access).allow;
}

// No agent: the events the dead agent left pending first (enforce/fanotify/journal.h),
// then the holder reads the groups itself.
size_t release_leftovers(std::map<std::string, Held>& held, const std::string& journal) {
  const auto left =
      journal.empty() ? enforce::fanotify::Leftovers{} : enforce::fanotify::Journal::read(journal);
  // Without a journal, the numbers an agent gives events stay in the low thousands.
  const int max_fd = journal.empty() ? 4096 : left.max_fd;
  static const std::vector<enforce::fanotify::LeftEvent> kNone;
  size_t n = 0;
  for (const auto& [id, h] : held) {
    if (!is_group(id)) continue;
    const auto it = left.by_workload.find(id);
    const bool sweep = undecidable_allow(h.meta, true) && undecidable_allow(h.meta, false);
    n += enforce::fanotify::answer_leftovers(
        h.fd.get(), it == left.by_workload.end() ? kNone : it->second, max_fd, sweep,
        [&h](const enforce::fanotify::LeftEvent& e) { return verdict(h, e.mask, e.path); });
  }
  return n;
}

// An exec the holder allows must pass the exec backstop too, which kills an exec of a file
// nobody approved: the holder approves it first, after the image-only rule (policy::
// Settings::image_only) the agent would apply. False: deny it.
bool approve_exec(const Held& h, int event_fd, int approvals) {
  if (!h.rules || approvals < 0 || h.rules->cgroup == 0) return true; // nothing checks
  struct stat st {};
  if (::fstat(event_fd, &st) != 0) return false;
  const uint64_t ctime = enforce::fanotify::ctime_ns(st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  if (h.rules->rules->settings().image_only && h.rules->start_ns != 0 && ctime > h.rules->start_ns)
    return false;
  const auto mount = enforce::fanotify::mount_id_of(event_fd);
  const auto dev = mount ? enforce::fanotify::mount_dev(h.rules->pid, *mount) : std::nullopt;
  if (!dev) return false;
  const enforce::ExecBackstop::FileState f{enforce::kernel_dev(*dev), st.st_ino, st.st_ctim.tv_sec,
                                           static_cast<uint32_t>(st.st_ctim.tv_nsec)};
  return enforce::ExecBackstop::approve_in(approvals, h.rules->cgroup, f,
                                           enforce::ExecBackstop::kExec)
      .ok();
}

// Reads one batch of a group's events and answers each with the group's undecidable verdict.
void answer_group(const Held& h, int approvals) {
  alignas(fanotify_event_metadata) char buf[4096];
  const ssize_t len = ::read(h.fd.get(), buf, sizeof buf);
  if (len <= 0) return;
  const auto* m = reinterpret_cast<const fanotify_event_metadata*>(buf);
  for (ssize_t rest = len; FAN_EVENT_OK(m, rest); m = FAN_EVENT_NEXT(m, rest)) {
    if (m->fd < 0) continue;
    constexpr uint64_t kPerm = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM | FAN_ACCESS_PERM;
    if ((m->mask & kPerm) != 0) {
      std::string path;
      if (h.rules) {
        const auto link = enforce::fanotify::read_link("/proc/self/fd/" + std::to_string(m->fd));
        if (link) path = enforce::fanotify::strip_root(*link, h.rules->root_prefix);
      }
      bool allow = verdict(h, m->mask, path);
      if (allow && (m->mask & FAN_OPEN_EXEC_PERM) != 0) allow = approve_exec(h, m->fd, approvals);
      enforce::fanotify::answer_pending(h.fd.get(), m->fd, allow);
    }
    ::close(m->fd);
  }
}

} // namespace

std::string held_rules_dir(const std::string& socket_path) {
  const auto slash = socket_path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : socket_path.substr(0, slash)) +
         "/held-rules";
}

int run_fd_holder(const std::string& socket_path, std::chrono::seconds hold,
                  const std::string& journal) {
  // SIGTERM/SIGINT have their default action: the process ends and the kernel closes the
  // groups, which allows what they hold (unless the agent still holds them). An agent that
  // starts a new holder does so with those signals blocked (it waits for them in sigwait),
  // and a blocked mask survives exec: unblock them, or SIGTERM would never end this one.
  sigset_t all;
  ::sigfillset(&all);
  ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  auto a = address(socket_path);
  if (!a) return std::cerr << "corrald fd-holder: " << a.error().to_string() << "\n", 1;
  Fd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  ::unlink(socket_path.c_str());
  const mode_t old = ::umask(0077);
  const bool bound = ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&*a), sizeof *a) == 0;
  ::umask(old);
  if (!bound || ::listen(listener.get(), 4) != 0) {
    std::cerr << "corrald fd-holder: cannot listen on " << socket_path << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  // Its pid, for whoever supervises (tests stop exactly the processes they started).
  const std::string pid_file = socket_path + ".pid";
  if (FILE* f = std::fopen(pid_file.c_str(), "we")) {
    std::fprintf(f, "%d\n", static_cast<int>(::getpid()));
    std::fclose(f);
  }
  const std::string rules_dir = held_rules_dir(socket_path);
  std::map<std::string, Held> held;
  bool answering = false; // no agent for `hold`: the holder answers the groups' events
  Fd approvals;           // the exec backstop's, while answering
  while (true) {
    std::vector<pollfd> p{{listener.get(), POLLIN, 0}};
    std::vector<const Held*> groups;
    for (const auto& [id, h] : held) {
      if (!answering || !is_group(id)) continue;
      p.push_back(pollfd{h.fd.get(), POLLIN, 0});
      groups.push_back(&h);
    }
    // While answering, every few seconds: groups whose workload is gone are let go, and
    // with none left the holder ends (its BPF links with it).
    constexpr int kPruneMs = 2000;
    const int n =
        ::poll(p.data(), p.size(), answering ? kPruneMs : static_cast<int>(hold.count() * 1000));
    if (n < 0) continue;
    if (n == 0 && answering) {
      std::erase_if(held, [](const auto& kv) { return is_group(kv.first) && !alive(kv.second); });
      if (std::none_of(held.begin(), held.end(), [](const auto& kv) { return is_group(kv.first); }))
        break;
      continue;
    }
    if (n == 0) {
      if (std::none_of(held.begin(), held.end(), [](const auto& kv) { return is_group(kv.first); }))
        break; // nothing to enforce
      for (auto& [id, h] : held) {
        if (is_group(id)) h.rules = load_held_rules(rules_dir, id);
      }
      if (const auto it = held.find(enforce::FanotifyEnforcer::kBackstopId); it != held.end()) {
        auto a = enforce::ExecBackstop::approvals_of(it->second.fd.get());
        if (a) approvals = std::move(*a);
      }
      const size_t left = release_leftovers(held, journal);
      const auto with_rules =
          std::count_if(held.begin(), held.end(), [](const auto& kv) { return kv.second.rules; });
      std::cerr << "corrald fd-holder: no agent for " << hold.count() << " s; answering the "
                << "events of "
                << std::count_if(held.begin(), held.end(),
                                 [](const auto& kv) { return is_group(kv.first); })
                << " kept groups (" << with_rules
                << " with their last rules, the others with their undecidable verdicts) until "
                << "an agent is back"
                << (left > 0 ? "; answered " + std::to_string(left) + " left pending" : "")
                << std::endl;
      answering = true;
      continue;
    }
    for (size_t i = 1; i < p.size(); ++i) {
      if ((p[i].revents & POLLIN) != 0) answer_group(*groups[i - 1], approvals.get());
    }
    if ((p[0].revents & POLLIN) == 0) continue;
    Fd client(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client) continue;
    if (answering)
      std::cerr << "corrald fd-holder: an agent is back; it answers again" << std::endl;
    answering = false; // the agent reads the groups; after it, a new hold time
    if (!serve_agent(client.get(), held)) break;
  }
  ::unlink(socket_path.c_str());
  ::unlink(pid_file.c_str());
  return 0;
}

FdHolderClient::FdHolderClient(Fd sock, pid_t child, std::string socket_path,
                               std::chrono::seconds hold, std::string journal)
    : sock_(std::move(sock)), child_(child), socket_path_(std::move(socket_path)),
      journal_(std::move(journal)), hold_(hold) {}

FdHolderClient::~FdHolderClient() {
  stop_watching();
}

void FdHolderClient::stop_watching() {
  quitting_ = true;
  if (stop_) {
    const uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
  }
  if (watcher_.joinable()) watcher_.join();
}

Result<std::pair<Fd, pid_t>> FdHolderClient::connect_spawning(const std::string& socket_path,
                                                              std::chrono::seconds hold,
                                                              const std::string& journal) {
  if (auto s = connect_to(socket_path)) return std::pair{std::move(*s), pid_t{-1}};
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork the fd holder");
  if (pid == 0) {
    ::setsid(); // out of the agent's process group: a signal to the agent spares it
    const std::string seconds = std::to_string(hold.count());
    ::execl("/proc/self/exe", "corrald", "fd-holder", "--socket", socket_path.c_str(),
            "--hold-seconds", seconds.c_str(), "--journal", journal.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) { // up to 2 s for the holder to listen
    if (auto s = connect_to(socket_path)) return std::pair{std::move(*s), pid};
    ::usleep(10000);
  }
  return Error{"the fd holder did not start on " + socket_path, "see the agent's log"};
}

Result<std::unique_ptr<FdHolderClient>>
FdHolderClient::connect_or_spawn(const std::string& socket_path, std::chrono::seconds hold,
                                 const std::string& journal) {
  auto c = connect_spawning(socket_path, hold, journal);
  if (!c) return c.error();
  return std::unique_ptr<FdHolderClient>(
      new FdHolderClient(std::move(c->first), c->second, socket_path, hold, journal));
}

void FdHolderClient::watch(std::function<void()> rehand,
                           std::function<void(const std::string&)> log) {
  stop_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_) {
    if (log) log("cannot watch the fd holder: eventfd: " + std::string(std::strerror(errno)));
    return;
  }
  watcher_ = std::thread(
      [this, rehand = std::move(rehand), log = std::move(log)] { watch_loop(rehand, log); });
}

void FdHolderClient::watch_loop(const std::function<void()>& rehand,
                                const std::function<void(const std::string&)>& log) {
  while (!quitting_) {
    // Only hang-ups are asked for: the holder sends nothing unasked (TAKE happens before).
    std::array<pollfd, 2> p{pollfd{sock_.get(), POLLRDHUP, 0}, pollfd{stop_.get(), POLLIN, 0}};
    if (::poll(p.data(), p.size(), -1) < 0) continue;
    if (p[1].revents != 0 || quitting_) return;
    if (p[0].revents == 0) continue;
    if (log) log("the fd holder is gone; starting a new one and handing it every group");
    if (child_ > 0) ::waitpid(child_, nullptr, WNOHANG);
    for (;;) {
      auto c = connect_spawning(socket_path_, hold_, journal_);
      if (c) {
        {
          std::lock_guard lock(mu_);
          sock_ = std::move(c->first);
          child_ = c->second;
        }
        rehand();
        break;
      }
      if (log) log("cannot start a new fd holder: " + c.error().to_string());
      pollfd s{stop_.get(), POLLIN, 0};
      if (::poll(&s, 1, 1000) != 0 || quitting_) return;
    }
  }
}

bool FdHolderClient::send(const std::string& msg, int fd) {
  std::lock_guard lock(mu_);
  return send_message(sock_.get(), msg, fd);
}

Result<std::vector<HeldFd>> FdHolderClient::take() {
  std::lock_guard lock(mu_);
  if (!send_message(sock_.get(), "TAKE", -1)) return errno_error("ask the fd holder");
  std::vector<HeldFd> out;
  std::string msg;
  Fd fd;
  while (true) {
    if (!receive_message(sock_.get(), &msg, &fd)) {
      return Error{"the fd holder does not answer (another agent on this state dir?)",
                   "run one corrald per --state-dir"};
    }
    if (msg == "END") break;
    std::istringstream in(msg);
    std::string verb;
    HeldFd h;
    in >> verb >> h.id;
    std::getline(in >> std::ws, h.meta);
    h.fd = std::move(fd);
    if (verb == "FD" && h.fd) out.push_back(std::move(h));
    fd.reset();
  }
  return out;
}

void FdHolderClient::put(const std::string& id, const std::string& meta, int fd) {
  send("PUT " + id + " " + meta, fd);
}

void FdHolderClient::drop(const std::string& id) {
  send("DEL " + id);
}

void FdHolderClient::quit() {
  quitting_ = true; // its hang-up is expected now
  send("QUIT");
}

} // namespace corral::agent

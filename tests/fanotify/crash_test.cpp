// Agent crash (issue 7, class 7): the events a dead agent had read but not answered stay
// pending on the groups its fd holder keeps; the next agent answers them before it reads.
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "enforce/fanotify/group.h"
#include "enforce/fanotify/journal.h"
#include "enforce/fanotify/proc_reader.h"
#include "enforce/fanotify/root_fs.h"
#include "fixture.h"

namespace corral::testing {
namespace {

using enforce::fanotify::Group;
using enforce::fanotify::Journal;

// The meta FanotifyEnforcer gives a group it builds (no exec backstop here), so that the
// next enforcer reuses the kept group as the agent does after a restart.
std::string meta_of(const workload::Workload& w, const policy::RuleSet& rules) {
  const auto u = [&rules](policy::Category c) {
    const auto v = policy::decide(
        rules, policy::Access{c, enforce::fanotify::kUndecidablePath, {}, false, true});
    return v.allow ? 'a' : 'd';
  };
  return std::to_string(w.init_pid) + " " + rules.fingerprint() +
         " undecidable=" + u(policy::Category::Process) + u(policy::Category::File);
}

// The dead agent's part: reads the group's events, answers the shell's own, and keeps
// the others unanswered as a killed agent does: `true` journaled with its path, `chroot`
// journaled before its path was read, `cat` read but not journaled at all. Returns how many
// it left pending.
int read_like_a_dead_agent(Group& g, Journal& j) {
  int pending = 0;
  std::vector<Fd> in_hand;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pending < 3 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{g.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    alignas(fanotify_event_metadata) char buf[4096];
    const ssize_t len = ::read(g.fd(), buf, sizeof buf);
    const auto* m = reinterpret_cast<const fanotify_event_metadata*>(buf);
    for (ssize_t rest = len; FAN_EVENT_OK(m, rest); m = FAN_EVENT_NEXT(m, rest)) {
      if (m->fd < 0) continue;
      j.saw_fd(m->fd);
      const auto link = enforce::fanotify::read_link("/proc/self/fd/" + std::to_string(m->fd));
      const std::string path = link ? enforce::fanotify::strip_root(*link, g.root_prefix()) : "";
      const size_t slot = static_cast<size_t>(pending);
      if (path == "/usr/bin/true") {
        j.record(slot, g.workload().id, m->fd, m->pid, m->mask);
        j.note_path(slot, path);
        ++pending;
      } else if (path == "/usr/sbin/chroot") {
        j.record(slot, g.workload().id, m->fd, m->pid, m->mask);
        ++pending;
      } else if (path == "/usr/bin/cat") {
        ++pending;
      } else {
        const fanotify_response r{m->fd, FAN_ALLOW};
        EXPECT_EQ(::write(g.fd(), &r, sizeof r), static_cast<ssize_t>(sizeof r));
      }
      in_hand.emplace_back(m->fd); // until the agent dies
    }
  }
  // The process dies: its fds close, its unanswered events stay pending (under numbers that
  // were distinct while it lived).
  in_hand.clear();
  return pending;
}

TEST_F(FanotifyTest, EventsADeadAgentLeftPendingAreAnsweredByTheNextAgent) {
  char dir[] = "/tmp/corral-journal-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string journal = std::string(dir) + "/events-in-hand.journal";
  const auto rules =
      compile(process_policy("allow-true-bash",
                             std::vector<std::string>{"/bin/true", "/usr/bin/bash"}, "Allow"),
              policy::Posture::Block);
  auto dead = Group::make(workload(), rules, nullptr);
  ASSERT_TRUE(dead) << dead.error().to_string();
  auto j = Journal::open(journal, nullptr);
  ASSERT_TRUE(j) << j.error().to_string();
  // The holder's copy of the group.
  Fd kept(::fcntl((*dead)->fd(), F_DUPFD_CLOEXEC, 0));

  std::atomic<bool> done{false};
  RunResult result;
  std::thread shell([&] {
    result = run({"/usr/bin/bash", "-c",
                  "/usr/bin/true & p=$!; /usr/bin/cat /data/ro.txt & q=$!; "
                  "/usr/sbin/chroot --version; c=$?; wait $p; t=$?; wait $q; "
                  "echo \"true=$t cat=$? chroot=$c\""});
    done = true;
  });
  const int pending = read_like_a_dead_agent(**dead, **j);
  EXPECT_EQ(pending, 3);
  j->reset();
  (*dead).reset(); // the agent is gone; only the holder's copy keeps the group

  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(done) << "the events were not pending: " << result.output;
  // The next agent takes the group back from the holder and releases what was left.
  start([&](auto& o) { o.journal = journal; });
  enforcer_->adopt(workload().id, std::move(kept), meta_of(workload(), *rules));
  ASSERT_TRUE(enforcer_->enforce(workload(), rules));
  const bool answered = eventually([&] { return done.load(); });
  if (!answered) enforcer_.reset(); // closing the group releases the processes
  shell.join();
  EXPECT_TRUE(answered) << "events left by the dead agent still pending";
  // true: judged by its recorded path with the rules; chroot and cat: the workload's
  // undecidable verdict (deny under an allow-list with posture block).
  EXPECT_NE(result.output.find("true=0 cat=126 chroot=126\n"), std::string::npos) << result.output;
  if (enforcer_) {
    EXPECT_EQ(counters().leftovers, 3U);
  }
  enforcer_.reset();
  std::remove(journal.c_str());
  ::rmdir(dir);
}

} // namespace
} // namespace corral::testing

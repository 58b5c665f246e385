#include "enforce/fanotify/prover.h"

#include "core/strings.h"
#include "enforce/fanotify/alert_builder.h"
#include "enforce/fanotify/canary.h"

namespace corral::enforce::fanotify {
namespace {

// How long the first canary may take to block in its permission event before the group is
// read anyway (it is then still proven, only a cache entry could hide it).
constexpr auto kBlockBound = std::chrono::milliseconds(100);
constexpr auto kPoll = std::chrono::milliseconds(2);

} // namespace

struct Prover::Proof {
  std::weak_ptr<Group> group;
  const Group* key = nullptr; // identity only
  workload::Workload workload;
  std::string root_prefix;
  std::vector<std::string> targets;
  size_t next = 0;                // the next target to try
  std::unique_ptr<Canary> canary; // prover thread only
  std::chrono::steady_clock::time_point deadline;
  std::atomic<bool> seen{false};   // the group received the canary's event
  bool cancelled = false;          // under mu_: forgotten, or replaced by a newer proof
  std::vector<std::string> misses; // what each failed canary did
};

Prover::Prover(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { run(); });
}

Prover::~Prover() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Prover::begin(const std::shared_ptr<Group>& g) {
  auto p = std::make_shared<Proof>();
  p->group = g;
  p->key = g.get();
  p->workload = g->workload();
  p->root_prefix = g->root_prefix();
  std::unique_lock lock(mu_);
  if (auto old = proofs_.find(p->workload.id); old != proofs_.end()) old->second->cancelled = true;
  proofs_[p->workload.id] = p;
  results_[p->workload.id] = Enforcement{Enforcement::State::Proving, ""};
  requests_.push_back(p);
  cv_.notify_all();
}

bool Prover::on_event(const Group& g, int tid, bool& allow) {
  if (live_canaries_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(mu_);
  const auto it = canaries_.find(tid);
  if (it == canaries_.end()) return false;
  Proof& p = *it->second;
  allow = p.key != &g;
  if (!allow) {
    p.seen = true;
    cv_.notify_all();
  }
  return true;
}

void Prover::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  if (auto it = proofs_.find(id); it != proofs_.end()) {
    it->second->cancelled = true;
    proofs_.erase(it);
  }
  results_.erase(id);
  cv_.notify_all();
}

Enforcement Prover::enforcement(const std::string& id) const {
  std::lock_guard lock(mu_);
  const auto it = results_.find(id);
  return it == results_.end() ? Enforcement{} : it->second;
}

void Prover::run() {
  std::vector<std::shared_ptr<Proof>> active; // prover thread only
  std::unique_lock lock(mu_);
  while (!stop_) {
    auto fresh = std::move(requests_);
    requests_.clear();
    lock.unlock();
    for (auto& p : fresh) {
      start(p, true);
      if (auto g = p->group.lock(); g && options_.on_started) options_.on_started(g);
      active.push_back(std::move(p));
    }
    std::erase_if(active, [&](const std::shared_ptr<Proof>& p) { return check(p); });
    lock.lock();
    if (active.empty()) {
      cv_.wait(lock, [&] { return stop_ || !requests_.empty(); });
    } else {
      cv_.wait_for(lock, kPoll, [&] { return stop_ || !requests_.empty(); });
    }
  }
  auto unstarted = std::move(requests_);
  lock.unlock();
  for (auto& p : unstarted) { // never left unread: their tasks would wait for ever
    if (auto g = p->group.lock(); g && options_.on_started) options_.on_started(g);
  }
  for (auto& p : active) { // killed and reaped by ~Canary, here on the thread that made them
    std::lock_guard l(mu_);
    if (p->canary) canaries_.erase(p->canary->pid());
    p->canary.reset();
  }
  live_canaries_ = 0;
}

void Prover::start(const std::shared_ptr<Proof>& p, bool first) {
  if (first) p->targets = canary_targets(p->workload.init_pid, p->root_prefix);
  while (p->next < p->targets.size()) {
    const std::string& path = p->targets[p->next++];
    auto c = Canary::spawn(p->workload.init_pid, path);
    if (!c) {
      p->misses.push_back(path + ": " + c.error().to_string());
      continue;
    }
    p->canary = std::move(*c);
    {
      // Listed before it may exec: its event is recognised whenever it is read.
      std::lock_guard lock(mu_);
      canaries_[p->canary->pid()] = p;
      ++live_canaries_;
    }
    p->canary->release();
    p->deadline = std::chrono::steady_clock::now() + options_.timeout;
    if (first) (void)p->canary->wait_until_blocked(kBlockBound);
    return;
  }
}

bool Prover::check(const std::shared_ptr<Proof>& proof) {
  Proof& p = *proof;
  bool cancelled = false;
  {
    std::lock_guard lock(mu_);
    cancelled = p.cancelled;
  }
  const auto drop_canary = [&] {
    if (!p.canary) return;
    {
      std::lock_guard lock(mu_);
      canaries_.erase(p.canary->pid());
      --live_canaries_;
    }
    p.canary.reset(); // killed if it still runs, and reaped
  };
  if (cancelled) {
    drop_canary();
    return true;
  }
  if (p.seen) {
    drop_canary();
    settle(p, true, "");
    return true;
  }
  if (p.canary) {
    const bool ended = p.canary->ended();
    if (!ended && std::chrono::steady_clock::now() < p.deadline) return false;
    if (p.seen) return check(proof); // the event came just before it ended
    p.misses.push_back(
        p.canary->path() + ": " +
        (ended ? p.canary->outcome()
               : "no permission event within " + std::to_string(options_.timeout.count()) + " ms"));
    drop_canary();
  }
  if (p.next < p.targets.size()) {
    start(proof, false);
    if (p.canary) return false;
  }
  settle(p, false,
         p.misses.empty()
             ? std::string("no executable file in its root to prove it with (its init's "
                           "program, /bin/sh, ...)")
             : "the canary exec through its root raised no event on its group (" +
                   join(p.misses, "; ") + "): its marks do not see the workload's accesses");
  return true;
}

void Prover::settle(Proof& p, bool enforced, const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (p.cancelled) return;
    proofs_.erase(p.workload.id);
    results_[p.workload.id] = Enforcement{
        enforced ? Enforcement::State::Enforced : Enforcement::State::NotEnforced, reason};
  }
  if (enforced) return;
  if (options_.log) options_.log("fanotify: " + p.workload.id + " is NOT ENFORCED: " + reason);
  alert(p, reason);
}

void Prover::alert(const Proof& p, const std::string& reason) {
  if (!options_.sink) return;
  const std::string resource = p.targets.empty() ? "/" : p.targets.front();
  auto a = make_alert(p.workload, Actor{}, policy::Verdict{},
                      AlertEvent{policy::Category::Process, resource, 0, true});
  a.policy_name = "corral-enforcement-proof";
  a.severity = "10";
  a.tags = "CORRAL_NOT_ENFORCED";
  a.atags = {"CORRAL_NOT_ENFORCED"};
  a.message = "workload NOT ENFORCED: " + reason;
  a.data = "canary=exec";
  a.action = "Block";
  a.result = "NOT ENFORCED";
  options_.sink(std::move(a));
}

} // namespace corral::enforce::fanotify

// Reflector under the stand-in's faults: closed watches, compaction (410), expired continue
// tokens, 500/429 bursts, an outage, and stop() while it waits.
#include <map>

#include "standin.h"

namespace corral::kube::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class KubeReflectorFaultsTest : public StandinTest {
protected:
  // Polls `pred` every 10 ms for up to `timeout`.
  static bool eventually(const std::function<bool()>& pred,
                         milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return true;
  }
  bool watch_open() { return api->state()["watches"].get<int>() >= 1; }
  // The requests the stand-in logged whose path contains `part`.
  std::vector<json> requests_with(const std::string& part) {
    std::vector<json> out;
    for (const auto& q : api->requests())
      if (q["path"].get<std::string>().find(part) != std::string::npos) out.push_back(q);
    return out;
  }
  void closed_watches_resume(bool hard);
  Recorder rec;
};

// A closed watch (with or without its final chunk) is resumed from the last resourceVersion:
// no relist, and every change made around the reconnection arrives exactly once.
void KubeReflectorFaultsTest::closed_watches_resume(bool hard) {
  for (int i = 0; i < 3; ++i) api->apply(configmap("cw", "initial-" + std::to_string(i)));
  auto r = start(rec.options("/api/v1/namespaces/cw/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  ASSERT_TRUE(eventually([&] { return watch_open(); }));
  for (int round = 0; round < 3; ++round) {
    // The stand-in logs a watch once it has ended and is unregistered: with `round` logged
    // and one open, the open one is the resumed watch.
    ASSERT_TRUE(eventually([&] {
      return requests_with("watch=1").size() == static_cast<size_t>(round) && watch_open();
    })) << "round "
        << round;
    api->admin_post("close-watches", {{"hard", hard}});
    for (int i = 0; i < 5; ++i)
      api->apply(configmap("cw", "r" + std::to_string(round) + "-" + std::to_string(i)));
  }
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() >= 15; })) << rec.event_count();
  std::this_thread::sleep_for(milliseconds(300)); // room for a duplicate to show up
  std::lock_guard lock(rec.mu);
  EXPECT_EQ(rec.events.size(), 15U);
  std::map<std::string, int> seen;
  for (const auto& e : rec.events) {
    EXPECT_EQ(e.type, EventType::Added);
    ++seen[e.name];
  }
  EXPECT_EQ(seen.size(), 15U);
  for (const auto& [name, n] : seen) EXPECT_EQ(n, 1) << name;
  EXPECT_EQ(rec.replaces.size(), 1U);
  const auto st = r->status();
  EXPECT_EQ(st.relists, 0U);
  EXPECT_GE(st.watch_restarts, 3U);
  EXPECT_TRUE(st.synced);
  EXPECT_EQ(st.resource_version, rec.events.back().rv);
}

TEST_F(KubeReflectorFaultsTest, CleanlyClosedWatchesResumeWithoutRelist) {
  closed_watches_resume(false);
}

TEST_F(KubeReflectorFaultsTest, HardClosedWatchesResumeWithoutRelist) {
  closed_watches_resume(true);
  // The drop was logged (the first of a series), and the reflector is healthy again.
  std::lock_guard lock(rec.mu);
  bool dropped = false;
  for (const auto& l : rec.logs) dropped |= l.find("watch dropped") != std::string::npos;
  EXPECT_TRUE(dropped);
}

TEST_F(KubeReflectorFaultsTest, ExpiredResourceVersionRelists) {
  api->apply(configmap("ex", "keep"));
  api->apply(configmap("ex", "gone"));
  auto r = start(rec.options("/api/v1/namespaces/ex/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  ASSERT_TRUE(eventually([&] { return watch_open(); }));
  EXPECT_EQ(names(rec.replaces[0]), (std::vector<std::string>{"gone", "keep"}));
  // Keep the reflector from watching (500s on every watch) while its history is compacted.
  api->admin_post("faults", {{"failNext", 100000}, {"code", 500}, {"pathContains", "watch=1"}});
  api->admin_post("close-watches");
  api->remove_configmap("ex", "gone");
  api->apply(configmap("ex", "fresh"));
  api->admin_post("compact");
  ASSERT_TRUE(eventually([&] { return requests_with("watch=1").size() >= 3; }));
  auto st = r->status();
  EXPECT_FALSE(st.connected);
  EXPECT_NE(st.last_error.find("HTTP 500 InternalError"), std::string::npos) << st.last_error;
  api->admin_post("faults", json::object());
  // The watch from the old resourceVersion gets 410: a relist, whose replace has the changes.
  ASSERT_TRUE(rec.wait([&] { return rec.replaces.size() >= 2; }));
  {
    std::lock_guard lock(rec.mu);
    EXPECT_EQ(names(rec.replaces[1]), (std::vector<std::string>{"fresh", "keep"}));
    EXPECT_TRUE(rec.events.empty()); // the missed changes come with the list, not as events
  }
  ASSERT_TRUE(eventually([&] { return r->status().connected; }));
  st = r->status();
  EXPECT_EQ(st.relists, 1U);
  EXPECT_EQ(st.last_error, "");
  // Watching again from the new list's resourceVersion.
  api->apply(configmap("ex", "live"));
  ASSERT_TRUE(rec.wait([&] { return !rec.events.empty(); }));
  EXPECT_EQ(rec.events[0].name, "live");
}

TEST_F(KubeReflectorFaultsTest, ExpiredContinueTokenRestartsTheList) {
  for (const char* n : {"a", "b", "c"}) api->apply(configmap("ct", n));
  // Every request waits 600 ms: time to change and compact between two pages.
  api->admin_post("faults", {{"delayMs", 600}});
  auto o = rec.options("/api/v1/namespaces/ct/configmaps");
  o.page_size = 1;
  auto r = start(o);
  ASSERT_TRUE(eventually([&] { return !requests_with("limit=1").empty(); }));
  api->apply(configmap("ct", "d"));
  api->admin_post("compact");
  ASSERT_TRUE(eventually([&] {
    for (const auto& q : requests_with("continue="))
      if (q["code"] == 410) return true;
    return false;
  }));
  api->admin_post("faults", json::object());
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  std::lock_guard lock(rec.mu);
  ASSERT_EQ(rec.replaces.size(), 1U); // never the partial first attempt
  EXPECT_EQ(names(rec.replaces[0]), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(r->status().relists, 1U);
}

TEST_F(KubeReflectorFaultsTest, ServerErrorsOnListAreRetried) {
  api->apply(configmap("se", "x"));
  api->admin_post("faults", {{"failNext", 3}, {"code", 500}, {"pathContains", "limit="}});
  auto r = start(rec.options("/api/v1/namespaces/se/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  EXPECT_EQ(names(rec.replaces[0]), std::vector<std::string>{"x"});
  // The stand-in logs a request after answering it.
  ASSERT_TRUE(eventually([&] { return requests_with("limit=").size() >= 4; }));
  const auto lists = requests_with("limit=");
  ASSERT_EQ(lists.size(), 4U);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lists[i]["code"], 500);
  EXPECT_EQ(lists[3]["code"], 200);
  // Backoff 100, 200, 400 ms between them.
  const double spread = lists[3]["time"].get<double>() - lists[0]["time"].get<double>();
  EXPECT_GE(spread, 0.6);
  EXPECT_LT(spread, 2.5);
  ASSERT_TRUE(eventually([&] { return r->status().connected; }));
  EXPECT_EQ(r->status().relists, 3U);
  std::lock_guard lock(rec.mu);
  int failure_lines = 0;
  for (const auto& l : rec.logs) failure_lines += l.find("HTTP 500") != std::string::npos;
  EXPECT_EQ(failure_lines, 1); // the first of a series; not one per retry
}

TEST_F(KubeReflectorFaultsTest, TooManyRequestsHonoursRetryAfter) {
  auto r = start(rec.options("/api/v1/namespaces/tm/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  ASSERT_TRUE(eventually([&] { return watch_open(); }));
  api->admin_post(
      "faults",
      {{"failNext", 2}, {"code", 429}, {"retryAfterSeconds", 1}, {"pathContains", "watch=1"}});
  const auto t0 = Clock::now();
  api->admin_post("close-watches");
  api->apply(configmap("tm", "during"));
  ASSERT_TRUE(rec.wait([&] { return !rec.events.empty(); }));
  const auto took = Clock::now() - t0;
  // Two 429s, each answered by waiting Retry-After: 1 s, before the watch that succeeds.
  EXPECT_GE(took, milliseconds(1800));
  EXPECT_LT(took, milliseconds(4000));
  const auto throttled = requests_with("watch=1");
  int n429 = 0;
  for (const auto& q : throttled) n429 += q["code"] == 429;
  EXPECT_EQ(n429, 2);
  EXPECT_EQ(r->status().relists, 0U);
  EXPECT_EQ(rec.events[0].name, "during");
}

TEST_F(KubeReflectorFaultsTest, StopDuringRetryAfterIsPrompt) {
  api->admin_post(
      "faults",
      {{"failNext", 1}, {"code", 429}, {"retryAfterSeconds", 30}, {"pathContains", "limit="}});
  auto r = start(rec.options("/api/v1/namespaces/sr/configmaps"));
  ASSERT_TRUE(eventually([&] { return !requests_with("limit=").empty(); }));
  ASSERT_TRUE(eventually([&] { return !r->status().last_error.empty(); }));
  EXPECT_NE(r->status().last_error.find("429"), std::string::npos);
  const auto t0 = Clock::now();
  r->stop();
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  EXPECT_EQ(rec.replace_count(), 0U);
  EXPECT_FALSE(r->status().synced);
}

TEST_F(KubeReflectorFaultsTest, ChangeAfterOutageSeenWithin3s) {
  api->apply(configmap("out", "before"));
  auto r = start(rec.options("/api/v1/namespaces/out/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  ASSERT_TRUE(eventually([&] { return watch_open(); }));
  const size_t logs_before = [&] {
    std::lock_guard lock(rec.mu);
    return rec.logs.size();
  }();
  api->admin_post("outage", {{"seconds", 5}});
  const auto up = [&] {
    auto q = api->admin().request("GET", "/_standin/state");
    return q.ok() && q->status == 200;
  };
  ASSERT_TRUE(eventually([&] { return !up(); }, std::chrono::seconds(2)));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto st = r->status();
  EXPECT_FALSE(st.connected);
  EXPECT_FALSE(st.last_error.empty());
  ASSERT_TRUE(eventually(up, std::chrono::seconds(10)));
  const auto back = Clock::now();
  api->apply(configmap("out", "after"));
  ASSERT_TRUE(rec.wait([&] { return !rec.events.empty(); }, std::chrono::seconds(5)));
  const auto seen = Clock::now() - back;
  EXPECT_LT(seen, milliseconds(3000));
  std::cout << "change after the outage seen in "
            << std::chrono::duration_cast<milliseconds>(seen).count() << " ms\n";
  ASSERT_TRUE(eventually([&] { return r->status().connected; }));
  st = r->status();
  EXPECT_EQ(st.last_error, "");
  EXPECT_EQ(st.relists, 0U); // the history survived: resumed from the resourceVersion
  EXPECT_GE(st.watch_restarts, 2U);
  std::lock_guard lock(rec.mu);
  EXPECT_EQ(rec.events[0].name, "after");
  EXPECT_EQ(rec.replaces.size(), 1U);
  // About 8 retries in 5 s, logged as a few lines: the drop, maybe a 30 s reminder, the recovery.
  EXPECT_LE(rec.logs.size() - logs_before, 3U);
  for (size_t i = logs_before; i < rec.logs.size(); ++i) std::cout << rec.logs[i] << "\n";
}

} // namespace
} // namespace corral::kube::test

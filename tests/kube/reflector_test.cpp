// Reflector: paginated lists, watch events, selectors, bookmarks, stop, against the stand-in.
#include <set>

#include "standin.h"

namespace corral::kube::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class KubeReflectorTest : public StandinTest {
protected:
  // Waits until the reflector's watch is open (the stand-in counts it).
  void wait_for_watch(size_t n = 1) {
    for (int i = 0; i < 500; ++i) {
      if (api->state()["watches"].get<size_t>() >= n) return;
      std::this_thread::sleep_for(milliseconds(10));
    }
    ADD_FAILURE() << "no watch opened";
  }
  Recorder rec;
};

TEST_F(KubeReflectorTest, PaginatedListDeliveredWhole) {
  json list = {{"kind", "List"}, {"items", json::array()}};
  for (int i = 0; i < 1200; ++i)
    list["items"].push_back(configmap("bulk", "cm-" + std::to_string(i)));
  api->apply(list);
  auto o = rec.options("/api/v1/namespaces/bulk/configmaps");
  o.page_size = 500;
  auto r = start(o);
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  {
    std::lock_guard lock(rec.mu);
    ASSERT_EQ(rec.replaces.size(), 1U);
    const auto& items = rec.replaces[0];
    ASSERT_EQ(items.size(), 1200U);
    std::set<std::string> unique;
    for (const auto& i : items) unique.insert(i["metadata"]["name"].get<std::string>());
    EXPECT_EQ(unique.size(), 1200U);
    EXPECT_EQ(items[0]["kind"], "ConfigMap"); // filled in from the list's kind
    EXPECT_EQ(items[0]["apiVersion"], "v1");
  }
  // Three pages of at most 500: the first without a continue token, two with. (The stand-in
  // logs a request just after answering it.)
  int pages = 0, continued = 0;
  for (int i = 0; i < 200 && pages < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(milliseconds(10));
    pages = continued = 0;
    for (const auto& q : api->requests()) {
      const std::string path = q["path"];
      if (q["verb"] != "list") continue;
      ++pages;
      EXPECT_NE(path.find("limit=500"), std::string::npos) << path;
      if (path.find("continue=") != std::string::npos) ++continued;
    }
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(continued, 2);
  for (int i = 0; i < 100 && !r->status().synced; ++i)
    std::this_thread::sleep_for(milliseconds(10)); // set once replace() has returned
  const auto st = r->status();
  EXPECT_TRUE(st.synced);
  EXPECT_EQ(st.relists, 0U);
  EXPECT_EQ(st.resource_version, std::to_string(api->state()["resourceVersion"].get<int>()));
  EXPECT_FALSE(rec.wait([&] { return rec.replaces.size() > 1; }, milliseconds(300)));
}

TEST_F(KubeReflectorTest, WatchEventsInOrder) {
  auto r = start(rec.options("/api/v1/namespaces/w/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  EXPECT_TRUE(rec.replaces[0].empty());
  EXPECT_FALSE(r->status().resource_version.empty()); // the empty list's
  wait_for_watch();
  api->apply(configmap("w", "a", "1"));
  api->apply(configmap("w", "a", "2"));
  api->apply(configmap("w", "b"));
  api->remove_configmap("w", "a");
  ASSERT_TRUE(rec.wait([&] { return rec.events.size() >= 4; }));
  // The resourceVersion is taken once the consumer has the event.
  for (int i = 0; i < 100 && r->status().resource_version != rec.events.back().rv; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  std::lock_guard lock(rec.mu);
  ASSERT_EQ(rec.events.size(), 4U);
  EXPECT_EQ(rec.events[0].type, EventType::Added);
  EXPECT_EQ(rec.events[0].name, "a");
  EXPECT_EQ(rec.events[1].type, EventType::Modified);
  EXPECT_EQ(rec.events[1].object["data"]["key"], "2");
  EXPECT_EQ(rec.events[2].type, EventType::Added);
  EXPECT_EQ(rec.events[2].name, "b");
  EXPECT_EQ(rec.events[3].type, EventType::Deleted);
  EXPECT_EQ(rec.events[3].name, "a");
  for (size_t i = 1; i < 4; ++i)
    EXPECT_LT(std::stoll(rec.events[i - 1].rv), std::stoll(rec.events[i].rv));
  const auto st = r->status();
  EXPECT_TRUE(st.synced);
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.resource_version, rec.events[3].rv);
  EXPECT_EQ(st.last_error, "");
  EXPECT_EQ(st.watch_restarts, 0U);
  EXPECT_EQ(st.relists, 0U);
  EXPECT_GT(st.last_sync_unix, 0);
}

TEST_F(KubeReflectorTest, FieldSelectorOnListAndWatch) {
  api->apply(pod("p", "on-a", "node-a"));
  api->apply(pod("p", "on-b", "node-b"));
  auto o = rec.options("/api/v1/pods");
  o.field_selector = "spec.nodeName=node-a";
  auto r = start(o);
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  EXPECT_EQ(names(rec.replaces[0]), std::vector<std::string>{"on-a"});
  wait_for_watch();
  api->apply(pod("p", "also-b", "node-b"));
  api->apply(pod("p", "also-a", "node-a"));
  ASSERT_TRUE(rec.wait([&] { return !rec.events.empty(); }));
  std::this_thread::sleep_for(milliseconds(200));
  std::lock_guard lock(rec.mu);
  ASSERT_EQ(rec.events.size(), 1U);
  EXPECT_EQ(rec.events[0].name, "also-a");
  bool encoded = false;
  for (const auto& q : api->requests())
    encoded |= q["path"].get<std::string>().find("fieldSelector=spec.nodeName%3Dnode-a") !=
               std::string::npos;
  EXPECT_TRUE(encoded);
}

TEST_F(KubeReflectorTest, BookmarksAdvanceResourceVersion) {
  auto r = start(rec.options("/api/v1/namespaces/quiet/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  wait_for_watch();
  const std::string before = r->status().resource_version;
  // Changes elsewhere move the server's resourceVersion, not this collection.
  api->apply(configmap("elsewhere", "x"));
  api->apply(configmap("elsewhere", "y"));
  const std::string now = std::to_string(api->state()["resourceVersion"].get<int>());
  ASSERT_NE(before, now);
  api->admin_post("bookmark");
  bool advanced = false;
  for (int i = 0; i < 200 && !advanced; ++i) {
    advanced = r->status().resource_version == now;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(advanced) << r->status().resource_version << " != " << now;
  EXPECT_EQ(rec.event_count(), 0U);
  // A watch resumed after the bookmark starts from its resourceVersion.
  api->admin_post("close-watches");
  wait_for_watch();
  api->apply(configmap("quiet", "late"));
  ASSERT_TRUE(rec.wait([&] { return !rec.events.empty(); }));
  // The stand-in logs a watch when it ends: end it, then look for its resourceVersion.
  api->admin_post("close-watches");
  bool from_bookmark = false;
  for (int i = 0; i < 100 && !from_bookmark; ++i) {
    for (const auto& q : api->requests())
      from_bookmark |=
          q["path"].get<std::string>().find("resourceVersion=" + now + "&") != std::string::npos;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(from_bookmark);
  EXPECT_EQ(r->status().relists, 0U);
}

TEST_F(KubeReflectorTest, StopEndsAnOpenWatchPromptly) {
  auto r = start(rec.options("/api/v1/namespaces/s/configmaps"));
  ASSERT_TRUE(rec.wait([&] { return !rec.replaces.empty(); }));
  wait_for_watch();
  const auto t0 = Clock::now();
  r->stop();
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  api->apply(configmap("s", "after-stop"));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(rec.event_count(), 0U);
  r->stop(); // idempotent
}

TEST_F(KubeReflectorTest, BadOptionsAreRefused) {
  auto o = rec.options("api/v1/pods");
  EXPECT_FALSE(Reflector::start(*client, o).ok());
  o.path = "/api/v1/pods?watch=1";
  EXPECT_FALSE(Reflector::start(*client, o).ok());
  o.path = "/api/v1/pods";
  o.replace = nullptr;
  EXPECT_FALSE(Reflector::start(*client, o).ok());
}

} // namespace
} // namespace corral::kube::test

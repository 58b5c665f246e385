// Client: requests, streams, tokens, cancellation, against the stand-in over TLS.
#include <atomic>
#include <cerrno>
#include <fstream>
#include <future>
#include <thread>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "standin.h"

namespace corral::kube::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class KubeClientTest : public StandinTest {
protected:
  long status_of(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& type = "application/json") {
    auto r = client->request(method, path, body, type);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r->status : -1;
  }
};

TEST_F(KubeClientTest, VerbsAndStatuses) {
  const std::string cms = "/api/v1/namespaces/default/configmaps";
  EXPECT_EQ(status_of("POST", cms, configmap("default", "a").dump()), 201);
  EXPECT_EQ(status_of("POST", cms, configmap("default", "a").dump()), 409); // AlreadyExists
  EXPECT_EQ(status_of("PATCH", cms + "/a", R"({"data":{"key":"patched"}})",
                      "application/merge-patch+json"),
            200);
  auto got = client->request("GET", cms + "/a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(json::parse(got->body)["data"]["key"], "patched");
  EXPECT_EQ(got->retry_after_s, -1);
  EXPECT_EQ(status_of("DELETE", cms + "/a"), 200);
  auto gone = client->request("GET", cms + "/a");
  ASSERT_TRUE(gone.ok()); // a 404 is a Response, not an Error
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(json::parse(gone->body)["reason"], "NotFound");
}

TEST_F(KubeClientTest, RefusedConnectionIsAnError) {
  // A port nothing listens on: bind one, note it, close it.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  Config c = api->in_cluster();
  c.server = "https://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto dead = Client::make(c);
  ASSERT_TRUE(dead.ok());
  auto r = (*dead)->request("GET", "/api");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, ECONNREFUSED) << r.error().to_string();
  EXPECT_NE(r.error().message.find("GET " + c.server + "/api"), std::string::npos);
  EXPECT_NE(r.error().hint.find("reachable"), std::string::npos);
}

TEST_F(KubeClientTest, RotatedTokenIsReadAgain) {
  EXPECT_EQ(status_of("GET", "/api/v1/namespaces"), 200);
  const std::string token_file = api->state_dir() + "/serviceaccount/token";
  std::ifstream f0(token_file);
  std::string old_token;
  f0 >> old_token;
  api->admin_post("rotate-token", {{"revokeOld", true}});
  std::ifstream f1(token_file);
  std::string new_token;
  f1 >> new_token;
  ASSERT_NE(old_token, new_token);
  EXPECT_EQ(status_of("GET", "/api/v1/namespaces"), 200);
  // The stand-in saw the new token only: no 401 was needed.
  for (const auto& r : api->requests()) EXPECT_NE(r["code"], 401) << r.dump();
}

TEST_F(KubeClientTest, TokenChangedWithSameStampIsRetriedAfter401) {
  EXPECT_EQ(status_of("GET", "/api/v1/namespaces"), 200);
  // A rewrite the stat check cannot see: same inode, size and mtime. The server revokes the
  // old token, so the first try gets a 401; the client reads the file again and retries.
  const std::string token_file = api->state_dir() + "/serviceaccount/token";
  struct stat before {};
  ASSERT_EQ(stat(token_file.c_str(), &before), 0);
  const std::string fresh(static_cast<size_t>(before.st_size), 'f');
  {
    std::ofstream csv(api->state_dir() + "/tokens.csv", std::ios::app);
    csv << fresh << ",system:serviceaccount:kube-system:agent,u2,\"system:serviceaccounts\"\n";
  }
  std::ifstream in(token_file);
  std::string old_token;
  in >> old_token;
  {
    std::fstream out(token_file, std::ios::in | std::ios::out); // in place: same inode
    out << fresh;
  }
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, token_file.c_str(), times, 0), 0);
  // Revoke the old token in tokens.csv (the stand-in re-reads it when it changes).
  std::ifstream csv_in(api->state_dir() + "/tokens.csv");
  std::string csv, line;
  while (std::getline(csv_in, line))
    if (!line.starts_with(old_token)) csv += line + "\n";
  std::ofstream(api->state_dir() + "/tokens.csv") << csv;

  EXPECT_EQ(status_of("GET", "/api/v1/namespaces"), 200);
  const json reqs = api->requests();
  ASSERT_GE(reqs.size(), 2U);
  EXPECT_EQ(reqs[reqs.size() - 2]["code"], 401);
  EXPECT_EQ(reqs[reqs.size() - 1]["code"], 200);
}

TEST_F(KubeClientTest, StreamDeliversLinesThenEnds) {
  api->apply(configmap("default", "one"));
  api->apply(configmap("default", "two"));
  std::vector<std::string> lines;
  const auto start = Clock::now();
  long opened = 0;
  auto r = client->stream(
      "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
      [&](std::string_view l) {
        lines.emplace_back(l);
        return true;
      },
      {}, [&](long status) { opened = status; });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(opened, 200);
  EXPECT_GE(Clock::now() - start, milliseconds(900)); // the server's timeoutSeconds
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(json::parse(lines[0])["type"], "ADDED");
  EXPECT_EQ(json::parse(lines[1])["object"]["metadata"]["name"], "two");

  // on_line says stop: the stream ends at once, as a Response.
  size_t seen = 0;
  auto stopped = client->stream("/api/v1/namespaces/default/configmaps?watch=1", [&](auto) {
    ++seen;
    return false;
  });
  ASSERT_TRUE(stopped.ok()) << stopped.error().to_string();
  EXPECT_EQ(seen, 1U);

  // A non-2xx answer is a Response with the Status body; no line is delivered.
  auto missing = client->stream("/apis/nope.example.com/v1/things?watch=1", [&](auto) {
    ADD_FAILURE() << "a line of a 404";
    return true;
  });
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(KubeClientTest, ClosedWatches) {
  const auto watch_until_closed = [&](bool hard) {
    std::promise<void> open;
    auto done = std::async(std::launch::async, [&] {
      return client->stream(
          "/api/v1/namespaces/default/configmaps?watch=1", [](auto) { return true; }, {},
          [&](long) { open.set_value(); });
    });
    EXPECT_EQ(open.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
    api->admin_post("close-watches", {{"hard", hard}});
    EXPECT_EQ(done.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    return done.get();
  };
  auto clean = watch_until_closed(false);
  ASSERT_TRUE(clean.ok()) << clean.error().to_string();
  EXPECT_EQ(clean->status, 200);
  // Closed mid-stream without the final chunk: curl's CURLE_PARTIAL_FILE, an Error.
  auto hard = watch_until_closed(true);
  ASSERT_FALSE(hard.ok());
  EXPECT_NE(hard.error().message.find("outstanding read data"), std::string::npos)
      << hard.error().message;
}

TEST_F(KubeClientTest, RetryAfterIsReported) {
  api->admin_post("faults", {{"failNext", 1}, {"code", 429}, {"retryAfterSeconds", 7}});
  auto r = client->request("GET", "/api/v1/pods");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->retry_after_s, 7);
  api->admin_post("faults", {{"failNext", 1}, {"code", 500}});
  auto e = client->request("GET", "/api/v1/pods");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->status, 500);
  EXPECT_EQ(e->retry_after_s, -1);
}

TEST_F(KubeClientTest, StopTokenEndsOneCallCancelEndsAll) {
  const std::string watch = "/api/v1/namespaces/default/configmaps?watch=1";
  std::stop_source one;
  std::atomic<int> open{0};
  auto first = std::async(std::launch::async, [&] {
    return client->stream(
        watch, [](auto) { return true; }, one.get_token(), [&](long) { ++open; });
  });
  auto second = std::async(std::launch::async, [&] {
    return client->stream(
        watch, [](auto) { return true; }, {}, [&](long) { ++open; });
  });
  for (int i = 0; i < 500 && open < 2; ++i) std::this_thread::sleep_for(milliseconds(10));
  ASSERT_EQ(open, 2);

  auto t0 = Clock::now();
  one.request_stop();
  ASSERT_EQ(first.wait_for(std::chrono::seconds(1)), std::future_status::ready);
  EXPECT_LT(Clock::now() - t0, milliseconds(500));
  auto r1 = first.get();
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().err, ECANCELED);
  EXPECT_EQ(second.wait_for(milliseconds(200)), std::future_status::timeout); // still open

  t0 = Clock::now();
  client->cancel();
  ASSERT_EQ(second.wait_for(std::chrono::seconds(1)), std::future_status::ready);
  EXPECT_LT(Clock::now() - t0, milliseconds(500));
  EXPECT_EQ(second.get().error().err, ECANCELED);
  auto later = client->request("GET", "/api");
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().err, ECANCELED);
}

TEST_F(KubeClientTest, ConcurrentRequests) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto r = client->request("GET", "/api/v1/namespaces/default");
        if (r && r->status == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 80);
}

} // namespace
} // namespace corral::kube::test

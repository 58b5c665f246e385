// Unit tests of the state dir's hash-chained history (agent/history.h): the chain as written
// and read back, and what verify_history() says about each way of tampering with it.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "agent/history.h"

namespace corral {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPolicyFile = "policies/KubeArmorPolicy.default.x.yaml";
constexpr const char* kNamespaceFile = "namespaces/default.json";

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

std::string joined(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += p + "\n";
  return out;
}

struct HistoryTest : ::testing::Test {
  std::string dir;
  std::unique_ptr<agent::History> history;
  void SetUp() override {
    char tmpl[] = "/tmp/corral-history-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { fs::remove_all(dir); }

  [[nodiscard]] fs::path history_path() const { return fs::path(dir) / "history.jsonl"; }

  // Writes (or, for Deleted, removes) the stored file, then records the change.
  agent::HistoryEntry change(agent::History& h, const std::string& action, const std::string& file,
                             const std::string& object, const std::string& content = {}) const {
    agent::HistoryEntry e;
    e.time = "2024-05-01T10:00:00.000000Z";
    e.source = "local uid 0 (corral apply)";
    e.action = action;
    e.object = object;
    e.namespace_name = "default";
    e.file = file;
    e.summary = action + " " + object;
    if (action == "Deleted") {
      fs::remove(fs::path(dir) / file);
    } else {
      write_text(fs::path(dir) / file, content);
      e.digest = agent::sha256_hex(content);
    }
    auto written = h.append(e);
    EXPECT_TRUE(written.ok()) << (written.ok() ? "" : written.error().message);
    return written.ok() ? *written : agent::HistoryEntry{};
  }

  // Opens the history as `history`, with three entries: policy x Added, namespace default
  // Added, policy x Modified.
  void three() {
    auto h = agent::History::open(dir);
    ASSERT_TRUE(h.ok()) << h.error().message;
    history = std::move(*h);
    change(*history, "Added", kPolicyFile, "KubeArmorPolicy/default/x", "# corral-policy: a\nv1\n");
    change(*history, "Added", kNamespaceFile, "Namespace//default",
           "{\"namespace\":\"default\"}\n");
    change(*history, "Modified", kPolicyFile, "KubeArmorPolicy/default/x",
           "# corral-policy: a\nv2\n");
  }

  [[nodiscard]] std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(read_text(history_path()));
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void set_lines(const std::vector<std::string>& ls) const {
    std::string text;
    for (const auto& l : ls) text += l + "\n";
    write_text(history_path(), text);
  }
};

TEST(HistoryHash, Sha256HexOfAKnownVector) {
  EXPECT_EQ(agent::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(HistoryTest, AppendsReadsBackInOrderChainedAndVerifies) {
  three();
  EXPECT_FALSE(history->empty());
  auto entries = agent::read_history(dir);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries->size(), 3u);
  std::string prev(64, '0');
  for (size_t i = 0; i < 3; ++i) {
    const auto& e = (*entries)[i];
    EXPECT_EQ(e.seq, i + 1);
    EXPECT_EQ(e.prev, prev);
    // The documented canonical form: the line's object without "hash", dumped compactly.
    auto j = nlohmann::json::parse(lines()[i]);
    j.erase("hash");
    EXPECT_EQ(e.hash, agent::sha256_hex(j.dump()));
    prev = e.hash;
  }
  EXPECT_EQ((*entries)[1].object, "Namespace//default");
  const auto report = agent::verify_history(dir);
  EXPECT_TRUE(report.ok()) << joined(report.problems);
  EXPECT_EQ(report.entries, 3u);
  EXPECT_EQ(report.files, 2u);
}

TEST_F(HistoryTest, EditedEntryIsNamed) {
  three();
  auto ls = lines();
  auto j = nlohmann::json::parse(ls[1]);
  j["source"] = "someone else";
  ls[1] = j.dump();
  set_lines(ls);
  const auto report = agent::verify_history(dir);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.problems[0].find("entry 2 (line 2, Added Namespace//default)"),
            std::string::npos)
      << report.problems[0];
  EXPECT_NE(report.problems[0].find("edited"), std::string::npos) << report.problems[0];
}

TEST_F(HistoryTest, RemovedEntryBreaksTheLinkOfTheNext) {
  three();
  auto ls = lines();
  ls.erase(ls.begin() + 1);
  set_lines(ls);
  const auto report = agent::verify_history(dir);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.problems[0].find("entry 3 (line 2)"), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[0].find("removed or reordered"), std::string::npos);
}

TEST_F(HistoryTest, SwappedEntriesBreakTheChain) {
  three();
  auto ls = lines();
  std::swap(ls[1], ls[2]);
  set_lines(ls);
  const auto report = agent::verify_history(dir);
  ASSERT_GE(report.problems.size(), 2u) << joined(report.problems);
  EXPECT_NE(report.problems[0].find("entry 3 (line 2)"), std::string::npos) << report.problems[0];
  EXPECT_NE(report.problems[1].find("entry 2 (line 3)"), std::string::npos) << report.problems[1];
}

TEST_F(HistoryTest, StoredFileEditedBehindTheAgentsBackNamesFileAndEntry) {
  three();
  write_text(fs::path(dir) / kPolicyFile, "# corral-policy: a\nv3\n");
  const auto report = agent::verify_history(dir);
  ASSERT_EQ(report.problems.size(), 1u) << joined(report.problems);
  EXPECT_NE(report.problems[0].find(std::string(kPolicyFile) + ": edited behind the agent's back"),
            std::string::npos)
      << report.problems[0];
  EXPECT_NE(report.problems[0].find("entry 3's"), std::string::npos) << report.problems[0];
}

TEST_F(HistoryTest, MissingStoredFileIsNamed) {
  three();
  fs::remove(fs::path(dir) / kNamespaceFile);
  const auto report = agent::verify_history(dir);
  ASSERT_EQ(report.problems.size(), 1u) << joined(report.problems);
  EXPECT_NE(
      report.problems[0].find(std::string(kNamespaceFile) + ": missing, entry 2 (line 2, Added"),
      std::string::npos)
      << report.problems[0];
}

TEST_F(HistoryTest, StoredFileWithoutEntryIsNamedAndOthersAreIgnored) {
  three();
  write_text(fs::path(dir) / "policies/KubeArmorPolicy.default.y.yaml", "y\n");
  write_text(fs::path(dir) / "policies/KubeArmorPolicy.default.z.yaml.tmp", "half\n");
  write_text(fs::path(dir) / "agent.sock.d/other", "not ours\n");
  const auto report = agent::verify_history(dir);
  ASSERT_EQ(report.problems.size(), 1u) << joined(report.problems);
  EXPECT_EQ(report.problems[0],
            "policies/KubeArmorPolicy.default.y.yaml: no history entry (added behind the "
            "agent's back)");
}

TEST_F(HistoryTest, LastEntryDeletedAndFileAbsentIsOk) {
  three();
  change(*history, "Deleted", kPolicyFile, "KubeArmorPolicy/default/x");
  auto report = agent::verify_history(dir);
  EXPECT_TRUE(report.ok()) << joined(report.problems);
  // ... and the same file back without an entry is not.
  write_text(fs::path(dir) / kPolicyFile, "# corral-policy: a\nv2\n");
  report = agent::verify_history(dir);
  ASSERT_EQ(report.problems.size(), 1u) << joined(report.problems);
  EXPECT_NE(report.problems[0].find("exists, but entry 4 (line 4, Deleted"), std::string::npos)
      << report.problems[0];
}

TEST_F(HistoryTest, ReopenedHistoryContinuesTheChain) {
  three();
  auto entries = agent::read_history(dir);
  ASSERT_TRUE(entries.ok());
  history.reset(); // as the agent restarting
  auto h = agent::History::open(dir);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_FALSE((*h)->empty());
  const auto fourth = change(**h, "Modified", kNamespaceFile, "Namespace//default", "{}\n");
  EXPECT_EQ(fourth.seq, 4u);
  EXPECT_EQ(fourth.prev, entries->back().hash);
  const auto report = agent::verify_history(dir);
  EXPECT_TRUE(report.ok()) << joined(report.problems);
}

TEST_F(HistoryTest, TornLastLineIsReportedThenDroppedByOpen) {
  three();
  const auto third = agent::read_history(dir)->back();
  const std::string torn = lines()[2].substr(0, 40);
  std::ofstream(history_path(), std::ios::binary | std::ios::app) << torn;
  auto report = agent::verify_history(dir);
  ASSERT_EQ(report.problems.size(), 1u) << joined(report.problems);
  EXPECT_NE(report.problems[0].find("line 4: torn"), std::string::npos) << report.problems[0];
  auto entries = agent::read_history(dir);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  EXPECT_EQ(entries->size(), 3u);

  history.reset(); // as the agent restarting after the crash
  auto h = agent::History::open(dir);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ((*h)->torn_bytes(), torn.size());
  const auto fourth = change(**h, "Deleted", kPolicyFile, "KubeArmorPolicy/default/x");
  EXPECT_EQ(fourth.seq, 4u);
  EXPECT_EQ(fourth.prev, third.hash);
  report = agent::verify_history(dir);
  EXPECT_TRUE(report.ok()) << joined(report.problems);
}

TEST_F(HistoryTest, EmptyStateIsOkButStoredFilesNeedAHistory) {
  EXPECT_TRUE(agent::verify_history(dir).ok());
  auto entries = agent::read_history(dir);
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
  write_text(fs::path(dir) / kNamespaceFile, "{}\n");
  const auto report = agent::verify_history(dir);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.problems[0].find("history.jsonl: missing"), std::string::npos)
      << report.problems[0];
}

TEST_F(HistoryTest, AppendRejectsAFileOutsideTheStoredDirs) {
  auto h = agent::History::open(dir);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE((*h)->empty());
  agent::HistoryEntry e;
  e.action = "Added";
  e.file = "policies/../../etc/passwd.yaml";
  e.digest = agent::sha256_hex("x");
  auto r = (*h)->append(e);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("file"), std::string::npos) << r.error().message;
  EXPECT_TRUE((*h)->empty());
}

TEST_F(HistoryTest, ProblemsAreCapped) {
  for (int i = 0; i < 25; ++i) {
    write_text(fs::path(dir) / ("namespaces/ns" + std::to_string(100 + i) + ".json"), "{}\n");
  }
  const auto report = agent::verify_history(dir);
  ASSERT_EQ(report.problems.size(), 21u);
  EXPECT_NE(report.problems[0].find("history.jsonl: missing"), std::string::npos);
  EXPECT_NE(report.problems[1].find("namespaces/ns100.json: no history entry"), std::string::npos);
  EXPECT_EQ(report.problems[20], "… and 6 more");
}

} // namespace
} // namespace corral

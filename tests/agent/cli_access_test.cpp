// What the CLI says when it cannot use the agent's socket (issue 7, class 8): a user the
// root-only socket refuses is told so, not that the agent is down; a socket with no agent
// behind it is told apart. Root tier: the refused user is `nobody`, via setpriv(1).
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fd.h"

namespace corral {
namespace {

struct Output {
  int exit_code = -1;
  std::string text; // stdout and stderr
};

Output run(const std::string& command) {
  Output out;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (f == nullptr) return out;
  std::array<char, 512> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), f)) > 0;)
    out.text.append(buf.data(), n);
  const int status = ::pclose(f);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string as_nobody(const std::string& command) {
  return "setpriv --reuid=65534 --regid=65534 --clear-groups -- " + command;
}

class CliAccess : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (runs the CLI as nobody via setpriv)";
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv (util-linux)";
    char tmpl[] = "/tmp/corral-cli-access.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    socket_ = dir_ + "/corral.sock";
  }
  void TearDown() override {
    listener_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // A root-only socket as the agent creates it (0600), listening.
  void listen_like_the_agent() {
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener_);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socket_.copy(addr.sun_path, socket_.size());
    ASSERT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener_.get(), 4), 0);
    ASSERT_EQ(::chmod(socket_.c_str(), 0600), 0);
  }
  std::string corral(const std::string& args) const {
    return std::string(CORRAL_CLI_PATH) + " " + args + " --socket " + socket_;
  }

  std::string dir_, socket_;
  Fd listener_;
};

TEST_F(CliAccess, AUserRefusedByTheSocketIsToldItLacksPermission) {
  listen_like_the_agent();
  const auto out = run(as_nobody(corral("get status")));
  EXPECT_EQ(out.exit_code, 1) << out.text;
  EXPECT_NE(out.text.find("permission denied on " + socket_), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("root-only"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("sudo corral get"), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("does not answer"), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("start the agent"), std::string::npos) << out.text;
}

TEST_F(CliAccess, AUserWhoCannotReachTheSocketsDirectoryIsToldItLacksPermission) {
  listen_like_the_agent();
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  const auto out = run(as_nobody(corral("logs")));
  EXPECT_EQ(out.exit_code, 1) << out.text;
  EXPECT_NE(out.text.find("permission denied on " + socket_), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("start the agent"), std::string::npos) << out.text;
}

TEST_F(CliAccess, ASocketWithNoAgentBehindItSaysSo) {
  listen_like_the_agent();
  listener_.reset(); // the file stays, as after an agent was killed
  const auto out = run(corral("get workloads"));
  EXPECT_EQ(out.exit_code, 1) << out.text;
  EXPECT_NE(out.text.find("no agent listens on " + socket_), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("start the agent"), std::string::npos) << out.text;
}

TEST_F(CliAccess, NoSocketAtAllSaysTheAgentIsNotThere) {
  const auto out = run(as_nobody(corral("get status")));
  EXPECT_EQ(out.exit_code, 1) << out.text;
  EXPECT_NE(out.text.find("cannot reach the agent at " + socket_), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("permission denied"), std::string::npos) << out.text;
}

} // namespace
} // namespace corral

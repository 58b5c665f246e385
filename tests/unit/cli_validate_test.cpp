// `corral validate` end to end: the built binary, its exit code and its output.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliValidate : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("corral-unit-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }

  // Runs `corral validate ARGS` from dir_, capturing stdout and stderr.
  CliRun validate(const std::string& args) {
    const std::string cmd = "cd '" + dir_.string() + "' && '" + CORRAL_CLI_PATH + "' validate " +
                            args + " >out.txt 2>err.txt";
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(dir_ / "out.txt");
    r.err = slurp(dir_ / "err.txt");
    return r;
  }

  fs::path dir_;
};

const char* const kBad = R"(apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: bad
spec:
  selector:
    matchLabels:
      app: nginx
  process:
    matchPaths:
    - path: /usr/sbin/nginx
    - path: usr/bin/bash
    matchPath:
    - path: /bin/sh
)";

TEST_F(CliValidate, BadFileExitsOneWithLocatedErrors) {
  write("bad.yaml", kBad);
  const CliRun r = validate("-f bad.yaml");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("bad.yaml:12:13: error: spec.process.matchPaths[1].path: 'usr/bin/bash' "
                       "is not an absolute path (hint: start it with '/')\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bad.yaml:13:5: error: spec.process.matchPath: unknown field (hint: did "
                       "you mean 'matchPaths'?)\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("valid"), std::string::npos) << r.out;
}

TEST_F(CliValidate, SeedExampleIsValid) {
  const std::string seed =
      std::string(CORRAL_SOURCE_DIR) + "/examples/seed-only-allow-nginx-exec.yaml";
  const CliRun r = validate("-f '" + seed + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(seed + ":1: KubeArmorPolicy/only-allow-nginx-exec (namespace default) "
                              "valid: 2 process, 1 file, 0 network, 0 capabilities rules\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
}

TEST_F(CliValidate, OneBadDocumentRejectsTheWholeInput) {
  const std::string good = R"(apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: good
spec:
  selector:
    matchLabels: {app: x}
  process:
    matchPaths:
    - path: /bin/sh
)";
  write("multi.yaml", good + "---\n" + kBad);
  const CliRun r = validate("-f multi.yaml");
  EXPECT_EQ(r.exit_code, 1);
  // The bad document's lines count from the start of the file.
  EXPECT_NE(r.err.find("multi.yaml:23:13: error: spec.process.matchPaths[1].path"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("good"), std::string::npos) << r.out;
}

TEST_F(CliValidate, BinaryInputIsAnErrorNotACrash) {
  write("binary.yaml", std::string("\x7f"
                                   "ELF\x02\x01\x01\0\0\0",
                                   10));
  const CliRun r = validate("-f binary.yaml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("binary.yaml:1:1: error: not YAML text: control character U+007F"),
            std::string::npos)
      << r.err;
}

TEST_F(CliValidate, StandardInput) {
  write("bad.yaml", kBad);
  const CliRun r = validate("-f - < bad.yaml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("<stdin>:12:13: error: spec.process.matchPaths[1].path"), std::string::npos)
      << r.err;
}

TEST_F(CliValidate, MissingFile) {
  const CliRun r = validate("-f does-not-exist.yaml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does-not-exist.yaml"), std::string::npos) << r.err;
}

// A request larger than the agent accepts (policy::kMaxApplyBytes) is refused by the CLI
// before it connects, saying why; no agent is needed to see it.
TEST_F(CliValidate, ApplyRefusesMoreThanTheAgentAccepts) {
  const std::string policy = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\n"
                             "metadata:\n  name: big\nspec:\n  selector:\n    matchLabels:\n"
                             "      app: big\n  process:\n    matchPaths:\n    - path: /bin/sh\n"
                             "  action: Block\n# " +
                             std::string(14 << 20, 'x') + "\n";
  write("big.yaml", policy);
  const std::string cmd = "cd '" + dir_.string() + "' && '" + CORRAL_CLI_PATH +
                          "' apply -f big.yaml -f big.yaml -f big.yaml -f big.yaml -f big.yaml "
                          "--socket '" +
                          (dir_ / "no-agent.sock").string() + "' >out.txt 2>err.txt";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string err = slurp(dir_ / "err.txt");
  EXPECT_NE(err.find("more than the agent accepts in one request (64 MiB)"), std::string::npos)
      << err;
  EXPECT_NE(err.find("nothing was sent to the agent"), std::string::npos) << err;
  EXPECT_EQ(err.find("cannot reach the agent"), std::string::npos) << err; // never tried
}

// Flags common to every command come before the command too (`corral --socket S get
// status`, as kubectl and karmor take them), with or without '='.
TEST_F(CliValidate, TheSocketFlagMayComeBeforeTheCommand) {
  const std::string sock = (dir_ / "none.sock").string();
  for (const std::string& flag : {"--socket '" + sock + "'", "--socket='" + sock + "'"}) {
    const std::string cmd = "cd '" + dir_.string() + "' && '" + CORRAL_CLI_PATH + "' " + flag +
                            " get status >out.txt 2>err.txt";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1); // no agent there; not CLI11's 109 for a parse error
    const std::string err = slurp(dir_ / "err.txt");
    EXPECT_NE(err.find("cannot reach the agent at " + sock), std::string::npos) << err;
  }
}

} // namespace

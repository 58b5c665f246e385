// The conformance table judged through the real CLI: each case's policies are written to
// files and `corral explain -o json` is run on them, so flag parsing, file loading and the
// JSON output are held to the same table as decide().
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "case_table.h"
#include "core/strings.h"

extern char** environ;

namespace corral::conformance {
namespace {

namespace fs = std::filesystem;

// A directory of its own for one case, removed when the case ends.
class TempDir {
public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "corral-conformance-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string pairs(const policy::Labels& labels) {
  std::vector<std::string> items;
  for (const auto& [k, v] : labels) items.push_back(k + "=" + v);
  return join(items, ",");
}

void add_workload(std::vector<std::string>& args, const WorkloadSpec& w) {
  args.insert(args.end(), {"--namespace", w.namespace_name});
  if (!w.labels.empty()) args.insert(args.end(), {"--labels", pairs(w.labels)});
  for (const auto& [k, v] : w.ns_annotations)
    args.insert(args.end(), {"--ns-annotation", k + "=" + v});
  for (const auto& [k, v] : w.pod_annotations)
    args.insert(args.end(), {"--pod-annotation", k + "=" + v});
  if (w.host) args.emplace_back("--host");
  if (!w.node_labels.empty()) args.insert(args.end(), {"--node-labels", pairs(w.node_labels)});
}

void add_access(std::vector<std::string>& args, const AccessSpec& a) {
  static const char* const kFlags[] = {"--exec", "--open", "--socket", "--capability"};
  args.insert(args.end(), {kFlags[static_cast<int>(a.category)], a.target});
  if (a.write) args.emplace_back("--write");
  if (a.new_file) args.emplace_back("--new-file");
  if (a.pts) args.emplace_back("--pts");
  if (!a.source.empty()) args.insert(args.end(), {"--source", a.source});
  args.insert(args.end(),
              {"--uid", std::to_string(a.uid), "--file-uid", std::to_string(a.file_uid)});
}

void add_defaults(std::vector<std::string>& args, const policy::Postures& p) {
  args.insert(args.end(),
              {"--default-file-posture", std::string(to_string(p.file)),
               "--default-network-posture", std::string(to_string(p.network)),
               "--default-capabilities-posture", std::string(to_string(p.capabilities))});
}

// `corral explain ... -o json` for the case, with its policies written under `dir`.
std::vector<std::string> explain_args(const Case& c, const fs::path& dir) {
  std::vector<std::string> args{CORRAL_CLI_PATH, "explain"};
  for (const auto& p : c.policies) {
    const fs::path file = dir / (p.name + ".yaml");
    std::ofstream(file, std::ios::binary) << p.text;
    args.insert(args.end(), {"-f", file.string()});
  }
  add_workload(args, c.workload);
  add_access(args, c.access);
  add_defaults(args, c.defaults);
  args.insert(args.end(), {"-o", "json"});
  return args;
}

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv directly (no shell), stdout and stderr to files under `dir`.
ProcessResult run(const std::vector<std::string>& args, const fs::path& dir) {
  const std::string out = (dir / "stdout").string();
  const std::string err = (dir / "stderr").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  ProcessResult r;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    r.err = "posix_spawn " + args[0] + ": " + std::strerror(rc);
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

Observed observe(const ProcessResult& r) {
  Observed seen;
  seen.diagnostics = r.err;
  // explain exits 1 (printing the diagnostics) when any policy file has an error.
  if (r.exit_code != 0) {
    seen.rejected = true;
    seen.diagnostics = "exit code " + std::to_string(r.exit_code) + "\n" + r.err;
    return seen;
  }
  const auto j = nlohmann::json::parse(r.out);
  seen.verdict = j.at("verdict").get<std::string>();
  seen.action = j.at("action").get<std::string>();
  seen.policy = j.at("policy").get<std::string>();
  seen.severity = j.at("severity").get<std::string>();
  seen.message = j.at("message").get<std::string>();
  seen.tags = j.at("tags").get<std::vector<std::string>>();
  seen.alert = j.at("alert").get<bool>();
  seen.rule = j.at("rule").get<std::string>();
  return seen;
}

class CliConformance : public testing::TestWithParam<Case> {};

TEST_P(CliConformance, Case) {
  const Case& c = GetParam();
  if (!c.workload.root_symlinks.empty())
    GTEST_SKIP() << describe(c) << ": corral explain has no workload root (in-process only)";
  TempDir dir;
  const auto args = explain_args(c, dir.path());
  const ProcessResult r = run(args, dir.path());
  Observed seen;
  try {
    seen = observe(r);
  } catch (const nlohmann::json::exception& e) {
    FAIL() << describe(c) << ": output is not the expected JSON (" << e.what() << "):\n"
           << r.out << r.err;
  }
  const auto diffs = mismatches(c, seen);
  if (!diffs.empty()) {
    ADD_FAILURE() << describe(c) << ":\n  " << join(diffs, "\n  ")
                  << "\n  command: " << join(args, " ");
  }
}

INSTANTIATE_TEST_SUITE_P(Table, CliConformance, testing::ValuesIn(cases(CORRAL_CASES_FILE)),
                         [](const testing::TestParamInfo<Case>& info) {
                           return test_name(info.param);
                         });

} // namespace
} // namespace corral::conformance

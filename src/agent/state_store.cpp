#include "agent/state_store.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "core/strings.h"

namespace corral::agent {
namespace fs = std::filesystem;
namespace {

// Names are DNS labels in practice; anything else is escaped so a name never leaves its dir.
std::string escape(std::string_view s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out.empty() || out[0] == '.' ? "%" + out : out;
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error("read " + path.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

Result<void> sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return errno_error("fsync " + dir);
  return {};
}

} // namespace

Result<std::unique_ptr<StateStore>> StateStore::make(const std::string& dir) {
  std::error_code ec;
  for (const char* sub : {"policies", "namespaces"}) {
    fs::create_directories(fs::path(dir) / sub, ec);
    if (ec) {
      return Error{"create state dir " + dir + ": " + ec.message(), "choose a writable --state-dir",
                   ec.value()};
    }
  }
  ::chmod(dir.c_str(), 0700);
  return std::unique_ptr<StateStore>(new StateStore(dir));
}

Result<StoredState> StateStore::load() const {
  StoredState state;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(dir_) / "policies", ec)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto text = read_file(f);
    if (!text) return text.error();
    state.policies.emplace_back(f.string(), std::move(*text));
  }
  for (const auto& e : fs::directory_iterator(fs::path(dir_) / "namespaces", ec)) {
    if (e.path().extension() != ".json") continue;
    auto text = read_file(e.path());
    if (!text) return text.error();
    const auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("namespace")) {
      return Error{"corrupt state file " + e.path().string(), "remove it and annotate again"};
    }
    state.namespaces[j["namespace"]] = j.value("annotations", policy::Labels{});
  }
  return state;
}

std::string StateStore::policy_file(const policy::Policy& p) {
  return "policies/" + escape(std::string(to_string(p.kind))) + "." +
         escape(p.namespace_name.empty() ? "_" : p.namespace_name) + "." + escape(p.name) + ".yaml";
}

std::string StateStore::policy_text(const policy::Policy& p) {
  // The key line tells restore() which policy of the text is this one.
  return std::string(kKeyPrefix) + p.key() + "\n" + p.source;
}

std::string StateStore::namespace_file(const std::string& ns) {
  return "namespaces/" + escape(ns) + ".json";
}

std::string StateStore::namespace_text(const std::string& ns, const policy::Labels& annotations) {
  const nlohmann::json j = {{"namespace", ns}, {"annotations", annotations}};
  return j.dump(2) + "\n";
}

Result<void> StateStore::put_policy(const policy::Policy& p) {
  return write_atomically(dir_ + "/" + policy_file(p), policy_text(p));
}

Result<void> StateStore::delete_policy(const policy::Policy& p) {
  return remove(policy_file(p));
}

Result<void> StateStore::remove(const std::string& file) const {
  const std::string path = dir_ + "/" + file;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("remove " + path);
  return sync_dir(fs::path(path).parent_path().string());
}

Result<void> StateStore::put_namespace(const std::string& ns, const policy::Labels& annotations) {
  if (annotations.empty()) return remove(namespace_file(ns));
  return write_atomically(dir_ + "/" + namespace_file(ns), namespace_text(ns, annotations));
}

Result<void> StateStore::write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("create " + tmp);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto e = errno_error("write " + tmp);
      ::close(fd);
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return errno_error("fsync " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("rename " + tmp);
  return sync_dir(fs::path(path).parent_path().string());
}

} // namespace corral::agent

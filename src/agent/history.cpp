#include "agent/history.h"

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

namespace corral::agent {
namespace {

using nlohmann::json;

// The prev of the first entry.
const std::string& zero_hash() {
  static const std::string zeros(64, '0');
  return zeros;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "policies/<name>.yaml" or "namespaces/<name>.json", one level only.
bool is_stored_file(std::string_view f) {
  for (const auto& [dir, ext] :
       {std::pair<std::string_view, std::string_view>{"policies/", ".yaml"},
        {"namespaces/", ".json"}}) {
    if (!f.starts_with(dir) || !f.ends_with(ext)) continue;
    const auto name = f.substr(dir.size());
    return name.size() > ext.size() && name.find('/') == std::string_view::npos;
  }
  return false;
}

json to_json(const HistoryEntry& e) {
  return json{{"seq", e.seq},         {"time", e.time},     {"source", e.source},
              {"action", e.action},   {"object", e.object}, {"namespace", e.namespace_name},
              {"file", e.file},       {"digest", e.digest}, {"severity", e.severity},
              {"summary", e.summary}, {"prev", e.prev},     {"hash", e.hash}};
}

// Invalid UTF-8 (say, in a client-supplied manager name) becomes U+FFFD rather than an
// exception; the line written is then re-read, so the entry returned is the entry stored.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The last line of the file's first `end` bytes that parses as an entry, reading backwards in
// growing windows so that opening a long history reads only its tail.
Result<HistoryEntry> last_entry(int fd, off_t end) {
  for (off_t window = 4096;; window *= 2) {
    const off_t start = std::max<off_t>(0, end - window);
    std::string buf(static_cast<size_t>(end - start), '\0');
    if (::pread(fd, buf.data(), buf.size(), start) != static_cast<ssize_t>(buf.size())) {
      return errno_error("read history");
    }
    // Lines wholly inside the window: a partial first line is skipped unless the window starts
    // at 0 (`end` itself is just past a '\n', or 0). Blank and broken lines are verify's to report.
    std::string_view view(buf);
    if (start > 0) {
      const size_t nl = view.find('\n');
      view.remove_prefix(nl == std::string_view::npos ? view.size() : nl + 1);
    }
    while (!view.empty()) {
      view.remove_suffix(1); // the '\n' that ends the last line
      const size_t nl = view.rfind('\n');
      const size_t from = nl == std::string_view::npos ? 0 : nl + 1;
      if (auto e = parse_history_line(view.substr(from))) return e;
      view = view.substr(0, from);
    }
    if (start == 0) return HistoryEntry{}; // no entry: seq 0
  }
}

// Drops bytes after the last '\n' (see History::open); returns how many.
Result<size_t> drop_torn_tail(int fd, off_t size) {
  off_t end = size; // one past the last '\n' found so far, or 0
  char buf[4096];
  while (end > 0) {
    const off_t start = std::max<off_t>(0, end - static_cast<off_t>(sizeof buf));
    const auto len = static_cast<size_t>(end - start);
    if (::pread(fd, buf, len, start) != static_cast<ssize_t>(len)) {
      return errno_error("read history");
    }
    const std::string_view chunk(buf, len);
    if (const size_t nl = chunk.rfind('\n'); nl != std::string_view::npos) {
      end = start + static_cast<off_t>(nl) + 1;
      break;
    }
    end = start;
  }
  if (end == size) return size_t{0};
  if (::ftruncate(fd, end) != 0 || ::fsync(fd) != 0) return errno_error("truncate history");
  return static_cast<size_t>(size - end);
}

} // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest fails only on allocation failure or a provider without SHA-256: nothing a
  // caller could handle, so it is not part of the Result-returning API.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(SHA-256) failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

Result<HistoryEntry> parse_history_line(std::string_view line) {
  const json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return Error{"not a JSON object", ""};
  HistoryEntry e;
  const std::pair<const char*, std::string*> strings[] = {{"time", &e.time},
                                                          {"source", &e.source},
                                                          {"action", &e.action},
                                                          {"object", &e.object},
                                                          {"namespace", &e.namespace_name},
                                                          {"file", &e.file},
                                                          {"digest", &e.digest},
                                                          {"summary", &e.summary},
                                                          {"prev", &e.prev},
                                                          {"hash", &e.hash}};
  for (const auto& [key, field] : strings) {
    if (!j.contains(key) || !j[key].is_string())
      return Error{std::string(key) + ": not a string", ""};
    *field = j[key].get<std::string>();
  }
  if (!j.contains("seq") || !j["seq"].is_number_unsigned()) return Error{"seq: not a number", ""};
  if (!j.contains("severity") || !j["severity"].is_number_integer()) {
    return Error{"severity: not an integer", ""};
  }
  e.seq = j["seq"].get<uint64_t>();
  e.severity = j["severity"].get<int>();
  return e;
}

std::string entry_problem(const HistoryEntry& e) {
  if (e.action != "Added" && e.action != "Modified" && e.action != "Deleted") {
    return "action \"" + e.action + "\" is not Added, Modified or Deleted";
  }
  if (!is_stored_file(e.file)) {
    return "file \"" + e.file + "\" is not policies/<name>.yaml or namespaces/<name>.json";
  }
  if (e.action == "Deleted" ? !e.digest.empty() : !is_hex64(e.digest)) {
    return e.action == "Deleted" ? "a Deleted entry has a digest" : "digest is not a SHA-256";
  }
  return "";
}

Result<std::unique_ptr<History>> History::open(const std::string& state_dir) {
  const std::string path = state_dir + "/" + std::string(kHistoryFile);
  Fd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open " + path, "choose a writable --state-dir");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + path);
  if (st.st_size == 0) {
    // A new file's name must be durable too, or a crash could leave stored files whose
    // history is missing altogether.
    const Fd dir(::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::fsync(dir.get()) != 0) return errno_error("fsync " + state_dir);
  }
  auto torn = drop_torn_tail(fd.get(), st.st_size);
  if (!torn) return Error{path + ": " + torn.error().message, "", torn.error().err};
  auto head = last_entry(fd.get(), st.st_size - static_cast<off_t>(*torn));
  if (!head) return Error{path + ": " + head.error().message, "", head.error().err};
  const std::string prev = head->seq == 0 ? zero_hash() : head->hash;
  return std::unique_ptr<History>(new History(std::move(fd), head->seq, prev, *torn));
}

bool History::empty() const {
  const std::lock_guard lock(mu_);
  return seq_ == 0;
}

Result<HistoryEntry> History::append(HistoryEntry e) {
  if (auto why = entry_problem(e); !why.empty()) return Error{"history entry: " + why, ""};
  const std::lock_guard lock(mu_);
  e.seq = seq_ + 1;
  e.prev = head_;
  json j = to_json(e);
  j.erase("hash");
  const std::string canonical = dump(j);
  j = json::parse(canonical); // see dump(): the stored text, not the caller's bytes
  j["hash"] = sha256_hex(canonical);
  const std::string line = j.dump() + "\n";
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return errno_error("stat history");
  // One write() of a whole line; a short or failed one is cut back off, so that a later
  // append does not glue its line onto half of this one.
  const ssize_t n = ::write(fd_.get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()) || ::fsync(fd_.get()) != 0) {
    if (n >= 0 && n < static_cast<ssize_t>(line.size())) errno = EIO; // a short write sets none
    auto err = errno_error("append to history");
    if (::ftruncate(fd_.get(), st.st_size) != 0) err.message += " (and could not cut it back)";
    return err;
  }
  auto written = parse_history_line(std::string_view(line).substr(0, line.size() - 1));
  seq_ = written->seq;
  head_ = written->hash;
  return written;
}

} // namespace corral::agent

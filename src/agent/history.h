// A tamper-evident change log of the agent's state dir: <state_dir>/history.jsonl holds one JSON
// entry per change of a stored file (policies/*.yaml, namespaces/*.json), each entry chained to
// the one before it by a SHA-256 hash, so that editing, removing or reordering an entry, or
// editing a stored file behind the agent's back, shows in verify_history().
//
// Line format: one compact JSON object per line, keys sorted, ending in '\n':
//   {"action":..,"digest":..,"file":..,"hash":..,"namespace":..,"object":..,"prev":..,
//    "seq":N,"severity":N,"source":..,"summary":..,"time":..}
// Canonical form (what "hash" covers): the line's JSON object without its "hash" member, dumped
// compactly by nlohmann::json (object keys sorted, no spaces, UTF-8, non-ASCII not escaped).
//   hash = sha256_hex(canonical)   — "prev" is inside the canonical form, which makes the chain.
// The first entry's prev is 64 '0'. verify_history() recomputes the hash from the parsed line, so
// a member added to a line by hand breaks its hash too.
//
// The chain shows changes to the file's committed prefix; it does not stop someone with write
// access from rewriting the whole file with a new, consistent chain (that needs a key or a copy
// of the head elsewhere). The agent is the only writer of history.jsonl.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

namespace corral::agent {

// sha256 of `data` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

struct HistoryEntry {
  uint64_t seq = 0;           // 1, 2, ... (filled by append)
  std::string time;           // RFC3339 UTC with µs (events::rfc3339_micros)
  std::string source;         // who made the change, e.g. "local uid 0 (corral apply)"
  std::string action;         // "Added" | "Modified" | "Deleted"
  std::string object;         // "KubeArmorPolicy/default/name", "Namespace//default"
  std::string namespace_name; // "" for cluster-scoped; for Namespace objects the namespace itself
  std::string file;           // relative to the state dir: "policies/....yaml", "namespaces/x.json"
  std::string digest;         // sha256_hex of the stored file after the change; "" when Deleted
  int severity = 1;
  std::string summary; // short text
  std::string prev;    // hash of the previous entry (64 '0' for the first): filled by append
  std::string hash;    // sha256_hex of the canonical form (see above): filled by append
};

// The history file's name inside the state dir.
constexpr std::string_view kHistoryFile = "history.jsonl";

// The writer of <state_dir>/history.jsonl. Thread-safe: append() and empty() take a mutex.
class History {
public:
  // Opens (creates if absent, mode 0600) <state_dir>/history.jsonl and finds the head to chain
  // to: the last line that parses as an entry (a broken line before it is verify's to report).
  // A torn last line (a crash mid-append: bytes after the last '\n') was never acknowledged,
  // since append() returns only after a whole line is fsynced, so open() truncates it away and
  // the next entry starts on a fresh line; torn_bytes() says how much was dropped (for a log
  // line). verify_history() run before that open reports the torn line.
  static Result<std::unique_ptr<History>> open(const std::string& state_dir);

  // Fills seq, prev and hash, appends one line (O_APPEND) and fsyncs it; returns the entry as
  // written. Rejects an entry whose action, file or digest is malformed (see entry_problem).
  Result<HistoryEntry> append(HistoryEntry e);
  // True while the file holds no entry to chain to.
  [[nodiscard]] bool empty() const;
  // Bytes of a torn last line that open() dropped (0 if the file ended in '\n').
  [[nodiscard]] size_t torn_bytes() const { return torn_bytes_; }

private:
  History(Fd fd, uint64_t seq, std::string head, size_t torn)
      : fd_(std::move(fd)), seq_(seq), head_(std::move(head)), torn_bytes_(torn) {}

  mutable std::mutex mu_;
  Fd fd_;
  uint64_t seq_;     // seq of the head entry, 0 when empty
  std::string head_; // hash of the head entry, 64 '0' when empty
  size_t torn_bytes_;
};

// One line (without its '\n') as an entry: a JSON object with every field of the right type.
// Says nothing about its hash (verify_history checks that).
Result<HistoryEntry> parse_history_line(std::string_view line);

// Why an entry's action, file or digest is malformed, or "" when they are well formed: action
// one of Added/Modified/Deleted; file "policies/<name>.yaml" or "namespaces/<name>.json" with no
// further '/' (so verify never reads outside the state dir); digest 64 hex digits, "" if Deleted.
std::string entry_problem(const HistoryEntry& e);

// Every entry of the file, in order (a line that is not a valid entry is an error naming its
// line). A torn last line is left out, as History::open() would drop it. No file: no entries.
Result<std::vector<HistoryEntry>> read_history(const std::string& state_dir);

struct VerifyReport {
  size_t entries = 0;                // lines checked
  size_t files = 0;                  // stored files checked
  std::vector<std::string> problems; // first one is the first bad thing found: chain, then files
  [[nodiscard]] bool ok() const { return problems.empty(); }
};

// Checks (1) the chain: each line parses, hash recomputes, prev equals the previous entry's
// hash, seq is the previous one + 1; (2) the stored files against the chain: the last entry
// about a file says Deleted (the file must not exist) or a digest equal to the file's now; every
// policies/*.yaml and namespaces/*.json has an entry. Reports at most one problem per line and
// per file, in line order then file-name order, at most 20 plus a "… and N more" line.
VerifyReport verify_history(const std::string& state_dir);

} // namespace corral::agent

// The bearer token a Client sends: a static one, or a file that is re-read whenever it
// changes (kubelet rewrites projected service-account tokens before they expire).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "core/result.h"

namespace corral::kube {

class BearerToken {
public:
  BearerToken(std::string file, std::string fallback)
      : file_(std::move(file)), token_(std::move(fallback)), have_token_(!token_.empty()) {}

  // The token to send now ("" for none). With a file: stats it and re-reads it when its
  // inode, size or mtime changed. A file that cannot be read keeps the last good token (a
  // projected volume swaps its files in place); an Error only when there was none.
  Result<std::string> current();
  // After a 401: reads the file again even if it looks unchanged. False without a file.
  bool reload();

private:
  struct Stamp {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  Result<void> load(const Stamp& stamp); // under mu_

  const std::string file_;
  std::mutex mu_;
  std::string token_;
  bool have_token_;          // token_ holds a token (the fallback, or the file's)
  Stamp stamp_;              // of the file when token_ was read from it
  bool stamp_valid_ = false; // false: read the file at the next current()
};

} // namespace corral::kube

#include "kube/bearer_token.h"

#include <sys/stat.h>

#include "core/strings.h"
#include "kube/util.h"

namespace corral::kube {

Result<std::string> BearerToken::current() {
  std::lock_guard lock(mu_);
  if (file_.empty()) return token_;
  // stat(2) follows the ..data symlink of a projected volume, so a swap of the whole folder
  // shows as a new inode even when size and mtime happen to match.
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) {
    if (have_token_) return token_;
    return errno_error("cannot read the bearer token file " + file_,
                       "is the service account token mounted?");
  }
  const Stamp now{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                  static_cast<uint64_t>(st.st_size),
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  if (!stamp_valid_ || now != stamp_) {
    if (auto r = load(now); !r && !have_token_) return r.error();
  }
  return token_;
}

bool BearerToken::reload() {
  if (file_.empty()) return false;
  std::lock_guard lock(mu_);
  stamp_valid_ = false;
  return true;
}

Result<void> BearerToken::load(const Stamp& stamp) {
  auto text = read_text_file(file_, "the bearer token file");
  if (!text) return text.error();
  const std::string_view t = trim(*text);
  if (t.empty() && have_token_) return {}; // caught mid-write: keep the last good token
  token_ = std::string(t);
  have_token_ = !token_.empty();
  stamp_ = stamp;
  stamp_valid_ = true;
  return {};
}

} // namespace corral::kube

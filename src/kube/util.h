// Small helpers of the Kubernetes client (not part of its interface).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace corral::kube {

// The whole file; an Error naming `what` (e.g. "the service-account token") and the path.
Result<std::string> read_text_file(const std::string& path, const std::string& what);

// RFC 4648 base64 (the standard alphabet, as kubeconfig's *-data fields use); whitespace is
// skipped. nullopt when the text is not base64.
std::optional<std::string> base64_decode(std::string_view text);

// Percent-encodes everything but RFC 3986 unreserved characters, for query values.
std::string url_encode(std::string_view s);

} // namespace corral::kube

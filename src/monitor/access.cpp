#include "monitor/access.h"

#include <algorithm>
#include <cstring>

#include <arpa/inet.h>
#include <sys/socket.h>

namespace corral::monitor {

FileAccess file_access(const corral_monitor_file& e) {
  FileAccess f;
  const size_t len = std::min<size_t>(e.path_len, sizeof e.path);
  f.path.assign(e.path, strnlen(e.path, len));
  f.flags = static_cast<int>(e.flags);
  f.result = e.result;
  return f;
}

std::string printable_address(const corral_monitor_sockaddr& a) {
  const size_t len = std::min<size_t>(a.len, sizeof a.addr);
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.family == AF_INET && len >= 4)
    return ::inet_ntop(AF_INET, a.addr, buf, sizeof buf) != nullptr ? buf : "";
  if (a.family == AF_INET6 && len >= 16)
    return ::inet_ntop(AF_INET6, a.addr, buf, sizeof buf) != nullptr ? buf : "";
  if (a.family != AF_UNIX || len == 0) return {};
  const char* path = reinterpret_cast<const char*>(a.addr);
  // unix(7): a pathname is NUL-terminated within addrlen; an abstract name starts with a NUL
  // and is exactly the remaining bytes, shown with '@' for each NUL as ss(8) does.
  if (path[0] != '\0') return {path, strnlen(path, len)};
  std::string name(path, len);
  std::replace(name.begin(), name.end(), '\0', '@');
  return name;
}

NetAccess net_access(const corral_monitor_net& e) {
  NetAccess n;
  switch (e.op) {
  case CORRAL_MONITOR_BIND: n.op = NetAccess::Op::Bind; break;
  case CORRAL_MONITOR_ACCEPT: n.op = NetAccess::Op::Accept; break;
  default: n.op = NetAccess::Op::Connect; break;
  }
  n.family = e.sock_family;
  n.type = e.sock_type;
  n.protocol = e.sock_protocol;
  n.address = printable_address(e.addr);
  n.port = e.addr.port;
  n.result = e.result;
  return n;
}

} // namespace corral::monitor

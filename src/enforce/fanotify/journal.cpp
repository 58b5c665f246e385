#include "enforce/fanotify/journal.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fd.h"

namespace corral::enforce::fanotify {
namespace {

constexpr char kMagic[8] = {'C', 'O', 'R', 'R', 'A', 'L', 'J', '1'};
constexpr size_t kIdBytes = 256;
constexpr size_t kPathBytes = 4096; // PATH_MAX: a longer path is undecidable anyway

struct Header {
  char magic[8];
  uint32_t slots;
  int32_t max_fd;
};

struct Entry {
  uint32_t state; // 1: in hand; written last on record, first on clear
  int32_t fd;
  int32_t tid;
  uint32_t path_len; // 0: not read yet
  uint64_t mask;
  char id[kIdBytes];
  char path[kPathBytes];
};

constexpr size_t kFileSize = sizeof(Header) + Journal::kSlots * sizeof(Entry);

Header* header(void* map) {
  return static_cast<Header*>(map);
}

Entry* entry(void* map, size_t slot) {
  return reinterpret_cast<Entry*>(static_cast<char*>(map) + sizeof(Header)) + slot;
}

void copy_string(char* dst, size_t cap, const std::string& s) {
  const size_t n = std::min(s.size(), cap - 1);
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

// The entries of a mapped journal with a valid header.
Leftovers collect(void* map) {
  Leftovers out;
  const Header* h = header(map);
  if (std::memcmp(h->magic, kMagic, sizeof kMagic) != 0 || h->slots != Journal::kSlots) return out;
  out.max_fd = h->max_fd;
  for (size_t i = 0; i < Journal::kSlots; ++i) {
    const Entry* e = entry(map, i);
    if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != 1) continue;
    LeftEvent l;
    l.fd = e->fd;
    l.tid = e->tid;
    l.mask = e->mask;
    if (e->path_len > 0 && e->path_len < kPathBytes) l.path.assign(e->path, e->path_len);
    out.max_fd = std::max(out.max_fd, l.fd);
    out.by_workload[std::string(e->id, strnlen(e->id, kIdBytes))].push_back(std::move(l));
  }
  return out;
}

} // namespace

Result<std::unique_ptr<Journal>> Journal::open(const std::string& path, Leftovers* previous) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return errno_error("open the event journal " + path);
  if (::ftruncate(fd.get(), static_cast<off_t>(kFileSize)) != 0)
    return errno_error("size the event journal " + path);
  void* map = ::mmap(nullptr, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) return errno_error("map the event journal " + path);
  std::unique_ptr<Journal> j(new Journal(map, kFileSize));
  Leftovers old = collect(map);
  // The bound only grows: a number the previous agent used may still be pending when this
  // agent dies before it released it.
  std::memset(map, 0, kFileSize);
  Header* h = header(map);
  h->slots = kSlots;
  h->max_fd = old.max_fd;
  std::memcpy(h->magic, kMagic, sizeof kMagic);
  if (previous != nullptr) *previous = std::move(old);
  return j;
}

Leftovers Journal::read(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || static_cast<size_t>(st.st_size) < kFileSize) return {};
  void* map = ::mmap(nullptr, kFileSize, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) return {};
  Leftovers out = collect(map);
  ::munmap(map, kFileSize);
  return out;
}

Journal::~Journal() {
  ::munmap(map_, size_);
}

void Journal::record(size_t slot, const std::string& workload, int fd, int tid, uint64_t mask) {
  if (slot >= kSlots) return;
  Entry* e = entry(map_, slot);
  __atomic_store_n(&e->state, 0U, __ATOMIC_RELEASE);
  e->fd = fd;
  e->tid = tid;
  e->mask = mask;
  e->path_len = 0;
  copy_string(e->id, kIdBytes, workload);
  __atomic_store_n(&e->state, 1U, __ATOMIC_RELEASE);
}

void Journal::note_path(size_t slot, const std::string& path) {
  if (slot >= kSlots || path.size() >= kPathBytes) return;
  Entry* e = entry(map_, slot);
  std::memcpy(e->path, path.data(), path.size());
  __atomic_store_n(&e->path_len, static_cast<uint32_t>(path.size()), __ATOMIC_RELEASE);
}

void Journal::clear(size_t slot) {
  if (slot < kSlots) __atomic_store_n(&entry(map_, slot)->state, 0U, __ATOMIC_RELEASE);
}

void Journal::saw_fd(int fd) {
  // Event fds are read by several responder threads: the bound is raised with a CAS.
  int cur = __atomic_load_n(&header(map_)->max_fd, __ATOMIC_RELAXED);
  while (fd > cur && !__atomic_compare_exchange_n(&header(map_)->max_fd, &cur, fd, true,
                                                  __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
  }
}

bool leftover_verdict(const Group& g, const LeftEvent& e) {
  const bool exec = (e.mask & FAN_OPEN_EXEC_PERM) != 0;
  const auto c = exec ? policy::Category::Process : policy::Category::File;
  if (e.path.empty() || g.rules().traits(c).subject_dependent()) return g.undecidable(c).allow;
  // Neither the open mode nor the file's age is known here: no implicit start-up set.
  policy::Access access{c, e.path, {}, false, true};
  access.shipped = false;
  return policy::decide(g.rules(), access).allow;
}

size_t answer_pending(int group_fd, int fd, bool allow) {
  if (fd < 0) return 0;
  const fanotify_response r{fd, static_cast<uint32_t>(allow ? FAN_ALLOW : FAN_DENY)};
  return ::write(group_fd, &r, sizeof r) == static_cast<ssize_t>(sizeof r) ? 1 : 0;
}

} // namespace corral::enforce::fanotify

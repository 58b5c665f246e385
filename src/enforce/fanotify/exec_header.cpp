#include "enforce/fanotify/exec_header.h"

#include <array>
#include <cstring>
#include <string_view>
#include <vector>

#include <elf.h>
#include <unistd.h>

namespace corral::enforce::fanotify {
namespace {

// fs/binfmt_script.c reads "#!" lines from the first BINPRM_BUF_SIZE (256) bytes.
constexpr size_t kHeaderBytes = 256;
constexpr size_t kMaxInterpBytes = 4096;
constexpr unsigned kMaxProgramHeaders = 256;

bool read_at(int fd, void* buf, size_t len, uint64_t off) {
  return ::pread(fd, buf, len, static_cast<off_t>(off)) == static_cast<ssize_t>(len);
}

std::optional<std::string> script_interpreter(std::string_view header) {
  header.remove_prefix(2); // "#!"
  const size_t start = header.find_first_not_of(" \t");
  if (start == std::string_view::npos) return std::nullopt;
  size_t end = header.find_first_of(std::string_view(" \t\n\r\0", 5), start);
  if (end == std::string_view::npos) {
    // The kernel's buffer is zero-filled past a short file; a full one without a
    // terminator means a truncated path, which the kernel refuses (ENOEXEC).
    if (header.size() + 2 >= kHeaderBytes) return std::nullopt;
    end = header.size();
  }
  if (end == start) return std::nullopt; // "#!" and blanks only
  return std::string(header.substr(start, end - start));
}

// `header` holds the file's first bytes (at least the ELF header); the program headers
// are read with one pread, the interpreter's path with another.
template <class Ehdr, class Phdr>
std::optional<std::string> elf_interpreter(int fd, std::string_view header) {
  Ehdr eh{};
  if (header.size() < sizeof eh) return std::nullopt;
  std::memcpy(&eh, header.data(), sizeof eh);
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum > kMaxProgramHeaders) return std::nullopt;
  std::vector<Phdr> phdrs(eh.e_phnum);
  if (!read_at(fd, phdrs.data(), phdrs.size() * sizeof(Phdr), eh.e_phoff)) return std::nullopt;
  for (const Phdr& ph : phdrs) {
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_filesz < 2 || ph.p_filesz > kMaxInterpBytes) return std::nullopt;
    std::string path(ph.p_filesz, '\0');
    if (!read_at(fd, path.data(), path.size(), ph.p_offset)) return std::nullopt;
    path.resize(std::strlen(path.c_str())); // PT_INTERP holds a NUL-terminated string
    return path.empty() ? std::nullopt : std::optional(std::move(path));
  }
  return std::nullopt;
}

} // namespace

std::optional<std::string> interpreter_of(int fd, bool* script) {
  std::array<char, kHeaderBytes> buf{};
  const ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  if (n < 4) return std::nullopt;
  const std::string_view header(buf.data(), static_cast<size_t>(n));
  if (script != nullptr) *script = header.starts_with("#!");
  if (header.starts_with("#!")) return script_interpreter(header);
  if (static_cast<size_t>(n) <= EI_DATA || !header.starts_with(ELFMAG) ||
      buf[EI_DATA] != ELFDATA2LSB) // the little-endian hosts Corral runs on
    return std::nullopt;
  if (buf[EI_CLASS] == ELFCLASS64) return elf_interpreter<Elf64_Ehdr, Elf64_Phdr>(fd, header);
  if (buf[EI_CLASS] == ELFCLASS32) return elf_interpreter<Elf32_Ehdr, Elf32_Phdr>(fd, header);
  return std::nullopt;
}

} // namespace corral::enforce::fanotify

// The interpreter an executable asks the kernel for: PT_INTERP of an ELF file (the dynamic
// loader, e.g. /lib64/ld-linux-x86-64.so.2) or the "#!" line of a script. POLICY.md
// "Interpreters": the kernel opens these for an allowed exec, and they are allowed with it.
#pragma once

#include <optional>
#include <string>

namespace corral::enforce::fanotify {

// Reads the header of the open file `fd` with pread (no new open, so no fanotify event:
// the event's own fd is opened by fanotify with FMODE_NONOTIFY). nullopt for a static
// ELF, a file of another format, or a header that cannot be read.
// `script` (may be null) tells whether it is a "#!" script.
std::optional<std::string> interpreter_of(int fd, bool* script = nullptr);

} // namespace corral::enforce::fanotify

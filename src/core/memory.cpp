#include "core/memory.h"

#include <malloc.h>

namespace corral {

void tune_malloc() {
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

void release_free_memory() {
  ::malloc_trim(0);
}

} // namespace corral

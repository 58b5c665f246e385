// A library the attacker writes into the workload and loads into an allowed program
// (LD_PRELOAD, dlopen, bash's `enable -f`): its constructor proves that its code ran.
#include <unistd.h>

namespace {
__attribute__((constructor)) void pwned() {
  (void)!::write(1, "pwned\n", 6);
}
} // namespace

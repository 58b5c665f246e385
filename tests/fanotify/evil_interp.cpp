// A program the attacker writes into the workload and gets the kernel to load as the ELF
// interpreter of an allowed binary (attack_review_test.cpp): no libc, no relocations, so it
// runs wherever the kernel maps it; it proves that its code ran and exits.
extern "C" [[noreturn]] void _start() {
  static const char msg[] = "pwned by the interpreter\n";
  long ret = 0;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(1L), "D"(1L), "S"(msg), "d"(sizeof msg - 1)
               : "rcx", "r11", "memory");
  asm volatile("syscall" : : "a"(231L), "D"(0L) : "rcx", "r11", "memory");
  __builtin_unreachable();
}

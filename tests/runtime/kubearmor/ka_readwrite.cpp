// The test image's /readwrite (KubeArmor's multiubuntu image has one): `readwrite -r PATH`
// prints the first byte of PATH, `readwrite -w PATH` appends one byte to it; "Error!" and
// exit 1 when the open fails. A program of its own, so that fromSource rules can name it.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "-r") != 0 && std::strcmp(argv[1], "-w") != 0)) {
    std::fprintf(stderr, "usage: readwrite -r|-w PATH\n");
    return 2;
  }
  const bool write = std::strcmp(argv[1], "-w") == 0;
  std::FILE* f = std::fopen(argv[2], write ? "a" : "r");
  if (f == nullptr) {
    std::printf("Error!\n");
    return 1;
  }
  if (write) {
    std::fputc('b', f);
  } else {
    const int c = std::fgetc(f);
    std::printf("%c\n", c == EOF ? ' ' : c);
  }
  return std::fclose(f) == 0 ? 0 : 1;
}

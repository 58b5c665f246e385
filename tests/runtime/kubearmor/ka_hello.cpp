// The test image's /home/user1/hello (KubeArmor's multiubuntu image has one).
#include <cstdio>

int main() {
  std::puts("helloworld");
  return 0;
}

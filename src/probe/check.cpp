#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <unistd.h>

#include "probe/internal.h"

namespace corral::probe {

std::string to_string(Check::Result r) {
  switch (r) {
  case Check::Result::Works: return "works";
  case Check::Result::Fails: return "fails";
  case Check::Result::NeedsRoot: return "needs root";
  case Check::Result::NotTried: return "not tried";
  }
  return "not tried";
}

std::string errno_name(int err) {
  const char* name = ::strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

const Check* Report::check(const std::string& id) const {
  for (const auto& c : checks) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

Check failed(Check c, const std::string& stage, int err) {
  c.result = Check::Result::Fails;
  c.stage = stage;
  c.err = err != 0 ? err : EINVAL; // a failure always names a reason
  c.message = stage + ": " + errno_name(c.err) + " (" + std::strerror(c.err) + ")";
  return c;
}

Check worked(Check c, std::string message) {
  c.result = Check::Result::Works;
  c.stage.clear();
  c.err = 0;
  c.message = std::move(message);
  return c;
}

int load(bpf_prog_type type, bpf_attach_type attach, unsigned btf_id, int ret, int& err) {
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K,
       .dst_reg = BPF_REG_0,
       .src_reg = 0,
       .off = 0,
       .imm = ret},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.expected_attach_type = attach;
  opts.attach_btf_id = btf_id;
  const int fd = bpf_prog_load(type, "corral_probe", "GPL", insns, 2, &opts);
  err = fd < 0 ? (errno != 0 ? errno : -fd) : 0;
  return fd < 0 ? -1 : fd;
}

} // namespace corral::probe

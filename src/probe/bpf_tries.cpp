// BPF tries: tiny hand-written programs (no clang at run time) that allow everything, loaded
// with libbpf's thin syscall wrappers, attached and detached at once. Attaching matters: a
// kernel can accept a program and still refuse its hook.
#include <cerrno>
#include <cstring>
#include <fstream>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/fd.h"
#include "probe/internal.h"
#include "probe/probe.h"

namespace corral::probe {
namespace {

// Finds a type in the kernel's BTF: the attach point of tracing and LSM programs.
int btf_id(const char* name, int kind, int& err) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) {
    err = errno;
    return -1;
  }
  const int id = btf__find_by_name_kind(vmlinux, name, kind);
  err = id < 0 ? -id : 0;
  btf__free(vmlinux);
  return id;
}

// A program attached through BPF_RAW_TRACEPOINT_OPEN, the attach call every kernel with
// these program types has (LSM, fmod_ret, tp_btf).
Check load_and_attach_btf(Check c, bpf_prog_type type, bpf_attach_type attach, const char* target,
                          int kind) {
  int err = 0;
  const int id = btf_id(target, kind, err);
  if (id < 0)
    return failed(std::move(c), std::string("find ") + target + " in the kernel's BTF", err);
  Fd prog(load(type, attach, id, 0, err));
  if (!prog) return failed(std::move(c), "load", err);
  const Fd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
  if (!link) return failed(std::move(c), "attach", errno);
  return worked(std::move(c), "loaded and attached (detached again)");
}

// The kprobe PMU's type, or -1 when the kernel has none (then kprobes go through
// kprobe_multi links, kernel >= 5.18 with fprobe).
int kprobe_pmu_type() {
  std::ifstream f("/sys/bus/event_source/devices/kprobe/type");
  int type = -1;
  if (f) f >> type;
  return type;
}

Check kprobe_via_pmu(Check c, int type, const char* func) {
  int err = 0;
  Fd prog(load(BPF_PROG_TYPE_KPROBE, kAnyAttach, 0, 0, err));
  if (!prog) return failed(std::move(c), "load", err);
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = static_cast<uint32_t>(type);
  attr.config1 = reinterpret_cast<uint64_t>(func); // kprobe_func
  const Fd ev(
      static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)));
  if (!ev) return failed(std::move(c), "perf_event_open kprobe", errno);
  if (::ioctl(ev.get(), PERF_EVENT_IOC_SET_BPF, prog.get()) != 0) {
    return failed(std::move(c), "attach", errno);
  }
  return worked(std::move(c), "loaded and attached through the kprobe PMU (detached again)");
}

Check kprobe_via_multi(Check c, const char* func) {
  int err = 0;
  Fd prog(load(BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, 0, 0, err));
  if (!prog) return failed(std::move(c), "load", err);
  const char* syms[] = {func};
  LIBBPF_OPTS(bpf_link_create_opts, opts);
  opts.kprobe_multi.syms = syms;
  opts.kprobe_multi.cnt = 1;
  const Fd link(bpf_link_create(prog.get(), 0, BPF_TRACE_KPROBE_MULTI, &opts));
  if (!link) {
    return failed(std::move(c), "attach (no kprobe PMU, so a kprobe_multi link)", errno);
  }
  return worked(std::move(c),
                "loaded and attached through a kprobe_multi link (this kernel has no kprobe "
                "PMU; detached again)");
}

} // namespace

Check try_bpf() {
  Check c{.id = "bpf", .title = "BPF programs", .what = "load a socket filter (r0 = 0; exit)"};
  int err = 0;
  const Fd prog(load(BPF_PROG_TYPE_SOCKET_FILTER, kAnyAttach, 0, 0, err));
  if (!prog) return failed(std::move(c), "load", err);
  return worked(std::move(c), "loaded");
}

Check try_bpf_lsm() {
  Check c{.id = "bpf_lsm",
          .title = "BPF LSM programs",
          .what = "load lsm/file_open (BPF_PROG_TYPE_LSM on bpf_lsm_file_open) and attach it"};
  return load_and_attach_btf(std::move(c), BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_file_open",
                             BTF_KIND_FUNC);
}

Check try_fmod_ret() {
  Check c{.id = "fmod_ret",
          .title = "fmod_ret security_capable",
          .what = "load fmod_ret/security_capable (returns 0: no change) and attach it"};
  return load_and_attach_btf(std::move(c), BPF_PROG_TYPE_TRACING, BPF_MODIFY_RETURN,
                             "security_capable", BTF_KIND_FUNC);
}

Check try_tp_btf() {
  Check c{.id = "tp_btf",
          .title = "tp_btf sched_process_exec",
          .what = "load tp_btf/sched_process_exec (the exec backstop's hook) and attach it"};
  return load_and_attach_btf(std::move(c), BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP,
                             "btf_trace_sched_process_exec", BTF_KIND_TYPEDEF);
}

Check try_tp_btf_cap() {
  Check c{.id = "tp_btf_cap",
          .title = "tp_btf cap_capable",
          .what = "load tp_btf/cap_capable (the capability:cap_capable tracepoint, kernel "
                  ">= 6.14) and attach it"};
  return load_and_attach_btf(std::move(c), BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP,
                             "btf_trace_cap_capable", BTF_KIND_TYPEDEF);
}

Check try_kprobe() {
  Check c{.id = "kprobe",
          .title = "kprobe cap_capable",
          .what = "load a kprobe program and attach it to cap_capable"};
  const int type = kprobe_pmu_type();
  return type >= 0 ? kprobe_via_pmu(std::move(c), type, "cap_capable")
                   : kprobe_via_multi(std::move(c), "cap_capable");
}

Check try_ringbuf() {
  Check c{.id = "ringbuf", .title = "BPF ring buffer", .what = "create a 4 KiB ring buffer map"};
  const Fd map(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "corral_probe", 0, 0, 4096, nullptr));
  if (!map) return failed(std::move(c), "create", errno);
  return worked(std::move(c), "created");
}

} // namespace corral::probe

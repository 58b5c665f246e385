// run(): every try in order; decide(): what `--enforcer auto` picks from their outcomes.
#include <algorithm>

#include <bpf/libbpf.h>
#include <unistd.h>

#include "probe/internal.h"

namespace corral::probe {
namespace {

bool works(const Report& r, const char* id) {
  const Check* c = r.check(id);
  return c != nullptr && c->result == Check::Result::Works;
}

bool unknown(const Report& r, const char* id) {
  const Check* c = r.check(id);
  return c == nullptr || c->result == Check::Result::NeedsRoot ||
         c->result == Check::Result::NotTried;
}

std::string outcome(const Report& r, const char* id) {
  const Check* c = r.check(id);
  if (c == nullptr) return std::string(id) + " not checked";
  return c->title + ": " + (c->message.empty() ? to_string(c->result) : c->message);
}

Pick fanotify_pick(const Report& r, const char* category) {
  if (works(r, "fanotify_perm")) {
    return {category, "fanotify", "enforced", "fanotify permission events work"};
  }
  if (unknown(r, "fanotify_perm")) return {category, "unknown", "unknown", "needs root"};
  return {category, "none", "unsupported", outcome(r, "fanotify_perm")};
}

Pick network_pick(const Report& r) {
  if (works(r, "cgroup_bpf")) return {"network", "cgroup-bpf", "enforced", "cgroup BPF works"};
  if (unknown(r, "cgroup_bpf")) {
    const Check* c = r.check("cgroup_bpf");
    return {"network", "unknown", "unknown", c != nullptr ? c->message : "not checked"};
  }
  return {"network", "none", "unsupported", outcome(r, "cgroup_bpf")};
}

// In order of strength (issue 9): an LSM hook, then fmod_ret (both make the operation fail),
// then the cap_capable tracepoint or a kprobe on cap_capable (see every use, cannot make one
// fail).
Pick capabilities_pick(const Report& r) {
  if (works(r, "bpf_lsm")) return {"capabilities", "bpf-lsm", "enforced", "BPF LSM programs load"};
  if (works(r, "fmod_ret")) {
    return {"capabilities", "fmod_ret security_capable", "enforced",
            "BPF LSM: no; fmod_ret on security_capable loads"};
  }
  if (works(r, "tp_btf_cap")) {
    return {"capabilities", "tp_btf cap_capable (audit only)", "audited only",
            "BPF LSM and fmod_ret cannot load; the cap_capable tracepoint can"};
  }
  if (works(r, "kprobe")) {
    return {"capabilities", "kprobe cap_capable (audit only)", "audited only",
            "BPF LSM and fmod_ret cannot load; a kprobe on cap_capable can"};
  }
  if (unknown(r, "bpf_lsm")) return {"capabilities", "unknown", "unknown", "needs root"};
  return {"capabilities", "none", "unsupported",
          "no BPF LSM, fmod_ret, cap_capable tracepoint or kprobe here"};
}

Check needs_root(Check c) {
  c.result = Check::Result::NeedsRoot;
  c.message = "needs root";
  return c;
}

// libbpf's own warnings would repeat what the checks report.
int quiet(libbpf_print_level, const char*, va_list) {
  return 0;
}

} // namespace

void decide(Report& r) {
  r.picks = {fanotify_pick(r, "process"), fanotify_pick(r, "file"), network_pick(r),
             capabilities_pick(r)};
  r.notes.clear();
  const auto& lsm = r.kernel.lsm.active;
  const bool listed = std::find(lsm.begin(), lsm.end(), "bpf") != lsm.end();
  const Check* b = r.check("bpf_lsm");
  if (listed && b != nullptr && b->result == Check::Result::Fails) {
    r.notes.push_back("bpf is in the active LSM list, but BPF LSM programs cannot be used here: " +
                      b->message);
  } else if (!lsm.empty() && !listed) {
    r.notes.push_back("bpf is not in the active LSM list: BPF LSM programs would never run "
                      "(boot with lsm=...,bpf to enable it)");
  }
  if (!r.root) {
    r.notes.push_back("not root: the checks marked 'needs root' were not tried (run sudo corral "
                      "probe)");
  }
}

Report run(const Options& o) {
  libbpf_set_print(quiet);
  Report r;
  r.root = ::geteuid() == 0;
  r.kernel = read_kernel();
  using Try = Check (*)();
  std::vector<std::pair<Check, Try>> tries = {
      {{.id = "bpf", .title = "BPF programs"}, try_bpf},
      {{.id = "fanotify_perm", .title = "fanotify permission events"}, try_fanotify},
      {{.id = "cgroup_bpf", .title = "cgroup BPF"}, nullptr},
      {{.id = "bpf_lsm", .title = "BPF LSM programs"}, try_bpf_lsm},
      {{.id = "fmod_ret", .title = "fmod_ret security_capable"}, try_fmod_ret},
      {{.id = "tp_btf_cap", .title = "tp_btf cap_capable"}, try_tp_btf_cap},
      {{.id = "kprobe", .title = "kprobe cap_capable"}, try_kprobe},
  };
  if (o.full) {
    tries.push_back({{.id = "tp_btf", .title = "tp_btf sched_process_exec"}, try_tp_btf});
    tries.push_back({{.id = "ringbuf", .title = "BPF ring buffer"}, try_ringbuf});
  }
  for (auto& [c, fn] : tries) {
    if (!r.root)
      r.checks.push_back(needs_root(c));
    else if (fn == nullptr)
      r.checks.push_back(try_cgroup_bpf(r.kernel.cgroup2));
    else
      r.checks.push_back(fn());
  }
  r.sockets = find_runtime_sockets(o.containerd_socket);
  decide(r);
  return r;
}

} // namespace corral::probe

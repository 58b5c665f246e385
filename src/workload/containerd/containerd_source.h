// The containerd workload source: reports every running container of a containerd (all its
// namespaces) as a Workload, and keeps reporting as containers start and stop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "workload/workload.h"

namespace corral::workload {

class ContainerdSource {
public:
  struct Options {
    std::string socket = "/run/containerd/containerd.sock";
    // Called from the source's own thread, never concurrently. upsert: a workload is
    // running (new, or changed since its last report); it is called on containerd's
    // /tasks/create event, before the container's first process runs its program, so that
    // enforcement can be in place first. remove: the workload with this id is gone.
    // The callbacks must not call stop() or destroy the source.
    std::function<void(const Workload&)> upsert;
    std::function<void(const std::string& id)> remove;
    std::function<void(const std::string& msg)> log; // operational messages; may be empty
    // Called after each complete listing (at start and after every reconnect), so that the
    // agent can enforce what already runs before it serves its API. May be empty.
    std::function<void()> synced;
  };

  // Starts the source's thread. Fails only on bad options: an absent or restarting
  // containerd is retried (100 ms backoff doubling to 2 s) for the source's whole life.
  static Result<std::unique_ptr<ContainerdSource>> make(Options options);

  ~ContainerdSource();
  ContainerdSource(const ContainerdSource&) = delete;
  ContainerdSource& operator=(const ContainerdSource&) = delete;

  // Cancels the calls in flight and joins the thread; no callback runs after it returns.
  // Idempotent.
  void stop();

private:
  struct Impl;
  explicit ContainerdSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace corral::workload

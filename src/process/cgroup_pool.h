// CgroupPool: empty node groups made ahead of time and removed later, by a worker thread, so
// that a cgroup mkdir (~35 us) and rmdir (~20 us) never sit on the spawn path.
//
// Thread-safety: every public method may be called from any thread; the launcher calls them
// from the io_context thread. Groups are never reused: a recorded cgroup path names one node
// attempt for ever, so crash recovery can trust it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "process/unique_fd.h"

namespace warden::process {

struct CgroupSlot {
  std::filesystem::path path;  // absolute directory of the group
  UniqueFd procs;              // <path>/cgroup.procs opened O_WRONLY: the child joins by "0"
  UniqueFd events;             // <path>/cgroup.events opened O_RDONLY
};

class CgroupPool {
 public:
  // Keeps about `target` empty groups ready under `root` (which must exist and be writable).
  // First, on the worker, removes the empty groups that daemons no longer running left under
  // `root` (a daemon that was killed cannot remove its pool); see RemoveLeftovers.
  CgroupPool(std::filesystem::path root, size_t target);
  // Stops the worker, removes the groups still in the pool and every queued removal.
  ~CgroupPool();
  CgroupPool(const CgroupPool&) = delete;
  CgroupPool& operator=(const CgroupPool&) = delete;

  // A fresh, empty group of its own. Makes one on the calling thread when the pool is dry.
  Result<CgroupSlot> Take();
  // Queues an empty group for rmdir on the worker, about a second later. A group that is still busy
  // is retried once more at destruction, then left (recovery can find it under the root).
  void Remove(std::filesystem::path group);

 private:
  Result<CgroupSlot> Make();
  void Work();
  // Removes every `node-PID-N` group under the root whose PID names no running process.
  // rmdir refuses a group that still has members, so only empty groups go: the processes of
  // a dead daemon's nodes, if any are left, stay where recovery looks for them.
  void RemoveLeftovers();

  const std::filesystem::path root_;
  const size_t target_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<CgroupSlot> ready_;                 // guarded by mutex_
  std::vector<std::filesystem::path> removals_;  // guarded by mutex_
  // When the queued removals are due (guarded by mutex_): removals wait a little and go in
  // batches, so a mass stop does not pay for rmdir while its processes are still exiting.
  std::chrono::steady_clock::time_point removals_due_;
  std::vector<std::filesystem::path> busy_;  // guarded by mutex_: rmdir said EBUSY
  unsigned long next_name_ = 0;              // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::thread worker_;
};

}  // namespace warden::process

#include "process/cgroup_pool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace warden::process {

CgroupPool::CgroupPool(std::filesystem::path root, size_t target)
    : root_(std::move(root)), target_(target) {
  worker_ = std::thread([this] { Work(); });
}

CgroupPool::~CgroupPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
  for (CgroupSlot& slot : ready_) {
    slot.procs.Reset();
    ::rmdir(slot.path.c_str());
  }
  for (const auto& path : removals_) ::rmdir(path.c_str());
  for (const auto& path : busy_) ::rmdir(path.c_str());
}

Result<CgroupSlot> CgroupPool::Make() {
  for (int tries = 0; tries < 1000; ++tries) {
    unsigned long n;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      n = next_name_++;
    }
    // The daemon's pid keeps names of two daemons apart; EEXIST (a leftover of an earlier
    // daemon with the same pid) just moves on to the next number.
    CgroupSlot slot;
    slot.path = root_ / ("node-" + std::to_string(::getpid()) + "-" + std::to_string(n));
    if (::mkdir(slot.path.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      return Status::FromErrno("mkdir " + slot.path.string(), errno);
    }
    slot.procs.Reset(::open((slot.path / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!slot.procs.valid()) {
      int err = errno;
      ::rmdir(slot.path.c_str());
      return Status::FromErrno("open cgroup.procs", err);
    }
    return slot;
  }
  return Status::Internal("no free cgroup name under " + root_.string());
}

Result<CgroupSlot> CgroupPool::Take() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!ready_.empty()) {
      CgroupSlot slot = std::move(ready_.front());
      ready_.pop_front();
      wake_.notify_one();
      return slot;
    }
  }
  wake_.notify_one();
  return Make();
}

void CgroupPool::Remove(std::filesystem::path group) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    removals_.push_back(std::move(group));
  }
  wake_.notify_one();
}

void CgroupPool::Work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !removals_.empty() || ready_.size() < target_; });
    if (stopping_) return;
    if (!removals_.empty()) {
      std::vector<std::filesystem::path> batch;
      batch.swap(removals_);
      lock.unlock();
      std::vector<std::filesystem::path> busy;
      for (const auto& path : batch) {
        if (::rmdir(path.c_str()) != 0 && errno == EBUSY) busy.push_back(path);
      }
      lock.lock();
      busy_.insert(busy_.end(), busy.begin(), busy.end());
      continue;
    }
    lock.unlock();
    Result<CgroupSlot> slot = Make();
    lock.lock();
    if (!slot.ok()) {
      // Take() will make groups itself and report the error to its caller; do not spin.
      wake_.wait(lock, [this] { return stopping_ || !removals_.empty(); });
      continue;
    }
    ready_.push_back(std::move(slot).value());
  }
}

}  // namespace warden::process

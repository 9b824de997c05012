#include "process/cgroup_pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <utility>

#include "process/cgroup.h"

namespace warden::process {

CgroupPool::CgroupPool(std::filesystem::path root, size_t target)
    : root_(std::move(root)), target_(target) {
  // Names count from a random start: a daemon with the pid of an earlier one (pid 1 in a
  // container, after a reboot) must not make a group under the very name a crashed
  // daemon's journal recorded, which crash recovery examines and may remove.
  next_name_ = std::random_device{}() & 0x7fffffffUL;
  // The worker blocks every signal (it inherits the mask in force when it is created), so
  // that process-directed signals such as SIGTERM always reach the io_context thread. A
  // signal delivered to a thread parked in a condition wait may otherwise be held there
  // (sanitizer runtimes defer it until the wait ends, which may be never).
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  worker_ = std::thread([this] { Work(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
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
    slot.events.Reset();
    ::rmdir(slot.path.c_str());
  }
  for (const auto& path : removals_) (void)RemoveCgroupTree(path);
  for (const auto& path : busy_) (void)RemoveCgroupTree(path);
}

Result<CgroupSlot> CgroupPool::Make() {
  for (int tries = 0; tries < 1000; ++tries) {
    unsigned long n;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      n = next_name_++;
    }
    // The daemon's pid keeps names of two daemons apart, the random start two lifetimes of
    // one pid; EEXIST (a leftover of an earlier daemon) just moves on to the next number.
    CgroupSlot slot;
    slot.path = root_ / ("node-" + std::to_string(::getpid()) + "-" + std::to_string(n));
    if (::mkdir(slot.path.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      return Status::FromErrno("mkdir " + slot.path.string(), errno);
    }
    slot.procs.Reset(::open((slot.path / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    slot.events.Reset(::open((slot.path / "cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
    if (!slot.procs.valid() || !slot.events.valid()) {
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
  std::lock_guard<std::mutex> lock(mutex_);
  if (removals_.empty()) {
    removals_due_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    wake_.notify_one();  // to start waiting for the deadline
  }
  removals_.push_back(std::move(group));
}

void CgroupPool::RemoveLeftovers() {
  const std::string own = std::to_string(::getpid());
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::filesystem::path& path = it->path();
    std::string name = path.filename().string();
    if (name.rfind("node-", 0) != 0) continue;
    size_t dash = name.find('-', 5);
    if (dash == std::string::npos || dash == 5) continue;
    std::string pid = name.substr(5, dash - 5);
    if (pid.find_first_not_of("0123456789") != std::string::npos || pid == own) continue;
    if (::access(("/proc/" + pid).c_str(), F_OK) == 0) continue;  // that daemon still runs
    (void)RemoveCgroupTree(path);
  }
}

void CgroupPool::Work() {
  RemoveLeftovers();
  std::unique_lock<std::mutex> lock(mutex_);
  auto removals_ready = [this] {
    return !removals_.empty() && std::chrono::steady_clock::now() >= removals_due_;
  };
  auto has_work = [&] { return stopping_ || removals_ready() || ready_.size() < target_; };
  for (;;) {
    if (removals_.empty()) {
      // A first removal ends this wait as well, so that the next one waits for its due time
      // (has_work alone would keep waiting past it, until some other notification).
      wake_.wait(lock, [&] { return has_work() || !removals_.empty(); });
    } else {
      wake_.wait_until(lock, removals_due_, has_work);
    }
    if (stopping_) return;
    if (removals_ready()) {
      std::vector<std::filesystem::path> batch;
      batch.swap(removals_);
      lock.unlock();
      std::vector<std::filesystem::path> busy;
      for (const auto& path : batch) {
        // A node may have made groups of its own inside: they go first.
        if (RemoveCgroupTree(path) == EBUSY) busy.push_back(path);
      }
      lock.lock();
      busy_.insert(busy_.end(), busy.begin(), busy.end());
      continue;
    }
    if (ready_.size() >= target_) continue;  // woken early for a removal not yet due
    lock.unlock();
    Result<CgroupSlot> slot = Make();
    lock.lock();
    if (!slot.ok()) {
      // Take() makes groups itself and reports the error to its caller; do not spin.
      wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
      continue;
    }
    ready_.push_back(std::move(slot).value());
  }
}

}  // namespace warden::process

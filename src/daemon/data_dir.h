// DataDir: where the daemon keeps its journal and logs, and the lock that allows one
// daemon per directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "base/status.h"

namespace warden::daemon {

// The default data directory: /var/lib/warden for root, else $XDG_STATE_HOME/warden
// (falling back to ~/.local/state/warden).
std::string DefaultDataDir();

class DataDir {
 public:
  // Creates `path` (mode 0700, parents too) if missing and takes its exclusive lock
  // (`wardend.lock`, holding the owner's pid), waiting up to `wait` for it. Fails with
  // Conflict naming every process found holding the lock (pid and command line, from
  // /proc/*/fd) when it is still held after `wait`, IoError when the directory is unusable.
  static Result<DataDir> Acquire(const std::string& path,
                                 std::chrono::milliseconds wait = std::chrono::seconds(5));
  DataDir(DataDir&& other) noexcept;
  DataDir& operator=(DataDir&&) = delete;
  ~DataDir();  // releases the lock

  const std::string& path() const { return path_; }
  // The journal's SQLite file inside the directory.
  std::string JournalPath() const { return path_ + "/warden.db"; }

 private:
  DataDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::string path_;
  int lock_fd_;  // -1 once moved from
};

}  // namespace warden::daemon

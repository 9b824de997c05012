#include "daemon/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace warden::daemon {

std::string DefaultDataDir() {
  if (geteuid() == 0) return "/var/lib/warden";
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    return std::string(state) + "/warden";
  }
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/warden";
}

Result<DataDir> DataDir::Acquire(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IoError("cannot create data directory " + path + ": " + ec.message());
  std::filesystem::permissions(path, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  std::string lock_path = path + "/wardend.lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("cannot open " + lock_path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (err == EWOULDBLOCK) {
      std::string owner = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
      while (!owner.empty() && owner.back() == '\n') owner.pop_back();
      return Status::Conflict("another wardend (pid " + owner + ") is using data directory " +
                              path);
    }
    return Status::FromErrno("cannot lock " + lock_path, err);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno("cannot write " + lock_path, err);
  }
  return DataDir(path, fd);
}

DataDir::DataDir(DataDir&& other) noexcept
    : path_(std::move(other.path_)), lock_fd_(other.lock_fd_) {
  other.lock_fd_ = -1;
}

DataDir::~DataDir() {
  if (lock_fd_ >= 0) close(lock_fd_);  // closing drops the flock
}

}  // namespace warden::daemon

#include "daemon/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace warden::daemon {

std::string DefaultDataDir() {
  if (geteuid() == 0) return "/var/lib/warden";
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    return std::string(state) + "/warden";
  }
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/warden";
}

namespace {

// "PID (COMMAND LINE), ..." for every process with a descriptor open on `lock_path`, read
// from /proc/*/fd: the pid written in the file names only the daemon that wrote it.
std::string LockHolders(const std::string& lock_path) {
  std::string out;
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code fd_ec;
    for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      if (std::filesystem::read_symlink(fd.path(), link_ec).string() != lock_path) continue;
      std::ifstream cmdline(proc.path() / "cmdline", std::ios::binary);
      std::string command((std::istreambuf_iterator<char>(cmdline)), {});
      std::replace(command.begin(), command.end(), '\0', ' ');
      while (!command.empty() && command.back() == ' ') command.pop_back();
      if (!out.empty()) out += ", ";
      out += "pid " + name + " (" + (command.empty() ? "?" : command) + ")";
      break;
    }
  }
  return out;
}

}  // namespace

Result<DataDir> DataDir::Acquire(const std::string& path, std::chrono::milliseconds wait) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IoError("cannot create data directory " + path + ": " + ec.message());
  std::filesystem::permissions(path, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  std::string lock_path = path + "/wardend.lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("cannot open " + lock_path, errno);
  // After a crash the lock can outlive the daemon for a moment: a node's child still between
  // clone and exec holds a copy of the locked descriptor. Getting the lock proves that no
  // such child is left, so it is waited for, bounded.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  bool logged = false;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      close(fd);
      return Status::FromErrno("cannot lock " + lock_path, err);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string holders = LockHolders(lock_path);
      close(fd);
      return Status::Conflict(
          "another process holds the lock of data directory " + path +
          (holders.empty() ? std::string(" (no holder found in /proc)") : ": " + holders));
    }
    if (!logged) {
      spdlog::info("waiting up to {} ms for the lock of data directory {}", wait.count(), path);
      logged = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
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

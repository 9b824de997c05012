#include "daemon/socket_file.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "daemon/data_dir.h"

namespace warden::daemon {

namespace {

Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    return Status::InvalidArgument("socket path " + path + " is longer than " +
                                   std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// True if something accepts connections at `path`.
bool SomeoneListens(const sockaddr_un& address) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return live;
}

}  // namespace

std::string DefaultSocketPath() {
  if (geteuid() == 0) return "/run/warden/wardend.sock";
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime) {
    return std::string(runtime) + "/warden/wardend.sock";
  }
  return DefaultDataDir() + "/wardend.sock";
}

Result<SocketFile> SocketFile::Prepare(const std::string& path) {
  auto address = AddressOf(path);
  if (!address.ok()) return address.status();
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    mode_t old = umask(022);
    std::filesystem::create_directories(dir, ec);
    umask(old);
    if (ec)
      return Status::IoError("cannot create socket directory " + dir.string() + ": " +
                             ec.message());
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    return Status::FromErrno("cannot use socket directory " + dir.string(), errno);
  }
  if (!S_ISDIR(st.st_mode)) return Status::IoError(dir.string() + " is not a directory");
  if ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::InvalidArgument(
        "socket directory " + dir.string() +
        " may be written by other users; use a directory only wardend's user can write "
        "(--socket)");
  }
  struct stat existing;
  if (lstat(path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return Status::Conflict(path +
                              " exists and is not a socket; remove it or choose another "
                              "--socket");
    }
    if (SomeoneListens(*address)) {
      return Status::Conflict("another wardend is already listening on " + path);
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno("cannot remove the stale socket " + path, errno);
    }
  }
  return SocketFile(path);
}

SocketFile::SocketFile(SocketFile&& other) noexcept
    : path_(std::move(other.path_)),
      published_(std::exchange(other.published_, false)),
      dev_(other.dev_),
      ino_(other.ino_) {}

SocketFile::~SocketFile() {
  if (!published_) return;
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    unlink(path_.c_str());
  }
}

Result<int> SocketFile::Publish(const std::optional<std::string>& group) {
  std::optional<gid_t> gid;
  if (group) {
    if (const ::group* g = getgrnam(group->c_str())) {
      gid = g->gr_gid;
    } else if (!group->empty() && group->find_first_not_of("0123456789") == std::string::npos) {
      gid = static_cast<gid_t>(std::stoul(*group));
    } else {
      return Status::InvalidArgument("--socket-group: unknown group '" + *group + "'");
    }
  }
  std::string temp = path_ + ".new." + std::to_string(getpid());
  auto address = AddressOf(temp);
  if (!address.ok()) return address.status();
  unlink(temp.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::FromErrno("cannot create a Unix socket", errno);
  auto fail = [&](const std::string& what) {
    int err = errno;
    close(fd);
    unlink(temp.c_str());
    return Status::FromErrno(what, err);
  };
  // Born 0600 whatever the umask: nobody else can connect before the chmod below.
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof *address);
  umask(old);
  if (rc != 0) return fail("cannot bind " + temp);
  if (gid) {
    if (chown(temp.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
      return fail("cannot give " + temp + " to group " + *group);
    }
    if (chmod(temp.c_str(), 0660) != 0) return fail("cannot chmod " + temp);
  }
  if (listen(fd, SOMAXCONN) != 0) return fail("cannot listen on " + temp);
  if (rename(temp.c_str(), path_.c_str()) != 0)
    return fail("cannot rename " + temp + " to " + path_);
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  published_ = true;
  return fd;
}

}  // namespace warden::daemon

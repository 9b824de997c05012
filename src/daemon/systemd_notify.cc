#include "daemon/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace warden::daemon {

Status NotifySystemd(std::string_view state) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr || *name == '\0') return Status::Ok();
  size_t length = std::strlen(name);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || length >= sizeof address.sun_path) {
    return Status::InvalidArgument(std::string("NOTIFY_SOCKET is not a usable address: ") + name);
  }
  std::memcpy(address.sun_path, name, length);
  if (name[0] == '@') address.sun_path[0] = '\0';  // abstract namespace
  socklen_t address_size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("sd_notify: socket", errno);
  ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&address), address_size);
  int err = errno;
  close(fd);
  if (sent < 0) return Status::FromErrno(std::string("sd_notify: cannot send to ") + name, err);
  return Status::Ok();
}

}  // namespace warden::daemon

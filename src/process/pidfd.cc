#include "process/pidfd.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace warden::process {

// Raw system calls rather than glibc's wrappers: they behave the same on every glibc that
// runs on Linux >= 5.3.
Result<UniqueFd> OpenPidfd(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    int err = errno;
    if (err == ESRCH) return Status::NotFound("no process " + std::to_string(pid));
    return Status::FromErrno("pidfd_open " + std::to_string(pid), err);
  }
  return UniqueFd(fd);
}

Status SendSignal(int pidfd, int signo) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0) != 0) {
    int err = errno;
    if (err == ESRCH) return Status::NotFound("process has exited");
    return Status::FromErrno("pidfd_send_signal", err);
  }
  return Status::Ok();
}

}  // namespace warden::process

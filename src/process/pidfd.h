// Pidfd helpers: a pid is signalled only through a pidfd, so a recycled pid is never hit.
// Thread-safe (plain system calls).
#pragma once

#include <sys/types.h>

#include "base/status.h"
#include "process/unique_fd.h"

namespace warden::process {

// pidfd_open(pid). Returns NotFound when no such process exists (it may be a zombie: a zombie
// still has a pidfd).
Result<UniqueFd> OpenPidfd(pid_t pid);

// pidfd_send_signal(pidfd, signo). Returns NotFound when the process has already exited.
Status SendSignal(int pidfd, int signo);
inline Status SendSignal(const UniqueFd& pidfd, int signo) {
  return SendSignal(pidfd.get(), signo);
}

}  // namespace warden::process

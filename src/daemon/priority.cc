#include "daemon/priority.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

namespace warden::daemon {

std::optional<int> RunAheadOfNodes(int levels) {
  errno = 0;
  const int started = ::getpriority(PRIO_PROCESS, 0);
  if (started == -1 && errno != 0) return std::nullopt;
  const int ahead = std::max(started - levels, -20);
  if (ahead == started || ::setpriority(PRIO_PROCESS, 0, ahead) != 0) {
    spdlog::debug("wardend keeps nice {}: its nodes run at the same priority", started);
    return std::nullopt;
  }
  // With sched_autogroup, CPU time is shared between sessions first; every node has a
  // session of its own, so the nice value of wardend's session is what counts then. Only a
  // session of its own (a service's) is wardend's to change, not a terminal's it was
  // started from.
  if (::getsid(0) == ::getpid()) {
    std::ofstream autogroup("/proc/self/autogroup");
    if (autogroup) autogroup << ahead << std::flush;
  }
  spdlog::debug("wardend runs at nice {}, its nodes at nice {}", ahead, started);
  return started;
}

}  // namespace warden::daemon

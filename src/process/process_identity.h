// ProcessIdentity: who a launched process is, in a form that survives a daemon crash, and the
// two checks crash recovery needs: classify a recorded identity against /proc, and signal it
// only if it is still the same process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace warden::process {

// Environment variable names of the cookie and the notify descriptor.
inline constexpr std::string_view kEnvExecutionId = "WARDEN_EXECUTION_ID";
inline constexpr std::string_view kEnvNodeId = "WARDEN_NODE_ID";
inline constexpr std::string_view kEnvAttempt = "WARDEN_ATTEMPT";
inline constexpr std::string_view kEnvNotifyFd = "WARDEN_NOTIFY_FD";

// The best-effort marker inherited by every descendant through its environment.
struct Cookie {
  std::string execution_id;
  std::string node_id;
  int attempt = 0;  // counts from 1

  bool operator==(const Cookie&) const = default;
};

// Reads the cookie out of the text of a /proc/PID/environ file (NUL-separated NAME=value
// entries). Missing variables leave their fields empty (attempt 0); so does a
// WARDEN_ATTEMPT that is not a whole decimal int.
Cookie ParseEnvironCookie(std::string_view environ);

struct ProcessIdentity {
  std::string boot_id;       // /proc/sys/kernel/random/boot_id when launched
  pid_t pid = 0;             // the node's leader
  uint64_t start_ticks = 0;  // /proc/PID/stat field 22
  pid_t pgid = 0;            // = pid: every node runs in its own session (from exec on)
  pid_t sid = 0;             // = pid
  std::string cgroup_path;   // absolute path of its cgroup directory; empty in pgroup mode
  Cookie cookie;
};

enum class IdentityMatch {
  kSameProcess,   // alive, same boot, same start time
  kZombie,        // same process, exited but not yet reaped
  kGone,          // no process with that pid
  kPidReused,     // a different process now holds the pid: never signal it
  kHostRebooted,  // boot_id differs: every recorded process is gone
};

// "same_process", "zombie", "gone", "pid_reused", "host_rebooted".
std::string_view IdentityMatchName(IdentityMatch match);

// Compares `identity` with what /proc (under `proc_root`) says now, in this order: boot id,
// existence, start time, state. Returns an error only when /proc cannot be read.
Result<IdentityMatch> ClassifyIdentity(const ProcessIdentity& identity,
                                       const std::filesystem::path& proc_root = "/proc");

// Sends `signo` to the recorded process only if it is still the same one: pidfd_open(pid),
// then compare boot id and start time, then pidfd_send_signal through that pidfd, so the pid
// cannot be recycled between the check and the signal. Returns Conflict (pid reused or host
// rebooted: nothing sent), NotFound (gone), or Ok. A zombie accepts the signal (no effect).
Status SignalIdentity(const ProcessIdentity& identity, int signo);

}  // namespace warden::process

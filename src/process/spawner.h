// Spawner: starts one child with clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD), the way
// posix_spawn does, so the cost does not grow with the daemon's memory and the parent gets a
// pidfd atomically (the pid can never be recycled under it). Everything the child does before
// exec is a raw system call on memory prepared by the parent: no allocation, no locks, no
// sanitizer interceptors.
//
// Thread-safety: one Spawner is used by one thread at a time (it owns the child's stack).
// While a spawn is in flight the calling thread is suspended until the child has exec'd or
// failed, with every signal blocked.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "process/unique_fd.h"

namespace warden::process {

// The numbers the child sees; WARDEN_NOTIFY_FD names kNotifyFd.
inline constexpr int kNotifyFd = 3;

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

struct SpawnRequest {
  std::vector<std::string> argv;             // non-empty
  std::vector<std::string> exec_candidates;  // paths tried in order (PATH already expanded)
  std::vector<std::string> env;              // "KEY=VALUE", complete
  std::string cwd;                           // absolute
  int stdout_fd = -1;                        // becomes fd 1 (required)
  int stderr_fd = -1;                        // becomes fd 2 (required)
  int notify_fd = -1;                        // becomes fd 3 (required)
  int cgroup_procs_fd = -1;                  // when >= 0, the child writes "0" to it first
  std::optional<Credentials> credentials;    // switch to these before exec
};

struct SpawnedChild {
  pid_t pid = 0;
  UniqueFd pidfd;
};

class Spawner {
 public:
  Spawner();
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Starts the child: new session, signal dispositions and mask reset, cgroup joined,
  // credentials switched, no_new_privs, cwd, stdin /dev/null, fds 1-3 as given, every other
  // descriptor closed, then exec. Returns the running child, or (the child already reaped):
  //   NotFound         executable not found            (shell convention: exit 127)
  //   InvalidArgument  bad cwd, not executable, ...    (exit 126)
  //   IoError/Internal the daemon could not spawn at all
  Result<SpawnedChild> Spawn(const SpawnRequest& request);

 private:
  void* stack_ = nullptr;
};

// The shell exit code for a failed launch: 127 for NotFound, else 126.
int ExitCodeForLaunchFailure(const Status& status);

}  // namespace warden::process

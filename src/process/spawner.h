// Spawner: starts one child with clone(CLONE_VM | CLONE_PIDFD), the way posix_spawn does
// (no copy of the daemon's memory, a pidfd atomically), but WITHOUT waiting for the child's
// exec: setsid() alone costs about a millisecond under scheduler autogroups on a busy host,
// and the io_context thread should not pay for it. The child runs on its own stack, reads
// only memory the parent no longer touches (a SpawnContext), makes raw system calls (no
// errno, no libc, no sanitizer interceptors), and reports a failure through a close-on-exec
// pipe. The context stays alive until that pipe reaches end of file (exec or exit).
//
// Missing executables and bad working directories are found by the parent before the child
// exists, so they fail Spawn() synchronously; what only the child can find (a file removed
// meanwhile, a permission seen only as another user) ends the child with 127 or 126 and is
// reported by PendingExec.
//
// Thread-safety: a Spawner may be used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "process/unique_fd.h"

namespace warden::process {

// The number the child sees; WARDEN_NOTIFY_FD names it.
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
  int notify_fd = -1;                        // becomes fd kNotifyFd (required)
  int cgroup_procs_fd = -1;                  // when >= 0, the child writes "0" to it first
  std::optional<Credentials> credentials;    // switch to these before exec
};

struct SpawnContext;

// The child between clone and exec. Owns what the child still reads (argv, env, its stack)
// until `exec_watch()` reaches end of file.
class PendingExec {
 public:
  explicit PendingExec(std::unique_ptr<SpawnContext> context);
  ~PendingExec();  // Finish() if it was not called
  PendingExec(const PendingExec&) = delete;
  PendingExec& operator=(const PendingExec&) = delete;

  // Readable (data or end of file) once the child has exec'd or failed.
  int exec_watch() const;
  // Reads the outcome: Ok when the child exec'd (or was killed before it could say
  // otherwise), else why it failed, with NotFound for a missing executable. Frees the
  // child's stack and context. `child_gone` (it has exited) means: do not wait for end of
  // file, which a later child that inherited the pipe until its own exec may delay. Otherwise
  // waits up to a second, then gives up (and leaks the stack rather than pull it from under
  // a child that is still running on it).
  Status Finish(bool child_gone = false);

 private:
  std::unique_ptr<SpawnContext> context_;
};

struct SpawnedChild {
  pid_t pid = 0;
  UniqueFd pidfd;
  std::unique_ptr<PendingExec> pending;
};

class Spawner {
 public:
  // Starts the child: new session, signal dispositions and mask reset, cgroup joined,
  // credentials switched, no_new_privs, cwd, stdin /dev/null, fds 1-3 as given, every other
  // descriptor closed at exec, then exec. Returns as soon as the child exists, or:
  //   NotFound         executable not found in any candidate     (exit 127)
  //   InvalidArgument  cwd not a directory, file not executable  (exit 126)
  //   IoError          the daemon could not spawn at all
  Result<SpawnedChild> Spawn(const SpawnRequest& request);
};

// The shell exit code for a failed launch: 127 for NotFound, else 126.
int ExitCodeForLaunchFailure(const Status& status);

}  // namespace warden::process

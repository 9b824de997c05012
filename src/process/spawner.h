// Spawner: starts one child with clone(CLONE_VM | CLONE_PIDFD), the way posix_spawn does
// (no copy of the daemon's memory, a pidfd atomically), but WITHOUT waiting for the child's
// exec: setsid() alone costs about a millisecond under scheduler autogroups on a busy host,
// and the io_context thread should not pay for it. The child runs on its own stack, reads
// only memory the parent no longer touches (a SpawnContext), makes raw system calls (no
// errno, no libc, no sanitizer interceptors), and reports a failure in that context before
// it exits (the memory is shared), where the parent reads it once the child has exited.
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
  std::optional<int> nice;                   // the child's nice value, when not the daemon's
};

struct SpawnContext;

// What the child reads between clone and exec (argv, env, its stack), kept until the child
// is known to have exited: the parent cannot cheaply tell when a live child has exec'd, and
// a few pages per running node are a fair price for not waiting for the exec.
class PendingExec {
 public:
  explicit PendingExec(std::unique_ptr<SpawnContext> context);
  // Without Release(), the stack and context are leaked on purpose: the child may still be
  // running on them.
  ~PendingExec();
  PendingExec(const PendingExec&) = delete;
  PendingExec& operator=(const PendingExec&) = delete;

  // Call once the child has exited (waitid said so). Returns Ok if it reached exec, else
  // why it failed before (NotFound for a missing executable: exit 127; else 126), and frees
  // the child's stack and context.
  Status Release();

 private:
  std::unique_ptr<SpawnContext> context_;
};

struct SpawnedChild {
  pid_t pid = 0;
  UniqueFd pidfd;
  std::unique_ptr<PendingExec> pending;
  // The child's start time in clock ticks since boot (/proc/PID/stat field 22) when the
  // clone fell inside one tick: CLOCK_BOOTTIME read just before and just after it gave the
  // same tick, and the kernel stamps the child in between. Unset otherwise (about one clone
  // in a hundred): read /proc then.
  std::optional<unsigned long long> start_ticks;
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

// ProcessRunner and ProcessTree: the seam between the lifecycle layer and the OS.
//
// The lifecycle (ExecutionManager) depends only on these two interfaces and replaces them
// with fakes in its tests; LocalProcessRunner (local_process_runner.h) is the real one.
//
// Threading contract (both interfaces, real and fake alike):
//   * Every method is called on the one thread that runs the io_context the runner was made
//     with (Boost.Process-style spawning from several threads deadlocks; we keep it simple).
//   * Every callback runs on that thread, and never inside the call that registered it: it is
//     always posted, so a callback may freely call back into the runner or the tree.
//
// Exit policy: a node is finished when its WHOLE tree is empty, not when its leader exits.
// If the leader exits while other members remain (background jobs, daemonised helpers), the
// remaining members are terminated as if by Terminate(RunnerOptions::leftover_grace), so a
// finished node never leaves anything behind; ExitInfo says whether that happened. The exit
// code and signal reported are the leader's.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "process/containment.h"
#include "process/process_identity.h"

namespace warden::process {

// Where a node's stdout and stderr go. Output travels through pipes read by the daemon, which
// appends it to the files below up to `cap_bytes` per stream and drops (but counts) the rest,
// so the cap is exact and a chatty node never blocks. With RunnerOptions::keeper set, the
// pipes outlive a crash of the daemon (output_keeper.h): the keeper drains them into the
// same files, up to the same cap, until crash recovery has terminated the orphans; without
// one, a node's writes fail with EPIPE (SIGPIPE by default) once the daemon has died.
struct OutputCapture {
  std::filesystem::path stdout_path;  // empty: the node's stream is /dev/null (not counted)
  std::filesystem::path stderr_path;  // empty: the node's stream is /dev/null (not counted)
  uint64_t cap_bytes = 16ull << 20;   // per stream; files are truncated at launch
  // Output is dropped (counted) while the capture file's filesystem has less than this much
  // space free, so that a chatty node cannot fill the disk the journal is on. 0: no reserve.
  uint64_t reserve_bytes = 64ull << 20;
};

struct LaunchSpec {
  Cookie cookie;                           // execution id, node id, attempt (>= 1)
  std::vector<std::string> argv;           // non-empty; argv[0] without '/' is found in PATH
  std::string cwd = "/";                   // absolute
  std::map<std::string, std::string> env;  // added to the daemon's environment
  std::string user;                        // name or uid; empty: the daemon's own user
  OutputCapture output;
};

// What the caller commits to its journal BEFORE the process exists (write-ahead).
struct LaunchIntent {
  Cookie cookie;
  ContainmentMode mode = ContainmentMode::kProcessGroup;
  std::string cgroup_path;  // the group the process will be born into; empty in pgroup mode
};

struct ExitInfo {
  std::optional<int> exit_code;       // set when the leader exited by itself
  std::optional<int> signal;          // set when a signal ended the leader (never both)
  int64_t leader_exited_ms = 0;       // wall ms since the epoch
  int64_t tree_empty_ms = 0;          // wall ms since the epoch: the node is finished
  bool leftovers_terminated = false;  // members outlived the leader and were terminated
  // Set when the child failed between clone and exec, e.g. "exec /x: No such file or
  // directory" (exit_code is then 127 for a missing file, else 126). Most such failures are
  // found before the child exists and fail Launch itself instead.
  std::string launch_error;
  uint64_t stdout_bytes = 0;    // written to the capture file (<= cap)
  uint64_t stdout_dropped = 0;  // beyond the cap
  uint64_t stderr_bytes = 0;
  uint64_t stderr_dropped = 0;
};

struct LaunchCallbacks {
  // Called synchronously inside Launch, before the process is created; a non-ok Status
  // aborts the launch and is returned by Launch. Optional.
  std::function<Status(const LaunchIntent&)> on_intent;
  // One `key=value` line the node wrote to WARDEN_NOTIFY_FD. A malformed line (no '=',
  // nothing before it, longer than RunnerOptions::notify_line_max) comes with an empty key
  // (and the line, or nothing for an overlong one, as value), for the caller to count.
  // Optional.
  std::function<void(std::string_view key, std::string_view value)> on_notify;
  // Exactly once, when the whole tree is empty and its output has been drained. Optional.
  std::function<void(const ExitInfo&)> on_exit;
};

struct TerminationReport {
  std::optional<int64_t> sigterm_sent_ms;  // wall ms; unset if the tree was already empty
  std::optional<int64_t> sigkill_sent_ms;  // unset if the tree emptied within the grace
  std::optional<int64_t> tree_empty_ms;    // unset if members survived SIGKILL
  bool graceful = false;                   // empty without SIGKILL
  std::vector<pid_t> unkillable;           // survived SIGKILL for RunnerOptions::kill_timeout
};

// One launched node attempt: its leader and everything the leader starts.
class ProcessTree {
 public:
  virtual ~ProcessTree() = default;

  // Captured at launch, for the caller's journal.
  virtual const ProcessIdentity& identity() const = 0;
  // True once the tree is empty (on_exit has been, or is about to be, called).
  virtual bool finished() const = 0;

  // Two-phase stop: SIGTERM to every member, thaw/SIGCONT right after (a paused tree can act
  // on it), SIGKILL to what remains after `grace`, then at most kill_timeout for the tree to
  // empty; members still there are reported unkillable and `done` is called anyway. A second
  // call while one runs joins it (an earlier deadline wins) and gets the same report. On an
  // already finished tree `done` gets a report with only graceful = true.
  virtual void Terminate(std::chrono::milliseconds grace,
                         std::function<void(const TerminationReport&)> done) = 0;

  // Freezes the tree; `done` runs once it is frozen (cgroup: "frozen 1" in cgroup.events;
  // pgroup: SIGSTOP sent, and every member seen stopped in /proc). A leader that has not
  // exec'd yet is left to exec first. Conflict while terminating or finished.
  virtual void Pause(std::function<void(Status)> done) = 0;
  // Thaws it; `done` gets the time this pause lasted. Conflict when not paused.
  virtual void Resume(std::function<void(Result<std::chrono::milliseconds>)> done) = 0;
  // Sum of every completed pause.
  virtual std::chrono::milliseconds total_paused() const = 0;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;

  // The containment in force (what /api/health reports).
  virtual ContainmentMode containment() const = 0;

  // Launches `spec` as a new tree. Returns the running tree (its identity filled in), or:
  //   NotFound         the executable was not found      (record exit code 127)
  //   InvalidArgument  bad spec, cwd, user, or not executable (record 126; see
  //                    ExitCodeForLaunchFailure in spawner.h)
  //   other            the daemon could not launch (pipes, cgroups, on_intent's error)
  // Launch returns as soon as the process exists, before it has exec'd (its setsid() alone
  // can take a millisecond on a busy host): identity() is final (pid, start time; pgid and
  // sid are the pid from exec on), and Terminate/Pause already work. A failure only the
  // child can see (a file removed meanwhile, a format the kernel refuses) ends the node with
  // exit code 127/126 and ExitInfo::launch_error. The process is not held before exec: its
  // intent (cookie, cgroup path) is journaled through on_intent first, which is what
  // recovery needs to find it if the daemon dies before the identity is committed.
  virtual Result<std::shared_ptr<ProcessTree>> Launch(const LaunchSpec& spec,
                                                      LaunchCallbacks callbacks) = 0;
};

}  // namespace warden::process

// LocalProcessTree: the real ProcessTree, one per launched node attempt. Made only by
// LocalProcessRunner, which feeds it the events it cannot see alone (cgroup.events changes,
// results of the /proc scan that finds process-group members and adopted escapees).
//
// What "the tree" is:
//   cgroup  every process in the node's cgroup.
//   pgroup  the leader's process group, plus children the daemon adopted (as subreaper)
//           that still carry the node's cookie (found by the runner's scan when the tree
//           starts terminating, when its leader exits and on every batch of SIGCHLD); an
//           escapee that leads a group is signalled as a group. Escapees that both left the
//           session and dropped the cookie (`setsid env -i ...`) are not contained in this
//           mode: use cgroups.
//
// Termination: SIGTERM and SIGCONT go to the whole process group first (one kill() each), so
// a mass stop reaches every tree at once; in cgroup mode members that left the group get
// theirs through pidfds from a batched sweep of cgroup.procs ~10 ms later (re-read until no
// new pid appears); SIGKILL is cgroup.kill, or kill(-pgid) plus escapees.
//
// Signal safety: a process group is signalled only while its leader is unreaped, so kill(-pgid)
// can never reach a recycled group. In pgroup mode the leader's zombie is kept (waitid
// WNOWAIT) until the group is empty and reaped only at Finish(); in cgroup mode the leader is
// reaped at once and members are signalled through pidfds from then on. Escapees are
// unreaped children of the daemon, reaped only on this thread, so their pids are stable.
//
// Thread: the io_context thread only (see process_runner.h).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <set>
#include <vector>

#include "base/clock.h"
#include "process/output_pipe.h"
#include "process/process_runner.h"
#include "process/spawner.h"
#include "process/unique_fd.h"

namespace warden::process {

class LocalProcessRunner;

struct TreeTimeouts {
  std::chrono::milliseconds kill_timeout{5000};
  std::chrono::milliseconds leftover_grace{2000};
};

class LocalProcessTree final : public ProcessTree,
                               public std::enable_shared_from_this<LocalProcessTree> {
 public:
  struct Pipes {
    std::shared_ptr<OutputPipe> stdout_pipe;
    std::shared_ptr<OutputPipe> stderr_pipe;
    std::shared_ptr<OutputPipe> notify_pipe;
  };

  LocalProcessTree(LocalProcessRunner* runner, boost::asio::io_context& io, const Clock& clock,
                   ContainmentMode mode, TreeTimeouts timeouts, ProcessIdentity identity,
                   UniqueFd pidfd, std::unique_ptr<PendingExec> pending_exec, Pipes pipes,
                   LaunchCallbacks callbacks);
  ~LocalProcessTree() override;

  // ProcessTree.
  const ProcessIdentity& identity() const override { return identity_; }
  bool finished() const override { return finished_; }
  void Terminate(std::chrono::milliseconds grace,
                 std::function<void(const TerminationReport&)> done) override;
  void Pause(std::function<void(Status)> done) override;
  void Resume(std::function<void(Result<std::chrono::milliseconds>)> done) override;
  std::chrono::milliseconds total_paused() const override { return total_paused_; }

 private:
  friend class LocalProcessRunner;
  enum class Phase { kNone, kTerm, kKill };

  // Runner-facing events.
  void Start();
  // The leader may have exited (pidfd readable, or SIGCHLD named it).
  void OnLeaderMaybeExited();
  // cgroup.events changed.
  void OnCgroupEvents();
  // pgroup mode: the members of the group the latest scan found (leader excluded).
  void OnMembers(std::vector<pid_t> group_members);
  // pgroup mode: adopted children carrying this node's cookie (new ones are signalled with
  // the current phase's signal).
  void OnEscapeesFound(const std::vector<pid_t>& pids);
  // pgroup mode: an escapee was reaped; its pid must never be signalled again.
  void OnEscapeeReaped(pid_t pid);
  // The runner is going away: stop every asynchronous operation, touch no process.
  void Detach();

  void StartTermination(std::chrono::milliseconds grace);
  void ArmTimer(std::chrono::steady_clock::time_point deadline);
  void OnTimer();
  void SignalMembers(int signo);
  void SignalEscapees(int signo, bool only_new);
  // cgroup mode: signals every member of cgroup.procs not reached yet, re-reading the list
  // until no new pid appears.
  void SweepCgroup(int signo);
  // The runner's batched sweep (cgroup mode, after a group SIGTERM).
  void OnSweep();
  // Signals the process group; before the child's setsid() there is no group yet, so the
  // leader (then alone) is signalled through its pidfd instead.
  void SignalGroup(int signo);
  void SignalLeader(int signo);
  // A pause waits for the leader's exec (polling every ms, for at most a second).
  void WaitForExec(std::chrono::milliseconds waited);
  // pgroup mode: answers the pause waiters once every member is seen stopped.
  void AwaitStopped(std::chrono::milliseconds waited);
  // True while the leader has not exec'd yet (it still shares the daemon's memory).
  bool BeforeExec() const;
  // The leader has exited: free what its child side read before exec, note a failure.
  void SettleExec();
  void Thaw();
  std::vector<pid_t> ListMembers() const;
  void CheckEmpty();
  void Finish();
  void CompletePauseWaiters(const Status& status);
  int64_t NowMs() const { return clock_.WallMs(); }

  LocalProcessRunner* runner_;  // null once detached
  boost::asio::io_context& io_;
  const Clock& clock_;
  const ContainmentMode mode_;
  const TreeTimeouts timeouts_;
  ProcessIdentity identity_;
  boost::asio::posix::stream_descriptor pidfd_;
  std::unique_ptr<PendingExec> pending_exec_;  // until the leader has exited
  UniqueFd cgroup_events_;                     // cgroup mode: its cgroup.events, open
  Pipes pipes_;
  LaunchCallbacks callbacks_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer exec_wait_;  // a pause waiting for the exec, or for SIGSTOP

  bool leader_exited_ = false;
  bool leader_reaped_ = false;
  ExitInfo exit_;
  bool tree_empty_ = false;  // cgroup: populated 0; pgroup: the last scan found no member
  bool finished_ = false;

  Phase phase_ = Phase::kNone;
  std::chrono::steady_clock::time_point deadline_;
  TerminationReport report_;
  std::vector<std::function<void(const TerminationReport&)>> terminate_waiters_;
  std::set<pid_t> signalled_;         // members already sent the current phase's signal
  bool group_signalled_ = false;      // this phase's signal went to the whole process group
  std::vector<pid_t> group_members_;  // pgroup: latest scan
  std::set<pid_t> escapees_;          // pgroup: unreaped adopted children with our cookie

  bool pause_pending_ = false;  // a pause waits for the leader's exec
  bool paused_ = false;
  bool frozen_ = false;
  std::chrono::steady_clock::time_point paused_at_;
  std::chrono::milliseconds total_paused_{0};
  std::vector<std::function<void(Status)>> pause_waiters_;
};

}  // namespace warden::process

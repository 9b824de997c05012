#include "process/local_process_tree.h"

#include <signal.h>

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "process/cgroup.h"
#include "process/local_process_runner.h"
#include "process/pidfd.h"
#include "process/proc_stat.h"

namespace warden::process {

namespace {
constexpr int kKcmpVm = 1;  // KCMP_VM of <linux/kcmp.h>
// How long a pause waits for a new node's exec before it gives up (the node is not frozen).
constexpr std::chrono::milliseconds kExecWaitLimit{1000};
// How long a pgroup pause waits to see every member stopped before it answers anyway.
constexpr std::chrono::milliseconds kStopWaitLimit{1000};
}  // namespace
namespace {

// glibc's idtype_t has no P_PIDFD yet (Linux 5.4, <linux/wait.h>).
constexpr idtype_t kPidfdIdType = static_cast<idtype_t>(3);

}  // namespace

LocalProcessTree::LocalProcessTree(LocalProcessRunner* runner, boost::asio::io_context& io,
                                   const Clock& clock, ContainmentMode mode, TreeTimeouts timeouts,
                                   ProcessIdentity identity, UniqueFd pidfd,
                                   std::unique_ptr<PendingExec> pending_exec, Pipes pipes,
                                   LaunchCallbacks callbacks)
    : runner_(runner),
      io_(io),
      clock_(clock),
      mode_(mode),
      timeouts_(timeouts),
      identity_(std::move(identity)),
      pidfd_(io, pidfd.Release()),
      pending_exec_(std::move(pending_exec)),
      pipes_(std::move(pipes)),
      callbacks_(std::move(callbacks)),
      timer_(io),
      exec_wait_(io) {}

LocalProcessTree::~LocalProcessTree() = default;

void LocalProcessTree::Start() {
  pidfd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [self = shared_from_this()](boost::system::error_code ec) {
                      if (!ec) self->OnLeaderMaybeExited();
                    });
  for (auto* pipe : {&pipes_.stdout_pipe, &pipes_.stderr_pipe, &pipes_.notify_pipe}) {
    if (*pipe) (*pipe)->Start();
  }
}

void LocalProcessTree::SettleExec() {
  if (!pending_exec_) return;
  Status status = pending_exec_->Release();
  if (!status.ok()) exit_.launch_error = status.message();
  pending_exec_.reset();
}

void LocalProcessTree::SignalLeader(int signo) {
  if (!leader_exited_ && pidfd_.is_open()) (void)SendSignal(pidfd_.native_handle(), signo);
}

void LocalProcessTree::SignalGroup(int signo) {
  if (leader_reaped_) return;  // never: the group id might be recycled
  if (::kill(-identity_.pgid, signo) != 0 && errno == ESRCH) SignalLeader(signo);
}

void LocalProcessTree::OnLeaderMaybeExited() {
  if (leader_exited_ || runner_ == nullptr || !pidfd_.is_open()) return;
  siginfo_t info{};
  // pgroup mode peeks (WNOWAIT): the zombie keeps the group id from being recycled until
  // Finish() reaps it. cgroup mode reaps at once: it signals members through pidfds only.
  int flags = WEXITED | WNOHANG | (mode_ == ContainmentMode::kProcessGroup ? WNOWAIT : 0);
  if (::waitid(kPidfdIdType, static_cast<id_t>(pidfd_.native_handle()), &info, flags) != 0 ||
      info.si_pid == 0) {
    return;
  }
  leader_exited_ = true;
  leader_reaped_ = mode_ == ContainmentMode::kCgroup;
  exit_.leader_exited_ms = NowMs();
  if (info.si_code == CLD_EXITED) {
    exit_.exit_code = info.si_status;
  } else {
    exit_.signal = info.si_status;
  }
  SettleExec();
  if (mode_ == ContainmentMode::kCgroup) {
    OnCgroupEvents();
  } else if (escapees_.empty() && runner_->OnlyLeadersAreChildren()) {
    OnMembers({});  // nothing of the tree outlived its leader: no pass over /proc needed
  } else {
    runner_->RequestScan();
  }
}

void LocalProcessTree::OnCgroupEvents() {
  if (finished_ || runner_ == nullptr || mode_ != ContainmentMode::kCgroup) return;
  Result<CgroupEvents> events = cgroup_events_.valid() ? ReadCgroupEvents(cgroup_events_.get())
                                                       : ReadCgroupEvents(identity_.cgroup_path);
  if (events.ok()) {
    tree_empty_ = !events->populated;
    frozen_ = events->frozen;
  } else {
    tree_empty_ = events.status().code() == StatusCode::kNotFound;
  }
  if (paused_ && (frozen_ || tree_empty_)) CompletePauseWaiters(Status::Ok());
  CheckEmpty();
}

void LocalProcessTree::OnMembers(std::vector<pid_t> group_members) {
  if (finished_) return;
  group_members_ = std::move(group_members);
  tree_empty_ = group_members_.empty() && escapees_.empty();
  CheckEmpty();
}

void LocalProcessTree::OnEscapeesFound(const std::vector<pid_t>& pids) {
  if (finished_) return;
  escapees_.insert(pids.begin(), pids.end());
  // Escapees found after the phase's signal went out get it now (the re-read loop).
  if (phase_ == Phase::kTerm) SignalEscapees(SIGTERM, /*only_new=*/true);
  if (phase_ == Phase::kKill) SignalEscapees(SIGKILL, /*only_new=*/true);
}

void LocalProcessTree::OnEscapeeReaped(pid_t pid) {
  escapees_.erase(pid);
  signalled_.erase(pid);
}

void LocalProcessTree::CheckEmpty() {
  if (finished_ || !leader_exited_) return;
  if (tree_empty_) {
    Finish();
    return;
  }
  // The leader is gone but members remain: the node is done, its leftovers are stopped.
  if (phase_ == Phase::kNone && !exit_.leftovers_terminated) {
    exit_.leftovers_terminated = true;
    StartTermination(timeouts_.leftover_grace);
  }
}

void LocalProcessTree::Terminate(std::chrono::milliseconds grace,
                                 std::function<void(const TerminationReport&)> done) {
  if (finished_ || runner_ == nullptr) {
    TerminationReport report;
    report.graceful = true;
    boost::asio::post(io_, [done = std::move(done), report] { done(report); });
    return;
  }
  terminate_waiters_.push_back(std::move(done));
  if (phase_ == Phase::kNone) {
    StartTermination(grace);
  } else if (phase_ == Phase::kTerm) {
    auto deadline = std::chrono::steady_clock::now() + grace;
    if (deadline < deadline_) ArmTimer(deadline);
  }
}

void LocalProcessTree::StartTermination(std::chrono::milliseconds grace) {
  phase_ = Phase::kTerm;
  report_ = TerminationReport{};
  report_.sigterm_sent_ms = NowMs();
  signalled_.clear();
  group_signalled_ = false;
  SignalMembers(SIGTERM);
  Thaw();
  ArmTimer(std::chrono::steady_clock::now() + grace);
  // pgroup: escapees adopted since the last scan are found and signalled by the next one.
  if (mode_ == ContainmentMode::kProcessGroup) runner_->RequestScan();
}

void LocalProcessTree::ArmTimer(std::chrono::steady_clock::time_point deadline) {
  deadline_ = deadline;
  timer_.expires_at(deadline);
  timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!ec && self) self->OnTimer();
  });
}

void LocalProcessTree::OnTimer() {
  if (finished_ || runner_ == nullptr) return;
  if (phase_ == Phase::kTerm) {
    phase_ = Phase::kKill;
    report_.sigkill_sent_ms = NowMs();
    signalled_.clear();
    group_signalled_ = false;
    if (mode_ == ContainmentMode::kCgroup) {
      // Atomic: also catches processes forked while we kill. But it passes over a process
      // whose main thread has exited while others run (it walks thread-group leaders), so
      // every process listed is also sent SIGKILL through a pidfd.
      (void)WriteCgroupFile(identity_.cgroup_path, "cgroup.kill", "1");
      SweepCgroup(SIGKILL);
      SignalLeader(SIGKILL);  // in case it has not joined the group yet
    } else {
      SignalMembers(SIGKILL);
      runner_->RequestScan();
    }
    ArmTimer(std::chrono::steady_clock::now() + timeouts_.kill_timeout);
    return;
  }
  if (phase_ == Phase::kKill) {
    // Survived SIGKILL for kill_timeout (D state): report, finish the call, keep watching.
    phase_ = Phase::kNone;
    report_.unkillable = ListMembers();
    report_.graceful = false;
    for (auto& waiter : terminate_waiters_) {
      boost::asio::post(io_, [waiter = std::move(waiter), report = report_] { waiter(report); });
    }
    terminate_waiters_.clear();
  }
}

void LocalProcessTree::SignalMembers(int signo) {
  const bool also_continue = signo == SIGTERM;
  if (mode_ == ContainmentMode::kProcessGroup) {
    // The leader is unreaped until Finish(), so the group id is still ours.
    SignalGroup(signo);
    if (also_continue) SignalGroup(SIGCONT);
    SignalEscapees(signo, /*only_new=*/false);
    return;
  }
  if (leader_reaped_) {
    SweepCgroup(signo);
    return;
  }
  // While the leader is unreaped its group id cannot be recycled: one kill() reaches the
  // whole group at once, so every tree of a mass stop gets its signal at once. Members that
  // left the group get theirs from the runner's sweep a few milliseconds later, in one batch
  // for all trees (most trees are empty by then and need no sweep at all).
  SignalGroup(signo);
  if (also_continue) SignalGroup(SIGCONT);
  group_signalled_ = true;
  runner_->RequestSweep(weak_from_this());
}

void LocalProcessTree::OnSweep() {
  if (finished_ || phase_ != Phase::kTerm) return;  // SIGKILL is cgroup.kill: no sweep
  SweepCgroup(SIGTERM);
}

void LocalProcessTree::SweepCgroup(int signo) {
  const bool also_continue = signo == SIGTERM;
  // No cgroup-wide SIGTERM exists: signal each member through a pidfd and re-read the
  // member list until no new pid appears (a member may fork while we go).
  // Groups the node made below its own are part of the tree too.
  for (int round = 0; round < 64; ++round) {
    Result<std::vector<CgroupMember>> members = ReadCgroupTreeProcs(identity_.cgroup_path);
    if (!members.ok()) break;
    bool any_new = false;
    for (const CgroupMember& member : *members) {
      const pid_t pid = member.pid;
      if (!signalled_.insert(pid).second) continue;
      any_new = true;
      // Still in the group the group signal went to: it has it already.
      if (group_signalled_ && !leader_reaped_ && ::getpgid(pid) == identity_.pgid) continue;
      Result<UniqueFd> pidfd = OpenPidfd(pid);
      // Read from the member list, then pinned by the pidfd: still a member, so not a
      // recycled pid.
      if (!pidfd.ok() || !ProcessInCgroup(pid, member.group)) continue;
      (void)SendSignal(*pidfd, signo);
      if (also_continue) (void)SendSignal(*pidfd, SIGCONT);
    }
    if (!any_new) break;
  }
  // Before it joins its cgroup the leader is in no member list (and has no children).
  if (signalled_.count(identity_.pid) == 0 && !group_signalled_) {
    SignalLeader(signo);
    if (also_continue) SignalLeader(SIGCONT);
  }
}

void LocalProcessTree::SignalEscapees(int signo, bool only_new) {
  // Every escapee is an unreaped child of the daemon (only this thread reaps), so its pid
  // and, if it leads one, its group id cannot have been recycled.
  for (pid_t pid : escapees_) {
    if (!signalled_.insert(pid).second && only_new) continue;
    if (::kill(-pid, signo) != 0) ::kill(pid, signo);
    if (signo == SIGTERM && ::kill(-pid, SIGCONT) != 0) ::kill(pid, SIGCONT);
  }
}

void LocalProcessTree::Thaw() {
  if (!paused_) return;
  if (mode_ == ContainmentMode::kCgroup) {
    (void)WriteCgroupFile(identity_.cgroup_path, "cgroup.freeze", "0");
  }  // pgroup: SignalMembers(SIGTERM) has sent SIGCONT already.
  total_paused_ += std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - paused_at_);
  paused_ = false;
  frozen_ = false;
  CompletePauseWaiters(Status::Conflict("tree is being terminated"));
}

std::vector<pid_t> LocalProcessTree::ListMembers() const {
  if (mode_ == ContainmentMode::kCgroup) {
    std::vector<pid_t> pids;
    Result<std::vector<CgroupMember>> members = ReadCgroupTreeProcs(identity_.cgroup_path);
    if (members.ok()) {
      for (const CgroupMember& member : *members) pids.push_back(member.pid);
    }
    return pids;
  }
  std::vector<pid_t> pids = group_members_;
  pids.insert(pids.end(), escapees_.begin(), escapees_.end());
  if (!leader_exited_) pids.push_back(identity_.pid);
  return pids;
}

bool LocalProcessTree::BeforeExec() const {
  // Until its exec the child runs in the daemon's memory (CLONE_VM): sharing our VM is the
  // proof that it has not exec'd yet. An error (no kcmp) counts as exec'd, as before.
  // A leader that has exited (its pid may even be reused, by a thread of ours) has no exec
  // left to wait for.
  if (leader_exited_) return false;
  return ::syscall(SYS_kcmp, ::getpid(), identity_.pid, kKcmpVm, 0, 0) == 0;
}

void LocalProcessTree::Pause(std::function<void(Status)> done) {
  // A child frozen before its exec would hold copies of every daemon descriptor (the data
  // directory's lock among them) for as long as it stays frozen: wait for the exec first.
  // The request waits with the others; a resume or the tree's end answers it meanwhile.
  if (!finished_ && runner_ != nullptr && phase_ == Phase::kNone && !paused_ &&
      (pause_pending_ || BeforeExec())) {
    pause_waiters_.push_back(std::move(done));
    if (!pause_pending_) {
      pause_pending_ = true;
      WaitForExec(std::chrono::milliseconds(0));
    }
    return;
  }
  if (finished_ || runner_ == nullptr || phase_ != Phase::kNone) {
    Status status = Status::Conflict(finished_ ? "tree has finished" : "tree is being terminated");
    boost::asio::post(io_, [done = std::move(done), status] { done(status); });
    return;
  }
  if (!paused_) {
    paused_ = true;
    frozen_ = false;
    paused_at_ = clock_.Now();
    if (mode_ == ContainmentMode::kCgroup) {
      Status status = WriteCgroupFile(identity_.cgroup_path, "cgroup.freeze", "1");
      if (!status.ok()) {
        paused_ = false;
        boost::asio::post(io_, [done = std::move(done), status] { done(status); });
        return;
      }
    } else {
      SignalGroup(SIGSTOP);
      SignalEscapees(SIGSTOP, /*only_new=*/false);
    }
  }
  pause_waiters_.push_back(std::move(done));
  if (mode_ == ContainmentMode::kCgroup) {
    OnCgroupEvents();  // the freeze may already have taken effect
  } else if (!frozen_) {
    AwaitStopped(std::chrono::milliseconds(0));
  } else {
    CompletePauseWaiters(Status::Ok());
  }
}

void LocalProcessTree::WaitForExec(std::chrono::milliseconds waited) {
  exec_wait_.expires_after(std::chrono::milliseconds(1));
  exec_wait_.async_wait([self = shared_from_this(), waited](boost::system::error_code ec) {
    if (ec || !self->pause_pending_) return;  // a resume took the pause back
    const bool can_wait = !self->finished_ && self->runner_ != nullptr &&
                          self->phase_ == Phase::kNone && self->BeforeExec();
    if (can_wait && waited < kExecWaitLimit) {
      self->WaitForExec(waited + std::chrono::milliseconds(1));
      return;
    }
    self->pause_pending_ = false;
    std::vector<std::function<void(Status)>> waiters = std::move(self->pause_waiters_);
    self->pause_waiters_.clear();
    if (can_wait) {
      // Still not exec'd (a program on a hung mount): not frozen, and the caller hears why.
      for (auto& waiter : waiters) {
        boost::asio::post(self->io_, [waiter = std::move(waiter)] {
          waiter(Status::Unavailable("the node has not started its program after 1 s"));
        });
      }
      return;
    }
    // Exec'd (or finished, or being terminated): each request is served as Pause serves it.
    for (auto& waiter : waiters) self->Pause(std::move(waiter));
  });
}

void LocalProcessTree::AwaitStopped(std::chrono::milliseconds waited) {
  // A signal is delivered when its target next runs: a busy process can still be running
  // for a few ms after SIGSTOP was sent. The pause is answered once every member is seen
  // stopped (or gone), polling with a growing interval. Only processes that are members now
  // count (the last scan's list may name one that left the session meanwhile: the next
  // scan finds it as an escapee), and the wait is bounded: a member stuck in
  // uninterruptible sleep stops only when it leaves it, and a pause must not hang on it.
  bool all_stopped = true;
  for (pid_t pid : ListMembers()) {
    Result<ProcStat> stat = ReadProcStat(pid);
    if (!stat.ok() || stat->exited() || stat->state == 'T' || stat->state == 't') continue;
    const bool member =
        stat->session == identity_.sid || stat->pgrp == identity_.pgid || escapees_.count(pid) > 0;
    if (member) {
      all_stopped = false;
      break;
    }
  }
  if (all_stopped || waited >= kStopWaitLimit) {
    frozen_ = true;
    CompletePauseWaiters(Status::Ok());
    return;
  }
  auto next = std::clamp(waited, std::chrono::milliseconds(1), std::chrono::milliseconds(50));
  exec_wait_.expires_after(next);
  exec_wait_.async_wait([self = shared_from_this(),
                         waited = waited + next](boost::system::error_code ec) {
    // A resume, a termination or the end of the tree answered the waiters meanwhile.
    if (ec || !self->paused_ || self->frozen_ || self->finished_ || self->phase_ != Phase::kNone) {
      return;
    }
    self->AwaitStopped(waited);
  });
}

void LocalProcessTree::Resume(std::function<void(Result<std::chrono::milliseconds>)> done) {
  if (pause_pending_) {
    // The pause had not taken effect yet (waiting for the exec): it is withdrawn.
    pause_pending_ = false;
    exec_wait_.cancel();
    CompletePauseWaiters(Status::Conflict("resumed before the freeze took effect"));
  }
  if (!paused_ || runner_ == nullptr) {
    Status status = Status::Conflict("tree is not paused");
    boost::asio::post(io_, [done = std::move(done), status] { done(status); });
    return;
  }
  if (mode_ == ContainmentMode::kCgroup) {
    (void)WriteCgroupFile(identity_.cgroup_path, "cgroup.freeze", "0");
  } else {
    SignalGroup(SIGCONT);
    SignalEscapees(SIGCONT, /*only_new=*/false);
  }
  auto paused_for =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - paused_at_);
  total_paused_ += paused_for;
  paused_ = false;
  frozen_ = false;
  CompletePauseWaiters(Status::Ok());
  boost::asio::post(io_, [done = std::move(done), paused_for] { done(paused_for); });
}

void LocalProcessTree::CompletePauseWaiters(const Status& status) {
  for (auto& waiter : pause_waiters_) {
    boost::asio::post(io_, [waiter = std::move(waiter), status] { waiter(status); });
  }
  pause_waiters_.clear();
}

void LocalProcessTree::Finish() {
  finished_ = true;
  exit_.tree_empty_ms = NowMs();
  timer_.cancel();
  if (!leader_reaped_) {
    siginfo_t info{};
    ::waitid(kPidfdIdType, static_cast<id_t>(pidfd_.native_handle()), &info, WEXITED | WNOHANG);
    leader_reaped_ = true;
  }
  boost::system::error_code ignored;
  pidfd_.close(ignored);
  cgroup_events_.Reset();  // before the group is removed
  if (pipes_.stdout_pipe) {
    pipes_.stdout_pipe->DrainAndClose();
    exit_.stdout_bytes = pipes_.stdout_pipe->bytes_kept();
    exit_.stdout_dropped = pipes_.stdout_pipe->bytes_dropped();
  }
  if (pipes_.stderr_pipe) {
    pipes_.stderr_pipe->DrainAndClose();
    exit_.stderr_bytes = pipes_.stderr_pipe->bytes_kept();
    exit_.stderr_dropped = pipes_.stderr_pipe->bytes_dropped();
  }
  if (pipes_.notify_pipe) pipes_.notify_pipe->DrainAndClose();

  report_.tree_empty_ms = exit_.tree_empty_ms;
  report_.graceful = !report_.sigkill_sent_ms.has_value();
  for (auto& waiter : terminate_waiters_) {
    boost::asio::post(io_, [waiter = std::move(waiter), report = report_] { waiter(report); });
  }
  terminate_waiters_.clear();
  phase_ = Phase::kNone;
  if (paused_) {
    paused_ = false;
    total_paused_ +=
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - paused_at_);
    CompletePauseWaiters(Status::Ok());
  }
  if (callbacks_.on_exit) {
    boost::asio::post(io_,
                      [on_exit = std::move(callbacks_.on_exit), exit = exit_] { on_exit(exit); });
  }
  if (runner_ != nullptr) runner_->Forget(this);
}

void LocalProcessTree::Detach() {
  runner_ = nullptr;
  timer_.cancel();
  if (leader_exited_) SettleExec();  // else leaked on purpose (see PendingExec)
  boost::system::error_code ignored;
  pidfd_.close(ignored);
  for (auto* pipe : {&pipes_.stdout_pipe, &pipes_.stderr_pipe, &pipes_.notify_pipe}) {
    if (*pipe) (*pipe)->DrainAndClose();
  }
}

}  // namespace warden::process

// FakeProcessRunner and FakeProcessTree: process::ProcessRunner and process::ProcessTree
// without processes, driven by the test, for the lifecycle tests.
//
// The fake keeps the contract of process_runner.h, so that a manager passing these tests
// also works on the real runner:
//   * Launch calls on_intent synchronously, before the "process" exists; a non-ok Status
//     from it aborts the launch and is returned. Scripted launch failures (FailLaunches) are
//     returned after on_intent, as the real runner finds out only when it tries to exec.
//   * Every callback (on_notify, on_exit, Terminate/Pause/Resume completions) is posted on
//     the io_context, never run inside the call that registered it.
//   * Terminate: SIGTERM, thaw right after if paused; what follows depends on the node's
//     TermBehavior; SIGKILL when the grace (real time, an Asio timer) expires; unkillable
//     members are reported after kill_timeout. A second Terminate joins (an earlier deadline
//     wins) and gets the same report; Terminate of a finished tree reports graceful only.
//     Termination waiters are posted before on_exit, as LocalProcessTree does.
//   * Pause: Conflict while terminating or finished. Resume: Conflict when not paused;
//     reports the length of the pause on the runner's Clock.
//
// The test thread is the io_context thread: the test calls Exit/Notify/... between runs of
// the io_context. Calls that break the contract (another thread, empty argv, attempt < 1,
// a relative cwd) are recorded in violations(), which the fixture checks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "process/process_runner.h"

namespace warden::lifecycle_test {

class FakeProcessRunner;

// How a fake node answers SIGTERM.
enum class TermBehavior {
  kExitOnTerm,  // cooperative: SIGTERM ends the leader (signal SIGTERM) at once
  kHoldOnTerm,  // SIGTERM is noted; the node ends when the test says so (Exit/KillBySignal),
                // or by SIGKILL once the grace expires
  kIgnoreTerm,  // SIGTERM is ignored: SIGKILL after the grace ends it
  kUnkillable,  // survives SIGKILL: reported unkillable after the runner's kill_timeout; its
                // on_exit comes only if the test ends it later (Exit/KillBySignal)
};

class FakeProcessTree final : public process::ProcessTree,
                              public std::enable_shared_from_this<FakeProcessTree> {
 public:
  FakeProcessTree(FakeProcessRunner& runner, process::LaunchSpec spec,
                  process::ProcessIdentity identity, process::LaunchCallbacks callbacks,
                  TermBehavior behavior);

  // process::ProcessTree
  const process::ProcessIdentity& identity() const override { return identity_; }
  bool finished() const override { return finished_; }
  void Terminate(std::chrono::milliseconds grace,
                 std::function<void(const process::TerminationReport&)> done) override;
  void Pause(std::function<void(Status)> done) override;
  void Resume(std::function<void(Result<std::chrono::milliseconds>)> done) override;
  std::chrono::milliseconds total_paused() const override { return total_paused_; }

  // --- Test controls. Each returns false (and does nothing) when the tree has finished.
  // The leader exits with `code`; the tree is then empty.
  bool Exit(int code);
  // A signal (from outside, or the default action of one) ends the leader.
  bool KillBySignal(int signo);
  // The node writes `key=value` to WARDEN_NOTIFY_FD.
  bool Notify(std::string key, std::string value);
  void set_term_behavior(TermBehavior behavior) { behavior_ = behavior; }
  // The next Pause completes only when FinishFreeze() is called (a slow cgroup freeze).
  void HoldNextFreeze() { hold_freeze_ = true; }
  // Completes a held Pause. False when none is held.
  bool FinishFreeze();
  // The next Pause fails with `status` (e.g. IoError: cgroup.freeze not writable) and leaves
  // the tree running.
  void FailNextPause(Status status) { pause_failure_ = std::move(status); }

  // --- Observations.
  const process::LaunchSpec& spec() const { return spec_; }
  const std::string& node_id() const { return identity_.cookie.node_id; }
  int attempt() const { return identity_.cookie.attempt; }
  bool paused() const { return paused_; }
  bool terminating() const { return terminating_; }
  // Signals "sent" to the tree, in order: SIGTERM, SIGCONT, SIGKILL, SIGSTOP.
  const std::vector<int>& signals() const { return signals_; }
  bool got_signal(int signo) const;
  // The grace of every Terminate call, in order.
  const std::vector<std::chrono::milliseconds>& terminate_graces() const {
    return terminate_graces_;
  }
  int pause_calls() const { return pause_calls_; }
  int resume_calls() const { return resume_calls_; }
  // How the leader ended (after finished()).
  const process::ExitInfo& exit_info() const { return exit_info_; }

 private:
  friend class FakeProcessRunner;
  void Finish(std::optional<int> exit_code, std::optional<int> signal);
  void GraceExpired();
  void Post(std::function<void()> fn);
  void EndPause();

  FakeProcessRunner& runner_;
  const process::LaunchSpec spec_;
  const process::ProcessIdentity identity_;
  process::LaunchCallbacks callbacks_;
  TermBehavior behavior_;

  bool finished_ = false;
  bool paused_ = false;
  bool terminating_ = false;
  bool hold_freeze_ = false;
  Status pause_failure_;
  std::function<void(Status)> held_freeze_;
  std::chrono::steady_clock::time_point paused_at_;
  std::chrono::milliseconds total_paused_{0};

  boost::asio::steady_timer timer_;  // grace, then kill_timeout
  std::chrono::steady_clock::time_point deadline_;
  process::TerminationReport report_;
  std::vector<std::function<void(const process::TerminationReport&)>> terminate_waiters_;

  process::ExitInfo exit_info_;
  std::vector<int> signals_;
  std::vector<std::chrono::milliseconds> terminate_graces_;
  int pause_calls_ = 0;
  int resume_calls_ = 0;
};

class FakeProcessRunner final : public process::ProcessRunner {
 public:
  // `clock` (must outlive the runner) gives ExitInfo times and pause lengths; pass the same
  // clock as the manager's so that cost arithmetic agrees.
  explicit FakeProcessRunner(boost::asio::io_context& io,
                             const Clock* clock = &SystemClock::Instance());
  ~FakeProcessRunner() override;

  // process::ProcessRunner
  process::ContainmentMode containment() const override { return mode_; }
  Result<std::shared_ptr<process::ProcessTree>> Launch(const process::LaunchSpec& spec,
                                                       process::LaunchCallbacks callbacks) override;

  // --- Scripting, before or during a test.
  void set_containment(process::ContainmentMode mode) { mode_ = mode; }
  // Every later launch of `node_id` (any execution, any attempt) fails with `status`:
  // NotFound stands for "executable not found" (127), InvalidArgument for "cannot execute"
  // (126). With `times` > 0, only that many launches fail. An ok status clears it.
  void FailLaunches(const std::string& node_id, Status status, int times = -1);
  // How later launches of `node_id` answer SIGTERM (default kExitOnTerm).
  void SetTermBehavior(const std::string& node_id, TermBehavior behavior);
  // After SIGKILL, how long an unkillable member survives before it is reported.
  void set_kill_timeout(std::chrono::milliseconds timeout) { kill_timeout_ = timeout; }
  std::chrono::milliseconds kill_timeout() const { return kill_timeout_; }
  // When a terminating tree ends: true posts on_exit before the Terminate completions
  // (the default is the other way round, as LocalProcessTree does). The contract fixes no
  // order, so the manager must cope with both.
  void set_exit_before_report(bool value) { exit_before_report_ = value; }

  // Called inside Launch after on_intent succeeded, at the moment the process would be
  // created: a test checks here that the intent is already in the journal.
  std::function<void(const process::LaunchSpec&)> on_launch;
  // Called inside every Terminate call, before anything is signalled.
  std::function<void(const FakeProcessTree&, std::chrono::milliseconds grace)> on_terminate;

  // --- Driving launched nodes by node id: the latest attempt of `node_id` in any execution
  // (tests that run two executions give their nodes distinct ids). False when there is no
  // such tree or it has finished.
  bool Exit(std::string_view node_id, int code);
  bool KillBySignal(std::string_view node_id, int signo);
  bool Notify(std::string_view node_id, std::string key, std::string value);
  // The latest tree launched for `node_id` (in `execution_id` if not empty), or nullptr.
  FakeProcessTree* Tree(std::string_view node_id, std::string_view execution_id = {}) const;

  // --- Observations.
  struct LaunchRecord {
    process::LaunchSpec spec;
    int64_t wall_ms = 0;                         // on the runner's clock
    std::chrono::steady_clock::time_point real;  // real time, for timeout tests
    Status result;                               // of Launch
    std::shared_ptr<FakeProcessTree> tree;       // null when the launch failed
  };
  const std::vector<LaunchRecord>& launches() const { return launches_; }
  // Node ids of every Launch call (failed ones included), in order.
  std::vector<std::string> LaunchOrder(std::string_view execution_id = {}) const;
  // Node ids of trees launched and not finished, in launch order.
  std::vector<std::string> RunningNodes(std::string_view execution_id = {}) const;
  size_t running_count() const { return RunningNodes().size(); }
  // The most trees ever alive at once.
  size_t max_running_seen() const { return max_running_seen_; }
  // Number of Terminate calls on any tree.
  int terminate_calls() const { return terminate_calls_; }
  // Contract breaches seen (empty when the manager behaved).
  const std::vector<std::string>& violations() const { return violations_; }

 private:
  friend class FakeProcessTree;
  void CheckThread(std::string_view what);
  void Violation(std::string what) { violations_.push_back(std::move(what)); }

  boost::asio::io_context& io_;
  const Clock& clock_;
  const std::thread::id thread_;
  process::ContainmentMode mode_ = process::ContainmentMode::kProcessGroup;
  std::chrono::milliseconds kill_timeout_{20};
  bool exit_before_report_ = false;
  struct ScriptedFailure {
    Status status;
    int remaining = -1;  // -1: forever
  };
  std::map<std::string, ScriptedFailure, std::less<>> launch_failures_;
  std::map<std::string, TermBehavior, std::less<>> term_behaviors_;
  std::vector<LaunchRecord> launches_;
  size_t max_running_seen_ = 0;
  int terminate_calls_ = 0;
  int next_pid_ = 4000;
  std::vector<std::string> violations_;
};

}  // namespace warden::lifecycle_test

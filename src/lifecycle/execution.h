// Execution: one run of one DAG — its state, its scheduling plan, its node attempts and
// their process trees, timers, cost and stop. Internal to the lifecycle layer; the
// ExecutionManager owns every Execution and is the public face.
//
// Threading: the manager's thread only. Process and timer callbacks hold a shared_ptr to the
// Execution, so it lives until its last tree has ended.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dag/dag.h"
#include "dag/schedule_plan.h"
#include "journal/records.h"
#include "lifecycle/execution_clock.h"
#include "lifecycle/execution_history.h"
#include "lifecycle/execution_manager.h"
#include "lifecycle/execution_view.h"
#include "lifecycle/stop_coordinator.h"
#include "lifecycle/transition_log.h"
#include "process/process_runner.h"

namespace warden::lifecycle {

// The value of a node's `cost_usd=` notify line (api.md): its cost so far in USD, a finite
// decimal >= 0 and nothing else around it. nullopt for anything else (counted as malformed).
std::optional<double> ParseCostUsd(std::string_view value);

// What every Execution shares with its manager.
struct ManagerContext {
  boost::asio::io_context& io;
  TransitionLog& log;
  process::ProcessRunner& runner;
  const ManagerOptions& options;
  ManagerStats& stats;
  // Nodes running across all executions (for ManagerOptions::max_running).
  size_t running_total = 0;
  // Called when a node attempt ended: the manager hands free slots to waiting executions.
  std::function<void()> on_slot_freed;
  // Called when an execution could not launch ready nodes for lack of manager-wide slots.
  std::function<void(const std::string& id)> on_waiting_for_slot;
  // Called when an execution has ended (completed, failed or stopped).
  std::function<void(const std::string& id)> on_ended;
};

class Execution : public std::enable_shared_from_this<Execution> {
 public:
  using ViewCallback = std::function<void(Result<ExecutionView>)>;
  using StopCallback = StopCoordinator::Callback;

  Execution(ManagerContext& ctx, std::string id, dag::Dag dag, int64_t created_at);
  ~Execution();

  const std::string& id() const { return id_; }
  ExecutionState state() const { return state_; }
  // The execution as the journal has it (every record applied).
  const ExecutionHistory& history() const { return history_; }
  const dag::ExecutionSpec& spec() const { return dag_->spec(); }
  // What the API shows: history_'s view, with each running attempt's cost up to now.
  ExecutionView View() const;

  // Takes up an execution of an earlier run, as `history` has it. An idle one stays idle.
  // One that crash recovery resumed goes on: succeeded nodes keep their record and cost,
  // the others run again as new attempts (without using up their retries); the state is
  // running or paused, as at the crash. Call once, on a fresh Execution, then Continue.
  // Errors: the history does not fit this execution's DAG.
  Status RestoreFrom(const ExecutionHistory& history);
  // Lets a restored execution go on: running launches what is ready; paused waits for a
  // resume.
  void Continue();

  // Queues `execution.created` (the manager commits it).
  void RecordCreated(const Requester& requester);
  Status Start(const Requester& requester);
  void Pause(const Requester& requester, ViewCallback done);
  void Resume(const Requester& requester, ViewCallback done);
  void Stop(StopRequest request, ViewCallback accepted, StopCallback done);
  // The manager is going away: every later callback (process, timer, pause) does nothing,
  // and the trees are left as they are.
  void Detach();

  // Launches ready nodes, at most `budget`; returns how many were launched.
  size_t LaunchReady(size_t budget);
  // True while running with nodes ready to launch (waiting for a slot).
  bool HasReady() const;
  // The captured output file of `node`'s latest attempt.
  Result<std::string> OutputPath(const std::string& node, bool stderr_stream) const;

 private:
  struct NodeRun;  // one node's attempts (execution.cc)
  using Clock = std::chrono::steady_clock;

  // Launches what the plan and the manager-wide cap allow, or queues for a slot.
  void Pump();
  // Slots left under ManagerOptions::max_running.
  size_t Budget() const;
  // Launches node `i` (taken from the plan); false when it could not for a busy journal,
  // and should go back to ready.
  bool Launch(dag::NodeIndex i);
  void OnExit(dag::NodeIndex i, uint32_t attempt, const process::ExitInfo& info);
  void OnTerminated(dag::NodeIndex i, uint32_t attempt, const process::TerminationReport& r);
  void OnNotify(dag::NodeIndex i, std::string_view key, std::string_view value);
  void OnNodeTimeout(dag::NodeIndex i, uint64_t generation);
  // The attempt's tree is gone (or given up on): records it and moves the plan on.
  void FinishAttempt(dag::NodeIndex i);
  void AttemptFailed(dag::NodeIndex i);
  // Sends the tree its SIGTERM (joining a termination under way) and queues node.signalled
  // the first time; the caller commits, once for every node it terminates.
  void TerminateNode(dag::NodeIndex i, std::chrono::milliseconds grace);
  // Why a node's tree is being signalled: "timeout", "shutdown" or "stop".
  const char* SignalWhy(const NodeRun& run) const;
  void BeginStop(StopRequest request);
  // Journals a stop request (durably, before any signal it causes); `joined` when it joins
  // the stop in progress.
  void RecordStopRequest(const StopRequest& request, bool joined);
  // paused -> running without a request: thaws, re-arms the clocks, schedules.
  void Unpause();
  void MaybeFinish();
  void FinishStop();
  // Back to running: re-arms the timeouts with what was left, then schedules and checks
  // whether the execution is done.
  void RestartClocks();
  void ArmExecutionTimer();
  void ArmNodeTimer(dag::NodeIndex i);
  void StopClocks();
  // Hands what is queued to the journal writer without waiting: for transitions whose
  // commit nobody waits for (see execution.cc).
  void Flush(journal::Durability durability);
  // Queues `record` for the next commit, as this execution's (and `node`'s latest attempt's),
  // and applies it to history_. at_ms: when it happened; 0 = now.
  void Record(const journal::Record& record, dag::NodeIndex node = kNoNode, int64_t at_ms = 0);
  int64_t WallMs() const { return ctx_.options.clock->WallMs(); }
  Clock::time_point Now() const { return ctx_.options.clock->Now(); }

  static constexpr dag::NodeIndex kNoNode = ~dag::NodeIndex{0};

  ManagerContext& ctx_;
  const std::string id_;
  // Every record this execution journals, applied as it is queued: the execution as the
  // journal has it, through the same apply path a restart reads it back with.
  ExecutionHistory history_;
  const std::shared_ptr<const dag::Dag> dag_;
  dag::SchedulePlan plan_;
  std::vector<NodeRun> nodes_;
  ExecutionState state_ = ExecutionState::kIdle;
  const int64_t created_at_;
  std::optional<int64_t> started_at_;
  std::optional<int64_t> ended_at_;
  size_t running_ = 0;      // node attempts with a live tree
  bool launching_ = false;  // inside LaunchReady's loop
  // Launched trees whose node.started is not yet committed: View() shows no pid for them.
  size_t identities_pending_ = 0;
  bool detached_ = false;  // the manager is gone: ctx_ must not be touched

  // Pauses and what is left of the timeout: the execution's clocks (cost, timeouts) stand
  // still while paused.
  ExecutionClock clock_;

  // The execution's timeout, counted over running, unpaused time.
  boost::asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;

  // The stop in progress (state stopping), or the one that ended the execution.
  StopCoordinator stop_;
  bool failed_by_node_ = false;  // a node failed for good (onFailure decides the rest)
};

}  // namespace warden::lifecycle

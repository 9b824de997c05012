// StopCoordinator: the stop of one execution. It holds the request that began the stop and
// when, whether the journal kept up with it, the trees it had to SIGKILL and those that
// survived SIGKILL, and who waits for its result; it decides whether the stop ends stopped or
// failed and builds the StopResult. The Execution keeps the state transitions, the journal
// records and the signalling of trees, and tells the coordinator what happened.
//
// Threading: the manager's thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "lifecycle/execution_state.h"
#include "lifecycle/execution_view.h"

namespace warden::lifecycle {

// What the execution knows when its stop ends, for the StopResult.
struct StopOutcome {
  ExecutionState status = ExecutionState::kStopped;  // the state the stop ended in
  std::string execution_id;
  double final_cost_usd = 0;
  int64_t started_at = 0;  // ms since the epoch; stopped_at, if it never started
  int64_t stopped_at = 0;  // ms since the epoch
  int nodes_total = 0;
  int nodes_succeeded = 0;
  int nodes_failed = 0;                 // failed in the plan
  int nodes_unkillable_not_failed = 0;  // not failed in the plan, but a tree survived SIGKILL
};

class StopCoordinator {
 public:
  using Callback = std::function<void(Result<StopResult>)>;

  // True once Begin was called: the execution is stopping, or a stop ended it.
  bool begun() const { return request_.has_value(); }
  // The request that began the stop. Only when begun().
  const StopRequest& request() const { return *request_; }
  // When the stop began, ms since the epoch; 0 before.
  int64_t requested_at() const { return requested_at_; }
  // `request` is the stop in progress from `at_ms` (ms since the epoch). Once per execution.
  void Begin(StopRequest request, int64_t at_ms);

  // `done` hears the result when Deliver hands it out. An empty `done` is ignored.
  void AddWaiter(Callback done);

  // A commit of the stop's records failed: the result will say so. Sticky.
  void JournalFailed() { journaled_ = false; }
  // False once JournalFailed was called.
  bool journaled() const { return journaled_; }

  // A tree ended by this stop needed SIGKILL.
  void CountKilled() { ++nodes_killed_; }
  // A tree survived SIGKILL, during the stop or before it.
  void CountUnkillable() { ++nodes_unkillable_; }

  // Whether the stop of an execution that ran ends failed rather than stopped: it was
  // stopped for an error, or a tree survived SIGKILL. Only when begun().
  bool EndsFailed() const;

  // The StopResult of `outcome`, journaled as far as the commits so far went. Only when
  // begun().
  StopResult Summarize(const StopOutcome& outcome) const;
  // Stamps `result` with whether the whole stop was journaled, keeps it, and posts it to
  // every waiter on `io`, each in a handler of its own; the waiters are then forgotten.
  void Deliver(StopResult result, boost::asio::io_context& io);
  // The result Deliver handed out; empty before.
  const std::optional<StopResult>& delivered() const { return delivered_; }

 private:
  std::optional<StopRequest> request_;
  int64_t requested_at_ = 0;
  bool journaled_ = true;
  std::vector<Callback> waiters_;
  std::optional<StopResult> delivered_;
  int nodes_killed_ = 0;      // trees of this stop that needed SIGKILL
  int nodes_unkillable_ = 0;  // trees that survived SIGKILL
};

}  // namespace warden::lifecycle

#include "lifecycle/stop_coordinator.h"

#include <boost/asio/post.hpp>
#include <utility>

namespace warden::lifecycle {

void StopCoordinator::Begin(StopRequest request, int64_t at_ms) {
  request_ = std::move(request);
  requested_at_ = at_ms;
}

void StopCoordinator::AddWaiter(Callback done) {
  if (done) waiters_.push_back(std::move(done));
}

bool StopCoordinator::EndsFailed() const {
  // A tree that survived SIGKILL is still there: the execution cannot claim it stopped.
  return request_->reason == StopReason::kError || nodes_unkillable_ > 0;
}

StopResult StopCoordinator::Summarize(const StopOutcome& outcome) const {
  StopResult r;
  r.status = outcome.status;
  r.execution_id = outcome.execution_id;
  r.reason = request_->reason;
  r.final_cost_usd = outcome.final_cost_usd;
  r.stopped_at = outcome.stopped_at;
  r.summary.nodes_total = outcome.nodes_total;
  r.summary.nodes_completed = outcome.nodes_succeeded;
  // An unkillable tree counts as failed, whatever the plan made of its node.
  r.summary.nodes_failed = outcome.nodes_failed + outcome.nodes_unkillable_not_failed;
  r.summary.duration_ms = outcome.stopped_at - outcome.started_at;
  r.nodes_killed = nodes_killed_;
  r.nodes_unkillable = nodes_unkillable_;
  r.journaled = journaled_;
  return r;
}

void StopCoordinator::Deliver(StopResult result, boost::asio::io_context& io) {
  result.journaled = journaled_;
  delivered_ = result;
  for (auto& waiter : waiters_) {
    boost::asio::post(io, [waiter = std::move(waiter), result] { waiter(result); });
  }
  waiters_.clear();
}

}  // namespace warden::lifecycle

#include "lifecycle/execution_history.h"

#include <algorithm>
#include <boost/json.hpp>

#include "dag/spec_parser.h"

namespace warden::lifecycle {

namespace {

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

Result<ExecutionHistory> ExecutionHistory::Fold(const std::vector<journal::Event>& events) {
  ExecutionHistory h;
  bool created = false;
  for (const journal::Event& e : events) {
    if (!created) {
      if (e.kind != journal::kind::kExecutionCreated) continue;
      created = true;
    }
    WARDEN_RETURN_IF_ERROR(h.Apply(e));
  }
  if (!created) return Status::NotFound("no execution.created record");
  return h;
}

Status ExecutionHistory::Apply(const journal::Event& e) {
  auto decoded = journal::DecodeFrom(e);
  if (!decoded.ok()) {
    // A kind from a newer Warden: readers skip what they do not know.
    if (decoded.status().code() == StatusCode::kNotFound) return Status::Ok();
    return decoded.status();
  }
  last_seq_ = e.seq;
  const journal::Record& record = *decoded;
  if (!e.node_id.empty()) return ApplyNode(e, record);

  auto to = [this](ExecutionState s) { view_.status = s; };
  resumed_ = false;
  std::visit(Overloaded{
                 [&](const journal::ExecutionCreated& r) {
                   view_.id = e.execution_id;
                   view_.name = r.name;
                   view_.created_at = e.at_ms;
                   spec_json_ = r.spec_json;
                 },
                 [&](const journal::ExecutionStarted&) {
                   to(ExecutionState::kRunning);
                   view_.started_at = e.at_ms;
                 },
                 [&](const journal::ExecutionPaused&) {
                   to(ExecutionState::kPaused);
                   pauses_.push_back({e.at_ms, std::nullopt});
                 },
                 [&](const journal::ExecutionResumed&) {
                   to(ExecutionState::kRunning);
                   if (!pauses_.empty() && !pauses_.back().second) pauses_.back().second = e.at_ms;
                 },
                 [&](const journal::ExecutionStopRequested& r) {
                   // A joining request's shorter grace brings SIGKILL forward.
                   if (r.grace_ms && (!stop_grace_ms_ || *r.grace_ms < *stop_grace_ms_)) {
                     stop_grace_ms_ = r.grace_ms;
                   }
                   if (stop_ && r.joined) return;
                   stop_ = r;
                   if (!IsTerminal(view_.status)) to(ExecutionState::kStopping);
                 },
                 [&](const journal::ExecutionStopped& r) {
                   to(ExecutionState::kStopped);
                   view_.ended_at = e.at_ms;
                   view_.cost_usd = r.cost_usd;
                 },
                 [&](const journal::ExecutionCompleted& r) {
                   to(ExecutionState::kCompleted);
                   view_.ended_at = e.at_ms;
                   view_.cost_usd = r.cost_usd;
                 },
                 [&](const journal::ExecutionFailed& r) {
                   to(ExecutionState::kFailed);
                   view_.ended_at = e.at_ms;
                   view_.cost_usd = r.cost_usd;
                 },
                 [&](const journal::ExecutionRecovered& r) {
                   resumed_ = true;
                   for (NodeView& n : view_.nodes) {
                     if (std::find(r.rerun.begin(), r.rerun.end(), n.id) != r.rerun.end()) {
                       n.status = NodeStatus::kPending;
                     }
                   }
                 },
                 [](const auto&) {},
             },
             record);

  if (std::holds_alternative<journal::ExecutionCreated>(record)) {
    boost::system::error_code ec;
    boost::json::value json = boost::json::parse(spec_json_, ec);
    if (ec)
      return Status::Corruption("execution " + e.execution_id +
                                ": journaled spec: " + ec.message());
    auto spec = dag::ExecutionSpecFromJson(json, dag::SpecLimits::Unlimited());
    if (!spec.ok()) {
      return Status::Corruption("execution " + e.execution_id +
                                ": journaled spec: " + spec.status().message());
    }
    spec_ = std::move(*spec);
    view_.nodes.clear();
    for (const dag::NodeSpec& node : spec_.nodes) {
      NodeView n;
      n.id = node.id;
      view_.nodes.push_back(std::move(n));
    }
    attempts_.assign(spec_.nodes.size(), AttemptHistory{});
  }
  if (!IsTerminal(view_.status)) {
    double cost = 0;
    for (const NodeView& n : view_.nodes) cost += n.cost_usd;
    view_.cost_usd = cost;
  }
  return Status::Ok();
}

int64_t ExecutionHistory::PausedMsBetween(int64_t from, int64_t to) const {
  int64_t paused = 0;
  for (const auto& [begin, end] : pauses_) {
    const int64_t overlap = std::min(end.value_or(to), to) - std::max(begin, from);
    if (overlap > 0) paused += overlap;
  }
  return paused;
}

Status ExecutionHistory::ApplyNode(const journal::Event& e, const journal::Record& record) {
  size_t i = 0;
  while (i < view_.nodes.size() && view_.nodes[i].id != e.node_id) ++i;
  if (i == view_.nodes.size()) {
    return Status::Corruption("execution " + e.execution_id + ": record " + std::to_string(e.seq) +
                              " names unknown node " + e.node_id);
  }
  NodeView& n = view_.nodes[i];
  AttemptHistory& a = attempts_[i];
  const int attempt = static_cast<int>(e.attempt);
  // A record of a newer attempt starts it afresh; the cost of earlier attempts carries over.
  if (attempt > a.attempt) {
    a = AttemptHistory{};
    a.attempt = attempt;
    n.attempt = attempt;
    n.pid.reset();
    n.exit_code.reset();
    n.signal.reset();
    n.started_at.reset();
    n.ended_at.reset();
  }
  const bool stopping = view_.status == ExecutionState::kStopping;
  std::visit(Overloaded{
                 [&](const journal::NodeIntent& r) { a.intent = r; },
                 [&](const journal::NodeStarted& r) {
                   a.started = r;
                   a.started_at = e.at_ms;
                   n.pid = static_cast<int>(r.pid);
                   n.started_at = e.at_ms;
                   n.status = view_.status == ExecutionState::kPaused ? NodeStatus::kPaused
                                                                      : NodeStatus::kRunning;
                 },
                 [&](const journal::NodeSignalled& r) {
                   if (r.signal == "SIGTERM" && !a.sigterm_at) a.sigterm_at = e.at_ms;
                   if (!a.ended) n.status = NodeStatus::kStopping;
                 },
                 [&](const journal::NodeTimedOut&) {
                   a.timed_out = true;
                   n.status = NodeStatus::kStopping;
                 },
                 [&](const journal::CostReported& r) {
                   n.cost_usd += r.cost_usd - a.reported_cost_usd;
                   a.reported_cost_usd = r.cost_usd;
                 },
                 [&](const journal::NodeUnkillable&) { n.status = NodeStatus::kUnkillable; },
                 [&](const journal::NodeExited& r) {
                   a.ended = true;
                   if (r.exit_code) n.exit_code = static_cast<int>(*r.exit_code);
                   n.signal = r.signal;
                   n.ended_at = e.at_ms;
                   n.cost_usd += r.cost_usd - a.reported_cost_usd;
                   a.reported_cost_usd = 0;
                   // As the live execution decides: a clean exit is a success unless the node's
                   // own timeout ended it; a tree the stop ended is stopped; the rest failed.
                   if (n.status == NodeStatus::kUnkillable) return;
                   if (r.exit_code == 0 && !r.signal && !a.timed_out) {
                     n.status = NodeStatus::kSucceeded;
                   } else if (stopping && a.sigterm_at && !a.timed_out) {
                     n.status = NodeStatus::kStopped;
                   } else {
                     n.status = NodeStatus::kFailed;
                   }
                 },
                 [&](const journal::NodeLaunchFailed& r) {
                   a.ended = true;
                   n.exit_code = static_cast<int>(r.exit_code);
                   n.started_at = e.at_ms;
                   n.ended_at = e.at_ms;
                   n.status = NodeStatus::kFailed;
                 },
                 [&](const journal::NodeRetryScheduled&) { n.status = NodeStatus::kPending; },
                 [&](const journal::NodeSkipped&) { n.status = NodeStatus::kSkipped; },
                 [&](const journal::NodeStopped&) { n.status = NodeStatus::kStopped; },
                 [&](const journal::NodeLost&) {
                   a.ended = true;
                   n.ended_at = e.at_ms;
                   n.status = NodeStatus::kLost;
                 },
                 [](const auto&) {},
             },
             record);
  if (!IsTerminal(view_.status)) {
    double cost = 0;
    for (const NodeView& node : view_.nodes) cost += node.cost_usd;
    view_.cost_usd = cost;
  }
  return Status::Ok();
}

}  // namespace warden::lifecycle

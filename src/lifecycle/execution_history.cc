#include "lifecycle/execution_history.h"

#include <algorithm>
#include <boost/json.hpp>

#include "base/json_text.h"
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

Result<ExecutionHistory> ExecutionHistory::Fold(const std::vector<journal::Event>& events,
                                                std::vector<std::string>* unreadable) {
  ExecutionHistory h;
  bool created = false;
  for (const journal::Event& e : events) {
    if (!created && e.kind != journal::kind::kExecutionCreated) continue;
    auto decoded = journal::DecodeFrom(e);
    Status s = decoded.ok() ? h.Apply(e, *decoded) : decoded.status();
    if (s.ok()) {
      created = true;
      continue;
    }
    // A kind from a newer Warden: readers skip what they do not know.
    if (!decoded.ok() && s.code() == StatusCode::kNotFound) continue;
    if (!created || unreadable == nullptr) return s;
    unreadable->push_back("record " + std::to_string(e.seq) + " (" + e.kind + "): " + s.message());
  }
  if (!created) return Status::NotFound("no execution.created record");
  return h;
}

void ExecutionHistory::SumCost() {
  if (IsTerminal(view_.status)) return;
  double cost = 0;
  for (const NodeView& n : view_.nodes) cost += n.cost_usd;
  view_.cost_usd = cost;
}

Status ExecutionHistory::Apply(const journal::Event& e, const journal::Record& record) {
  if (e.seq != 0) last_seq_ = view_.as_of_seq = e.seq;
  if (auto* created = std::get_if<journal::ExecutionCreated>(&record)) {
    return ApplyCreated(e, *created);
  }
  if (view_.id.empty()) {
    return Status::Corruption("execution " + e.execution_id + ": record of kind " +
                              std::string(journal::KindOf(record)) +
                              " before its execution.created");
  }
  if (!e.node_id.empty()) return ApplyNode(e, record);

  auto to = [this](ExecutionState s) { view_.status = s; };
  // What the execution's state means for its nodes that have a live tree.
  auto running_nodes_become = [this](NodeStatus from, NodeStatus status) {
    for (NodeView& n : view_.nodes) {
      if (n.status == from) n.status = status;
    }
  };
  resumed_ = false;
  std::visit(Overloaded{
                 [&](const journal::ExecutionStarted&) {
                   to(ExecutionState::kRunning);
                   view_.started_at = e.at_ms;
                 },
                 [&](const journal::ExecutionPaused&) {
                   to(ExecutionState::kPaused);
                   running_nodes_become(NodeStatus::kRunning, NodeStatus::kPaused);
                   pauses_.push_back({e.at_ms, std::nullopt});
                 },
                 [&](const journal::ExecutionResumed&) {
                   to(ExecutionState::kRunning);
                   running_nodes_become(NodeStatus::kPaused, NodeStatus::kRunning);
                   if (!pauses_.empty() && !pauses_.back().second) pauses_.back().second = e.at_ms;
                 },
                 [&](const journal::ExecutionStopRequested& r) {
                   // A joining request's shorter grace brings SIGKILL forward.
                   if (r.grace_ms && (!stop_grace_ms_ || *r.grace_ms < *stop_grace_ms_)) {
                     stop_grace_ms_ = r.grace_ms;
                   }
                   if (stop_ && r.joined) return;
                   stop_ = r;
                   if (IsTerminal(view_.status)) return;
                   // A paused execution's trees are thawed for their SIGTERM.
                   if (view_.status == ExecutionState::kPaused) {
                     running_nodes_become(NodeStatus::kPaused, NodeStatus::kRunning);
                   }
                   to(ExecutionState::kStopping);
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
                   for (const std::string& id : r.rerun) {
                     if (auto it = node_index_.find(id); it != node_index_.end()) {
                       view_.nodes[it->second].status = NodeStatus::kPending;
                     }
                   }
                 },
                 [](const auto&) {},
             },
             record);
  return Status::Ok();
}

Status ExecutionHistory::ApplyCreated(const journal::Event& e, const journal::ExecutionCreated& r) {
  if (!view_.id.empty()) {
    return Status::Corruption("execution " + e.execution_id + ": a second execution.created");
  }
  boost::system::error_code ec;
  boost::json::value json = ParseJson(r.spec_json, ec);
  if (ec) {
    return Status::Corruption("execution " + e.execution_id + ": journaled spec: " + ec.message());
  }
  auto spec = dag::ExecutionSpecFromJson(json, dag::SpecLimits::Unlimited());
  if (!spec.ok()) {
    return Status::Corruption("execution " + e.execution_id +
                              ": journaled spec: " + spec.status().message());
  }
  spec_ = std::move(*spec);
  spec_json_ = r.spec_json;
  view_.id = e.execution_id;
  view_.name = r.name;
  view_.created_at = e.at_ms;
  view_.nodes.clear();
  node_index_.clear();
  auto needs = std::make_shared<std::vector<std::vector<std::string>>>();
  needs->reserve(spec_.nodes.size());
  for (const dag::NodeSpec& node : spec_.nodes) {
    node_index_.emplace(node.id, view_.nodes.size());
    NodeView n;
    n.id = node.id;
    view_.nodes.push_back(std::move(n));
    needs->push_back(node.needs);
  }
  view_.needs = std::move(needs);
  attempts_.assign(spec_.nodes.size(), AttemptHistory{});
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
  auto found = node_index_.find(e.node_id);
  if (found == node_index_.end()) {
    return Status::Corruption("execution " + e.execution_id + ": record " + std::to_string(e.seq) +
                              " names unknown node " + e.node_id);
  }
  const size_t i = found->second;
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
                   SumCost();
                 },
                 [&](const journal::NodeUnkillable&) { n.status = NodeStatus::kUnkillable; },
                 [&](const journal::NodeExited& r) {
                   a.ended = true;
                   if (r.exit_code) n.exit_code = static_cast<int>(*r.exit_code);
                   n.signal = r.signal;
                   n.ended_at = e.at_ms;
                   n.cost_usd += r.cost_usd - a.reported_cost_usd;
                   a.reported_cost_usd = 0;
                   SumCost();
                   if (n.status == NodeStatus::kUnkillable) return;
                   if (r.outcome) {
                     // The execution's own verdict, recorded with the exit.
                     n.status = *r.outcome == "succeeded" ? NodeStatus::kSucceeded
                                : *r.outcome == "stopped" ? NodeStatus::kStopped
                                                          : NodeStatus::kFailed;
                     return;
                   }
                   // Journals from before the verdict was recorded: a clean exit is a
                   // success unless the node's own timeout ended it; a tree the stop
                   // signalled is stopped; the rest failed.
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
  return Status::Ok();
}

}  // namespace warden::lifecycle

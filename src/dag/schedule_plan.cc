#include "dag/schedule_plan.h"

#include <algorithm>
#include <string>
#include <utility>

namespace warden::dag {

std::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kPending:
      return "pending";
    case NodeState::kReady:
      return "ready";
    case NodeState::kRunning:
      return "running";
    case NodeState::kSucceeded:
      return "succeeded";
    case NodeState::kFailed:
      return "failed";
    case NodeState::kSkipped:
      return "skipped";
    case NodeState::kStopped:
      return "stopped";
  }
  return "unknown";
}

bool IsTerminal(NodeState state) {
  return state == NodeState::kSucceeded || state == NodeState::kFailed ||
         state == NodeState::kSkipped || state == NodeState::kStopped;
}

bool NodeTransitionAllowed(NodeState from, NodeState to) {
  using S = NodeState;
  // kAllowed[from][to], in the enum's order: pending ready running succeeded failed skipped
  // stopped.
  static constexpr bool kAllowed[kNodeStateCount][kNodeStateCount] = {
      /* pending   */ {false, true, false, false, false, true, true},
      /* ready     */ {false, false, true, false, false, false, true},
      /* running   */ {false, true, false, true, true, false, true},
      /* succeeded */ {false, false, false, false, false, false, false},
      /* failed    */ {false, false, false, false, false, false, false},
      /* skipped   */ {false, false, false, false, false, false, false},
      /* stopped   */ {false, false, false, false, false, false, false},
  };
  static_assert(static_cast<size_t>(S::kStopped) + 1 == kNodeStateCount);
  return kAllowed[static_cast<size_t>(from)][static_cast<size_t>(to)];
}

SchedulePlan::SchedulePlan(std::shared_ptr<const Dag> dag)
    : dag_(std::move(dag)),
      states_(dag_->node_count(), NodeState::kPending),
      remaining_needs_(dag_->node_count()),
      attempts_(dag_->node_count(), 0),
      attempt_base_(dag_->node_count(), 0) {
  counts_[static_cast<size_t>(NodeState::kPending)] = dag_->node_count();
  for (NodeIndex i = 0; i < dag_->node_count(); ++i) {
    remaining_needs_[i] = static_cast<uint32_t>(dag_->needs(i).size());
    if (remaining_needs_[i] == 0) {
      (void)SetState(i, NodeState::kReady);  // pending -> ready
      ready_.push_back(i);
    }
  }
}

Status SchedulePlan::SetState(NodeIndex i, NodeState state) {
  if (!NodeTransitionAllowed(states_[i], state)) {
    return Status::Internal("node \"" + dag_->node(i).id + "\" cannot go from " +
                            std::string(NodeStateName(states_[i])) + " to " +
                            std::string(NodeStateName(state)));
  }
  --counts_[static_cast<size_t>(states_[i])];
  ++counts_[static_cast<size_t>(state)];
  states_[i] = state;
  return Status::Ok();
}

Status SchedulePlan::CheckRunning(NodeIndex i, std::string_view call) const {
  if (i >= dag_->node_count()) {
    return Status::Internal(std::string(call) + ": no node " + std::to_string(i));
  }
  if (states_[i] != NodeState::kRunning) {
    return Status::Internal(std::string(call) + ": node \"" + dag_->node(i).id + "\" is " +
                            std::string(NodeStateName(states_[i])) + ", not running");
  }
  return Status::Ok();
}

size_t SchedulePlan::free_slots() const {
  const size_t running = count(NodeState::kRunning);
  const size_t max_parallel = dag_->spec().max_parallel;
  return running >= max_parallel ? 0 : max_parallel - running;
}

bool SchedulePlan::IsFinished() const {
  return count(NodeState::kPending) + count(NodeState::kReady) + count(NodeState::kRunning) == 0;
}

bool SchedulePlan::HasRetriesLeft(NodeIndex i) const {
  return i < dag_->node_count() && attempts_[i] - attempt_base_[i] <= dag_->node(i).retries;
}

Status SchedulePlan::Resume(const std::vector<bool>& succeeded,
                            const std::vector<uint32_t>& attempts) {
  const size_t n = dag_->node_count();
  if (succeeded.size() != n || attempts.size() != n ||
      count(NodeState::kRunning) + count(NodeState::kSucceeded) + count(NodeState::kFailed) +
              count(NodeState::kSkipped) + count(NodeState::kStopped) >
          0) {
    return Status::Internal("Resume: only a fresh plan of the same DAG can be resumed");
  }
  // Breadth-first from the ready nodes: a succeeded node readies its dependents, which are
  // then looked at in turn. Each edge is walked once, as in a run.
  std::deque<NodeIndex> work(ready_.begin(), ready_.end());
  while (!work.empty()) {
    NodeIndex i = work.front();
    work.pop_front();
    if (!succeeded[i] || states_[i] != NodeState::kReady) continue;
    ready_.erase(std::find(ready_.begin(), ready_.end(), i));
    WARDEN_RETURN_IF_ERROR(SetState(i, NodeState::kRunning));
    auto now_ready = MarkSucceeded(i);
    if (!now_ready.ok()) return now_ready.status();
    work.insert(work.end(), now_ready->begin(), now_ready->end());
  }
  for (NodeIndex i = 0; i < n; ++i) {
    if (succeeded[i] && states_[i] != NodeState::kSucceeded) {
      return Status::Internal("Resume: node \"" + dag_->node(i).id +
                              "\" succeeded before a need of its own did");
    }
  }
  attempts_ = attempts;
  attempt_base_ = attempts;
  return Status::Ok();
}

std::vector<NodeIndex> SchedulePlan::TakeReady(size_t limit) {
  const size_t n = std::min({limit, free_slots(), ready_.size()});
  std::vector<NodeIndex> taken;
  taken.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    NodeIndex i = ready_.front();
    ready_.pop_front();
    (void)SetState(i, NodeState::kRunning);  // ready_ holds ready nodes only
    ++attempts_[i];
    taken.push_back(i);
  }
  return taken;
}

Result<std::vector<NodeIndex>> SchedulePlan::MarkSucceeded(NodeIndex i) {
  WARDEN_RETURN_IF_ERROR(CheckRunning(i, "MarkSucceeded"));
  WARDEN_RETURN_IF_ERROR(SetState(i, NodeState::kSucceeded));
  std::vector<NodeIndex> now_ready;
  for (NodeIndex dependent : dag_->dependents(i)) {
    ++edge_visits_;
    // Counted even for a stopped or skipped dependent, so the counter stays truthful; only a
    // pending one can become ready.
    if (--remaining_needs_[dependent] == 0 && states_[dependent] == NodeState::kPending) {
      WARDEN_RETURN_IF_ERROR(SetState(dependent, NodeState::kReady));
      ready_.push_back(dependent);
      now_ready.push_back(dependent);
    }
  }
  return now_ready;
}

Result<std::vector<NodeIndex>> SchedulePlan::MarkFailed(NodeIndex i) {
  WARDEN_RETURN_IF_ERROR(CheckRunning(i, "MarkFailed"));
  WARDEN_RETURN_IF_ERROR(SetState(i, NodeState::kFailed));
  return MarkPendingDependents(i, NodeState::kSkipped);
}

Result<std::vector<NodeIndex>> SchedulePlan::MarkStopped(NodeIndex i) {
  WARDEN_RETURN_IF_ERROR(CheckRunning(i, "MarkStopped"));
  WARDEN_RETURN_IF_ERROR(SetState(i, NodeState::kStopped));
  return MarkPendingDependents(i, NodeState::kStopped);
}

Status SchedulePlan::MarkRetry(NodeIndex i) {
  WARDEN_RETURN_IF_ERROR(CheckRunning(i, "MarkRetry"));
  if (stopping_) {
    return Status::Internal("MarkRetry: node \"" + dag_->node(i).id + "\": the plan is stopping");
  }
  if (!HasRetriesLeft(i)) {
    return Status::Internal("MarkRetry: node \"" + dag_->node(i).id + "\" has no retries left");
  }
  WARDEN_RETURN_IF_ERROR(SetState(i, NodeState::kReady));
  ready_.push_back(i);
  return Status::Ok();
}

Status SchedulePlan::PutBack(NodeIndex i) {
  WARDEN_RETURN_IF_ERROR(CheckRunning(i, "PutBack"));
  if (stopping_) {
    return Status::Internal("PutBack: node \"" + dag_->node(i).id + "\": the plan is stopping");
  }
  WARDEN_RETURN_IF_ERROR(SetState(i, NodeState::kReady));
  --attempts_[i];
  ready_.push_front(i);
  return Status::Ok();
}

// A node only leaves `pending` once, so each node's dependents are walked at most once here,
// and never again by MarkSucceeded (a pending node never succeeds): the walk stays within the
// O(edges) budget of the whole run.
Result<std::vector<NodeIndex>> SchedulePlan::MarkPendingDependents(NodeIndex from, NodeState to) {
  std::vector<NodeIndex> marked;
  std::vector<NodeIndex> frontier = {from};
  while (!frontier.empty()) {
    NodeIndex node = frontier.back();
    frontier.pop_back();
    for (NodeIndex dependent : dag_->dependents(node)) {
      ++edge_visits_;
      if (states_[dependent] != NodeState::kPending) continue;
      WARDEN_RETURN_IF_ERROR(SetState(dependent, to));
      marked.push_back(dependent);
      frontier.push_back(dependent);
    }
  }
  std::sort(marked.begin(), marked.end());
  return marked;
}

std::vector<NodeIndex> SchedulePlan::StopPending() {
  // Once stopping, nothing is pending or ready again (MarkRetry refuses), so no rescan.
  if (stopping_) return {};
  stopping_ = true;
  std::vector<NodeIndex> stopped;
  for (NodeIndex i = 0; i < dag_->node_count(); ++i) {
    if (states_[i] == NodeState::kPending || states_[i] == NodeState::kReady) {
      (void)SetState(i, NodeState::kStopped);  // allowed from both
      stopped.push_back(i);
    }
  }
  ready_.clear();
  return stopped;
}

}  // namespace warden::dag

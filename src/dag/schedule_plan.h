// SchedulePlan: which nodes of one execution may start now, and what follows when one ends.
//
// Pure bookkeeping — no processes, clocks or I/O. The ExecutionManager drives it: it asks
// TakeReady for nodes to launch, and reports every attempt's end with one Mark* call. A node
// becomes ready the moment its last need succeeds (no waves), and nothing ever rescans the
// graph: over a whole run each edge is visited at most once (see edge_visits()), so a run
// costs O(nodes + edges) in total.
//
// Retries are driven by the caller, with the plan's help: a failed attempt of a node with
// HasRetriesLeft() can be put back with MarkRetry (it then queues behind the nodes already
// ready, and counts against maxParallel again when handed out); otherwise the caller reports
// MarkFailed. attempt() counts handouts, from 1.
//
// onFailure is applied by the caller too: MarkFailed always skips the failed node's
// transitive dependents (they can never run); with onFailure "stop" the caller then calls
// StopPending, which turns every other node that has not started into `stopped`.
//
// Not thread-safe: one execution's plan is used from that execution's strand only.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "dag/dag.h"

namespace warden::dag {

// A node's scheduling state; names as in api.md's Execution object.
enum class NodeState : uint8_t {
  kPending,    // waiting for needs to succeed
  kReady,      // all needs succeeded; waiting for a parallelism slot
  kRunning,    // handed out by TakeReady; the caller owns its process (paused counts too)
  kSucceeded,  // terminal
  kFailed,     // terminal: the caller gave up on it
  kSkipped,    // terminal: a need (transitively) failed
  kStopped,    // terminal: a stop ended it, or it never started because of one
};
inline constexpr size_t kNodeStateCount = 7;

// "pending", "ready", "running", "succeeded", "failed", "skipped" or "stopped".
std::string_view NodeStateName(NodeState state);
// True for succeeded, failed, skipped and stopped.
bool IsTerminal(NodeState state);

// The node state machine, written once as a table: whether a node in `from` may move to
// `to`. pending -> ready | skipped | stopped; ready -> running | stopped; running ->
// succeeded | failed | stopped | ready (a retry); nothing leaves a terminal state. Every
// change of a node's state goes through it (SchedulePlan refuses any other as an internal
// error).
bool NodeTransitionAllowed(NodeState from, NodeState to);

class SchedulePlan {
 public:
  // `dag` must not be null; the plan shares it, so the plan can move with its execution.
  // Nodes without needs start ready, in spec order; the rest pending. The parallelism budget
  // is dag->spec().max_parallel.
  explicit SchedulePlan(std::shared_ptr<const Dag> dag);

  // Takes up a run that crash recovery resumed, on a fresh plan: the nodes flagged in
  // `succeeded` (indexed by node) succeed again without running, through the same
  // transitions a run makes (ready -> running -> succeeded), so their dependents become
  // ready; `attempts` (indexed by node) are the attempts made so far, and the next handout of
  // a node is attempt + 1, without using up its retries. Internal error on a plan that has
  // handed out anything, or a flagged node whose needs were not all flagged too.
  Status Resume(const std::vector<bool>& succeeded, const std::vector<uint32_t>& attempts);

  // Marks running and returns the oldest ready nodes (in the order they became ready; ties in
  // spec order), as many as min(limit, free_slots(), ready count) — `limit` is the caller's
  // own budget, e.g. what is left of the daemon-wide cap. Each returned node starts a new
  // attempt. Returns nothing once StopPending was called.
  std::vector<NodeIndex> TakeReady(size_t limit = std::numeric_limits<size_t>::max());

  // Running `i` succeeded. Returns the dependents that became ready (already queued for
  // TakeReady), in spec order. Internal error if `i` is not running.
  Result<std::vector<NodeIndex>> MarkSucceeded(NodeIndex i);

  // Running `i` failed for good. Marks every pending transitive dependent skipped and returns
  // them. Internal error if `i` is not running.
  Result<std::vector<NodeIndex>> MarkFailed(NodeIndex i);

  // Running `i` failed and will be tried again: back to ready, queued behind the nodes already
  // ready. Internal error if `i` is not running, has no retries left, or the plan is stopping.
  Status MarkRetry(NodeIndex i);
  // Running `i` was never launched (the caller could not, for now): back to ready at the
  // head of the queue, its handout not counted. Internal error if `i` is not running or the
  // plan is stopping.
  Status PutBack(NodeIndex i);

  // Running `i` was ended by a stop. Marks every pending transitive dependent stopped and
  // returns them. Internal error if `i` is not running.
  Result<std::vector<NodeIndex>> MarkStopped(NodeIndex i);

  // Stops the plan: every pending or ready node becomes stopped (returned, in spec order) and
  // nothing becomes ready afterwards. Running nodes are left to the caller, who reports each
  // with a Mark* call. O(nodes); idempotent (a second call returns nothing).
  std::vector<NodeIndex> StopPending();

  NodeState state(NodeIndex i) const { return states_[i]; }
  // Attempts handed out so far: 0 before the first TakeReady of `i`, then 1, 2, ...
  uint32_t attempt(NodeIndex i) const { return attempts_[i]; }
  // True if `i` may be tried again: attempt(i) <= its spec's retries (attempts made before a
  // Resume do not count).
  bool HasRetriesLeft(NodeIndex i) const;

  size_t count(NodeState state) const { return counts_[static_cast<size_t>(state)]; }
  // maxParallel minus the running nodes (0 if over, which cannot happen through this API).
  size_t free_slots() const;
  // True when no node is pending, ready or running: the execution has nothing left to do.
  bool IsFinished() const;
  // True when every node succeeded.
  bool AllSucceeded() const { return count(NodeState::kSucceeded) == dag_->node_count(); }
  bool stopping() const { return stopping_; }

  // Edges walked so far. Never exceeds dag().edge_count(): tests and metrics use it to show
  // the work is linear.
  uint64_t edge_visits() const { return edge_visits_; }
  const Dag& dag() const { return *dag_; }

 private:
  // Moves `i` to `state` if NodeTransitionAllowed; Internal error (state unchanged) if not.
  Status SetState(NodeIndex i, NodeState state);
  Status CheckRunning(NodeIndex i, std::string_view call) const;
  // Marks `to` every pending node reachable from `from` along dependents; returns them.
  Result<std::vector<NodeIndex>> MarkPendingDependents(NodeIndex from, NodeState to);

  std::shared_ptr<const Dag> dag_;
  std::vector<NodeState> states_;
  std::vector<uint32_t> remaining_needs_;  // needs not yet succeeded
  std::vector<uint32_t> attempts_;
  std::vector<uint32_t> attempt_base_;  // attempts made before Resume
  std::deque<NodeIndex> ready_;         // exactly the nodes in state ready, oldest first
  std::array<size_t, kNodeStateCount> counts_{};
  bool stopping_ = false;
  uint64_t edge_visits_ = 0;
};

}  // namespace warden::dag

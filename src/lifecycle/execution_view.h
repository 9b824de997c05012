// Plain values the lifecycle hands out: snapshots of executions and nodes, stop requests and
// stop results. The API layer turns them into api.md's JSON.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lifecycle/execution_state.h"

namespace warden::lifecycle {

// Who asked: "uid:UID pid:PID" (Unix socket), "token:NAME" (TCP), "lib" (an embedding
// program) or "warden" (the daemon's own decision). Journaled with every change it causes.
struct Requester {
  std::string name = "lib";
  // The requesting process's name (/proc/PID/comm, read when its connection was accepted)
  // for a Unix socket peer; empty otherwise. Recorded with stop requests.
  std::string comm = {};
};

// api.md's node statuses.
enum class NodeStatus {
  kPending,
  kRunning,
  kPaused,
  kStopping,
  kSucceeded,
  kFailed,
  kSkipped,
  kStopped,
  kLost,
  kUnkillable,
};
// "pending", "running", ... as api.md spells them.
std::string_view NodeStatusName(NodeStatus status);

struct NodeView {
  std::string id;
  NodeStatus status = NodeStatus::kPending;
  int attempt = 0;                    // 0 before its first launch
  std::optional<int> pid;             // of the latest attempt
  std::optional<int> exit_code;       // set when it exited by itself
  std::optional<std::string> signal;  // "SIGKILL" etc. when a signal ended it
  std::optional<int64_t> started_at;  // ms since the epoch, latest attempt
  std::optional<int64_t> ended_at;
  double cost_usd = 0;  // all attempts, the running one up to now
};

struct ExecutionView {
  std::string id;
  std::optional<std::string> name;
  ExecutionState status = ExecutionState::kIdle;
  int64_t created_at = 0;  // ms since the epoch
  std::optional<int64_t> started_at;
  std::optional<int64_t> ended_at;
  double cost_usd = 0;
  std::vector<NodeView> nodes;  // in spec order
  // The journal seq of the latest committed record of this execution that the view reflects;
  // 0 when none is known (nothing committed yet). Following the execution's events after it
  // yields exactly the changes the view does not show yet.
  int64_t as_of_seq = 0;
  // Per node, in spec order: the ids of the nodes it needs (the spec's `needs`). Shared and
  // immutable, so that a view copies it for free; null only in a default-made view.
  std::shared_ptr<const std::vector<std::vector<std::string>>> needs;
};

// Why an execution is stopped (api.md's reasons).
enum class StopReason { kUserAbort, kTimeout, kError, kServerShutdown, kCrashRecovery };
// "user_abort", "timeout", "error", "server_shutdown", "crash_recovery".
std::string_view StopReasonName(StopReason reason);
// Parses one of the names above; InvalidArgument naming the bad value otherwise.
Result<StopReason> ParseStopReason(std::string_view name);

struct StopRequest {
  Requester requester;
  StopReason reason = StopReason::kUserAbort;
  std::string note;                 // free text, journaled; may be empty
  std::optional<int64_t> grace_ms;  // overrides every node's grace for this stop
};

struct StopSummary {
  int nodes_completed = 0;  // succeeded
  int nodes_failed = 0;     // failed, timed out and unkillable included
  int nodes_total = 0;
  int64_t duration_ms = 0;  // from the execution's start (or creation, if never started)
};

// api.md's StopResponse, plus what the stops view also records.
struct StopResult {
  ExecutionState status = ExecutionState::kStopped;  // stopped, or failed
  std::string execution_id;
  StopReason reason = StopReason::kUserAbort;
  double final_cost_usd = 0;
  int64_t stopped_at = 0;  // ms since the epoch
  StopSummary summary;
  int nodes_killed = 0;      // needed SIGKILL
  int nodes_unkillable = 0;  // survived SIGKILL
  bool journaled = true;     // false: the journal could not record (part of) the stop
};

}  // namespace warden::lifecycle

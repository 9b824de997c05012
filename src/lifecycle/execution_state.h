// The execution state machine of design.md, written once as a table. Every change of an
// execution's state goes through Transition(), and every transition into the journal.
#pragma once

#include <string_view>

#include "base/status.h"

namespace warden::lifecycle {

enum class ExecutionState { kIdle, kRunning, kPaused, kStopping, kStopped, kCompleted, kFailed };
inline constexpr int kExecutionStateCount = 7;

// What asks for a transition: a client's request, or what the daemon observed.
enum class ExecutionTrigger {
  kStart,         // request: idle -> running
  kPause,         // request: running -> paused
  kResume,        // request: paused -> running
  kStop,          // request: idle -> stopped; running|paused -> stopping
  kStopFinished,  // stopping -> stopped (every tree ended)
  kStopFailed,    // stopping -> failed (a tree was unkillable, or the stop's reason is error)
  kAllSucceeded,  // running -> completed
  kNothingLeft,   // running -> failed (onFailure continue, some node failed, nothing can run)
};
inline constexpr int kExecutionTriggerCount = 8;

// "idle", "running", "paused", "stopping", "stopped", "completed", "failed".
std::string_view ExecutionStateName(ExecutionState state);
// "start", "pause", "resume", "stop", "stop finished", ...
std::string_view ExecutionTriggerName(ExecutionTrigger trigger);
// True for stopped, completed and failed.
bool IsTerminal(ExecutionState state);
// True for idle, running, paused and stopping (what `GET /api/executions` lists by default).
inline bool IsActive(ExecutionState state) { return !IsTerminal(state); }

// The state `trigger` leads to from `from`, or Conflict naming both, e.g.
// "pause refused: execution 0193... is stopped". A stop of a stopping execution is not a
// transition (it joins the running stop) and is refused here too; the manager handles it.
Result<ExecutionState> Transition(ExecutionState from, ExecutionTrigger trigger,
                                  std::string_view execution_id);

}  // namespace warden::lifecycle

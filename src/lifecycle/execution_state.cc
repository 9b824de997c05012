#include "lifecycle/execution_state.h"

#include <optional>
#include <string>

namespace warden::lifecycle {
namespace {

using S = ExecutionState;
constexpr std::optional<S> kNo = std::nullopt;

// kTable[from][trigger]: the state a trigger leads to, or nothing if it is refused.
// Columns: start, pause, resume, stop, stop finished, stop failed, all succeeded, nothing left.
constexpr std::optional<S> kTable[kExecutionStateCount][kExecutionTriggerCount] = {
    /* idle */ {S::kRunning, kNo, kNo, S::kStopped, kNo, kNo, kNo, kNo},
    /* running */ {kNo, S::kPaused, kNo, S::kStopping, kNo, kNo, S::kCompleted, S::kFailed},
    /* paused */ {kNo, kNo, S::kRunning, S::kStopping, kNo, kNo, kNo, kNo},
    /* stopping */ {kNo, kNo, kNo, kNo, S::kStopped, S::kFailed, kNo, kNo},
    /* stopped */ {kNo, kNo, kNo, kNo, kNo, kNo, kNo, kNo},
    /* completed */ {kNo, kNo, kNo, kNo, kNo, kNo, kNo, kNo},
    /* failed */ {kNo, kNo, kNo, kNo, kNo, kNo, kNo, kNo},
};

}  // namespace

std::string_view ExecutionStateName(ExecutionState state) {
  switch (state) {
    case S::kIdle:
      return "idle";
    case S::kRunning:
      return "running";
    case S::kPaused:
      return "paused";
    case S::kStopping:
      return "stopping";
    case S::kStopped:
      return "stopped";
    case S::kCompleted:
      return "completed";
    case S::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view ExecutionTriggerName(ExecutionTrigger trigger) {
  switch (trigger) {
    case ExecutionTrigger::kStart:
      return "start";
    case ExecutionTrigger::kPause:
      return "pause";
    case ExecutionTrigger::kResume:
      return "resume";
    case ExecutionTrigger::kStop:
      return "stop";
    case ExecutionTrigger::kStopFinished:
      return "stop finished";
    case ExecutionTrigger::kStopFailed:
      return "stop failed";
    case ExecutionTrigger::kAllSucceeded:
      return "completion";
    case ExecutionTrigger::kNothingLeft:
      return "failure";
  }
  return "unknown";
}

bool IsTerminal(ExecutionState state) {
  return state == S::kStopped || state == S::kCompleted || state == S::kFailed;
}

Result<ExecutionState> Transition(ExecutionState from, ExecutionTrigger trigger,
                                  std::string_view execution_id) {
  std::optional<S> to = kTable[static_cast<int>(from)][static_cast<int>(trigger)];
  if (!to) {
    return Status::Conflict(std::string(ExecutionTriggerName(trigger)) + " refused: execution " +
                            std::string(execution_id) + " is " +
                            std::string(ExecutionStateName(from)));
  }
  return *to;
}

}  // namespace warden::lifecycle

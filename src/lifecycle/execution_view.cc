#include "lifecycle/execution_view.h"

#include <string>

namespace warden::lifecycle {

std::string_view NodeStatusName(NodeStatus status) {
  switch (status) {
    case NodeStatus::kPending:
      return "pending";
    case NodeStatus::kRunning:
      return "running";
    case NodeStatus::kPaused:
      return "paused";
    case NodeStatus::kStopping:
      return "stopping";
    case NodeStatus::kSucceeded:
      return "succeeded";
    case NodeStatus::kFailed:
      return "failed";
    case NodeStatus::kSkipped:
      return "skipped";
    case NodeStatus::kStopped:
      return "stopped";
    case NodeStatus::kLost:
      return "lost";
    case NodeStatus::kUnkillable:
      return "unkillable";
  }
  return "unknown";
}

namespace {
constexpr StopReason kReasons[] = {StopReason::kUserAbort, StopReason::kTimeout, StopReason::kError,
                                   StopReason::kServerShutdown, StopReason::kCrashRecovery};
}

std::string_view StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kUserAbort:
      return "user_abort";
    case StopReason::kTimeout:
      return "timeout";
    case StopReason::kError:
      return "error";
    case StopReason::kServerShutdown:
      return "server_shutdown";
    case StopReason::kCrashRecovery:
      return "crash_recovery";
  }
  return "unknown";
}

Result<StopReason> ParseStopReason(std::string_view name) {
  for (StopReason r : kReasons) {
    if (StopReasonName(r) == name) return r;
  }
  return Status::InvalidArgument("reason: unknown stop reason '" + std::string(name) +
                                 "' (user_abort, timeout, error, server_shutdown, "
                                 "crash_recovery)");
}

}  // namespace warden::lifecycle

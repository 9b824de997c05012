// One row of the journal table, and the names of the event kinds Warden writes.
// schema/README.md documents every kind and its payload fields.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace warden::journal {

struct Event {
  int64_t seq = 0;             // global order; 0 until appended, then assigned by the journal
  int64_t at_ms = 0;           // ms since the epoch; 0 = stamped by the journal when appended
  std::string execution_id;    // empty = NULL (daemon-wide events)
  std::string node_id;         // empty = NULL (execution-level events)
  int64_t attempt = 0;         // 0 = NULL; attempts count from 1
  std::string kind;            // one of the names in namespace kind, never empty
  std::string payload = "{}";  // a JSON object as text

  bool operator==(const Event&) const = default;
};

// Event kind names. The audit views (migrations/0002_audit_views.sql) depend on them.
namespace kind {
inline constexpr std::string_view kExecutionCreated = "execution.created";
inline constexpr std::string_view kExecutionStarted = "execution.started";
inline constexpr std::string_view kExecutionPaused = "execution.paused";
inline constexpr std::string_view kExecutionResumed = "execution.resumed";
inline constexpr std::string_view kExecutionStopRequested = "execution.stop_requested";
inline constexpr std::string_view kExecutionStopCompleted = "execution.stop_completed";
inline constexpr std::string_view kExecutionStopped = "execution.stopped";
inline constexpr std::string_view kExecutionCompleted = "execution.completed";
inline constexpr std::string_view kExecutionFailed = "execution.failed";
inline constexpr std::string_view kExecutionRecovered = "execution.recovered";
inline constexpr std::string_view kNodeIntent = "node.intent";
inline constexpr std::string_view kNodeStarted = "node.started";
inline constexpr std::string_view kNodeLaunchFailed = "node.launch_failed";
inline constexpr std::string_view kNodeSignalled = "node.signalled";
inline constexpr std::string_view kNodeExited = "node.exited";
inline constexpr std::string_view kNodeTimedOut = "node.timed_out";
inline constexpr std::string_view kNodeRetryScheduled = "node.retry_scheduled";
inline constexpr std::string_view kNodeSkipped = "node.skipped";
inline constexpr std::string_view kNodeStopped = "node.stopped";
inline constexpr std::string_view kNodeLost = "node.lost";
inline constexpr std::string_view kNodeUnkillable = "node.unkillable";
inline constexpr std::string_view kCostReported = "cost.reported";
inline constexpr std::string_view kOrphanFound = "orphan.found";
inline constexpr std::string_view kOrphanTerminated = "orphan.terminated";
inline constexpr std::string_view kOrphanKilled = "orphan.killed";
inline constexpr std::string_view kOrphanUnkillable = "orphan.unkillable";
inline constexpr std::string_view kDaemonStarted = "daemon.started";
inline constexpr std::string_view kDaemonStopped = "daemon.stopped";
inline constexpr std::string_view kRecoveryStarted = "recovery.started";
inline constexpr std::string_view kRecoveryFinished = "recovery.finished";
}  // namespace kind

}  // namespace warden::journal

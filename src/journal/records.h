// Typed journal records: one struct per event kind, each with its EncodeTo / DecodeFrom pair,
// so that what is written can be read back by the same code that wrote it. schema/README.md
// is the catalogue of kinds and payload fields; the field comments below use its names.
//
// Encoding turns a record into an Event's `kind` and `payload` (the caller sets the
// execution, node and attempt columns); decoding reads them back. Decoding ignores payload
// fields it does not know, as every reader of the journal must, and fails with Corruption
// naming the kind and the field when a field it needs is missing or has the wrong type.
// Thread-safety: plain values and pure functions.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"
#include "journal/event.h"

namespace warden::journal {

// ---- execution events ----

struct ExecutionCreated {
  std::optional<std::string> name;
  std::optional<std::string> request_id;
  std::string requested_by;
  std::string spec_json;  // the whole DAG spec as accepted, a JSON object as text
};
struct ExecutionStarted {
  std::string requested_by;
};
struct ExecutionPaused {
  std::string requested_by;
};
struct ExecutionResumed {
  std::string requested_by;
  int64_t paused_ms = 0;
};
struct ExecutionStopRequested {
  std::string requested_by;
  std::string requested_by_comm;  // the requesting process's name; empty: not known
  std::string reason;             // user_abort, timeout, error, server_shutdown, crash_recovery
  std::string note;               // empty: none
  std::optional<int64_t> grace_ms;
  bool joined = false;
};
struct ExecutionStopCompleted {
  std::string status;  // stopped | failed
  std::string reason;
  double final_cost_usd = 0;
  int64_t nodes_completed = 0;
  int64_t nodes_failed = 0;
  int64_t nodes_total = 0;
  int64_t duration_ms = 0;
  int64_t stopped_at = 0;
  bool journaled = true;
};
struct ExecutionStopped {
  double cost_usd = 0;
};
struct ExecutionCompleted {
  double cost_usd = 0;
};
struct ExecutionFailed {
  double cost_usd = 0;
  std::string reason;  // node_failed | unkillable | error | crash_recovery; empty: none
};

// Crash recovery terminated the execution's orphans and resumes it (onRecovery "resume"):
// succeeded nodes are kept, `rerun` (node ids) run again as new attempts.
struct ExecutionRecovered {
  std::string requested_by;
  std::vector<std::string> rerun;
};

// ---- node events ----

struct NodeIntent {
  std::vector<std::string> argv;
  std::string cwd;
  std::string cookie_execution_id;
  std::string cookie_node_id;
  int64_t cookie_attempt = 0;
  std::string cgroup;       // empty: none (pgroup mode)
  std::string containment;  // cgroup | pgroup
};
struct NodeStarted {
  int64_t pid = 0;
  uint64_t start_time = 0;  // clock ticks since boot, /proc/PID/stat field 22
  std::string boot_id;
  int64_t pgid = 0;
  int64_t sid = 0;
  std::string cgroup;  // empty: none
  std::string containment;
};
struct NodeLaunchFailed {
  std::string error;
  int64_t exit_code = 126;
};
struct NodeSignalled {
  std::string signal;               // SIGTERM | SIGKILL
  std::string why;                  // stop | timeout | grace_expired | shutdown | crash_recovery
  std::optional<int64_t> grace_ms;  // SIGTERM: the grace in force for this tree
};
struct NodeExited {
  std::optional<int64_t> exit_code;
  std::optional<std::string> signal;  // a name such as SIGKILL
  bool graceful = true;
  bool killed = false;
  double cost_usd = 0;
  int64_t duration_ms = 0;
  int64_t paused_ms = 0;
  // The attempt's verdict: "succeeded", "failed" or "stopped" (ended by the stop). Unset in
  // journals from before it was recorded.
  std::optional<std::string> outcome;
};
struct NodeTimedOut {
  int64_t timeout_ms = 0;
};
struct NodeRetryScheduled {
  int64_t next_attempt = 0;
};
struct NodeSkipped {
  std::string because;
};
struct NodeStopped {
  std::string reason;
};
struct NodeLost {
  std::string why;  // host_rebooted | pid_reused | gone
};
struct NodeUnkillable {
  std::vector<int64_t> pids;
};
struct CostReported {
  double cost_usd = 0;
};

// ---- crash recovery ----

struct OrphanFound {
  int64_t pid = 0;                              // the recorded pid (0: none recorded)
  std::optional<uint64_t> start_time;           // recorded
  std::optional<uint64_t> observed_start_time;  // what /proc showed for that pid
  std::string verdict;                          // same | gone | pid_reused | host_rebooted
  std::string detection;                        // pid | cgroup | cookie
  std::optional<int64_t> grace_ms;              // the grace recovery uses
  std::vector<int64_t> members;                 // live members found
};
struct OrphanTerminated {
  int64_t pid = 0;
};
struct OrphanKilled {
  int64_t pid = 0;
};
struct OrphanUnkillable {
  int64_t pid = 0;
  std::vector<int64_t> pids;
};
struct DaemonStarted {
  int64_t pid = 0;
  std::string version;
  std::string boot_id;
  std::string containment;
  std::string cgroup_root;  // empty: none
  // Every execution created before this seq had ended at this start (Journal::ScanWatermark).
  int64_t scan_from = 0;
};
struct DaemonStopped {
  int64_t pid = 0;
  std::string version;
};
struct RecoveryStarted {
  std::vector<std::string> executions;
};
struct RecoveryFinished {
  int64_t executions = 0;
  int64_t orphans = 0;
  int64_t duration_ms = 0;
};

using Record =
    std::variant<ExecutionCreated, ExecutionStarted, ExecutionPaused, ExecutionResumed,
                 ExecutionStopRequested, ExecutionStopCompleted, ExecutionStopped,
                 ExecutionCompleted, ExecutionFailed, ExecutionRecovered, NodeIntent, NodeStarted,
                 NodeLaunchFailed, NodeSignalled, NodeExited, NodeTimedOut, NodeRetryScheduled,
                 NodeSkipped, NodeStopped, NodeLost, NodeUnkillable, CostReported, OrphanFound,
                 OrphanTerminated, OrphanKilled, OrphanUnkillable, DaemonStarted, DaemonStopped,
                 RecoveryStarted, RecoveryFinished>;

// The kind name a record is written under (one of namespace kind's).
std::string_view KindOf(const Record& record);

// Sets event.kind and event.payload from `record`; leaves the other columns alone.
void EncodeTo(const Record& record, Event& event);

// Reads event.kind and event.payload back. NotFound for a kind this Warden does not know
// (a newer one wrote it: readers skip it), Corruption for a payload that is not what its
// kind requires.
Result<Record> DecodeFrom(const Event& event);

}  // namespace warden::journal

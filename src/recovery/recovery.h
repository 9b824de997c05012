// Recover: crash recovery at start-up, before the daemon serves anything.
//
// The journal is the source of truth. For every execution it holds that has not ended, the
// execution is rebuilt from its records (lifecycle's ExecutionHistory), and every node
// attempt that was launched and never recorded as ended is handed to the OrphanReaper:
//   1. examine each against /proc (nothing is signalled yet);
//   2. journal, durably and before any signal, what was found (orphan.found, one per
//      attempt, with what was recorded and what /proc showed) and the stop that recovery
//      makes of the execution (execution.stop_requested, reason crash_recovery; a request
//      that joins the stop already in progress when the execution was stopping);
//   3. terminate every live tree of ours at once: SIGTERM (journaled as node.signalled the
//      moment it is sent), thaw, the grace in force, SIGKILL; never anything not proven ours;
//   4. journal each outcome (orphan.terminated / killed / unkillable, node.exited or
//      node.lost) and close the execution: pending nodes stopped, execution.stop_completed,
//      then execution.failed with reason crash_recovery (or the stop in progress finished
//      with its own reason). An execution whose spec says onRecovery "resume" (and that was
//      not stopping) is not closed: execution.recovered names the nodes that will run
//      again, and the manager takes it up (ExecutionManager::Restore); no stop is journaled
//      for it. A tree that survived SIGKILL makes it fail instead.
// An idle execution stays idle: nothing of it ran. Recovery interrupted by another crash is
// run again by the next start and reaches the same end: a SIGTERM already journaled keeps
// its deadline, and attempts already closed are not looked at again.
//
// If the journal cannot be written, the orphans are still terminated (safety beats
// bookkeeping); what could not be journaled is logged and counted.
//
// Threading: blocks the calling thread for up to the largest grace plus the kill timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "journal/journal.h"
#include "recovery/orphan_reaper.h"

namespace warden::recovery {

struct RecoveryOptions {
  int64_t default_grace_ms = 2000;  // the daemon's --grace-ms
  ReaperOptions reaper;
  // Progress for the service manager (systemd STATUS=), one line per step; may be empty.
  std::function<void(std::string_view)> on_progress;
  // Called before the orphans are terminated with the longest that can take (the largest
  // grace plus the kill timeout), so the service manager can extend its start timeout; may
  // be empty.
  std::function<void(std::chrono::milliseconds)> on_terminating;
};

struct RecoveryReport {
  int executions = 0;     // not ended in the journal when recovery began
  int closed = 0;         // of those, closed by recovery
  int resumed = 0;        // of those, resumed (onRecovery "resume"); the rest were idle
  int attempts = 0;       // node attempts examined (orphans view rows)
  int terminated = 0;     // ended inside the grace after SIGTERM
  int killed = 0;         // needed SIGKILL
  int unkillable = 0;     // survived SIGKILL
  int gone = 0;           // nothing of ours was alive
  int pid_reused = 0;     // the pid belongs to a stranger now: never signalled
  int host_rebooted = 0;  // another boot: never signalled
  int not_journaled = 0;  // journal appends that failed
  int64_t duration_ms = 0;
};

// Runs crash recovery on `journal` (see above). Errors: only when the journal cannot be
// read (then nothing was signalled); journal write failures are counted in the report.
Result<RecoveryReport> Recover(journal::Journal& journal, const RecoveryOptions& options);

}  // namespace warden::recovery

// ExecutionManager: the registry of executions and the one owner of their lifecycle.
//
// It validates specs (dag layer), writes every transition to the journal before or as it
// acts (write-ahead for launches and stops), launches node attempts through a ProcessRunner,
// schedules them under each execution's maxParallel and a manager-wide cap, applies
// timeouts, retries and onFailure, accrues cost, and resolves stops with a StopResult.
//
// Threading: every method must be called on the thread that runs `io` (an embedding program
// owns the io_context and runs it on one thread; the daemon does the same). Completion
// callbacks are invoked on that thread, never inside the call that registered them.
//
// Journal: commits run on the journal writer's thread (journal_writer.h). The event loop
// waits for one only where a rule says so — a client's create, start, pause or resume is
// durable before it is acknowledged, a launch's intent is committed before the process
// exists, a stop request before its signals — and never for another connection's lock
// beyond journal_writer.lock_bound. While such a lock lasts (busy), requests that start new
// work answer Unavailable and launches wait; exits, timers and reads go on, and a stop
// signals at once, its rows committed later with the times they happened at.
//
// Journal failure: once the journal has failed, requests that start new work (Create,
// Start, Resume) answer Unavailable, and an execution that would launch a node is stopped
// with reason `error`; stops keep working and their results say journaled = false.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "dag/spec.h"
#include "journal/journal.h"
#include "journal/journal_writer.h"
#include "lifecycle/execution_view.h"
#include "process/process_runner.h"

namespace warden::lifecycle {

class Execution;

struct ManagerOptions {
  dag::SpecLimits spec_limits;
  int64_t default_grace_ms = 2000;  // the daemon's --grace-ms: grace when nothing else sets one
  size_t max_running = 0;           // nodes running at once across all executions; 0 = no cap
  // Where captured output goes: <log_dir>/<execution>/<node>.<attempt>.stdout|stderr.
  // Empty: output is read and discarded.
  std::string log_dir;
  uint64_t output_cap_bytes = 16ull << 20;  // per stream and attempt
  const Clock* clock = &SystemClock::Instance();
  // The journal writer's thread: how long a client's request waits for another
  // connection's lock before it is refused (lock_bound), and the like.
  journal::WriterOptions journal_writer;
};

// Counters for /metrics. Monotonic unless said otherwise.
struct ManagerStats {
  std::map<std::string, uint64_t> stops_by_reason;  // by StopReasonName
  uint64_t sigkill_escalations = 0;                 // node trees that needed SIGKILL
  uint64_t malformed_notify_lines = 0;              // ignored WARDEN_NOTIFY_FD lines
  size_t running_nodes = 0;                         // now
};

class ExecutionManager {
 public:
  // `journal` and `runner` must outlive the manager. Destroying the manager abandons running
  // trees as a crash would (call StopAll first) and drops every pending completion callback.
  ExecutionManager(boost::asio::io_context& io, journal::Journal& journal,
                   process::ProcessRunner& runner, ManagerOptions options = {});
  ~ExecutionManager();
  ExecutionManager(const ExecutionManager&) = delete;
  ExecutionManager& operator=(const ExecutionManager&) = delete;

  struct Created {
    ExecutionView execution;
    bool existing = false;  // true: `requestId` named an execution made earlier
  };
  // Parses and validates `spec_json` (api.md's DAG spec), journals `execution.created`
  // durably and, if `start`, starts it. A spec whose requestId was seen before returns that
  // execution with existing = true. Errors: InvalidArgument / TooLarge for the spec,
  // Unavailable when the journal has failed.
  Result<Created> Create(std::string_view spec_json, const Requester& requester, bool start);

  // idle -> running. Conflict naming the state otherwise; NotFound; Unavailable.
  Result<ExecutionView> Start(const std::string& id, const Requester& requester);

  // running -> paused: holds the scheduler, freezes every running tree and stops the timeout
  // and cost clocks; `done` gets the execution once every tree is frozen and the pause is
  // journaled. Conflict / NotFound otherwise.
  void Pause(const std::string& id, const Requester& requester,
             std::function<void(Result<ExecutionView>)> done);
  // paused -> running: thaws every tree and lets the scheduler go on.
  void Resume(const std::string& id, const Requester& requester,
              std::function<void(Result<ExecutionView>)> done);

  // Stops an idle, running or paused execution: journals the request durably before any
  // signal, stops pending nodes, terminates every running tree in parallel under the grace in
  // force, and calls `done` with the StopResult once every tree has ended. `accepted` (may be
  // empty) is called as soon as the execution is stopping, with its view (for wait=false).
  // Stopping a stopping execution joins the running stop and gets the same result. Errors
  // (through `done`, `accepted` is then not called): NotFound; Conflict for an ended one.
  void Stop(const std::string& id, StopRequest request,
            std::function<void(Result<ExecutionView>)> accepted,
            std::function<void(Result<StopResult>)> done);

  // Stops every active execution with reason `server_shutdown`, all in parallel under one
  // grace, ManagerOptions::default_grace_ms (the daemon's --grace-ms); `done` runs when all
  // have ended. With `kill_now`, every tree gets grace 0 (SIGKILL at once);
  // calling it again with kill_now while a shutdown runs escalates that shutdown.
  void StopAll(bool kill_now, std::function<void()> done);

  // Loads what the journal holds from earlier runs of the daemon: every execution that has
  // not ended is rebuilt from its records, so that it can be started or stopped as if the
  // daemon had never gone away. Call once, before any other call, after crash recovery has
  // closed the executions a crash interrupted, or resumed those whose spec says onRecovery
  // "resume" (they go on from here: succeeded nodes kept, the rest launched again). An
  // execution still running in the journal that recovery did not resume is not rebuilt: it
  // is served read-only from the journal, with a warning. Ended executions are not loaded:
  // they are read from the journal when asked for. Errors: the journal's.
  Status Restore();

  // Any execution in the journal, live or ended, also from before a restart. NotFound for
  // an id the journal does not have; the journal's error if it cannot be read.
  Result<ExecutionView> Get(const std::string& id) const;
  // Active executions (idle, running, paused, stopping), or all, oldest first. With ended
  // ones, the journal is read for every execution it holds.
  Result<std::vector<ExecutionView>> List(bool include_ended) const;
  // The captured output file of `node`'s latest attempt; NotFound for an unknown execution,
  // node, or a node that never ran.
  Result<std::string> OutputPath(const std::string& id, const std::string& node,
                                 bool stderr_stream) const;
  // The journal rows of execution `id` with seq > after_seq, oldest first. NotFound for an
  // unknown execution.
  Result<std::vector<journal::Event>> ReadEvents(const std::string& id, int64_t after_seq) const;

  // Calls `listener` with every journal event of execution `id` right after it commits,
  // until the returned handle is destroyed (which may happen after the manager is gone). Events
  // already in the journal are not replayed (read them from the journal first, then subscribe; seq
  // tells duplicates apart).
  class Subscription;
  std::unique_ptr<Subscription> Subscribe(const std::string& id,
                                          std::function<void(const journal::Event&)> listener);

  size_t active_count() const;
  // Executions this daemon made or restored since it started, by state, indexed by
  // ExecutionState. An ended execution leaves memory once its end is journaled (it is then
  // read from the journal like one of an earlier run), and is still counted here.
  std::vector<size_t> CountByState() const;
  ManagerStats stats() const;
  // Ok while the journal is writable; otherwise why not.
  Status journal_health() const;
  // Unavailable, naming the lock, while another connection has held the journal's write
  // lock past journal_writer.lock_bound: new work is refused meanwhile (what runs goes on,
  // and stops still signal at once); Ok otherwise.
  Status journal_busy() const;
  // Waits until every transition so far is committed (or refused for good), or until the
  // journal is busy, and hands the events to subscribers: for an embedder about to read the
  // journal itself, and for tests.
  void WaitForJournal();
  process::ContainmentMode containment() const;

 private:
  friend class Execution;
  // ... implementation in execution_manager.cc
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ExecutionManager::Subscription {
 public:
  ~Subscription();

 private:
  friend class ExecutionManager;
  std::function<void()> cancel_;
};

}  // namespace warden::lifecycle

#include "recovery/recovery.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "base/crash_point.h"
#include "journal/records.h"
#include "lifecycle/execution_history.h"
#include "lifecycle/execution_view.h"

namespace warden::recovery {

namespace {

using lifecycle::ExecutionHistory;
using lifecycle::ExecutionState;
using lifecycle::NodeStatus;

// Queues records and commits them; a failed commit is logged and counted, never fatal:
// recovery goes on terminating what it must.
class RecordWriter {
 public:
  RecordWriter(journal::Journal& journal, RecoveryReport& report)
      : journal_(journal), report_(report) {}

  void Add(const journal::Record& record, const std::string& execution_id = "",
           const std::string& node_id = "", int attempt = 0, int64_t at_ms = 0) {
    journal::Event e;
    e.execution_id = execution_id;
    e.node_id = node_id;
    e.attempt = attempt;
    e.at_ms = at_ms;
    journal::EncodeTo(record, e);
    pending_.push_back(std::move(e));
  }

  void Commit(journal::Durability durability) {
    if (pending_.empty()) return;
    auto r = journal_.Append(std::span<journal::Event>(pending_), durability);
    if (!r.ok()) {
      report_.not_journaled += static_cast<int>(pending_.size());
      for (const journal::Event& e : pending_) {
        spdlog::error("recovery: could not journal {} {} {}: {} ({})", e.kind, e.execution_id,
                      e.node_id, e.payload, r.status().message());
      }
    }
    pending_.clear();
  }

 private:
  journal::Journal& journal_;
  RecoveryReport& report_;
  std::vector<journal::Event> pending_;
};

// One execution recovery closes, and where its attempts sit in the reaper's list.
struct ExecutionWork {
  std::string id;
  ExecutionHistory history;
  std::vector<size_t> attempts;  // indexes into the reaper's list
  std::vector<size_t> nodes;     // the node index of each of those attempts
};

process::ProcessIdentity IdentityOf(const journal::NodeStarted& started,
                                    const process::Cookie& cookie) {
  process::ProcessIdentity id;
  id.boot_id = started.boot_id;
  id.pid = static_cast<pid_t>(started.pid);
  id.start_ticks = started.start_time;
  id.pgid = static_cast<pid_t>(started.pgid);
  id.sid = static_cast<pid_t>(started.sid);
  id.cgroup_path = started.cgroup;
  id.cookie = cookie;
  return id;
}

// The node attempts of `h` that were launched (an intent is on record) and never ended.
void CollectAttempts(ExecutionWork& work, int64_t default_grace_ms,
                     std::vector<RecordedAttempt>& out) {
  const ExecutionHistory& h = work.history;
  std::optional<uint64_t> stop_grace;
  if (h.stop_grace_ms()) stop_grace = static_cast<uint64_t>(*h.stop_grace_ms());
  for (size_t i = 0; i < h.attempts().size(); ++i) {
    const lifecycle::AttemptHistory& a = h.attempts()[i];
    if (a.attempt == 0 || !a.intent || a.ended) continue;
    const dag::NodeSpec& node = h.spec().nodes[i];
    RecordedAttempt r;
    r.execution_id = work.id;
    r.node_id = node.id;
    r.attempt = a.attempt;
    r.cookie = {a.intent->cookie_execution_id, a.intent->cookie_node_id,
                static_cast<int>(a.intent->cookie_attempt)};
    r.mode = a.intent->containment == "cgroup" ? process::ContainmentMode::kCgroup
                                               : process::ContainmentMode::kProcessGroup;
    r.cgroup_path = a.intent->cgroup;
    if (a.started) r.identity = IdentityOf(*a.started, r.cookie);
    r.grace = std::chrono::milliseconds(
        dag::GraceMsInForce(stop_grace, node, h.spec(), static_cast<uint64_t>(default_grace_ms)));
    r.sigterm_sent_ms = a.sigterm_at;
    work.attempts.push_back(out.size());
    work.nodes.push_back(i);
    out.push_back(std::move(r));
  }
}

// What the attempt cost: what it last reported, plus its rate over the time it ran, unpaused,
// until recovery saw its tree empty (a pause in force at the crash lasted until recovery
// thawed the tree).
double AttemptCost(const ExecutionWork& work, size_t node, int64_t ended_at) {
  const lifecycle::AttemptHistory& a = work.history.attempts()[node];
  double cost = a.reported_cost_usd;
  if (a.started_at && ended_at > *a.started_at) {
    const int64_t ran =
        ended_at - *a.started_at - work.history.PausedMsBetween(*a.started_at, ended_at);
    cost += work.history.spec().nodes[node].cost_per_second_usd *
            static_cast<double>(std::max<int64_t>(0, ran)) / 1000.0;
  }
  return cost;
}

void Count(RecoveryReport& report, Action action) {
  switch (action) {
    case Action::kTerminated:
      ++report.terminated;
      break;
    case Action::kKilled:
      ++report.killed;
      break;
    case Action::kUnkillable:
      ++report.unkillable;
      break;
    case Action::kGone:
      ++report.gone;
      break;
    case Action::kPidReused:
      ++report.pid_reused;
      break;
    case Action::kHostRebooted:
      ++report.host_rebooted;
      break;
  }
}

// The end of one attempt: its orphan action and the node's own end.
void RecordOutcome(RecordWriter& out, const ExecutionWork& work, size_t k,
                   const RecordedAttempt& attempt, const Outcome& outcome) {
  const std::string& node = attempt.node_id;
  const int64_t pid = attempt.identity ? attempt.identity->pid : 0;
  if (outcome.sigkill_sent_ms) {
    out.Add(journal::NodeSignalled{"SIGKILL", "grace_expired", std::nullopt}, work.id, node,
            attempt.attempt, *outcome.sigkill_sent_ms);
  }
  switch (outcome.action) {
    case Action::kTerminated:
      out.Add(journal::OrphanTerminated{pid}, work.id, node, attempt.attempt,
              outcome.finished_at_ms);
      break;
    case Action::kKilled:
      out.Add(journal::OrphanKilled{pid}, work.id, node, attempt.attempt, outcome.finished_at_ms);
      break;
    case Action::kUnkillable: {
      std::vector<int64_t> pids(outcome.unkillable.begin(), outcome.unkillable.end());
      out.Add(journal::OrphanUnkillable{pid, pids}, work.id, node, attempt.attempt,
              outcome.finished_at_ms);
      out.Add(journal::NodeUnkillable{pids}, work.id, node, attempt.attempt,
              outcome.finished_at_ms);
      break;
    }
    case Action::kGone:
    case Action::kPidReused:
    case Action::kHostRebooted:
      // Its end was not seen: how it ended, and when, is unknown.
      out.Add(journal::NodeLost{std::string(ActionName(outcome.action))}, work.id, node,
              attempt.attempt, outcome.finished_at_ms);
      return;
  }
  // The new daemon is not the tree's parent: no exit status reaches it.
  journal::NodeExited exited;
  exited.graceful = outcome.action == Action::kTerminated;
  exited.killed = outcome.sigkill_sent_ms.has_value();
  exited.cost_usd = AttemptCost(work, work.nodes[k], outcome.finished_at_ms);
  const auto& started_at = work.history.attempts()[work.nodes[k]].started_at;
  exited.duration_ms = started_at ? std::max<int64_t>(0, outcome.finished_at_ms - *started_at) : 0;
  // Ended by recovery's stop, unless the node's own timeout had already ended it.
  exited.outcome = work.history.attempts()[work.nodes[k]].timed_out ? "failed" : "stopped";
  out.Add(exited, work.id, node, attempt.attempt, outcome.finished_at_ms);
}

// The nodes as they stand now that the outcomes are journaled.
ExecutionHistory Refold(journal::Journal& journal, const ExecutionWork& work) {
  auto events = journal.ReadExecution(work.id);
  if (events.ok()) {
    std::vector<std::string> unreadable;  // already logged by the first fold
    if (auto now = ExecutionHistory::Fold(*events, &unreadable); now.ok()) {
      return std::move(*now);
    }
  }
  return work.history;
}

// onRecovery "resume": every node that has not succeeded runs again, as a new attempt, once
// the manager takes the execution up.
void ResumeExecution(journal::Journal& journal, RecordWriter& out, const ExecutionWork& work) {
  ExecutionHistory h = Refold(journal, work);
  std::vector<std::string> rerun;
  for (const lifecycle::NodeView& n : h.view().nodes) {
    if (n.status != NodeStatus::kSucceeded) rerun.push_back(n.id);
  }
  out.Add(journal::ExecutionRecovered{"warden", rerun}, work.id);
  out.Commit(journal::Durability::kDurable);
}

// Pending nodes stopped, the stop completed, the execution ended.
void CloseExecution(journal::Journal& journal, RecordWriter& out, const ExecutionWork& work,
                    const std::string& reason, bool unkillable, const Clock& clock) {
  ExecutionHistory h = Refold(journal, work);
  for (const lifecycle::NodeView& n : h.view().nodes) {
    if (n.status == NodeStatus::kPending || n.status == NodeStatus::kRunning) {
      out.Add(journal::NodeStopped{reason}, work.id, n.id, std::max(n.attempt, 1));
    }
  }
  const int64_t at = clock.WallMs();
  int completed = 0, failed = 0;
  double cost = 0;
  for (const lifecycle::NodeView& n : h.view().nodes) {
    completed += n.status == NodeStatus::kSucceeded ? 1 : 0;
    failed += n.status == NodeStatus::kFailed || n.status == NodeStatus::kUnkillable ? 1 : 0;
    cost += n.cost_usd;
  }
  // A stop in progress at the crash keeps its reason; a stop recovery made fails the
  // execution, as does a tree that could not be killed or a stop caused by an error.
  const bool ends_failed = reason == "crash_recovery" || reason == "error" || unkillable;
  const int64_t begun = h.view().started_at.value_or(at);
  out.Add(
      journal::ExecutionStopCompleted{ends_failed ? "failed" : "stopped", reason, cost, completed,
                                      failed, static_cast<int64_t>(h.view().nodes.size()),
                                      at - begun, at, true},
      work.id, "", 0, at);
  if (ends_failed) {
    out.Add(journal::ExecutionFailed{cost, unkillable ? "unkillable" : reason}, work.id, "", 0, at);
  } else {
    out.Add(journal::ExecutionStopped{cost}, work.id, "", 0, at);
  }
  out.Commit(journal::Durability::kDurable);
}

}  // namespace

Result<RecoveryReport> Recover(journal::Journal& journal, const RecoveryOptions& options) {
  const Clock& clock = *options.reaper.clock;
  const auto began = clock.Now();
  auto progress = [&](std::string_view line) {
    if (options.on_progress) options.on_progress(line);
  };
  RecoveryReport report;
  RecordWriter out(journal, report);

  // 1. What the journal says is not over.
  auto ids = journal.NonTerminalExecutionIds();
  if (!ids.ok()) return ids.status();
  report.executions = static_cast<int>(ids->size());
  std::vector<ExecutionWork> work;
  std::vector<RecordedAttempt> attempts;
  for (const std::string& id : *ids) {
    auto events = journal.ReadExecution(id);
    if (!events.ok()) return events.status();
    // A record that cannot be read must not leave the processes the others name running.
    std::vector<std::string> unreadable;
    auto history = ExecutionHistory::Fold(*events, &unreadable);
    for (const std::string& what : unreadable) {
      spdlog::error("recovery: execution {}: skipped {}", id, what);
    }
    if (!history.ok()) {
      spdlog::error("recovery: execution {} cannot be rebuilt from the journal: {}", id,
                    history.status().message());
      continue;
    }
    if (history->view().status == ExecutionState::kIdle) continue;  // nothing of it ran
    work.push_back(ExecutionWork{id, std::move(*history), {}, {}});
    CollectAttempts(work.back(), options.default_grace_ms, attempts);
  }
  report.attempts = static_cast<int>(attempts.size());
  // Idle executions ran nothing: a start that finds only those (or nothing) has nothing to
  // recover and journals nothing about it.
  if (work.empty()) return report;
  std::vector<std::string> interrupted;
  for (const ExecutionWork& w : work) interrupted.push_back(w.id);
  out.Add(journal::RecoveryStarted{interrupted});
  out.Commit(journal::Durability::kDurable);
  progress("recovery: examining " + std::to_string(attempts.size()) + " node process tree(s) of " +
           std::to_string(work.size()) + " interrupted execution(s)");

  // 2. Examine, then write ahead: the findings and the stop, before any signal.
  OrphanReaper reaper(options.reaper);
  std::vector<Finding> findings = reaper.Examine(attempts);
  std::vector<std::string> reasons;
  std::vector<bool> resume;
  for (const ExecutionWork& w : work) {
    const bool stopping = w.history.view().status == ExecutionState::kStopping && w.history.stop();
    reasons.push_back(stopping ? w.history.stop()->reason : "crash_recovery");
    // onRecovery "resume": the orphans go, the execution stays (a stop in progress is
    // finished all the same).
    resume.push_back(!stopping && w.history.spec().on_recovery == dag::OnRecovery::kResume);
    if (!resume.back()) {
      out.Add(journal::ExecutionStopRequested{"warden", "", "crash_recovery",
                                              "wardend restarted after a crash", std::nullopt,
                                              stopping},
              w.id);
    }
    for (size_t k = 0; k < w.attempts.size(); ++k) {
      const RecordedAttempt& a = attempts[w.attempts[k]];
      const Finding& f = findings[w.attempts[k]];
      journal::OrphanFound found;
      found.pid = a.identity ? a.identity->pid : 0;
      if (a.identity) found.start_time = a.identity->start_ticks;
      found.observed_start_time = f.observed_start_ticks;
      found.verdict =
          f.verdict == Verdict::kSameProcess ? "same" : std::string(VerdictName(f.verdict));
      found.detection = DetectionName(f.detection);
      found.grace_ms = a.grace.count();
      found.members.assign(f.members.begin(), f.members.end());
      out.Add(found, w.id, a.node_id, a.attempt, f.found_at_ms);
    }
  }
  out.Commit(journal::Durability::kDurable);
  CrashPoint("recovery.after_found");

  // 3. Terminate every tree of ours at once; each SIGTERM is journaled as it goes out.
  progress("recovery: terminating the orphans gracefully");
  if (options.on_terminating) {
    std::chrono::milliseconds longest{0};
    for (const RecordedAttempt& a : attempts) longest = std::max(longest, a.grace);
    options.on_terminating(longest + options.reaper.kill_timeout);
  }
  std::vector<Outcome> outcomes =
      reaper.Terminate(attempts, findings, [&](size_t index, int64_t at_ms) {
        const RecordedAttempt& a = attempts[index];
        out.Add(journal::NodeSignalled{"SIGTERM", "crash_recovery", a.grace.count()},
                a.execution_id, a.node_id, a.attempt, at_ms);
        out.Commit(journal::Durability::kCrashSafe);
        CrashPoint("recovery.after_sigterm");
      });

  // 4. Outcomes, then close every execution.
  for (size_t e = 0; e < work.size(); ++e) {
    const ExecutionWork& w = work[e];
    bool unkillable = false;
    for (size_t k = 0; k < w.attempts.size(); ++k) {
      const Outcome& o = outcomes[w.attempts[k]];
      Count(report, o.action);
      unkillable = unkillable || o.action == Action::kUnkillable;
      RecordOutcome(out, w, k, attempts[w.attempts[k]], o);
      spdlog::info("recovery: execution {} node {} attempt {}: {}", w.id,
                   attempts[w.attempts[k]].node_id, attempts[w.attempts[k]].attempt,
                   ActionName(o.action));
    }
    out.Commit(journal::Durability::kCrashSafe);
    // A tree reported unkillable before (by the dead daemon, or by a recovery that was
    // itself interrupted) counts as much as one found now.
    const ExecutionHistory now = Refold(journal, w);
    for (const lifecycle::NodeView& n : now.view().nodes) {
      unkillable = unkillable || n.status == NodeStatus::kUnkillable;
    }
    CrashPoint("recovery.before_close");
    if (resume[e] && !unkillable) {
      ResumeExecution(journal, out, w);
      ++report.resumed;
      continue;
    }
    if (resume[e]) {
      // A tree that survived SIGKILL would run beside its own rerun: the execution fails.
      out.Add(journal::ExecutionStopRequested{"warden", "", "crash_recovery",
                                              "a node tree survived SIGKILL: not resumed",
                                              std::nullopt, false},
              w.id);
    }
    CloseExecution(journal, out, w, reasons[e], unkillable, clock);
    ++report.closed;
  }

  report.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now() - began).count();
  out.Add(journal::RecoveryFinished{report.closed, report.attempts, report.duration_ms});
  out.Commit(journal::Durability::kDurable);
  return report;
}

}  // namespace warden::recovery

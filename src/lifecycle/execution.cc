#include "lifecycle/execution.h"

#include "base/crash_point.h"
#include "base/json_text.h"
#include "dag/spec_writer.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>

namespace warden::lifecycle {

namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

struct Execution::NodeRun {
  std::shared_ptr<process::ProcessTree> tree;  // the live attempt's tree; null between attempts
  uint32_t attempt = 0;                        // latest attempt, from 1
  std::optional<int> pid;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<int64_t> started_at;
  std::optional<int64_t> ended_at;
  double cost_done = 0;  // USD of the attempts that ended
  double reported = 0;   // the live attempt's last cost_usd
  ExecutionClock::LaunchMark launch;
  bool terminating = false;       // Terminate was called on the live attempt
  bool sigterm_recorded = false;  // node.signalled SIGTERM is journaled
  bool timed_out = false;         // the live attempt hit the node's timeoutMs
  bool unkillable = false;
  bool killed = false;            // the latest attempt needed SIGKILL
  bool identity_pending = false;  // node.started is recorded but not yet committed
  std::optional<process::ExitInfo> exit;
  std::optional<process::TerminationReport> report;
  std::unique_ptr<boost::asio::steady_timer> timer;  // the node's timeoutMs
  uint64_t timer_generation = 0;
  std::chrono::steady_clock::duration timeout_left{};
};

namespace {

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

}  // namespace

Execution::Execution(ManagerContext& ctx, std::string id, dag::Dag dag, int64_t created_at)
    : ctx_(ctx),
      id_(std::move(id)),
      dag_(std::make_shared<const dag::Dag>(std::move(dag))),
      plan_(dag_),
      nodes_(dag_->node_count()),
      created_at_(created_at),
      clock_(milliseconds(dag_->spec().timeout_ms)),
      timer_(ctx.io) {
  for (auto& run : nodes_) run.timer = std::make_unique<boost::asio::steady_timer>(ctx.io);
}

Execution::~Execution() = default;

void Execution::Detach() {
  detached_ = true;
  ++timer_generation_;
  timer_.cancel();
  for (auto& run : nodes_) {
    ++run.timer_generation;
    run.timer->cancel();
  }
}

void Execution::Record(const journal::Record& record, dag::NodeIndex node, int64_t at_ms) {
  journal::Event e;
  e.execution_id = id_;
  if (node != kNoNode) {
    e.node_id = dag_->node(node).id;
    e.attempt = nodes_[node].attempt;
  }
  e.at_ms = at_ms != 0 ? at_ms : WallMs();
  if (Status s = history_.Apply(e, record); !s.ok()) {
    // A record that does not fit the execution is a bug here; the journal still gets it.
    spdlog::error("execution {}: {}", id_, s.message());
  }
  journal::EncodeTo(record, e);
  ctx_.log.Add(std::move(e));
}

void Execution::Flush(journal::Durability durability) {
  // A failure is on stderr and has failed the journal for good: new work is refused from
  // now on, while what runs is still stopped.
  ctx_.log.Commit(durability, [self = shared_from_this()](Status s) {
    if (!s.ok() && self->state_ == ExecutionState::kStopping) self->stop_.JournalFailed();
  });
}

void Execution::RecordCreated(const Requester& requester) {
  Record(journal::ExecutionCreated{spec().name, spec().request_id, requester.name,
                                   SerializeJson(dag::ExecutionSpecToJson(spec()))},
         kNoNode, created_at_);
}

Status Execution::RestoreFrom(const ExecutionHistory& history) {
  const ExecutionView& view = history.view();
  if (view.nodes.size() != nodes_.size() || history.attempts().size() != nodes_.size()) {
    return Status::Internal("execution " + id_ + ": its history does not fit its DAG");
  }
  history_ = history;
  if (view.status == ExecutionState::kIdle) return Status::Ok();
  std::vector<bool> succeeded(nodes_.size());
  std::vector<uint32_t> attempts(nodes_.size());
  for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
    const NodeView& n = view.nodes[i];
    succeeded[i] = n.status == NodeStatus::kSucceeded;
    attempts[i] = static_cast<uint32_t>(history.attempts()[i].attempt);
    NodeRun& run = nodes_[i];
    run.attempt = attempts[i];
    run.cost_done = n.cost_usd;
    if (succeeded[i]) {
      run.pid = n.pid;
      run.exit_code = n.exit_code;
      run.started_at = n.started_at;
      run.ended_at = n.ended_at;
    }
  }
  WARDEN_RETURN_IF_ERROR(plan_.Resume(succeeded, attempts));
  state_ =
      view.status == ExecutionState::kPaused ? ExecutionState::kPaused : ExecutionState::kRunning;
  started_at_ = view.started_at.value_or(view.created_at);
  if (state_ == ExecutionState::kPaused) clock_.BeginPause(Now());
  if (spec().timeout_ms != 0) {
    const int64_t now = WallMs();
    clock_.RestoreTimeout(*started_at_, now, history.PausedMsBetween(*started_at_, now));
  }
  return Status::Ok();
}

void Execution::Continue() {
  if (state_ != ExecutionState::kRunning) return;
  if (!ctx_.options.log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(ctx_.options.log_dir + "/" + id_, ec);
  }
  ArmExecutionTimer();
  Pump();
  MaybeFinish();
}

ExecutionView Execution::View() const {
  ExecutionView v = history_.view();
  v.as_of_seq = std::max(v.as_of_seq, ctx_.log.committed_seq(id_));
  if (identities_pending_ > 0) {
    // Nobody learns a pid before it is on disk: crash recovery accounts for every pid it
    // was told, and finds a tree launched just now by its intent's cookie or cgroup.
    for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].identity_pending) v.nodes[i].pid.reset();
    }
  }
  if (IsTerminal(v.status) || running_ == 0) return v;
  const Clock::time_point now = Now();
  v.cost_usd = 0;
  for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
    const NodeRun& run = nodes_[i];
    NodeView& n = v.nodes[i];
    if (run.tree) {
      n.cost_usd = run.cost_done + clock_.AttemptCost(run.launch, dag_->node(i).cost_per_second_usd,
                                                      run.reported, now);
    }
    v.cost_usd += n.cost_usd;
  }
  return v;
}

Status Execution::Start(const Requester& requester) {
  auto to = Transition(state_, ExecutionTrigger::kStart, id_);
  if (!to.ok()) return to.status();
  if (Status h = ctx_.log.health(); !h.ok()) {
    return Status::Unavailable("start refused: the journal has failed (" + h.message() + ")");
  }
  const size_t mark = ctx_.log.pending_count();
  const int64_t at = WallMs();
  ExecutionHistory before = history_;
  Record(journal::ExecutionStarted{requester.name}, kNoNode, at);
  if (Status s = ctx_.log.CommitRequest(mark, journal::Durability::kDurable); !s.ok()) {
    history_ = std::move(before);  // refused: the record was withdrawn
    return s;
  }
  state_ = *to;
  started_at_ = at;
  if (!ctx_.options.log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(ctx_.options.log_dir + "/" + id_, ec);
    if (ec) spdlog::warn("execution {}: cannot create its log directory: {}", id_, ec.message());
  }
  ArmExecutionTimer();
  Pump();
  MaybeFinish();
  return Status::Ok();
}

size_t Execution::Budget() const {
  size_t cap = ctx_.options.max_running;
  if (cap == 0) return std::numeric_limits<size_t>::max();
  return cap > ctx_.running_total ? cap - ctx_.running_total : 0;
}

bool Execution::HasReady() const {
  return state_ == ExecutionState::kRunning && !plan_.stopping() &&
         plan_.count(dag::NodeState::kReady) > 0;
}

void Execution::Pump() {
  if (!HasReady()) return;
  if (ctx_.log.busy()) {
    // No launch without its write-ahead intent: the manager calls again once the journal
    // is writable.
    ctx_.on_waiting_for_slot(id_);
    return;
  }
  size_t budget = Budget();
  if (budget == 0 || LaunchReady(budget) == 0) {
    if (HasReady() && plan_.free_slots() > 0) ctx_.on_waiting_for_slot(id_);
  }
}

size_t Execution::LaunchReady(size_t budget) {
  if (!HasReady() || budget == 0) return 0;
  std::vector<dag::NodeIndex> ready = plan_.TakeReady(budget);
  // A launch below may stop the execution; it must not finish before every node taken here
  // is accounted for, so MaybeFinish waits for the end of the loop.
  launching_ = true;
  std::vector<dag::NodeIndex> deferred;  // waiting for a busy journal, in launch order
  for (dag::NodeIndex i : ready) {
    if (state_ != ExecutionState::kRunning) {
      // An earlier launch in this loop failed and stopped the execution.
      nodes_[i].attempt = plan_.attempt(i);
      (void)plan_.MarkStopped(i);
      Record(journal::NodeStopped{std::string(StopReasonName(stop_.request().reason))}, i);
    } else if (!deferred.empty() || !Launch(i)) {
      deferred.push_back(i);
    }
  }
  launching_ = false;
  for (auto it = deferred.rbegin(); it != deferred.rend(); ++it) {
    if (state_ == ExecutionState::kRunning) {
      (void)plan_.PutBack(*it);  // launched once the journal is writable again
      nodes_[*it].attempt = plan_.attempt(*it);
    } else {
      nodes_[*it].attempt = plan_.attempt(*it);
      (void)plan_.MarkStopped(*it);
      Record(journal::NodeStopped{std::string(StopReasonName(stop_.request().reason))}, *it);
    }
  }
  // The identities of the trees just launched commit while the loop goes on: with the next
  // launch's write-ahead when that comes within a millisecond (one transaction per node on a
  // busy DAG), else on the writer thread. Until then View() shows their nodes without a pid.
  std::vector<std::pair<dag::NodeIndex, uint32_t>> launched;
  for (dag::NodeIndex i : ready) {
    if (nodes_[i].identity_pending) launched.emplace_back(i, nodes_[i].attempt);
  }
  ctx_.log.CommitLingering(std::chrono::milliseconds(1),
                           [self = shared_from_this(), launched = std::move(launched)](Status s) {
                             for (const auto& [i, attempt] : launched) {
                               NodeRun& run = self->nodes_[i];
                               if (run.attempt == attempt && run.identity_pending) {
                                 run.identity_pending = false;
                                 --self->identities_pending_;
                               }
                             }
                             if (!s.ok() && self->state_ == ExecutionState::kStopping) {
                               self->stop_.JournalFailed();
                             }
                           });
  if (HasReady() && (Budget() == 0 || !deferred.empty())) ctx_.on_waiting_for_slot(id_);
  MaybeFinish();
  return ready.size() - deferred.size();
}

bool Execution::Launch(dag::NodeIndex i) {
  NodeRun& run = nodes_[i];
  const dag::NodeSpec& node = dag_->node(i);
  {
    // A fresh record for this attempt; cost of earlier attempts and the timer carry over.
    if (run.identity_pending) --identities_pending_;  // the attempt it replaces counts no more
    NodeRun next;
    next.attempt = plan_.attempt(i);
    next.cost_done = run.cost_done;
    next.timer = std::move(run.timer);
    run = std::move(next);
  }

  process::LaunchSpec spec;
  spec.cookie = {id_, node.id, static_cast<int>(run.attempt)};
  spec.argv = node.argv;
  spec.cwd = node.cwd;
  spec.env = node.env;
  if (node.user) spec.user = node.user->uid ? std::to_string(*node.user->uid) : node.user->name;
  if (!ctx_.options.log_dir.empty()) {
    std::string base =
        ctx_.options.log_dir + "/" + id_ + "/" + node.id + "." + std::to_string(run.attempt);
    spec.output.stdout_path = base + ".stdout";
    spec.output.stderr_path = base + ".stderr";
  }
  spec.output.cap_bytes = ctx_.options.output_cap_bytes;

  auto self = shared_from_this();
  const uint32_t attempt = run.attempt;
  process::LaunchCallbacks callbacks;
  // Write-ahead: the intent (cookie, cgroup) is committed before the process exists, so a
  // crash right after the launch still leaves enough to find it.
  bool journal_busy = false;
  callbacks.on_intent = [this, i, &node, &journal_busy](const process::LaunchIntent& intent) {
    const size_t mark = ctx_.log.pending_count();
    Record(journal::NodeIntent{node.argv, node.cwd, intent.cookie.execution_id,
                               intent.cookie.node_id, intent.cookie.attempt, intent.cgroup_path,
                               std::string(process::ContainmentModeName(intent.mode))},
           i);
    Status s = ctx_.log.CommitRequest(mark, journal::Durability::kCrashSafe);
    journal_busy = !s.ok() && ctx_.log.health().ok();
    return s;
  };
  callbacks.on_notify = [self, i, attempt](std::string_view key, std::string_view value) {
    if (self->detached_) return;
    if (self->nodes_[i].attempt == attempt && self->nodes_[i].tree) self->OnNotify(i, key, value);
  };
  callbacks.on_exit = [self, i, attempt](const process::ExitInfo& info) {
    self->OnExit(i, attempt, info);
  };

  run.started_at = WallMs();
  run.launch = clock_.MarkLaunch(Now());
  auto tree = ctx_.runner.Launch(spec, std::move(callbacks));
  if (!tree.ok()) {
    const Status& s = tree.status();
    if (journal_busy) {
      // Another connection holds the journal's lock: the intent was withdrawn and nothing
      // was launched. The node waits for the journal, as it would for a slot.
      return false;
    }
    if (s.code() == StatusCode::kUnavailable || !ctx_.log.health().ok()) {
      // The intent could not be journaled (failed, or locked past the busy timeout), so
      // nothing was launched, and without the intent no launch is safe. Stop the execution
      // rather than leave it waiting forever; this is not the node's failure.
      (void)plan_.MarkStopped(i);
      Record(journal::NodeStopped{std::string(StopReasonName(StopReason::kError))}, i);
      BeginStop(StopRequest{
          Requester{"warden"}, StopReason::kError,
          "the journal is unavailable, cannot launch node " + node.id + ": " + s.message(),
          std::nullopt});
      return true;
    }
    int code = s.code() == StatusCode::kNotFound ? 127 : 126;
    spdlog::warn("execution {} node {} attempt {}: launch failed: {}", id_, node.id, attempt,
                 s.message());
    run.exit_code = code;
    run.ended_at = run.started_at;
    Record(journal::NodeLaunchFailed{s.message(), code}, i);
    AttemptFailed(i);
    // A retry is ready again; launch it from a fresh turn of the loop, not recursively.
    boost::asio::post(ctx_.io, [self] {
      if (self->detached_) return;
      self->Pump();
      self->MaybeFinish();
    });
    return true;
  }
  CrashPoint("launch.after_intent");
  run.tree = std::move(*tree);
  const process::ProcessIdentity& id = run.tree->identity();
  run.pid = id.pid;
  run.identity_pending = true;
  ++identities_pending_;
  ++running_;
  ++ctx_.running_total;
  ++ctx_.stats.running_nodes;
  Record(journal::NodeStarted{id.pid, id.start_ticks, id.boot_id, id.pgid, id.sid, id.cgroup_path,
                              std::string(process::ContainmentModeName(ctx_.runner.containment()))},
         i);
  run.timeout_left = milliseconds(node.timeout_ms);
  ArmNodeTimer(i);
  return true;
}

std::optional<double> ParseCostUsd(std::string_view value) {
  double total = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), total);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(total) ||
      total < 0) {
    return std::nullopt;
  }
  return total;
}

void Execution::OnNotify(dag::NodeIndex i, std::string_view key, std::string_view value) {
  // An empty key: the node wrote a line that is not key=value (see process_runner.h).
  if (key.empty()) ++ctx_.stats.malformed_notify_lines;
  if (key != "cost_usd") return;  // other keys are for future use
  std::optional<double> total = ParseCostUsd(value);
  if (!total) {
    ++ctx_.stats.malformed_notify_lines;
    return;
  }
  nodes_[i].reported = *total;
  Record(journal::CostReported{*total}, i);
  Flush(journal::Durability::kCrashSafe);
}

void Execution::OnExit(dag::NodeIndex i, uint32_t attempt, const process::ExitInfo& info) {
  if (detached_) return;
  NodeRun& run = nodes_[i];
  if (run.attempt != attempt || !run.tree) return;  // a late report of an abandoned attempt
  run.exit = info;
  // A tree being terminated is finished when its TerminationReport is in (it says whether
  // SIGKILL was needed); otherwise the exit is the end.
  if (!run.terminating || run.report) FinishAttempt(i);
}

void Execution::OnTerminated(dag::NodeIndex i, uint32_t attempt,
                             const process::TerminationReport& report) {
  if (detached_) return;
  NodeRun& run = nodes_[i];
  if (run.attempt != attempt || !run.tree) return;
  run.report = report;
  // Unkillable members keep the tree from ever emptying, so no exit will come.
  if (run.exit || !report.unkillable.empty()) FinishAttempt(i);
}

void Execution::TerminateNode(dag::NodeIndex i, milliseconds grace) {
  NodeRun& run = nodes_[i];
  if (!run.tree) return;
  run.terminating = true;
  ++run.timer_generation;  // a timeout no longer matters
  run.timer->cancel();
  auto self = shared_from_this();
  const uint32_t attempt = run.attempt;
  const bool first = !run.sigterm_recorded && !run.tree->finished();
  run.tree->Terminate(grace, [self, i, attempt](const process::TerminationReport& report) {
    self->OnTerminated(i, attempt, report);
  });
  if (first) {
    // Terminate sends SIGTERM before it returns: journal it now, so that during a long grace
    // (or after a crash in it) the journal shows that it went out.
    run.sigterm_recorded = true;
    Record(journal::NodeSignalled{"SIGTERM", SignalWhy(run), grace.count()}, i);
  }
}

const char* Execution::SignalWhy(const NodeRun& run) const {
  if (run.timed_out) return "timeout";
  if (stop_.begun() && stop_.request().reason == StopReason::kServerShutdown) return "shutdown";
  return "stop";
}

void Execution::FinishAttempt(dag::NodeIndex i) {
  NodeRun& run = nodes_[i];
  Clock::time_point now = Now();
  if (run.exit) {
    run.exit_code = run.exit->exit_code;
    run.signal = run.exit->signal;
    run.ended_at = run.exit->tree_empty_ms ? run.exit->tree_empty_ms : WallMs();
  } else {
    run.ended_at = WallMs();
  }
  if (run.report) {
    const auto& r = *run.report;
    run.killed = r.sigkill_sent_ms.has_value();
    run.unkillable = !r.unkillable.empty();
    if (r.sigkill_sent_ms) {
      Record(journal::NodeSignalled{"SIGKILL", "grace_expired", std::nullopt}, i,
             *r.sigkill_sent_ms);
      ++ctx_.stats.sigkill_escalations;
      if (state_ == ExecutionState::kStopping) stop_.CountKilled();
    }
    if (run.unkillable) {
      Record(journal::NodeUnkillable{{r.unkillable.begin(), r.unkillable.end()}}, i);
      stop_.CountUnkillable();
    }
  }
  double cost =
      clock_.AttemptCost(run.launch, dag_->node(i).cost_per_second_usd, run.reported, now);
  run.cost_done += cost;
  run.reported = 0;
  Clock::duration paused = clock_.PausedSince(run.launch, now);
  const bool succeeded = run.exit && run.exit_code == 0 && !run.timed_out && !run.unkillable;
  // Ended by the stop, not by a failure of its own.
  const bool stopped =
      !succeeded && state_ == ExecutionState::kStopping && run.terminating && !run.timed_out;
  journal::NodeExited exited;
  if (run.exit_code) exited.exit_code = *run.exit_code;
  if (run.signal) exited.signal = SignalName(*run.signal);
  exited.graceful = !run.killed && !run.unkillable;
  exited.killed = run.killed;
  exited.cost_usd = cost;
  exited.duration_ms = duration_cast<milliseconds>(now - run.launch.at).count();
  exited.paused_ms = duration_cast<milliseconds>(paused).count();
  exited.outcome = succeeded ? "succeeded" : stopped ? "stopped" : "failed";
  Record(std::move(exited), i, *run.ended_at);

  ++run.timer_generation;
  run.timer->cancel();
  run.tree.reset();
  --running_;
  --ctx_.running_total;
  --ctx_.stats.running_nodes;

  if (succeeded) {
    (void)plan_.MarkSucceeded(i);
  } else if (stopped) {
    (void)plan_.MarkStopped(i);
  } else {
    AttemptFailed(i);
  }
  MaybeFinish();
  // The next launch's write-ahead commit carries this attempt's events with it: one commit
  // per node fewer on a chain's critical path. Whatever is left is committed right after.
  if (ctx_.options.max_running == 0) {
    Pump();
  } else {
    // The cap is shared: the freed slot goes to whoever's turn it is, not back to us.
    if (HasReady()) ctx_.on_waiting_for_slot(id_);
    ctx_.on_slot_freed();
  }
  // The exits of one wake-up (a mass stop) share one commit.
  ctx_.log.CommitSoon();
}

void Execution::AttemptFailed(dag::NodeIndex i) {
  const bool live = state_ == ExecutionState::kRunning || state_ == ExecutionState::kPaused;
  if (live && plan_.HasRetriesLeft(i)) {
    Record(journal::NodeRetryScheduled{nodes_[i].attempt + 1}, i);
    (void)plan_.MarkRetry(i);
    return;
  }
  auto skipped = plan_.MarkFailed(i);
  if (skipped.ok()) {
    for (dag::NodeIndex s : *skipped) {
      nodes_[s].attempt = plan_.attempt(s);
      Record(journal::NodeSkipped{dag_->node(i).id}, s);
    }
  }
  failed_by_node_ = true;
  if (live && spec().on_failure == dag::OnFailure::kStop) {
    BeginStop(StopRequest{Requester{"warden"}, StopReason::kError,
                          "node " + dag_->node(i).id + " failed", std::nullopt});
  }
}

void Execution::BeginStop(StopRequest request) {
  const bool from_idle = state_ == ExecutionState::kIdle;
  if (!from_idle) {
    auto to = Transition(state_, ExecutionTrigger::kStop, id_);
    if (!to.ok()) return;
    state_ = *to;  // stopping: no launches from here on
  }
  const int64_t requested_at = WallMs();
  ++ctx_.stats.stops_by_reason[std::string(StopReasonName(request.reason))];
  StopClocks();
  // The trees are thawed right after SIGTERM; their clocks run again for the grace.
  if (clock_.paused()) clock_.EndPause(Now());
  RecordStopRequest(request, /*joined=*/false);
  stop_.Begin(std::move(request), requested_at);

  for (dag::NodeIndex s : plan_.StopPending()) {
    nodes_[s].attempt = plan_.attempt(s);
    Record(journal::NodeStopped{std::string(StopReasonName(stop_.request().reason))}, s);
  }
  if (from_idle) {
    FinishStop();
    return;
  }
  Flush(journal::Durability::kCrashSafe);
  for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].tree) continue;
    std::optional<uint64_t> stop_grace;
    if (stop_.request().grace_ms) stop_grace = static_cast<uint64_t>(*stop_.request().grace_ms);
    uint64_t grace = dag::GraceMsInForce(stop_grace, dag_->node(i), spec(),
                                         static_cast<uint64_t>(ctx_.options.default_grace_ms));
    TerminateNode(i, milliseconds(grace));
  }
  // Every tree has its SIGTERM before the first node.signalled is written: one commit for
  // all of them.
  Flush(journal::Durability::kCrashSafe);
  MaybeFinish();
}

void Execution::RecordStopRequest(const StopRequest& request, bool joined) {
  Record(journal::ExecutionStopRequested{request.requester.name, request.requester.comm,
                                         std::string(StopReasonName(request.reason)), request.note,
                                         request.grace_ms, joined});
  // Write-ahead: the request is durable before anything is signalled for it, unless another
  // connection holds the journal's lock: then the stop goes on at once (safety beats
  // bookkeeping) and the rows commit later, with the times they happened at.
  std::optional<Status> s = ctx_.log.CommitBounded(journal::Durability::kDurable);
  if (s && !s->ok()) stop_.JournalFailed();
}

void Execution::MaybeFinish() {
  if (launching_) return;  // LaunchReady calls again when its loop is done
  if (state_ == ExecutionState::kStopping) {
    if (running_ == 0) FinishStop();
    return;
  }
  if (state_ != ExecutionState::kRunning || !plan_.IsFinished()) return;
  const bool all = plan_.AllSucceeded();
  auto to = Transition(state_,
                       all ? ExecutionTrigger::kAllSucceeded : ExecutionTrigger::kNothingLeft, id_);
  if (!to.ok()) return;
  state_ = *to;
  ended_at_ = WallMs();
  StopClocks();
  const double cost = View().cost_usd;
  if (all) {
    Record(journal::ExecutionCompleted{cost}, kNoNode, *ended_at_);
  } else {
    Record(journal::ExecutionFailed{cost, "node_failed"}, kNoNode, *ended_at_);
  }
  // The end is on disk before anyone asks (unless the journal is busy: then it follows).
  (void)ctx_.log.CommitBounded(journal::Durability::kDurable);
  if (!detached_) ctx_.on_ended(id_);
}

void Execution::FinishStop() {
  // An idle execution never ran: whatever the reason, it ends stopped (the table's only way
  // out of idle), and the journal says the same as the answer.
  const bool failed = state_ != ExecutionState::kIdle && stop_.EndsFailed();
  if (state_ == ExecutionState::kIdle) {
    state_ = *Transition(state_, ExecutionTrigger::kStop, id_);
  } else {
    auto to = Transition(
        state_, failed ? ExecutionTrigger::kStopFailed : ExecutionTrigger::kStopFinished, id_);
    if (!to.ok()) return;
    state_ = *to;
  }
  ended_at_ = WallMs();
  StopOutcome outcome;
  outcome.status = state_;
  outcome.execution_id = id_;
  outcome.final_cost_usd = View().cost_usd;
  // The contract measures from the start: a stop of an execution that never started took 0.
  outcome.started_at = started_at_.value_or(*ended_at_);
  outcome.stopped_at = *ended_at_;
  outcome.nodes_total = static_cast<int>(nodes_.size());
  outcome.nodes_succeeded = static_cast<int>(plan_.count(dag::NodeState::kSucceeded));
  outcome.nodes_failed = static_cast<int>(plan_.count(dag::NodeState::kFailed));
  for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].unkillable && plan_.state(i) != dag::NodeState::kFailed) {
      ++outcome.nodes_unkillable_not_failed;
    }
  }
  const StopResult r = stop_.Summarize(outcome);

  Record(journal::ExecutionStopCompleted{std::string(ExecutionStateName(r.status)),
                                         std::string(StopReasonName(r.reason)), r.final_cost_usd,
                                         r.summary.nodes_completed, r.summary.nodes_failed,
                                         r.summary.nodes_total, r.summary.duration_ms, r.stopped_at,
                                         stop_.journaled()},
         kNoNode, r.stopped_at);
  if (failed) {
    Record(
        journal::ExecutionFailed{r.final_cost_usd, r.nodes_unkillable > 0 ? "unkillable" : "error"},
        kNoNode, r.stopped_at);
  } else {
    Record(journal::ExecutionStopped{r.final_cost_usd}, kNoNode, r.stopped_at);
  }
  // The answer waits for the journal, but not for another connection's lock: then it says
  // journaled = false, and the rows commit once the lock is gone.
  std::optional<Status> committed = ctx_.log.CommitBounded(journal::Durability::kDurable);
  if (!committed || !committed->ok()) stop_.JournalFailed();
  stop_.Deliver(r, ctx_.io);
  if (!detached_) ctx_.on_ended(id_);
}

void Execution::Stop(StopRequest request, ViewCallback accepted, StopCallback done) {
  auto post_view = [this, accepted]() {
    if (accepted) boost::asio::post(ctx_.io, [accepted, v = View()] { accepted(v); });
  };
  if (state_ == ExecutionState::kStopping) {
    // Joins the stop in progress: same result, whoever asked. A grace of its own can only
    // bring SIGKILL forward: every tree's earlier deadline wins. The request is journaled
    // like the first one, so the audit names everyone who asked.
    stop_.AddWaiter(std::move(done));
    RecordStopRequest(request, /*joined=*/true);
    if (request.grace_ms) {
      for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].tree) TerminateNode(i, milliseconds(*request.grace_ms));
      }
      Flush(journal::Durability::kCrashSafe);
    }
    post_view();
    return;
  }
  if (IsTerminal(state_)) {
    Status refused = Transition(state_, ExecutionTrigger::kStop, id_).status();
    if (done) boost::asio::post(ctx_.io, [done, refused] { done(refused); });
    return;
  }
  stop_.AddWaiter(std::move(done));
  BeginStop(std::move(request));
  post_view();
}

void Execution::Pause(const Requester& requester, ViewCallback done) {
  auto to = Transition(state_, ExecutionTrigger::kPause, id_);
  Status refused = to.status();
  if (refused.ok()) refused = ctx_.log.busy_status();
  if (!refused.ok()) {
    boost::asio::post(ctx_.io, [done, refused] { done(refused); });
    return;
  }
  state_ = *to;  // holds the scheduler at once
  clock_.BeginPause(Now());
  StopClocks();
  auto self = shared_from_this();
  auto remaining = std::make_shared<size_t>(1);  // one for this function itself
  auto failure = std::make_shared<Status>();
  auto finish = [self, remaining, failure, requester, done]() {
    if (--*remaining > 0 || self->detached_) return;
    if (!failure->ok() && self->state_ == ExecutionState::kPaused) {
      // Truthful pause: a tree that could not be frozen means the execution is not paused.
      // Thaw what froze and carry on running; the caller hears why.
      self->Unpause();
      done(Status(failure->code(), "pause failed: " + failure->message()));
      return;
    }
    if (self->state_ != ExecutionState::kPaused) {
      // A stop (or the end of the execution) came while the trees were freezing: the pause
      // never took effect, so it is neither journaled nor acknowledged.
      done(Status::Conflict("pause of execution " + self->id_ + " was overtaken: it is " +
                            std::string(ExecutionStateName(self->state_)) + " now"));
      return;
    }
    const size_t mark = self->ctx_.log.pending_count();
    ExecutionHistory before = self->history_;
    self->Record(journal::ExecutionPaused{requester.name});
    if (Status c = self->ctx_.log.CommitRequest(mark, journal::Durability::kDurable); !c.ok()) {
      // Not journaled, so not paused: the caller hears why, the trees go on.
      self->history_ = std::move(before);
      self->Unpause();
      done(Status(c.code(), "pause refused: " + c.message()));
      return;
    }
    done(self->View());
  };
  for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
    NodeRun& run = nodes_[i];
    if (!run.tree || run.terminating) continue;
    ++*remaining;
    run.tree->Pause([finish, failure, node = dag_->node(i).id](Status s) {
      // Conflict: the tree finished meanwhile; nothing is left to freeze.
      if (!s.ok() && s.code() != StatusCode::kConflict && failure->ok()) {
        *failure = Status(s.code(), "node " + node + " could not be frozen: " + s.message());
      }
      finish();
    });
  }
  boost::asio::post(ctx_.io, finish);
}

void Execution::Unpause() {
  state_ = *Transition(state_, ExecutionTrigger::kResume, id_);
  clock_.EndPause(Now());
  for (auto& run : nodes_) {
    if (run.tree && !run.terminating) run.tree->Resume([](Result<milliseconds>) {});
  }
  RestartClocks();
}

void Execution::Resume(const Requester& requester, ViewCallback done) {
  auto to = Transition(state_, ExecutionTrigger::kResume, id_);
  Status s = to.status();
  if (s.ok()) {
    if (Status h = ctx_.log.health(); !h.ok()) {
      s = Status::Unavailable("resume refused: the journal has failed (" + h.message() + ")");
    }
  }
  if (!s.ok()) {
    boost::asio::post(ctx_.io, [done, s] { done(s); });
    return;
  }
  const Clock::time_point resumed_at = Now();
  const Clock::duration paused = clock_.PauseLength(resumed_at);
  const size_t mark = ctx_.log.pending_count();
  ExecutionHistory before = history_;
  Record(journal::ExecutionResumed{requester.name, duration_cast<milliseconds>(paused).count()});
  if (Status c = ctx_.log.CommitRequest(mark, journal::Durability::kDurable); !c.ok()) {
    history_ = std::move(before);  // refused: the record was withdrawn
    boost::asio::post(ctx_.io, [done, c] { done(c); });
    return;
  }
  auto self = shared_from_this();
  auto remaining = std::make_shared<size_t>(1);
  auto finish = [self, remaining, done]() {
    if (--*remaining > 0 || self->detached_) return;
    done(self->View());
  };
  // Thaw completions are counted first, then Unpause thaws, re-arms the clocks and lets the
  // scheduler go on.
  for (auto& run : nodes_) {
    if (run.tree && !run.terminating) ++*remaining;
  }
  state_ = *Transition(state_, ExecutionTrigger::kResume, id_);
  clock_.EndPause(resumed_at);
  for (auto& run : nodes_) {
    if (run.tree && !run.terminating)
      run.tree->Resume([finish](Result<milliseconds>) { finish(); });
  }
  RestartClocks();
  boost::asio::post(ctx_.io, finish);
}

void Execution::RestartClocks() {
  ArmExecutionTimer();
  for (dag::NodeIndex i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].tree && !nodes_[i].terminating) ArmNodeTimer(i);
  }
  Pump();
  MaybeFinish();
}

void Execution::ArmExecutionTimer() {
  if (spec().timeout_ms == 0 || state_ != ExecutionState::kRunning) return;
  timer_.expires_after(clock_.timeout_left());
  auto self = shared_from_this();
  uint64_t generation = ++timer_generation_;
  timer_.async_wait([self, generation](const boost::system::error_code& ec) {
    if (ec || generation != self->timer_generation_ || self->detached_) return;
    if (self->state_ != ExecutionState::kRunning) return;
    self->BeginStop(
        StopRequest{Requester{"warden"}, StopReason::kTimeout,
                    "execution timeoutMs " + std::to_string(self->spec().timeout_ms) + " expired",
                    std::nullopt});
  });
}

void Execution::ArmNodeTimer(dag::NodeIndex i) {
  NodeRun& run = nodes_[i];
  if (dag_->node(i).timeout_ms == 0) return;
  run.timer->expires_after(run.timeout_left);
  auto self = shared_from_this();
  uint64_t generation = ++run.timer_generation;
  run.timer->async_wait([self, i, generation](const boost::system::error_code& ec) {
    if (!ec && !self->detached_) self->OnNodeTimeout(i, generation);
  });
}

void Execution::OnNodeTimeout(dag::NodeIndex i, uint64_t generation) {
  NodeRun& run = nodes_[i];
  if (generation != run.timer_generation || !run.tree || run.terminating) return;
  if (state_ != ExecutionState::kRunning) return;
  run.timed_out = true;
  Record(journal::NodeTimedOut{static_cast<int64_t>(dag_->node(i).timeout_ms)}, i);
  Flush(journal::Durability::kCrashSafe);
  TerminateNode(
      i, milliseconds(dag::GraceMsInForce(std::nullopt, dag_->node(i), spec(),
                                          static_cast<uint64_t>(ctx_.options.default_grace_ms))));
  Flush(journal::Durability::kCrashSafe);
}

void Execution::StopClocks() {
  // Asio timers run on the real steady clock; what is left is kept for a later resume.
  auto now = std::chrono::steady_clock::now();
  if (spec().timeout_ms != 0 && state_ != ExecutionState::kIdle) {
    clock_.KeepTimeoutLeft(timer_.expiry(), now);
  }
  ++timer_generation_;
  timer_.cancel();
  for (auto& run : nodes_) {
    if (!run.tree || run.terminating) continue;
    run.timeout_left = ExecutionClock::TimeLeft(run.timer->expiry(), now);
    ++run.timer_generation;
    run.timer->cancel();
  }
}

Result<std::string> Execution::OutputPath(const std::string& node, bool stderr_stream) const {
  auto i = dag_->Find(node);
  if (!i) return Status::NotFound("execution " + id_ + " has no node " + node);
  if (nodes_[*i].attempt == 0) return Status::NotFound("node " + node + " has not run yet");
  if (ctx_.options.log_dir.empty()) {
    return Status::NotFound("output of node " + node + " is not captured (no log directory)");
  }
  return ctx_.options.log_dir + "/" + id_ + "/" + node + "." + std::to_string(nodes_[*i].attempt) +
         (stderr_stream ? ".stderr" : ".stdout");
}

}  // namespace warden::lifecycle

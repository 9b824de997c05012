#include "lifecycle/execution_manager.h"

#include <boost/asio/post.hpp>
#include <cstdio>
#include <deque>
#include <random>
#include <set>

#include <spdlog/spdlog.h>

#include "dag/dag.h"
#include "dag/spec_parser.h"
#include "lifecycle/execution.h"
#include "lifecycle/execution_history.h"
#include "lifecycle/transition_log.h"

namespace warden::lifecycle {

struct ExecutionManager::Impl {
  Impl(boost::asio::io_context& io, journal::Journal& journal, process::ProcessRunner& runner,
       ManagerOptions opts)
      : options(std::move(opts)),
        journal(journal),
        log(journal, io, options.journal_writer),
        ctx{io, log, runner, options, stats, 0, nullptr, nullptr, nullptr} {
    std::random_device rd;
    instance_tag = rd() & 0xffffff;
  }

  std::shared_ptr<Execution> Find(const std::string& id) const {
    auto it = executions.find(id);
    return it == executions.end() ? nullptr : it->second;
  }

  // An execution this manager does not hold, rebuilt from the journal. Ended executions never
  // change, so their folds are kept (a bounded number, the oldest dropped first).
  Result<std::shared_ptr<const ExecutionHistory>> History(const std::string& id) const {
    if (auto it = history_cache.find(id); it != history_cache.end()) return it->second;
    auto events = journal.ReadExecution(id);
    if (!events.ok()) return events.status();
    if (events->empty()) return Status::NotFound("no execution " + id);
    auto history = ExecutionHistory::Fold(*events);
    if (!history.ok()) {
      if (history.status().code() == StatusCode::kNotFound) {
        return Status::NotFound("no execution " + id);
      }
      return Status(history.status().code(), "execution " + id + ": " + history.status().message());
    }
    auto shared = std::make_shared<const ExecutionHistory>(std::move(*history));
    if (IsTerminal(shared->view().status)) {
      if (history_cache.size() >= kHistoryCacheSize) history_cache.erase(history_cache.begin());
      history_cache.emplace(id, shared);
    }
    return shared;
  }

  // Ids are 22 hex digits: the creation time in ms, a counter for ids made in the same ms,
  // and a tag of this manager instance, so that they sort by creation time.
  std::string NewId() {
    int64_t ms = options.clock->WallMs();
    if (ms <= last_id_ms) {
      ms = last_id_ms;
      ++id_counter;
    } else {
      id_counter = 0;
    }
    last_id_ms = ms;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%012llx%04x%06x", static_cast<unsigned long long>(ms),
                  id_counter & 0xffff, instance_tag);
    return buf;
  }

  // Hands free manager-wide slots to executions waiting for one, one slot per execution in
  // turn (round robin), so a busy execution cannot starve the others.
  void FillSlots() {
    // No launch while the journal is busy: it calls again once it is writable.
    while (!waiting.empty() && !log.busy()) {
      size_t cap = options.max_running;
      size_t budget = cap == 0 ? SIZE_MAX : (cap > ctx.running_total ? cap - ctx.running_total : 0);
      if (budget == 0) return;
      std::string id = std::move(waiting.front());
      waiting.pop_front();
      waiting_set.erase(id);
      auto e = Find(id);
      if (!e || !e->HasReady()) continue;
      e->LaunchReady(cap == 0 ? budget : 1);
      if (e->HasReady() && waiting_set.insert(id).second) waiting.push_back(id);
    }
  }

  // An ended execution leaves memory once its end is in the journal: from then on it is
  // served from the journal (its fold cached), like an execution of an earlier run.
  void Ended(const std::string& id) {
    log.WhenCommitted([this, id, alive = std::weak_ptr<bool>(alive)](Status committed) {
      if (!alive.lock() || !committed.ok()) return;
      auto it = executions.find(id);
      if (it == executions.end() || !IsTerminal(it->second->state())) return;
      const Execution& e = *it->second;
      ++ended_counts[static_cast<size_t>(e.state())];
      if (history_cache.size() >= kHistoryCacheSize) history_cache.erase(history_cache.begin());
      auto ended = std::make_shared<ExecutionHistory>(e.history());
      ended->CommittedUpTo(log.committed_seq(id));
      history_cache.insert_or_assign(id, std::move(ended));
      log.Forget(id);
      if (e.spec().request_id) by_request_id.erase(*e.spec().request_id);
      executions.erase(it);
    });
  }

  // Why execution `id`, which this manager does not hold, cannot `trigger`: Conflict naming
  // its state when it has ended, NotFound otherwise.
  Status NotHeld(const std::string& id, ExecutionTrigger trigger) const {
    auto history = History(id);
    if (history.ok() && IsTerminal((*history)->view().status)) {
      Status s = Transition((*history)->view().status, trigger, id).status();
      if (!s.ok()) return s;
    }
    return Status::NotFound("no execution " + id);
  }

  void Wait(const std::string& id) {
    if (waiting_set.insert(id).second) waiting.push_back(id);
  }

  static constexpr size_t kHistoryCacheSize = 256;

  ManagerOptions options;
  ManagerStats stats;
  journal::Journal& journal;
  TransitionLog log;
  ManagerContext ctx;
  std::map<std::string, std::shared_ptr<Execution>> executions;  // by id = creation order
  std::map<std::string, std::string> by_request_id;
  // Executions that ended and left memory, by state.
  std::vector<size_t> ended_counts = std::vector<size_t>(kExecutionStateCount, 0);
  // Executions with ready nodes and no manager-wide slot, in turn order.
  std::deque<std::string> waiting;
  std::set<std::string> waiting_set;
  int64_t last_id_ms = 0;
  unsigned id_counter = 0;
  unsigned instance_tag = 0;
  // Folds of ended executions read from the journal, by id (ids sort by creation time).
  mutable std::map<std::string, std::shared_ptr<const ExecutionHistory>> history_cache;
  // Expires with the manager; subscriptions check it before touching the log.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

ExecutionManager::ExecutionManager(boost::asio::io_context& io, journal::Journal& journal,
                                   process::ProcessRunner& runner, ManagerOptions options)
    : impl_(std::make_unique<Impl>(io, journal, runner, std::move(options))) {
  impl_->ctx.on_slot_freed = [this] { impl_->FillSlots(); };
  impl_->ctx.on_waiting_for_slot = [this](const std::string& id) { impl_->Wait(id); };
  impl_->log.SetOnWritable([this] { impl_->FillSlots(); });
  impl_->ctx.on_ended = [this](const std::string& id) { impl_->Ended(id); };
}

ExecutionManager::~ExecutionManager() {
  for (auto& [id, e] : impl_->executions) e->Detach();
}

Result<ExecutionManager::Created> ExecutionManager::Create(std::string_view spec_json,
                                                           const Requester& requester, bool start) {
  auto spec = dag::ParseExecutionSpec(spec_json, impl_->options.spec_limits);
  if (!spec.ok()) return spec.status();
  if (spec->request_id) {
    auto it = impl_->by_request_id.find(*spec->request_id);
    if (it != impl_->by_request_id.end()) {
      if (auto e = impl_->Find(it->second)) return Created{e->View(), true};
    }
    // Made by an earlier run of the daemon: the journal knows it.
    auto earlier = impl_->journal.FindByRequestId(*spec->request_id);
    if (!earlier.ok()) return earlier.status();
    if (!earlier->empty()) {
      auto view = Get(*earlier);
      if (!view.ok()) return view.status();
      return Created{std::move(*view), true};
    }
  }
  if (Status h = impl_->log.health(); !h.ok()) {
    return Status::Unavailable("create refused: the journal has failed (" + h.message() + ")");
  }
  std::optional<std::string> request_id = spec->request_id;
  auto dag = dag::Dag::Build(std::move(*spec), impl_->options.spec_limits);
  if (!dag.ok()) return dag.status();
  std::string id = impl_->NewId();
  auto e =
      std::make_shared<Execution>(impl_->ctx, id, std::move(*dag), impl_->options.clock->WallMs());
  const size_t mark = impl_->log.pending_count();
  e->RecordCreated(requester);
  // Acknowledged means durable: the creation is fsynced before the client hears of it.
  WARDEN_RETURN_IF_ERROR(impl_->log.CommitRequest(mark, journal::Durability::kDurable));
  impl_->executions.emplace(id, e);
  if (request_id) impl_->by_request_id.emplace(*request_id, id);
  if (start) {
    if (Status s = e->Start(requester); !s.ok()) {
      // The creation is journaled and the execution exists (idle): say so, or a client
      // that retries would make a second one.
      return Status(s.code(), "execution " + id + " was created but not started: " + s.message());
    }
  }
  return Created{e->View(), false};
}

Result<ExecutionView> ExecutionManager::Start(const std::string& id, const Requester& requester) {
  auto e = impl_->Find(id);
  if (!e) return impl_->NotHeld(id, ExecutionTrigger::kStart);
  WARDEN_RETURN_IF_ERROR(e->Start(requester));
  return e->View();
}

void ExecutionManager::Pause(const std::string& id, const Requester& requester,
                             std::function<void(Result<ExecutionView>)> done) {
  auto e = impl_->Find(id);
  if (!e) {
    boost::asio::post(impl_->ctx.io,
                      [done, s = impl_->NotHeld(id, ExecutionTrigger::kPause)] { done(s); });
    return;
  }
  e->Pause(requester, std::move(done));
}

void ExecutionManager::Resume(const std::string& id, const Requester& requester,
                              std::function<void(Result<ExecutionView>)> done) {
  auto e = impl_->Find(id);
  if (!e) {
    boost::asio::post(impl_->ctx.io,
                      [done, s = impl_->NotHeld(id, ExecutionTrigger::kResume)] { done(s); });
    return;
  }
  e->Resume(requester, std::move(done));
}

void ExecutionManager::Stop(const std::string& id, StopRequest request,
                            std::function<void(Result<ExecutionView>)> accepted,
                            std::function<void(Result<StopResult>)> done) {
  auto e = impl_->Find(id);
  if (!e) {
    if (done) {
      boost::asio::post(impl_->ctx.io,
                        [done, s = impl_->NotHeld(id, ExecutionTrigger::kStop)] { done(s); });
    }
    return;
  }
  e->Stop(std::move(request), std::move(accepted), std::move(done));
}

void ExecutionManager::StopAll(bool kill_now, std::function<void()> done) {
  std::vector<std::shared_ptr<Execution>> active;
  for (const auto& [id, e] : impl_->executions) {
    if (IsActive(e->state())) active.push_back(e);
  }
  auto remaining = std::make_shared<size_t>(active.size() + 1);
  auto finish = [remaining, done] {
    if (--*remaining == 0 && done) done();
  };
  for (const auto& e : active) {
    StopRequest request;
    request.requester.name = "warden";
    request.reason = StopReason::kServerShutdown;
    // One grace for every tree: the daemon's, whatever the specs say (a spec's own grace
    // could outlast the service manager's stop timeout).
    request.grace_ms = kill_now ? 0 : impl_->options.default_grace_ms;
    // A stopping execution joins with this request: its grace 0 (kill_now) brings SIGKILL
    // forward there too.
    e->Stop(std::move(request), nullptr, [finish](const Result<StopResult>&) { finish(); });
  }
  boost::asio::post(impl_->ctx.io, finish);
}

Status ExecutionManager::Restore() {
  // New ids must sort after every id an earlier run made, even within the same ms or after
  // the clock stepped back: go on from the newest one's time and counter.
  auto newest = impl_->journal.NewestExecutionId();
  if (!newest.ok()) return newest.status();
  if (newest->size() >= 16) {
    unsigned long long ms = 0;
    unsigned counter = 0;
    if (std::sscanf(newest->c_str(), "%12llx%4x", &ms, &counter) == 2) {
      impl_->last_id_ms = std::max(impl_->last_id_ms, static_cast<int64_t>(ms));
      impl_->id_counter = counter;
    }
  }
  auto ids = impl_->journal.NonTerminalExecutionIds();
  if (!ids.ok()) return ids.status();
  std::vector<std::shared_ptr<Execution>> resumed;
  for (const std::string& id : *ids) {
    if (impl_->Find(id)) continue;
    auto history = impl_->History(id);
    if (!history.ok()) {
      // One unreadable execution must not keep the daemon from serving the others.
      spdlog::error("execution {} cannot be restored from the journal: {}", id,
                    history.status().message());
      continue;
    }
    const ExecutionHistory& h = **history;
    if (h.spec().request_id) impl_->by_request_id.emplace(*h.spec().request_id, id);
    const bool idle = h.view().status == ExecutionState::kIdle;
    if (!idle && !h.resumed()) {
      // Only crash recovery may decide what becomes of an execution that was running.
      spdlog::warn("execution {} is {} in the journal and not recovered: served read-only", id,
                   ExecutionStateName(h.view().status));
      continue;
    }
    auto dag = dag::Dag::Build(h.spec(), dag::SpecLimits::Unlimited());
    if (!dag.ok()) {
      spdlog::error("execution {} cannot be restored from the journal: {}", id,
                    dag.status().message());
      continue;
    }
    auto e = std::make_shared<Execution>(impl_->ctx, id, std::move(*dag), h.view().created_at);
    if (Status s = e->RestoreFrom(h); !s.ok()) return s;
    if (!idle) resumed.push_back(e);
    impl_->executions.emplace(id, std::move(e));
  }
  // Once every execution is back, the resumed ones go on (sharing the manager-wide cap).
  for (const auto& e : resumed) e->Continue();
  return Status::Ok();
}

Result<ExecutionView> ExecutionManager::Get(const std::string& id) const {
  if (auto e = impl_->Find(id)) return e->View();
  auto history = impl_->History(id);
  if (!history.ok()) return history.status();
  return (*history)->view();
}

Result<std::vector<ExecutionView>> ExecutionManager::List(bool include_ended) const {
  std::vector<ExecutionView> out;
  if (!include_ended) {
    for (const auto& [id, e] : impl_->executions) {
      if (IsActive(e->state())) out.push_back(e->View());
    }
    return out;
  }
  auto ids = impl_->journal.ExecutionIds();
  if (!ids.ok()) return ids.status();
  // Both lists are in id order: merge them, so that executions whose creation the failed
  // journal could not record still appear.
  auto live = impl_->executions.begin();
  for (const std::string& id : *ids) {
    for (; live != impl_->executions.end() && live->first < id; ++live) {
      out.push_back(live->second->View());
    }
    if (live != impl_->executions.end() && live->first == id) {
      out.push_back((live++)->second->View());
      continue;
    }
    auto view = Get(id);
    if (!view.ok()) return view.status();
    out.push_back(std::move(*view));
  }
  for (; live != impl_->executions.end(); ++live) out.push_back(live->second->View());
  return out;
}

Result<std::string> ExecutionManager::OutputPath(const std::string& id, const std::string& node,
                                                 bool stderr_stream) const {
  if (auto e = impl_->Find(id)) return e->OutputPath(node, stderr_stream);
  auto history = impl_->History(id);
  if (!history.ok()) return history.status();
  const ExecutionHistory& h = **history;
  for (size_t i = 0; i < h.view().nodes.size(); ++i) {
    if (h.view().nodes[i].id != node) continue;
    const int attempt = h.attempts()[i].attempt;
    if (attempt == 0) return Status::NotFound("node " + node + " has not run yet");
    if (impl_->options.log_dir.empty()) {
      return Status::NotFound("output of node " + node + " is not captured (no log directory)");
    }
    return impl_->options.log_dir + "/" + id + "/" + node + "." + std::to_string(attempt) +
           (stderr_stream ? ".stderr" : ".stdout");
  }
  return Status::NotFound("execution " + id + " has no node " + node);
}

Result<std::vector<journal::Event>> ExecutionManager::ReadEvents(const std::string& id,
                                                                 int64_t after_seq) const {
  if (!impl_->Find(id)) {
    auto history = impl_->History(id);
    if (!history.ok()) return history.status();
  }
  return impl_->journal.ReadExecution(id, after_seq);
}

std::unique_ptr<ExecutionManager::Subscription> ExecutionManager::Subscribe(
    const std::string& id, std::function<void(const journal::Event&)> listener) {
  uint64_t key = impl_->log.Subscribe(id, std::move(listener));
  auto sub = std::unique_ptr<Subscription>(new Subscription());
  // The subscription may outlive the manager (a follower closing after shutdown): it only
  // unsubscribes while the manager's log still exists.
  sub->cancel_ = [log = &impl_->log, alive = std::weak_ptr<bool>(impl_->alive), key] {
    if (alive.lock()) log->Unsubscribe(key);
  };
  return sub;
}

ExecutionManager::Subscription::~Subscription() {
  if (cancel_) cancel_();
}

size_t ExecutionManager::active_count() const {
  size_t n = 0;
  for (const auto& [id, e] : impl_->executions) n += IsActive(e->state()) ? 1 : 0;
  return n;
}

std::vector<size_t> ExecutionManager::CountByState() const {
  std::vector<size_t> counts = impl_->ended_counts;
  for (const auto& [id, e] : impl_->executions) ++counts[static_cast<size_t>(e->state())];
  return counts;
}

ManagerStats ExecutionManager::stats() const { return impl_->stats; }

Status ExecutionManager::journal_health() const { return impl_->log.health(); }

Status ExecutionManager::journal_busy() const { return impl_->log.busy_status(); }

void ExecutionManager::WaitForJournal() { impl_->log.WaitIdle(); }

process::ContainmentMode ExecutionManager::containment() const {
  return impl_->ctx.runner.containment();
}

}  // namespace warden::lifecycle

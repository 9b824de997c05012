#include "lifecycle_test_util.h"

#include <algorithm>
#include <thread>

#include "lifecycle/execution_state.h"
#include "lifecycle/execution_view.h"

namespace warden::lifecycle_test {
namespace {

SQLite::Database& JsonDb() {
  static SQLite::Database db(":memory:");
  return db;
}

std::optional<std::string> JsonQuery(const char* sql, const std::string& json,
                                     const std::string& path) {
  SQLite::Statement query(JsonDb(), sql);
  query.bind(1, json);
  query.bind(2, path);
  if (!query.executeStep() || query.getColumn(0).isNull()) return std::nullopt;
  return query.getColumn(0).getString();
}

std::optional<int64_t> OptInt(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getInt64();
}
std::optional<double> OptDouble(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getDouble();
}
std::optional<std::string> OptText(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getString();
}

}  // namespace

std::optional<std::string> JsonText(const std::string& json, const std::string& path) {
  return JsonQuery("SELECT json_extract(?1, ?2)", json, path);
}

std::optional<double> JsonNumber(const std::string& json, const std::string& path) {
  SQLite::Statement query(JsonDb(), "SELECT json_extract(?1, ?2), json_type(?1, ?2)");
  query.bind(1, json);
  query.bind(2, path);
  if (!query.executeStep() || query.getColumn(0).isNull()) return std::nullopt;
  std::string type = query.getColumn(1).getString();
  if (type != "integer" && type != "real") return std::nullopt;
  return query.getColumn(0).getDouble();
}

std::optional<std::string> JsonType(const std::string& json, const std::string& path) {
  return JsonQuery("SELECT json_type(?1, ?2)", json, path);
}

std::string Name(NodeStatus status) { return std::string(lifecycle::NodeStatusName(status)); }
std::string Name(ExecutionState state) { return std::string(lifecycle::ExecutionStateName(state)); }

LifecycleTest::LifecycleTest(bool manual_clock)
    : clock_(manual_clock ? static_cast<const Clock*>(&manual_clock_) : &SystemClock::Instance()) {
  runner_ = std::make_unique<FakeProcessRunner>(io_, clock_);
  journal::JournalOptions options;
  options.clock = clock_;
  auto journal = journal::Journal::Open(dir_.File("warden.db"), options);
  if (!journal.ok()) {
    ADD_FAILURE() << journal.status().ToString();
    return;
  }
  journal_ = std::move(*journal);
  MakeManager();
}

LifecycleTest::~LifecycleTest() {
  // The manager goes first: nothing may run its callbacks after it is gone, so the
  // io_context is not run again.
  manager_.reset();
}

void LifecycleTest::TearDown() {
  for (const auto& violation : runner_->violations()) {
    ADD_FAILURE() << "ProcessRunner contract violated: " << violation;
  }
}

void LifecycleTest::MakeManager(ManagerOptions options) {
  manager_.reset();
  options.clock = clock_;
  if (journal_) manager_ = std::make_unique<ExecutionManager>(io_, *journal_, *runner_, options);
}

void LifecycleTest::ReopenJournal(journal::JournalOptions options) {
  manager_.reset();
  journal_.reset();
  std::filesystem::remove(dir_.File("warden.db"));
  std::filesystem::remove(dir_.File("warden.db-wal"));
  std::filesystem::remove(dir_.File("warden.db-shm"));
  options.clock = clock_;
  auto journal = journal::Journal::Open(dir_.File("warden.db"), options);
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  journal_ = std::move(*journal);
  MakeManager();
}

void LifecycleTest::Drain() {
  for (int round = 0; round < 10'000; ++round) {
    if (io_.stopped()) io_.restart();
    // Commits run on the journal writer's thread: what the handlers queued is in the
    // journal, and its subscribers have heard of it, before the test looks.
    if (manager_) manager_->WaitForJournal();
    if (io_.poll() == 0) return;
  }
  ADD_FAILURE() << "the io_context never ran dry: a handler re-posts itself forever";
}

bool LifecycleTest::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  Drain();
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io_.stopped()) io_.restart();
    if (io_.run_one_for(2ms) == 0) std::this_thread::sleep_for(1ms);
  }
  return true;
}

void LifecycleTest::RunFor(std::chrono::milliseconds duration) {
  auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) {
    if (io_.stopped()) io_.restart();
    if (io_.run_one_until(deadline) == 0) std::this_thread::sleep_for(1ms);
  }
  Drain();
}

std::string LifecycleTest::Create(const std::string& spec, bool start) {
  auto created = manager_->Create(spec, lib_, start);
  EXPECT_TRUE(created.ok()) << created.status().ToString() << "\nspec: " << spec;
  if (!created.ok()) return "";
  EXPECT_FALSE(created->existing);
  Drain();
  return created->execution.id;
}

Result<ExecutionView> LifecycleTest::PauseAndWait(const std::string& id) {
  std::optional<Result<ExecutionView>> result;
  manager_->Pause(id, lib_, [&](Result<ExecutionView> r) { result = std::move(r); });
  EXPECT_FALSE(result.has_value()) << "Pause completed inside the call";
  if (!RunUntil([&] { return result.has_value(); })) {
    return Status::Internal("Pause never completed");
  }
  return *result;
}

Result<ExecutionView> LifecycleTest::ResumeAndWait(const std::string& id) {
  std::optional<Result<ExecutionView>> result;
  manager_->Resume(id, lib_, [&](Result<ExecutionView> r) { result = std::move(r); });
  EXPECT_FALSE(result.has_value()) << "Resume completed inside the call";
  if (!RunUntil([&] { return result.has_value(); })) {
    return Status::Internal("Resume never completed");
  }
  return *result;
}

std::shared_ptr<StopOutcome> LifecycleTest::StopAsync(const std::string& id, StopRequest request) {
  auto outcome = std::make_shared<StopOutcome>();
  manager_->Stop(
      id, std::move(request),
      [outcome](Result<ExecutionView> view) {
        ++outcome->accepted_calls;
        outcome->accepted = std::move(view);
      },
      [outcome](Result<StopResult> result) { outcome->done = std::move(result); });
  EXPECT_FALSE(outcome->done.has_value()) << "Stop completed inside the call";
  EXPECT_EQ(outcome->accepted_calls, 0) << "Stop's accepted callback ran inside the call";
  return outcome;
}

StopOutcome LifecycleTest::StopAndWait(const std::string& id, StopRequest request) {
  auto outcome = StopAsync(id, std::move(request));
  EXPECT_TRUE(RunUntil([&] { return outcome->done.has_value(); }))
      << "the stop of " << id << " never completed";
  return *outcome;
}

bool LifecycleTest::RunUntilEnded(const std::string& id, std::chrono::milliseconds limit) {
  return RunUntil(
      [&] {
        auto view = manager_->Get(id);
        return view.ok() && lifecycle::IsTerminal(view->status);
      },
      limit);
}

ExecutionView LifecycleTest::View(const std::string& id) {
  auto view = manager_->Get(id);
  EXPECT_TRUE(view.ok()) << view.status().ToString();
  return view.ok() ? *view : ExecutionView{};
}

ExecutionState LifecycleTest::StateOf(const std::string& id) { return View(id).status; }

NodeView LifecycleTest::NodeOf(const std::string& id, const std::string& node) {
  for (const auto& n : View(id).nodes) {
    if (n.id == node) return n;
  }
  ADD_FAILURE() << "no node " << node << " in " << id;
  return {};
}

NodeStatus LifecycleTest::NodeStatusOf(const std::string& id, const std::string& node) {
  return NodeOf(id, node).status;
}

std::vector<std::string> LifecycleTest::NodeStatuses(const std::string& id) {
  std::vector<std::string> statuses;
  for (const auto& node : View(id).nodes) statuses.push_back(node.id + "=" + Name(node.status));
  return statuses;
}

std::vector<journal::Event> LifecycleTest::Events(const std::string& id) {
  auto events = journal_->ReadExecution(id);
  EXPECT_TRUE(events.ok()) << events.status().ToString();
  return events.ok() ? *events : std::vector<journal::Event>{};
}

std::vector<std::string> LifecycleTest::Kinds(const std::string& id) {
  std::vector<std::string> kinds;
  for (const auto& event : Events(id)) {
    kinds.push_back(event.node_id.empty() ? event.kind : event.kind + ":" + event.node_id);
  }
  return kinds;
}

std::vector<journal::Event> LifecycleTest::EventsOf(const std::string& id, std::string_view kind,
                                                    const std::string& node) {
  std::vector<journal::Event> matching;
  for (auto& event : Events(id)) {
    if (event.kind == kind && (node.empty() || event.node_id == node)) matching.push_back(event);
  }
  return matching;
}

int LifecycleTest::IndexOf(const std::vector<journal::Event>& events, std::string_view kind,
                           const std::string& node) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].kind == kind && (node.empty() || events[i].node_id == node)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::vector<StopRow> LifecycleTest::StopRows(const std::string& id) {
  SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
  SQLite::Statement query(db,
                          "SELECT execution_id, stop_seq, requested_at, requested_by, reason, "
                          "note, grace_ms, completed_at, status, final_cost_usd, "
                          "nodes_completed, nodes_failed, nodes_total, duration_ms, "
                          "nodes_killed, nodes_unkillable, journaled, joined "
                          "FROM stops WHERE execution_id = ? ORDER BY stop_seq");
  query.bind(1, id);
  std::vector<StopRow> rows;
  while (query.executeStep()) {
    StopRow row;
    row.execution_id = query.getColumn(0).getString();
    row.stop_seq = query.getColumn(1).getInt64();
    row.requested_at = query.getColumn(2).getInt64();
    row.requested_by = OptText(query.getColumn(3));
    row.reason = OptText(query.getColumn(4));
    row.note = OptText(query.getColumn(5));
    row.grace_ms = OptInt(query.getColumn(6));
    row.completed_at = OptInt(query.getColumn(7));
    row.status = OptText(query.getColumn(8));
    row.final_cost_usd = OptDouble(query.getColumn(9));
    row.nodes_completed = OptInt(query.getColumn(10));
    row.nodes_failed = OptInt(query.getColumn(11));
    row.nodes_total = OptInt(query.getColumn(12));
    row.duration_ms = OptInt(query.getColumn(13));
    row.nodes_killed = OptInt(query.getColumn(14));
    row.nodes_unkillable = OptInt(query.getColumn(15));
    row.journaled = OptInt(query.getColumn(16));
    row.joined = query.getColumn(17).getInt64();
    rows.push_back(std::move(row));
  }
  return rows;
}

std::optional<ExecutionRow> LifecycleTest::ExecutionRowOf(const std::string& id) {
  SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
  SQLite::Statement query(db,
                          "SELECT id, name, status, created_at, started_at, ended_at, cost_usd "
                          "FROM executions WHERE id = ?");
  query.bind(1, id);
  if (!query.executeStep()) return std::nullopt;
  ExecutionRow row;
  row.id = query.getColumn(0).getString();
  row.name = OptText(query.getColumn(1));
  row.status = OptText(query.getColumn(2));
  row.created_at = query.getColumn(3).getInt64();
  row.started_at = OptInt(query.getColumn(4));
  row.ended_at = OptInt(query.getColumn(5));
  row.cost_usd = OptDouble(query.getColumn(6));
  return row;
}

}  // namespace warden::lifecycle_test

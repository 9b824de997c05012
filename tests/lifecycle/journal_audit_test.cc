// What the journal says: the events of a run in order with their payloads, write-ahead of
// launches, the identity right after, the audit views, Subscribe, and what happens when the
// journal cannot be written (new work refused, stops still work and say journaled=false).
#include <signal.h>

#include <algorithm>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

// True if `needle` occurs in `haystack` in order (not necessarily adjacent).
bool IsSubsequence(const V& needle, const V& haystack) {
  size_t i = 0;
  for (const auto& item : haystack) {
    if (i < needle.size() && item == needle[i]) ++i;
  }
  return i == needle.size();
}

std::string Joined(const V& items) {
  std::string out;
  for (const auto& item : items) out += item + "\n";
  return out;
}

TEST_F(LifecycleTest, CompletedRunJournalsEveryTransitionInOrder) {
  std::string spec = Dag({Node("a"), Node("b", {"a"})}, R"("name": "nightly-etl")");
  std::string id = Create(spec);
  manual_clock_.Advance(1500ms);
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(id));

  V kinds = Kinds(id);
  V expected = {"execution.created", "execution.started", "node.intent:a",
                "node.started:a",    "node.exited:a",     "node.intent:b",
                "node.started:b",    "node.exited:b",     "execution.completed"};
  EXPECT_TRUE(IsSubsequence(expected, kinds)) << Joined(kinds);
  EXPECT_EQ(kinds.back(), "execution.completed") << "the terminal event comes last";
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "execution.completed"), 1);
  auto events = Events(id);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_LT(events[i - 1].seq, events[i].seq);
    EXPECT_LE(events[i - 1].at_ms, events[i].at_ms) << "time never goes back in one execution";
  }
  for (const auto& event : events) {
    bool node_event = event.kind.rfind("node.", 0) == 0;
    EXPECT_EQ(!event.node_id.empty(), node_event) << event.kind;
    EXPECT_EQ(event.attempt != 0, node_event) << event.kind;
  }

  auto created = EventsOf(id, journal::kind::kExecutionCreated);
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(JsonText(created[0].payload, "$.name"), "nightly-etl");
  EXPECT_EQ(JsonText(created[0].payload, "$.requestedBy"), "lib");
  EXPECT_EQ(JsonType(created[0].payload, "$.spec"), "object") << created[0].payload;
  EXPECT_EQ(JsonText(created[0].payload, "$.spec.nodes[1].needs[0]"), "a");
  EXPECT_EQ(JsonText(EventsOf(id, journal::kind::kExecutionStarted)[0].payload, "$.requestedBy"),
            "lib");

  auto exited = EventsOf(id, journal::kind::kNodeExited, "a");
  ASSERT_EQ(exited.size(), 1u);
  const std::string& payload = exited[0].payload;
  EXPECT_EQ(JsonText(payload, "$.exitCode"), "0");
  EXPECT_EQ(JsonType(payload, "$.signal"), "null");
  EXPECT_EQ(JsonText(payload, "$.graceful"), "1");
  EXPECT_EQ(JsonText(payload, "$.killed"), "0");
  EXPECT_EQ(JsonNumber(payload, "$.durationMs"), 1500);
  EXPECT_EQ(JsonNumber(payload, "$.pausedMs"), 0);
  EXPECT_EQ(JsonNumber(payload, "$.costUsd"), 0);

  auto row = ExecutionRowOf(id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->name, "nightly-etl");
  EXPECT_EQ(row->status, "completed");
  EXPECT_EQ(row->created_at, ManualClock::kStartWallMs);
  EXPECT_EQ(row->started_at, ManualClock::kStartWallMs);
  EXPECT_EQ(row->ended_at, manual_clock_.WallMs());
  EXPECT_EQ(row->cost_usd, 0);
  EXPECT_TRUE(StopRows(id).empty());
}

TEST_F(LifecycleTest, IntentIsCommittedBeforeTheProcessIsLaunched) {
  runner_->set_containment(process::ContainmentMode::kCgroup);
  int launches = 0;
  runner_->on_launch = [&](const process::LaunchSpec& spec) {
    ++launches;
    // Read the file the way recovery would after a crash right here.
    SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
    SQLite::Statement query(db,
                            "SELECT kind, payload FROM journal WHERE execution_id = ? AND "
                            "node_id = ? AND attempt = ? ORDER BY seq");
    query.bind(1, spec.cookie.execution_id);
    query.bind(2, spec.cookie.node_id);
    query.bind(3, spec.cookie.attempt);
    V kinds;
    std::string intent_payload;
    while (query.executeStep()) {
      kinds.push_back(query.getColumn(0).getString());
      if (kinds.back() == "node.intent") intent_payload = query.getColumn(1).getString();
    }
    EXPECT_EQ(kinds, V{"node.intent"}) << spec.cookie.node_id << " attempt " << spec.cookie.attempt;
    EXPECT_EQ(JsonText(intent_payload, "$.cgroup"),
              "/sys/fs/cgroup/warden-fake/" + spec.cookie.execution_id + "/" + spec.cookie.node_id +
                  "." + std::to_string(spec.cookie.attempt))
        << intent_payload;
    EXPECT_EQ(JsonText(intent_payload, "$.argv[0]"), "/bin/true");
    EXPECT_EQ(JsonText(intent_payload, "$.cwd"), "/");
    EXPECT_EQ(JsonType(intent_payload, "$.cookie"), "object");
  };
  std::string id = Create(Dag({Node("a", {}, R"("retries": 1)"), Node("b", {"a"})}));
  ASSERT_TRUE(runner_->Exit("a", 1));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(launches, 3);
}

TEST_F(LifecycleTest, IdentityIsCommittedRightAfterTheLaunch) {
  std::string id = Create(Dag({Node("a")}));
  Settle();
  const process::ProcessIdentity& identity = runner_->Tree("a")->identity();
  auto started = EventsOf(id, journal::kind::kNodeStarted, "a");
  ASSERT_EQ(started.size(), 1u) << "node.started is there while the node runs";
  const std::string& payload = started[0].payload;
  EXPECT_EQ(JsonText(payload, "$.pid"), std::to_string(identity.pid));
  EXPECT_EQ(JsonText(payload, "$.startTime"), std::to_string(identity.start_ticks));
  EXPECT_EQ(JsonText(payload, "$.bootId"), identity.boot_id);
  EXPECT_EQ(JsonText(payload, "$.pgid"), std::to_string(identity.pgid));
  EXPECT_EQ(JsonText(payload, "$.sid"), std::to_string(identity.sid));
  EXPECT_EQ(JsonType(payload, "$.cgroup"), "null");
  EXPECT_EQ(JsonText(payload, "$.containment"), "pgroup");
  EXPECT_EQ(manager_->containment(), process::ContainmentMode::kProcessGroup);
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(LifecycleTest, SubscribeDeliversCommittedEventsUntilTheHandleIsDestroyed) {
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}), /*start=*/false);
  std::vector<journal::Event> seen;
  auto subscription = manager_->Subscribe(id, [&](const journal::Event& event) {
    // Committed: a reader of the file sees it already.
    SQLite::Database db(journal_->path(), SQLite::OPEN_READONLY);
    SQLite::Statement query(db, "SELECT kind FROM journal WHERE seq = ?");
    query.bind(1, event.seq);
    EXPECT_TRUE(query.executeStep()) << event.kind << " delivered before it was committed";
    seen.push_back(event);
  });
  ASSERT_TRUE(subscription != nullptr);
  ASSERT_TRUE(manager_->Start(id, lib_).ok());
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();

  V kinds;
  for (const auto& event : seen) {
    EXPECT_EQ(event.execution_id, id);
    kinds.push_back(event.node_id.empty() ? event.kind : event.kind + ":" + event.node_id);
  }
  EXPECT_TRUE(IsSubsequence({"execution.started", "node.intent:a", "node.started:a",
                             "node.exited:a", "node.intent:b", "node.started:b"},
                            kinds))
      << Joined(kinds);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "execution.created"), 0)
      << "events already in the journal are not replayed";
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1].seq, seen[i].seq);
  // Exactly the journal's rows after the subscription began, nothing missing.
  auto after = journal_->ReadExecution(id, seen.empty() ? 0 : seen.front().seq - 1);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), seen.size());

  size_t before_cancel = seen.size();
  subscription.reset();
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(seen.size(), before_cancel) << "nothing after the handle is gone";
}

TEST_F(LifecycleTest, SubscriberSeesOnlyItsOwnExecution) {
  std::string mine = Create(Dag({Node("m")}), /*start=*/false);
  std::string other = Create(Dag({Node("o")}));
  int events = 0;
  auto subscription = manager_->Subscribe(mine, [&](const journal::Event& event) {
    EXPECT_EQ(event.execution_id, mine);
    ++events;
  });
  ASSERT_TRUE(runner_->Exit("o", 0));
  ASSERT_TRUE(RunUntilEnded(other));
  EXPECT_EQ(events, 0);
  auto stop = StopAndWait(mine);
  ASSERT_TRUE(stop.done->ok());
  EXPECT_GT(events, 0);
}

// Fills the journal behind the manager's back until it fails for good (a full disk).
void FillJournal(journal::Journal& journal) {
  for (int i = 0; i < 100'000; ++i) {
    journal::Event filler;
    filler.kind = "test.filler";
    filler.payload = R"({"pad": ")" + std::string(2000, 'x') + R"("})";
    if (!journal.Append(filler, journal::Durability::kCrashSafe).ok()) return;
  }
  ADD_FAILURE() << "the journal never filled up";
}

TEST_F(LifecycleTest, FailedJournalRefusesNewWorkButStillStops) {
  journal::JournalOptions options;
  options.max_page_count = 96;
  ReopenJournal(options);
  std::string idle = Create(Dag({Node("i1")}), /*start=*/false);
  std::string running = Create(Dag({Node("r1"), Node("r2")}, R"("maxParallel": 2)"));
  std::string paused = Create(Dag({Node("p1")}));
  std::string chain = Create(Dag({Node("c1"), Node("c2", {"c1"})}));
  Settle();
  ASSERT_TRUE(PauseAndWait(paused).ok());
  ASSERT_TRUE(manager_->journal_health().ok());

  FillJournal(*journal_);
  ASSERT_FALSE(journal_->health().ok());
  EXPECT_FALSE(manager_->journal_health().ok());
  auto processes = [&] {
    return std::count_if(runner_->launches().begin(), runner_->launches().end(),
                         [](const auto& launch) { return launch.tree != nullptr; });
  };
  auto processes_before = processes();

  auto created = manager_->Create(Dag({Node("new")}), lib_, true);
  EXPECT_EQ(created.status().code(), StatusCode::kUnavailable) << created.status().ToString();
  EXPECT_EQ(manager_->Start(idle, lib_).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ResumeAndWait(paused).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(StateOf(idle), ExecutionState::kIdle);

  // A node that would launch its dependent: the execution is stopped (reason error) instead.
  ASSERT_TRUE(runner_->Exit("c1", 0));
  ASSERT_TRUE(RunUntilEnded(chain));
  EXPECT_EQ(StateOf(chain), ExecutionState::kFailed);
  EXPECT_EQ(NodeStatusOf(chain, "c2"), NodeStatus::kStopped);
  EXPECT_EQ(processes(), processes_before) << "no process without its intent journaled";
  EXPECT_EQ(runner_->Tree("c2"), nullptr);

  // Stops still work, on request, and say they could not be journaled.
  auto stop = StopAndWait(running);
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  EXPECT_EQ((*stop.done)->status, ExecutionState::kStopped);
  EXPECT_FALSE((*stop.done)->journaled);
  EXPECT_TRUE(runner_->Tree("r1")->finished());
  EXPECT_TRUE(runner_->Tree("r2")->finished());
  EXPECT_EQ(StateOf(running), ExecutionState::kStopped);

  auto stop_paused = StopAndWait(paused);
  ASSERT_TRUE(stop_paused.done->ok()) << stop_paused.done->status().ToString();
  EXPECT_FALSE((*stop_paused.done)->journaled);
  EXPECT_TRUE(runner_->Tree("p1")->finished());

  auto stop_idle = StopAndWait(idle);
  ASSERT_TRUE(stop_idle.done->ok()) << stop_idle.done->status().ToString();
  EXPECT_FALSE((*stop_idle.done)->journaled);
  EXPECT_EQ(manager_->active_count(), 0u);
  EXPECT_TRUE(runner_->RunningNodes().empty());
}

TEST_F(LifecycleTest, RequesterIsJournaledWithEveryChangeItCauses) {
  std::string id = Create(Dag({Node("a")}), /*start=*/false);
  lifecycle::Requester operator_requester{"token:ops"};
  ASSERT_TRUE(manager_->Start(id, operator_requester).ok());
  Settle();
  std::optional<Result<ExecutionView>> paused;
  manager_->Pause(id, operator_requester, [&](Result<ExecutionView> r) { paused = r; });
  ASSERT_TRUE(RunUntil([&] { return paused.has_value(); }));
  std::optional<Result<ExecutionView>> resumed;
  manager_->Resume(id, operator_requester, [&](Result<ExecutionView> r) { resumed = r; });
  ASSERT_TRUE(RunUntil([&] { return resumed.has_value(); }));
  StopRequest request;
  request.requester = operator_requester;
  ASSERT_TRUE(StopAndWait(id, request).done->ok());
  for (auto kind : {journal::kind::kExecutionStarted, journal::kind::kExecutionPaused,
                    journal::kind::kExecutionResumed, journal::kind::kExecutionStopRequested}) {
    auto events = EventsOf(id, kind);
    ASSERT_EQ(events.size(), 1u) << kind;
    EXPECT_EQ(JsonText(events[0].payload, "$.requestedBy"), "token:ops") << kind;
  }
  EXPECT_EQ(StopRows(id)[0].requested_by, "token:ops");
}

TEST_F(LifecycleTest, ListenerMayEndItsOwnSubscriptionAndCallTheManager) {
  std::string id = Create(Dag({Node("a")}), /*start=*/false);
  std::unique_ptr<ExecutionManager::Subscription> self_ending;
  int self_ending_events = 0, other_events = 0;
  self_ending = manager_->Subscribe(id, [&](const journal::Event& event) {
    ++self_ending_events;
    EXPECT_TRUE(manager_->Get(id).ok());  // calling back into the manager is allowed
    if (event.kind == journal::kind::kNodeStarted) self_ending.reset();
  });
  auto other = manager_->Subscribe(id, [&](const journal::Event&) { ++other_events; });
  ASSERT_TRUE(manager_->Start(id, lib_).ok());
  Settle();
  int seen_when_ended = self_ending_events;
  EXPECT_EQ(self_ending, nullptr);
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(self_ending_events, seen_when_ended);
  EXPECT_GT(other_events, self_ending_events) << "the other listener goes on";
}

TEST_F(LifecycleTest, StopAllStillStopsEverythingWhenTheJournalHasFailed) {
  journal::JournalOptions options;
  options.max_page_count = 96;
  ReopenJournal(options);
  std::string first = Create(Dag({Node("a")}));
  std::string second = Create(Dag({Node("b")}));
  Settle();
  FillJournal(*journal_);
  bool done = false;
  manager_->StopAll(false, [&] { done = true; });
  ASSERT_TRUE(RunUntil([&] { return done; }));
  EXPECT_EQ(StateOf(first), ExecutionState::kStopped);
  EXPECT_EQ(StateOf(second), ExecutionState::kStopped);
  EXPECT_TRUE(runner_->RunningNodes().empty());
}

// The child re-runs the test from the start ("threadsafe"): a fork of this process would
// have no journal writer thread.
class LifecycleDeathTest : public LifecycleTest {
 protected:
  LifecycleDeathTest() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(LifecycleDeathTest, DestroyingTheManagerLeavesNoCallbackBehind) {
  // An embedding program may drop the manager while trees still report to it, and keep
  // running its io_context for other work. (In a child process: a use-after-free here must
  // not take the whole suite down.)
  EXPECT_EXIT(
      {
        std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
        Settle();
        runner_->Exit("a", 0);                                    // on_exit queued
        manager_->Pause(id, lib_, [](Result<ExecutionView>) {});  // queued too
        manager_.reset();
        Drain();
        runner_->KillBySignal("b", SIGKILL);
        Drain();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(LifecycleDeathTest, DestroyingTheManagerAfterStopAllIsClean) {
  EXPECT_EXIT(
      {
        Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
        Settle();
        bool done = false;
        manager_->StopAll(false, [&] { done = true; });
        if (!RunUntil([&] { return done; })) std::exit(2);
        manager_.reset();
        Drain();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(LifecycleDeathTest, SubscriptionOutlivingItsManagerIsHarmless) {
  // E.g. an HTTP session still following an event stream while the daemon shuts down and
  // destroys the manager first. The header does not forbid it, so it must be safe.
  // (Run in a child process: a use-after-free here must not take the whole suite down.)
  EXPECT_EXIT(
      {
        std::string id = Create(Dag({Node("a")}));
        auto subscription = manager_->Subscribe(id, [](const journal::Event&) {});
        manager_.reset();
        subscription.reset();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace warden::lifecycle_test

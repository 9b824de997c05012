// History survives a restart: an execution rebuilt from its journal records (a new manager
// on the same journal) shows what the live one showed, for every way an execution can end,
// and requestId idempotence, events and logs answer for it too.
#include <signal.h>

#include "lifecycle/execution_history.h"
#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

// What a client sees of an execution, field by field; cost to the micro-dollar, since the
// live view sums the same numbers in another order.
void ExpectSameView(const ExecutionView& got, const ExecutionView& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.status, want.status) << lifecycle::ExecutionStateName(got.status) << " vs "
                                     << lifecycle::ExecutionStateName(want.status);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.started_at, want.started_at);
  EXPECT_EQ(got.ended_at, want.ended_at);
  EXPECT_NEAR(got.cost_usd, want.cost_usd, 1e-6);
  ASSERT_EQ(got.nodes.size(), want.nodes.size());
  for (size_t i = 0; i < got.nodes.size(); ++i) {
    const NodeView& g = got.nodes[i];
    const NodeView& w = want.nodes[i];
    SCOPED_TRACE("node " + w.id);
    EXPECT_EQ(g.id, w.id);
    EXPECT_EQ(g.status, w.status) << lifecycle::NodeStatusName(g.status) << " vs "
                                  << lifecycle::NodeStatusName(w.status);
    EXPECT_EQ(g.attempt, w.attempt);
    EXPECT_EQ(g.pid, w.pid);
    EXPECT_EQ(g.exit_code, w.exit_code);
    EXPECT_EQ(g.signal, w.signal);
    EXPECT_EQ(g.started_at, w.started_at);
    EXPECT_EQ(g.ended_at, w.ended_at);
    EXPECT_NEAR(g.cost_usd, w.cost_usd, 1e-6);
  }
}

class HistoryTest : public LifecycleTest {
 protected:
  // Restarts the manager on the same journal and checks that `id` reads back as it was.
  void ExpectSameAfterRestart(const std::string& id) {
    ExecutionView live = View(id);
    MakeManager();
    ASSERT_TRUE(manager_->Restore().ok());
    auto rebuilt = manager_->Get(id);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
    ExpectSameView(*rebuilt, live);
  }
};

TEST_F(HistoryTest, CompletedExecutionReadsBackAsItWas) {
  std::string id = Create(Dag({Node("a", {}, R"("costPerSecondUsd": 0.5)"), Node("b", {"a"})}));
  Settle();
  manual_clock_.Advance(2000ms);
  ASSERT_TRUE(runner_->Tree("a")->Notify("cost_usd", "0.25"));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  ExpectSameAfterRestart(id);
}

TEST_F(HistoryTest, FailedNodeWithRetriesAndSkippedDependentReadBackAsTheyWere) {
  std::string id = Create(Dag({Node("a", {}, R"("retries": 1)"), Node("b", {"a"}), Node("c")},
                              R"("onFailure": "continue")"));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 3));
  Settle();
  ASSERT_TRUE(runner_->Tree("a")->KillBySignal(SIGSEGV));
  Settle();
  ASSERT_TRUE(runner_->Exit("c", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(NodeStatuses(id), (V{"a=failed", "b=skipped", "c=succeeded"}));
  EXPECT_EQ(NodeOf(id, "a").attempt, 2);
  ExpectSameAfterRestart(id);
}

TEST_F(HistoryTest, LaunchFailureReadsBackWithItsExitCode) {
  runner_->FailLaunches("a", Status::NotFound("exec nope: No such file or directory"));
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("onFailure": "continue")"));
  Settle();
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(NodeOf(id, "a").exit_code, 127);
  ExpectSameAfterRestart(id);
}

TEST_F(HistoryTest, StopWithAKilledNodeAndAPendingOneReadsBackAsItWas) {
  runner_->SetTermBehavior("slow", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("quick"), Node("slow"), Node("later", {"quick"})},
                              R"("maxParallel": 2, "graceMs": 50)"));
  Settle();
  manual_clock_.Advance(1000ms);
  StopRequest request;
  request.note = "maintenance";
  auto stop = StopAndWait(id, request);
  ASSERT_TRUE(stop.done && stop.done->ok());
  EXPECT_EQ(NodeStatuses(id), (V{"quick=stopped", "slow=stopped", "later=stopped"}));
  EXPECT_EQ(NodeOf(id, "slow").signal, "SIGKILL");
  ExpectSameAfterRestart(id);
}

TEST_F(HistoryTest, NodeWhoseExitWasUnderWayWhenTheStopCameReadsBackAsItWas) {
  // The tree has ended but its exit is not handled yet when the stop arrives: no SIGTERM
  // goes out (nothing is left to signal), and the stop still ends the node. The journal
  // says so, so a restart shows what the live execution showed.
  std::string id = Create(Dag({Node("a"), Node("b")}));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 3));
  auto stop = StopAndWait(id, StopRequest{});
  ASSERT_TRUE(stop.done && stop.done->ok());
  const V statuses = NodeStatuses(id);
  EXPECT_EQ(statuses, (V{"a=stopped", "b=stopped"}));
  EXPECT_EQ(NodeOf(id, "a").exit_code, 3);
  ExpectSameAfterRestart(id);
}

TEST_F(HistoryTest, EachInstantHasOneValueInTheApiAndTheJournal) {
  std::string id = Create(Dag({Node("a")}));
  Settle();
  manual_clock_.Advance(1500ms);
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  const ExecutionView view = View(id);
  auto row = ExecutionRowOf(id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->created_at, view.created_at);
  EXPECT_EQ(row->started_at, view.started_at);
  EXPECT_EQ(row->ended_at, view.ended_at);
  auto started = EventsOf(id, journal::kind::kNodeStarted);
  auto exited = EventsOf(id, journal::kind::kNodeExited);
  ASSERT_EQ(started.size(), 1u);
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(view.nodes[0].started_at, started[0].at_ms);
  EXPECT_EQ(view.nodes[0].ended_at, exited[0].at_ms);
}

TEST_F(HistoryTest, PausedTimeBetweenTwoMomentsCountsAPauseStillInForce) {
  std::string id = Create(Dag({Node("a")}));
  Settle();
  const int64_t t0 = manual_clock_.WallMs();
  manual_clock_.Advance(1000ms);
  ASSERT_TRUE(PauseAndWait(id).ok());
  manual_clock_.Advance(3000ms);
  ASSERT_TRUE(ResumeAndWait(id).ok());
  manual_clock_.Advance(1000ms);
  ASSERT_TRUE(PauseAndWait(id).ok());  // still paused at the "crash"
  const int64_t now = manual_clock_.WallMs() + 2000;
  auto history = lifecycle::ExecutionHistory::Fold(Events(id));
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  EXPECT_EQ(history->PausedMsBetween(t0, now), 3000 + 2000);
  EXPECT_EQ(history->PausedMsBetween(t0 + 2000, t0 + 3000), 1000) << "only the overlap";
  ASSERT_TRUE(ResumeAndWait(id).ok());
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(HistoryTest, IdleExecutionIsRestoredAndCanBeStartedAfterARestart) {
  std::string id = Create(Dag({Node("a")}), /*start=*/false);
  MakeManager();
  ASSERT_TRUE(manager_->Restore().ok());
  EXPECT_EQ(StateOf(id), ExecutionState::kIdle);
  auto started = manager_->Start(id, {});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
}

TEST_F(HistoryTest, RequestIdMadeBeforeARestartReturnsThatExecution) {
  std::string spec = Dag({Node("a")}, R"("requestId": "nightly-2026-12-07")");
  std::string id = Create(spec);
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  MakeManager();
  ASSERT_TRUE(manager_->Restore().ok());
  auto again = manager_->Create(spec, {}, /*start=*/true);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->existing);
  EXPECT_EQ(again->execution.id, id);
  EXPECT_EQ(again->execution.status, ExecutionState::kCompleted);
  EXPECT_EQ(manager_->List(true)->size(), 1u) << "no second execution";
}

TEST_F(HistoryTest, EventsListAndOutputPathAnswerForExecutionsOfAnEarlierRun) {
  std::string first = Create(Dag({Node("a")}));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(first));
  const size_t events_before = Events(first).size();
  MakeManager();
  ASSERT_TRUE(manager_->Restore().ok());
  std::string second = Create(Dag({Node("b")}));
  Settle();

  auto events = manager_->ReadEvents(first, 0);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), events_before);
  auto all = manager_->List(true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, first) << "oldest first";
  EXPECT_EQ((*all)[1].id, second);
  EXPECT_EQ(manager_->List(false)->size(), 1u);
  EXPECT_EQ(manager_->Get("0000000000000000000000").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(manager_->ReadEvents("nope", 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(manager_->OutputPath(first, "zz", false).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(second));
}

}  // namespace
}  // namespace warden::lifecycle_test

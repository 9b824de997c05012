// Stops that meet something else on the way: a node ending as the stop arrives, a node that
// answers SIGTERM with an error code, a retry due during a stop, a pause still freezing, an
// unkillable tree that dies later, completions in either order; and "acknowledged means
// durable" for every request.
#include <signal.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

StopRequest WithGrace(int64_t grace_ms) {
  StopRequest request;
  request.grace_ms = grace_ms;
  return request;
}

TEST_F(LifecycleTest, NodeThatExitsAsTheStopArrivesCountsAsSucceeded) {
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));  // its on_exit is still queued when Stop is called
  auto stop = StopAndWait(id);
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  EXPECT_EQ((*stop.done)->status, ExecutionState::kStopped);
  EXPECT_EQ((*stop.done)->summary.nodes_completed, 1);
  EXPECT_EQ((*stop.done)->summary.nodes_failed, 0);
  EXPECT_EQ(NodeStatuses(id), (V{"a=succeeded", "b=stopped"}));
  EXPECT_EQ(NodeOf(id, "a").exit_code, 0);
}

TEST_F(LifecycleTest, NodeAnsweringSigtermWithAnErrorCodeIsStoppedNotFailed) {
  // Many programs exit 1 or 143 on SIGTERM; the user asked for the stop, nothing failed.
  runner_->SetTermBehavior("worker", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("worker")}));
  Settle();
  auto stop = StopAsync(id);
  ASSERT_TRUE(RunUntil([&] { return runner_->Tree("worker")->got_signal(SIGTERM); }));
  ASSERT_TRUE(runner_->Exit("worker", 143));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  ASSERT_TRUE(stop->done->ok()) << stop->done->status().ToString();
  EXPECT_EQ((*stop->done)->status, ExecutionState::kStopped);
  EXPECT_EQ((*stop->done)->summary.nodes_failed, 0);
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
  NodeView worker = NodeOf(id, "worker");
  EXPECT_EQ(worker.status, NodeStatus::kStopped);
  EXPECT_EQ(worker.exit_code, 143);
}

TEST_F(LifecycleTest, NodeWithRetriesIsNotRelaunchedWhileTheExecutionStops) {
  runner_->SetTermBehavior("flaky", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("flaky", {}, R"("retries": 3)")}));
  Settle();
  auto stop = StopAsync(id);
  ASSERT_TRUE(RunUntil([&] { return runner_->Tree("flaky")->got_signal(SIGTERM); }));
  ASSERT_TRUE(runner_->Exit("flaky", 1));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  Settle();
  EXPECT_EQ(runner_->launches().size(), 1u) << "a stopping execution launches nothing";
  EXPECT_TRUE(EventsOf(id, journal::kind::kNodeRetryScheduled).empty());
  ASSERT_TRUE(stop->done->ok());
  EXPECT_EQ((*stop->done)->status, ExecutionState::kStopped);
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
}

TEST_F(LifecycleTest, UserStopAfterAFailureUnderContinueEndsStoppedAndCountsTheFailure) {
  std::string id =
      Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2, "onFailure": "continue")"));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 1));
  Settle();
  ASSERT_EQ(StateOf(id), ExecutionState::kRunning);
  auto stop = StopAndWait(id);
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  EXPECT_EQ((*stop.done)->status, ExecutionState::kStopped)
      << "the user's stop was not caused by the failure";
  EXPECT_EQ((*stop.done)->reason, StopReason::kUserAbort);
  EXPECT_EQ((*stop.done)->summary.nodes_failed, 1);
  EXPECT_EQ((*stop.done)->summary.nodes_completed, 0);
  EXPECT_EQ(NodeStatuses(id), (V{"a=failed", "b=stopped"}));
  EXPECT_EQ(StopRows(id)[0].nodes_failed, 1);
}

TEST_F(LifecycleTest, StopWhileAPauseIsStillFreezingStillStops) {
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
  Settle();
  runner_->Tree("b")->HoldNextFreeze();
  int pause_answers = 0;
  std::optional<Status> pause_status;
  manager_->Pause(id, lib_, [&](Result<ExecutionView> r) {
    ++pause_answers;
    pause_status = r.status();
  });
  Settle();
  ASSERT_EQ(pause_answers, 0);
  auto stop = StopAndWait(id);
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  EXPECT_EQ((*stop.done)->status, ExecutionState::kStopped);
  Settle();
  EXPECT_EQ(pause_answers, 1) << "the pause gets exactly one answer";
  // It never took effect: refused, and not in the journal (an acknowledged pause would be).
  EXPECT_EQ(pause_status->code(), StatusCode::kConflict) << pause_status->ToString();
  EXPECT_TRUE(EventsOf(id, journal::kind::kExecutionPaused).empty());
  EXPECT_TRUE(runner_->Tree("a")->finished());
  EXPECT_TRUE(runner_->Tree("b")->finished());
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
}

TEST_F(LifecycleTest, UnkillableTreeThatDiesLaterLeavesTheEndedExecutionAlone) {
  runner_->SetTermBehavior("dstate", TermBehavior::kUnkillable);
  std::string id = Create(Dag({Node("dstate")}));
  Settle();
  auto stop = StopAndWait(id, WithGrace(5));
  ASSERT_TRUE(stop.done->ok());
  ASSERT_EQ(StateOf(id), ExecutionState::kFailed);
  size_t events = Events(id).size();
  ASSERT_TRUE(runner_->KillBySignal("dstate", SIGKILL));  // the D state ends at last
  Settle();
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_EQ(EventsOf(id, journal::kind::kExecutionFailed).size(), 1u);
  EXPECT_EQ(manager_->stats().running_nodes, 0u);
  EXPECT_GE(Events(id).size(), events);
}

class CompletionOrderTest : public LifecycleTest, public ::testing::WithParamInterface<bool> {};

TEST_P(CompletionOrderTest, StopResultIsTheSameWhicheverCompletionComesFirst) {
  runner_->set_exit_before_report(GetParam());
  runner_->SetTermBehavior("stubborn", TermBehavior::kIgnoreTerm);
  std::string id = Create(
      Dag({Node("polite"), Node("stubborn"), Node("waiting", {"polite"})}, R"("maxParallel": 2)"));
  Settle();
  auto stop = StopAndWait(id, WithGrace(10));
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  const StopResult& result = **stop.done;
  EXPECT_EQ(result.status, ExecutionState::kStopped);
  EXPECT_EQ(result.nodes_killed, 1);
  EXPECT_EQ(result.summary.nodes_total, 3);
  EXPECT_EQ(result.summary.nodes_failed, 0);
  EXPECT_EQ(NodeStatuses(id), (V{"polite=stopped", "stubborn=stopped", "waiting=stopped"}));
  EXPECT_EQ(NodeOf(id, "stubborn").signal, "SIGKILL");
  EXPECT_EQ(NodeOf(id, "polite").signal, "SIGTERM");
  EXPECT_EQ(StopRows(id)[0].nodes_killed, 1);
  EXPECT_EQ(EventsOf(id, journal::kind::kNodeExited).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(BothOrders, CompletionOrderTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ExitFirst" : "ReportFirst";
                         });

TEST_F(LifecycleTest, StopAllWithNothingActiveAnswersAsynchronously) {
  bool done = false;
  manager_->StopAll(false, [&] { done = true; });
  EXPECT_FALSE(done) << "never inside the call";
  ASSERT_TRUE(RunUntil([&] { return done; }));
}

TEST_F(LifecycleTest, StopAllWaitsForAStopAlreadyUnderWay) {
  runner_->SetTermBehavior("slow", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("slow")}, R"("graceMs": 600000)"));
  Settle();
  auto stop = StopAsync(id);
  ASSERT_TRUE(RunUntil([&] { return stop->accepted_calls > 0; }));
  EXPECT_EQ(ExecutionRowOf(id)->status, "stopping");
  bool all_done = false;
  manager_->StopAll(false, [&] { all_done = true; });
  Settle();
  EXPECT_FALSE(all_done) << "slow has not ended yet";
  ASSERT_TRUE(runner_->KillBySignal("slow", SIGTERM));
  ASSERT_TRUE(RunUntil([&] { return all_done && stop->done.has_value(); }));
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
}

TEST_F(LifecycleTest, StoppedExecutionFreesItsSlotsUnderTheManagerCap) {
  ManagerOptions options;
  options.max_running = 2;
  MakeManager(options);
  std::string first = Create(Dag({Node("x1"), Node("x2")}, R"("maxParallel": 2)"));
  std::string second = Create(Dag({Node("y1"), Node("y2")}, R"("maxParallel": 2)"));
  Settle();
  ASSERT_TRUE(runner_->RunningNodes(second).empty());
  ASSERT_TRUE(StopAndWait(first).done->ok());
  Settle();
  EXPECT_EQ(runner_->RunningNodes(second), (V{"y1", "y2"}));
  runner_->Exit("y1", 0);
  runner_->Exit("y2", 0);
  ASSERT_TRUE(RunUntilEnded(second));
}

// Reads the file as an operator (or a restarted daemon) would.
std::vector<std::string> KindsOnDisk(const std::string& path, const std::string& id) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement query(db, "SELECT kind FROM journal WHERE execution_id = ? ORDER BY seq");
  query.bind(1, id);
  std::vector<std::string> kinds;
  while (query.executeStep()) kinds.push_back(query.getColumn(0).getString());
  return kinds;
}
bool Has(const std::vector<std::string>& kinds, std::string_view kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

TEST_F(LifecycleTest, EveryAcknowledgedRequestIsAlreadyInTheJournal) {
  const std::string path = journal_->path();
  auto created = manager_->Create(Dag({Node("a")}), lib_, /*start=*/false);
  ASSERT_TRUE(created.ok());
  std::string id = created->execution.id;
  EXPECT_TRUE(Has(KindsOnDisk(path, id), journal::kind::kExecutionCreated));
  ASSERT_TRUE(manager_->Start(id, lib_).ok());
  EXPECT_TRUE(Has(KindsOnDisk(path, id), journal::kind::kExecutionStarted));
  Settle();

  bool paused_on_disk = false, resumed_on_disk = false;
  std::optional<Result<StopResult>> stopped;
  bool stop_on_disk = false, accepted_on_disk = false;
  manager_->Pause(id, lib_, [&](Result<ExecutionView>) {
    paused_on_disk = Has(KindsOnDisk(path, id), journal::kind::kExecutionPaused);
  });
  ASSERT_TRUE(RunUntil([&] { return StateOf(id) == ExecutionState::kPaused; }));
  Settle();
  manager_->Resume(id, lib_, [&](Result<ExecutionView>) {
    resumed_on_disk = Has(KindsOnDisk(path, id), journal::kind::kExecutionResumed);
  });
  ASSERT_TRUE(RunUntil([&] { return StateOf(id) == ExecutionState::kRunning; }));
  Settle();
  manager_->Stop(
      id, StopRequest{},
      [&](Result<ExecutionView>) {
        accepted_on_disk = Has(KindsOnDisk(path, id), journal::kind::kExecutionStopRequested);
      },
      [&](Result<StopResult> result) {
        auto kinds = KindsOnDisk(path, id);
        stop_on_disk = Has(kinds, journal::kind::kExecutionStopCompleted) &&
                       Has(kinds, journal::kind::kExecutionStopped);
        stopped = std::move(result);
      });
  ASSERT_TRUE(RunUntil([&] { return stopped.has_value(); }));
  EXPECT_TRUE(paused_on_disk);
  EXPECT_TRUE(resumed_on_disk);
  EXPECT_TRUE(accepted_on_disk);
  EXPECT_TRUE(stop_on_disk) << "the StopResult was delivered before its record was committed";
}

TEST_F(LifecycleTest, UserStopDuringAnErrorStopJoinsItAndReportsTheFailure) {
  runner_->SetTermBehavior("sibling", TermBehavior::kHoldOnTerm);
  std::string id =
      Create(Dag({Node("broken"), Node("sibling")}, R"("maxParallel": 2, "graceMs": 600000)"));
  Settle();
  ASSERT_TRUE(runner_->Exit("broken", 1));
  ASSERT_TRUE(RunUntil([&] { return StateOf(id) == ExecutionState::kStopping; }));
  auto stop = StopAsync(id, StopRequest{});
  Settle();
  EXPECT_FALSE(stop->done.has_value());
  ASSERT_TRUE(runner_->KillBySignal("sibling", SIGTERM));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  ASSERT_TRUE(stop->done->ok()) << stop->done->status().ToString();
  EXPECT_EQ((*stop->done)->status, ExecutionState::kFailed);
  EXPECT_EQ((*stop->done)->reason, StopReason::kError);
  EXPECT_EQ((*stop->done)->summary.nodes_failed, 1);
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
}

}  // namespace
}  // namespace warden::lifecycle_test

// Timeouts, on real time (Asio timers), kept to tens of milliseconds: a node's timeoutMs
// fails that node (then retries and onFailure apply); the execution's timeoutMs stops it
// with reason `timeout`; paused time counts toward neither.
#include <signal.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

TEST_F(RealTimeLifecycleTest, NodeTimeoutFailsTheNodeAndStopsTheRestWithReasonError) {
  std::string id = Create(Dag({Node("slow", {}, R"("timeoutMs": 30, "graceMs": 7)"), Node("other"),
                               Node("after", {"slow"})},
                              R"("maxParallel": 2)"));
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunUntilEnded(id, 2000ms));
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 30ms);

  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_EQ(NodeStatuses(id), (V{"slow=failed", "other=stopped", "after=skipped"}));
  FakeProcessTree* slow = runner_->Tree("slow");
  ASSERT_NE(slow, nullptr);
  ASSERT_FALSE(slow->terminate_graces().empty()) << "a timed-out node is terminated";
  EXPECT_EQ(slow->terminate_graces()[0], 7ms) << "under its grace in force";
  auto timed_out = EventsOf(id, journal::kind::kNodeTimedOut, "slow");
  ASSERT_EQ(timed_out.size(), 1u);
  EXPECT_EQ(JsonText(timed_out[0].payload, "$.timeoutMs"), "30");
  EXPECT_EQ(timed_out[0].attempt, 1);
  bool why_timeout = false;
  for (const auto& event : EventsOf(id, journal::kind::kNodeSignalled, "slow")) {
    if (JsonText(event.payload, "$.why") == "timeout") why_timeout = true;
  }
  EXPECT_TRUE(why_timeout) << "node.signalled why=timeout";

  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].reason, "error");
  EXPECT_EQ(rows[0].status, "failed");
  EXPECT_EQ(rows[0].nodes_failed, 1) << "a timed-out node counts as failed";
}

TEST_F(RealTimeLifecycleTest, TimedOutNodeIsRetried) {
  std::string id = Create(Dag({Node("a", {}, R"("timeoutMs": 25, "retries": 1)")}));
  ASSERT_TRUE(RunUntil([&] { return runner_->launches().size() == 2; }, 2000ms));
  EXPECT_EQ(runner_->launches()[1].spec.cookie.attempt, 2);
  auto gap = runner_->launches()[1].real - runner_->launches()[0].real;
  EXPECT_GE(gap, 25ms);
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  NodeView a = NodeOf(id, "a");
  EXPECT_EQ(a.status, NodeStatus::kSucceeded);
  EXPECT_EQ(a.attempt, 2);
  EXPECT_EQ(EventsOf(id, journal::kind::kNodeTimedOut).size(), 1u);
}

TEST_F(RealTimeLifecycleTest, NodeThatEndsInTimeIsNotTimedOut) {
  std::string id = Create(Dag({Node("quick", {}, R"("timeoutMs": 40)")}));
  ASSERT_TRUE(runner_->Exit("quick", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  RunFor(80ms);  // past the timeout: a stale timer must not touch the finished node
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  EXPECT_TRUE(EventsOf(id, journal::kind::kNodeTimedOut).empty());
  EXPECT_EQ(runner_->terminate_calls(), 0);
}

TEST_F(RealTimeLifecycleTest, ExecutionTimeoutStopsItWithReasonTimeout) {
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}, R"("timeoutMs": 40, "graceMs": 5)"));
  ASSERT_TRUE(RunUntilEnded(id, 2000ms));
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
  EXPECT_EQ(NodeStatuses(id), (V{"a=stopped", "b=stopped"}));
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].reason, "timeout");
  EXPECT_EQ(rows[0].requested_by, "warden");
  EXPECT_EQ(rows[0].status, "stopped");
  EXPECT_GE(rows[0].duration_ms.value_or(0), 40);
  EXPECT_EQ(manager_->stats().stops_by_reason["timeout"], 1u);
  EXPECT_EQ(ExecutionRowOf(id)->status, "stopped");
}

TEST_F(RealTimeLifecycleTest, PausedTimeDoesNotCountTowardTheNodeTimeout) {
  std::string id = Create(Dag({Node("a", {}, R"("timeoutMs": 60)")}));
  ASSERT_TRUE(PauseAndWait(id).ok());
  RunFor(150ms);
  EXPECT_EQ(StateOf(id), ExecutionState::kPaused);
  EXPECT_TRUE(EventsOf(id, journal::kind::kNodeTimedOut).empty()) << "timed out while paused";
  EXPECT_EQ(runner_->terminate_calls(), 0);
  auto resumed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(ResumeAndWait(id).ok());
  ASSERT_TRUE(RunUntilEnded(id, 2000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - resumed_at, 40ms)
      << "most of the 60 ms were still ahead after the pause";
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_EQ(EventsOf(id, journal::kind::kNodeTimedOut).size(), 1u);
}

TEST_F(RealTimeLifecycleTest, PausedTimeDoesNotCountTowardTheExecutionTimeout) {
  std::string id = Create(Dag({Node("a")}, R"("timeoutMs": 60)"));
  ASSERT_TRUE(PauseAndWait(id).ok());
  RunFor(150ms);
  EXPECT_EQ(StateOf(id), ExecutionState::kPaused) << "stopped for a timeout while paused";
  EXPECT_TRUE(StopRows(id).empty());
  auto resumed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(ResumeAndWait(id).ok());
  ASSERT_TRUE(RunUntilEnded(id, 2000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - resumed_at, 40ms);
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].reason, "timeout");
}

TEST_F(RealTimeLifecycleTest, TimeoutOfATermIgnoringNodeEscalatesToSigkill) {
  runner_->SetTermBehavior("stuck", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("stuck", {}, R"("timeoutMs": 20, "graceMs": 20)")}));
  ASSERT_TRUE(RunUntilEnded(id, 2000ms));
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_TRUE(runner_->Tree("stuck")->got_signal(SIGKILL));
  NodeView stuck = NodeOf(id, "stuck");
  EXPECT_EQ(stuck.status, NodeStatus::kFailed);
  EXPECT_EQ(stuck.signal, "SIGKILL");
  EXPECT_EQ(manager_->stats().sigkill_escalations, 1u);
}

TEST_F(RealTimeLifecycleTest, ExecutionTimeoutCountsFromTheStartNotTheCreation) {
  std::string id = Create(Dag({Node("a")}, R"("timeoutMs": 60)"), /*start=*/false);
  RunFor(120ms);
  EXPECT_EQ(StateOf(id), ExecutionState::kIdle) << "an idle execution does not time out";
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(manager_->Start(id, lib_).ok());
  ASSERT_TRUE(RunUntilEnded(id, 2000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
  EXPECT_EQ(StopRows(id)[0].reason, "timeout");
}

TEST_F(RealTimeLifecycleTest, EachAttemptGetsItsOwnNodeTimeout) {
  std::string id = Create(Dag({Node("a", {}, R"("timeoutMs": 50, "retries": 1)")}));
  ASSERT_TRUE(RunUntil([&] { return runner_->launches().size() == 2; }, 2000ms));
  auto second_launch = runner_->launches()[1].real;
  ASSERT_TRUE(RunUntilEnded(id, 2000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - second_launch, 40ms)
      << "attempt 2 was timed out on attempt 1's clock";
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  auto timed_out = EventsOf(id, journal::kind::kNodeTimedOut, "a");
  ASSERT_EQ(timed_out.size(), 2u);
  EXPECT_EQ(timed_out[0].attempt, 1);
  EXPECT_EQ(timed_out[1].attempt, 2);
}

TEST_F(RealTimeLifecycleTest, NodeTimeoutDoesNotFireDuringAUserStop) {
  runner_->SetTermBehavior("slow", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("slow", {}, R"("timeoutMs": 40)")}, R"("graceMs": 600000)"));
  Settle();
  auto stop = StopAsync(id);
  ASSERT_TRUE(RunUntil([&] { return stop->accepted_calls > 0; }));
  RunFor(100ms);  // well past the node's timeout, still within the stop's grace
  EXPECT_TRUE(EventsOf(id, journal::kind::kNodeTimedOut).empty())
      << "the user already stopped this node";
  ASSERT_TRUE(runner_->KillBySignal("slow", SIGTERM));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  ASSERT_TRUE(stop->done->ok());
  EXPECT_EQ((*stop->done)->status, ExecutionState::kStopped);
  EXPECT_EQ((*stop->done)->summary.nodes_failed, 0);
  EXPECT_EQ(NodeStatusOf(id, "slow"), NodeStatus::kStopped);
}

TEST_F(RealTimeLifecycleTest, ExecutionTimeoutDoesNotStopAStoppingExecutionAgain) {
  runner_->SetTermBehavior("slow", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("slow")}, R"("timeoutMs": 40, "graceMs": 600000)"));
  Settle();
  auto stop = StopAsync(id);
  ASSERT_TRUE(RunUntil([&] { return stop->accepted_calls > 0; }));
  RunFor(100ms);
  EXPECT_EQ(StopRows(id).size(), 1u) << "one stop request, the user's";
  ASSERT_TRUE(runner_->KillBySignal("slow", SIGTERM));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  ASSERT_TRUE(stop->done->ok());
  EXPECT_EQ((*stop->done)->reason, StopReason::kUserAbort);
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].reason, "user_abort");
  EXPECT_EQ(manager_->stats().stops_by_reason["timeout"], 0u);
}

}  // namespace
}  // namespace warden::lifecycle_test

// Cost: costPerSecondUsd accrues over running, unpaused time; a node's reported
// `cost_usd=<cumulative total>` adds its last value; malformed lines are ignored and counted;
// finalCostUsd sums every attempt of every node, stopped ones included. On the ManualClock,
// so every figure is exact.
#include <signal.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

TEST_F(LifecycleTest, RateAccruesOnlyOverRunningUnpausedTime) {
  std::string id = Create(Dag({Node("a", {}, R"("costPerSecondUsd": 0.5)")}));
  Settle();
  manual_clock_.Advance(2000ms);
  EXPECT_NEAR(NodeOf(id, "a").cost_usd, 1.0, 1e-9) << "the running attempt, up to now";
  ASSERT_TRUE(PauseAndWait(id).ok());
  manual_clock_.Advance(10'000ms);
  EXPECT_NEAR(NodeOf(id, "a").cost_usd, 1.0, 1e-9) << "paused time is free";
  EXPECT_NEAR(View(id).cost_usd, 1.0, 1e-9);
  ASSERT_TRUE(ResumeAndWait(id).ok());
  manual_clock_.Advance(3000ms);
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));

  EXPECT_NEAR(NodeOf(id, "a").cost_usd, 2.5, 1e-9);
  EXPECT_NEAR(View(id).cost_usd, 2.5, 1e-9);
  auto exited = EventsOf(id, journal::kind::kNodeExited, "a");
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_NEAR(JsonNumber(exited[0].payload, "$.costUsd").value_or(-1), 2.5, 1e-9);
  EXPECT_EQ(JsonNumber(exited[0].payload, "$.durationMs"), 15'000);
  EXPECT_EQ(JsonNumber(exited[0].payload, "$.pausedMs"), 10'000);
  auto resumed = EventsOf(id, journal::kind::kExecutionResumed);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(JsonNumber(resumed[0].payload, "$.pausedMs"), 10'000);
  auto completed = EventsOf(id, journal::kind::kExecutionCompleted);
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_NEAR(JsonNumber(completed[0].payload, "$.costUsd").value_or(-1), 2.5, 1e-9);
  EXPECT_NEAR(ExecutionRowOf(id)->cost_usd.value_or(-1), 2.5, 1e-9);
}

TEST_F(LifecycleTest, ReportedCostIsTheLastCumulativeTotalPlusTheRate) {
  std::string id = Create(Dag({Node("agent", {}, R"("costPerSecondUsd": 0.01)")}));
  Settle();
  manual_clock_.Advance(1000ms);
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", "0.2"));
  Settle();
  EXPECT_NEAR(NodeOf(id, "agent").cost_usd, 0.21, 1e-9);
  manual_clock_.Advance(1000ms);
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", "0.5"));
  Settle();
  EXPECT_NEAR(NodeOf(id, "agent").cost_usd, 0.52, 1e-9) << "a cumulative total, not an increment";
  ASSERT_TRUE(runner_->Exit("agent", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_NEAR(View(id).cost_usd, 0.52, 1e-9);

  auto reported = EventsOf(id, journal::kind::kCostReported, "agent");
  ASSERT_EQ(reported.size(), 2u);
  EXPECT_NEAR(JsonNumber(reported[0].payload, "$.costUsd").value_or(-1), 0.2, 1e-9);
  EXPECT_NEAR(JsonNumber(reported[1].payload, "$.costUsd").value_or(-1), 0.5, 1e-9);
  EXPECT_EQ(reported[1].attempt, 1);
  EXPECT_NEAR(ExecutionRowOf(id)->cost_usd.value_or(-1), 0.52, 1e-9);
}

TEST_F(LifecycleTest, MalformedCostLinesAreIgnoredAndCounted) {
  std::string id = Create(Dag({Node("agent")}));
  Settle();
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", "0.25"));
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", "lots"));
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", ""));
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", "0.3 dollars"));
  Settle();
  EXPECT_EQ(manager_->stats().malformed_notify_lines, 3u);
  EXPECT_EQ(StateOf(id), ExecutionState::kRunning) << "never fatal";
  EXPECT_NEAR(NodeOf(id, "agent").cost_usd, 0.25, 1e-9) << "the last good total stands";
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", "0.75"));
  ASSERT_TRUE(runner_->Exit("agent", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  EXPECT_NEAR(View(id).cost_usd, 0.75, 1e-9);
  EXPECT_EQ(EventsOf(id, journal::kind::kCostReported).size(), 2u)
      << "only well-formed reports are journaled";
}

TEST_F(LifecycleTest, FinalCostIncludesThePartialCostOfStoppedNodes) {
  std::string id = Create(Dag(
      {Node("done", {}, R"("costPerSecondUsd": 1)"), Node("busy", {}, R"("costPerSecondUsd": 1)"),
       Node("never", {"done", "busy"}, R"("costPerSecondUsd": 1)")},
      R"("maxParallel": 2)"));
  Settle();
  manual_clock_.Advance(1000ms);
  ASSERT_TRUE(runner_->Exit("done", 0));
  Settle();
  manual_clock_.Advance(3000ms);
  ASSERT_TRUE(runner_->Notify("busy", "cost_usd", "0.25"));
  Settle();
  auto stop = StopAndWait(id);
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  // done: 1 s; busy: 4 s of rate plus its reported 0.25; never: nothing.
  EXPECT_NEAR((*stop.done)->final_cost_usd, 5.25, 1e-9);
  EXPECT_NEAR(NodeOf(id, "busy").cost_usd, 4.25, 1e-9);
  EXPECT_NEAR(NodeOf(id, "never").cost_usd, 0, 1e-9);
  EXPECT_NEAR(View(id).cost_usd, 5.25, 1e-9);
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NEAR(rows[0].final_cost_usd.value_or(-1), 5.25, 1e-9);
  EXPECT_NEAR(ExecutionRowOf(id)->cost_usd.value_or(-1), 5.25, 1e-9);
}

TEST_F(LifecycleTest, CostOfEveryAttemptIsSummed) {
  std::string id = Create(Dag({Node("flaky", {}, R"("retries": 1, "costPerSecondUsd": 1)")}));
  Settle();
  manual_clock_.Advance(2000ms);
  ASSERT_TRUE(runner_->Notify("flaky", "cost_usd", "0.5"));
  Settle();
  ASSERT_TRUE(runner_->Exit("flaky", 1));
  Settle();
  manual_clock_.Advance(3000ms);
  ASSERT_TRUE(runner_->Notify("flaky", "cost_usd", "0.125"));
  Settle();
  ASSERT_TRUE(runner_->Exit("flaky", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  // Attempt 1: 2 + 0.5; attempt 2: 3 + 0.125 (reports are per attempt).
  EXPECT_NEAR(NodeOf(id, "flaky").cost_usd, 5.625, 1e-9);
  EXPECT_NEAR(View(id).cost_usd, 5.625, 1e-9);
  auto exits = EventsOf(id, journal::kind::kNodeExited, "flaky");
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_NEAR(JsonNumber(exits[0].payload, "$.costUsd").value_or(-1), 2.5, 1e-9);
  EXPECT_NEAR(JsonNumber(exits[1].payload, "$.costUsd").value_or(-1), 3.125, 1e-9);
}

TEST_F(LifecycleTest, CostAcrossSeveralPausesOfAStoppedExecution) {
  std::string id = Create(Dag(
      {Node("a", {}, R"("costPerSecondUsd": 0.1)"), Node("b", {}, R"("costPerSecondUsd": 0.2)")},
      R"("maxParallel": 2)"));
  Settle();
  for (int round = 0; round < 3; ++round) {
    manual_clock_.Advance(1000ms);  // running
    ASSERT_TRUE(PauseAndWait(id).ok());
    manual_clock_.Advance(5000ms);  // paused
    ASSERT_TRUE(ResumeAndWait(id).ok());
  }
  manual_clock_.Advance(1000ms);
  ASSERT_TRUE(PauseAndWait(id).ok());
  manual_clock_.Advance(7000ms);
  auto stop = StopAndWait(id);  // stopped while paused: the pause after it is not billed
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  // 4 s of running time each: 0.4 + 0.8.
  EXPECT_NEAR((*stop.done)->final_cost_usd, 1.2, 1e-9);
  EXPECT_NEAR(NodeOf(id, "a").cost_usd, 0.4, 1e-9);
  EXPECT_NEAR(NodeOf(id, "b").cost_usd, 0.8, 1e-9);
  EXPECT_EQ((*stop.done)->summary.duration_ms, 4000 + 3 * 5000 + 7000)
      << "duration runs from start to stoppedAt, pauses included";
}

TEST_F(LifecycleTest, NonFiniteOrNegativeCostReportsAreMalformed) {
  // A total that is not a finite, non-negative number would make finalCostUsd meaningless
  // (or unprintable as JSON): such lines are ignored and counted like any malformed one.
  std::string id = Create(Dag({Node("agent")}));
  Settle();
  ASSERT_TRUE(runner_->Notify("agent", "cost_usd", "0.5"));
  for (const char* bad : {"nan", "inf", "-inf", "1e999", "-0.25"}) {
    ASSERT_TRUE(runner_->Notify("agent", "cost_usd", bad));
  }
  Settle();
  EXPECT_EQ(manager_->stats().malformed_notify_lines, 5u);
  EXPECT_NEAR(NodeOf(id, "agent").cost_usd, 0.5, 1e-9);
  ASSERT_TRUE(runner_->Exit("agent", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_NEAR(View(id).cost_usd, 0.5, 1e-9);
  EXPECT_NEAR(ExecutionRowOf(id)->cost_usd.value_or(-1), 0.5, 1e-9);
}

TEST_F(LifecycleTest, OtherNotifyKeysAreNotCostAndNeverFatal) {
  std::string id = Create(Dag({Node("agent", {}, R"("costPerSecondUsd": 1)")}));
  Settle();
  ASSERT_TRUE(runner_->Notify("agent", "progress", "50"));
  ASSERT_TRUE(runner_->Notify("agent", "status", "halfway there"));
  Settle();
  EXPECT_EQ(StateOf(id), ExecutionState::kRunning);
  EXPECT_NEAR(NodeOf(id, "agent").cost_usd, 0, 1e-9);
  EXPECT_TRUE(EventsOf(id, journal::kind::kCostReported).empty());
  ASSERT_TRUE(runner_->Exit("agent", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
}

TEST_F(LifecycleTest, CostKeepsAccruingDuringTheGraceOfAStop) {
  // A node handling SIGTERM is still running (and still billing) until it ends.
  runner_->SetTermBehavior("a", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("a", {}, R"("costPerSecondUsd": 1)")}, R"("graceMs": 600000)"));
  Settle();
  manual_clock_.Advance(2000ms);
  auto stop = StopAsync(id);
  ASSERT_TRUE(RunUntil([&] { return stop->accepted_calls > 0; }));
  manual_clock_.Advance(3000ms);
  ASSERT_TRUE(runner_->KillBySignal("a", SIGTERM));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  ASSERT_TRUE(stop->done->ok());
  EXPECT_NEAR((*stop->done)->final_cost_usd, 5.0, 1e-9);
  EXPECT_NEAR(NodeOf(id, "a").cost_usd, 5.0, 1e-9);
}

}  // namespace
}  // namespace warden::lifecycle_test

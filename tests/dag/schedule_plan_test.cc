#include "dag/schedule_plan.h"

#include <chrono>
#include <set>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_specs.h"

namespace warden::dag {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::LayeredSpec;
using testing::Node;
using testing::SharedDag;
using testing::Spec;

using Indices = std::vector<NodeIndex>;

// Expects `result` ok and returns its value.
Indices Ok(Result<Indices> result) {
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(*result) : Indices{};
}

TEST(SchedulePlanTest, NodeStateTableIsExactlyTheDocumentedMachine) {
  using S = NodeState;
  const std::set<std::pair<S, S>> allowed = {
      {S::kPending, S::kReady},  {S::kPending, S::kSkipped}, {S::kPending, S::kStopped},
      {S::kReady, S::kRunning},  {S::kReady, S::kStopped},   {S::kRunning, S::kSucceeded},
      {S::kRunning, S::kFailed}, {S::kRunning, S::kStopped}, {S::kRunning, S::kReady},
  };
  for (size_t from = 0; from < kNodeStateCount; ++from) {
    for (size_t to = 0; to < kNodeStateCount; ++to) {
      S f = static_cast<S>(from), t = static_cast<S>(to);
      EXPECT_EQ(NodeTransitionAllowed(f, t), allowed.count({f, t}) == 1)
          << NodeStateName(f) << " -> " << NodeStateName(t);
    }
  }
}

// Drives a plan through every kind of outcome (success, failure, retry, a stop) and checks
// that each node's state only ever changed along the table.
TEST(SchedulePlanTest, EveryStateChangeOfARunFollowsTheTable) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    ExecutionSpec spec = LayeredSpec(4, 6, 3);
    for (auto& node : spec.nodes) node.retries = 1;
    auto dag = SharedDag(spec);
    SchedulePlan plan(dag);
    std::vector<NodeState> before(dag->node_count());
    auto snapshot = [&] {
      for (NodeIndex i = 0; i < dag->node_count(); ++i) before[i] = plan.state(i);
    };
    auto check = [&](const char* call) {
      for (NodeIndex i = 0; i < dag->node_count(); ++i) {
        if (plan.state(i) == before[i]) continue;
        EXPECT_TRUE(NodeTransitionAllowed(before[i], plan.state(i)))
            << call << ": node " << i << " " << NodeStateName(before[i]) << " -> "
            << NodeStateName(plan.state(i));
      }
    };
    uint32_t rng = seed;
    auto next = [&] { return rng = rng * 1103515245u + 12345u, (rng >> 16) % 100; };
    for (int step = 0; step < 1000 && !plan.IsFinished(); ++step) {
      snapshot();
      Indices running = plan.TakeReady();
      check("TakeReady");
      for (NodeIndex i : running) {
        snapshot();
        uint32_t roll = next();
        if (roll < 70) {
          ASSERT_TRUE(plan.MarkSucceeded(i).ok());
        } else if (roll < 85 && plan.HasRetriesLeft(i) && !plan.stopping()) {
          ASSERT_TRUE(plan.MarkRetry(i).ok());
        } else if (roll < 97) {
          ASSERT_TRUE(plan.MarkFailed(i).ok());
        } else {
          ASSERT_TRUE(plan.MarkStopped(i).ok());
          snapshot();
          plan.StopPending();
          check("StopPending");
          continue;
        }
        check("Mark*");
      }
    }
    EXPECT_TRUE(plan.IsFinished()) << "seed " << seed;
  }
}

TEST(SchedulePlanTest, ChainRunsOneNodeAtATimeInOrder) {
  auto dag = SharedDag(Spec({Node("a"), Node("b", {"a"}), Node("c", {"b"})}, 8));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0));
  EXPECT_THAT(plan.TakeReady(), IsEmpty());
  EXPECT_THAT(Ok(plan.MarkSucceeded(0)), ElementsAre(1));
  EXPECT_THAT(plan.TakeReady(), ElementsAre(1));
  EXPECT_THAT(Ok(plan.MarkSucceeded(1)), ElementsAre(2));
  EXPECT_THAT(plan.TakeReady(), ElementsAre(2));
  EXPECT_FALSE(plan.IsFinished());
  EXPECT_THAT(Ok(plan.MarkSucceeded(2)), IsEmpty());
  EXPECT_TRUE(plan.IsFinished());
  EXPECT_TRUE(plan.AllSucceeded());
}

TEST(SchedulePlanTest, IndependentNodesStartInSpecOrderUpToMaxParallel) {
  auto dag = SharedDag(Spec({Node("a"), Node("b"), Node("c"), Node("d"), Node("e")}, 2));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0, 1));
  EXPECT_EQ(plan.free_slots(), 0u);
  EXPECT_THAT(plan.TakeReady(), IsEmpty());
  ASSERT_TRUE(plan.MarkSucceeded(1).ok());
  EXPECT_THAT(plan.TakeReady(), ElementsAre(2));
  ASSERT_TRUE(plan.MarkSucceeded(0).ok());
  ASSERT_TRUE(plan.MarkSucceeded(2).ok());
  EXPECT_THAT(plan.TakeReady(), ElementsAre(3, 4));
}

TEST(SchedulePlanTest, CallerLimitCapsTakeReadyBelowMaxParallel) {
  auto dag = SharedDag(Spec({Node("a"), Node("b"), Node("c")}, 3));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(1), ElementsAre(0));
  EXPECT_THAT(plan.TakeReady(0), IsEmpty());
  EXPECT_THAT(plan.TakeReady(5), ElementsAre(1, 2));
  EXPECT_EQ(plan.count(NodeState::kRunning), 3u);
}

TEST(SchedulePlanTest, DiamondJoinStartsOnlyAfterBothBranchesSucceed) {
  auto dag =
      SharedDag(Spec({Node("a"), Node("b", {"a"}), Node("c", {"a"}), Node("d", {"b", "c"})}));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0));
  EXPECT_THAT(Ok(plan.MarkSucceeded(0)), ElementsAre(1, 2));
  EXPECT_THAT(plan.TakeReady(), ElementsAre(1, 2));
  EXPECT_THAT(Ok(plan.MarkSucceeded(2)), IsEmpty());
  EXPECT_EQ(plan.state(3), NodeState::kPending);
  EXPECT_THAT(Ok(plan.MarkSucceeded(1)), ElementsAre(3));
  EXPECT_THAT(plan.TakeReady(), ElementsAre(3));
}

TEST(SchedulePlanTest, NodeStartsAsSoonAsItsOwnNeedsSucceedNotInWaves) {
  // "slow" is still running when "after_fast" becomes ready.
  auto dag = SharedDag(Spec(
      {Node("fast"), Node("slow"), Node("after_fast", {"fast"}), Node("after_slow", {"slow"})}));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0, 1));
  ASSERT_TRUE(plan.MarkSucceeded(0).ok());
  EXPECT_THAT(plan.TakeReady(), ElementsAre(2));
  EXPECT_EQ(plan.state(1), NodeState::kRunning);
}

TEST(SchedulePlanTest, ReadyNodesAreHandedOutInTheOrderTheyBecameReady) {
  auto dag =
      SharedDag(Spec({Node("a"), Node("b"), Node("after_b", {"b"}), Node("after_a", {"a"})}, 2));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0, 1));
  ASSERT_TRUE(plan.MarkSucceeded(1).ok());  // after_b ready first
  ASSERT_TRUE(plan.MarkSucceeded(0).ok());
  EXPECT_THAT(plan.TakeReady(1), ElementsAre(2));
  EXPECT_THAT(plan.TakeReady(1), ElementsAre(3));
}

TEST(SchedulePlanTest, FailureWithContinueSkipsOnlyTransitiveDependents) {
  auto dag = SharedDag(Spec({Node("bad"), Node("child", {"bad"}), Node("grandchild", {"child"}),
                             Node("other"), Node("join", {"other", "grandchild"})},
                            8, OnFailure::kContinue));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0, 3));
  EXPECT_THAT(Ok(plan.MarkFailed(0)), ElementsAre(1, 2, 4));
  EXPECT_EQ(plan.state(4), NodeState::kSkipped);
  EXPECT_EQ(plan.state(3), NodeState::kRunning);
  EXPECT_FALSE(plan.IsFinished());
  EXPECT_THAT(Ok(plan.MarkSucceeded(3)), IsEmpty());  // its dependent was skipped
  EXPECT_TRUE(plan.IsFinished());
  EXPECT_FALSE(plan.AllSucceeded());
  EXPECT_EQ(plan.count(NodeState::kFailed), 1u);
  EXPECT_EQ(plan.count(NodeState::kSkipped), 3u);
  EXPECT_EQ(plan.count(NodeState::kSucceeded), 1u);
}

TEST(SchedulePlanTest, FailureWithStopSkipsDependentsThenStopsEverythingElsePending) {
  auto dag = SharedDag(Spec({Node("bad"), Node("child", {"bad"}), Node("busy"), Node("waiting"),
                             Node("after_busy", {"busy"})},
                            2, OnFailure::kStop));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0, 2));
  EXPECT_THAT(Ok(plan.MarkFailed(0)), ElementsAre(1));
  EXPECT_THAT(plan.StopPending(), ElementsAre(3, 4));  // ready "waiting", pending "after_busy"
  EXPECT_TRUE(plan.stopping());
  EXPECT_THAT(plan.TakeReady(), IsEmpty());
  EXPECT_FALSE(plan.IsFinished());  // "busy" is still the caller's to end
  EXPECT_THAT(Ok(plan.MarkStopped(2)), IsEmpty());
  EXPECT_TRUE(plan.IsFinished());
  EXPECT_EQ(plan.count(NodeState::kStopped), 3u);
  EXPECT_EQ(plan.count(NodeState::kSkipped), 1u);
  EXPECT_EQ(plan.count(NodeState::kFailed), 1u);
  EXPECT_THAT(plan.StopPending(), IsEmpty());  // idempotent
}

TEST(SchedulePlanTest, RunningNodeThatSucceedsDuringAStopReadiesNothing) {
  auto dag = SharedDag(Spec({Node("a"), Node("b", {"a"})}));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0));
  EXPECT_THAT(plan.StopPending(), ElementsAre(1));
  EXPECT_THAT(Ok(plan.MarkSucceeded(0)), IsEmpty());
  EXPECT_EQ(plan.state(1), NodeState::kStopped);
  EXPECT_TRUE(plan.IsFinished());
}

TEST(SchedulePlanTest, MarkStoppedStopsPendingDependentsWithoutAGlobalStop) {
  auto dag = SharedDag(Spec({Node("a"), Node("b", {"a"}), Node("c", {"b"}), Node("d")}));
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0, 3));
  EXPECT_THAT(Ok(plan.MarkStopped(0)), ElementsAre(1, 2));
  EXPECT_EQ(plan.state(3), NodeState::kRunning);
  EXPECT_FALSE(plan.stopping());
}

TEST(SchedulePlanTest, RetryQueuesBehindReadyNodesAndCountsAttemptsFromOne) {
  ExecutionSpec spec = Spec({Node("flaky"), Node("x"), Node("y")}, 2);
  spec.nodes[0].retries = 1;
  auto dag = SharedDag(spec);
  SchedulePlan plan(dag);
  EXPECT_EQ(plan.attempt(0), 0u);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0, 1));
  EXPECT_EQ(plan.attempt(0), 1u);
  EXPECT_TRUE(plan.HasRetriesLeft(0));
  ASSERT_TRUE(plan.MarkRetry(0).ok());
  EXPECT_EQ(plan.state(0), NodeState::kReady);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(2));  // "y" was ready before the retry
  ASSERT_TRUE(plan.MarkSucceeded(1).ok());
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0));
  EXPECT_EQ(plan.attempt(0), 2u);
  EXPECT_FALSE(plan.HasRetriesLeft(0));
  Status refused = plan.MarkRetry(0);
  EXPECT_EQ(refused.code(), StatusCode::kInternal);
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("no retries left"));
  EXPECT_THAT(Ok(plan.MarkFailed(0)), IsEmpty());
}

TEST(SchedulePlanTest, ResumedPlanKeepsSucceededNodesAndGivesTheRestNewAttempts) {
  // a -> b -> c, and d alone: a succeeded and b was interrupted (attempt 2 of 1 retry).
  ExecutionSpec spec = Spec({Node("a"), Node("b", {"a"}), Node("c", {"b"}), Node("d")}, 4);
  spec.nodes[1].retries = 1;
  SchedulePlan plan(SharedDag(spec));
  ASSERT_TRUE(plan.Resume({true, false, false, false}, {1, 2, 0, 0}).ok());
  EXPECT_EQ(plan.state(0), NodeState::kSucceeded);
  EXPECT_EQ(plan.state(2), NodeState::kPending);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(3, 1)) << "d was ready first; b once a succeeded";
  EXPECT_EQ(plan.attempt(1), 3u) << "the rerun is a new attempt";
  EXPECT_TRUE(plan.HasRetriesLeft(1)) << "attempts before the crash use up no retries";
  ASSERT_TRUE(plan.MarkRetry(1).ok());
  EXPECT_THAT(plan.TakeReady(), ElementsAre(1));
  EXPECT_FALSE(plan.HasRetriesLeft(1));
  EXPECT_THAT(Ok(plan.MarkSucceeded(1)), ElementsAre(2));
}

TEST(SchedulePlanTest, ResumeRefusesASucceededNodeWhoseNeedDidNotSucceed) {
  SchedulePlan plan(SharedDag(Spec({Node("a"), Node("b", {"a"})}, 2)));
  Status refused = plan.Resume({false, true}, {1, 1});
  EXPECT_EQ(refused.code(), StatusCode::kInternal);
  SchedulePlan used(SharedDag(Spec({Node("a")}, 1)));
  (void)used.TakeReady();
  EXPECT_EQ(used.Resume({false}, {1}).code(), StatusCode::kInternal) << "only a fresh plan";
}

TEST(SchedulePlanTest, RetryAfterStopIsRefused) {
  ExecutionSpec spec = Spec({Node("flaky")});
  spec.nodes[0].retries = 3;
  auto dag = SharedDag(spec);
  SchedulePlan plan(dag);
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0));
  plan.StopPending();
  EXPECT_EQ(plan.MarkRetry(0).code(), StatusCode::kInternal);
  EXPECT_EQ(plan.state(0), NodeState::kRunning);
}

TEST(SchedulePlanTest, ReportingANodeThatIsNotRunningIsAnInternalError) {
  auto dag = SharedDag(Spec({Node("a"), Node("b", {"a"})}));
  SchedulePlan plan(dag);
  Result<Indices> pending = plan.MarkSucceeded(1);
  ASSERT_FALSE(pending.ok());
  EXPECT_EQ(pending.status().code(), StatusCode::kInternal);
  EXPECT_EQ(pending.status().message(), "MarkSucceeded: node \"b\" is pending, not running");
  EXPECT_EQ(plan.MarkFailed(7).status().message(), "MarkFailed: no node 7");
  EXPECT_THAT(plan.TakeReady(), ElementsAre(0));
  ASSERT_TRUE(plan.MarkSucceeded(0).ok());
  EXPECT_FALSE(plan.MarkSucceeded(0).ok());  // a second report of the same end
  EXPECT_EQ(plan.state(1), NodeState::kReady);
}

TEST(SchedulePlanTest, CountsCoverEveryNodeInExactlyOneState) {
  auto dag = SharedDag(Spec({Node("a"), Node("b", {"a"}), Node("c")}, 1));
  SchedulePlan plan(dag);
  EXPECT_EQ(plan.count(NodeState::kReady), 2u);
  EXPECT_EQ(plan.count(NodeState::kPending), 1u);
  plan.TakeReady();
  EXPECT_EQ(plan.count(NodeState::kRunning), 1u);
  EXPECT_EQ(plan.count(NodeState::kReady), 1u);
  EXPECT_EQ(NodeStateName(NodeState::kSkipped), "skipped");
  EXPECT_TRUE(IsTerminal(NodeState::kStopped));
  EXPECT_FALSE(IsTerminal(NodeState::kReady));
}

// The scale case: 10 layers of 100, each node needing all of the previous layer.
TEST(SchedulePlanTest, LayeredTenByHundredRunsToCompletionVisitingEachEdgeOnce) {
  auto dag = SharedDag(LayeredSpec(10, 100, 16));
  ASSERT_EQ(dag->edge_count(), 90'000u);
  SchedulePlan plan(dag);
  auto started = std::chrono::steady_clock::now();
  std::vector<int> succeeded_per_layer(10, 0);
  size_t max_running = 0;
  while (!plan.IsFinished()) {
    Indices batch = plan.TakeReady();
    ASSERT_FALSE(batch.empty()) << "stalled with nothing running";
    max_running = std::max(max_running, plan.count(NodeState::kRunning));
    for (NodeIndex i : batch) {
      int layer = static_cast<int>(i / 100);
      if (layer > 0) {
        ASSERT_EQ(succeeded_per_layer[layer - 1], 100) << "node " << i;
      }
      ASSERT_TRUE(plan.MarkSucceeded(i).ok());
      ++succeeded_per_layer[layer];
    }
  }
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(plan.AllSucceeded());
  EXPECT_EQ(max_running, 16u);
  // Linear work: every edge walked exactly once over the whole run, never rescanned.
  EXPECT_EQ(plan.edge_visits(), dag->edge_count());
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(SchedulePlanTest, FailureInFirstLayerSkipsTheRestVisitingEachEdgeAtMostOnce) {
  ExecutionSpec spec = LayeredSpec(10, 100, 1000);
  spec.on_failure = OnFailure::kContinue;
  auto dag = SharedDag(spec);
  SchedulePlan plan(dag);
  Indices first = plan.TakeReady();
  ASSERT_EQ(first.size(), 100u);
  EXPECT_EQ(Ok(plan.MarkFailed(0)).size(), 900u);
  for (NodeIndex i = 1; i < 100; ++i) EXPECT_THAT(Ok(plan.MarkSucceeded(i)), IsEmpty());
  EXPECT_TRUE(plan.IsFinished());
  EXPECT_LE(plan.edge_visits(), dag->edge_count());
}

}  // namespace
}  // namespace warden::dag

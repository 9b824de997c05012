// Order and parallelism: a node starts the moment its needs have succeeded, under the
// execution's maxParallel and the manager's max_running; retries; launch failures; onFailure.
#include <signal.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

TEST_F(LifecycleTest, DiamondStartsTheJoinOnlyAfterBothBranchesSucceed) {
  std::string id =
      Create(Dag({Node("a"), Node("b", {"a"}), Node("c", {"a"}), Node("d", {"b", "c"})},
                 R"("maxParallel": 4)"));
  Settle();
  EXPECT_EQ(runner_->LaunchOrder(), V{"a"});
  EXPECT_EQ(NodeStatuses(id), (V{"a=running", "b=pending", "c=pending", "d=pending"}));

  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"b", "c"})) << "both branches start together";

  ASSERT_TRUE(runner_->Exit("c", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"b"}) << "d still needs b";
  EXPECT_EQ(NodeStatuses(id), (V{"a=succeeded", "b=running", "c=succeeded", "d=pending"}));

  ASSERT_TRUE(runner_->Exit("b", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"d"});
  ASSERT_TRUE(runner_->Exit("d", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  EXPECT_EQ(NodeStatuses(id), (V{"a=succeeded", "b=succeeded", "c=succeeded", "d=succeeded"}));
  EXPECT_EQ(runner_->LaunchOrder(), (V{"a", "b", "c", "d"}));
}

TEST_F(LifecycleTest, ChainRunsOneNodeAtATimeInOrder) {
  std::string id =
      Create(Dag({Node("c", {"b"}), Node("a"), Node("b", {"a"})}, R"("maxParallel": 8)"));
  for (const char* node : {"a", "b", "c"}) {
    Settle();
    EXPECT_EQ(runner_->RunningNodes(), V{node});
    ASSERT_TRUE(runner_->Exit(node, 0)) << node;
  }
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  EXPECT_EQ(runner_->LaunchOrder(), (V{"a", "b", "c"}));
  EXPECT_EQ(runner_->max_running_seen(), 1u);
}

TEST_F(LifecycleTest, IndependentNodesRunUnderMaxParallelInSpecOrder) {
  std::string id = Create(
      Dag({Node("n1"), Node("n2"), Node("n3"), Node("n4"), Node("n5")}, R"("maxParallel": 2)"));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"n1", "n2"}));
  EXPECT_EQ(NodeStatuses(id),
            (V{"n1=running", "n2=running", "n3=pending", "n4=pending", "n5=pending"}));

  // A slot frees up the moment a node ends, whichever it is.
  ASSERT_TRUE(runner_->Exit("n2", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"n1", "n3"}));
  ASSERT_TRUE(runner_->Exit("n1", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"n3", "n4"}));
  ASSERT_TRUE(runner_->Exit("n3", 0));
  ASSERT_TRUE(runner_->Exit("n4", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"n5"});
  ASSERT_TRUE(runner_->Exit("n5", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  EXPECT_EQ(runner_->LaunchOrder(), (V{"n1", "n2", "n3", "n4", "n5"}));
  EXPECT_EQ(runner_->max_running_seen(), 2u);
}

TEST_F(LifecycleTest, NodeStartsTheMomentItsNeedsSucceedNotInWaves) {
  // Two layers; b1 needs only a1, so it must not wait for a2 (its "layer-mate").
  std::string id = Create(
      Dag({Node("a1"), Node("a2"), Node("b1", {"a1"}), Node("b2", {"a2"})}, R"("maxParallel": 4)"));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"a1", "a2"}));
  ASSERT_TRUE(runner_->Exit("a1", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"a2", "b1"}));
  EXPECT_EQ(NodeStatusOf(id, "b1"), NodeStatus::kRunning);
  ASSERT_TRUE(runner_->Exit("b1", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"a2"});
  ASSERT_TRUE(runner_->Exit("a2", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"b2"});
  ASSERT_TRUE(runner_->Exit("b2", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
}

TEST_F(LifecycleTest, ManagerWideCapHoldsAcrossTwoExecutions) {
  ManagerOptions options;
  options.max_running = 3;
  MakeManager(options);
  std::string first = Create(Dag({Node("x1"), Node("x2"), Node("x3")}, R"("maxParallel": 3)"));
  std::string second = Create(Dag({Node("y1"), Node("y2"), Node("y3")}, R"("maxParallel": 3)"));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(first), (V{"x1", "x2", "x3"}));
  EXPECT_TRUE(runner_->RunningNodes(second).empty()) << "the cap is full";
  EXPECT_EQ(StateOf(second), ExecutionState::kRunning);
  EXPECT_EQ(NodeStatuses(second), (V{"y1=pending", "y2=pending", "y3=pending"}));
  EXPECT_EQ(manager_->stats().running_nodes, 3u);

  // Each end frees exactly one slot, whichever execution takes it.
  for (const char* node : {"x1", "x2", "x3"}) {
    ASSERT_TRUE(runner_->Exit(node, 0)) << node;
    Settle();
    EXPECT_EQ(runner_->running_count(), 3u) << "after " << node << " ended";
  }
  EXPECT_EQ(runner_->RunningNodes(second), (V{"y1", "y2", "y3"}));
  for (const char* node : {"y1", "y2", "y3"}) ASSERT_TRUE(runner_->Exit(node, 0)) << node;
  ASSERT_TRUE(RunUntilEnded(first));
  ASSERT_TRUE(RunUntilEnded(second));
  EXPECT_EQ(StateOf(first), ExecutionState::kCompleted);
  EXPECT_EQ(StateOf(second), ExecutionState::kCompleted);
  EXPECT_EQ(runner_->max_running_seen(), 3u);
  EXPECT_EQ(manager_->stats().running_nodes, 0u);
}

TEST_F(LifecycleTest, EveryLaunchCarriesArgvCwdEnvCookieAndOutputFiles) {
  ManagerOptions options;
  options.log_dir = dir_.File("logs");
  options.output_cap_bytes = 12345;
  MakeManager(options);
  std::string id = Create(Dag({R"({"id": "extract", "argv": ["python3", "extract.py", "--all"],
                                   "cwd": "/srv/etl", "env": {"MODE": "full"}})"}));
  Settle();
  ASSERT_EQ(runner_->launches().size(), 1u);
  const process::LaunchSpec& spec = runner_->launches()[0].spec;
  EXPECT_EQ(spec.argv, (V{"python3", "extract.py", "--all"}));
  EXPECT_EQ(spec.cwd, "/srv/etl");
  EXPECT_EQ(spec.env.at("MODE"), "full");
  EXPECT_EQ(spec.cookie.execution_id, id);
  EXPECT_EQ(spec.cookie.node_id, "extract");
  EXPECT_EQ(spec.cookie.attempt, 1);
  std::string base = dir_.File("logs") + "/" + id + "/extract.1";
  EXPECT_EQ(spec.output.stdout_path.string(), base + ".stdout");
  EXPECT_EQ(spec.output.stderr_path.string(), base + ".stderr");
  EXPECT_EQ(spec.output.cap_bytes, 12345u);

  auto out = manager_->OutputPath(id, "extract", /*stderr_stream=*/false);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, base + ".stdout");
  auto err = manager_->OutputPath(id, "extract", /*stderr_stream=*/true);
  ASSERT_TRUE(err.ok()) << err.status().ToString();
  EXPECT_EQ(*err, base + ".stderr");
  EXPECT_EQ(manager_->OutputPath(id, "nope", false).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(manager_->OutputPath("nope", "extract", false).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(runner_->Exit("extract", 0));
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(LifecycleTest, OutputPathOfNodeThatNeverRanIsNotFound) {
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}));
  Settle();
  EXPECT_EQ(manager_->OutputPath(id, "b", false).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(runner_->Exit("a", 0));
  Settle();
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(LifecycleTest, RetriesRelaunchWithAttemptNumbersFromOne) {
  std::string id = Create(Dag({Node("flaky", {}, R"("retries": 2)"), Node("after", {"flaky"})}));
  Settle();
  ASSERT_TRUE(runner_->Exit("flaky", 1));
  Settle();
  EXPECT_EQ(NodeOf(id, "flaky").attempt, 2);
  EXPECT_EQ(NodeStatusOf(id, "flaky"), NodeStatus::kRunning);
  EXPECT_EQ(NodeStatusOf(id, "after"), NodeStatus::kPending);
  ASSERT_TRUE(runner_->KillBySignal("flaky", SIGSEGV));
  Settle();
  ASSERT_TRUE(runner_->Exit("flaky", 0));
  Settle();
  ASSERT_TRUE(runner_->Exit("after", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);

  EXPECT_EQ(runner_->LaunchOrder(), (V{"flaky", "flaky", "flaky", "after"}));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const process::LaunchSpec& spec = runner_->launches()[attempt - 1].spec;
    EXPECT_EQ(spec.cookie.attempt, attempt);
    // The runner adds the cookie to the environment; if the manager adds it too, it agrees.
    if (auto env = spec.env.find("WARDEN_ATTEMPT"); env != spec.env.end()) {
      EXPECT_EQ(env->second, std::to_string(attempt));
    }
  }
  NodeView flaky = NodeOf(id, "flaky");
  EXPECT_EQ(flaky.status, NodeStatus::kSucceeded);
  EXPECT_EQ(flaky.attempt, 3);
  EXPECT_EQ(flaky.exit_code, 0);
  EXPECT_FALSE(flaky.signal.has_value());

  auto retries = EventsOf(id, journal::kind::kNodeRetryScheduled, "flaky");
  ASSERT_EQ(retries.size(), 2u);
  EXPECT_EQ(retries[0].attempt, 1);
  EXPECT_EQ(JsonText(retries[0].payload, "$.nextAttempt"), "2");
  EXPECT_EQ(retries[1].attempt, 2);
  EXPECT_EQ(JsonText(retries[1].payload, "$.nextAttempt"), "3");
  auto exits = EventsOf(id, journal::kind::kNodeExited, "flaky");
  ASSERT_EQ(exits.size(), 3u);
  EXPECT_EQ(JsonText(exits[0].payload, "$.exitCode"), "1");
  EXPECT_EQ(JsonType(exits[1].payload, "$.exitCode"), "null");
  EXPECT_EQ(JsonText(exits[1].payload, "$.signal"), "SIGSEGV");
  EXPECT_EQ(JsonText(exits[2].payload, "$.exitCode"), "0");
  auto intents = EventsOf(id, journal::kind::kNodeIntent, "flaky");
  ASSERT_EQ(intents.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(intents[i].attempt, i + 1);
    // schema/README.md: `cookie` holds "the WARDEN_* values"; either spelling of the key.
    auto attempt = JsonText(intents[i].payload, "$.cookie.WARDEN_ATTEMPT");
    if (!attempt) attempt = JsonText(intents[i].payload, "$.cookie.attempt");
    EXPECT_EQ(attempt, std::to_string(i + 1)) << intents[i].payload;
  }
}

TEST_F(LifecycleTest, NodeFailsForGoodOnceItsRetriesAreSpent) {
  std::string id = Create(Dag({Node("a", {}, R"("retries": 1)")}));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 3));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 4));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  NodeView a = NodeOf(id, "a");
  EXPECT_EQ(a.status, NodeStatus::kFailed);
  EXPECT_EQ(a.attempt, 2);
  EXPECT_EQ(a.exit_code, 4);
  EXPECT_EQ(runner_->launches().size(), 2u);
  EXPECT_EQ(EventsOf(id, journal::kind::kNodeRetryScheduled, "a").size(), 1u);
}

TEST_F(LifecycleTest, ExecutableNotFoundFailsTheNodeWithExitCode127) {
  runner_->FailLaunches("a", Status::NotFound("no such file: frobnicate"));
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  NodeView a = NodeOf(id, "a");
  EXPECT_EQ(a.status, NodeStatus::kFailed);
  EXPECT_EQ(a.exit_code, 127);
  EXPECT_FALSE(a.signal.has_value());
  EXPECT_EQ(NodeStatusOf(id, "b"), NodeStatus::kSkipped);
  auto failed = EventsOf(id, journal::kind::kNodeLaunchFailed, "a");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].attempt, 1);
  EXPECT_EQ(JsonText(failed[0].payload, "$.exitCode"), "127");
  EXPECT_NE(JsonText(failed[0].payload, "$.error").value_or("").find("frobnicate"),
            std::string::npos)
      << failed[0].payload;
  EXPECT_EQ(runner_->LaunchOrder(), V{"a"});
}

TEST_F(LifecycleTest, ExecutableThatCannotRunFailsTheNodeWithExitCode126) {
  runner_->FailLaunches("a", Status::InvalidArgument("permission denied"));
  std::string id = Create(Dag({Node("a")}));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_EQ(NodeOf(id, "a").exit_code, 126);
  auto failed = EventsOf(id, journal::kind::kNodeLaunchFailed, "a");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(JsonText(failed[0].payload, "$.exitCode"), "126");
}

TEST_F(LifecycleTest, FailedLaunchIsRetriedLikeAFailedRun) {
  runner_->FailLaunches("a", Status::NotFound("not yet installed"), /*times=*/1);
  std::string id = Create(Dag({Node("a", {}, R"("retries": 1)")}));
  ASSERT_TRUE(RunUntil([&] { return runner_->RunningNodes() == V{"a"}; }));
  EXPECT_EQ(runner_->launches()[1].spec.cookie.attempt, 2);
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
}

TEST_F(LifecycleTest, OnFailureStopStopsTheRestSkipsDependentsAndFails) {
  std::string id = Create(Dag({Node("a"), Node("b"), Node("c", {"a"}), Node("d", {"b"}), Node("e")},
                              R"("maxParallel": 2, "onFailure": "stop")"));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"a", "b"}));
  ASSERT_TRUE(runner_->Exit("a", 2));
  ASSERT_TRUE(RunUntilEnded(id));

  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_TRUE(runner_->Tree("b")->got_signal(SIGTERM)) << "the running sibling is stopped";
  EXPECT_EQ(runner_->LaunchOrder(), (V{"a", "b"})) << "nothing new starts after the failure";
  EXPECT_EQ(NodeStatuses(id), (V{"a=failed", "b=stopped", "c=skipped", "d=stopped", "e=stopped"}));
  EXPECT_EQ(NodeOf(id, "a").exit_code, 2);

  auto skipped = EventsOf(id, journal::kind::kNodeSkipped, "c");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(JsonText(skipped[0].payload, "$.because"), "a");
  for (const char* node : {"d", "e"}) {
    auto stopped = EventsOf(id, journal::kind::kNodeStopped, node);
    ASSERT_EQ(stopped.size(), 1u) << node;
    EXPECT_EQ(JsonText(stopped[0].payload, "$.reason"), "error") << node;
  }
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].reason, "error");
  EXPECT_EQ(rows[0].requested_by, "warden");
  EXPECT_EQ(rows[0].status, "failed");
  EXPECT_EQ(rows[0].nodes_failed, 1);
  EXPECT_EQ(rows[0].nodes_completed, 0);
  EXPECT_EQ(rows[0].nodes_total, 5);
  EXPECT_EQ(rows[0].nodes_killed, 0);
  EXPECT_TRUE(rows[0].completed_at.has_value());
  EXPECT_EQ(ExecutionRowOf(id)->status, "failed");
  EXPECT_EQ(manager_->stats().stops_by_reason["error"], 1u);
}

TEST_F(LifecycleTest, OnFailureContinueFinishesIndependentBranchesThenFails) {
  std::string id =
      Create(Dag({Node("a"), Node("b"), Node("c", {"a"}), Node("d", {"b"}), Node("f", {"c"})},
                 R"("maxParallel": 4, "onFailure": "continue")"));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 1));
  Settle();
  EXPECT_EQ(StateOf(id), ExecutionState::kRunning) << "b's branch goes on";
  EXPECT_EQ(NodeStatusOf(id, "c"), NodeStatus::kSkipped);
  EXPECT_EQ(NodeStatusOf(id, "f"), NodeStatus::kSkipped) << "skipping is transitive";
  EXPECT_FALSE(runner_->Tree("b")->got_signal(SIGTERM));
  ASSERT_TRUE(runner_->Exit("b", 0));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"d"}) << "a dependent of a success still runs";
  EXPECT_EQ(StateOf(id), ExecutionState::kRunning);
  ASSERT_TRUE(runner_->Exit("d", 0));
  ASSERT_TRUE(RunUntilEnded(id));

  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_EQ(NodeStatuses(id),
            (V{"a=failed", "b=succeeded", "c=skipped", "d=succeeded", "f=skipped"}));
  EXPECT_EQ(runner_->LaunchOrder(), (V{"a", "b", "d"}));
  EXPECT_TRUE(StopRows(id).empty()) << "continue never stops the execution";
  auto failed = EventsOf(id, journal::kind::kExecutionFailed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(JsonText(failed[0].payload, "$.reason"), "node_failed");
  EXPECT_EQ(EventsOf(id, journal::kind::kNodeSkipped).size(), 2u);
}

TEST_F(LifecycleTest, UserOfANodeReachesItsLaunch) {
  std::string id = Create(Dag({Node("by_name", {}, R"("user": "nobody")"),
                               Node("by_uid", {}, R"("user": 65534)"), Node("own")},
                              R"("maxParallel": 3)"));
  Settle();
  ASSERT_NE(runner_->Tree("by_name"), nullptr);
  ASSERT_NE(runner_->Tree("by_uid"), nullptr);
  EXPECT_EQ(runner_->Tree("by_name")->spec().user, "nobody");
  EXPECT_EQ(runner_->Tree("by_uid")->spec().user, "65534");
  EXPECT_EQ(runner_->Tree("own")->spec().user, "");
  for (const char* node : {"by_name", "by_uid", "own"}) runner_->Exit(node, 0);
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(LifecycleTest, PausedExecutionTakesNoSlotFreedUnderTheManagerCap) {
  ManagerOptions options;
  options.max_running = 1;
  MakeManager(options);
  std::string first = Create(Dag({Node("x1")}));
  std::string second = Create(Dag({Node("y1")}));
  Settle();
  ASSERT_EQ(runner_->RunningNodes(), V{"x1"});
  ASSERT_TRUE(PauseAndWait(second).ok()) << "nothing of it runs, so nothing to freeze";
  ASSERT_TRUE(runner_->Exit("x1", 0));
  Settle();
  EXPECT_TRUE(runner_->RunningNodes().empty()) << "the paused execution must not launch y1";
  ASSERT_TRUE(ResumeAndWait(second).ok());
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"y1"});
  ASSERT_TRUE(runner_->Exit("y1", 0));
  ASSERT_TRUE(RunUntilEnded(second));
  EXPECT_EQ(StateOf(first), ExecutionState::kCompleted);
}

TEST_F(LifecycleTest, RetriedNodeKeepsItsSlotUnderMaxParallel) {
  std::string id =
      Create(Dag({Node("a", {}, R"("retries": 1)"), Node("b")}, R"("maxParallel": 1)"));
  Settle();
  ASSERT_EQ(runner_->RunningNodes(), V{"a"});
  ASSERT_TRUE(runner_->Exit("a", 1));
  Settle();
  EXPECT_EQ(runner_->running_count(), 1u);
  EXPECT_EQ(runner_->max_running_seen(), 1u);
  ASSERT_TRUE(runner_->Exit(runner_->RunningNodes()[0], 0));
  Settle();
  ASSERT_EQ(runner_->running_count(), 1u);
  ASSERT_TRUE(runner_->Exit(runner_->RunningNodes()[0], 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
  EXPECT_EQ(runner_->max_running_seen(), 1u);
}

TEST_F(LifecycleTest, CreateAnswersWithTheStartedExecutionAndItsNodes) {
  auto created = manager_->Create(Dag({Node("a"), Node("b", {"a"})}), lib_, /*start=*/true);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(created->existing);
  EXPECT_EQ(created->execution.status, ExecutionState::kRunning);
  EXPECT_EQ(created->execution.name, "test");
  EXPECT_TRUE(created->execution.started_at.has_value());
  ASSERT_EQ(created->execution.nodes.size(), 2u);
  EXPECT_EQ(created->execution.nodes[0].id, "a");
  EXPECT_EQ(created->execution.nodes[1].id, "b");
  auto idle = manager_->Create(Dag({Node("c")}), lib_, /*start=*/false);
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->execution.status, ExecutionState::kIdle);
  EXPECT_FALSE(idle->execution.started_at.has_value());
  Settle();
  EXPECT_EQ(runner_->LaunchOrder(), V{"a"}) << "an idle execution launches nothing";
  runner_->Exit("a", 0);
  Settle();
  runner_->Exit("b", 0);
  ASSERT_TRUE(RunUntilEnded(created->execution.id));
}

TEST_F(LifecycleTest, NodeKilledWhilePausedFailsTheExecutionUnderOnFailureStop) {
  // The OOM killer does not care that we froze the tree.
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}));
  Settle();
  ASSERT_TRUE(PauseAndWait(id).ok());
  ASSERT_TRUE(runner_->KillBySignal("a", SIGKILL));
  Settle();
  if (StateOf(id) == ExecutionState::kPaused) {
    ASSERT_TRUE(ResumeAndWait(id).ok());
  }
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_EQ(NodeStatuses(id), (V{"a=failed", "b=skipped"}));
  EXPECT_EQ(NodeOf(id, "a").signal, "SIGKILL");
  EXPECT_EQ(runner_->LaunchOrder(), V{"a"});
}

TEST_F(LifecycleTest, SpecWithoutMaxParallelUsesTheManagersDefault) {
  ManagerOptions options;
  options.spec_limits.default_max_parallel = 2;
  MakeManager(options);
  std::string id = Create(Dag({Node("a"), Node("b"), Node("c")}));
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), (V{"a", "b"}));
  // The spec journaled "as accepted" carries the value in force, for recovery to replay.
  auto created = EventsOf(id, journal::kind::kExecutionCreated);
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(JsonNumber(created[0].payload, "$.spec.maxParallel"), 2) << created[0].payload;
  for (const char* node : {"a", "b"}) runner_->Exit(node, 0);
  Settle();
  runner_->Exit("c", 0);
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(LifecycleTest, WaitingExecutionIsNotStarvedByABusierOneUnderTheCap) {
  // The cap is shared: an execution waiting for a slot gets one when a slot frees up, even
  // if the execution that freed it has more ready nodes of its own.
  ManagerOptions options;
  options.max_running = 1;
  MakeManager(options);
  std::string older = Create(Dag({Node("o1")}), /*start=*/false);
  std::string busy = Create(Dag({Node("n1"), Node("n2"), Node("n3"), Node("n4")}));
  Settle();
  ASSERT_EQ(runner_->RunningNodes(), V{"n1"});
  ASSERT_TRUE(manager_->Start(older, lib_).ok());
  Settle();
  ASSERT_EQ(runner_->RunningNodes(), V{"n1"}) << "the cap is full";
  for (int freed = 0; freed < 2; ++freed) {
    ASSERT_TRUE(runner_->Exit(runner_->RunningNodes()[0], 0));
    Settle();
  }
  EXPECT_NE(runner_->LaunchOrder(older), V{})
      << "o1 still waits after two slots were freed: " << runner_->LaunchOrder().size()
      << " launches";
  while (!runner_->RunningNodes().empty()) {
    ASSERT_TRUE(runner_->Exit(runner_->RunningNodes()[0], 0));
    Settle();
  }
  ASSERT_TRUE(RunUntilEnded(older));
  ASSERT_TRUE(RunUntilEnded(busy));
}

}  // namespace
}  // namespace warden::lifecycle_test

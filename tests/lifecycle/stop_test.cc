// Stopping: while running, paused, stopping (join), idle and ended; the StopResult a user
// receives; SIGKILL escalation and unkillable trees; the grace in force; write-ahead of the
// stop request; StopAll.
#include <signal.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

StopRequest Request(StopReason reason = StopReason::kUserAbort, std::string note = "",
                    std::optional<int64_t> grace_ms = std::nullopt,
                    std::string requester = "uid:1000 pid:4242") {
  StopRequest request;
  request.requester.name = std::move(requester);
  request.reason = reason;
  request.note = std::move(note);
  request.grace_ms = grace_ms;
  return request;
}

TEST_F(LifecycleTest, StopWhileRunningTerminatesEveryTreeAndStopsPendingNodes) {
  std::string id =
      Create(Dag({Node("a"), Node("b"), Node("c"), Node("d", {"a"})}, R"("maxParallel": 3)"));
  Settle();
  ASSERT_TRUE(runner_->Exit("c", 0));
  Settle();
  manual_clock_.Advance(2500ms);
  auto stop = StopAndWait(id, Request(StopReason::kUserAbort, "deploy freeze"));

  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  const StopResult& result = **stop.done;
  EXPECT_EQ(result.status, ExecutionState::kStopped);
  EXPECT_EQ(result.execution_id, id);
  EXPECT_EQ(result.reason, StopReason::kUserAbort);
  EXPECT_EQ(result.summary.nodes_completed, 1);
  EXPECT_EQ(result.summary.nodes_failed, 0) << "nodes stopped on request did not fail";
  EXPECT_EQ(result.summary.nodes_total, 4);
  EXPECT_EQ(result.summary.duration_ms, 2500);
  EXPECT_EQ(result.stopped_at, manual_clock_.WallMs());
  EXPECT_EQ(result.nodes_killed, 0);
  EXPECT_EQ(result.nodes_unkillable, 0);
  EXPECT_TRUE(result.journaled);

  for (const char* node : {"a", "b"}) {
    FakeProcessTree* tree = runner_->Tree(node);
    EXPECT_TRUE(tree->got_signal(SIGTERM)) << node;
    EXPECT_FALSE(tree->got_signal(SIGKILL)) << node;
    EXPECT_TRUE(tree->finished()) << node;
  }
  EXPECT_EQ(NodeStatuses(id), (V{"a=stopped", "b=stopped", "c=succeeded", "d=stopped"}));
  NodeView a = NodeOf(id, "a");
  EXPECT_FALSE(a.exit_code.has_value());
  EXPECT_EQ(a.signal, "SIGTERM");
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
  EXPECT_EQ(runner_->LaunchOrder(), (V{"a", "b", "c"}));
  EXPECT_EQ(manager_->active_count(), 0u);

  // The stopping view handed to `accepted` (wait=false).
  ASSERT_EQ(stop.accepted_calls, 1);
  ASSERT_TRUE(stop.accepted->ok());
  EXPECT_EQ((*stop.accepted)->status, ExecutionState::kStopping);

  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  const StopRow& row = rows[0];
  EXPECT_EQ(row.requested_by, "uid:1000 pid:4242");
  EXPECT_EQ(row.reason, "user_abort");
  EXPECT_EQ(row.note, "deploy freeze");
  EXPECT_EQ(row.grace_ms, 2000) << "no grace of its own: the one in force, the daemon's";
  EXPECT_EQ(row.status, "stopped");
  EXPECT_EQ(row.completed_at, result.stopped_at);
  EXPECT_EQ(row.nodes_completed, 1);
  EXPECT_EQ(row.nodes_failed, 0);
  EXPECT_EQ(row.nodes_total, 4);
  EXPECT_EQ(row.duration_ms, 2500);
  EXPECT_EQ(row.nodes_killed, 0);
  EXPECT_EQ(row.nodes_unkillable, 0);
  auto exec = ExecutionRowOf(id);
  ASSERT_TRUE(exec.has_value());
  EXPECT_EQ(exec->status, "stopped");
  EXPECT_EQ(exec->ended_at, result.stopped_at);

  auto pending = EventsOf(id, journal::kind::kNodeStopped, "d");
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(JsonText(pending[0].payload, "$.reason"), "user_abort");
  auto signalled = EventsOf(id, journal::kind::kNodeSignalled, "a");
  ASSERT_FALSE(signalled.empty());
  EXPECT_EQ(JsonText(signalled[0].payload, "$.signal"), "SIGTERM");
  EXPECT_EQ(JsonText(signalled[0].payload, "$.why"), "stop");
  auto exited = EventsOf(id, journal::kind::kNodeExited, "a");
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(JsonText(exited[0].payload, "$.signal"), "SIGTERM");
  EXPECT_EQ(JsonText(exited[0].payload, "$.graceful"), "1");
  EXPECT_EQ(JsonText(exited[0].payload, "$.killed"), "0");
  EXPECT_EQ(manager_->stats().stops_by_reason["user_abort"], 1u);
}

TEST_F(LifecycleTest, StopWhilePausedThawsAndEndsGracefully) {
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
  Settle();
  ASSERT_TRUE(PauseAndWait(id).ok());
  ASSERT_TRUE(runner_->Tree("a")->paused());
  auto stop = StopAndWait(id, Request());
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  EXPECT_EQ((*stop.done)->status, ExecutionState::kStopped);
  EXPECT_EQ((*stop.done)->nodes_killed, 0);
  for (const char* node : {"a", "b"}) {
    FakeProcessTree* tree = runner_->Tree(node);
    EXPECT_TRUE(tree->finished()) << node;
    EXPECT_FALSE(tree->paused()) << node << " was left frozen";
    EXPECT_TRUE(tree->got_signal(SIGTERM)) << node;
    EXPECT_FALSE(tree->got_signal(SIGKILL)) << node;
  }
  EXPECT_EQ(NodeStatuses(id), (V{"a=stopped", "b=stopped"}));
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, "stopped");
}

TEST_F(LifecycleTest, SecondStopWhileStoppingJoinsAndGetsTheSameResult) {
  runner_->SetTermBehavior("slow", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("slow")}, R"("graceMs": 600000)"));
  Settle();
  auto first = StopAsync(id, Request(StopReason::kUserAbort, "first"));
  ASSERT_TRUE(RunUntil([&] { return first->accepted_calls > 0; }));
  EXPECT_EQ(StateOf(id), ExecutionState::kStopping);
  EXPECT_EQ(NodeStatusOf(id, "slow"), NodeStatus::kStopping);

  auto second = StopAsync(id, Request(StopReason::kServerShutdown, "second"));
  Settle();
  EXPECT_FALSE(first->done.has_value());
  EXPECT_FALSE(second->done.has_value()) << "the join waits for the tree to end";
  manual_clock_.Advance(300ms);
  ASSERT_TRUE(runner_->KillBySignal("slow", SIGTERM));
  ASSERT_TRUE(RunUntil([&] { return first->done && second->done; }));
  ASSERT_TRUE(first->done->ok()) << first->done->status().ToString();
  ASSERT_TRUE(second->done->ok()) << second->done->status().ToString();
  const StopResult& a = **first->done;
  const StopResult& b = **second->done;
  EXPECT_EQ(a.status, ExecutionState::kStopped);
  EXPECT_EQ(b.status, a.status);
  EXPECT_EQ(b.reason, StopReason::kUserAbort) << "the joined stop's reason stands";
  EXPECT_EQ(b.stopped_at, a.stopped_at);
  EXPECT_EQ(b.final_cost_usd, a.final_cost_usd);
  EXPECT_EQ(b.summary.duration_ms, a.summary.duration_ms);
  EXPECT_EQ(b.summary.nodes_total, a.summary.nodes_total);
  EXPECT_EQ(b.execution_id, id);
  EXPECT_EQ(runner_->Tree("slow")->terminate_graces().size(), 1u)
      << "the join does not terminate again";
  // Both requests are in the audit: the first began the stop, the second joined it, and
  // both rows report the stop's one outcome.
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].reason, "user_abort");
  EXPECT_EQ(rows[0].note, "first");
  EXPECT_EQ(rows[0].joined, 0);
  EXPECT_EQ(rows[1].reason, "server_shutdown");
  EXPECT_EQ(rows[1].note, "second");
  EXPECT_EQ(rows[1].joined, 1);
  EXPECT_GT(rows[1].stop_seq, rows[0].stop_seq);
  for (const StopRow& row : rows) {
    EXPECT_EQ(row.status, "stopped");
    EXPECT_EQ(row.completed_at, a.stopped_at);
    EXPECT_EQ(row.nodes_total, 1);
  }
  EXPECT_EQ(manager_->stats().stops_by_reason["user_abort"], 1u);
  EXPECT_EQ(manager_->stats().stops_by_reason["server_shutdown"], 0u)
      << "a join is not a stop of its own";
  EXPECT_EQ(EventsOf(id, journal::kind::kExecutionStopCompleted).size(), 1u);
  EXPECT_EQ(EventsOf(id, journal::kind::kExecutionStopped).size(), 1u);
}

TEST_F(LifecycleTest, StopOfAnIdleExecutionStopsEveryNodeWithoutLaunching) {
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}), /*start=*/false);
  manual_clock_.Advance(700ms);
  auto stop = StopAndWait(id, Request(StopReason::kUserAbort, "changed my mind"));
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  const StopResult& result = **stop.done;
  EXPECT_EQ(result.status, ExecutionState::kStopped);
  EXPECT_EQ(result.summary.nodes_total, 2);
  EXPECT_EQ(result.summary.nodes_completed, 0);
  EXPECT_EQ(result.summary.duration_ms, 0) << "it never started, so it ran for no time";
  EXPECT_EQ(result.final_cost_usd, 0);
  EXPECT_TRUE(runner_->launches().empty());
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
  EXPECT_EQ(NodeStatuses(id), (V{"a=stopped", "b=stopped"}));
  auto exec = ExecutionRowOf(id);
  EXPECT_EQ(exec->status, "stopped");
  EXPECT_FALSE(exec->started_at.has_value());
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, "stopped");
  EXPECT_EQ(rows[0].note, "changed my mind");
  EXPECT_EQ(EventsOf(id, journal::kind::kNodeStopped).size(), 2u);
}

TEST_F(LifecycleTest, IdleExecutionStoppedWithReasonErrorIsStoppedInTheAnswerAndTheJournal) {
  std::string id = Create(Dag({Node("a")}), /*start=*/false);
  auto stop = StopAndWait(id, Request(StopReason::kError));
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  EXPECT_EQ((*stop.done)->status, ExecutionState::kStopped);
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
  EXPECT_EQ(ExecutionRowOf(id)->status, "stopped");
  EXPECT_EQ(EventsOf(id, journal::kind::kExecutionStopped).size(), 1u);
  EXPECT_TRUE(EventsOf(id, journal::kind::kExecutionFailed).empty());
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, "stopped");
  EXPECT_EQ(rows[0].reason, "error");
}

TEST_F(LifecycleTest, StopOfAnEndedExecutionIsRefusedAndRecordsNothing) {
  std::string id = Create(Dag({Node("a")}));
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  size_t events_before = Events(id).size();
  auto stop = StopAndWait(id, Request());
  ASSERT_TRUE(stop.done.has_value());
  EXPECT_EQ(stop.done->status().code(), StatusCode::kConflict);
  EXPECT_NE(stop.done->status().message().find("completed"), std::string::npos)
      << stop.done->status().message();
  EXPECT_EQ(stop.accepted_calls, 0);
  EXPECT_EQ(Events(id).size(), events_before);
  EXPECT_TRUE(StopRows(id).empty());
}

TEST_F(LifecycleTest, TermIgnoringNodeIsKilledAfterTheGraceAndCounted) {
  runner_->SetTermBehavior("stubborn", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("stubborn"), Node("polite")}, R"("maxParallel": 2)"));
  Settle();
  auto stop = StopAndWait(id, Request(StopReason::kUserAbort, "", /*grace_ms=*/20));
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  const StopResult& result = **stop.done;
  EXPECT_EQ(result.status, ExecutionState::kStopped);
  EXPECT_EQ(result.nodes_killed, 1);
  EXPECT_EQ(result.nodes_unkillable, 0);
  EXPECT_TRUE(runner_->Tree("stubborn")->got_signal(SIGKILL));
  EXPECT_FALSE(runner_->Tree("polite")->got_signal(SIGKILL));
  NodeView stubborn = NodeOf(id, "stubborn");
  EXPECT_EQ(stubborn.status, NodeStatus::kStopped);
  EXPECT_EQ(stubborn.signal, "SIGKILL");
  EXPECT_EQ(manager_->stats().sigkill_escalations, 1u);

  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].grace_ms, 20);
  EXPECT_EQ(rows[0].nodes_killed, 1) << "the stops view counts node.signalled SIGKILL";
  EXPECT_EQ(rows[0].status, "stopped");
  auto exited = EventsOf(id, journal::kind::kNodeExited, "stubborn");
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(JsonText(exited[0].payload, "$.killed"), "1");
  EXPECT_EQ(JsonText(exited[0].payload, "$.graceful"), "0");
  bool kill_journaled = false;
  for (const auto& event : EventsOf(id, journal::kind::kNodeSignalled, "stubborn")) {
    if (JsonText(event.payload, "$.signal") == "SIGKILL") {
      kill_journaled = true;
      EXPECT_EQ(JsonText(event.payload, "$.why"), "grace_expired");
    }
  }
  EXPECT_TRUE(kill_journaled);
}

TEST_F(LifecycleTest, UnkillableTreeFailsTheStopButTheStopStillFinishes) {
  runner_->SetTermBehavior("dstate", TermBehavior::kUnkillable);
  std::string id = Create(Dag({Node("dstate"), Node("fine")}, R"("maxParallel": 2)"));
  Settle();
  auto stop = StopAndWait(id, Request(StopReason::kUserAbort, "", /*grace_ms=*/10));
  ASSERT_TRUE(stop.done->ok()) << stop.done->status().ToString();
  const StopResult& result = **stop.done;
  EXPECT_EQ(result.status, ExecutionState::kFailed) << "a tree was unkillable";
  EXPECT_EQ(result.nodes_unkillable, 1);
  EXPECT_EQ(result.nodes_killed, 1);
  EXPECT_EQ(result.summary.nodes_failed, 1) << "unkillable counts as failed";
  EXPECT_EQ(StateOf(id), ExecutionState::kFailed);
  EXPECT_EQ(NodeStatuses(id), (V{"dstate=unkillable", "fine=stopped"}));

  auto unkillable = EventsOf(id, journal::kind::kNodeUnkillable, "dstate");
  ASSERT_EQ(unkillable.size(), 1u);
  EXPECT_EQ(JsonText(unkillable[0].payload, "$.pids[0]"),
            std::to_string(runner_->Tree("dstate")->identity().pid));
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, "failed");
  EXPECT_EQ(rows[0].nodes_unkillable, 1);
  EXPECT_EQ(rows[0].nodes_killed, 1);
  auto failed = EventsOf(id, journal::kind::kExecutionFailed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(JsonText(failed[0].payload, "$.reason"), "unkillable");
  EXPECT_EQ(ExecutionRowOf(id)->status, "failed");
}

TEST_F(LifecycleTest, GraceInForceFollowsStopThenNodeThenExecutionThenManager) {
  ManagerOptions options;
  options.default_grace_ms = 1111;
  MakeManager(options);
  std::string with_grace = Create(Dag({Node("own", {}, R"("graceMs": 3333)"), Node("inherits")},
                                      R"("maxParallel": 2, "graceMs": 2222)"));
  std::string without_grace = Create(Dag({Node("plain")}));
  Settle();
  ASSERT_TRUE(StopAndWait(with_grace, Request()).done->ok());
  ASSERT_TRUE(StopAndWait(without_grace, Request()).done->ok());
  EXPECT_EQ(runner_->Tree("own")->terminate_graces(), std::vector{3333ms});
  EXPECT_EQ(runner_->Tree("inherits")->terminate_graces(), std::vector{2222ms});
  EXPECT_EQ(runner_->Tree("plain")->terminate_graces(), std::vector{1111ms});

  // The stop request's grace overrides all of them.
  std::string overridden = Create(Dag({Node("own2", {}, R"("graceMs": 3333)"), Node("inh2")},
                                      R"("maxParallel": 2, "graceMs": 2222)"));
  Settle();
  ASSERT_TRUE(StopAndWait(overridden, Request(StopReason::kUserAbort, "", 4444)).done->ok());
  EXPECT_EQ(runner_->Tree("own2")->terminate_graces(), std::vector{4444ms});
  EXPECT_EQ(runner_->Tree("inh2")->terminate_graces(), std::vector{4444ms});
  auto rows = StopRows(overridden);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].grace_ms, 4444);
}

TEST_F(LifecycleTest, StopRequestIsJournaledBeforeAnyTreeIsSignalled) {
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
  Settle();
  int checked = 0;
  runner_->on_terminate = [&](const FakeProcessTree& tree, std::chrono::milliseconds) {
    ++checked;
    auto requests =
        EventsOf(tree.spec().cookie.execution_id, journal::kind::kExecutionStopRequested);
    ASSERT_EQ(requests.size(), 1u)
        << "Terminate of " << tree.node_id() << " before the stop request was committed";
    EXPECT_EQ(JsonText(requests[0].payload, "$.reason"), "user_abort");
    EXPECT_EQ(JsonText(requests[0].payload, "$.requestedBy"), "uid:1000 pid:4242");
    EXPECT_EQ(JsonText(requests[0].payload, "$.note"), "audit me");
    EXPECT_EQ(JsonText(requests[0].payload, "$.graceMs"), "50");
  };
  auto stop = StopAndWait(id, Request(StopReason::kUserAbort, "audit me", 50));
  ASSERT_TRUE(stop.done->ok());
  EXPECT_EQ(checked, 2);
}

TEST_F(LifecycleTest, StopAllStopsEveryActiveExecutionWithServerShutdown) {
  std::string running = Create(Dag({Node("r1"), Node("r2")}, R"("maxParallel": 2)"));
  std::string paused = Create(Dag({Node("p1")}));
  std::string idle = Create(Dag({Node("i1")}), /*start=*/false);
  std::string done = Create(Dag({Node("d1")}));
  Settle();
  ASSERT_TRUE(runner_->Exit("d1", 0));
  ASSERT_TRUE(RunUntilEnded(done));
  ASSERT_TRUE(PauseAndWait(paused).ok());

  bool all_done = false;
  manager_->StopAll(/*kill_now=*/false, [&] { all_done = true; });
  EXPECT_FALSE(all_done) << "StopAll completed inside the call";
  ASSERT_TRUE(RunUntil([&] { return all_done; }));
  for (const std::string& id : {running, paused, idle}) {
    EXPECT_EQ(StateOf(id), ExecutionState::kStopped) << id;
    auto rows = StopRows(id);
    ASSERT_EQ(rows.size(), 1u) << id;
    EXPECT_EQ(rows[0].reason, "server_shutdown") << id;
    EXPECT_EQ(rows[0].requested_by, "warden") << id;
  }
  EXPECT_EQ(StateOf(done), ExecutionState::kCompleted);
  EXPECT_TRUE(StopRows(done).empty());
  EXPECT_EQ(manager_->active_count(), 0u);
  EXPECT_EQ(manager_->stats().stops_by_reason["server_shutdown"], 3u);
  EXPECT_TRUE(runner_->RunningNodes().empty());
}

TEST_F(LifecycleTest, StopAllStopsEveryTreeUnderTheManagersOneGrace) {
  ManagerOptions options;
  options.default_grace_ms = 1111;
  MakeManager(options);
  std::string first = Create(Dag({Node("long", {}, R"("graceMs": 600000)"), Node("plain")},
                                 R"("maxParallel": 2, "graceMs": 300000)"));
  std::string second = Create(Dag({Node("other")}, R"("graceMs": 5)"));
  Settle();
  bool all_done = false;
  manager_->StopAll(/*kill_now=*/false, [&] { all_done = true; });
  ASSERT_TRUE(RunUntil([&] { return all_done; }, 1000ms));
  for (const char* node : {"long", "plain", "other"}) {
    EXPECT_EQ(runner_->Tree(node)->terminate_graces(), std::vector{1111ms}) << node;
  }
  for (const std::string& id : {first, second}) {
    auto rows = StopRows(id);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].reason, "server_shutdown");
    EXPECT_EQ(rows[0].grace_ms, 1111);
  }
}

TEST_F(LifecycleTest, JoiningStopWithAShorterGraceBringsSigkillForward) {
  runner_->SetTermBehavior("a", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("a")}, R"("graceMs": 600000)"));
  Settle();
  std::optional<Result<StopResult>> first, second;
  manager_->Stop(id, Request(), nullptr, [&](Result<StopResult> r) { first = std::move(r); });
  Settle();
  EXPECT_FALSE(first.has_value()) << "a ignores SIGTERM for 600 s";
  manager_->Stop(id, Request(StopReason::kUserAbort, "now", 0), nullptr,
                 [&](Result<StopResult> r) { second = std::move(r); });
  ASSERT_TRUE(RunUntil([&] { return first.has_value() && second.has_value(); }, 1000ms))
      << "the joining request's grace 0 wins";
  EXPECT_EQ(runner_->Tree("a")->terminate_graces(), (std::vector{600000ms, 0ms}));
  EXPECT_TRUE(runner_->Tree("a")->got_signal(SIGKILL));
  ASSERT_TRUE(first->ok() && second->ok());
  EXPECT_EQ((*first)->nodes_killed, 1);
  EXPECT_EQ((*second)->nodes_killed, 1) << "the same result for both";
  auto rows = StopRows(id);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].grace_ms, 600000) << "the first request gave none: the node's was in force";
  EXPECT_EQ(rows[1].grace_ms, 0);
  EXPECT_EQ(rows[1].note, "now");
  EXPECT_EQ(rows[1].joined, 1);
  for (const StopRow& row : rows) {
    EXPECT_EQ(row.nodes_killed, 1) << "the SIGKILL is the stop's, whichever request it followed";
    EXPECT_EQ(row.nodes_unkillable, 0);
  }
}

TEST_F(LifecycleTest, JoiningStopWithALongerGraceChangesNothing) {
  runner_->SetTermBehavior("a", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("a")}));
  Settle();
  std::optional<Result<StopResult>> first;
  manager_->Stop(id, Request(StopReason::kUserAbort, "", 100), nullptr,
                 [&](Result<StopResult> r) { first = std::move(r); });
  manager_->Stop(id, Request(StopReason::kUserAbort, "", 600000), nullptr, nullptr);
  ASSERT_TRUE(RunUntil([&] { return first.has_value(); }, 1000ms));
  EXPECT_TRUE(runner_->Tree("a")->got_signal(SIGKILL)) << "killed at the first grace";
}

TEST_F(LifecycleTest, StopAllKillNowGivesEveryTreeGraceZero) {
  runner_->SetTermBehavior("a", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("a")}, R"("graceMs": 600000)"));
  Settle();
  bool all_done = false;
  manager_->StopAll(/*kill_now=*/true, [&] { all_done = true; });
  ASSERT_TRUE(RunUntil([&] { return all_done; }, 1000ms)) << "kill_now must not wait 600 s";
  EXPECT_EQ(runner_->Tree("a")->terminate_graces().back(), 0ms);
  EXPECT_TRUE(runner_->Tree("a")->got_signal(SIGKILL));
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
}

TEST_F(LifecycleTest, StopAllKillNowEscalatesARunningShutdown) {
  runner_->SetTermBehavior("a", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("a")}, R"("graceMs": 600000)"));
  Settle();
  bool graceful_done = false, kill_done = false;
  manager_->StopAll(/*kill_now=*/false, [&] { graceful_done = true; });
  Settle();
  EXPECT_FALSE(graceful_done) << "a ignores SIGTERM for 600 s";
  manager_->StopAll(/*kill_now=*/true, [&] { kill_done = true; });
  ASSERT_TRUE(RunUntil([&] { return graceful_done && kill_done; }, 1000ms))
      << "the second signal escalates at once";
  EXPECT_TRUE(runner_->Tree("a")->got_signal(SIGKILL));
  EXPECT_EQ(StateOf(id), ExecutionState::kStopped);
}

TEST_F(LifecycleTest, DurationOfAStopRunsFromTheStartNotTheCreation) {
  std::string id = Create(Dag({Node("a")}), /*start=*/false);
  manual_clock_.Advance(5000ms);
  ASSERT_TRUE(manager_->Start(id, lib_).ok());
  Settle();
  manual_clock_.Advance(2000ms);
  auto stop = StopAndWait(id);
  ASSERT_TRUE(stop.done->ok());
  EXPECT_EQ((*stop.done)->summary.duration_ms, 2000);
  auto completed = EventsOf(id, journal::kind::kExecutionStopCompleted);
  ASSERT_EQ(completed.size(), 1u);
  const std::string& payload = completed[0].payload;
  EXPECT_EQ(JsonText(payload, "$.status"), "stopped");
  EXPECT_EQ(JsonText(payload, "$.reason"), "user_abort");
  EXPECT_EQ(JsonNumber(payload, "$.durationMs"), 2000);
  EXPECT_EQ(JsonNumber(payload, "$.stoppedAt"), static_cast<double>(manual_clock_.WallMs()));
  EXPECT_EQ(JsonNumber(payload, "$.nodesTotal"), 1);
  EXPECT_EQ(JsonText(payload, "$.journaled"), "1");
  EXPECT_EQ(JsonNumber(payload, "$.finalCostUsd"), 0) << payload;
  auto stopped = EventsOf(id, journal::kind::kExecutionStopped);
  ASSERT_EQ(stopped.size(), 1u);
  EXPECT_TRUE(JsonNumber(stopped[0].payload, "$.costUsd").has_value()) << stopped[0].payload;
}

TEST_F(LifecycleTest, ShutdownSignalsAreJournaledWithWhyShutdown) {
  std::string id = Create(Dag({Node("a")}));
  Settle();
  bool done = false;
  manager_->StopAll(false, [&] { done = true; });
  ASSERT_TRUE(RunUntil([&] { return done; }));
  auto signalled = EventsOf(id, journal::kind::kNodeSignalled, "a");
  ASSERT_FALSE(signalled.empty());
  EXPECT_EQ(JsonText(signalled[0].payload, "$.signal"), "SIGTERM");
  EXPECT_EQ(JsonText(signalled[0].payload, "$.why"), "shutdown");
}

TEST_F(LifecycleTest, StopWithGraceZeroKillsAtOnce) {
  runner_->SetTermBehavior("a", TermBehavior::kIgnoreTerm);
  std::string id = Create(Dag({Node("a")}, R"("graceMs": 600000)"));
  Settle();
  auto stop = StopAndWait(id, Request(StopReason::kUserAbort, "", 0));
  ASSERT_TRUE(stop.done->ok());
  EXPECT_EQ(runner_->Tree("a")->terminate_graces(), std::vector{0ms});
  EXPECT_EQ((*stop.done)->nodes_killed, 1);
  EXPECT_EQ(StopRows(id)[0].grace_ms, 0);
}

TEST_F(LifecycleTest, SigtermIsJournaledWhenSentNotWhenTheTreeEnds) {
  // schema/README.md: node.signalled is written when a signal was sent. During a long grace
  // an operator (or recovery, after a crash) must see that SIGTERM went out.
  runner_->SetTermBehavior("slow", TermBehavior::kHoldOnTerm);
  std::string id = Create(Dag({Node("slow")}, R"("graceMs": 600000)"));
  Settle();
  auto stop = StopAsync(id);
  ASSERT_TRUE(RunUntil([&] { return stop->accepted_calls > 0; }));
  Settle();
  ASSERT_TRUE(runner_->Tree("slow")->got_signal(SIGTERM));
  auto signalled = EventsOf(id, journal::kind::kNodeSignalled, "slow");
  EXPECT_EQ(signalled.size(), 1u) << "SIGTERM was sent but is not in the journal";
  ASSERT_TRUE(runner_->KillBySignal("slow", SIGTERM));
  ASSERT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
  signalled = EventsOf(id, journal::kind::kNodeSignalled, "slow");
  EXPECT_EQ(signalled.size(), 1u) << "one SIGTERM, journaled once";
}

}  // namespace
}  // namespace warden::lifecycle_test

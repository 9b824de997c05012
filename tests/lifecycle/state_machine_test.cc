// The execution state machine, exhaustively: every state x every request (start, pause,
// resume, stop). Allowed requests succeed and lead to the documented state; every other one is
// refused with Conflict whose message names the request and the current state, and changes
// nothing. Plus pause/resume behaviour, requestId idempotency, Get and List.
#include <signal.h>

#include "lifecycle_test_util.h"

namespace warden::lifecycle_test {
namespace {

using V = std::vector<std::string>;

enum class Request { kStart, kPause, kResume, kStop };
const char* RequestName(Request request) {
  switch (request) {
    case Request::kStart:
      return "start";
    case Request::kPause:
      return "pause";
    case Request::kResume:
      return "resume";
    case Request::kStop:
      return "stop";
  }
  return "?";
}

struct Case {
  ExecutionState from;
  Request request;
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << RequestName(c.request) << " when " << lifecycle::ExecutionStateName(c.from);
}

// What the state machine of design.md allows; nullopt: refused with Conflict.
// A stop of a stopping execution joins the running stop (it ends stopped here).
std::optional<ExecutionState> Expected(ExecutionState from, Request request) {
  using S = ExecutionState;
  switch (request) {
    case Request::kStart:
      if (from == S::kIdle) return S::kRunning;
      return std::nullopt;
    case Request::kPause:
      if (from == S::kRunning) return S::kPaused;
      return std::nullopt;
    case Request::kResume:
      if (from == S::kPaused) return S::kRunning;
      return std::nullopt;
    case Request::kStop:
      if (from == S::kIdle || from == S::kRunning || from == S::kPaused || from == S::kStopping) {
        return S::kStopped;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

class StateMachineTest : public LifecycleTest, public ::testing::WithParamInterface<Case> {
 protected:
  // An execution of one node "a" in `state`. "a" holds on SIGTERM, so that a stop stays in
  // stopping until the test ends "a".
  std::string Reach(ExecutionState state) {
    runner_->SetTermBehavior("a", TermBehavior::kHoldOnTerm);
    std::string spec = Dag({Node("a")}, R"("graceMs": 600000)");
    switch (state) {
      case ExecutionState::kIdle:
        return Create(spec, /*start=*/false);
      case ExecutionState::kRunning:
        return Create(spec);
      case ExecutionState::kPaused: {
        std::string id = Create(spec);
        auto paused = PauseAndWait(id);
        EXPECT_TRUE(paused.ok()) << paused.status().ToString();
        return id;
      }
      case ExecutionState::kStopping: {
        std::string id = Create(spec);
        stopping_ = StopAsync(id);
        EXPECT_TRUE(RunUntil([&] { return stopping_->accepted_calls > 0; }));
        return id;
      }
      case ExecutionState::kStopped: {
        std::string id = Create(spec);
        runner_->SetTermBehavior("a", TermBehavior::kExitOnTerm);
        runner_->Tree("a")->set_term_behavior(TermBehavior::kExitOnTerm);
        auto stop = StopAndWait(id);
        EXPECT_TRUE(stop.done && stop.done->ok());
        return id;
      }
      case ExecutionState::kCompleted: {
        std::string id = Create(spec);
        EXPECT_TRUE(runner_->Exit("a", 0));
        EXPECT_TRUE(RunUntilEnded(id));
        return id;
      }
      case ExecutionState::kFailed: {
        std::string id = Create(spec);
        EXPECT_TRUE(runner_->Exit("a", 1));
        EXPECT_TRUE(RunUntilEnded(id));
        return id;
      }
    }
    return "";
  }

  std::shared_ptr<StopOutcome> stopping_;  // the first stop, when reaching kStopping
};

TEST_P(StateMachineTest, RequestIsAllowedOrRefusedNamingRequestAndState) {
  const auto [from, request] = GetParam();
  std::string id = Reach(from);
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(StateOf(id), from) << "could not reach " << Name(from);
  std::optional<ExecutionState> expected = Expected(from, request);

  Status status;
  std::optional<ExecutionState> answered;
  std::shared_ptr<StopOutcome> stop;
  switch (request) {
    case Request::kStart: {
      auto started = manager_->Start(id, lib_);
      status = started.status();
      if (started.ok()) answered = started->status;
      break;
    }
    case Request::kPause: {
      auto paused = PauseAndWait(id);
      status = paused.status();
      if (paused.ok()) answered = paused->status;
      break;
    }
    case Request::kResume: {
      auto resumed = ResumeAndWait(id);
      status = resumed.status();
      if (resumed.ok()) answered = resumed->status;
      break;
    }
    case Request::kStop: {
      stop = StopAsync(id);
      Settle();
      if (FakeProcessTree* a = runner_->Tree("a"); a != nullptr && !a->finished()) {
        // "a" holds on SIGTERM: the stop (or the join) waits for it; end it now.
        EXPECT_FALSE(stop->done.has_value()) << "the stop answered before the tree ended";
        EXPECT_TRUE(a->got_signal(SIGTERM) || from != ExecutionState::kRunning);
        a->KillBySignal(SIGTERM);
      }
      if (from == ExecutionState::kStopping) {
        EXPECT_TRUE(RunUntil([&] { return stopping_->done.has_value(); }));
      }
      EXPECT_TRUE(RunUntil([&] { return stop->done.has_value(); }));
      if (!stop->done) return;
      status = stop->done->status();
      if (stop->done->ok()) answered = (*stop->done)->status;
      if (!status.ok()) {
        EXPECT_EQ(stop->accepted_calls, 0) << "accepted must not be called for a refused stop";
      }
      break;
    }
  }

  if (expected) {
    ASSERT_TRUE(status.ok()) << RequestName(request) << " on " << Name(from)
                             << " should succeed: " << status.ToString();
    if (request == Request::kStop) {
      EXPECT_EQ(answered, ExecutionState::kStopped) << "StopResult.status";
      EXPECT_TRUE(RunUntilEnded(id));
    } else {
      EXPECT_EQ(answered, expected) << "the view returned by " << RequestName(request);
    }
    EXPECT_EQ(StateOf(id), *expected);
  } else {
    EXPECT_EQ(status.code(), StatusCode::kConflict)
        << RequestName(request) << " on " << Name(from) << ": " << status.ToString();
    EXPECT_NE(status.message().find(RequestName(request)), std::string::npos)
        << "message should name the request: " << status.message();
    EXPECT_NE(status.message().find(Name(from)), std::string::npos)
        << "message should name the state: " << status.message();
    EXPECT_EQ(StateOf(id), from) << "a refused request changes nothing";
  }

  // Leave nothing behind.
  if (!lifecycle::IsTerminal(StateOf(id))) {
    if (StateOf(id) != ExecutionState::kStopping) StopAsync(id);
    runner_->KillBySignal("a", SIGTERM);
    EXPECT_TRUE(RunUntilEnded(id));
  }
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (int s = 0; s < lifecycle::kExecutionStateCount; ++s) {
    for (Request r : {Request::kStart, Request::kPause, Request::kResume, Request::kStop}) {
      cases.push_back({static_cast<ExecutionState>(s), r});
    }
  }
  return cases;
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string request = RequestName(info.param.request);
  std::string state = Name(info.param.from);
  request[0] = static_cast<char>(toupper(request[0]));
  state[0] = static_cast<char>(toupper(state[0]));
  return request + "When" + state;
}

INSTANTIATE_TEST_SUITE_P(EveryStateEveryRequest, StateMachineTest, ::testing::ValuesIn(AllCases()),
                         CaseName);

TEST_F(LifecycleTest, RequestsForAnUnknownExecutionAnswerNotFound) {
  EXPECT_EQ(manager_->Get("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(manager_->Start("nope", lib_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(PauseAndWait("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResumeAndWait("nope").status().code(), StatusCode::kNotFound);
  auto stop = StopAndWait("nope");
  ASSERT_TRUE(stop.done.has_value());
  EXPECT_EQ(stop.done->status().code(), StatusCode::kNotFound);
  EXPECT_EQ(stop.accepted_calls, 0);
}

TEST_F(LifecycleTest, PauseFreezesEveryRunningTreeAndResumeThawsThem) {
  std::string id = Create(Dag({Node("a"), Node("b"), Node("c", {"a"})}, R"("maxParallel": 4)"));
  Settle();
  auto paused = PauseAndWait(id);
  ASSERT_TRUE(paused.ok()) << paused.status().ToString();
  EXPECT_EQ(paused->status, ExecutionState::kPaused);
  EXPECT_TRUE(runner_->Tree("a")->paused());
  EXPECT_TRUE(runner_->Tree("b")->paused());
  EXPECT_EQ(NodeStatuses(id), (V{"a=paused", "b=paused", "c=pending"}));
  EXPECT_EQ(ExecutionRowOf(id)->status, "paused");

  auto resumed = ResumeAndWait(id);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->status, ExecutionState::kRunning);
  EXPECT_FALSE(runner_->Tree("a")->paused());
  EXPECT_FALSE(runner_->Tree("b")->paused());
  EXPECT_EQ(NodeStatuses(id), (V{"a=running", "b=running", "c=pending"}));
  EXPECT_EQ(ExecutionRowOf(id)->status, "running");

  ASSERT_EQ(EventsOf(id, journal::kind::kExecutionPaused).size(), 1u);
  auto resumes = EventsOf(id, journal::kind::kExecutionResumed);
  ASSERT_EQ(resumes.size(), 1u);
  EXPECT_EQ(JsonText(resumes[0].payload, "$.requestedBy"), "lib");
  EXPECT_TRUE(JsonNumber(resumes[0].payload, "$.pausedMs").has_value()) << resumes[0].payload;

  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(runner_->Exit("b", 0));
  Settle();
  ASSERT_TRUE(runner_->Exit("c", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
}

TEST_F(LifecycleTest, PauseAnswersOnlyOnceEveryTreeIsFrozen) {
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
  Settle();
  runner_->Tree("b")->HoldNextFreeze();
  std::optional<Result<ExecutionView>> result;
  manager_->Pause(id, lib_, [&](Result<ExecutionView> r) { result = std::move(r); });
  Settle();
  EXPECT_FALSE(result.has_value()) << "b is still freezing";
  EXPECT_TRUE(EventsOf(id, journal::kind::kExecutionPaused).empty())
      << "the pause is journaled once every tree is frozen";
  ASSERT_TRUE(runner_->Tree("b")->FinishFreeze());
  ASSERT_TRUE(RunUntil([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status().ToString();
  EXPECT_EQ((*result)->status, ExecutionState::kPaused);
  EXPECT_EQ(EventsOf(id, journal::kind::kExecutionPaused).size(), 1u);

  ASSERT_TRUE(ResumeAndWait(id).ok());
  runner_->Exit("a", 0);
  runner_->Exit("b", 0);
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(LifecycleTest, PausedExecutionLaunchesNothingUntilResumed) {
  // "a" ends just as the pause is asked for: its tree can no longer be frozen, and its
  // dependent must wait for the resume.
  std::string id = Create(Dag({Node("a"), Node("b", {"a"})}));
  Settle();
  ASSERT_TRUE(runner_->Exit("a", 0));
  auto paused = PauseAndWait(id);
  ASSERT_TRUE(paused.ok()) << paused.status().ToString();
  Settle();
  EXPECT_EQ(StateOf(id), ExecutionState::kPaused);
  EXPECT_EQ(runner_->LaunchOrder(), V{"a"}) << "a paused execution must not launch b";
  EXPECT_EQ(NodeStatuses(id), (V{"a=succeeded", "b=pending"}));

  ASSERT_TRUE(ResumeAndWait(id).ok());
  Settle();
  EXPECT_EQ(runner_->RunningNodes(), V{"b"});
  ASSERT_TRUE(runner_->Exit("b", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  EXPECT_EQ(StateOf(id), ExecutionState::kCompleted);
}

TEST_F(LifecycleTest, CreateWithAKnownRequestIdReturnsTheExistingExecution) {
  std::string spec = Dag({Node("a")}, R"("requestId": "nightly-2025-11-24")");
  auto first = manager_->Create(spec, lib_, /*start=*/true);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->existing);
  Settle();
  auto second = manager_->Create(spec, lib_, /*start=*/true);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->existing);
  EXPECT_EQ(second->execution.id, first->execution.id);
  Settle();
  EXPECT_EQ(manager_->List(true)->size(), 1u);
  EXPECT_EQ(runner_->launches().size(), 1u) << "the repeat must not run anything";
  EXPECT_EQ(EventsOf(first->execution.id, journal::kind::kExecutionCreated).size(), 1u);
  auto created = EventsOf(first->execution.id, journal::kind::kExecutionCreated);
  EXPECT_EQ(JsonText(created[0].payload, "$.requestId"), "nightly-2025-11-24");

  // Still the same execution after it ended.
  ASSERT_TRUE(runner_->Exit("a", 0));
  ASSERT_TRUE(RunUntilEnded(first->execution.id));
  auto third = manager_->Create(spec, lib_, /*start=*/true);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->existing);
  EXPECT_EQ(third->execution.id, first->execution.id);
  EXPECT_EQ(third->execution.status, ExecutionState::kCompleted);
}

TEST_F(LifecycleTest, InvalidSpecIsRefusedNamingTheProblemAndLeavesNoTrace) {
  auto cycle =
      manager_->Create(Dag({Node("a", {"c"}), Node("b", {"a"}), Node("c", {"b"})}), lib_, true);
  ASSERT_FALSE(cycle.ok());
  EXPECT_EQ(cycle.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cycle.status().message().find("cycle"), std::string::npos) << cycle.status().message();
  auto unknown = manager_->Create(Dag({Node("a", {"ghost"})}), lib_, true);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("ghost"), std::string::npos)
      << unknown.status().message();
  EXPECT_EQ(manager_->Create("not json", lib_, true).status().code(), StatusCode::kInvalidArgument);

  ManagerOptions options;
  options.spec_limits.max_spec_bytes = 64;
  MakeManager(options);
  auto large = manager_->Create(Dag({Node("a"), Node("b"), Node("c")}), lib_, true);
  EXPECT_EQ(large.status().code(), StatusCode::kTooLarge);

  EXPECT_TRUE(manager_->List(true)->empty());
  auto all = journal_->ReadAll();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty()) << "a refused spec is not journaled";
  EXPECT_TRUE(runner_->launches().empty());
}

TEST_F(LifecycleTest, ListShowsActiveExecutionsByDefaultAndAllOnRequestOldestFirst) {
  std::string done = Create(Dag({Node("d1")}));
  ASSERT_TRUE(runner_->Exit("d1", 0));
  ASSERT_TRUE(RunUntilEnded(done));
  manual_clock_.Advance(1ms);
  std::string idle = Create(Dag({Node("i1")}), /*start=*/false);
  manual_clock_.Advance(1ms);
  std::string running = Create(Dag({Node("r1")}));
  Settle();

  auto ids = [](const std::vector<ExecutionView>& views) {
    V out;
    for (const auto& view : views) out.push_back(view.id);
    return out;
  };
  EXPECT_EQ(ids(*manager_->List(false)), (V{idle, running}));
  EXPECT_EQ(ids(*manager_->List(true)), (V{done, idle, running}));
  EXPECT_EQ(manager_->active_count(), 2u);
  EXPECT_LT(done, idle) << "ids sort by creation time";
  EXPECT_LT(idle, running) << "ids sort by creation time";

  ASSERT_TRUE(runner_->Exit("r1", 0));
  ASSERT_TRUE(RunUntilEnded(running));
  EXPECT_EQ(ids(*manager_->List(false)), V{idle});
}

TEST_F(LifecycleTest, GetShowsEachNodeAsTheUserWouldSeeIt) {
  std::string id = Create(Dag({Node("ok"), Node("bad"), Node("sig"), Node("later", {"ok"})},
                              R"("maxParallel": 3, "onFailure": "continue", "name": "nightly")"
                              R"()"),
                          /*start=*/false);
  ExecutionView idle = View(id);
  EXPECT_EQ(idle.status, ExecutionState::kIdle);
  EXPECT_EQ(idle.created_at, manual_clock_.WallMs());
  EXPECT_FALSE(idle.started_at.has_value());
  EXPECT_FALSE(idle.ended_at.has_value());
  ASSERT_EQ(idle.nodes.size(), 4u);
  for (const auto& node : idle.nodes) {
    EXPECT_EQ(node.status, NodeStatus::kPending) << node.id;
    EXPECT_EQ(node.attempt, 0) << node.id;
    EXPECT_FALSE(node.pid.has_value()) << node.id;
  }

  manual_clock_.Advance(1000ms);
  ASSERT_TRUE(manager_->Start(id, lib_).ok());
  Settle();
  ExecutionView running = View(id);
  EXPECT_EQ(running.started_at, manual_clock_.WallMs());
  NodeView ok = NodeOf(id, "ok");
  EXPECT_EQ(ok.status, NodeStatus::kRunning);
  EXPECT_EQ(ok.attempt, 1);
  EXPECT_EQ(ok.pid, runner_->Tree("ok")->identity().pid);
  EXPECT_EQ(ok.started_at, manual_clock_.WallMs());
  EXPECT_FALSE(ok.ended_at.has_value());

  manual_clock_.Advance(500ms);
  ASSERT_TRUE(runner_->Exit("ok", 0));
  ASSERT_TRUE(runner_->Exit("bad", 7));
  ASSERT_TRUE(runner_->KillBySignal("sig", SIGKILL));
  Settle();
  ok = NodeOf(id, "ok");
  EXPECT_EQ(ok.status, NodeStatus::kSucceeded);
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_FALSE(ok.signal.has_value());
  EXPECT_EQ(ok.ended_at, manual_clock_.WallMs());
  NodeView bad = NodeOf(id, "bad");
  EXPECT_EQ(bad.status, NodeStatus::kFailed);
  EXPECT_EQ(bad.exit_code, 7);
  EXPECT_FALSE(bad.signal.has_value());
  NodeView sig = NodeOf(id, "sig");
  EXPECT_EQ(sig.status, NodeStatus::kFailed);
  EXPECT_FALSE(sig.exit_code.has_value()) << "a node ended by a signal has no exit code";
  EXPECT_EQ(sig.signal, "SIGKILL");

  ASSERT_TRUE(runner_->Exit("later", 0));
  ASSERT_TRUE(RunUntilEnded(id));
  ExecutionView ended = View(id);
  EXPECT_EQ(ended.name, "nightly");
  EXPECT_EQ(ended.status, ExecutionState::kFailed);
  EXPECT_EQ(ended.ended_at, manual_clock_.WallMs());
}

TEST_F(LifecycleTest, ResumeWhileAPauseIsStillFreezingLeavesNothingFrozen) {
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
  Settle();
  runner_->Tree("b")->HoldNextFreeze();
  int pause_answers = 0;
  manager_->Pause(id, lib_, [&](Result<ExecutionView>) { ++pause_answers; });
  Settle();
  auto resumed = ResumeAndWait(id);
  Settle();
  EXPECT_EQ(pause_answers, 1);
  if (resumed.ok()) {
    EXPECT_EQ(StateOf(id), ExecutionState::kRunning);
    EXPECT_FALSE(runner_->Tree("a")->paused());
    EXPECT_FALSE(runner_->Tree("b")->paused()) << "a running execution with a frozen tree";
  }
  EXPECT_EQ(ExecutionRowOf(id)->status, Name(StateOf(id)));
  runner_->Exit("a", 0);
  runner_->Exit("b", 0);
  if (StateOf(id) == ExecutionState::kPaused) {
    ASSERT_TRUE(ResumeAndWait(id).ok());
  }
  ASSERT_TRUE(RunUntilEnded(id));
}

TEST_F(LifecycleTest, PauseThatCannotFreezeATreeIsNotReportedAsPaused) {
  // design.md, "Truthful pause": an execution said to be paused has every tree frozen.
  std::string id = Create(Dag({Node("a"), Node("b")}, R"("maxParallel": 2)"));
  Settle();
  runner_->Tree("b")->FailNextPause(Status::IoError("cgroup.freeze: Permission denied"));
  auto paused = PauseAndWait(id);
  if (paused.ok() && paused->status == ExecutionState::kPaused) {
    EXPECT_TRUE(runner_->Tree("b")->paused()) << "reported paused while b still runs";
  }
  if (StateOf(id) == ExecutionState::kPaused) {
    EXPECT_TRUE(runner_->Tree("a")->paused());
    EXPECT_TRUE(runner_->Tree("b")->paused()) << "reported paused while b still runs";
    ASSERT_TRUE(ResumeAndWait(id).ok());
  }
  runner_->Exit("a", 0);
  runner_->Exit("b", 0);
  ASSERT_TRUE(RunUntilEnded(id));
}

}  // namespace
}  // namespace warden::lifecycle_test

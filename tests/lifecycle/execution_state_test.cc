// The transition table of execution_state.h, cell by cell, and the names the API prints.
#include "lifecycle/execution_state.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "lifecycle/execution_view.h"

namespace warden::lifecycle {
namespace {

using S = ExecutionState;
using T = ExecutionTrigger;

// design.md's state machine; nullopt: refused.
std::optional<S> Allowed(S from, T trigger) {
  switch (trigger) {
    case T::kStart:
      return from == S::kIdle ? std::optional(S::kRunning) : std::nullopt;
    case T::kPause:
      return from == S::kRunning ? std::optional(S::kPaused) : std::nullopt;
    case T::kResume:
      return from == S::kPaused ? std::optional(S::kRunning) : std::nullopt;
    case T::kStop:
      if (from == S::kIdle) return S::kStopped;
      if (from == S::kRunning || from == S::kPaused) return S::kStopping;
      return std::nullopt;  // stopping: the manager joins; ended: refused
    case T::kStopFinished:
      return from == S::kStopping ? std::optional(S::kStopped) : std::nullopt;
    case T::kStopFailed:
      return from == S::kStopping ? std::optional(S::kFailed) : std::nullopt;
    case T::kAllSucceeded:
      return from == S::kRunning ? std::optional(S::kCompleted) : std::nullopt;
    case T::kNothingLeft:
      return from == S::kRunning ? std::optional(S::kFailed) : std::nullopt;
  }
  return std::nullopt;
}

TEST(ExecutionStateTest, TransitionTableMatchesTheDesignCellByCell) {
  const std::string id = "0193aaaa";
  for (int s = 0; s < kExecutionStateCount; ++s) {
    for (int t = 0; t < kExecutionTriggerCount; ++t) {
      auto from = static_cast<S>(s);
      auto trigger = static_cast<T>(t);
      auto result = Transition(from, trigger, id);
      auto expected = Allowed(from, trigger);
      std::string cell = std::string(ExecutionTriggerName(trigger)) + " from " +
                         std::string(ExecutionStateName(from));
      if (expected) {
        ASSERT_TRUE(result.ok()) << cell << ": " << result.status().ToString();
        EXPECT_EQ(*result, *expected) << cell;
      } else {
        ASSERT_FALSE(result.ok()) << cell << " should be refused";
        EXPECT_EQ(result.status().code(), StatusCode::kConflict) << cell;
        const std::string message = result.status().message();
        EXPECT_NE(message.find(ExecutionTriggerName(trigger)), std::string::npos)
            << cell << ": " << message;
        EXPECT_NE(message.find(ExecutionStateName(from)), std::string::npos)
            << cell << ": " << message;
        EXPECT_NE(message.find(id), std::string::npos) << cell << ": " << message;
      }
    }
  }
}

TEST(ExecutionStateTest, NamesAreTheOnesTheApiPrints) {
  EXPECT_EQ(ExecutionStateName(S::kIdle), "idle");
  EXPECT_EQ(ExecutionStateName(S::kRunning), "running");
  EXPECT_EQ(ExecutionStateName(S::kPaused), "paused");
  EXPECT_EQ(ExecutionStateName(S::kStopping), "stopping");
  EXPECT_EQ(ExecutionStateName(S::kStopped), "stopped");
  EXPECT_EQ(ExecutionStateName(S::kCompleted), "completed");
  EXPECT_EQ(ExecutionStateName(S::kFailed), "failed");
  EXPECT_EQ(ExecutionTriggerName(T::kStart), "start");
  EXPECT_EQ(ExecutionTriggerName(T::kPause), "pause");
  EXPECT_EQ(ExecutionTriggerName(T::kResume), "resume");
  EXPECT_EQ(ExecutionTriggerName(T::kStop), "stop");
  for (S terminal : {S::kStopped, S::kCompleted, S::kFailed}) EXPECT_TRUE(IsTerminal(terminal));
  for (S active : {S::kIdle, S::kRunning, S::kPaused, S::kStopping}) {
    EXPECT_TRUE(IsActive(active));
  }

  EXPECT_EQ(NodeStatusName(NodeStatus::kPending), "pending");
  EXPECT_EQ(NodeStatusName(NodeStatus::kRunning), "running");
  EXPECT_EQ(NodeStatusName(NodeStatus::kPaused), "paused");
  EXPECT_EQ(NodeStatusName(NodeStatus::kStopping), "stopping");
  EXPECT_EQ(NodeStatusName(NodeStatus::kSucceeded), "succeeded");
  EXPECT_EQ(NodeStatusName(NodeStatus::kFailed), "failed");
  EXPECT_EQ(NodeStatusName(NodeStatus::kSkipped), "skipped");
  EXPECT_EQ(NodeStatusName(NodeStatus::kStopped), "stopped");
  EXPECT_EQ(NodeStatusName(NodeStatus::kLost), "lost");
  EXPECT_EQ(NodeStatusName(NodeStatus::kUnkillable), "unkillable");
}

TEST(ExecutionStateTest, StopReasonsRoundTripAndABadOneIsNamed) {
  for (StopReason reason : {StopReason::kUserAbort, StopReason::kTimeout, StopReason::kError,
                            StopReason::kServerShutdown, StopReason::kCrashRecovery}) {
    auto parsed = ParseStopReason(StopReasonName(reason));
    ASSERT_TRUE(parsed.ok()) << StopReasonName(reason);
    EXPECT_EQ(*parsed, reason);
  }
  EXPECT_EQ(StopReasonName(StopReason::kUserAbort), "user_abort");
  EXPECT_EQ(StopReasonName(StopReason::kServerShutdown), "server_shutdown");
  EXPECT_EQ(StopReasonName(StopReason::kCrashRecovery), "crash_recovery");
  auto bad = ParseStopReason("because");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("because"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ParseStopReason("").ok());
  EXPECT_FALSE(ParseStopReason("USER_ABORT").ok());
}

}  // namespace
}  // namespace warden::lifecycle

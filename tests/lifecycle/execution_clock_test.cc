// ExecutionClock's arithmetic: pauses, the cost of an attempt, and what is left of a timeout.
#include "lifecycle/execution_clock.h"

#include <gtest/gtest.h>

#include <chrono>

namespace warden::lifecycle {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = ExecutionClock::Clock;

const Clock::time_point kT0 = Clock::time_point(std::chrono::hours(1000));

TEST(ExecutionClockTest, PausedTotalCountsThePauseInProgress) {
  ExecutionClock clock(milliseconds(0));
  clock.BeginPause(kT0);
  EXPECT_TRUE(clock.paused());
  EXPECT_EQ(clock.PauseLength(kT0 + seconds(3)), seconds(3));
  EXPECT_EQ(clock.PausedTotal(kT0 + seconds(3)), seconds(3));
  clock.EndPause(kT0 + seconds(5));
  EXPECT_FALSE(clock.paused());
  EXPECT_EQ(clock.PauseLength(kT0 + seconds(9)), Clock::duration{});
  EXPECT_EQ(clock.PausedTotal(kT0 + seconds(9)), seconds(5));
}

TEST(ExecutionClockTest, PausesAddUp) {
  ExecutionClock clock(milliseconds(0));
  clock.BeginPause(kT0);
  clock.EndPause(kT0 + seconds(2));
  clock.BeginPause(kT0 + seconds(10));
  EXPECT_EQ(clock.PausedTotal(kT0 + seconds(11)), seconds(3));
}

TEST(ExecutionClockTest, AttemptIsBilledForUnpausedSecondsPlusWhatItReported) {
  ExecutionClock clock(milliseconds(0));
  const ExecutionClock::LaunchMark launch = clock.MarkLaunch(kT0);
  EXPECT_DOUBLE_EQ(clock.AttemptCost(launch, 0.5, 0.25, kT0 + seconds(4)), 0.5 * 4 + 0.25);
}

TEST(ExecutionClockTest, AttemptIsNotBilledWhileThePauseLasts) {
  ExecutionClock clock(milliseconds(0));
  const ExecutionClock::LaunchMark launch = clock.MarkLaunch(kT0);
  clock.BeginPause(kT0 + seconds(2));
  // Frozen from 2s on: still 2s of running at 7s.
  EXPECT_DOUBLE_EQ(clock.AttemptCost(launch, 1.0, 0, kT0 + seconds(7)), 2.0);
  clock.EndPause(kT0 + seconds(10));
  EXPECT_EQ(clock.PausedSince(launch, kT0 + seconds(11)), seconds(8));
  EXPECT_DOUBLE_EQ(clock.AttemptCost(launch, 1.0, 0, kT0 + seconds(11)), 3.0);
}

TEST(ExecutionClockTest, PauseBeforeTheLaunchIsNotTheAttempts) {
  ExecutionClock clock(milliseconds(0));
  clock.BeginPause(kT0);
  clock.EndPause(kT0 + seconds(60));
  const ExecutionClock::LaunchMark launch = clock.MarkLaunch(kT0 + seconds(60));
  EXPECT_EQ(launch.paused_before, seconds(60));
  EXPECT_EQ(clock.PausedSince(launch, kT0 + seconds(65)), Clock::duration{});
  EXPECT_DOUBLE_EQ(clock.AttemptCost(launch, 2.0, 0, kT0 + seconds(65)), 10.0);
}

TEST(ExecutionClockTest, AttemptWithoutARateCostsWhatItReported) {
  ExecutionClock clock(milliseconds(0));
  const ExecutionClock::LaunchMark launch = clock.MarkLaunch(kT0);
  EXPECT_DOUBLE_EQ(clock.AttemptCost(launch, 0, 1.5, kT0 + seconds(100)), 1.5);
}

TEST(ExecutionClockTest, WholeTimeoutIsLeftAtFirst) {
  ExecutionClock clock(milliseconds(30'000));
  EXPECT_EQ(clock.timeout_left(), milliseconds(30'000));
}

TEST(ExecutionClockTest, StoppedTimerKeepsWhatWasLeft) {
  ExecutionClock clock(milliseconds(30'000));
  clock.KeepTimeoutLeft(kT0 + seconds(12), kT0);
  EXPECT_EQ(clock.timeout_left(), seconds(12));
}

TEST(ExecutionClockTest, TimerPastItsExpiryLeavesNothing) {
  ExecutionClock clock(milliseconds(30'000));
  clock.KeepTimeoutLeft(kT0, kT0 + seconds(1));
  EXPECT_EQ(clock.timeout_left(), Clock::duration{});
  EXPECT_EQ(ExecutionClock::TimeLeft(kT0, kT0 + seconds(1)), Clock::duration{});
  EXPECT_EQ(ExecutionClock::TimeLeft(kT0 + seconds(1), kT0), seconds(1));
}

TEST(ExecutionClockTest, RestoredTimeoutCountsTheDowntime) {
  ExecutionClock clock(milliseconds(30'000));
  clock.RestoreTimeout(/*started_at_ms=*/1'000'000, /*now_ms=*/1'020'000);
  EXPECT_EQ(clock.timeout_left(), milliseconds(10'000));
}

TEST(ExecutionClockTest, RestoredTimeoutLeavesOutTheTimeSpentPaused) {
  ExecutionClock clock(milliseconds(30'000));
  clock.RestoreTimeout(/*started_at_ms=*/1'000'000, /*now_ms=*/1'045'000, /*paused_ms=*/40'000);
  EXPECT_EQ(clock.timeout_left(), milliseconds(25'000));
}

TEST(ExecutionClockTest, RestoredPastItsTimeoutHasNothingLeft) {
  ExecutionClock clock(milliseconds(30'000));
  clock.RestoreTimeout(/*started_at_ms=*/1'000'000, /*now_ms=*/1'045'000);
  EXPECT_EQ(clock.timeout_left(), Clock::duration{});
}

TEST(ExecutionClockTest, RestoredWithWallClockBehindTheStartHasTheWholeTimeout) {
  ExecutionClock clock(milliseconds(30'000));
  clock.RestoreTimeout(/*started_at_ms=*/1'000'000, /*now_ms=*/999'000);
  EXPECT_EQ(clock.timeout_left(), milliseconds(30'000));
}

}  // namespace
}  // namespace warden::lifecycle

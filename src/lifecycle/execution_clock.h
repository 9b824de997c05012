// ExecutionClock: one execution's own time. Its cost and its timeouts count only running,
// unpaused time, so the clock keeps the pauses (the one in progress and the total), prices a
// node attempt from its launch mark, and keeps what is left of the execution's timeout while
// its timer is stopped. A value: it reads no clock of its own, every time point is passed in.
//
// Threading: the manager's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace warden::lifecycle {

class ExecutionClock {
 public:
  using Clock = std::chrono::steady_clock;

  // Where an attempt started on this clock: taken by MarkLaunch when it launches.
  struct LaunchMark {
    Clock::time_point at{};
    Clock::duration paused_before{};  // the execution's paused total at launch
  };

  // `timeout`: the execution's timeoutMs (zero: none), all of it left.
  explicit ExecutionClock(std::chrono::milliseconds timeout);

  // True between BeginPause and EndPause.
  bool paused() const { return paused_since_.has_value(); }
  // The execution pauses at `now`. Only when not paused().
  void BeginPause(Clock::time_point now);
  // How long the pause in progress has lasted at `now`; zero when not paused().
  Clock::duration PauseLength(Clock::time_point now) const;
  // The pause ends at `now` and is added to the total. Only when paused().
  void EndPause(Clock::time_point now);
  // All the time paused up to `now`, the pause in progress included.
  Clock::duration PausedTotal(Clock::time_point now) const;

  // The mark of an attempt launched at `now`.
  LaunchMark MarkLaunch(Clock::time_point now) const;
  // Time paused between `launch` and `now`.
  Clock::duration PausedSince(const LaunchMark& launch, Clock::time_point now) const;
  // What the attempt launched at `launch` has cost by `now`: `usd_per_second` for every
  // second it ran unpaused, plus `reported_usd`, the cost the node itself reported.
  double AttemptCost(const LaunchMark& launch, double usd_per_second, double reported_usd,
                     Clock::time_point now) const;

  // What is left of the execution's timeout, to arm its timer with.
  Clock::duration timeout_left() const { return timeout_left_; }
  // The execution's timer, due at `expiry`, is stopped at `now`: keeps what was left of it.
  void KeepTimeoutLeft(Clock::time_point expiry, Clock::time_point now);
  // A restored execution: its timeout counts from `started_at_ms` in wall time (ms since the
  // epoch), less `paused_ms` it spent paused, the daemon's downtime up to `now_ms` included;
  // nothing is left once it is past.
  void RestoreTimeout(int64_t started_at_ms, int64_t now_ms, int64_t paused_ms = 0);

  // What is left at `now` of a timer due at `expiry`; zero once it is past.
  static Clock::duration TimeLeft(Clock::time_point expiry, Clock::time_point now);

 private:
  std::chrono::milliseconds timeout_;  // the execution's timeoutMs; zero: none
  Clock::duration timeout_left_;
  Clock::duration paused_total_{};  // the pauses that ended
  std::optional<Clock::time_point> paused_since_;
};

}  // namespace warden::lifecycle

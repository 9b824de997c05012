#include "lifecycle/execution_clock.h"

#include <algorithm>

namespace warden::lifecycle {

ExecutionClock::ExecutionClock(std::chrono::milliseconds timeout)
    : timeout_(timeout), timeout_left_(timeout) {}

void ExecutionClock::BeginPause(Clock::time_point now) { paused_since_ = now; }

ExecutionClock::Clock::duration ExecutionClock::PauseLength(Clock::time_point now) const {
  return paused_since_ ? now - *paused_since_ : Clock::duration{};
}

void ExecutionClock::EndPause(Clock::time_point now) {
  paused_total_ += now - *paused_since_;
  paused_since_.reset();
}

ExecutionClock::Clock::duration ExecutionClock::PausedTotal(Clock::time_point now) const {
  return paused_total_ + PauseLength(now);
}

ExecutionClock::LaunchMark ExecutionClock::MarkLaunch(Clock::time_point now) const {
  return LaunchMark{now, PausedTotal(now)};
}

ExecutionClock::Clock::duration ExecutionClock::PausedSince(const LaunchMark& launch,
                                                            Clock::time_point now) const {
  return PausedTotal(now) - launch.paused_before;
}

double ExecutionClock::AttemptCost(const LaunchMark& launch, double usd_per_second,
                                   double reported_usd, Clock::time_point now) const {
  // A paused attempt's tree is frozen: it is not billed for the pause.
  Clock::duration ran = (now - launch.at) - PausedSince(launch, now);
  double seconds = std::max(0.0, std::chrono::duration<double>(ran).count());
  return usd_per_second * seconds + reported_usd;
}

void ExecutionClock::KeepTimeoutLeft(Clock::time_point expiry, Clock::time_point now) {
  timeout_left_ = TimeLeft(expiry, now);
}

void ExecutionClock::RestoreTimeout(int64_t started_at_ms, int64_t now_ms, int64_t paused_ms) {
  // Wall time, not the steady clock: the steady clock does not survive the daemon.
  const int64_t elapsed = std::max<int64_t>(0, now_ms - started_at_ms - paused_ms);
  timeout_left_ = std::chrono::milliseconds(std::max<int64_t>(0, timeout_.count() - elapsed));
}

ExecutionClock::Clock::duration ExecutionClock::TimeLeft(Clock::time_point expiry,
                                                         Clock::time_point now) {
  return std::max(Clock::duration{}, expiry - now);
}

}  // namespace warden::lifecycle

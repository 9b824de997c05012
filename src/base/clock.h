// Clock: wall time for the journal and steady time for durations, behind one seam so that
// tests can drive time by hand.
#pragma once

#include <chrono>
#include <cstdint>

namespace warden {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (what the journal's at_ms and the API's times hold).
  virtual int64_t WallMs() const = 0;
  // A monotonic time point for measuring durations; never goes back.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
};

// The real clocks (CLOCK_REALTIME and CLOCK_MONOTONIC). Thread-safe.
class SystemClock final : public Clock {
 public:
  int64_t WallMs() const override;
  std::chrono::steady_clock::time_point Now() const override;
  // A process-wide instance.
  static const SystemClock& Instance();
};

}  // namespace warden

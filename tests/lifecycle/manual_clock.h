// ManualClock: a warden::Clock that moves only when the test says so, for cost and duration
// arithmetic. Asio timers still run on real time; a test that needs both keeps the two apart.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "base/clock.h"

namespace warden::lifecycle_test {

class ManualClock final : public Clock {
 public:
  // 2025-11-24T16:00:00Z: a plausible wall time, so journal rows look real.
  static constexpr int64_t kStartWallMs = 1'764'000'000'000;

  int64_t WallMs() const override { return kStartWallMs + offset_ms_.load(); }
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::hours(1000)) +
           std::chrono::milliseconds(offset_ms_.load());
  }
  // Moves both clocks forward by `by`.
  void Advance(std::chrono::milliseconds by) { offset_ms_ += by.count(); }
  // Milliseconds advanced since construction.
  int64_t elapsed_ms() const { return offset_ms_.load(); }

 private:
  std::atomic<int64_t> offset_ms_{0};
};

}  // namespace warden::lifecycle_test

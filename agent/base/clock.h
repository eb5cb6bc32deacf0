// Time sources. Intervals and deadlines use the monotonic clock; only timestamps
// that people read use wall time. Everything that needs time takes a Clock&, so unit
// tests drive the agent in simulated time (FakeClock) and never sleep.
#pragma once

#include <atomic>
#include <chrono>

namespace poolkeeper {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::nanoseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
  virtual WallTime wall() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return SteadyClock::now(); }
  WallTime wall() const override { return std::chrono::system_clock::now(); }
};

// Simulated time: starts at an arbitrary fixed point and moves only when told.
// Thread-safe for reads while one thread advances it.
class FakeClock final : public Clock {
 public:
  FakeClock() = default;
  SteadyTime now() const override { return SteadyTime(Duration(ns_.load())); }
  WallTime wall() const override {
    return WallTime(std::chrono::duration_cast<WallTime::duration>(
        std::chrono::seconds(1'800'000'000) + Duration(ns_.load())));
  }
  void advance(Duration d) { ns_ += d.count(); }
  void advance_to(SteadyTime t) {
    if (t > now()) ns_ = t.time_since_epoch().count();
  }

 private:
  std::atomic<long long> ns_{1'000'000'000'000LL};
};

inline double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }
inline double unix_seconds(WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace poolkeeper

// Time sources. Intervals and deadlines use the monotonic clock; only timestamps
// that people read use wall time. Everything that needs time takes a Clock&, so unit
// tests drive the agent in simulated time (FakeClock) and never sleep.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <thread>

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
  // A pause between retries (not a wait for an event, which needs a condition
  // variable): real for SystemClock, a step forward in simulated time for FakeClock.
  virtual void sleep_for(Duration d) const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return SteadyClock::now(); }
  WallTime wall() const override { return std::chrono::system_clock::now(); }
  void sleep_for(Duration d) const override { std::this_thread::sleep_for(d); }
};

// The real clock, for waits the kernel measures (a socket's or a transfer's deadline
// meets poll()'s real timeout) and for code no Clock is handed to.
inline const Clock& real_clock() {
  static const SystemClock clock;
  return clock;
}

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
  void sleep_for(Duration d) const override { ns_ += d.count(); }
  void advance(Duration d) { ns_ += d.count(); }
  void advance_to(SteadyTime t) {
    if (t > now()) ns_ = t.time_since_epoch().count();
  }

 private:
  mutable std::atomic<long long> ns_{1'000'000'000'000LL};
};

// Whole milliseconds from `now` to `deadline`, rounded down: 0 once less than one is
// left, and INT_MAX - 1 at most (poll_ms adds one). What a wait the kernel measures is
// given (a poll() timeout, libcurl's).
inline int ms_left(SteadyTime deadline, SteadyTime now) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, std::numeric_limits<int>::max() - 1));
}
inline int ms_left(SteadyTime deadline, const Clock& clock = real_clock()) {
  return ms_left(deadline, clock.now());
}

// A poll() timeout for a wait that must not end before `deadline`: ms_left plus one
// (poll() would wake up to a millisecond early), and 0 once less than one is left.
inline int poll_ms(SteadyTime deadline, const Clock& clock = real_clock()) {
  int left = ms_left(deadline, clock);
  return left == 0 ? 0 : left + 1;
}

inline double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }
inline double unix_seconds(WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace poolkeeper

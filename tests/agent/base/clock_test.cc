#include "agent/base/clock.h"

#include <gtest/gtest.h>

#include <limits>

using namespace poolkeeper;
using namespace std::chrono_literals;

// What is left until a deadline, as poll() and libcurl are given it, in simulated time.
TEST(ClockTest, MillisecondsLeftRoundDown) {
  FakeClock c;
  SteadyTime d = c.now() + 1500us;
  EXPECT_EQ(ms_left(d, c), 1);
  EXPECT_EQ(ms_left(d, c.now()), 1);
  c.advance(600us);  // 900 us left: less than a whole millisecond
  EXPECT_EQ(ms_left(d, c), 0);
  c.advance(1s);  // passed
  EXPECT_EQ(ms_left(d, c), 0);
  EXPECT_EQ(ms_left(c.now() + 2h, c), 7'200'000);
}

TEST(ClockTest, PollTimeoutNeverEndsBeforeTheDeadline) {
  FakeClock c;
  SteadyTime d = c.now() + 1500us;
  EXPECT_EQ(poll_ms(d, c), 2);  // 1.5 ms left: poll() for 1 would wake early
  c.advance(500us);
  EXPECT_EQ(poll_ms(d, c), 2);  // exactly 1 ms left
  c.advance(1us);
  EXPECT_EQ(poll_ms(d, c), 0);  // less than a whole one left: due
  c.advance(1s);
  EXPECT_EQ(poll_ms(d, c), 0);
}

TEST(ClockTest, FarDeadlinesFitAnInt) {
  FakeClock c;
  SteadyTime far = c.now() + std::chrono::hours(24 * 365 * 100);
  EXPECT_EQ(ms_left(far, c), std::numeric_limits<int>::max() - 1);
  EXPECT_EQ(poll_ms(far, c), std::numeric_limits<int>::max());
}

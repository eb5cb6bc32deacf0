// When probe results wake the owner, and that they reach it in order.
#include "agent/runtime/result_batch.h"

#include <gtest/gtest.h>

#include <map>

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {

ProbeResult result(const std::string& check, uint64_t seq) {
  return {check, 1, seq, Result::pass("ok " + std::to_string(seq))};
}

}  // namespace

TEST(ResultBatchTest, WakesOnlyAWaitingOwnerWhoseTurnIsFarOff) {
  FakeClock clock;
  ResultBatch b(25ms);
  std::vector<ProbeResult> out;
  // Busy (in a turn, as at the start): it looks at the queue before it waits.
  EXPECT_FALSE(b.push(result("a", 1), clock.now()));
  b.take(out);
  ASSERT_EQ(out.size(), 1u);
  // Waiting for a turn 10 ms away: the result waits for it.
  b.waiting_until(clock.now() + 10ms);
  EXPECT_FALSE(b.push(result("a", 2), clock.now()));
  b.take(out);
  // Waiting for a turn 1 s away (few checks): woken once, not again for the next ones.
  b.waiting_until(clock.now() + 1s);
  EXPECT_TRUE(b.push(result("a", 3), clock.now()));
  EXPECT_FALSE(b.push(result("b", 1), clock.now()));
  b.take(out);
  EXPECT_EQ(out.size(), 2u);
  // Its turn comes closer while it waits: 30 ms away at first, 20 ms later on.
  b.waiting_until(clock.now() + 30ms);
  clock.advance(10ms);
  EXPECT_FALSE(b.push(result("a", 4), clock.now()));
  b.take(out);
  // A wake-up that was sent and taken does not stop the next one.
  b.waiting_until(clock.now() + 1s);
  EXPECT_TRUE(b.push(result("a", 5), clock.now()));
  b.take(out);
  b.waiting_until(clock.now() + 1s);
  EXPECT_TRUE(b.push(result("a", 6), clock.now()));
}

// A check falling, rising or hurried by its unit awaits its result: it does not ride
// along with the next turn, however near.
TEST(ResultBatchTest, AnAwaitedResultWakesAWaitingOwnerAtOnce) {
  FakeClock clock;
  ResultBatch b(50ms);
  std::vector<ProbeResult> out;
  b.take(out);
  b.waiting_until(clock.now() + 10ms);
  EXPECT_FALSE(b.push(result("steady", 1), clock.now()));  // rides along
  ProbeResult r = result("falling", 1);
  r.awaited = true;
  EXPECT_TRUE(b.push(r, clock.now()));
  r.seq = 2;
  EXPECT_FALSE(b.push(r, clock.now()));  // a wake-up is on its way already
  b.take(out);
  EXPECT_EQ(out.size(), 3u);
  r.seq = 3;
  EXPECT_FALSE(b.push(r, clock.now()));  // in a turn: it looks at the queue before it waits
}

TEST(ResultBatchTest, HandsOverEveryResultInOrderPerCheck) {
  FakeClock clock;
  ResultBatch b(25ms);
  std::vector<ProbeResult> out{result("stale", 99)};
  b.waiting_until(clock.now() + 5ms);
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    b.push(result("a", seq), clock.now());
    if (seq % 3 == 0) b.push(result("b", seq), clock.now());
  }
  EXPECT_FALSE(b.empty());
  b.take(out);
  EXPECT_TRUE(b.empty());
  ASSERT_EQ(out.size(), 50u + 16u);  // what was there before is gone
  std::map<std::string, uint64_t> last;
  for (const auto& r : out) {
    EXPECT_GT(r.seq, last[r.check]) << r.check;
    last[r.check] = r.seq;
    EXPECT_EQ(r.result.reason, "ok " + std::to_string(r.seq));
  }
  EXPECT_EQ(last["a"], 50u);
  EXPECT_EQ(last["b"], 48u);
  b.take(out);
  EXPECT_TRUE(out.empty());
}

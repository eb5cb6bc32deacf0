#include "agent/model/health.h"

#include <gtest/gtest.h>

#include <string>

using namespace poolkeeper;

namespace {

// Feeds a string of results ('+' pass, '-' fail) and returns the states after each,
// as a string: 'U' unknown, 'H' healthy, 'D' unhealthy (down).
std::string run(int rise, int fall, const std::string& inputs, std::string* changes = nullptr) {
  CheckState s(rise, fall);
  std::string out;
  for (char c : inputs) {
    Change ch = s.submit(c == '+');
    if (changes) *changes += ch == Change::kChanged ? 'C' : ch == Change::kPending ? 'p' : '.';
    out += s.health() == CheckHealth::kHealthy ? 'H' : s.health() == CheckHealth::kUnhealthy ? 'D' : 'U';
  }
  return out;
}

}  // namespace

TEST(CheckStateTest, TableOfTransitions) {
  struct Case {
    int rise, fall;
    const char* in;
    const char* states;
    const char* changes;
  };
  const Case cases[] = {
      // start-up gating: unknown until `rise` successes; the first result does not bypass
      {3, 2, "+++", "UUH", "ppC"},
      {1, 1, "+", "H", "C"},
      {3, 2, "--", "UD", "pC"},
      // a failure during the rise restarts the rise
      {3, 2, "++-+++", "UUUUUH", "pppppC"},
      // fall edge: exactly `fall` consecutive failures
      {2, 2, "++-+--", "UHHHHD", "pCp.pC"},
      // recovery needs `rise` consecutive successes
      {2, 3, "++---++", "UHHHDDH", "pCppCpC"},
      // flapping input never reaches either threshold once healthy
      {2, 2, "++-+-+-+-+", "UHHHHHHHHH", "pCp.p.p.p."},
      // flapping from down never rises
      {2, 2, "---+-+-+", "UDDDDDDD", "pC.p.p.p"},
      // steady states report unchanged
      {1, 1, "+++---", "HHHDDD", "C..C.."},
  };
  for (const Case& c : cases) {
    std::string changes;
    EXPECT_EQ(run(c.rise, c.fall, c.in, &changes), c.states) << c.in;
    EXPECT_EQ(changes, c.changes) << c.in;
  }
}

TEST(CheckStateTest, ChangingMeansAStreakAgainstTheState) {
  CheckState s(3, 2);
  EXPECT_FALSE(s.changing());  // no result yet
  s.submit(true);
  EXPECT_TRUE(s.changing());  // rising
  s.submit(true);
  s.submit(true);
  EXPECT_FALSE(s.changing());  // healthy, agrees
  s.submit(false);
  EXPECT_TRUE(s.changing());  // falling
  s.submit(false);
  EXPECT_FALSE(s.changing());  // unhealthy, agrees
  EXPECT_EQ(s.failures(), 2);
  EXPECT_EQ(s.successes(), 0);
}

TEST(EffectiveTest, OrderOfReasons) {
  AdminIntent pooled;
  AdminIntent depooled{Intent::kDepooled, "disk swap", "alice"};
  AdminIntent drained{Intent::kDrained, "", "bob"};
  EXPECT_EQ(decide_effective(Lifecycle::kRunning, pooled, "", false),
            (EffectiveState{Effective::kPooled, ""}));
  EXPECT_EQ(decide_effective(Lifecycle::kStarting, pooled, "", false),
            (EffectiveState{Effective::kNotPooled, "starting"}));
  EXPECT_EQ(decide_effective(Lifecycle::kStopping, depooled, "x", false),
            (EffectiveState{Effective::kNotPooled, "stopping"}));
  EXPECT_EQ(decide_effective(Lifecycle::kRunning, depooled, "check a unhealthy", false),
            (EffectiveState{Effective::kNotPooled, "depooled: disk swap"}));
  EXPECT_EQ(decide_effective(Lifecycle::kRunning, drained, "", false),
            (EffectiveState{Effective::kDrained, "drained"}));
  EXPECT_EQ(decide_effective(Lifecycle::kRunning, drained, "check a unhealthy: x", false),
            (EffectiveState{Effective::kNotPooled, "check a unhealthy: x"}));
  EXPECT_EQ(decide_effective(Lifecycle::kRunning, pooled, "check a unhealthy: x", false),
            (EffectiveState{Effective::kNotPooled, "check a unhealthy: x"}));
  EXPECT_EQ(decide_effective(Lifecycle::kRunning, pooled, "check a unhealthy: x", true),
            (EffectiveState{Effective::kPooled, "kept by floor: check a unhealthy: x"}));
}

TEST(IntentTest, NamesRoundTrip) {
  for (Intent i : {Intent::kPooled, Intent::kDepooled, Intent::kDrained, Intent::kInactive})
    EXPECT_EQ(parse_intent(intent_name(i)), i);
  EXPECT_FALSE(parse_intent("yes"));
}

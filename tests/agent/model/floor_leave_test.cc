// The leave without etcd (floor.h, floor_leave) in simulated time: a few hosts, each the
// real policy driven by the protocol driver of tests/harness/floor_sim.h, under a
// seeded random search over the order of every failure, recovery, depool,
// announcement, peer read and decision. After every step at least min_pooled hosts
// must be pooled (what they answer on /health). The same driver with a policy that
// ignores announcements (the floor before them) must find a schedule that empties the
// pool, so the search can see a broken rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "agent/model/floor.h"
#include "tests/harness/floor_sim.h"

using namespace poolkeeper;
using poolkeeper::testing::FloorSim;
using poolkeeper::testing::Policy;
using poolkeeper::testing::settled_error;

namespace {

// Runs `schedules` random schedules; returns the first violation's trace ("" if none).
std::string search(int n, int min_pooled, int schedules, const Policy& policy, bool check_settled) {
  for (int s = 0; s < schedules; ++s) {
    FloorSim<std::mt19937_64> sim(n, min_pooled, std::mt19937_64(0x5eed0000u + static_cast<uint64_t>(s)), policy);
    for (int k = 0; k < 300; ++k) {
      if (!sim.step()) break;
      if (sim.pooled() < min_pooled)
        return "schedule " + std::to_string(s) + ": " + std::to_string(sim.pooled()) + " pooled after " + sim.trace;
    }
    if (!check_settled) continue;
    sim.settle();
    std::string settled = settled_error(sim, min_pooled);
    if (!settled.empty()) return "schedule " + std::to_string(s) + ": " + settled;
  }
  return "";
}

constexpr int kSchedules = 10000;

}  // namespace

TEST(FloorLeaveTest, NeverBelowMinPooledTwoHostsMinOne) {
  EXPECT_EQ(search(2, 1, kSchedules, floor_leave, true), "");
}

TEST(FloorLeaveTest, NeverBelowMinPooledThreeHostsMinOne) {
  EXPECT_EQ(search(3, 1, kSchedules, floor_leave, true), "");
}

TEST(FloorLeaveTest, NeverBelowMinPooledThreeHostsMinTwo) {
  EXPECT_EQ(search(3, 2, kSchedules, floor_leave, true), "");
}

TEST(FloorLeaveTest, NeverBelowMinPooledTwoHostsMinTwo) {
  EXPECT_EQ(search(2, 2, kSchedules, floor_leave, true), "");
}

TEST(FloorLeaveTest, TheSearchFindsARuleThatIgnoresAnnouncements) {
  // The floor as it was: a leave counts peers whatever they announce.
  Policy blind = [](const std::string& self, LeaveKind kind, int m, const std::vector<FloorHost>& hosts) {
    std::vector<FloorHost> h = hosts;
    for (auto& f : h) f.leaving = false;
    return floor_leave(self, kind, m, h);
  };
  EXPECT_NE(search(2, 1, kSchedules, blind, false), "");
  EXPECT_NE(search(3, 2, kSchedules, blind, false), "");
}

TEST(FloorLeaveTest, TheSearchFindsALeaveThatTrustsALowerNamedContender) {
  // Counting a lower-named host that announced its own leave, as if it would stay.
  Policy trusting = [](const std::string& self, LeaveKind kind, int m, const std::vector<FloorHost>& hosts) {
    LeaveDecision d = floor_leave(self, kind, m, hosts);
    return d == LeaveDecision::kWait ? LeaveDecision::kLeave : d;
  };
  EXPECT_NE(search(3, 1, kSchedules, trusting, false), "");
}

TEST(FloorLeaveTest, DecisionsOfTwoContenders) {
  auto host = [](const std::string& name, bool pooled, bool healthy, bool leaving, bool known = true) {
    FloorHost h;
    h.name = name;
    h.known = known;
    h.pooled = pooled;
    h.healthy = healthy;
    h.failing = !healthy;
    h.leaving = leaving;
    return h;
  };
  // Both announced: the lower name stays, the higher one waits for it.
  EXPECT_EQ(floor_leave("a", LeaveKind::kFailing, 1, {host("b", true, false, true)}), LeaveDecision::kStay);
  EXPECT_EQ(floor_leave("b", LeaveKind::kFailing, 1, {host("a", true, false, true)}), LeaveDecision::kWait);
  // Once a stays (kept, unhealthy, no longer leaving), b counts it; an operator does not.
  EXPECT_EQ(floor_leave("b", LeaveKind::kFailing, 1, {host("a", true, false, false)}), LeaveDecision::kLeave);
  EXPECT_EQ(floor_leave("b", LeaveKind::kOperator, 1, {host("a", true, false, false)}), LeaveDecision::kStay);
  // A kept host with a higher name is not counted: it is the one that should go.
  EXPECT_EQ(floor_leave("a", LeaveKind::kFailing, 1, {host("b", true, false, false)}), LeaveDecision::kStay);
  // Two depools: a is refused, b waits for a's answer and then goes.
  EXPECT_EQ(floor_leave("a", LeaveKind::kOperator, 1, {host("b", true, true, true)}), LeaveDecision::kStay);
  EXPECT_EQ(floor_leave("b", LeaveKind::kOperator, 1, {host("a", true, true, true)}), LeaveDecision::kWait);
  EXPECT_EQ(floor_leave("b", LeaveKind::kOperator, 1, {host("a", true, true, false)}), LeaveDecision::kLeave);
  // A peer that does not answer carries nothing.
  EXPECT_EQ(floor_leave("b", LeaveKind::kFailing, 1, {host("a", true, true, false, false)}), LeaveDecision::kStay);
  // A released host comes back when it could not leave now.
  EXPECT_TRUE(floor_returns("b", 1, {host("a", false, false, false)}));
  EXPECT_FALSE(floor_returns("b", 1, {host("a", true, false, false)}));  // a kept, sorts first
  EXPECT_TRUE(floor_returns("a", 1, {host("b", true, false, false)}));   // b kept: a takes over
  EXPECT_TRUE(floor_returns("b", 1, {host("a", true, true, false, false)}));
}

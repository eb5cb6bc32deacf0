// The leave without etcd (floor.h, floor_leave) in simulated time: a few hosts, each the
// real policy (floor_leave, floor_returns) driven by a small protocol driver that does
// what the agent does — announce, poll every peer, decide; a background view that is
// polled peer by peer and may be stale or missing a peer — under a seeded random
// search over the order of every failure, recovery, depool, announcement, peer read
// and decision. After every step at least min_pooled hosts must be pooled (what they
// answer on /health). The same driver with a policy that ignores announcements (the
// floor before them) must find a schedule that empties the pool, so the search can
// see a broken rule.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "agent/model/floor.h"

using namespace poolkeeper;

namespace {

using Policy = std::function<LeaveDecision(const std::string&, LeaveKind, int, const std::vector<FloorHost>&)>;

struct Host {
  std::string name;
  bool healthy = true;
  bool depooled = false;    // an operator's depool went through
  bool released = false;    // failing, and the floor let it go
  bool announced = false;   // a leave is being decided (published as "leaving")
  LeaveKind kind = LeaveKind::kFailing;
  int polls = 0;            // polls taken in this attempt
  std::vector<std::optional<FloorHost>> fresh;  // this poll's reads, by host index
  std::vector<FloorHost> view;                  // the background view, by host index
  uint64_t view_gen = 0, attempt_gen = 0;
  int cycles = 0;  // failures and depools left in this schedule
  bool ends_failing = false;  // its last failure lasts to the end of the schedule

  bool failing() const { return !healthy && !depooled; }
  bool pooled() const { return !depooled && (healthy || !released); }
};

class Sim {
 public:
  Sim(int n, int min_pooled, uint64_t seed, Policy policy) : m_(min_pooled), rng_(seed), policy_(std::move(policy)) {
    for (int i = 0; i < n; ++i) {
      Host h;
      h.name = std::string(1, static_cast<char>('a' + i)) + ".example.org";
      h.fresh.resize(static_cast<size_t>(n));
      h.cycles = 2;
      h.ends_failing = rng_() % 2;
      hosts_.push_back(h);
    }
    for (auto& h : hosts_)
      for (size_t j = 0; j < hosts_.size(); ++j) h.view.push_back(read(j));  // all start pooled and healthy
  }

  int pooled() const {
    int n = 0;
    for (const auto& h : hosts_) n += h.pooled();
    return n;
  }

  // One random step among those possible. False when none is.
  bool step() {
    std::vector<std::function<void()>> can;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      Host& h = hosts_[i];
      if (h.healthy && h.cycles > 0) can.push_back([this, i] { fail(i); });
      if (!h.healthy && (h.cycles > 0 || !h.ends_failing)) can.push_back([this, i] { recover(i); });
      if (h.pooled() && !h.announced && !h.depooled && h.cycles > 0) can.push_back([this, i] { depool(i); });
      if (h.depooled) can.push_back([this, i] { pool(i); });
      for (size_t j = 0; j < hosts_.size(); ++j) {
        if (j == i) continue;
        can.push_back([this, i, j] { background_read(i, j); });
        if (h.announced && !h.fresh[j]) can.push_back([this, i, j] { fresh_read(i, j); });
      }
      if (h.announced && polled(h)) can.push_back([this, i] { decide(i); });
    }
    if (can.empty()) return false;
    can[std::uniform_int_distribution<size_t>(0, can.size() - 1)(rng_)]();
    return true;
  }

  // No more failures, depools or lost answers: every host in turn finishes what it is
  // deciding and polls its peers, until nothing changes.
  void settle() {
    drop_percent_ = 0;
    for (auto& h : hosts_) h.cycles = 0;
    for (int round = 0; round < 20; ++round) {
      for (size_t i = 0; i < hosts_.size(); ++i) {
        while (hosts_[i].announced) {
          for (size_t j = 0; j < hosts_.size(); ++j)
            if (j != i && !hosts_[i].fresh[j]) fresh_read(i, j);
          decide(i);
        }
        for (size_t j = 0; j < hosts_.size(); ++j)
          if (j != i) background_read(i, j);
      }
    }
  }

  const std::vector<Host>& hosts() const { return hosts_; }
  std::string trace;  // the steps taken, for a failure's message

 private:
  // What host j's /status says now (or, lost, that it did not answer).
  FloorHost read(size_t j) {
    const Host& p = hosts_[j];
    FloorHost f;
    f.name = p.name;
    if (drop_percent_ > 0 && std::uniform_int_distribution<int>(0, 99)(rng_) < drop_percent_) return f;
    f.known = true;
    f.pooled = p.pooled();
    f.healthy = p.healthy;
    f.failing = p.failing();
    f.leaving = p.announced && p.pooled();
    return f;
  }
  static std::vector<FloorHost> others(const std::vector<FloorHost>& v, const std::string& self) {
    std::vector<FloorHost> out;
    for (const auto& f : v)
      if (f.name != self) out.push_back(f);
    return out;
  }
  bool polled(const Host& h) const {
    for (size_t j = 0; j < hosts_.size(); ++j)
      if (hosts_[j].name != h.name && !h.fresh[j]) return false;
    return true;
  }
  void start_attempt(Host& h, LeaveKind kind) {
    h.announced = true;
    h.kind = kind;
    h.polls = 1;
    for (auto& f : h.fresh) f.reset();
  }
  // The owner's turn after anything changed: HealthModel::peers_floor_keeps.
  void owner(Host& h) {
    if (!h.failing()) {
      h.released = false;
      if (h.announced && h.kind == LeaveKind::kFailing) h.announced = false;  // overtaken
      return;
    }
    auto view = others(h.view, h.name);
    if (h.released && floor_returns(h.name, m_, view)) h.released = false;
    if (!h.released && !h.announced && h.view_gen != h.attempt_gen &&
        policy_(h.name, LeaveKind::kFailing, m_, view) != LeaveDecision::kStay) {
      h.attempt_gen = h.view_gen;
      start_attempt(h, LeaveKind::kFailing);
      trace += h.name.substr(0, 1) + ":announce ";
    }
  }
  void fail(size_t i) {
    hosts_[i].healthy = false;
    --hosts_[i].cycles;
    trace += hosts_[i].name.substr(0, 1) + ":fail ";
    owner(hosts_[i]);
  }
  void recover(size_t i) {
    hosts_[i].healthy = true;
    trace += hosts_[i].name.substr(0, 1) + ":recover ";
    owner(hosts_[i]);
  }
  void depool(size_t i) {
    --hosts_[i].cycles;
    trace += hosts_[i].name.substr(0, 1) + ":depool ";
    start_attempt(hosts_[i], LeaveKind::kOperator);
  }
  void pool(size_t i) {
    hosts_[i].depooled = false;
    trace += hosts_[i].name.substr(0, 1) + ":pool ";
    owner(hosts_[i]);
  }
  void background_read(size_t i, size_t j) {
    hosts_[i].view[j] = read(j);
    ++hosts_[i].view_gen;
    owner(hosts_[i]);
  }
  void fresh_read(size_t i, size_t j) {
    hosts_[i].fresh[j] = read(j);
    trace += hosts_[i].name.substr(0, 1) + "<" + hosts_[j].name.substr(0, 1) + " ";
  }
  void decide(size_t i) {
    Host& h = hosts_[i];
    std::vector<FloorHost> fresh;
    for (size_t j = 0; j < hosts_.size(); ++j)
      if (j != i) fresh.push_back(*h.fresh[j]);
    LeaveDecision d = policy_(h.name, h.kind, m_, fresh);
    trace += h.name.substr(0, 1) + (d == LeaveDecision::kLeave ? ":leave " : d == LeaveDecision::kWait ? ":wait " : ":stay ");
    if (d == LeaveDecision::kWait && h.polls < kLeaveMaxPolls) {
      ++h.polls;
      for (auto& f : h.fresh) f.reset();
      return;
    }
    // The fresh poll becomes the peer view (set_peers), and the next attempt waits for
    // a newer one.
    for (size_t j = 0; j < hosts_.size(); ++j)
      if (j != i) h.view[j] = *h.fresh[j];
    ++h.view_gen;
    h.attempt_gen = h.view_gen;
    h.announced = false;
    if (d == LeaveDecision::kLeave) (h.kind == LeaveKind::kFailing ? h.released : h.depooled) = true;
    owner(h);
  }

  int m_;
  int drop_percent_ = 10;
  std::mt19937_64 rng_;
  Policy policy_;
  std::vector<Host> hosts_;
};

// Runs `schedules` random schedules; returns the first violation's trace ("" if none).
std::string search(int n, int min_pooled, int schedules, const Policy& policy, bool check_settled) {
  for (int s = 0; s < schedules; ++s) {
    Sim sim(n, min_pooled, 0x5eed0000u + static_cast<uint64_t>(s), policy);
    for (int k = 0; k < 300; ++k) {
      if (!sim.step()) break;
      if (sim.pooled() < min_pooled)
        return "schedule " + std::to_string(s) + ": " + std::to_string(sim.pooled()) + " pooled after " + sim.trace;
    }
    if (!check_settled) continue;
    sim.settle();
    // Settled: every healthy host pooled, and the floor keeps the lowest-named failing
    // hosts that make up min_pooled, no more.
    int healthy = 0;
    for (const auto& h : sim.hosts()) healthy += h.healthy && !h.depooled;
    int kept_wanted = std::max(0, min_pooled - healthy), kept = 0;
    for (const auto& h : sim.hosts()) {
      if (h.healthy && !h.depooled && !h.pooled()) return "schedule " + std::to_string(s) + ": healthy host out";
      if (!h.failing()) continue;
      bool should = kept < kept_wanted;
      if (h.pooled() != should)
        return "schedule " + std::to_string(s) + ": settled with " + h.name + (h.pooled() ? " kept" : " out") +
               " after " + sim.trace;
      kept += h.pooled();
    }
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

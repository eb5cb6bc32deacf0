#include "pybal-compat/conftool_wants.h"

#include "agent/config/config.h"

#include <gtest/gtest.h>

using namespace poolkeeper;
using K = ConftoolWant::Kind;

namespace {

Config config() {
  return parse_config(R"(
[agent]
hostname = "a.example.org"
[services.nfs]
checks = ["c"]
on_reboot = "hold"
min_pooled = 2
[services.http]
checks = ["c"]
peers = ["http://b.example.org:9473"]
[checks.c]
kind = "exec"
command = ["/bin/true"]
)", "t.toml");
}

Snapshot snap(Lifecycle l, Effective eff, bool failing, Intent intent, bool until_boot = false,
              bool released = false) {
  Snapshot s;
  s.host = "a.example.org";
  s.lifecycle = l;
  for (const char* name : {"http", "nfs"}) {
    ServiceView v;
    v.name = name;
    v.effective = {eff, ""};
    v.failing = failing;
    v.intent.intent = intent;
    v.intent.until_boot = until_boot;
    v.stop_released = released;
    s.services.push_back(v);
  }
  return s;
}

std::pair<K, K> kinds(const Snapshot& s) {
  auto w = conftool_wants(s, config());
  EXPECT_EQ(w.size(), 2u);
  return {w[0].kind, w[1].kind};  // http, nfs
}

}  // namespace

TEST(ConftoolWantsTest, Rules) {
  using L = Lifecycle;
  using E = Effective;
  using I = Intent;
  // pooled and healthy → yes
  EXPECT_EQ(kinds(snap(L::kRunning, E::kPooled, false, I::kPooled)), std::make_pair(K::kYes, K::kYes));
  // failing → only through the floor (also when the floor currently keeps it)
  EXPECT_EQ(kinds(snap(L::kRunning, E::kPooled, true, I::kPooled)), std::make_pair(K::kNoUnderFloor, K::kNoUnderFloor));
  // still rising: leave the key alone
  EXPECT_EQ(kinds(snap(L::kRunning, E::kNotPooled, false, I::kPooled)), std::make_pair(K::kSkip, K::kSkip));
  // starting: nothing; stopping: only a drain the floor released writes no, hold keeps;
  // a restart (nothing released) or a refused drain writes nothing at all
  EXPECT_EQ(kinds(snap(L::kStarting, E::kNotPooled, false, I::kPooled)), std::make_pair(K::kSkip, K::kSkip));
  EXPECT_EQ(kinds(snap(L::kStopping, E::kNotPooled, false, I::kPooled, false, true)), std::make_pair(K::kNo, K::kSkip));
  EXPECT_EQ(kinds(snap(L::kStopping, E::kPooled, false, I::kPooled)), std::make_pair(K::kSkip, K::kSkip));
  EXPECT_EQ(kinds(snap(L::kStopping, E::kPooled, true, I::kPooled)), std::make_pair(K::kSkip, K::kSkip));
  EXPECT_EQ(kinds(snap(L::kStopping, E::kNotPooled, false, I::kDepooled)), std::make_pair(K::kSkip, K::kSkip));
  // operator's depool: no; until-boot: hold keeps, unless failing
  EXPECT_EQ(kinds(snap(L::kRunning, E::kNotPooled, false, I::kDepooled)), std::make_pair(K::kNo, K::kNo));
  EXPECT_EQ(kinds(snap(L::kRunning, E::kNotPooled, false, I::kDepooled, true)), std::make_pair(K::kNo, K::kSkip));
  EXPECT_EQ(kinds(snap(L::kRunning, E::kNotPooled, true, I::kDepooled, true)), std::make_pair(K::kNo, K::kNo));
  EXPECT_EQ(kinds(snap(L::kRunning, E::kDrained, false, I::kDrained)), std::make_pair(K::kNo, K::kNo));
  // inactive: never touched
  EXPECT_EQ(kinds(snap(L::kRunning, E::kNotPooled, false, I::kInactive)), std::make_pair(K::kSkip, K::kSkip));
  EXPECT_EQ(conftool_wants(snap(L::kRunning, E::kPooled, false, I::kPooled), config())[1].min_pooled, 2);
}

TEST(ConftoolWantsTest, Peers) {
  Snapshot s = snap(Lifecycle::kRunning, Effective::kPooled, false, Intent::kPooled);
  PeerView pv;
  pv.state.url = "http://b.example.org:9473";
  pv.state.reachable = false;
  pv.state.unreachable_since = WallTime(std::chrono::seconds(5));
  s.peers.push_back(pv);
  auto peers = conftool_peers(s, config());
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].host, "b.example.org");  // never seen: from the URL
  EXPECT_EQ(peers[0].services, std::vector<std::string>{"http"});
  EXPECT_FALSE(peers[0].reachable);
  EXPECT_EQ(host_of_url("http://[2001:db8::1]:9473"), "[2001:db8::1]");
  EXPECT_EQ(host_of_url("https://h.example.org/"), "h.example.org");
}

TEST(ConftoolWantsTest, PoolAnswerSaysWhatTheLoadBalancerWillDo) {
  const std::string k = "/conftool/v1/pools/eqiad/dumps/nfs/a.example.org";
  auto yes = conftool_pool_answer({{"key", k}, {"pooled", "yes"}, {"weight", 10}}, true, "", true);
  EXPECT_TRUE(yes.will_pool);
  EXPECT_EQ(yes.message, "conftool key " + k + " pooled=yes: PyBal routes to this host");
  auto inactive = conftool_pool_answer({{"key", k}, {"pooled", "inactive"}, {"weight", 10}}, true, "", true);
  EXPECT_FALSE(inactive.will_pool);
  EXPECT_EQ(inactive.message, "pooled by the agent, but conftool key " + k +
                                  " is inactive: PyBal will not route to this host (an operator sets it with confctl)");
  auto missing = conftool_pool_answer({{"key", k}, {"state", "missing"}}, true, "", true);
  EXPECT_FALSE(missing.will_pool);
  EXPECT_NE(missing.message.find("does not exist: PyBal does not know this host"), std::string::npos);
  auto bad = conftool_pool_answer({{"key", k}, {"state", "unparseable"}, {"error", "weight is not an integer"}}, true, "", true);
  EXPECT_FALSE(bad.will_pool);
  EXPECT_NE(bad.message.find("(weight is not an integer)"), std::string::npos);
  // Still rising: "no" until healthy is the normal way to pool.
  auto rising = conftool_pool_answer({{"key", k}, {"pooled", "no"}}, true, "", false);
  EXPECT_TRUE(rising.will_pool);
  EXPECT_FALSE(conftool_pool_answer({{"key", k}, {"pooled", "no"}}, true, "", true).will_pool);
  // etcd away: only a key last seen "yes" is known to route.
  auto away = conftool_pool_answer({{"key", k}, {"pooled", "no"}}, false, "etcd at http://e:2379: connection refused", true);
  EXPECT_FALSE(away.will_pool);
  EXPECT_NE(away.message.find("etcd unavailable (etcd at http://e:2379: connection refused)"), std::string::npos);
  EXPECT_TRUE(conftool_pool_answer({{"key", k}, {"pooled", "yes"}}, false, "x", true).will_pool);
  auto never = conftool_pool_answer(nullptr, false, "x", true);
  EXPECT_FALSE(never.will_pool);
  EXPECT_NE(never.message.find("state is unknown"), std::string::npos);
  // A missing key stays a refusal even with etcd away.
  EXPECT_FALSE(conftool_pool_answer({{"key", k}, {"state", "missing"}}, false, "x", true).will_pool);
}

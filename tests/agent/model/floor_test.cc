#include "agent/model/floor.h"

#include <gtest/gtest.h>

using namespace poolkeeper;

namespace {

PeerState peer(const std::string& host, const std::string& effective, bool healthy, bool failing,
               bool reachable = true) {
  PeerState p;
  p.url = "http://" + host + ":9473";
  p.host = host;
  p.reachable = reachable;
  p.lifecycle = "running";
  if (!reachable) p.error = "connection refused";
  p.services["nfs"] = {effective, healthy, failing, ""};
  return p;
}

}  // namespace

TEST(FloorTest, KeepsOnlyWhenOthersCannotCarryIt) {
  // One healthy pooled peer: we may leave.
  EXPECT_FALSE(floor_keeps("nfs", "b.example.org", 1, {peer("a.example.org", "pooled", true, false)}));
  // The peer is unreachable: we are the last → stay.
  EXPECT_TRUE(floor_keeps("nfs", "b.example.org", 1, {peer("a.example.org", "", false, false, false)}));
  // The peer was depooled by an operator (not failing): we stay.
  EXPECT_TRUE(floor_keeps("nfs", "b.example.org", 1, {peer("a.example.org", "not_pooled", true, false)}));
  // Both failing: the lowest name stays, from either side's point of view.
  EXPECT_FALSE(floor_keeps("nfs", "b.example.org", 1, {peer("a.example.org", "pooled", false, true)}));
  EXPECT_TRUE(floor_keeps("nfs", "a.example.org", 1, {peer("b.example.org", "not_pooled", false, true)}));
  // min_pooled 0: never keep.
  EXPECT_FALSE(floor_keeps("nfs", "a.example.org", 0, {}));
  // min_pooled 2 with three failing hosts: the two lowest stay.
  std::vector<PeerState> three = {peer("a.example.org", "pooled", false, true),
                                  peer("c.example.org", "not_pooled", false, true)};
  EXPECT_TRUE(floor_keeps("nfs", "b.example.org", 2, three));
  std::vector<PeerState> other = {peer("a.example.org", "pooled", false, true),
                                  peer("b.example.org", "pooled", false, true)};
  EXPECT_FALSE(floor_keeps("nfs", "c.example.org", 2, other));
  // A kept-by-floor peer reports pooled but unhealthy: it does not count as healthy.
  EXPECT_EQ(pooled_healthy_peers("nfs", {peer("a.example.org", "pooled", false, true)}), 0);
  // A service the peer does not serve counts for nothing.
  EXPECT_EQ(pooled_healthy_peers("http", {peer("a.example.org", "pooled", true, false)}), 0);
}

TEST(FloorTest, EveryAgentReachesTheSameAnswer) {
  // Hosts h0..h4, any subset failing, min_pooled 1..3: computed by each host from the
  // others' states, the number of hosts pooled is never below min(min_pooled, n) and
  // the failing hosts kept are the lowest-named.
  for (int min_pooled = 1; min_pooled <= 3; ++min_pooled) {
    for (int mask = 0; mask < 32; ++mask) {
      std::vector<PeerState> all;
      for (int i = 0; i < 5; ++i) {
        bool failing = mask & (1 << i);
        all.push_back(peer("h" + std::to_string(i), failing ? "not_pooled" : "pooled", !failing, failing));
      }
      int pooled = 0, healthy = 0;
      for (int i = 0; i < 5; ++i) {
        bool failing = mask & (1 << i);
        if (!failing) {
          ++pooled;
          ++healthy;
          continue;
        }
        std::vector<PeerState> others;
        for (int j = 0; j < 5; ++j)
          if (j != i) others.push_back(all[j]);
        if (floor_keeps("nfs", "h" + std::to_string(i), min_pooled, others)) ++pooled;
      }
      EXPECT_EQ(pooled, std::max(healthy, std::min(min_pooled, 5))) << "mask " << mask << " min " << min_pooled;
    }
  }
}

TEST(FloorTest, DepoolRefusalNamesPeers) {
  EXPECT_FALSE(depool_refusal("nfs", 1, {peer("a.example.org", "pooled", true, false)}));
  auto r = depool_refusal("nfs", 1, {peer("a.example.org", "", false, false, false)});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r,
            "refused: depooling nfs would leave 0 other hosts pooled and healthy (min_pooled 1): "
            "a.example.org: unreachable (connection refused)");
  r = depool_refusal("nfs", 2, {peer("a.example.org", "pooled", true, false), peer("c.example.org", "drained", true, false)});
  ASSERT_TRUE(r);
  EXPECT_NE(r->find("leave 1 other host pooled"), std::string::npos) << *r;
  EXPECT_NE(r->find("c.example.org: drained, healthy"), std::string::npos) << *r;
}

TEST(FloorTest, ParsesPeerStatus) {
  std::string err;
  auto p = parse_peer_status("http://b:9473", R"({"host":"b.example.org","lifecycle":"running",
    "services":{"nfs":{"effective":"pooled","health":"healthy","failing":false}},
    "checks":{"export":{"kind":"nfs","last":{"details":{"root_fh":"aa","fh":"bb"}}},
              "web":{"kind":"http","last":null}}})", &err);
  ASSERT_TRUE(p) << err;
  EXPECT_TRUE(p->reachable);
  EXPECT_EQ(p->host, "b.example.org");
  EXPECT_EQ(p->services["nfs"].effective, "pooled");
  EXPECT_TRUE(p->services["nfs"].healthy);
  EXPECT_EQ(p->checks["export"].kind, "nfs");
  EXPECT_EQ(p->checks["export"].details, nlohmann::json({{"root_fh", "aa"}, {"fh", "bb"}}));
  EXPECT_FALSE(p->checks.contains("web"));  // no last result: nothing to compare
  EXPECT_FALSE(parse_peer_status("u", "<html>", &err));
  EXPECT_FALSE(parse_peer_status("u", "[]", &err));
  EXPECT_FALSE(parse_peer_status("u", R"({"host":1,"services":{}})", &err));
  EXPECT_FALSE(parse_peer_status("u", R"({"host":"x","services":{"nfs":{"effective":3}}})", &err));
}

TEST(FloorTest, APeerSendingBytesThatAreNotUtf8GetsAValidError) {
  // The parser's message quotes the bad bytes; the error goes into /status.
  std::string error;
  EXPECT_FALSE(parse_peer_status("http://p", "{\"host\":\"h\xff\xfe\",\"services\":{}}", &error));
  EXPECT_EQ(error.rfind("bad /status: ", 0), 0u) << error;
  EXPECT_NO_THROW((void)nlohmann::json(error).dump()) << error;
}

// The policy over the neutral host list, which both the peers' /status and the
// conftool keys map onto.
namespace {
FloorHost host(const std::string& name, bool pooled, bool healthy, bool failing = false, bool known = true) {
  return {name, known, pooled, healthy, failing, name + " " + (pooled ? "in" : "out")};
}
}  // namespace

TEST(FloorPolicyTest, MinPooledZeroNeverKeepsOrRefuses) {
  std::vector<FloorHost> none;
  EXPECT_FALSE(floor_keeps_host("a", 0, none));
  EXPECT_FALSE(floor_refusal("nfs", "a", 0, none, "pooled"));
  EXPECT_FALSE(floor_keeps_host("a", 0, {host("b", false, false, true)}));
}

TEST(FloorPolicyTest, MinPooledOneAndTwo) {
  std::vector<FloorHost> one = {host("b", true, true)};
  EXPECT_FALSE(floor_keeps_host("a", 1, one));
  EXPECT_FALSE(floor_refusal("nfs", "a", 1, one, "pooled"));
  EXPECT_TRUE(floor_keeps_host("a", 2, one));
  auto r = floor_refusal("nfs", "a", 2, one, "pooled and healthy");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "refused: depooling nfs would leave 1 other host pooled and healthy (min_pooled 2): b in");
  std::vector<FloorHost> two = {host("b", true, true), host("c", true, true)};
  EXPECT_FALSE(floor_keeps_host("a", 2, two));
  EXPECT_FALSE(floor_refusal("nfs", "a", 2, two, "pooled"));
}

TEST(FloorPolicyTest, PooledButUnhealthyDoesNotCarry) {
  EXPECT_EQ(floor_carriers({host("b", true, false)}, "a"), 0);
  EXPECT_TRUE(floor_keeps_host("a", 1, {host("b", true, false)}));
}

TEST(FloorPolicyTest, UnknownOrStaleHostsNeverCount) {
  // A host last seen pooled and healthy whose state is not current (unreachable, never
  // polled, not running) does not carry the service, nor does it take a turn to stay.
  std::vector<FloorHost> stale = {host("b", true, true, false, false)};
  EXPECT_EQ(floor_carriers(stale, "a"), 0);
  EXPECT_TRUE(floor_keeps_host("a", 1, stale));
  EXPECT_TRUE(floor_refusal("nfs", "a", 1, stale, "pooled"));
  std::vector<FloorHost> stale_failing = {host("0-lowest", false, false, true, false)};
  EXPECT_TRUE(floor_keeps_host("a", 1, stale_failing));
  // Mapped from a peer's /status: an unreachable peer's old services count for nothing.
  PeerState p;
  p.url = "http://b:9473";
  p.host = "b";
  p.lifecycle = "running";
  p.services["nfs"] = {"pooled", true, false, ""};
  p.reachable = false;
  p.error = "timeout";
  FloorHost h = floor_host("nfs", p);
  EXPECT_FALSE(h.known);
  EXPECT_EQ(h.description, "b: unreachable (timeout)");
  p.reachable = true;
  EXPECT_TRUE(floor_host("nfs", p).known);
  p.lifecycle = "stopping";
  EXPECT_FALSE(floor_host("nfs", p).known);
  // A peer never heard from is named by its URL.
  PeerState never;
  never.url = "http://c:9473";
  EXPECT_EQ(floor_host("nfs", never).name, "http://c:9473");
}

TEST(FloorPolicyTest, SelfInTheListIsNeverAnotherHost) {
  // The leaving host listed among the others counts neither as a carrier nor in the
  // refusal's description.
  std::vector<FloorHost> with_self = {host("a", true, true), host("b", false, true)};
  EXPECT_EQ(floor_carriers(with_self, "a"), 0);
  EXPECT_TRUE(floor_keeps_host("a", 1, with_self));
  auto r = floor_refusal("nfs", "a", 1, with_self, "pooled");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->find("a in"), std::string::npos) << *r;
  EXPECT_TRUE(r->ends_with(": b out")) << *r;
  // Another host may still count it: a dead peer's takeover asks about the peer.
  EXPECT_EQ(floor_carriers(with_self, "b"), 1);
}

TEST(FloorPolicyTest, LowestNamedFailingHostsStay) {
  std::vector<FloorHost> failing = {host("a", false, false, true), host("c", false, false, true),
                                    host("d", true, true)};
  // min_pooled 2, one carrier: one failing host must stay, the lowest (a).
  EXPECT_TRUE(floor_keeps_host("a", 2, failing));
  EXPECT_FALSE(floor_keeps_host("b", 2, failing));
  EXPECT_FALSE(floor_keeps_host("c", 2, failing));
  // min_pooled 3, and b failing too: two must stay, a and b, whoever asks.
  failing.push_back(host("b", false, false, true));
  EXPECT_TRUE(floor_keeps_host("a", 3, failing));
  EXPECT_TRUE(floor_keeps_host("b", 3, failing));
  EXPECT_FALSE(floor_keeps_host("c", 3, failing));
  // A refusal with nobody else listed says so without a list.
  EXPECT_EQ(*floor_refusal("nfs", "a", 1, {}, "pooled=yes in conftool"),
            "refused: depooling nfs would leave 0 other hosts pooled=yes in conftool (min_pooled 1)");
}

TEST(FloorPolicyTest, ServicePeersAreTheConfiguredOnesButSelf) {
  PeerState b, c, self;
  b.url = "http://b:9473";
  b.host = "b";
  b.reachable = true;
  c.url = "http://c:9473";  // another service's peer
  c.host = "c";
  self.url = "http://a:9473";  // our own agent, listed by a shared config
  self.host = "a";
  auto got = service_peers({b, c, self}, {"http://b:9473", "http://a:9473", "http://d:9473"}, "a");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].host, "b");
  EXPECT_EQ(got[1].url, "http://d:9473");  // configured, never polled: unreachable
  EXPECT_FALSE(got[1].reachable);
  EXPECT_EQ(got[1].error, "not polled yet");
}

#include "pybal-compat/conftool_plan.h"

#include <gtest/gtest.h>

using namespace poolkeeper;
using K = ConftoolWant::Kind;
using A = ConftoolKeyStep::Action;
using O = ConftoolFloor::Outcome;

namespace {

const std::string kPrefix = "/conftool/v1/pools/eqiad/dumps";

EtcdNode node(const std::string& svc, const std::string& host, const std::string& value, uint64_t index) {
  EtcdNode n;
  n.key = kPrefix + "/" + svc + "/" + host;
  n.value = value;
  n.modified_index = index;
  return n;
}
std::string pooled(const std::string& p) { return R"({"pooled":")" + p + R"(","weight":10})"; }

// A view of host a with peers b and c; times on a simulated clock.
ConftoolView view() {
  ConftoolView v;
  v.self = "a";
  v.prefix = kPrefix;
  v.peer_dead_after = std::chrono::minutes(3);
  v.steady_now = SteadyTime{} + std::chrono::hours(1);
  v.wall_now = WallTime{} + std::chrono::hours(24 * 365 * 50);
  v.alive = {"a", "b", "c"};
  for (const char* h : {"b", "c"}) v.peers.push_back({h, true, WallTime{}, {"nfs"}});
  return v;
}

// Host a's own key for nfs at `index`, already known as ours (written by us).
ConftoolView with_own_key(const std::string& p, uint64_t index, K kind) {
  ConftoolView v = view();
  v.pools["nfs"]["a"] = node("nfs", "a", pooled(p), index);
  v.pools["nfs"]["b"] = node("nfs", "b", pooled("yes"), 3);
  v.seen["nfs"] = {index, index};
  v.wants = {{"nfs", kind, 1}};
  return v;
}

}  // namespace

TEST(ConftoolPlanTest, WritesOnlyWhatDiffers) {
  auto step = plan_sync(with_own_key("no", 7, K::kYes)).keys.at(0);
  EXPECT_EQ(step.action, A::kWrite);
  EXPECT_EQ(step.pooled, ConftoolPooled::kYes);
  EXPECT_EQ(step.node.modified_index, 7u);
  EXPECT_EQ(step.key["pooled"], "no");  // as read: the executor updates it after the write
  EXPECT_EQ(plan_sync(with_own_key("yes", 7, K::kYes)).keys.at(0).action, A::kNone);
  EXPECT_EQ(plan_sync(with_own_key("yes", 7, K::kNo)).keys.at(0).pooled, ConftoolPooled::kNo);
  EXPECT_EQ(plan_sync(with_own_key("no", 7, K::kNo)).keys.at(0).action, A::kNone);
  EXPECT_EQ(plan_sync(with_own_key("yes", 7, K::kSkip)).keys.at(0).action, A::kNone);
  // Inactive is the operator's: never written, whatever the agent wants.
  for (K k : {K::kYes, K::kNo, K::kNoUnderFloor})
    EXPECT_EQ(plan_sync(with_own_key("inactive", 7, k)).keys.at(0).action, A::kNone);
}

TEST(ConftoolPlanTest, FailingGoesThroughTheFloorUnlessAlreadyOut) {
  auto step = plan_sync(with_own_key("yes", 7, K::kNoUnderFloor)).keys.at(0);
  EXPECT_EQ(step.action, A::kFloor);
  EXPECT_EQ(step.min_pooled, 1);
  step = plan_sync(with_own_key("no", 7, K::kNoUnderFloor)).keys.at(0);
  EXPECT_EQ(step.action, A::kNone);
  EXPECT_EQ(step.verdict, FloorVerdict::kRelease);
}

TEST(ConftoolPlanTest, SomeoneElsesChangeIsAdoptedOnce) {
  ConftoolView v = with_own_key("no", 9, K::kYes);
  v.seen["nfs"] = {7, 7};  // we wrote 7; 9 is confctl's
  auto step = plan_sync(v).keys.at(0);
  EXPECT_EQ(step.action, A::kAdopt);
  EXPECT_EQ(step.pooled, ConftoolPooled::kNo);
  EXPECT_EQ(step.looked_at, 9u);
  // Looked at once: from then on the agent's wants (which now reflect it) rule.
  v.seen["nfs"].seen = 9;
  EXPECT_EQ(plan_sync(v).keys.at(0).action, A::kWrite);
  // A change marked by a peer's takeover is not an intent: written back at once.
  v.seen["nfs"] = {7, 7};
  v.pools["nfs"]["a"].value = R"({"pooled":"no","poolkeeper_depooled_by":"b","weight":10})";
  step = plan_sync(v).keys.at(0);
  EXPECT_EQ(step.action, A::kWrite);
  EXPECT_EQ(step.pooled, ConftoolPooled::kYes);
  EXPECT_EQ(step.looked_at, 9u);
  // Even when it already says "yes": an older agent's marker goes.
  v.pools["nfs"]["a"].value = R"({"pooled":"yes","poolkeeper_depooled_by":"b"})";
  EXPECT_EQ(plan_sync(v).keys.at(0).action, A::kWrite);
}

TEST(ConftoolPlanTest, APeersTakeoverIsKnownByItsRecordNotByTheValue) {
  ConftoolView v = with_own_key("no", 9, K::kYes);
  v.seen["nfs"] = {7, 7};
  ConftoolTakeoverRecord rec{"b", "peer dead: …", "2026-12-07T03:00:00Z", 9, R"({"index":9})"};
  v.records["nfs"]["a"] = rec;
  // The record names index 9, the key's: b took it out while we were dead. Written
  // back, and the record goes once the write is done.
  auto step = plan_sync(v).keys.at(0);
  EXPECT_EQ(step.action, A::kWrite);
  EXPECT_EQ(step.pooled, ConftoolPooled::kYes);
  EXPECT_EQ(step.drop_record, rec.raw);
  // The key changed after the takeover (index 11, an operator's confctl): adopted,
  // and the record, describing a write that is no longer there, goes too.
  v.pools["nfs"]["a"].modified_index = 11;
  step = plan_sync(v).keys.at(0);
  EXPECT_EQ(step.action, A::kAdopt);
  EXPECT_EQ(step.drop_record, rec.raw);
  // A peer's record is none of our keys' business.
  v = with_own_key("yes", 7, K::kYes);
  v.records["nfs"]["b"] = rec;
  step = plan_sync(v).keys.at(0);
  EXPECT_EQ(step.action, A::kNone);
  EXPECT_FALSE(step.drop_record);
}

TEST(ConftoolPlanTest, MissingAndUnparseableKeys) {
  ConftoolView v = view();
  v.wants = {{"nfs", K::kYes, 1}, {"http", K::kSkip, 1}};
  auto plan = plan_sync(v);
  EXPECT_TRUE(plan.keys.at(0).missing);
  EXPECT_EQ(plan.keys.at(0).action, A::kNone);  // create_missing off
  EXPECT_EQ(plan.keys.at(0).key["state"], "missing");
  EXPECT_EQ(plan.keys.at(0).key["key"], kPrefix + "/nfs/a");
  v.create_missing = true;
  plan = plan_sync(v);
  EXPECT_EQ(plan.keys.at(0).action, A::kCreate);
  EXPECT_EQ(plan.keys.at(0).pooled, ConftoolPooled::kYes);
  EXPECT_EQ(plan.keys.at(1).action, A::kNone);  // skip: not even created
  v.pools["nfs"]["a"] = node("nfs", "a", "{not json", 4);
  plan = plan_sync(v);
  EXPECT_FALSE(plan.keys.at(0).missing);
  EXPECT_EQ(plan.keys.at(0).action, A::kNone);
  EXPECT_EQ(plan.keys.at(0).key["state"], "unparseable");
}

TEST(ConftoolPlanTest, LivenessIsTrackedAcrossRounds) {
  PeerLiveness track;
  std::vector<ConftoolPeer> peers = {{"b", true, WallTime{}, {"nfs"}}, {"c", true, WallTime{}, {"nfs"}}};
  SteadyTime t0 = SteadyTime{} + std::chrono::hours(1);
  auto changes = track_liveness(track, {"a", "b"}, peers, t0);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].peer, "c");
  EXPECT_FALSE(changes[0].back);
  EXPECT_TRUE(peer_suspect(track, peers, "a"));  // c's key is gone
  // Still gone later: the first time it was missed stays.
  EXPECT_TRUE(track_liveness(track, {"a", "b"}, peers, t0 + std::chrono::seconds(5)).empty());
  EXPECT_EQ(track.missing_since.at("c"), t0);
  // Taken out: nothing left to decide, no longer suspect.
  track.taken_out.insert("nfs/c");
  EXPECT_FALSE(peer_suspect(track, peers, "a"));
  // Back: forgotten, and its takeovers with it (a new death counts anew).
  changes = track_liveness(track, {"a", "b", "c"}, peers, t0 + std::chrono::seconds(9));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].back);
  EXPECT_TRUE(track.taken_out.empty());
  EXPECT_FALSE(peer_suspect(track, peers, "a"));
  // Unreachable over HTTP alone is suspect too; ourselves never.
  peers[0].reachable = false;
  EXPECT_TRUE(peer_suspect(track, peers, "a"));
  EXPECT_FALSE(peer_suspect(track, peers, "b"));
  // A peer a reload removed leaves no state behind.
  track_liveness(track, {"a"}, peers, t0);
  track.taken_out.insert("nfs/c");
  track_liveness(track, {"a"}, {peers[0]}, t0);
  EXPECT_FALSE(track.missing_since.count("c"));
  EXPECT_TRUE(track.taken_out.empty());
}

namespace {
// c is dead for `dead_for` by both signals; b is alive; a (self) plans.
ConftoolView dead_c(Duration dead_for) {
  ConftoolView v = view();
  v.alive = {"a", "b"};
  v.peers[1].reachable = false;
  v.peers[1].unreachable_since = v.wall_now - dead_for;
  v.liveness.missing_since["c"] = v.steady_now - dead_for;
  v.pools["nfs"]["a"] = node("nfs", "a", pooled("yes"), 5);
  v.pools["nfs"]["b"] = node("nfs", "b", pooled("yes"), 6);
  v.pools["nfs"]["c"] = node("nfs", "c", pooled("yes"), 7);
  v.seen["nfs"] = {5, 5};
  v.wants = {{"nfs", K::kYes, 2}};
  return v;
}
}  // namespace

TEST(ConftoolPlanTest, ADeadPeerIsTakenOutOnceByTheLowestLiveAgent) {
  auto plan = plan_sync(dead_c(std::chrono::minutes(4)));
  ASSERT_EQ(plan.takeovers.size(), 1u);
  EXPECT_EQ(plan.takeovers[0].service, "nfs");
  EXPECT_EQ(plan.takeovers[0].peer, "c");
  EXPECT_EQ(plan.takeovers[0].min_pooled, 2);
  EXPECT_EQ(plan.takeovers[0].why.rfind("peer dead: liveness key gone since ", 0), 0u) << plan.takeovers[0].why;
  // Not dead for long enough by either signal: nothing.
  EXPECT_TRUE(plan_sync(dead_c(std::chrono::minutes(2))).takeovers.empty());
  ConftoolView v = dead_c(std::chrono::minutes(4));
  v.liveness.missing_since["c"] = v.steady_now - std::chrono::minutes(1);
  EXPECT_TRUE(plan_sync(v).takeovers.empty());
  v = dead_c(std::chrono::minutes(4));
  v.peers[1].reachable = true;  // a cut etcd link on c, not a death
  EXPECT_TRUE(plan_sync(v).takeovers.empty());
  // Already taken out during this death: not again.
  v = dead_c(std::chrono::minutes(4));
  v.liveness.taken_out.insert("nfs/c");
  EXPECT_TRUE(plan_sync(v).takeovers.empty());
  // Already "no": nothing to take out.
  v = dead_c(std::chrono::minutes(4));
  v.pools["nfs"]["c"].value = pooled("no");
  EXPECT_TRUE(plan_sync(v).takeovers.empty());
  // Our own liveness key is gone: in no position to judge.
  v = dead_c(std::chrono::minutes(4));
  v.alive.erase("a");
  EXPECT_TRUE(plan_sync(v).takeovers.empty());
  // b (lower than the planner) is alive: b acts, not us.
  v = dead_c(std::chrono::minutes(4));
  v.self = "bb";
  v.peers.push_back({"a", true, WallTime{}, {"nfs"}});
  EXPECT_TRUE(plan_sync(v).takeovers.empty());
  // ...unless b is gone too (unreachable and no liveness key).
  v.peers[0].reachable = false;
  v.alive.erase("b");
  v.alive.insert("bb");
  v.peers.pop_back();
  EXPECT_EQ(plan_sync(v).takeovers.size(), 1u);
}

TEST(ConftoolPlanTest, ATakeoverTheFloorRefusesIsHeldWithoutTheLock) {
  ConftoolView v = dead_c(std::chrono::minutes(4));
  v.pools["nfs"]["b"] = node("nfs", "b", pooled("no"), 8);  // b depooled: only a would stay
  auto plan = plan_sync(v);
  EXPECT_TRUE(plan.takeovers.empty());  // no lock, no write
  ASSERT_EQ(plan.held.size(), 1u);
  EXPECT_EQ(plan.held[0].service, "nfs");
  EXPECT_EQ(plan.held[0].peer, "c");
  EXPECT_EQ(plan.held[0].refusal,
            "refused: depooling nfs would leave 1 other host pooled=yes in conftool (min_pooled 2): "
            "a pooled=yes; b pooled=no");
  // b pooled again (a key change, which the watch reports): the takeover goes ahead.
  v.pools["nfs"]["b"] = node("nfs", "b", pooled("yes"), 12);
  plan = plan_sync(v);
  EXPECT_TRUE(plan.held.empty());
  EXPECT_EQ(plan.takeovers.size(), 1u);
}

TEST(ConftoolPlanTest, AHeldTakeoverIsSaidOnceWhenItStartsAndOnceWhenItEnds) {
  PeerLiveness track;
  std::vector<ConftoolPeer> peers = {{"b", true, WallTime{}, {"nfs"}}, {"c", false, WallTime{}, {"nfs"}}};
  WallTime t0 = WallTime{} + std::chrono::hours(24 * 365 * 50);
  EXPECT_TRUE(peer_suspect(track, peers, "a"));  // c unreachable
  auto changes = track_waiting(track, {{"nfs", "c", "refused: … b pooled=no"}}, t0);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].started);
  EXPECT_EQ(changes[0].peer, "c");
  EXPECT_EQ(changes[0].refusal, "refused: … b pooled=no");
  EXPECT_EQ(track.waiting.at("nfs/c").since, t0);
  // Held: no need to sync often (the watch wakes the sync when a key changes).
  EXPECT_FALSE(peer_suspect(track, peers, "a"));
  // Rounds later, still held: nothing to say, however many rounds; a new refusal text
  // (another host depooled) is kept for /status without a log line.
  for (int i = 1; i <= 100; ++i)
    ASSERT_TRUE(track_waiting(track, {{"nfs", "c", "refused: … b pooled=no"}}, t0 + std::chrono::seconds(i)).empty());
  EXPECT_TRUE(track_waiting(track, {{"nfs", "c", "refused: … d pooled=no"}}, t0 + std::chrono::seconds(101)).empty());
  EXPECT_EQ(track.waiting.at("nfs/c").refusal, "refused: … d pooled=no");
  EXPECT_EQ(track.waiting.at("nfs/c").since, t0);
  // No longer held (taken out, or c back): said once, then forgotten.
  changes = track_waiting(track, {}, t0 + std::chrono::seconds(102));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].started);
  EXPECT_EQ(changes[0].service, "nfs");
  EXPECT_EQ(changes[0].peer, "c");
  EXPECT_TRUE(track.waiting.empty());
  EXPECT_TRUE(track_waiting(track, {}, t0 + std::chrono::seconds(103)).empty());
  EXPECT_TRUE(peer_suspect(track, peers, "a"));
}

TEST(ConftoolPlanTest, FloorUnderTheLock) {
  std::map<std::string, EtcdNode> hosts = {{"a", node("nfs", "a", pooled("yes"), 1)},
                                           {"b", node("nfs", "b", pooled("yes"), 2)},
                                           {"c", node("nfs", "c", pooled("no"), 3)}};
  EXPECT_EQ(conftool_floor("nfs", "a", 1, hosts).outcome, O::kTakeOut);
  auto f = conftool_floor("nfs", "a", 2, hosts);
  EXPECT_EQ(f.outcome, O::kRefused);
  EXPECT_EQ(f.refusal,
            "refused: depooling nfs would leave 1 other host pooled=yes in conftool (min_pooled 2): "
            "b pooled=yes; c pooled=no");
  EXPECT_EQ(conftool_floor("nfs", "c", 1, hosts).outcome, O::kNotPooled);
  EXPECT_EQ(conftool_floor("nfs", "z", 1, hosts).outcome, O::kGone);
  EXPECT_EQ(conftool_floor("nfs", "a", 0, {{"a", hosts["a"]}}).outcome, O::kTakeOut);
  // An unreadable key neither carries the service nor can be taken out.
  hosts["b"].value = "garbage";
  f = conftool_floor("nfs", "a", 1, hosts);
  EXPECT_EQ(f.outcome, O::kRefused);
  EXPECT_NE(f.refusal.find("b pooled=?"), std::string::npos) << f.refusal;
  EXPECT_EQ(conftool_floor("nfs", "b", 0, hosts).outcome, O::kNotPooled);
}

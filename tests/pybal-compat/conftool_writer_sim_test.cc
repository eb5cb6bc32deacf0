// ConftoolWriter's decisions in simulated time: the writers of several hosts share one
// in-memory etcd (mem_etcd.h) and one FakeClock; each round is driven by the test (a
// liveness refresh every liveness_ttl/3, a sync every step) instead of the writer's
// threads, so liveness, takeovers, held takeovers and resyncs over many seconds take
// no real time. What crosses the wire is tested against a real etcd in
// tests/integration/conftool_test.cc.
#include <gtest/gtest.h>

#include <memory>

#include "pybal-compat/conftool_writer.h"
#include "tests/harness/harness.h"
#include "tests/pybal-compat/mem_etcd.h"

using namespace poolkeeper;
using namespace std::chrono_literals;
using pk_test::MemEtcd;
using pk_test::TempDir;

namespace {

constexpr const char* kPrefix = "/conftool/v1/pools/eqiad/dumps";
constexpr const char* kYes = R"({"pooled": "yes", "weight": 10})";
constexpr auto kTtl = 2s;        // liveness_ttl
constexpr auto kDeadAfter = 2s;  // peer_dead_after
constexpr auto kStep = 200ms;    // one sync round per step, as while a peer is suspect

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// One host's agent as its conftool writer sees it: its wants, its view of its peers,
// and what the writer handed back.
struct Host {
  Host(const std::string& name, MemEtcd& store, const Clock& clock, const std::string& dir)
      : name(name), link(store), clock(clock), state(dir + "/" + name + ".json") {
    restart();
  }
  // A new writer over the same state file, as after the agent's restart.
  void restart() {
    ConftoolConfig cfg;
    cfg.endpoints = {MemEtcd::kUrl};
    cfg.prefix = kPrefix;
    cfg.lock_prefix = "/poolkeeper/locks";
    cfg.liveness_prefix = "/poolkeeper/alive";
    cfg.depooled_prefix = "/poolkeeper/depooled";
    cfg.liveness_ttl = kTtl;
    cfg.peer_dead_after = kDeadAfter;
    ConftoolWriter::Callbacks cb;
    cb.adopt = [this](const std::string& svc, ConftoolPooled p) { adopted.push_back(svc + "=" + conftool_pooled_name(p)); };
    cb.verdict = [this](const std::string& svc, FloorVerdict v) { verdicts.push_back({svc, v, link.ops.size()}); };
    cb.status = [this](bool up, const std::string&, const nlohmann::json& k, const nlohmann::json& l) {
      this->up = up;
      keys = k;
      liveness = l;
    };
    writer.reset();
    writer = std::make_unique<ConftoolWriter>(cfg, name, state, cb, clock, &link);
    writer->set_boot_id("boot-1");
    writer->update(wants, peers);
    next_refresh = clock.now();
  }
  void want(std::vector<ConftoolWant> w) {
    wants = std::move(w);
    writer->update(wants, peers);
  }
  // `other` as this host's peer agent for nfs: reachable, or unreachable since now.
  void peer(const std::string& other, bool reachable) {
    std::erase_if(peers, [&](const ConftoolPeer& p) { return p.host == other; });
    peers.push_back({other, reachable, reachable ? WallTime{} : clock.wall(), {"nfs"}});
    writer->update(wants, peers);
  }
  // What its threads would do at this moment: refresh the liveness key when due, sync.
  void turn() {
    std::string error;
    if (clock.now() >= next_refresh) {
      writer->liveness_round(&error);
      next_refresh = clock.now() + kTtl / 3;
    }
    error.clear();
    synced = writer->sync_round(&error);
    last_error = error;
  }

  std::string name;
  MemEtcd::Link link;
  const Clock& clock;
  std::string state;
  std::vector<ConftoolWant> wants = {{"nfs", ConftoolWant::Kind::kYes, 1}, {"http", ConftoolWant::Kind::kYes, 1}};
  std::vector<ConftoolPeer> peers;
  std::unique_ptr<ConftoolWriter> writer;
  SteadyTime next_refresh{};
  std::vector<std::string> adopted;
  struct Verdict {
    std::string service;
    FloorVerdict verdict;
    size_t after_ops;  // how many etcd requests the writer had made when it was given
  };
  std::vector<Verdict> verdicts;
  bool up = false, synced = false;
  std::string last_error;
  nlohmann::json keys, liveness;
};

class ConftoolWriterSim : public ::testing::Test {
 protected:
  void SetUp() override { testing::internal::CaptureStderr(); }
  void TearDown() override {
    hosts_.clear();
    log_ += testing::internal::GetCapturedStderr();
    if (HasFailure()) std::fprintf(stderr, "%s", log_.c_str());
  }
  // Everything the writers logged so far (kept across calls).
  const std::string& log_text() {
    log_ += testing::internal::GetCapturedStderr();
    testing::internal::CaptureStderr();
    return log_;
  }
  Host& host(const std::string& name) {
    hosts_.push_back(std::make_unique<Host>(name, store_, clock_, dir_.path()));
    return *hosts_.back();
  }
  void seed(const std::string& svc, const std::string& h, const std::string& value = kYes) {
    ASSERT_TRUE(store_.put(key(svc, h), value, {}).ok());
  }
  void seed_all(std::initializer_list<const char*> services, std::initializer_list<const char*> hosts) {
    for (const char* svc : services)
      for (const char* h : hosts) seed(svc, h);
  }
  // a and b, each the other's nfs peer and reachable, after a second of turns.
  void peered(Host& a, Host& b) {
    a.peer(b.name, true);
    b.peer(a.name, true);
    run({&a, &b}, 1s);
  }
  static std::string key(const std::string& svc, const std::string& h) { return std::string(kPrefix) + "/" + svc + "/" + h; }
  std::string raw(const std::string& svc, const std::string& h) { return store_.get(key(svc, h), false).node.value; }
  std::string pooled(const std::string& svc, const std::string& h) {
    auto r = store_.get(key(svc, h), false);
    if (!r.ok()) return "(missing)";
    return nlohmann::json::parse(r.node.value).value("pooled", "?");
  }
  uint64_t index(const std::string& svc, const std::string& h) { return store_.get(key(svc, h), false).node.modified_index; }
  std::map<std::string, uint64_t> pool_indexes() {
    std::map<std::string, uint64_t> out;
    for (const auto& svc : store_.get(kPrefix, true).node.nodes)
      for (const auto& n : svc.nodes) out[n.key] = n.modified_index;
    return out;
  }
  // Runs `live` hosts' turns every kStep for `d` of simulated time.
  void run(std::vector<Host*> live, Duration d) {
    for (SteadyTime until = clock_.now() + d; clock_.now() < until; clock_.advance(kStep))
      for (Host* h : live) h->turn();
  }
  // As run(), until `done` holds (checked after every step) or `limit` has passed.
  bool run_until(std::vector<Host*> live, const std::function<bool()>& done, Duration limit = 20s) {
    for (SteadyTime until = clock_.now() + limit; clock_.now() < until; clock_.advance(kStep)) {
      for (Host* h : live) h->turn();
      if (done()) return true;
    }
    return false;
  }
  // confctl's change: the value's "pooled", compare-and-swap on the key's index.
  void confctl_set(const std::string& svc, const std::string& h, const std::string& p) {
    auto r = store_.get(key(svc, h), false);
    ASSERT_TRUE(r.ok());
    auto v = nlohmann::ordered_json::parse(r.node.value);
    v["pooled"] = p;
    ASSERT_TRUE(store_.put(key(svc, h), python_json_dumps(v), EtcdPut{.prev_index = r.node.modified_index}).ok());
  }

  FakeClock clock_;
  MemEtcd store_{clock_};
  TempDir dir_;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::string log_;
};

}  // namespace

// The liveness key: our fields, a TTL of liveness_ttl, refreshed well within it (same
// value three TTLs later), gone by its TTL once no longer refreshed, written whole again.
TEST_F(ConftoolWriterSim, LivenessKeyIsRefreshedWithinItsTtlAndExpiresWithoutIt) {
  seed("nfs", "a.example.org");
  Host& a = host("a.example.org");
  a.turn();
  auto r = store_.get("/poolkeeper/alive/a.example.org", false);
  ASSERT_TRUE(r.ok()) << r.describe();
  auto v = nlohmann::json::parse(r.node.value);
  EXPECT_EQ(v["host"], "a.example.org");
  EXPECT_GT(v["pid"].get<int>(), 0);
  EXPECT_EQ(v["boot_id"], "boot-1");
  EXPECT_EQ(v["ttl_seconds"], 2);
  ASSERT_TRUE(r.node.ttl.has_value());
  EXPECT_LE(*r.node.ttl, 2);
  run({&a}, 3 * kTtl);
  auto later = store_.get("/poolkeeper/alive/a.example.org", false);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later.node.value, r.node.value);
  EXPECT_EQ(a.liveness["key"], "/poolkeeper/alive/a.example.org");
  EXPECT_EQ(a.liveness["ok"], true);
  EXPECT_EQ(a.liveness["self_seen"], true);
  EXPECT_EQ(a.liveness["ttl"], "2s");
  for (const auto& [k, idx] : pool_indexes()) EXPECT_NE(k.find(".example.org"), std::string::npos) << k;
  // No refresh for a TTL: gone.
  clock_.advance(kTtl);
  EXPECT_EQ(store_.get("/poolkeeper/alive/a.example.org", false).error_code, EtcdError::kKeyNotFound);
  a.turn();
  EXPECT_TRUE(store_.get("/poolkeeper/alive/a.example.org", false).ok());
  EXPECT_EQ(count_of(log_text(), "conftool liveness key had expired; writing it again"), 1) << log_text();
}

// a and b reach etcd but not each other: for 3 × peer_dead_after not one key changes.
// A service that starts failing leaves through the floor before the sync reads the
// whole prefix, the takeover records and the liveness keys: the lock, its service's keys,
// the write, then the verdict, which does not wait for the lock's release.
TEST_F(ConftoolWriterSim, AFailingServiceLeavesBeforeTheSyncReadsEverything) {
  seed_all({"nfs", "http"}, {"a", "b"});
  Host& a = host("a");
  Host& b = host("b");
  run({&a, &b}, 1s);
  a.link.ops.clear();
  a.verdicts.clear();
  a.want({{"nfs", ConftoolWant::Kind::kNoUnderFloor, 1}, {"http", ConftoolWant::Kind::kYes, 1}});
  std::string error;
  ASSERT_TRUE(a.writer->sync_round(&error)) << error;
  EXPECT_EQ(pooled("nfs", "a"), "no");
  EXPECT_EQ(pooled("nfs", "b"), "yes");
  ASSERT_FALSE(a.verdicts.empty());
  const auto& v = a.verdicts.front();
  EXPECT_EQ(v.service, "nfs");
  EXPECT_EQ(v.verdict, FloorVerdict::kRelease);
  std::vector<std::string> before(a.link.ops.begin(), a.link.ops.begin() + static_cast<long>(v.after_ops));
  EXPECT_EQ(before, (std::vector<std::string>{"PUT /poolkeeper/locks/nfs", "GET " + std::string(kPrefix) + "/nfs/",
                                              "PUT " + key("nfs", "a")}));
  EXPECT_EQ(count_of(testing::PrintToString(a.link.ops), "PUT /poolkeeper/locks/nfs"), 1);  // asked once
  EXPECT_EQ(count_of(testing::PrintToString(a.link.ops), "DEL /poolkeeper/locks/nfs"), 1);  // and released

  // b failing too: the floor keeps it in, asked once in the sync, and the sync's own
  // plan does not ask again.
  b.link.ops.clear();
  b.verdicts.clear();
  b.want({{"nfs", ConftoolWant::Kind::kNoUnderFloor, 1}, {"http", ConftoolWant::Kind::kYes, 1}});
  ASSERT_TRUE(b.writer->sync_round(&error)) << error;
  EXPECT_EQ(pooled("nfs", "b"), "yes");
  ASSERT_FALSE(b.verdicts.empty());
  EXPECT_EQ(b.verdicts.front().verdict, FloorVerdict::kKeep);
  EXPECT_EQ(count_of(testing::PrintToString(b.link.ops), "PUT /poolkeeper/locks/nfs"), 1);
  for (const auto& w : b.verdicts) {
    if (w.service == "nfs") {
      EXPECT_EQ(w.verdict, FloorVerdict::kKeep);
    }
  }
}

// confctl sets "no": the writer hands it to the agent, whose wants take it in a moment
// later. Syncs in between must not write "yes" back over the operator with the wants
// from before (PyBal would see "yes" for that moment).
TEST_F(ConftoolWriterSim, AnAdoptedChangeIsNotWrittenOverBeforeTheAgentTookItIn) {
  seed_all({"nfs", "http"}, {"a"});
  Host& a = host("a");
  run({&a}, 1s);
  a.adopted.clear();
  confctl_set("nfs", "a", "no");
  uint64_t operators = index("nfs", "a");
  a.turn();
  EXPECT_EQ(a.adopted, std::vector<std::string>{"nfs=no"});
  run({&a}, 2s);  // the agent has not taken it in: its wants still say yes
  EXPECT_EQ(index("nfs", "a"), operators) << "written over the operator's change";
  a.want({{"nfs", ConftoolWant::Kind::kNo, 1}, {"http", ConftoolWant::Kind::kYes, 1}});
  run({&a}, 1s);
  EXPECT_EQ(index("nfs", "a"), operators);
  // Taken in: the agent's own decisions are written again (confctl pools, the agent agrees).
  a.want({{"nfs", ConftoolWant::Kind::kYes, 1}, {"http", ConftoolWant::Kind::kYes, 1}});
  run({&a}, 1s);
  EXPECT_EQ(pooled("nfs", "a"), "yes");
}

TEST_F(ConftoolWriterSim, CutLinkBetweenLiveAgentsChangesNoKey) {
  seed_all({"nfs", "http"}, {"a.example.org", "b.example.org"});
  Host &a = host("a.example.org"), &b = host("b.example.org");
  peered(a, b);
  auto before = pool_indexes();
  ASSERT_EQ(before.size(), 4u);
  a.peer("b.example.org", false);
  b.peer("a.example.org", false);
  run({&a, &b}, 3 * kDeadAfter);
  EXPECT_EQ(pool_indexes(), before);
  EXPECT_EQ(a.liveness["peers"]["b.example.org"]["alive"], true);
  EXPECT_EQ(b.liveness["peers"]["a.example.org"]["alive"], true);
  EXPECT_EQ(log_text().find("took a dead peer out"), std::string::npos) << log_text();
}

// b dies (its liveness key runs out, its agent does not answer): a takes b's nfs key out
// once, after peer_dead_after, recording who and why beside the liveness keys; nothing
// else moves while b stays dead. b's agent comes back and puts itself in; a does not
// take it out again, and the record goes.
TEST_F(ConftoolWriterSim, DeadPeerIsTakenOutOnceAndComesBackByItself) {
  seed_all({"nfs", "http"}, {"a.example.org", "b.example.org", "c.example.org"});
  Host &a = host("a.example.org"), &b = host("b.example.org");
  peered(a, b);
  uint64_t from = store_.index() + 1, http_idx = index("http", "b.example.org");
  SteadyTime died = clock_.now();
  a.peer("b.example.org", false);  // b killed: its HTTP goes at once, its liveness key by its TTL
  ASSERT_TRUE(run_until({&a}, [&] { return pooled("nfs", "b.example.org") == "no"; })) << log_text();
  double took = seconds(clock_.now() - died);
  std::printf("dead peer taken out after %.1f s of simulated time (liveness_ttl 2s, peer_dead_after 2s)\n", took);
  EXPECT_GE(took, seconds(kDeadAfter + kTtl - kTtl / 3 - kStep));  // the key expires, then stays gone peer_dead_after
  EXPECT_LE(took, seconds(kDeadAfter + kTtl + 2 * kStep));
  EXPECT_EQ(raw("nfs", "b.example.org"), R"({"pooled": "no", "weight": 10})");
  auto rec = store_.get("/poolkeeper/depooled/nfs/b.example.org", false);
  ASSERT_TRUE(rec.ok()) << rec.describe();
  auto r = nlohmann::json::parse(rec.node.value);
  EXPECT_EQ(r["by"], "a.example.org");
  EXPECT_EQ(r["reason"].get<std::string>().rfind("peer dead: liveness key gone since ", 0), 0u) << rec.node.value;
  EXPECT_EQ(r["index"], index("nfs", "b.example.org"));
  a.turn();  // the next sync reads the record
  auto t = a.liveness["peers"]["b.example.org"];
  EXPECT_EQ(t["alive"], false);
  EXPECT_EQ(t["taken_out"]["nfs"]["by"], "a.example.org");
  EXPECT_EQ(t["taken_out"]["nfs"]["reason"], r["reason"]);
  EXPECT_EQ(t["taken_out"]["nfs"]["current"], true);
  // Still dead for 3 × peer_dead_after more: taken out exactly once, nothing else moves.
  run({&a}, 3 * kDeadAfter);
  EXPECT_EQ(store_.events_since(key("nfs", "b.example.org"), from), 1);
  EXPECT_EQ(index("http", "b.example.org"), http_idx);  // http does not list b as a peer
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  EXPECT_EQ(pooled("nfs", "c.example.org"), "yes");
  EXPECT_EQ(count_of(log_text(), "took a dead peer out"), 1);
  // b's agent starts again (the same state file): it puts itself back.
  uint64_t back_from = store_.index() + 1;
  b.adopted.clear();
  b.restart();
  a.peer("b.example.org", true);
  run({&a, &b}, 3s);
  EXPECT_EQ(raw("nfs", "b.example.org"), R"({"pooled": "yes", "weight": 10})");
  EXPECT_EQ(store_.events_since(key("nfs", "b.example.org"), back_from), 1);  // b's own write, nothing more
  EXPECT_EQ(store_.get("/poolkeeper/depooled/nfs/b.example.org", false).error_code, EtcdError::kKeyNotFound);
  EXPECT_TRUE(b.adopted.empty()) << b.adopted[0];  // a takeover, not an operator's change
  EXPECT_EQ(a.liveness["peers"]["b.example.org"]["alive"], true);
  EXPECT_EQ(count_of(log_text(), "took a dead peer out"), 1);
}

// The floor holds a dead peer in: a is depooled, so taking b out would leave no host
// pooled. For 30 s nothing is written (no lock either), it is said once; when a is
// pooled again the takeover goes ahead at once.
TEST_F(ConftoolWriterSim, ATakeoverTheFloorHoldsWaitsWithoutWriting) {
  seed("nfs", "a.example.org", R"({"pooled": "no", "weight": 10})");  // a's operator depooled it
  seed("nfs", "b.example.org");
  Host &a = host("a.example.org"), &b = host("b.example.org");
  a.want({{"nfs", ConftoolWant::Kind::kNo, 1}});
  b.want({{"nfs", ConftoolWant::Kind::kYes, 1}});
  peered(a, b);
  ASSERT_EQ(pooled("nfs", "a.example.org"), "no");
  a.peer("b.example.org", false);  // b dies
  const std::string held = "takeover of b.example.org held by the floor";
  ASSERT_TRUE(run_until({&a}, [&] { return log_text().find(held) != std::string::npos; })) << log_text();
  std::string log = log_text();
  size_t at = log.find(held);
  EXPECT_NE(log.substr(at, log.find('\n', at) - at).find("a.example.org pooled=no"), std::string::npos);
  EXPECT_EQ(pooled("nfs", "b.example.org"), "yes");
  a.turn();
  auto w = a.liveness["peers"]["b.example.org"]["takeover_waiting"]["nfs"];
  ASSERT_TRUE(w.is_object()) << a.liveness.dump();
  EXPECT_NE(w["reason"].get<std::string>().find("a.example.org pooled=no"), std::string::npos) << w.dump();
  // 30 s held: not one write (a's liveness refreshes do not count: they wake no watcher).
  uint64_t from = store_.index() + 1;
  run({&a}, 30s);
  EXPECT_EQ(store_.events_since("/", from), 0) << "writes while held";
  EXPECT_EQ(count_of(log_text(), held), 1) << log_text();
  EXPECT_EQ(pooled("nfs", "b.example.org"), "yes");
  // a pooled again: the floor allows, b goes out at once.
  a.want({{"nfs", ConftoolWant::Kind::kYes, 1}});
  a.turn();
  a.turn();
  EXPECT_EQ(raw("nfs", "b.example.org"), R"({"pooled": "no", "weight": 10})");
  EXPECT_EQ(count_of(log_text(), "takeover of b.example.org proceeds"), 1) << log_text();
  EXPECT_EQ(count_of(log_text(), held), 1);
  EXPECT_TRUE(store_.get("/poolkeeper/depooled/nfs/b.example.org", false).ok());
  a.turn();
  EXPECT_FALSE(a.liveness["peers"]["b.example.org"].contains("takeover_waiting")) << a.liveness.dump();
}

// b loses etcd but its agent answers: its liveness key runs out, yet for 3 ×
// peer_dead_after nothing changes; etcd back, its key returns, still nothing written.
TEST_F(ConftoolWriterSim, EtcdUnreachableForOneAgentChangesNothing) {
  seed_all({"nfs"}, {"a.example.org", "b.example.org"});
  Host &a = host("a.example.org"), &b = host("b.example.org");
  peered(a, b);
  auto before = pool_indexes();
  b.link.cut = true;
  ASSERT_TRUE(run_until({&a, &b}, [&] { return a.liveness["peers"]["b.example.org"]["alive"] == false; }));
  EXPECT_FALSE(b.synced);
  EXPECT_NE(b.last_error.find("connection refused"), std::string::npos) << b.last_error;
  run({&a, &b}, 3 * kDeadAfter);
  EXPECT_EQ(pool_indexes(), before);
  EXPECT_EQ(b.writer->liveness_round(&b.last_error), false);
  EXPECT_EQ(log_text().find("took a dead peer out"), std::string::npos);
  b.link.cut = false;
  ASSERT_TRUE(run_until({&a, &b}, [&] { return a.liveness["peers"]["b.example.org"]["alive"] == true; }));
  EXPECT_TRUE(b.synced);
  EXPECT_EQ(b.liveness["ok"], true);
  EXPECT_EQ(pool_indexes(), before);
}

// confctl's change is adopted as intent, never written back over resyncs; a set that
// changes nothing (a new index) is adopted again.
TEST_F(ConftoolWriterSim, ConfctlWritesAreAdoptedNotFought) {
  seed_all({"nfs"}, {"a.example.org", "b.example.org"});
  Host& a = host("a.example.org");
  a.want({{"nfs", ConftoolWant::Kind::kYes, 1}});
  run({&a}, 1s);
  ASSERT_EQ(a.adopted, std::vector<std::string>{"nfs=yes"});  // the first look adopts what the key says
  a.adopted.clear();
  confctl_set("nfs", "a.example.org", "no");
  a.turn();
  ASSERT_EQ(a.adopted, std::vector<std::string>{"nfs=no"});
  a.want({{"nfs", ConftoolWant::Kind::kNo, 1}});  // the agent applied it
  uint64_t idx = index("nfs", "a.example.org");
  run({&a}, 5s);
  EXPECT_EQ(index("nfs", "a.example.org"), idx);
  EXPECT_EQ(a.adopted.size(), 1u);
  confctl_set("nfs", "a.example.org", "yes");
  a.turn();
  a.want({{"nfs", ConftoolWant::Kind::kYes, 1}});
  confctl_set("nfs", "a.example.org", "yes");
  idx = index("nfs", "a.example.org");
  run({&a}, 5s);
  EXPECT_EQ(a.adopted, (std::vector<std::string>{"nfs=no", "nfs=yes", "nfs=yes"}));
  EXPECT_EQ(index("nfs", "a.example.org"), idx);
}

// conftool-sync removes our key: said once however many resyncs follow, shown as
// missing, not created; said again when it is back.
TEST_F(ConftoolWriterSim, AMissingKeyIsLoggedOnce) {
  seed("nfs", "a.example.org");
  Host& a = host("a.example.org");
  a.want({{"nfs", ConftoolWant::Kind::kYes, 1}});
  run({&a}, 1s);
  ASSERT_TRUE(store_.del(key("nfs", "a.example.org"), std::nullopt).ok());
  run({&a}, 5s);
  EXPECT_EQ(count_of(log_text(), "conftool key missing"), 1) << log_text();
  EXPECT_EQ(a.keys["nfs"]["state"], "missing");
  EXPECT_EQ(pooled("nfs", "a.example.org"), "(missing)");
  seed("nfs", "a.example.org");
  run({&a}, 1s);
  EXPECT_EQ(count_of(log_text(), "conftool key present again"), 1) << log_text();
}

// A lock another host holds: tried for the lock wait (5 s), then given up, naming
// the holder; nothing written.
TEST_F(ConftoolWriterSim, AHeldLockIsWaitedForThenGivenUp) {
  seed_all({"nfs"}, {"a.example.org", "b.example.org"});
  Host& a = host("a.example.org");
  a.turn();
  ASSERT_TRUE(store_.put("/poolkeeper/locks/nfs", "b.example.org", EtcdPut{.ttl = 60}).ok());
  a.want({{"nfs", ConftoolWant::Kind::kNoUnderFloor, 1}});
  SteadyTime t0 = clock_.now();
  a.turn();
  EXPECT_FALSE(a.synced);
  EXPECT_EQ(a.last_error, "cannot take the etcd lock /poolkeeper/locks/nfs: held by b.example.org");
  EXPECT_GE(clock_.now() - t0, 5s);
  EXPECT_LT(clock_.now() - t0, 6s);
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  // Released: the floor lets a go (b stays pooled).
  ASSERT_TRUE(store_.del("/poolkeeper/locks/nfs", std::nullopt).ok());
  a.turn();
  EXPECT_TRUE(a.synced) << a.last_error;
  EXPECT_EQ(pooled("nfs", "a.example.org"), "no");
  EXPECT_EQ(store_.get("/poolkeeper/locks/nfs", false).error_code, EtcdError::kKeyNotFound);  // released
}

// An operator's "inactive" is theirs alone: adopted, and never written over, whatever
// the agent wants (pooled, depooled, failing) and however many resyncs follow, nor by
// a depool.
TEST_F(ConftoolWriterSim, AnInactiveKeyIsNeverWritten) {
  seed("nfs", "a.example.org", R"({"pooled": "inactive", "weight": 0})");
  seed("nfs", "b.example.org");
  Host& a = host("a.example.org");
  a.want({{"nfs", ConftoolWant::Kind::kYes, 1}});
  run({&a}, 1s);
  ASSERT_EQ(a.adopted, std::vector<std::string>{"nfs=inactive"});
  uint64_t idx = index("nfs", "a.example.org");
  for (auto k : {ConftoolWant::Kind::kYes, ConftoolWant::Kind::kNoUnderFloor, ConftoolWant::Kind::kNo}) {
    a.want({{"nfs", k, 1}});
    run({&a}, 5s);
    EXPECT_EQ(index("nfs", "a.example.org"), idx) << "wanted " << static_cast<int>(k);
  }
  std::vector<ConftoolWriter::TakeOutAnswer> answers;
  a.writer->take_out({{"nfs", 1}}, [&](const std::vector<ConftoolWriter::TakeOutAnswer>& got) { answers = got; });
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_FALSE(answers[0].unavailable);
  EXPECT_FALSE(answers[0].refusal) << *answers[0].refusal;
  EXPECT_EQ(index("nfs", "a.example.org"), idx);
  EXPECT_EQ(pooled("nfs", "a.example.org"), "inactive");
  EXPECT_EQ(a.keys["nfs"]["pooled"], "inactive");
  EXPECT_EQ(a.adopted.size(), 1u);
}

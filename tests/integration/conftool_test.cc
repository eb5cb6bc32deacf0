// The conftool side against a real etcd 3.4 (v2 API, as PyBal and confctl use it):
// keys follow health and intent; confctl-style writes are adopted, never fought;
// inactive and missing keys are respected; an etcd outage flaps nothing; PyBal's
// way of reading sees every change; the etcd lock makes two simultaneous failures
// leave exactly one host pooled; liveness is judged through etcd (a cut link between
// agents changes no key, a dead host is taken out, with who and why beside the
// liveness keys; a takeover the floor refuses waits and says so once); every value the
// agent writes is what confctl would write for the change; `pool` says what the load
// balancer will do; a hold service keeps "yes" through a reboot. What needs only time
// to pass (a death, a held takeover or a cut link over many seconds, one agent's etcd
// outage, resyncs) is tested in simulated time in conftool_writer_sim_test.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "pybal-compat/conftool_plan.h"
#include "pybal-compat/conftool_writer.h"
#include "tests/harness/agent_proc.h"
#include "tests/harness/conftool_etcd.h"
#include "tests/harness/servers.h"
#include "tests/harness/tcp_proxy.h"

using namespace pk_test;
using poolkeeper::EtcdError;
using poolkeeper::EtcdPut;

namespace {

class ConftoolTest : public ::testing::Test, protected ConftoolEtcd {
 protected:
  bool wait_pooled(const std::string& svc, const std::string& host, const std::string& want,
                   std::chrono::milliseconds t = 5000ms) {
    return wait_for([&] { return pooled(svc, host) == want; }, t, 10ms);
  }
  std::string conftool_section(const std::string& extra = "") {
    return "\n[conftool]\nendpoints = [\"" + etcd().url() + "\"]\nprefix = \"" + kPrefix + "\"\n" + extra;
  }
  // confctl's way (conftool/drivers/etcd.py): read with quorum, json.loads, update with
  // the schema's fields (weight, then pooled: in place when present), json.dumps, and
  // PUT ?prevExist=true&prevIndex=<modifiedIndex>. The dump is python_json_dumps, which
  // conftool_value_test holds to Python's own output.
  void confctl_set(const std::string& svc, const std::string& host, const std::string& pooled_value) {
    auto r = client().get(key(svc, host), false, true);
    ASSERT_TRUE(r.ok());
    auto v = nlohmann::ordered_json::parse(r.node.value);
    v["weight"] = v.value("weight", 10);
    v["pooled"] = pooled_value;
    auto w = client().put(key(svc, host), poolkeeper::python_json_dumps(v),
                          EtcdPut{.prev_exist = true, .prev_index = r.node.modified_index});
    ASSERT_TRUE(w.ok()) << w.describe();
  }
  // The key's value as etcd holds it, byte for byte.
  std::string raw(const std::string& svc, const std::string& host) {
    auto r = client().get(key(svc, host), false, true);
    return r.ok() ? r.node.value : "(" + r.describe() + ")";
  }
  static std::string record_key(const std::string& svc, const std::string& host) {
    return "/poolkeeper/depooled/" + svc + "/" + host;
  }
  static int count_of(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  // modifiedIndex of every key in the pools tree.
  std::map<std::string, uint64_t> pool_indexes() {
    std::map<std::string, uint64_t> out;
    auto r = client().get(kPrefix, true, true);
    EXPECT_TRUE(r.ok()) << r.describe();
    for (const auto& svc : r.node.nodes)
      for (const auto& h : svc.nodes) out[h.key] = h.modified_index;
    return out;
  }
  // Writes to one key from etcd index `from` on (etcd's event history replayed).
  int writes_since(const std::string& k, uint64_t from) {
    int n = 0;
    for (int i = 0; i < 100; ++i) {
      auto w = client().watch(k, false, from, std::chrono::milliseconds(300));
      if (!w.ok()) break;
      ++n;
      from = w.node.modified_index + 1;
    }
    return n;
  }
  uint64_t etcd_index() { return client().get("/", false, true).etcd_index; }
  int pooled_nfs_hosts() { return (pooled("nfs", "a.example.org") == "yes") + (pooled("nfs", "b.example.org") == "yes"); }
  // Replays every etcd event (locks too) from index `from` to now: a's and b's nfs keys,
  // both "yes" at `from`, must never both be "no"; nothing but hosts under the pools
  // tree. Returns how many of the events were on lock keys.
  int replay_never_both_out(uint64_t from, const std::string& what) {
    std::map<std::string, std::string> state = {{key("nfs", "a.example.org"), "yes"}, {key("nfs", "b.example.org"), "yes"}};
    int lock_events = 0;
    uint64_t end = etcd_index();
    for (uint64_t idx = from; idx <= end;) {
      auto w = client().watch("/", true, idx, std::chrono::milliseconds(2000));
      EXPECT_TRUE(w.ok()) << what << ": " << w.describe();
      if (!w.ok()) break;
      if (state.count(w.node.key)) state[w.node.key] = nlohmann::json::parse(w.node.value).value("pooled", "?");
      if (w.node.key.rfind("/poolkeeper/locks/", 0) == 0) ++lock_events;
      EXPECT_TRUE(w.node.key.rfind(kPrefix, 0) != 0 || w.node.key.find(".example.org") != std::string::npos)
          << "not a host under the pools tree: " << w.node.key;
      int yes = 0;
      for (auto& [k, v] : state) yes += v == "yes";
      EXPECT_GE(yes, 1) << what << ": both hosts out at index " << w.node.modified_index;
      idx = w.node.modified_index + 1;
    }
    return lock_events;
  }
  static int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }
  static bool peer_alive(const AgentProc& p, const std::string& host) {
    auto l = p.status()["conftool"]["liveness"]["peers"];
    return l.contains(host) && l[host]["alive"] == true;
  }
  static bool peer_gone(const AgentProc& p, const std::string& host) {
    auto l = p.status()["conftool"]["liveness"]["peers"];
    return l.contains(host) && l[host]["alive"] == false;
  }
  // a and b, each the other's nfs peer, started; returns once b serves and a sees it alive.
  void start_nfs_peers(AgentProc& a, AgentProc& b) {
    a.nfs_extra = "peers = [\"" + b.url() + "\"]\n";
    b.nfs_extra = "peers = [\"" + a.url() + "\"]\n";
    for (AgentProc* p : {&a, &b}) p->write_config(p->config_text());
    a.start();
    b.start();
    ASSERT_TRUE(b.wait_health("nfs", 200));
    ASSERT_TRUE(wait_for([&] {
      return a.status()["peers"][0]["reachable"] == true && peer_alive(a, "b.example.org");
    }, 5000ms));
  }
  // Short liveness timings so a test sees deaths in seconds: peer_dead_after at its
  // minimum; a TTL of 2 s leaves a refresh (every 2/3 s) a second and more of slack on a
  // busy machine.
  static constexpr const char* kLive = "peer_dead_after = \"1s\"\nliveness_ttl = \"2s\"\n";
};

}  // namespace

TEST_F(ConftoolTest, KeyFollowsHealthAndIntentKeepingOperatorFields) {
  seed("a.example.org", R"({"pooled": "no", "weight": 7, "note": "rack b4"})");
  seed("b.example.org");
  // The first look adopts what the key says: "no" from an operator.
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(wait_for([&] { return a.status()["services"]["nfs"]["intent"]["reason"] == "set via conftool"; }, 5000ms));
  EXPECT_EQ(a.health("nfs"), 503);
  ASSERT_EQ(a.ctl({"pool"}).rc, 0);
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes"));
  ASSERT_TRUE(wait_pooled("http", "a.example.org", "yes"));
  auto v = value("nfs", "a.example.org");
  EXPECT_EQ(v["weight"], 7);  // the operator's weight
  EXPECT_EQ(v["note"], "rack b4");  // and fields we do not know
  // depool → no
  auto r = a.ctl({"depool", "nfs", "--reason", "disk"});
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(pooled("nfs", "a.example.org"), "no") << a.log();  // written under the lock before the answer
  EXPECT_EQ(pooled("http", "a.example.org"), "yes");
  ASSERT_EQ(a.ctl({"pool", "nfs"}).rc, 0);
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes"));
  // Health: b is pooled, so a may leave; and comes back when healthy.
  // Written under the floor as by confctl: "pooled" alone changes, in its place.
  a.set_ok("nfs", false);
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "no"));
  EXPECT_EQ(raw("nfs", "a.example.org"), R"({"pooled": "no", "weight": 7, "note": "rack b4"})");
  a.set_ok("nfs", true);
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes"));
  EXPECT_EQ(raw("nfs", "a.example.org"), R"({"pooled": "yes", "weight": 7, "note": "rack b4"})");
  // The agent's copy of the keys follows etcd through its watch: wait for it.
  nlohmann::json s;
  EXPECT_TRUE(wait_for([&] {
    s = a.status();
    return s["conftool"]["up"] == true && s["conftool"]["keys"]["nfs"]["pooled"] == "yes";
  }, 5000ms)) << s["conftool"].dump();
  EXPECT_NE(a.get("/metrics").body.find("\npoolkeeper_conftool_up 1\n"), std::string::npos);
}

TEST_F(ConftoolTest, ConfctlWritesAreAdoptedNotFought) {
  seed("a.example.org");
  seed("b.example.org");
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  confctl_set("nfs", "a.example.org", "no");
  ASSERT_TRUE(a.wait_health("nfs", 503));
  auto intent = a.status()["services"]["nfs"]["intent"];
  EXPECT_EQ(intent["intent"], "depooled");
  EXPECT_EQ(intent["reason"], "set via conftool");
  EXPECT_EQ(intent["who"], "conftool");
  uint64_t idx = index("nfs", "a.example.org");
  // Not written back (over many resyncs: conftool_writer_sim_test).
  EXPECT_TRUE(holds_for([&] { return index("nfs", "a.example.org") == idx; }, 300ms, 50ms)) << raw("nfs", "a.example.org") << "\n" << a.log();
  EXPECT_EQ(pooled("nfs", "a.example.org"), "no");
  confctl_set("nfs", "a.example.org", "yes");
  ASSERT_TRUE(a.wait_health("nfs", 200));
  // A set that changes nothing still bumps the index: adopted again, no write back.
  confctl_set("nfs", "a.example.org", "yes");
  EXPECT_TRUE(holds_for([&] { return a.health("nfs") == 200; }, 300ms));
  // The intent survives a restart: never 200 from the start until the checks have run
  // and the first sync has read the key again.
  confctl_set("http", "a.example.org", "no");
  ASSERT_TRUE(a.wait_health("http", 503));
  a.sigterm_and_wait();
  a.start();
  bool served = false;
  EXPECT_TRUE(wait_for([&] {
    served = served || a.health("http") == 200;
    auto s = a.status();
    return s["services"]["nfs"]["health"] == "healthy" && s["conftool"]["up"] == true &&
           s["conftool"]["keys"]["http"]["pooled"] == "no";
  }, 5000ms)) << a.status().dump();
  EXPECT_FALSE(served);
  EXPECT_EQ(a.health("http"), 503);
  EXPECT_EQ(a.status()["services"]["http"]["intent"]["intent"], "depooled");
}

TEST_F(ConftoolTest, InactiveAndMissingKeys) {
  ASSERT_TRUE(client().put(key("nfs", "a.example.org"), R"({"pooled": "inactive", "weight": 0})").ok());
  // no http key at all
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(wait_for([&] { return a.status()["services"]["nfs"]["intent"]["intent"] == "inactive"; }, 5000ms));
  uint64_t idx = index("nfs", "a.example.org");
  a.set_ok("nfs", false);
  ASSERT_TRUE(wait_for([&] { return a.status()["services"]["nfs"]["health"] == "unhealthy"; }, 5000ms));
  EXPECT_EQ(index("nfs", "a.example.org"), idx);
  a.set_ok("nfs", true);
  a.ctl({"depool", "nfs"});
  ASSERT_TRUE(wait_for([&] { return a.status()["services"]["nfs"]["intent"]["intent"] == "depooled"; }, 5000ms));
  // Never touched (whatever it wants, over many resyncs: conftool_writer_sim_test).
  EXPECT_TRUE(holds_for([&] { return index("nfs", "a.example.org") == idx; }, 300ms, 50ms));
  EXPECT_EQ(pooled("nfs", "a.example.org"), "inactive");
  EXPECT_EQ(pooled("http", "a.example.org"), "(missing)");  // not created
  EXPECT_EQ(a.status()["conftool"]["keys"]["http"]["state"], "missing");
  a.sigterm_and_wait();
  // With create_missing the key appears.
  AgentProc b("b.example.org", conftool_section("create_missing = true\n"));
  b.start();
  ASSERT_TRUE(wait_pooled("http", "b.example.org", "yes"));
  EXPECT_EQ(value("http", "b.example.org")["weight"], 10);
}

TEST_F(ConftoolTest, EtcdOutageFlapsNothing) {
  seed("a.example.org");
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_TRUE(wait_for([&] { return a.status()["conftool"]["up"] == true; }, 5000ms));
  uint64_t idx = index("nfs", "a.example.org");
  etcd().stop();
  ASSERT_TRUE(wait_for([&] { return a.status()["conftool"]["up"] == false; }, 10000ms));
  // The first error may come from a request the stop cut short (not "refused");
  // the retries that follow meet a closed port.
  std::string last_error;
  EXPECT_TRUE(wait_for([&] {
    last_error = a.status()["conftool"]["last_error"].get<std::string>();
    return last_error.find("connection refused") != std::string::npos;
  }, 10000ms)) << last_error;
  EXPECT_NE(a.get("/metrics").body.find("\npoolkeeper_conftool_up 0\n"), std::string::npos);
  EXPECT_EQ(a.health("nfs"), 200);  // serving its local state
  EXPECT_EQ(a.ctl({"status"}).rc, 0);
  etcd().start();
  ASSERT_TRUE(wait_for([&] { return a.status()["conftool"]["up"] == true; }, 15000ms));
  // Nothing written: nothing differed.
  EXPECT_TRUE(holds_for([&] { return index("nfs", "a.example.org") == idx; }, 300ms, 50ms));
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
}

TEST_F(ConftoolTest, PybalStyleReaderSeesEveryChange) {
  seed("a.example.org");
  seed("b.example.org");
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  // PyBal: GET <prefix>/<service>?recursive=true, then wait=true&waitIndex=N.
  auto all = client().get(std::string(kPrefix) + "/nfs", true, false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.node.nodes.size(), 2u);
  uint64_t next = all.etcd_index + 1;
  std::vector<std::string> seen;
  std::thread reader([&] {
    for (int i = 0; i < 2; ++i) {
      auto w = client().watch(std::string(kPrefix) + "/nfs", true, next, std::chrono::milliseconds(10000));
      if (!w.ok()) break;
      seen.push_back(w.node.key + "=" + nlohmann::json::parse(w.node.value).value("pooled", "?"));
      next = w.node.modified_index + 1;
    }
  });
  // (The watch starts at `next`: changes made before it is under way are still seen.)
  ASSERT_EQ(a.ctl({"depool", "nfs"}).rc, 0);
  ASSERT_EQ(a.ctl({"pool", "nfs"}).rc, 0);
  reader.join();
  ASSERT_EQ(seen.size(), 2u) << a.log();
  EXPECT_EQ(seen[0], key("nfs", "a.example.org") + "=no") << a.log();
  EXPECT_EQ(seen[0], key("nfs", "a.example.org") + "=no");
  EXPECT_EQ(seen[1], key("nfs", "a.example.org") + "=yes");
  // Nothing but hosts under the pools tree (the lock lives elsewhere).
  all = client().get(kPrefix, true, false);
  for (const auto& svc : all.node.nodes)
    for (const auto& h : svc.nodes) EXPECT_NE(h.key.find(".example.org"), std::string::npos) << h.key;
}

TEST_F(ConftoolTest, TwoAgentsFailingAtOnceLeaveExactlyOnePooled) {
  seed("a.example.org");
  seed("b.example.org");
  const std::string fast = "interval = \"100ms\"\ntimeout = \"90ms\"\nfast_interval = \"50ms\"\nrise = 1\nfall = 1\n";
  AgentProc a("a.example.org", conftool_section()), b("b.example.org", conftool_section());
  for (AgentProc* p : {&a, &b}) {
    p->check_timing = fast;
    p->write_config(p->config_text());
    p->start();
  }
  // Through health checks and the runtime; the many races at the same instant are
  // TwoWritersDecidingAtOnceLeaveExactlyOnePooled's.
  int races = 2, one_left = 0, lock_events = 0;
  for (int i = 0; i < races; ++i) {
    ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes")) << "race " << i;
    ASSERT_TRUE(wait_pooled("nfs", "b.example.org", "yes")) << "race " << i;
    uint64_t start = etcd_index() + 1;
    a.set_ok("nfs", false);
    b.set_ok("nfs", false);
    // Settles with exactly one "yes" ...
    ASSERT_TRUE(wait_for([&] {
      return pooled_nfs_hosts() == 1 && a.status()["services"]["nfs"]["failing"] == true &&
             b.status()["services"]["nfs"]["failing"] == true;
    }, 5000ms, 20ms)) << "race " << i;
    EXPECT_TRUE(holds_for([&] { return pooled_nfs_hosts() == 1; }, 300ms)) << "race " << i;
    // ... and the history never had both "no".
    lock_events += replay_never_both_out(start, "race " + std::to_string(i));
    ++one_left;
    a.set_ok("nfs", true);
    b.set_ok("nfs", true);
  }
  EXPECT_EQ(one_left, races);
  EXPECT_GT(lock_events, races);  // the decisions went through the lock
  std::printf("%d races, each left exactly one host pooled (%d lock events)\n", one_left, lock_events);
}

// The lock under contention: the writers of a and b, each on a thread and a connection
// of its own, decide at the same instant that their host leaves (failing health, under
// the floor). etcd's compare-and-swap on the lock key lets one decide at a time, so the
// second reads the first's "no" under the lock and stays. A race takes milliseconds,
// so many run here.
TEST_F(ConftoolTest, TwoWritersDecidingAtOnceLeaveExactlyOnePooled) {
  seed("a.example.org");
  seed("b.example.org");
  TempDir dir;
  poolkeeper::ConftoolConfig cfg;
  cfg.endpoints = {etcd().url()};
  cfg.prefix = kPrefix;
  cfg.liveness_prefix = "/poolkeeper/alive";
  cfg.depooled_prefix = "/poolkeeper/depooled";
  poolkeeper::ConftoolWriter::Callbacks cb;
  cb.adopt = [](const std::string&, poolkeeper::ConftoolPooled) {};
  cb.verdict = [](const std::string&, poolkeeper::FloorVerdict) {};
  cb.status = [](bool, const std::string&, const nlohmann::json&, const nlohmann::json&) {};
  std::vector<std::unique_ptr<poolkeeper::ConftoolWriter>> writers;
  for (const char* h : {"a.example.org", "b.example.org"})
    writers.push_back(std::make_unique<poolkeeper::ConftoolWriter>(cfg, h, dir.file(std::string(h) + ".json"), cb,
                                                                   poolkeeper::real_clock()));
  auto want_all = [&](poolkeeper::ConftoolWant::Kind k) {
    for (auto& w : writers) w->update({{"nfs", k, 1}}, {});
  };
  int races = 10, lock_events = 0;
  for (int i = 0; i < races; ++i) {
    // Both healthy again: the one that left writes "yes" back.
    want_all(poolkeeper::ConftoolWant::Kind::kYes);
    for (auto& w : writers) {
      std::string error;
      ASSERT_TRUE(w->sync_round(&error)) << error;
    }
    ASSERT_EQ(pooled_nfs_hosts(), 2) << "race " << i;
    uint64_t start = etcd_index() + 1;
    want_all(poolkeeper::ConftoolWant::Kind::kNoUnderFloor);
    std::atomic<int> ready{0};
    bool ok[2] = {false, false};
    std::string error[2];
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        ++ready;
        while (ready.load() < 2) std::this_thread::yield();
        ok[t] = writers[t]->sync_round(&error[t]);
      });
    for (auto& t : threads) t.join();
    ASSERT_TRUE(ok[0] && ok[1]) << error[0] << " / " << error[1];
    ASSERT_EQ(pooled_nfs_hosts(), 1) << "race " << i;
    lock_events += replay_never_both_out(start, "race " + std::to_string(i));
  }
  EXPECT_GE(lock_events, 4 * races);  // each race: two takes and two releases of the lock, at least
  std::printf("%d races, each left exactly one host pooled (%d lock events)\n", races, lock_events);
}

TEST_F(ConftoolTest, LivenessKeyIsKeptOutsideThePoolsTree) {
  seed("a.example.org");
  AgentProc a("a.example.org", conftool_section(kLive));
  a.start();
  ASSERT_TRUE(wait_for([&] { return client().get("/poolkeeper/alive/a.example.org").ok(); }, 5000ms)) << a.log();
  auto r = client().get("/poolkeeper/alive/a.example.org");
  auto v = nlohmann::json::parse(r.node.value);
  EXPECT_EQ(v["host"], "a.example.org");
  EXPECT_GT(v["pid"].get<int>(), 0);
  EXPECT_EQ(v["boot_id"], "boot-1");
  EXPECT_FALSE(v["version"].get<std::string>().empty());
  ASSERT_TRUE(r.node.ttl.has_value());
  EXPECT_LE(*r.node.ttl, 2);
  // (Refreshed past its TTL, and gone by it once killed: ADeadPeer… below; refreshed for
  // three TTLs in simulated time: conftool_writer_sim_test.)
  nlohmann::json s;
  EXPECT_TRUE(wait_for([&] {
    s = a.status()["conftool"]["liveness"];
    return s["self_seen"] == true;
  }, 5000ms)) << s.dump();
  EXPECT_EQ(s["key"], "/poolkeeper/alive/a.example.org");
  EXPECT_EQ(s["ok"], true);
  auto out = a.ctl({"status"}).out;
  EXPECT_NE(out.find("liveness key /poolkeeper/alive/a.example.org (ttl 2s) refreshed"), std::string::npos) << out;
  // Nothing but hosts under the pools tree.
  for (const auto& [k, idx] : pool_indexes()) EXPECT_NE(k.find(".example.org"), std::string::npos) << k;
}

TEST_F(ConftoolTest, CutLinkBetweenLiveAgentsChangesNoKey) {
  seed("a.example.org");
  seed("b.example.org");
  // Each agent reaches the other only through a proxy the test can stop; both reach etcd.
  AgentProc a("a.example.org", conftool_section(kLive)), b("b.example.org", conftool_section(kLive));
  TcpProxy to_a(port_of(a.url())), to_b(port_of(b.url()));
  a.nfs_extra = "peers = [\"" + to_b.url() + "\"]\n";
  b.nfs_extra = "peers = [\"" + to_a.url() + "\"]\n";
  for (AgentProc* p : {&a, &b}) p->write_config(p->config_text());
  to_a.start();
  to_b.start();
  a.start();
  b.start();
  for (AgentProc* p : {&a, &b}) ASSERT_TRUE(p->wait_health("nfs", 200));
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes"));
  ASSERT_TRUE(wait_pooled("nfs", "b.example.org", "yes"));
  ASSERT_TRUE(wait_for([&] { return a.status()["peers"][0]["reachable"] == true && peer_alive(a, "b.example.org"); }, 5000ms));
  ASSERT_TRUE(wait_for([&] { return b.status()["peers"][0]["reachable"] == true && peer_alive(b, "a.example.org"); }, 5000ms));
  auto before = pool_indexes();
  ASSERT_EQ(before.size(), 4u);
  to_a.stop();
  to_b.stop();
  ASSERT_TRUE(wait_for([&] { return a.status()["peers"][0]["reachable"] == false; }, 5000ms));
  ASSERT_TRUE(wait_for([&] { return b.status()["peers"][0]["reachable"] == false; }, 5000ms));
  // No key changes (for 3 × peer_dead_after in simulated time: conftool_writer_sim_test).
  EXPECT_EQ(pool_indexes(), before) << "a key changed while only the link was cut\n" << a.log() << b.log();
  EXPECT_EQ(a.status()["peers"][0]["reachable"], false);  // still cut, and still alive in etcd
  EXPECT_TRUE(peer_alive(a, "b.example.org"));
  EXPECT_TRUE(peer_alive(b, "a.example.org"));
  EXPECT_EQ(a.health("nfs"), 200);
  EXPECT_EQ(b.health("nfs"), 200);
  EXPECT_EQ(a.log().find("took a dead peer out"), std::string::npos);
  EXPECT_EQ(b.log().find("took a dead peer out"), std::string::npos);
  auto out = a.ctl({"status"}).out;
  EXPECT_NE(out.find("liveness key: alive"), std::string::npos) << out;
  // The PEER line: one space between its parts, none at the end.
  auto at = out.find("\nb.example.org ");
  ASSERT_NE(at, std::string::npos) << out;
  std::string peer_line = out.substr(at + 1, out.find('\n', at + 1) - at - 1);
  EXPECT_NE(peer_line.find(") liveness key: alive"), std::string::npos) << peer_line;
  EXPECT_NE(peer_line.back(), ' ') << peer_line;
  EXPECT_EQ(out.find(" \n"), std::string::npos) << out;
}

// b dies while a is depooled: taking b out would leave no host pooled, so the floor
// holds the takeover, which is said once, in the log, /status, the metrics, `poolctl
// status` and the page. a pooled again: the watch wakes the sync and b goes out at once,
// exactly once, with who and why beside the liveness keys. b's agent returns and puts
// itself back; a does not take it out again. Meanwhile b's liveness key ran out in etcd
// by its TTL, and a's lived on through refreshes (the same key, past its TTL). (The
// timing — out after the TTL and peer_dead_after, held 30 s without a write, nothing
// more while dead — in simulated time: conftool_writer_sim_test.)
TEST_F(ConftoolTest, ADeadPeerHeldByTheFloorGoesOutOnceWhenAllowedAndComesBackByItself) {
  seed("a.example.org");
  seed("b.example.org");
  AgentProc a("a.example.org", conftool_section(kLive)), b("b.example.org", conftool_section(kLive));
  ASSERT_NO_FATAL_FAILURE(start_nfs_peers(a, b));
  const std::string a_alive = "/poolkeeper/alive/a.example.org", b_alive = "/poolkeeper/alive/b.example.org";
  auto a_key = client().get(a_alive);
  ASSERT_TRUE(a_key.ok()) << a_key.describe();
  auto a_key_read = Clock::now();
  ASSERT_EQ(a.ctl({"depool", "nfs", "--reason", "disk swap"}).rc, 0);
  ASSERT_EQ(pooled("nfs", "a.example.org"), "no");
  uint64_t from = etcd_index() + 1;
  uint64_t http_idx = index("http", "b.example.org");
  b.stop_kill9();  // its HTTP goes at once, its liveness key when the TTL runs out
  EXPECT_TRUE(wait_for([&] { return client().get(b_alive).error_code == EtcdError::kKeyNotFound; }, 10000ms));
  const std::string held = "takeover of b.example.org held by the floor";
  ASSERT_TRUE(wait_for([&] { return a.log().find(held) != std::string::npos; }, 20000ms)) << a.log();
  std::string log = a.log();
  size_t at = log.find(held);
  std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(line.find("a.example.org pooled=no"), std::string::npos) << line;  // who is depooled
  EXPECT_EQ(pooled("nfs", "b.example.org"), "yes");
  nlohmann::json w = a.status()["conftool"]["liveness"]["peers"]["b.example.org"]["takeover_waiting"]["nfs"];
  ASSERT_TRUE(w.is_object()) << a.status()["conftool"].dump();
  EXPECT_NE(w["reason"].get<std::string>().find("a.example.org pooled=no"), std::string::npos) << w.dump();
  EXPECT_NE(a.get("/metrics").body.find("\npoolkeeper_takeover_waiting{peer=\"b.example.org\",service=\"nfs\"} 1\n"),
            std::string::npos);
  EXPECT_NE(a.ctl({"status"}).out.find("nfs TAKEOVER HELD BY THE FLOOR since "), std::string::npos);
  EXPECT_NE(a.get("/").body.find("Takeover of b.example.org (nfs) held by the floor"), std::string::npos);
  EXPECT_EQ(count_of(a.log(), held), 1) << a.log();
  EXPECT_EQ(pooled("nfs", "b.example.org"), "yes");
  // a pooled again: the floor allows, b goes out at once. The value is what confctl
  // writes for "set/pooled=no" on it, nothing of ours.
  ASSERT_EQ(a.ctl({"pool", "nfs"}).rc, 0);
  ASSERT_TRUE(wait_pooled("nfs", "b.example.org", "no", 5000ms)) << a.log();
  EXPECT_EQ(raw("nfs", "b.example.org"), R"({"pooled": "no", "weight": 10})");
  EXPECT_TRUE(wait_for([&] { return count_of(a.log(), "takeover of b.example.org proceeds") == 1; }, 5000ms)) << a.log();
  EXPECT_TRUE(wait_for([&] {
    return a.get("/metrics").body.find("poolkeeper_takeover_waiting{") == std::string::npos;
  }, 5000ms));
  EXPECT_EQ(count_of(a.log(), held), 1);
  // Who and why are beside the liveness keys, naming the write; the record follows the
  // pool write (it names that write's index): wait for it.
  auto rec = client().get(record_key("nfs", "b.example.org"));
  ASSERT_TRUE(wait_for([&] { rec = client().get(record_key("nfs", "b.example.org")); return rec.ok(); }, 5000ms))
      << rec.describe() << "\n" << a.log();
  auto r = nlohmann::json::parse(rec.node.value);
  EXPECT_EQ(r["by"], "a.example.org");
  EXPECT_EQ(r["reason"].get<std::string>().rfind("peer dead: liveness key gone since ", 0), 0u) << rec.node.value;
  EXPECT_EQ(r["index"], index("nfs", "b.example.org"));
  EXPECT_TRUE(peer_gone(a, "b.example.org"));
  nlohmann::json t;
  EXPECT_TRUE(wait_for([&] {
    t = a.status()["conftool"]["liveness"]["peers"]["b.example.org"]["taken_out"]["nfs"];
    return t.is_object() && t["current"] == true;
  }, 5000ms)) << t.dump();
  EXPECT_EQ(t["by"], "a.example.org");
  EXPECT_EQ(t["reason"], r["reason"]);
  auto st = a.ctl({"status"}).out;
  EXPECT_NE(st.find("nfs taken out by a.example.org at "), std::string::npos) << st;
  EXPECT_NE(a.get("/").body.find("nfs taken out</span> by a.example.org"), std::string::npos);
  // Taken out exactly once, nothing else moved.
  EXPECT_EQ(writes_since(key("nfs", "b.example.org"), from), 1) << a.log();
  EXPECT_EQ(index("http", "b.example.org"), http_idx);  // http does not list b as a peer
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  // a's liveness key: etcd took its refreshes (refresh=true), so past its TTL it is the
  // same key (an expired one written again would be a new one) with the same value.
  auto a_key_now = client().get(a_alive);
  ASSERT_TRUE(a_key_now.ok()) << a_key_now.describe();
  EXPECT_GT(Clock::now() - a_key_read, 2s);  // b's key expired (≥ 2/3 of the TTL) and stayed gone peer_dead_after
  EXPECT_EQ(a_key_now.node.created_index, a_key.node.created_index);
  EXPECT_EQ(a_key_now.node.value, a_key.node.value);
  // b returns: its own agent puts it back (the operator never asked for that depool),
  // and a does not take it out again.
  uint64_t back_from = etcd_index() + 1;
  b.start();
  ASSERT_TRUE(wait_pooled("nfs", "b.example.org", "yes", 10000ms));
  ASSERT_TRUE(wait_for([&] { return peer_alive(a, "b.example.org"); }, 5000ms));
  EXPECT_TRUE(wait_for([&] {  // done with: removed
    return client().get(record_key("nfs", "b.example.org")).error_code == EtcdError::kKeyNotFound;
  }, 5000ms));
  EXPECT_EQ(raw("nfs", "b.example.org"), R"({"pooled": "yes", "weight": 10})");
  EXPECT_EQ(writes_since(key("nfs", "b.example.org"), back_from), 1);  // b's own write, nothing more
  EXPECT_EQ(b.status()["services"]["nfs"]["intent"]["intent"], "pooled");
}

TEST_F(ConftoolTest, ValuesKeepConfctlsShapeThroughAgentWrites) {
  // As conftool-sync and confctl leave them: confctl's own order, a field PyBal does not
  // know, non-ASCII escaped; an operator's key in another order; an older agent's
  // value with its marker fields.
  const std::string a_nfs = R"({"weight": 7, "pooled": "yes", "note": "rack b4 caf\u00e9"})";
  const std::string a_http = R"({"pooled": "yes", "weight": 3, "owner": {"team": "storage", "since": 2019}})";
  ASSERT_TRUE(client().put(key("nfs", "a.example.org"), a_nfs).ok());
  ASSERT_TRUE(client().put(key("http", "a.example.org"), a_http).ok());
  seed("b.example.org");
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  EXPECT_EQ(raw("nfs", "a.example.org"), a_nfs);  // nothing differed: not written
  // The agent's depool: only "pooled" changes, in its place.
  ASSERT_EQ(a.ctl({"depool", "nfs"}).rc, 0);
  EXPECT_EQ(raw("nfs", "a.example.org"), R"({"weight": 7, "pooled": "no", "note": "rack b4 caf\u00e9"})");
  ASSERT_EQ(a.ctl({"pool", "nfs"}).rc, 0);
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes"));
  EXPECT_EQ(raw("nfs", "a.example.org"), a_nfs);
  // confctl depools http (read, merge, json.dumps, prevIndex); the agent adopts it, and
  // its own write after `pool` keeps confctl's bytes but for "pooled".
  confctl_set("http", "a.example.org", "no");
  EXPECT_EQ(raw("http", "a.example.org"), R"({"pooled": "no", "weight": 3, "owner": {"team": "storage", "since": 2019}})");
  ASSERT_TRUE(a.wait_health("http", 503));
  ASSERT_EQ(a.ctl({"pool", "http"}).rc, 0);
  ASSERT_TRUE(wait_pooled("http", "a.example.org", "yes"));
  EXPECT_EQ(raw("http", "a.example.org"), a_http);
  // (Failing health, under the floor, writes the same way: KeyFollowsHealth… above.)
  // A value an older agent marked (its takeover while we were away): the markers go with
  // the next write, the rest stays as it was.
  a.sigterm_and_wait();
  auto before = client().get(key("nfs", "a.example.org"));
  ASSERT_TRUE(client().put(key("nfs", "a.example.org"),
                           R"({"weight": 7, "pooled": "no", "note": "x", "poolkeeper_depooled_by": "b.example.org", )"
                           R"("poolkeeper_reason": "peer dead"})",
                           EtcdPut{.prev_exist = true, .prev_index = before.node.modified_index}).ok());
  a.start();
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes"));
  EXPECT_EQ(raw("nfs", "a.example.org"), R"({"weight": 7, "pooled": "yes", "note": "x"})");
  // Nothing of the agent's in the pools tree.
  for (const auto& [k, idx] : pool_indexes())
    EXPECT_EQ(client().get(k).node.value.find("poolkeeper"), std::string::npos) << k;
}

TEST_F(ConftoolTest, PoolSaysWhatTheLoadBalancerWillDo) {
  seed("a.example.org");
  seed("b.example.org");
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_TRUE(wait_for([&] { return a.status()["conftool"]["keys"]["nfs"]["pooled"] == "yes"; }, 5000ms));
  auto r = a.ctl({"nfs"}, "pool");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("conftool key " + key("nfs", "a.example.org") + " pooled=yes: PyBal routes to this host"),
            std::string::npos) << r.out;
  // An operator sets the key inactive (outside the agent): pool must not claim success.
  ASSERT_TRUE(client().put(key("nfs", "a.example.org"), R"({"pooled": "inactive", "weight": 10})").ok());
  ASSERT_TRUE(wait_for([&] { return a.status()["services"]["nfs"]["intent"]["intent"] == "inactive"; }, 5000ms));
  uint64_t idx = index("nfs", "a.example.org");
  for (const std::string as : {"pool", "poolctl"}) {
    r = as == "pool" ? a.ctl({"nfs"}, "pool") : a.ctl({"pool", "nfs"});
    EXPECT_EQ(r.rc, 1) << as << ": " << r.out;
    EXPECT_NE(r.out.find("nfs: pooled by the agent, but conftool key " + key("nfs", "a.example.org") +
                         " is inactive: PyBal will not route to this host (an operator sets it with confctl)"),
              std::string::npos)
        << as << ": " << r.out;
  }
  EXPECT_EQ(index("nfs", "a.example.org"), idx);  // only operators clear inactive
  EXPECT_EQ(a.status()["conftool"]["keys"]["nfs"]["pooled"], "inactive");
  auto st = a.ctl({"status"}).out;
  EXPECT_NE(st.find("is inactive: PyBal will not route to this host"), std::string::npos) << st;
  // http is fine: pooling it alone exits 0.
  EXPECT_EQ(a.ctl({"http"}, "pool").rc, 0);
  // conftool-sync removes the key under the running agent: logged once, shown, and pool says so.
  ASSERT_TRUE(client().del(key("nfs", "a.example.org")).ok());
  ASSERT_TRUE(wait_for([&] { return a.status()["conftool"]["keys"]["nfs"]["state"] == "missing"; }, 5000ms));
  // Once (over many resyncs: conftool_writer_sim_test).
  std::string log = a.log();
  const std::string line = "conftool key missing";
  size_t first = log.find(line);
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(line, first + 1), std::string::npos) << "logged more than once:\n" << log;
  EXPECT_NE(log.find(key("nfs", "a.example.org"), first), std::string::npos);
  r = a.ctl({"pool", "nfs"});
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("conftool key " + key("nfs", "a.example.org") + " does not exist: PyBal does not know this host"),
            std::string::npos) << r.out;
  st = a.ctl({"status"}).out;
  EXPECT_NE(st.find("does not exist: PyBal does not know this host"), std::string::npos) << st;
  EXPECT_EQ(pooled("nfs", "a.example.org"), "(missing)");  // not created without create_missing
}

TEST_F(ConftoolTest, HoldServiceKeepsYesThroughAReboot) {
  seed("a.example.org");
  seed("b.example.org");
  AgentProc a("a.example.org", conftool_section(), "on_reboot = \"hold\"\n");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_TRUE(a.wait_health("http", 200));
  uint64_t nfs_idx = index("nfs", "a.example.org");
  auto r = a.ctl({"depool", "--until-boot", "--reason", "reboot"});
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(wait_pooled("http", "a.example.org", "no"));
  // Held: NFS clients stall, then resume here.
  EXPECT_TRUE(holds_for([&] { return pooled("nfs", "a.example.org") == "yes"; }, 300ms));
  a.sigterm_and_wait();                                // the shutdown drain holds it too
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  write_file(a.dir().file("boot_id"), "boot-2\n");
  a.start();
  ASSERT_TRUE(wait_pooled("http", "a.example.org", "yes"));
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  EXPECT_EQ(index("nfs", "a.example.org"), nfs_idx) << a.log();  // never written through the reboot
}

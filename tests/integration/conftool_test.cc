// The conftool side against a real etcd 3.4 (v2 API, as PyBal and confctl use it):
// keys follow health and intent; confctl-style writes are adopted, never fought;
// inactive and missing keys are respected; an etcd outage flaps nothing; PyBal's
// way of reading sees every change; the etcd lock makes two simultaneous failures
// leave exactly one host pooled; a dead host is taken out by its peer; a hold
// service keeps "yes" through a reboot.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>

#include "pybal-compat/etcd_client.h"
#include "tests/harness/agent_proc.h"
#include "tests/harness/servers.h"

using namespace pk_test;
using poolkeeper::EtcdClient;
using poolkeeper::EtcdOptions;
using poolkeeper::EtcdPut;

namespace {

constexpr const char* kPrefix = "/conftool/v1/pools/eqiad/dumps";

class ConftoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = std::make_unique<Etcd>(dir_.path());
    etcd_->start();
    client_ = std::make_unique<EtcdClient>(EtcdOptions{{etcd_->url()}, "", "", "", "", "", std::chrono::milliseconds(2000)});
  }
  std::string key(const std::string& svc, const std::string& host) { return std::string(kPrefix) + "/" + svc + "/" + host; }
  // As conftool-sync would have created them (but pooled).
  void seed(const std::string& host, const std::string& value = R"({"pooled": "yes", "weight": 10})") {
    for (const char* svc : {"nfs", "http"}) ASSERT_TRUE(client_->put(key(svc, host), value).ok());
  }
  nlohmann::json value(const std::string& svc, const std::string& host) {
    auto r = client_->get(key(svc, host));
    if (!r.ok()) return nullptr;
    return nlohmann::json::parse(r.node.value);
  }
  std::string pooled(const std::string& svc, const std::string& host) {
    auto v = value(svc, host);
    return v.is_null() ? "(missing)" : v.value("pooled", "?");
  }
  uint64_t index(const std::string& svc, const std::string& host) { return client_->get(key(svc, host)).node.modified_index; }
  bool wait_pooled(const std::string& svc, const std::string& host, const std::string& want,
                   std::chrono::milliseconds t = 5000ms) {
    return wait_for([&] { return pooled(svc, host) == want; }, t, 10ms);
  }
  std::string conftool_section(const std::string& extra = "") {
    return "\n[conftool]\nendpoints = [\"" + etcd_->url() + "\"]\nprefix = \"" + kPrefix + "\"\n" + extra;
  }
  // confctl's way: read (quorum), merge, compare-and-swap on modifiedIndex.
  void confctl_set(const std::string& svc, const std::string& host, const std::string& pooled_value) {
    auto r = client_->get(key(svc, host), false, true);
    ASSERT_TRUE(r.ok());
    auto v = nlohmann::json::parse(r.node.value);
    v["pooled"] = pooled_value;
    auto w = client_->put(key(svc, host), v.dump(), EtcdPut{.prev_exist = true, .prev_index = r.node.modified_index});
    ASSERT_TRUE(w.ok()) << w.describe();
  }

  TempDir dir_;
  std::unique_ptr<Etcd> etcd_;
  std::unique_ptr<EtcdClient> client_;
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
  a.set_ok("nfs", false);
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "no"));
  a.set_ok("nfs", true);
  ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes"));
  v = value("nfs", "a.example.org");
  EXPECT_EQ(v["weight"], 7);
  EXPECT_EQ(v["note"], "rack b4");
  EXPECT_TRUE(v["weight"].is_number_integer());
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
  // A resync or two: the agent must not write it back.
  EXPECT_TRUE(holds_for([&] { return index("nfs", "a.example.org") == idx; }, 3000ms, 100ms));
  EXPECT_EQ(pooled("nfs", "a.example.org"), "no");
  confctl_set("nfs", "a.example.org", "yes");
  ASSERT_TRUE(a.wait_health("nfs", 200));
  // A set that changes nothing still bumps the index: adopted again, no write back.
  confctl_set("nfs", "a.example.org", "yes");
  EXPECT_TRUE(holds_for([&] { return a.health("nfs") == 200; }, 500ms));
  // The intent survives a restart.
  confctl_set("http", "a.example.org", "no");
  ASSERT_TRUE(a.wait_health("http", 503));
  a.sigterm_and_wait();
  a.start();
  EXPECT_FALSE(a.wait_health("http", 200, 1500ms));
}

TEST_F(ConftoolTest, InactiveAndMissingKeys) {
  ASSERT_TRUE(client_->put(key("nfs", "a.example.org"), R"({"pooled": "inactive", "weight": 0})").ok());
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
  EXPECT_TRUE(holds_for([&] { return index("nfs", "a.example.org") == idx; }, 1500ms, 100ms));  // never touched
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
  etcd_->stop();
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
  etcd_->start();
  ASSERT_TRUE(wait_for([&] { return a.status()["conftool"]["up"] == true; }, 15000ms));
  // Nothing written: nothing differed.
  EXPECT_TRUE(holds_for([&] { return index("nfs", "a.example.org") == idx; }, 1000ms, 100ms));
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
}

TEST_F(ConftoolTest, PybalStyleReaderSeesEveryChange) {
  seed("a.example.org");
  seed("b.example.org");
  AgentProc a("a.example.org", conftool_section());
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  // PyBal: GET <prefix>/<service>?recursive=true, then wait=true&waitIndex=N.
  auto all = client_->get(std::string(kPrefix) + "/nfs", true, false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.node.nodes.size(), 2u);
  uint64_t next = all.etcd_index + 1;
  std::vector<std::string> seen;
  std::thread reader([&] {
    for (int i = 0; i < 2; ++i) {
      auto w = client_->watch(std::string(kPrefix) + "/nfs", true, next, std::chrono::milliseconds(10000));
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
  all = client_->get(kPrefix, true, false);
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
  int races = 50, one_left = 0, lock_events = 0;
  for (int i = 0; i < races; ++i) {
    ASSERT_TRUE(wait_pooled("nfs", "a.example.org", "yes")) << "race " << i;
    ASSERT_TRUE(wait_pooled("nfs", "b.example.org", "yes")) << "race " << i;
    uint64_t start = client_->get(kPrefix, true, false).etcd_index + 1;
    a.set_ok("nfs", false);
    b.set_ok("nfs", false);
    // Settles with exactly one "yes" ...
    ASSERT_TRUE(wait_for([&] {
      return (pooled("nfs", "a.example.org") == "yes") + (pooled("nfs", "b.example.org") == "yes") == 1 &&
             a.status()["services"]["nfs"]["failing"] == true && b.status()["services"]["nfs"]["failing"] == true;
    }, 5000ms, 20ms)) << "race " << i;
    EXPECT_TRUE(holds_for([&] {
      return (pooled("nfs", "a.example.org") == "yes") + (pooled("nfs", "b.example.org") == "yes") == 1;
    }, 300ms)) << "race " << i;
    // ... and the history never had both "no": replay every change since the start.
    std::map<std::string, std::string> state = {{key("nfs", "a.example.org"), "yes"}, {key("nfs", "b.example.org"), "yes"}};
    uint64_t end = client_->get(kPrefix, true, false).etcd_index;
    for (uint64_t idx = start; idx <= end;) {
      auto w = client_->watch("/", true, idx, std::chrono::milliseconds(2000));  // every event, locks too
      ASSERT_TRUE(w.ok()) << w.describe();
      if (state.count(w.node.key)) state[w.node.key] = nlohmann::json::parse(w.node.value).value("pooled", "?");
      if (w.node.key.rfind("/poolkeeper/locks/", 0) == 0) ++lock_events;
      EXPECT_TRUE(w.node.key.rfind(kPrefix, 0) != 0 || w.node.key.find(".example.org") != std::string::npos)
          << "not a host under the pools tree: " << w.node.key;
      int yes = 0;
      for (auto& [k, v] : state) yes += v == "yes";
      EXPECT_GE(yes, 1) << "race " << i << ": both hosts out at index " << w.node.modified_index;
      idx = w.node.modified_index + 1;
    }
    ++one_left;
    a.set_ok("nfs", true);
    b.set_ok("nfs", true);
  }
  EXPECT_EQ(one_left, races);
  EXPECT_GT(lock_events, races);  // the decisions went through the lock
  std::printf("%d races, each left exactly one host pooled (%d lock events)\n", one_left, lock_events);
}

TEST_F(ConftoolTest, DeadPeerIsTakenOutAndComesBackByItself) {
  seed("a.example.org");
  seed("b.example.org");
  seed("c.example.org");  // a third host stays pooled, so the floor allows it
  AgentProc b("b.example.org");
  AgentProc a("a.example.org", conftool_section("peer_dead_after = \"2s\"\n"),
              "peers = [\"" + b.url() + "\"]\n");
  b.extra_agent = conftool_section("peer_dead_after = \"2s\"\n");
  b.nfs_extra = "peers = [\"" + a.url() + "\"]\n";
  b.write_config(b.config_text());
  a.start();
  b.start();
  ASSERT_TRUE(b.wait_health("nfs", 200));
  ASSERT_TRUE(wait_for([&] { return a.status()["peers"][0]["reachable"] == true; }, 5000ms));
  auto t0 = Clock::now();
  b.stop_kill9();
  ASSERT_TRUE(wait_pooled("nfs", "b.example.org", "no", 10000ms));
  double took = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("dead peer taken out after %.1f s (peer_dead_after 2s)\n", took);
  EXPECT_GE(took, 1.9);
  auto v = value("nfs", "b.example.org");
  EXPECT_EQ(v["poolkeeper_depooled_by"], "a.example.org");
  EXPECT_EQ(v["poolkeeper_reason"].get<std::string>().rfind("peer unreachable since ", 0), 0u);
  EXPECT_EQ(pooled("http", "b.example.org"), "yes");  // http does not list b as a peer
  // b returns: its own agent puts it back (the operator never asked for that depool),
  // and a, which may not have seen b come back yet, does not take it out again.
  b.start();
  ASSERT_TRUE(wait_pooled("nfs", "b.example.org", "yes", 10000ms));
  EXPECT_TRUE(holds_for([&] {
    v = value("nfs", "b.example.org");
    return v["pooled"] == "yes" && !v.contains("poolkeeper_depooled_by");
  }, 3000ms, 100ms)) << v.dump();
  EXPECT_EQ(b.status()["services"]["nfs"]["intent"]["intent"], "pooled");
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
  EXPECT_TRUE(holds_for([&] { return pooled("nfs", "a.example.org") == "yes"; }, 500ms));
  a.sigterm_and_wait();                                // the shutdown drain holds it too
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  write_file(a.dir().file("boot_id"), "boot-2\n");
  a.start();
  ASSERT_TRUE(wait_pooled("http", "a.example.org", "yes"));
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  EXPECT_EQ(index("nfs", "a.example.org"), nfs_idx) << a.log();  // never written through the reboot
}

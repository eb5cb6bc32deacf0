// The real poolkeeper binary over the real stack: nfs-ganesha, nginx and an rsync
// daemon serving one tree. Stopping ganesha takes /health/nfs to 503 within
// interval * fall + timeout; restarting it brings 200 back after `rise` passes.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/harness/servers.h"

using namespace pk_test;

TEST(AgentStackTest, NfsOutAndBackIn) {
  Stack stack;
  stack.start();
  TempDir dir;
  int port = free_port();
  std::string cfg =
      "[agent]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\nhostname = \"host1.example.org\"\n"
      "admin_socket = \"" + dir.file("admin.sock") + "\"\nstate_dir = \"" + dir.file("state") + "\"\n"
      "drain_seconds = 0\n"
      "[services.nfs]\nchecks = [\"export\"]\n"
      "[services.http]\nchecks = [\"web\", \"export\"]\n"
      "[services.rsync]\nchecks = [\"mirror\", \"export\"]\n"
      "[checks.export]\nkind = \"nfs\"\nport = " + std::to_string(stack.ganesha->port()) + "\n"
      "path = \"/dumps/canary.txt\"\nexpect = \"poolkeeper\"\nmax_age = \"26h\"\n"
      "interval = \"1s\"\ntimeout = \"500ms\"\nrise = 2\nfall = 2\n"
      "[checks.web]\nkind = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(stack.nginx->port()) +
      "/canary.txt\"\nhost = \"dumps.example.org\"\n"
      "[checks.mirror]\nkind = \"rsync\"\naddress = \"127.0.0.1:" + std::to_string(stack.rsyncd->port()) +
      "\"\nmodule = \"dumps\"\npath = \"canary.txt\"\n";
  write_file(dir.file("agent.toml"), cfg);
  Process agent({POOLKEEPER_BIN, "--config", dir.file("agent.toml")}, dir.file("agent.log"));
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(wait_for([&] { return http_get(base + "/health").status == 200; }, 10000ms))
      << http_get(base + "/health").body << read_file(dir.file("agent.log"));

  // The NFS handles are reported for operators and peers.
  auto status = nlohmann::json::parse(http_get(base + "/status").body);
  auto details = status["checks"]["export"]["last"]["details"];
  EXPECT_TRUE(details.contains("root_fh")) << details.dump();
  EXPECT_TRUE(details.contains("fh")) << details.dump();

  auto t0 = Clock::now();
  stack.ganesha->stop();
  ASSERT_TRUE(wait_for([&] { return http_get(base + "/health/nfs").status == 503; }, 5000ms, 5ms));
  double out_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("ganesha stopped → /health/nfs 503 after %.2f s (bound: 1s * 2 + 0.5s)\n", out_s);
  EXPECT_LE(out_s, 2.5);
  EXPECT_EQ(http_get(base + "/health/nfs").body, "not pooled: check export unhealthy: connection refused\n");
  // The export check serves all three services.
  EXPECT_EQ(http_get(base + "/health/http").status, 503);
  EXPECT_EQ(http_get(base + "/health/rsync").status, 503);

  stack.ganesha->start();
  auto t1 = Clock::now();
  int last_successes = 0;
  ASSERT_TRUE(wait_for(
      [&] {
        auto s = nlohmann::json::parse(http_get(base + "/status").body);
        bool pooled = s["services"]["nfs"]["pooled"];
        int succ = s["checks"]["export"]["successes"];
        EXPECT_EQ(pooled, succ >= 2) << s.dump();
        last_successes = succ;
        return pooled;
      },
      10000ms, 20ms));
  std::printf("ganesha restarted → /health/nfs 200 after %.2f s (rise = 2)\n",
              std::chrono::duration<double>(Clock::now() - t1).count());
  EXPECT_EQ(http_get(base + "/health/nfs").status, 200);

  // Probe latency is in the histogram.
  std::string metrics = http_get(base + "/metrics").body;
  EXPECT_NE(metrics.find("poolkeeper_check_duration_seconds_count{check=\"export\"}"), std::string::npos);
  EXPECT_NE(metrics.find("poolkeeper_check_results_total{check=\"export\",result=\"network_error\"}"),
            std::string::npos);
}

// Peers compare NFS file handles: a peer exporting the very same tree hands out the
// same handles (a moved client keeps working); one filled independently does not
// (a moved client gets ESTALE). /status and nfs_handles_match say which.
TEST(AgentStackTest, PeersCompareNfsHandles) {
  TempDir dir;
  for (const char* d : {"same", "copy", "g1", "g2", "g3", "a", "b", "c"})
    std::filesystem::create_directories(dir.file(d));
  ::chmod(dir.file("same").c_str(), 0755);
  ::chmod(dir.file("copy").c_str(), 0755);
  write_file(dir.file("same/canary.txt"), "poolkeeper canary\n");
  write_file(dir.file("copy/canary.txt"), "poolkeeper canary\n");  // same bytes, another inode
  Ganesha g1(dir.file("g1"), dir.file("same")), g2(dir.file("g2"), dir.file("same")),
      g3(dir.file("g3"), dir.file("copy"));
  g1.start();
  g2.start();
  g3.start();
  struct Host {
    std::string name;
    int port;
    Ganesha* g;
    std::string d;
  };
  std::vector<Host> hosts = {{"a.example.org", free_port(), &g1, dir.file("a")},
                             {"b.example.org", free_port(), &g2, dir.file("b")},
                             {"c.example.org", free_port(), &g3, dir.file("c")}};
  std::vector<Process> agents;
  for (const auto& h : hosts) {
    std::string peers;
    for (const auto& o : hosts)
      if (o.name != h.name) peers += std::string(peers.empty() ? "" : ", ") + "\"http://127.0.0.1:" + std::to_string(o.port) + "\"";
    write_file(h.d + "/agent.toml",
               "[agent]\nlisten = \"127.0.0.1:" + std::to_string(h.port) + "\"\nhostname = \"" + h.name +
                   "\"\nadmin_socket = \"" + h.d + "/admin.sock\"\nstate_dir = \"" + h.d + "/state\"\n"
                   "[services.nfs]\nchecks = [\"export\"]\npeers = [" + peers + "]\n"
                   "[checks.export]\nkind = \"nfs\"\nport = " + std::to_string(h.g->port()) +
                   "\npath = \"/dumps/canary.txt\"\nrise = 1\n");
    agents.emplace_back(std::vector<std::string>{POOLKEEPER_BIN, "--config", h.d + "/agent.toml"}, h.d + "/agent.log");
  }
  std::string a = "http://127.0.0.1:" + std::to_string(hosts[0].port);
  nlohmann::json peers;
  ASSERT_TRUE(wait_for(
      [&] {
        auto r = http_get(a + "/status");
        if (r.status != 200) return false;
        peers = nlohmann::json::parse(r.body)["peers"];
        int known = 0;
        for (auto& p : peers) known += !p["nfs_handles_match"]["export"].is_null();
        return known == 2;
      },
      10000ms, 50ms))
      << peers.dump(2);
  for (auto& p : peers) {
    if (p["host"] == "b.example.org") {
      EXPECT_EQ(p["nfs_handles_match"]["export"], true) << p.dump();
    } else {
      EXPECT_EQ(p["host"], "c.example.org");
      EXPECT_EQ(p["nfs_handles_match"]["export"], false) << p.dump();
    }
  }
  std::string m = http_get(a + "/metrics").body;
  EXPECT_NE(m.find("poolkeeper_nfs_handles_match{check=\"export\",peer=\"b.example.org\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("poolkeeper_nfs_handles_match{check=\"export\",peer=\"c.example.org\"} 0"), std::string::npos) << m;
}

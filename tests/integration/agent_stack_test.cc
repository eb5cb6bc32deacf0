// The real poolkeeper binary over the real stack: nfs-ganesha, nginx and an rsync
// daemon serving one tree. Stopping ganesha takes /health/nfs to 503 within
// interval * fall + timeout; restarting it brings 200 back after `rise` passes.
#include <gtest/gtest.h>

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

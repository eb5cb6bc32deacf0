// The unit watcher where systemd is not: the real agent in this container (no systemd
// as PID 1) logs one warning and polls as without `unit`; and the watcher against a
// real dbus-daemon that has no systemd on it retries with a growing, bounded backoff,
// across the bus going away and coming back. (Events from a real systemd are measured
// in the VMs that boot it.)
#include "agent/runtime/unit_watcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/harness/harness.h"

using namespace pk_test;
using namespace std::chrono_literals;

namespace {

int count_lines_with(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
  return n;
}

}  // namespace

TEST(UnitWatcherTest, WithoutSystemdOneWarningAndThePollingGoesOn) {
  TempDir dir;
  int port = free_port();
  write_file(dir.file("ok"), "");
  std::string cfg =
      "[agent]\nlisten = \"127.0.0.1:" + std::to_string(port) +
      "\"\nhostname = \"host1.example.org\"\n"
      "admin_socket = \"" +
      dir.file("admin.sock") + "\"\nstate_dir = \"" + dir.file("state") +
      "\"\n"
      "drain_seconds = 0\n"
      "[services.web]\nchecks = [\"flag\", \"other\"]\n"
      "[checks.flag]\nkind = \"exec\"\ncommand = [\"/usr/bin/test\", \"-e\", \"" +
      dir.file("ok") +
      "\"]\n"
      "unit = \"nginx.service\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfast_interval = "
      "\"100ms\"\nrise = 2\n"
      "[checks.other]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n"
      "unit = \"rsync.service\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 2\n";
  write_file(dir.file("agent.toml"), cfg);
  Process agent({POOLKEEPER_BIN, "--config", dir.file("agent.toml")}, dir.file("agent.log"));
  auto get = [&](const std::string& path) {
    return http_get("http://127.0.0.1:" + std::to_string(port) + path);
  };
  ASSERT_TRUE(wait_for([&] { return get("/health/web").status == 200; }, 10000ms))
      << read_file(dir.file("agent.log"));
  nlohmann::json unit = nlohmann::json::parse(get("/status").body)["checks"]["flag"]["unit"];
  EXPECT_EQ(unit["name"], "nginx.service");
  EXPECT_EQ(unit["watched"], false);
  EXPECT_FALSE(unit["error"].get<std::string>().empty()) << unit.dump();
  // Polling as without a unit: the check still falls by its probes.
  ::unlink(dir.file("ok").c_str());
  ASSERT_TRUE(wait_for([&] { return get("/health/web").status == 503; }, 10000ms));
  EXPECT_EQ(get("/health/web").body, "not pooled: check flag unhealthy: exit status 1\n");
  // A reload (same units) and some time: still the one warning, for both units.
  agent.signal(SIGHUP);
  ASSERT_TRUE(wait_for(
      [&] { return count_lines_with(read_file(dir.file("agent.log")), "config reloaded") == 1; },
      10000ms));
  std::string log = read_file(dir.file("agent.log"));
  EXPECT_EQ(count_lines_with(log, "systemd unit"), 1) << log;
  EXPECT_EQ(count_lines_with(log, "level=warn"), 1) << log;
  agent.signal(SIGTERM);
  EXPECT_TRUE(agent.wait(10000ms).has_value());
}

// Against a real dbus-daemon (with nothing of systemd on it): the watcher connects,
// Subscribe fails, and it retries 20 → 40 → 80 → 80 ms; the bus going away and coming
// back at the same address is retried the same way; stop() ends it at once.
TEST(UnitWatcherTest, RetriesWithABoundedBackoffAcrossABusRestart) {
  TempDir dir;
  std::string address = "unix:path=" + dir.file("bus");
  auto start_bus = [&] {
    Process bus({"dbus-daemon", "--session", "--nofork", "--address=" + address},
                dir.file("dbus.log"));
    auto listening = [&] {
      int fd = connect_unix(dir.file("bus"));
      if (fd >= 0) ::close(fd);
      return fd >= 0;
    };
    EXPECT_TRUE(wait_for(listening, 10000ms)) << read_file(dir.file("dbus.log"));
    return bus;
  };
  Process bus = start_bus();

  std::mutex mu;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> seen;
  int states = 0;
  poolkeeper::UnitWatcher::Options opts;
  opts.address = address;
  opts.retry_min = 20ms;
  opts.retry_max = 80ms;
  poolkeeper::UnitWatcher w(opts, {[&](const poolkeeper::UnitState&, bool) {
                                     std::lock_guard<std::mutex> lk(mu);
                                     ++states;
                                   },
                                   [&](const std::string& unit, const std::string& error) {
                                     std::lock_guard<std::mutex> lk(mu);
                                     EXPECT_EQ(unit, "nginx.service");
                                     seen.emplace_back(std::chrono::steady_clock::now(), error);
                                   }});
  auto count = [&] {
    std::lock_guard<std::mutex> lk(mu);
    return seen.size();
  };
  w.set_units({"nginx.service"});
  ASSERT_TRUE(wait_for([&] { return count() >= 6; }, 20000ms));
  {
    std::lock_guard<std::mutex> lk(mu);
    EXPECT_EQ(states, 0);
    EXPECT_NE(seen[0].second.find("Subscribe"), std::string::npos) << seen[0].second;
    // Each wait at least the backoff, doubling from retry_min up to retry_max (a busy
    // machine only makes them longer).
    std::chrono::milliseconds want[] = {20ms, 40ms, 80ms, 80ms, 80ms};
    for (size_t i = 0; i + 1 < 6; ++i) EXPECT_GE(seen[i + 1].first - seen[i].first, want[i]) << i;
  }
  bus.kill_and_wait();
  ::unlink(dir.file("bus").c_str());
  ASSERT_TRUE(wait_for(
      [&] {
        std::lock_guard<std::mutex> lk(mu);
        return seen.back().second.find("cannot reach the bus") != std::string::npos;
      },
      10000ms));
  bus = start_bus();
  ASSERT_TRUE(wait_for(
      [&] {
        std::lock_guard<std::mutex> lk(mu);
        return seen.back().second.find("Subscribe") != std::string::npos;
      },
      10000ms));
  auto before = std::chrono::steady_clock::now();
  w.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 3s);  // at most one bus call's timeout
}

// The real poolkeeper binary with exec checks whose outcome the test flips through a
// file: the HTTP endpoint as PyBal and operators see it, metrics through promtool,
// config errors, and the stop signal.
#include <gtest/gtest.h>

#include <regex>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <nlohmann/json.hpp>

#include "tests/harness/harness.h"

using namespace pk_test;

namespace {

class AgentBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override { port_ = free_port(); }

  std::string config(int drain_seconds = 1) {
    return "[agent]\n"
           "listen = \"127.0.0.1:" + std::to_string(port_) + "\"\n"
           "hostname = \"host1.example.org\"\n"
           "admin_socket = \"" + dir_.file("admin.sock") + "\"\n"
           "state_dir = \"" + dir_.file("state") + "\"\n"
           "drain_seconds = " + std::to_string(drain_seconds) + "\n"
           "[services.web]\nchecks = [\"flag\"]\n"
           "[services.slow]\nchecks = [\"hang\"]\n"
           "[checks.flag]\nkind = \"exec\"\n"
           "command = [\"/usr/bin/test\", \"-e\", \"" + dir_.file("ok") + "\"]\n"
           "interval = \"200ms\"\ntimeout = \"150ms\"\nfast_interval = \"100ms\"\n"
           "rise = 3\nfall = 2\n"
           "[checks.hang]\nkind = \"exec\"\ncommand = [\"/bin/sleep\", \"30\"]\n"
           "interval = \"1s\"\ntimeout = \"900ms\"\n";
  }

  void start(int drain_seconds = 1) {
    write_file(dir_.file("agent.toml"), config(drain_seconds));
    agent_ = Process({POOLKEEPER_BIN, "--config", dir_.file("agent.toml")}, dir_.file("agent.log"));
    ASSERT_TRUE(wait_for([&] { return get("/status").status == 200; }, 5000ms))
        << read_file(dir_.file("agent.log"));
  }

  HttpResponse get(const std::string& path, const std::string& method = "GET") {
    return http_get("http://127.0.0.1:" + std::to_string(port_) + path, 2000, method);
  }

  nlohmann::json status() { return nlohmann::json::parse(get("/status").body); }

  TempDir dir_;
  int port_ = 0;
  Process agent_;
};

}  // namespace

TEST_F(AgentBinaryTest, HealthFollowsRiseAndFall) {
  start();
  EXPECT_EQ(get("/health/web").status, 503);
  // Unknown check: not pooled while starting up, whatever the (absent) flag says.
  ASSERT_TRUE(wait_for([&] { return status()["checks"]["flag"]["failures"] >= 2; }, 3000ms));
  EXPECT_EQ(get("/health/web").status, 503);
  EXPECT_EQ(get("/health/web").body, "not pooled: check flag unhealthy: exit status 1\n");

  write_file(dir_.file("ok"), "");
  // Every observation: pooled only with successes >= rise, from one snapshot.
  bool seen_rising = false;
  ASSERT_TRUE(wait_for(
      [&] {
        auto s = status();
        int succ = s["checks"]["flag"]["successes"];
        bool pooled = s["services"]["web"]["pooled"];
        if (!pooled && succ > 0) seen_rising = true;
        EXPECT_EQ(pooled, succ >= 3) << s.dump();
        return pooled;
      },
      3000ms, 5ms));
  EXPECT_TRUE(seen_rising);
  auto h = get("/health/web");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "pooled\n");
  EXPECT_EQ(get("/health/web", "HEAD").status, 200);

  std::remove(dir_.file("ok").c_str());
  bool seen_falling = false;
  ASSERT_TRUE(wait_for(
      [&] {
        auto s = status();
        int fails = s["checks"]["flag"]["failures"];
        bool pooled = s["services"]["web"]["pooled"];
        if (pooled && fails > 0) seen_falling = true;
        EXPECT_EQ(pooled, fails < 2) << s.dump();
        return !pooled;
      },
      3000ms, 5ms));
  EXPECT_TRUE(seen_falling);
  EXPECT_EQ(get("/health/web").status, 503);

  // The transitions are in /events.
  auto ev = nlohmann::json::parse(get("/events").body)["events"];
  int to_healthy = 0, to_unhealthy = 0;
  for (auto& e : ev) {
    if (e["kind"] == "check" && e["name"] == "flag" && e["to"] == "healthy") ++to_healthy;
    if (e["kind"] == "check" && e["name"] == "flag" && e["to"] == "unhealthy") ++to_unhealthy;
  }
  EXPECT_EQ(to_healthy, 1);
  EXPECT_EQ(to_unhealthy, 2);  // from unknown at start, then from healthy
}

TEST_F(AgentBinaryTest, HungProbeDoesNotBlockTheEndpoint) {
  start();
  // Wait until the sleeping probe is in flight (its first run starts within 0.5 s).
  ASSERT_TRUE(wait_for([&] { return get("/status").status == 200; }, 1000ms));
  std::this_thread::sleep_for(600ms);
  std::vector<double> ms;
  for (int i = 0; i < 200; ++i) {
    auto r = get("/health/slow");
    ASSERT_EQ(r.status, 503);
    ms.push_back(r.seconds * 1000);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("/health/slow while a probe hangs: median %.3f ms, p99 %.3f ms, max %.3f ms\n",
              ms[100], ms[198], ms[199]);
  // A bound on blocking, not a benchmark (tests/bench has the figures): a blocked
  // endpoint would wait for the probe, 900 ms. So no answer may take half of that, and
  // the 99th percentile stays far below it even beside a package build and a VM on a
  // 2-core machine (5.4 ms was seen there; a few ms when quiet).
  EXPECT_LT(ms[198], 50.0);
  EXPECT_LT(ms[199], 450.0);
  auto s = status();
  EXPECT_EQ(s["checks"]["hang"]["state"], "unknown");
  // After its timeout the probe reports it.
  ASSERT_TRUE(wait_for([&] { return !status()["checks"]["hang"]["last"].is_null(); }, 3000ms));
  EXPECT_EQ(status()["checks"]["hang"]["last"]["reason"], "timed out");
  EXPECT_EQ(status()["checks"]["hang"]["last"]["result"], "timeout");
}

TEST_F(AgentBinaryTest, MetricsPassPromtool) {
  write_file(dir_.file("ok"), "");
  start();
  ASSERT_TRUE(wait_for([&] { return get("/health/web").status == 200; }, 3000ms));
  get("/health/nope");
  get("/health/web", "POST");
  auto m = get("/metrics");
  ASSERT_EQ(m.status, 200);
  for (const char* name :
       {"poolkeeper_check_up{check=\"flag\"} 1", "poolkeeper_check_duration_seconds_bucket{check=\"flag\"",
        "poolkeeper_check_results_total{check=\"flag\",result=\"passed\"}",
        "poolkeeper_check_transitions_total{check=\"flag\",to=\"healthy\"} 1",
        "poolkeeper_check_last_success_timestamp_seconds{check=\"flag\"}",
        "poolkeeper_service_pooled{service=\"web\"} 1", "poolkeeper_service_healthy{service=\"slow\"} 0",
        "poolkeeper_service_intent{intent=\"pooled\",service=\"web\"} 1",
        "\npoolkeeper_config_last_reload_successful 1\n",
        "poolkeeper_http_requests_total{code=\"200\",path=\"/health/web\"}",
        "poolkeeper_http_requests_total{code=\"404\",path=\"other\"} 1",
        "poolkeeper_http_requests_total{code=\"405\",path=\"/health/web\"} 1",
        "poolkeeper_build_info{version="})
    EXPECT_NE(m.body.find(name), std::string::npos) << name << "\n" << m.body;
  write_file(dir_.file("metrics.txt"), m.body);
  std::string out;
  int rc = run_command({"/bin/sh", "-c", "promtool check metrics < " + dir_.file("metrics.txt")}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "promtool complained";
}

TEST_F(AgentBinaryTest, PybalStyleHttp10AndKeepAlive) {
  write_file(dir_.file("ok"), "");
  start();
  ASSERT_TRUE(wait_for([&] { return get("/health/web").status == 200; }, 3000ms));
  // ProxyFetch: GET <path> HTTP/1.0 with a Host header; the server answers and closes.
  std::string r = raw_request(port_, "GET /health/web HTTP/1.0\r\nHost: dumps.example.org\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.0 200", 0) == 0 || r.rfind("HTTP/1.1 200", 0) == 0, true) << r;
  EXPECT_NE(r.find("\r\n\r\npooled\n"), std::string::npos) << r;
  // HTTP/1.1: two requests on one connection, both answered, connection kept open.
  std::string two = raw_request(
      port_,
      "GET /health/web HTTP/1.1\r\nHost: a\r\n\r\nGET /health/slow HTTP/1.1\r\nHost: a\r\n\r\n",
      500ms);
  EXPECT_NE(two.find("HTTP/1.1 200"), std::string::npos) << two;
  EXPECT_NE(two.find("HTTP/1.1 503"), std::string::npos) << two;
  std::string lower = two;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  EXPECT_EQ(lower.find("connection: close"), std::string::npos) << two;
}

TEST_F(AgentBinaryTest, SlowClientsDoNotStarveOthers) {
  start();
  // 100 half-written requests held open.
  std::vector<int> fds;
  for (int i = 0; i < 100; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::send(fd, "GET /health/web HTT", 19, MSG_NOSIGNAL);
    fds.push_back(fd);
  }
  auto r = get("/health/web");
  EXPECT_EQ(r.status, 503);
  EXPECT_LT(r.seconds, 0.5);
  for (int fd : fds) ::close(fd);
}

TEST_F(AgentBinaryTest, SigtermReportsNotPooledThenExits) {
  write_file(dir_.file("ok"), "");
  start(/*drain_seconds=*/2);
  ASSERT_TRUE(wait_for([&] { return get("/health/web").status == 200; }, 3000ms));
  auto t0 = Clock::now();
  agent_.signal(SIGTERM);
  ASSERT_TRUE(wait_for([&] { return get("/health/web").status == 503; }, 1000ms, 0ms));
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::printf("503 after SIGTERM in %.2f ms\n", ms);
  // At once, not at the end of the drain: a few ms on a quiet machine, 213 ms once with
  // three VMs and other tests beside it; the drain is 2 s.
  EXPECT_LT(ms, 500.0);
  EXPECT_EQ(get("/health/web").body, "not pooled: stopping\n");
  EXPECT_EQ(status()["lifecycle"], "stopping");
  // Keeps answering while draining, then exits 0 after drain_seconds.
  EXPECT_FALSE(agent_.wait(1500ms).has_value());
  EXPECT_EQ(get("/health/web").status, 503);
  auto code = agent_.wait(3000ms);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  double total = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GE(total, 2.0);
  EXPECT_LT(total, 4.0);
}

TEST_F(AgentBinaryTest, SecondSigtermExitsAtOnce) {
  start(/*drain_seconds=*/30);
  agent_.signal(SIGTERM);
  ASSERT_TRUE(wait_for([&] { return get("/health/web").body == "not pooled: stopping\n"; }, 1000ms));
  auto t0 = Clock::now();
  agent_.signal(SIGTERM);
  auto code = agent_.wait(3000ms);  // in-flight probes end within their timeouts
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(Clock::now() - t0, 2s);
}

TEST_F(AgentBinaryTest, CheckConfigTypoExitsTwoNamingFileLine) {
  std::string cfg = config();
  cfg.replace(cfg.find("fall = 2"), 8, "flal = 2");
  write_file(dir_.file("bad.toml"), cfg);
  std::string out;
  int rc = run_command({POOLKEEPER_BIN, "--check-config", dir_.file("bad.toml")}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(out, dir_.file("bad.toml") + ":18: checks.flag.flal: unknown key\n");
  write_file(dir_.file("good.toml"), config());
  rc = run_command({POOLKEEPER_BIN, "--check-config", dir_.file("good.toml")}, &out);
  EXPECT_EQ(rc, 0) << out;
  // The daemon refuses to start on it, with the same message.
  rc = run_command({POOLKEEPER_BIN, "--config", dir_.file("bad.toml")}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find(":18: checks.flag.flal: unknown key"), std::string::npos) << out;
}

TEST_F(AgentBinaryTest, ExampleConfigIsValid) {
  // As installed: the etcd password in its own file, readable by root only.
  std::string cfg = read_file(SOURCE_DIR "/deploy/examples/poolkeeper.toml");
  ASSERT_NE(cfg.find("/etc/poolkeeper/etcd-password"), std::string::npos);
  cfg.replace(cfg.find("/etc/poolkeeper/etcd-password"), 29, dir_.file("etcd-password"));
  write_file(dir_.file("etcd-password"), "s3cret\n");
  ::chmod(dir_.file("etcd-password").c_str(), 0600);
  write_file(dir_.file("example.toml"), cfg);
  std::string out;
  int rc = run_command({POOLKEEPER_BIN, "--check-config", dir_.file("example.toml")}, &out);
  EXPECT_EQ(rc, 0) << out;
  // A password file others can read is refused, naming it.
  ::chmod(dir_.file("etcd-password").c_str(), 0644);
  rc = run_command({POOLKEEPER_BIN, "--check-config", dir_.file("example.toml")}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find(": conftool.password_file: others can read " + dir_.file("etcd-password") + " (chmod o-r)"),
            std::string::npos) << out;
  // On a fresh host the password file is not there yet: the config checks out, with
  // a warning naming the line; the agent itself refuses to start without it.
  ::unlink(dir_.file("etcd-password").c_str());
  rc = run_command({POOLKEEPER_BIN, "--check-config", dir_.file("example.toml")}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("warning: " + dir_.file("example.toml") + ":45: conftool.password_file: cannot read " +
                     dir_.file("etcd-password") + " (the agent will not start without it)\n"),
            std::string::npos) << out;
  EXPECT_NE(out.find(dir_.file("example.toml") + ": ok (3 services, 5 checks)\n"), std::string::npos) << out;
  rc = run_command({POOLKEEPER_BIN, "--config", dir_.file("example.toml")}, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find(":45: conftool.password_file: cannot read"), std::string::npos) << out;
  // What poolctl makes of the example's services is checked by
  // tests/deploy/lvs_config_test.sh, with each format's own parser.
}

TEST_F(AgentBinaryTest, PoolctlCheckIsANagiosPlugin) {
  write_file(dir_.file("agent.toml"), config());
  std::string out;
  // flag fails (no ok file), hang times out → CRITICAL, exit 2
  int rc = run_command({POOLCTL_BIN, "check", "--config", dir_.file("agent.toml")}, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_EQ(out.rfind("POOLKEEPER CRITICAL - flag: exit status 1, hang: timed out |", 0), 0u) << out;
  write_file(dir_.file("ok"), "");
  std::string cfg = config();
  cfg.replace(cfg.find("/bin/sleep\", \"30"), 16, "/bin/sleep\", \"0");
  write_file(dir_.file("agent.toml"), cfg);
  rc = run_command({POOLCTL_BIN, "check", "--config", dir_.file("agent.toml")}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.rfind("POOLKEEPER OK - 2 checks passed |", 0), 0u) << out;
  write_file(dir_.file("bad.toml"), "[agent]\nlisten = 1\n");
  rc = run_command({POOLCTL_BIN, "check", "--config", dir_.file("bad.toml")}, &out);
  EXPECT_EQ(rc, 3) << out;
}

TEST_F(AgentBinaryTest, PoolctlStatusTable) {
  write_file(dir_.file("ok"), "");
  start();
  ASSERT_TRUE(wait_for([&] { return get("/health/web").status == 200; }, 3000ms));
  std::string out;
  int rc = run_command({POOLCTL_BIN, "--socket", dir_.file("admin.sock"), "status"}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("host host1.example.org  lifecycle running"), std::string::npos) << out;
  EXPECT_NE(out.find("web        pooled     healthy   pooled"), std::string::npos) << out;
  EXPECT_NE(out.find("flag       healthy   +"), std::string::npos) << out;
  // Times carry their zone, as on the status page.
  EXPECT_TRUE(std::regex_search(out, std::regex("\n(web +pooled +healthy +pooled +- +)[0-9-]{10} [0-9:]{8} UTC"))) << out;
  EXPECT_EQ(out.find(" \n"), std::string::npos) << out;
  // --help: the synopsis first, then the notes.
  run_command({POOLCTL_BIN, "--help"}, &out);
  std::string synopsis = out.substr(0, out.find("No SERVICE means"));
  EXPECT_EQ(synopsis.find("\npool exits 1"), std::string::npos) << out;
  EXPECT_NE(out.find("pool exits 1 when the load balancer"), std::string::npos) << out;
  rc = run_command({POOLCTL_BIN, "--socket", dir_.file("admin.sock"), "status", "--json"}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["services"]["web"]["effective"], "pooled");
  rc = run_command({POOLCTL_BIN, "--socket", dir_.file("nope.sock"), "status"}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(out, "poolctl: agent not running (no admin socket at " + dir_.file("nope.sock") + ")\n");
}

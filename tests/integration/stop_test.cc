// Stopping, against the real binary: a host shutdown drains through the floor (a
// refusal keeps the key "yes" and /health 200; two agents stopped at once leave
// min_pooled hosts in); a restart of the agent alone writes no key and /health stays 200
// across it (socket activation: the test holds the listening socket, as systemd does);
// and the stop is bounded whatever is in flight (admin requests with a silent peer, a
// stuck 30 s exec probe, a second signal).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/harness/agent_proc.h"
#include "tests/harness/conftool_etcd.h"
#include "tests/harness/servers.h"

using namespace pk_test;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Samples a URL every `every` on its own thread; counts answers by status.
class Sampler {
 public:
  Sampler(std::string url, std::chrono::milliseconds every) : url_(std::move(url)), every_(every) {
    thread_ = std::thread([this] {
      while (!stop_) {
        auto r = http_get(url_, 3000);
        {
          std::lock_guard<std::mutex> lk(mu_);
          ++total_;
          if (r.status == 200) ++ok_;
          else bad_.push_back(r.status ? std::to_string(r.status) + " " + r.body : "no answer: " + r.error);
          max_seconds_ = std::max(max_seconds_, r.seconds);
        }
        std::this_thread::sleep_for(every_);
      }
    });
  }
  ~Sampler() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int total() { std::lock_guard<std::mutex> lk(mu_); return total_; }
  int ok() { std::lock_guard<std::mutex> lk(mu_); return ok_; }
  std::vector<std::string> bad() { std::lock_guard<std::mutex> lk(mu_); return bad_; }
  double max_seconds() { std::lock_guard<std::mutex> lk(mu_); return max_seconds_; }

 private:
  std::string url_;
  std::chrono::milliseconds every_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int total_ = 0, ok_ = 0;
  double max_seconds_ = 0;
  std::vector<std::string> bad_;
  std::thread thread_;
};

std::string with_drain_seconds(std::string cfg, int s) {
  cfg.replace(cfg.find("drain_seconds = 0"), 17, "drain_seconds = " + std::to_string(s));
  return cfg;
}

class StopConftoolTest : public ::testing::Test, protected ConftoolEtcd {
 protected:
  std::string agent_extra(const std::string& stop_action) {
    return (stop_action.empty() ? "" : "stop_action = \"" + stop_action + "\"\n") + "\n[conftool]\nendpoints = [\"" +
           etcd().url() + "\"]\nprefix = \"" + kPrefix + "\"\n";
  }
  // a and b pooled, a up with drain_seconds 1; then etcd hangs and a gets SIGTERM: the
  // time of the signal.
  Clock::time_point drain_with_etcd_hung(AgentProc& a) {
    seed("a.example.org");
    seed("b.example.org");
    a.write_config(with_drain_seconds(a.config_text(), 1));
    start_ready(a);
    etcd().hang();
    auto t0 = Clock::now();
    a.signal(SIGTERM);
    return t0;
  }
  void start_ready(AgentProc& a) {
    a.start();
    ASSERT_TRUE(a.wait_health("nfs", 200)) << a.log();
    ASSERT_TRUE(a.wait_health("http", 200)) << a.log();
    ASSERT_TRUE(wait_for([&] { return a.status()["conftool"]["up"] == true; }, 5000ms)) << a.log();
  }
};

}  // namespace

TEST_F(StopConftoolTest, ShutdownDrainRefusedByTheFloorKeepsKeysYes) {
  seed("a.example.org");
  seed("b.example.org", R"({"pooled":"no","weight":10})");  // depooled by an operator, confctl's shape
  AgentProc a("a.example.org", agent_extra("drain"));
  a.write_config(with_drain_seconds(a.config_text(), 1));
  start_ready(a);
  uint64_t nfs = index("nfs", "a.example.org"), http = index("http", "a.example.org");
  Sampler s(a.url() + "/health", 20ms);
  std::this_thread::sleep_for(100ms);
  auto t0 = Clock::now();
  a.signal(SIGTERM);
  auto code = a.wait(5000ms);
  double took = seconds_since(t0);
  s.finish();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  std::printf("drain refused by the floor: exited after %.2f s; /health %d/%d answers 200\n", took, s.ok(), s.total());
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  EXPECT_EQ(pooled("http", "a.example.org"), "yes");
  EXPECT_EQ(index("nfs", "a.example.org"), nfs);  // not even rewritten
  EXPECT_EQ(index("http", "a.example.org"), http);
  // /health stayed 200 while it drained (answers after exit are "no answer", not 503).
  for (const auto& b : s.bad()) EXPECT_EQ(b.rfind("no answer", 0), 0u) << b;
  EXPECT_GE(s.ok(), 10);
  EXPECT_NE(a.log().find("shutdown drain refused by the floor: stays pooled\" service=nfs why=\"refused: depooling nfs "
                         "would leave 0 other hosts pooled=yes in conftool (min_pooled 1): b.example.org pooled=no\""),
            std::string::npos)
      << a.log();
}

TEST_F(StopConftoolTest, BothAgentsStoppedAtOnceLeaveMinPooledIn) {
  AgentProc a("a.example.org", agent_extra("drain")), b("b.example.org", agent_extra("drain"));
  for (AgentProc* p : {&a, &b}) p->write_config(with_drain_seconds(p->config_text(), 1));
  const int rounds = 4;
  int both_out = 0;
  for (int round = 0; round < rounds; ++round) {
    seed("a.example.org");
    seed("b.example.org");
    start_ready(a);
    start_ready(b);
    auto t0 = Clock::now();
    a.signal(SIGTERM);
    b.signal(SIGTERM);
    ASSERT_TRUE(a.wait(5000ms).has_value());
    ASSERT_TRUE(b.wait(5000ms).has_value());
    double took = seconds_since(t0);
    for (const char* svc : {"nfs", "http"}) {
      int yes = (pooled(svc, "a.example.org") == "yes") + (pooled(svc, "b.example.org") == "yes");
      std::printf("round %d: %s: %d host(s) left yes (a=%s b=%s), both exited after %.2f s\n", round, svc, yes,
                  pooled(svc, "a.example.org").c_str(), pooled(svc, "b.example.org").c_str(), took);
      EXPECT_GE(yes, 1) << "round " << round << "\n" << a.log() << b.log();
      both_out += yes == 0;
    }
  }
  EXPECT_EQ(both_out, 0);
}

// etcd hung when the drain begins: the floor falls back to the peers' view (none here:
// the service leaves on its own), and the drain does not end before etcd has the keys
// "no" — until then PyBal still sends this host the traffic. etcd back 2 s after the
// drain_seconds: the keys are written and the agent exits right after.
TEST_F(StopConftoolTest, ShutdownDrainWaitsForEtcdToTakeTheKeys) {
  AgentProc a("a.example.org", agent_extra("drain") + "timeout = \"500ms\"\n");
  auto t0 = drain_with_etcd_hung(a);
  // Past drain_seconds, the agent says it waits for etcd; then etcd comes back.
  bool waited = wait_for([&] { return a.log().find("the conftool keys are not in etcd yet") != std::string::npos; },
                         10000ms);
  double said = seconds_since(t0);
  std::this_thread::sleep_for(2000ms);  // etcd stays away a while longer
  etcd().resume();
  double resumed = seconds_since(t0);
  auto code = a.wait(30000ms);
  double took = seconds_since(t0);
  ASSERT_TRUE(waited) << a.log();
  ASSERT_TRUE(code.has_value()) << a.log();
  EXPECT_EQ(*code, 0);
  std::printf("etcd hung through the drain: the wait logged after %.2f s, etcd back after %.2f s, exited after %.2f s\n",
              said, resumed, took);
  EXPECT_GE(took, resumed);
  EXPECT_EQ(pooled("nfs", "a.example.org"), "no") << a.log();
  EXPECT_EQ(pooled("http", "a.example.org"), "no") << a.log();
  EXPECT_EQ(pooled("nfs", "b.example.org"), "yes");
  EXPECT_NE(a.log().find("shutdown drain: the conftool keys are in etcd"), std::string::npos) << a.log();
}

// etcd hung for good: the drain waits to its bound (drain_seconds + 20 s from the signal)
// and exits with the keys as they were, saying who takes the host out instead.
TEST_F(StopConftoolTest, ShutdownDrainWithEtcdGoneIsBounded) {
  AgentProc a("a.example.org", agent_extra("drain") + "timeout = \"500ms\"\n");
  auto t0 = drain_with_etcd_hung(a);
  auto code = a.wait(40000ms);
  double took = seconds_since(t0);
  etcd().resume();
  ASSERT_TRUE(code.has_value()) << a.log();
  EXPECT_EQ(*code, 0);
  std::printf("etcd hung for good: exited after %.2f s (drain_seconds 1 + 20 s at most)\n", took);
  EXPECT_LT(took, 1 + 22 + 2.0);  // within the hard bound, which it must not reach
  EXPECT_EQ(a.log().find("exiting anyway"), std::string::npos) << a.log();
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  EXPECT_NE(a.log().find("shutdown drain: etcd did not answer: exiting with the conftool keys as they were"),
            std::string::npos)
      << a.log();
}

TEST_F(StopConftoolTest, RestartWritesNoKeyAndHealthStays200) {
  seed("a.example.org");
  seed("b.example.org");
  // stop_action is "auto": without systemd here that would drain, so the one-shot
  // stop-action file (what a package script writes before restarting) says "keep".
  AgentProc a("a.example.org", agent_extra(""));
  a.write_config(with_drain_seconds(a.config_text(), 2));
  a.listen_on_own_socket();
  start_ready(a);
  std::this_thread::sleep_for(500ms);  // a few probes and a conftool sync settle
  uint64_t nfs = index("nfs", "a.example.org"), http = index("http", "a.example.org");
  const std::string stop_file = a.dir().file("stop-action");
  Sampler s(a.url() + "/health", 20ms);
  std::this_thread::sleep_for(200ms);
  write_file(stop_file, "keep\n");
  auto t0 = Clock::now();
  a.signal(SIGTERM);
  auto code = a.wait(3000ms);
  double stop_took = seconds_since(t0);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(std::filesystem::exists(stop_file));  // one-shot
  a.start();  // the next process, handed the same listening socket
  double gap = seconds_since(t0);
  std::this_thread::sleep_for(1500ms);  // its own probes run
  s.finish();
  std::printf("restart: old process exited after %.3f s, new one answering after %.3f s; /health %d/%d answers 200, "
              "slowest %.3f s\n", stop_took, gap, s.ok(), s.total(), s.max_seconds());
  EXPECT_TRUE(s.bad().empty()) << s.bad().front() << "\n" << a.log();
  EXPECT_GE(s.total(), 40);
  EXPECT_EQ(index("nfs", "a.example.org"), nfs) << a.log();
  EXPECT_EQ(index("http", "a.example.org"), http);
  EXPECT_EQ(pooled("nfs", "a.example.org"), "yes");
  std::string log = a.log();
  EXPECT_NE(log.find("why=\"stop-action file says keep\""), std::string::npos) << log;
  EXPECT_NE(log.find("restart in the same boot: state carried over\" checks_seeded=2"), std::string::npos) << log;
  EXPECT_EQ(log.find("msg=\"conftool write\""), std::string::npos) << log;

  // After a reboot (another boot id) the carry-over is not used: a cold start.
  write_file(stop_file, "keep\n");
  a.signal(SIGTERM);
  ASSERT_TRUE(a.wait(3000ms).has_value());
  write_file(a.dir().file("boot_id"), "boot-2\n");
  a.start();
  EXPECT_NE(a.log().find("cold start: checks rise from unknown\" why=\"written in another boot\""), std::string::npos)
      << a.log();
}

namespace {

// A peer that accepts TCP connections (the kernel completes the handshake) and never
// answers.
class SilentPeer {
 public:
  SilentPeer() : port_(free_port()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 128) != 0)
      throw std::runtime_error("silent peer: cannot listen");
  }
  ~SilentPeer() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_, fd_;
};

// Sends pool and depool requests one after another until told to stop; remembers the
// slowest.
class AdminHammer {
 public:
  explicit AdminHammer(const AgentProc& a) {
    thread_ = std::thread([this, &a] {
      for (int i = 0; !stop_ && i < 1000; ++i) {
        auto t0 = Clock::now();
        auto r = a.ctl(i % 2 ? std::vector<std::string>{"depool", "nfs"} : std::vector<std::string>{"pool", "nfs"});
        double s = seconds_since(t0);
        std::lock_guard<std::mutex> lk(mu_);
        ++sent_;
        slowest_ = std::max(slowest_, s);
        if (r.out.find("agent is stopping") != std::string::npos) ++told_stopping_;
      }
    });
  }
  ~AdminHammer() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int sent() { std::lock_guard<std::mutex> lk(mu_); return sent_; }
  int told_stopping() { std::lock_guard<std::mutex> lk(mu_); return told_stopping_; }
  double slowest() { std::lock_guard<std::mutex> lk(mu_); return slowest_; }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int sent_ = 0, told_stopping_ = 0;
  double slowest_ = 0;
  std::thread thread_;
};

}  // namespace

TEST(StopBoundTest, AdminRequestsDuringShutdownWithASilentPeerDoNotHang) {
  SilentPeer peer;
  AgentProc a("a.example.org", "stop_action = \"drain\"\n", "peers = [\"" + peer.url() + "\"]\n");
  const int drain = 1;
  a.write_config(with_drain_seconds(a.config_text(), drain));
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200));
  {
    AdminHammer h(a);
    std::this_thread::sleep_for(300ms);
    auto t0 = Clock::now();
    a.signal(SIGTERM);
    auto code = a.wait(15000ms);
    double took = seconds_since(t0);
    h.finish();
    std::printf("pool/depool during shutdown, silent peer: exited after %.2f s (bound %d + 2 s); %d requests, "
                "%d answered \"agent is stopping\", slowest %.2f s\n",
                took, drain, h.sent(), h.told_stopping(), h.slowest());
    ASSERT_TRUE(code.has_value()) << "did not exit\n" << a.log();
    EXPECT_EQ(*code, 0);
    EXPECT_LE(took, drain + 2 + 0.5);  // slack for a loaded CI machine
    EXPECT_LT(h.slowest(), 5.0);
  }
  // A second SIGTERM ends it at once, whatever the first one is waiting on.
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200));
  AdminHammer h(a);
  std::this_thread::sleep_for(200ms);
  a.signal(SIGTERM);
  std::this_thread::sleep_for(300ms);  // now in the floor's poll of the silent peer, or draining
  ASSERT_TRUE(a.running());
  auto t1 = Clock::now();
  a.signal(SIGTERM);
  auto code = a.wait(5000ms);
  double ms = seconds_since(t1) * 1000;
  h.finish();
  std::printf("second SIGTERM: exited after %.1f ms\n", ms);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(ms, 300.0);  // 100 ms promised; slack for CI
}

TEST(StopBoundTest, StuckExecProbeDoesNotHoldTheStop) {
  AgentProc a("a.example.org", "stop_action = \"drain\"\n");
  const int drain = 1;
  std::string cfg = with_drain_seconds(a.config_text(), drain);
  cfg.replace(cfg.find("checks = [\"http_ok\"]"), 20, "checks = [\"http_ok\", \"stuck1\", \"stuck2\", \"stuck3\"]");
  for (const char* c : {"stuck1", "stuck2", "stuck3"})
    cfg += std::string("[checks.") + c + "]\nkind = \"exec\"\ncommand = [\"/bin/sleep\", \"100\"]\n"
           "interval = \"30s\"\ntimeout = \"30s\"\ncritical = false\n";
  a.write_config(cfg);
  a.start();
  // First probes are spread over [0, interval/2): wait until one of them is running.
  auto sleeping_children = [&] {
    std::vector<pid_t> out;
    for (const auto& p : std::filesystem::directory_iterator("/proc")) {
      std::string name = p.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string stat = read_file(p.path().string() + "/stat");
      size_t close = stat.rfind(')');
      if (close == std::string::npos || stat.find("(sleep)") == std::string::npos) continue;
      std::istringstream f(stat.substr(close + 2));
      std::string state;
      long ppid = 0;
      f >> state >> ppid;
      if (ppid == a.pid()) out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
  };
  std::vector<pid_t> stuck;
  ASSERT_TRUE(wait_for([&] { return !(stuck = sleeping_children()).empty(); }, 20000ms, 50ms)) << a.log();
  auto t0 = Clock::now();
  a.signal(SIGTERM);
  auto code = a.wait(40000ms);
  double took = seconds_since(t0);
  for (pid_t p : stuck) ::kill(p, SIGKILL);  // what the agent left behind (not this test's subject)
  std::printf("SIGTERM with a 30 s exec probe in flight: exited after %.2f s (bound %d + 2 s)\n", took, drain);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LE(took, drain + 2 + 0.5);
}

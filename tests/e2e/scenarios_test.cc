// The two promises, end to end: two hosts behind a director (HAProxy driven as PyBal
// or Liberica drives IPVS), clients like production's running through every scenario.
// Each scenario prints a table — failures per client, longest stall, time to leave and
// rejoin the pool, the director's view over time — and, when it fails, which client saw
// what and when, and the agents' event logs.
#include <gtest/gtest.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <thread>

#include "tests/e2e/clients.h"
#include "tests/e2e/world.h"

using namespace pk_e2e;
using namespace std::chrono_literals;

namespace {

constexpr double kHttpInterFall = 1.0;  // HAProxy's httpchk: inter 1s × fall 1
constexpr double kPeerDeadAfter = 3.0;  // conftool.peer_dead_after in the agents' config

class E2e : public ::testing::Test {
 protected:
  // Brings the world up, steers the NFS clients to `nfs_host`, starts the clients.
  void start(WorldOptions o = {}, const std::string& nfs_host = "rs1") {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, tmpfs mounts)";
    world_ = std::make_unique<World>(o);
    ASSERT_TRUE(world_->wait_all_serving(40s)) << "the world did not come up:\n" << world_->timeline().dump()
                                               << world_->rs1().agent_events() << world_->rs2().agent_events();
    ASSERT_TRUE(world_->steer_nfs_clients_to(nfs_host)) << "no client address hashes to " << nfs_host;
    clients_ = std::make_unique<Clients>(*world_);
    clients_->start();
    std::this_thread::sleep_for(2s);  // every client has worked before the scenario
    t_begin_ = since_start();
    world_->timeline().add("scenario", "begins");
  }

  void TearDown() override {
    if (!world_) return;
    std::this_thread::sleep_for(1s);  // the clients' view after the last step
    if (clients_) clients_->stop();
    std::string out = "\n=== " + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + " ===\n";
    for (const auto& [k, v] : figures_) {
      std::string key = k;
      key.resize(std::max<size_t>(key.size() + 1, 46), ' ');
      out += "  " + key + v + "\n";
    }
    out += "  (times in seconds since the world started; the scenario began at " + fmt(t_begin_) + " s)\n";
    if (clients_) out += clients_->table();
    out += world_->director_table(t_begin_);
    if (clients_) out += "  failures seen by the clients:\n" + clients_->failures_dump();
    out += "  timeline:\n" + world_->timeline().dump(t_begin_ - 0.5);
    if (HasFailure()) {
      for (const char* h : {"rs1", "rs2"}) {
        std::string ev = world_->host(h).agent_events();
        if (ev.size() > 5000) ev = "…" + ev.substr(ev.size() - 5000);
        out += "--- " + std::string(h) + " agent events ---\n" + ev + "\n";
      }
    }
    std::printf("%s\n", out.c_str());
    std::fflush(stdout);
    // Also kept beside the binary (ctest shows a passing test's output only with -V).
    static bool first = true;
    std::FILE* f = std::fopen("e2e-figures.txt", first ? "w" : "a");
    first = false;
    if (f) {
      std::fputs(out.c_str(), f);
      std::fclose(f);
    }
    clients_.reset();
    world_.reset();
  }

  void figure(const std::string& name, const std::string& value) { figures_.emplace_back(name, value); }
  void figure_s(const std::string& name, std::optional<double> v) { figure(name, v ? fmt(*v) + " s" : "never"); }

  std::optional<double> leave(const std::string& be, const std::string& h, double after) {
    auto t = world_->first(be, h, false, after);
    return t ? std::optional<double>(*t - after) : std::nullopt;
  }
  std::optional<double> rejoin(const std::string& be, const std::string& h, double after) {
    auto t = world_->first(be, h, true, after);
    return t ? std::optional<double>(*t - after) : std::nullopt;
  }

  // The README's planned reboot: `depool --until-boot --reason reboot && reboot`, where
  // the reboot stops everything in systemd's order (the agent first), "boots" for
  // `boot` and starts everything again under a new boot id. Returns (depool time, agent
  // start).
  std::pair<double, double> planned_reboot(Host& h, std::chrono::milliseconds boot = 2000ms) {
    double t0 = since_start();
    world_->timeline().add("scenario", h.name() + ": depool --until-boot --reason reboot");
    std::string out;
    int rc = h.poolctl({"--until-boot", "--reason", "reboot"}, "depool", &out);
    EXPECT_EQ(rc, 0) << out;
    world_->timeline().add("scenario", h.name() + ": shutdown (agent first)");
    h.stop_agent();
    world_->timeline().add("scenario", h.name() + ": agent stopped; stopping nginx, ganesha, rsyncd");
    h.stop_services();
    std::this_thread::sleep_for(boot);
    h.new_boot_id();
    world_->timeline().add("scenario", h.name() + ": boot (new boot id): services, then the agent");
    h.start_services();
    h.start_agent();
    double t1 = since_start();
    return {t0, t1};
  }

  bool wait_host_serving(const std::string& h, std::chrono::milliseconds timeout) {
    auto end = Clock::now() + timeout;
    for (const char* be : {"http", "nfs", "rsync"}) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0 || !world_->wait_serving(be, h, true, left)) return false;
    }
    return true;
  }

  void expect_pool_never_empty() {
    for (const char* be : {"http", "nfs", "rsync"}) {
      int least = world_->min_serving(be, t_begin_);
      figure(std::string("fewest servers serving: ") + be, std::to_string(least));
      EXPECT_GE(least, 1) << "the director's " << be << " pool was empty";
    }
  }

  void planned_reboot_scenario(const std::string& on_reboot) {
    WorldOptions o;
    o.rs1.nfs_on_reboot = o.rs2.nfs_on_reboot = on_reboot;
    o.rs1.peer_dead_after = o.rs2.peer_dead_after = "30s";
    start(o);
    if (HasFatalFailure() || IsSkipped()) return;
    // Separate copies: the agents see that a move between them costs ESTALE.
    auto peers = nlohmann::json::parse(world_->rs1().agent_get("/status").body, nullptr, false);
    std::string match = "?";
    if (peers.is_object() && peers.contains("peers"))
      for (const auto& p : peers["peers"])
        if (p.contains("nfs_handles_match")) match = p["nfs_handles_match"].dump();
    figure("nfs handles match between rs1 and rs2", match);
    // A boot longer than a soft mount's timeout (2 × 2 s), so that both NFS client models
    // show what a reboot costs them; real reboots take minutes: the stall of a held
    // client grows with them, the one ESTALE of a moved open file does not.
    auto [t0, t1] = planned_reboot(world_->rs1(), 10000ms);
    EXPECT_TRUE(wait_host_serving("rs1", 30s)) << "rs1 did not rejoin after the reboot";
    std::this_thread::sleep_for(2s);
    figure_s("rs1 out of http after the depool", leave("http", "rs1", t0));
    figure_s("rs1 out of rsync after the depool", leave("rsync", "rs1", t0));
    figure_s("rs1 out of nfs after the depool", leave("nfs", "rs1", t0));
    figure_s("rs1 back in http after the agent started", rejoin("http", "rs1", t1));
    figure_s("rs1 back in rsync after the agent started", rejoin("rsync", "rs1", t1));
    figure_s("reboot (depool .. agent started)", t1 - t0);
    EXPECT_EQ(clients_->failed("http"), 0);
    EXPECT_EQ(clients_->failed("rsync"), 0);
    expect_pool_never_empty();
    EXPECT_TRUE(leave("http", "rs1", t0)) << "rs1 never left the http pool";
    EXPECT_TRUE(leave("rsync", "rs1", t0)) << "rs1 never left the rsync pool";
    if (on_reboot == "hold") {
      EXPECT_FALSE(leave("nfs", "rs1", t0)) << "hold: rs1 must stay in the nfs pool through the reboot";
      // Held clients stall and resume on the same server: a hard mount sees no error.
      EXPECT_EQ(clients_->report("nfs-hard-session").failed, 0);
      EXPECT_EQ(clients_->report("nfs-hard-fresh").failed, 0);
    } else {
      EXPECT_TRUE(leave("nfs", "rs1", t0)) << "drain: rs1 must leave the nfs pool";
    }
  }

  std::unique_ptr<World> world_;
  std::unique_ptr<Clients> clients_;
  double t_begin_ = 0;
  std::vector<std::pair<std::string, std::string>> figures_;
};

}  // namespace

TEST_F(E2e, PlannedRebootNfsHold) { planned_reboot_scenario("hold"); }

TEST_F(E2e, PlannedRebootNfsDrain) { planned_reboot_scenario("drain"); }

// Reboots: peer_dead_after (3m in production) is longer than the reboot, as it must be
// for a held NFS host to stay held.
WorldOptions reboot_options() {
  WorldOptions o;
  o.rs1.peer_dead_after = o.rs2.peer_dead_after = "30s";
  return o;
}

TEST_F(E2e, RollingReboot) {
  start(reboot_options());
  if (HasFatalFailure() || IsSkipped()) return;
  for (const char* h : {"rs1", "rs2"}) {
    auto [t0, t1] = planned_reboot(world_->host(h));
    EXPECT_TRUE(wait_host_serving(h, 30s)) << h << " did not rejoin after the reboot";
    figure_s(std::string(h) + " out of http after the depool", leave("http", h, t0));
    figure_s(std::string(h) + " back in all pools after the agent started",
             [&]() -> std::optional<double> {
               double worst = 0;
               for (const char* be : {"http", "nfs", "rsync"}) {
                 auto r = rejoin(be, h, t1);
                 if (!r) return std::nullopt;
                 worst = std::max(worst, *r);
               }
               return worst;
             }());
    std::this_thread::sleep_for(1s);
  }
  EXPECT_EQ(clients_->failed("http"), 0);
  EXPECT_EQ(clients_->failed("rsync"), 0);
  expect_pool_never_empty();
}

TEST_F(E2e, CrashAndReturn) {
  start();
  if (HasFatalFailure() || IsSkipped()) return;
  double t0 = since_start();
  world_->timeline().add("scenario", "rs1: kill -9 of every process");
  world_->rs1().crash();
  EXPECT_TRUE(world_->wait_serving("nfs", "rs1", false, 15s));
  EXPECT_TRUE(world_->wait_serving("http", "rs1", false, 5s));
  std::this_thread::sleep_for(1s);
  auto http_out = leave("http", "rs1", t0), nfs_out = leave("nfs", "rs1", t0), rsync_out = leave("rsync", "rs1", t0);
  auto rsync_key = world_->first_key("rsync", "rs1", "no", t0);
  auto nfs_key = world_->first_key("nfs", "rs1", "no", t0);
  figure_s("http out of the director's pool", http_out);
  figure_s("nfs out of the director's pool", nfs_out);
  figure_s("rsync out of the director's pool", rsync_out);
  figure_s("nfs conftool key set to no by the peer", nfs_key ? std::optional<double>(*nfs_key - t0) : std::nullopt);
  figure_s("rsync conftool key set to no by the peer", rsync_key ? std::optional<double>(*rsync_key - t0) : std::nullopt);
  // A dead host is out once its etcd liveness key has expired (TTL 1 s here) and it
  // has stayed silent for peer_dead_after: within peer_dead_after + 2 s of the crash.
  const double dead_bound = kPeerDeadAfter + 2.0;
  figure("bound for nfs, rsync: peer_dead_after + 2 s", fmt(dead_bound) + " s");
  ASSERT_TRUE(http_out && nfs_out && rsync_out);
  EXPECT_LE(*http_out, kHttpInterFall + 1.0);
  EXPECT_LE(*nfs_out, dead_bound);
  EXPECT_LE(*rsync_out, dead_bound);
  ASSERT_TRUE(rsync_key);
  EXPECT_LE(*rsync_key - t0, dead_bound);
  // The return: a new boot, services, then the agent; back once healthy.
  std::this_thread::sleep_for(2s);
  world_->rs1().new_boot_id();
  world_->timeline().add("scenario", "rs1: boots again");
  world_->rs1().start_services();
  world_->rs1().start_agent();
  double t1 = since_start();
  EXPECT_TRUE(wait_host_serving("rs1", 30s)) << "rs1 did not come back";
  for (const char* be : {"http", "nfs", "rsync"}) figure_s(std::string("back in ") + be + " after the agent started", rejoin(be, "rs1", t1));
  expect_pool_never_empty();
}

TEST_F(E2e, HungNfsServerThenHungNginx) {
  start({}, "rs2");
  if (HasFatalFailure() || IsSkipped()) return;
  double t0 = since_start();
  world_->timeline().add("scenario", "rs2: SIGSTOP ganesha");
  world_->rs2().hang_ganesha();
  EXPECT_TRUE(world_->wait_serving("nfs", "rs2", false, 10s));
  EXPECT_TRUE(world_->wait_serving("http", "rs2", false, 5s));
  // Hung for longer than a soft mount's timeout: its clients' connections stay on the
  // hung server (the load balancer moves new connections only).
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(std::max(0.0, 9.0 - (since_start() - t0)) * 1000)));
  auto nfs_out = leave("nfs", "rs2", t0);
  figure_s("hung ganesha: rs2 out of nfs", nfs_out);
  figure_s("hung ganesha: rs2 out of http", leave("http", "rs2", t0));
  figure_s("hung ganesha: rs2 out of rsync", leave("rsync", "rs2", t0));
  double t1 = since_start();
  world_->timeline().add("scenario", "rs2: SIGCONT ganesha");
  world_->rs2().resume_ganesha();
  EXPECT_TRUE(wait_host_serving("rs2", 20s));
  figure_s("ganesha resumed: rs2 back in nfs", rejoin("nfs", "rs2", t1));
  // Out within the check's interval + fall × timeout + fast_interval, and the watcher.
  ASSERT_TRUE(nfs_out);
  EXPECT_LE(*nfs_out, 3.0);

  std::this_thread::sleep_for(1s);
  double t2 = since_start();
  world_->timeline().add("scenario", "rs2: SIGSTOP nginx");
  world_->rs2().hang_nginx();
  EXPECT_TRUE(world_->wait_serving("http", "rs2", false, 10s));
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(std::max(0.0, 7.0 - (since_start() - t2)) * 1000)));
  auto http_out = leave("http", "rs2", t2);
  figure_s("hung nginx: rs2 out of http", http_out);
  double t3 = since_start();
  world_->timeline().add("scenario", "rs2: SIGCONT nginx");
  world_->rs2().resume_nginx();
  EXPECT_TRUE(wait_host_serving("rs2", 20s));
  figure_s("nginx resumed: rs2 back in http", rejoin("http", "rs2", t3));
  ASSERT_TRUE(http_out);
  EXPECT_LE(*http_out, 1.0 /*inter*/ + 1.0 /*timeout check*/ + 1.0);
  expect_pool_never_empty();
}

TEST_F(E2e, BothHostsFailingKeepOne) {
  start();
  if (HasFatalFailure() || IsSkipped()) return;
  // Both mirrors go stale at once (the canary older than max_age): every check that
  // reads the data fails on both hosts, while the files are still served.
  world_->timeline().add("scenario", "both: canary 2 h old (max_age 1h)");
  double t0 = since_start();
  for (const char* h : {"rs1", "rs2"}) {
    struct timeval now;
    ::gettimeofday(&now, nullptr);
    struct timeval tv[2] = {now, now};
    tv[0].tv_sec -= 7200;
    tv[1].tv_sec -= 7200;
    ::utimes((world_->host(h).data_dir() + "/canary.txt").c_str(), tv);
  }
  // One host leaves each pool; the floor keeps the other.
  bool one_left = pk_test::wait_for(
      [&] {
        auto v = world_->view();
        for (const char* be : {"http", "nfs", "rsync"})
          if (v[be]["rs1"].serving() + v[be]["rs2"].serving() != 1) return false;
        return true;
      },
      15000ms, 100ms);
  EXPECT_TRUE(one_left) << "each pool should be down to exactly one host";
  std::this_thread::sleep_for(5s);  // and it stays so
  for (const char* be : {"http", "nfs", "rsync"}) {
    auto v = world_->view();
    figure(std::string("kept by the floor in ") + be, v[be]["rs1"].serving() ? "rs1" : v[be]["rs2"].serving() ? "rs2" : "none");
    EXPECT_EQ(v[be]["rs1"].serving() + v[be]["rs2"].serving(), 1) << be;
  }
  for (const char* svc : {"nfs", "http", "rsync"}) {
    int kept = 0;
    for (const char* h : {"rs1", "rs2"}) {
      auto st = nlohmann::json::parse(world_->host(h).agent_get("/status").body, nullptr, false);
      if (st.is_object() && st["services"][svc]["floor"].value("kept_by_floor", false)) ++kept;
    }
    EXPECT_EQ(kept, 1) << svc << ": exactly one agent should say it is kept by the floor";
  }
  double t1 = since_start();
  world_->timeline().add("scenario", "both: canary fresh again");
  for (const char* h : {"rs1", "rs2"}) ::utimes((world_->host(h).data_dir() + "/canary.txt").c_str(), nullptr);
  EXPECT_TRUE(world_->wait_all_serving(20s));
  figure_s("first host out after both went stale", [&]() -> std::optional<double> {
    std::optional<double> best;
    for (const char* h : {"rs1", "rs2"})
      for (const char* be : {"http", "nfs", "rsync"})
        if (auto l = leave(be, h, t0); l && (!best || *l < *best)) best = l;
    return best;
  }());
  figure_s("all back after the canary was fresh", [&]() -> std::optional<double> {
    double worst = 0;
    for (const char* h : {"rs1", "rs2"})
      for (const char* be : {"http", "nfs", "rsync"}) {
        auto r = rejoin(be, h, t1);
        if (!r) return std::nullopt;
        worst = std::max(worst, *r);
      }
    return worst;
  }());
  EXPECT_EQ(clients_->failed("http"), 0);
  EXPECT_EQ(clients_->failed("rsync"), 0);
  expect_pool_never_empty();
}

TEST_F(E2e, AgentOnlyRestartOnBothHostsChangesNothing) {
  WorldOptions o;
  o.rs1.stop_action = o.rs2.stop_action = "keep";  // an upgrade: the agent alone restarts
  start(o);
  if (HasFatalFailure() || IsSkipped()) return;
  double t0 = since_start();
  world_->timeline().add("scenario", "both: restart of the agent alone (stop_action keep)");
  auto a = std::async(std::launch::async, [&] { world_->rs1().stop_agent(false); world_->rs1().start_agent(); });
  auto b = std::async(std::launch::async, [&] { world_->rs2().stop_agent(false); world_->rs2().start_agent(); });
  a.get();
  b.get();
  double t1 = since_start();
  bool healthy = pk_test::wait_for(
      [&] {
        for (const char* h : {"rs1", "rs2"})
          if (world_->host(h).agent_get("/health").status != 200) return false;
        return true;
      },
      20000ms, 100ms);
  EXPECT_TRUE(healthy);
  std::this_thread::sleep_for(3s);
  figure("restart of both agents took", fmt(t1 - t0) + " s");
  figure("director changes", std::to_string(world_->changes_after(t0)));
  figure("conftool pooled changes", std::to_string(world_->conftool_changes_after(t0)));
  EXPECT_EQ(world_->changes_after(t0), 0) << "the director saw the agents restart";
  EXPECT_EQ(world_->conftool_changes_after(t0), 0) << "a conftool key changed";
  EXPECT_EQ(clients_->failed("http"), 0);
  EXPECT_EQ(clients_->failed("rsync"), 0);
  EXPECT_EQ(clients_->failed("nfs"), 0);
}

TEST_F(E2e, AgentsPartitionedChangesNothing) {
  start();
  if (HasFatalFailure() || IsSkipped()) return;
  double t0 = since_start();
  world_->cut_agents_link(true);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(3 * kPeerDeadAfter * 1000 + 2000)));
  world_->cut_agents_link(false);
  std::this_thread::sleep_for(3s);
  figure("link cut for", fmt(3 * kPeerDeadAfter + 2) + " s (3 × peer_dead_after + 2 s)");
  figure("director changes", std::to_string(world_->changes_after(t0)));
  figure("conftool pooled changes", std::to_string(world_->conftool_changes_after(t0)));
  EXPECT_EQ(world_->changes_after(t0), 0) << "the director saw the partition";
  EXPECT_EQ(world_->conftool_changes_after(t0), 0) << "a conftool key changed";
  EXPECT_EQ(clients_->failed("http"), 0);
  EXPECT_EQ(clients_->failed("rsync"), 0);
  EXPECT_EQ(clients_->failed("nfs"), 0);
}

TEST_F(E2e, EtcdDownDuringPlannedReboot) {
  start(reboot_options());
  if (HasFatalFailure() || IsSkipped()) return;
  world_->stop_etcd();
  std::this_thread::sleep_for(1s);
  auto [t0, t1] = planned_reboot(world_->rs1());
  EXPECT_TRUE(world_->wait_serving("http", "rs1", true, 30s)) << "rs1 did not rejoin http without etcd";
  figure_s("rs1 out of http after the depool (etcd down)", leave("http", "rs1", t0));
  figure_s("rs1 back in http after the agent started", rejoin("http", "rs1", t1));
  std::this_thread::sleep_for(2s);
  double t2 = since_start();
  world_->start_etcd();
  EXPECT_TRUE(world_->wait_all_serving(30s)) << "not every server came back after etcd returned";
  std::this_thread::sleep_for(3s);  // the agents' resync: nothing may flap afterwards
  for (const char* svc : {"nfs", "http", "rsync"})
    for (const char* h : {"rs1", "rs2"}) {
      auto y = world_->first_key(svc, h, "yes", since_start() - 0.01);
      EXPECT_TRUE(y) << svc << "/" << h << " is not yes after etcd returned";
    }
  figure("conftool pooled changes after etcd returned", std::to_string(world_->conftool_changes_after(t2)));
  EXPECT_EQ(clients_->failed("http"), 0);
  expect_pool_never_empty();
}

TEST_F(E2e, GaneshaGraceRejoinsOnlyWhenOpenWorks) {
  WorldOptions o;
  o.rs2.graceless = false;
  o.rs2.grace_seconds = 6;
  start(o, "rs2");
  if (HasFatalFailure() || IsSkipped()) return;
  double t0 = since_start();
  world_->timeline().add("scenario", "rs2: ganesha restarted with a 6 s grace period");
  std::atomic<bool> stop{false};
  std::atomic<double> first_open{-1};
  // A real client's OPEN against rs2's own ganesha, every 200 ms: when does it work?
  std::thread prober([&] {
    world_->rs2().ns().enter_this_thread();
    while (!stop && first_open < 0) {
      double t = since_start();
      if (nfs_read_once("127.0.0.1", "/canary.txt") == "poolkeeper canary\n" && t > t0 + 0.5) first_open = t;
      std::this_thread::sleep_for(200ms);
    }
  });
  world_->rs2().restart_ganesha();
  EXPECT_TRUE(world_->wait_serving("nfs", "rs2", false, 10s)) << "rs2 never left the nfs pool";
  EXPECT_TRUE(world_->wait_serving("nfs", "rs2", true, 40s)) << "rs2 never came back";
  stop = true;
  prober.join();
  auto out_at = world_->first("nfs", "rs2", false, t0);
  auto back = world_->first("nfs", "rs2", true, out_at.value_or(t0));
  figure_s("rs2 out of nfs after the restart", leave("nfs", "rs2", t0));
  figure_s("first OPEN that worked, after the restart", first_open >= 0 ? std::optional<double>(first_open - t0) : std::nullopt);
  figure_s("rs2 back in nfs, after the restart", back ? std::optional<double>(*back - t0) : std::nullopt);
  ASSERT_GE(first_open, 0) << "no OPEN worked";
  ASSERT_TRUE(back);
  EXPECT_GE(first_open - t0, 2.0) << "ganesha showed no grace period: the scenario proves nothing";
  // Pooled no earlier than an OPEN works (the prober polls every 200 ms).
  EXPECT_GE(*back, first_open - 0.3);
  expect_pool_never_empty();
}

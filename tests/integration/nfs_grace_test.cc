// ganesha's grace period, for real: during grace a READ with the anonymous stateid
// still succeeds while clients' OPENs fail with NFS4ERR_GRACE, so the nfs check must
// report "grace period" until a real OPEN works — after the first start and after a
// restart — and only then pass.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "checks/nfs_check.h"
#include "tests/harness/servers.h"

using namespace poolkeeper;
using namespace pk_test;

namespace {

struct Observation {
  double at;  // seconds since the (re)start
  Result result;
};

// Probes every 200 ms until the check passes; returns what it saw.
std::vector<Observation> watch(NfsCheck& c, pk_test::Clock::time_point since, std::chrono::seconds limit) {
  std::vector<Observation> seen;
  while (pk_test::Clock::now() - since < limit) {
    Result r = run_probe(c, 1s);
    seen.push_back({std::chrono::duration<double>(pk_test::Clock::now() - since).count(), r});
    if (r.ok()) break;
    std::this_thread::sleep_for(200ms);
  }
  return seen;
}


struct GraceRun {
  std::vector<Observation> first, second;
  uint64_t clients = 0;
};

// Starts ganesha with an 8 s grace period, probes until the check passes, restarts
// ganesha and probes until it passes again.
GraceRun run_grace(std::optional<int> minor, const std::function<void(Ganesha&, NfsCheck&)>& after = {}) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("data"));
  ::chmod(dir.file("data").c_str(), 0755);
  write_file(dir.file("data/canary.txt"), "poolkeeper canary\n");
  GaneshaOptions g;
  g.graceless = false;
  g.grace_period = 8;
  g.lease_lifetime = 4;
  Ganesha ganesha(dir.path(), dir.file("data"), g);
  auto t0 = pk_test::Clock::now();
  ganesha.start();
  NfsCheckOptions o;
  o.port = ganesha.port();
  o.path = "/dumps/canary.txt";
  o.minor_version = minor;
  NfsCheck c(o);
  GraceRun run;
  run.first = watch(c, t0, 30s);
  if (run.first.empty() || !run.first.back().result.ok()) return run;
  // With no client in its recovery database, ganesha lifts the grace at once on a
  // first start; our check's one client id is recorded from now on.
  std::printf("NFSv4.%d first start: passed after %.1f s\n", minor.value_or(2), run.first.back().at);

  // Restart: the kept-open connection breaks, the check reconnects, does a real OPEN,
  // and reports the grace period again until it ends.
  auto t1 = pk_test::Clock::now();
  ganesha.restart();
  run.second = watch(c, t1, 30s);
  if (after) after(ganesha, c);
  run.clients = c.counters().mounts;
  return run;
}

}  // namespace

TEST(NfsGraceTest, GracePeriodFailsUntilOpenWorks) {
  GraceRun run = run_grace(0);
  ASSERT_FALSE(run.first.empty());
  ASSERT_TRUE(run.first.back().result.ok()) << run.first.back().result.reason;
  ASSERT_TRUE(run.second.back().result.ok()) << run.second.back().result.reason;
  int grace_after_restart = 0;
  for (const auto& s : run.second) {
    // The OPEN context is renewed with the connection: it never fails on the dead one.
    EXPECT_EQ(s.result.reason.rfind("open", 0), std::string::npos) << s.result.reason;
    EXPECT_EQ(s.result.reason.find("lost"), std::string::npos) << s.result.reason;
    if (s.result.reason != "grace period") continue;
    ++grace_after_restart;
    // The cheap probe alone would have passed: its anonymous-stateid READ worked.
    EXPECT_EQ(s.result.details.value("read_bytes", 0), 18) << s.result.details.dump();
  }
  std::printf("after restart: 'grace period' for %.1f s (%d probes), then passed\n",
              run.second.back().at, grace_after_restart);
  EXPECT_GE(grace_after_restart, 3);
  EXPECT_GE(run.second.back().at, 5.0);  // most of the 8 s grace period
}

// NFSv4.1/4.2: the OPEN is in the probe's own COMPOUND (after the anonymous READ), and
// the check's client says RECLAIM_COMPLETE once per session, as a kernel client does. A
// ganesha whose recorded clients have all said so lifts its grace early: here the check
// is its only client, so the grace ends within ganesha's next grace check, not after 8 s.
// A session the server dropped (lease expired while the check was idle) is set up again
// within the probe, which passes.
TEST(NfsGraceTest, GracePeriodOnSessionsAndAnExpiredSession) {
  Result after_idle;
  uint64_t clients_before_idle = 0;
  GraceRun run = run_grace(std::nullopt, [&](Ganesha&, NfsCheck& c) {
    clients_before_idle = c.counters().mounts;
    std::this_thread::sleep_for(12s);  // three 4 s leases without a probe
    after_idle = run_probe(c, 2s);
  });
  ASSERT_FALSE(run.first.empty());
  ASSERT_TRUE(run.first.back().result.ok()) << run.first.back().result.reason;
  ASSERT_TRUE(run.second.back().result.ok()) << run.second.back().result.reason;
  int grace_after_restart = 0;
  for (const auto& s : run.second) {
    if (s.result.reason != "grace period") continue;
    ++grace_after_restart;
    EXPECT_EQ(s.result.details.value("read_bytes", 0), 18) << s.result.details.dump();
    EXPECT_TRUE(s.result.details.contains("fh")) << s.result.details.dump();
    EXPECT_EQ(s.result.details.value("minor_version", -1), 2);
  }
  std::printf("NFSv4.2 after restart: 'grace period' for %.1f s (%d probes), then passed\n",
              run.second.back().at, grace_after_restart);
  EXPECT_GE(grace_after_restart, 1);
  EXPECT_TRUE(after_idle.ok()) << after_idle.reason;
  std::printf("after 12 s idle (lease 4 s): %s, clients %llu -> %llu\n", after_idle.reason.c_str(),
              (unsigned long long)clients_before_idle, (unsigned long long)run.clients);
  EXPECT_EQ(after_idle.details.value("connects", 0), 2);  // the same connection as before
  EXPECT_EQ(run.clients, clients_before_idle + 1);        // a new session on it
}

// ganesha's grace period, for real: during grace a READ with the anonymous stateid
// still succeeds while clients' OPENs fail with NFS4ERR_GRACE, so the nfs check must
// report "grace period" until a real OPEN works — after the first start and after a
// restart — and only then pass.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
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

}  // namespace

TEST(NfsGraceTest, GracePeriodFailsUntilOpenWorks) {
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
  NfsCheck c(o);
  auto first = watch(c, t0, 30s);
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(first.back().result.ok()) << first.back().result.reason;
  // With no client in its recovery database, ganesha lifts the grace at once on a
  // first start; our check's one client id is recorded from now on.
  std::printf("first start: passed after %.1f s\n", first.back().at);

  // Restart: the kept-open connection breaks, the check reconnects, does a real OPEN,
  // and reports the grace period again until it ends.
  auto t1 = pk_test::Clock::now();
  ganesha.restart();
  auto second = watch(c, t1, 30s);
  ASSERT_TRUE(second.back().result.ok()) << second.back().result.reason;
  int grace_after_restart = 0;
  for (const auto& s : second) {
    if (s.result.reason != "grace period") continue;
    ++grace_after_restart;
    // The cheap probe alone would have passed: its anonymous-stateid READ worked.
    EXPECT_EQ(s.result.details.value("read_bytes", 0), 18) << s.result.details.dump();
  }
  std::printf("after restart: 'grace period' for %.1f s (%d probes), then passed\n",
              second.back().at, grace_after_restart);
  EXPECT_GE(grace_after_restart, 3);
  EXPECT_GE(second.back().at, 5.0);  // most of the 8 s grace period
}

// One NFS probe (a single COMPOUND on a warm connection) against the cost of what an
// operator would otherwise script: a fresh `nfs-cat` process per probe, both against
// the same real nfs-ganesha.   build/tests/bench/nfs_probe_bench [PROBES]
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "checks/nfs_check.h"
#include "tests/harness/servers.h"

using namespace pk_test;
using namespace poolkeeper;

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  TempDir dir;
  std::filesystem::create_directories(dir.file("data"));
  ::chmod(dir.file("data").c_str(), 0755);
  write_file(dir.file("data/canary.txt"), "poolkeeper canary\n");
  Ganesha g(dir.path(), dir.file("data"));
  g.start();
  NfsCheckOptions o;
  o.port = g.port();
  o.path = "/dumps/canary.txt";
  NfsCheck c(o);
  run_probe(c, std::chrono::seconds(2));  // connect, first OPEN
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    Result r = run_probe(c, std::chrono::seconds(1));
    if (!r.ok()) {
      std::fprintf(stderr, "probe failed: %s\n", r.reason.c_str());
      return 1;
    }
    us.push_back(seconds(r.latency) * 1e6);
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<size_t>(p * (us.size() - 1))]; };
  std::printf("nfs probe, warm connection, %d probes: p50 %.0f us, p90 %.0f us, p99 %.0f us\n", n, pct(.5),
              pct(.9), pct(.99));
  std::printf("  %llu connection(s), %llu COMPOUNDs, %llu mount(s) = client ids, %llu OPEN rounds\n",
              (unsigned long long)c.counters().connects, (unsigned long long)c.counters().compounds,
              (unsigned long long)c.counters().mounts, (unsigned long long)c.counters().opens);
  std::string url = "nfs://127.0.0.1/dumps/canary.txt?version=4&nfsport=" + std::to_string(g.port());
  std::vector<double> cat;
  for (int i = 0; i < 50; ++i) {
    auto t0 = pk_test::Clock::now();
    if (run_command({"nfs-cat", url}, nullptr) != 0) return 1;
    cat.push_back(std::chrono::duration<double, std::micro>(pk_test::Clock::now() - t0).count());
  }
  std::sort(cat.begin(), cat.end());
  std::printf("fresh nfs-cat process, 50 runs: p50 %.0f us  → the probe costs %.1f%% of it\n", cat[25],
              100.0 * pct(.5) / cat[25]);
  return 0;
}

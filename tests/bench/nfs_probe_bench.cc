// The cost of one NFS probe (a single COMPOUND on a warm connection) between two
// references, all against the same real nfs-ganesha:
//  - the floor: an NFSv4 NULL RPC on a warm TCP connection of the same kind (the
//    cheapest round trip the server can answer; a probe cannot beat it);
//  - the ceiling: what an operator would otherwise script, a fresh `nfs-cat` process
//    per probe.
//   build/tests/bench/nfs_probe_bench [PROBES] [NFS_CAT_RUNS]
// The probe speaks what the agent's would (NFSv4.2 to ganesha); PK_NFS_MINOR=0|1|2 pins
// a minor version, to compare them.
// The last line is machine-readable (`RESULT key=value ...`, times in µs) for
// tests/bench/bench.sh; the exit status is non-zero only when something could not be
// measured.
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

// libnfs's headers are C and rely on these being in scope first.
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include "checks/nfs_check.h"
#include "tests/harness/servers.h"

using namespace pk_test;
using namespace poolkeeper;

namespace {

using WallClock = std::chrono::steady_clock;

double us_since(WallClock::time_point t0) {
  return std::chrono::duration<double, std::micro>(WallClock::now() - t0).count();
}

struct Percentiles {
  double p50, p90, p99;
};

Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double p) { return v[static_cast<size_t>(p * (v.size() - 1))]; };
  return {at(.5), at(.9), at(.99)};
}

// A raw libnfs RPC connection to the NFSv4 program, driven by poll() like the probe's.
class NullRpc {
 public:
  explicit NullRpc(int port) : rpc_(rpc_init_context()) {
    if (!rpc_) die("rpc_init_context failed");
    done_ = false;
    if (rpc_connect_port_async(rpc_, "127.0.0.1", port, NFS4_PROGRAM, NFS_V4, &NullRpc::callback, this) != 0)
      die(rpc_get_error(rpc_));
    wait();
  }
  ~NullRpc() { rpc_destroy_context(rpc_); }
  NullRpc(const NullRpc&) = delete;
  NullRpc& operator=(const NullRpc&) = delete;

  // One NULL call, answered; returns its wall time in µs.
  double call() {
    auto t0 = WallClock::now();
    done_ = false;
    if (rpc_nfs4_null_async(rpc_, &NullRpc::callback, this) != 0) die(rpc_get_error(rpc_));
    wait();
    return us_since(t0);
  }

 private:
  // Called from libnfs's C code: nothing may throw out of it.
  static void callback(rpc_context*, int status, void*, void* priv) noexcept {
    auto* self = static_cast<NullRpc*>(priv);
    self->status_ = status;
    self->done_ = true;
  }
  void wait() {
    auto deadline = WallClock::now() + std::chrono::seconds(2);
    while (!done_) {
      if (WallClock::now() > deadline) die("NULL RPC timed out");
      pollfd p{rpc_get_fd(rpc_), static_cast<short>(rpc_which_events(rpc_)), 0};
      int r = ::poll(&p, 1, 100);
      if (r < 0 && errno != EINTR) die("poll failed");
      if (rpc_service(rpc_, r > 0 ? p.revents : 0) < 0) die(rpc_get_error(rpc_));
    }
    if (status_ != RPC_STATUS_SUCCESS) die(rpc_get_error(rpc_));
  }
  [[noreturn]] static void die(const char* what) {
    std::fprintf(stderr, "nfs_probe_bench: NULL RPC: %s\n", what ? what : "error");
    std::exit(1);
  }

  rpc_context* rpc_;
  bool done_ = false;
  int status_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  int cat_runs = argc > 2 ? std::atoi(argv[2]) : 50;
  if (n < 1 || cat_runs < 1) {
    std::fprintf(stderr, "usage: nfs_probe_bench [PROBES>0] [NFS_CAT_RUNS>0]\n");
    return 2;
  }
  TempDir dir;
  std::filesystem::create_directories(dir.file("data"));
  ::chmod(dir.file("data").c_str(), 0755);
  write_file(dir.file("data/canary.txt"), "poolkeeper canary\n");
  Ganesha g(dir.path(), dir.file("data"));
  g.start();

  NfsCheckOptions o;
  o.port = g.port();
  o.path = "/dumps/canary.txt";
  if (const char* m = std::getenv("PK_NFS_MINOR")) o.minor_version = std::atoi(m);
  NfsCheck c(o);
  run_probe(c, std::chrono::seconds(2));  // connect, first OPEN
  NullRpc null_rpc(g.port());
  null_rpc.call();  // warm, like the probe's connection

  // Probes and NULL calls alternate so that both see the same server and machine state.
  std::vector<double> probe, null;
  for (int i = 0; i < n; ++i) {
    auto t0 = WallClock::now();
    Result r = run_probe(c, std::chrono::seconds(1));
    probe.push_back(us_since(t0));
    if (!r.ok()) {
      std::fprintf(stderr, "nfs_probe_bench: probe failed: %s\n", r.reason.c_str());
      return 1;
    }
    null.push_back(null_rpc.call());
  }
  Percentiles pp = percentiles(probe), pn = percentiles(null);
  std::printf("nfs probe, warm connection, %d probes: p50 %.0f us, p90 %.0f us, p99 %.0f us\n", n, pp.p50,
              pp.p90, pp.p99);
  std::printf("  %llu connection(s), %llu COMPOUNDs, %llu mount(s) = client ids, %llu OPEN rounds\n",
              (unsigned long long)c.counters().connects, (unsigned long long)c.counters().compounds,
              (unsigned long long)c.counters().mounts, (unsigned long long)c.counters().opens);
  std::printf("NFSv4 NULL RPC, warm connection, %d calls: p50 %.0f us, p90 %.0f us, p99 %.0f us\n", n, pn.p50,
              pn.p90, pn.p99);

  std::string url = "nfs://127.0.0.1/dumps/canary.txt?version=4&nfsport=" + std::to_string(g.port());
  std::vector<double> cat;
  for (int i = 0; i < cat_runs; ++i) {
    auto t0 = WallClock::now();
    if (run_command({"nfs-cat", url}, nullptr) != 0) {
      std::fprintf(stderr, "nfs_probe_bench: nfs-cat %s failed\n", url.c_str());
      return 1;
    }
    cat.push_back(us_since(t0));
  }
  Percentiles pc = percentiles(cat);
  std::printf("fresh nfs-cat process, %d runs: p50 %.0f us, p99 %.0f us\n", cat_runs, pc.p50, pc.p99);
  std::printf("probe/NULL p50 %.2f (goal <= 1.5), nfs-cat/probe p50 %.1f (goal >= 20)\n", pp.p50 / pn.p50,
              pc.p50 / pp.p50);
  std::printf("RESULT probe_p50=%.1f probe_p99=%.1f null_p50=%.1f null_p99=%.1f cat_p50=%.1f cat_p99=%.1f\n",
              pp.p50, pp.p99, pn.p50, pn.p99, pc.p50, pc.p99);
  return 0;
}

// The floor without etcd, with real agents: 2 and then 3 of them, each service's peers
// the others, all checks failing at the same instant (exec checks on one shared flag
// file), all recovering at once, and two `depool`s sent at the same instant. Every
// agent's /health/nfs is sampled every 10 ms, all agents at the same tick (one thread
// each); a sample in which fewer than min_pooled agents answer 200 is a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "tests/harness/agent_proc.h"

using namespace pk_test;

namespace {

constexpr auto kTick = 10ms;

// The agents, their nfs service on one shared flag file.
struct Pool {
  TempDir shared;
  std::vector<std::unique_ptr<AgentProc>> agents;
  int min_pooled;

  Pool(int n, int min_pooled_) : min_pooled(min_pooled_) {
    set_ok(true);
    for (int i = 0; i < n; ++i)
      agents.push_back(std::make_unique<AgentProc>(std::string(1, static_cast<char>('a' + i)) + ".example.org"));
    for (auto& a : agents) {
      std::string peers;
      for (auto& b : agents)
        if (b != a) peers += (peers.empty() ? "\"" : ", \"") + b->url() + "\"";
      a->nfs_extra = "peers = [" + peers + "]\nmin_pooled = " + std::to_string(min_pooled) + "\n";
      a->check_timing = "interval = \"200ms\"\ntimeout = \"200ms\"\nfast_interval = \"200ms\"\nrise = 1\nfall = 1\n";
      std::string text = a->config_text();
      std::string own = a->dir().file("nfs.ok");
      text.replace(text.find(own), own.size(), shared.file("nfs.ok"));
      a->write_config(text);
    }
    for (auto& a : agents) a->start();
  }
  void set_ok(bool ok) {
    if (ok) write_file(shared.file("nfs.ok"), "");
    else std::filesystem::remove(shared.file("nfs.ok"));
  }
  int pooled() const {
    int n = 0;
    for (const auto& a : agents) n += a->health("nfs") == 200;
    return n;
  }
  // Settled: the `want` lowest-named agents pooled, the others not, none deciding a leave.
  bool settled(int want) const {
    for (size_t i = 0; i < agents.size(); ++i) {
      auto s = agents[i]->status();
      if (!s.is_object() || s["services"]["nfs"].value("leaving", false)) return false;
      if (s["services"]["nfs"].value("pooled", false) != (static_cast<int>(i) < want)) return false;
    }
    return true;
  }
};

// Samples every agent's /health/nfs at each tick until stopped.
class Sampler {
 public:
  explicit Sampler(const Pool& pool) : pool_(pool), start_(Clock::now() + 50ms) {
    for (size_t i = 0; i < pool.agents.size(); ++i) threads_.emplace_back([this, i] { run(i); });
  }
  ~Sampler() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  // Ticks seen by every agent; of those, with fewer than min_pooled answering 200; the
  // longest run of such ticks (in ms).
  struct Figures {
    size_t samples = 0, short_samples = 0;
    long worst_ms = 0;
  };
  Figures figures() {
    Figures f;
    std::lock_guard<std::mutex> lk(mu_);
    size_t n = SIZE_MAX;
    for (const auto& r : results_) n = std::min(n, r.size());
    long run = 0;
    for (size_t k = 0; k < n; ++k) {
      int ok = 0;
      for (const auto& r : results_) ok += r[k] == 200;
      ++f.samples;
      if (ok < pool_.min_pooled) {
        ++f.short_samples;
        run += kTick.count();
        f.worst_ms = std::max(f.worst_ms, run);
      } else {
        run = 0;
      }
    }
    return f;
  }

 private:
  void run(size_t i) {
    std::string url = pool_.agents[i]->url() + "/health/nfs";
    for (size_t k = 0; !stop_; ++k) {
      std::this_thread::sleep_until(start_ + k * kTick);
      long status = http_get(url, 1000).status;
      std::lock_guard<std::mutex> lk(mu_);
      if (results_.size() <= i) results_.resize(pool_.agents.size());
      // A tick this thread overran is read as the next one's answer (the same state).
      size_t tick = static_cast<size_t>((Clock::now() - start_) / kTick);
      while (results_[i].size() <= tick) results_[i].push_back(status);
      k = tick;
    }
  }

  const Pool& pool_;
  Clock::time_point start_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::vector<long>> results_;
  std::vector<std::thread> threads_;
};

void report(const char* what, Sampler::Figures f) {
  std::printf("%s: %zu samples, %zu with fewer than min_pooled answering 200, worst stretch %ld ms\n", what,
              f.samples, f.short_samples, f.worst_ms);
  std::fflush(stdout);
}

// Rounds of: every check fails at once, the pool settles at min_pooled (the floor keeps
// the lowest names), every check recovers at once, the pool settles at all pooled.
void fail_and_recover_together(int n, int min_pooled, int rounds) {
  Pool pool(n, min_pooled);
  ASSERT_TRUE(wait_for([&] { return pool.settled(n); }, 10000ms)) << "did not start pooled";
  Sampler sampler(pool);
  for (int r = 0; r < rounds; ++r) {
    pool.set_ok(false);
    // The floor keeps the lowest names, whichever agent saw the failure first.
    ASSERT_TRUE(wait_for([&] { return pool.settled(min_pooled); }, 10000ms, 20ms)) << "round " << r;
    pool.set_ok(true);
    ASSERT_TRUE(wait_for([&] { return pool.settled(n); }, 10000ms, 20ms)) << "round " << r;
  }
  sampler.stop();
  auto f = sampler.figures();
  report((std::to_string(n) + " hosts, min_pooled " + std::to_string(min_pooled) + ", failing and recovering together")
             .c_str(),
         f);
  EXPECT_GT(f.samples, static_cast<size_t>(rounds) * 20);
  EXPECT_EQ(f.short_samples, 0u) << "worst stretch " << f.worst_ms << " ms";
}

}  // namespace

TEST(FloorRaceTest, TwoHostsFailAndRecoverTogether) { fail_and_recover_together(2, 1, 20); }

TEST(FloorRaceTest, ThreeHostsFailAndRecoverTogether) { fail_and_recover_together(3, 2, 20); }

TEST(FloorRaceTest, TwoDepoolsAtTheSameInstantOneIsRefused) {
  Pool pool(2, 1);
  ASSERT_TRUE(wait_for([&] { return pool.settled(2); }, 10000ms)) << "did not start pooled";
  Sampler sampler(pool);
  int refused_a = 0;
  for (int r = 0; r < 10; ++r) {
    CommandResult res[2];
    std::atomic<int> ready{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 2; ++i)
      ts.emplace_back([&, i] {
        ++ready;
        while (ready < 2) std::this_thread::yield();
        res[i] = pool.agents[static_cast<size_t>(i)]->ctl({"depool", "nfs", "--reason", "race"});
      });
    for (auto& t : ts) t.join();
    int refused = 0, done = 0;
    for (const auto& x : res) {
      if (x.rc == 0) ++done;
      else if (x.rc == 2 && x.out.find("refused: depooling nfs") != std::string::npos) ++refused;
    }
    EXPECT_EQ(done, 1) << "round " << r << ": " << res[0].out << res[1].out;
    EXPECT_EQ(refused, 1) << "round " << r << ": " << res[0].out << res[1].out;
    refused_a += res[0].rc == 2;
    for (auto& a : pool.agents) ASSERT_EQ(a->ctl({"pool", "nfs"}).rc, 0);
    ASSERT_TRUE(wait_for([&] { return pool.settled(2); }, 10000ms, 20ms)) << "round " << r;
  }
  sampler.stop();
  auto f = sampler.figures();
  report("2 hosts, min_pooled 1, two depools at once", f);
  std::printf("the refused one: a %d times, b %d times\n", refused_a, 10 - refused_a);
  EXPECT_EQ(f.short_samples, 0u) << "worst stretch " << f.worst_ms << " ms";
}

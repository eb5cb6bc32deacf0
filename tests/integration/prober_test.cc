// The Prober (agent/runtime/prober.h) against real servers: hung servers (SIGSTOPped
// nginx and rsync daemon) delay no healthy check's result and are reported as timeouts;
// 200 http checks, a third of them hung, run on a fixed handful of threads; a Check never
// runs twice at once; stop() is bounded by its grace even with a probe stuck.
#include <gtest/gtest.h>
#include <dirent.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "agent/runtime/prober.h"
#include "checks/http_check.h"
#include "checks/rsync_check.h"
#include "tests/harness/servers.h"

using namespace poolkeeper;
using namespace pk_test;

namespace {

int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

// Results as the Prober delivers them, in arrival order.
struct Collector {
  struct Got {
    std::string name;
    uint64_t gen, seq;
    Result r;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Got> got;

  Prober::Done sink() {
    return [this](const std::string& n, uint64_t g, uint64_t s, Result r) {
      std::lock_guard<std::mutex> lk(mu);
      got.push_back({n, g, s, std::move(r)});
      cv.notify_all();
    };
  }
  bool wait_count(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, timeout, [&] { return got.size() >= n; });
  }
  size_t count() {
    std::lock_guard<std::mutex> lk(mu);
    return got.size();
  }
  std::optional<Got> find(const std::string& name) {
    std::lock_guard<std::mutex> lk(mu);
    for (const auto& g : got)
      if (g.name == name) return g;
    return std::nullopt;
  }
  // Position in arrival order (-1: not arrived).
  int index_of(const std::string& name) {
    std::lock_guard<std::mutex> lk(mu);
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i].name == name) return static_cast<int>(i);
    return -1;
  }
};

// Two nginx and two rsync daemons over one tree: one of each healthy, one of each hung.
class ProberTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string data = dir_->file("data");
    std::filesystem::create_directories(data);
    write_file(data + "/canary.txt", "poolkeeper canary\n");
    for (const char* d : {"ok_nginx", "hung_nginx", "ok_rsyncd", "hung_rsyncd"})
      std::filesystem::create_directories(dir_->file(d));
    ok_nginx_ = new Nginx(dir_->file("ok_nginx"), data);
    hung_nginx_ = new Nginx(dir_->file("hung_nginx"), data);
    ok_rsyncd_ = new RsyncDaemon(dir_->file("ok_rsyncd"), data);
    hung_rsyncd_ = new RsyncDaemon(dir_->file("hung_rsyncd"), data);
    ok_nginx_->start();
    hung_nginx_->start();
    ok_rsyncd_->start();
    hung_rsyncd_->start();
    hung_nginx_->hang_all();
    hung_rsyncd_->hang();
  }
  static void TearDownTestSuite() {
    hung_nginx_->resume_all();
    hung_rsyncd_->resume();
    delete ok_nginx_;
    delete hung_nginx_;
    delete ok_rsyncd_;
    delete hung_rsyncd_;
    delete dir_;
  }
  static std::shared_ptr<Check> http(const Nginx& n) {
    HttpCheckOptions o;
    o.url = "http://127.0.0.1:" + std::to_string(n.port()) + "/canary.txt";
    o.expect_body = "canary";
    return std::make_shared<HttpCheck>(o);
  }
  static std::shared_ptr<Check> rsync(const RsyncDaemon& d) {
    RsyncCheckOptions o;
    o.port = d.port();
    o.module = "dumps";
    return std::make_shared<RsyncCheck>(o);
  }
  static TempDir* dir_;
  static Nginx *ok_nginx_, *hung_nginx_;
  static RsyncDaemon *ok_rsyncd_, *hung_rsyncd_;
};
TempDir* ProberTest::dir_ = nullptr;
Nginx* ProberTest::ok_nginx_ = nullptr;
Nginx* ProberTest::hung_nginx_ = nullptr;
RsyncDaemon* ProberTest::ok_rsyncd_ = nullptr;
RsyncDaemon* ProberTest::hung_rsyncd_ = nullptr;

// A kind with only a blocking run(): sleeps until its deadline or until released, and
// counts how many of its probes run at once.
class BlockingCheck final : public Check {
 public:
  Result run(Deadline deadline, const poolkeeper::Clock&) override {
    int now = ++running_;
    int seen = max_seen_.load();
    while (now > seen && !max_seen_.compare_exchange_weak(seen, now)) {
    }
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_until(lk, deadline, [&] { return released_; });
    --running_;
    ++runs_;
    return released_ ? Result::pass("released") : Result::fail(Outcome::kTimeout, "timed out");
  }
  std::string target() const override { return "blocking"; }
  void release() {
    std::lock_guard<std::mutex> lk(mu_);
    released_ = true;
    cv_.notify_all();
  }
  std::atomic<int> running_{0}, max_seen_{0}, runs_{0};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

class ThrowingCheck final : public Check {
 public:
  Result run(Deadline, const poolkeeper::Clock&) override { throw std::runtime_error("boom \xff"); }
  std::string target() const override { return "throws"; }
};

}  // namespace

TEST_F(ProberTest, HungServersDelayNoHealthyCheckAndEndAsTimeouts) {
  Collector c;
  Prober p(c.sink());
  // The hung ones first, with a long timeout: the healthy ones must not wait for them.
  p.trigger("hung_http", 1, http(*hung_nginx_), 1, 3s);
  p.trigger("hung_rsync", 1, rsync(*hung_rsyncd_), 1, 3s);
  p.trigger("ok_http", 1, http(*ok_nginx_), 1, 3s);
  p.trigger("ok_rsync", 1, rsync(*ok_rsyncd_), 1, 3s);
  ASSERT_TRUE(c.wait_count(4, 10s)) << "got " << c.count();
  for (const char* ok : {"ok_http", "ok_rsync"}) {
    auto g = c.find(ok);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->r.outcome, Outcome::kPassed) << ok << ": " << g->r.reason;
    EXPECT_LT(c.index_of(ok), 2) << ok << " arrived after a hung check's result";
  }
  for (const char* hung : {"hung_http", "hung_rsync"}) {
    auto g = c.find(hung);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->r.outcome, Outcome::kTimeout) << hung << ": " << g->r.reason;
    EXPECT_EQ(g->r.reason.find("timed out"), 0u) << g->r.reason;
    EXPECT_GE(g->r.latency, 3s - 5ms) << hung;
  }
  EXPECT_TRUE(p.stop(200ms));
}

TEST_F(ProberTest, TwoHundredHttpChecksRunOnAFewThreads) {
  int before = thread_count();
  Collector c;
  Prober p(c.sink());
  std::vector<std::shared_ptr<Check>> checks;
  for (int i = 0; i < 200; ++i) checks.push_back(http(i % 3 == 0 ? *hung_nginx_ : *ok_nginx_));
  int most = 0;
  for (uint64_t round = 1; round <= 2; ++round) {
    size_t want = 200 * round;
    for (int i = 0; i < 200; ++i) p.trigger("c" + std::to_string(i), 1, checks[i], round, 500ms);
    bool all = wait_for([&] {
      most = std::max(most, thread_count());
      return c.count() >= want;
    }, 10s, 5ms);
    ASSERT_TRUE(all) << "round " << round << ": " << c.count() << " of " << want;
  }
  size_t passed = 0, timed_out = 0;
  for (const auto& g : c.got) {
    int i = std::stoi(g.name.substr(1));
    if (i % 3 == 0) {
      EXPECT_EQ(g.r.outcome, Outcome::kTimeout) << g.name << ": " << g.r.reason;
      timed_out += g.r.outcome == Outcome::kTimeout;
    } else {
      EXPECT_EQ(g.r.outcome, Outcome::kPassed) << g.name << ": " << g.r.reason;
      passed += g.r.ok();
    }
  }
  EXPECT_EQ(passed, 2u * 133);
  EXPECT_EQ(timed_out, 2u * 67);
  // The loop thread (libcurl may add a resolver thread per lookup; these are numeric
  // addresses, so none); no thread per check.
  EXPECT_LE(most - before, 2) << "threads before " << before << ", at most " << most;
  EXPECT_LE(most, 16);
  std::cout << "threads: " << before << " before, " << most << " at most with 200 http checks\n";
  EXPECT_TRUE(p.stop(200ms));
}

TEST_F(ProberTest, BlockingKindsRunOnThePoolOneAtATimePerCheck) {
  Collector c;
  Prober p(c.sink());
  auto b = std::make_shared<BlockingCheck>();
  p.trigger("b", 1, b, 1, 5s);
  p.trigger("b", 1, b, 2, 5s);  // waits for the first: one Check never runs twice at once
  p.trigger("t", 1, std::make_shared<ThrowingCheck>(), 1, 1s);
  ASSERT_TRUE(c.wait_count(1, 5s));
  auto t = c.find("t");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->r.outcome, Outcome::kFailed);
  EXPECT_EQ(t->r.reason, "probe error: boom \xEF\xBF\xBD");  // made valid UTF-8
  EXPECT_FALSE(c.find("b"));
  b->release();
  ASSERT_TRUE(c.wait_count(3, 5s));
  EXPECT_EQ(b->max_seen_.load(), 1);
  EXPECT_EQ(b->runs_.load(), 2);
  std::lock_guard<std::mutex> lk(c.mu);
  EXPECT_EQ(c.got[1].seq, 1u);
  EXPECT_EQ(c.got[2].seq, 2u);
}

// A probe's start and latency are on the Prober's clock, the one its check is given;
// its deadline is real time, as the kernel's waits are.
TEST_F(ProberTest, LatencyIsOnTheProbersClockAndTheDeadlineReal) {
  struct TimedCheck final : Check {
    explicit TimedCheck(FakeClock& f) : fake(f) {}
    Result run(Deadline deadline, const poolkeeper::Clock& clock) override {
      given = &clock;
      real_left = deadline - real_clock().now();
      fake.advance(1234ms);  // the probe takes 1.234 s of simulated time
      return Result::pass();
    }
    std::string target() const override { return "timed"; }
    FakeClock& fake;
    const poolkeeper::Clock* given = nullptr;  // read after the result is in
    Duration real_left{};
  };
  FakeClock fake;
  Collector c;
  Prober p(c.sink(), fake);
  auto t = std::make_shared<TimedCheck>(fake);
  p.trigger("t", 1, t, 1, 30s);
  ASSERT_TRUE(c.wait_count(1, 5s));
  auto got = c.find("t");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->r.latency, 1234ms);
  EXPECT_EQ(t->given, &fake);
  EXPECT_LE(t->real_left, 30s);
  EXPECT_GT(t->real_left, 25s);  // a time on the real clock, 30 s after the probe began
  EXPECT_TRUE(p.stop(200ms));
}

TEST_F(ProberTest, ManyStuckBlockingProbesDelayNoOther) {
  Collector c;
  Prober p(c.sink());
  std::vector<std::shared_ptr<BlockingCheck>> stuck;
  for (int i = 0; i < 12; ++i) {
    stuck.push_back(std::make_shared<BlockingCheck>());
    p.trigger("stuck" + std::to_string(i), 1, stuck.back(), 1, 30s);
  }
  ASSERT_TRUE(wait_for([&] {
    int n = 0;
    for (const auto& b : stuck) n += b->running_;
    return n == 12;
  }, 5s)) << "all 12 stuck probes run at once";
  p.trigger("hung_rsync", 1, rsync(*hung_rsyncd_), 1, 1s);
  p.trigger("ok_rsync", 1, rsync(*ok_rsyncd_), 1, 3s);
  ASSERT_TRUE(c.wait_count(2, 10s)) << "got " << c.count();
  auto ok = c.find("ok_rsync");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->r.outcome, Outcome::kPassed) << ok->r.reason;
  EXPECT_EQ(c.index_of("ok_rsync"), 0) << "a healthy probe waited behind stuck ones";
  for (auto& b : stuck) b->release();
  ASSERT_TRUE(c.wait_count(14, 10s)) << "got " << c.count();
  EXPECT_TRUE(p.stop(200ms));
}

TEST_F(ProberTest, StopIsBoundedWithAProbeStuckAndDropsItsResult) {
  Collector c;
  auto p = std::make_unique<Prober>(c.sink());
  auto b = std::make_shared<BlockingCheck>();
  p->trigger("stuck", 1, b, 1, 30s);
  p->trigger("hung_http", 1, http(*hung_nginx_), 1, 30s);
  ASSERT_TRUE(wait_for([&] { return b->running_ == 1; }, 5s));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p->stop(200ms)) << "a probe was still running";
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2s);
  p.reset();
  b->release();  // the abandoned probe ends now: its result goes nowhere
  ASSERT_TRUE(wait_for([&] { return b->runs_ == 1; }, 5s));
  EXPECT_TRUE(holds_for([&] { return c.count() == 0; }, 200ms));
}

// A probe on the loop gets a handle an earlier probe gave back, rather than a new one
// (the loop keeps a few spare).
TEST_F(ProberTest, EasyHandlesGivenBackAreReused) {
  struct HandleCheck : Check {
    std::vector<void*> seen;  // loop thread only until the results are in
    Result run(Deadline, const poolkeeper::Clock&) override { return Result::pass(); }
    void start(ProbeLoop& loop, Deadline, ProbeDone done) override {
      void* a = loop.take_easy();
      void* b = loop.take_easy();  // both in use at once: two handles
      seen.push_back(a);
      seen.push_back(b);
      loop.release_easy(b);
      loop.release_easy(a);
      done(Result::pass());
    }
    std::string target() const override { return "handles"; }
  };
  Collector c;
  Prober p(c.sink());
  auto h = std::make_shared<HandleCheck>();
  p.trigger("h", 1, h, 1, 1s);
  ASSERT_TRUE(c.wait_count(1, 5s));
  p.trigger("h", 1, h, 2, 1s);
  ASSERT_TRUE(c.wait_count(2, 5s));
  EXPECT_TRUE(p.stop(200ms));
  ASSERT_EQ(h->seen.size(), 4u);
  EXPECT_NE(h->seen[0], nullptr);
  EXPECT_NE(h->seen[0], h->seen[1]);
  // The last given back is the first taken again.
  EXPECT_EQ(h->seen[2], h->seen[0]);
  EXPECT_EQ(h->seen[3], h->seen[1]);
}

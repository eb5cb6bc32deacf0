// Every probe kind against the real servers (nfs-ganesha, nginx, rsync daemon), for
// success and each failure an operator would meet, with the reason they would read.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "checks/http_check.h"
#include "checks/nfs_check.h"
#include "checks/rsync_check.h"
#include "tests/harness/servers.h"

using namespace poolkeeper;
using namespace pk_test;

namespace {

Result probe(Check& c, Duration timeout = 1s) { return run_probe(c, timeout); }

NfsCheckOptions nfs_opts(const Stack& s, const std::string& path = "/dumps/canary.txt") {
  NfsCheckOptions o;
  o.server = "127.0.0.1";
  o.port = s.ganesha->port();
  o.path = path;
  return o;
}

std::string http_url(const Stack& s, const std::string& path = "/canary.txt") {
  return "http://127.0.0.1:" + std::to_string(s.nginx->port()) + path;
}

RsyncCheckOptions rsync_opts(const Stack& s) {
  RsyncCheckOptions o;
  o.port = s.rsyncd->port();
  o.module = "dumps";
  return o;
}

// The hung-server bound of the issue: the probe ends at its timeout, within 10% + 50 ms.
void expect_times_out(Check& c, Duration timeout) {
  auto t0 = SteadyClock::now();
  Result r = probe(c, timeout);
  auto took = SteadyClock::now() - t0;
  EXPECT_EQ(r.outcome, Outcome::kTimeout) << r.reason;
  EXPECT_EQ(r.reason.find("timed out"), 0u) << r.reason;
  EXPECT_GE(took, timeout - 5ms);
  EXPECT_LE(took, timeout + timeout / 10 + 50ms) << "took " << seconds(took) << " s";
}

class ChecksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack();
    stack_->start();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void TearDown() override {
    // Leave the shared stack as we found it.
    stack_->ganesha->resume();
    stack_->nginx->resume_all();
    stack_->rsyncd->resume();
    if (read_file(stack_->canary_path()) != Stack::kCanary) {
      stack_->write_canary(Stack::kCanary);
      NfsCheck c(nfs_opts(*stack_));
      wait_for([&] { return probe(c).ok(); }, 3000ms, 50ms);
    }
    stack_->age_canary(std::chrono::seconds(0));
  }
  static Stack* stack_;
};
Stack* ChecksTest::stack_ = nullptr;

}  // namespace

// ---------------- nfs ----------------

TEST_F(ChecksTest, NfsPassesWithHandlesAndAttributes) {
  auto o = nfs_opts(*stack_);
  o.expect = "poolkeeper canary";
  o.max_age = std::chrono::hours(26);
  NfsCheck c(o);
  Result r = probe(c);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.reason, "read 18 bytes");
  EXPECT_EQ(r.details["size"], 18);
  EXPECT_GT(r.details["fileid"].get<uint64_t>(), 0u);
  EXPECT_GE(r.details["root_fh"].get<std::string>().size(), 16u);
  EXPECT_GE(r.details["fh"].get<std::string>().size(), 16u);
  EXPECT_NE(r.details["root_fh"], r.details["fh"]);
  EXPECT_EQ(r.details["opened"], true);  // first probe after connecting proves OPEN works
  Result again = probe(c);
  EXPECT_TRUE(again.ok());
  EXPECT_EQ(again.details["fh"], r.details["fh"]);  // stable handles
  EXPECT_FALSE(again.details.contains("opened"));
}

TEST_F(ChecksTest, NfsPathMissing) {
  NfsCheck c(nfs_opts(*stack_, "/dumps/missing/canary.txt"));
  Result r = probe(c);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason, "path missing: /dumps/missing");
  NfsCheck c2(nfs_opts(*stack_, "/nodumps/canary.txt"));
  EXPECT_EQ(probe(c2).reason, "path missing: /nodumps");
}

TEST_F(ChecksTest, NfsCanaryContentWrong) {
  auto o = nfs_opts(*stack_);
  o.expect = "poolkeeper canary";
  NfsCheck c(o);
  ASSERT_TRUE(probe(c).ok());
  stack_->write_canary("truncated\n");
  Result r;
  EXPECT_TRUE(wait_for([&] { return !(r = probe(c)).ok(); }, 3000ms, 50ms));
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason, "canary content wrong: got \"truncated.\"");
  // (A removed canary is "path missing" once ganesha's dirent cache lets go of it;
  // NfsPathMissing covers that reason without depending on its cache timing.)
}

TEST_F(ChecksTest, NfsCanaryTooOld) {
  // The canary's age is judged on the clock the probe is given: simulated here, so it
  // grows by steps while the file stays as it is.
  FakeClock clock;
  auto o = nfs_opts(*stack_);
  o.max_age = std::chrono::hours(26);
  NfsCheck c(o);
  stack_->set_canary_mtime(clock.wall() - std::chrono::hours(1));
  Result r;
  EXPECT_TRUE(wait_for([&] {  // until ganesha has seen the new mtime
    r = run_probe(c, 1s, clock);
    return r.details.value("age_seconds", 0.0) == 3600.0;
  }, 3000ms, 50ms)) << r.details.dump();
  EXPECT_TRUE(r.ok()) << r.reason;
  clock.advance(std::chrono::hours(25));  // as old as max_age: still good
  r = run_probe(c, 1s, clock);
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.details["age_seconds"], 26 * 3600.0);
  EXPECT_EQ(r.details["max_age_seconds"], 26 * 3600.0);
  clock.advance(std::chrono::minutes(61));
  r = run_probe(c, 1s, clock);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason, "canary too old: 27h01m (max_age 26h)");
}

TEST_F(ChecksTest, NfsServerHung) {
  NfsCheck c(nfs_opts(*stack_));
  ASSERT_TRUE(probe(c).ok());
  stack_->ganesha->hang();
  expect_times_out(c, 500ms);   // on the kept-open connection
  NfsCheck fresh(nfs_opts(*stack_));
  expect_times_out(fresh, 300ms);  // connecting: the kernel accepts, nobody answers
  stack_->ganesha->resume();
  Result r = probe(c, 2s);
  EXPECT_TRUE(r.ok()) << r.reason;  // reconnects by itself
}

TEST_F(ChecksTest, NfsOneRoundTripPerProbeAndNoClientStatePerProbe) {
  // Every minor version: one connection, one COMPOUND per probe, and exactly one client
  // for all 1,000 probes (4.0: one mount of the long-lived OPEN context, so one
  // SETCLIENTID; 4.1/4.2: one EXCHANGE_ID and CREATE_SESSION).
  for (int minor : {0, 1, 2}) {
    auto o = nfs_opts(*stack_);
    o.minor_version = minor;
    NfsCheck c(o);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(probe(c).ok()) << "4." << minor << " probe " << i;
    const NfsProbeCounters& n = c.counters();
    EXPECT_EQ(n.connects, 1u);
    EXPECT_EQ(n.compounds, 1000u);
    EXPECT_EQ(n.mounts, 1u);
    EXPECT_EQ(n.opens, 1u + 999u / 30u);
    std::printf("NFSv4.%d, 1000 probes: %llu connects, %llu compounds, %llu clients, %llu opens\n", minor,
                (unsigned long long)n.connects, (unsigned long long)n.compounds,
                (unsigned long long)n.mounts, (unsigned long long)n.opens);
  }
}

TEST_F(ChecksTest, NfsSpeaksTheHighestMinorVersionOrTheOneAsked) {
  for (std::optional<int> minor : {std::optional<int>(), std::optional<int>(0), std::optional<int>(1)}) {
    auto o = nfs_opts(*stack_);
    o.expect = "poolkeeper canary";
    o.minor_version = minor;
    NfsCheck c(o);
    Result r = probe(c);
    ASSERT_TRUE(r.ok()) << r.reason;
    EXPECT_EQ(r.details["minor_version"], minor.value_or(2));  // ganesha has 0, 1 and 2
    EXPECT_EQ(r.reason, "read 18 bytes");
    EXPECT_EQ(r.details["opened"], true);
    EXPECT_EQ(r.details["size"], 18);
    EXPECT_NE(r.details["root_fh"], r.details["fh"]);
  }
  // The same handles whatever the minor version.
  auto o0 = nfs_opts(*stack_), o2 = nfs_opts(*stack_);
  o0.minor_version = 0;
  NfsCheck c0(o0), c2(o2);
  Result r0 = probe(c0), r2 = probe(c2);
  EXPECT_EQ(r0.details["fh"], r2.details["fh"]);
  EXPECT_EQ(r0.details["root_fh"], r2.details["root_fh"]);
}

TEST_F(ChecksTest, NfsPathMissingAndWrongContentOnEveryMinorVersion) {
  for (int minor : {0, 2}) {
    auto o = nfs_opts(*stack_, "/dumps/missing/canary.txt");
    o.minor_version = minor;
    NfsCheck c(o);
    Result r = probe(c);
    EXPECT_EQ(r.reason, "path missing: /dumps/missing") << minor;
    // The root handle came before the failing LOOKUP: it stays in the details.
    EXPECT_TRUE(r.details.contains("root_fh")) << r.details.dump();
    auto o2 = nfs_opts(*stack_, "/dumps");
    o2.minor_version = minor;
    NfsCheck dir(o2);
    EXPECT_EQ(probe(dir).reason, "not a file: /dumps") << minor;  // READ: NFS4ERR_ISDIR
  }
}

// ---------------- http ----------------

TEST_F(ChecksTest, HttpPassesAndChecksBody) {
  HttpCheckOptions o;
  o.url = http_url(*stack_);
  o.host = "dumps.example.org";
  o.expect_body = "canary";
  HttpCheck c(o);
  Result r = probe(c);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.reason, "status 200");
  o.expect_body = "something else";
  HttpCheck wrong(o);
  r = probe(wrong);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason, "body does not contain \"something else\"");
}

TEST_F(ChecksTest, HttpWrongStatus) {
  HttpCheckOptions o;
  o.url = http_url(*stack_, "/nope.txt");
  HttpCheck c(o);
  Result r = probe(c);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason, "status 404");
  o.expect_status = {200, 404};
  HttpCheck ok(o);
  EXPECT_TRUE(probe(ok).ok());
}

TEST_F(ChecksTest, HttpRedirectNotFollowedUnlessAsked) {
  HttpCheckOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(stack_->nginx->port());  // no slash: dir
  o.url = http_url(*stack_, "/sub");  // nginx redirects a directory without slash
  std::filesystem::create_directories(stack_->data_dir() + "/sub");
  write_file(stack_->data_dir() + "/sub/index.html", "ok\n");
  HttpCheck c(o);
  Result r = probe(c);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason.rfind("status 301 (redirect to http://", 0), 0u) << r.reason;
  o.follow_redirects = true;
  HttpCheck f(o);
  r = probe(f);
  EXPECT_TRUE(r.ok()) << r.reason;
}

TEST_F(ChecksTest, HttpOverIpv6) {
  HttpCheckOptions o;
  o.url = "http://[::1]:" + std::to_string(stack_->nginx->port()) + "/canary.txt";
  HttpCheck c(o);
  Result r = probe(c);
  EXPECT_TRUE(r.ok()) << r.reason;
}

TEST_F(ChecksTest, HttpHung) {
  HttpCheckOptions o;
  o.url = http_url(*stack_);
  HttpCheck c(o);
  ASSERT_TRUE(probe(c).ok());
  stack_->nginx->hang_all();
  expect_times_out(c, 400ms);
  EXPECT_EQ(probe(c, 100ms).reason, "timed out");
}

// ---------------- rsync ----------------

TEST_F(ChecksTest, RsyncModuleAndPath) {
  RsyncCheck c(rsync_opts(*stack_));
  Result r = probe(c);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.reason, "module dumps listed");
  EXPECT_EQ(r.details["modules"], nlohmann::json::array({"dumps"}));
  auto o = rsync_opts(*stack_);
  o.path = "canary.txt";
  RsyncCheck p(o);
  r = probe(p);
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.reason, "listed dumps/canary.txt");
  o.path = "missing.txt";
  RsyncCheck m(o);
  r = probe(m);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason.rfind("path missing: dumps/missing.txt", 0), 0u) << r.reason;
}

TEST_F(ChecksTest, RsyncModuleMissing) {
  auto o = rsync_opts(*stack_);
  o.module = "dumpz";
  RsyncCheck c(o);
  Result r = probe(c);
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason, "module dumpz not listed");
}

TEST_F(ChecksTest, RsyncHung) {
  RsyncCheck c(rsync_opts(*stack_));
  stack_->rsyncd->hang();
  expect_times_out(c, 300ms);
}

TEST_F(ChecksTest, RsyncGarbageGreeting) {
  // A server that is not an rsync daemon (say, something else took port 873).
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::listen(lfd, 4);
  socklen_t l = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &l);
  std::thread server([lfd] {
    for (int i = 0; i < 2; ++i) {
      int fd = ::accept(lfd, nullptr, nullptr);
      if (fd < 0) return;
      const char* g = i == 0 ? "SSH-2.0-OpenSSH_9.2\r\n" : "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
      ::send(fd, g, std::strlen(g), MSG_NOSIGNAL);
      ::close(fd);
    }
  });
  RsyncCheckOptions o;
  o.port = ntohs(a.sin_port);
  o.module = "dumps";
  RsyncCheck c(o);
  Result r = probe(c);
  EXPECT_EQ(r.outcome, Outcome::kNetworkError);
  EXPECT_EQ(r.reason, "garbage greeting: \"SSH-2.0-OpenSSH_9.2\"");
  r = probe(c);
  EXPECT_EQ(r.outcome, Outcome::kNetworkError);
  EXPECT_EQ(r.reason.rfind("garbage greeting", 0), 0u) << r.reason;
  server.join();
  ::close(lfd);
}

// ---------------- servers stopped (last: they stop the shared servers) ----------------

TEST_F(ChecksTest, ZzStoppedServersAreRefused) {
  NfsCheck nfs(nfs_opts(*stack_));
  ASSERT_TRUE(probe(nfs).ok());
  HttpCheckOptions ho;
  ho.url = http_url(*stack_);
  HttpCheck http(ho);
  RsyncCheck rsync(rsync_opts(*stack_));
  stack_->ganesha->stop();
  stack_->nginx->stop();
  stack_->rsyncd->stop();
  Result r = probe(nfs);  // the kept-open connection breaks
  EXPECT_FALSE(r.ok());
  r = probe(nfs);  // and reconnecting is refused
  EXPECT_EQ(r.outcome, Outcome::kNetworkError);
  EXPECT_EQ(r.reason, "connection refused");
  EXPECT_EQ(probe(http).reason, "connection refused");
  EXPECT_EQ(probe(rsync).reason, "connection refused");
  // ... and everything comes back after a restart.
  stack_->ganesha->start();
  stack_->nginx->start();
  stack_->rsyncd->start();
}

// ---------------- IPv6 for every kind ----------------

TEST(ChecksIpv6Test, NfsAndRsyncOverIpv6) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("data"));
  ::chmod(dir.file("data").c_str(), 0755);
  write_file(dir.file("data/canary.txt"), "v6\n");
  GaneshaOptions g;
  g.address = "::1";
  Ganesha ganesha(dir.path(), dir.file("data"), g);
  ganesha.start();
  NfsCheckOptions o;
  o.server = "::1";
  o.port = ganesha.port();
  o.path = "/dumps/canary.txt";
  NfsCheck c(o);
  Result r = probe(c);
  EXPECT_TRUE(r.ok()) << r.reason;
  std::filesystem::create_directories(dir.file("rsyncd"));
  RsyncDaemon rsyncd(dir.file("rsyncd"), dir.file("data"), "dumps", "::1");
  rsyncd.start();
  RsyncCheckOptions ro;
  ro.host = "::1";
  ro.port = rsyncd.port();
  ro.module = "dumps";
  ro.path = "canary.txt";
  RsyncCheck rc(ro);
  r = probe(rc);
  EXPECT_TRUE(r.ok()) << r.reason;
}

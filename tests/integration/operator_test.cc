// What an operator touches every day, with the real binaries: poolctl and its
// conftool-style names, persisted intent across kill -9, corrupt state, --for and
// --until-boot, permissions, the safety floor with a second agent, two agents
// failing together, abuse of the admin socket, reload, and systemd notifications.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

#include "tests/harness/agent_proc.h"

using namespace pk_test;

namespace {

std::string read_reply(int fd, std::chrono::milliseconds timeout = 5000ms) {
  std::string out;
  auto end = Clock::now() + timeout;
  while (Clock::now() < end && out.find('\n') == std::string::npos) {
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    else if (n == 0) break;
    else std::this_thread::sleep_for(5ms);
  }
  return out;
}

}  // namespace

TEST(OperatorTest, DepoolPoolDrainRoundTrip) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_TRUE(a.wait_health("http", 200));

  auto r = a.ctl({"depool", "nfs", "--reason", "disk swap"});
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "nfs: not_pooled (depooled: disk swap)\n");
  EXPECT_EQ(a.health("nfs"), 503);  // effective before the reply came back
  EXPECT_EQ(a.health_body("nfs"), "not pooled: depooled: disk swap\n");
  EXPECT_EQ(a.health("http"), 200);
  auto intent = a.status()["services"]["nfs"]["intent"];
  EXPECT_EQ(intent["intent"], "depooled");
  EXPECT_EQ(intent["reason"], "disk swap");
  EXPECT_EQ(intent["who"], "root");
  EXPECT_FALSE(intent["when"].is_null());

  EXPECT_EQ(a.ctl({"ispooled", "nfs"}).rc, 1);
  EXPECT_EQ(a.ctl({"nfs"}, "ispooled").rc, 1);  // the symlink
  EXPECT_EQ(a.ctl({"http"}, "ispooled").rc, 0);

  r = a.ctl({"nfs"}, "pool");  // conftool's `pool nfs`
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(a.health("nfs"), 200);

  r = a.ctl({"http", "--reason", "maintenance"}, "drain");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "http: drained (maintenance)\n");
  EXPECT_EQ(a.health_body("http"), "not pooled: drained: maintenance\n");
  EXPECT_EQ(a.status()["services"]["http"]["effective"], "drained");

  r = a.ctl({}, "depool");  // no service: every service
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(a.get("/health").status, 503);
  r = a.ctl({"pool"});
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(a.get("/health").status, 200);

  // Errors: one line, exit 2.
  r = a.ctl({"depool", "nsf"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.out, "poolctl: unknown service \"nsf\" (known: http, nfs)\n");
  r = a.ctl({"depool", "nfs", "--for", "2h", "--until-boot"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.out, "poolctl: --for and --until-boot exclude each other\n");
  r = a.ctl({"depool", "nfs", "--for", "soon"});
  EXPECT_EQ(r.rc, 2);

  // Every change is an event and a log line.
  auto events = nlohmann::json::parse(a.get("/events").body)["events"];
  int intents = 0;
  for (auto& e : events) intents += e["kind"] == "intent";
  EXPECT_GE(intents, 6);
  EXPECT_NE(a.log().find("event=intent name=nfs from=pooled to=depooled reason=\"disk swap (by root)\""),
            std::string::npos)
      << a.log();
  EXPECT_NE(a.log().find("event=intent name=nfs from=depooled to=pooled reason=\"by root\""), std::string::npos)
      << a.log();
}

TEST(OperatorTest, IntentSurvivesKill9AndRestart) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_EQ(a.ctl({"depool", "nfs", "--reason", "reimage"}).rc, 0);
  a.stop_kill9();
  a.start();
  // The first /status may come before the loaded state is published: wait for it.
  EXPECT_TRUE(wait_for([&] { return a.status()["services"]["nfs"]["intent"]["reason"] == "reimage"; }, 5000ms))
      << a.status()["services"]["nfs"].dump();
  EXPECT_FALSE(a.wait_health("nfs", 200, 1500ms));  // still out after the checks rose
  EXPECT_EQ(a.health_body("nfs"), "not pooled: depooled: reimage\n");
  EXPECT_TRUE(a.wait_health("http", 200));
}

TEST(OperatorTest, CorruptStateFileDepoolsLoudly) {
  AgentProc a("a.example.org");
  std::filesystem::create_directories(a.dir().file("state"));
  write_file(a.dir().file("state/state.json"), "{\"format\": 1, \"services\": {\"nfs\"");
  a.start();
  EXPECT_FALSE(a.wait_health("nfs", 200, 1500ms));
  std::string body = a.health_body("nfs");
  EXPECT_EQ(body.rfind("not pooled: depooled: state file unreadable: " + a.dir().file("state/state.json") +
                           ": not JSON",
                       0),
            0u)
      << body;
  EXPECT_EQ(a.health("http"), 503);
  auto s = a.status();
  EXPECT_EQ(s["state_file"]["ok"], false);
  EXPECT_NE(a.get("/metrics").body.find("\npoolkeeper_state_file_readable 0\n"), std::string::npos);
  EXPECT_NE(a.log().find("STATE FILE UNREADABLE"), std::string::npos);
  auto r = a.ctl({"status"});
  EXPECT_NE(r.out.find("STATE FILE UNREADABLE: "), std::string::npos) << r.out;
  // The operator decides; the file is whole again.
  ASSERT_EQ(a.ctl({"pool"}).rc, 0);
  EXPECT_TRUE(a.wait_health("nfs", 200));
}

TEST(OperatorTest, DepoolForExpires) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  auto t0 = Clock::now();
  ASSERT_EQ(a.ctl({"depool", "nfs", "--for", "1s", "--reason", "blip"}).rc, 0);
  EXPECT_EQ(a.health("nfs"), 503);
  EXPECT_FALSE(a.status()["services"]["nfs"]["intent"]["expires"].is_null());
  ASSERT_TRUE(a.wait_health("nfs", 200, 5000ms));
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GE(s, 0.9);
  EXPECT_LT(s, 2.0);
  EXPECT_EQ(a.status()["services"]["nfs"]["intent"]["reason"], "depool for depooled expired (was: blip)");
}

TEST(OperatorTest, UntilBootReturnsAfterTheNextBootOnceHealthy) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_EQ(a.ctl({"depool", "--until-boot", "--reason", "reboot"}).rc, 0);
  EXPECT_EQ(a.get("/health").status, 503);
  // Restart in the same boot: still depooled.
  a.sigterm_and_wait();
  a.start();
  EXPECT_FALSE(a.wait_health("nfs", 200, 1500ms));
  // "Reboot": a new boot id. The checks are broken at first: not pooled until healthy.
  a.sigterm_and_wait();
  write_file(a.dir().file("boot_id"), "boot-2\n");
  a.set_ok("nfs", false);
  a.start();
  EXPECT_FALSE(a.wait_health("nfs", 200, 1000ms));
  EXPECT_EQ(a.health_body("nfs").rfind("not pooled: depooled: reboot (returns once healthy: rebooted since)", 0), 0u)
      << a.health_body("nfs");
  EXPECT_TRUE(a.wait_health("http", 200));  // healthy: back by itself
  a.set_ok("nfs", true);
  EXPECT_TRUE(a.wait_health("nfs", 200));
  EXPECT_EQ(a.status()["services"]["nfs"]["intent"]["reason"], "healthy after reboot (was: reboot)");
  // ... and that is persisted.
  a.sigterm_and_wait();
  a.start();
  EXPECT_TRUE(a.wait_health("nfs", 200));
}

TEST(OperatorTest, PermissionsByPeerCredentials) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200));
  const std::vector<std::string> nobody = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  auto r = a.ctl({"depool", "nfs"}, "poolctl", nobody);
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.out, "poolctl: permission denied: nobody is not root\n");
  EXPECT_EQ(a.ctl({"status"}, "poolctl", nobody).rc, 0);  // reading is for everyone
  EXPECT_EQ(a.ctl({"ispooled", "http"}, "poolctl", nobody).rc, 0);
  // Members of agent.admin_group may (applied by a reload).
  a.extra_agent = "admin_group = \"nogroup\"\n";
  a.write_config(a.config_text());
  a.signal(SIGHUP);
  ASSERT_TRUE(wait_for([&] { return a.log().find("config reloaded") != std::string::npos; }, 3000ms));
  r = a.ctl({"depool", "nfs", "--reason", "as nobody"}, "poolctl", nobody);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(a.status()["services"]["nfs"]["intent"]["who"], "nobody");
  const std::vector<std::string> daemon = {"setpriv", "--reuid=1", "--regid=1", "--clear-groups"};
  r = a.ctl({"pool", "nfs"}, "poolctl", daemon);
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.out, "poolctl: permission denied: daemon is not root nor in group nogroup\n");
}

TEST(OperatorTest, FloorRefusesDepoolWithThePeerDown) {
  AgentProc b("b.example.org");
  AgentProc a("a.example.org", "", "peers = [\"" + b.url() + "\"]\nmin_pooled = 1\n");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  auto r = a.ctl({"depool", "nfs"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.out, "poolctl: refused: depooling nfs would leave 0 other hosts pooled and healthy (min_pooled 1): " +
                       b.url() + ": unreachable (connection refused) — use --force to depool anyway\n");
  EXPECT_EQ(a.health("nfs"), 200);
  // http has no peers: no floor.
  EXPECT_EQ(a.ctl({"depool", "http"}).rc, 0);
  b.start();
  ASSERT_TRUE(b.wait_health("nfs", 200));
  r = a.ctl({"depool", "nfs", "--reason", "peer is up"});
  EXPECT_EQ(r.rc, 0) << r.out;
  ASSERT_EQ(a.ctl({"pool", "nfs"}).rc, 0);
  ASSERT_TRUE(a.wait_health("nfs", 200));
  // The peer's state shows in our status, with the floor.
  auto s = a.status();
  EXPECT_EQ(s["services"]["nfs"]["floor"]["min_pooled"], 1);
  EXPECT_EQ(s["peers"][0]["host"], "b.example.org");
  b.stop_kill9();
  r = a.ctl({"depool", "nfs", "--force", "--reason", "forced"});
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(a.health("nfs"), 503);
}

TEST(OperatorTest, TwoAgentsFailingTogetherLeaveExactlyOnePooled) {
  AgentProc a("a.example.org"), b("b.example.org");
  a.nfs_extra = "peers = [\"" + b.url() + "\"]\n";
  b.nfs_extra = "peers = [\"" + a.url() + "\"]\n";
  a.write_config(a.config_text());
  b.write_config(b.config_text());
  a.start();
  b.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_TRUE(b.wait_health("nfs", 200));
  a.set_ok("nfs", false);
  b.set_ok("nfs", false);
  // Converges to: a (the lower name) kept by the floor, b out. Then stays so.
  ASSERT_TRUE(wait_for([&] { return a.health("nfs") == 200 && b.health("nfs") == 503 &&
                                    a.status()["services"]["nfs"]["failing"] == true &&
                                    b.status()["services"]["nfs"]["failing"] == true; },
                       10000ms, 50ms))
      << a.health_body("nfs") << b.health_body("nfs");
  EXPECT_TRUE(holds_for([&] { return (a.health("nfs") == 200) + (b.health("nfs") == 200) == 1; }, 2000ms, 100ms));
  // The code stays 200 (all ProxyFetch reads); the body says it is the floor.
  EXPECT_EQ(a.health_body("nfs"), "pooled (kept by floor: check nfs_ok unhealthy: exit status 1)\n");
  EXPECT_EQ(a.status()["services"]["nfs"]["reason"], "kept by floor: check nfs_ok unhealthy: exit status 1");
  // b recovers: a may leave.
  b.set_ok("nfs", true);
  EXPECT_TRUE(b.wait_health("nfs", 200));
  EXPECT_TRUE(a.wait_health("nfs", 503));
}

TEST(OperatorTest, AdminSocketSurvivesAbuse) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200));
  // Garbage.
  int fd = connect_unix(a.socket());
  ASSERT_GE(fd, 0);
  std::string junk = "\x01\x02 not json at all\n";
  ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
  EXPECT_EQ(read_reply(fd), "{\"error\":\"request is not JSON\",\"ok\":false}\n");
  ::close(fd);
  // Oversized, never ending in a newline.
  fd = connect_unix(a.socket());
  std::string big(40000, 'x');
  ::send(fd, big.data(), big.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  EXPECT_EQ(read_reply(fd), "{\"error\":\"request too large (limit 16 KiB)\",\"ok\":false}\n");
  ::close(fd);
  // Half-written requests, held open: the agent keeps serving HTTP and other admin
  // clients meanwhile, and answers them after 2 s.
  std::vector<int> slow;
  for (int i = 0; i < 5; ++i) {
    int s = connect_unix(a.socket());
    ::send(s, "{\"cmd\":\"dep", 11, MSG_NOSIGNAL);
    slow.push_back(s);
  }
  auto t0 = Clock::now();
  EXPECT_EQ(a.health("http"), 200);
  auto r = a.ctl({"depool", "http"});
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_LT(Clock::now() - t0, 1500ms);
  for (int s : slow) {
    EXPECT_EQ(read_reply(s), "{\"error\":\"request incomplete after 2 s\",\"ok\":false}\n");
    ::close(s);
  }
  // Valid JSON, wrong shape.
  fd = connect_unix(a.socket());
  std::string bad = "{\"cmd\":\"depool\",\"services\":\"nfs\"}\n";
  ::send(fd, bad.data(), bad.size(), MSG_NOSIGNAL);
  EXPECT_EQ(read_reply(fd), "{\"error\":\"services must be a list of names\",\"ok\":false}\n");
  ::close(fd);
  EXPECT_TRUE(a.running());
  EXPECT_EQ(a.ctl({"status"}).rc, 0);
}

TEST(OperatorTest, ReloadRefusesABadConfigAndKeepsStreaks) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_EQ(a.ctl({"depool", "http", "--reason", "keep me"}).rc, 0);
  std::string good = a.config_text();
  a.write_config(good + "\n[checks.typo]\nkind = \"exec\"\ncomand = [\"/bin/true\"]\n");
  a.signal(SIGHUP);
  ASSERT_TRUE(wait_for([&] { return a.get("/metrics").body.find("\npoolkeeper_config_last_reload_successful 0\n") !=
                                    std::string::npos; },
                       3000ms));
  EXPECT_NE(a.log().find("config reload refused"), std::string::npos);
  EXPECT_NE(a.log().find("checks.typo.command: is required (a list: program and its arguments) "
                         "(found \\\"comand\\\" at line"), std::string::npos) << a.log();
  EXPECT_EQ(a.health("nfs"), 200);  // the old config runs on
  int before = a.status()["checks"]["nfs_ok"]["successes"];
  ASSERT_GE(before, 2);
  a.write_config(good + "\n[services.rsync]\nchecks = [\"nfs_ok\"]\n");
  a.signal(SIGHUP);
  ASSERT_TRUE(wait_for([&] { return a.get("/metrics").body.find("\npoolkeeper_config_last_reload_successful 1\n") !=
                                    std::string::npos; },
                       3000ms));
  EXPECT_EQ(a.health("rsync"), 200);  // a new service over an unchanged, already risen check
  EXPECT_GE(a.status()["checks"]["nfs_ok"]["successes"].get<int>(), before);  // streak kept
  EXPECT_EQ(a.status()["services"]["http"]["intent"]["reason"], "keep me");  // intent kept
}

TEST(OperatorTest, SystemdNotifications) {
  TempDir d;
  std::string path = d.file("notify.sock");
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "200000", 1);
  AgentProc a("a.example.org");
  a.start();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  std::vector<std::string> msgs;
  auto drain = [&] {
    char buf[512];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) msgs.emplace_back(buf, static_cast<size_t>(n));
  };
  auto count = [&](const std::string& m) { return std::count(msgs.begin(), msgs.end(), m); };
  EXPECT_TRUE(wait_for([&] {
    drain();
    return count("READY=1") >= 1 && count("WATCHDOG=1") >= 3;
  }, 5000ms));
  EXPECT_EQ(count("READY=1"), 1);
  EXPECT_GE(count("WATCHDOG=1"), 3);  // every 100 ms while the owner loop turns
  a.sigterm_and_wait();
  drain();
  EXPECT_EQ(count("STOPPING=1"), 1);
  ::close(fd);
}

// A depool whose expiry lies beyond what the clock can hold is not read as an expired
// one (which would pool the service): the file is unreadable, everything starts out.
TEST(OperatorTest, OutOfRangeExpiryStartsDepooledAsUnreadable) {
  AgentProc a("a.example.org");
  std::filesystem::create_directories(a.dir().file("state"));
  write_file(a.dir().file("state/state.json"),
             R"({"format":1,"services":{"nfs":{"intent":"depooled","reason":"disk swap","who":"alice",)"
             R"("when_ms":1800000000000,"expires_ms":10000000000000,"until_boot":false,"boot_id":""}}})");
  a.start();
  EXPECT_FALSE(a.wait_health("nfs", 200, 1500ms));
  std::string body = a.health_body("nfs");
  EXPECT_EQ(body.rfind("not pooled: depooled: state file unreadable: ", 0), 0u) << body;
  EXPECT_NE(body.find("expires_ms 10000000000000 is out of range"), std::string::npos) << body;
  EXPECT_EQ(a.health("http"), 503);
  EXPECT_EQ(a.status()["state_file"]["ok"], false);
}

// A reload that changes only a check's timing keeps its state: /health, sampled all
// the while, never leaves 200 (it used to start the check over and answer 503).
TEST(OperatorTest, ReloadWithOnlyTimingChangedStaysPooled) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  ASSERT_TRUE(a.wait_health("http", 200));
  std::atomic<bool> done{false};
  std::atomic<int> samples{0}, bad{0};
  std::string first_bad;
  std::thread sampler([&] {
    for (int i = 0; i < 2000 && !done; ++i) {
      auto r = a.get("/health/nfs");
      ++samples;
      if (r.status != 200 && bad++ == 0) first_bad = std::to_string(r.status) + " " + r.body;
      std::this_thread::sleep_for(10ms);
    }
  });
  const std::string timings[] = {
      "interval = \"1s\"\ntimeout = \"250ms\"\nfast_interval = \"100ms\"\nrise = 2\nfall = 2\n",
      "interval = \"300ms\"\ntimeout = \"200ms\"\nfast_interval = \"150ms\"\nrise = 4\nfall = 3\n"};
  for (int round = 0; round < 4; ++round) {
    a.check_timing = timings[round % 2];
    a.write_config(a.config_text());
    a.signal(SIGHUP);
    auto reloads = [&] {
      std::string log = a.log();
      int n = 0;
      for (size_t at = log.find("config reloaded"); at != std::string::npos; at = log.find("config reloaded", at + 1)) ++n;
      return n;
    };
    ASSERT_TRUE(wait_for([&] { return reloads() > round; }, 5000ms));
    std::this_thread::sleep_for(400ms);  // sampling goes on across the reload
  }
  done = true;
  sampler.join();
  EXPECT_GT(samples, 50);
  EXPECT_EQ(bad, 0) << "first non-200 answer: " << first_bad;
  // The new timing is in force.
  EXPECT_EQ(a.status()["checks"]["nfs_ok"]["fall"], 3);
}

namespace {
// A field of /proc/PID/status as a number ("VmSize:  404000 kB" → 404000).
long proc_status(pid_t pid, const std::string& field) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = text.find("\n" + field + ":");
  return at == std::string::npos ? -1 : std::atol(text.c_str() + at + field.size() + 2);
}
}  // namespace

// Reloads alternating two configs that change a check's target each time: every reload
// retires a probe worker. Threads and address space stay flat (they used to grow by a
// thread per reload until the agent died), and the removed checks' metric series go.
TEST(OperatorTest, FiveHundredReloadsLeaveThreadsAndMemoryFlat) {
  AgentProc a("a.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200));
  auto config = [&](int i) {
    std::string extra = i % 2 ? "[checks.odd]\nkind = \"exec\"\ncommand = [\"/bin/true\", \"odd\"]\n"
                              : "[checks.even]\nkind = \"exec\"\ncommand = [\"/bin/true\", \"even\"]\n";
    std::string text = a.config_text();
    // The changing check's target changes with every reload.
    size_t at = text.find("\"/usr/bin/test\", \"-e\"");
    text.replace(at, std::string("\"/usr/bin/test\"").size(), i % 2 ? "\"/usr/bin/test\"" : "\"/bin/test\"");
    return text + extra;
  };
  auto reload_to = [&](int i) {
    a.write_config(config(i));
    a.signal(SIGHUP);
    const char* want = i % 2 ? "odd" : "even";
    return wait_for([&] {
      auto s = a.status();
      return s.contains("checks") && s["checks"].contains(want);
    }, 5000ms);
  };
  long threads0 = 0, vm0 = 0;
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(reload_to(i)) << "reload " << i << "\n" << a.log().substr(a.log().size() > 2000 ? a.log().size() - 2000 : 0);
    if (i == 49) {
      std::this_thread::sleep_for(300ms);  // retired workers end with their last probe
      threads0 = proc_status(a.pid(), "Threads");
      vm0 = proc_status(a.pid(), "VmSize");
    }
  }
  std::this_thread::sleep_for(300ms);
  long threads = proc_status(a.pid(), "Threads"), vm = proc_status(a.pid(), "VmSize");
  std::printf("after 50 reloads: %ld threads, VmSize %ld kB; after 500: %ld threads, VmSize %ld kB\n", threads0,
              vm0, threads, vm);
  EXPECT_LE(threads, threads0 + 2);
  // A leaked thread costs an 8 MiB stack: 450 of them would add 3.6 GB. Allow glibc's
  // malloc to open up to two more 64 MiB arenas as new workers come and go.
  EXPECT_LE(vm, vm0 + 2 * 65536);
  std::string metrics = a.get("/metrics").body;
  EXPECT_EQ(metrics.find("check=\"even\""), std::string::npos);  // the last config (499) has "odd" only
  EXPECT_NE(metrics.find("poolkeeper_check_up{check=\"odd\"}"), std::string::npos);
  EXPECT_TRUE(a.wait_health("nfs", 200));
}

// An exec check whose command leaves a process outside its group (setsid): the agent,
// a child subreaper, finds it at the end of the probe, kills it and counts it.
TEST(OperatorTest, SetsidEscapeeOfAnExecCheckIsKilledAndCounted) {
  AgentProc a("a.example.org");
  std::string text = a.config_text();
  text.replace(text.find("checks = [\"http_ok\"]"), std::string("checks = [\"http_ok\"]").size(),
               "checks = [\"http_ok\", \"escape\"]");
  a.write_config(text + "[checks.escape]\nkind = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", \"setsid sleep 100 & echo started\"]\n"
                        "interval = \"300ms\"\ntimeout = \"250ms\"\nrise = 1\n");
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200, 5000ms)) << a.log();
  ASSERT_TRUE(wait_for([&] { return a.status()["exec_leftovers"]["killed_total"].get<int>() >= 3; }, 5000ms))
      << a.status()["exec_leftovers"].dump();
  // None of the escapees is alive: no `sleep 100` is a child of the agent or of init
  // with our marker.
  auto sleepers = [&] {
    std::string out;
    run_command({"pgrep", "-f", "-x", "sleep 100"}, &out);
    return out;
  };
  EXPECT_TRUE(wait_for([&] { return sleepers().empty(); }, 2000ms)) << sleepers();
  EXPECT_NE(a.get("/metrics").body.find("poolkeeper_exec_leftover_processes_killed_total "), std::string::npos);
  a.sigterm_and_wait();
  EXPECT_TRUE(sleepers().empty()) << sleepers();
}

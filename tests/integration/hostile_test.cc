// The real poolkeeper against hostile input: bytes that are not UTF-8 from every source
// (exec output, an HTTP redirect, an rsync module list) while the agent polls its own
// /status as a peer would; a local non-root user holding the admin socket; hostile
// HTTP clients (NUL in the path, no Host, hundreds of slow connections); and config
// files that are not configs.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/harness/agent_proc.h"
#include "tests/harness/servers.h"

using namespace pk_test;

namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

bool is_json(const std::string& body) { return !nlohmann::json::parse(body, nullptr, false).is_discarded(); }

// An agent whose nfs service also depends on `names` (tables in `tables`) and names the
// agent itself as its peer, so that it fetches its own /status every 500 ms as a peer
// would — the fetch that used to kill it.
void start_with_checks(AgentProc& a, const std::string& names, const std::string& tables) {
  std::string t = a.config_text();
  const std::string from = "checks = [\"nfs_ok\"]\n";
  t.replace(t.find(from), from.size(),
            "checks = [\"nfs_ok\", " + names + "]\npeers = [\"" + a.url() + "\"]\nmin_pooled = 0\n");
  a.write_config(t + tables);
  a.start();
}

// Waits until `check` has a result, then keeps reading /status and /events for
// several peer-poll cycles: every answer 200 and valid UTF-8 JSON, the agent up, and
// its own /status (fetched as a peer) parsed. Returns the check's last result.
nlohmann::json survive(AgentProc& a, const std::string& check) {
  nlohmann::json last;
  EXPECT_TRUE(wait_for([&] {
    auto r = a.get("/status");
    if (r.status != 200 || !is_json(r.body)) return false;
    last = nlohmann::json::parse(r.body)["checks"][check]["last"];
    return last.is_object();
  }, 10000ms, 50ms)) << a.log();
  auto end = Clock::now() + 2500ms;  // five peer polls
  int rounds = 0;
  while (Clock::now() < end && rounds < 100) {
    ++rounds;
    for (const char* path : {"/status", "/events"}) {
      auto r = a.get(path);
      EXPECT_EQ(r.status, 200) << path << ": " << r.error << "\n" << a.log();
      EXPECT_TRUE(is_json(r.body)) << path;
      if (r.status != 200) return last;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(a.running()) << a.log();
  auto s = a.status();
  EXPECT_EQ(s["peers"][0]["reachable"], true) << s["peers"].dump();
  EXPECT_EQ(a.log().find("terminate"), std::string::npos) << a.log();
  return s["checks"][check]["last"];
}

}  // namespace

TEST(BadBytes, ExecOutputThatIsNotUtf8) {
  AgentProc a("host1.example.org");
  start_with_checks(a, "\"latin1\"",
                    "[checks.latin1]\nkind = \"exec\"\ncommand = [\"/usr/bin/printf\", \"\\\\377 not utf-8\\\\n\"]\n"
                    "critical = false\n");
  auto last = survive(a, "latin1");
  EXPECT_EQ(last["reason"], kFFFD + " not utf-8");
}

TEST(BadBytes, NagiosLineCutInTheMiddleOfACharacter) {
  // 196 ASCII bytes, then "é" (bytes 196 and 197): a cut at byte 197 would split it.
  std::string line = std::string(196, 'a') + "\xC3\xA9" + " and more text";
  AgentProc a("host1.example.org");
  start_with_checks(a, "\"nagios\"",
                    "[checks.nagios]\nkind = \"exec\"\ncommand = [\"/bin/echo\", \"" + line + "\"]\n"
                    "critical = false\n");
  auto last = survive(a, "nagios");
  EXPECT_EQ(last["reason"], std::string(196, 'a') + "...");
}

TEST(BadBytes, HttpRedirectToBytesThatAreNotUtf8) {
  TempDir d;
  ::chmod(d.path().c_str(), 0755);
  std::filesystem::create_directories(d.file("root"));
  std::filesystem::create_directories(d.file("nginx/tmp"));
  Nginx nginx(d.file("nginx"), d.file("root"));
  nginx.set_extra("    location = /moved { return 302 \"http://127.0.0.1/caf\xe9/\xff\xfe\"; }\n");
  nginx.start();
  AgentProc a("host1.example.org");
  start_with_checks(a, "\"web\"",
                    "[checks.web]\nkind = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(nginx.port()) +
                        "/moved\"\ncritical = false\n");
  auto last = survive(a, "web");
  std::string reason = last.value("reason", "");
  EXPECT_EQ(reason.rfind("status 302 (redirect to http://127.0.0.1/caf", 0), 0u) << reason;
}

TEST(BadBytes, RsyncModuleNameThatIsNotUtf8) {
  TempDir d;
  std::filesystem::create_directories(d.file("data"));
  std::filesystem::create_directories(d.file("rsync"));
  RsyncDaemon rsyncd(d.file("rsync"), d.file("data"), "dumps\xff");
  rsyncd.start();
  AgentProc a("host1.example.org");
  start_with_checks(a, "\"mirror\"",
                    "[checks.mirror]\nkind = \"rsync\"\naddress = \"127.0.0.1:" + std::to_string(rsyncd.port()) +
                        "\"\nmodule = \"dumps\"\ncritical = false\n");
  auto last = survive(a, "mirror");
  EXPECT_EQ(last["reason"], "module dumps not listed");
  EXPECT_EQ(last["details"]["modules"], nlohmann::json::array({"dumps" + kFFFD}));
}

// ---- the admin socket ----

namespace {

// In a child that is uid/gid 65534 (nobody): keeps `want` connections to the admin
// socket open, sending nothing, and opens a new one whenever the agent closes one,
// until killed. Writes one byte to `ready` once it has tried them all. Only system
// calls after fork (the parent may have threads).
[[noreturn]] void hold_admin_slots(const char* path, int want, int ready) {
  if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
      ::setresuid(65534, 65534, 65534) != 0)
    ::_exit(3);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  constexpr int kMax = 64;
  int fds[kMax];
  if (want > kMax) want = kMax;
  auto open_one = [&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      fd = -1;
    }
    return fd;
  };
  for (int i = 0; i < want; ++i) fds[i] = open_one();
  char c = 'r';
  if (::write(ready, &c, 1) != 1) ::_exit(4);
  for (int round = 0; round < 100000; ++round) {  // ≈ 10 ms each: bounded by the test's kill
    pollfd p[kMax];
    for (int i = 0; i < want; ++i) p[i] = {fds[i], POLLIN, 0};
    ::poll(p, static_cast<nfds_t>(want), 10);
    for (int i = 0; i < want; ++i) {
      if (fds[i] >= 0 && p[i].revents == 0) continue;
      if (fds[i] >= 0) ::close(fds[i]);  // the agent answered (busy, or too slow) and closed
      fds[i] = open_one();
    }
  }
  ::_exit(0);
}

}  // namespace

TEST(AdminSocket, NonRootUserHoldingEverySlotCannotLockRootOut) {
  AgentProc a("host1.example.org");
  ::chmod(a.dir().path().c_str(), 0755);  // nobody must reach the socket (it is 0666)
  a.start();
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  std::string path = a.socket();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) hold_admin_slots(path.c_str(), 48, ready[1]);
  ::close(ready[1]);
  pollfd p{ready[0], POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  std::this_thread::sleep_for(300ms);  // the holder now sits on every slot it can get

  int ok = 0;
  std::string failures;
  for (int i = 0; i < 5; ++i) {
    for (const char* cmd : {"depool", "pool"}) {
      auto r = a.ctl({cmd, "nfs", "--reason", "round trip"});
      if (r.rc == 0) ++ok;
      else failures += std::string(cmd) + ": " + r.out;
    }
  }
  ::kill(child, SIGKILL);
  int st = 0;
  ::waitpid(child, &st, 0);
  EXPECT_TRUE(WIFSIGNALED(st)) << "holder exited early: " << st;  // 3/4: could not become nobody
  EXPECT_EQ(ok, 10) << failures;
  EXPECT_TRUE(a.running());
}

// ---- hostile HTTP clients ----

namespace {

std::string status_line(const std::string& reply) { return reply.substr(0, reply.find("\r\n")); }

}  // namespace

TEST(HostileHttp, ControlCharactersNulAndMissingHost) {
  AgentProc a("host1.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200, 10000ms)) << a.log();
  int port = std::stoi(a.url().substr(a.url().rfind(':') + 1));
  auto ask = [&](const std::string& bytes) { return status_line(raw_request(port, bytes)); };
  EXPECT_EQ(ask("GET /health/nfs HTTP/1.0\r\n\r\n"), "HTTP/1.1 200 OK");
  EXPECT_EQ(ask("GET /health/nfs%00junk HTTP/1.0\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(ask(std::string("GET /health/nfs\0junk HTTP/1.0\r\n\r\n", 35)), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(ask("GET /health/nfs%0d%0aSet-Cookie:x HTTP/1.0\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(ask("GET /health/nfs?x=%7f HTTP/1.0\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(ask("GET /health/nfs HTTP/1.1\r\nConnection: close\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(ask("GET /health/nfs HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), "HTTP/1.1 200 OK");
  // Keep-alive still works for a well-formed client (queued on the second call).
  // (Both ask /status, which is 200 whatever a check says on a loaded machine.)
  std::string two = raw_request(port, "GET /status HTTP/1.1\r\nHost: a\r\n\r\n"
                                      "GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  size_t first = two.find("HTTP/1.1 200 OK"), second = two.find("HTTP/1.1 200 OK", first + 1);
  EXPECT_NE(second, std::string::npos) << two;
  EXPECT_TRUE(a.running());
}

TEST(HostileHttp, SixHundredSlowConnectionsDoNotKeepTheLoadBalancerOut) {
  AgentProc a("host1.example.org");
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200, 10000ms)) << a.log();
  int port = std::stoi(a.url().substr(a.url().rfind(':') + 1));
  // 600 clients that connect, send half a request and then nothing.
  std::vector<int> slow;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 600; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);  // EINPROGRESS is fine
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(300ms);  // let the agent accept what it will
  for (int fd : slow) (void)!::send(fd, "GET /health HTTP/1.1\r\n", 22, MSG_NOSIGNAL);
  std::this_thread::sleep_for(200ms);
  // The load balancer's checks, each given 2 s (PyBal's default timeout is 5 s; before
  // eviction they waited for the slow clients' 10 s idle timeout).
  for (int i = 0; i < 5; ++i) {
    auto r = http_get(a.url() + "/health/nfs", 2000);
    EXPECT_EQ(r.status, 200) << "check " << i << ": " << r.error;
  }
  for (int fd : slow) ::close(fd);
  EXPECT_TRUE(a.running());
}

// ---- config files that are not configs ----

TEST(CheckConfig, RefusesFilesThatAreNotSmallRegularFiles) {
  TempDir d;
  std::string fifo = d.file("fifo"), huge = d.file("huge.toml");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  {
    int fd = ::open(huge.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 64 << 20), 0);  // 64 MiB of NULs (sparse)
    ::close(fd);
  }
  struct Case {
    std::string file, says;
  };
  for (const Case& c : {Case{"/dev/zero", "not a regular file (a device)"}, Case{fifo, "not a regular file (a FIFO)"},
                        Case{d.path(), "not a regular file (a directory)"},
                        Case{huge, "too large for a config (67108864 bytes; the limit is 1 MiB)"}}) {
    std::string out;
    auto start = Clock::now();
    int rc = run_command({POOLKEEPER_BIN, "--check-config", c.file}, &out, 10000ms);
    EXPECT_EQ(rc, 2) << c.file << ": " << out;
    EXPECT_EQ(out, c.file + ":0: " + c.says + "\n");
    EXPECT_LT(Clock::now() - start, 5s) << c.file;
  }
}

TEST(CheckConfig, RefusesZeroPaddedPortsUrlsWithNewlinesAndHostNames) {
  TempDir d;
  const std::string head = "[agent]\nlisten = \"127.0.0.1:9473\"\n[services.web]\nchecks = [\"c\"]\n[checks.c]\n";
  struct Case {
    std::string text, says;
  };
  for (const Case& c : {
           Case{"[agent]\nlisten = \"127.0.0.1:00000\"\n[services.web]\nchecks = [\"c\"]\n[checks.c]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n",
                ":2: agent.listen: \"127.0.0.1:00000\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:9473\""},
           Case{head + "kind = \"http\"\nurl = \"http://127.0.0.1/\\r\\nX: y\"\n",
                ":7: checks.c.url: must not contain spaces or control characters (encode them: %20)"},
           Case{head + "kind = \"nfs\"\nserver = \"nfs1.example.org\"\npath = \"/dumps/canary.txt\"\n",
                ":7: checks.c.server: \"nfs1.example.org\" must be a numeric address (IPv4, or IPv6 like \"::1\")"},
           Case{head + "kind = \"rsync\"\naddress = \"mirror.example.org:873\"\nmodule = \"dumps\"\n",
                ":7: checks.c.address: \"mirror.example.org:873\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:873\""},
       }) {
    write_file(d.file("c.toml"), c.text);
    std::string out;
    int rc = run_command({POOLKEEPER_BIN, "--check-config", d.file("c.toml")}, &out, 10000ms);
    EXPECT_EQ(rc, 2) << out;
    EXPECT_EQ(out, d.file("c.toml") + c.says + "\n");
  }
}

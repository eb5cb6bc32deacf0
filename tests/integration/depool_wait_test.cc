// `depool --wait` against a real nginx with held-open client connections: the live
// count (read from the kernel with sock_diag) falls to zero as the test closes them.
// Clients come from a network namespace of the test's own (documentation addresses
// only), as real clients come from other hosts: connections from the host's own
// addresses — the agent's kept-alive probes among them — are not clients.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "tests/harness/agent_proc.h"
#include "tests/harness/servers.h"

using namespace pk_test;

namespace {

// A namespace "client host" joined to this one by a veth pair: 203.0.113.(4k+1) here,
// 203.0.113.(4k+2) there.
class ClientNetns {
 public:
  ClientNetns() {
    int k = static_cast<int>(::getpid() % 60);
    ns_ = "pk-wait-" + std::to_string(::getpid());
    here_ = "203.0.113." + std::to_string(4 * k + 1);
    there_ = "203.0.113." + std::to_string(4 * k + 2);
    std::string veth = "pkw" + std::to_string(::getpid());
    std::string out;
    ok_ = run_command({"ip", "netns", "add", ns_}, &out) == 0;
    if (!ok_) {
      error_ = out;
      return;
    }
    made_ = true;
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", veth + "a", "type", "veth", "peer", "name", veth + "b", "netns", ns_},
             {"ip", "addr", "add", here_ + "/30", "dev", veth + "a"},
             {"ip", "link", "set", veth + "a", "up"},
             {"ip", "netns", "exec", ns_, "ip", "addr", "add", there_ + "/30", "dev", veth + "b"},
             {"ip", "netns", "exec", ns_, "ip", "link", "set", veth + "b", "up"},
             {"ip", "netns", "exec", ns_, "ip", "link", "set", "lo", "up"}}) {
      if (run_command(argv, &out) != 0) {
        ok_ = false;
        error_ = out;
        return;
      }
    }
    veth_ = veth + "a";
  }
  ~ClientNetns() {
    if (!veth_.empty()) run_command({"ip", "link", "delete", veth_}, nullptr);
    if (made_) run_command({"ip", "netns", "delete", ns_}, nullptr);
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& here() const { return here_; }

  // A keep-alive HTTP client from inside the namespace to here():port.
  int keepalive_client(int port) const {
    int self = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int theirs = ::open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
    int fd = -1;
    if (self >= 0 && theirs >= 0 && ::setns(theirs, CLONE_NEWNET) == 0) {
      fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      ::setns(self, CLONE_NEWNET);
    }
    if (self >= 0) ::close(self);
    if (theirs >= 0) ::close(theirs);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, here_.c_str(), &a.sin_addr);
    a.sin_port = htons(static_cast<uint16_t>(port));
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    std::string req = "GET /canary.txt HTTP/1.1\r\nHost: dumps.example.org\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[4096];
    ::recv(fd, buf, sizeof buf, 0);  // the answer; the connection stays open (keep-alive)
    return fd;
  }

 private:
  std::string ns_, here_, there_, veth_, error_;
  bool ok_ = false, made_ = false;
};

// An http check against nginx with keep-alive: the agent's own connection stays open.
std::string http_check(int port) {
  return "[checks.web]\nkind = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(port) +
         "/canary.txt\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\n";
}

}  // namespace

TEST(DepoolWaitTest, CountFallsToZeroAsClientsLeave) {
  ClientNetns net;
  ASSERT_TRUE(net.ok()) << "cannot make the client namespace: " << net.error();
  TempDir d;
  std::filesystem::create_directories(d.file("www"));
  std::filesystem::create_directories(d.file("nginx"));
  write_file(d.file("www/canary.txt"), "canary\n");
  Nginx nginx(d.file("nginx"), d.file("www"));
  nginx.set_extra("    listen " + net.here() + ":" + std::to_string(nginx.port()) + ";\n");
  nginx.start();
  AgentProc a("a.example.org", "", "", "port = " + std::to_string(nginx.port()) + "\n");
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200));
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(net.keepalive_client(nginx.port()));
  for (int fd : clients) ASSERT_GE(fd, 0);
  // A local keep-alive connection (like the agent's own probes) is not a client.
  int local = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  {
    sockaddr_in a4{};
    a4.sin_family = AF_INET;
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a4.sin_port = htons(static_cast<uint16_t>(nginx.port()));
    ASSERT_EQ(::connect(local, reinterpret_cast<sockaddr*>(&a4), sizeof a4), 0);
  }

  Process wait({POOLCTL_BIN, "--socket", a.socket(), "depool", "http", "--reason", "rolling restart",
                "--wait", "20s"},
               d.file("wait.out"));
  auto seen = [&](const std::string& text) {
    return wait_for([&] { return read_file(d.file("wait.out")).find(text) != std::string::npos; }, 5000ms);
  };
  ASSERT_TRUE(seen("clients left: http: 3")) << read_file(d.file("wait.out"));
  EXPECT_EQ(a.health("http"), 503);
  ::close(clients[0]);
  EXPECT_TRUE(seen("clients left: http: 2")) << read_file(d.file("wait.out"));
  ::close(clients[1]);
  EXPECT_TRUE(seen("clients left: http: 1")) << read_file(d.file("wait.out"));
  ::close(clients[2]);
  EXPECT_TRUE(seen("all clients gone after")) << read_file(d.file("wait.out"));
  auto rc = wait.wait(5000ms);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0);
  ::close(local);
  std::printf("%s", read_file(d.file("wait.out")).c_str());
}

// A quiet host: only the agent's own kept-alive probe connections reach nginx. `drain
// --wait` must not count them (it used to wait for ever).
TEST(DepoolWaitTest, QuietHostWithProbesRunningDrainsAtOnce) {
  TempDir d;
  std::filesystem::create_directories(d.file("www"));
  std::filesystem::create_directories(d.file("nginx"));
  write_file(d.file("www/canary.txt"), "canary\n");
  Nginx nginx(d.file("nginx"), d.file("www"));
  nginx.start();
  AgentProc a("a.example.org", "", "", "port = " + std::to_string(nginx.port()) + "\n");
  std::string cfg = a.config_text();
  cfg.replace(cfg.find("checks = [\"http_ok\"]"), std::string("checks = [\"http_ok\"]").size(),
              "checks = [\"http_ok\", \"web\"]");
  a.write_config(cfg + http_check(nginx.port()));
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200, 10000ms)) << a.log();
  // The agent's probe connection is established (keep-alive) while drain waits.
  std::string out;
  int rc = run_command({POOLCTL_BIN, "--socket", a.socket(), "drain", "http", "--wait", "5s"}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("all clients gone after"), std::string::npos) << out;
}

TEST(DepoolWaitTest, GivesUpAndSaysSoForNfs) {
  ClientNetns net;
  ASSERT_TRUE(net.ok()) << "cannot make the client namespace: " << net.error();
  TempDir d;
  std::filesystem::create_directories(d.file("www"));
  std::filesystem::create_directories(d.file("nginx"));
  Nginx nginx(d.file("nginx"), d.file("www"));
  nginx.set_extra("    listen " + net.here() + ":" + std::to_string(nginx.port()) + ";\n");
  nginx.start();
  // Pretend nginx's port is the NFS service's: a client that never leaves. The note
  // comes from the kind of the service's checks (an nfs check; nothing need answer it).
  AgentProc a("a.example.org", "", "port = " + std::to_string(nginx.port()) + "\n");
  std::string cfg = a.config_text();
  cfg.replace(cfg.find("checks = [\"nfs_ok\"]"), std::string("checks = [\"nfs_ok\"]").size(),
              "checks = [\"nfs_ok\", \"export\"]");
  a.write_config(cfg + "\n[checks.export]\nkind = \"nfs\"\nserver = \"127.0.0.1\"\nport = " +
                 std::to_string(free_port()) + "\npath = \"/export/canary.txt\"\n");
  a.start();
  int fd = net.keepalive_client(nginx.port());
  ASSERT_GE(fd, 0);
  std::string out;
  int rc = run_command({POOLCTL_BIN, "--socket", a.socket(), "depool", "nfs", "--wait", "1s"}, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("gave up after 1s: 1 client connection remain (nfs: 1)"), std::string::npos) << out;
  EXPECT_NE(out.find("NFS clients stay connected while they have the export mounted"), std::string::npos) << out;
  ::close(fd);
}

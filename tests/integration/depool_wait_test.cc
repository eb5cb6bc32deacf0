// `depool --wait` against a real nginx with held-open client connections: the live
// count (read from the kernel with sock_diag) falls to zero as the test closes them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "tests/harness/agent_proc.h"
#include "tests/harness/servers.h"

using namespace pk_test;

namespace {
int keepalive_client(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  std::string req = "GET /canary.txt HTTP/1.1\r\nHost: dumps.example.org\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  char buf[4096];
  ::recv(fd, buf, sizeof buf, 0);  // the answer; the connection stays open (keep-alive)
  return fd;
}
}  // namespace

TEST(DepoolWaitTest, CountFallsToZeroAsClientsLeave) {
  TempDir d;
  std::filesystem::create_directories(d.file("www"));
  std::filesystem::create_directories(d.file("nginx"));
  write_file(d.file("www/canary.txt"), "canary\n");
  Nginx nginx(d.file("nginx"), d.file("www"));
  nginx.start();
  AgentProc a("a.example.org", "", "", "port = " + std::to_string(nginx.port()) + "\n");
  a.start();
  ASSERT_TRUE(a.wait_health("http", 200));
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(keepalive_client(nginx.port()));
  for (int fd : clients) ASSERT_GE(fd, 0);

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
  std::printf("%s", read_file(d.file("wait.out")).c_str());
}

TEST(DepoolWaitTest, GivesUpAndSaysSoForNfs) {
  TempDir d;
  std::filesystem::create_directories(d.file("www"));
  std::filesystem::create_directories(d.file("nginx"));
  Nginx nginx(d.file("nginx"), d.file("www"));
  nginx.start();
  // Pretend nginx's port is the NFS service's: a client that never leaves.
  AgentProc a("a.example.org", "", "port = " + std::to_string(nginx.port()) + "\n");
  a.start();
  int fd = keepalive_client(nginx.port());
  ASSERT_GE(fd, 0);
  std::string out;
  int rc = run_command({POOLCTL_BIN, "--socket", a.socket(), "depool", "nfs", "--wait", "1s"}, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("gave up after 1s: 1 client connection remain (nfs: 1)"), std::string::npos) << out;
  EXPECT_NE(out.find("NFS clients stay connected while they have the export mounted"), std::string::npos) << out;
  ::close(fd);
}

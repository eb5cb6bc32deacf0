// A real HAProxy as the load balancer: two backends whose agent-check talks to two
// agents' responders. HAProxy's `show servers state` shows each state we report.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include <signal.h>

#include "tests/harness/agent_proc.h"
#include "tests/harness/haproxy.h"
#include "tests/harness/servers.h"

using namespace pk_test;

namespace {

// From `show servers state`: the dumps backend's servers by name.
std::map<std::string, HaproxyServer> servers_state(const std::string& sock) {
  return parse_servers_state(unix_socket_request(sock, "show servers state dumps"))["dumps"];
}

// From `show stat` (CSV, columns named by its "# pxname,svname,..." header): the
// server's row as column name → value; empty when the server is not there.
std::map<std::string, std::string> stat_row(const std::string& csv, const std::string& px, const std::string& sv) {
  std::istringstream in(csv);
  std::string line;
  std::vector<std::string> names;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::string f;
    std::istringstream ls(l);
    while (std::getline(ls, f, ',')) out.push_back(f);
    return out;
  };
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      names = split(line.substr(2));
      continue;
    }
    auto f = split(line);
    if (f.size() < 2 || f[0] != px || f[1] != sv) continue;
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < f.size() && i < names.size(); ++i) row[names[i]] = f[i];
    return row;
  }
  return {};
}

}  // namespace

TEST(HaproxyAgentTest, ShowServersStateFollowsWhatWeReport) {
  TempDir d;
  for (const char* s : {"www", "nginx"}) std::filesystem::create_directories(d.file(s));
  write_file(d.file("www/index.html"), "ok\n");
  Nginx nginx(d.file("nginx"), d.file("www"));
  nginx.start();
  int port_a = free_port(), port_b = free_port();
  AgentProc a("a.example.org", "\n[haproxy_agent]\nlisten = \"127.0.0.1:" + std::to_string(port_a) + "\"\n");
  AgentProc b("b.example.org", "\n[haproxy_agent]\nlisten = \"127.0.0.1:" + std::to_string(port_b) + "\"\n");
  {  // b drains for 3 s on SIGTERM, long enough for HAProxy to hear "down"
    std::string cfg = b.config_text();
    cfg.replace(cfg.find("drain_seconds = 0"), 17, "drain_seconds = 3");
    b.write_config(cfg);
  }
  a.start();
  b.start();
  ASSERT_TRUE(a.wait_health("http", 200));
  ASSERT_TRUE(b.wait_health("http", 200));
  std::string sock = d.file("haproxy.sock");
  auto server = [&](const std::string& name, int agent_port) {
    return "  server " + name + " 127.0.0.1:" + std::to_string(nginx.port()) +
           " check inter 200ms agent-check agent-port " + std::to_string(agent_port) +
           " agent-inter 200ms agent-send \"http\\n\"\n";
  };
  write_file(d.file("haproxy.cfg"),
             "global\n  stats socket " + sock + " mode 600 level admin\n"
             "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
             "frontend fe\n  bind 127.0.0.1:" + std::to_string(free_port()) + "\n  default_backend dumps\n"
             "backend dumps\n" + server("a", port_a) + server("b", port_b));
  Process haproxy({"haproxy", "-f", d.file("haproxy.cfg"), "-db"}, d.file("haproxy.log"));
  auto state_of = [&](const std::string& srv) { return servers_state(sock)[srv]; };
  auto wait_state = [&](const std::string& srv, int op, int admin, int uweight = -1) {
    bool ok = wait_for([&] {
      auto s = state_of(srv);
      return s.op == op && s.admin == admin && (uweight < 0 || s.uweight == uweight);
    }, 5000ms, 50ms);
    auto s = state_of(srv);
    EXPECT_TRUE(ok) << srv << ": op " << s.op << " admin " << s.admin << " uweight " << s.uweight << "\n"
                    << unix_socket_request(sock, "show servers state dumps") << read_file(d.file("haproxy.log"));
    return ok;
  };
  // up ready 100%: running (op 2), no admin flags.
  wait_state("a", 2, 0, 1);
  wait_state("b", 2, 0, 1);
  // "drain" → forced drain (SRV_ADMF_FDRAIN = 0x08): no new clients, running.
  ASSERT_EQ(a.ctl({"drain", "http"}).rc, 0);
  wait_state("a", 2, 0x08);
  // "maint #disk swap" → forced maintenance (SRV_ADMF_FMAINT = 0x01).
  ASSERT_EQ(a.ctl({"depool", "http", "--reason", "disk swap"}).rc, 0);
  wait_state("a", 0, 0x01);
  wait_state("b", 2, 0);  // the other backend untouched
  ASSERT_EQ(a.ctl({"pool", "http"}).rc, 0);
  wait_state("a", 2, 0);
  // "down #check http_ok unhealthy: …" → stopped (op 0).
  b.set_ok("http", false);
  ASSERT_TRUE(b.wait_health("http", 503));
  std::string said = raw_request(port_b, "http\n");
  EXPECT_EQ(said.rfind("down #check http_ok unhealthy", 0), 0u) << said;
  EXPECT_EQ(said.find('\n'), said.size() - 1) << said;  // one line
  wait_state("b", 0, 0);
  std::string csv = unix_socket_request(sock, "show stat");
  auto row_b = stat_row(csv, "dumps", "b");
  auto row_a = stat_row(csv, "dumps", "a");
  ASSERT_FALSE(row_b.empty()) << csv;
  EXPECT_EQ(row_b["status"].rfind("DOWN", 0), 0u) << csv;
  EXPECT_EQ(row_a["status"].rfind("UP", 0), 0u) << csv;  // the other one keeps serving
  b.set_ok("http", true);
  wait_state("b", 2, 0);
  // Stopping → "down #stopping" while it drains.
  b.signal(SIGTERM);
  wait_state("b", 0, 0);
  EXPECT_NE(read_file(d.file("haproxy.log")).find("Server dumps/b is DOWN, reason: Layer7 wrong status, code: 0, info: \"via agent : down (stopping)\""),
            std::string::npos) << read_file(d.file("haproxy.log"));
}

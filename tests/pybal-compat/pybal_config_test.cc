#include "pybal-compat/pybal_config.h"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace poolkeeper;

TEST(PybalConfigTest, StanzasPerService) {
  PybalInput in{"clouddumps1001.example.org", "https://etcd1001.example.org:2379", "/conftool/v1/pools/eqiad/dumps",
                {{"http", "198.51.100.10", 80, "dumps.example.org", false, {}, Balancing::kHttp},
                 {"nfs", "198.51.100.10", 2049, "", true, {}, Balancing::kPinned},
                 {"rsync", "198.51.100.10", 873, "", false, {}}}};
  std::string out = render_pybal_config(in);
  EXPECT_NE(out.find("[dumps_http_80]\nprotocol = tcp\nip = 198.51.100.10\nport = 80\n"
                     "config = etcd://etcd1001.example.org:2379/conftool/v1/pools/eqiad/dumps/http\n"),
            std::string::npos) << out;
  EXPECT_NE(out.find("ProxyFetch.url = [ 'http://dumps.example.org/pybal-health/http' ]"), std::string::npos);
  EXPECT_NE(out.find("[dumps_nfs_2049]"), std::string::npos);
  EXPECT_NE(out.find("scheduler = sh\nmonitors = [ ]\n"), std::string::npos);
  EXPECT_NE(out.find("net.ipv4.vs.expire_nodest_conn = 1"), std::string::npos) << out;
  EXPECT_NE(out.find("best quiesced (weight 0, with the\n# scheduler's fallback flag"), std::string::npos) << out;
  EXPECT_NE(out.find("monitors = [ 'IdleConnection' ]"), std::string::npos);
  EXPECT_NE(out.find("#     clouddumps1001.example.org: [http, nfs, rsync]"), std::string::npos);
}

TEST(PybalConfigTest, EscapesForConfigParser) {
  EXPECT_EQ(pybal_escape("a%b%%c"), "a%%b%%%%c");
  PybalInput in{"h1", "http://e:2379", "/conftool/v1/pools/eqiad/dumps", {{"http", "192.0.2.1", 80, "d%ump's", false, {}, Balancing::kHttp}}};
  std::string out = render_pybal_config(in);
  EXPECT_NE(out.find("ProxyFetch.url = [ 'http://d%%ump\\'s/pybal-health/http' ]"), std::string::npos) << out;
}

// What a service gets follows from the kinds of its checks (Balancing), never from its
// name or port.
TEST(PybalConfigTest, BalancingComesFromTheChecksNotTheName) {
  PybalInput in{"h1", "http://e:2379", "/conftool/v1/pools/eqiad/dumps",
                {{"nfs", "192.0.2.1", 2049, "", false, {}},
                 {"files", "192.0.2.1", 3049, "", false, {}, Balancing::kPinned},
                 {"web", "192.0.2.1", 8080, "", false, {}, Balancing::kHttp}}};
  std::string out = render_pybal_config(in);
  auto stanza = [&](const std::string& head) {
    size_t at = out.find(head);
    return at == std::string::npos ? std::string() : out.substr(at, out.find("\n\n", at) - at);
  };
  std::string nfs = stanza("[dumps_nfs_2049]"), files = stanza("[dumps_files_3049]"), web = stanza("[dumps_web_8080]");
  EXPECT_NE(nfs.find("monitors = [ 'IdleConnection' ]"), std::string::npos) << out;
  EXPECT_NE(nfs.find("scheduler = wrr"), std::string::npos) << out;
  EXPECT_NE(files.find("scheduler = sh\nmonitors = [ ]"), std::string::npos) << out;
  EXPECT_NE(web.find("ProxyFetch.url = [ 'http://h1/pybal-health/web' ]"), std::string::npos) << out;
  in.agent_port = 9474;
  std::string haproxy = render_haproxy_config(in);
  EXPECT_NE(haproxy.find("backend files\n    mode tcp\n    # NFS"), std::string::npos) << haproxy;
  EXPECT_NE(haproxy.find("backend nfs\n    mode tcp\n    balance leastconn\n"), std::string::npos) << haproxy;
}

TEST(PybalConfigTest, NamesWhatIsMissing) {
  PybalInput in{"h1", "http://e:2379", "/conftool/v1/pools/eqiad/dumps", {{"http", "", 80, "", false, {}}}};
  try {
    render_pybal_config(in);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "service http: no service IP (add a kind = \"vip\" check to services.http.checks)");
  }
  in.services[0].ip = "192.0.2.1";
  in.services[0].port = 0;
  EXPECT_THROW(render_pybal_config(in), std::runtime_error);
  in.prefix = "";
  EXPECT_THROW(render_pybal_config(in), std::runtime_error);
}

namespace {
PybalInput dumps_pair() {
  return PybalInput{"clouddumps1001.example.org", "https://etcd1001.example.org:2379", "/conftool/v1/pools/eqiad/dumps",
                    {{"http", "198.51.100.10", 443, "dumps.example.org", false, {"clouddumps1002.example.org"}, Balancing::kHttp},
                     {"nfs", "198.51.100.10", 2049, "", true, {"clouddumps1002.example.org"}, Balancing::kPinned},
                     {"rsync", "198.51.100.10", 873, "", false, {"clouddumps1002.example.org"}}},
                    9474};
}
}  // namespace

TEST(ServiceCatalogTest, NfsGetsMhAndNoMonitorSayingWhy) {
  std::string out = render_service_catalog(dumps_pair());
  EXPECT_NE(out.find("best quiesced (weight 0, with the scheduler's fallback\n# flag: -b mh-fallback)"), std::string::npos) << out;
  size_t nfs = out.find("  dumps-nfs:\n");
  ASSERT_NE(nfs, std::string::npos) << out;
  std::string entry = out.substr(nfs, out.find("  dumps-rsync:\n") - nfs);
  EXPECT_NE(entry.find("      conftool:\n        cluster: \"dumps\"\n        service: \"nfs\"\n"), std::string::npos) << entry;
  EXPECT_NE(entry.find("Liberica accepts only mh."), std::string::npos) << entry;
  EXPECT_NE(entry.find("expire_nodest_conn = 1: a depooled host's NFS connections then\n"
                       "      # move at once (0.02 s) instead of stalling ~18 s.\n      scheduler: mh\n"),
            std::string::npos) << entry;
  EXPECT_NE(entry.find("would depool a host holding its\n"), std::string::npos) << entry;
  EXPECT_NE(entry.find("      monitors: {}\n"), std::string::npos) << entry;
  EXPECT_EQ(entry.find("IdleConnection:"), std::string::npos) << entry;
  EXPECT_NE(entry.find("    port: 2049\n"), std::string::npos) << entry;
  EXPECT_NE(out.find("        ProxyFetch:\n          url:\n            - \"https://dumps.example.org/pybal-health/http\"\n"),
            std::string::npos) << out;
  EXPECT_NE(out.find("        IdleConnection:\n          max-delay: 300\n          timeout-clean-reconnect: 3\n"),
            std::string::npos) << out;
  PybalInput no_conftool = dumps_pair();
  no_conftool.prefix = "";
  EXPECT_THROW(render_service_catalog(no_conftool), std::runtime_error);
}

TEST(HaproxyConfigTest, BackendPerServiceWithAgentCheckForEveryHost) {
  std::string out = render_haproxy_config(dumps_pair());
  EXPECT_NE(out.find("backend nfs\n    mode tcp\n"), std::string::npos) << out;
  EXPECT_NE(out.find("    balance source\n"), std::string::npos) << out;
  EXPECT_NE(out.find("agent-check agent-port 9474 agent-inter 2s agent-send \"nfs\\n\"\n"), std::string::npos) << out;
  EXPECT_NE(out.find("    server clouddumps1001 clouddumps1001.example.org:2049\n"
                     "    server clouddumps1002 clouddumps1002.example.org:2049\n"),
            std::string::npos) << out;
  PybalInput no_agent = dumps_pair();
  no_agent.agent_port = 0;
  EXPECT_THROW(render_haproxy_config(no_agent), std::runtime_error);
}

// `peers` holds agent URLs; the load balancer needs the host at the service's port.
TEST(HaproxyConfigTest, PeerServerIsTheUrlsHostAtTheServicePort) {
  EXPECT_EQ(url_host("http://clouddumps1002.example.org:9473"), "clouddumps1002.example.org");
  EXPECT_EQ(url_host("http://clouddumps1002.example.org:9473/health"), "clouddumps1002.example.org");
  EXPECT_EQ(url_host("https://user:pw@clouddumps1002.example.org/"), "clouddumps1002.example.org");
  EXPECT_EQ(url_host("http://192.0.2.2:9473"), "192.0.2.2");
  EXPECT_EQ(url_host("http://[2001:db8::2]:9473"), "2001:db8::2");
  PybalInput in = dumps_pair();
  in.services.resize(1);
  in.services[0].peer_hosts = {url_host("http://clouddumps1002.example.org:9473"), url_host("http://[2001:db8::2]:9473")};
  std::string out = render_haproxy_config(in);
  EXPECT_NE(out.find("    server clouddumps1002 clouddumps1002.example.org:" + std::to_string(in.services[0].port) + "\n"),
            std::string::npos) << out;
  EXPECT_NE(out.find(" [2001:db8::2]:" + std::to_string(in.services[0].port) + "\n"), std::string::npos) << out;
  EXPECT_EQ(out.find(":9473"), std::string::npos) << out;
}

#include "agent/config/config.h"

#include <gtest/gtest.h>

#include "checks/check.h"

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {

const char* kGood = R"(
[agent]
listen = "127.0.0.1:9473"
hostname = "clouddumps1001.example.org"
drain_seconds = 3

[services.http]
checks = ["web", "disk"]
port = 80
[services.rsync]
checks = ["disk"]

[checks.web]
kind = "exec"
command = ["/bin/true"]
interval = "2s"
timeout = "1s"
rise = 2
fall = 2

[checks.disk]
kind = "exec"
command = ["/bin/true"]
critical = false
)";

std::string error_of(const std::string& text) {
  try {
    parse_config(text, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ConfigTest, ParsesTheSchema) {
  Config c = parse_config(kGood, "test.toml");
  EXPECT_EQ(c.agent.hostname, "clouddumps1001.example.org");
  EXPECT_EQ(c.agent.drain_seconds, 3);
  EXPECT_EQ(c.agent.stop_action, "auto");  // systemd decides
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services.at("http").checks, (std::vector<std::string>{"web", "disk"}));
  EXPECT_EQ(c.services.at("http").port, 80);
  EXPECT_EQ(c.services.at("http").min_pooled, 1);
  const CheckConfig& web = c.checks.at("web");
  EXPECT_EQ(web.interval, Duration(2s));
  EXPECT_EQ(web.timeout, Duration(1s));
  EXPECT_EQ(web.rise, 2);
  EXPECT_TRUE(web.critical);
  const CheckConfig& disk = c.checks.at("disk");
  EXPECT_EQ(disk.interval, Duration(1s));
  EXPECT_EQ(disk.timeout, Duration(500ms));
  EXPECT_EQ(disk.fast_interval, Duration(200ms));
  EXPECT_EQ(disk.rise, 3);
  EXPECT_EQ(disk.fall, 2);
  EXPECT_FALSE(disk.critical);
  ASSERT_TRUE(disk.check);
}

// A check carries its kind's traits from the registry; a service's kind is the first of
// its checks that speaks a protocol, whatever the service is called.
TEST(ConfigTest, ChecksCarryTheirKindsTraits) {
  Config c = parse_config(R"(
[services.http]
checks = ["lvs", "export", "web"]
[checks.lvs]
kind = "vip"
addresses = ["198.51.100.10"]
[checks.export]
kind = "nfs"
path = "/dumps/canary.txt"
[checks.web]
kind = "http"
url = "http://127.0.0.1/"
host = "dumps.example.org"
)", "test.toml");
  EXPECT_EQ(c.checks.at("export").traits.balancing, Balancing::kPinned);
  ASSERT_TRUE(c.checks.at("export").traits.identity);
  EXPECT_EQ(c.checks.at("export").traits.identity({{"root_fh", "aa"}, {"fh", "bb"}}), "aa/bb");
  EXPECT_EQ(c.checks.at("export").traits.identity({{"root_fh", "aa"}}), "");  // no canary handle: unknown
  EXPECT_EQ(c.checks.at("export").traits.identity({{"fh", 3}}), "");         // a peer's garbage: unknown
  EXPECT_FALSE(c.checks.at("web").traits.identity);
  EXPECT_EQ(c.checks.at("lvs").check->service_address(), "198.51.100.10");
  EXPECT_EQ(c.checks.at("web").check->health_host(), "dumps.example.org");
  EXPECT_EQ(c.checks.at("export").check->service_address(), "");
  const CheckKind* kind = service_kind({"vip", "nfs", "http"});
  ASSERT_TRUE(kind);
  EXPECT_EQ(kind->traits.balancing, Balancing::kPinned);
  EXPECT_FALSE(kind->traits.clients_note.empty());
  kind = service_kind({"exec", "http", "nfs"});
  ASSERT_TRUE(kind);
  EXPECT_EQ(kind->traits.balancing, Balancing::kHttp);
  EXPECT_FALSE(service_kind({"vip", "exec"}));
  EXPECT_EQ(service_kind({"rsync", "nfs"})->traits.balancing, Balancing::kTcp);
}

TEST(ConfigTest, TypoedKeyNamesFileLineAndKey) {
  std::string text = kGood;
  text.replace(text.find("rise = 2"), 8, "rsie = 2");
  EXPECT_EQ(error_of(text), "test.toml:18: checks.web.rsie: unknown key");
}

TEST(ConfigTest, UnknownTopLevelAndAgentKeys) {
  EXPECT_EQ(error_of(std::string(kGood) + "\n[agnet]\nx = 1\n"), "test.toml:26: agnet: unknown key");
  std::string text = kGood;
  text.replace(text.find("drain_seconds"), 13, "drain_secs");
  EXPECT_EQ(error_of(text), "test.toml:5: agent.drain_secs: unknown key");
}

TEST(ConfigTest, ServiceNamingMissingCheck) {
  std::string text = kGood;
  text.replace(text.find("[\"disk\"]\n\n"), 8, "[\"dsik\"]");
  EXPECT_EQ(error_of(text), "test.toml:11: services.rsync.checks: no check named \"dsik\" ([checks.dsik])");
}

TEST(ConfigTest, BadValues) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string t = kGood;
    t.replace(t.find(from), from.size(), to);
    return error_of(t);
  };
  EXPECT_EQ(with("interval = \"2s\"", "interval = \"2\""),
            "test.toml:16: checks.web.interval: missing unit in \"2\" (use ms, s, m, h or d)");
  EXPECT_EQ(with("interval = \"2s\"", "interval = 2"),
            "test.toml:16: checks.web.interval: must be a duration string such as \"500ms\" or \"2s\"");
  EXPECT_EQ(with("rise = 2", "rise = 0"), "test.toml:18: checks.web.rise: must be between 1 and 1000, not 0");
  EXPECT_EQ(with("timeout = \"1s\"", "timeout = \"3s\""),
            "test.toml:17: checks.web.timeout: must not be longer than interval (2s)");
  EXPECT_EQ(with("kind = \"exec\"\ncommand = [\"/bin/true\"]\ninterval", "kind = \"ecex\"\ninterval"),
            "test.toml:14: checks.web.kind: unknown kind \"ecex\" (known: exec, http, nfs, rsync, vip)");
  EXPECT_EQ(with("command = [\"/bin/true\"]\ninterval", "interval"),
            "test.toml:13: checks.web.command: is required (a list: program and its arguments)");
  EXPECT_EQ(with("127.0.0.1:9473", "127.0.0.1"),
            "test.toml:3: agent.listen: \"127.0.0.1\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:9473\"");
  EXPECT_EQ(with("port = 80", "port = 80000"),
            "test.toml:9: services.http.port: must be between 1 and 65535, not 80000");
  // Capped well under the unit's TimeoutStopSec.
  EXPECT_EQ(with("interval = \"2s\"\ntimeout = \"1s\"", "interval = \"2m\"\ntimeout = \"31s\""),
            "test.toml:17: checks.web.timeout: must be between 1ms and 30s");
  EXPECT_EQ(with("drain_seconds = 3", "drain_seconds = 3\nstop_action = \"restart\""),
            "test.toml:6: agent.stop_action: must be \"auto\", \"drain\" or \"keep\"");
}

TEST(ConfigTest, SyntaxErrorNamesLine) {
  std::string e = error_of("[agent]\nlisten = \"x\n");
  EXPECT_EQ(e.rfind("test.toml:2: ", 0), 0u) << e;
}

TEST(ConfigTest, NeedsAService) {
  EXPECT_EQ(error_of("[agent]\nhostname = \"a\"\n"),
            "test.toml:1: services: at least one [services.NAME] table is required");
}

TEST(ConfigTest, MissingFile) {
  try {
    load_config("/nonexistent/poolkeeper.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/poolkeeper.toml:0: cannot open: No such file or directory");
  }
}

TEST(ConfigTest, SplitHostPort) {
  std::string h;
  int p;
  EXPECT_TRUE(split_host_port("127.0.0.1:9473", &h, &p));
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 9473);
  EXPECT_TRUE(split_host_port("[::1]:80", &h, &p));
  EXPECT_EQ(h, "::1");
  EXPECT_FALSE(split_host_port("::1:80", &h, &p));
  EXPECT_FALSE(split_host_port("host:", &h, &p));
  EXPECT_FALSE(split_host_port("host:99999", &h, &p));
  EXPECT_FALSE(split_host_port("host:8x", &h, &p));
}

TEST(ConfigTest, PortsWithLeadingZerosAndHostNamesAreRefused) {
  std::string h;
  int p;
  EXPECT_FALSE(split_host_port("127.0.0.1:00000", &h, &p));
  EXPECT_FALSE(split_host_port("127.0.0.1:0873", &h, &p));
  EXPECT_TRUE(split_host_port("127.0.0.1:0", &h, &p));  // listening: any free port
  EXPECT_FALSE(split_host_port("dumps.example.org:9473", &h, &p));
  EXPECT_TRUE(split_host_port("localhost:9473", &h, &p));
  auto with = [](const std::string& from, const std::string& to) {
    std::string t = kGood;
    t.replace(t.find(from), from.size(), to);
    return error_of(t);
  };
  EXPECT_EQ(with("127.0.0.1:9473", "127.0.0.1:00000"),
            "test.toml:3: agent.listen: \"127.0.0.1:00000\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:9473\"");
  EXPECT_EQ(with("127.0.0.1:9473", "clouddumps1001.example.org:9473").rfind("test.toml:3: agent.listen: ", 0), 0u);
  // The keys the README calls numeric: nfs server, rsync address, haproxy_agent listen.
  auto check = [&](const std::string& table) {
    return with("[checks.disk]", table + "\n[checks.disk]");
  };
  EXPECT_EQ(check("[checks.nfs]\nkind = \"nfs\"\nserver = \"nfs.example.org\"\npath = \"/dumps/c\""),
            "test.toml:23: checks.nfs.server: \"nfs.example.org\" must be a numeric address (IPv4, or IPv6 like \"::1\")");
  EXPECT_EQ(check("[checks.r]\nkind = \"rsync\"\naddress = \"mirror.example.org:873\"\nmodule = \"dumps\""),
            "test.toml:23: checks.r.address: \"mirror.example.org:873\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:873\"");
  EXPECT_EQ(error_of(std::string(kGood) + "[haproxy_agent]\nlisten = \"lb.example.org:9474\"\n"),
            "test.toml:26: haproxy_agent.listen: \"lb.example.org:9474\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:9474\"");
  EXPECT_EQ(check("[checks.n6]\nkind = \"nfs\"\nserver = \"[::1]\"\npath = \"/dumps/c\""), "");
  // The NFS minor version: 0, 1 or 2, or left out for the highest the server has.
  EXPECT_EQ(check("[checks.n41]\nkind = \"nfs\"\npath = \"/dumps/c\"\nminor_version = 1"), "");
  EXPECT_EQ(check("[checks.n43]\nkind = \"nfs\"\npath = \"/dumps/c\"\nminor_version = 3"),
            "test.toml:24: checks.n43.minor_version: must be between 0 and 2, not 3");
}

TEST(ConfigTest, UrlsWithControlCharactersAreRefused) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string t = kGood;
    t.replace(t.find(from), from.size(), to);
    return error_of(t);
  };
  EXPECT_EQ(with("[checks.disk]", "[checks.h]\nkind = \"http\"\nurl = \"http://127.0.0.1/\\r\\nX-Evil: 1\"\n[checks.disk]"),
            "test.toml:23: checks.h.url: must not contain spaces or control characters (encode them: %20)");
  EXPECT_EQ(with("[checks.disk]", "[checks.h]\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\nhost = \"a\\u0000b\"\n[checks.disk]"),
            "test.toml:24: checks.h.host: must not contain control characters");
  EXPECT_EQ(with("port = 80", "port = 80\npeers = [\"http://127.0.0.1:9473\\n\"]"),
            "test.toml:10: services.http.peers: \"http://127.0.0.1:9473\n\" must be an http:// or https:// URL of a "
            "peer's agent (no spaces or control characters)");
  EXPECT_EQ(error_of(std::string(kGood) + "[conftool]\nendpoints = [\"http://127.0.0.1:2379 x\"]\nprefix = \"/c\"\n"),
            "test.toml:26: conftool.endpoints: \"http://127.0.0.1:2379 x\" must be an http:// or https:// URL (no "
            "spaces or control characters)");
}

TEST(ConfigTest, TextThatIsNotUtf8IsRefusedByTheParser) {
  // toml++ checks the encoding: a config string can be trusted to be UTF-8.
  std::string e = error_of(std::string(kGood) + "# caf\xe9\n");
  EXPECT_EQ(e.rfind("test.toml:25: ", 0), 0u) << e;
  e = error_of("[agent]\nhostname = \"h\xff\"\n");
  EXPECT_EQ(e.rfind("test.toml:2: ", 0), 0u) << e;
}

TEST(ConfigTest, MissingRequiredKeyPointsAtItsTypo) {
  std::string text = kGood;
  text.replace(text.find("command = [\"/bin/true\"]\ninterval"), 7, "comand ");
  EXPECT_EQ(error_of(text),
            "test.toml:13: checks.web.command: is required (a list: program and its arguments) "
            "(found \"comand\" at line 15: a typo?)");
}

TEST(ConfigTest, AChecksSystemdUnit) {
  auto with = [](const std::string& unit_line) {
    std::string t = kGood;
    t.replace(t.find("rise = 2"), 8, "rise = 2\n" + unit_line);
    return t;
  };
  Config c = parse_config(with("unit = \"nginx.service\""), "test.toml");
  EXPECT_EQ(c.checks.at("web").unit, "nginx.service");
  EXPECT_EQ(c.checks.at("disk").unit, "");
  EXPECT_EQ(parse_config(with("unit = \"getty@tty1.service\""), "test.toml").checks.at("web").unit, "getty@tty1.service");
  // Not the probe's target: a reload that only names a unit keeps the check's state.
  EXPECT_EQ(c.checks.at("web").fingerprint, parse_config(kGood, "test.toml").checks.at("web").fingerprint);
  for (const char* bad : {"nginx", "nginx.servce", ".service", "ngi nx.service", "a@b@c.service", "@x.service"})
    EXPECT_EQ(error_of(with("unit = \"" + std::string(bad) + "\"")),
              "test.toml:19: checks.web.unit: \"" + std::string(bad) +
                  "\" is not a systemd unit name (e.g. \"nginx.service\")");
  EXPECT_EQ(error_of(with("unit = 3")), "test.toml:19: checks.web.unit: must be a string");
}

#include "pybal-compat/conftool_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

using namespace poolkeeper;

namespace {
std::string error_of(const std::string& table, const std::string& file = "t.toml") {
  auto t = toml::parse(table, file);
  TableReader r(*t["conftool"].as_table(), file, "conftool");
  try {
    parse_conftool_config(r, file);
    r.finish();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(ConftoolConfigTest, Valid) {
  auto t = toml::parse("[conftool]\nendpoints = [\"http://127.0.0.1:2379/\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n");
  TableReader r(*t["conftool"].as_table(), "t.toml", "conftool");
  ConftoolConfig c = parse_conftool_config(r, "t.toml");
  EXPECT_EQ(c.endpoints[0], "http://127.0.0.1:2379");
  EXPECT_EQ(c.lock_prefix, "/poolkeeper/locks");
  EXPECT_EQ(c.peer_dead_after, std::chrono::seconds(30));
  EXPECT_FALSE(c.create_missing);
}

TEST(ConftoolConfigTest, LocksNeverInsideThePoolsTree) {
  EXPECT_EQ(error_of("[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n"
                     "lock_prefix = \"/conftool/v1/pools/eqiad/dumps/locks\"\n"),
            "t.toml:4: conftool.lock_prefix: must be outside the pools tree (\"/conftool/v1/pools/eqiad/dumps\"): "
            "PyBal would read a lock there as a host");
  EXPECT_NE(error_of("[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n"
                     "lock_prefix = \"/conftool\"\n"),
            "");
}

TEST(ConftoolConfigTest, SecretsMustNotBeWorldReadable) {
  char path[] = "/tmp/pk-pw-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "s3cret\n", 7), 7);
  ::close(fd);
  ::chmod(path, 0644);
  std::string base = "[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/p/x\"\nusername = \"pk\"\n";
  EXPECT_EQ(error_of(base + "password_file = \"" + path + "\"\n"),
            "t.toml:5: conftool.password_file: others can read " + std::string(path) + " (chmod o-r)");
  ::chmod(path, 0600);
  EXPECT_EQ(error_of(base + "password_file = \"" + path + "\"\n"), "");
  // An inline password in a config others can read.
  ::chmod(path, 0644);
  EXPECT_EQ(error_of(base + "password = \"x\"\n", path),
            std::string(path) + ":5: conftool.password: the config holds a password but others can read " + path + " (chmod o-r)");
  EXPECT_EQ(error_of("[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/p/x\"\npassword = \"x\"\n", "/nonexistent.toml"),
            "/nonexistent.toml:1: conftool.username: is required with a password");
  std::remove(path);
}

// --check-config on a fresh host: the secret is not deployed yet. Noted, naming the
// place, not an error; the daemon (kRead) still refuses.
TEST(ConftoolConfigTest, MissingPasswordFileIsNotedWhenSecretsAreReadIfPresent) {
  auto t = toml::parse("[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/p/x\"\nusername = \"pk\"\n"
                       "password_file = \"/nonexistent/etcd-password\"\n");
  TableReader r(*t["conftool"].as_table(), "t.toml", "conftool");
  ConftoolConfig c = parse_conftool_config(r, "t.toml", Secrets::kIfPresent);
  EXPECT_EQ(c.unread_secret, "t.toml:5: conftool.password_file: cannot read /nonexistent/etcd-password");
  EXPECT_EQ(c.password, "");
  TableReader r2(*t["conftool"].as_table(), "t.toml", "conftool");
  EXPECT_THROW(parse_conftool_config(r2, "t.toml", Secrets::kRead), ConfigError);
}

TEST(ConftoolConfigTest, LivenessKeysBesideTheLocksByDefault) {
  auto t = toml::parse("[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n");
  TableReader r(*t["conftool"].as_table(), "t.toml", "conftool");
  ConftoolConfig c = parse_conftool_config(r, "t.toml");
  EXPECT_EQ(c.liveness_prefix, "/poolkeeper/alive");
  EXPECT_EQ(c.depooled_prefix, "/poolkeeper/depooled");  // who took a peer out: one grant on /poolkeeper
  EXPECT_EQ(c.liveness_ttl, std::chrono::seconds(10));
  auto t2 = toml::parse("[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/p/x\"\nlock_prefix = \"/ops/pk/locks\"\n"
                        "liveness_ttl = \"3s\"\n");
  TableReader r2(*t2["conftool"].as_table(), "t.toml", "conftool");
  c = parse_conftool_config(r2, "t.toml");
  EXPECT_EQ(c.liveness_prefix, "/ops/pk/alive");
  EXPECT_EQ(c.depooled_prefix, "/ops/pk/depooled");
  EXPECT_EQ(c.liveness_ttl, std::chrono::seconds(3));
}

TEST(ConftoolConfigTest, LivenessKeysNeverInsideThePoolsTreeOrTheLocks) {
  std::string base = "[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n";
  EXPECT_EQ(error_of(base + "liveness_prefix = \"/conftool/v1/pools/eqiad/dumps/alive\"\n"),
            "t.toml:4: conftool.liveness_prefix: must be outside the pools tree (\"/conftool/v1/pools/eqiad/dumps\"): "
            "PyBal would read a liveness key there as a host");
  EXPECT_EQ(error_of(base + "liveness_prefix = \"/poolkeeper/locks/alive\"\n"),
            "t.toml:4: conftool.liveness_prefix: must not overlap lock_prefix (\"/poolkeeper/locks\")");
  EXPECT_NE(error_of(base + "liveness_prefix = \"alive/\"\n"), "");
  EXPECT_NE(error_of(base + "liveness_ttl = \"100ms\"\n"), "");
  EXPECT_EQ(error_of(base + "liveness_prefix = \"/ops/alive\"\nliveness_ttl = \"30s\"\n"), "");
  EXPECT_EQ(error_of(base + "liveness_prefix = \"/poolkeeper/depooled\"\n"),
            "t.toml:4: conftool.liveness_prefix: must not overlap \"/poolkeeper/depooled\" (who took a dead peer out, "
            "and why)");
}

TEST(ConftoolConfigTest, HttpsEndpointNeedsAReadableCaFile) {
  EXPECT_EQ(error_of("[conftool]\nendpoints = [\"https://127.0.0.1:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n"
                     "ca_file = \"/nonexistent/etcd-ca.pem\"\n"),
            "t.toml:4: conftool.ca_file: cannot read /nonexistent/etcd-ca.pem (No such file or directory), needed for "
            "the https:// endpoints");
  // Plain http:// endpoints use no CA: nothing to read.
  EXPECT_EQ(error_of("[conftool]\nendpoints = [\"http://127.0.0.1:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n"
                     "ca_file = \"/nonexistent/etcd-ca.pem\"\n"),
            "");
}

TEST(ConftoolConfigTest, Timeout) {
  auto t = toml::parse("[conftool]\nendpoints = [\"http://127.0.0.1:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n"
                       "timeout = \"750ms\"\n");
  TableReader r(*t["conftool"].as_table(), "t.toml", "conftool");
  EXPECT_EQ(parse_conftool_config(r, "t.toml").timeout, std::chrono::milliseconds(750));
  EXPECT_NE(error_of("[conftool]\nendpoints = [\"http://e:2379\"]\nprefix = \"/conftool/v1/pools/eqiad/dumps\"\n"
                     "timeout = \"10ms\"\n")
                .find("t.toml:4: conftool.timeout"),
            std::string::npos);
}

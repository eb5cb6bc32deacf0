#include "pybal-compat/etcd_role.h"

#include <gtest/gtest.h>

using namespace poolkeeper;

namespace {
ConftoolConfig config() {
  ConftoolConfig c;
  c.endpoints = {"https://etcd1001.example.org:2379", "https://etcd1002.example.org:2379"};
  c.prefix = "/conftool/v1/pools/eqiad/dumps";
  c.lock_prefix = "/poolkeeper/locks";
  c.liveness_prefix = "/poolkeeper/alive";
  c.ca_file = "/etc/ssl/certs/wmf-ca.pem";
  c.username = "pool-eqiad-dumps";
  return c;
}
}  // namespace

TEST(EtcdRoleTest, ThePoolsSubtreeAndTheAgentsOwnParentNothingElse) {
  EtcdRole r = etcd_role(config());
  EXPECT_EQ(r.role, "pool-eqiad-dumps");
  EXPECT_EQ(r.user, "pool-eqiad-dumps");
  ASSERT_EQ(r.grants.size(), 2u);
  EXPECT_EQ(r.grants[0].path, "/conftool/v1/pools/eqiad/dumps/*");
  EXPECT_EQ(r.grants[1].path, "/poolkeeper/*");  // locks, liveness, and the rest the agent keeps there
  EXPECT_NE(r.grants[1].why.find("/poolkeeper/locks/<service>"), std::string::npos);
  EXPECT_NE(r.grants[1].why.find("/poolkeeper/alive/<host>"), std::string::npos);
}

TEST(EtcdRoleTest, LivenessElsewhereGetsAGrantOfItsOwn) {
  ConftoolConfig c = config();
  c.username.clear();
  c.liveness_prefix = "/agents/alive";
  EtcdRole r = etcd_role(c);
  EXPECT_EQ(r.user, "pool-eqiad-dumps");  // conftool's naming, from the prefix
  ASSERT_EQ(r.grants.size(), 3u);
  EXPECT_EQ(r.grants[1].path, "/poolkeeper/*");
  EXPECT_EQ(r.grants[2].path, "/agents/alive/*");
}

TEST(EtcdRoleTest, Commands) {
  std::string out = render_etcd_role(config());
  EXPECT_NE(out.find("export ETCDCTL_API=2 ETCDCTL_ENDPOINTS=https://etcd1001.example.org:2379,"
                     "https://etcd1002.example.org:2379 ETCDCTL_CA_FILE=/etc/ssl/certs/wmf-ca.pem ETCDCTL_USERNAME=root\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\netcdctl role add pool-eqiad-dumps\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\netcdctl role grant pool-eqiad-dumps --readwrite --path '/conftool/v1/pools/eqiad/dumps/*'\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\netcdctl role grant pool-eqiad-dumps --readwrite --path '/poolkeeper/*'\n"), std::string::npos);
  EXPECT_NE(out.find("\netcdctl user add pool-eqiad-dumps\n"), std::string::npos);
  EXPECT_NE(out.find("\netcdctl user grant pool-eqiad-dumps --roles pool-eqiad-dumps\n"), std::string::npos);
  // Every command has its reason on the line before.
  std::string prev;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    std::string line = out.substr(pos, nl - pos);
    if (line.rfind("etcdctl ", 0) == 0) {
      EXPECT_EQ(prev.rfind("# ", 0), 0u) << line;
    }
    prev = line;
    pos = nl + 1;
  }
}

#include "pybal-compat/agent_check.h"

#include <gtest/gtest.h>

#include <random>

using namespace poolkeeper;

namespace {
std::vector<AgentCheckService> services() {
  return {{"http", "drained", "drained", "drained: deploy"},
          {"nfs", "pooled", "pooled", ""},
          {"rsync", "not_pooled", "depooled", "depooled: disk swap"},
          {"web2", "not_pooled", "pooled", "check web unhealthy: status 500"},
          {"weird", "not_pooled", "pooled", "bad\nreason\x01"}};
}
}  // namespace

TEST(AgentCheckTest, WordsPerState) {
  auto s = services();
  EXPECT_EQ(agent_check_reply(s, "nfs"), "up ready 100%\n");
  EXPECT_EQ(agent_check_reply(s, "http"), "drain\n");
  EXPECT_EQ(agent_check_reply(s, "rsync"), "maint #depooled: disk swap\n");
  EXPECT_EQ(agent_check_reply(s, "web2"), "down #check web unhealthy: status 500\n");
  EXPECT_EQ(agent_check_reply(s, "weird"), "down #bad reason \n");
  EXPECT_EQ(agent_check_reply(s, "nope"), "down #unknown service\n");
  EXPECT_EQ(agent_check_reply({}, ""), "down #no services\n");
}

TEST(AgentCheckTest, WholeHostIsUpOnlyWhenEveryServiceIs) {
  auto s = services();
  EXPECT_EQ(agent_check_reply(s, ""), "drain\n");
  s.erase(s.begin());
  EXPECT_EQ(agent_check_reply(s, ""), "maint #rsync: depooled: disk swap\n");
  EXPECT_EQ(agent_check_reply({{"nfs", "pooled", "pooled", ""}}, ""), "up ready 100%\n");
}

TEST(AgentCheckTest, RequestParsing) {
  EXPECT_EQ(agent_check_service("nfs\n"), "nfs");
  EXPECT_EQ(agent_check_service("  nfs \r\n"), "nfs");
  EXPECT_EQ(agent_check_service(""), "");
  EXPECT_EQ(agent_check_service("\n"), "");
  EXPECT_EQ(agent_check_service("GET / HTTP/1.0\r\n"), "\x01");
  EXPECT_EQ(agent_check_service(std::string(100, 'a')), "\x01");
  EXPECT_EQ(agent_check_reply(services(), agent_check_service("GET / HTTP/1.0\r\n")), "down #unknown service\n");
}

TEST(AgentCheckTest, SurvivesRandomBytes) {
  std::mt19937 gen(11);
  for (int i = 0; i < 20000; ++i) {
    std::string s(gen() % 80, ' ');
    for (auto& c : s) c = static_cast<char>(gen());
    std::string reply = agent_check_reply(services(), agent_check_service(s));
    ASSERT_FALSE(reply.empty());
    ASSERT_EQ(reply.back(), '\n');
    ASSERT_EQ(reply.find('\n'), reply.size() - 1);  // one line, always
  }
}

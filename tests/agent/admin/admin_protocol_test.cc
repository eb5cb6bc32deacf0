#include "agent/admin/admin_protocol.h"

#include <gtest/gtest.h>

#include <random>

using namespace poolkeeper;

TEST(AdminProtocolTest, ParsesRequests) {
  std::string err;
  auto r = parse_admin_request(
      R"({"cmd":"depool","services":["nfs","http"],"reason":"disk swap","for_seconds":7200,"force":true,"sudo_user":"alice"})",
      &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->cmd, AdminCmd::kDepool);
  EXPECT_EQ(r->services, (std::vector<std::string>{"nfs", "http"}));
  EXPECT_EQ(r->reason, "disk swap");
  EXPECT_EQ(r->for_seconds, 7200);
  EXPECT_TRUE(r->force);
  EXPECT_TRUE(r->mutating());
  ASSERT_TRUE(parse_admin_request(R"({"cmd":"status"})", &err));
  EXPECT_FALSE(parse_admin_request(R"({"cmd":"status"})", &err)->mutating());
  // Each wire name is parsed to its command, and named back the same.
  for (AdminCmd c : {AdminCmd::kStatus, AdminCmd::kIsPooled, AdminCmd::kPool, AdminCmd::kDepool, AdminCmd::kDrain}) {
    auto req = parse_admin_request(std::string(R"({"services":["nfs"],"cmd":")") + admin_cmd_name(c) + "\"}", &err);
    ASSERT_TRUE(req) << admin_cmd_name(c) << ": " << err;
    EXPECT_EQ(req->cmd, c);
    EXPECT_EQ(req->mutating(), c == AdminCmd::kPool || c == AdminCmd::kDepool || c == AdminCmd::kDrain);
    EXPECT_EQ(req->takes_out(), c == AdminCmd::kDepool || c == AdminCmd::kDrain);
  }
  EXPECT_EQ(std::string(admin_cmd_name(AdminCmd::kIsPooled)), "ispooled");
}

TEST(AdminProtocolTest, RejectsWithOneLineErrors) {
  auto error = [](const std::string& line) {
    std::string err;
    EXPECT_FALSE(parse_admin_request(line, &err)) << line;
    EXPECT_EQ(err.find('\n'), std::string::npos);
    return err;
  };
  EXPECT_EQ(error("hello"), "request is not JSON");
  EXPECT_EQ(error("[1]"), "request must be a JSON object");
  EXPECT_EQ(error("{}"), "cmd is required");
  EXPECT_EQ(error(R"({"cmd":"reboot"})"), "unknown cmd \"reboot\"");
  EXPECT_EQ(error(R"({"cmd":"pool","sevrices":["nfs"]})"), "unknown field \"sevrices\"");
  EXPECT_EQ(error(R"({"cmd":"ispooled"})"), "ispooled takes exactly one service");
  EXPECT_EQ(error(R"({"cmd":"depool","for_seconds":-5})"), "for_seconds must be a whole number of seconds up to a year");
  EXPECT_EQ(error(R"({"cmd":"depool","for_seconds":5,"until_boot":true})"), "for_seconds and until_boot exclude each other");
  EXPECT_EQ(error(R"({"cmd":"pool","until_boot":true})"), "for_seconds and until_boot go with depool or drain");
  EXPECT_EQ(error(R"({"cmd":"depool","reason":"a\nb"})"), "reason must be one line");
  EXPECT_EQ(error(std::string(20000, ' ')), "request too large");
}

TEST(AdminProtocolTest, SurvivesRandomBytes) {
  std::mt19937 gen(3);
  const std::string alphabet = "{}[]\":,0123456789abcdefghijklmnopqrstuvwxyz \\\n\x01\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string s(gen() % 80, ' ');
    for (auto& c : s) c = alphabet[gen() % alphabet.size()];
    std::string err;
    auto req = parse_admin_request(s, &err);
    if (req) {
      const std::string c = admin_cmd_name(req->cmd);
      ASSERT_TRUE(c == "status" || c == "ispooled" || c == "pool" || c == "depool" || c == "drain") << s;
      continue;
    }
    ASSERT_FALSE(err.empty()) << s;
    // The answer to a bad request is always one line of JSON.
    std::string reply = admin_error(err);
    ASSERT_EQ(reply.find('\n'), reply.size() - 1) << s;
    auto j = nlohmann::json::parse(reply, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << s;
    ASSERT_EQ(j["error"], err) << s;
  }
}

TEST(AdminProtocolTest, ErrorQuotingACutCharacterIsStillJson) {
  // The error quotes the first 40 bytes of an unknown field: here that cuts "é" in two.
  std::string line = "{\"" + std::string(39, 'a') + "\xc3\xa9\":1}";
  std::string err;
  ASSERT_FALSE(parse_admin_request(line, &err));
  auto j = nlohmann::json::parse(admin_error(err), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["error"].get<std::string>().rfind("unknown field \"aaa", 0), 0u);
}

TEST(AdminProtocolTest, TextThatIsNotUtf8NeverReachesAReply) {
  std::string error;
  // The JSON parser checks the encoding: a reason in another charset is refused.
  EXPECT_FALSE(parse_admin_request("{\"cmd\":\"depool\",\"reason\":\"caf\xe9\"}", &error));
  EXPECT_EQ(error, "request is not JSON");
  // Echoed names are cut to 40 bytes on a character boundary, so the error is valid.
  std::string name = std::string(39, 'x') + "\xc3\xa9";  // "é" straddles byte 40
  EXPECT_FALSE(parse_admin_request("{\"" + name + "\":1}", &error));
  EXPECT_EQ(error, "unknown field \"" + std::string(39, 'x') + "\"");
  EXPECT_FALSE(parse_admin_request("{\"cmd\":\"" + name + "\"}", &error));
  EXPECT_EQ(error, "unknown cmd \"" + std::string(39, 'x') + "\"");
  std::string reply;
  ASSERT_NO_THROW(reply = admin_error(error));
  EXPECT_FALSE(nlohmann::json::parse(reply, nullptr, false).is_discarded());
  // Bytes that slipped through anyway are replaced, never thrown on.
  ASSERT_NO_THROW(reply = admin_error("bad \xff"));
  EXPECT_EQ(nlohmann::json::parse(reply)["error"], "bad \xEF\xBF\xBD");
}

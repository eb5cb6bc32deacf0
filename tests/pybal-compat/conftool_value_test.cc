#include <gtest/gtest.h>

#include <random>

#include "pybal-compat/conftool_writer.h"
#include "pybal-compat/etcd_client.h"

using namespace poolkeeper;

TEST(ConftoolValueTest, ParsesWhatConfctlWrites) {
  std::string err;
  auto v = parse_conftool_value(R"({"weight": 5, "pooled": "yes"})", &err);
  ASSERT_TRUE(v) << err;
  EXPECT_EQ(v->pooled, "yes");
  EXPECT_FALSE(parse_conftool_value(R"({"weight": 5, "pooled": "maybe"})", &err));
  EXPECT_EQ(err, "unknown pooled \"maybe\"");
  EXPECT_FALSE(parse_conftool_value(R"({"weight": "5", "pooled": "yes"})", &err));
  EXPECT_EQ(err, "weight is not an integer");
  EXPECT_FALSE(parse_conftool_value(R"({"weight": 5})", &err));
  EXPECT_FALSE(parse_conftool_value("yes", &err));
}

TEST(ConftoolValueTest, MergeKeepsEverythingElse) {
  std::string err;
  auto v = parse_conftool_value(R"({"weight": 7, "pooled": "yes", "note": "rack b4"})", &err);
  auto merged = nlohmann::json::parse(merge_conftool_value(v->raw, "no", std::nullopt));
  EXPECT_EQ(merged, nlohmann::json::parse(R"({"weight": 7, "pooled": "no", "note": "rack b4"})"));
  EXPECT_TRUE(merged["weight"].is_number_integer());
  auto marked = nlohmann::json::parse(
      merge_conftool_value(v->raw, "no", std::make_pair(std::string("a.example.org"), std::string("peer unreachable since x"))));
  EXPECT_EQ(marked["poolkeeper_depooled_by"], "a.example.org");
  EXPECT_EQ(marked["poolkeeper_reason"], "peer unreachable since x");
  auto back = nlohmann::json::parse(merge_conftool_value(marked, "yes", std::nullopt));
  EXPECT_FALSE(back.contains("poolkeeper_depooled_by"));
  EXPECT_FALSE(back.contains("poolkeeper_reason"));
  EXPECT_EQ(back["note"], "rack b4");
}

TEST(EtcdResponseTest, Parses) {
  auto r = parse_etcd_response(200, R"({"action":"get","node":{"key":"/a","dir":true,"nodes":[
    {"key":"/a/h1","value":"{\"pooled\":\"yes\"}","modifiedIndex":7,"createdIndex":3}],"modifiedIndex":3,"createdIndex":3}})", 9);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.etcd_index, 9u);
  ASSERT_EQ(r.node.nodes.size(), 1u);
  EXPECT_EQ(r.node.nodes[0].modified_index, 7u);
  r = parse_etcd_response(412, R"({"errorCode":101,"message":"Compare failed","cause":"[1 != 4]","index":4})", 0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error_code, 101);
  EXPECT_EQ(r.etcd_index, 4u);
  EXPECT_EQ(r.describe(), "etcd: Compare failed (101)");
  r = parse_etcd_response(404, "404 page not found\n", 0);
  EXPECT_EQ(r.describe(), "etcd: v2 API not enabled (start etcd with --enable-v2=true) (-1)");
  r = parse_etcd_response(400, R"({"errorCode":401,"message":"The event in requested index is outdated and cleared"})", 0);
  EXPECT_EQ(r.error_code, 401);
}

TEST(EtcdResponseTest, SurvivesRandomBytes) {
  std::mt19937 gen(5);
  const std::string alphabet = "{}[]\":,0123456789nodeskeyvaluemodifiedIndexerrorCode\\ ";
  for (int i = 0; i < 20000; ++i) {
    std::string s(gen() % 120, ' ');
    for (auto& c : s) c = alphabet[gen() % alphabet.size()];
    EtcdResult r = parse_etcd_response(200, s, 0);
    auto j = nlohmann::json::parse(s, nullptr, false);
    // Anything but a JSON object is an error, and an error always explains itself.
    if (j.is_discarded() || !j.is_object()) {
      ASSERT_EQ(r.error_code, -1) << s;
    }
    if (!r.ok()) {
      ASSERT_FALSE(r.describe().empty()) << s;
    }
    std::string err;
    auto v = parse_conftool_value(s, &err);
    if (v) {
      ASSERT_TRUE(v->pooled == "yes" || v->pooled == "no" || v->pooled == "inactive") << s;
      ASSERT_TRUE(!v->raw.contains("weight") || v->raw["weight"].is_number_integer()) << s;
    } else {
      ASSERT_FALSE(err.empty()) << s;
    }
  }
}

TEST(EtcdClientTest, UrlEncoding) {
  EXPECT_EQ(url_encode("/conftool/v1/pools/eqiad/dumps/nfs/h1.example.org"), "/conftool/v1/pools/eqiad/dumps/nfs/h1.example.org");
  EXPECT_EQ(url_encode(R"({"pooled": "yes"})"), "%7B%22pooled%22%3A%20%22yes%22%7D");
}

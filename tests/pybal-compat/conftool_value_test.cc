#include <gtest/gtest.h>

#include <random>

#include "pybal-compat/conftool_writer.h"
#include "pybal-compat/etcd_client.h"

using namespace poolkeeper;

TEST(ConftoolValueTest, ParsesWhatConfctlWrites) {
  std::string err;
  auto v = parse_conftool_value(R"({"weight": 5, "pooled": "yes"})", &err);
  ASSERT_TRUE(v) << err;
  EXPECT_EQ(v->pooled, ConftoolPooled::kYes);
  EXPECT_FALSE(parse_conftool_value(R"({"weight": 5, "pooled": "maybe"})", &err));
  EXPECT_EQ(err, "unknown pooled \"maybe\"");
  EXPECT_FALSE(parse_conftool_value(R"({"weight": "5", "pooled": "yes"})", &err));
  EXPECT_EQ(err, "weight is not an integer");
  EXPECT_FALSE(parse_conftool_value(R"({"weight": 5})", &err));
  EXPECT_FALSE(parse_conftool_value("yes", &err));
}

// What confctl 3.0 writes for `set/pooled=…`: it json.loads the value, update()s it with
// its schema's fields (weight, then pooled: a field the value has keeps its place, the
// rest of the value stays) and json.dumps the result. The expected strings are Python's
// own output for the same input and change.
std::string merged(const std::string& value, const std::string& pooled) {
  std::string err;
  auto v = parse_conftool_value(value, &err);
  EXPECT_TRUE(v) << err;
  return v ? merge_conftool_value(v->raw, pooled == "yes" ? ConftoolPooled::kYes : ConftoolPooled::kNo) : "";
}

TEST(ConftoolValueTest, MergeIsWhatConfctlWrites) {
  // The agent's old compact form, and a key confctl or conftool-sync wrote.
  EXPECT_EQ(merged(R"({"pooled":"yes","weight":10})", "no"), R"({"pooled": "no", "weight": 10})");
  EXPECT_EQ(merged(R"({"weight": 7, "pooled": "yes", "note": "rack b4"})", "no"),
            R"({"weight": 7, "pooled": "no", "note": "rack b4"})");
  // Order as held, unknown fields and nested values kept, floats as Python prints them,
  // strings ASCII with \u escapes (a pair for an astral character).
  EXPECT_EQ(merged(R"({"note":"caf\u00e9 \ud83d\ude00 \u007f \u0001 \"q\" \\ / \t\n","pooled":"no",)"
                   R"("tags":["a",1,2.5,true,null,{}],"x":{},"y":[],"weight":3,"ratio":1e16,"small":0.00001,)"
                   R"("big":-1.5e300,"z":0.1,"h":100.0})",
                   "yes"),
            R"({"note": "caf\u00e9 \ud83d\ude00 \u007f \u0001 \"q\" \\ / \t\n", "pooled": "yes", )"
            R"("tags": ["a", 1, 2.5, true, null, {}], "x": {}, "y": [], "weight": 3, "ratio": 1e+16, )"
            R"("small": 1e-05, "big": -1.5e+300, "z": 0.1, "h": 100.0})");
  // The same characters as raw UTF-8 come out the same.
  EXPECT_EQ(merged("{\"pooled\": \"no\", \"weight\": 1, \"note\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", "yes"),
            R"({"pooled": "yes", "weight": 1, "note": "caf\u00e9 \ud83d\ude00"})");
  // A repeated field: the last value, in the first one's place (as json.loads).
  EXPECT_EQ(merged(R"({"weight": 1, "pooled": "yes", "weight": 4})", "no"), R"({"weight": 4, "pooled": "no"})");
  // A key that was never ours keeps its shape through our writes.
  EXPECT_EQ(merged(R"({"pooled": "no", "weight": 0})", "yes"), R"({"pooled": "yes", "weight": 0})");
}

TEST(ConftoolValueTest, OlderAgentsMarkersAreDroppedOnTheNextWrite) {
  EXPECT_EQ(merged(R"({"pooled":"no","poolkeeper_depooled_by":"b.example.org","poolkeeper_reason":"peer dead: x",)"
                   R"("weight":10})",
                   "yes"),
            R"({"pooled": "yes", "weight": 10})");
  EXPECT_EQ(merged(R"({"weight": 10, "pooled": "yes", "poolkeeper_reason": "x"})", "no"),
            R"({"weight": 10, "pooled": "no"})");
}

TEST(ConftoolValueTest, NewKeyInConfctlsSchemaOrder) {
  EXPECT_EQ(new_conftool_value(ConftoolPooled::kYes, 10), R"({"weight": 10, "pooled": "yes"})");
  EXPECT_EQ(new_conftool_value(ConftoolPooled::kNo, 10), R"({"weight": 10, "pooled": "no"})");
}

TEST(ConftoolValueTest, FloatsAsPythonsRepr) {
  auto j = nlohmann::ordered_json::parse(
      "[1e15, 1e16, 0.0001, 0.00001, 123.456, 1.5e300, -0.0, 5e-324, 1e22, 12345678901234567890.0, 0.1, 100.0, "
      "-2.5e-7, 9007199254740993.0, 18446744073709551615, -9223372036854775808]");
  EXPECT_EQ(python_json_dumps(j),
            "[1000000000000000.0, 1e+16, 0.0001, 1e-05, 123.456, 1.5e+300, -0.0, 5e-324, 1e+22, "
            "1.2345678901234567e+19, 0.1, 100.0, -2.5e-07, 9007199254740992.0, 18446744073709551615, "
            "-9223372036854775808]");
}

TEST(ConftoolValueTest, TakeoverRecordRoundTrips) {
  ConftoolTakeoverRecord r{"a.example.org", "peer dead: liveness key gone since x", "2026-12-07T03:00:00Z", 42, ""};
  auto back = parse_takeover_record(takeover_record_value(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->by, r.by);
  EXPECT_EQ(back->reason, r.reason);
  EXPECT_EQ(back->at, r.at);
  EXPECT_EQ(back->index, 42u);
  EXPECT_EQ(back->raw, takeover_record_value(r));
  EXPECT_FALSE(parse_takeover_record(R"({"by": "a"})"));  // no index: not a record
  EXPECT_FALSE(parse_takeover_record("yes"));
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
  EXPECT_EQ(r.error_code, EtcdError::kCompareFailed);
  EXPECT_EQ(r.etcd_index, 4u);
  EXPECT_EQ(r.describe(), "etcd: Compare failed (101)");
  r = parse_etcd_response(404, "404 page not found\n", 0);
  EXPECT_EQ(r.describe(), "etcd: v2 API not enabled (start etcd with --enable-v2=true) (-1)");
  r = parse_etcd_response(400, R"({"errorCode":401,"message":"The event in requested index is outdated and cleared"})", 0);
  EXPECT_EQ(r.error_code, EtcdError::kIndexCleared);
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
      ASSERT_EQ(r.error_code, EtcdError::kMalformed) << s;
    }
    if (!r.ok()) {
      ASSERT_FALSE(r.describe().empty()) << s;
    }
    std::string err;
    auto v = parse_conftool_value(s, &err);
    if (v) {
      ASSERT_EQ(v->raw["pooled"], conftool_pooled_name(v->pooled)) << s;
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

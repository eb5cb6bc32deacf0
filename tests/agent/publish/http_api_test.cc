#include "agent/publish/http_api.h"

#include <gtest/gtest.h>

#include "tests/harness/snapshot_builders.h"

using namespace poolkeeper;

namespace {

std::string metrics() { return "# metrics\n"; }

}  // namespace

TEST(HttpApiTest, HealthOfOneService) {
  Snapshot s = pk_test::sample_snapshot();
  HttpReply r = handle_http("GET", "/health/nfs", s, metrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "pooled\n");
  EXPECT_EQ(r.route, "/health/nfs");
  r = handle_http("HEAD", "/health/http", s, metrics);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "not pooled: check web unhealthy: status 500\n");
}

TEST(HttpApiTest, HealthOfAll) {
  Snapshot s = pk_test::sample_snapshot();
  HttpReply r = handle_http("GET", "/health", s, metrics);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "http not pooled: check web unhealthy: status 500\nnfs pooled\n");
  s.services[0].effective = {Effective::kPooled, ""};
  EXPECT_EQ(handle_http("GET", "/health", s, metrics).status, 200);
}

TEST(HttpApiTest, KeptByFloorIsOkAndSaysSo) {
  Snapshot s = pk_test::sample_snapshot();
  s.services[1].effective = {Effective::kPooled, "kept by floor: check export unhealthy: timed out"};
  s.services[1].kept_by_floor = true;
  HttpReply r = handle_http("GET", "/health/nfs", s, metrics);
  EXPECT_EQ(r.status, 200);  // PyBal's ProxyFetch reads only the code
  EXPECT_EQ(r.body, "pooled (kept by floor: check export unhealthy: timed out)\n");
  r = handle_http("GET", "/health", s, metrics);
  EXPECT_NE(r.body.find("nfs pooled (kept by floor: check export unhealthy: timed out)\n"), std::string::npos) << r.body;
}

TEST(HttpApiTest, DrainedIsNotOk) {
  Snapshot s = pk_test::sample_snapshot();
  s.services[1].effective = {Effective::kDrained, "drained: maintenance"};
  HttpReply r = handle_http("GET", "/health/nfs", s, metrics);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "not pooled: drained: maintenance\n");
}

TEST(HttpApiTest, UnknownPathsAndMethods) {
  Snapshot s = pk_test::sample_snapshot();
  EXPECT_EQ(handle_http("GET", "/health/nope", s, metrics).status, 404);
  EXPECT_EQ(handle_http("GET", "/health/nope", s, metrics).route, "other");
  EXPECT_EQ(handle_http("GET", "/health/", s, metrics).status, 404);
  EXPECT_EQ(handle_http("GET", "//", s, metrics).status, 404);
  EXPECT_EQ(handle_http("GET", "/index.html", s, metrics).status, 404);
  EXPECT_EQ(handle_http("POST", "/", s, metrics).status, 405);
  EXPECT_EQ(handle_http("GET", "/statusx", s, metrics).status, 404);
  HttpReply r = handle_http("POST", "/health/nfs", s, metrics);
  EXPECT_EQ(r.status, 405);
  bool allow = false;
  for (const auto& [k, v] : r.headers) allow |= (k == "Allow" && v == "GET, HEAD");
  EXPECT_TRUE(allow);
  EXPECT_EQ(handle_http("DELETE", "/status", s, metrics).status, 405);
}

TEST(HttpApiTest, StatusAndEventsAreJson) {
  Snapshot s = pk_test::sample_snapshot();
  HttpReply r = handle_http("GET", "/status", s, metrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["host"], "h1.example.org");
  EXPECT_EQ(j["lifecycle"], "running");
  EXPECT_EQ(j["services"]["nfs"]["effective"], "pooled");
  EXPECT_EQ(j["services"]["http"]["reason"], "check web unhealthy: status 500");
  EXPECT_EQ(j["checks"]["web"]["state"], "unhealthy");
  EXPECT_EQ(j["checks"]["web"]["last"]["reason"], "status 500");
  auto e = nlohmann::json::parse(handle_http("GET", "/events", s, metrics).body);
  ASSERT_EQ(e["events"].size(), 1u);
  EXPECT_EQ(e["events"][0]["to"], "unhealthy");
}

TEST(HttpApiTest, MetricsComeFromTheCallback) {
  Snapshot s = pk_test::sample_snapshot();
  HttpReply r = handle_http("GET", "/metrics", s, metrics);
  EXPECT_EQ(r.body, "# metrics\n");
  EXPECT_NE(r.content_type.find("version=0.0.4"), std::string::npos);
}

TEST(HttpApiTest, ControlCharactersInThePathAreRefused) {
  Snapshot s = pk_test::sample_snapshot();
  for (std::string_view path : {std::string_view("/health/nfs\0junk", 16), std::string_view("/health/nfs\r\n"),
                                std::string_view("/health/n\tfs"), std::string_view("/status\x7f")}) {
    HttpReply r = handle_http("GET", path, s, metrics);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.route, "other");
  }
  EXPECT_EQ(handle_http("GET", "/health/nfs", s, metrics).status, 200);
}

TEST(HttpApiTest, StatusAndEventsStayValidJsonWhateverBytesTheyCarry) {
  // Bytes a probe or a peer might bring, had they slipped past the repair where they
  // enter: the answer is still 200 with valid UTF-8 JSON.
  Snapshot s = pk_test::sample_snapshot();
  s.checks[0].last->reason = "redirect to http://x/\xff\xfe";
  s.checks[0].last->details["output"] = "caf\xc3";
  s.events.push_back({WallTime{}, EventKind::kCheck, "web", "healthy", "unhealthy", "exit \377"});
  for (const char* path : {"/status", "/events"}) {
    HttpReply r;
    ASSERT_NO_THROW(r = handle_http("GET", path, s, metrics)) << path;
    EXPECT_EQ(r.status, 200);
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
  }
}

TEST(HttpApiTest, StatusPageAtRootIsHtmlFromTheSnapshot) {
  Snapshot s = pk_test::sample_snapshot();
  HttpReply r = handle_http("GET", "/", s, metrics);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.route, "/");
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("check web unhealthy: status 500"), std::string::npos);
  bool csp = false;
  for (const auto& [k, v] : r.headers) csp |= (k == "Content-Security-Policy" && v.find("default-src 'none'") == 0);
  EXPECT_TRUE(csp);
  EXPECT_EQ(handle_http("HEAD", "/", s, metrics).status, 200);
}

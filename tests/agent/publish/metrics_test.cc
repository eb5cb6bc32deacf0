// The metrics the dashboard and alerts read, computed in the agent from a snapshot and
// from probe results: floor, peers, conftool key state, data age, own liveness key.
#include "agent/publish/metrics.h"

#include <gtest/gtest.h>

#include "agent/model/snapshot.h"
#include "tests/harness/snapshot_builders.h"

using namespace poolkeeper;

namespace {

bool has(const std::string& text, const std::string& line) { return text.find("\n" + line + "\n") != std::string::npos; }

Snapshot sample() {
  Snapshot s = pk_test::snapshot_of({}, {"nfs", "http", "rsync"});
  s.host = "h1";
  s.services[0].kept_by_floor = true;
  PeerView p;
  p.state.url = "http://h2:9473";
  p.state.host = "h2";
  p.state.reachable = true;
  p.state.services["nfs"] = {"pooled", true, false, ""};
  p.state.services["http"] = {"not_pooled", false, true, "x"};
  s.peers = {p};
  s.conftool = {{"up", true},
                {"keys", {{"nfs", {{"pooled", "inactive"}}}, {"http", {{"state", "missing"}}}, {"rsync", {{"state", "unparseable"}}}}},
                {"liveness", {{"self_seen", true}}}};
  return s;
}

}  // namespace

TEST(MetricsTest, FloorPeersConftoolKeysAndLiveness) {
  Metrics m;
  Snapshot s = sample();
  m.on_snapshot(s);
  std::string t = m.serialize();
  EXPECT_TRUE(has(t, "poolkeeper_service_kept_by_floor{service=\"nfs\"} 1")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_service_kept_by_floor{service=\"http\"} 0"));
  EXPECT_TRUE(has(t, "poolkeeper_peer_up{peer=\"h2\"} 1"));
  EXPECT_TRUE(has(t, "poolkeeper_peer_service_pooled{peer=\"h2\",service=\"nfs\"} 1"));
  EXPECT_TRUE(has(t, "poolkeeper_peer_service_pooled{peer=\"h2\",service=\"http\"} 0"));
  EXPECT_TRUE(has(t, "poolkeeper_conftool_key_pooled{pooled=\"inactive\",service=\"nfs\"} 1"));
  EXPECT_TRUE(has(t, "poolkeeper_conftool_key_pooled{pooled=\"yes\",service=\"nfs\"} 0"));
  EXPECT_TRUE(has(t, "poolkeeper_conftool_key_pooled{pooled=\"missing\",service=\"http\"} 1"));
  EXPECT_TRUE(has(t, "poolkeeper_conftool_key_pooled{pooled=\"unreadable\",service=\"rsync\"} 1"));
  EXPECT_TRUE(has(t, "poolkeeper_liveness_up 1"));
  // etcd not answering: the keys as last seen are no longer known.
  s.conftool["up"] = false;
  s.conftool["liveness"] = {{"ok", false}};
  s.peers[0].state.reachable = false;
  m.on_snapshot(s);
  t = m.serialize();
  EXPECT_TRUE(has(t, "poolkeeper_conftool_key_pooled{pooled=\"unreadable\",service=\"nfs\"} 1")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_conftool_key_pooled{pooled=\"inactive\",service=\"nfs\"} 0"));
  EXPECT_TRUE(has(t, "poolkeeper_liveness_up 0"));
  EXPECT_TRUE(has(t, "poolkeeper_peer_up{peer=\"h2\"} 0"));
  // A peer that is gone takes its series with it.
  s.peers.clear();
  m.on_snapshot(s);
  t = m.serialize();
  EXPECT_EQ(t.find("peer=\"h2\""), std::string::npos) << t;
}

TEST(MetricsTest, TakeoverWaitingWhileTheFloorHoldsIt) {
  Metrics m;
  Snapshot s = sample();
  m.on_snapshot(s);
  EXPECT_EQ(m.serialize().find("poolkeeper_takeover_waiting{"), std::string::npos);  // none held
  s.conftool["liveness"]["peers"] = {
      {"h2", {{"alive", false}, {"takeover_waiting", {{"nfs", {{"reason", "refused: …"}, {"since", "x"}}}}}}},
      {"h3", {{"alive", true}}}};
  m.on_snapshot(s);
  std::string t = m.serialize();
  EXPECT_TRUE(has(t, "poolkeeper_takeover_waiting{peer=\"h2\",service=\"nfs\"} 1")) << t;
  EXPECT_EQ(t.find("poolkeeper_takeover_waiting{peer=\"h3\""), std::string::npos);
  // Taken out (or the peer back): the series goes.
  s.conftool["liveness"]["peers"]["h2"].erase("takeover_waiting");
  m.on_snapshot(s);
  t = m.serialize();
  EXPECT_EQ(t.find("poolkeeper_takeover_waiting{"), std::string::npos) << t;
}

TEST(MetricsTest, DataAgeAndMaxAgeFromTheProbesDetails) {
  Metrics m;
  Result r = Result::fail(Outcome::kFailed, "canary too old");
  r.details = {{"age_seconds", 7200.5}, {"max_age_seconds", 3600.0}};
  m.on_result("export", r, WallTime{});
  Result other = Result::pass();  // no age: leaves no series
  m.on_result("web", other, WallTime{});
  std::string t = m.serialize();
  EXPECT_TRUE(has(t, "poolkeeper_check_data_age_seconds{check=\"export\"} 7200.5")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_data_max_age_seconds{check=\"export\"} 3600"));
  EXPECT_EQ(t.find("poolkeeper_check_data_age_seconds{check=\"web\"}"), std::string::npos);
}

// A snapshot shares the views that did not change with the one before; the series follow
// the views that did, and a list with a check gone takes that check's series away.
TEST(MetricsTest, SeriesFollowTheViewsThatChanged) {
  Metrics m;
  Snapshot s = pk_test::snapshot_of({"web", "export", "disk"});
  m.on_snapshot(s);
  EXPECT_TRUE(has(m.serialize(), "poolkeeper_check_up{check=\"export\"} 0"));
  Snapshot next = s;  // shares every view
  next.checks[1].health = CheckHealth::kHealthy;
  next.checks[2].stuck_since = WallTime{};
  m.on_snapshot(next);
  std::string t = m.serialize();
  EXPECT_TRUE(has(t, "poolkeeper_check_up{check=\"export\"} 1")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_up{check=\"web\"} 0"));
  EXPECT_TRUE(has(t, "poolkeeper_check_probe_stuck{check=\"disk\"} 1"));
  Snapshot fewer;
  fewer.checks = {next.checks[0], next.checks[1]};
  m.on_snapshot(fewer);
  t = m.serialize();
  EXPECT_EQ(t.find("check=\"disk\""), std::string::npos) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_up{check=\"export\"} 1"));
}

TEST(MetricsTest, HttpRequestsCountedPerRouteAndCode) {
  Metrics m;
  for (int i = 0; i < 3; ++i) m.http_request("/health/nfs", 200);
  m.http_request("/health/nfs", 503);
  m.http_request("other", 404);
  std::string text = m.serialize();
  EXPECT_TRUE(has(text, "poolkeeper_http_requests_total{code=\"200\",path=\"/health/nfs\"} 3")) << text;
  EXPECT_TRUE(has(text, "poolkeeper_http_requests_total{code=\"503\",path=\"/health/nfs\"} 1")) << text;
  EXPECT_TRUE(has(text, "poolkeeper_http_requests_total{code=\"404\",path=\"other\"} 1")) << text;
}

// A check's series are found once and kept with it; a reload that removes the check
// removes them, and a check of that name added back later starts new ones.
TEST(MetricsTest, CachedCheckSeriesGoWithTheCheck) {
  Metrics m;
  auto with = [](std::initializer_list<const char*> names) { return pk_test::snapshot_of(names); };
  m.on_snapshot(with({"web", "export"}));
  Result ok = Result::pass();
  ok.latency = std::chrono::milliseconds(2);
  for (int i = 0; i < 3; ++i) m.on_result("export", ok, WallTime{} + std::chrono::seconds(100 + i));
  m.on_result("export", Result::fail(Outcome::kTimeout, "timed out"), WallTime{});
  m.on_result("web", ok, WallTime{});
  std::string t = m.serialize();
  EXPECT_TRUE(has(t, "poolkeeper_check_results_total{check=\"export\",result=\"passed\"} 3")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_results_total{check=\"export\",result=\"timeout\"} 1")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_duration_seconds_count{check=\"export\"} 4")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_last_success_timestamp_seconds{check=\"export\"} 102")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_results_total{check=\"web\",result=\"passed\"} 1")) << t;

  m.on_snapshot(with({"web"}));  // export removed by a reload
  t = m.serialize();
  EXPECT_EQ(t.find("check=\"export\""), std::string::npos) << t;
  m.on_result("web", ok, WallTime{});
  EXPECT_TRUE(has(m.serialize(), "poolkeeper_check_results_total{check=\"web\",result=\"passed\"} 2"));

  m.on_snapshot(with({"web", "export"}));  // and added back
  m.on_result("export", ok, WallTime{} + std::chrono::seconds(200));
  t = m.serialize();
  EXPECT_TRUE(has(t, "poolkeeper_check_results_total{check=\"export\",result=\"passed\"} 1")) << t;
  EXPECT_EQ(t.find("check=\"export\",result=\"timeout\""), std::string::npos) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_duration_seconds_count{check=\"export\"} 1")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_last_success_timestamp_seconds{check=\"export\"} 200")) << t;
  EXPECT_TRUE(has(t, "poolkeeper_check_up{check=\"export\"} 0")) << t;
}

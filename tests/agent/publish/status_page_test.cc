// The status page as a pure function of a snapshot: what an operator must see, and
// that nothing from outside reaches the page unescaped.
#include "agent/publish/status_page.h"

#include <gtest/gtest.h>

#include "agent/base/utf8.h"
#include "tests/harness/snapshot_builders.h"

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {

const WallTime kNow = WallTime{} + std::chrono::seconds(1'800'000'000);

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

Snapshot sample() {
  Snapshot s;
  s.host = "clouddumps1001.example.org";
  s.lifecycle = Lifecycle::kRunning;
  s.lifecycle_since = kNow - 3h;
  s.generated = kNow;
  ServiceView web;
  web.name = "http";
  web.effective = {Effective::kNotPooled, "check web unhealthy: status 500"};
  web.health_reason = "check web unhealthy: status 500";
  web.checks = {"web"};
  web.since = kNow - 90s;
  ServiceView nfs;
  nfs.name = "nfs";
  nfs.effective = {Effective::kPooled, "kept by floor: check export unhealthy"};
  nfs.has_peers = true;
  nfs.min_pooled = 1;
  nfs.peers_pooled_healthy = 0;
  nfs.kept_by_floor = true;
  nfs.checks = {"export"};
  ServiceView rsync;
  rsync.name = "rsync";
  rsync.effective = {Effective::kNotPooled, "depooled: disk swap"};
  rsync.healthy = true;
  rsync.intent = {Intent::kDepooled, "disk swap", "alice", kNow - 10min, kNow + 50min};
  s.services = {web, nfs, rsync};
  CheckView c = pk_test::check_view("web", "http", "GET http://127.0.0.1/", CheckHealth::kUnhealthy,
                                    Result::fail(Outcome::kFailed, "status 500"), 3, 2);
  c.successes = 1;
  c.failures = 0;
  c.last_time = kNow - 1s;
  auto h = std::make_shared<std::vector<ResultPoint>>();
  for (int i = 0; i < 7; ++i)
    h->push_back({kNow - std::chrono::seconds(7 - i), static_cast<float>(0.001 * i), i % 2 ? Outcome::kPassed : Outcome::kTimeout});
  c.history = h;
  CheckView e = c;
  e.name = "export";
  e.kind = "nfs";
  e.health = CheckHealth::kHealthy;
  e.stuck_since = kNow - 12s;
  e.successes = 4;
  e.history = nullptr;
  s.checks = {c, e};
  PeerView p;
  p.state.url = "http://clouddumps1002.example.org:9473";
  p.state.host = "clouddumps1002.example.org";
  p.state.reachable = false;
  p.state.error = "connection refused";
  p.state.unreachable_since = kNow - 40s;
  s.peers = {p};
  s.events.push_back({kNow - 5s, EventKind::kCheck, "web", "healthy", "unhealthy", "status 500"});
  return s;
}

}  // namespace

TEST(StatusPageTest, ShowsEachServiceStateReasonIntentAndFloor) {
  std::string page = render_status_page(sample());
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<meta http-equiv=\"refresh\" content=\"5\">"), std::string::npos);
  EXPECT_NE(page.find("name=\"viewport\""), std::string::npos);
  EXPECT_NE(page.find("clouddumps1001.example.org"), std::string::npos);
  // Pooled only by the floor is said in the header and the tab's title.
  EXPECT_NE(page.find("<p>1 of 3 services pooled (1 kept by floor) &middot;"), std::string::npos) << page;
  EXPECT_NE(page.find("<title>1/3 pooled (1 kept by floor) \u00b7 clouddumps1001"), std::string::npos) << page;
  // The failing check is given once: in the headline, not again in the health row.
  EXPECT_NE(page.find("<p class=\"reason\">check web unhealthy: status 500</p>"), std::string::npos) << page;
  EXPECT_EQ(page.find("unhealthy: check web unhealthy"), std::string::npos) << page;
  // Colour (card class) and words for each state.
  EXPECT_NE(page.find("class=\"card bad\" id=\"service-http\""), std::string::npos);
  EXPECT_NE(page.find("NOT POOLED</span>"), std::string::npos);
  EXPECT_NE(page.find("class=\"card warn\" id=\"service-nfs\""), std::string::npos);
  EXPECT_NE(page.find("POOLED (kept by floor)"), std::string::npos);
  EXPECT_NE(page.find("class=\"card admin\" id=\"service-rsync\""), std::string::npos);
  EXPECT_NE(page.find("NOT POOLED (operator)"), std::string::npos);
  EXPECT_NE(page.find("check web unhealthy: status 500"), std::string::npos);
  EXPECT_NE(page.find("depooled by alice: \u201cdisk swap\u201d"), std::string::npos);
  EXPECT_NE(page.find("until "), std::string::npos);
  EXPECT_NE(page.find("(in 50m 00s)"), std::string::npos);
  EXPECT_NE(page.find("min_pooled 1, peers pooled and healthy 0"), std::string::npos);
  EXPECT_NE(page.find("kept in by the floor"), std::string::npos);
  EXPECT_NE(page.find("no peers: leaves the pool on its own health"), std::string::npos);
}

TEST(StatusPageTest, ShowsChecksWithStreakStuckMarkerAndHistory) {
  std::string page = render_status_page(sample());
  // Unhealthy web: one pass so far, 1 of 3 towards rising; healthy export: 0 of 2 towards falling.
  EXPECT_NE(page.find("ok &times;1<br><span class=\"muted\">rise 1/3</span>"), std::string::npos);
  EXPECT_NE(page.find("ok &times;4<br><span class=\"muted\">fall 0/2</span>"), std::string::npos);
  EXPECT_NE(page.find("<b>failed</b> status 500"), std::string::npos);
  EXPECT_NE(page.find("STUCK 12s"), std::string::npos);
  EXPECT_EQ(count(page, "STUCK"), 1u);
  EXPECT_EQ(count(page, "<svg "), 2u);  // one per check, empty history too
  EXPECT_NE(page.find("<title>7 results, 3 passed; slowest 6 ms</title>"), std::string::npos);
  EXPECT_EQ(count(page, "fill=\"#d97700\""), 4u);  // timeouts
  EXPECT_EQ(count(page, "fill=\"#1b7f3b\""), 3u);  // passes
  EXPECT_NE(page.find("<title>0 results, 0 passed"), std::string::npos);
  // Peers and events.
  EXPECT_NE(page.find("unreachable</span> for 40s"), std::string::npos);
  EXPECT_NE(page.find("connection refused"), std::string::npos);
  EXPECT_NE(page.find("healthy &rarr; unhealthy"), std::string::npos);
}

TEST(StatusPageTest, ShowsConftoolKeyAndLiveness) {
  Snapshot s = sample();
  s.conftool = {{"up", true},
                {"last_error", ""},
                {"keys", {{"nfs", {{"key", "/conftool/v1/pools/eqiad/dumps/nfs/h1"}, {"pooled", "yes"}, {"weight", 10}}},
                          {"http", {{"key", "/k/http/h1"}, {"state", "missing"}}}}},
                {"liveness", {{"self_seen", false}, {"peers", {{"clouddumps1002.example.org", {{"alive", false}, {"missing_since", "2027-01-15T08:00:00.000Z"}}}}}}}};
  std::string page = render_status_page(s);
  EXPECT_NE(page.find("pooled=yes</span> weight 10"), std::string::npos);
  EXPECT_NE(page.find("/conftool/v1/pools/eqiad/dumps/nfs/h1"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"badge bad\">missing</span> <span class=\"muted\">/k/http/h1"), std::string::npos);
  EXPECT_NE(page.find("liveness key is not in etcd"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"badge bad\">missing</span> since 2027-01-15T08:00:00.000Z"), std::string::npos);
  // Who took a dead peer out and why, and a takeover the floor holds (banner and row).
  auto& peer = s.conftool["liveness"]["peers"]["clouddumps1002.example.org"];
  peer["taken_out"] = {{"http", {{"by", "clouddumps1001.example.org"}, {"reason", "peer dead: <gone>"},
                                 {"at", "2027-01-15T08:03:00.000Z"}, {"current", true}}}};
  peer["takeover_waiting"] = {{"nfs", {{"reason", "refused: … h3 pooled=no"}, {"since", "2027-01-15T08:03:00.000Z"}}}};
  page = render_status_page(s);
  EXPECT_NE(page.find("http taken out</span> by clouddumps1001.example.org at 2027-01-15T08:03:00.000Z: peer dead: "
                      "&lt;gone&gt;"),
            std::string::npos);
  EXPECT_NE(page.find("Takeover of clouddumps1002.example.org (nfs) held by the floor: refused: … h3 pooled=no"),
            std::string::npos);
  EXPECT_NE(page.find("nfs takeover held by the floor</span> since 2027-01-15T08:03:00.000Z"), std::string::npos);
  s.conftool["up"] = false;
  s.conftool["last_error"] = "connection refused <etcd>";
  page = render_status_page(s);
  EXPECT_NE(page.find("conftool (etcd) not answering: connection refused &lt;etcd&gt;"), std::string::npos);
}

TEST(StatusPageTest, EscapesEverythingFromOutsideAndLoadsNothing) {
  Snapshot s = sample();
  s.host = "<i>host</i>";
  s.services[0].effective.reason = "<script>alert('x')</script> & \"more\"";
  s.services[2].intent.who = "<b>mallory</b>";
  s.checks[0].last->reason = "bad \xff\xfe bytes </td>";
  s.peers[0].state.host = "\"><img src=x onerror=alert(1)>";
  s.peers[0].state.services["nfs"] = {"<em>pooled</em>", true, false, ""};
  s.events.push_back({kNow, EventKind::kCheck, "<n>", "<f>", "<t>", "<r>"});  // the kind is ours, not outside text
  std::string page = render_status_page(s);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("<i>"), std::string::npos);
  EXPECT_EQ(page.find("<b>mallory"), std::string::npos);
  EXPECT_EQ(page.find("<em>"), std::string::npos);
  EXPECT_EQ(page.find("<r>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"), std::string::npos);
  EXPECT_NE(page.find("&lt;/td&gt;"), std::string::npos);
  EXPECT_TRUE(is_valid_utf8(page));
  // Self-contained: no scripts, no stylesheets or images from elsewhere.
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find(" src=\""), std::string::npos);
  EXPECT_EQ(page.find(" href=\"http"), std::string::npos);
  EXPECT_EQ(page.find("url("), std::string::npos);
  EXPECT_EQ(html_escape("a<b>&\"'\x01"), "a&lt;b&gt;&amp;&quot;&#39; ");
}

TEST(StatusPageTest, ShowsOnlyTheLastTwentyEventsNewestFirst) {
  Snapshot s = sample();
  s.events.clear();
  for (int i = 0; i < 30; ++i)
    s.events.push_back({kNow - std::chrono::seconds(30 - i), EventKind::kCheck, "c" + std::to_string(i), "a", "b", "r"});
  std::string page = render_status_page(s);
  EXPECT_EQ(page.find("<b>c9</b>"), std::string::npos);
  ASSERT_NE(page.find("<b>c10</b>"), std::string::npos);
  EXPECT_LT(page.find("<b>c29</b>"), page.find("<b>c10</b>"));
}

TEST(StatusPageTest, RendersOncePerSnapshot) {
  Snapshot s = sample();
  auto a = cached_status_page(s);
  auto b = cached_status_page(s);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(*a, render_status_page(s));
  Snapshot copy = s;  // a copy (another snapshot) renders its own page
  copy.services[0].effective.reason = "changed";
  auto c = cached_status_page(copy);
  EXPECT_NE(c.get(), a.get());
  EXPECT_NE(c->find("changed"), std::string::npos);
  EXPECT_EQ(a->find("changed"), std::string::npos);
}

// The alert rules and the dashboard against a real Prometheus (Debian's) scraping real
// agents every second, the rules file loaded as shipped except that every `for` is cut
// to 5 s (the shipped durations are proven in simulated time by prometheus_rules_test's
// `promtool test rules`): when checks are made to fail (a stale canary behind the nfs
// check on both hosts, the only check of a service on both hosts, a config reload
// refused), the matching alert is firing in /api/v1/alerts within its `for` + 2 scrape
// intervals of the agents showing the condition; and every query of every dashboard
// panel (and of its variables), with the variables filled in, returns data — no typo,
// no missing metric.
#include <gtest/gtest.h>
#include <curl/curl.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "tests/harness/agent_proc.h"
#include "tests/harness/servers.h"

using namespace pk_test;
using nlohmann::json;

namespace {

std::string urlencode(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
  std::string out = e;
  curl_free(e);
  return out;
}

// Every alert's `for` in the rules this test loads.
constexpr int kForSeconds = 5;

class PrometheusServer {
 public:
  PrometheusServer(const std::vector<std::string>& targets) : port_(free_port()) {
    std::string t;
    for (const auto& x : targets) t += (t.empty() ? "'" : ", '") + x + "'";
    std::string rules = read_file(SOURCE_DIR "/deploy/prometheus/poolkeeper.yaml");
    std::string cut = std::regex_replace(rules, std::regex(R"(\bfor: [0-9]+[smh]\n)"),
                                         "for: " + std::to_string(kForSeconds) + "s\n");
    if (cut == rules) throw std::runtime_error("no `for:` in deploy/prometheus/poolkeeper.yaml");
    write_file(dir_.file("poolkeeper.yaml"), cut);
    write_file(dir_.file("prometheus.yml"),
               "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
               "rule_files:\n  - " + dir_.file("poolkeeper.yaml") + "\n"
               "scrape_configs:\n  - job_name: poolkeeper\n    static_configs:\n      - targets: [" + t + "]\n");
    proc_ = Process({"/usr/bin/prometheus", "--config.file=" + dir_.file("prometheus.yml"),
                     "--storage.tsdb.path=" + dir_.file("data"),
                     "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
                    dir_.file("prometheus.log"));
    if (!wait_for([&] { return http_get(url() + "/-/ready").status == 200; }, 30000ms, 100ms))
      throw std::runtime_error("prometheus did not become ready:\n" + log());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(dir_.file("prometheus.log")); }
  json api(const std::string& path) const {
    auto r = http_get(url() + path, 5000);
    try {
      return json::parse(r.body);
    } catch (const std::exception&) {
      return {{"status", "error"}, {"error", "HTTP " + std::to_string(r.status) + ": " + r.body}};
    }
  }
  json query(const std::string& q) const { return api("/api/v1/query?query=" + urlencode(q)); }
  // Alerts firing now, by name → label sets.
  std::multimap<std::string, json> firing() const {
    std::multimap<std::string, json> out;
    json a = api("/api/v1/alerts");
    if (a.value("status", "") != "success") return out;
    for (const auto& x : a["data"]["alerts"])
      if (x.value("state", "") == "firing") out.emplace(x["labels"].value("alertname", ""), x["labels"]);
    return out;
  }

 private:
  TempDir dir_;
  int port_;
  Process proc_;
};

}  // namespace

TEST(PrometheusLiveTest, AlertsFireAndEveryDashboardQueryHasData) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/prometheus")) << "prometheus is not installed (deploy/packages.sh)";
  Stack stack;
  stack.start();
  stack.age_canary(std::chrono::hours(2));  // older than the checks' max_age of 1 h
  TempDir etcd_dir;
  Etcd etcd(etcd_dir.path());
  etcd.start();

  AgentProc a("h1.example.org"), b("h2.example.org");
  auto config = [&](AgentProc& self, AgentProc& peer) {
    std::string peers = "peers = [\"" + peer.url() + "\"]\nmin_pooled = 1\n";
    return "[agent]\nlisten = \"127.0.0.1:" + std::to_string(self.port()) + "\"\nhostname = \"" + self.hostname() +
           "\"\nadmin_socket = \"" + self.socket() + "\"\nstate_dir = \"" + self.dir().file("state") +
           "\"\nboot_id_file = \"" + self.dir().file("boot_id") + "\"\ndrain_seconds = 0\n"
           "[services.nfs]\nchecks = [\"export\"]\n" + peers +
           "[services.http]\nchecks = [\"web\"]\n" + peers +
           "[services.misc]\nchecks = [\"flag\"]\nmin_pooled = 0\n"  // no floor: it can go out everywhere
           "[conftool]\nendpoints = [\"" + etcd.url() + "\"]\nprefix = \"/conftool/v1/pools/test/dumps\"\n"
           "lock_prefix = \"/poolkeeper/locks\"\ncreate_missing = true\n"
           "[checks.export]\nkind = \"nfs\"\nport = " + std::to_string(stack.ganesha->port()) +
           "\npath = \"/dumps/canary.txt\"\nmax_age = \"1h\"\ninterval = \"500ms\"\ntimeout = \"400ms\"\nrise = 2\nfall = 2\n"
           "[checks.web]\nkind = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(stack.nginx->port()) +
           "/canary.txt\"\ninterval = \"500ms\"\nrise = 2\nfall = 2\n"
           "[checks.flag]\nkind = \"exec\"\ncommand = [\"/usr/bin/test\", \"-e\", \"" + self.dir().file("misc.ok") +
           "\"]\n" + self.check_timing;
  };
  a.write_config(config(a, b));
  b.write_config(config(b, a));
  a.set_ok("misc", true);
  b.set_ok("misc", true);

  // Prometheus first, so that it scrapes the agents from the moment they answer.
  std::string ta = "127.0.0.1:" + std::to_string(a.port()), tb = "127.0.0.1:" + std::to_string(b.port());
  PrometheusServer prom({ta, tb});
  a.start();
  b.start();
  ASSERT_TRUE(a.wait_health("misc", 200, 15000ms)) << a.log();
  ASSERT_TRUE(b.wait_health("misc", 200, 15000ms)) << b.log();
  ASSERT_TRUE(a.wait_health("http", 200, 15000ms)) << a.log();
  // Before the failures: nothing but what the aged canary causes may be pending or firing.
  ASSERT_TRUE(wait_for([&] { return prom.query("poolkeeper_service_pooled{service=\"misc\"} == 1")["data"]["result"].size() == 2; },
                       15000ms, 100ms))
      << prom.log();

  // The failures: the only check of "misc" on both hosts, and a refused reload on h1.
  // The canary was stale from the start: its condition is timed from when the agents show it.
  auto metric_value = [](const std::string& metrics, const std::string& series) -> std::optional<double> {
    size_t at = metrics.find("\n" + series + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::stod(metrics.substr(at + series.size() + 2));
  };
  using Clk = std::chrono::steady_clock;
  std::map<std::string, Clk::time_point> shown;  // alert → when the agents' metrics showed its condition
  std::map<std::string, double> for_s = {{"PoolkeeperCanaryStale", kForSeconds},
                                         {"PoolkeeperServiceAllHostsOut", kForSeconds},
                                         {"PoolkeeperConfigReloadFailed", kForSeconds}};
  a.set_ok("misc", false);
  b.set_ok("misc", false);
  write_file(a.dir().file("agent.toml"), read_file(a.dir().file("agent.toml")) + "\n[checks.broken\n");
  a.signal(SIGHUP);
  auto deadline = Clk::now() + 60s;
  std::map<std::string, Clk::time_point> fired;
  std::map<std::string, json> fired_labels;
  while (Clk::now() < deadline && fired.size() < for_s.size()) {
    std::string ma = a.get("/metrics").body, mb = b.get("/metrics").body;
    auto now = Clk::now();
    auto age = metric_value(ma, "poolkeeper_check_data_age_seconds{check=\"export\"}");
    auto max = metric_value(ma, "poolkeeper_check_data_max_age_seconds{check=\"export\"}");
    if (!shown.count("PoolkeeperCanaryStale") && age && max && *age > *max) shown["PoolkeeperCanaryStale"] = now;
    if (!shown.count("PoolkeeperServiceAllHostsOut") && metric_value(ma, "poolkeeper_service_pooled{service=\"misc\"}") == 0.0 &&
        metric_value(mb, "poolkeeper_service_pooled{service=\"misc\"}") == 0.0)
      shown["PoolkeeperServiceAllHostsOut"] = now;
    if (!shown.count("PoolkeeperConfigReloadFailed") && metric_value(ma, "poolkeeper_config_last_reload_successful") == 0.0)
      shown["PoolkeeperConfigReloadFailed"] = now;
    auto f = prom.firing();
    for (const auto& [name, labels] : f) {
      if (!for_s.count(name) || fired.count(name)) continue;
      fired[name] = Clk::now();
      fired_labels[name] = labels;
    }
    std::this_thread::sleep_for(100ms);
  }
  for (const auto& [name, for_seconds] : for_s) {
    ASSERT_TRUE(shown.count(name)) << name << ": the agents never showed the condition\n" << a.get("/metrics").body;
    ASSERT_TRUE(fired.count(name)) << name << " did not fire within 60 s\n" << prom.api("/api/v1/alerts").dump(1);
    double after = std::chrono::duration<double>(fired[name] - shown[name]).count();
    std::printf("%-30s firing %.2f s after the agents showed its condition (for %.0f s + 2 scrapes of 1 s)\n",
                name.c_str(), after, for_seconds);
    // Sampling the agents and the API every 100 ms: allow that much on top.
    EXPECT_LE(after, for_seconds + 2 + 0.3) << name;
    EXPECT_GE(after, for_seconds - 2) << name << " fired before its `for`";
  }
  EXPECT_EQ(fired_labels["PoolkeeperServiceAllHostsOut"].value("service", ""), "misc");
  EXPECT_EQ(fired_labels["PoolkeeperCanaryStale"].value("check", ""), "export");
  EXPECT_EQ(fired_labels["PoolkeeperConfigReloadFailed"].value("instance", ""), ta);
  // Alerts that must not fire here: every host answers, nfs is kept in by the floor on
  // h1 (so it is not "all hosts out"), http is served.
  for (const auto& [name, labels] : prom.firing()) {
    EXPECT_NE(name, "PoolkeeperAgentDown") << labels.dump();
    if (name == "PoolkeeperServiceAllHostsOut") {
      EXPECT_EQ(labels.value("service", ""), "misc") << labels.dump();
    }
  }

  // Every dashboard query, with the variables filled in, returns data.
  json dash = json::parse(read_file(SOURCE_DIR "/deploy/grafana/poolkeeper.json"));
  EXPECT_EQ(dash.value("timezone", ""), "utc");
  std::set<std::string> vars;
  for (const auto& v : dash["templating"]["list"]) vars.insert(v.value("name", ""));
  EXPECT_EQ(vars, (std::set<std::string>{"datasource", "instance", "service", "check"}));
  std::map<std::string, std::string> fill = {{"$instance", ta}, {"$service", "nfs"}, {"$check", "export"},
                                             {"$__rate_interval", "1m"}, {"$__interval", "1s"}};
  auto filled = [&](std::string q) {
    for (const auto& [k, v] : fill)
      for (size_t at = q.find(k); at != std::string::npos; at = q.find(k, at + v.size())) q.replace(at, k.size(), v);
    return q;
  };
  int queries = 0, answered = 0;
  bool text_panel = false, state_timeline = false;
  std::set<std::string> kinds;
  for (const auto& p : dash["panels"]) {
    std::string type = p.value("type", "");
    kinds.insert(type);
    text_panel |= type == "text";
    state_timeline |= type == "state-timeline";
    if (type == "row" || type == "text") continue;
    EXPECT_EQ(p["datasource"].value("uid", ""), "${datasource}") << p.value("title", "");
    if (type == "timeseries") {
      EXPECT_EQ(p["fieldConfig"]["defaults"].value("min", -1), 0) << p.value("title", "") << ": y axis from zero";
    }
    ASSERT_FALSE(p["targets"].empty()) << p.value("title", "");
    for (const auto& t : p["targets"]) {
      std::string q = filled(t.value("expr", ""));
      EXPECT_EQ(q.find('$'), std::string::npos) << q;
      json r = prom.query(q);
      ++queries;
      answered += r.value("status", "") == "success" && !r["data"]["result"].empty();
      EXPECT_EQ(r.value("status", ""), "success") << p.value("title", "") << ": " << q << "\n" << r.dump();
      EXPECT_FALSE(r["data"]["result"].empty()) << p.value("title", "") << ": no data for " << q;
      // The stale canary fails nfs on both hosts; the floor keeps h1 (the lowest name) in.
      if (p.value("title", "") == "Pool state per host and service" && !r["data"]["result"].empty()) {
        EXPECT_EQ(r["data"]["result"][0]["value"][1], "1") << "kept by floor\n" << r.dump();
      }
    }
  }
  EXPECT_TRUE(text_panel) << "a legend text panel";
  EXPECT_TRUE(state_timeline);
  // The variables' own queries: label_values(METRIC{…}, LABEL) has values.
  for (const auto& v : dash["templating"]["list"]) {
    if (v.value("type", "") != "query") continue;
    std::smatch m;
    std::string def = v.value("definition", "");
    ASSERT_TRUE(std::regex_match(def, m, std::regex(R"(label_values\((.*), (\w+)\))"))) << def;
    json r = prom.api("/api/v1/series?match[]=" + urlencode(filled(m[1].str())));
    ++queries;
    bool has = false;
    for (const auto& s : r["data"]) has |= s.contains(m[2].str());
    answered += has;
    EXPECT_TRUE(has) << def << "\n" << r.dump();
  }
  // The status page of h1 in this state (floor, conftool keys, peers, a stuck canary),
  // kept beside the browser test's screenshots for people to look at.
  if (std::filesystem::exists("/usr/bin/chromium")) {
    std::filesystem::create_directories(ARTIFACT_DIR);
    std::string png = std::string(ARTIFACT_DIR) + "/status_page_conftool_peers.png", out;
    int rc = run_command({"sh", "-c", "timeout 90 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
                                      "--no-first-run --hide-scrollbars --user-data-dir=" + a.dir().file("chrome") +
                                      " --screenshot=" + png + " --window-size=1366,1500 " + a.url() + "/ >/dev/null 2>&1"},
                         &out, 100000ms);
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(std::filesystem::exists(png));
    std::printf("screenshot: %s\n", png.c_str());
  }
  std::printf("%d of %d dashboard queries (panels and variables) returned data\n", answered, queries);
  EXPECT_GE(queries, 19);
}

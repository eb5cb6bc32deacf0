// What GET / (the status page) costs beside GET /health, with 10 checks, each with a
// full result history: in process (handle_http on one snapshot: the first request
// renders, later ones hit the per-snapshot cache; and a fresh render for comparison),
// then over HTTP against a real agent with 10 checks on one keep-alive connection.
//   build/tests/bench/status_page_bench [REQUESTS]
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "agent/publish/http_api.h"
#include "agent/publish/status_page.h"
#include "tests/harness/harness.h"
#include "tests/harness/snapshot_builders.h"

using namespace poolkeeper;
using namespace pk_test;
using Clk = std::chrono::steady_clock;

namespace {

Snapshot ten_checks() {
  Snapshot s;
  s.host = "clouddumps1001.example.org";
  s.lifecycle = Lifecycle::kRunning;
  s.generated = std::chrono::system_clock::now();
  for (const char* svc : {"nfs", "http", "rsync"}) {
    ServiceView v;
    v.name = svc;
    v.effective = {Effective::kNotPooled, "check c3 unhealthy: status 500"};
    v.has_peers = true;
    v.min_pooled = 1;
    for (int i = 0; i < 10; ++i) v.checks.push_back("c" + std::to_string(i));
    s.services.push_back(v);
  }
  for (int i = 0; i < 10; ++i) {
    CheckView c = check_view("c" + std::to_string(i), "http", "GET http://127.0.0.1/", CheckHealth::kHealthy,
                             Result::pass("status 200"), 3, 2);
    auto h = std::make_shared<std::vector<ResultPoint>>();
    for (int k = 0; k < 60; ++k) h->push_back({s.generated, static_cast<float>(0.0001 * k), k % 7 ? Outcome::kPassed : Outcome::kTimeout});
    c.history = h;
    s.checks.push_back(c);
  }
  for (int i = 0; i < 100; ++i) s.events.push_back({s.generated, EventKind::kCheck, "c1", "healthy", "unhealthy", "status 500"});
  return s;
}

std::string no_metrics() { return ""; }

// Mean µs per call of fn over n calls, and the p99.
std::pair<double, double> time_us(int n, const std::function<void()>& fn) {
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto t0 = Clk::now();
    fn();
    us.push_back(std::chrono::duration<double, std::micro>(Clk::now() - t0).count());
  }
  double sum = 0;
  for (double u : us) sum += u;
  std::sort(us.begin(), us.end());
  return {sum / n, us[static_cast<size_t>(n * 0.99)]};
}

size_t sink(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  Snapshot s = ten_checks();
  size_t bytes = 0;
  auto first = time_us(1, [&] { bytes = handle_http("GET", "/", s, no_metrics).body.size(); });
  auto cached = time_us(n, [&] { handle_http("GET", "/", s, no_metrics); });
  auto render = time_us(n, [&] { render_status_page(s); });
  auto health = time_us(n, [&] { handle_http("GET", "/health", s, no_metrics); });
  std::printf("in process, 10 checks, 3 services, %zu-byte page, %d calls:\n", bytes, n);
  std::printf("  %-34s %9s %9s\n", "", "mean µs", "p99 µs");
  std::printf("  %-34s %9.1f %9s\n", "GET / first (renders)", first.first, "-");
  std::printf("  %-34s %9.1f %9.1f\n", "GET / same snapshot (cached)", cached.first, cached.second);
  std::printf("  %-34s %9.1f %9.1f\n", "render_status_page (no cache)", render.first, render.second);
  std::printf("  %-34s %9.1f %9.1f\n", "GET /health", health.first, health.second);

  // A real agent with 10 exec checks; one keep-alive connection, sequential requests.
  TempDir dir;
  int port = free_port();
  std::string cfg = "[agent]\nlisten = \"127.0.0.1:" + std::to_string(port) +
                    "\"\nhostname = \"bench.example.org\"\nadmin_socket = \"" + dir.file("admin.sock") +
                    "\"\nstate_dir = \"" + dir.file("state") + "\"\n[services.web]\nchecks = [";
  std::string checks;
  for (int i = 0; i < 10; ++i) {
    cfg += (i ? ", " : "") + std::string("\"c") + std::to_string(i) + "\"";
    checks += "[checks.c" + std::to_string(i) + "]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n";
  }
  cfg += "]\n" + checks;
  write_file(dir.file("agent.toml"), cfg);
  Process agent({POOLKEEPER_BIN, "--config", dir.file("agent.toml")}, dir.file("agent.log"));
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  if (!wait_for([&] { return http_get(base + "/health/web").status == 200; }, std::chrono::seconds(10))) {
    std::fprintf(stderr, "agent did not come up:\n%s\n", read_file(dir.file("agent.log")).c_str());
    return 1;
  }
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  auto over_http = [&](const std::string& path) {
    curl_easy_setopt(c, CURLOPT_URL, (base + path).c_str());
    return time_us(n, [&] { curl_easy_perform(c); });
  };
  over_http("/");  // warm the connection
  auto page = over_http("/");
  auto h = over_http("/health");
  curl_easy_cleanup(c);
  std::printf("over HTTP (real agent, 10 checks at 1 s, keep-alive, %d requests each):\n", n);
  std::printf("  %-34s %9.1f %9.1f\n", "GET /", page.first, page.second);
  std::printf("  %-34s %9.1f %9.1f\n", "GET /health", h.first, h.second);
  return page.first < 1000 ? 0 : 1;
}

// CPU per probe result in the model, with 1, 50, 200 and 1000 checks: the owner's turn
// for one result (fold it in, tick, publish the snapshot the HTTP server reads, feed the
// metrics) driven in simulated time, so the table shows whether the cost grows with the
// number of checks. Usage: model_bench [results per size, default 5000].
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/model/health_model.h"
#include "agent/publish/metrics.h"

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// `n` checks, four per service (the last service may have fewer), all critical, 1 s apart.
ModelConfig make_config(int n) {
  ModelConfig c;
  c.agent.hostname = "host1.example.org";
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "check%04d", i);
    CheckConfig cc;
    cc.name = name;
    cc.kind = "http";
    cc.fingerprint = name;
    c.checks[name] = cc;
    std::string svc = "service" + std::to_string(i / 4);
    c.services[svc].name = svc;
    c.services[svc].checks.push_back(name);
  }
  return c;
}

struct Figures {
  double ns_per_result = 0;
  long results = 0;
  long transitions = 0;
};

struct CountEvents : Observer {
  long n = 0;
  void on_event(const Event&) override { ++n; }
};

// Every check passes, except five results in each 50 of a check, which fail: every
// check goes unhealthy and back about once a minute, so transitions are part of the mix.
// The checks' windows are staggered, so any stretch of results has the same mix.
Figures run(int n, long measured) {
  FakeClock clock;
  ModelConfig config = make_config(n);
  HealthModel engine(config, clock, [] { return 0.5; }, "boot-1");
  Metrics metrics;
  CountEvents events;
  engine.add_observer(&metrics);
  engine.add_observer(&events);
  engine.set_lifecycle(Lifecycle::kRunning);
  std::map<std::string, long> count;
  long warmup = 10L * n, done = 0;
  double start = 0;
  long events_at_start = 0;
  std::shared_ptr<const Snapshot> published = engine.snapshot();
  while (done < warmup + measured) {
    clock.advance_to(engine.next_due());
    for (const auto& d : engine.take_due()) {
      if (done == warmup) {
        start = thread_cpu_ns();
        events_at_start = events.n;
      }
      long k = (count[d.name]++ + static_cast<long>(std::hash<std::string>()(d.name) % 50)) % 50;
      Result r = k >= 40 && k < 45 ? Result::fail(Outcome::kFailed, "status 500") : Result::pass();
      r.latency = 3ms;
      // One owner turn per result, as the agent's loop does it.
      engine.on_result(d.name, d.gen, d.seq, r);
      engine.tick();
      published = engine.snapshot();
      ++done;
    }
  }
  double end = thread_cpu_ns();
  return {(end - start) / static_cast<double>(done - warmup), done - warmup, events.n - events_at_start};
}

}  // namespace

int main(int argc, char** argv) {
  long measured = argc > 1 ? std::atol(argv[1]) : 5000;
  std::printf("%8s %10s %12s %14s\n", "checks", "results", "events", "ns/result(CPU)");
  for (int n : {1, 50, 200, 1000}) {
    Figures f = run(n, measured);
    std::printf("%8d %10ld %12ld %14.0f\n", n, f.results, f.transitions, f.ns_per_result);
  }
  return 0;
}

// The model in simulated time: a FakeClock moves only when the test says so, and
// probe results are submitted by the test. No sleeps, no threads.
#include "agent/model/health_model.h"

#include "agent/config/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {

const char* kConfig = R"(
[agent]
hostname = "host1.example.org"
[services.nfs]
checks = ["export"]
[services.http]
checks = ["web", "export", "disk"]
[checks.export]
kind = "exec"
command = ["/bin/true"]
interval = "2s"
timeout = "1s"
rise = 2
fall = 2
[checks.web]
kind = "exec"
command = ["/bin/true"]
[checks.disk]
kind = "exec"
command = ["/bin/true"]
critical = false
rise = 1
fall = 1
)";

struct Recorder : Observer {
  std::vector<Event> events;
  int results = 0;
  void on_event(const Event& e) override { events.push_back(e); }
  void on_result(const std::string&, const Result&, WallTime) override { ++results; }
};

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : config_(parse_config(kConfig, "t.toml")) {}

  void make(std::function<double()> rnd = [] { return 0.5; }) {
    model_ = std::make_unique<HealthModel>(config_, clock_, rnd);
    model_->add_observer(&rec_);
  }

  // Advances time to the next due probe, answers every due probe with `answer(name)`,
  // and repeats until `until`. Returns how many probes ran per check.
  std::map<std::string, int> drive(SteadyTime until,
                                   const std::function<bool(const std::string&)>& answer) {
    std::map<std::string, int> runs;
    for (int guard = 0; guard < 100000; ++guard) {
      SteadyTime next = model_->next_due();
      if (next > until) break;
      clock_.advance_to(next);
      for (const auto& d : model_->take_due()) {
        ++runs[d.name];
        model_->on_result(d.name, d.gen, d.seq, answer(d.name) ? Result::pass() : Result::fail(Outcome::kNetworkError, "connection refused"));
        // The snapshot, rebuilt from what changed, is the one made afresh (`generated`
        // aside: a snapshot with no change since is handed out again, as built).
        nlohmann::json built = status_json(*model_->snapshot()), fresh = status_json(*model_->snapshot_from_scratch());
        built.erase("generated");
        fresh.erase("generated");
        EXPECT_EQ(built, fresh);
      }
    }
    clock_.advance_to(until);
    return runs;
  }

  // Intent changes the model made by itself (the owner persists each).
  int automatic_intents() const {
    return static_cast<int>(std::count_if(rec_.events.begin(), rec_.events.end(), [](const Event& e) {
      return e.kind == EventKind::kIntent && e.automatic;
    }));
  }

  const ServiceView& svc(const std::string& name) {
    snap_ = model_->snapshot();
    return *snap_->find_service(name);
  }

  Config config_;
  FakeClock clock_;
  Recorder rec_;
  std::unique_ptr<HealthModel> model_;
  std::shared_ptr<const Snapshot> snap_;
};

}  // namespace

TEST_F(EngineTest, StartsNotPooledAndSpreadsFirstProbes) {
  make([] { return 0.999; });
  SteadyTime t0 = clock_.now();
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  EXPECT_EQ(svc("nfs").effective.reason, "starting");
  EXPECT_TRUE(model_->take_due().empty());
  // With the largest random draw, the first probe of each check comes just before
  // interval/2 after start.
  EXPECT_LT(model_->next_due(), t0 + 1s);   // export: interval 2s → < 1s
  EXPECT_GE(model_->next_due(), t0 + 499ms);  // web: interval 1s → ~0.4995s
  model_->set_lifecycle(Lifecycle::kRunning);
  EXPECT_EQ(svc("nfs").effective.reason, "check export unknown: no result yet");
}

TEST_F(EngineTest, StartupGatingThenRiseThenFall) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  SteadyTime t0 = clock_.now();
  // export rise=2: first result then a fast_interval later the second → healthy.
  drive(t0 + 1001ms, [](const std::string&) { return true; });
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kHealthy);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  // web rise=3 at 0.5s, +~0.21s, +~0.21s → healthy by ~0.93s.
  EXPECT_EQ(svc("http").effective.state, Effective::kPooled);
  EXPECT_EQ(svc("http").effective.reason, "");

  // export breaks: out after fall=2 results: ≤ interval*1.1 + fast_interval*1.1.
  SteadyTime broke = clock_.now();
  SteadyTime out_at{};
  for (int guard = 0; guard < 100 && svc("nfs").effective.state == Effective::kPooled; ++guard) {
    clock_.advance_to(model_->next_due());
    for (const auto& d : model_->take_due())
      model_->on_result(d.name, d.name == "export" ? Result::fail(Outcome::kNetworkError, "connection refused")
                                                    : Result::pass());
    out_at = clock_.now();
  }
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  EXPECT_EQ(svc("nfs").effective.reason, "check export unhealthy: connection refused");
  EXPECT_LE(out_at - broke, 2s * 1.1 + 200ms * 1.1);
  // a check shared by two services takes both out
  EXPECT_EQ(svc("http").effective.state, Effective::kNotPooled);
  EXPECT_EQ(svc("http").effective.reason, "check export unhealthy: connection refused");
}

TEST_F(EngineTest, FastIntervalOnlyWhileChanging) {
  make([] { return 0.0; });  // no jitter: exact intervals
  model_->set_lifecycle(Lifecycle::kRunning);
  clock_.advance(0ms);
  auto due = model_->take_due();  // all first probes at t0 (spread draw 0)
  ASSERT_EQ(due.size(), 3u);
  SteadyTime t = clock_.now();
  model_->on_result("web", Result::pass());
  model_->on_result("disk", Result::pass());
  // Takes what is due; answers the other checks at once; counts export's probes.
  auto export_due = [&] {
    auto d = model_->take_due();
    for (const auto& x : d)
      if (x.name != "export") model_->on_result(x.name, Result::pass());
    return std::count_if(d.begin(), d.end(), [](const HealthModel::Due& x) { return x.name == "export"; });
  };
  model_->on_result("export", Result::pass());  // rising 1/2 → fast
  EXPECT_EQ(model_->next_due(), t + 200ms);
  clock_.advance(200ms);
  ASSERT_EQ(export_due(), 1);
  model_->on_result("export", Result::pass());  // healthy → normal interval
  SteadyTime healthy = clock_.now();
  clock_.advance(1999ms);
  for (int i = 0; i < 20; ++i) export_due();  // the others' probes come and go
  EXPECT_EQ(export_due(), 0);
  clock_.advance_to(healthy + 2s);
  ASSERT_EQ(export_due(), 1);
  model_->on_result("export", Result::fail(Outcome::kTimeout, "timed out"));  // falling → fast
  EXPECT_EQ(model_->next_due(), clock_.now() + 200ms);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);  // 1 of fall=2
  clock_.advance(200ms);
  ASSERT_EQ(export_due(), 1);
  model_->on_result("export", Result::fail(Outcome::kTimeout, "timed out"));
  EXPECT_EQ(svc("nfs").effective.reason, "check export unhealthy: timed out");
  SteadyTime failed = clock_.now();
  clock_.advance(1999ms);
  EXPECT_EQ(export_due(), 0);  // settled down → normal interval
  clock_.advance(1ms);
  EXPECT_EQ(export_due(), 1);
  (void)failed;
}

TEST_F(EngineTest, JitterStaysWithinTenPercent) {
  std::mt19937 gen(42);
  make([&gen] { return std::uniform_real_distribution<double>(0, 1)(gen); });
  model_->set_lifecycle(Lifecycle::kRunning);
  SteadyTime t0 = clock_.now();
  EXPECT_GE(model_->next_due(), t0);
  // Run all checks healthy; record each export gap.
  Duration min_gap = 1h, max_gap = 0s;
  SteadyTime last{};
  for (int i = 0; i < 2000; ++i) {
    clock_.advance_to(model_->next_due());
    for (const auto& d : model_->take_due()) {
      const std::string& n = d.name;
      if (n == "export" && model_->check_state("export")->health() == CheckHealth::kHealthy) {
        if (last != SteadyTime{}) {
          min_gap = std::min(min_gap, clock_.now() - last);
          max_gap = std::max(max_gap, clock_.now() - last);
        }
        last = clock_.now();
      }
      model_->on_result(n, Result::pass());
    }
  }
  EXPECT_GE(min_gap, 2s);
  EXPECT_LE(max_gap, 2200ms);
  EXPECT_GT(max_gap - min_gap, 100ms);  // it does jitter
}

TEST_F(EngineTest, StartWindowBatchesProbesWithinTheJitter) {
  // 200 checks at 1 s: with a window of 5% (at most 50 ms), a due probe waits for others
  // falling due, so the owner turns (and wakes the probe loop) far less often than it
  // starts probes. The wait comes out of the 10% jitter: every probe still starts
  // between 1 s and 1.1 s after its previous result, and never before it is due.
  std::string text = "[agent]\nhostname = \"h\"\n[services.s]\nchecks = [";
  for (int i = 0; i < 200; ++i) text += (i ? ", " : "") + std::string("\"c") + std::to_string(i) + "\"";
  text += "]\n";
  for (int i = 0; i < 200; ++i)
    text += "[checks.c" + std::to_string(i) + "]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\nrise = 1\n";
  config_ = parse_config(text, "t.toml");
  std::mt19937 gen(7);
  std::vector<double> draws;  // every draw, in order: the spread and the jitters
  make([&] {
    draws.push_back(std::uniform_real_distribution<double>(0, 1)(gen));
    return draws.back();
  });
  model_->set_probe_start_window(0.05, 50ms);
  model_->set_lifecycle(Lifecycle::kRunning);
  std::map<std::string, SteadyTime> due_at, last_result;
  SteadyTime t0 = clock_.now();
  size_t i = 0;  // the first probes were spread in the order of the checks' names
  for (const auto& [name, cc] : config_.checks) due_at[name] = t0 + std::chrono::duration_cast<Duration>(1s * (draws.at(i++) * 0.5));
  int turns = 0, starts = 0;
  Duration min_gap = 1h, max_gap = 0s;
  std::map<std::string, uint64_t> last_seq;
  while (clock_.now() < t0 + 20s) {
    SteadyTime next = model_->next_due();
    ASSERT_GT(next, clock_.now());  // nothing left behind at the last turn
    clock_.advance_to(next);
    auto due = model_->take_due();
    if (due.empty()) continue;
    ++turns;
    for (const auto& d : due) {
      ++starts;
      EXPECT_GE(clock_.now(), due_at.at(d.name)) << d.name;  // never early
      EXPECT_LE(clock_.now(), due_at.at(d.name) + 50ms) << d.name;
      if (last_result.count(d.name)) {
        min_gap = std::min(min_gap, clock_.now() - last_result[d.name]);
        max_gap = std::max(max_gap, clock_.now() - last_result[d.name]);
      }
      EXPECT_GT(d.seq, last_seq[d.name]);
      last_seq[d.name] = d.seq;
      size_t before = draws.size();
      model_->on_result(d.name, d.gen, d.seq, Result::pass());
      last_result[d.name] = clock_.now();
      // The result rescheduled it: interval plus the random part of the jitter it drew.
      ASSERT_EQ(draws.size(), before + 1);
      due_at[d.name] = clock_.now() + 1s + std::chrono::duration_cast<Duration>(50ms * draws.back());
    }
  }
  EXPECT_GE(starts, 200 * 17);
  EXPECT_LT(turns * 6, starts) << turns << " turns for " << starts << " probes";
  EXPECT_GE(min_gap, 1s);
  EXPECT_LE(max_gap, 1100ms);
  EXPECT_GT(max_gap - min_gap, 50ms);  // still random
  EXPECT_EQ(svc("s").effective.state, Effective::kPooled);
}

TEST_F(EngineTest, NextProbeCountsFromWhenTheResultCame) {
  make([] { return 0.0; });  // first probes at t0, no jitter
  model_->set_lifecycle(Lifecycle::kRunning);
  auto due = model_->take_due();
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(model_->probes_awaiting(), 3u);
  SteadyTime came = clock_.now() + 10ms;
  clock_.advance(40ms);  // the owner takes the results 30 ms after they came
  for (const auto& d : due) model_->on_result(d.name, d.gen, d.seq, Result::pass(), came);
  EXPECT_EQ(model_->probes_awaiting(), 0u);
  EXPECT_EQ(model_->next_due(), came + 200ms);  // web and export rise: fast_interval
  // A time to come is taken as now.
  clock_.advance_to(model_->next_due());
  due = model_->take_due();
  ASSERT_EQ(due.size(), 2u);
  for (const auto& d : due) model_->on_result(d.name, d.gen, d.seq, Result::pass(), clock_.now() + 1h);
  EXPECT_EQ(model_->next_due(), clock_.now() + 200ms);  // web rises on (rise 3)
}

TEST_F(EngineTest, ProbesAwaitingCountsOnlyThoseStillInTime) {
  make([] { return 0.0; });
  model_->set_lifecycle(Lifecycle::kRunning);
  auto due = model_->take_due();
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(model_->probes_awaiting(), 3u);
  for (const auto& d : due)
    if (d.name != "export") model_->on_result(d.name, d.gen, d.seq, Result::pass());
  EXPECT_EQ(model_->probes_awaiting(), 1u);
  // export hangs: past its timeout (1 s) and the grace, it is counted as stuck and no
  // longer awaited; its late result frees it.
  clock_.advance(1s + HealthModel::kOverdueGrace);
  model_->tick();
  EXPECT_EQ(model_->probes_awaiting(), 0u);
  model_->on_result("export", due[0].gen, due[0].seq, Result::pass());
  EXPECT_EQ(model_->probes_awaiting(), 0u);
  // A reload that removes a check with a probe in flight forgets it.
  due = model_->take_due();
  ASSERT_TRUE(std::any_of(due.begin(), due.end(), [](const HealthModel::Due& d) { return d.name == "disk"; }));
  size_t awaiting = model_->probes_awaiting();
  EXPECT_EQ(awaiting, due.size());
  Config fewer = config_;
  fewer.checks.erase("disk");
  for (auto& [name, sc] : fewer.services) std::erase(sc.checks, "disk");
  model_->reconfigure(fewer);
  EXPECT_EQ(model_->probes_awaiting(), awaiting - 1);
}

TEST_F(EngineTest, NoStartWindowByDefault) {
  make([] { return 0.0; });  // first probes at t0, no jitter
  model_->set_lifecycle(Lifecycle::kRunning);
  for (const auto& d : model_->take_due()) model_->on_result(d.name, d.gen, d.seq, Result::pass());
  // web and export rise (fast_interval 200 ms), disk is healthy at once (1 s).
  EXPECT_EQ(model_->next_due(), clock_.now() + 200ms);  // exactly when due
  model_->set_probe_start_window(0.025, 25ms);
  EXPECT_EQ(model_->next_due(), clock_.now() + 205ms);  // may wait 2.5% of 200 ms for others
  clock_.advance(200ms);
  auto due = model_->take_due();  // due now: taken at any turn from now on
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].name, "export");
  EXPECT_EQ(due[1].name, "web");
  for (const auto& d : due) model_->on_result(d.name, d.gen, d.seq, Result::pass());
  // export is healthy (rise 2: 2 s, may wait 25 ms), web rises on (rise 3: 200 ms + 5 ms),
  // disk is due 800 ms from now (may wait 25 ms).
  EXPECT_EQ(model_->next_due(), clock_.now() + 205ms);
  clock_.advance(205ms);
  due = model_->take_due();
  ASSERT_EQ(due.size(), 1u);
  model_->on_result(due[0].name, due[0].gen, due[0].seq, Result::pass());  // web healthy: 1 s
  EXPECT_EQ(model_->next_due(), clock_.now() + 595ms + 25ms);  // disk
}

TEST_F(EngineTest, HungProbeDelaysNothingElse) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  // "export" is taken once and never answers; the others keep their schedule.
  std::map<std::string, int> runs;
  SteadyTime end = clock_.now() + 30s;
  for (int guard = 0; guard < 10000; ++guard) {
    SteadyTime next = model_->next_due();
    if (next > end) break;
    clock_.advance_to(next);
    model_->tick();
    for (const auto& d : model_->take_due()) {
      ++runs[d.name];
      if (d.name != "export") model_->on_result(d.name, Result::pass());
    }
  }
  EXPECT_EQ(runs["export"], 1);  // one in flight at a time, never re-launched
  EXPECT_GE(runs["web"], 25);     // ~30 s at 1 s intervals
  EXPECT_GE(runs["disk"], 25);
  // Meanwhile its overdue deadlines count as failures: it never rose.
  EXPECT_EQ(svc("nfs").effective.reason.rfind("check export unhealthy: probe stuck: no result", 0), 0u)
      << svc("nfs").effective.reason;
}

TEST_F(EngineTest, NonCriticalCheckOnlyWarns) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string& n) { return n != "disk"; });
  const ServiceView& http = svc("http");
  EXPECT_EQ(http.effective.state, Effective::kPooled);
  EXPECT_TRUE(http.healthy);
  ASSERT_EQ(http.warnings.size(), 1u);
  EXPECT_EQ(http.warnings[0], "check disk unhealthy: connection refused");
}

TEST_F(EngineTest, IntentAndLifecycle) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string&) { return true; });
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  AdminIntent dep{Intent::kDepooled, "kernel upgrade", "alice", clock_.wall()};
  EXPECT_TRUE(model_->set_intent("nfs", dep));
  EXPECT_FALSE(model_->set_intent("nope", dep));
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  EXPECT_EQ(svc("nfs").effective.reason, "depooled: kernel upgrade");
  EXPECT_EQ(svc("http").effective.state, Effective::kPooled);
  model_->set_intent("http", {Intent::kDrained, "", "bob", clock_.wall()});
  EXPECT_EQ(svc("http").effective.state, Effective::kDrained);
  model_->set_lifecycle(Lifecycle::kStopping);
  // Stopping alone changes no decision (a restart of the agent): only a release does.
  EXPECT_EQ(svc("http").effective.state, Effective::kDrained);
  EXPECT_EQ(svc("nfs").effective.reason, "depooled: kernel upgrade");
  EXPECT_FALSE(svc("http").stop_released);
  model_->release_for_stop("http");
  model_->release_for_stop("nfs");
  EXPECT_EQ(svc("http").effective.reason, "stopping");
  EXPECT_EQ(svc("nfs").effective.reason, "stopping");
  EXPECT_TRUE(svc("http").stop_released);

  // Every kind of transition became an event, in order.
  std::vector<std::string> kinds;
  for (const auto& e : rec_.events) kinds.push_back(event_kind_name(e.kind) + (":" + e.name) + ":" + e.to);
  auto has = [&](const std::string& k) {
    return std::find(kinds.begin(), kinds.end(), k) != kinds.end();
  };
  EXPECT_TRUE(has("lifecycle::running"));
  EXPECT_TRUE(has("check:export:healthy"));
  EXPECT_TRUE(has("service:nfs:pooled"));
  EXPECT_TRUE(has("intent:nfs:depooled"));
  EXPECT_TRUE(has("service:nfs:not_pooled"));
  EXPECT_TRUE(has("service:http:drained"));
  EXPECT_TRUE(has("lifecycle::stopping"));
  EXPECT_EQ(svc("nfs").intent.who, "alice");
  EXPECT_FALSE(snap_->events.empty());
}

TEST_F(EngineTest, SnapshotOnlyRebuiltOnChange) {
  make();
  auto a = model_->snapshot();
  auto b = model_->snapshot();
  EXPECT_EQ(a.get(), b.get());
  model_->set_lifecycle(Lifecycle::kRunning);
  EXPECT_NE(model_->snapshot().get(), a.get());
}

TEST_F(EngineTest, DepoolForExpiresInSimulatedTime) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string&) { return true; });
  AdminIntent dep{Intent::kDepooled, "disk swap", "alice", clock_.wall()};
  dep.expires = clock_.wall() + 2h;
  model_->set_intent("nfs", dep);
  EXPECT_EQ(svc("nfs").effective.reason, "depooled: disk swap");
  // The owner is told to wake up for the expiry even with no probe due before it.
  drive(clock_.now() + 2h - 1s, [](const std::string&) { return true; });
  EXPECT_EQ(svc("nfs").intent.intent, Intent::kDepooled);
  EXPECT_LE(model_->next_due(), clock_.now() + 1s);
  drive(clock_.now() + 2s, [](const std::string&) { return true; });
  model_->tick();
  EXPECT_EQ(svc("nfs").intent.intent, Intent::kPooled);
  EXPECT_EQ(svc("nfs").intent.who, "poolkeeper");
  EXPECT_EQ(svc("nfs").intent.reason, "depool for depooled expired (was: disk swap)");
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_EQ(automatic_intents(), 1);  // the owner persists it
}

TEST_F(EngineTest, UntilBootReturnsOnlyAfterANewBootOnceHealthy) {
  AdminIntent dep{Intent::kDepooled, "reboot", "alice", clock_.wall()};
  dep.until_boot = true;
  dep.boot_id = "boot-1";
  LoadedState st;
  st.status = LoadedState::Status::kOk;
  st.intents["nfs"] = dep;
  {  // same boot: stays depooled however healthy
    model_ = std::make_unique<HealthModel>(config_, clock_, [] { return 0.5; }, "boot-1");
    model_->load_state(st);
    model_->set_lifecycle(Lifecycle::kRunning);
    drive(clock_.now() + 10s, [](const std::string&) { return true; });
    EXPECT_EQ(svc("nfs").effective.reason, "depooled: reboot");
  }
  {  // a new boot: not pooled while rising, pooled (and intent cleared) once healthy
    model_ = std::make_unique<HealthModel>(config_, clock_, [] { return 0.5; }, "boot-2");
    rec_.events.clear();
    model_->add_observer(&rec_);
    model_->load_state(st);
    model_->set_lifecycle(Lifecycle::kRunning);
    EXPECT_EQ(svc("nfs").effective.reason, "depooled: reboot (returns once healthy: rebooted since)");
    EXPECT_TRUE(svc("nfs").returns_after_boot);
    drive(clock_.now() + 10s, [](const std::string&) { return true; });
    EXPECT_EQ(svc("nfs").intent.intent, Intent::kPooled);
    EXPECT_EQ(svc("nfs").intent.reason, "healthy after reboot (was: reboot)");
    EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
    EXPECT_EQ(automatic_intents(), 1);
  }
}

TEST_F(EngineTest, UnreadableStateDepoolsEverything) {
  make();
  LoadedState st;
  st.status = LoadedState::Status::kUnreadable;
  st.error = "/var/lib/poolkeeper/state.json: not JSON";
  model_->load_state(st);
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 10s, [](const std::string&) { return true; });
  for (const char* s : {"nfs", "http"}) {
    EXPECT_EQ(svc(s).effective.state, Effective::kNotPooled);
    EXPECT_EQ(svc(s).effective.reason,
              "depooled: state file unreadable: /var/lib/poolkeeper/state.json: not JSON");
  }
  EXPECT_FALSE(snap_->state_file_ok);
  // An operator's pool decides.
  model_->set_intent("nfs", {Intent::kPooled, "", "alice", clock_.wall()});
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
}

TEST_F(EngineTest, FloorKeepsTheLastHostPooled) {
  config_.services["nfs"].peers = {"http://b.example.org:9473"};
  config_.services["nfs"].min_pooled = 1;
  config_.agent.hostname = "a.example.org";
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string&) { return true; });
  // The peer has not been heard from yet: unreachable.
  drive(clock_.now() + 10s, [](const std::string& n) { return n != "export"; });
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_EQ(svc("nfs").effective.reason, "kept by floor: check export unhealthy: connection refused");
  EXPECT_TRUE(svc("nfs").kept_by_floor);
  // The http service has no peers: it leaves on its own health.
  EXPECT_EQ(svc("http").effective.state, Effective::kNotPooled);
  // The peer comes up healthy and pooled: we leave.
  PeerState b;
  b.url = "http://b.example.org:9473";
  b.host = "b.example.org";
  b.reachable = true;
  b.lifecycle = "running";
  b.services["nfs"] = {"pooled", true, false, ""};
  model_->set_peers({b});
  // First the leave is announced, still pooled, and a fresh poll of the peers asked for.
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_TRUE(svc("nfs").leaving);
  auto polls = model_->take_leave_polls();
  ASSERT_EQ(polls.size(), 1u);
  EXPECT_EQ(polls[0].service, "nfs");
  EXPECT_TRUE(model_->take_leave_polls().empty());
  // A stale attempt changes nothing; the fresh poll still shows b pooled: we leave.
  EXPECT_EQ(model_->floor_leave_poll("nfs", polls[0].attempt + 1, false), LeaveDecision::kStay);
  EXPECT_TRUE(svc("nfs").leaving);
  model_->set_peers({b});
  EXPECT_EQ(model_->floor_leave_poll("nfs", polls[0].attempt, false), LeaveDecision::kLeave);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  EXPECT_FALSE(svc("nfs").leaving);
  EXPECT_EQ(snap_->find_service("nfs")->peers_pooled_healthy, 1);
  // The peer fails too and leaves (it counted on us before we left): we come back.
  b.services["nfs"] = {"not_pooled", false, true, ""};
  model_->set_peers({b});
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_TRUE(model_->take_leave_polls().empty());
  // b kept by its floor, b recovers while a fresh poll is on its way: the poll decides.
  b.services["nfs"] = {"pooled", true, false, ""};
  model_->set_peers({b});
  polls = model_->take_leave_polls();
  ASSERT_EQ(polls.size(), 1u);
  b.services["nfs"] = {"pooled", true, false, "", /*leaving=*/true};  // b is leaving too (depool)
  model_->set_peers({b});
  EXPECT_EQ(model_->floor_leave_poll("nfs", polls[0].attempt, false), LeaveDecision::kStay);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_FALSE(svc("nfs").leaving);
  // No new attempt on the view the last one ended with.
  model_->tick();
  EXPECT_TRUE(model_->take_leave_polls().empty());
  // An operator's depool is not overridden by the floor.
  model_->set_intent("nfs", {Intent::kDepooled, "maintenance", "alice", clock_.wall()});
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
}

// A check kind with an identity (CheckTraits::identity) is compared with each peer's
// check of the same name and kind; the model knows nothing else of the kind.
TEST_F(EngineTest, ComparesACheckKindsIdentityWithThePeers) {
  config_.checks["export"].traits.identity = [](const nlohmann::json& d) {
    auto it = d.find("id");
    return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  make();
  std::string answer = "A";
  auto with_id = [&](const std::string& name) {
    Result r = Result::pass();
    if (name == "export" && !answer.empty()) r.details["id"] = answer;
    return r;
  };
  auto run_for = [&](Duration d) {  // every probe due within `d` answered (export's interval: 2 s)
    for (SteadyTime until = clock_.now() + d; model_->next_due() <= until;) {
      clock_.advance_to(model_->next_due());
      for (const auto& due : model_->take_due()) model_->on_result(due.name, due.gen, due.seq, with_id(due.name));
    }
  };
  auto peer = [](const std::string& kind, nlohmann::json details) {
    PeerState b;
    b.url = "http://b.example.org:9473";
    b.host = "b.example.org";
    b.reachable = true;
    b.checks["export"] = {kind, std::move(details)};
    b.checks["web"] = {"exec", {{"id", "A"}}};  // a kind without identity: never compared
    return b;
  };
  auto match = [&]() -> std::optional<std::optional<bool>> {
    snap_ = model_->snapshot();
    if (snap_->peers.size() != 1) return std::nullopt;
    const auto& hm = snap_->peers.begin()->handles_match;
    EXPECT_FALSE(hm.contains("web"));
    auto it = hm.find("export");
    if (it == hm.end()) return std::nullopt;
    return it->second;
  };
  model_->set_peers({peer("exec", {{"id", "A"}})});
  EXPECT_EQ(match(), std::optional<std::optional<bool>>(std::optional<bool>()));  // no result of ours yet
  run_for(3s);
  EXPECT_EQ(match(), std::optional<std::optional<bool>>(true));
  model_->set_peers({peer("exec", {{"id", "B"}})});
  EXPECT_EQ(match(), std::optional<std::optional<bool>>(false));
  model_->set_peers({peer("exec", nlohmann::json::object())});  // theirs shows none
  EXPECT_EQ(match(), std::optional<std::optional<bool>>(std::optional<bool>()));
  model_->set_peers({peer("other", {{"id", "A"}})});  // another kind of the same name
  EXPECT_EQ(match(), std::optional<std::optional<bool>>(std::optional<bool>()));
  // Our identity changes: the comparison follows without a new poll.
  model_->set_peers({peer("exec", {{"id", "B"}})});
  answer = "B";
  run_for(3s);
  EXPECT_EQ(match(), std::optional<std::optional<bool>>(true));
  PeerState gone = peer("exec", {{"id", "B"}});
  gone.reachable = false;
  gone.checks.clear();
  model_->set_peers({gone});
  EXPECT_EQ(match(), std::optional<std::optional<bool>>(std::optional<bool>()));
}

TEST_F(EngineTest, ReloadKeepsStreaksOfUnchangedChecks) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string&) { return true; });
  model_->set_intent("http", {Intent::kDrained, "x", "alice", clock_.wall()});
  uint64_t export_gen = model_->generation("export");
  uint64_t web_gen = model_->generation("web");
  int export_successes = model_->check_state("export")->successes();
  Config next = parse_config(std::string(kConfig) + "\n[services.rsync]\nchecks = [\"export\"]\n", "t.toml");
  std::string changed = kConfig;
  const std::string web = "[checks.web]\nkind = \"exec\"\ncommand = [\"/bin/true\"]";
  changed.replace(changed.find(web), web.size(), "[checks.web]\nkind = \"exec\"\ncommand = [\"/bin/false\"]");
  next.checks.at("web") = parse_config(changed, "t.toml").checks.at("web");
  model_->reconfigure(next);
  EXPECT_EQ(model_->generation("export"), export_gen);  // unchanged: same runtime
  EXPECT_EQ(model_->check_state("export")->successes(), export_successes);
  EXPECT_NE(model_->generation("web"), web_gen);  // changed: starts over
  EXPECT_EQ(model_->check_state("web")->health(), CheckHealth::kUnknown);
  EXPECT_EQ(svc("http").intent.intent, Intent::kDrained);  // intent kept
  EXPECT_EQ(svc("rsync").effective.state, Effective::kPooled);  // new service, healthy check
  // A late result of the replaced web check is dropped.
  model_->on_result("web", web_gen, 1, Result::pass());
  EXPECT_EQ(model_->check_state("web")->successes(), 0);
}

// A reload that changes only how a check is timed keeps its state: the service stays
// pooled throughout (it used to start over at unknown and answer 503 for a while).
TEST_F(EngineTest, ReloadWithOnlyTimingChangedKeepsStateAndDecisions) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string&) { return true; });
  ASSERT_EQ(svc("nfs").effective.state, Effective::kPooled);
  ASSERT_EQ(svc("http").effective.state, Effective::kPooled);
  uint64_t export_gen = model_->generation("export");
  std::string timed = kConfig;
  for (auto [from, to] : {std::pair<std::string, std::string>{"interval = \"2s\"", "interval = \"4s\""},
                          {"timeout = \"1s\"", "timeout = \"3s\""},
                          {"rise = 2", "rise = 5"},
                          {"fall = 2", "fall = 4\nfast_interval = \"1s\""}})
    timed.replace(timed.find(from), from.size(), to);
  model_->reconfigure(parse_config(timed, "t.toml"));
  EXPECT_EQ(model_->generation("export"), export_gen);
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kHealthy);
  EXPECT_EQ(model_->check_state("export")->fall(), 4);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_EQ(svc("http").effective.state, Effective::kPooled);
  // The new timing is in force: the next probe of export is due 4s (+ jitter) after
  // its last result, with the new timeout.
  auto runs = drive(clock_.now() + 9s, [](const std::string&) { return true; });
  EXPECT_LE(runs["export"], 3);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
}

// A probe that never returns: counted as a timeout at timeout + grace, then at the
// check's schedule, so the check goes unhealthy after `fall` overdue deadlines and
// stays so while the probe is stuck. No second copy is started; the late result is
// dropped (by sequence) and only frees the check.
TEST_F(EngineTest, StuckProbeTurnsCheckUnhealthyAndItsLateResultIsDropped) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string&) { return true; });
  ASSERT_EQ(model_->check_state("export")->health(), CheckHealth::kHealthy);
  ASSERT_EQ(svc("nfs").effective.state, Effective::kPooled);

  // Let export's next probe start, and never answer it.
  std::optional<HealthModel::Due> stuck;
  for (int guard = 0; guard < 1000 && !stuck; ++guard) {
    clock_.advance_to(model_->next_due());
    for (const auto& d : model_->take_due()) {
      if (d.name == "export") stuck = d;
      else model_->on_result(d.name, d.gen, d.seq, Result::pass());
    }
  }
  ASSERT_TRUE(stuck);
  SteadyTime started = clock_.now();
  EXPECT_EQ(stuck->timeout, 1s);
  // Before timeout + grace nothing is counted.
  clock_.advance_to(started + 1s + HealthModel::kOverdueGrace - 1ms);
  model_->tick();
  EXPECT_EQ(model_->check_state("export")->failures(), 0);
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kHealthy);

  // The model's own schedule: drive with every other check answering; export's
  // probe stays stuck. After fall (2) overdue deadlines the check is unhealthy.
  int export_started = 0;
  auto drive_stuck = [&](SteadyTime until) {
    for (int guard = 0; guard < 100000; ++guard) {
      SteadyTime next = model_->next_due();
      if (next > until) break;
      clock_.advance_to(next);
      model_->tick();
      for (const auto& d : model_->take_due()) {
        if (d.name == "export") ++export_started;
        else model_->on_result(d.name, d.gen, d.seq, Result::pass());
      }
    }
    clock_.advance_to(until);
    model_->tick();
  };
  drive_stuck(started + 1s + HealthModel::kOverdueGrace);
  EXPECT_EQ(model_->check_state("export")->failures(), 1);
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kHealthy);  // fall is 2
  // The second deadline comes fast_interval later (the check is now changing).
  drive_stuck(started + 1s + HealthModel::kOverdueGrace + config_.checks.at("export").fast_interval);
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kUnhealthy);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  EXPECT_NE(svc("nfs").effective.reason.find("probe stuck"), std::string::npos) << svc("nfs").effective.reason;
  ASSERT_NE(model_->snapshot()->find_check("export"), nullptr);
  EXPECT_TRUE(model_->snapshot()->find_check("export")->stuck_since.has_value());

  // It stays unhealthy for as long as the probe is stuck, counting at the schedule
  // (interval 2s once unhealthy), and no second probe of export is ever started.
  int before = model_->check_state("export")->failures();
  drive_stuck(clock_.now() + 60s);
  EXPECT_EQ(export_started, 0);
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kUnhealthy);
  EXPECT_GE(model_->check_state("export")->failures() - before, 25);
  EXPECT_LE(model_->check_state("export")->failures() - before, 31);

  // The late result (a pass!) is dropped; it only frees the check.
  model_->on_result("export", stuck->gen, stuck->seq, Result::pass());
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kUnhealthy);
  EXPECT_EQ(model_->check_state("export")->successes(), 0);
  EXPECT_FALSE(model_->snapshot()->find_check("export")->stuck_since.has_value());
  // A result with a stale sequence number is dropped as well.
  model_->on_result("export", stuck->gen, stuck->seq, Result::pass());
  EXPECT_EQ(model_->check_state("export")->successes(), 0);
  // The next probe starts at the schedule, and real answers count again.
  drive(clock_.now() + 10s, [](const std::string&) { return true; });
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kHealthy);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
}

TEST_F(EngineTest, StoppingKeepsAPooledServiceUntilReleased) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  drive(clock_.now() + 5s, [](const std::string&) { return true; });
  ASSERT_EQ(svc("nfs").effective.state, Effective::kPooled);
  model_->set_lifecycle(Lifecycle::kStopping);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);  // the floor has not let it go
  EXPECT_EQ(svc("http").effective.state, Effective::kPooled);
  // A kept service still follows its health while the agent stops.
  drive(clock_.now() + 5s, [](const std::string& c) { return c != "export"; });
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  EXPECT_EQ(svc("nfs").effective.reason, "check export unhealthy: connection refused");
  model_->release_for_stop("nfs");
  EXPECT_EQ(svc("nfs").effective.reason, "stopping");
  EXPECT_EQ(svc("http").effective.state, Effective::kNotPooled);  // unreleased: its health said no
  EXPECT_NE(svc("http").effective.reason, "stopping");
}

TEST_F(EngineTest, SeededChecksCarryTheDecisionOver) {
  make();
  model_->seed_check("export", CheckHealth::kHealthy);
  model_->seed_check("web", CheckHealth::kHealthy);
  model_->set_lifecycle(Lifecycle::kRunning);
  // Pooled before any probe ran.
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_EQ(svc("http").effective.state, Effective::kPooled);
  // A failing check still needs `fall` (2) failures.
  auto fail = Result::fail(Outcome::kNetworkError, "connection refused");
  model_->on_result("export", fail);
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kHealthy);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  model_->on_result("export", fail);
  EXPECT_EQ(model_->check_state("export")->health(), CheckHealth::kUnhealthy);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  // An unseeded check rises from unknown as before.
  EXPECT_EQ(model_->check_state("disk")->health(), CheckHealth::kUnknown);
}

TEST_F(EngineTest, KeepsABoundedHistoryOfResultsPerCheck) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  auto before = model_->snapshot();
  ASSERT_NE(before->find_check("web")->history, nullptr);
  EXPECT_TRUE(before->find_check("web")->history->empty());
  for (size_t i = 0; i < HealthModel::kHistoryLength + 15; ++i) {
    clock_.advance(std::chrono::milliseconds(10));
    Result r = i % 3 == 0 ? Result::fail(Outcome::kTimeout, "timed out") : Result::pass();
    r.latency = std::chrono::milliseconds(i);
    model_->on_result("web", r);
  }
  auto snap = model_->snapshot();
  const auto& h = *snap->find_check("web")->history;
  ASSERT_EQ(h.size(), HealthModel::kHistoryLength);
  // Oldest first: the first 15 results fell out of the ring.
  EXPECT_FLOAT_EQ(h.front().latency_seconds, 0.015f);
  EXPECT_FLOAT_EQ(h.back().latency_seconds, static_cast<float>((HealthModel::kHistoryLength + 14) / 1000.0));
  EXPECT_EQ(h.front().outcome, Outcome::kTimeout);  // 15 % 3 == 0
  EXPECT_EQ(h[1].outcome, Outcome::kPassed);
  EXPECT_LT(h.front().time, h.back().time);
  // A snapshot already handed out keeps the history it had.
  EXPECT_TRUE(before->find_check("web")->history->empty());
  EXPECT_TRUE(snap->find_check("disk")->history->empty());
}

TEST_F(EngineTest, AResultReplacesOnlyTheViewsItChanged) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  auto before = model_->snapshot();
  model_->on_result("web", Result::pass());
  auto after = model_->snapshot();
  ASSERT_NE(before.get(), after.get());
  ASSERT_EQ(before->checks.size(), after->checks.size());
  for (size_t i = 0; i < after->checks.size(); ++i) {
    if (after->checks[i].name == "web") {
      EXPECT_NE(after->checks.item(i), before->checks.item(i));
      EXPECT_EQ(after->checks[i].successes, 1);
    } else {  // the very same object: nothing copied for checks the result did not touch
      EXPECT_EQ(after->checks.item(i), before->checks.item(i)) << after->checks[i].name;
    }
  }
  for (size_t i = 0; i < after->services.size(); ++i) {
    bool uses_web = after->services[i].name == "http";
    EXPECT_EQ(after->services.item(i) != before->services.item(i), uses_web) << after->services[i].name;
  }
  // Nothing new happened: the next call hands out the same snapshot.
  EXPECT_EQ(model_->snapshot().get(), after.get());
}

TEST(SharedListTest, WritesCopyOnlyWhatIsShared) {
  SharedList<CheckView> a;
  for (int i = 0; i < 70; ++i) {  // three chunks
    CheckView v;
    v.name = "c" + std::to_string(i);
    a.push_back(v);
  }
  SharedList<CheckView> b = a;
  EXPECT_EQ(a.shared(), b.shared());
  b[40].successes = 7;  // copies b's index, the chunk of item 40, and item 40
  EXPECT_EQ(a[40].successes, 0);
  EXPECT_EQ(b[40].successes, 7);
  std::vector<size_t> changed;
  EXPECT_TRUE(b.for_each_changed(a, [&](size_t i) { changed.push_back(i); }));
  EXPECT_EQ(changed, std::vector<size_t>{40});
  EXPECT_EQ(a.item(3), b.item(3));
  EXPECT_EQ(a.item(69), b.item(69));
  std::vector<std::string> reversed;
  for (auto it = b.rbegin(); it != b.rend(); ++it) reversed.push_back(it->name);
  EXPECT_EQ(reversed.front(), "c69");
  EXPECT_EQ(reversed.back(), "c0");
  b.push_back(CheckView{});
  EXPECT_FALSE(b.for_each_changed(a, [](size_t) {}));
  EXPECT_EQ(a.size(), 70u);
}

// etcd refused this host's user the lock key: the floor cannot be asked, so a failing
// service stays in — also while conftool counts as down — until a sync with the lock
// decides. An outage alone hands the decision to the peers (nfs has none: out).
TEST_F(EngineTest, RefusedLockKeepsAFailingServiceInUntilTheLockDecides) {
  make();
  model_->set_lifecycle(Lifecycle::kRunning);
  model_->set_conftool_enabled(true);
  model_->set_conftool_status(true, "", nlohmann::json::object());
  SteadyTime t0 = clock_.now();
  drive(t0 + 2s, [](const std::string&) { return true; });
  ASSERT_EQ(svc("nfs").effective.state, Effective::kPooled);
  drive(t0 + 6s, [](const std::string& c) { return c != "export"; });
  ASSERT_TRUE(svc("nfs").failing);
  EXPECT_TRUE(svc("nfs").kept_by_floor);  // no verdict yet: stays in
  model_->set_floor_verdict("nfs", FloorVerdict::kLockDenied);
  model_->set_conftool_status(false, "user may not access /poolkeeper/locks/nfs", nlohmann::json::object());
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  EXPECT_TRUE(svc("nfs").kept_by_floor);
  EXPECT_EQ(svc("nfs").effective.reason.rfind("kept by floor: ", 0), 0u) << svc("nfs").effective.reason;
  model_->set_conftool_status(false, "connection refused", nlohmann::json::object());
  EXPECT_TRUE(svc("nfs").kept_by_floor);
  // Back up: the refusal is forgotten; the next verdict decides.
  model_->set_conftool_status(true, "", nlohmann::json::object());
  EXPECT_TRUE(svc("nfs").kept_by_floor);
  model_->set_floor_verdict("nfs", FloorVerdict::kRelease);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
  // A plain outage: the peers decide, and nfs has none.
  model_->set_floor_verdict("nfs", FloorVerdict::kKeep);
  EXPECT_EQ(svc("nfs").effective.state, Effective::kPooled);
  model_->set_conftool_status(false, "connection refused", nlohmann::json::object());
  EXPECT_EQ(svc("nfs").effective.state, Effective::kNotPooled);
}

// systemd unit events in the model, in simulated time: an event away from
// active/running brings the check's next probe forward ("probe now, then fast"), one
// probe for a burst, never a second one in flight; fast_interval until it settles, then
// the interval again; the unit never decides health itself. No bus, no threads.
#include <gtest/gtest.h>

#include "agent/config/config.h"
#include "agent/model/health_model.h"

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {

// interval 5s, fast_interval 200ms, fall 2: a crash should be out in about 2 × 200 ms.
const char* kConfig = R"(
[agent]
hostname = "host1.example.org"
[services.http]
checks = ["web"]
[checks.web]
kind = "exec"
command = ["/bin/true"]
unit = "nginx.service"
interval = "5s"
timeout = "100ms"
fast_interval = "200ms"
rise = 2
fall = 2
)";

UnitState unit(const std::string& active, const std::string& sub, uint32_t job = 0,
               const std::string& job_type = "") {
  UnitState s;
  s.unit = "nginx.service";
  s.load_state = "loaded";
  s.active_state = active;
  s.sub_state = sub;
  s.result = "success";
  s.job_id = job;
  s.job_path = job ? "/org/freedesktop/systemd1/job/" + std::to_string(job) : "";
  s.job_type = job_type;
  return s;
}

UnitState killed() {
  UnitState s = unit("failed", "failed");
  s.result = "signal";
  s.exec_main_code = 2;
  s.exec_main_status = 9;
  return s;
}

const Result kRefused = Result::fail(Outcome::kNetworkError, "connection refused");

class UnitEventsTest : public ::testing::Test {
 protected:
  UnitEventsTest() : config_(parse_config(kConfig, "t.toml")) {
    model_ = std::make_unique<HealthModel>(config_, clock_, [] { return 0.0; });  // no jitter
    model_->set_lifecycle(Lifecycle::kRunning);
    model_->on_unit(unit("active", "running"), /*resync=*/true);
  }

  // Runs every probe due until `until` (answered with `answer`); returns how many ran.
  int drive(SteadyTime until, const Result& answer) {
    int runs = 0;
    for (int guard = 0; guard < 10000 && model_->next_due() <= until; ++guard) {
      clock_.advance_to(model_->next_due());
      for (const auto& d : model_->take_due()) {
        ++runs;
        model_->on_result(d.name, d.gen, d.seq, answer);
      }
    }
    clock_.advance_to(until);
    return runs;
  }
  // Healthy and steady, the clock at its last probe (the next one an interval away).
  void healthy() {
    drive(clock_.now() + 12s, Result::pass());
    clock_.advance_to(model_->next_due());
    for (const auto& d : model_->take_due())
      model_->on_result(d.name, d.gen, d.seq, Result::pass());
    ASSERT_EQ(model_->check_state("web")->health(), CheckHealth::kHealthy);
    ASSERT_FALSE(model_->check_state("web")->changing());
  }
  const CheckView& web() {
    snap_ = model_->snapshot();
    return *snap_->find_check("web");
  }
  const ServiceView& http() {
    snap_ = model_->snapshot();
    return *snap_->find_service("http");
  }

  Config config_;
  FakeClock clock_;
  std::unique_ptr<HealthModel> model_;
  std::shared_ptr<const Snapshot> snap_;
};

}  // namespace

TEST_F(UnitEventsTest, ACrashIsOutInAboutFallTimesFastIntervalWhateverTheInterval) {
  healthy();
  clock_.advance(1s);  // mid-interval: the next probe is 4 s away
  SteadyTime crash = clock_.now();
  ASSERT_EQ(model_->next_due(), crash + 4s);
  model_->on_unit(killed(), false);
  EXPECT_EQ(model_->next_due(), crash);  // brought forward at once
  SteadyTime out{};
  for (int guard = 0; guard < 10 && http().effective.state == Effective::kPooled; ++guard) {
    clock_.advance_to(model_->next_due());
    auto due = model_->take_due();
    ASSERT_EQ(due.size(), 1u);
    EXPECT_TRUE(due[0].fast);  // awaited: its result does not wait for the owner's next turn
    model_->on_result("web", due[0].gen, due[0].seq, kRefused);
    out = clock_.now();
  }
  EXPECT_EQ(http().effective.state, Effective::kNotPooled);
  EXPECT_EQ(out - crash, 200ms);  // the probe at once, then one fast_interval (fall = 2)
  // The probe's own reason first, then what systemd said.
  EXPECT_EQ(http().effective.reason,
            "check web unhealthy: connection refused; nginx.service: failed (signal KILL)");
}

TEST_F(UnitEventsTest, WithoutAnEventACrashWaitsForTheInterval) {
  healthy();
  clock_.advance(1s);
  SteadyTime crash = clock_.now();
  SteadyTime out{};
  for (int guard = 0; guard < 10 && http().effective.state == Effective::kPooled; ++guard) {
    clock_.advance_to(model_->next_due());
    for (const auto& d : model_->take_due()) model_->on_result("web", d.gen, d.seq, kRefused);
    out = clock_.now();
  }
  EXPECT_EQ(out - crash, 4s + 200ms);
  EXPECT_EQ(http().effective.reason, "check web unhealthy: connection refused");
}

TEST_F(UnitEventsTest, ABurstOfEventsMakesOneProbe) {
  healthy();
  clock_.advance(1s);
  // A stop: the job, deactivating, then dead, and the job gone — all before the owner's turn.
  model_->on_unit(unit("active", "running", 77, "stop"), false);
  model_->on_unit(unit("deactivating", "stop-sigterm", 77, "stop"), false);
  model_->on_unit(unit("inactive", "dead", 77, "stop"), false);
  model_->on_unit(unit("inactive", "dead"), false);
  auto due = model_->take_due();
  ASSERT_EQ(due.size(), 1u);
  // More events while that probe is in flight: it already looks at the new state.
  model_->on_unit(unit("failed", "failed"), false);
  model_->on_unit(killed(), false);
  EXPECT_TRUE(model_->take_due().empty());
  clock_.advance(5ms);
  model_->on_result("web", due[0].gen, due[0].seq, kRefused);
  EXPECT_TRUE(model_->take_due().empty());
  EXPECT_EQ(model_->next_due(), clock_.now() + 200ms);  // then fast, not at once again
  // And once it has run since the event, a later event of the same burst adds nothing.
  model_->on_unit(unit("inactive", "dead"), false);
  EXPECT_EQ(model_->next_due(), clock_.now() + 200ms);
}

TEST_F(UnitEventsTest, AProbeInFlightIsNotDoubledButFollowedAtOnce) {
  healthy();
  clock_.advance_to(model_->next_due());
  auto due = model_->take_due();  // the regular probe, started before the crash
  ASSERT_EQ(due.size(), 1u);
  clock_.advance(20ms);
  model_->on_unit(killed(), false);
  EXPECT_TRUE(model_->take_due().empty());  // never two in flight
  EXPECT_EQ(model_->probes_awaiting(), 1u);
  clock_.advance(10ms);
  // It passes (it started before the crash): the next one starts as soon as it is back.
  model_->on_result("web", due[0].gen, due[0].seq, Result::pass());
  EXPECT_EQ(model_->next_due(), clock_.now());
  auto next = model_->take_due();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_GT(next[0].seq, due[0].seq);
  model_->on_result("web", next[0].gen, next[0].seq, kRefused);
  EXPECT_EQ(model_->next_due(), clock_.now() + 200ms);
}

TEST_F(UnitEventsTest, FastUntilSettledThenTheIntervalAgain) {
  healthy();
  clock_.advance(1s);
  // Killed, restarted by systemd (Restart=on-failure), back in 0.5 s.
  model_->on_unit(killed(), false);
  UnitState restarting = killed();
  restarting.active_state = "activating";
  restarting.sub_state = "auto-restart";
  model_->on_unit(restarting, false);
  EXPECT_EQ(drive(clock_.now() + 450ms, kRefused), 3);  // at 0, 200, 400 ms
  EXPECT_EQ(model_->check_state("web")->health(), CheckHealth::kUnhealthy);
  EXPECT_TRUE(web().unit->hurried);
  // Unhealthy and failing steadily, but the unit is still restarting: fast goes on.
  EXPECT_EQ(drive(clock_.now() + 400ms, kRefused), 2);
  model_->on_unit(unit("active", "running"), false);
  EXPECT_TRUE(model_->take_due().empty());  // back is not an event to run for
  // Rising at fast_interval (rise = 2), then settled: the interval again.
  EXPECT_EQ(drive(clock_.now() + 400ms, Result::pass()), 2);
  EXPECT_EQ(model_->check_state("web")->health(), CheckHealth::kHealthy);
  EXPECT_FALSE(web().unit->hurried);
  SteadyTime settled = clock_.now() - 50ms;  // the last probe
  EXPECT_EQ(model_->next_due(), settled + 5s);
  EXPECT_EQ(drive(settled + 4999ms, Result::pass()), 0);
  clock_.advance_to(settled + 5s);
  auto due = model_->take_due();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_FALSE(due[0].fast);  // steady again: its result rides along with the next turn
}

TEST_F(UnitEventsTest, AStoppedUnitSettlesOnceTheCheckHasFallen) {
  healthy();
  clock_.advance(1s);
  model_->on_unit(unit("inactive", "dead"), false);
  EXPECT_EQ(drive(clock_.now() + 250ms, kRefused), 2);  // out after fall = 2
  EXPECT_EQ(model_->check_state("web")->health(), CheckHealth::kUnhealthy);
  EXPECT_FALSE(web().unit->hurried);  // the unit steady, the check no longer changing
  EXPECT_EQ(model_->next_due(), clock_.now() - 50ms + 5s);
}

TEST_F(UnitEventsTest, AnActiveUnitNeverPassesAFailingProbe) {
  healthy();
  // The server hangs while systemd says active/running: the probes alone take it out,
  // and the reason says nothing about the unit (there is nothing to say).
  Result timeout = Result::fail(Outcome::kTimeout, "timed out after 100ms");
  drive(clock_.now() + 6s, timeout);
  EXPECT_EQ(model_->check_state("web")->health(), CheckHealth::kUnhealthy);
  EXPECT_EQ(http().effective.reason, "check web unhealthy: timed out after 100ms");
  // A unit state never changes health by itself, either way.
  model_->on_unit(unit("active", "running"), false);
  EXPECT_EQ(model_->check_state("web")->health(), CheckHealth::kUnhealthy);
}

TEST_F(UnitEventsTest, AStopJobIsInStatusAndTheEventLogWithWhoAskedAsFarAsSystemdSays) {
  healthy();
  model_->on_unit(unit("active", "running", 4242, "stop"), false);
  auto events = model_->snapshot()->events;
  auto it =
      std::find_if(events.begin(), events.end(), [](const Event& e) { return e.kind == EventKind::kUnit; });
  ASSERT_NE(it, events.end());
  EXPECT_EQ(it->name, "nginx.service");
  EXPECT_EQ(it->from, "active/running");
  EXPECT_EQ(it->to, "active/running+stop job");
  EXPECT_EQ(it->reason, "nginx.service: active; stop job queued; systemd does not say who asked");
  EXPECT_EQ(it->when, clock_.wall());
  nlohmann::json u = status_json(*model_->snapshot())["checks"]["web"]["unit"];
  EXPECT_EQ(u["name"], "nginx.service");
  EXPECT_EQ(u["watched"], true);
  EXPECT_EQ(u["fast_until_settled"], true);
  EXPECT_EQ(u["last_job"]["id"], 4242);
  EXPECT_EQ(u["last_job"]["type"], "stop");
  EXPECT_EQ(u["last_job"]["asked_by"], "systemd does not say who asked");
  EXPECT_FALSE(u["last_job"]["seen"].get<std::string>().empty());
  // The job stays visible after it has ended.
  model_->on_unit(unit("inactive", "dead"), false);
  u = status_json(*model_->snapshot())["checks"]["web"]["unit"];
  EXPECT_EQ(u["last_job"]["id"], 4242);
  EXPECT_EQ(u["text"], "nginx.service: inactive (dead)");
}

TEST_F(UnitEventsTest, TheFirstStateAfterConnectingIsNotAnEvent) {
  healthy();
  clock_.advance(1s);
  SteadyTime next = model_->next_due();
  // Reconnected, same state: nothing. A different one (missed while away): an event.
  model_->on_unit(unit("active", "running"), /*resync=*/true);
  EXPECT_EQ(model_->next_due(), next);
  model_->on_unit(killed(), /*resync=*/true);
  EXPECT_EQ(model_->next_due(), clock_.now());
  EXPECT_EQ(drive(clock_.now() + 250ms, kRefused), 2);
  ASSERT_FALSE(web().unit->hurried);  // failed is steady, the check has fallen
  // The bus lost, and back with the unit restarted meanwhile: not away, nothing to run
  // for; then lost again and back with it failed: an event, though unwatched between.
  model_->set_unit_unwatched("nginx.service", "bus connection lost: Connection reset by peer");
  EXPECT_EQ(web().unit->watched, false);
  next = model_->next_due();
  model_->on_unit(unit("active", "running"), /*resync=*/true);
  EXPECT_EQ(model_->next_due(), next);
  model_->set_unit_unwatched("nginx.service", "bus connection lost: Connection reset by peer");
  model_->on_unit(killed(), /*resync=*/true);
  EXPECT_EQ(model_->next_due(), clock_.now());
  EXPECT_EQ(web().unit->watched, true);

  // A fresh model that first hears the unit as failed probes on its own schedule.
  HealthModel fresh(config_, clock_, [] { return 0.5; });
  SteadyTime first = fresh.next_due();
  fresh.on_unit(killed(), /*resync=*/true);
  EXPECT_EQ(fresh.next_due(), first);
}

TEST_F(UnitEventsTest, AnUnwatchedUnitPollsAsWithoutOne) {
  model_->set_unit_unwatched("nginx.service", "not booted with systemd");
  healthy();
  nlohmann::json u = status_json(*model_->snapshot())["checks"]["web"]["unit"];
  EXPECT_EQ(u["watched"], false);
  EXPECT_EQ(u["error"], "not booted with systemd");
  EXPECT_EQ(model_->next_due(), clock_.now() + 5s);
}

TEST_F(UnitEventsTest, AReloadThatKeepsTheCheckKeepsItsUnitState) {
  healthy();
  model_->on_unit(killed(), false);
  Config next = parse_config(kConfig, "t.toml");
  next.checks.at("web").interval = 10s;  // timing only
  model_->reconfigure(next);
  EXPECT_TRUE(web().unit->hurried);
  EXPECT_EQ(web().unit->text, "nginx.service: failed (signal KILL)");
}

// The state model's fuzzer: decodes the input into a sequence of operations against
// poolkeeper::HealthModel in simulated time — probes started when due, results (pass, fail,
// timeout) delivered in any order or left overdue and delivered late, time steps,
// operator intents with expiries, peer states, conftool status and floor verdicts,
// lifecycle, and reloads that change only timing keys or a probe's target — and checks
// the model's invariants after every step:
//   1. a service is never effectively pooled while unhealthy unless the floor keeps it;
//   2. the floor without etcd takes a failing service out only through the leave
//      protocol (floor.h, floor_leave): an announced attempt whose fresh peer view —
//      delivered here stale, partial or with peers missing — counted at least
//      min_pooled others pooled and not leaving; before that it stays pooled;
//   3. no second copy of a probe is started while one is in flight;
//   4. a check whose probe is overdue (in flight past its timeout + grace, counted
//      `fall` times at the check's schedule) is never healthy        [kCheckOverdue];
//   5. a reload that changes no probe target changes no decision    [kCheckReload];
//   6. the snapshot, rebuilt piece by piece from what changed, equals one made afresh.
// 4 and 5 describe the health model's stuck-probe and keep-state-on-reload rules; each can be
// switched on or off at run time with PK_FUZZ_OVERDUE=0|1 / PK_FUZZ_RELOAD=0|1.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "agent/config/config.h"
#include "agent/model/health_model.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {

// Defaults for the switchable invariants (see the header comment).
constexpr bool kCheckOverdueDefault = true;
constexpr bool kCheckReloadDefault = true;
// The health model's grace past a probe's timeout before it counts the probe as failed.
constexpr Duration kOverdueGrace = HealthModel::kOverdueGrace;

bool flag(const char* env, bool def) {
  const char* v = std::getenv(env);
  return v && *v ? v[0] == '1' : def;
}
const bool kCheckOverdue = flag("PK_FUZZ_OVERDUE", kCheckOverdueDefault);
const bool kCheckReload = flag("PK_FUZZ_RELOAD", kCheckReloadDefault);

const char* kSelf = "h2.example.org";
const char* kCheckNames[] = {"a", "b", "c"};
const char* kPeerUrls[] = {"http://h1.example.org:9473", "http://h3.example.org:9473",
                           "http://h2.example.org:9473", "http://other.example.org:9473"};
const char* kPeerHosts[] = {"h1.example.org", "h3.example.org", "h2.example.org", "h0.example.org"};
const char* kServices[] = {"nfs", "http", "rsync"};

struct CheckParams {
  int interval_ms, timeout_ms, fast_ms, rise, fall;
  int target;  // which probe target (part of the command line)
};

struct Model {
  CheckParams checks[3];
  int min_pooled_nfs, min_pooled_rsync;
};

CheckParams random_timing(FuzzedDataProvider& in, int target) {
  CheckParams p;
  p.interval_ms = in.ConsumeIntegralInRange(50, 5000);
  p.timeout_ms = in.ConsumeIntegralInRange(1, p.interval_ms);
  p.fast_ms = in.ConsumeIntegralInRange(20, 2000);
  p.rise = in.ConsumeIntegralInRange(1, 5);
  p.fall = in.ConsumeIntegralInRange(1, 5);
  p.target = target;
  return p;
}

// The config goes through the real reader, so fingerprints (what a reload compares)
// are whatever the agent computes for a real file.
Config make_config(const Model& m) {
  std::string t = std::string("[agent]\nhostname = \"") + kSelf + "\"\n";
  t += "[services.nfs]\nchecks = [\"a\"]\npeers = [\"" + std::string(kPeerUrls[0]) + "\", \"" +
       kPeerUrls[1] + "\"]\nmin_pooled = " + std::to_string(m.min_pooled_nfs) + "\n";
  t += "[services.http]\nchecks = [\"a\", \"b\"]\n";
  t += "[services.rsync]\nchecks = [\"b\", \"c\"]\npeers = [\"" + std::string(kPeerUrls[0]) +
       "\"]\nmin_pooled = " + std::to_string(m.min_pooled_rsync) + "\n";
  for (int i = 0; i < 3; ++i) {
    const CheckParams& p = m.checks[i];
    t += std::string("[checks.") + kCheckNames[i] + "]\nkind = \"exec\"\n";
    t += "command = [\"/bin/true\", \"target-" + std::to_string(p.target) + "\"]\n";
    t += "interval = \"" + std::to_string(p.interval_ms) + "ms\"\n";
    t += "timeout = \"" + std::to_string(p.timeout_ms) + "ms\"\n";
    t += "fast_interval = \"" + std::to_string(p.fast_ms) + "ms\"\n";
    t += "rise = " + std::to_string(p.rise) + "\nfall = " + std::to_string(p.fall) + "\n";
    if (i == 2) t += "critical = false\n";
  }
  return parse_config(t, "fuzz.toml");
}

struct Pending {
  std::string check;
  uint64_t gen;
  uint64_t seq;
  SteadyTime started;
};

// How long a probe may stay in flight before its check must have turned unhealthy:
// the first deadline (timeout + grace), then `fall - 1` more failures counted at the
// check's schedule (at most fast_interval or interval plus 10% jitter, each with its
// own timeout + grace).
Duration overdue_step(const CheckConfig& c) {
  return std::max(c.interval, c.fast_interval) * 11 / 10 + c.timeout + kOverdueGrace;
}
Duration overdue_limit(const CheckConfig& c) { return c.timeout + kOverdueGrace + overdue_step(c) * (c.fall - 1); }

class Run {
 public:
  Run(FuzzedDataProvider& in) : in_(in) {
    for (int i = 0; i < 3; ++i) model_.checks[i] = random_timing(in_, in_.ConsumeIntegralInRange(0, 1));
    model_.min_pooled_nfs = in_.ConsumeIntegralInRange(0, 2);
    model_.min_pooled_rsync = in_.ConsumeIntegralInRange(0, 2);
    config_ = make_config(model_);
    health_ = std::make_unique<HealthModel>(config_, clock_, [this] { return rand01(); }, "boot-1");
    health_->set_lifecycle(Lifecycle::kRunning);
    check_invariants();
  }

  void step() {
    switch (in_.ConsumeIntegralInRange(0, 12)) {
      case 0: case 1: case 2: deliver(); break;
      case 3: case 4: advance(Duration(std::chrono::milliseconds(in_.ConsumeIntegralInRange(1, 3000)))); break;
      case 5: advance(Duration(std::chrono::milliseconds(in_.ConsumeIntegralInRange(3000, 30000)))); break;
      case 6: set_intent(); break;
      case 7: set_peers(); break;
      case 8: conftool(); break;
      case 9: reload(); break;
      case 10: lifecycle(); break;
      case 11: health_->tick(); break;
      case 12: leave_poll(); break;
    }
    check_invariants();
    check_snapshot();
  }

 private:
  double rand01() { return in_.remaining_bytes() ? in_.ConsumeIntegralInRange(0, 999) / 1000.0 : 0.5; }

  // Starts every due probe, as the owner loop does; the result comes in a later step
  // (or never).
  void start_due() {
    for (const auto& d : health_->take_due()) {
      for (const auto& p : pending_)  // 3: never a second copy of a probe in flight
        FUZZ_ASSERT(!(p.check == d.name && p.gen == d.gen));
      pending_.push_back({d.name, d.gen, d.seq, clock_.now()});
    }
  }

  // Moves time forward, waking up whenever the health model has something due (bounded).
  void advance(Duration d) {
    SteadyTime end = clock_.now() + d;
    for (int i = 0; i < 500 && clock_.now() < end; ++i) {
      SteadyTime next = std::min(end, std::max(health_->next_due(), clock_.now() + 1ms));
      clock_.advance_to(next);
      health_->tick();
      start_due();
      check_invariants();
    }
    clock_.advance_to(end);
    health_->tick();
    start_due();
  }

  void deliver() {
    start_due();
    if (pending_.empty()) return;
    size_t k = in_.ConsumeIntegralInRange<size_t>(0, pending_.size() - 1);
    Pending p = pending_[k];
    pending_.erase(pending_.begin() + static_cast<long>(k));
    Result r;
    switch (in_.ConsumeIntegralInRange(0, 3)) {
      case 0: case 1: r = Result::pass(); break;
      case 2: r = Result::fail(Outcome::kFailed, "status 500"); break;
      case 3: r = Result::fail(Outcome::kTimeout, "timed out"); break;
    }
    r.latency = clock_.now() - p.started;
    health_->on_result(p.check, p.gen, p.seq, r);
  }

  void set_intent() {
    std::string svc = kServices[in_.ConsumeIntegralInRange(0, 2)];
    AdminIntent i;
    i.intent = static_cast<Intent>(in_.ConsumeIntegralInRange(0, 3));
    i.reason = "fuzz";
    i.who = "root";
    i.when = clock_.wall();
    switch (in_.ConsumeIntegralInRange(0, 2)) {
      case 0: break;
      case 1: i.expires = clock_.wall() + std::chrono::milliseconds(in_.ConsumeIntegralInRange(0, 60000)); break;
      case 2:
        i.until_boot = true;
        i.boot_id = in_.ConsumeBool() ? "boot-1" : "boot-0";
        break;
    }
    FUZZ_ASSERT(health_->set_intent(svc, i));
  }

  // The answer to a leave attempt's fresh poll (the runtime's floor thread): a peer view
  // (from set_peers: stale, partial, peers missing) handed to floor_leave_poll, for an
  // attempt announced now or earlier (a stale one must change nothing).
  void leave_poll() {
    for (auto& p : health_->take_leave_polls()) polls_.push_back(p);
    if (in_.ConsumeBool()) set_peers();
    HealthModel::LeavePoll p;
    if (!polls_.empty() && in_.ConsumeIntegralInRange(0, 3)) {
      size_t k = in_.ConsumeIntegralInRange<size_t>(0, polls_.size() - 1);
      p = polls_[k];
      polls_.erase(polls_.begin() + static_cast<long>(k));
    } else {
      p.service = kServices[in_.ConsumeIntegralInRange(0, 2)];
      p.attempt = in_.ConsumeIntegralInRange<uint64_t>(0, 5);
    }
    auto before = health_->snapshot();
    const ServiceView* was = before->find_service(p.service);
    bool was_kept = was && was->kept_by_floor;
    LeaveDecision d = health_->floor_leave_poll(p.service, p.attempt, in_.ConsumeBool());
    const ServiceConfig& sc = config_.services.at(p.service);
    if (d == LeaveDecision::kLeave) {
      FUZZ_ASSERT(was_kept && was->leaving);
      FUZZ_ASSERT(floor_leave_counted(kSelf, LeaveKind::kFailing,
                                      floor_hosts(p.service, service_peers(health_->peers(), sc.peers, kSelf))) >=
                  sc.min_pooled);
      released_.insert(p.service);
    }
    if (d == LeaveDecision::kWait) polls_.push_back(p);
  }

  void set_peers() {
    std::vector<PeerState> peers;
    for (int u = 0; u < 4; ++u) {
      if (!in_.ConsumeBool()) continue;
      PeerState p;
      p.url = kPeerUrls[u];
      p.reachable = in_.ConsumeIntegralInRange(0, 3) != 0;
      if (!p.reachable) {
        p.error = "connection refused";
        peers.push_back(p);
        continue;
      }
      p.host = kPeerHosts[in_.ConsumeIntegralInRange(0, 3)];
      p.lifecycle = in_.ConsumeIntegralInRange(0, 3) ? "running" : "stopping";
      p.last_seen = clock_.wall();
      for (const char* s : kServices) {
        if (!in_.ConsumeIntegralInRange(0, 4)) continue;  // does not serve it
        static const char* kEff[] = {"pooled", "drained", "not_pooled"};
        PeerService ps;
        ps.effective = kEff[in_.ConsumeIntegralInRange(0, 2)];
        ps.healthy = in_.ConsumeBool();
        ps.failing = !ps.healthy && in_.ConsumeBool();
        ps.leaving = ps.effective == "pooled" && in_.ConsumeBool();
        p.services[s] = ps;
      }
      peers.push_back(p);
    }
    health_->set_peers(peers);
  }

  void conftool() {
    switch (in_.ConsumeIntegralInRange(0, 2)) {
      case 0: health_->set_conftool_enabled(in_.ConsumeBool()); break;
      case 1: {
        bool up = in_.ConsumeBool();
        std::string error = up ? "" : "connection refused";
        // Verdicts were decided under a lock of an etcd that went away: forgotten.
        if (!up && (up != conftool_up_ || error != conftool_error_)) verdicts_.clear();
        conftool_up_ = up;
        conftool_error_ = error;
        health_->set_conftool_status(up, error, nlohmann::json::object());
        break;
      }
      case 2: {
        std::string svc = kServices[in_.ConsumeIntegralInRange(0, 2)];
        auto v = static_cast<FloorVerdict>(in_.ConsumeIntegralInRange(0, 2));
        verdicts_[svc] = v;
        health_->set_floor_verdict(svc, v);
        break;
      }
    }
  }

  void lifecycle() {
    // starting → running → stopping; a restart of the agent is a new Run.
    if (health_->lifecycle() == Lifecycle::kRunning && in_.ConsumeIntegralInRange(0, 7) == 0)
      health_->set_lifecycle(Lifecycle::kStopping);
  }

  void reload() {
    Model next = model_;
    int i = in_.ConsumeIntegralInRange(0, 2);
    bool retarget = in_.ConsumeIntegralInRange(0, 3) == 0;
    if (retarget) next.checks[i].target ^= 1;
    else next.checks[i] = random_timing(in_, model_.checks[i].target);
    std::map<std::string, EffectiveState> before;
    for (const auto& s : health_->snapshot()->services) before[s.name] = s.effective;
    model_ = next;
    config_ = make_config(model_);
    health_->reconfigure(config_);
    retimed_[kCheckNames[i]] = clock_.now();
    if (kCheckReload && !retarget) {  // 5: no target changed, so no decision changed
      // (The reason's wording may follow new thresholds, e.g. "rising 1/2" for "1/3".)
      for (const auto& s : health_->snapshot()->services) FUZZ_ASSERT(before[s.name].state == s.effective.state);
    }
  }

  // 6: no view missed by the piecewise rebuild (after each step; every wake-up would
  // slow the fuzzer tenfold). `generated` aside: a snapshot with no change since is
  // handed out again, as built.
  void check_snapshot() {
    nlohmann::json built = status_json(*health_->snapshot()), fresh = status_json(*health_->snapshot_from_scratch());
    built.erase("generated");
    fresh.erase("generated");
    FUZZ_ASSERT(built == fresh);
  }

  void check_invariants() {
    auto snap = health_->snapshot();
    SteadyTime now = clock_.now();
    bool conftool_decides = snap->conftool.is_object() && snap->conftool.value("up", false);
    for (const auto& s : snap->services) {
      // 1: pooled while unhealthy only when the floor keeps it.
      if (s.effective.state == Effective::kPooled) FUZZ_ASSERT(s.healthy || s.kept_by_floor);
      if (s.kept_by_floor) FUZZ_ASSERT(s.failing);
      // 2: the floor, decided from the peers (when conftool does not decide).
      const ServiceConfig& sc = config_.services.at(s.name);
      if (!s.failing) continue;
      if (conftool_decides) {  // under the etcd lock: out only once the lock said so
        auto v = verdicts_.find(s.name);
        FUZZ_ASSERT(s.kept_by_floor == (v == verdicts_.end() || v->second != FloorVerdict::kRelease));
        continue;
      }
      if (sc.peers.empty()) {
        FUZZ_ASSERT(!s.kept_by_floor);
        continue;
      }
      // Pooled (kept) until a leave attempt's fresh view let it go; announced only while pooled.
      if (s.kept_by_floor) released_.erase(s.name);
      else FUZZ_ASSERT(released_.count(s.name));
      if (s.leaving) FUZZ_ASSERT(s.effective.state == Effective::kPooled);
    }
    // 4: an overdue probe's check is not healthy (nor are the services it serves).
    if (kCheckOverdue) {
      for (const auto& p : pending_) {
        if (health_->generation(p.check) != p.gen) continue;  // replaced by a reload
        const CheckConfig& cc = config_.checks.at(p.check);
        // Retimed while in flight: from then on the new timing, `fall` deadlines at most.
        auto retimed = retimed_.find(p.check);
        SteadyTime deadline = retimed != retimed_.end() && retimed->second > p.started
                                  ? retimed->second + overdue_limit(cc) + overdue_step(cc)
                                  : p.started + overdue_limit(cc);
        if (now <= deadline) continue;
        const CheckState* st = health_->check_state(p.check);
        FUZZ_ASSERT(st && st->health() != CheckHealth::kHealthy);
      }
    }
  }

  FuzzedDataProvider& in_;
  FakeClock clock_;
  Model model_{};
  Config config_;
  std::unique_ptr<HealthModel> health_;
  std::vector<Pending> pending_;
  std::map<std::string, SteadyTime> retimed_;  // check → last reload that changed its timing
  bool conftool_up_ = false;
  std::string conftool_error_;
  std::map<std::string, FloorVerdict> verdicts_;
  std::vector<HealthModel::LeavePoll> polls_;  // leave attempts awaiting their poll
  std::set<std::string> released_;  // let go by a leave attempt since last kept
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Run run(in);
  for (int i = 0; i < 400 && in.remaining_bytes() > 0; ++i) run.step();
  return 0;
}

#include "agent/engine.h"

#include <algorithm>

namespace poolkeeper {

Engine::Engine(const Config& config, const Clock& clock, std::function<double()> uniform01)
    : config_(config), clock_(clock), uniform01_(std::move(uniform01)) {
  SteadyTime now = clock_.now();
  WallTime wall = clock_.wall();
  lifecycle_since_ = wall;
  for (const auto& [name, cc] : config_.checks) {
    CheckRuntime rt{.cfg = cc, .state = CheckState(cc.rise, cc.fall)};
    rt.next_due = now + std::chrono::duration_cast<Duration>(cc.interval * (uniform01_() * 0.5));
    rt.since = wall;
    checks_.emplace(name, std::move(rt));
  }
  for (const auto& [name, sc] : config_.services) {
    ServiceRuntime rt;
    rt.cfg = sc;
    rt.since = wall;
    for (const auto& c : sc.checks) checks_.at(c).services.push_back(name);
    services_.emplace(name, std::move(rt));
  }
  recompute_services();
}

Duration Engine::jittered(Duration base) {
  return base + std::chrono::duration_cast<Duration>(base * (0.1 * uniform01_()));
}

std::vector<std::string> Engine::take_due() {
  SteadyTime now = clock_.now();
  std::vector<std::string> due;
  for (auto& [name, rt] : checks_) {
    if (!rt.in_flight && rt.next_due <= now) {
      rt.in_flight = true;
      due.push_back(name);
    }
  }
  return due;
}

SteadyTime Engine::next_due() const {
  SteadyTime t = SteadyTime::max();
  for (const auto& [name, rt] : checks_)
    if (!rt.in_flight) t = std::min(t, rt.next_due);
  return t;
}

void Engine::on_result(const std::string& check, const Result& r) {
  auto it = checks_.find(check);
  if (it == checks_.end()) return;  // a result from a check removed by a reload
  CheckRuntime& rt = it->second;
  WallTime wall = clock_.wall();
  rt.in_flight = false;
  CheckHealth before = rt.state.health();
  Change ch = rt.state.submit(r.ok());
  rt.last = r;
  rt.last_time = wall;
  if (r.ok()) rt.last_success = wall;
  rt.next_due = clock_.now() +
                jittered(rt.state.changing() ? rt.cfg.fast_interval : rt.cfg.interval);
  for (Observer* o : observers_) o->on_result(check, r, wall);
  if (ch == Change::kChanged) {
    rt.since = wall;
    emit({wall, "check", check, check_health_name(before), check_health_name(rt.state.health()),
          r.reason});
  }
  ++version_;  // streaks and last result are part of the picture
  recompute_services();
}

void Engine::set_lifecycle(Lifecycle l) {
  if (l == lifecycle_) return;
  WallTime wall = clock_.wall();
  Lifecycle before = lifecycle_;
  lifecycle_ = l;
  lifecycle_since_ = wall;
  emit({wall, "lifecycle", "", lifecycle_name(before), lifecycle_name(l), ""});
  ++version_;
  recompute_services();
}

bool Engine::set_intent(const std::string& service, const AdminIntent& intent) {
  auto it = services_.find(service);
  if (it == services_.end()) return false;
  if (it->second.intent == intent) return true;
  std::string before = intent_name(it->second.intent.intent);
  it->second.intent = intent;
  emit({clock_.wall(), "intent", service, before, intent_name(intent.intent),
        intent.reason.empty() ? intent.who : intent.reason + " (" + intent.who + ")"});
  ++version_;
  recompute_services();
  return true;
}

const AdminIntent* Engine::intent(const std::string& service) const {
  auto it = services_.find(service);
  return it == services_.end() ? nullptr : &it->second.intent;
}

const CheckState* Engine::check_state(const std::string& check) const {
  auto it = checks_.find(check);
  return it == checks_.end() ? nullptr : &it->second.state;
}

void Engine::recompute_services() {
  WallTime wall = clock_.wall();
  for (auto& [name, svc] : services_) {
    std::string failing;
    std::vector<std::string> warnings;
    for (const auto& cname : svc.cfg.checks) {
      const CheckRuntime& c = checks_.at(cname);
      if (c.state.health() == CheckHealth::kHealthy) continue;
      std::string why = "check " + cname + " " + check_health_name(c.state.health());
      if (c.state.health() == CheckHealth::kUnknown) {
        why += c.last ? ": rising " + std::to_string(c.state.successes()) + "/" +
                            std::to_string(c.state.rise()) +
                            (c.last->ok() ? "" : " (" + c.last->reason + ")")
                      : ": no result yet";
      } else if (c.last) {
        why += ": " + c.last->reason;
      }
      if (c.cfg.critical) {
        if (failing.empty()) failing = why;
      } else {
        warnings.push_back(why);
      }
    }
    svc.healthy = failing.empty();
    svc.health_reason = failing;
    svc.warnings = warnings;
    EffectiveState eff = decide_effective(lifecycle_, svc.intent, failing, false);
    if (eff.state != svc.effective.state) {
      emit({wall, "service", name, effective_name(svc.effective.state), effective_name(eff.state),
            eff.reason});
      svc.since = wall;
    }
    if (!(eff == svc.effective)) ++version_;
    svc.effective = eff;
  }
}

void Engine::emit(Event e) {
  for (Observer* o : observers_) o->on_event(e);
  events_.push(std::move(e));
}

std::shared_ptr<const Snapshot> Engine::snapshot() {
  if (snapshot_ && snapshot_->version == version_) return snapshot_;
  auto s = std::make_shared<Snapshot>();
  s->version = version_;
  s->host = config_.agent.hostname;
  s->lifecycle = lifecycle_;
  s->lifecycle_since = lifecycle_since_;
  s->generated = clock_.wall();
  for (const auto& [name, svc] : services_) {
    ServiceView v;
    v.name = name;
    v.effective = svc.effective;
    v.healthy = svc.healthy;
    v.health_reason = svc.health_reason;
    v.warnings = svc.warnings;
    v.intent = svc.intent;
    v.since = svc.since;
    v.checks = svc.cfg.checks;
    s->services.push_back(std::move(v));
  }
  for (const auto& [name, c] : checks_) {
    CheckView v;
    v.name = name;
    v.kind = c.cfg.kind;
    v.target = c.cfg.check ? c.cfg.check->target() : "";
    v.critical = c.cfg.critical;
    v.health = c.state.health();
    v.successes = c.state.successes();
    v.failures = c.state.failures();
    v.rise = c.state.rise();
    v.fall = c.state.fall();
    v.last = c.last;
    v.last_time = c.last_time;
    v.since = c.since;
    v.last_success = c.last_success;
    v.services = c.services;
    s->checks.push_back(std::move(v));
  }
  s->events.assign(events_.items().begin(), events_.items().end());
  snapshot_ = std::move(s);
  for (Observer* o : observers_) o->on_snapshot(*snapshot_);
  return snapshot_;
}

}  // namespace poolkeeper

#include "agent/model/health_model.h"

#include <algorithm>
#include <tuple>

#include "agent/base/duration.h"

namespace poolkeeper {

HealthModel::HealthModel(const ModelConfig& config, const Clock& clock, std::function<double()> uniform01,
               std::string boot_id)
    : config_(config), clock_(clock), boot_id_(std::move(boot_id)), scheduler_(clock, std::move(uniform01)) {
  WallTime wall = clock_.wall();
  lifecycle_since_ = wall;
  for (const auto& [name, cc] : config_.checks) {
    scheduler_.add(name, cc);
    checks_.emplace(name, new_check(cc, wall));
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

HealthModel::CheckRuntime HealthModel::new_check(const CheckConfig& cc, WallTime wall) {
  CheckRuntime rt{.cfg = cc, .state = CheckState(cc.rise, cc.fall)};
  rt.since = wall;
  return rt;
}

SteadyTime HealthModel::next_due() const {
  SteadyTime t = scheduler_.next_due();
  WallTime wall = clock_.wall();
  for (const auto& name : timed_intents_) {
    const AdminIntent& i = services_.at(name).intent;
    if (!i.expires) continue;
    auto left = std::max<Duration>(Duration::zero(), *i.expires - wall);
    t = std::min(t, clock_.now() + left);
  }
  return t;
}

void HealthModel::on_result(const std::string& check, const Result& r) {
  if (auto probe = scheduler_.in_flight_or_start(check)) on_result(check, probe->first, probe->second, r);
}

void HealthModel::on_result(const std::string& check, uint64_t gen, uint64_t seq, const Result& r,
                            std::optional<SteadyTime> at) {
  auto accepted = scheduler_.accept(check, gen, seq);
  if (accepted == ProbeScheduler::Accept::kDropped) return;
  CheckRuntime& rt = checks_.at(check);
  if (accepted == ProbeScheduler::Accept::kLate) {
    // Already counted as timed out (perhaps several times): the late answer says
    // nothing about now. It only frees the check for its next probe.
    scheduler_.reschedule(check, fast(rt), at);
    check_changed(check, rt);  // no longer stuck
    ++version_;
    return;
  }
  // What the services read of a check (recompute_service): its health and, while it is
  // not healthy, its streak and last reason. A result that changes none of it (a healthy
  // check staying healthy, a hung one timing out again) leaves the services as they are,
  // so its cost does not grow with the number of checks in them.
  auto seen = [&] {
    bool healthy = rt.state.health() == CheckHealth::kHealthy;
    return std::tuple(rt.state.health(), healthy ? 0 : rt.state.successes(),
                      healthy || !rt.last ? std::string() : rt.last->reason, healthy || !rt.last || rt.last->ok());
  };
  auto before = seen();
  std::string note = r.ok() ? "" : unit_note(rt);
  if (note.empty()) {
    submit(check, rt, r);
  } else {
    Result noted = r;  // the probe's own reason first, then what systemd said
    noted.reason += "; " + note;
    submit(check, rt, noted);
  }
  maybe_settle(rt, seq);
  scheduler_.reschedule(check, fast(rt), at);
  if (seen() != before) {
    WallTime wall = clock_.wall();
    for (const auto& svc : rt.services) recompute_service(svc, services_.at(svc), wall);
  }
  tick();
}

void HealthModel::check_changed(const std::string& name, const CheckRuntime& rt) {
  // The services' views read only what recompute_service() derives (it marks them).
  dirty_checks_.insert(name);
  if (rt.cfg.traits.identity && !peers_.empty()) peers_dirty_ = true;  // identity compared with the peers'
}

void HealthModel::submit(const std::string& check, CheckRuntime& rt, const Result& r) {
  WallTime wall = clock_.wall();
  CheckHealth before = rt.state.health();
  Change ch = rt.state.submit(r.ok());
  rt.last = r;
  rt.last_time = wall;
  if (r.ok()) rt.last_success = wall;
  {  // copy-on-write: snapshots already built keep the history they were given
    const auto& old = *rt.history;
    auto h = std::make_shared<std::vector<ResultPoint>>();
    size_t keep = std::min(old.size(), kHistoryLength - 1);
    h->reserve(keep + 1);
    h->assign(old.end() - static_cast<std::ptrdiff_t>(keep), old.end());
    h->push_back({wall, static_cast<float>(seconds(r.latency)), r.outcome});
    rt.history = std::move(h);
  }
  for (Observer* o : observers_) o->on_result(check, r, wall);
  if (ch == Change::kChanged) {
    rt.since = wall;
    emit({wall, EventKind::kCheck, check, check_health_name(before), check_health_name(rt.state.health()),
          r.reason});
  }
  check_changed(check, rt);
  ++version_;  // streaks and last result are part of the picture
}

void HealthModel::check_overdue() {
  auto overdue = scheduler_.take_overdue();
  if (overdue.empty()) return;
  for (const auto& o : overdue) {
    auto stuck = std::chrono::duration_cast<std::chrono::milliseconds>(o.stuck);
    Result r = Result::fail(Outcome::kTimeout, "probe stuck: no result " + format_duration(stuck) +
                                                   " after it started (timeout " + format_duration(o.timeout) + ")");
    r.latency = o.stuck;
    r.details["stuck"] = true;
    CheckRuntime& rt = checks_.at(o.name);
    if (std::string note = unit_note(rt); !note.empty()) r.reason += "; " + note;
    submit(o.name, rt, r);
    scheduler_.counted_overdue(o.name, fast(rt));
  }
  WallTime wall = clock_.wall();
  std::set<std::string> touched;
  for (const auto& o : overdue)
    for (const auto& svc : checks_.at(o.name).services) touched.insert(svc);
  for (const auto& svc : touched) recompute_service(svc, services_.at(svc), wall);
}

void HealthModel::set_lifecycle(Lifecycle l) {
  if (l == lifecycle_) return;
  WallTime wall = clock_.wall();
  Lifecycle before = lifecycle_;
  lifecycle_ = l;
  lifecycle_since_ = wall;
  emit({wall, EventKind::kLifecycle, "", lifecycle_name(before), lifecycle_name(l), ""});
  ++version_;
  recompute_services();
}

void HealthModel::release_for_stop(const std::string& service) {
  auto it = services_.find(service);
  if (it == services_.end() || it->second.stop_released) return;
  it->second.stop_released = true;
  ++version_;
  recompute_service(service, it->second, clock_.wall());
}

void HealthModel::seed_check(const std::string& check, CheckHealth h) {
  auto it = checks_.find(check);
  if (it == checks_.end()) return;
  it->second.state.seed(h);
  it->second.since = clock_.wall();
  check_changed(check, it->second);
  ++version_;
  WallTime wall = clock_.wall();
  for (const auto& svc : it->second.services) recompute_service(svc, services_.at(svc), wall);
}

void HealthModel::load_state(const LoadedState& state) {
  WallTime wall = clock_.wall();
  state_ok_ = state.status != LoadedState::Status::kUnreadable;
  state_error_ = state.error;
  for (auto& [name, svc] : services_) {
    if (!state_ok_) {
      // Never silently pool a host whose recorded intent is unknown.
      change_intent(svc, name, {Intent::kDepooled, "state file unreadable: " + state.error, "poolkeeper", wall});
      continue;
    }
    auto it = state.intents.find(name);
    change_intent(svc, name, it != state.intents.end() ? it->second : AdminIntent{});
  }
  ++version_;
  recompute_services();
  tick();
}

void HealthModel::change_intent(ServiceRuntime& svc, const std::string& name, const AdminIntent& intent, bool automatic) {
  if (svc.intent == intent) return;
  std::string before = intent_name(svc.intent.intent);
  svc.intent = intent;
  if (intent.intent != Intent::kPooled && (intent.expires || intent.until_boot)) timed_intents_.insert(name);
  else timed_intents_.erase(name);
  std::string why = intent.reason;
  // "disk swap (by alice)", or "by root" for a pool with no --reason.
  if (!intent.who.empty()) why += why.empty() ? "by " + intent.who : " (by " + intent.who + ")";
  Event e{clock_.wall(), EventKind::kIntent, name, before, intent_name(intent.intent), why};
  e.automatic = automatic;
  emit(std::move(e));
  dirty_services_.insert(name);
  ++version_;
}

bool HealthModel::set_intent(const std::string& service, const AdminIntent& intent) {
  auto it = services_.find(service);
  if (it == services_.end()) return false;
  change_intent(it->second, service, intent);
  recompute_service(service, it->second, clock_.wall());
  return true;
}

const AdminIntent* HealthModel::intent(const std::string& service) const {
  auto it = services_.find(service);
  return it == services_.end() ? nullptr : &it->second.intent;
}

std::map<std::string, AdminIntent> HealthModel::intents() const {
  std::map<std::string, AdminIntent> out;
  for (const auto& [name, svc] : services_) out[name] = svc.intent;
  return out;
}

void HealthModel::tick() {
  check_overdue();
  if (timed_intents_.empty()) return;
  WallTime wall = clock_.wall();
  std::vector<std::string> changed;
  for (const auto& name : std::vector<std::string>(timed_intents_.begin(), timed_intents_.end())) {
    ServiceRuntime& svc = services_.at(name);
    const AdminIntent i = svc.intent;
    if (i.expires && wall >= *i.expires) {
      change_intent(svc, name,
                    {Intent::kPooled, "depool for " + std::string(intent_name(i.intent)) + " expired (was: " + i.reason + ")",
                     "poolkeeper", wall},
                    /*automatic=*/true);
      changed.push_back(name);
    } else if (i.until_boot && !boot_id_.empty() && i.boot_id != boot_id_ && svc.healthy) {
      change_intent(svc, name, {Intent::kPooled, "healthy after reboot (was: " + i.reason + ")", "poolkeeper", wall},
                    /*automatic=*/true);
      changed.push_back(name);
    }
  }
  for (const auto& name : changed) recompute_service(name, services_.at(name), wall);
}

void HealthModel::set_peers(std::vector<PeerState> peers) {
  WallTime wall = clock_.wall();
  for (auto& p : peers) {
    // Of the peer's checks, only those peer_views() compares with ours are kept.
    std::erase_if(p.checks, [&](const auto& pc) {
      auto ours = checks_.find(pc.first);
      return ours == checks_.end() || !ours->second.cfg.traits.identity || ours->second.cfg.kind != pc.second.kind;
    });
    if (p.reachable) continue;
    auto old = std::find_if(peers_.begin(), peers_.end(), [&](const PeerState& o) { return o.url == p.url; });
    if (old != peers_.end()) {
      if (p.host.empty()) p.host = old->host;
      p.last_seen = old->last_seen;
      if (p.services.empty()) p.services = old->services;
      for (auto& [name, s] : p.services) s = PeerService{"unknown", false, false, "unreachable"};
      p.unreachable_since = old->reachable || old->unreachable_since == WallTime{} ? wall : old->unreachable_since;
    } else {
      p.unreachable_since = wall;
    }
  }
  peers_ = std::move(peers);
  ++peers_gen_;
  peers_dirty_ = true;
  ++version_;
  recompute_services();
}

void HealthModel::set_leftover_processes(int left_behind, uint64_t killed_total) {
  if (left_behind == leftover_processes_ && killed_total == leftovers_killed_) return;
  leftover_processes_ = left_behind;
  leftovers_killed_ = killed_total;
  ++version_;
}

std::string HealthModel::unit_note(const CheckRuntime& rt) const {
  if (rt.cfg.unit.empty()) return "";
  auto u = units_.find(rt.cfg.unit);
  if (u != units_.end() && u->second.known && unit_away(u->second.state)) return unit_text(u->second.state);
  return rt.hurry_seq ? rt.away_text : "";
}

void HealthModel::maybe_settle(CheckRuntime& rt, uint64_t seq) {
  if (rt.hurry_seq == 0 || seq < rt.hurry_seq || rt.state.changing()) return;
  auto u = units_.find(rt.cfg.unit);
  // A unit no longer watched settles on the probes alone.
  if (u != units_.end() && u->second.known && !unit_steady(u->second.state)) return;
  rt.hurry_seq = 0;
  rt.away_text.clear();
}

void HealthModel::on_unit(const UnitState& s, bool resync) {
  WallTime wall = clock_.wall();
  UnitTrack& u = units_[s.unit];
  bool had = u.seen;  // a bus lost and back: compared with the last state heard
  UnitState before = u.state;
  u.state = s;
  u.known = u.seen = true;
  u.error.clear();
  bool moved = !had || before.active_state != s.active_state || before.sub_state != s.sub_state ||
               before.job_id != s.job_id || before.job_type != s.job_type;
  if (s.job_id != 0 && (!u.last_job || u.last_job->id != s.job_id || u.last_job->type != s.job_type))
    u.last_job = UnitView::Job{s.job_id, s.job_type, unit_job_asker(s), wall};
  auto word = [](const UnitState& st) {
    std::string w = st.active_state.empty() ? "unknown" : st.active_state;
    if (!st.sub_state.empty()) w += "/" + st.sub_state;
    if (st.job_id) w += "+" + (st.job_type.empty() ? std::string("job") : st.job_type + " job");
    return w;
  };
  if (moved && had) {
    std::string why = unit_text(s);
    if (s.job_id) why += "; " + unit_job_asker(s);
    emit({wall, EventKind::kUnit, s.unit, word(before), word(s), why});
  }
  // The first state seen is where things stand, not an event.
  bool trigger = moved && unit_away(s) && (had || !resync);
  for (auto& [name, rt] : checks_) {
    if (rt.cfg.unit != s.unit) continue;
    if (trigger) {
      if (rt.hurry_seq == 0) rt.hurry_seq = scheduler_.next_seq();
      rt.away_text = unit_text(s);
      scheduler_.probe_now(name, rt.hurry_seq);
    }
    check_changed(name, rt);
  }
  ++version_;
}

void HealthModel::set_unit_unwatched(const std::string& unit, const std::string& error) {
  UnitTrack& u = units_[unit];
  if (!u.known && u.error == error) return;
  u.known = false;
  u.error = error;
  for (auto& [name, rt] : checks_)
    if (rt.cfg.unit == unit) check_changed(name, rt);
  ++version_;
}

void HealthModel::set_conftool_enabled(bool on) {
  conftool_enabled_ = on;
  ++version_;
  recompute_services();
}

void HealthModel::set_conftool_status(bool up, const std::string& error, const nlohmann::json& keys,
                                 const nlohmann::json& liveness, const nlohmann::json& endpoints) {
  if (up == conftool_up_ && error == conftool_error_ && keys == conftool_keys_ && liveness == conftool_liveness_ &&
      endpoints == conftool_endpoints_)
    return;
  bool was_up = conftool_up_;
  conftool_liveness_ = liveness;
  conftool_endpoints_ = endpoints;
  if (up != conftool_up_)
    emit({clock_.wall(), EventKind::kConftool, "", conftool_up_ ? "up" : "down", up ? "up" : "down", error});
  conftool_up_ = up;
  conftool_error_ = error;
  if (up) conftool_keys_ = keys;
  // Down: the peers decide, as without conftool — except where the lock itself was
  // refused (a missing grant, not an outage): that host stays in, loudly.
  if (!up) std::erase_if(verdicts_, [](const auto& v) { return v.second != FloorVerdict::kLockDenied; });
  if (up && !was_up) std::erase_if(verdicts_, [](const auto& v) { return v.second == FloorVerdict::kLockDenied; });
  ++version_;
  recompute_services();
}

void HealthModel::set_floor_verdict(const std::string& service, FloorVerdict v) {
  auto it = verdicts_.find(service);
  if (it != verdicts_.end() && it->second == v) return;
  verdicts_[service] = v;
  ++version_;
  auto svc = services_.find(service);
  if (svc != services_.end()) recompute_service(service, svc->second, clock_.wall());
}

bool HealthModel::peers_floor_keeps(const std::string& name, ServiceRuntime& svc) {
  const std::string& self = config_.agent.hostname;
  std::vector<FloorHost> hosts = floor_hosts(name, peers_for(svc.cfg));
  if (svc.floor_released && floor_returns(self, svc.cfg.min_pooled, hosts)) svc.floor_released = false;
  if (svc.floor_released) return false;
  if (!svc.leave_announced && svc.attempt_peers_gen != peers_gen_ &&
      floor_leave(self, LeaveKind::kFailing, svc.cfg.min_pooled, hosts) != LeaveDecision::kStay) {
    svc.leave_announced = true;
    svc.attempt_peers_gen = peers_gen_;
    leave_polls_.push_back({name, ++svc.leave_attempt});
    ++version_;
  }
  return true;
}

LeaveDecision HealthModel::floor_leave_poll(const std::string& service, uint64_t attempt, bool last) {
  auto it = services_.find(service);
  // Overtaken (recovered, depooled, reloaded, decided under the etcd lock): nothing to do.
  if (it == services_.end() || !it->second.leave_announced || it->second.leave_attempt != attempt)
    return LeaveDecision::kStay;
  ServiceRuntime& svc = it->second;
  LeaveDecision d = floor_leave(config_.agent.hostname, LeaveKind::kFailing, svc.cfg.min_pooled,
                                floor_hosts(service, peers_for(svc.cfg)));
  if (d == LeaveDecision::kWait && !last) return d;
  if (d == LeaveDecision::kWait) d = LeaveDecision::kStay;
  svc.leave_announced = false;
  svc.floor_released = d == LeaveDecision::kLeave;
  svc.attempt_peers_gen = peers_gen_;  // the next attempt waits for a newer view
  ++version_;
  recompute_service(service, svc, clock_.wall());
  return d;
}

void HealthModel::set_leaving(const std::string& service, bool on) {
  auto it = services_.find(service);
  if (it == services_.end() || it->second.operator_leaving == on) return;
  it->second.operator_leaving = on;
  dirty_services_.insert(service);
  ++version_;
}

std::vector<PeerState> HealthModel::peers_for(const ServiceConfig& sc) const {
  return service_peers(peers_, sc.peers, config_.agent.hostname);
}

void HealthModel::reconfigure(const ModelConfig& config) {
  WallTime wall = clock_.wall();
  std::map<std::string, CheckRuntime> checks;
  for (const auto& [name, cc] : config.checks) {
    auto old = checks_.find(name);
    if (old != checks_.end() && old->second.cfg.kind == cc.kind &&
        old->second.cfg.fingerprint == cc.fingerprint) {
      // Same target: keep the state, the probe in flight and the Check object (its
      // warm connection); adopt the new timing.
      CheckRuntime rt = std::move(old->second);
      std::shared_ptr<Check> probe = rt.cfg.check;
      if (cc.unit != rt.cfg.unit) {
        rt.hurry_seq = 0;  // another unit: its events start afresh
        rt.away_text.clear();
      }
      rt.cfg = cc;
      rt.cfg.check = probe;
      rt.state.set_thresholds(cc.rise, cc.fall);
      scheduler_.retime(name, cc, fast(rt));
      rt.services.clear();
      checks.emplace(name, std::move(rt));
    } else {
      scheduler_.add(name, cc);
      checks.emplace(name, new_check(cc, wall));
    }
  }
  for (const auto& [name, rt] : checks_)
    if (!checks.count(name)) scheduler_.remove(name);
  std::map<std::string, ServiceRuntime> services;
  timed_intents_.clear();
  for (const auto& [name, sc] : config.services) {
    ServiceRuntime rt;
    auto old = services_.find(name);
    if (old != services_.end()) rt = old->second;
    else rt.since = wall;
    rt.cfg = sc;
    for (const auto& c : sc.checks) checks.at(c).services.push_back(name);
    if (rt.intent.intent != Intent::kPooled && (rt.intent.expires || rt.intent.until_boot)) timed_intents_.insert(name);
    services.emplace(name, std::move(rt));
  }
  checks_ = std::move(checks);
  services_ = std::move(services);
  std::set<std::string> named;
  for (const auto& [name, rt] : checks_)
    if (!rt.cfg.unit.empty()) named.insert(rt.cfg.unit);
  std::erase_if(units_, [&](const auto& kv) { return !named.count(kv.first); });
  config_ = config;
  emit({wall, EventKind::kConfig, "", "", "reloaded", config.file});
  all_dirty_ = true;
  ++version_;
  recompute_services();
}

const CheckState* HealthModel::check_state(const std::string& check) const {
  auto it = checks_.find(check);
  return it == checks_.end() ? nullptr : &it->second.state;
}

void HealthModel::recompute_services() {
  WallTime wall = clock_.wall();
  for (auto& [name, svc] : services_) recompute_service(name, svc, wall);
}

void HealthModel::recompute_service(const std::string& name, ServiceRuntime& svc, WallTime wall) {
  std::string failing;
  bool any_unhealthy = false;
  std::vector<std::string> warnings;
  for (const auto& cname : svc.cfg.checks) {
    const CheckRuntime& c = checks_.at(cname);
    if (c.state.health() == CheckHealth::kHealthy) continue;
    std::string why = "check " + cname + " " + check_health_name(c.state.health());
    if (c.state.health() == CheckHealth::kUnknown) {
      why += c.last ? ": rising " + std::to_string(c.state.successes()) + "/" + std::to_string(c.state.rise()) +
                          (c.last->ok() ? "" : " (" + c.last->reason + ")")
                    : ": no result yet";
    } else if (c.last) {
      why += ": " + c.last->reason;
    }
    if (c.cfg.critical) {
      if (failing.empty()) failing = why;
      any_unhealthy |= c.state.health() == CheckHealth::kUnhealthy;
    } else {
      warnings.push_back(why);
    }
  }
  svc.healthy = failing.empty();
  svc.health_reason = failing;
  svc.warnings = warnings;
  // While stopping, a service not yet released keeps deciding as if running.
  Lifecycle lc = lifecycle_ == Lifecycle::kStopping && !svc.stop_released ? Lifecycle::kRunning : lifecycle_;
  svc.failing = lc == Lifecycle::kRunning && svc.intent.intent == Intent::kPooled && any_unhealthy;
  bool keep = false;
  bool peers_floor = false;
  auto denied = verdicts_.find(name);
  if (svc.failing && conftool_enabled_ && denied != verdicts_.end() && denied->second == FloorVerdict::kLockDenied) {
    keep = true;
  } else if (svc.failing && conftool_enabled_ && conftool_up_) {
    // Decided under the etcd lock; until the verdict arrives, stay in.
    auto v = verdicts_.find(name);
    keep = v == verdicts_.end() || v->second != FloorVerdict::kRelease;
  } else if (svc.failing && !svc.cfg.peers.empty()) {
    peers_floor = true;
    keep = peers_floor_keeps(name, svc);
  }
  if (!peers_floor && (svc.floor_released || svc.leave_announced)) {
    // Recovered, depooled, or decided elsewhere: an attempt on its way is dropped.
    svc.floor_released = svc.leave_announced = false;
    ++version_;
  }
  svc.kept_by_floor = keep;
  EffectiveState eff = decide_effective(lc, svc.intent, failing, keep);
  if (eff.state != Effective::kPooled && svc.intent.until_boot && !boot_id_.empty() &&
      svc.intent.boot_id != boot_id_ && lc == Lifecycle::kRunning)
    eff.reason += " (returns once healthy: rebooted since)";
  if (eff.state != svc.effective.state) {
    emit({wall, EventKind::kService, name, effective_name(svc.effective.state), effective_name(eff.state), eff.reason});
    svc.since = wall;
  }
  if (!(eff == svc.effective)) ++version_;
  svc.effective = eff;
  dirty_services_.insert(name);
}

void HealthModel::emit(Event e) {
  for (Observer* o : observers_) o->on_event(e);
  builder_.add_event(std::move(e));
}

CheckView HealthModel::check_view(const std::string& name, const CheckRuntime& c) const {
  std::optional<WallTime> stuck_since;
  if (auto started = scheduler_.stuck_since(name))
    stuck_since = clock_.wall() - std::chrono::duration_cast<WallTime::duration>(clock_.now() - *started);
  return CheckView{.name = name,
                   .kind = c.cfg.kind,
                   .target = c.cfg.check ? c.cfg.check->target() : "",
                   .critical = c.cfg.critical,
                   .health = c.state.health(),
                   .successes = c.state.successes(),
                   .failures = c.state.failures(),
                   .rise = c.state.rise(),
                   .fall = c.state.fall(),
                   .last = c.last,
                   .last_time = c.last_time,
                   .since = c.since,
                   .last_success = c.last_success,
                   .services = c.services,
                   .stuck_since = stuck_since,
                   .unit = unit_view(c),
                   .history = c.history};
}

std::optional<UnitView> HealthModel::unit_view(const CheckRuntime& c) const {
  if (c.cfg.unit.empty()) return std::nullopt;
  UnitView u;
  u.name = c.cfg.unit;
  u.hurried = c.hurry_seq != 0;
  auto it = units_.find(c.cfg.unit);
  if (it == units_.end()) {
    u.error = "not watched yet";
    return u;
  }
  const UnitTrack& t = it->second;
  u.watched = t.known;
  u.error = t.error;
  u.last_job = t.last_job;
  if (t.known) {
    u.active_state = t.state.active_state;
    u.sub_state = t.state.sub_state;
    u.text = unit_text(t.state);
  }
  return u;
}

ServiceView HealthModel::service_view(const std::string& name, const ServiceRuntime& svc) const {
  ServiceView v;
  v.name = name;
  v.effective = svc.effective;
  v.healthy = svc.healthy;
  v.health_reason = svc.health_reason;
  v.warnings = svc.warnings;
  v.intent = svc.intent;
  v.since = svc.since;
  v.checks = svc.cfg.checks;
  v.port = svc.cfg.port;
  v.failing = svc.failing;
  v.has_peers = !svc.cfg.peers.empty();
  v.min_pooled = svc.cfg.min_pooled;
  if (v.has_peers) v.peers_pooled_healthy = pooled_healthy_peers(name, peers_for(svc.cfg));
  v.kept_by_floor = svc.kept_by_floor;
  v.leaving = svc.effective.state == Effective::kPooled && (svc.leave_announced || svc.operator_leaving);
  v.stop_released = lifecycle_ == Lifecycle::kStopping && svc.stop_released;
  v.returns_after_boot = svc.intent.until_boot && !boot_id_.empty() && svc.intent.boot_id != boot_id_;
  return v;
}

std::vector<PeerView> HealthModel::peer_views() const {
  std::vector<PeerView> out;
  for (const auto& p : peers_) {
    PeerView pv;
    pv.state = p;
    for (const auto& [name, c] : checks_) {
      auto identity = c.cfg.traits.identity;
      if (!identity) continue;
      std::optional<bool> match;
      auto theirs = p.checks.find(name);
      if (p.reachable && theirs != p.checks.end() && theirs->second.kind == c.cfg.kind && c.last) {
        std::string ours = identity(c.last->details), their = identity(theirs->second.details);
        if (!ours.empty() && !their.empty()) match = ours == their;
      }
      pv.handles_match[name] = match;
    }
    out.push_back(std::move(pv));
  }
  return out;
}

void HealthModel::set_all_views(SnapshotBuilder& b) const {
  std::vector<CheckView> checks;
  for (const auto& [name, c] : checks_) checks.push_back(check_view(name, c));
  b.set_checks(std::move(checks));
  std::vector<ServiceView> services;
  for (const auto& [name, svc] : services_) services.push_back(service_view(name, svc));
  b.set_services(std::move(services));
  b.set_peers(peer_views());
}

Snapshot HealthModel::host_wide() const {
  Snapshot s;
  s.version = version_;
  s.host = config_.agent.hostname;
  s.lifecycle = lifecycle_;
  s.lifecycle_since = lifecycle_since_;
  s.generated = clock_.wall();
  s.state_file_ok = state_ok_;
  if (conftool_enabled_)
    s.conftool = {{"up", conftool_up_}, {"last_error", conftool_error_}, {"keys", conftool_keys_},
                  {"liveness", conftool_liveness_}, {"endpoints", conftool_endpoints_}};
  s.state_file_error = state_error_;
  s.leftover_processes = leftover_processes_;
  s.leftovers_killed = leftovers_killed_;
  return s;
}

std::shared_ptr<const Snapshot> HealthModel::snapshot() {
  if (snapshot_ && snapshot_->version == version_) return snapshot_;
  // Only the views that changed are made again; the rest are shared with the last one.
  if (all_dirty_) {
    set_all_views(builder_);
  } else {
    for (const auto& name : dirty_checks_) {
      auto it = checks_.find(name);
      if (it != checks_.end()) builder_.set_check(check_view(name, it->second));
    }
    for (const auto& name : dirty_services_) {
      auto it = services_.find(name);
      if (it != services_.end()) builder_.set_service(service_view(name, it->second));
    }
    if (peers_dirty_) builder_.set_peers(peer_views());
  }
  all_dirty_ = peers_dirty_ = false;
  dirty_checks_.clear();
  dirty_services_.clear();
  snapshot_ = builder_.build(host_wide());
  for (Observer* o : observers_) o->on_snapshot(*snapshot_);
  return snapshot_;
}

std::shared_ptr<const Snapshot> HealthModel::snapshot_from_scratch() const {
  SnapshotBuilder b = builder_;  // for its events
  set_all_views(b);
  return b.build(host_wide());
}

}  // namespace poolkeeper

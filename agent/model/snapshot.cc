#include "agent/model/snapshot.h"

#include "agent/base/duration.h"

namespace poolkeeper {

const ServiceView* Snapshot::find_service(const std::string& name) const {
  for (const auto& s : services)
    if (s.name == name) return &s;
  return nullptr;
}

const CheckView* Snapshot::find_check(const std::string& name) const {
  for (const auto& c : checks)
    if (c.name == name) return &c;
  return nullptr;
}

namespace {

nlohmann::json intent_json(const AdminIntent& i) {
  nlohmann::json j = {{"intent", intent_name(i.intent)}, {"reason", i.reason}, {"who", i.who}};
  j["when"] = i.when == WallTime{} ? nlohmann::json(nullptr) : nlohmann::json(format_wall(i.when));
  j["expires"] = i.expires ? nlohmann::json(format_wall(*i.expires)) : nlohmann::json(nullptr);
  j["until_boot"] = i.until_boot;
  return j;
}

}  // namespace

nlohmann::json status_json(const Snapshot& s) {
  nlohmann::json j;
  j["host"] = s.host;
  j["lifecycle"] = lifecycle_name(s.lifecycle);
  j["lifecycle_since"] = format_wall(s.lifecycle_since);
  j["generated"] = format_wall(s.generated);
  j["version"] = POOLKEEPER_VERSION;
  nlohmann::json services = nlohmann::json::object();
  for (const auto& sv : s.services) {
    nlohmann::json o;
    o["effective"] = effective_name(sv.effective.state);
    o["pooled"] = sv.effective.state == Effective::kPooled;
    o["reason"] = sv.effective.reason;
    o["since"] = format_wall(sv.since);
    o["health"] = sv.healthy ? "healthy" : "unhealthy";
    o["health_reason"] = sv.health_reason;
    o["warnings"] = sv.warnings;
    o["intent"] = intent_json(sv.intent);
    o["checks"] = sv.checks;
    o["port"] = sv.port;
    o["failing"] = sv.failing;
    o["leaving"] = sv.leaving;
    if (sv.returns_after_boot) o["returns_after_boot"] = true;
    if (sv.has_peers) {
      o["floor"] = {{"min_pooled", sv.min_pooled},
                    {"peers_pooled_healthy", sv.peers_pooled_healthy},
                    {"kept_by_floor", sv.kept_by_floor}};
    }
    services[sv.name] = std::move(o);
  }
  j["services"] = std::move(services);
  nlohmann::json checks = nlohmann::json::object();
  for (const auto& c : s.checks) {
    nlohmann::json o;
    o["kind"] = c.kind;
    o["target"] = c.target;
    o["critical"] = c.critical;
    o["state"] = check_health_name(c.health);
    o["since"] = format_wall(c.since);
    o["rise"] = c.rise;
    o["fall"] = c.fall;
    o["successes"] = c.successes;
    o["failures"] = c.failures;
    o["services"] = c.services;
    if (c.last) {
      o["last"] = {{"result", outcome_name(c.last->outcome)},
                   {"reason", c.last->reason},
                   {"latency_seconds", seconds(c.last->latency)},
                   {"time", format_wall(c.last_time)},
                   {"details", c.last->details}};
    } else {
      o["last"] = nullptr;
    }
    o["last_success"] = c.last_success ? nlohmann::json(format_wall(*c.last_success))
                                       : nlohmann::json(nullptr);
    // A probe in flight past its timeout: counted as failing until it returns.
    o["stuck_since"] = c.stuck_since ? nlohmann::json(format_wall(*c.stuck_since)) : nlohmann::json(nullptr);
    if (c.unit) {
      const UnitView& u = *c.unit;
      nlohmann::json uj = {{"name", u.name}, {"watched", u.watched}, {"active_state", u.active_state},
                           {"sub_state", u.sub_state}, {"text", u.text}, {"error", u.error},
                           {"fast_until_settled", u.hurried}};
      uj["last_job"] = u.last_job ? nlohmann::json({{"id", u.last_job->id},
                                                    {"type", u.last_job->type},
                                                    {"asked_by", u.last_job->asked_by},
                                                    {"seen", format_wall(u.last_job->seen)}})
                                  : nlohmann::json(nullptr);
      o["unit"] = std::move(uj);
    }
    checks[c.name] = std::move(o);
  }
  j["checks"] = std::move(checks);
  nlohmann::json peers = nlohmann::json::array();
  for (const auto& pv : s.peers) {
    const PeerState& p = pv.state;
    nlohmann::json o = {{"url", p.url}, {"host", p.host}, {"reachable", p.reachable},
                        {"error", p.error}, {"lifecycle", p.lifecycle}};
    o["last_seen"] = p.last_seen == WallTime{} ? nlohmann::json(nullptr) : nlohmann::json(format_wall(p.last_seen));
    o["unreachable_since"] = p.unreachable_since == WallTime{} ? nlohmann::json(nullptr)
                                                                : nlohmann::json(format_wall(p.unreachable_since));
    nlohmann::json svcs = nlohmann::json::object();
    for (const auto& [name, ps] : p.services)
      svcs[name] = {{"effective", ps.effective}, {"healthy", ps.healthy}, {"failing", ps.failing},
                    {"leaving", ps.leaving}};
    o["services"] = svcs;
    nlohmann::json hm = nlohmann::json::object();
    for (const auto& [check, m] : pv.handles_match) hm[check] = m ? nlohmann::json(*m) : nlohmann::json(nullptr);
    o["nfs_handles_match"] = hm;
    peers.push_back(o);
  }
  j["peers"] = peers;
  j["state_file"] = {{"ok", s.state_file_ok}, {"error", s.state_file_error}};
  j["exec_leftovers"] = {{"alive", s.leftover_processes}, {"killed_total", s.leftovers_killed}};
  if (!s.conftool.is_null()) j["conftool"] = s.conftool;
  return j;
}

nlohmann::json events_json(const Snapshot& s) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : s.events) arr.push_back(event_json(e));
  return {{"host", s.host}, {"events", std::move(arr)}};
}

}  // namespace poolkeeper

#include "agent/admin/admin_handler.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "agent/base/log.h"
#include "agent/base/utf8.h"
#include "pybal-compat/conftool_wants.h"

namespace poolkeeper {

AdminHandler::AdminHandler(Deps deps) : d_(std::move(deps)) {}

bool AdminHandler::authorised(const PeerCred& cred, std::string* who, std::string* error) const {
  char buf[4096];
  struct passwd pw, *pwp = nullptr;
  std::string user = std::to_string(cred.uid);
  if (::getpwuid_r(cred.uid, &pw, buf, sizeof buf, &pwp) == 0 && pwp) user = pwp->pw_name;
  *who = user;
  if (cred.uid == 0) return true;
  std::string group = d_.config().agent.admin_group;
  if (!group.empty()) {
    struct group gr, *grp = nullptr;
    char gbuf[16384];
    if (::getgrnam_r(group.c_str(), &gr, gbuf, sizeof gbuf, &grp) == 0 && grp) {
      if (cred.gid == grp->gr_gid) return true;
      if (pwp) {
        int n = 64;
        std::vector<gid_t> groups(static_cast<size_t>(n));
        if (::getgrouplist(user.c_str(), pwp->pw_gid, groups.data(), &n) < 0) {
          groups.resize(static_cast<size_t>(n));
          ::getgrouplist(user.c_str(), pwp->pw_gid, groups.data(), &n);
        }
        for (int i = 0; i < n; ++i)
          if (groups[static_cast<size_t>(i)] == grp->gr_gid) return true;
      }
    }
  }
  *error = "permission denied: " + user + " is not root" + (group.empty() ? "" : " nor in group " + group);
  return false;
}

std::vector<std::string> AdminHandler::by_peers(const std::vector<std::string>& floor, const ModelConfig& cfg,
                                               const Snapshot& snap,
                                               const std::vector<ConftoolWriter::TakeOutAnswer>& answers,
                                               std::optional<std::string>* refusal) const {
  std::vector<std::string> out;
  for (const auto& service : floor) {
    auto a = std::find_if(answers.begin(), answers.end(),
                          [&](const ConftoolWriter::TakeOutAnswer& x) { return x.service == service; });
    if (a != answers.end() && !a->unavailable) {  // decided under the etcd lock
      if (a->refusal && !*refusal) *refusal = a->refusal;
      continue;
    }
    auto sc = cfg.services.find(service);
    const ServiceView* v = snap.find_service(service);
    if (sc == cfg.services.end() || sc->second.peers.empty() || !v || v->effective.state != Effective::kPooled)
      continue;
    out.push_back(service);
  }
  return out;
}

void AdminHandler::withdraw_leaving(const std::vector<std::string>& services) {
  if (services.empty()) return;
  d_.run_on_owner([&](HealthModel& e) {
    for (const auto& s : services) e.set_leaving(s, false);
    d_.publish();
  });
}

std::optional<std::string> AdminHandler::peers_leave(const std::vector<std::string>& services, const ModelConfig& cfg) {
  if (services.empty()) return std::nullopt;
  const std::string& self = cfg.agent.hostname;
  // Announced and published before the poll starts: every peer polling us from now on
  // sees it (floor.h explains why this makes two simultaneous leaves safe).
  if (!d_.run_on_owner([&](HealthModel& e) {
        for (const auto& s : services) e.set_leaving(s, true);
        d_.publish();
      }))
    return std::string(kAdminStoppingMessage);
  auto hosts = [&](const std::string& service, const std::vector<PeerState>& states) {
    return floor_hosts(service, service_peers(states, cfg.services.at(service).peers, self));
  };
  std::vector<PeerState> states;
  for (int round = 1;; ++round) {
    states = d_.poll_peers();
    bool wait = std::any_of(services.begin(), services.end(), [&](const std::string& s) {
      return floor_leave(self, LeaveKind::kOperator, cfg.services.at(s).min_pooled, hosts(s, states)) ==
             LeaveDecision::kWait;
    });
    if (!wait || round >= kLeaveMaxPolls) break;
    std::this_thread::sleep_for(kLeaveRepollDelay);  // a lower-named peer decides meanwhile
  }
  d_.post([states](HealthModel& e) { e.set_peers(states); });
  for (const auto& s : services) {
    const ServiceConfig& sc = cfg.services.at(s);
    if (floor_leave(self, LeaveKind::kOperator, sc.min_pooled, hosts(s, states)) == LeaveDecision::kLeave) continue;
    withdraw_leaving(services);
    auto why = depool_refusal(s, sc.min_pooled, service_peers(states, sc.peers, self));
    return why ? *why : "refused: depooling " + s + ": another host is deciding its own leave";
  }
  return std::nullopt;
}

void AdminHandler::through_conftool(
    const std::vector<ConftoolWriter::TakeOutRequest>& requests,
    const std::function<void(const std::vector<ConftoolWriter::TakeOutAnswer>&)>& decide_and_apply) {
  if (d_.conftool) d_.conftool->take_out(requests, decide_and_apply);
  else decide_and_apply({});
}

std::string AdminHandler::handle(const std::string& line, const PeerCred& cred) {
  std::string error;
  auto req = parse_admin_request(line, &error);
  if (!req) return admin_error(error);
  auto snap = d_.snapshot();
  std::vector<std::string> services;
  if (!resolve_services(*req, *snap, &services, &error)) return admin_error(error);
  if (!req->mutating()) return read_reply(*req, *snap, services);
  std::string who;
  if (!authorised(cred, &who, &error)) return admin_error(error);
  if (d_.stopping()) return admin_error(kAdminStoppingMessage);
  if (!req->sudo_user.empty() && req->sudo_user != who) who += " (sudo from " + req->sudo_user + ")";

  nlohmann::json result = nlohmann::json::object();
  std::string reply = change(*req, services, who, *snap, &result);
  if (!reply.empty()) return reply;
  if (d_.conftool && req->cmd == AdminCmd::kPool) report_conftool(services, &result);
  std::string names;
  for (const auto& n : services) names += (names.empty() ? "" : ",") + n;
  log_info(std::string("admin ") + admin_cmd_name(req->cmd), {{"services", names}, {"who", who}, {"reason", req->reason}});
  return json_text(nlohmann::json{{"ok", true}, {"services", result}}) + "\n";
}

bool AdminHandler::resolve_services(const AdminRequest& req, const Snapshot& snap, std::vector<std::string>* services,
                                    std::string* error) const {
  *services = req.services;
  if (services->empty())
    for (const auto& s : snap.services) services->push_back(s.name);
  for (const auto& name : *services) {
    if (!snap.find_service(name)) {
      std::string known;
      for (const auto& s : snap.services) known += (known.empty() ? "" : ", ") + s.name;
      *error = "unknown service \"" + name + "\" (known: " + known + ")";
      return false;
    }
  }
  return true;
}

std::string AdminHandler::read_reply(const AdminRequest& req, const Snapshot& snap,
                                     const std::vector<std::string>& services) const {
  if (req.cmd == AdminCmd::kStatus) return json_text(nlohmann::json{{"ok", true}, {"status", status_json(snap)}}) + "\n";
  const ServiceView* s = snap.find_service(services[0]);  // ispooled: exactly one
  return json_text(nlohmann::json{{"ok", true},
                                  {"pooled", s->effective.state == Effective::kPooled},
                                  {"effective", effective_name(s->effective.state)},
                                  {"reason", s->effective.reason}}) + "\n";
}

std::string AdminHandler::change(const AdminRequest& req, const std::vector<std::string>& services,
                                 const std::string& who, const Snapshot& snap, nlohmann::json* result) {
  // The floor: taking a pooled service out must leave min_pooled others pooled and
  // healthy, judged from every host's key under the etcd lock (with conftool up), or
  // from a fresh look at the peers. The conftool sync waits until the intent is
  // applied, so it cannot write back a "yes" decided before the depool.
  ModelConfig cfg = d_.config();
  std::vector<ConftoolWriter::TakeOutRequest> floor;
  if (req.takes_out() && !req.force) {
    for (const auto& name : services) {
      auto it = cfg.services.find(name);
      if (it == cfg.services.end()) continue;
      if (it->second.hold_on_reboot && req.until_boot) continue;  // held: stays in
      floor.push_back({name, it->second.min_pooled});
    }
  }
  AdminIntent intent = intent_for(req, who);
  std::string reply;  // set when the change is refused or fails
  auto decide_and_apply = [&](const std::vector<ConftoolWriter::TakeOutAnswer>& answers) {
    std::vector<std::string> floor_names;
    for (const auto& f : floor) floor_names.push_back(f.service);
    std::optional<std::string> refused;
    std::vector<std::string> leaving = by_peers(floor_names, cfg, snap, answers, &refused);
    if (!refused) refused = peers_leave(leaving, cfg);
    else leaving.clear();
    if (refused) {
      reply = *refused == kAdminStoppingMessage ? admin_error(*refused)
                                                : admin_error(*refused + " — use --force to depool anyway");
      return;
    }
    reply = apply(req, services, intent, leaving, result);
  };
  if (req.cmd == AdminCmd::kPool) decide_and_apply({});  // a pool needs no hold: the sync writes "yes" anyway
  else through_conftool(floor, decide_and_apply);
  return reply;
}

AdminIntent AdminHandler::intent_for(const AdminRequest& req, const std::string& who) const {
  WallTime now = d_.clock->wall();
  AdminIntent intent;
  intent.intent = req.cmd == AdminCmd::kPool    ? Intent::kPooled
                  : req.cmd == AdminCmd::kDrain ? Intent::kDrained
                                                : Intent::kDepooled;
  intent.reason = req.reason;
  intent.who = who;
  intent.when = now;
  if (req.for_seconds) intent.expires = now + std::chrono::seconds(*req.for_seconds);
  intent.until_boot = req.until_boot;
  return intent;
}

std::string AdminHandler::apply(const AdminRequest& req, const std::vector<std::string>& services, AdminIntent intent,
                                const std::vector<std::string>& leaving, nlohmann::json* result) {
  std::string save_error;
  bool ran = d_.run_on_owner([&](HealthModel& e) {
    auto before = e.intents();
    intent.boot_id = req.until_boot ? e.boot_id() : "";
    for (const auto& name : services) e.set_intent(name, intent);
    save_error = d_.persist(e);
    if (!save_error.empty()) {  // not acknowledged: put everything back
      for (const auto& [name, i] : before) e.set_intent(name, i);
    }
    // Out of the pool (or back as it was): the announcement has done its work.
    for (const auto& name : leaving) e.set_leaving(name, false);
    if (!save_error.empty()) {
      d_.publish();
      return;
    }
    auto s = e.snapshot();
    for (const auto& name : services) {
      const ServiceView* v = s->find_service(name);
      if (!v) {  // a reload removed it while this request was on its way
        (*result)[name] = {{"effective", "unknown"}, {"reason", "removed by a config reload"}, {"port", 0}};
        continue;
      }
      (*result)[name] = {{"effective", effective_name(v->effective.state)}, {"reason", v->effective.reason},
                         {"port", v->port}};
    }
    d_.publish();
  });
  if (!ran) return admin_error(kAdminStoppingMessage);
  if (!save_error.empty()) {
    log_error("cannot save state; change not applied", {{"error", save_error}});
    return admin_error("cannot save state, nothing changed: " + save_error);
  }
  return "";
}

void AdminHandler::report_conftool(const std::vector<std::string>& services, nlohmann::json* result) {
  // Say what the load balancer will do: the key as a sync after this pool left it.
  bool synced = d_.conftool->wait_synced(std::chrono::seconds(3));
  nlohmann::json keys = d_.conftool->keys();
  for (const auto& name : services) {
    PoolAnswer a = conftool_pool_answer(keys.contains(name) ? keys[name] : nlohmann::json(), synced,
                                        d_.conftool->last_error(), (*result)[name]["effective"] == "pooled");
    (*result)[name]["conftool"] = {{"key", d_.conftool->key(name)}, {"will_pool", a.will_pool}, {"message", a.message}};
  }
}

void AdminHandler::drain_through_floor(const std::vector<std::string>& services, const Snapshot& snap) {
  ModelConfig cfg = d_.config();
  for (const auto& name : services) {
    auto it = cfg.services.find(name);
    if (it == cfg.services.end()) continue;
    bool owner_gone = false;
    through_conftool({{name, it->second.min_pooled}}, [&](const std::vector<ConftoolWriter::TakeOutAnswer>& answers) {
      std::optional<std::string> refused;
      std::vector<std::string> leaving = by_peers({name}, cfg, snap, answers, &refused);
      if (!refused) refused = peers_leave(leaving, cfg);
      if (refused && *refused == kAdminStoppingMessage) {
        owner_gone = true;
        return;
      }
      if (refused) {
        log_warn("shutdown drain refused by the floor: stays pooled", {{"service", name}, {"why", *refused}});
        return;
      }
      owner_gone = !d_.run_on_owner([&](HealthModel& e) {
        e.release_for_stop(name);
        e.set_leaving(name, false);
        d_.publish();
      });
      if (!owner_gone) log_info("shutdown drain: released through the floor", {{"service", name}});
    });
    if (owner_gone) break;
  }
}

}  // namespace poolkeeper

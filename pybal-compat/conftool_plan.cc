#include "pybal-compat/conftool_plan.h"

#include <algorithm>

#include "agent/base/duration.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {
constexpr const char* kMarkReason = "poolkeeper_reason";

std::string host_of(const std::string& taken_out_key) { return taken_out_key.substr(taken_out_key.find('/') + 1); }
}  // namespace

std::optional<ConftoolValue> parse_conftool_value(const std::string& value, std::string* error) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "value is not a JSON object";
    return std::nullopt;
  }
  if (!j.contains("pooled") || !j["pooled"].is_string()) {
    *error = "value has no \"pooled\" string";
    return std::nullopt;
  }
  ConftoolValue v;
  v.pooled = j["pooled"].get<std::string>();
  if (v.pooled != "yes" && v.pooled != "no" && v.pooled != "inactive") {
    *error = "unknown pooled \"" + cut_utf8(v.pooled, 20) + "\"";
    return std::nullopt;
  }
  if (j.contains("weight") && !j["weight"].is_number_integer()) {
    *error = "weight is not an integer";
    return std::nullopt;
  }
  v.raw = std::move(j);
  return v;
}

std::string merge_conftool_value(const nlohmann::json& raw, const std::string& pooled,
                                 const std::optional<std::pair<std::string, std::string>>& depooled_by) {
  nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
  j["pooled"] = pooled;
  if (depooled_by) {
    j[kConftoolMarkBy] = depooled_by->first;
    j[kMarkReason] = depooled_by->second;
  } else {
    j.erase(kConftoolMarkBy);
    j.erase(kMarkReason);
  }
  return json_text(j);
}

std::vector<LivenessChange> track_liveness(PeerLiveness& track, const std::set<std::string>& alive,
                                           const std::vector<ConftoolPeer>& peers, SteadyTime now) {
  std::vector<LivenessChange> changes;
  std::set<std::string> known;
  for (const auto& p : peers) {
    if (p.host.empty()) continue;
    known.insert(p.host);
    if (alive.count(p.host)) {
      if (track.missing_since.erase(p.host)) changes.push_back({p.host, true});
      std::erase_if(track.taken_out, [&](const std::string& k) { return host_of(k) == p.host; });
    } else if (track.missing_since.emplace(p.host, now).second) {
      changes.push_back({p.host, false});
    }
  }
  std::erase_if(track.missing_since, [&](const auto& kv) { return !known.count(kv.first); });
  std::erase_if(track.taken_out, [&](const std::string& k) { return !known.count(host_of(k)); });
  return changes;
}

bool peer_suspect(const PeerLiveness& track, const std::vector<ConftoolPeer>& peers, const std::string& self) {
  return std::any_of(peers.begin(), peers.end(), [&](const ConftoolPeer& p) {
    if (p.host.empty() || p.host == self || (p.reachable && !track.missing_since.count(p.host))) return false;
    return std::none_of(track.taken_out.begin(), track.taken_out.end(),  // already out: nothing left to decide
                        [&](const std::string& k) { return host_of(k) == p.host; });
  });
}

namespace {

ConftoolKeyStep plan_key(const ConftoolView& view, const ConftoolWant& w) {
  ConftoolKeyStep step;
  step.service = w.service;
  step.min_pooled = w.min_pooled;
  std::string key = view.prefix + "/" + w.service + "/" + view.self;
  const EtcdNode* node = nullptr;
  if (auto pool = view.pools.find(w.service); pool != view.pools.end())
    if (auto it = pool->second.find(view.self); it != pool->second.end()) node = &it->second;
  if (!node) {
    step.missing = true;
    step.key = {{"key", key}, {"state", "missing"}};
    if (view.create_missing && (w.kind == ConftoolWant::Kind::kYes || w.kind == ConftoolWant::Kind::kNo)) {
      step.action = ConftoolKeyStep::Action::kCreate;
      step.pooled = w.kind == ConftoolWant::Kind::kYes ? "yes" : "no";
    }
    return step;
  }
  std::string error;
  auto v = parse_conftool_value(node->value, &error);
  if (!v) {
    step.key = {{"key", node->key}, {"state", "unparseable"}, {"error", error}};
    return step;
  }
  step.node = *node;
  step.key = {{"key", node->key}, {"pooled", v->pooled}, {"weight", v->raw.value("weight", nlohmann::json(nullptr))},
              {"modified_index", node->modified_index}};
  ConftoolSeen seen;
  if (auto it = view.seen.find(w.service); it != view.seen.end()) seen = it->second;
  bool marked = v->raw.contains(kConftoolMarkBy);
  if (node->modified_index != seen.written && node->modified_index != seen.seen) {
    step.looked_at = node->modified_index;
    if (!marked) {
      // Someone else (confctl) changed our key: that is the operator's intent now. A
      // change marked by a peer's takeover is not: this agent writes over it.
      step.action = ConftoolKeyStep::Action::kAdopt;
      step.pooled = v->pooled;
      return step;
    }
  }
  if (v->pooled == "inactive") return step;  // only operators set or clear inactive
  switch (w.kind) {
    case ConftoolWant::Kind::kSkip:
      break;
    case ConftoolWant::Kind::kYes:
      if (v->pooled != "yes" || marked) {
        step.action = ConftoolKeyStep::Action::kWrite;
        step.pooled = "yes";
      }
      break;
    case ConftoolWant::Kind::kNo:
      if (v->pooled != "no") {
        step.action = ConftoolKeyStep::Action::kWrite;
        step.pooled = "no";
      }
      break;
    case ConftoolWant::Kind::kNoUnderFloor:
      if (v->pooled != "yes") step.verdict = FloorVerdict::kRelease;  // already out
      else step.action = ConftoolKeyStep::Action::kFloor;
      break;
  }
  return step;
}

// A peer is dead only when both signals agree for peer_dead_after: its liveness key is
// gone (etcd, the system of record, which every agent sees alike) and its agent does
// not answer HTTP. Unreachability alone is a cut link, not a death; a missing key alone
// is an etcd problem on that host. The lowest-named live agent acts, itself seen alive
// in etcd. Each service's key is taken out once per death: if someone sets it "yes"
// while the host stays dead, that is an operator's choice, not fought.
std::vector<ConftoolTakeover> plan_takeovers(const ConftoolView& view) {
  std::vector<ConftoolTakeover> out;
  if (!view.alive.count(view.self)) return out;  // our own key is not there: we are in no position to judge
  for (const auto& p : view.peers) {
    if (p.host.empty() || p.host == view.self) continue;
    auto missing = view.liveness.missing_since.find(p.host);
    if (missing == view.liveness.missing_since.end() || view.steady_now - missing->second < view.peer_dead_after)
      continue;
    if (p.reachable || p.unreachable_since == WallTime{} || view.wall_now - p.unreachable_since < view.peer_dead_after)
      continue;
    for (const auto& svc : p.services) {
      auto pool = view.pools.find(svc);
      if (pool == view.pools.end()) continue;
      auto it = pool->second.find(p.host);
      if (it == pool->second.end() || view.liveness.taken_out.count(svc + "/" + p.host)) continue;
      std::string e;
      auto v = parse_conftool_value(it->second.value, &e);
      if (!v || v->pooled != "yes") continue;
      bool lowest = std::none_of(view.peers.begin(), view.peers.end(), [&](const ConftoolPeer& q) {
        return q.host < view.self && q.host != p.host && (q.reachable || view.alive.count(q.host)) &&
               std::find(q.services.begin(), q.services.end(), svc) != q.services.end();
      });
      if (!lowest) continue;
      ConftoolTakeover t;
      t.service = svc;
      t.peer = p.host;
      for (const auto& w : view.wants)
        if (w.service == svc) t.min_pooled = w.min_pooled;
      auto missing_for = std::chrono::duration_cast<WallTime::duration>(view.steady_now - missing->second);
      t.why = "peer dead: liveness key gone since " + format_wall(view.wall_now - missing_for) +
              ", agent unreachable since " + format_wall(p.unreachable_since);
      out.push_back(std::move(t));
    }
  }
  return out;
}

}  // namespace

ConftoolPlan plan_sync(const ConftoolView& view) {
  ConftoolPlan plan;
  for (const auto& w : view.wants) plan.keys.push_back(plan_key(view, w));
  plan.takeovers = plan_takeovers(view);
  return plan;
}

ConftoolFloor conftool_floor(const std::string& service, const std::string& leaving, int min_pooled,
                             const std::map<std::string, EtcdNode>& hosts) {
  ConftoolFloor out;
  auto it = hosts.find(leaving);
  if (it == hosts.end()) return out;
  std::string e;
  auto v = parse_conftool_value(it->second.value, &e);
  if (!v || v->pooled != "yes") {
    out.outcome = ConftoolFloor::Outcome::kNotPooled;
    return out;
  }
  std::vector<FloorHost> others;
  for (const auto& [host, node] : hosts) {
    auto hv = parse_conftool_value(node.value, &e);
    FloorHost h;
    h.name = host;
    h.known = hv.has_value();
    h.pooled = h.healthy = hv && hv->pooled == "yes";  // the load balancer's view: "yes" carries
    h.description = host + " pooled=" + (hv ? hv->pooled : "?");
    others.push_back(std::move(h));
  }
  if (auto refusal = floor_refusal(service, leaving, min_pooled, others, "pooled=yes in conftool")) {
    out.outcome = ConftoolFloor::Outcome::kRefused;
    out.refusal = *refusal;
  } else {
    out.outcome = ConftoolFloor::Outcome::kTakeOut;
  }
  return out;
}

}  // namespace poolkeeper

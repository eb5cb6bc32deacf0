#include "pybal-compat/conftool_wants.h"

namespace poolkeeper {

std::string host_of_url(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of(":/", start);
  if (start < url.size() && url[start] == '[') end = url.find(']', start) + 1;
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::vector<ConftoolWant> conftool_wants(const Snapshot& s, const ModelConfig& cfg) {
  using K = ConftoolWant::Kind;
  std::vector<ConftoolWant> out;
  for (const auto& sv : s.services) {
    auto it = cfg.services.find(sv.name);
    if (it == cfg.services.end()) continue;
    const ServiceConfig& sc = it->second;
    ConftoolWant w{sv.name, K::kSkip, sc.min_pooled};
    bool hold = sc.hold_on_reboot;
    const AdminIntent& i = sv.intent;
    if (i.intent == Intent::kInactive || s.lifecycle == Lifecycle::kStarting) {
      w.kind = K::kSkip;
    } else if (s.lifecycle == Lifecycle::kStopping) {
      // Only a shutdown drain the floor allowed writes (take_out already wrote "no"
      // under the lock); a restart, a refused drain and a held service write nothing.
      w.kind = sv.stop_released && !hold ? K::kNo : K::kSkip;
    } else if (i.intent == Intent::kDepooled || i.intent == Intent::kDrained) {
      w.kind = hold && i.until_boot && !sv.failing ? K::kSkip : K::kNo;
    } else if (sv.failing) {
      w.kind = K::kNoUnderFloor;
    } else if (sv.effective.state == Effective::kPooled) {
      w.kind = K::kYes;
    } else {
      // Still rising (no verdict yet): leave the key as the last decision left it, so
      // an agent restart flaps nothing. (A shutdown drain already wrote "no".)
      w.kind = K::kSkip;
    }
    out.push_back(w);
  }
  return out;
}

std::vector<ConftoolPeer> conftool_peers(const Snapshot& s, const ModelConfig& cfg) {
  std::vector<ConftoolPeer> out;
  for (const auto& pv : s.peers) {
    ConftoolPeer p;
    p.host = pv.state.host.empty() ? host_of_url(pv.state.url) : pv.state.host;
    p.reachable = pv.state.reachable;
    p.unreachable_since = pv.state.unreachable_since;
    for (const auto& [name, sc] : cfg.services)
      for (const auto& url : sc.peers)
        if (url == pv.state.url) p.services.push_back(name);
    if (p.host == s.host) continue;
    out.push_back(p);
  }
  return out;
}

PoolAnswer conftool_pool_answer(const nlohmann::json& key, bool synced, const std::string& error,
                                bool agent_pooled) {
  std::string agent = agent_pooled ? "pooled by the agent" : "pooled by the agent once healthy";
  std::string unavailable = synced ? "" : "; etcd unavailable (" + (error.empty() ? "no answer" : error) + "), the key is as last seen";
  if (!key.is_object()) return {false, agent + ", but conftool could not be read" + unavailable +
                                           ": the load balancer's state is unknown"};
  std::string k = key.value("key", "");
  std::string state = key.contains("pooled") ? key.value("pooled", "") : key.value("state", "");
  if (state == "missing")
    return {false, agent + ", but conftool key " + k + " does not exist: PyBal does not know this host " +
                       "(conftool-sync creates it)" + unavailable};
  if (state == "unparseable")
    return {false, agent + ", but conftool key " + k + " cannot be read (" + key.value("error", "") +
                       "): PyBal will not route to this host until an operator fixes it with confctl" + unavailable};
  if (state == "inactive")
    return {false, agent + ", but conftool key " + k + " is inactive: PyBal will not route to this host " +
                       "(an operator sets it with confctl)" + unavailable};
  if (state == "yes") return {true, "conftool key " + k + " pooled=yes: PyBal routes to this host" + unavailable};
  // "no": the agent writes "yes" once the service is pooled (and etcd answers).
  if (!synced)
    return {false, "conftool key " + k + " says pooled=no" + unavailable +
                       ": the agent writes pooled=yes when etcd answers again"};
  if (agent_pooled) return {false, "conftool key " + k + " still says pooled=no: PyBal will not route to this host"};
  return {true, "conftool key " + k + " says pooled=no until the service is healthy; the agent then writes pooled=yes"};
}

}  // namespace poolkeeper

#include "agent/model/floor.h"

#include <algorithm>

#include "agent/base/utf8.h"

namespace poolkeeper {

std::optional<PeerState> parse_peer_status(const std::string& url, const std::string& body,
                                           std::string* error) {
  PeerState p;
  p.url = url;
  try {
    auto j = nlohmann::json::parse(body);
    if (!j.is_object() || !j.contains("host") || !j["host"].is_string() || !j.contains("services") ||
        !j["services"].is_object()) {
      *error = "not a poolkeeper /status";
      return std::nullopt;
    }
    p.host = j["host"].get<std::string>();
    p.lifecycle = j.value("lifecycle", "");
    for (const auto& [name, s] : j["services"].items()) {
      if (!s.is_object()) continue;
      PeerService ps;
      ps.effective = s.value("effective", "not_pooled");
      ps.healthy = s.value("health", "") == "healthy";
      ps.failing = s.value("failing", false);
      ps.reason = s.value("reason", "");
      ps.leaving = s.value("leaving", false);  // absent from older agents: not leaving
      p.services[name] = ps;
    }
    if (j.contains("checks") && j["checks"].is_object()) {
      for (const auto& [name, c] : j["checks"].items()) {
        if (!c.is_object() || !c.contains("last") || !c["last"].is_object()) continue;
        auto d = c["last"].value("details", nlohmann::json::object());
        if (!d.is_object()) continue;
        p.checks[name] = {c.value("kind", ""), std::move(d)};
      }
    }
  } catch (const nlohmann::json::exception& e) {
    // The parser's message quotes the offending bytes: keep it valid UTF-8.
    *error = "bad /status: " + valid_utf8(e.what(), 300);
    return std::nullopt;
  }
  p.reachable = true;
  return p;
}

int floor_carriers(const std::vector<FloorHost>& hosts, const std::string& leaving) {
  int n = 0;
  for (const auto& h : hosts)
    if (h.name != leaving && h.known && h.pooled && h.healthy && !h.leaving) ++n;
  return n;
}

int floor_leave_counted(const std::string& self, LeaveKind kind, const std::vector<FloorHost>& hosts) {
  int n = 0;
  for (const auto& h : hosts) {
    if (h.name == self || !h.known || !h.pooled || h.leaving) continue;
    if (h.healthy || (kind == LeaveKind::kFailing && h.name < self)) ++n;
  }
  return n;
}

LeaveDecision floor_leave(const std::string& self, LeaveKind kind, int min_pooled,
                          const std::vector<FloorHost>& hosts) {
  int counted = floor_leave_counted(self, kind, hosts);
  if (counted >= min_pooled) return LeaveDecision::kLeave;
  // Lower-named hosts deciding their own leave: each of them either leaves (and then
  // counts for nothing) or stays, withdrawing its announcement, and would then count.
  // They never wait on us (we sort after them), so waiting for them cannot go round.
  int deciding = 0;
  for (const auto& h : hosts)
    if (h.name != self && h.name < self && h.known && h.pooled && h.leaving &&
        (h.healthy || kind == LeaveKind::kFailing))
      ++deciding;
  return counted + deciding >= min_pooled ? LeaveDecision::kWait : LeaveDecision::kStay;
}

bool floor_returns(const std::string& self, int min_pooled, const std::vector<FloorHost>& hosts) {
  return floor_leave_counted(self, LeaveKind::kFailing, hosts) < min_pooled;
}

bool floor_keeps_host(const std::string& self, int min_pooled, const std::vector<FloorHost>& hosts) {
  int carriers = floor_carriers(hosts, self);
  if (carriers >= min_pooled) return false;
  size_t need = static_cast<size_t>(min_pooled - carriers);
  std::vector<std::string> failing = {self};
  for (const auto& h : hosts)
    if (h.known && h.failing && h.name != self) failing.push_back(h.name);
  std::sort(failing.begin(), failing.end());
  failing.erase(std::unique(failing.begin(), failing.end()), failing.end());
  for (size_t i = 0; i < failing.size() && i < need; ++i)
    if (failing[i] == self) return true;
  return false;
}

std::optional<std::string> floor_refusal(const std::string& service, const std::string& leaving,
                                         int min_pooled, const std::vector<FloorHost>& hosts,
                                         const std::string& counted_as) {
  int carriers = floor_carriers(hosts, leaving);
  if (carriers >= min_pooled) return std::nullopt;
  std::string why = "refused: depooling " + service + " would leave " + std::to_string(carriers) +
                    " other host" + (carriers == 1 ? "" : "s") + " " + counted_as + " (min_pooled " +
                    std::to_string(min_pooled) + ")";
  std::string sep = ": ";
  for (const auto& h : hosts) {
    if (h.name == leaving) continue;
    why += sep + h.description;
    sep = "; ";
  }
  return why;
}

std::vector<PeerState> service_peers(const std::vector<PeerState>& all, const std::vector<std::string>& urls,
                                     const std::string& self) {
  std::vector<PeerState> out;
  for (const auto& p : all)
    if (std::find(urls.begin(), urls.end(), p.url) != urls.end() && p.host != self) out.push_back(p);
  for (const auto& url : urls) {
    bool seen = std::any_of(all.begin(), all.end(), [&](const PeerState& p) { return p.url == url; });
    if (!seen) {
      PeerState p;
      p.url = url;
      p.error = "not polled yet";
      out.push_back(p);
    }
  }
  return out;
}

FloorHost floor_host(const std::string& service, const PeerState& p) {
  FloorHost h;
  h.name = p.host.empty() ? p.url : p.host;
  h.known = p.reachable && p.lifecycle == "running";
  auto it = p.services.find(service);
  if (it != p.services.end()) {
    h.pooled = it->second.effective == "pooled";
    h.healthy = it->second.healthy;
    h.failing = it->second.failing;
    h.leaving = it->second.leaving;
  }
  h.description = describe_peer(service, p);
  return h;
}

std::vector<FloorHost> floor_hosts(const std::string& service, const std::vector<PeerState>& peers) {
  std::vector<FloorHost> out;
  out.reserve(peers.size());
  for (const auto& p : peers) out.push_back(floor_host(service, p));
  return out;
}

int pooled_healthy_peers(const std::string& service, const std::vector<PeerState>& peers) {
  return floor_carriers(floor_hosts(service, peers), "");
}

bool floor_keeps(const std::string& service, const std::string& self, int min_pooled,
                 const std::vector<PeerState>& peers) {
  return floor_keeps_host(self, min_pooled, floor_hosts(service, peers));
}

std::string describe_peer(const std::string& service, const PeerState& p) {
  std::string name = p.host.empty() ? p.url : p.host;
  if (!p.reachable) return name + ": unreachable (" + p.error + ")";
  auto it = p.services.find(service);
  if (it == p.services.end()) return name + ": does not serve " + service;
  std::string s = name + ": " + it->second.effective + ", " + (it->second.healthy ? "healthy" : "unhealthy");
  if (it->second.leaving) s += ", leaving";
  if (p.lifecycle != "running") s += ", " + p.lifecycle;
  return s;
}

std::optional<std::string> depool_refusal(const std::string& service, int min_pooled,
                                          const std::vector<PeerState>& peers) {
  // The caller has left this host out of `peers`: nobody is "leaving" among them.
  return floor_refusal(service, "", min_pooled, floor_hosts(service, peers), "pooled and healthy");
}

}  // namespace poolkeeper

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
      p.services[name] = ps;
    }
    if (j.contains("checks") && j["checks"].is_object()) {
      for (const auto& [name, c] : j["checks"].items()) {
        if (!c.is_object() || c.value("kind", "") != "nfs") continue;
        if (!c.contains("last") || !c["last"].is_object()) continue;
        const auto& d = c["last"].value("details", nlohmann::json::object());
        if (!d.is_object()) continue;
        p.nfs_handles[name] = {d.value("root_fh", ""), d.value("fh", "")};
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

namespace {
bool is_pooled_healthy(const std::string& service, const PeerState& p) {
  if (!p.reachable || p.lifecycle != "running") return false;
  auto it = p.services.find(service);
  return it != p.services.end() && it->second.effective == "pooled" && it->second.healthy;
}
bool is_failing(const std::string& service, const PeerState& p) {
  if (!p.reachable || p.lifecycle != "running") return false;
  auto it = p.services.find(service);
  return it != p.services.end() && it->second.failing;
}
}  // namespace

int pooled_healthy_peers(const std::string& service, const std::vector<PeerState>& peers) {
  int n = 0;
  for (const auto& p : peers) n += is_pooled_healthy(service, p) ? 1 : 0;
  return n;
}

bool floor_keeps(const std::string& service, const std::string& self, int min_pooled,
                 const std::vector<PeerState>& peers) {
  int healthy = pooled_healthy_peers(service, peers);
  if (healthy >= min_pooled) return false;
  size_t need = static_cast<size_t>(min_pooled - healthy);
  std::vector<std::string> failing = {self};
  for (const auto& p : peers)
    if (is_failing(service, p) && p.host != self) failing.push_back(p.host);
  std::sort(failing.begin(), failing.end());
  failing.erase(std::unique(failing.begin(), failing.end()), failing.end());
  for (size_t i = 0; i < failing.size() && i < need; ++i)
    if (failing[i] == self) return true;
  return false;
}

std::string describe_peer(const std::string& service, const PeerState& p) {
  std::string name = p.host.empty() ? p.url : p.host;
  if (!p.reachable) return name + ": unreachable (" + p.error + ")";
  auto it = p.services.find(service);
  if (it == p.services.end()) return name + ": does not serve " + service;
  std::string s = name + ": " + it->second.effective + ", " + (it->second.healthy ? "healthy" : "unhealthy");
  if (p.lifecycle != "running") s += ", " + p.lifecycle;
  return s;
}

std::optional<std::string> depool_refusal(const std::string& service, int min_pooled,
                                          const std::vector<PeerState>& peers) {
  int healthy = pooled_healthy_peers(service, peers);
  if (healthy >= min_pooled) return std::nullopt;
  std::string why = "refused: depooling " + service + " would leave " + std::to_string(healthy) +
                    " other host" + (healthy == 1 ? "" : "s") + " pooled and healthy (min_pooled " +
                    std::to_string(min_pooled) + ")";
  std::string sep = ": ";
  for (const auto& p : peers) {
    why += sep + describe_peer(service, p);
    sep = "; ";
  }
  return why + " — use --force to depool anyway";
}

}  // namespace poolkeeper

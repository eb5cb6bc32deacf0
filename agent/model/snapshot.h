// An immutable picture of the agent's state. The state owner builds a new one after
// every change and swaps it in atomically; readers (HTTP, admin socket) only ever see
// a complete snapshot and never wait on a probe or on the owner.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/model/events.h"
#include "agent/model/floor.h"
#include "agent/model/health.h"

namespace poolkeeper {

// One probe result as the status page draws it; each check keeps a bounded history.
struct ResultPoint {
  WallTime time{};
  double latency_seconds = 0;
  Outcome outcome = Outcome::kPassed;
};

struct CheckView {
  std::string name, kind, target;
  bool critical = true;
  CheckHealth health = CheckHealth::kUnknown;
  int successes = 0, failures = 0, rise = 0, fall = 0;
  std::optional<Result> last;
  WallTime last_time{};
  WallTime since{};  // when health last changed (or start)
  std::optional<WallTime> last_success;
  std::vector<std::string> services;
  // Set while a probe is stuck (in flight past its timeout): when it started.
  std::optional<WallTime> stuck_since;
  // The last results, oldest first (at most Engine::kHistoryLength); shared with the
  // engine, which replaces it (never changes it) on each result. Never null in a
  // snapshot the engine built.
  std::shared_ptr<const std::vector<ResultPoint>> history;
};

struct ServiceView {
  std::string name;
  EffectiveState effective;
  bool healthy = false;
  std::string health_reason;            // first failing critical check; "" when healthy
  std::vector<std::string> warnings;    // failing non-critical checks
  AdminIntent intent;
  WallTime since{};                     // when `effective` last changed
  std::vector<std::string> checks;
  int port = 0;
  bool failing = false;                 // running, intent pooled, a critical check unhealthy
  bool has_peers = false;               // the floor applies
  int min_pooled = 0;
  int peers_pooled_healthy = 0;
  bool kept_by_floor = false;
  bool returns_after_boot = false;      // until-boot depool of an earlier boot
  bool stop_released = false;           // stopping, and the floor let it go (shutdown drain)
};

struct PeerView {
  PeerState state;
  std::map<std::string, std::optional<bool>> handles_match;  // our nfs check → match?
};

struct Snapshot {
  uint64_t version = 0;
  std::string host;
  Lifecycle lifecycle = Lifecycle::kStarting;
  WallTime lifecycle_since{};
  WallTime generated{};
  std::vector<ServiceView> services;
  std::vector<CheckView> checks;
  std::vector<Event> events;  // oldest first
  std::vector<PeerView> peers;
  nlohmann::json conftool;  // null when conftool is not configured
  bool state_file_ok = true;
  std::string state_file_error;
  int leftover_processes = 0;      // processes exec probes left behind, not yet reaped
  uint64_t leftovers_killed = 0;   // such processes killed since start

  // What a reader rendered from this snapshot once (the status page), so that repeated
  // requests cost a lookup. A copy of the snapshot starts with an empty cache.
  struct RenderCache {
    std::mutex mu;
    std::shared_ptr<const std::string> page;
    RenderCache() = default;
    RenderCache(const RenderCache&) {}
    RenderCache& operator=(const RenderCache&) { return *this; }
  };
  mutable RenderCache render_cache;

  const ServiceView* find_service(const std::string& name) const;
  const CheckView* find_check(const std::string& name) const;
};

nlohmann::json status_json(const Snapshot& s);
nlohmann::json events_json(const Snapshot& s);

}  // namespace poolkeeper

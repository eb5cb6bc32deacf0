// The safety floor: the agent never takes the last `min_pooled` hosts of a service
// out on its own, and `depool` refuses (without --force) when it would. Decided from
// the peers' /status as the agent last saw it; every agent applies the same rule to
// the same peer states — among the failing hosts the one with the lowest name stays —
// so they agree without talking. Pure functions, unit-tested exhaustively.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"

namespace poolkeeper {

// What the etcd lock decided for a failing service of this host: keep it in (taking it
// out would leave too few), or release it. kNone until a decision comes.
enum class FloorVerdict { kNone, kKeep, kRelease };

// One service as a peer reported it.
struct PeerService {
  std::string effective;   // pooled | drained | not_pooled
  bool healthy = false;
  bool failing = false;    // running, wants to be pooled, and a critical check has failed
  std::string reason;
};

// A peer agent as last polled (GET <url>/status).
struct PeerState {
  std::string url;
  bool reachable = false;
  std::string error;   // why not reachable
  std::string host;    // the peer's hostname, from its /status
  std::string lifecycle;
  WallTime last_seen{};
  WallTime unreachable_since{};  // set while unreachable: since when (first failed poll)
  std::map<std::string, PeerService> services;
  // check name → {root_fh, fh} for the peer's nfs checks
  std::map<std::string, std::pair<std::string, std::string>> nfs_handles;
};

// Parses a peer's /status body; nullopt with *error set when it is not one.
std::optional<PeerState> parse_peer_status(const std::string& url, const std::string& body,
                                           std::string* error);

// Other hosts that count as "pooled and healthy" for a service.
int pooled_healthy_peers(const std::string& service, const std::vector<PeerState>& peers);

// Should this host stay pooled although it is failing? `self` is our hostname.
// True when fewer than min_pooled other hosts are pooled and healthy and we are among
// the lowest-named failing hosts needed to make up the difference.
bool floor_keeps(const std::string& service, const std::string& self, int min_pooled,
                 const std::vector<PeerState>& peers);

// For `depool`: nullopt when allowed, else the refusal naming each peer's state.
std::optional<std::string> depool_refusal(const std::string& service, int min_pooled,
                                          const std::vector<PeerState>& peers);

// One line per peer for messages and /status: "h2.example.org: pooled, healthy".
std::string describe_peer(const std::string& service, const PeerState& p);

}  // namespace poolkeeper

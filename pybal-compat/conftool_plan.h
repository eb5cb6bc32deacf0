// What one conftool sync does, decided without talking to etcd: from what the agent
// wants for each service, the keys and liveness keys as etcd showed them, and the
// time, the plan says which of this host's keys to create, write or adopt, which
// failing services go through the floor under the etcd lock, and which dead peers to
// take out. ConftoolWriter (conftool_writer.h) reads etcd, plans, and carries the plan
// out; the decisions taken under a lock (conftool_floor) are pure functions too, applied
// to what it re-reads there. Everything here is unit-tested without etcd.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"
#include "agent/model/floor.h"
#include "pybal-compat/etcd_client.h"

namespace poolkeeper {

// What the agent wants for one service's key.
struct ConftoolWant {
  enum class Kind {
    kSkip,          // leave the key alone (starting, holding, inactive)
    kYes,
    kNo,            // operator's depool or shutdown drain: write "no"
    kNoUnderFloor,  // failing health: "no" only if the floor allows (under the lock)
  };
  std::string service;
  Kind kind = Kind::kSkip;
  int min_pooled = 1;
  bool operator==(const ConftoolWant&) const = default;
};

// A peer agent as the peer watcher last saw it.
struct ConftoolPeer {
  std::string host;  // its FQDN (its key's name)
  bool reachable = false;
  WallTime unreachable_since{};
  std::vector<std::string> services;  // services that list it as a peer
  bool operator==(const ConftoolPeer&) const = default;
};

// The value of a conftool key, parsed defensively (fuzzed).
struct ConftoolValue {
  std::string pooled;  // yes | no | inactive
  nlohmann::json raw;  // everything, for merging
};
std::optional<ConftoolValue> parse_conftool_value(const std::string& value, std::string* error);
// Merged value for a write: `pooled` set, poolkeeper's marker fields set or dropped.
std::string merge_conftool_value(const nlohmann::json& raw, const std::string& pooled,
                                 const std::optional<std::pair<std::string, std::string>>& depooled_by);
// The marker field a dead-peer takeover leaves in the key it wrote.
inline constexpr const char* kConftoolMarkBy = "poolkeeper_depooled_by";

// service → host → key, as read from <prefix>/.
using ConftoolPools = std::map<std::string, std::map<std::string, EtcdNode>>;

// Our key's indexes, per service: the last one we wrote and the last one we looked at
// (a change at any other index was made by someone else: an operator's intent).
struct ConftoolSeen {
  uint64_t written = 0;
  uint64_t seen = 0;
};

// What the sync remembers about its peers between rounds: since when each peer's
// liveness key has been missing (from the first sync that missed it), and the
// "<service>/<host>" keys taken out during the current death of their host.
struct PeerLiveness {
  std::map<std::string, SteadyTime> missing_since;
  std::set<std::string> taken_out;
};
struct LivenessChange {
  std::string peer;
  bool back = false;  // its key is back (else: it went missing)
};
// Updates `track` from the hosts whose liveness key exists now. A peer seen alive again
// forgets its takeovers (a new death counts anew); peers a reload removed leave no
// state behind. Returns what changed, for the log.
std::vector<LivenessChange> track_liveness(PeerLiveness& track, const std::set<std::string>& alive,
                                           const std::vector<ConftoolPeer>& peers, SteadyTime now);
// True while a peer (not yet taken out) is unreachable or its liveness key is gone:
// then the sync runs often, so a death is acted on within moments.
bool peer_suspect(const PeerLiveness& track, const std::vector<ConftoolPeer>& peers, const std::string& self);

// One sync's input.
struct ConftoolView {
  std::string self;
  std::string prefix;  // <prefix>/<service>/<host> are the keys
  bool create_missing = false;
  Duration peer_dead_after{};
  std::vector<ConftoolWant> wants;
  std::vector<ConftoolPeer> peers;
  ConftoolPools pools;
  std::set<std::string> alive;  // hosts whose liveness key exists
  std::map<std::string, ConftoolSeen> seen;
  PeerLiveness liveness;  // after track_liveness for this round
  SteadyTime steady_now{};
  WallTime wall_now{};
};

// What to do with one of our keys.
struct ConftoolKeyStep {
  enum class Action {
    kNone,
    kCreate,  // missing and create_missing: create it with `pooled`
    kAdopt,   // someone else changed it: hand `pooled` to the agent as intent
    kWrite,   // write `pooled` (compare-and-swap on node's index)
    kFloor,   // take it out if the floor allows: decided under the etcd lock
  };
  std::string service;
  Action action = Action::kNone;
  std::string pooled;
  int min_pooled = 1;  // kFloor
  EtcdNode node;       // the key as read (kWrite)
  // Reported to the agent after the step (kFloor: replaced by the lock's decision).
  FloorVerdict verdict = FloorVerdict::kNone;
  nlohmann::json key;                  // the key as /status shows it, before the step
  std::optional<uint64_t> looked_at;   // remember this index as seen (someone else's change)
  bool missing = false;                // our key is not there (said once per disappearance)
};

// A dead peer's key to take out, under the lock and the floor.
struct ConftoolTakeover {
  std::string service, peer;
  int min_pooled = 1;
  std::string why;  // written into the key's marker
};

struct ConftoolPlan {
  std::vector<ConftoolKeyStep> keys;  // one per want, in order
  std::vector<ConftoolTakeover> takeovers;
};

ConftoolPlan plan_sync(const ConftoolView& view);

// The floor over conftool keys, as decided under the etcd lock from a fresh read of
// the service's keys: may `leaving` be set "no"? Every key that reads pooled=yes,
// other than leaving's, carries the service.
struct ConftoolFloor {
  enum class Outcome {
    kGone,       // leaving has no key
    kNotPooled,  // its key is not "yes" (or unreadable): nothing to take out
    kRefused,    // too few others would stay "yes": `refusal` says why
    kTakeOut,    // write "no"
  };
  Outcome outcome = Outcome::kGone;
  std::string refusal;
};
ConftoolFloor conftool_floor(const std::string& service, const std::string& leaving, int min_pooled,
                             const std::map<std::string, EtcdNode>& hosts);

}  // namespace poolkeeper

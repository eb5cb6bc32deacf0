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

// conftool's "pooled", the field PyBal acts on: read once where a value is parsed,
// written by its name.
enum class ConftoolPooled { kYes, kNo, kInactive };
// "yes" | "no" | "inactive", as conftool spells them.
const char* conftool_pooled_name(ConftoolPooled p);

// The value of a conftool key, parsed defensively (fuzzed).
struct ConftoolValue {
  ConftoolPooled pooled = ConftoolPooled::kNo;
  nlohmann::ordered_json raw;  // everything, in the order it was written, for merging
};
std::optional<ConftoolValue> parse_conftool_value(const std::string& value, std::string* error);
// The value confctl writes after it set `pooled` on this key: confctl reads the JSON,
// updates it (a field it has keeps its place, every other field stays), and writes it
// back with Python's json.dumps. The agent changes nothing but "pooled", and drops the
// two marker fields older agents wrote into the pools tree (kConftoolLegacyMark*).
std::string merge_conftool_value(const nlohmann::ordered_json& raw, ConftoolPooled pooled);
// A new key as confctl creates one: its schema's order, {"weight": …, "pooled": …}.
std::string new_conftool_value(ConftoolPooled pooled, int64_t weight);
// Python's json.dumps(v) with its defaults: ", " and ": " between items, keys in their
// order, strings ASCII with \uXXXX escapes (ensure_ascii), floats as Python's repr.
std::string python_json_dumps(const nlohmann::ordered_json& v);
// What an older agent wrote into a dead peer's value; read (a key so marked is a peer's
// takeover, not an operator's change) and dropped on the next write, never written.
inline constexpr const char* kConftoolLegacyMarkBy = "poolkeeper_depooled_by";
inline constexpr const char* kConftoolLegacyMarkReason = "poolkeeper_reason";

// Who took a dead peer's key out and why, kept at <depooled_prefix>/<service>/<host>
// (outside the pools tree): written right after the key, with the index that write got.
// While the key's modifiedIndex is still `index`, the key is "no" by that takeover.
struct ConftoolTakeoverRecord {
  std::string by, reason, at;
  uint64_t index = 0;
  std::string raw;  // the value as read (a delete compares it)
};
std::optional<ConftoolTakeoverRecord> parse_takeover_record(const std::string& value);
std::string takeover_record_value(const ConftoolTakeoverRecord& r);
// service → host → record.
using ConftoolRecords = std::map<std::string, std::map<std::string, ConftoolTakeoverRecord>>;

// service → host → key, as read from <prefix>/.
using ConftoolPools = std::map<std::string, std::map<std::string, EtcdNode>>;

// Our key's indexes, per service: the last one we wrote and the last one we looked at
// (a change at any other index was made by someone else: an operator's intent).
struct ConftoolSeen {
  uint64_t written = 0;
  uint64_t seen = 0;
};

// A dead peer's key the floor keeps in: the refusal, and since when (wall clock).
struct TakeoverWait {
  std::string refusal;
  WallTime since{};
};

// What the sync remembers about its peers between rounds: since when each peer's
// liveness key has been missing (from the first sync that missed it), the
// "<service>/<host>" keys taken out during the current death of their host, and those
// whose takeover the floor holds.
struct PeerLiveness {
  std::map<std::string, SteadyTime> missing_since;
  std::set<std::string> taken_out;
  std::map<std::string, TakeoverWait> waiting;
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
// True while a peer (not yet taken out, nor held by the floor) is unreachable or its
// liveness key is gone: then the sync runs often, so a death is acted on within
// moments. A held takeover waits for a change of the service's keys (the watch wakes
// the sync), not for the clock.
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
  ConftoolRecords records;      // under <depooled_prefix>
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
  ConftoolPooled pooled = ConftoolPooled::kNo;
  int min_pooled = 1;  // kFloor
  EtcdNode node;       // the key as read (kWrite)
  // Reported to the agent after the step (kFloor: replaced by the lock's decision).
  FloorVerdict verdict = FloorVerdict::kNone;
  nlohmann::json key;                  // the key as /status shows it, before the step
  std::optional<uint64_t> looked_at;   // remember this index as seen (someone else's change)
  bool missing = false;                // our key is not there (said once per disappearance)
  // Our own takeover record, to delete (compared with this value) once the step is
  // done: the key has changed since that takeover, or this step writes over it.
  std::optional<std::string> drop_record;
};

// A dead peer's key to take out, under the lock and the floor.
struct ConftoolTakeover {
  std::string service, peer;
  int min_pooled = 1;
  std::string why;  // written into its record under <depooled_prefix>
};

// A dead peer's key the floor keeps "yes", as the sync's read of the service's keys
// shows: no lock is taken for it (nothing is written) until those keys change.
struct ConftoolHeld {
  std::string service, peer;
  std::string refusal;
};

struct ConftoolPlan {
  std::vector<ConftoolKeyStep> keys;  // one per want, in order
  std::vector<ConftoolTakeover> takeovers;
  std::vector<ConftoolHeld> held;
};

// Records this round's held takeovers in track.waiting; returns those that started
// waiting and those that no longer wait (taken out this round, the peer back, the key
// no longer "yes"), each once, for the log. A held takeover's refusal text follows the
// keys without being told again.
struct WaitChange {
  std::string service, peer, refusal;
  bool started = false;  // else: no longer held
};
std::vector<WaitChange> track_waiting(PeerLiveness& track, const std::vector<ConftoolHeld>& held, WallTime now);

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
  uint64_t written_index = 0;  // kTakeOut, once written: the key's new modifiedIndex
};
ConftoolFloor conftool_floor(const std::string& service, const std::string& leaving, int min_pooled,
                             const std::map<std::string, EtcdNode>& hosts);

}  // namespace poolkeeper

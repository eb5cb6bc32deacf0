// The safety floor: the agent never takes the last `min_pooled` hosts of a service
// out on its own, and `depool` refuses (without --force) when it would. One policy
// (floor_carriers, floor_keeps_host, floor_refusal) over a neutral list of hosts
// (FloorHost), onto which both views of the pool are mapped: the peers' /status as the
// agent last saw it (below) and the conftool keys under the etcd lock
// (pybal-compat/conftool_plan.h). Every agent applies the same rule to the same states
// — among the failing hosts the one with the lowest name stays — so they agree without
// talking. Pure functions, unit-tested exhaustively.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"

namespace poolkeeper {

// What the etcd lock decided for a failing service of this host: keep it in (taking it
// out would leave too few), or release it. kNone until a decision comes. kLockDenied:
// etcd refused this host's user the lock key (a missing grant), so the floor cannot be
// asked — the host stays in, even while etcd is otherwise counted down, until a sync
// with the lock decides again.
enum class FloorVerdict { kNone, kKeep, kRelease, kLockDenied };

// One service as a peer reported it.
struct PeerService {
  std::string effective;   // pooled | drained | not_pooled
  bool healthy = false;
  bool failing = false;    // running, wants to be pooled, and a critical check has failed
  std::string reason;
  bool leaving = false;    // still pooled, but announced it is about to leave (floor_leave)
};

// One check as a peer reported it: its kind and its last result's details, from which
// the kind's identity (CheckTraits::identity) is read to compare it with ours.
struct PeerCheck {
  std::string kind;
  nlohmann::json details;
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
  // check name → kind and details, for the peer's checks that have a last result
  std::map<std::string, PeerCheck> checks;
};

// Parses a peer's /status body; nullopt with *error set when it is not one.
std::optional<PeerState> parse_peer_status(const std::string& url, const std::string& body,
                                           std::string* error);

// The floor policy itself, over a neutral list of hosts. Both views of the pool map
// onto it: the peers' /status (pooled and healthy, as each agent reports it) and the
// conftool keys in etcd (pooled=yes, as the load balancer reads them).
struct FloorHost {
  std::string name;         // hostname (or, for a peer never heard from, its URL)
  bool known = false;       // its state was seen now: an unknown or stale host never counts
  bool pooled = false;      // in the pool: effective "pooled", or conftool pooled=yes
  bool healthy = false;     // passing its checks (conftool: a "yes" key counts as healthy)
  bool failing = false;     // wants to be pooled but a critical check fails: would leave
  std::string description;  // one line for refusals: "h2: pooled, healthy", "h2 pooled=yes"
  bool leaving = false;     // announced that it is about to leave: never counted as staying
};

// The hosts other than `leaving` that carry the service: known, pooled and healthy, and
// not about to leave themselves.
int floor_carriers(const std::vector<FloorHost>& hosts, const std::string& leaving);

// Should `self`, failing, stay although it would leave? True when fewer than
// min_pooled other hosts carry the service and `self` is among the lowest-named
// failing hosts (itself included) needed to make up the difference. Every host
// computes the same answer from the same list.
bool floor_keeps_host(const std::string& self, int min_pooled, const std::vector<FloorHost>& hosts);

// May `leaving` be taken out? nullopt when at least min_pooled others carry the
// service; otherwise the refusal, naming what counts (`counted_as`, e.g. "pooled and
// healthy") and describing every other host:
// "refused: depooling nfs would leave 0 other hosts pooled and healthy (min_pooled 1):
//  h2: unreachable (timeout)". (The admin reply adds how to override it.)
std::optional<std::string> floor_refusal(const std::string& service, const std::string& leaving,
                                         int min_pooled, const std::vector<FloorHost>& hosts,
                                         const std::string& counted_as);

// The peers a service's floor counts: those of `all` configured for it (`urls`), minus
// any reporting our own hostname `self`; a configured one not polled yet comes as
// unreachable ("not polled yet").
std::vector<PeerState> service_peers(const std::vector<PeerState>& all, const std::vector<std::string>& urls,
                                     const std::string& self);

// The leave without etcd. A host that would take a service out (its checks fail, or
// `depool`, `drain`, the shutdown drain) first announces it ("leaving": true in its
// /status, still pooled), then polls every peer afresh, and decides from that poll
// alone, with floor_leave(). It leaves only when at least min_pooled other hosts were
// seen, after its announcement, pooled and not announcing a leave of their own; a peer
// that does not answer counts as not carrying. Why two hosts can never both leave on
// each other's account: if X counted Y, X read Y unannounced after X announced; so a
// later leave of Y announces after X did, and Y's poll, which follows, sees X announced
// (or already out) and does not count it. Followed through any number of hosts, a
// leave that would take the pool below min_pooled needs an endless chain of ever later
// announcements, which a finite run does not have. The way back is the same: a host
// the floor keeps leaves once a fresh poll shows the recovered host really pooled.
//
// Whom a leave may count, besides hosts pooled, healthy and not leaving: a failing
// host (kFailing) also counts a host kept in by the floor (pooled, unhealthy, not
// leaving) whose name sorts before its own, as the floor always keeps the lowest names;
// an operator's leave (kOperator: depool, drain, shutdown drain) counts healthy hosts
// only.
enum class LeaveKind { kFailing, kOperator };
enum class LeaveDecision {
  kLeave,  // enough others carry it: leave now
  kStay,   // too few: withdraw the announcement and stay
  kWait,   // too few now, but a lower-named host is deciding its own leave and would make
           // up the difference if it stays: poll again shortly (bounded by the caller)
};
// How often a leave polls at most while lower-named hosts are deciding (kWait), and the
// pause between those polls; after the last one, kWait counts as kStay.
inline constexpr int kLeaveMaxPolls = 8;
inline constexpr Duration kLeaveRepollDelay = std::chrono::milliseconds(25);
// The hosts a leave of `self` counts (see above).
int floor_leave_counted(const std::string& self, LeaveKind kind, const std::vector<FloorHost>& hosts);
// The decision, from a poll taken after `self` announced its leave.
LeaveDecision floor_leave(const std::string& self, LeaveKind kind, int min_pooled,
                          const std::vector<FloorHost>& hosts);
// A failing host the floor let go comes back in when it could not leave now: fewer than
// min_pooled others it would count (they failed too and sort after it, were depooled,
// or stopped answering). Joining is always safe; a kept host sorting after it then
// leaves, so the lowest names end up kept whoever failed first.
bool floor_returns(const std::string& self, int min_pooled, const std::vector<FloorHost>& hosts);

// A peer's /status as a FloorHost for one service: known only while reachable and
// running; described with describe_peer().
FloorHost floor_host(const std::string& service, const PeerState& p);

// A service's peers as FloorHosts (floor_host of each).
std::vector<FloorHost> floor_hosts(const std::string& service, const std::vector<PeerState>& peers);

// Other hosts that count as "pooled and healthy" for a service.
int pooled_healthy_peers(const std::string& service, const std::vector<PeerState>& peers);

// The policy over the peers' /status. `self` is our hostname; a peer reporting the
// same name is never counted as another host.
bool floor_keeps(const std::string& service, const std::string& self, int min_pooled,
                 const std::vector<PeerState>& peers);

// For `depool`: nullopt when allowed, else the refusal naming each peer's state.
std::optional<std::string> depool_refusal(const std::string& service, int min_pooled,
                                          const std::vector<PeerState>& peers);

// One line per peer for messages and /status: "h2.example.org: pooled, healthy".
std::string describe_peer(const std::string& service, const PeerState& p);

}  // namespace poolkeeper

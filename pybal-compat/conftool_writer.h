// Keeps this host's conftool keys (<prefix>/<service>/<fqdn>, etcd v2) equal to what
// the agent decided, the way confctl writes: read, merge "pooled" into the JSON value
// (every other field and the operator's weight kept), compare-and-swap on the key's
// modifiedIndex, re-read and retry on 412. It never writes "inactive", never touches
// an inactive key, and creates a missing key only with create_missing.
//
// Changes it did not make (confctl by an operator) are handed back as the operator's
// intent, never fought. Taking a host out for health (or `depool`) happens under an
// etcd lock <lock_prefix>/<service>: read every host's key, refuse when fewer than
// min_pooled others stay "yes", write, release — so two agents failing at once can
// never both leave.
//
// Liveness is judged through etcd: every agent keeps <liveness_prefix>/<host> with a
// TTL, refreshed every liveness_ttl/3 by a thread of its own. A peer is dead only when
// its liveness key has been gone for peer_dead_after AND its agent has not answered
// HTTP for peer_dead_after; then the lowest-named live agent takes it out, under the
// lock and the floor, once per death (it comes back by its own agent's write), and
// records who and why at <depooled_prefix>/<service>/<host>, never in the value. While
// the floor refuses, the takeover waits without a lock or a write: said once in the log
// and shown in /status, re-tried when the service's keys change.
//
// Each sync reads the pools and the liveness keys, plans (conftool_plan.h: pure), then
// carries the plan out; the floor's decisions under the lock are pure functions of
// what it re-reads there. One thread syncs, one watches the prefix (wait=true&waitIndex,
// full re-read on errorCode 401). etcd being away never stops the agent: it retries with capped
// exponential backoff and jitter, and writes nothing that does not differ.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"
#include "agent/model/floor.h"
#include "pybal-compat/conftool_config.h"
#include "pybal-compat/conftool_plan.h"
#include "pybal-compat/etcd_client.h"

namespace poolkeeper {

class ConftoolWriter {
 public:
  struct Callbacks {
    // An operator changed our key: adopt its "pooled" as intent.
    std::function<void(const std::string& service, ConftoolPooled pooled)> adopt;
    std::function<void(const std::string& service, FloorVerdict v)> verdict;
    // After every sync: keys as in keys(), and this agent's and its peers' liveness.
    std::function<void(bool up, const std::string& error, const nlohmann::json& keys, const nlohmann::json& liveness)>
        status;
  };
  // Time comes from `clock`; etcd is `etcd` when given (the simulated-time tests keep
  // the keys in memory), otherwise a client of cfg's endpoints.
  ConftoolWriter(ConftoolConfig cfg, std::string hostname, std::string state_path, Callbacks cb, const Clock& clock,
                 EtcdKeys* etcd = nullptr);
  ~ConftoolWriter();
  void start();
  void stop();

  // Called whenever the agent's state changes; wakes the sync loop.
  void update(std::vector<ConftoolWant> wants, std::vector<ConftoolPeer> peers);

  // Taking services of this host out for `depool`, `drain` or the shutdown drain.
  struct TakeOutRequest {
    std::string service;
    int min_pooled = 1;
  };
  struct TakeOutAnswer {
    std::string service;
    bool unavailable = false;            // etcd could not be asked: fall back to the peers' /status
    std::optional<std::string> refusal;  // the floor refused: nothing written
  };
  // With the sync loop held off: for each request in turn (stopping after the first
  // refusal), under the etcd lock, refuse when fewer than min_pooled other hosts would
  // stay "yes", otherwise write "no" (nothing when the key is not "yes"). With etcd
  // down every answer is `unavailable`, without asking. Then `apply` runs with the
  // answers — the caller applies the matching intent there — and only after it returns
  // may a sync run again, so none acts on wants from before the depool. `apply` must
  // not call back into this writer.
  void take_out(const std::vector<TakeOutRequest>& requests,
                const std::function<void(const std::vector<TakeOutAnswer>&)>& apply);

  // Written into the liveness key for operators; call before start().
  void set_boot_id(std::string id) { boot_id_ = std::move(id); }

  // Asks for a sync and waits until one that began after this call has finished.
  // False when it failed (etcd unavailable) or did not finish within `limit`.
  bool wait_synced(Duration limit);
  // The keys as the last successful sync saw them: service → {key, pooled, weight,
  // modified_index} or {key, state: missing|unparseable}.
  nlohmann::json keys() const;
  std::string last_error() const;

  // One sync round (read, plan, execute) and one refresh of our liveness key, on the
  // caller's thread, as the sync and liveness threads make them: for tests that drive
  // the writer's decisions in simulated time without start(). False with *error when
  // etcd failed it.
  bool sync_round(std::string* error) { return sync_once(error); }
  bool liveness_round(std::string* error);

  bool up() const { return up_; }
  // Each etcd endpoint: which one is in use, why the others are not (EtcdClient::endpoints).
  nlohmann::json endpoints() const { return etcd_.endpoints(); }
  std::string liveness_key() const { return cfg_.liveness_prefix + "/" + host_; }
  std::string key(const std::string& service) const { return cfg_.prefix + "/" + service + "/" + host_; }
  std::string lock_key(const std::string& service) const { return cfg_.lock_prefix + "/" + service; }
  std::string depooled_key(const std::string& service, const std::string& host) const {
    return cfg_.depooled_prefix + "/" + service + "/" + host;
  }

 private:
  void sync_loop();
  void watch_loop();
  void liveness_loop();
  bool refresh_liveness(std::string* error);
  // Hosts under <liveness_prefix>/ (only keys that have not expired).
  std::optional<std::set<std::string>> read_liveness(std::string* error);
  nlohmann::json liveness_status(const std::set<std::string>* alive) const;
  // One round: read, plan, execute. False (with *error) when etcd failed it.
  bool sync_once(std::string* error);
  // Carries out one step of the plan for our key; *key is what /status shows of it.
  bool execute(const ConftoolKeyStep& step, nlohmann::json* key, std::string* error);
  // *refused: the floor refused under the lock (the takeover waits).
  bool execute(const ConftoolTakeover& t, std::optional<std::string>* refused, std::string* error);
  void take_out_one(const TakeOutRequest& r, TakeOutAnswer* a);
  // The floor step every "no" goes through (a depool, a failing service, a dead peer):
  // under the service's etcd lock, re-reads its keys, decides whether `leaving` may go
  // and, when it may, writes its key "no". `go_on`, also under the lock, may call it off
  // (false: nothing written, outcome kGone). nullopt with *error when etcd failed (no
  // lock, no read, no write). `decided`, when given, hears the outcome as soon as it is
  // settled (after the write), before the lock is released.
  std::optional<ConftoolFloor> floor_under_lock(const std::string& service, const std::string& leaving, int min_pooled,
                                                std::string* error,
                                                const std::function<bool(std::string* error)>& go_on = nullptr,
                                                const std::function<void(const ConftoolFloor&)>& decided = nullptr);
  // The floor step for our own key (a failing service): the verdict goes to the agent
  // as soon as the floor has decided. False (with *error) when etcd failed it.
  bool floor_step(const ConftoolKeyStep& step, nlohmann::json* key, FloorVerdict* verdict, std::string* error);
  // Floor steps planned from the last sync's read, run before this sync reads anything:
  // a failing service does not wait for the reads of the whole prefix, the records and
  // the liveness keys (the floor re-reads its service under the lock anyway). Returns
  // the verdicts given, by service; false (with *error) when etcd failed.
  bool early_floor_steps(const ConftoolView& now, std::map<std::string, FloorVerdict>* given, std::string* error);
  // An operator's change handed to the agent (cb_.adopt) reaches its wants a moment
  // later: until they agree with it (or kAdoptWait passed), that key's want is kSkip,
  // so no sync writes over the operator with wants from before the adoption.
  void hold_adopted(std::vector<ConftoolWant>* wants);
  // False with *error when the lock cannot be had (lock_denied_: etcd refused our user
  // the lock key, a missing grant rather than a busy lock).
  bool lock(const std::string& service, std::string* error);
  void unlock(const std::string& service);
  // Reads <prefix>/<service>/ → host → node.
  std::optional<std::map<std::string, EtcdNode>> read_hosts(const std::string& service, std::string* error);
  // A whole two-level tree at once (the pools, the takeover records): service → host → key.
  std::optional<ConftoolPools> read_tree(const std::string& prefix, std::string* error);
  // Merges `pooled` into the key's value as confctl would (merge_conftool_value) and
  // writes it on the key's modifiedIndex; *index (when given) gets the new one.
  bool write(const std::string& service, const std::string& host, const EtcdNode& node, ConftoolPooled pooled,
             std::string* error, uint64_t* index = nullptr);
  // Takeovers and held takeovers of our peers, for /status (liveness.peers).
  void note_takeovers(const ConftoolView& view);
  void load_seen();
  void save_seen();

  ConftoolConfig cfg_;
  std::string host_;
  std::string state_path_;
  Callbacks cb_;
  const Clock& clock_;
  std::unique_ptr<EtcdClient> client_;  // when no EtcdKeys was handed in
  EtcdKeys& etcd_;
  std::mutex op_mu_;  // one etcd conversation at a time (sync loop vs take_out); never handed out
  bool lock_denied_ = false;  // under op_mu_: the last lock() was refused for want of a grant
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ConftoolWant> wants_;
  std::vector<ConftoolPeer> peers_;
  bool dirty_ = true, stop_ = false;
  bool etcd_back_ = false;  // the liveness thread reached etcd again after failing
  std::map<std::string, ConftoolSeen> seen_;
  // Sync thread only: the peers' liveness between rounds, the hosts whose liveness key
  // the last sync saw, and the services whose own key is missing (logged once per
  // disappearance).
  PeerLiveness liveness_;
  std::set<std::string> alive_;
  std::optional<ConftoolView> last_read_;  // the last successful sync's view of etcd
  struct Adopting {
    ConftoolPooled pooled;
    SteadyTime at;
  };
  std::map<std::string, Adopting> adopting_;  // service → the operator's change the agent was handed
  std::atomic<bool> peer_suspect_{false};  // a peer is unreachable or its liveness key gone
  std::set<std::string> missing_logged_;
  // Records a takeover wrote its key for but could not write yet (key → value): tried
  // again at the start of each sync. And what /status shows of takeovers, per peer.
  std::map<std::string, std::string> pending_records_;
  nlohmann::json takeovers_ = nlohmann::json::object();
  // Liveness thread's last refresh, for /status (under live_mu_).
  mutable std::mutex live_mu_;
  bool live_ok_ = false;
  WallTime live_refreshed_{};
  std::string live_error_;
  uint64_t live_index_ = 0;
  std::string boot_id_;
  WallTime started_;
  // Under mu_: sync rounds begun and finished, the last one's outcome and keys.
  bool live_tried_ = false;
  uint64_t syncs_started_ = 0, syncs_done_ = 0;
  bool last_sync_ok_ = false;
  std::string last_error_;
  nlohmann::json last_keys_ = nlohmann::json::object();
  std::atomic<bool> up_{false};
  std::atomic<bool> abort_{false};
  // Jitter for the lock retries (take_out's caller or the sync thread) and the sync
  // loop's backoff: used from several threads, so behind its own mutex.
  uint32_t random_below(uint32_t bound);
  std::mutex rng_mu_;
  std::mt19937 rng_{std::random_device{}()};
  std::thread sync_, watch_, live_;
};

}  // namespace poolkeeper

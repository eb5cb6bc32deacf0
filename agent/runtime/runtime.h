// The running agent: one owner thread runs the HealthModel; the probes run on a Prober (one
// event loop thread plus a small pool) so a hung probe delays nothing but itself; the HTTP server reads the latest
// snapshot through an atomic pointer; the admin socket changes intent through the
// owner, persisting it before it answers; a peer watcher feeds the safety floor.
// Public methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/admin/admin_handler.h"
#include "agent/admin/admin_server.h"
#include "agent/config/config.h"
#include "agent/model/health_model.h"
#include "agent/publish/http_server.h"
#include "agent/publish/metrics.h"
#include "agent/runtime/peers.h"
#include "agent/runtime/result_batch.h"
#include "agent/runtime/state_store.h"
#include "agent/runtime/stop_action.h"
#include "agent/runtime/unit_watcher.h"
#include "pybal-compat/agent_check.h"
#include "pybal-compat/conftool_writer.h"

namespace poolkeeper {

class Prober;

class Runtime {
 public:
  Runtime(Config config, const Clock& clock);
  ~Runtime();

  // Loads the persisted intent, starts the HTTP server and the admin socket (throws
  // on a failure to listen), the probes, the peer watcher and the owner.
  void start();
  // Lifecycle → stopping. kKeep (a restart of the agent alone): nothing changes, no
  // key is written, and the checks' state is saved for the next process (carryover.h).
  // kDrain (host shutdown/reboot): each service leaves through the same floor as
  // `depool` — under the etcd lock with conftool, else from a fresh poll of the peers —
  // or stays pooled, logged, when the floor refuses; on_reboot = "hold" services stay.
  // Blocks for the floor's decisions (each bounded by its timeouts).
  void begin_stop(StopAction action);
  // After a shutdown drain: true once a conftool sync begun after this call has
  // succeeded — the keys the drain left are in etcd, where the load balancer reads them
  // — or at once without [conftool]; false when etcd did not answer within `limit`.
  bool wait_conftool_written(Duration limit);
  // Stops everything. Bounded: admin requests still waiting get "agent is stopping", and
  // a probe still running after a short grace is abandoned (see abandoned()).
  void shutdown();
  // True when shutdown() left a probe thread running: the process must then end with
  // _exit() rather than destroy the agent under it.
  bool abandoned() const { return abandoned_; }
  // Re-reads the config: a bad one is refused (error returned, old one kept running).
  std::string reload(const std::string& file);

  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.load(); }
  int http_port() const { return http_ ? http_->port() : 0; }

  // Runs `fn` on the owner thread with the model and waits for it. Returns false at
  // once, without running it, when the owner has stopped (or is stopping) for good.
  bool run_on_owner(const std::function<void(HealthModel&)>& fn);

 private:
  // Queues `fn` for the owner and wakes it; false when the owner loop has ended.
  bool post(std::function<void(HealthModel&)> fn);
  // Queues a probe result for the owner's next turn (result_batch.h: it wakes the owner
  // only when that turn is not soon anyway).
  void post_result(const std::string& check, uint64_t gen, uint64_t seq, Result r);
  void owner_loop();
  // Makes the model's latest snapshot the one readers see (the subscribers got it as
  // it was built).
  void publish();
  void refresh_probes();
  // The steps of start(), in order.
  void restore_state();
  void start_publishers();
  void start_responders();
  void start_loops();
  std::string persist(HealthModel& e);
  // The leave attempts of failing services (HealthModel::LeavePoll): each gets a fresh
  // poll of the peers, after its announcement was published, on the floor thread;
  // the owner decides with the result.
  void queue_leave_polls(std::vector<HealthModel::LeavePoll> polls);
  void floor_loop();

  Config config_;
  const Clock& clock_;
  StateStore store_;
  Metrics metrics_;
  // Subscribers to the model's stream besides metrics_: the event log, the conftool
  // writer's feed, persistence of the intents the model changes by itself.
  std::vector<std::unique_ptr<Observer>> feeds_;
  std::unique_ptr<HealthModel> model_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<AdminHandler> admin_handler_;  // the admin socket's requests and the shutdown drain's floor
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<PeerWatcher> peers_;
  std::unique_ptr<ConftoolWriter> conftool_;
  std::unique_ptr<AgentCheckResponder> agent_check_;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<UnitWatcher> unit_watcher_;  // the checks' systemd units
  std::map<std::string, std::shared_ptr<Check>> probes_;  // check name → its probe (owner thread)
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(HealthModel&)>> inbox_;
  ResultBatch results_;
  std::map<std::string, uint64_t> awaited_;  // check → the seq of its fast probe in flight
  bool stop_ = false;
  bool owner_done_ = false;  // the owner loop has taken its last inbox: post() refuses
  bool shut_down_ = false;
  std::atomic<bool> stopping_{false};  // begin_stop() was called: changes are refused
  std::atomic<bool> abandoned_{false};
  std::thread owner_;
  std::mutex floor_mu_;
  std::condition_variable floor_cv_;
  std::vector<HealthModel::LeavePoll> floor_pending_;
  bool floor_stop_ = false;
  std::thread floor_thread_;
  mutable std::mutex config_mu_;  // guards config_ between reload and admin readers
};

// The boot id from a file like /proc/sys/kernel/random/boot_id ("" if unreadable).
std::string read_boot_id(const std::string& path);

}  // namespace poolkeeper

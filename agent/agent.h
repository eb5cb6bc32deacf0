// The running agent: one owner thread runs the Engine; each check has its own worker
// thread so a hung probe delays nothing but itself; the HTTP server reads the latest
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

#include "agent/admin_server.h"
#include "agent/config.h"
#include "agent/engine.h"
#include "agent/http_server.h"
#include "agent/metrics.h"
#include "agent/peers.h"
#include "agent/state_store.h"
#include "pybal-compat/agent_check.h"
#include "pybal-compat/conftool_writer.h"

namespace poolkeeper {

class ProbeWorker;

class Agent {
 public:
  Agent(Config config, const Clock& clock);
  ~Agent();

  // Loads the persisted intent, starts the HTTP server and the admin socket (throws
  // on a failure to listen), the probes, the peer watcher and the owner.
  void start();
  // Lifecycle → stopping: every service reports not pooled at once.
  void begin_stop();
  // Stops everything; waits for in-flight probes (bounded by their timeouts).
  void shutdown();
  // Re-reads the config: a bad one is refused (error returned, old one kept running).
  std::string reload(const std::string& file);

  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.load(); }
  int http_port() const { return http_ ? http_->port() : 0; }

  // One admin request line from a client with these credentials → one reply line.
  std::string handle_admin(const std::string& line, const PeerCred& cred);

  // Runs `fn` on the owner thread with the engine and waits for it.
  void run_on_owner(const std::function<void(Engine&)>& fn);

 private:
  void post(std::function<void(Engine&)> fn);
  void owner_loop();
  void publish();
  void make_workers();
  void join_finished_workers();
  bool authorised(const PeerCred& cred, std::string* who, std::string* error) const;
  std::string persist(Engine& e);

  Config config_;
  const Clock& clock_;
  StateStore store_;
  Metrics metrics_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<PeerWatcher> peers_;
  std::unique_ptr<ConftoolWriter> conftool_;
  std::unique_ptr<AgentCheckResponder> agent_check_;
  std::map<std::string, std::unique_ptr<ProbeWorker>> workers_;
  std::vector<std::unique_ptr<ProbeWorker>> retired_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(Engine&)>> inbox_;
  bool stop_ = false;
  bool shut_down_ = false;
  std::thread owner_;
  mutable std::mutex config_mu_;  // guards config_ between reload and admin readers
};

// The boot id from a file like /proc/sys/kernel/random/boot_id ("" if unreadable).
std::string read_boot_id(const std::string& path);

}  // namespace poolkeeper

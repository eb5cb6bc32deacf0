// The running agent: one owner thread runs the Engine; each check has its own worker
// thread so a hung probe delays nothing but itself; the HTTP server reads the latest
// snapshot through an atomic pointer. Public methods are thread-safe: they post to the
// owner and return (the owner publishes a new snapshot within microseconds).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/config.h"
#include "agent/engine.h"
#include "agent/http_server.h"
#include "agent/metrics.h"

namespace poolkeeper {

class ProbeWorker;

class Agent {
 public:
  Agent(Config config, const Clock& clock);
  ~Agent();

  // Starts the HTTP server (throws on a listen failure), the probes and the owner.
  void start();
  // Lifecycle → stopping: every service reports not pooled at once.
  void begin_stop();
  // Stops probes, owner and server; waits for in-flight probes (bounded by timeouts).
  void shutdown();

  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.load(); }
  Metrics& metrics() { return metrics_; }
  const Config& config() const { return config_; }
  int http_port() const { return http_ ? http_->port() : 0; }

  // Runs `fn` on the owner thread with the engine (for intent changes and the like)
  // and waits for it.
  void run_on_owner(const std::function<void(Engine&)>& fn);

 private:
  void post(std::function<void(Engine&)> fn);
  void owner_loop();
  void publish();

  Config config_;
  const Clock& clock_;
  Metrics metrics_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> http_;
  std::map<std::string, std::unique_ptr<ProbeWorker>> workers_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(Engine&)>> inbox_;
  bool stop_ = false;
  std::thread owner_;
};

}  // namespace poolkeeper

// Watches the peer agents named in services.*.peers: polls each one's /status every
// poll interval (libcurl, bounded by a timeout) on its own thread and hands the
// parsed states to a callback. An unreachable peer is reported as such, with why. When a
// peer was last seen is the time of day on the agent's clock; a request's timeout is
// real time (libcurl's).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/base/clock.h"
#include "agent/model/floor.h"

namespace poolkeeper {

// The agent polls its peers' /status this often, each request bounded by the timeout:
// a peer's death is seen within about a second and a half, while a slow peer never
// holds two polls at once.
inline constexpr Duration kPeerPollInterval = std::chrono::milliseconds(500);
inline constexpr Duration kPeerPollTimeout = std::chrono::seconds(1);

class PeerWatcher {
 public:
  using Callback = std::function<void(std::vector<PeerState>)>;
  PeerWatcher(std::vector<std::string> urls, Duration interval, Duration timeout, Callback cb,
              const Clock& clock);
  ~PeerWatcher();
  void start();
  void stop();
  void set_urls(std::vector<std::string> urls);

  // Polls every peer now (in parallel), from the calling thread; for decisions that
  // must not act on a stale view (depool).
  std::vector<PeerState> poll_now() const;

  static PeerState poll_one(const std::string& url, Duration timeout, const Clock& clock);

 private:
  void loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> urls_;
  Duration interval_, timeout_;
  Callback cb_;
  const Clock& clock_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace poolkeeper

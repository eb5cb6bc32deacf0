// The admin socket: a unix stream socket, the only way to change intent. Each
// connection carries one request line and gets one reply line. The peer's
// credentials (SO_PEERCRED) come with the request; the handler decides what they
// allow. Bounded: a request larger than 16 KiB or slower than 2 s gets an error, and
// the agent's other work never waits on a client.
//
// Connection slots: anyone may connect (the socket is 0666, reading is open), but a
// local user must never be able to lock root out. Each uid other than root may hold
// at most 4 connections at once, and all such users together at most 16; 16 more
// slots are kept for root and the privileged (admin_group), who are admitted whatever
// the others hold.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/base/listener.h"

namespace poolkeeper {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class AdminServer {
 public:
  using Handler = std::function<std::string(const std::string& line, const PeerCred& cred)>;
  // Whether a non-root peer may use the reserved slots (e.g. is in admin_group). Asked
  // only when the open slots are full, so the common path does no user lookups.
  using Privileged = std::function<bool(const PeerCred& cred)>;
  static constexpr int kSlotsPerUser = 4;
  static constexpr int kSharedSlots = 16;
  static constexpr int kReservedSlots = 16;

  AdminServer(std::string path, Handler handler, Privileged privileged = nullptr);
  ~AdminServer();
  // Creates the socket (replacing a stale one), mode 0666: anyone may ask for status;
  // changes are authorised per request. Throws std::runtime_error on failure.
  void start();
  void stop();

 private:
  // Admits a connection (a slot for its peer) and serves it on a worker thread.
  void on_connection(int fd);
  void serve(int fd, const PeerCred& cred);
  // Takes a slot for this peer; false when it may not have one now.
  bool admit(const PeerCred& cred, bool* reserved);
  void release(const PeerCred& cred, bool reserved);

  // A worker thread and whether it has finished (so it can be joined without waiting).
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
    bool joinable() const { return thread.joinable(); }
    void join() { thread.join(); }
  };

  std::string path_;
  Handler handler_;
  Privileged privileged_;
  std::mutex slots_mu_;  // guards the three below (workers release slots under it)
  std::map<uid_t, int> per_uid_;  // open slots held per non-root uid
  int shared_used_ = 0, reserved_used_ = 0;
  std::atomic<int> active_{0};
  std::atomic<bool> stopping_{false};
  Listener listener_;
  std::mutex mu_;
  std::vector<Worker> workers_;
};

}  // namespace poolkeeper

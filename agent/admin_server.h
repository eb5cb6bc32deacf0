// The admin socket: a unix stream socket, the only way to change intent. Each
// connection carries one request line and gets one reply line. The peer's
// credentials (SO_PEERCRED) come with the request; the handler decides what they
// allow. Bounded: a request larger than 16 KiB or slower than 2 s gets an error, at
// most 16 connections are served at once, and the agent's other work never waits on
// a client.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace poolkeeper {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class AdminServer {
 public:
  using Handler = std::function<std::string(const std::string& line, const PeerCred& cred)>;
  AdminServer(std::string path, Handler handler);
  ~AdminServer();
  // Creates the socket (replacing a stale one), mode 0666: anyone may ask for status;
  // changes are authorised per request. Throws std::runtime_error on failure.
  void start();
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<int> active_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

}  // namespace poolkeeper

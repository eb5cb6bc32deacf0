// An accept thread over a listening socket, stopped through a self-pipe so stop()
// never waits for the next connection. Shared by the admin socket and the HAProxy
// agent-check responder.
#pragma once

#include <functional>
#include <thread>

namespace poolkeeper {

class Listener {
 public:
  // Called on the accept thread with each accepted socket (non-blocking, close-on-exec);
  // the callee owns it. It must not throw.
  using OnAccept = std::function<void(int fd)>;

  Listener() = default;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  // Takes ownership of `listen_fd` (closed by stop(), or here on failure) and starts
  // the thread. Throws std::runtime_error when the pipe or the thread cannot be made.
  void start(int listen_fd, OnAccept on_accept);
  // Wakes and joins the thread, then closes the listening socket and the pipe.
  // Idempotent; a no-op when not started.
  void stop();
  bool running() const { return thread_.joinable(); }

 private:
  void loop();

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  OnAccept on_accept_;
  std::thread thread_;
};

}  // namespace poolkeeper

// A TCP forwarder on a loopback port, for cutting a link in tests: while started it
// relays every connection to 127.0.0.1:<target>; stop() closes the listener and every
// relayed connection at once, so the far side becomes unreachable (connection refused)
// until start() opens the same port again.
#pragma once

#include <string>
#include <thread>

namespace pk_test {

class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  void start();  // throws when the port cannot be bound again
  void stop();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void loop();
  int target_, port_;
  int listen_fd_ = -1, wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace pk_test

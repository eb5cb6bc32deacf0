// The agent's read-only HTTP endpoint on libmicrohttpd. Answers come from the latest
// snapshot (never from a probe), so a request never waits on the scheduler. Bounded:
// a connection limit and an idle timeout; when the connections come within `reserve`
// of the limit, each new one evicts the connection idle the longest, so slow or
// half-open clients can never keep the load balancer's health check out. Paths with
// control characters (raw or percent-encoded) and HTTP/1.1 without Host get 400.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "agent/publish/http_api.h"
#include "agent/publish/metrics.h"

struct MHD_Daemon;

namespace poolkeeper {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:9473";
  unsigned connection_limit = 512;
  unsigned reserve = 16;  // free slots kept by evicting the longest-idle connection
  unsigned connection_timeout_seconds = 10;
  unsigned threads = 2;
  // An already listening socket to serve instead of binding `listen` (systemd socket
  // activation). It outlives this process in systemd, so a restart refuses nobody.
  int listen_fd = -1;
};

class HttpServer {
 public:
  using SnapshotSource = std::function<std::shared_ptr<const Snapshot>()>;
  HttpServer(HttpServerOptions options, SnapshotSource source, Metrics* metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving; throws std::runtime_error naming the address on failure.
  void start();
  // Stops accepting first (what is queued on the socket stays for the next process
  // when the socket is shared), lets the requests in progress finish for a moment,
  // then stops.
  void stop();
  int port() const { return port_; }

  // The libmicrohttpd request callback (public for the C trampoline).
  HttpReply answer(const char* method, const char* url);
  HttpReply refuse(int status, const std::string& why);  // counted in the metrics
  void connections_touch(void* handle);  // a request arrived on this connection

  struct Connections;

 private:
  std::unique_ptr<Connections> conns_;
  HttpServerOptions options_;
  SnapshotSource source_;
  Metrics* metrics_;
  MHD_Daemon* daemon_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
};


}  // namespace poolkeeper

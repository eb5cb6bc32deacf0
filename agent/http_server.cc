#include "agent/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>
#include <stdexcept>

#include "agent/config.h"
#include "checks/net.h"

namespace poolkeeper {

namespace {

int kSeen;  // marks a request as seen; its address is all that matters

MHD_Result on_request(void* cls, MHD_Connection* conn, const char* url, const char* method,
                      const char* /*version*/, const char* /*upload_data*/,
                      size_t* upload_data_size, void** con_cls) {
  // Queue on the second call: answering on the first makes libmicrohttpd close the
  // connection instead of keeping it alive (measured: a fifth of the throughput).
  if (*con_cls == nullptr) {
    *con_cls = &kSeen;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {  // a body on a read-only endpoint: discard it
    *upload_data_size = 0;
    return MHD_YES;
  }
  auto* server = static_cast<HttpServer*>(cls);
  HttpReply reply = server->answer(method, url);
  MHD_Response* resp = MHD_create_response_from_buffer(
      reply.body.size(), reply.body.data(), MHD_RESPMEM_MUST_COPY);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
  for (const auto& [k, v] : reply.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  MHD_Result ret = MHD_queue_response(conn, static_cast<unsigned>(reply.status), resp);
  MHD_destroy_response(resp);
  return ret;
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, SnapshotSource source, Metrics* metrics)
    : options_(std::move(options)), source_(std::move(source)), metrics_(metrics) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  if (options_.listen_fd >= 0) {
    listen_fd_ = options_.listen_fd;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
      port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  } else {
    listen_fd_ = listen_tcp(options_.listen, 512, &port_);
  }
  // MHD_USE_ITC: needed by MHD_quiesce_daemon() in stop().
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ITC;
  daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &on_request, this,
      MHD_OPTION_LISTEN_SOCKET, listen_fd_,
      MHD_OPTION_CONNECTION_LIMIT, options_.connection_limit,
      MHD_OPTION_CONNECTION_TIMEOUT, options_.connection_timeout_seconds,
      MHD_OPTION_THREAD_POOL_SIZE, options_.threads,
      MHD_OPTION_END);
  if (!daemon_) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    throw std::runtime_error("cannot start HTTP server on " + options_.listen);
  }
}

void HttpServer::stop() {
  if (daemon_) {
    // Quiesce: no new accepts, and MHD hands the listening socket back instead of
    // shutting it down (a shutdown() would break a socket systemd shares with the next
    // process). Requests already accepted get up to 250 ms to be answered.
    MHD_socket s = MHD_quiesce_daemon(daemon_);
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
    while (std::chrono::steady_clock::now() < end) {
      const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
      if (!info || info->num_connections == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
    if (s != MHD_INVALID_SOCKET) ::close(s);
    listen_fd_ = -1;
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

HttpReply HttpServer::answer(const char* method, const char* url) {
  std::shared_ptr<const Snapshot> snap = source_();
  HttpReply reply = handle_http(method, url, *snap, [this] {
    return metrics_ ? metrics_->serialize() : std::string();
  });
  if (metrics_) metrics_->http_request(reply.route, reply.status);
  return reply;
}

}  // namespace poolkeeper

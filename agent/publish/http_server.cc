#include "agent/publish/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>
#include <list>
#include <mutex>
#include <new>
#include <stdexcept>

#include "agent/base/clock.h"
#include "agent/base/net.h"

namespace poolkeeper {

// Every open connection, least recently active first. When the live ones come within
// `reserve` of the limit, a new connection shuts the oldest idle one down (shutdown(2):
// libmicrohttpd then sees EOF and closes it on its own thread). The entry of a
// connection is removed in libmicrohttpd's CLOSED notification, which comes before it
// closes the descriptor, and both happen under `mu`: a descriptor is never shut down
// after it was closed (and perhaps reused).
struct HttpServer::Connections {
  struct Entry {
    int fd;
    bool evicted = false;
  };
  using List = std::list<Entry>;

  std::mutex mu;
  List lru;
  size_t live = 0;
  size_t threshold = 0;

  // May throw (out of memory) before anything was added.
  void* add(int fd) {
    auto handle = std::make_unique<List::iterator>();
    std::lock_guard<std::mutex> lk(mu);
    lru.push_back({fd});
    *handle = std::prev(lru.end());
    if (++live > threshold) {
      for (auto it = lru.begin(); it != *handle; ++it) {
        if (it->evicted || it->fd < 0) continue;
        ::shutdown(it->fd, SHUT_RDWR);
        it->evicted = true;
        --live;
        break;
      }
    }
    return handle.release();
  }
  void touch(void* h) {
    if (!h) return;
    std::lock_guard<std::mutex> lk(mu);
    auto& it = *static_cast<List::iterator*>(h);
    lru.splice(lru.end(), lru, it);
  }
  void remove(void* h) {
    if (!h) return;
    auto* handle = static_cast<List::iterator*>(h);
    std::lock_guard<std::mutex> lk(mu);
    if (!(*handle)->evicted) --live;
    lru.erase(*handle);
    delete handle;
  }
};

namespace {

// What we know of a request before libmicrohttpd unescapes its URL in place.
struct RequestState {
  size_t raw_len = 0;  // strlen of the raw URI: shorter than the URI when it holds a NUL
  bool control = false;
  bool seen = false;
};

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Called with the raw request URI (path and query, nothing decoded yet); its result
// becomes the request's *con_cls.
void* on_uri(void* /*cls*/, const char* uri, MHD_Connection* /*conn*/) noexcept {
  auto* rs = new (std::nothrow) RequestState;
  if (!rs) return nullptr;
  size_t n = std::strlen(uri);
  rs->raw_len = n;
  for (size_t i = 0; i < n && !rs->control; ++i) {
    unsigned char c = static_cast<unsigned char>(uri[i]);
    if (is_control(c)) rs->control = true;
    if (c == '%' && i + 2 < n && hex_value(uri[i + 1]) >= 0 && hex_value(uri[i + 2]) >= 0)
      rs->control = is_control(static_cast<unsigned char>(hex_value(uri[i + 1]) * 16 + hex_value(uri[i + 2])));
  }
  return rs;
}

void on_completed(void* /*cls*/, MHD_Connection* /*conn*/, void** con_cls,
                  MHD_RequestTerminationCode /*toe*/) noexcept {
  delete static_cast<RequestState*>(*con_cls);
  *con_cls = nullptr;
}

void on_connection(void* cls, MHD_Connection* conn, void** socket_context,
                   MHD_ConnectionNotificationCode toe) noexcept {
  auto* conns = static_cast<HttpServer::Connections*>(cls);
  try {
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
      const MHD_ConnectionInfo* ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
      *socket_context = conns->add(ci ? ci->connect_fd : -1);
    } else {
      conns->remove(*socket_context);
      *socket_context = nullptr;
    }
  } catch (...) {  // out of memory: this connection is simply not tracked
  }
}

MHD_Result queue(MHD_Connection* conn, const HttpReply& reply) {
  MHD_Response* resp = MHD_create_response_from_buffer(
      reply.body.size(), const_cast<char*>(reply.body.data()), MHD_RESPMEM_MUST_COPY);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
  for (const auto& [k, v] : reply.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  MHD_Result ret = MHD_queue_response(conn, static_cast<unsigned>(reply.status), resp);
  MHD_destroy_response(resp);
  return ret;
}

MHD_Result handle(HttpServer* server, MHD_Connection* conn, const char* url, const char* method,
                  const char* version, size_t* upload_data_size, void** con_cls) {
  auto* rs = static_cast<RequestState*>(*con_cls);
  if (!rs) return MHD_NO;  // out of memory: close
  // Queue on the second call: answering on the first makes libmicrohttpd close the
  // connection instead of keeping it alive (measured: a fifth of the throughput).
  if (!rs->seen) {
    rs->seen = true;
    if (const MHD_ConnectionInfo* ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT))
      server->connections_touch(ci->socket_context);
    return MHD_YES;
  }
  if (*upload_data_size != 0) {  // a body on a read-only endpoint: discard it
    *upload_data_size = 0;
    return MHD_YES;
  }
  // libmicrohttpd hands over the URI as a C string: a raw NUL would cut it short
  // ("/health/web\0junk" would answer for web). The version follows the URI and one
  // space in the request line, so a URI shorter than that held a NUL.
  bool nul = version[0] != '\0' &&
             reinterpret_cast<uintptr_t>(version) != reinterpret_cast<uintptr_t>(url) + rs->raw_len + 1;
  if (rs->control || nul) return queue(conn, server->refuse(400, "bad request: control character in the path"));
  if (std::strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
      !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))
    return queue(conn, server->refuse(400, "bad request: HTTP/1.1 without Host"));
  return queue(conn, server->answer(method, url));
}

MHD_Result on_request(void* cls, MHD_Connection* conn, const char* url, const char* method,
                      const char* version, const char* /*upload_data*/,
                      size_t* upload_data_size, void** con_cls) noexcept {
  // Called from libmicrohttpd's C code: an exception must not cross it.
  try {
    return handle(static_cast<HttpServer*>(cls), conn, url, method, version, upload_data_size, con_cls);
  } catch (...) {
  }
  static char kBody[] = "internal error\n";
  MHD_Response* resp = MHD_create_response_from_buffer(sizeof kBody - 1, kBody, MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, resp);
  MHD_destroy_response(resp);
  return ret;
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, SnapshotSource source, Metrics* metrics)
    : conns_(std::make_unique<Connections>()),
      options_(std::move(options)),
      source_(std::move(source)),
      metrics_(metrics) {
  conns_->threshold = options_.connection_limit > options_.reserve
                          ? options_.connection_limit - options_.reserve
                          : options_.connection_limit;
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  if (options_.listen_fd >= 0) {
    listen_fd_ = options_.listen_fd;
    port_ = std::max(0, local_port(listen_fd_));
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
      MHD_OPTION_URI_LOG_CALLBACK, &on_uri, nullptr,
      MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr,
      MHD_OPTION_NOTIFY_CONNECTION, &on_connection, conns_.get(),
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
    auto end = real_clock().now() + std::chrono::milliseconds(250);
    while (real_clock().now() < end) {
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

void HttpServer::connections_touch(void* handle) { conns_->touch(handle); }

HttpReply HttpServer::refuse(int status, const std::string& why) {
  HttpReply reply = http_refusal(status, why);
  if (metrics_) metrics_->http_request(reply.route, reply.status);
  return reply;
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
